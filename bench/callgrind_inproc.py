"""Instructions per GetSecretValue through the whole application, counted by callgrind.

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=OUT \\
        .venv/bin/python bench/callgrind_inproc.py 300
    grep ^totals OUT        # divide by 300

The application is built as ``serve`` builds it and driven in-process through its ASGI entry
(signature, policy, audit record and all; no sockets, no lifespan, so no background task adds to
the count), and callgrind instruments only the measured loop (``callgrind_control`` on this
process). Instruction counts do not move with the machine's load, so two trees compare exactly:
run it with ``PYTHONPATH=OTHER_TREE/src`` for the other one. Each call is its own audit batch.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from strongroom import config
from strongroom.server.build import build

KEY, SECRET = "AKIACALLGRINDTEST001", "callgrind/secret/key/0123456789abcdefghij"


def scope_of(target: str, body: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:8430/",
        data=json.dumps(body).encode(),
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"},
    )
    SigV4Auth(Credentials(KEY, SECRET), "secretsmanager", "us-east-1").add_auth(request)
    headers = [(k.lower().encode(), str(v).encode()) for k, v in request.headers.items()]
    headers += [(b"host", b"127.0.0.1:8430"), (b"content-length", str(len(request.body)).encode())]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8430),
        "scheme": "http",
    }
    return scope, request.body


async def call(app: Any, scope: dict[str, Any], body: bytes) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 200, sent


def instrument(on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())], capture_output=True)


async def main(count: int) -> None:
    data = tempfile.mkdtemp(prefix="bench-callgrind-")
    server = build(config.Settings(data_dir=Path(data), admin_access_key_id=KEY, admin_secret_access_key=SECRET))
    app = server.app
    app.ready = True
    body = {"Name": "bench", "SecretString": "x" * 100, "ClientRequestToken": str(uuid.uuid4())}
    await call(app, *scope_of("secretsmanager.CreateSecret", body))
    get = scope_of("secretsmanager.GetSecretValue", {"SecretId": "bench"})
    for _ in range(100):  # warm: caches, the audit files of this hour
        await call(app, *get)
    instrument(True)
    for _ in range(count):
        await call(app, *get)
    instrument(False)
    os._exit(0)  # callgrind writes its file at exit; nothing else needs closing


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
