"""The ceiling: a fixed-body ASGI app on the exact server stack strongroom runs on.

``uvicorn bench.ceiling:app ...`` runs it in one process. ``python bench/ceiling.py --port P
--workers N`` runs it as ``strongroom serve --workers N`` runs strongroom: N processes forked
from a parent, each with its own SO_REUSEPORT socket on the port (the bare-ASGI anchor beside
strongroom's N-worker figures). SIGTERM stops them all.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

BODY = b'{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-AbCdEf","Name":"bench"}'
HEADERS = [(b"content-type", b"application/x-amz-json-1.1"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    import uvicorn

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from strongroom.server.listen import bind_workers

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    opts = parser.parse_args()
    children = []
    for sock in bind_workers("127.0.0.1", opts.port, opts.workers):
        pid = os.fork()
        if pid == 0:
            config = uvicorn.Config(
                app, loop="uvloop", http="httptools", lifespan="off", access_log=False, log_level="warning"
            )
            uvicorn.Server(config).run(sockets=[sock])
            os._exit(0)
        children.append(pid)
    signal.signal(signal.SIGTERM, lambda *_: [os.kill(pid, signal.SIGTERM) for pid in children])
    for pid in children:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
