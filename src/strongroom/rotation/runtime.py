"""Function runtime: warm worker processes running Lambda-style handlers.

A :class:`FunctionSpec` says what to run (handler, code directory, environment, timeout, memory).
Workers are kept warm per spec key (the function's ARN and code hash), reused one invocation at
a time, replaced when the code or configuration changes (the key changes), killed at their
timeout, and capped in memory (``RLIMIT_AS``). As on Lambda, a cold worker's start (the
interpreter, the handler's imports) is an init phase with a limit of its own (``INIT_TIMEOUT``,
or the function's timeout when that is longer), not counted in the function's timeout: the worker
says when it is ready. A worker lives at most ``max_age`` seconds, so its short-lived credentials
are always fresh.

``invoke`` blocks; the engine calls it from a thread.
"""

from __future__ import annotations

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
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FunctionSpec", "FunctionRuntime", "InvokeResult"]

# An answer line longer than this (the function's result and its capped logs) kills the worker.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
# Lambda's limit on the init phase (starting the runtime, importing the handler's module); a
# function whose timeout is longer gets that (a cold start never had less time than before).
INIT_TIMEOUT = 10.0


@dataclass(frozen=True)
class FunctionSpec:
    key: str                         # changes whenever code or configuration changes
    arn: str
    name: str
    handler: str
    code_dir: str | None = None
    timeout: float = 30.0
    memory_mb: int = 512
    environment: dict[str, str] = field(default_factory=dict)
    role: str | None = None          # the function's execution role; None for built-in rotators


@dataclass
class InvokeResult:
    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None
    logs: str = ""
    duration_ms: int = 0

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
        raise ValueError(f"CPU list {text!r} names no CPU" if not cpus else
                         f"CPU list {text!r} names CPUs this machine does not have: {sorted(unknown)}")
    return frozenset(cpus)


class _Worker:
    def __init__(self, spec: FunctionSpec, env: dict[str, str], cpus: frozenset[int] | None = None) -> None:
        args = [sys.executable, "-m", "strongroom.rotation.worker", spec.handler]
        if spec.code_dir:
            args.append(spec.code_dir)
        memory = spec.memory_mb * 1024 * 1024 + 512 * 1024 * 1024  # the interpreter's own share

        def limits() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if cpus:
                os.sched_setaffinity(0, cpus)

        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, preexec_fn=limits,
                                     cwd=spec.code_dir or None)
        self.started = time.monotonic()
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
        line, self._unread = buffer[:end + 1], buffer[end + 1:]
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

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def _runtime_error(worker: _Worker, spec: FunctionSpec) -> dict[str, str]:
    """Lambda's words for an invocation that ended without an answer."""
    code = worker.proc.returncode
    if worker.failure == "timeout":
        return {"errorType": "Sandbox.Timedout", "errorMessage": f"Task timed out after {spec.timeout:.2f} seconds"}
    if worker.failure == "init timeout":
        return {"errorType": "Sandbox.Timedout", "errorMessage": f"Init timed out after {worker.init_limit:.2f} seconds"}
    if worker.failure == "too large":
        return {"errorType": "Function.ResponseSizeTooLarge",
                "errorMessage": f"Response payload size exceeded maximum allowed payload size ({MAX_ANSWER_BYTES} bytes)."}
    if worker.failure == "invalid":
        return {"errorType": "Runtime.InvalidResponse", "errorMessage": "The runtime answered with an unreadable response."}
    if code is not None and code < 0:  # killed by a signal: the OOM killer, or the function itself
        name = (signal.strsignal(-code) or f"signal {-code}").lower()  # "killed", "segmentation fault"
        return {"errorType": "Runtime.ExitError", "errorMessage": f"Runtime exited with error: signal: {name}"}
    return {"errorType": "Runtime.ExitError", "errorMessage": f"Runtime exited with error: exit status {code}"}


class FunctionRuntime:
    def __init__(self, base_env: Callable[[FunctionSpec], dict[str, str]], max_age: float = 900.0,
                 on_invoke: Callable[[FunctionSpec, Any, InvokeResult, float], None] | None = None,
                 cpus: frozenset[int] | None = None) -> None:
        """``cpus``: the CPUs function workers run on (default: the server's). On AWS a rotation
        function runs in Lambda, not on Secrets Manager's hosts; here it can at least be kept off
        the cores that serve requests (``STRONGROOM_FUNCTION_CPUS``)."""
        self._base_env = base_env
        self._cpus = cpus
        self.on_invoke = on_invoke  # records every invocation (its logs kept, as Lambda keeps them)
        self._max_age = max_age
        self._idle: dict[str, list[_Worker]] = {}
        self._lock = threading.Lock()

    def _take(self, spec: FunctionSpec) -> _Worker:
        with self._lock:
            pool = self._idle.get(spec.key, [])
            while pool:
                worker = pool.pop()
                if worker.alive() and time.monotonic() - worker.started < self._max_age:
                    return worker
                worker.kill()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/tmp")}
        env.update(self._base_env(spec))
        env.update(spec.environment)
        return _Worker(spec, env, self._cpus)

    def _give_back(self, spec: FunctionSpec, worker: _Worker) -> None:
        with self._lock:
            stale = [k for k in self._idle if k.split("#", 1)[0] == spec.arn and k != spec.key]
            for key in stale:  # code or configuration changed: the old workers go
                for old in self._idle.pop(key):
                    old.kill()
            self._idle.setdefault(spec.key, []).append(worker)

    def invoke(self, spec: FunctionSpec, event: Any) -> InvokeResult:
        began = time.time()
        result = self._invoke(spec, event)
        if self.on_invoke is not None:
            try:
                self.on_invoke(spec, event, result, began)
            except Exception:  # noqa: BLE001 - a lost log line must not fail the invocation
                logging.getLogger("strongroom.rotation").exception("invocation log of %s not kept", spec.name)
        return result

    def _invoke(self, spec: FunctionSpec, event: Any) -> InvokeResult:
        started = time.monotonic()
        worker = self._take(spec)
        answer = worker.call({"event": event, "timeout": spec.timeout, "request_id": str(uuid.uuid4())},
                             spec.timeout)
        duration = int((time.monotonic() - started) * 1000)
        if answer is None:
            return InvokeResult(False, error=_runtime_error(worker, spec), duration_ms=duration)
        self._give_back(spec, worker)
        return InvokeResult(bool(answer.get("ok")), answer.get("result"), answer.get("error"),
                            answer.get("logs", ""), duration)

    def forget(self, arn: str) -> None:
        with self._lock:
            for key in [k for k in self._idle if k.split("#", 1)[0] == arn]:
                for worker in self._idle.pop(key):
                    worker.kill()

    def close(self) -> None:
        with self._lock:
            for pool in self._idle.values():
                for worker in pool:
                    worker.kill()
            self._idle.clear()
