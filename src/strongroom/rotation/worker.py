"""The process a function runs in: ``python -m strongroom.rotation.worker HANDLER [CODE_DIR]``.

It imports the handler once (``module.function``, from ``CODE_DIR`` for uploaded zips, or a
built-in ``strongroom.rotation.builtin.*`` module) and then serves invocations, one JSON line in
on stdin, one JSON line out on the original stdout, until stdin closes. What the function prints
or logs is captured per invocation and returned with the answer, like Lambda's log stream, and
never reaches the server's own log.

Answer: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"errorType", "errorMessage",
"stackTrace"}}``, each with ``"logs"``.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import sys
import time
import traceback
import uuid
from typing import Any


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
    """sys.stdout / sys.stderr / the root log handler's stream, during an invocation."""

    def __init__(self) -> None:
        self.buffer_: list[str] = []

    def write(self, text: str) -> int:
        if sum(len(b) for b in self.buffer_) < 1_000_000:
            self.buffer_.append(text)
        return len(text)

    def take(self) -> str:
        text = "".join(self.buffer_)
        self.buffer_.clear()
        return text


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
    capture = _Capture()
    sys.stdout = capture
    sys.stderr = capture
    handler_log = logging.StreamHandler(capture)
    handler_log.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s\t%(message)s"))
    logging.getLogger().addHandler(handler_log)
    logging.getLogger().setLevel(logging.INFO)
    for noisy in ("botocore", "urllib3", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        function = _load(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
        load_error = None
    except Exception as exc:  # noqa: BLE001 - reported on every invocation, as Lambda does
        function = None
        load_error = {"errorType": "Runtime.ImportModuleError",
                      "errorMessage": f"Unable to import module '{sys.argv[1]}': {exc}", "stackTrace": []}
    for line in sys.stdin:
        request = json.loads(line)
        request_id = request.get("request_id") or str(uuid.uuid4())
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
                answer = {"ok": False, "error": {"errorType": type(exc).__name__, "errorMessage": str(exc),
                                                 "stackTrace": traceback.format_tb(exc.__traceback__)}}
                print(f"[ERROR] {type(exc).__name__}: {exc}")
        print(f"END RequestId: {request_id}")
        print(f"REPORT RequestId: {request_id}\tDuration: {(time.time() - started) * 1000:.2f} ms")
        answer["logs"] = capture.take()
        protocol_out.write(json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    main()
