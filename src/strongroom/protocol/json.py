"""AWS's JSON 1.1 protocol (``X-Amz-Target`` + JSON body), generated from botocore's service model.

Nothing here is typed by hand: operations, members, types and constraints all come from the
model botocore ships, so a new botocore brings new operations and constraints with it.

Parsing answers, as AWS's front end does:

* a body that is not JSON (bad UTF-8, ``NaN``, nesting deeper than 1,024, a top-level value other
  than an object) → ``SerializationException``;
* a member of the wrong JSON type (a number where a string belongs, bad base64 for a blob), or
  a number outside its Java type (an integer beyond 32 bits, a long beyond 64)
  → ``SerializationException`` naming the member;
* a value outside its constraints (length, range, enum, pattern) or a missing required member →
  ``ValidationException`` in AWS's wording, every failure counted and listed::

      1 validation error detected: Value 'x...' at 'secretId' failed to satisfy constraint:
      Member must have length less than or equal to 2048

  Members the model marks ``sensitive`` (``SecretString``, ``SecretBinary``, ``RotationToken``)
  are never echoed: their failures read ``Value at 'secretString' failed to ...``.
* members the model does not know are ignored, as AWS ignores them.

Blobs arrive as base64 text and leave as ``bytes``; timestamps leave the services as epoch seconds
(floats) and go on the wire as JSON numbers, which is how JSON 1.1 writes them.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any, Literal

import botocore.session
import orjson

from strongroom.errors import AWSError
from strongroom.protocol.wire import Response, WireRequest

__all__ = ["JSONProtocol"]

Check = Callable[[Any, str, list[str]], Any]

_JSON_HEADERS = [(b"content-type", b"application/x-amz-json-1.1")]


def _serialization(message: str) -> AWSError:
    return AWSError("SerializationException", message)


def _label(name: str) -> str:
    return name[:1].lower() + name[1:]


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return "java.nio.HeapByteBuffer"
    return str(value)


def _fail(errors: list[str], value: Any, path: str, constraint: str, sensitive: bool) -> None:
    shown = "" if sensitive else f" '{_show(value)}'"
    errors.append(f"Value{shown} at '{path}' failed to satisfy constraint: {constraint}")


def _length_checks(meta: dict[str, Any], sensitive: bool) -> Callable[[Any, int, str, list[str]], None]:
    low, high = meta.get("min"), meta.get("max")

    def check(value: Any, size: int, path: str, errors: list[str]) -> None:
        if low is not None and size < low:
            _fail(errors, value, path, f"Member must have length greater than or equal to {low}", sensitive)
        elif high is not None and size > high:
            _fail(errors, value, path, f"Member must have length less than or equal to {high}", sensitive)

    return check


def _pattern(text: str | None) -> re.Pattern[str] | None:
    """The model's (Java) pattern in Python's dialect; None for the few Python cannot express.

    Java's Unicode classes (``\\p{L}`` ...) have no ``re`` equivalent; such members are checked
    for length only, and the service checks what matters about them.
    """
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error:
        return None


def _compile(shape: Any, sensitive: bool = False, whole: bool = False) -> Check:
    """A function checking one value against ``shape``: returns the parsed value, appends failures.

    ``whole``: a pattern must match the whole value (the query protocol's services, IAM and STS,
    validate so: ``x:root`` fails ``[\\w+=,.@-]*``); otherwise it must match somewhere in it.
    """
    kind = shape.type_name
    meta = shape.metadata
    sensitive = sensitive or bool(meta.get("sensitive"))
    length = _length_checks(meta, sensitive)

    if kind == "structure":
        members = {name: _compile(member, sensitive, whole) for name, member in shape.members.items()}
        required = list(meta.get("required", ()))

        def structure(value: Any, path: str, errors: list[str]) -> Any:
            if not isinstance(value, dict):
                raise _serialization(f"Expected an object at '{path or 'body'}'.")
            prefix = f"{path}." if path else ""
            out = {}
            for name, v in value.items():
                check = members.get(name)
                if check is None or v is None:
                    continue  # AWS ignores members it does not know, and nulls.
                out[name] = check(v, prefix + _label(name), errors)
            for name in required:
                if name not in out:
                    errors.append(
                        f"Value null at '{prefix}{_label(name)}' failed to satisfy constraint: Member must not be null"
                    )
            return out

        return structure

    if kind == "list":
        item = _compile(shape.member, sensitive, whole)

        def list_(value: Any, path: str, errors: list[str]) -> Any:
            if not isinstance(value, list):
                raise _serialization(f"Expected a list at '{path}'.")
            out = [item(v, f"{path}.{i}.member", errors) for i, v in enumerate(value, 1)]
            length(value, len(value), path, errors)
            return out

        return list_

    if kind == "map":
        key, val = _compile(shape.key, sensitive, whole), _compile(shape.value, sensitive, whole)

        def map_(value: Any, path: str, errors: list[str]) -> Any:
            if not isinstance(value, dict):
                raise _serialization(f"Expected an object at '{path}'.")
            out = {key(k, f"{path}.key", errors): val(v, f"{path}.value", errors) for k, v in value.items()}
            length(value, len(value), path, errors)
            return out

        return map_

    if kind == "string":
        enum = meta.get("enum")
        pattern = _pattern(meta.get("pattern"))
        if pattern is not None and whole:  # Java's \w and \d are ASCII: "é" is no IAM name character
            pattern = re.compile(pattern.pattern, re.ASCII)
        match = None if pattern is None else (pattern.fullmatch if whole else pattern.search)
        enum_text = f"Member must satisfy enum value set: [{', '.join(enum)}]" if enum else ""

        def string(value: Any, path: str, errors: list[str]) -> Any:
            if not isinstance(value, str):
                raise _serialization(f"Expected a string at '{path}'.")
            before = len(errors)
            length(value, len(value), path, errors)
            if enum and value not in enum and len(errors) == before:
                _fail(errors, value, path, enum_text, sensitive)
            if pattern is not None and len(errors) == before and match(value) is None:  # type: ignore[misc]
                _fail(
                    errors, value, path, f"Member must satisfy regular expression pattern: {pattern.pattern}", sensitive
                )
            return value

        return string

    if kind == "blob":

        def blob(value: Any, path: str, errors: list[str]) -> Any:
            if not isinstance(value, str):
                raise _serialization(f"Expected base64 text at '{path}'.")
            try:
                data = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise _serialization(f"The value at '{path}' is not valid base64.") from None
            length(data, len(data), path, errors)
            return data

        return blob

    if kind in ("integer", "long"):
        low, high = meta.get("min"), meta.get("max")
        # AWS reads an integer into a Java int and a long into a Java long: a number outside their
        # range is a SerializationException, never a value (orjson reads 2**64 as a float that
        # converts back to an int nothing downstream can store or serialize).
        bits = 31 if kind == "integer" else 63
        java_type = "an integer" if kind == "integer" else "a long"

        def number(value: Any, path: str, errors: list[str]) -> Any:
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise _serialization(f"Expected an integer at '{path}'.")
            if not -(1 << bits) <= value < (1 << bits):
                raise _serialization(f"The value at '{path}' is out of range for {java_type}.")
            if low is not None and value < low:
                _fail(errors, value, path, f"Member must have value greater than or equal to {low}", sensitive)
            elif high is not None and value > high:
                _fail(errors, value, path, f"Member must have value less than or equal to {high}", sensitive)
            return value

        return number

    if kind == "boolean":

        def boolean(value: Any, path: str, errors: list[str]) -> Any:
            if not isinstance(value, bool):
                raise _serialization(f"Expected a boolean at '{path}'.")
            return value

        return boolean

    if kind in ("float", "double"):

        def real(value: Any, path: str, errors: list[str]) -> Any:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _serialization(f"Expected a number at '{path}'.")
            return value

        return real

    if kind == "timestamp":

        def timestamp(value: Any, path: str, errors: list[str]) -> Any:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _serialization(f"Expected epoch seconds at '{path}'.")
            return float(value)

        return timestamp

    raise TypeError(f"unsupported shape type {kind}")  # pragma: no cover - the model has no others


def load_object(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object (empty means ``{}``), or AWS's SerializationException."""
    if not body.strip():
        return {}
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _serialization("The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise _serialization("The request body must be a JSON object.")
    return document


def checked(check: Check, document: dict[str, Any], code: str = "ValidationException") -> dict[str, Any]:
    """Run a compiled shape check; every failure, counted, in AWS's one ValidationException."""
    errors: list[str] = []
    params: dict[str, Any] = check(document, "", errors)
    if errors:
        count = len(errors)
        raise AWSError(code, f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(errors))
    return params


_NESTED = (dict, list)


def _clean(value: Any) -> Any:
    """Drop members whose value is None, at every depth: AWS omits absent members.

    Scalars are not recursed into (a page of 100 secrets has thousands of them), nor are ``dict``
    subclasses: a service marks with one (``strongroom.members.Members``) what it built clean.
    """
    if type(value) is dict:
        return {k: (_clean(v) if type(v) in _NESTED else v) for k, v in value.items() if v is not None}
    if type(value) is list:
        return [_clean(v) if type(v) in _NESTED else v for v in value]
    return value


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot serialize {type(value).__name__}")


class JSONProtocol:
    """Parse requests and write answers for one JSON 1.1 service (a :class:`WireProtocol`)."""

    found_by: Literal["target"] = "target"
    internal_error_code = "InternalServiceError"

    def __init__(self, service_name: str, operations: list[str] | None = None) -> None:
        """``operations``: the ones this endpoint serves (default: every operation of the model);
        a target naming any other is ``UnknownOperationException``."""
        self.model = botocore.session.get_session().get_service_model(service_name)
        self.target_prefix: str = self.model.metadata["targetPrefix"]
        self.signing_name: str = self.model.metadata.get("signingName", service_name)
        served = list(self.model.operation_names) if operations is None else operations
        self._checks: dict[str, Check] = {}
        for name in served:
            shape = self.model.operation_model(name).input_shape
            self._checks[name] = _compile(shape) if shape is not None else (lambda v, p, e: {})
        self._targets = {f"{self.target_prefix}.{name}": name for name in served}

    @property
    def operation_names(self) -> list[str]:
        return list(self._checks)

    def find_operation(self, request: WireRequest) -> str:
        """The operation ``X-Amz-Target`` names: one header, on a ``POST``."""
        targets = request.headers.get("x-amz-target")
        if targets is not None and len(targets) > 1:  # which one? Refused rather than guessed
            raise AWSError("UnknownOperationException", "The request has more than one X-Amz-Target header.")
        if request.method != "POST":
            raise AWSError(
                "UnknownOperationException",
                f"The method {request.method[:20]} is not supported: requests are "
                "POST with an X-Amz-Target header naming the operation.",
            )
        if targets is None:
            raise AWSError("UnknownOperationException", "The request has no X-Amz-Target header naming the operation.")
        target = targets[0]
        operation = self._targets.get(target)
        if operation is None:
            raise AWSError(
                "UnknownOperationException", f"The operation '{target[:200]}' is not supported by this endpoint."
            )
        return operation

    def parse(self, operation: str, request: WireRequest) -> dict[str, Any]:
        assert request.body is not None
        return checked(self._checks[operation], load_object(request.body))

    def serialize(self, operation: str, result: dict[str, Any], request_id: str) -> Response:
        return Response(200, _JSON_HEADERS, orjson.dumps(_clean(result), default=_default))

    def serialize_error(self, error: AWSError, request_id: str) -> Response:
        return Response(error.status, _JSON_HEADERS, orjson.dumps({"__type": error.code, "Message": error.message}))

    @staticmethod
    def too_large(limit: int, operation: str | None) -> AWSError:
        return AWSError("RequestEntityTooLargeException", f"Request body is larger than {limit} bytes.", 413)

    @staticmethod
    def throttled() -> AWSError:
        return AWSError("ThrottlingException", "Rate exceeded", 400)
