"""The request pipeline: one ordered list of steps, the same for every service and wire protocol.

Every AWS API request (JSON 1.1, REST-JSON and query alike) goes through these steps, in this
order, in :meth:`Pipeline.handle`: one straight-line function, each step a direct call marked
with its number. (A list of step objects awaited in a loop, LocalStack's handler chain, measured
about 3 µs more per request for ten steps: a few per cent of GetSecretValue's whole pipeline.)
The wire protocols differ only behind :class:`~strongroom.protocol.wire.WireProtocol`.

1. **read headers**: the request line and headers, decoded once (:class:`WireRequest`).
2. **route**: the service and the operation (:meth:`Pipeline.route`): a REST route (method and
   path), else the query protocol's service by the signature's scope when no ``X-Amz-Target``
   is sent, else JSON 1.1's ``X-Amz-Target``. A request signed for a service of another protocol
   is answered in that service's words. The query protocol's operation (``Action``) is in the
   body: it is found after step 5.
3. **authenticate the headers** (:meth:`Pipeline.pre_authenticate`, SigV4
   :meth:`~strongroom.auth.sigv4.SigV4Verifier.prepare`: key, scope, time, signed headers), so
   that nothing is read before it is authenticated: an unsigned 70 MB upload costs its headers.
4. **read the body** (:mod:`strongroom.server.bodies`), refused over the operation's limit
   (AWS's), one slot per large body.
5. **verify the signature** over the body (:meth:`Pipeline.authenticated`).
6. **fair share** (:mod:`strongroom.server.limiter`): an expensive call past its principal's share
   is throttled, before it is parsed and unrecorded.
7. **parse** and validate the parameters against botocore's model (``WireProtocol.parse``).
8. **authorize** the call (:meth:`Pipeline.authorize`): identity policies for calls not about one
   secret. A call on one secret is authorized **on the resource, inside the operation's read
   transaction**, once the secret (and its resource policy) is found: services/secretsmanager
   ``SecretsManager.authorize`` calls ``ctx.authz.check_secret`` (the authorizer travels on the
   request context, set in step 7's context).
9. **call** the operation's handler. A Secrets Manager write carries its **audit record in the
   write's own transaction** (:meth:`Pipeline.record_in_write_transaction`, set as the store's
   ``write_hook`` around the call): the write and its record commit together or not at all.
10. **audit** (fail closed): the record of every other call (reads, refusals, errors) is written
    before the answer leaves; the in-transaction record's JSON line is appended to the file.
    A read whose record cannot be written does not return its secret; while the trail is
    failing, writes are refused before they run.
11. **serialize** the answer, or the refusal (``WireProtocol.serialize`` / ``serialize_error``).

The trail records calls from step 7 on: a request refused in steps 1 to 6 (no such operation,
not authenticated, body too large, throttled) is answered without an audit record (a throttled
flood's surplus costs no writes).

An :class:`~strongroom.errors.AWSError` raised by any step becomes the protocol's error answer in
one place; anything else becomes the protocol's 500 (``internal_error_code``) with the request
id, logged with the request id only: never parameters, never a value.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from time import perf_counter
from typing import Any

from strongroom.audit import AuditTrail, api_call_record, is_read_only
from strongroom.audit import new_id as new_request_id
from strongroom.auth.authorizer import Authorizer
from strongroom.auth.principal import ROOT, Credential, VerifiedRequest
from strongroom.auth.sigv4 import Headers, PendingRequest, SigV4Verifier, index_headers
from strongroom.context import RequestContext
from strongroom.errors import AWSError
from strongroom.protocol.wire import WireProtocol, WireRequest
from strongroom.server.bodies import BodyReader, Receive
from strongroom.server.limiter import EXPENSIVE, EXPENSIVE_PER_PRINCIPAL, EXPENSIVE_RATE, PrincipalLimiter
from strongroom.store import Unstorable, WriteHook, write_hook

__all__ = ["Pipeline", "Send", "Service"]

log = logging.getLogger("strongroom.server")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Handler = Callable[[RequestContext, dict[str, Any]], Awaitable[dict[str, Any]]]


def _audit_unavailable(request_id: str) -> AWSError:
    return AWSError("InternalServiceError", f"An internal error occurred. Request id: {request_id}", 500)


class Service:
    """An AWS service served at this endpoint: its wire protocol and its operation handlers."""

    def __init__(
        self,
        signing_name: str,
        protocol: WireProtocol,
        handlers: Mapping[str, Handler],
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


Observer = Callable[[str, str | None, int, float, str, str, str], None]


class Pipeline:
    """The steps of the module's list, over the services of one endpoint.

    ``json_services`` are found by ``X-Amz-Target`` prefix, ``rest_services`` by route and
    ``query_services`` by the signature's scope (see :meth:`route`)."""

    def __init__(
        self,
        *,
        json_services: dict[str, Service],
        rest_services: list[Service],
        query_services: dict[str, Service],
        default: Service,
        verifier: SigV4Verifier,
        dev: bool,
        account_id: str,
        max_body_bytes: int,
        audit: AuditTrail | None,
        authorizer: Authorizer | None,
        expensive_rate: float = EXPENSIVE_RATE,
    ) -> None:
        self.by_prefix = json_services
        self.rest_services = rest_services
        self.query_services = query_services
        services = [*json_services.values(), *rest_services, *query_services.values()]
        self._default = default  # answers a JSON request that names no service
        # Requests no route or target claims are read as the query protocol; these answer instead
        # when the signature names a service that speaks another protocol.
        self._by_signing_name = {s.signing_name: s for s in services if s.signing_name not in query_services}
        self.verifier = verifier
        self.dev = dev
        self.account_id = account_id
        self.max_body_bytes = max_body_bytes
        self.audit = audit
        self.authorizer = authorizer
        self.limiter = PrincipalLimiter(EXPENSIVE_PER_PRINCIPAL, expensive_rate)
        self.bodies = BodyReader(max_body_bytes)
        # Called once per answered request: (service, operation or None, HTTP status, seconds,
        # request id, principal ARN or "", error code or ""). The metrics and the access log.
        self.observe: Observer | None = None

    async def handle(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """Steps 1 to 11 of the module's list, for one request."""
        started = perf_counter()
        request_id = new_request_id()
        service = self._default  # answers until the route step finds the service
        operation: str | None = None
        principal = error = ""
        try:
            pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]  # 1. read headers
            request = WireRequest(
                scope["method"],
                (scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
                scope.get("query_string", b"").decode("latin-1"),
                pairs,
                index_headers(pairs),
            )
            service, operation, refusal = self.route(request, scope["path"])  # 2. route
            if refusal is not None:
                raise refusal
            protocol = service.protocol
            pending = self.pre_authenticate(request, service)  # 3. authenticate the headers
            limit = service.body_limits.get(operation or "") or service.max_body_bytes or self.max_body_bytes
            request.body = await self.bodies.read_body(scope["headers"], receive, limit, protocol, operation)  # 4.
            verified = self.authenticated(pending, request.body)  # 5. verify the signature
            principal = verified.credential.principal_arn
            if operation is None:  # 2. route, the query protocol's Action (in the body)
                operation = protocol.find_operation(request)
                assert operation is not None
            ctx = self.context(verified, request_id, scope, request.headers)
            result = await self.call(ctx, service, operation, request)  # 6. to 10.
            response = protocol.serialize(operation, result, request_id)  # 11. serialize
        except AWSError as err:
            error = err.code
            response = service.protocol.serialize_error(err, request_id)
        except Exception:
            log.exception("internal error in request %s", request_id)
            code = error = service.protocol.internal_error_code
            surprise = AWSError(code, f"An internal error occurred. Request id: {request_id}", 500)
            response = service.protocol.serialize_error(surprise, request_id)
        body = response.body
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": response.headers
                + [(b"x-amzn-requestid", request_id.encode()), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
        if self.observe is not None:
            self.observe(
                service.signing_name, operation, response.status, perf_counter() - started, request_id, principal, error
            )

    # 2. route ---------------------------------------------------------------------------------

    def route(self, request: WireRequest, path: str) -> tuple[Service, str | None, AWSError | None]:
        """The service, the operation when the request line and headers name it (``None`` for
        the query protocol, whose ``Action`` is in the body), and the refusal to answer in that
        service's words when there is one. ``path`` is the decoded path (for messages)."""
        if request.path != "/" or request.method != "POST":  # no REST route can match "POST /"
            for service in self.rest_services:
                try:
                    operation = service.protocol.find_operation(request)
                except AWSError as err:
                    return service, None, err
                if operation is not None:
                    return service, operation, None
        targets = request.headers.get("x-amz-target")
        if self.query_services and targets is None:
            return self.route_query(request, path)
        service = self._default
        if targets is not None and len(targets) == 1:
            service = self.by_prefix.get(targets[0].rpartition(".")[0], service)
        try:
            return service, service.protocol.find_operation(request), None
        except AWSError as err:
            return service, None, err

    def route_query(self, request: WireRequest, path: str) -> tuple[Service, None, AWSError | None]:
        """The query-protocol service the signature is scoped to (IAM, STS); a request signed for
        a service of another protocol is that service's UnknownOperationException."""
        service = next(iter(self.query_services.values()))
        try:
            _, _, signing_name = self.verifier.identify(request.headers)
        except AWSError as err:
            return service, None, err
        if signing_name not in self.query_services and signing_name in self._by_signing_name:
            other = self._by_signing_name[signing_name]
            refusal = AWSError(
                "UnknownOperationException",
                f"No {other.signing_name} operation matches {request.method[:20]} {path[:200]}.",
            )
            return other, None, refusal
        return self.query_services.get(signing_name, service), None, None

    # 3. and 5. authenticate -----------------------------------------------------------------

    def pre_authenticate(self, request: WireRequest, service: Service) -> PendingRequest | VerifiedRequest:
        """Everything the headers prove, before a byte of body is read (the signature waits for
        the body). In dev mode signatures are not checked: the request is verified already."""
        verified: PendingRequest | VerifiedRequest
        if self.dev:
            access_key_id, region, signing_name = self.verifier.identify(request.headers)
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
            verified = self.verifier.prepare(request.method, request.path, request.query, request.headers)
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
            secure=scope.get("scheme") == "https",
        )

    # 6. to 10. --------------------------------------------------------------------------------

    async def call(self, ctx: RequestContext, service: Service, operation: str, request: WireRequest) -> dict[str, Any]:
        """6. fair share, around :meth:`audited_call` when the call is an expensive one.

        A throttled call is refused before it is parsed and is not recorded in the trail (a
        flood's surplus costs no writes); what it was refused is the client's to see.
        """
        if operation not in service.expensive:
            return await self.audited_call(ctx, service, operation, request)
        # A role's sessions share the role's share: new session names are no way around it.
        principal = ctx.role_arn or ctx.principal_arn
        if not self.limiter.acquire(principal):
            raise service.protocol.throttled()
        try:
            return await self.audited_call(ctx, service, operation, request)
        finally:
            self.limiter.release(principal)

    async def audited_call(
        self, ctx: RequestContext, service: Service, operation: str, request: WireRequest
    ) -> dict[str, Any]:
        """7. parse, 8. authorize and 9. call, then 10. record it in the audit trail (fail closed).

        The answer leaves only after its record is committed: a read whose record cannot be
        written does not return its secret, and writes are refused while the trail is failing.
        """
        params: dict[str, Any] = {}
        result: dict[str, Any] | None = None
        error: AWSError | None = None
        committed: list[dict[str, Any]] = []  # a record written with the call's write transaction
        try:
            params = service.protocol.parse(operation, request)  # 7. parse
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
                ctx.secure,
            )  # dataclasses.replace costs several times more
            if self.audit is not None and not self.audit.healthy and not is_read_only(operation):
                raise _audit_unavailable(ctx.request_id)
            await self.authorize(ctx, service.signing_name, operation, params)  # 8. authorize
            hook = None
            if self.audit is not None and service.signing_name == "secretsmanager" and not is_read_only(operation):
                # 10. (part) A Secrets Manager write's record goes into the write's own transaction.
                hook = write_hook.set(self.record_in_write_transaction(ctx, operation, params, committed))
            try:
                result = await service.handlers[operation](ctx, params)  # 9. call
            except Unstorable:
                raise AWSError(
                    "InvalidParameterException", "The request contains a character (U+0000) that cannot be stored."
                ) from None
            finally:
                if hook is not None:
                    write_hook.reset(hook)
        except AWSError as err:
            error = err
        if self.audit is not None:  # 10. audit
            try:
                recorded = committed[0] if committed else None
                if recorded is not None:  # in the database with the write; now its JSON line
                    self.audit.append_file(recorded)
                if recorded is None or (error is not None and recorded.get("errorCode") != error.code):
                    # No write, or one that committed and then the call failed otherwise: the
                    # answer the caller saw gets its own record, in the table and the files.
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

    def record_in_write_transaction(
        self, ctx: RequestContext, operation: str, params: dict[str, Any], committed: list[dict[str, Any]]
    ) -> WriteHook:
        """Step 10 inside step 9: the hook that adds this call's record to its write transaction.
        The answer members come from what the transaction returned (a Secrets Manager write
        returns its answer there)."""
        assert self.audit is not None
        audit: AuditTrail = self.audit

        class Record(WriteHook):
            def __call__(self, tx: Any, returned: Any) -> None:
                # A write that commits and still answers an error returns that error (RotateSecret
                # refusing a new rotation while it queues the stalled one again): its record says so.
                answer = returned if isinstance(returned, dict) else None
                error = returned if isinstance(returned, AWSError) else None
                record = api_call_record(ctx, "secretsmanager", operation, params, answer, error)
                audit.insert(tx, record)
                committed[:] = [record]  # PostgreSQL may run the transaction again: the last one counts

            def discard(self) -> None:
                committed.clear()  # rolled back: the call is recorded the usual way

        return Record()

    async def authorize(self, ctx: RequestContext, service: str, operation: str, params: dict[str, Any]) -> None:
        """8. IAM's decision for calls not about one secret. Those about one secret are decided
        on the resource, inside the operation's read transaction once the secret is found
        (services/secretsmanager ``SecretsManager.authorize`` -> ``Authorizer.check_secret``)."""
        authorizer = self.authorizer
        if authorizer is None or authorizer.privileged(ctx, service):
            return
        if service == "secretsmanager" and not authorizer.resource_less(operation):
            return
        await authorizer.db.read(lambda tx: authorizer.check_call(tx, ctx, service, operation, params))
