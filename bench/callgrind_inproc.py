"""Instructions per GetSecretValue through the whole application, counted by callgrind.

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=OUT \\
        .venv/bin/python bench/callgrind_inproc.py 300
    grep ^totals OUT        # divide by 300

``--iam``: as an IAM user whose inline policy allows the read (the request is authorized by
evaluating that policy; the administrator key takes a shortcut).

The application is built as ``serve`` builds it and driven in-process through its ASGI entry
(signature, policy, audit record and all; no sockets, no lifespan, so no background task adds to
the count), and callgrind instruments only the measured loop (``callgrind_control`` on this
process). Instruction counts do not move with the machine's load, so two trees compare exactly:
run it with ``PYTHONPATH=OTHER_TREE/src`` for the other one. Each call is its own audit batch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import tempfile
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from strongroom import config
from strongroom.server.build import build

KEY, SECRET = "AKIACALLGRINDTEST001", "callgrind/secret/key/0123456789abcdefghij"


def signed_scope(
    service: str, data: bytes, headers: dict[str, str], credentials: Credentials | None = None
) -> tuple[dict[str, Any], bytes]:
    """The ASGI scope of a POST / signed for ``service``, and its body."""
    request = AWSRequest(method="POST", url="http://127.0.0.1:8430/", data=data, headers=headers)
    SigV4Auth(credentials or Credentials(KEY, SECRET), service, "us-east-1").add_auth(request)
    sent = [(k.lower().encode(), str(v).encode()) for k, v in request.headers.items()]
    sent += [(b"host", b"127.0.0.1:8430"), (b"content-length", str(len(data)).encode())]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": sent,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8430),
        "scheme": "http",
    }
    return scope, data


def scope_of(target: str, body: dict[str, Any], credentials: Credentials | None = None) -> tuple[dict[str, Any], bytes]:
    headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"}
    return signed_scope("secretsmanager", json.dumps(body).encode(), headers, credentials)


def iam_scope(params: dict[str, str]) -> tuple[dict[str, Any], bytes]:
    """An IAM query-protocol request signed with the administrator key."""
    data = urllib.parse.urlencode({**params, "Version": "2010-05-08"}).encode()
    return signed_scope("iam", data, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})


async def iam_reader(app: Any) -> Credentials:
    """An IAM user whose inline policy allows reading the secret (as bench.py's ``iam_user``)."""
    await call(app, *iam_scope({"Action": "CreateUser", "UserName": "bench-reader"}))
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-*",
            }
        ],
    }
    policy = {"Action": "PutUserPolicy", "UserName": "bench-reader", "PolicyName": "read"}
    await call(app, *iam_scope({**policy, "PolicyDocument": json.dumps(document)}))
    answer = await call(app, *iam_scope({"Action": "CreateAccessKey", "UserName": "bench-reader"}))
    key_id = re.search(rb"<AccessKeyId>([^<]+)<", answer).group(1).decode()  # type: ignore[union-attr]
    secret = re.search(rb"<SecretAccessKey>([^<]+)<", answer).group(1).decode()  # type: ignore[union-attr]
    return Credentials(key_id, secret)


async def call(app: Any, scope: dict[str, Any], body: bytes) -> bytes:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 200, sent
    return bytes(sent[1]["body"])


def instrument(on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())], capture_output=True)


async def main(count: int, iam: bool) -> None:
    data = tempfile.mkdtemp(prefix="bench-callgrind-")
    server = build(config.Settings(data_dir=Path(data), admin_access_key_id=KEY, admin_secret_access_key=SECRET))
    app = server.app
    app.ready = True
    body = {"Name": "bench", "SecretString": "x" * 100, "ClientRequestToken": str(uuid.uuid4())}
    await call(app, *scope_of("secretsmanager.CreateSecret", body))
    credentials = await iam_reader(app) if iam else None
    get = scope_of("secretsmanager.GetSecretValue", {"SecretId": "bench"}, credentials)
    for _ in range(100):  # warm: caches, the audit files of this hour
        await call(app, *get)
    instrument(True)
    for _ in range(count):
        await call(app, *get)
    instrument(False)
    os._exit(0)  # callgrind writes its file at exit; nothing else needs closing


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("count", type=int, nargs="?", default=300)
    parser.add_argument("--iam", action="store_true", help="as an IAM user with an identity policy")
    options = parser.parse_args()
    asyncio.run(main(options.count, options.iam))
