"""Who is calling: the credential a request was signed with and what it maps to."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BUILTIN_ROTATOR", "ROOT", "Credential", "VerifiedRequest"]

# The two privileges a credential can carry (``Credential.privilege``).
ROOT = "root"
BUILTIN_ROTATOR = "builtin-rotator"


@dataclass(
    frozen=True,  # pragma: no mutate (nothing assigns to a credential, mypy --strict refuses it, or hashes one)
    slots=True,  # pragma: no mutate (a memory layout: no answer depends on it)
)
class Credential:
    """An access key known to the server.

    ``session_token`` is set for temporary credentials (STS, rotation functions); a request made
    with such a key must carry the same token in ``X-Amz-Security-Token``. ``expires_at`` is epoch
    seconds, or None for long-term keys.

    ``privilege`` is the only source of privilege: ``"root"`` for an account's root (the keys made
    by ``ensure_admin``, ``admin create-account`` and a root's own CreateAccessKey),
    ``"builtin-rotator"`` for the in-memory credentials of strongroom's built-in rotators, None for
    everyone else. It is set where the credential is minted and stored with it; nothing reads
    privilege from the text of ``principal_arn`` (a caller chooses parts of that text).

    ``principal_id`` is the caller's unique id, AWS's ``aws:userid``: the account id for root, the
    user's ``AIDA...`` id, ``AROA...:session-name`` for a role session (the role's id when the
    session was made: a role deleted and made again has another). ``role_arn`` is the role's own
    ARN, with its path, for a role session (``aws:PrincipalArn``); ``""`` otherwise.
    """

    access_key_id: str
    secret_access_key: str
    account_id: str
    principal_arn: str
    session_token: str | None = None
    expires_at: float | None = None
    privilege: str | None = None
    principal_id: str = ""
    role_arn: str = ""


@dataclass(
    frozen=True,  # pragma: no mutate (nothing assigns to it, mypy --strict refuses it, or hashes it)
    slots=True,  # pragma: no mutate (a memory layout: no answer depends on it)
)
class VerifiedRequest:
    """The outcome of a successful verification: who signed, and for which region and service."""

    credential: Credential
    region: str
    service: str
