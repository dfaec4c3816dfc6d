"""Access keys known to the server, and the administrator key made on first start.

Secret access keys are stored encrypted (AES-256-GCM under a key wrapped by the master key,
bound to their access key id). Known keys are cached in memory; an unknown key id is looked up
in the database again (another node may have made it), at most once per second per id, so a
flood of bad ids does not become a flood of queries.
"""

from __future__ import annotations

import os
import secrets as _random
import string
import threading
from pathlib import Path

from strongroom import clock
from strongroom.auth.principal import Credential
from strongroom.crypto import Keyring
from strongroom.store import Conflict, Database, Tx

__all__ = ["KeyStore", "new_access_key_id", "new_secret_access_key", "write_credentials_file"]

_KEY_REF = "strongroom:access-keys"
_NEGATIVE_TTL = 1.0
_POSITIVE_TTL = 5.0


def new_access_key_id() -> str:
    return "AKIA" + "".join(_random.choice(string.ascii_uppercase + "234567") for _ in range(16))


def new_secret_access_key() -> str:
    alphabet = string.ascii_letters + string.digits + "+/"
    return "".join(_random.choice(alphabet) for _ in range(40))


def write_credentials_file(path: Path, access_key_id: str, secret_access_key: str) -> None:
    """The AWS shared-credentials format under a ``[strongroom]`` profile, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"[strongroom]\naws_access_key_id = {access_key_id}\n"
                f"aws_secret_access_key = {secret_access_key}\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class KeyStore:
    def __init__(self, db: Database, keyring: Keyring) -> None:
        self._db = db
        self._keyring = keyring
        self._known: dict[str, Credential] = {}
        self._fresh: dict[str, float] = {}
        self._local: set[str] = set()  # in-memory-only keys (function workers' credentials)
        self._missing: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wrapped: bytes | None = None

    def _internal_key(self, tx: Tx) -> bytes:
        if self._wrapped is None:
            row = tx.one("SELECT wrapped FROM kms_keys WHERE account_id = '-' AND region = '-' AND key_ref = ?",
                         (_KEY_REF,))
            if row is None:
                raise LookupError("the access-key encryption key does not exist yet")
            self._wrapped = bytes(row[0])
        return self._wrapped

    def _ensure_internal_key(self, tx: Tx) -> bytes:
        try:
            return self._internal_key(tx)
        except LookupError:
            wrapped = self._keyring.new_key(_KEY_REF)
            tx.execute("INSERT INTO kms_keys (account_id, region, key_ref, wrapped, created_date) "
                       "VALUES ('-', '-', ?, ?, ?)", (_KEY_REF, wrapped, clock.now()))
            self._wrapped = wrapped
            return wrapped

    def add(self, access_key_id: str, secret_access_key: str, account_id: str, principal_arn: str) -> Credential:
        def tx_fn(tx: Tx) -> None:
            wrapped = self._ensure_internal_key(tx)
            blob = self._keyring.encrypt(_KEY_REF, wrapped, secret_access_key.encode(), access_key_id.encode())
            tx.execute("INSERT INTO access_keys (access_key_id, account_id, principal_arn, secret_enc, status, "
                       "created_date) VALUES (?, ?, ?, ?, 'Active', ?)",
                       (access_key_id, account_id, principal_arn, blob, clock.now()))

        self._db.write_sync(tx_fn)
        credential = Credential(access_key_id, secret_access_key, account_id, principal_arn)
        with self._lock:
            self._known[access_key_id] = credential
            self._missing.pop(access_key_id, None)
        return credential

    def _load(self, access_key_id: str) -> Credential | None:
        def tx_fn(tx: Tx) -> Credential | None:
            row = tx.one("SELECT account_id, principal_arn, secret_enc, status, session_token_enc, expires_at "
                         "FROM access_keys WHERE access_key_id = ?", (access_key_id,))
            if row is None or row[3] != "Active":
                return None
            key = self._internal_key(tx)
            secret = self._keyring.decrypt(_KEY_REF, key, bytes(row[2]), access_key_id.encode())
            token = None
            if row[4] is not None:
                token = self._keyring.decrypt(_KEY_REF, key, bytes(row[4]), b"session:" + access_key_id.encode()).decode()
            return Credential(access_key_id, secret.decode(), row[0], row[1], session_token=token, expires_at=row[5])

        return self._db.read_sync(tx_fn)

    def lookup(self, access_key_id: str) -> Credential | None:
        """The credential for a key id. Answers from memory; a key loaded from the database is
        checked again after a few seconds, so a key deleted or deactivated on any node stops
        working everywhere within ``_POSITIVE_TTL``."""
        now = clock.now()
        known = self._known.get(access_key_id)
        if known is not None and (access_key_id in self._local or self._fresh.get(access_key_id, 0.0) > now):
            return known
        if self._missing.get(access_key_id, 0.0) > now:
            return None
        credential = self._load(access_key_id)
        with self._lock:
            if credential is None:
                if len(self._missing) > 100_000:
                    self._missing.clear()
                self._missing[access_key_id] = now + _NEGATIVE_TTL
                self._known.pop(access_key_id, None)
            else:
                self._known[access_key_id] = credential
                self._fresh[access_key_id] = now + _POSITIVE_TTL
        return credential

    def forget(self, access_key_id: str) -> None:
        with self._lock:
            self._known.pop(access_key_id, None)
            self._fresh.pop(access_key_id, None)

    def add_session(self, account_id: str, principal_arn: str, ttl: float) -> Credential:
        """Temporary credentials (STS AssumeRole), stored so that every node accepts them."""
        access_key_id = "ASIA" + new_access_key_id()[4:]
        secret, token = new_secret_access_key(), _random.token_urlsafe(96)
        expires_at = clock.now() + ttl

        def tx_fn(tx: Tx) -> None:
            wrapped = self._ensure_internal_key(tx)
            tx.execute("INSERT INTO access_keys (access_key_id, account_id, principal_arn, secret_enc, status, "
                       "created_date, session_token_enc, expires_at) VALUES (?, ?, ?, ?, 'Active', ?, ?, ?)",
                       (access_key_id, account_id, principal_arn,
                        self._keyring.encrypt(_KEY_REF, wrapped, secret.encode(), access_key_id.encode()),
                        clock.now(),
                        self._keyring.encrypt(_KEY_REF, wrapped, token.encode(), b"session:" + access_key_id.encode()),
                        expires_at))
            tx.execute("DELETE FROM access_keys WHERE expires_at IS NOT NULL AND expires_at < ?", (clock.now() - 86400,))

        self._db.write_sync(tx_fn)
        return Credential(access_key_id, secret, account_id, principal_arn, session_token=token, expires_at=expires_at)

    def temporary(self, account_id: str, principal_arn: str, ttl: float = 3600.0) -> Credential:
        """Short-lived credentials with a session token, known to this node only (in memory).

        The rotation runtime gives them to function workers, which call back this same node.
        """
        credential = Credential("ASIA" + new_access_key_id()[4:], new_secret_access_key(), account_id,
                                principal_arn, session_token=_random.token_urlsafe(48),
                                expires_at=clock.now() + ttl)
        with self._lock:
            expired = [k for k, c in self._known.items() if c.expires_at is not None and c.expires_at < clock.now()]
            for key in expired:
                del self._known[key]
                self._local.discard(key)
            self._known[credential.access_key_id] = credential
            self._local.add(credential.access_key_id)
        return credential

    def revoke(self, access_key_id: str) -> None:
        """End temporary credentials from :meth:`temporary` now (their worker ended or its function
        was deleted): the next request signed with them is refused."""
        with self._lock:
            if access_key_id in self._local:
                self._local.discard(access_key_id)
                self._known.pop(access_key_id, None)

    def ensure_admin(self, account_id: str, access_key_id: str | None, secret_access_key: str | None,
                     credentials_file: Path | None) -> tuple[str, Path | None]:
        """Make sure the account's administrator key exists; answer its id and the file holding it.

        With both environment values given, that key is the administrator's. Otherwise the key
        made on first start is kept, and written to ``credentials_file`` when the file is absent.
        """
        principal = f"arn:aws:iam::{account_id}:root"
        if access_key_id and secret_access_key:
            existing = self.lookup(access_key_id)
            if existing is None:
                try:
                    self.add(access_key_id, secret_access_key, account_id, principal)
                except Conflict:
                    pass  # Another node added it at the same moment.
            elif existing.secret_access_key != secret_access_key:
                raise SystemExit(f"access key {access_key_id} already exists with another secret key")
            return access_key_id, None
        row = self._db.read_sync(lambda tx: tx.one(
            "SELECT access_key_id FROM access_keys WHERE account_id = ? AND principal_arn = ? "
            "ORDER BY created_date LIMIT 1", (account_id, principal)))
        if row is None:
            access_key_id = new_access_key_id()
            credential = self.add(access_key_id, new_secret_access_key(), account_id, principal)
        else:
            credential = self.lookup(row[0])  # type: ignore[assignment]
            assert credential is not None
        if credentials_file is not None and not credentials_file.exists():
            write_credentials_file(credentials_file, credential.access_key_id, credential.secret_access_key)
        return credential.access_key_id, credentials_file
