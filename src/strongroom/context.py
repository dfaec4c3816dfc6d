"""What every operation knows about the request it serves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RequestContext"]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The caller and the namespace: secrets live per account and region."""

    account_id: str
    region: str
    principal_arn: str
    request_id: str
    source_ip: str = "127.0.0.1"
    partition: str = "aws"
    user_agent: str = ""
    access_key_id: str = ""
    operation: str = ""
    params: dict[str, Any] | None = None
    authz: Any = None  # the Authorizer, when policies are enforced
