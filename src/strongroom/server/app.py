"""The ASGI application: one ordered pipeline, readable top to bottom.

For an AWS API request (``POST /`` with ``X-Amz-Target``):

1. find the service and operation from ``X-Amz-Target`` (a REST route, or the query's signature);
2. authenticate what the headers carry (SigV4 :meth:`~SigV4Verifier.prepare`: key, scope, time,
   signed headers), so that nothing is read before it is authenticated;
3. read the body, refusing one over the operation's limit (AWS's), one slot per large body;
4. finish authentication: the signature over the body;
5. an expensive call past its principal's share is throttled (:class:`PrincipalLimiter`); parse
   and validate the parameters against botocore's model;
6. authorize (identity and resource policies);
7. dispatch to the operation;
8. audit (fail closed), then serialize the answer, or the AWS-style error.

Edge limits (docs/security.md, "The server's edge"): a request is answered without reading its
body when its headers do not authenticate (an unsigned 70 MB upload costs its headers, not 70 MB
of memory); bodies are capped per operation at AWS's limits; at most ``LARGE_BODY_SLOTS`` bodies
over 1 MiB are read at once (others wait for a slot, their bytes held back by TCP); slow headers
and bodies are cut off by the connection (server/http.py).

Anything unexpected becomes ``InternalServiceError`` (HTTP 500) with the request id, and is logged
with the operation name and request id only: never parameters, never a value.

Plain ASGI, no framework: the hot path is a few dictionary look-ups and awaits.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from strongroom import __version__
from strongroom.audit import AuditTrail, api_call_record, is_read_only
from strongroom.audit import new_id as new_request_id
from strongroom.auth.authorizer import Authorizer
from strongroom.auth.principal import ROOT, Credential, VerifiedRequest
from strongroom.auth.sigv4 import Headers, PendingRequest, SigV4Verifier, index_headers
from strongroom.context import RequestContext
from strongroom.errors import AWSError
from strongroom.protocol.query import QueryProtocol
from strongroom.protocol.rest_json import RestJSONProtocol
from strongroom.store import Unstorable, WriteHook, write_hook

__all__ = ["App", "PrincipalLimiter", "Service"]

log = logging.getLogger("strongroom.server")

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Handler = Callable[[RequestContext, dict[str, Any]], Awaitable[dict[str, Any]]]

_JSON_HEADERS = [(b"content-type", b"application/x-amz-json-1.1")]


class _ClientGone(asyncio.CancelledError):
    """The client closed the connection before its body arrived: no one to answer, nothing to log
    (a plain CancelledError reaching uvicorn is logged as an error with its traceback)."""


def _pairs(scope: dict[str, Any]) -> list[tuple[str, str]]:
    """The request's headers as text, in the order they came."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]


def _headers(scope: dict[str, Any]) -> Headers:
    """The request's headers by lower-case name, read once."""
    return index_headers(_pairs(scope))


def _audit_unavailable(request_id: str) -> AWSError:
    return AWSError("InternalServiceError", f"An internal error occurred. Request id: {request_id}", 500)


def _too_large(limit: int, service: Service | None = None, operation: str | None = None) -> AWSError:
    if service is not None and service.rest and operation is not None:  # Lambda's own words
        return AWSError(
            "RequestEntityTooLargeException",
            f"Request must be smaller than {limit} bytes for the {operation} operation",
            413,
        )
    return AWSError("RequestEntityTooLargeException", f"Request body is larger than {limit} bytes.", 413)


# A body over this size waits for one of LARGE_BODY_SLOTS before it is read: the memory a burst
# of uploads can take is bounded by the slots (2 x 70 MB for Lambda code), not by the callers.
LARGE_BODY = 1024 * 1024
LARGE_BODY_SLOTS = 2
LARGE_BODY_WAIT_SECONDS = 30.0

# Calls that cost far more than a read of one secret: pages of many secrets, batches, functions
# run or stored, audit searches. Each principal may have EXPENSIVE_PER_PRINCIPAL of them in
# flight, and start EXPENSIVE_RATE a second (bursts of as many); past that, AWS's throttling
# answer (clients retry it with back-off). EXPENSIVE_RATE is AWS's own quota for ListSecrets and
# BatchGetSecretValue (100 a second, per account and region there). Calls whose cost has a small
# bound (a password of at most 4,096 characters, one secret's versions) are not in the set.
EXPENSIVE = {
    "secretsmanager": frozenset({"ListSecrets", "BatchGetSecretValue"}),
    "lambda": frozenset({"Invoke", "CreateFunction", "UpdateFunctionCode", "ListFunctions"}),
    "cloudtrail": frozenset({"LookupEvents"}),
}
EXPENSIVE_PER_PRINCIPAL = 4
EXPENSIVE_RATE = 100.0


def _throttled(service: Service) -> AWSError:
    if service.rest:  # Lambda
        return AWSError("TooManyRequestsException", "Rate exceeded", 429)
    return AWSError("ThrottlingException", "Rate exceeded", 400)


class PrincipalLimiter:
    """Each principal's share of the expensive work: at most ``limit`` calls in flight, and a
    token bucket of ``rate`` calls a second (``rate`` at once after a pause).

    Both are needed: a call that waits (a function run in a thread, a PostgreSQL read, the audit
    write) is bounded by the count in flight; a call that runs on the event loop from start to
    end (a SQLite page of secrets) is never "in flight" beside another, and one principal's
    hundreds of them queued on the loop would delay everyone, so their rate is bounded too.
    A refused call costs its authentication only. No await, no lock (one event loop).
    """

    __slots__ = ("_clock", "_state", "limit", "rate")

    def __init__(self, limit: int, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.rate = rate
        self._state: dict[str, list[float]] = {}  # principal -> [in flight, tokens, when counted]
        self._clock = clock

    def acquire(self, principal: str) -> bool:
        now = self._clock()
        state = self._state.get(principal)
        if state is None:
            if len(self._state) > 100_000:  # principals with nothing in flight start afresh
                self._state = {k: v for k, v in self._state.items() if v[0]}
            state = self._state[principal] = [0.0, self.rate, now]
        tokens = min(self.rate, state[1] + (now - state[2]) * self.rate)
        state[2] = now
        if state[0] >= self.limit or tokens < 1.0:
            state[1] = tokens
            return False
        state[0] += 1
        state[1] = tokens - 1.0
        return True

    def release(self, principal: str) -> None:
        self._state[principal][0] -= 1


class Service:
    """An AWS service served at this endpoint: its protocol and its operation handlers."""

    def __init__(
        self,
        signing_name: str,
        protocol: Any,
        handlers: dict[str, Handler],
        max_body_bytes: int | None = None,
        body_limits: dict[str, int] | None = None,
    ) -> None:
        """``body_limits``: the largest request body per operation (AWS's); others get
        ``max_body_bytes``, or the application's limit."""
        self.signing_name = signing_name
        self.protocol = protocol
        self.handlers = handlers
        self.max_body_bytes = max_body_bytes
        self.body_limits = body_limits or {}
        self.expensive = EXPENSIVE.get(signing_name, frozenset())
        self.rest = isinstance(protocol, RestJSONProtocol)
        self.query = isinstance(protocol, QueryProtocol)


class App:
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
        audit: AuditTrail | None = None,
        authorizer: Authorizer | None = None,
    ) -> None:
        self.audit = audit
        self.authorizer = authorizer
        self.by_prefix = {s.protocol.target_prefix: s for s in services if not s.rest and not s.query}
        self.rest_services = [s for s in services if s.rest]
        self.query_services = {s.signing_name: s for s in services if s.query}
        self.verifier = verifier
        self.dev = dev
        self.account_id = account_id
        self.max_body_bytes = max_body_bytes
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown
        self.on_reset = on_reset
        self.health = health or (dict)
        self.ready = False
        self._default = services[0]
        # Requests no route or target claims are read as the query protocol; these answer instead
        # when the signature names a service that speaks another protocol.
        self._by_signing_name = {s.signing_name: s for s in services if not s.query}
        self.limiter = PrincipalLimiter(EXPENSIVE_PER_PRINCIPAL, EXPENSIVE_RATE)
        self._large_bodies: asyncio.Semaphore | None = None  # made on first use, in the server's loop

    # ASGI entry ---------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            try:
                await self.http(scope, receive, send)
            except _ClientGone:
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

    async def http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        path = scope["path"]
        method = scope["method"]
        if path == "/" and method == "POST":  # JSON or query protocol: no REST route can match "/"
            if self.query_services and not any(k == b"x-amz-target" for k, _ in scope["headers"]):
                await self.http_query(scope, receive, send)
            else:
                await self.http_json(scope, receive, send)
            return
        if path.startswith("/_strongroom/"):
            await self.admin(path, method, receive, send)
            return
        # Routes match the path as sent (route() decodes each parameter once): on the decoded
        # path a function name holding "/" (%2F) would match another operation's route.
        raw_path = scope.get("raw_path")
        rest_path = raw_path.decode("latin-1") if raw_path else path
        for service in self.rest_services:
            try:
                found = service.protocol.route(method, rest_path)
            except AWSError as err:
                await self.respond_rest(send, service, err, str(uuid.uuid4()))
                return
            if found is not None:
                await self.http_rest(scope, receive, send, service, *found)
                return
        if self.query_services and not any(k == b"x-amz-target" for k, _ in scope["headers"]):
            await self.http_query(scope, receive, send)
            return
        await self.http_json(scope, receive, send)

    async def http_query(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """The same pipeline for a query-protocol service (IAM, STS), chosen by the signature's scope."""
        request_id = new_request_id()
        method = scope["method"]
        service = next(iter(self.query_services.values()))
        try:
            headers = _headers(scope)
            _, _, signing_name = self.verifier.identify(headers)
            if signing_name not in self.query_services and signing_name in self._by_signing_name:
                await self.respond_unrouted(
                    send, self._by_signing_name[signing_name], method, scope["path"], request_id
                )
                return
            service = self.query_services.get(signing_name, service)
            pending = self.pre_authenticate(method, scope, headers, service)
            raw = await self.read_body(scope, receive, self.max_body_bytes)
            verified = self.authenticated(pending, raw)
            form = service.protocol.form(raw, scope.get("query_string", b"").decode("latin-1"))
            operation = service.protocol.operation_for(form)
            if operation is None:
                raise AWSError("UnknownOperationException", "The request names no Action.")
            ctx = self.context(verified, request_id, scope, headers)
            result = await self.audited(ctx, service, operation, lambda p: service.protocol.parse(operation, form))
            response = service.protocol.serialize(operation, result, request_id)
        except AWSError as err:
            response = service.protocol.serialize_error(err, request_id)
        except Exception:
            log.exception("internal error in request %s", request_id)
            err = AWSError("ServiceFailure", f"An internal error occurred. Request id: {request_id}", 500)
            response = service.protocol.serialize_error(err, request_id)
        await self.send_response(send, response.status, response.headers, response.body, request_id)

    async def http_json(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        method = scope["method"]
        service = self._default
        status, body = 400, b""
        try:
            headers = _headers(scope)
            targets = headers.get("x-amz-target")
            if targets is not None and len(targets) > 1:  # which one? Refused rather than guessed
                raise AWSError("UnknownOperationException", "The request has more than one X-Amz-Target header.")
            target = None if targets is None else targets[0]
            if method != "POST":
                raise AWSError(
                    "UnknownOperationException",
                    f"The method {method[:20]} is not supported: requests are "
                    "POST with an X-Amz-Target header naming the operation.",
                )
            if target is None:
                raise AWSError(
                    "UnknownOperationException", "The request has no X-Amz-Target header naming the operation."
                )
            prefix = target.rpartition(".")[0]
            service = self.by_prefix.get(prefix, service)
            operation = service.protocol.operation_for_target(target)  # 1. route
            pending = self.pre_authenticate(method, scope, headers, service)  # 2. authenticate headers
            raw = await self.read_body(scope, receive, self.max_body_bytes)  # 3. read
            verified = self.authenticated(pending, raw)  # 4. signature
            ctx = self.context(verified, request_id, scope, headers)
            result = await self.audited(
                ctx,
                service,
                operation,  # 8. audit, around:
                lambda p: service.protocol.parse(operation, raw),
            )  # 5. parse
            status, body = 200, service.protocol.serialize(operation, result)  # 8. serialize
        except AWSError as err:
            status, body = err.status, service.protocol.serialize_error(err)
        except Exception:
            log.exception("internal error in request %s", request_id)
            err = AWSError("InternalServiceError", f"An internal error occurred. Request id: {request_id}", 500)
            status, body = 500, service.protocol.serialize_error(err)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": _JSON_HEADERS
                + [(b"x-amzn-requestid", request_id.encode()), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def http_rest(
        self,
        scope: dict[str, Any],
        receive: Receive,
        send: Send,
        service: Service,
        operation: str,
        path_params: dict[str, str],
    ) -> None:
        """The same pipeline for a REST-JSON service (Lambda): routed by method and path."""
        request_id = new_request_id()
        method = scope["method"]
        try:
            pairs = _pairs(scope)  # the REST protocol reads its header members from these
            headers = index_headers(pairs)
            pending = self.pre_authenticate(method, scope, headers, service)
            limit = service.body_limits.get(operation) or service.max_body_bytes or self.max_body_bytes
            raw = await self.read_body(scope, receive, limit, service, operation)
            verified = self.authenticated(pending, raw)
            query = scope.get("query_string", b"").decode("latin-1")
            ctx = self.context(verified, request_id, scope, headers)
            result = await self.audited(
                ctx, service, operation, lambda p: service.protocol.parse(operation, path_params, query, pairs, raw)
            )
            response = service.protocol.serialize(operation, result)
        except AWSError as err:
            await self.respond_rest(send, service, err, request_id)
            return
        except Exception:
            log.exception("internal error in request %s", request_id)
            err = AWSError("ServiceException", f"An internal error occurred. Request id: {request_id}", 500)
            await self.respond_rest(send, service, err, request_id)
            return
        await self.send_response(send, response.status, response.headers, response.body, request_id)

    async def respond_unrouted(self, send: Send, service: Service, method: str, path: str, request_id: str) -> None:
        """UnknownOperationException in the wire format of the service the request was signed for."""
        err = AWSError(
            "UnknownOperationException", f"No {service.signing_name} operation matches {method[:20]} {path[:200]}."
        )
        if service.rest:
            await self.respond_rest(send, service, err, request_id)
        else:
            await self.send_response(send, err.status, _JSON_HEADERS, service.protocol.serialize_error(err), request_id)

    async def respond_rest(self, send: Send, service: Service, err: AWSError, request_id: str) -> None:
        response = service.protocol.serialize_error(err)
        await self.send_response(send, response.status, response.headers, response.body, request_id)

    @staticmethod
    async def send_response(
        send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, request_id: str
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": headers
                + [(b"x-amzn-requestid", request_id.encode()), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def audited(
        self, ctx: RequestContext, service: Service, operation: str, parse: Callable[[None], dict[str, Any]]
    ) -> dict[str, Any]:
        """:meth:`_audited`, within its principal's share when the call is an expensive one.

        A throttled call is refused before it is parsed and is not recorded in the trail (a
        flood's surplus costs no writes); what it was refused is the client's to see.
        """
        if operation not in service.expensive:
            return await self._audited(ctx, service, operation, parse)
        principal = ctx.principal_arn  # 5. fair share
        if not self.limiter.acquire(principal):
            raise _throttled(service)
        try:
            return await self._audited(ctx, service, operation, parse)
        finally:
            self.limiter.release(principal)

    async def _audited(
        self, ctx: RequestContext, service: Service, operation: str, parse: Callable[[None], dict[str, Any]]
    ) -> dict[str, Any]:
        """Parse, authorize and dispatch one call, and record it in the audit trail (fail closed).

        The answer leaves only after its record is committed: a read whose record cannot be
        written does not return its secret, and writes are refused while the trail is failing.
        """
        params: dict[str, Any] = {}
        result: dict[str, Any] | None = None
        error: AWSError | None = None
        committed: list[dict[str, Any]] = []  # a record written with the call's write transaction
        try:
            params = parse(None)  # 4. parse
            ctx = RequestContext(
                ctx.account_id,
                ctx.region,
                ctx.principal_arn,
                ctx.request_id,
                ctx.source_ip,
                ctx.partition,
                ctx.user_agent,
                ctx.access_key_id,
                operation,
                params,
                self.authorizer,
                ctx.privilege,
                ctx.principal_id,
                ctx.role_arn,
            )  # dataclasses.replace costs several times more
            if self.audit is not None and not self.audit.healthy and not is_read_only(operation):
                raise _audit_unavailable(ctx.request_id)
            await self.authorize(ctx, service.signing_name, operation, params)  # 6. authorize
            hook = None
            if self.audit is not None and service.signing_name == "secretsmanager" and not is_read_only(operation):
                # A Secrets Manager write's record goes into the write's own transaction.
                hook = write_hook.set(self._record_in_tx(ctx, operation, params, committed))
            try:
                result = await service.handlers[operation](ctx, params)  # 7. dispatch
            except Unstorable:
                raise AWSError(
                    "InvalidParameterException", "The request contains a character (U+0000) that cannot be stored."
                ) from None
            finally:
                if hook is not None:
                    write_hook.reset(hook)
        except AWSError as err:
            error = err
        if self.audit is not None:  # 8. audit
            try:
                if error is None and committed:  # in the database with the write; now its JSON line
                    self.audit.append_file(committed[0])
                else:
                    await self.audit.record(
                        api_call_record(ctx, service.signing_name, operation, params, result, error)
                    )
            except Exception:  # noqa: BLE001 - fail closed: no record, no answer
                log.error("audit record for request %s could not be written; answer withheld", ctx.request_id)
                raise _audit_unavailable(ctx.request_id) from None
        if error is not None:
            raise error
        assert result is not None
        return result

    def _record_in_tx(
        self, ctx: RequestContext, operation: str, params: dict[str, Any], committed: list[dict[str, Any]]
    ) -> WriteHook:
        """The step that adds this call's record to its write transaction. The answer members come
        from what the transaction returned (a Secrets Manager write returns its answer there)."""
        audit = self.audit
        assert audit is not None

        class Record(WriteHook):
            def __call__(self, tx: Any, returned: Any) -> None:
                record = api_call_record(
                    ctx, "secretsmanager", operation, params, returned if isinstance(returned, dict) else None, None
                )
                audit.insert(tx, record)
                committed[:] = [record]  # PostgreSQL may run the transaction again: the last one counts

            def discard(self) -> None:
                committed.clear()  # rolled back: the call is recorded the usual way

        return Record()

    async def authorize(self, ctx: RequestContext, service: str, operation: str, params: dict[str, Any]) -> None:
        """IAM's decision for calls not about one secret (those are decided once it is found)."""
        authorizer = self.authorizer
        if authorizer is None or authorizer.privileged(ctx, service):
            return
        if service == "secretsmanager" and not authorizer.resource_less(operation):
            return
        await authorizer.db.read(lambda tx: authorizer.check_call(tx, ctx, service, operation, params))

    @staticmethod
    def context(verified: VerifiedRequest, request_id: str, scope: dict[str, Any], headers: Headers) -> RequestContext:
        agents = headers.get("user-agent")
        agent = "" if agents is None else agents[0][:1024]
        return RequestContext(
            account_id=verified.credential.account_id,
            region=verified.region,
            principal_arn=verified.credential.principal_arn,
            request_id=request_id,
            source_ip=(scope.get("client") or ("", 0))[0],
            user_agent=agent,
            access_key_id=verified.credential.access_key_id,
            privilege=verified.credential.privilege,
            principal_id=verified.credential.principal_id,
            role_arn=verified.credential.role_arn,
        )

    def pre_authenticate(
        self, method: str, scope: dict[str, Any], headers: Headers, service: Service
    ) -> PendingRequest | VerifiedRequest:
        """Everything the headers prove, before a byte of body is read (the signature waits for
        the body). In dev mode signatures are not checked: the request is verified already."""
        verified: PendingRequest | VerifiedRequest
        if self.dev:
            access_key_id, region, signing_name = self.verifier.identify(headers)
            credential = Credential(
                access_key_id,
                "",
                self.account_id,
                f"arn:aws:iam::{self.account_id}:root",
                privilege=ROOT,
                principal_id=self.account_id,
            )
            verified = VerifiedRequest(credential, region, signing_name)
            self.verifier.check_region(region)  # a typo is no new namespace in dev mode either
        else:
            raw_path = scope.get("raw_path") or scope["path"].encode()
            verified = self.verifier.prepare(
                method, raw_path.decode("latin-1"), scope.get("query_string", b"").decode("latin-1"), headers
            )
        if verified.service != service.signing_name:
            raise AWSError(
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{service.signing_name}'. ",
            )
        return verified

    def authenticated(self, pending: PendingRequest | VerifiedRequest, body: bytes) -> VerifiedRequest:
        if isinstance(pending, VerifiedRequest):
            return pending
        return self.verifier.finish(pending, body)

    async def read_body(
        self,
        scope: dict[str, Any],
        receive: Receive,
        limit: int,
        service: Service | None = None,
        operation: str | None = None,
    ) -> bytes:
        """The request's body, at most ``limit`` bytes. A body that may exceed ``LARGE_BODY`` is
        read only while it holds one of ``LARGE_BODY_SLOTS``; until then its bytes stay in the
        kernel (uvicorn stops reading a connection past 64 KiB the application has not taken)."""
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise AWSError("SerializationException", "Invalid Content-Length header.") from None
                if declared > limit:
                    await self._discard(receive, declared)
                    raise _too_large(limit, service, operation)
        if limit <= LARGE_BODY or (declared is not None and declared <= LARGE_BODY):
            return await self._read(receive, limit, service, operation)
        slots = self._large_bodies
        if slots is None:
            slots = self._large_bodies = asyncio.Semaphore(LARGE_BODY_SLOTS)
        try:
            await asyncio.wait_for(slots.acquire(), LARGE_BODY_WAIT_SECONDS)
        except TimeoutError:
            raise (
                AWSError("TooManyRequestsException", "Rate exceeded", 429)
                if service is not None and service.rest
                else AWSError("ThrottlingException", "Rate exceeded", 400)
            ) from None
        try:
            return await self._read(receive, limit, service, operation)
        finally:
            slots.release()

    async def _read(self, receive: Receive, limit: int, service: Service | None, operation: str | None) -> bytes:
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                if message.get("more_body", False):
                    await self._discard(receive, size)
                raise _too_large(limit, service, operation)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _discard(self, receive: Receive, declared: int) -> None:
        """Read and drop an oversized body, so the client reads our 413 instead of a broken pipe.

        Bodies far over the limit are not drained: the connection is closed after the answer.
        """
        if declared > 16 * self.max_body_bytes:
            return
        while True:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                return

    # Operator endpoints ---------------------------------------------------------------------

    async def admin(self, path: str, method: str, receive: Receive, send: Send) -> None:
        if path == "/_strongroom/health" and method == "GET":
            status = 200 if self.ready else 503
            payload = {"status": "ok" if self.ready else "starting", "version": __version__, **self.health()}
        elif path == "/_strongroom/reset" and method == "POST" and self.dev and self.on_reset is not None:
            await self.on_reset()
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
