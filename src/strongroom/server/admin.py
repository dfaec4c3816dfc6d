"""The operator endpoints under ``/_strongroom/``: not AWS's API, not signed, not audited.

``GET /_strongroom/health`` (alive) answers 200 ``{"status": "ok", "version": ..., ...}`` once
start-up is complete (503 ``starting`` before, and while the server stops), with what the
application's ``health`` callable adds.

``GET /_strongroom/ready`` (ready for traffic) answers 200 ``{"status": "ready", "checks": {...}}``
when every check passes, else 503 ``{"status": "not ready", "checks": {...}}`` naming what failed:
``storage`` (a query reaches the database), ``keys`` (the keyring's active master key is loaded),
``schema`` (the database's schema is this version's). A load balancer sends traffic on 200 only.

``POST /_strongroom/reset`` empties the store in dev mode only. Anything else is 404.
(``/_strongroom/metrics`` is answered by the application itself: it is signed and authorized.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from strongroom import __version__
from strongroom.server.pipeline import Send

__all__ = ["admin"]


async def admin(
    path: str,
    method: str,
    send: Send,
    *,
    ready: bool,
    health: Callable[[], dict[str, Any]],
    reset: Callable[[], Awaitable[None]] | None,
    readiness: Callable[[], Awaitable[dict[str, str]]] | None = None,
) -> None:
    """Answer one operator request; ``reset`` is None unless the server runs in dev mode."""
    if path == "/_strongroom/health" and method == "GET":
        status = 200 if ready else 503
        payload = {"status": "ok" if ready else "starting", "version": __version__, **health()}
    elif path == "/_strongroom/ready" and method == "GET":
        checks = await readiness() if ready and readiness is not None else {}
        if not ready:
            checks["server"] = "starting or stopping"
        ok = ready and all(v == "ok" for v in checks.values())
        status = 200 if ok else 503
        payload = {"status": "ready" if ok else "not ready", "checks": checks}
    elif path == "/_strongroom/reset" and method == "POST" and reset is not None:
        await reset()
        status, payload = 200, {"reset": True}
    else:
        status, payload = 404, {"message": "Not found"}
    body = orjson.dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
