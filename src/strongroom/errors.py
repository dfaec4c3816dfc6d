"""The one exception type that crosses layers: an error AWS would answer with.

Services raise :class:`AWSError` with the code and message AWS uses; the server turns it into
``{"__type": code, "Message": message}`` with the HTTP status. Nothing else a layer raises is
shown to a client: anything unexpected becomes ``InternalServiceError`` with the request id.
"""

from __future__ import annotations

__all__ = ["AWSError"]


class AWSError(Exception):
    """An error that reaches the client as ``{"__type": code, "Message": message}``.

    ``message`` must never contain a secret value: it is logged and audited.
    """

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
