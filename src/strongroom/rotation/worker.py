"""The process a function runs in: ``python -m strongroom.rotation.worker HANDLER [CODE_DIR [SITE_DIR]]``.

It imports nothing from strongroom: in the sandbox (rotation/sandbox.py) this file alone is the
bootstrap, at ``/var/rapid/bootstrap.py``, with the function's code at ``CODE_DIR`` (``/var/task``)
and the server's site-packages (boto3, pymysql, psycopg) at ``SITE_DIR`` (``/var/runtime``).
With ``SITE_DIR`` given it also caps processes and open files (``RLIMIT_NPROC``,
``RLIMIT_NOFILE``) before the function's code loads: it then runs as the sandbox's own user,
whose process count is the sandbox's alone.

It imports the handler once (``module.function``, from ``CODE_DIR`` for uploaded zips, or a
built-in ``strongroom.rotation.builtin.*`` module) and then serves invocations, one JSON line in
on stdin, one JSON line out on the original stdout, until stdin closes. Its first line out,
``{"ready": true}``, says the handler is loaded (or failed to load): the server counts the time
before it as Lambda's init phase, not against the function's timeout. What the function prints
or logs is captured per invocation (its first million characters) and returned with the answer,
like Lambda's log stream, and never reaches the server's own log. Bytes written to file
descriptor 1 by other means (``os.write``, child processes) go where stderr goes, never into
the answers.

Answer: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"errorType", "errorMessage",
"stackTrace"}}``, each with ``"logs"``.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import resource
import site
import sys
import time
import traceback
import uuid
from typing import Any

# Lambda's quotas: 1,024 file descriptors; processes and threads capped lower than Lambda's 1,024
# because a function here shares the server's machine (a fork bomb stops at this many).
MAX_OPEN_FILES = 1024
MAX_PROCESSES = 128  # rotation/sandbox.py's MAX_PROCESSES (for a pids cgroup) too


class _Context:
    """What Lambda's Python runtime passes as ``context``."""

    def __init__(self, deadline: float, request_id: str) -> None:
        env = os.environ
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = env.get("STRONGROOM_FUNCTION_ARN", "")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.aws_request_id = request_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


class _Capture(io.TextIOBase):
    """sys.stdout / sys.stderr / the root log handler's stream, during an invocation.

    Keeps the first ``limit`` characters a function prints (then one line saying the rest was
    dropped), counted as they come: a function printing megabytes neither slows down with every
    line nor sends them all to the server."""

    limit = 1_000_000

    def __init__(self) -> None:
        self.buffer_: list[str] = []
        self.size = 0
        self.dropped = 0

    def write(self, text: str) -> int:
        room = self.limit - self.size
        if len(text) <= room:
            self.buffer_.append(text)
            self.size += len(text)
        else:
            if room > 0:
                self.buffer_.append(text[:room])
                self.size += room
            self.dropped += len(text) - max(room, 0)
        return len(text)

    def note(self, text: str) -> None:
        """The runtime's own lines ([ERROR], END, REPORT): kept even when the function's output was cut."""
        self._mark_cut()
        self.buffer_.append(text + "\n")

    def take(self) -> str:
        self._mark_cut()
        text = "".join(self.buffer_)
        self.buffer_.clear()
        self.size = 0
        return text

    def _mark_cut(self) -> None:
        if self.dropped:
            self.buffer_.append(f"\n[output truncated: {self.dropped} more characters dropped]\n")
            self.dropped = 0


def _confine(site_dir: str) -> None:
    """Sandboxed: the site-packages the function may import, and its process and file limits."""
    site.addsitedir(site_dir)
    resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))
    resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_OPEN_FILES, MAX_OPEN_FILES))


def _function_frames(exc: BaseException) -> list[str]:
    """The traceback below the runtime's own frame, as Lambda's ``stackTrace`` shows it: the
    function's frames (``/var/task/...``) and the libraries it called, never this bootstrap."""
    tb = exc.__traceback__
    return traceback.format_tb(tb.tb_next if tb is not None else None)


class _LambdaFormatter(logging.Formatter):
    """Lambda's Python runtime's log line: ``[LEVEL]<tab>UTC time<tab>request id<tab>message``,
    the request id being the current invocation's (the one START, END and REPORT name)."""

    request_id = ""

    def __init__(self) -> None:
        super().__init__(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"
        )
        self.converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        record.aws_request_id = self.request_id
        return super().format(record)


def _error_lines(exc: BaseException) -> str:
    """An unhandled error as Lambda's runtime logs it: ``[ERROR] Type: message`` and the traceback
    of the function's frames below it."""
    frames = "".join(_function_frames(exc)).rstrip("\n")
    head = f"[ERROR] {type(exc).__name__}: {exc}"
    return f"{head}\nTraceback (most recent call last):\n{frames}" if frames else head


def _load(handler: str, code_dir: str | None) -> Any:
    if code_dir:
        sys.path.insert(0, code_dir)
    module_name, _, function = handler.rpartition(".")
    if ":" in handler:
        module_name, function = handler.split(":", 1)
    module = importlib.import_module(module_name)
    return getattr(module, function)


def main() -> None:
    protocol_out = os.fdopen(os.dup(1), "w", buffering=1)
    # Only protocol_out answers the server: whatever else reaches file descriptor 1 (os.write,
    # a child process's output) goes where stderr goes, instead of into the answer stream.
    os.dup2(2, 1)
    capture = _Capture()
    sys.stdout = capture
    sys.stderr = capture
    handler_log = logging.StreamHandler(capture)
    formatter = _LambdaFormatter()
    handler_log.setFormatter(formatter)
    logging.getLogger().addHandler(handler_log)
    logging.getLogger().setLevel(logging.INFO)
    for noisy in ("botocore", "urllib3", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if len(sys.argv) > 3:
        _confine(sys.argv[3])
    try:
        function = _load(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
        load_error = None
    except Exception as exc:  # noqa: BLE001 - reported on every invocation, as Lambda does
        function = None
        load_error = {
            "errorType": "Runtime.ImportModuleError",
            "errorMessage": f"Unable to import module '{sys.argv[1]}': {exc}",
            "stackTrace": [],
        }
    protocol_out.write('{"ready": true}\n')
    for line in sys.stdin:
        request = json.loads(line)
        request_id = request.get("request_id") or str(uuid.uuid4())
        formatter.request_id = request_id
        print(f"START RequestId: {request_id} Version: $LATEST")
        started = time.time()
        if function is None:
            answer: dict[str, Any] = {"ok": False, "error": load_error}
        else:
            try:
                result = function(request["event"], _Context(started + request.get("timeout", 30), request_id))
                json.dumps(result)
                answer = {"ok": True, "result": result}
            except Exception as exc:  # noqa: BLE001 - the function's failure is the answer
                answer = {
                    "ok": False,
                    "error": {
                        "errorType": type(exc).__name__,
                        "errorMessage": str(exc),
                        "stackTrace": _function_frames(exc),
                    },
                }
                capture.note(_error_lines(exc))
        capture.note(f"END RequestId: {request_id}")
        capture.note(f"REPORT RequestId: {request_id}\tDuration: {(time.time() - started) * 1000:.2f} ms")
        answer["logs"] = capture.take()
        protocol_out.write(json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    main()
