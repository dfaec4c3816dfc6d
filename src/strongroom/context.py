"""What every operation knows about the request it serves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RequestContext"]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The caller and the namespace: secrets live per account and region.

    ``privilege``, ``principal_id`` and ``role_arn`` are copied from the credential the request was
    signed with (:class:`strongroom.auth.principal.Credential`): privilege is decided from them,
    never from the text of ``principal_arn``.
    """

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
    privilege: str | None = None  # "root", "builtin-rotator" or None: set only where credentials are minted
    principal_id: str = ""  # aws:userid
    role_arn: str = ""  # a role session's role (with its path)
    # aws:SecureTransport: the request came over TLS (to this server, or to a trusted proxy that
    # said so in X-Forwarded-Proto).
    secure: bool = False

    @property
    def principal_type(self) -> str:
        """``aws:PrincipalType``: ``Account`` (root), ``AssumedRole`` (a role session, a function's
        credentials) or ``User``, from the credential, never from the text of the ARN."""
        if self.privilege == "root":
            return "Account"
        if self.role_arn or self.privilege == "builtin-rotator":
            return "AssumedRole"
        return "User"
