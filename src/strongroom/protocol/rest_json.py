"""AWS's REST-JSON protocol (Lambda), generated from botocore's service model.

Operations are found by method and path (the model's ``requestUri`` templates); members come
from the path, the query string, headers and the JSON body as the model places them, and are
validated with the same rules as JSON 1.1 (:mod:`strongroom.protocol.json`), and then every
string member's pattern is matched against the **whole** value, as AWS's validation does (Java's
``matches``): the shared check only searches for the pattern, so ``x;y`` passed Lambda's
``[a-zA-Z0-9-_]+`` for FunctionName. Answers carry the
model's status code, header members as headers, and either a raw payload (Invoke) or a JSON body.
Errors are ``{"Type": "User", "message": ...}`` with ``x-amzn-ErrorType`` and the status the
model's error shape declares.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

import botocore.session
import orjson

from strongroom.errors import AWSError
from strongroom.protocol.json import (
    Check,
    _clean,
    _compile,
    _default,
    _fail,
    _label,
    _pattern,
    _serialization,
    checked,
    load_object,
)
from strongroom.protocol.wire import Response, WireRequest

__all__ = ["RestJSONProtocol"]


def _template(uri: str) -> re.Pattern[str]:
    """A route's path pattern. A trailing slash is optional, as on AWS: older SDK models (the aws
    CLI v2's, the JavaScript SDK v2's) send ``/2015-03-31/functions/`` where the current model
    has ``/2015-03-31/functions``."""
    path = uri.split("?", 1)[0].rstrip("/")
    pattern = re.sub(
        r"\\\{(\w+)(\\\+)?\\\}", lambda m: f"(?P<{m.group(1)}>{'.+' if m.group(2) else '[^/]+'})", re.escape(path)
    )
    return re.compile(f"^{pattern}/?$")


Whole = Callable[[Any, str, list[str]], None]


def _whole(shape: Any, sensitive: bool = False) -> Whole | None:
    """A check that each string under ``shape`` matches its pattern whole; None when none has one."""
    sensitive = sensitive or bool(shape.metadata.get("sensitive"))
    kind = shape.type_name
    if kind == "string":
        pattern = _pattern(shape.metadata.get("pattern"))
        if pattern is None:
            return None

        def string(value: Any, path: str, errors: list[str]) -> None:
            if pattern.fullmatch(value) is None:
                _fail(
                    errors, value, path, f"Member must satisfy regular expression pattern: {pattern.pattern}", sensitive
                )

        return string
    if kind == "structure":
        members = {n: c for n, m in shape.members.items() if (c := _whole(m, sensitive)) is not None}
        if not members:
            return None

        def structure(value: Any, path: str, errors: list[str]) -> None:
            prefix = f"{path}." if path else ""
            for name, check in members.items():
                if name in value:
                    check(value[name], prefix + _label(name), errors)

        return structure
    if kind == "list":
        item = _whole(shape.member, sensitive)
        if item is None:
            return None

        def list_(value: Any, path: str, errors: list[str]) -> None:
            for i, v in enumerate(value, 1):
                item(v, f"{path}.{i}.member", errors)

        return list_
    if kind == "map":
        key, val = _whole(shape.key, sensitive), _whole(shape.value, sensitive)
        if key is None and val is None:
            return None

        def map_(value: Any, path: str, errors: list[str]) -> None:
            for k, v in value.items():
                if key is not None:
                    key(k, f"{path}.key", errors)
                if val is not None:
                    val(v, f"{path}.value", errors)

        return map_
    return None


def _coerce(value: str, kind: str) -> Any:
    if kind in ("integer", "long"):
        try:
            return int(value)
        except ValueError:
            raise _serialization(f"'{value}' is not an integer.") from None
    if kind == "boolean":
        return value.lower() == "true"
    return value


class RestJSONProtocol:
    """Parse requests and write answers for one REST-JSON service (a :class:`WireProtocol`)."""

    found_by: Literal["route"] = "route"
    target_prefix = ""
    internal_error_code = "ServiceException"

    def __init__(self, service_name: str, operations: list[str]) -> None:
        self.model = botocore.session.get_session().get_service_model(service_name)
        self.signing_name: str = self.model.metadata["signingName"]
        self._routes: list[tuple[str, re.Pattern[str], str]] = []
        self._checks: dict[str, Check] = {}
        self._whole: dict[str, Whole | None] = {}
        for name in operations:
            op = self.model.operation_model(name)
            self._routes.append((op.http["method"], _template(op.http["requestUri"]), name))
            self._checks[name] = _compile(op.input_shape) if op.input_shape is not None else (lambda v, p, e: {})
            self._whole[name] = _whole(op.input_shape) if op.input_shape is not None else None
        self._errors = {
            s: self.model.shape_for(s).metadata.get("error", {}).get("httpStatusCode", 400)
            for s in self.model.shape_names
            if self.model.shape_for(s).metadata.get("exception")
        }

    def find_operation(self, request: WireRequest) -> str | None:
        """The operation whose route matches the method and path, its path parameters kept on
        ``request``; ``None`` when no route's path matches (another service's request).

        Routes match the path as sent, each parameter decoded once here: on the decoded path a
        function name holding "/" (%2F) would match another operation's route."""
        allowed = False
        for route_method, pattern, name in self._routes:
            m = pattern.match(request.path)
            if m:
                if route_method == request.method:
                    request.path_params = {k: unquote(v) for k, v in m.groupdict().items()}
                    return name
                allowed = True
        if allowed:
            raise AWSError("MethodNotAllowedException", "The method is not allowed for this resource.", 405)
        return None

    def parse(self, operation: str, request: WireRequest) -> dict[str, Any]:
        path_params, query, headers, body = request.path_params, request.query, request.pairs, request.body
        assert body is not None
        op = self.model.operation_model(operation)
        shape = op.input_shape
        if shape is None:
            return {}
        payload = shape.serialization.get("payload")
        document: dict[str, Any] = {}
        if payload is not None:
            if body:
                document[payload] = base64.b64encode(body).decode()  # the blob check decodes it again
        else:
            document = load_object(body)
        lower_headers = {k.lower(): v for k, v in headers}
        query_params = dict(parse_qsl(query, keep_blank_values=True))
        for name, member in shape.members.items():
            where = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if where == "uri" and wire in path_params:
                document[name] = _coerce(path_params[wire], member.type_name)
            elif where == "querystring" and wire in query_params:
                document[name] = _coerce(query_params[wire], member.type_name)
            elif where == "header" and wire.lower() in lower_headers:
                document[name] = _coerce(lower_headers[wire.lower()], member.type_name)
        params = checked(self._checks[operation], document)
        whole = self._whole[operation]
        if whole is not None:
            errors: list[str] = []
            whole(params, "", errors)
            if errors:
                count = len(errors)
                raise AWSError(
                    "ValidationException",
                    f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(errors),
                )
        return params

    def serialize(self, operation: str, result: dict[str, Any], request_id: str) -> Response:
        op = self.model.operation_model(operation)
        status = int(op.http.get("responseCode", 200))
        shape = op.output_shape
        headers: list[tuple[bytes, bytes]] = []
        if shape is None:
            return Response(status, headers, b"")
        result = dict(result)
        payload = shape.serialization.get("payload")
        for name, member in shape.members.items():
            where = member.serialization.get("location")
            if name not in result:
                continue
            if where == "statusCode":
                status = int(result.pop(name))
            elif where == "header":
                value = result.pop(name)
                if value is not None:
                    headers.append((member.serialization["name"].encode(), str(value).encode()))
        if payload is not None:
            body = result.get(payload) or b""
            headers.append((b"content-type", b"application/json"))
            return Response(status, headers, body if isinstance(body, bytes) else str(body).encode())
        headers.append((b"content-type", b"application/json"))
        if status == 204:
            return Response(status, headers, b"")
        return Response(status, headers, orjson.dumps(_clean(result), default=_default))

    def serialize_error(self, error: AWSError, request_id: str) -> Response:
        status = error.status if error.status != 400 else self._errors.get(error.code, 400)
        body = orjson.dumps({"Type": "User", "message": error.message})
        return Response(
            status, [(b"x-amzn-errortype", error.code.encode()), (b"content-type", b"application/json")], body
        )

    @staticmethod
    def too_large(limit: int, operation: str | None) -> AWSError:
        if operation is not None:  # Lambda's own words
            return AWSError(
                "RequestEntityTooLargeException",
                f"Request must be smaller than {limit} bytes for the {operation} operation",
                413,
            )
        return AWSError("RequestEntityTooLargeException", f"Request body is larger than {limit} bytes.", 413)

    @staticmethod
    def throttled() -> AWSError:
        return AWSError("TooManyRequestsException", "Rate exceeded", 429)
