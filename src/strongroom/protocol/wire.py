"""The one interface the three wire protocols share: what the pipeline may ask of a protocol.

The server's pipeline (:mod:`strongroom.server.pipeline`) runs the same steps for every request;
JSON 1.1 (Secrets Manager, CloudTrail), REST-JSON (Lambda) and the query protocol (IAM, STS)
differ only in the methods of :class:`WireProtocol`:

- :attr:`~WireProtocol.found_by`: how the pipeline finds the service a request is for.
- :meth:`~WireProtocol.find_operation`: the operation a request names. JSON 1.1 reads it from
  ``X-Amz-Target`` and REST-JSON from the method and path, both before the body is read; the
  query protocol's ``Action`` is in the body, so it answers ``None`` until
  :attr:`WireRequest.body` is set and is asked again after the body is read.
- :meth:`~WireProtocol.parse`: the operation's parameters, validated against botocore's model.
- :meth:`~WireProtocol.serialize` and :meth:`~WireProtocol.serialize_error`: the answer, a
  :class:`Response` (status, headers, body) in the protocol's format, whatever the protocol.
- the protocol's own words for refusals the pipeline makes itself: a body over its limit, a
  call throttled, and the code of the 500 that answers a surprise.

Every method raises :class:`~strongroom.errors.AWSError` for the client's mistakes, nothing else.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from strongroom.errors import AWSError

__all__ = ["Response", "WireProtocol", "WireRequest"]

Headers = dict[str, list[str]]


class Response:
    """An answer on the wire: the pipeline adds the request id and the length to ``headers``."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class WireRequest:
    """One request as the protocols read it: the request line and headers (decoded once), the
    body once it is read, and what finding the operation learned (a REST route's path
    parameters, the query protocol's decoded form), kept for :meth:`WireProtocol.parse`."""

    __slots__ = ("body", "form", "headers", "method", "pairs", "path", "path_params", "query")

    def __init__(self, method: str, path: str, query: str, pairs: list[tuple[str, str]], headers: Headers) -> None:
        self.method = method
        self.path = path  # as sent (not percent-decoded): see RestJSONProtocol.find_operation
        self.query = query
        self.pairs = pairs  # the headers in the order they came (REST-JSON reads members from them)
        self.headers = headers  # by lower-case name
        self.body: bytes | None = None
        self.path_params: dict[str, str] = {}
        self.form: dict[str, str] | None = None


class WireProtocol(Protocol):
    """A wire format of one AWS service, generated from its botocore model."""

    @property
    def signing_name(self) -> str:
        """The service name SigV4 scopes its credentials to."""
        ...

    @property
    def found_by(self) -> Literal["target", "route", "scope"]:
        """How the pipeline's route step finds a request of this protocol: by ``X-Amz-Target``
        (whose prefix, :attr:`target_prefix`, names the service), by method and path, or by the
        signature's scope (the operation, ``Action``, is then in the body)."""
        ...

    @property
    def target_prefix(self) -> str:
        """The ``X-Amz-Target`` prefix of a protocol found by target; "" for the others."""
        ...

    @property
    def internal_error_code(self) -> str:
        """The code of the 500 that answers a surprise."""
        ...

    def find_operation(self, request: WireRequest) -> str | None:
        """The operation ``request`` names, or ``None`` while the body that names it is unread.
        Raises ``AWSError`` (UnknownOperationException, InvalidAction, ...) when it names none
        this endpoint serves."""
        ...

    def parse(self, operation: str, request: WireRequest) -> dict[str, Any]:
        """The operation's parameters from the read request, validated against the model."""
        ...

    def serialize(self, operation: str, result: dict[str, Any], request_id: str) -> Response:
        """The answer to a call that returned ``result``."""
        ...

    def serialize_error(self, error: AWSError, request_id: str) -> Response:
        """The answer to a call refused with ``error``."""
        ...

    def too_large(self, limit: int, operation: str | None) -> AWSError:
        """The refusal of a body over ``limit`` bytes."""
        ...

    def throttled(self) -> AWSError:
        """The refusal of a call past its principal's share, or of a large body with no slot."""
        ...
