"""AWS's query protocol (IAM, STS): form-encoded requests, XML answers, from botocore's models.

Requests are ``Action=CreateUser&Version=2010-05-08&UserName=...`` (body or query string); lists
are ``Name.member.N``, maps ``Name.entry.N.key`` / ``.value``, structures ``Name.Member``. The
decoded parameters are validated with the same rules as JSON 1.1. Answers are
``<OpResponse xmlns=...><OpResult>...</OpResult><ResponseMetadata>...`` and errors IAM's
``<ErrorResponse>``, with the status the model's error shape declares.

Validation: every member the model constrains (pattern, length, range, enum, required) is
checked for every operation, patterns against the whole value (IAM and STS are Java services:
a pattern must match all of a name, so ``x:root`` is no ``RoleSessionName``). A failure is
``ValidationError`` in AWS's words, e.g. ``1 validation error detected: Value 'x:root' at
'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern:
[\\w+=,.@-]*``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape as _escape

import botocore.session

from strongroom.errors import AWSError
from strongroom.protocol.json import _compile, checked
from strongroom.protocol.wire import Response, WireRequest

__all__ = ["QueryProtocol"]


_XML_HEADERS = [(b"content-type", b"text/xml")]


def _decode(shape: Any, form: dict[str, str], prefix: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            value = _decode(member, form, f"{prefix}{wire}" if not prefix else f"{prefix}.{wire}")
            if value is not None:
                out[name] = value
        return out if (out or not prefix) else None
    if kind == "list":
        flattened = shape.serialization.get("flattened")
        base = prefix if flattened else f"{prefix}.member"
        # The indices present, in one pass over the form: probing the whole form for each index
        # in turn took quadratic time, minutes of a blocked event loop for a 1 MiB body.
        head = f"{base}."
        present = set()
        for k in form:
            if k.startswith(head):
                index = k[len(head) :].partition(".")[0]
                if index.isascii() and index.isdigit():
                    present.add(int(index))
        items, i = [], 1
        while i in present:
            items.append(_decode(shape.member, form, f"{base}.{i}"))
            i += 1
        if not items and prefix in form and form[prefix] == "":
            return []
        return items or None
    if kind == "map":
        out, i = {}, 1
        while f"{prefix}.entry.{i}.key" in form:
            out[form[f"{prefix}.entry.{i}.key"]] = _decode(shape.value, form, f"{prefix}.entry.{i}.value")
            i += 1
        return out or None
    if prefix not in form:
        return None
    text = form[prefix]
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind == "boolean":
            return text.lower() == "true"
        if kind == "timestamp":
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        if kind in ("float", "double"):
            return float(text)
    except ValueError:
        raise AWSError("MalformedInput", f"Invalid value for {prefix}: {text}") from None
    return text


# Characters XML 1.0 cannot carry at all, even as references (a caller's U+0000 echoed in a
# message, say): replaced, so the document always parses.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def escape(text: str) -> str:
    out = _escape(text)
    return _NOT_XML.sub("\ufffd", out) if _NOT_XML.search(out) else out


def _xml(shape: Any, value: Any) -> str:
    kind = shape.type_name
    if value is None:
        return ""
    if kind == "structure":
        parts = []
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                wire = member.serialization.get("name", name)
                parts.append(f"<{wire}>{_xml(member, value[name])}</{wire}>")
        return "".join(parts)
    if kind == "list":
        tag = shape.member.serialization.get("name", "member")
        return "".join(f"<{tag}>{_xml(shape.member, v)}</{tag}>" for v in value)
    if kind == "map":
        return "".join(
            f"<entry><key>{escape(str(k))}</key><value>{_xml(shape.value, v)}</value></entry>" for k, v in value.items()
        )
    if kind == "timestamp":
        return dt.datetime.fromtimestamp(float(value), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "boolean":
        return "true" if value else "false"
    return escape(str(value))


class QueryProtocol:
    """Parse requests and write answers for one query-protocol service (a :class:`WireProtocol`)."""

    found_by: Literal["scope"] = "scope"
    target_prefix = ""
    internal_error_code = "ServiceFailure"

    def __init__(self, service_name: str, operations: list[str]) -> None:
        self.model = botocore.session.get_session().get_service_model(service_name)
        self.signing_name: str = self.model.metadata.get("signingName", service_name)
        self.version: str = self.model.metadata["apiVersion"]
        self.xmlns: str = self.model.metadata.get(
            "xmlNamespace", f"https://{service_name}.amazonaws.com/doc/{self.version}/"
        )
        self.operations = set(operations)
        # Every member with a pattern, length or range is checked from the model, patterns
        # against the whole value as IAM and STS do (``x:root`` is no RoleSessionName).
        self._checks = {
            name: _compile(self.model.operation_model(name).input_shape, whole=True)
            for name in operations
            if self.model.operation_model(name).input_shape is not None
        }
        self._status = {
            s: self.model.shape_for(s).metadata.get("error", {}).get("httpStatusCode", 400)
            for s in self.model.shape_names
            if self.model.shape_for(s).metadata.get("exception")
        }
        self._codes = {s: self.model.shape_for(s).metadata.get("error", {}).get("code", s) for s in self._status}

    def find_operation(self, request: WireRequest) -> str | None:
        """The form's ``Action``: ``None`` until the body is read (the form is the query string
        and the body); the decoded form is kept on ``request`` for :meth:`parse`."""
        if request.body is None:
            return None
        try:
            form = dict(parse_qsl(request.query, keep_blank_values=True))
            form.update(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError:
            raise AWSError("MalformedInput", "The request body is not UTF-8.") from None
        request.form = form
        action = form.get("Action")
        if action is None:
            raise AWSError("UnknownOperationException", "The request names no Action.")
        if action not in self.operations:
            raise AWSError(
                "InvalidAction",
                f"Could not find operation {action} for version {form.get('Version', 'NO_VERSION_SPECIFIED')}",
            )
        return action

    def parse(self, operation: str, request: WireRequest) -> dict[str, Any]:
        shape = self.model.operation_model(operation).input_shape
        if shape is None:
            return {}
        assert request.form is not None
        return checked(self._checks[operation], _decode(shape, request.form, ""), code="ValidationError")

    def serialize(self, operation: str, result: dict[str, Any], request_id: str) -> Response:
        shape = self.model.operation_model(operation).output_shape
        inner = "" if shape is None else f"<{operation}Result>{_xml(shape, result)}</{operation}Result>"
        body = (
            f'<{operation}Response xmlns="{self.xmlns}">{inner}<ResponseMetadata><RequestId>{request_id}'
            f"</RequestId></ResponseMetadata></{operation}Response>"
        )
        return Response(200, _XML_HEADERS, body.encode())

    def serialize_error(self, error: AWSError, request_id: str) -> Response:
        status = error.status if error.status != 400 else self._status.get(error.code, 400)
        code = self._codes.get(error.code, error.code)
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            f'<ErrorResponse xmlns="{self.xmlns}"><Error><Type>{kind}</Type><Code>{escape(code)}</Code>'
            f"<Message>{escape(error.message)}</Message></Error><RequestId>{request_id}</RequestId>"
            "</ErrorResponse>"
        )
        return Response(status, _XML_HEADERS, body.encode())

    @staticmethod
    def too_large(limit: int, operation: str | None) -> AWSError:
        return AWSError("RequestEntityTooLargeException", f"Request body is larger than {limit} bytes.", 413)

    @staticmethod
    def throttled() -> AWSError:
        return AWSError("ThrottlingException", "Rate exceeded", 400)
