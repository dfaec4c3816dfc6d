"""The web console at ``/console/``: server-rendered pages over the API (docs/console.md).

Every page and every button is one or more API calls made through the request pipeline as the
signed-in principal (:mod:`strongroom.server.console.calls`): authorized by the same policies,
recorded in the audit trail in the principal's name with the user agent ``strongroom-console/V``.
What the principal may not do, the page shows refused with the API's own message.

Two reads have no AWS operation: a secret's rotation history and a function's logs. The history
is shown after DescribeSecret on the secret succeeds through the pipeline, the logs after
GetFunction on the function does; each is audited as that call.

Every answer carries the same headers (:data:`SECURITY_HEADERS`): a Content-Security-Policy with
no inline script, no framing, ``no-store``. Templates escape everything they print (Jinja2 with
autoescape on); secret values reach a page only from the "Retrieve secret value" form.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import jinja2

from strongroom import __version__, clock
from strongroom.auth.keys import KeyStore
from strongroom.auth.principal import ROOT, Credential
from strongroom.rotation.engine import history_of
from strongroom.server.bodies import ClientGone, Receive
from strongroom.server.console.calls import ApiError, Caller
from strongroom.server.console.sessions import Session, SessionStore, csrf_ok, csrf_token, new_token
from strongroom.server.pipeline import Pipeline, Send
from strongroom.services.lambda_ import Lambda
from strongroom.store import Database

__all__ = ["SECURITY_HEADERS", "USER_AGENT", "Console"]

log = logging.getLogger("strongroom.console")

USER_AGENT = f"strongroom-console/{__version__}"
SESSION_COOKIE = "strongroom-console"
SIGNIN_COOKIE = "strongroom-console-signin"
MAX_FORM_BYTES = 256 * 1024  # a secret value is at most 65536 bytes, a policy 20480
# What the API answers a key it does not know, or a secret key that does not match it.
_WRONG_KEY = frozenset(
    [
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
    ]
)
_KEY_ID = re.compile(r"(AKIA|ASIA)[A-Z0-9]{12,124}")
_HERE = Path(__file__).parent
_STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    # Not no-referrer: under it a browser sends "Origin: null" with the console's own forms.
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]

NOTICES = {
    "created": "Secret created.",
    "value": "New secret value stored.",
    "label": "Staging label moved.",
    "tagged": "Tags saved.",
    "untagged": "Tag removed.",
    "policy": "Resource policy saved.",
    "policy-deleted": "Resource policy deleted.",
    "deleted": "Secret scheduled for deletion.",
    "restored": "Secret restored.",
    "rotation": "Rotation configured.",
    "rotating": "Rotation started.",
    "cancelled": "Rotation cancelled.",
    "description": "Description saved.",
    "deactivated": "Access key deactivated.",
    "activated": "Access key activated.",
    "signed-out": "You have signed out.",
    "expired": "Your session has ended. Sign in again.",
}


class Refused(Exception):
    """A request the console will not act on (bad form, CSRF): status and one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Page:
    """One answer: status, body, extra headers."""

    def __init__(self, status: int, body: bytes, content_type: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers


def _redirect(location: str, headers: list[tuple[bytes, bytes]] | None = None) -> Page:
    return Page(303, b"", b"text/plain; charset=utf-8", [(b"location", location.encode()), *(headers or [])])


def _printable(text: str) -> bool:
    return all(32 < ord(c) < 127 for c in text)


def _safe_next(target: str) -> str:
    """Where to go after sign-in: a console path on this server, nothing else (no open redirect)."""
    if (
        target.startswith("/console/")
        and not target.startswith("//")
        and "\\" not in target
        and all(32 < ord(c) < 127 for c in target)
    ):
        return target
    return "/console/secrets"


def _when(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "" if value is None else str(value)


def _json_pretty(text: str | None) -> str:
    if not text:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, sort_keys=False)
    except ValueError:
        return text


def _key_values(text: str | None) -> list[tuple[str, str]] | None:
    """A secret string's key/value view: a flat JSON object's members, else None."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    return [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in value.items()]


class Form:
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self.values = dict(pairs)

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]


class Request:
    def __init__(self, scope: dict[str, Any], form: Form, query: Form) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.form = form
        self.query = query
        self.cookies: dict[str, str] = {}
        self.headers: dict[str, str] = {}
        for k, v in scope.get("headers", []):
            name = k.decode("latin-1").lower()
            value = v.decode("latin-1")
            self.headers[name] = value
            if name == "cookie":
                for part in value.split(";"):
                    key, _, val = part.strip().partition("=")
                    self.cookies.setdefault(key, val)
        host, port = scope.get("client") or ("", 0)
        self.client: tuple[str, int] = (str(host), int(port))
        self.secure = scope.get("scheme") == "https"


class Console:
    """The console's ASGI handler for paths under ``/console``."""

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        db: Database,
        keys: KeyStore,
        functions: Lambda,
        dev: bool = False,
        default_region: str = "us-east-1",
    ) -> None:
        self.pipeline = pipeline
        self.db = db
        self.keys = keys
        self.functions = functions
        self.dev = dev
        self.default_region = default_region
        self.sessions = SessionStore(db)
        self.caller = Caller(pipeline, USER_AGENT)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
            autoescape=True,
            undefined=jinja2.ChainableUndefined,
        )
        self.templates.filters["when"] = _when
        self.templates.globals["quote"] = lambda s: quote(str(s), safe="")
        self._static = {name: (_HERE / "static" / name).read_bytes() for name in _STATIC}
        self._routes: dict[tuple[str, str], Callable[[Request, Session], Awaitable[Page]]] = {
            ("GET", "/console/secrets"): self.secrets_page,
            ("GET", "/console/secrets/new"): self.new_secret_page,
            ("POST", "/console/secrets/new"): self.create_secret,
            ("GET", "/console/secret"): self.secret_page,
            ("POST", "/console/secret/value"): self.retrieve_value,
            ("POST", "/console/secret/put-value"): self.put_value,
            ("POST", "/console/secret/move-label"): self.move_label,
            ("POST", "/console/secret/description"): self.update_description,
            ("POST", "/console/secret/tag"): self.tag,
            ("POST", "/console/secret/untag"): self.untag,
            ("POST", "/console/secret/policy"): self.put_policy,
            ("POST", "/console/secret/delete-policy"): self.delete_policy,
            ("POST", "/console/secret/delete"): self.delete_secret,
            ("POST", "/console/secret/restore"): self.restore_secret,
            ("GET", "/console/rotation"): self.rotation_page,
            ("POST", "/console/rotation/configure"): self.configure_rotation,
            ("POST", "/console/rotation/rotate"): self.rotate_now,
            ("POST", "/console/rotation/cancel"): self.cancel_rotation,
            ("GET", "/console/audit"): self.audit_page,
            ("GET", "/console/audit/event"): self.audit_event_page,
            ("GET", "/console/identities"): self.identities_page,
            ("POST", "/console/identities/create-key"): self.create_key,
            ("POST", "/console/identities/key-status"): self.key_status,
        }

    # ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        try:
            page = await self._answer(scope, receive)
        except ClientGone:
            return
        except Exception:
            log.exception("console error on %s %s", scope.get("method"), scope.get("path"))
            page = self._plain(500, "An internal error occurred.")
        headers = [
            (b"content-type", page.content_type),
            (b"content-length", str(len(page.body)).encode()),
            *SECURITY_HEADERS,
            *page.headers,
        ]
        await send({"type": "http.response.start", "status": page.status, "headers": headers})
        await send({"type": "http.response.body", "body": page.body})

    async def _answer(self, scope: dict[str, Any], receive: Receive) -> Page:
        path: str = scope["path"]
        method: str = scope["method"]
        if path in ("/console", "/console/"):
            return _redirect("/console/secrets")
        if path.startswith("/console/static/") and method in ("GET", "HEAD"):
            name = path.removeprefix("/console/static/")
            if name in _STATIC:
                return Page(200, self._static[name], _STATIC[name].encode(), [])
            return self._plain(404, "Not found.")
        if method not in ("GET", "HEAD", "POST"):
            return self._plain(405, "Method not allowed.")
        try:
            body = await self._read_body(scope, receive) if method == "POST" else b""
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except Refused as refused:
            return self._plain(refused.status, refused.message)
        except UnicodeDecodeError:
            return self._plain(400, "The form is not UTF-8.")
        query = Form(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        request = Request(scope, Form(pairs), query)
        try:
            if path == "/console/sign-in":
                if method == "POST":
                    return await self.sign_in(request)
                return self.sign_in_page(request)
            session = await self.sessions.find(request.cookies.get(SESSION_COOKIE, ""))
            if session is None:
                if method == "POST":
                    return _redirect("/console/sign-in?notice=expired", [self._clear_cookie(request)])
                target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
                return _redirect("/console/sign-in?" + urlencode({"next": target}))
            if method == "POST":
                self._check_post(request, session.token)
            if path == "/console/sign-out" and method == "POST":
                await self.sessions.close(session.token)
                return _redirect("/console/sign-in?notice=signed-out", [self._clear_cookie(request)])
            handler = self._routes.get(("GET" if method == "HEAD" else method, path))
            if handler is None:
                return self.render(404, "message.html", request, session, title="Not found", message="No such page.")
            return await handler(request, session)
        except Refused as refused:
            return self.render(refused.status, "message.html", request, None, title="Refused", message=refused.message)
        except SessionEnded:
            return _redirect("/console/sign-in?notice=expired", [self._clear_cookie(request)])

    async def _read_body(self, scope: dict[str, Any], receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_FORM_BYTES:
                raise Refused(413, "The form is too large.")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _check_post(self, request: Request, token: str) -> None:
        """Refuse a state-changing request that did not come from this console's own page: the
        Origin (when the browser sends one) must be this server's, and the form's CSRF token the
        session's."""
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
            raise Refused(403, "Refused: the form was sent from another site.")
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise Refused(403, "Refused: the form was sent from another site.")
        if not csrf_ok(token, request.form.get("csrf")):
            raise Refused(403, "Refused: the form's security token is missing or wrong. Reload the page and try again.")

    # Rendering --------------------------------------------------------------------------------

    def render(self, status: int, template: str, request: Request, session: Session | None, **context: Any) -> Page:
        notice = request.query.get("notice")
        context.setdefault("error", None)
        body = self.templates.get_template(template).render(
            session=session,
            csrf=session.csrf if session is not None else "",
            notice=NOTICES.get(notice, ""),
            version=__version__,
            **context,
        )
        return Page(status, body.encode(), b"text/html; charset=utf-8", [])

    def _plain(self, status: int, text: str) -> Page:
        return Page(status, text.encode(), b"text/plain; charset=utf-8", [])

    def _cookie(self, request: Request, name: str, value: str, max_age: int) -> tuple[bytes, bytes]:
        parts = [f"{name}={value}", "Path=/console", "HttpOnly", "SameSite=Strict", f"Max-Age={max_age}"]
        if request.secure:
            parts.append("Secure")
        return (b"set-cookie", "; ".join(parts).encode())

    def _clear_cookie(self, request: Request) -> tuple[bytes, bytes]:
        return self._cookie(request, SESSION_COOKIE, "", 0)

    # Calls --------------------------------------------------------------------------------

    def _credential(self, session: Session) -> Credential:
        """The session's key, from the key store, checked now: a key deactivated or deleted, an
        STS session expired, ends the console session."""
        credential = self.keys.lookup(session.access_key_id)
        if credential is None and self.dev:
            return Credential(session.access_key_id, "dev", session.account_id, session.principal_arn, privilege=ROOT)
        if (
            credential is None
            or credential.principal_arn != session.principal_arn
            or (credential.expires_at is not None and credential.expires_at <= clock.now())
        ):
            raise SessionEnded()
        return credential

    async def api(
        self, request: Request, session: Session, service: str, operation: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        credential = self._credential(session)
        try:
            return await self.caller.call(credential, session.region, service, operation, params, request.client)
        except ApiError as err:
            if err.code in ("InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken"):
                raise SessionEnded() from None
            raise

    # Sign in and out ------------------------------------------------------------------------

    def sign_in_page(
        self, request: Request, error: str | None = None, status: int = 200, access_key_id: str = ""
    ) -> Page:
        token = request.cookies.get(SIGNIN_COOKIE, "")
        headers = []
        if not token or len(token) > 100:
            token = new_token()
            headers.append(self._cookie(request, SIGNIN_COOKIE, token, 3600))
        page = self.render(
            status,
            "sign_in.html",
            request,
            None,
            error=error,
            signin_csrf=csrf_token(token),
            next=_safe_next(request.query.get("next") or request.form.get("next")),
            region=request.form.get("region") or self.default_region,
            access_key_id=access_key_id,
        )
        page.headers.extend(headers)
        return page

    async def sign_in(self, request: Request) -> Page:
        form = request.form
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        signin = request.cookies.get(SIGNIN_COOKIE, "")
        if (origin is not None and origin not in (f"http://{host}", f"https://{host}")) or not (
            signin and csrf_ok(signin, form.get("csrf"))
        ):
            return self.sign_in_page(request, "The sign-in form expired or came from another site. Try again.", 403)
        key_id = form.get("access_key_id").strip()
        secret = form.get("secret_access_key").strip()
        token = form.get("session_token").strip() or None
        region = form.get("region").strip() or self.default_region
        if not key_id or not secret:
            return self.sign_in_page(request, "Enter an access key ID and a secret access key.", 400, key_id)
        typed = Credential(key_id[:128], secret[:128], "", "", session_token=token)
        try:
            if not all(_printable(v) for v in (key_id, secret, token or "", region)):
                # No key, secret or token has such characters; HTTP headers cannot carry them.
                raise ApiError("InvalidClientTokenId", "", 403)
            who = await self.caller.call(typed, region[:32], "sts", "GetCallerIdentity", {}, request.client)
        except ApiError as err:
            # The id only when it has an access key id's shape: a secret pasted into the wrong
            # field must not reach the log.
            shown = key_id if _KEY_ID.fullmatch(key_id) else "(not an access key id)"
            log.info("console sign-in refused for key %s: %s", shown, err.code)
            if err.code in _WRONG_KEY and "a valid region" not in err.message:  # a region typo is its own error
                message = "The access key ID or the secret access key is wrong."
            else:
                message = f"{err.code}: {err.message}"
            return self.sign_in_page(request, message, 401, key_id if shown == key_id else "")
        stored = self.keys.lookup(key_id)
        expiry = stored.expires_at if stored is not None else None
        previous = request.cookies.get(SESSION_COOKIE, "")
        if previous:  # signing in again ends the session this browser had
            await self.sessions.close(previous)
        session = await self.sessions.open(key_id, who["Account"], who["Arn"], region[:32], expiry)
        cookie = self._cookie(request, SESSION_COOKIE, session.token, int(session.expires_at - clock.now()) + 1)
        return _redirect(_safe_next(form.get("next")), [cookie, self._cookie(request, SIGNIN_COOKIE, "", 0)])

    # Secrets ----------------------------------------------------------------------------------

    async def secrets_page(self, request: Request, session: Session) -> Page:
        q = request.query
        key = q.get("key") or "all"
        search = q.get("search").strip()
        sort_by = q.get("sort_by") or "created-date"
        order = q.get("order") or "asc"
        params: dict[str, Any] = {"MaxResults": 20, "SortOrder": order, "SortBy": sort_by}
        if search:
            params["Filters"] = [{"Key": key, "Values": [search]}]
        if q.get("deleted") == "1":
            params["IncludePlannedDeletion"] = True
        if q.get("next"):
            params["NextToken"] = q.get("next")
        secrets: list[dict[str, Any]] = []
        next_token = None
        error = None
        try:
            answer = await self.api(request, session, "secretsmanager", "ListSecrets", params)
            secrets = answer.get("SecretList", [])
            next_token = answer.get("NextToken")
        except ApiError as err:
            error = err
        base = {"key": key, "search": search, "sort_by": sort_by, "order": order}
        if q.get("deleted") == "1":
            base["deleted"] = "1"
        next_url = "/console/secrets?" + urlencode({**base, "next": next_token}) if next_token else None
        first_url = "/console/secrets?" + urlencode(base) if q.get("next") else None
        return self.render(
            error.status if error else 200,
            "secrets.html",
            request,
            session,
            error=error,
            secrets=secrets,
            next_url=next_url,
            first_url=first_url,
            key=key,
            search=search,
            sort_by=sort_by,
            order=order,
            deleted=q.get("deleted") == "1",
        )

    async def new_secret_page(self, request: Request, session: Session) -> Page:
        return self.render(200, "new_secret.html", request, session, form=request.form)

    async def create_secret(self, request: Request, session: Session) -> Page:
        form = request.form
        params: dict[str, Any] = {"Name": form.get("name"), "SecretString": form.get("value")}
        if form.get("description"):
            params["Description"] = form.get("description")
        tags = self._tags(form)
        if tags:
            params["Tags"] = tags
        try:
            answer = await self.api(request, session, "secretsmanager", "CreateSecret", params)
        except ApiError as err:
            return self.render(err.status, "new_secret.html", request, session, form=form, error=err)
        return _redirect(self._secret_url(answer["ARN"], "created"))

    @staticmethod
    def _tags(form: Form) -> list[dict[str, str]]:
        keys, values = form.all("tag_key"), form.all("tag_value")
        # Rows left wholly blank are skipped; a value without a key goes to the API, which refuses it.
        return [{"Key": k, "Value": v} for k, v in zip(keys, values, strict=False) if k or v]

    @staticmethod
    def _secret_url(secret_id: str, notice: str = "") -> str:
        query = {"id": secret_id}
        if notice:
            query["notice"] = notice
        return "/console/secret?" + urlencode(query)

    async def _secret_view(
        self, request: Request, session: Session, secret_id: str, **extra: Any
    ) -> tuple[int, dict[str, Any]]:
        """Everything a secret's page shows but its value: DescribeSecret, its versions, its
        resource policy. A refusal of the first is the page's error; of the others, their
        section's."""
        context: dict[str, Any] = {"secret_id": secret_id, "secret": None, "versions": [], "policy": None}
        context["policy_error"] = context["versions_error"] = None
        try:
            context["secret"] = await self.api(
                request, session, "secretsmanager", "DescribeSecret", {"SecretId": secret_id}
            )
        except ApiError as err:
            context["error"] = err
            context.update(extra)
            return err.status, context
        try:
            answer = await self.api(
                request,
                session,
                "secretsmanager",
                "ListSecretVersionIds",
                {"SecretId": secret_id, "IncludeDeprecated": True, "MaxResults": 100},
            )
            context["versions"] = sorted(
                answer.get("Versions", []), key=lambda v: v.get("CreatedDate") or dt.datetime.min, reverse=True
            )
        except ApiError as err:
            context["versions_error"] = err
        try:
            answer = await self.api(request, session, "secretsmanager", "GetResourcePolicy", {"SecretId": secret_id})
            context["policy"] = _json_pretty(answer.get("ResourcePolicy"))
        except ApiError as err:
            context["policy_error"] = err
        context.update(extra)
        return 200, context

    async def secret_page(self, request: Request, session: Session) -> Page:
        status, context = await self._secret_view(request, session, request.query.get("id"))
        return self.render(status, "secret.html", request, session, **context)

    async def retrieve_value(self, request: Request, session: Session) -> Page:
        """The "Retrieve secret value" button: GetSecretValue, and only now the value."""
        secret_id = request.form.get("id")
        params: dict[str, Any] = {"SecretId": secret_id}
        if request.form.get("version_id"):
            params["VersionId"] = request.form.get("version_id")
        elif request.form.get("version_stage"):
            params["VersionStage"] = request.form.get("version_stage")
        value: dict[str, Any] | None = None
        value_error = None
        try:
            value = await self.api(request, session, "secretsmanager", "GetSecretValue", params)
        except ApiError as err:
            value_error = err
        status, context = await self._secret_view(request, session, secret_id)
        if value is not None:
            text = value.get("SecretString")
            context["value"] = {
                "text": text,
                "pairs": _key_values(text),
                "binary": value.get("SecretBinary") is not None,
                "version_id": value.get("VersionId"),
                "stages": value.get("VersionStages", []),
            }
        context["value_error"] = value_error
        if value_error is not None and status == 200:
            status = value_error.status
        return self.render(status, "secret.html", request, session, **context)

    async def _secret_action(
        self, request: Request, session: Session, operation: str, params: dict[str, Any], notice: str
    ) -> Page:
        secret_id = request.form.get("id")
        try:
            await self.api(request, session, "secretsmanager", operation, {"SecretId": secret_id, **params})
        except ApiError as err:
            _, context = await self._secret_view(request, session, secret_id)
            context["error"] = err
            return self.render(err.status, "secret.html", request, session, **context)
        return _redirect(self._secret_url(secret_id, notice))

    async def put_value(self, request: Request, session: Session) -> Page:
        params: dict[str, Any] = {"SecretString": request.form.get("value")}
        stages = [s.strip() for s in request.form.get("stages").split(",") if s.strip()]
        if stages:
            params["VersionStages"] = stages
        return await self._secret_action(request, session, "PutSecretValue", params, "value")

    async def move_label(self, request: Request, session: Session) -> Page:
        params: dict[str, Any] = {"VersionStage": request.form.get("label").strip()}
        if request.form.get("to_version"):
            params["MoveToVersionId"] = request.form.get("to_version")
        if request.form.get("from_version"):
            params["RemoveFromVersionId"] = request.form.get("from_version")
        return await self._secret_action(request, session, "UpdateSecretVersionStage", params, "label")

    async def update_description(self, request: Request, session: Session) -> Page:
        params = {"Description": request.form.get("description")}
        return await self._secret_action(request, session, "UpdateSecret", params, "description")

    async def tag(self, request: Request, session: Session) -> Page:
        params = {"Tags": self._tags(request.form)}
        return await self._secret_action(request, session, "TagResource", params, "tagged")

    async def untag(self, request: Request, session: Session) -> Page:
        params = {"TagKeys": [request.form.get("tag_key")]}
        return await self._secret_action(request, session, "UntagResource", params, "untagged")

    async def put_policy(self, request: Request, session: Session) -> Page:
        """ValidateResourcePolicy first; the policy is saved only when it passes."""
        secret_id = request.form.get("id")
        policy = request.form.get("policy")
        try:
            answer = await self.api(
                request,
                session,
                "secretsmanager",
                "ValidateResourcePolicy",
                {"SecretId": secret_id, "ResourcePolicy": policy},
            )
        except ApiError as err:
            _, context = await self._secret_view(request, session, secret_id)
            context["policy_draft"], context["policy_form_error"] = policy, err
            return self.render(err.status, "secret.html", request, session, **context)
        if not answer.get("PolicyValidationPassed"):
            _, context = await self._secret_view(request, session, secret_id)
            context["policy_draft"] = policy
            context["policy_findings"] = answer.get("ValidationErrors", [])
            return self.render(400, "secret.html", request, session, **context)
        return await self._secret_action(request, session, "PutResourcePolicy", {"ResourcePolicy": policy}, "policy")

    async def delete_policy(self, request: Request, session: Session) -> Page:
        return await self._secret_action(request, session, "DeleteResourcePolicy", {}, "policy-deleted")

    async def delete_secret(self, request: Request, session: Session) -> Page:
        try:
            days = int(request.form.get("days") or "30")
        except ValueError:
            days = -1  # the API answers the range in its own words
        return await self._secret_action(request, session, "DeleteSecret", {"RecoveryWindowInDays": days}, "deleted")

    async def restore_secret(self, request: Request, session: Session) -> Page:
        return await self._secret_action(request, session, "RestoreSecret", {}, "restored")

    # Rotation -----------------------------------------------------------------------------------

    async def rotation_page(self, request: Request, session: Session, **extra: Any) -> Page:
        secret_id = request.query.get("id") or request.form.get("id")
        context: dict[str, Any] = {
            "secret_id": secret_id,
            "secret": None,
            "history": [],
            "functions": [],
            "logs": None,
            "logs_error": None,
            "function": request.query.get("function"),
        }
        try:
            secret = await self.api(request, session, "secretsmanager", "DescribeSecret", {"SecretId": secret_id})
        except ApiError as err:
            return self.render(err.status, "rotation.html", request, session, error=err, **context, **extra)
        context["secret"] = secret
        # Allowed to describe the secret: its rotation history (no values in it) with it.
        arn, region = secret["ARN"], session.region
        context["history"] = await self.db.read(lambda tx: history_of(tx, session.account_id, region, arn)) or []
        try:
            answer = await self.api(request, session, "lambda", "ListFunctions", {"MaxItems": 50})
            context["functions"] = [f["FunctionArn"] for f in answer.get("Functions", [])]
        except ApiError:
            pass  # the function's ARN can still be typed
        function = context["function"] or secret.get("RotationLambdaARN")
        if function and request.query.get("logs") == "1":
            try:
                found = await self.api(request, session, "lambda", "GetFunction", {"FunctionName": function})
                function_arn = found["Configuration"]["FunctionArn"]
                context["logs"] = await self.db.read(
                    lambda tx: self.functions.invocations(tx, session.account_id, region, function_arn, 20)
                )
            except ApiError as err:
                context["logs_error"] = err
        context["function"] = function
        status = extra["error"].status if extra.get("error") is not None else 200
        return self.render(status, "rotation.html", request, session, **context, **extra)

    def _rotation_url(self, secret_id: str, notice: str) -> str:
        return "/console/rotation?" + urlencode({"id": secret_id, "notice": notice})

    async def configure_rotation(self, request: Request, session: Session) -> Page:
        form = request.form
        rules: dict[str, Any] = {}
        schedule = form.get("schedule").strip()
        if form.get("schedule_kind") == "days":
            try:
                rules["AutomaticallyAfterDays"] = int(schedule)
            except ValueError:
                return await self.rotation_page(
                    request, session, error=ApiError("InvalidParameterException", "Enter a number of days.", 400)
                )
        elif schedule:
            rules["ScheduleExpression"] = schedule
        if form.get("window").strip():
            rules["Duration"] = form.get("window").strip()
        params: dict[str, Any] = {"SecretId": form.get("id"), "RotationRules": rules}
        if form.get("function").strip():
            params["RotationLambdaARN"] = form.get("function").strip()
        params["RotateImmediately"] = form.get("immediately") == "1"
        return await self._rotation_action(request, session, "RotateSecret", params, "rotation")

    async def rotate_now(self, request: Request, session: Session) -> Page:
        params = {"SecretId": request.form.get("id")}
        return await self._rotation_action(request, session, "RotateSecret", params, "rotating")

    async def cancel_rotation(self, request: Request, session: Session) -> Page:
        params = {"SecretId": request.form.get("id")}
        return await self._rotation_action(request, session, "CancelRotateSecret", params, "cancelled")

    async def _rotation_action(
        self, request: Request, session: Session, operation: str, params: dict[str, Any], notice: str
    ) -> Page:
        try:
            await self.api(request, session, "secretsmanager", operation, params)
        except ApiError as err:
            page = await self.rotation_page(request, session, error=err)
            page.status = err.status
            return page
        return _redirect(self._rotation_url(request.form.get("id"), notice))

    # Audit ------------------------------------------------------------------------------------

    async def audit_page(self, request: Request, session: Session) -> Page:
        q = request.query
        attribute = q.get("attribute") or "EventName"
        value = q.get("value").strip()
        params: dict[str, Any] = {"MaxResults": 50}
        if value:
            params["LookupAttributes"] = [{"AttributeKey": attribute, "AttributeValue": value}]
        error = None
        for name, member in (("start", "StartTime"), ("end", "EndTime")):
            text = q.get(name).strip()
            if text:
                try:
                    params[member] = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
                except ValueError:
                    error = ApiError("InvalidTimeRangeException", f"{text!r} is not a date and time.", 400)
        if q.get("next"):
            params["NextToken"] = q.get("next")
        events: list[dict[str, Any]] = []
        next_url = None
        if error is None:
            try:
                answer = await self.api(request, session, "cloudtrail", "LookupEvents", params)
                events = answer.get("Events", [])
                if answer.get("NextToken"):
                    base = {k: q.get(k) for k in ("attribute", "value", "start", "end") if q.get(k)}
                    next_url = "/console/audit?" + urlencode({**base, "next": answer["NextToken"]})
            except ApiError as err:
                error = err
        return self.render(
            error.status if error else 200,
            "audit.html",
            request,
            session,
            error=error,
            events=events,
            attribute=attribute,
            value=value,
            start=q.get("start"),
            end=q.get("end"),
            next_url=next_url,
            attributes=[
                "EventId",
                "EventName",
                "ReadOnly",
                "Username",
                "ResourceType",
                "ResourceName",
                "EventSource",
                "AccessKeyId",
            ],
        )

    async def audit_event_page(self, request: Request, session: Session) -> Page:
        event_id = request.query.get("id")
        params = {"LookupAttributes": [{"AttributeKey": "EventId", "AttributeValue": event_id}], "MaxResults": 1}
        try:
            answer = await self.api(request, session, "cloudtrail", "LookupEvents", params)
        except ApiError as err:
            return self.render(err.status, "event.html", request, session, error=err, event=None, record="")
        events = answer.get("Events", [])
        if not events:
            return self.render(404, "event.html", request, session, event=None, record="", event_id=event_id)
        event = events[0]
        return self.render(
            200, "event.html", request, session, event=event, record=_json_pretty(event.get("CloudTrailEvent"))
        )

    # Identities -------------------------------------------------------------------------------

    async def identities_page(self, request: Request, session: Session, **extra: Any) -> Page:
        users: list[dict[str, Any]] = []
        roles: list[dict[str, Any]] = []
        users_error = roles_error = None
        keys: dict[str, list[dict[str, Any]] | ApiError] = {}
        try:
            users = (await self.api(request, session, "iam", "ListUsers", {"MaxItems": 100})).get("Users", [])
        except ApiError as err:
            users_error = err
        for user in users:
            try:
                answer = await self.api(request, session, "iam", "ListAccessKeys", {"UserName": user["UserName"]})
                keys[user["UserName"]] = answer.get("AccessKeyMetadata", [])
            except ApiError as err:
                keys[user["UserName"]] = err
        own: list[dict[str, Any]] | None = None
        if users_error is not None:
            try:  # the caller's own keys, which a user may be allowed to see
                own = (await self.api(request, session, "iam", "ListAccessKeys", {})).get("AccessKeyMetadata", [])
            except ApiError:
                own = None
        try:
            roles = (await self.api(request, session, "iam", "ListRoles", {"MaxItems": 100})).get("Roles", [])
        except ApiError as err:
            roles_error = err
        status = 200
        if extra.get("error") is not None:
            status = extra["error"].status
        return self.render(
            status,
            "identities.html",
            request,
            session,
            users=users,
            roles=roles,
            keys=keys,
            own=own,
            users_error=users_error,
            roles_error=roles_error,
            new_key=extra.pop("new_key", None),
            **extra,
        )

    async def create_key(self, request: Request, session: Session) -> Page:
        params: dict[str, Any] = {}
        if request.form.get("user"):
            params["UserName"] = request.form.get("user")
        try:
            answer = await self.api(request, session, "iam", "CreateAccessKey", params)
        except ApiError as err:
            return await self.identities_page(request, session, error=err)
        # The only time the new secret key is shown: the API's answer, on a no-store page.
        return await self.identities_page(request, session, new_key=answer["AccessKey"])

    async def key_status(self, request: Request, session: Session) -> Page:
        params: dict[str, Any] = {
            "AccessKeyId": request.form.get("key"),
            "Status": "Active" if request.form.get("status") == "Active" else "Inactive",
        }
        if request.form.get("user"):
            params["UserName"] = request.form.get("user")
        try:
            await self.api(request, session, "iam", "UpdateAccessKey", params)
        except ApiError as err:
            return await self.identities_page(request, session, error=err)
        notice = "activated" if params["Status"] == "Active" else "deactivated"
        return _redirect("/console/identities?notice=" + notice)


class SessionEnded(Exception):
    """The session's key no longer signs: back to the sign-in page."""
