"""Access keys known to the server, and the administrator key made on first start.

Secret access keys are stored encrypted (AES-256-GCM under a key wrapped by the master key,
bound to their access key id). Each key carries its privilege (``Credential.privilege``: account
root, or none; the built-in rotators' in-memory keys are the only others), set where the key is
minted and stored with it.

Known keys are cached in memory; an unknown key id is looked up in the database again (another
node may have made it), at most once per second per id, so a flood of bad ids does not become a
flood of queries.

**Revocation.** Deactivating or deleting a key, or deleting a role (which deletes its sessions),
bumps ``key_generation`` in the same transaction (:meth:`KeyStore.revoked`). The node that made
the change forgets the key at once. Every node reads the generation every ``_POLL`` seconds
(:meth:`KeyStore.watch`: one tiny query, never one per request) and drops every cached key when
it changed, so a revoked key stops working on every node within ``_POLL`` seconds plus one
query. A cached key is trusted only while the generation was read less than ``_TRUST`` seconds
ago: a node that cannot read it (database gone, task stopped) checks every key in the database
instead. Without a running :meth:`watch` (command-line tools) nothing is trusted from memory.

**Workers of one server** (``serve --workers N``) do better than the half-second poll: they share
a counter in memory (:class:`~strongroom.cache.SharedCounter`, :attr:`KeyStore.shared`). The
worker that revoked a key or changed a policy bumps it once its transaction committed
(:meth:`KeyStore.announce`), and every worker compares it with the value it last saw before it
trusts a cached key (:meth:`lookup`: a few loads from memory per request); when it moved, the
worker reads the generation at once. So the very next request on any worker obeys the change.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets as _random
import string
import threading
from collections.abc import Callable
from pathlib import Path

from strongroom import clock
from strongroom.auth.principal import BUILTIN_ROTATOR, ROOT, Credential
from strongroom.cache import SharedCounter
from strongroom.crypto import Keyring
from strongroom.store import Conflict, Database, Tx, identities, keys

__all__ = ["KeyStore", "new_access_key_id", "new_secret_access_key", "write_credentials_file"]

log = logging.getLogger("strongroom.keys")

_KEY_REF = "strongroom:access-keys"
_NEGATIVE_TTL = 1.0
_POLL = 0.5  # seconds between two reads of the revocation generation
_TRUST = 2.0  # cached keys are trusted this long after the generation was last read


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
        f.write(f"[strongroom]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret_access_key}\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _read_generation(tx: Tx) -> int:
    return keys.generation(tx)


class KeyStore:
    def __init__(self, db: Database, keyring: Keyring) -> None:
        self._db = db
        self._keyring = keyring
        self._known: dict[str, Credential] = {}
        self._local: set[str] = set()  # in-memory-only keys (function workers' credentials)
        self._missing: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wrapped: bytes | None = None
        self._generation: int | None = None  # key_generation as last read
        # Bumped whenever cached keys are dropped: a load begun before is not cached.
        self._epoch = 0  # pragma: no mutate (a token: only compared for equality, any start works)
        self._trusted_until = 0.0  # pragma: no mutate (any time past: nothing is trusted before the first read)
        self.listeners: list[Callable[[], None]] = []  # called when another node revoked something
        self.shared: SharedCounter | None = None  # the counter this server's workers share, if several
        self._shared_seen = 0  # pragma: no mutate (another start costs one read of the generation, no answer)

    def _internal_key(self, tx: Tx) -> bytes:
        if self._wrapped is None:
            wrapped = keys.server_key(tx, _KEY_REF)
            if wrapped is None:
                raise LookupError("the access-key encryption key does not exist yet")
            self._wrapped = wrapped
        return self._wrapped

    def _ensure_internal_key(self, tx: Tx) -> bytes:
        try:
            return self._internal_key(tx)
        except LookupError:
            wrapped = self._keyring.new_key(_KEY_REF)
            keys.insert_server_key(tx, _KEY_REF, wrapped, clock.now())
            self._wrapped = wrapped
            return wrapped

    def add(
        self,
        access_key_id: str,
        secret_access_key: str,
        account_id: str,
        principal_arn: str,
        principal_id: str,
        privilege: str | None = None,
    ) -> Credential:
        """A long-term key. ``privilege`` is ``ROOT`` only where an account's root key is minted
        (``ensure_admin``, ``admin create-account``, a root's own CreateAccessKey)."""
        if privilege not in (None, ROOT):
            raise ValueError(f"a stored key cannot carry privilege {privilege!r}")

        def tx_fn(tx: Tx) -> None:
            wrapped = self._ensure_internal_key(tx)
            blob = self._keyring.encrypt(_KEY_REF, wrapped, secret_access_key.encode(), access_key_id.encode())
            keys.insert_access_key(
                tx, access_key_id, account_id, principal_arn, blob, clock.now(), privilege, principal_id
            )

        self._db.write_sync(tx_fn)
        credential = Credential(
            access_key_id, secret_access_key, account_id, principal_arn, privilege=privilege, principal_id=principal_id
        )
        with self._lock:
            self._known[access_key_id] = credential
            self._missing.pop(access_key_id, None)
        return credential

    def _load(self, access_key_id: str) -> Credential | None:
        def tx_fn(tx: Tx) -> Credential | None:
            row = keys.access_key(tx, access_key_id)
            if row is None or row[3] != "Active":
                return None
            key = self._internal_key(tx)
            secret = self._keyring.decrypt(_KEY_REF, key, bytes(row[2]), access_key_id.encode())
            token = None
            if row[4] is not None:  # pragma: no mutate (a row has a token, [4], exactly when it has an expiry, [5])
                token = self._keyring.decrypt(
                    _KEY_REF, key, bytes(row[4]), b"session:" + access_key_id.encode()
                ).decode()
            return Credential(
                access_key_id,
                secret.decode(),
                row[0],
                row[1],
                session_token=token,
                expires_at=row[5],
                privilege=ROOT if row[6] == ROOT and token is None else None,
                principal_id=row[7] or "",
                role_arn=row[8] or "",
            )

        return self._db.read_sync(tx_fn)

    def lookup(self, access_key_id: str) -> Credential | None:
        """The credential for a key id. Answers from memory while the revocation generation is
        being read (see the module docstring), otherwise from the database."""
        shared = self.shared
        if shared is not None and shared.value != self._shared_seen:
            self._shared_seen = shared.value  # read before the generation: a later bump is seen next time
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - fail closed: every key and policy is read from the database
                with self._lock:
                    self._epoch += 1  # pragma: no mutate (not trusted below until a read of the generation drops it)
                    self._known = {k: c for k, c in self._known.items() if k in self._local}
                    self._trusted_until = 0.0  # pragma: no mutate (any time past)
                for listener in self.listeners:
                    listener()
        now = clock.now()
        known = self._known.get(access_key_id)
        if known is not None and (self._trusted_until > now or access_key_id in self._local):
            return known
        missing_until = self._missing.get(access_key_id)
        if missing_until is not None and missing_until > now:
            return None
        epoch = self._epoch
        credential = self._load(access_key_id)
        with self._lock:
            if credential is None:
                if len(self._missing) > 100_000:  # pragma: no mutate (a bound on memory: no answer depends on it)
                    self._missing.clear()
                self._missing[access_key_id] = now + _NEGATIVE_TTL
                self._known.pop(access_key_id, None)
            elif epoch == self._epoch:  # nothing was revoked while it loaded
                self._known[access_key_id] = credential
        return credential

    def forget(self, access_key_id: str) -> None:
        """Drop one key from this node's memory (it was just deactivated or deleted here)."""
        with self._lock:
            self._epoch += 1  # pragma: no mutate (any step but 0, which test_keys.py kills: only equality counts)
            self._known.pop(access_key_id, None)
            self._missing.pop(access_key_id, None)
            self._local.discard(access_key_id)
        self.announce()

    def forget_role(self, role_arn: str) -> None:
        """Drop every session of a role from this node's memory (the role was just deleted here)."""
        with self._lock:
            self._epoch += 1  # pragma: no mutate (any step but 0, which test_keys.py kills: only equality counts)
            for key in [k for k, c in self._known.items() if c.role_arn == role_arn]:
                del self._known[key]
                self._local.discard(key)
        self.announce()

    @staticmethod
    def revoked(tx: Tx) -> None:
        """Record in ``tx`` that a key or a session stopped being valid: every node drops its
        cached keys when it next reads the generation."""
        keys.bump_generation(tx)

    def announce(self) -> None:
        """Tell this server's other workers that a revocation or a policy change committed: their
        next :meth:`lookup` reads the generation. Call it after the commit, before answering."""
        if self.shared is not None:
            self.shared.bump()

    def refresh(self) -> None:
        """Read the revocation generation now (one small query); see :meth:`_generation_read`."""
        started = clock.now()
        generation = self._db.read_sync(_read_generation, snapshot=False)  # pragma: no mutate (one statement)
        self._generation_read(started, generation)

    def _generation_read(self, started: float, generation: int) -> None:
        """When the generation changed, drop every key cached from the database and tell the
        listeners (the identity-policy cache); either way, trust the cache for ``_TRUST`` more."""
        changed = False
        with self._lock:
            if generation != self._generation:
                changed = self._generation is not None
                self._generation = generation
                self._epoch += 1  # pragma: no mutate (any step but 0, which test_keys.py kills: only equality counts)
                self._known = {k: c for k, c in self._known.items() if k in self._local}
                self._missing.clear()  # a key made active again is found at once, too
            self._trusted_until = started + _TRUST
        if changed:
            for listener in self.listeners:
                listener()

    async def watch(self) -> None:
        """Read the revocation generation every ``_POLL`` seconds, for as long as the server runs
        (through the database's own connections: one autocommit statement)."""
        failing = False
        while True:
            started = clock.now()
            try:
                generation = await self._db.read(_read_generation, snapshot=False)  # pragma: no mutate (one statement)
                self._generation_read(started, generation)
                if failing:
                    log.warning("the revocation generation can be read again: cached keys are trusted again")
                failing = False
            except Exception as exc:  # noqa: BLE001 - keys are then checked in the database
                if not failing:
                    log.warning(
                        "cannot read the revocation generation (%s): every key is checked in the database",
                        type(exc).__name__,
                    )
                failing = True
            await asyncio.sleep(_POLL)

    def add_session(
        self, account_id: str, principal_arn: str, ttl: float, principal_id: str, role_arn: str
    ) -> Credential:
        """Temporary credentials (STS AssumeRole), stored so that every node accepts them. They
        never carry a privilege; ``principal_id`` is ``ROLE-ID:session-name``."""
        access_key_id = "ASIA" + new_access_key_id()[4:]
        secret = new_secret_access_key()
        token = _random.token_urlsafe(96)  # pragma: no mutate (its length: any unguessable one works)
        expires_at = clock.now() + ttl

        def tx_fn(tx: Tx) -> None:
            wrapped = self._ensure_internal_key(tx)
            keys.insert_session_key(
                tx,
                access_key_id,
                account_id,
                principal_arn,
                self._keyring.encrypt(_KEY_REF, wrapped, secret.encode(), access_key_id.encode()),
                clock.now(),
                self._keyring.encrypt(_KEY_REF, wrapped, token.encode(), b"session:" + access_key_id.encode()),
                expires_at,
                principal_id,
                role_arn,
            )
            keys.purge_expired_sessions(tx, clock.now() - 86400)

        self._db.write_sync(tx_fn)
        return Credential(
            access_key_id,
            secret,
            account_id,
            principal_arn,
            session_token=token,
            expires_at=expires_at,
            principal_id=principal_id,
            role_arn=role_arn,
        )

    def temporary(
        self, account_id: str, principal_arn: str, ttl: float = 3600.0, privilege: str | None = None
    ) -> Credential:
        """Short-lived credentials with a session token, known to this node only (in memory), for
        ``principal_arn`` (``arn:aws:sts::A:assumed-role/ROLE/SESSION``, made by the server).

        The rotation runtime gives them to function workers, which call back this same node.
        ``privilege`` is ``BUILTIN_ROTATOR`` for strongroom's built-in rotators only (their role is
        no IAM role). Otherwise the role is looked up now and the credential acts as that role's
        id: a role deleted later, or made again under its name, gives it no policies.
        """
        if privilege not in (None, BUILTIN_ROTATOR):
            raise ValueError(f"temporary credentials cannot carry privilege {privilege!r}")
        name = principal_arn.split(":assumed-role/", 1)[-1]  # pragma: no mutate (the server's ARN holds it once)
        role, _, session = name.partition("/")
        principal_id, role_arn = f"{role}:{session}", f"arn:aws:iam::{account_id}:role/{role}"
        if privilege is None:
            row = self._db.read_sync(lambda tx: identities.role_id_and_arn(tx, account_id, role))
            # No such role: no role id, so no policy is ever found for it.
            principal_id, role_arn = (f"{row[0]}:{session}", row[1]) if row is not None else ("", role_arn)
        token = _random.token_urlsafe(48)  # pragma: no mutate (its length: any unguessable one works)
        credential = Credential(
            "ASIA" + new_access_key_id()[4:],
            new_secret_access_key(),
            account_id,
            principal_arn,
            session_token=token,
            expires_at=clock.now() + ttl,
            privilege=privilege,
            principal_id=principal_id,
            role_arn=role_arn,
        )
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

    def ensure_admin(
        self, account_id: str, access_key_id: str | None, secret_access_key: str | None, credentials_file: Path | None
    ) -> tuple[str, Path | None]:
        """Make sure the account's administrator key exists; answer its id and the file holding it.

        With both environment values given, that key is the administrator's. Otherwise the key
        made on first start is kept, and written to ``credentials_file`` when the file is absent.
        The administrator's key is the account's root: minted here with ``privilege = ROOT``.
        """
        principal = f"arn:aws:iam::{account_id}:root"
        if access_key_id and secret_access_key:
            existing = self.lookup(access_key_id)
            if existing is None:
                try:
                    self.add(access_key_id, secret_access_key, account_id, principal, account_id, ROOT)
                except Conflict:
                    pass  # Another node added it at the same moment.
            elif existing.secret_access_key != secret_access_key:
                raise SystemExit(f"access key {access_key_id} already exists with another secret key")
            return access_key_id, None
        root_key = self._db.read_sync(lambda tx: keys.first_root_key(tx, account_id, ROOT))
        if root_key is None:
            access_key_id = new_access_key_id()
            credential = self.add(access_key_id, new_secret_access_key(), account_id, principal, account_id, ROOT)
        else:
            credential = self.lookup(root_key)  # type: ignore[assignment]
            assert credential is not None
        if credentials_file is not None and not credentials_file.exists():
            write_credentials_file(credentials_file, credential.access_key_id, credential.secret_access_key)
        return credential.access_key_id, credentials_file
