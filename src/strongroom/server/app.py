"""The ASGI application: the request pipeline, its lifespan and the operator endpoints.

Every AWS API request goes through one ordered list of steps, the same for every service and
wire protocol, listed and implemented in :mod:`strongroom.server.pipeline`: read headers, route,
authenticate the headers, read the body, verify the signature, fair share, parse, authorize
(identity policies here; a call on one secret on its resource, inside the operation's read
transaction), call (a Secrets Manager write with its audit record in its own transaction),
audit (fail closed), serialize. The wire protocols differ only behind
:class:`~strongroom.protocol.wire.WireProtocol`.

Edge limits (docs/security.md, "The server's edge"): a request is answered without reading its
body when its headers do not authenticate (an unsigned 70 MB upload costs its headers, not 70 MB
of memory); bodies are capped per operation at AWS's limits; at most ``LARGE_BODY_SLOTS`` bodies
over 1 MiB are read at once (:mod:`strongroom.server.bodies`); each principal has its share of
the expensive calls (:mod:`strongroom.server.limiter`); slow headers and bodies are cut off by the
connection (server/http.py).

Paths under ``/_strongroom/`` are the operator's (:mod:`strongroom.server.admin`);
``/_strongroom/metrics`` among them is signed and authorized (:meth:`App.metrics_endpoint`). Paths
under ``/console/`` are the web console's (:mod:`strongroom.server.console`), whose every action is
a request through this same pipeline.

Plain ASGI, no framework: the hot path is a few dictionary look-ups and awaits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from strongroom.audit import AuditTrail
from strongroom.audit import new_id as new_request_id
from strongroom.auth.authorizer import Authorizer
from strongroom.auth.sigv4 import SigV4Verifier, index_headers
from strongroom.errors import AWSError
from strongroom.protocol.wire import WireRequest
from strongroom.server.admin import admin
from strongroom.server.bodies import ClientGone, Receive
from strongroom.server.limiter import EXPENSIVE_RATE
from strongroom.server.metrics import Metrics
from strongroom.server.pipeline import Pipeline, Send, Service

__all__ = ["App"]

log = logging.getLogger("strongroom.server")


class App(Pipeline):
    """The pipeline over ``services`` (the first answers a request that names no service), as
    an ASGI application with its start-up, shut-down and operator endpoints."""

    def __init__(
        self,
        *,
        services: list[Service],
        verifier: SigV4Verifier,
        dev: bool = False,
        account_id: str,
        max_body_bytes: int = 1024 * 1024,
        on_startup: Callable[[], Awaitable[None]] | None = None,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
        on_reset: Callable[[], Awaitable[None]] | None = None,
        health: Callable[[], dict[str, Any]] | None = None,
        readiness: Callable[[], Awaitable[dict[str, str]]] | None = None,
        metrics: Metrics | None = None,
        audit: AuditTrail | None = None,
        authorizer: Authorizer | None = None,
        expensive_rate: float = EXPENSIVE_RATE,
    ) -> None:
        super().__init__(
            json_services={s.protocol.target_prefix: s for s in services if s.protocol.found_by == "target"},
            rest_services=[s for s in services if s.protocol.found_by == "route"],
            query_services={s.signing_name: s for s in services if s.protocol.found_by == "scope"},
            default=services[0],
            verifier=verifier,
            dev=dev,
            account_id=account_id,
            max_body_bytes=max_body_bytes,
            audit=audit,
            authorizer=authorizer,
            expensive_rate=expensive_rate,
        )
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown
        self.on_reset = on_reset
        self.health = health or (dict)
        self.readiness = readiness
        self.metrics = metrics
        if metrics is not None:
            self.observe = metrics.observe
        self.ready = False
        # The web console (server/console), set by build(): its pages call this pipeline.
        self.console: Callable[[dict[str, Any], Receive, Send], Awaitable[None]] | None = None

    # ASGI entry ---------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            try:
                path = scope["path"]
                if path == "/_strongroom/metrics" and self.metrics is not None:
                    await self.metrics_endpoint(scope, send)
                elif path.startswith("/_strongroom/"):
                    reset = self.on_reset if self.dev else None
                    await admin(
                        path,
                        scope["method"],
                        send,
                        ready=self.ready,
                        health=self.health,
                        reset=reset,
                        readiness=self.readiness,
                    )
                elif self.console is not None and (path == "/console" or path.startswith("/console/")):
                    await self.console(scope, receive, send)
                else:
                    await self.handle(scope, receive, send)
            except ClientGone:
                return
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.on_startup is not None:
                        await self.on_startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                self.ready = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.ready = False
                if self.on_shutdown is not None:
                    await self.on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # The metrics ---------------------------------------------------------------------------

    async def metrics_endpoint(self, scope: dict[str, Any], send: Send) -> None:
        """``GET /_strongroom/metrics``: SigV4-signed for the service ``strongroom`` (any region),
        and allowed ``strongroom:GetMetrics`` on ``*`` by the caller's policies (an account's
        root key always is). The body is not read: a scrape has none, and its signature is
        checked over an empty one. Refusals are AWS-style JSON errors, 403 when the signature is
        good but the policy says no. Scrapes are not recorded in the audit trail."""
        assert self.metrics is not None
        request_id = new_request_id()
        try:
            if scope["method"] != "GET":
                raise AWSError("MethodNotAllowed", "The metrics are read with GET.", 405)
            pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
            request = WireRequest(
                "GET",
                (scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
                scope.get("query_string", b"").decode("latin-1"),
                pairs,
                index_headers(pairs),
            )
            if not self.dev:
                pending = self.verifier.prepare(request.method, request.path, request.query, request.headers)
                if pending.service != "strongroom":
                    raise AWSError(
                        "InvalidSignatureException", "Credential should be scoped to correct service: 'strongroom'. "
                    )
                verified = self.verifier.finish(pending, b"")
                ctx = self.context(verified, request_id, scope, request.headers)
                authorizer = self.authorizer
                if authorizer is not None and not authorizer.privileged(ctx, "strongroom"):
                    await authorizer.db.read(
                        lambda tx: authorizer.decide(
                            tx, ctx, "strongroom:GetMetrics", "*", ctx.account_id, [], {}, "strongroom"
                        )
                    )
            accept = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"accept"), None)
            # Reading the gauges may query the database: off the event loop.
            body, content_type = await asyncio.to_thread(self.metrics.render, accept)
            status = 200
        except AWSError as err:
            status = 403 if err.code == "AccessDeniedException" else err.status
            body = orjson.dumps({"__type": err.code, "Message": err.message})
            content_type = "application/json"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-amzn-requestid", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
