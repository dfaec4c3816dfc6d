"""Console sessions: a random token in an HttpOnly cookie, its SHA-256 in the store.

* **What proves the principal.** Signing in runs STS GetCallerIdentity through the pipeline,
  signed with the key the user typed: the server's own SigV4 check against its key store. The
  session then names the access key id; every later action is signed with the key store's copy of
  the key (see :mod:`strongroom.server.console.calls`), so the secret key never goes back to the
  browser, and a key deactivated or deleted ends its sessions at the next click.
* **Shared storage.** Sessions are rows in the database (migration 12), found by the SHA-256 of
  the token: every worker and every node sees them, and a copy of the table holds no usable
  session. Signing out deletes the row: the cookie is then worth nothing anywhere.
* **Lifetime.** ``LIFETIME`` seconds from sign-in, never past the credential's own expiry (STS).
* **CSRF.** Every state-changing request carries a token derived from the session's token with
  HMAC-SHA256 (:func:`csrf_token`): a page of another origin cannot read it, and no storage is
  needed to check it. The sign-in form, before any session exists, uses a double-submit cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from strongroom import clock
from strongroom.store import Database, Tx, console_sessions

__all__ = ["LIFETIME", "Session", "SessionStore", "csrf_token", "new_token"]

LIFETIME = 3600.0  # seconds a console session lasts after sign-in


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(token: str) -> str:
    """The form token of the session (or sign-in cookie) whose token is ``token``."""
    mac = hmac.new(token.encode(), b"strongroom-console-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_ok(token: str, offered: str) -> bool:
    return bool(offered) and hmac.compare_digest(csrf_token(token), offered)


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    access_key_id: str
    account_id: str
    principal_arn: str
    region: str
    expires_at: float

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


class SessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def open(
        self, access_key_id: str, account_id: str, principal_arn: str, region: str, credential_expiry: float | None
    ) -> Session:
        """A new session (a new token every time: a token set before sign-in is never adopted)."""
        token = new_token()
        now = clock.now()
        expires = now + LIFETIME
        if credential_expiry is not None:
            expires = min(expires, credential_expiry)

        def tx_fn(tx: Tx) -> None:
            console_sessions.purge_expired(tx, now)
            console_sessions.insert_session(
                tx, _hash(token), access_key_id, account_id, principal_arn, region, now, expires
            )

        await self._db.write(tx_fn)
        return Session(token, access_key_id, account_id, principal_arn, region, expires)

    async def find(self, token: str) -> Session | None:
        """The live session of ``token``, or None (unknown, signed out or expired)."""
        if not token or len(token) > 100:
            return None
        row = await self._db.read(lambda tx: console_sessions.session(tx, _hash(token)))
        if row is None or float(row[5]) <= clock.now():
            return None
        return Session(token, row[0], row[1], row[2], row[3], float(row[5]))

    async def close(self, token: str) -> None:
        await self._db.write(lambda tx: console_sessions.delete_session(tx, _hash(token)))
