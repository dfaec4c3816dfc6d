"""Function runtime: warm worker processes running Lambda-style handlers.

A :class:`FunctionSpec` says what to run (handler, code directory, environment, timeout, memory).
Workers are kept warm per spec key (the function's ARN and code hash), reused one invocation at
a time, replaced when the code or configuration changes (the key changes), killed at their
timeout, and capped in memory (``RLIMIT_AS``). As on Lambda, a cold worker's start (the
interpreter, the handler's imports) is an init phase with a limit of its own (``INIT_TIMEOUT``,
or the function's timeout when that is longer), not counted in the function's timeout: the worker
says when it is ready. A worker lives at most ``max_age`` seconds, so its short-lived credentials
are always fresh.

Uploaded code (a spec with ``code_dir``) runs in the sandbox (rotation/sandbox.py): without one
the runtime refuses it (``Runtime.SandboxUnavailable``, saying why) unless it was built with
``unsafe=True`` (``strongroom serve --unsafe-functions``). Built-in rotators are strongroom's own
code and run unsandboxed.

Every worker runs in a process group (and, sandboxed, a PID namespace) of its own; killing a
worker kills the group, so nothing it started outlives it. Its short-lived credentials are
revoked (``revoke``) the moment it is killed: reaped when idle for ``idle_timeout`` seconds,
aged out, replaced, timed out, or its function deleted (``forget``, which also kills workers in
the middle of an invocation).

``invoke`` blocks; the engine calls it from its own threads. The Lambda API calls
``invoke_async``, which runs the worker on the runtime's own bounded pool (never the event loop's
default executor, which IAM and STS use) and answers ``TooManyRequestsException`` at once when
the function already has ``concurrency`` invocations running, as Lambda does when a function's
concurrency is exhausted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from strongroom import config
from strongroom.errors import AWSError
from strongroom.rotation.sandbox import Sandbox, close_fds, pids_cgroup, remove_cgroup

__all__ = ["FunctionRuntime", "FunctionSpec", "InvokeResult"]

# An answer line longer than this (the function's result and its capped logs) kills the worker.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
# Lambda's limit on the init phase (starting the runtime, importing the handler's module); a
# function whose timeout is longer gets that (a cold start never had less time than before).
INIT_TIMEOUT = 10.0
# Idle workers are killed after this long without an invocation (STRONGROOM_FUNCTION_IDLE_SECONDS).
IDLE_TIMEOUT = 600.0
# Invocations of one function running at once through the Lambda API; more get TooManyRequests
# (STRONGROOM_FUNCTION_CONCURRENCY). The pool all Invoke calls share has POOL_SIZE threads.
CONCURRENCY = 10
POOL_SIZE = 32


@dataclass(frozen=True)
class FunctionSpec:
    key: str  # changes whenever code or configuration changes
    arn: str
    name: str
    handler: str
    code_dir: str | None = None
    timeout: float = 30.0
    memory_mb: int = 512
    environment: dict[str, str] = field(default_factory=dict)
    role: str | None = None  # the function's execution role; None for built-in rotators


@dataclass
class InvokeResult:
    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None
    logs: str = ""
    duration_ms: int = 0
    request_id: str = ""  # the invocation's: the one its log lines (START, END, REPORT) name

    @property
    def error_text(self) -> str:
        if self.error is None:
            return ""
        return f"{self.error.get('errorType', 'Error')}: {self.error.get('errorMessage', '')}"


def parse_cpus(text: str) -> frozenset[int]:
    """A CPU list as ``taskset`` and ``/sys`` write them: ``1``, ``2-3``, ``0,2-3``."""
    cpus: set[int] = set()
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            low, dash, high = part.partition("-")
            cpus.update(range(int(low), int(high if dash else low) + 1))
    except ValueError:
        raise ValueError(f"not a CPU list: {text!r} (examples: 1, 2-3, 0,2-3)") from None
    unknown = {c for c in cpus if not 0 <= c < (os.cpu_count() or 1)}
    if not cpus or unknown:
        raise ValueError(
            f"CPU list {text!r} names no CPU"
            if not cpus
            else f"CPU list {text!r} names CPUs this machine does not have: {sorted(unknown)}"
        )
    return frozenset(cpus)


class _Worker:
    # Defaults for what kill() reads (tests build a bare worker around a process of their own).
    cgroup: Any = None
    sandboxed = False
    access_key_id = ""
    _revoke: Callable[[str], None] | None = None

    def __init__(
        self,
        spec: FunctionSpec,
        env: dict[str, str],
        cpus: frozenset[int] | None = None,
        sandbox: Sandbox | None = None,
        revoke: Callable[[str], None] | None = None,
    ) -> None:
        fds: tuple[int, ...] = ()
        if sandbox is not None and spec.code_dir:
            args, fds = sandbox.command(spec.code_dir, spec.handler)
        else:
            args = [sys.executable, "-m", "strongroom.rotation.worker", spec.handler]
            if spec.code_dir:
                args.append(spec.code_dir)
        memory = spec.memory_mb * 1024 * 1024 + 512 * 1024 * 1024  # the interpreter's own share
        self.cgroup = pids_cgroup(uuid.uuid4().hex) if fds else None
        procs = str(self.cgroup / "cgroup.procs") if self.cgroup else None

        def limits() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if cpus:
                os.sched_setaffinity(0, cpus)
            if procs:  # before exec: bwrap and all it starts are counted
                with open(procs, "w") as f:
                    f.write(str(os.getpid()))

        # A process group of its own (start_new_session): kill() ends everything the worker started.
        # bwrap's --die-with-parent is PR_SET_PDEATHSIG, which fires when the *thread* that started
        # it exits: workers are started from long-lived pool threads (the runtime's, the engine's).
        try:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                preexec_fn=limits,
                cwd=spec.code_dir or None,
                start_new_session=True,
                pass_fds=fds,
            )
        finally:
            close_fds(fds)
        self.arn = spec.arn
        self.sandboxed = bool(fds)
        self.access_key_id = env.get("AWS_ACCESS_KEY_ID", "")
        self._revoke = revoke
        self.started = time.monotonic()
        self.last_used = self.started
        self.ready = False  # the worker has loaded the handler and said so
        self._unread = bytearray()  # bytes read past the last line
        self.init_limit = INIT_TIMEOUT
        self.failure = ""  # why the last call had no answer: "timeout", "init timeout", "exit", "too large", "invalid"

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """The answer, or None when the worker died, ran out of time or answered something that is
        not an answer (it is then killed, and ``failure`` says which)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.failure = "exit"
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            return None
        if not self.ready:  # a cold worker: its init phase first, then the function's own time
            self.init_limit = max(INIT_TIMEOUT, timeout)
            said = self._line(time.monotonic() + self.init_limit, "init timeout")
            if said is None:
                return None
            if said.get("ready") is not True:
                self.failure = "invalid"
                self.kill()
                return None
            self.ready = True
        return self._line(time.monotonic() + timeout, "timeout")

    def _line(self, deadline: float, late: str) -> dict[str, Any] | None:
        """The worker's next JSON line, or None (the worker killed, ``failure`` set; ``late`` when
        the deadline passed)."""
        assert self.proc.stdout is not None
        # Lines are cut at their newline: one read can hold the end of one line and the start of
        # the next (a cold worker's "ready" line and its first answer often arrive together).
        buffer = self._unread
        fd = self.proc.stdout.fileno()
        scanned = 0  # no newline before this offset: each byte is searched once
        while (end := buffer.find(b"\n", scanned)) < 0:
            scanned = len(buffer)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.failure = late
                self.kill()
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self.kill()
                return None
            buffer += chunk
            if len(buffer) > MAX_ANSWER_BYTES:
                self.failure = "too large"
                self.kill()
                return None
        line, self._unread = buffer[: end + 1], buffer[end + 1 :]
        try:
            answer = json.loads(line)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            self.failure = "invalid"
            self.kill()
            return None
        return answer

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self) -> None:
        """From another thread than the one invoking it: kill the process group and revoke the
        credentials now; the invoking thread sees the worker end and cleans up (``kill``)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self._revoke is not None and self.access_key_id:
            self._revoke(self.access_key_id)

    def kill(self) -> None:
        """Kill the worker's whole process group, wait for it, and revoke its credentials."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        else:  # the leader is gone; what it left in its group goes too
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.proc.wait()
        remove_cgroup(self.cgroup)
        self.cgroup = None
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass
        if self._revoke is not None and self.access_key_id:
            self._revoke(self.access_key_id)
            self._revoke = None


def _runtime_error(worker: _Worker, spec: FunctionSpec) -> dict[str, str]:
    """Lambda's words for an invocation that ended without an answer."""
    code = worker.proc.returncode
    if worker.failure == "timeout":
        return {"errorType": "Sandbox.Timedout", "errorMessage": f"Task timed out after {spec.timeout:.2f} seconds"}
    if worker.failure == "init timeout":
        return {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"Init timed out after {worker.init_limit:.2f} seconds",
        }
    if worker.failure == "too large":
        return {
            "errorType": "Function.ResponseSizeTooLarge",
            "errorMessage": f"Response payload size exceeded maximum allowed payload size ({MAX_ANSWER_BYTES} bytes).",
        }
    if worker.failure == "invalid":
        return {
            "errorType": "Runtime.InvalidResponse",
            "errorMessage": "The runtime answered with an unreadable response.",
        }
    if worker.sandboxed and code is not None and 128 < code < 128 + signal.NSIG:
        code = 128 - code  # bwrap exits 128 + N when what it ran was killed by signal N
    if code is not None and code < 0:  # killed by a signal: the OOM killer, or the function itself
        name = (signal.strsignal(-code) or f"signal {-code}").lower()  # "killed", "segmentation fault"
        return {"errorType": "Runtime.ExitError", "errorMessage": f"Runtime exited with error: signal: {name}"}
    return {"errorType": "Runtime.ExitError", "errorMessage": f"Runtime exited with error: exit status {code}"}


class FunctionRuntime:
    def __init__(
        self,
        base_env: Callable[[FunctionSpec], dict[str, str]],
        max_age: float = 900.0,
        on_invoke: Callable[[FunctionSpec, Any, InvokeResult, float], None] | None = None,
        cpus: frozenset[int] | None = None,
        sandbox: Sandbox | None = None,
        unsafe: bool = False,
        refusal: str = "",
        revoke: Callable[[str], None] | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        concurrency: int = CONCURRENCY,
    ) -> None:
        """``cpus``: the CPUs function workers run on (default: the server's). On AWS a rotation
        function runs in Lambda, not on Secrets Manager's hosts; here it can at least be kept off
        the cores that serve requests (``STRONGROOM_FUNCTION_CPUS``).

        ``sandbox``: where uploaded code runs; None refuses it (``refusal`` says why) unless
        ``unsafe``. ``revoke``: called with a worker's access key id when the worker ends."""
        self._base_env = base_env
        self._cpus = cpus
        self.on_invoke = on_invoke  # records every invocation (its logs kept, as Lambda keeps them)
        self._max_age = max_age
        self.sandbox = sandbox
        self.unsafe = unsafe
        self.refusal = refusal
        self._revoke = revoke
        self.idle_timeout = idle_timeout
        self.concurrency = concurrency
        self._idle: dict[str, list[_Worker]] = {}
        self._busy: set[_Worker] = set()
        self._running: dict[str, int] = {}  # function ARN -> Lambda API invocations running
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._closed = threading.Event()
        self._reaper: threading.Thread | None = None

    def worker_counts(self) -> dict[str, int]:
        """Live function workers: idle (kept warm for their function) and busy (the metrics)."""
        with self._lock:
            return {"idle": sum(len(pool) for pool in self._idle.values()), "busy": len(self._busy)}

    def _take(self, spec: FunctionSpec) -> _Worker:
        with self._lock:
            pool = self._idle.get(spec.key, [])
            while pool:
                worker = pool.pop()
                if worker.alive() and time.monotonic() - worker.started < self._max_age:
                    self._busy.add(worker)
                    return worker
                worker.kill()
        path, home = config.host_path_and_home()
        env = {"PATH": path, "LANG": "C.UTF-8", "HOME": home}
        if self.sandbox is not None and spec.code_dir:  # nothing of the server's own environment
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "TZ": ":UTC"}
        env.update(self._base_env(spec))
        if self.sandbox is not None and spec.code_dir:
            env["LAMBDA_TASK_ROOT"] = "/var/task"
            env["LAMBDA_RUNTIME_DIR"] = "/var/runtime"
            env["_HANDLER"] = spec.handler
            env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "on-demand"
        env.update(spec.environment)
        worker = _Worker(spec, env, self._cpus, self.sandbox if spec.code_dir else None, self._revoke)
        with self._lock:
            self._busy.add(worker)
        self._start_reaper()
        return worker

    def _give_back(self, spec: FunctionSpec, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            if not worker.alive():  # killed meanwhile (its function deleted)
                return
            stale = [k for k in self._idle if k.split("#", 1)[0] == spec.arn and k != spec.key]
            for key in stale:  # code or configuration changed: the old workers go
                for old in self._idle.pop(key):
                    old.kill()
            worker.last_used = time.monotonic()
            self._idle.setdefault(spec.key, []).append(worker)

    def invoke(self, spec: FunctionSpec, event: Any) -> InvokeResult:
        began = time.time()
        result = self._invoke(spec, event)
        if self.on_invoke is not None:
            try:
                self.on_invoke(spec, event, result, began)
            except Exception:
                logging.getLogger("strongroom.rotation").exception("invocation log of %s not kept", spec.name)
        return result

    async def invoke_async(self, spec: FunctionSpec, event: Any) -> InvokeResult:
        """``invoke`` on the runtime's own pool, or ``TooManyRequestsException`` when ``spec``'s
        function already runs ``concurrency`` invocations (a hanging function then holds at most
        that many threads, none of them the default executor's)."""
        self._claim(spec)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor(), self.invoke, spec, event)
        finally:
            self._release(spec)

    def submit(self, spec: FunctionSpec, event: Any) -> None:
        """An asynchronous (``Event``) invocation: queued on the runtime's pool, not waited for."""
        self._claim(spec)

        def run() -> None:
            try:
                self.invoke(spec, event)
            finally:
                self._release(spec)

        self._executor().submit(run)

    def _claim(self, spec: FunctionSpec) -> None:
        with self._lock:
            running = self._running.get(spec.arn, 0)
            if running >= self.concurrency:
                raise AWSError("TooManyRequestsException", "Rate Exceeded.", 429)
            self._running[spec.arn] = running + 1

    def _release(self, spec: FunctionSpec) -> None:
        with self._lock:
            left = self._running.get(spec.arn, 1) - 1
            if left > 0:
                self._running[spec.arn] = left
            else:
                self._running.pop(spec.arn, None)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="function")
            return self._pool

    def _invoke(self, spec: FunctionSpec, event: Any) -> InvokeResult:
        if spec.code_dir and self.sandbox is None and not self.unsafe:
            return InvokeResult(
                False,
                error={
                    "errorType": "Runtime.SandboxUnavailable",
                    "errorMessage": "strongroom runs no uploaded code without its sandbox: "
                    f"{self.refusal or 'no sandbox'}. "
                    "Install bubblewrap, or start the server with --unsafe-functions.",
                },
            )
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        worker = self._take(spec)
        try:
            answer = worker.call({"event": event, "timeout": spec.timeout, "request_id": request_id}, spec.timeout)
        finally:
            if not worker.alive():
                with self._lock:
                    self._busy.discard(worker)
        duration = int((time.monotonic() - started) * 1000)
        if answer is None:
            worker.kill()  # revokes its credentials
            return InvokeResult(False, error=_runtime_error(worker, spec), duration_ms=duration, request_id=request_id)
        self._give_back(spec, worker)
        return InvokeResult(
            bool(answer.get("ok")),
            answer.get("result"),
            answer.get("error"),
            answer.get("logs", ""),
            duration,
            request_id,
        )

    def forget(self, arn: str) -> None:
        """The function's code or configuration changed: its idle workers are killed (running
        invocations finish, as on Lambda)."""
        with self._lock:
            doomed = [w for k in [k for k in self._idle if k.split("#", 1)[0] == arn] for w in self._idle.pop(k)]
        for worker in doomed:
            worker.kill()

    def kill_all(self, arn: str) -> None:
        """The function was deleted: every worker of it, idle or in the middle of an invocation,
        is killed now, and their credentials stop working."""
        self.forget(arn)
        with self._lock:
            running = [w for w in self._busy if w.arn == arn]
        for worker in running:
            worker.terminate()

    def reap(self) -> int:
        """Kill the workers idle longer than ``idle_timeout`` (or past ``max_age``); answer how many."""
        now = time.monotonic()
        with self._lock:
            doomed = []
            for key in list(self._idle):
                keep = []
                for worker in self._idle[key]:
                    if now - worker.last_used >= self.idle_timeout or now - worker.started >= self._max_age:
                        doomed.append(worker)
                    else:
                        keep.append(worker)
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
        for worker in doomed:
            worker.kill()
        return len(doomed)

    def _start_reaper(self) -> None:
        with self._lock:
            if self._reaper is not None or self._closed.is_set():
                return
            self._reaper = threading.Thread(target=self._reap_loop, name="function-reaper", daemon=True)
            self._reaper.start()

    def _reap_loop(self) -> None:
        interval = max(0.2, min(30.0, self.idle_timeout / 4))
        while not self._closed.wait(interval):
            try:
                self.reap()
            except Exception:
                logging.getLogger("strongroom.rotation").exception("reaping idle function workers failed")

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            workers = [w for pool in self._idle.values() for w in pool] + list(self._busy)
            self._idle.clear()
            self._busy.clear()
            pool = self._pool
            self._pool = None
        for worker in workers:
            worker.kill()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
