"""``serve --workers N``: N server processes on one port, over one storage, under one parent.

Mechanism: the parent checks and locks the data directory, binds N sockets to the port with
SO_REUSEPORT (:func:`strongroom.server.listen.bind_workers`), makes the memory the workers share
(:class:`~strongroom.cache.SharedCounter`), and forks one worker per socket. It forks before it
has opened storage or started a thread, so every worker builds its own server (database
connections, threads, event loop) from nothing. Why this and not another way:

* **Fork from a parent that holds the lock**, not N independent processes: the ``flock`` on the
  data directory (:mod:`strongroom.datadir`) belongs to the open file, which fork shares, so the
  workers share the parent's lock while a second ``serve`` on the same data directory is still
  refused; and the shared memory is inherited without a name anyone else could open.
* **One socket per worker (SO_REUSEPORT)**, not one socket all workers accept on: uvloop accepts
  every pending connection when woken, so with one shared socket the first worker awake takes a
  whole burst of connections (a load balancer's or a client pool's) and the others idle. The
  kernel spreads connections over the sockets instead. The parent keeps every socket open, so a
  worker's queue outlives the worker: connections that arrive while it is replaced wait for its
  successor instead of being refused.
* **Not uvicorn's supervisor**: it starts workers with ``multiprocessing``'s spawn (a fresh
  interpreter that re-imports everything, and no inherited lock or shared memory) on one shared
  socket.

The workers start one at a time, worker 0 first: it migrates the schema, makes the keyring and
the administrator key on a first start, so the others find them made. Only worker 0 runs the
work that must run once per server: the rotation engine (on SQLite it releases, when it starts,
the claims the previous holder left; on PostgreSQL the claims are leases anyway) and the purge of
deleted secrets. Every worker serves every API call.

A worker that dies is logged in one line and replaced (same socket, same slot); one that dies
within a second of starting waits a second before its successor, so a worker that cannot start
does not spin. SIGTERM or SIGINT to the parent is passed to every worker, each drains its
requests (uvicorn's graceful shutdown), and the parent exits once all have. A worker whose
parent died gets SIGTERM from the kernel (``PR_SET_PDEATHSIG``), so none outlives it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import socket
import time
from collections.abc import Callable

__all__ = ["supervise"]

log = logging.getLogger("strongroom.workers")

_PR_SET_PDEATHSIG = 1
_QUICK_DEATH = 1.0  # seconds: a worker that dies sooner than this waits as long before its successor


# A worker: (its index, its socket, ready) -> an exit status; it calls ready(text) once it
# accepts connections (worker 0's text is the banner the parent prints).
Worker = Callable[[int, socket.socket, Callable[[str], None]], int]


def supervise(sockets: list[socket.socket], worker: Worker, on_ready: Callable[[str], None]) -> int:
    """Run one worker per socket until SIGTERM/SIGINT; answer the exit status for the parent.
    ``on_ready`` gets worker 0's banner once every worker accepts connections."""
    parent = os.getpid()
    children: dict[int, tuple[int, float]] = {}  # pid -> (index, started)
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def start(index: int) -> tuple[int, int]:
        """Fork worker ``index``; answer its PID and the pipe it reports readiness on."""
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the parent's code
            code = 1
            try:
                os.close(read_end)
                _die_with(parent)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the worker sets its own (TLS reload)
                for i, other in enumerate(sockets):
                    if i != index:
                        other.close()

                def ready(text: str) -> None:
                    try:  # a successor's pipe has no reader: the parent waits for none but the first
                        os.write(write_end, text.encode() + b"\0")
                    except OSError:
                        pass
                    os.close(write_end)

                code = worker(index, sockets[index], ready)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # a surprise keeps its traceback, then the worker is gone
                log.exception("worker %d failed", index)
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(write_end)
        children[pid] = (index, time.monotonic())
        return pid, read_end

    def wait_ready(pid: int, read_end: int) -> str | None:
        """The worker's ready text, or None if it ended first (SIGTERM to the parent included)."""
        data = b""
        try:
            while not data.endswith(b"\0"):
                try:
                    readable, _, _ = select.select([read_end], [], [], 0.5)
                except InterruptedError:
                    continue
                if stopping:
                    return None
                if readable:
                    chunk = os.read(read_end, 4096)
                    if not chunk:
                        return None
                    data += chunk
        finally:
            os.close(read_end)
        return data[:-1].decode()

    def forward(signum: int, frame: object) -> None:
        """SIGHUP (systemctl reload) is the workers' to act on: each reloads its TLS certificate."""
        for pid in list(children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, forward)
    try:
        banner = ""
        for index in range(len(sockets)):
            pid, read_end = start(index)
            text = wait_ready(pid, read_end)
            if text is None:  # it could not start (it said why), or we are told to stop
                stop(signal.SIGTERM, None)
                code = _reap_all(children)
                return 0 if code is None else code
            if index == 0:
                banner = text
        on_ready(banner)
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index, started = children.pop(pid, (-1, 0.0))
            if stopping or index < 0:
                continue
            log.error("worker %d (PID %d) %s; starting another", index, pid, _how(status))
            if time.monotonic() - started < _QUICK_DEATH:
                time.sleep(_QUICK_DEATH)
            if not stopping:
                _, read_end = start(index)
                os.close(read_end)  # its successor is ready when it is; nobody waits for it
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _reap_all(children: dict[int, tuple[int, float]]) -> int | None:
    """Wait for every worker; answer the first non-zero status of a worker that failed."""
    failed: int | None = None
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        children.pop(pid, None)
        code = os.waitstatus_to_exitcode(status)
        if code > 0 and failed is None:
            failed = code
    return failed


def _how(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _die_with(parent: int) -> None:
    """Have the kernel send this worker SIGTERM when its parent dies (Linux); a worker whose
    parent is already gone exits."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(0)
