"""Requests: a :class:`Case` (what is sent, what must come back), signing with botocore's
``SigV4Auth``, and the bytes on the wire for each protocol.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import random
from typing import Any
from urllib.parse import urlencode

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.serialize import create_serializer

from strongroom.testing.fuzz.invalid import _mutate
from strongroom.testing.fuzz.models import FORMAT, MODELS, SERVED, SERVICE_WEIGHTS, SIGNING, TARGET_PREFIX, UNSERVED
from strongroom.testing.fuzz.values import Context, Gen

# ---------------------------------------------------------------------------------- requests


@dataclasses.dataclass
class Case:
    """One request, as bytes on a socket, and what its answer must look like."""

    index: int
    kind: str
    detail: str
    service: str | None  # whose error format the answer must use; None: any AWS format
    operation: str | None
    method: str
    target: str  # the request-target: path and query, as sent
    headers: list[tuple[str, str]]
    body: bytes
    mode: str = "normal"  # normal | slow | truncate-close | truncate-halfclose | keepalive
    content_length: int | None = None  # declared length; None: the body's; -1: no header
    must_fail: bool = False  # a 2xx would mean the server accepted something it must refuse
    http_layer_ok: bool = False  # uvicorn's own "Invalid HTTP request received." is an acceptable answer
    reset_ok: bool = False  # the server may close the connection without an answer
    timeout: float = 30.0
    follow: Case | None = None  # keepalive: the request sent next on the same connection
    slow_from: int = 0  # slow: where the byte-at-a-time part starts

    def raw(self, close: bool = True) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/1.1".encode("latin-1")]
        for name, value in self.headers:
            # UTF-8 on the wire, as urllib3 sends what botocore signed (the server hashes the bytes)
            lines.append(name.encode("latin-1") + b": " + value.encode("utf-8", "surrogatepass"))
        declared = len(self.body) if self.content_length is None else self.content_length
        if declared >= 0 and not any(n.lower() in ("content-length", "transfer-encoding") for n, _ in self.headers):
            lines.append(b"Content-Length: " + str(declared).encode())
        if close:
            lines.append(b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n" + self.body

    def describe(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "detail": self.detail,
            "service": self.service,
            "operation": self.operation,
            "mode": self.mode,
            "method": self.method,
            "target": self.target[:300],
            "raw_base64": base64.b64encode(self.raw(close=self.mode != "keepalive")[:200_000]).decode(),
        }


def _json_bytes(value: Any) -> bytes:
    # ensure_ascii writes lone surrogates as \udXXX escapes, which is exactly what we want to send
    return json.dumps(value, default=lambda b: base64.b64encode(b).decode()).encode()


def sign(
    ctx: Context,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    service: str,
    region: str = "us-east-1",
    key: str | None = None,
    secret: str | None = None,
    when: dt.datetime | None = None,
) -> list[tuple[str, str]]:
    """``headers`` plus X-Amz-Date and Authorization, from botocore's own SigV4 signer."""
    request = AWSRequest(method=method, url=f"http://{ctx.authority}{target}", data=body)
    for name, value in headers:
        if name.lower() != "host":
            request.headers[name] = value  # HTTPHeaders appends: repeated headers are signed as repeated
    credentials = Credentials(key or ctx.access_key_id, secret or ctx.secret_access_key)
    signer = SigV4Auth(credentials, service, region) if when is None else _SignedAt(credentials, service, region, when)
    signer.add_auth(request)
    return [("Host", ctx.authority)] + [(k, v) for k, v in request.headers.items()]


class _SignedAt(SigV4Auth):
    """botocore's SigV4Auth.add_auth at a chosen time. (Patching botocore.auth.get_current_datetime
    would move the clock of every thread signing at that moment.)"""

    def __init__(self, credentials: Credentials, service: str, region: str, when: dt.datetime) -> None:
        super().__init__(credentials, service, region)
        self._when = when

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = self._when.strftime("%Y%m%dT%H%M%SZ")
        # botocore-stubs omit SigV4Auth's private steps (this and _inject_signature_to_request).
        self._modify_request_before_signing(request)  # type: ignore[attr-defined]
        canonical_request = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical_request)
        self._inject_signature_to_request(request, self.signature(string_to_sign, request))  # type: ignore[attr-defined]


def _wire(
    ctx: Context, service: str, operation: str, params: dict[str, Any], rng: random.Random
) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """method, target, headers (unsigned, no Host) and body as botocore's client would send them."""
    if FORMAT[service] == "json":
        return (
            "POST",
            "/",
            [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", f"{TARGET_PREFIX[service]}.{operation}")],
            _json_bytes(params),
        )
    model = MODELS[service]
    op = model.operation_model(operation)
    if FORMAT[service] == "query":
        form = {"Action": operation, "Version": model.metadata["apiVersion"]}
        try:
            form = create_serializer("query", include_validation=False).serialize_to_request(params, op)["body"]
        except Exception:  # noqa: BLE001 - a finding, reported, never a crash of the campaign
            form.update({k: str(v) for k, v in params.items() if not isinstance(v, (dict, list))})
        # surrogatepass: a lone surrogate goes out as %ED%A0%80, which is not UTF-8
        return (
            "POST",
            "/",
            [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
            urlencode(form, errors="surrogatepass").encode(),
        )
    try:
        serialized = create_serializer("rest-json", include_validation=False).serialize_to_request(params, op)
    except Exception:  # noqa: BLE001 - a finding, reported, never a crash of the campaign
        serialized = {
            "url_path": op.http["requestUri"]
            .split("?")[0]
            .replace("{FunctionName}", "fz-f1")
            .replace("{StatementId}", "p1"),
            "query_string": {},
            "method": op.http["method"],
            "headers": {},
            "body": _json_bytes(params),
        }
    target = serialized["url_path"]
    if serialized["query_string"]:
        target += "?" + urlencode(serialized["query_string"], errors="surrogatepass")
    body = (
        serialized["body"]
        if isinstance(serialized["body"], bytes)
        else str(serialized["body"] or "").encode("utf-8", "surrogatepass")
    )
    # No SDK sends control characters in a header (they would end it): drop them, keep the rest
    # (non-ASCII text goes out as UTF-8, signed as such).
    headers = [
        (k, "".join(c for c in str(v) if c >= " " and c != "\x7f" and not "\ud800" <= c <= "\udfff"))
        for k, v in serialized["headers"].items()
    ]
    return serialized["method"], target, headers, body


def _pick_service(rng: random.Random) -> str:
    return rng.choices([s for s, _ in SERVICE_WEIGHTS], [w for _, w in SERVICE_WEIGHTS])[0]


def _pick_operation(rng: random.Random, service: str) -> tuple[str, bool]:
    if UNSERVED[service] and rng.random() < 0.08:
        return rng.choice(UNSERVED[service]), False
    return rng.choice(SERVED[service]), True


def _model_case(
    rng: random.Random,
    ctx: Context,
    index: int,
    kind: str,
    service: str | None = None,
    operation: str | None = None,
    mutate: bool = False,
) -> tuple[Case, dict[str, Any], Any]:
    service = service or _pick_service(rng)
    served = True
    if operation is None:
        operation, served = _pick_operation(rng, service)
    shape = MODELS[service].operation_model(operation).input_shape
    params = Gen(rng, ctx, service).value(shape) if shape is not None else {}
    detail = "valid" if served else "unserved-operation"
    must_fail = not served
    if mutate:
        params, detail, certain = _mutate(rng, params, shape)
        # Lambda's and the query protocol's members pass through botocore's serializer, which may
        # coerce them: insist on a 4xx for JSON 1.1 bodies only.
        must_fail = must_fail or (FORMAT[service] == "json" and certain)
    method, target, headers, body = _wire(ctx, service, operation, params, rng)
    case = Case(
        index,
        kind,
        detail,
        service,
        operation,
        method,
        target,
        headers,
        body,
        must_fail=must_fail,
        timeout=90.0 if operation == "Invoke" else 30.0,
        http_layer_ok=len(target) > 8192,
    )  # a request line that long is the HTTP parser's to refuse
    return case, params, shape


def _signed(ctx: Context, case: Case, **kwargs: Any) -> Case:
    case.headers = sign(
        ctx, case.method, case.target, case.headers, case.body, SIGNING[case.service or "secretsmanager"], **kwargs
    )
    return case
