"""The request pipeline in-process, without HTTP: where does one request's time go?

    .venv/bin/python bench/pipeline.py [--operation GetSecretValue] [--requests 20000] [--cprofile]
    py-spy record -o /tmp/gsv.svg -- .venv/bin/python bench/pipeline.py --requests 50000

It builds the application exactly as ``strongroom serve`` does (a temporary data directory,
SQLite, durable audit), creates one secret, signs one request with botocore's SigV4 signer and
replays it through the ASGI callable, awaiting each answer in turn. The figure is the cost of
strongroom's own pipeline per request (µs), the part HTTP parsing does not include.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from strongroom import config
from strongroom.server.build import build

KEY_ID, SECRET = "AKIAPROFILEPROFILE01", "profile/secret/key/0123456789abcdefghijk"


def _signed(target: str, body: dict[str, Any]) -> tuple[list[tuple[bytes, bytes]], bytes]:
    data = orjson.dumps(body)
    request = AWSRequest(
        "POST",
        "http://127.0.0.1:8430/",
        data=data,
        headers={"X-Amz-Target": f"secretsmanager.{target}", "Content-Type": "application/x-amz-json-1.1"},
    )
    SigV4Auth(Credentials(KEY_ID, SECRET), "secretsmanager", "us-east-1").add_auth(request)
    headers = [(b"host", b"127.0.0.1:8430"), (b"user-agent", b"Boto3/1.44.5 profile")]
    headers += [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    headers.append((b"content-length", str(len(data)).encode()))
    return headers, data


async def _call(app: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], sent[1]["body"]


async def _lifespan(app: Any, kind: str) -> None:
    messages = [{"type": f"lifespan.{kind}"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else await asyncio.Event().wait()  # type: ignore[func-returns-value]

    async def send(message: dict[str, Any]) -> None:
        return None

    task = asyncio.create_task(app.lifespan(receive, send))
    await asyncio.sleep(0.05)
    task.cancel()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--operation", default="GetSecretValue")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--secrets", type=int, default=1, help="secrets to create first (ListSecrets pages 100)")
    parser.add_argument("--no-audit", action="store_true", help="leave the audit step out, to see its cost")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = config.Settings(data_dir=Path(tmp), admin_access_key_id=KEY_ID, admin_secret_access_key=SECRET)
        server = build(settings)
        app = server.app
        if args.no_audit:
            app.audit = None
        await _lifespan(app, "startup")
        status, body = await _call(
            app,
            *_signed("CreateSecret", {"Name": "profile/db", "SecretString": "x" * 64, "ClientRequestToken": "a" * 32}),
        )
        assert status == 200, body
        for i in range(1, args.secrets):
            status, answer = await _call(
                app,
                *_signed(
                    "CreateSecret",
                    {
                        "Name": f"profile/{i:07d}",
                        "SecretString": "y" * 32,
                        "Tags": [{"Key": "team", "Value": "a"}],
                        "Description": "a secret for the benchmark",
                        "ClientRequestToken": f"{i:032d}",
                    },
                ),
            )
            assert status == 200, answer
        request = {"MaxResults": 100} if args.operation == "ListSecrets" else {"SecretId": "profile/db"}
        headers, body = _signed(args.operation, request)
        status, answer = await _call(app, headers, body)
        assert status == 200, answer

        async def worker(n: int) -> None:
            for _ in range(n):
                await _call(app, headers, body)

        profiler = cProfile.Profile() if args.cprofile else None
        per = args.requests // args.concurrency
        if profiler:
            profiler.enable()
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(per) for _ in range(args.concurrency)))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        if profiler:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(45)
        done = per * args.concurrency
        print(
            f"{args.operation}: {done} requests in {elapsed:.2f}s: {elapsed / done * 1e6:.0f} µs/request, "
            f"{done / elapsed:,.0f}/s; CPU {cpu / done * 1e6:.0f} µs/request, all threads (pipeline only, no HTTP)"
        )
        await server.app.on_shutdown()  # type: ignore[misc]


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
