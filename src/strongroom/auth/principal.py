"""Who is calling: the credential a request was signed with and what it maps to."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Credential", "VerifiedRequest"]


@dataclass(frozen=True, slots=True)
class Credential:
    """An access key known to the server.

    ``session_token`` is set for temporary credentials (STS, rotation functions); a request made
    with such a key must carry the same token in ``X-Amz-Security-Token``. ``expires_at`` is epoch
    seconds, or None for long-term keys.
    """

    access_key_id: str
    secret_access_key: str
    account_id: str
    principal_arn: str
    session_token: str | None = None
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """The outcome of a successful verification: who signed, and for which region and service."""

    credential: Credential
    region: str
    service: str
