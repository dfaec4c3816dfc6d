"""Network faults for tests: a loopback TCP proxy that can cut its connections and refuse new ones.

Put :class:`TCPProxy` between a strongroom server and its PostgreSQL (:func:`via_proxy` rewrites a
``postgresql://`` URL to go through it), then:

* :meth:`TCPProxy.cut` resets every proxied connection at once (both sides get a TCP RST, as when a
  network path or the database host dies);
* :meth:`TCPProxy.refuse` cuts them too and stops listening, so new connections are refused, as
  while a database restarts; :meth:`TCPProxy.accept` listens again on the same port;
  :meth:`TCPProxy.outage` does both around a pause;
* :meth:`TCPProxy.cut_at_commit` resets one chosen transaction's connection at the worst moment,
  its COMMIT: carried out by the database with the answer lost, or lost on its way.

One thread runs every socket through a selector, so a cut never races a half-finished copy: it
happens between two reads. The proxy only ever listens on loopback.
"""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

__all__ = ["TCPProxy", "via_proxy"]

_T = TypeVar("_T")
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, not FIN


def via_proxy(url: str, proxy: TCPProxy, **query: str) -> str:
    """``url`` with its host and port replaced by the proxy's, and ``query`` added to its query."""
    parts = urllib.parse.urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo + '@' if userinfo else ''}{proxy.host}:{proxy.port}"
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + list(query.items())
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, urllib.parse.urlencode(pairs), ""))


class TCPProxy:
    """Forwards ``host:port`` (loopback) to ``upstream``. Use as a context manager."""

    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fault proxy listens on loopback only")
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = port
        self.accepted = 0  # connections accepted since start
        self.resets = 0  # connections reset by cut() / refuse()
        self._sel = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._peers: dict[socket.socket, socket.socket] = {}
        self._clients: set[socket.socket] = set()  # the accepted side of each pair
        self._commands: queue.SimpleQueue[tuple[Callable[[], Any], queue.SimpleQueue[Any]]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        # cut_at_commit: the marker to look for, the client connection that sent it, the upstream
        # side whose next answer (to COMMIT) is dropped, and the event set once that happened.
        self._marker: bytes | None = None
        self._watched: socket.socket | None = None
        self._doomed: socket.socket | None = None
        self._fired: threading.Event | None = None
        self._deliver = True
        self._running = False
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------------------- control

    def start(self) -> TCPProxy:
        self._listen()
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._call(self._stop)
            self._thread.join(timeout=5)
            self._thread = None
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> TCPProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connections(self) -> int:
        """Proxied connections open now."""
        return self._call(lambda: len(self._peers) // 2)

    def cut(self) -> int:
        """Reset every proxied connection now; answer how many there were."""
        return self._call(self._reset_all)

    def refuse(self) -> int:
        """Reset every connection and stop listening: new connections are refused until accept()."""
        return self._call(self._refuse)

    def accept(self) -> None:
        """Listen again (on the same port) after refuse()."""
        self._call(self._listen)

    def cut_at_commit(self, marker: bytes, delivered: bool = True) -> threading.Event:
        """Arm a fault for the next transaction whose client sends ``marker``: its connection is
        reset at the COMMIT. Pick a marker only that transaction sends, such as a parameter value
        (a ClientRequestToken, a user agent in an audit record): a statement's text may be sent
        only once per connection, as psycopg prepares the statements it runs often.

        ``delivered=True``: the COMMIT reaches the database and is carried out, and the reset
        replaces its answer. ``delivered=False``: the reset happens as the client sends the COMMIT,
        which never arrives. Either way the client cannot tell which happened. The event is set
        once the fault has happened."""
        fired = threading.Event()

        def arm() -> None:
            self._marker, self._watched, self._doomed, self._fired = marker, None, None, fired
            self._deliver = delivered

        self._call(arm)
        return fired

    @contextlib.contextmanager
    def refusing(self) -> Iterator[None]:
        self.refuse()
        try:
            yield
        finally:
            self.accept()

    def outage(self, seconds: float) -> None:
        """A database restart as clients see it: connections reset, refused for ``seconds``, then back."""
        with self.refusing():
            time.sleep(seconds)

    # --------------------------------------------------------------------------- internals

    def _call(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the proxy's thread, between two socket events, and answer its result."""
        if self._thread is None or threading.current_thread() is self._thread:
            return fn()
        reply: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._commands.put((fn, reply))
        self._wake_w.send(b"x")
        ok, value = reply.get(timeout=10)
        if not ok:
            raise value
        result: _T = value  # what fn answered, handed back through the queue
        return result

    def _listen(self) -> None:
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(128)
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._sel.register(listener, selectors.EVENT_READ, "listen")

    def _unlisten(self) -> None:
        if self._listener is not None:
            self._sel.unregister(self._listener)
            self._listener.close()
            self._listener = None

    def _refuse(self) -> int:
        self._unlisten()
        return self._reset_all()

    def _stop(self) -> None:
        self._unlisten()
        self._reset_all()
        self._running = False

    def _reset_all(self) -> int:
        count = len(self._peers) // 2
        for sock in list(self._peers):
            self._drop(sock, reset=True)
        self.resets += count
        return count

    def _drop(self, sock: socket.socket, reset: bool = False) -> None:
        """Close ``sock`` and its peer (RST with ``reset``; otherwise the peer sees an orderly close)."""
        peer = self._peers.pop(sock, None)
        for s in (sock, peer):
            if s is None:
                continue
            self._peers.pop(s, None)
            self._clients.discard(s)
            if s is self._watched or s is self._doomed:  # gone before its COMMIT: wait for another
                self._watched = self._doomed = None
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(s)
            if reset:
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            with contextlib.suppress(OSError):
                s.close()

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            client.close()
            return
        for s in (client, upstream):
            s.setblocking(True)
            s.settimeout(10)  # sendall to a stuck peer must not hold the proxy forever
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._peers[client] = upstream
        self._clients.add(client)
        self._peers[upstream] = client
        self._sel.register(client, selectors.EVENT_READ, "data")
        self._sel.register(upstream, selectors.EVENT_READ, "data")
        self.accepted += 1

    def _forward(self, sock: socket.socket) -> None:
        peer = self._peers.get(sock)
        if peer is None:
            return
        try:
            data = sock.recv(1 << 16)
            if data and sock is self._doomed:
                # The database answered the COMMIT (so it is carried out): drop the answer.
                self._drop(sock, reset=True)
                self._marker = None
                assert self._fired is not None
                self._fired.set()
                return
            if data and self._marker is not None and sock in self._clients and self._watch(sock, peer, data):
                return  # a COMMIT dropped on its way
            if data:
                peer.sendall(data)
                return
        except OSError:
            self._drop(sock, reset=True)
            return
        self._drop(sock)  # orderly close from one side: close the other too

    def _watch(self, client: socket.socket, upstream: socket.socket, data: bytes) -> bool:
        """Follow what a client sends, for cut_at_commit: its marker, then that transaction's end.
        True when ``data`` (a COMMIT) was dropped instead of forwarded."""
        assert self._marker is not None and self._fired is not None
        if self._watched is None:
            if self._marker in data:
                self._watched = client
        elif client is self._watched and self._doomed is None:
            if b"COMMIT" in data:
                if self._deliver:
                    self._doomed = upstream  # forwarded; its answer is dropped in _forward
                    return False
                self._drop(client, reset=True)
                self._marker = None
                self._fired.set()
                return True
            if b"ROLLBACK" in data:  # that transaction will not commit: wait for another
                self._watched = None
        return False

    def _run_commands(self) -> bool:
        """Run the commands _call queued; answer whether the proxy still runs (close() stops it)."""
        while True:
            try:
                fn, reply = self._commands.get_nowait()
            except queue.Empty:
                break
            try:
                reply.put((True, fn()))
            except Exception as exc:  # noqa: BLE001 - handed back to the caller
                reply.put((False, exc))
        return self._running

    def _loop(self) -> None:
        while self._running:
            for key, _ in self._sel.select(timeout=0.5):
                if key.data == "wake":
                    self._wake_r.recv(4096)
                    if not self._run_commands():
                        break
                elif key.data == "listen":
                    if self._listener is not None:
                        self._accept()
                elif key.fileobj in self._peers:
                    self._forward(key.fileobj)
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(self._wake_r)
        self._sel.close()
