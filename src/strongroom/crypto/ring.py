"""The keyring in the database: its members, opening it at start, rotation, retirement.

The ``keyring`` table lists members: ``id``, ``fingerprint`` (of the key material, see
:func:`strongroom.crypto.fingerprint_of`), provider ``kind`` and ``description``, ``state`` and
``created_date``. States:

* ``active``: exactly one; it wraps every new key;
* ``pending``: added by ``rotate --pending`` and not used yet, so every node can be given it first;
* ``previous``: was active; still opens what it wrapped until the re-wrap has moved it all;
* ``retired``: by ``strongroom master-key retire`` only, refused while any wrapped key names it.

Every wrapped key names its member in its header (:class:`strongroom.crypto.Keyring`), so the
keyring never needs to be consistent with the rows it wraps: a row is opened by whichever member
it names, and re-wrapping (:func:`rewrap`) is row by row, idempotent, in small transactions.

Crash safety of ``rotate``: the new key is durable in its provider (file fsynced) before its row
exists; a key found in the provider but not in the table is adopted by the next ``rotate`` rather
than a second one made; a row whose key is found nowhere is a refusal naming the member and where
it was looked for. A re-wrap cut short is finished by the next ``rotate`` or by any server (each
re-wraps in the background whenever the active member is not the one its rows name).

Nodes learn of members through the table: :class:`Watcher` reads it (one small query) every
``POLL_SECONDS``, and a wrapped key naming a member not yet loaded makes it look at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from strongroom import clock, config
from strongroom.crypto import DecryptionError, Keyring, member_of
from strongroom.crypto.providers import KeyringError, KeySources
from strongroom.store import Conflict, Database, Tx
from strongroom.store import keys as q

__all__ = [
    "POLL_SECONDS",
    "Watcher",
    "activate",
    "keyring_status",
    "member_rows",
    "open_keyring",
    "retire",
    "rewrap",
    "rotate",
    "wrap_counts",
]

log = logging.getLogger("strongroom.keyring")

POLL_SECONDS = 1.0
_RELOAD_SECONDS = 1.0  # inside requests, a node re-reads its key sources at most this often
_BATCH = 100  # pragma: no mutate (a batch size: any re-wraps the same keys)
_HOW = (
    "give it with --master-key-file FILE, the environment variable STRONGROOM_MASTER_KEY, --master-key-command "
    "or --pkcs11-* (docs/key-providers.md)"
)


def crash_point(step: str) -> None:
    """Tests only: die here (SIGKILL, as kill -9) when STRONGROOM_TEST_CRASH_AT names ``step``."""
    if config.test_crash_at() == step:
        os.kill(os.getpid(), signal.SIGKILL)


def member_rows(tx: Tx) -> list[tuple[int, str, str, str, str, float]]:
    """(id, fingerprint, kind, description, state, created_date), by id."""
    return q.keyring_members(tx)


def wrap_counts(tx: Tx) -> dict[int, int]:
    """How many wrapped keys name each member (read from the keys' headers)."""
    counts: dict[int, int] = {}
    for wrapped in q.all_wrapped(tx):
        member = member_of(wrapped)
        counts[member] = counts.get(member, 0) + 1
    return counts


def _describe(row: tuple[Any, ...]) -> str:
    return f"member {row[0]} (fingerprint {row[1]}, {row[3]})"


def _match(rows: list[tuple[Any, ...]], local: list[Any]) -> dict[int, Any]:
    by_fp = {p.fingerprint: p for p in local}
    return {row[0]: by_fp[row[1]] for row in rows if row[1] in by_fp}


def _insert_member(tx: Tx, member: int, provider: Any, state: str) -> None:
    q.insert_member(tx, member, provider.fingerprint, provider.kind, provider.description, state, clock.now())


def _first_member(db: Database, sources: KeySources, local: list[Any]) -> Any:
    """A database with no keyring yet: a new one (empty database) or one from before the keyring."""
    legacy = db.read_sync(q.any_account_key)
    if legacy is None:
        # Empty: the only case where a key may be made.
        provider = local[0] if local else sources.generate()
        if provider is None:  # another process created the key file at the same moment
            provider = sources.load()[0]  # pragma: no mutate (the file it made holds one key: [0] is [-1])
    else:
        if not local:
            raise KeyringError(
                f"this database holds keys but no master key was found (looked in {sources.places()}); {_HOW}"
            )
        key_ref, wrapped = legacy
        provider = None
        for candidate in local:
            try:
                Keyring(candidate).unwrap_key(key_ref, wrapped)
                provider = candidate
                break  # pragma: no mutate (no other key opens what this one did: trying them only costs)
            except DecryptionError:
                continue
        if provider is None:
            raise KeyringError(
                f"the master key {_fingerprints(local)} does not open this database's keys "
                f"(the database predates the keyring and records no fingerprint); {_HOW}"
            )

    def tx_fn(tx: Tx) -> None:
        if q.has_keyring(tx):
            return  # another node registered first; the caller checks our key against it
        if legacy is None and q.has_account_keys(tx):
            raise Conflict("keys appeared while the keyring was made")
        _insert_member(tx, 1, provider, "active")

    try:
        db.write_sync(tx_fn)
    except Conflict:
        pass  # the caller reads the table again and checks the key against it
    return provider


def _fingerprints(local: list[Any]) -> str:
    return ", ".join(f"{p.fingerprint} ({p.description})" for p in local)


def open_keyring(settings: Any, db: Database, sources: KeySources | None = None) -> Keyring:
    """The keyring for this process: every member this node can reach, matched against the table.

    Refuses (:class:`KeyringError`, one line) a populated database without its keys, a key that
    is not this database's, and a member that still wraps keys but cannot be found.
    """
    sources = sources or KeySources(settings)
    local = sources.load()
    rows = db.read_sync(member_rows)
    if not rows:
        made = _first_member(db, sources, local)
        local = sources.load()
        if made.fingerprint not in {p.fingerprint for p in local}:
            local.append(made)  # a key held only in memory (--dev)
        rows = db.read_sync(member_rows)
    active = [r for r in rows if r[4] == "active"]
    if len(active) != 1:
        raise KeyringError(f"the keyring table has {len(active)} active members; it needs exactly one")
    current = active[0]  # pragma: no mutate (exactly one: [0] is [-1])
    members = _match(rows, local)
    if current[0] not in members:
        if not local:
            raise KeyringError(
                f"no master key was found (looked in {sources.places()}); this database's active key "
                f"is {_describe(current)}; {_HOW}"
            )
        raise KeyringError(
            f"the master key {_fingerprints(local)} is not this database's: it expects {_describe(current)}; {_HOW}"
        )
    counts = db.read_sync(lambda tx: wrap_counts(tx))
    for row in rows:
        if row[0] not in members and counts.get(row[0], 0):
            raise KeyringError(
                f"master key {_describe(row)} still wraps {counts[row[0]]} keys but was not found "
                f"(looked in {sources.places()}); {_HOW}"
            )
    keyring = Keyring(members, current[0])
    return keyring


class Watcher:
    """Keeps a node's keyring in step with the table, and re-wraps in the background.

    ``await tick()`` (every ``POLL_SECONDS``) reads the table through the database's own pool (no
    connection of its own: PostgreSQL connections are per thread); a member this node does not
    hold is looked for in the key sources again, off the event loop; a new active member it holds
    becomes the one that wraps. Whenever the active member changed (and once at start), rows
    naming older members are re-wrapped, batch by batch.
    """

    def __init__(self, db: Database, keyring: Keyring, sources: KeySources) -> None:
        self.db = db
        self.keyring = keyring
        self.sources = sources
        self._lock = threading.Lock()
        self._reloaded = 0.0  # pragma: no mutate (any time long past on the monotonic clock)
        self._cached: list[Any] = []
        self._rewrap_due = True
        self._warned: set[tuple[int, str]] = set()
        keyring._on_unknown = self._on_unknown

    def _local(self, force: bool = False) -> list[Any]:
        """The keys this node can reach, read again at most every ``_RELOAD_SECONDS``. Also called
        inside requests (a key naming an unknown member), so no database access here."""
        with self._lock:
            if force or time.monotonic() - self._reloaded > _RELOAD_SECONDS:
                self._reloaded = time.monotonic()
                try:
                    self._cached = self.sources.load()
                except KeyringError as exc:
                    log.error("reading the master keys: %s", exc)
            return self._cached

    def _on_unknown(self) -> list[Any]:
        return self._local()

    async def tick(self) -> None:
        rows = await self.db.read(member_rows)
        held = self.keyring.members
        missing = [r for r in rows if r[0] not in held and r[4] != "retired"]
        # While the table names a member this node lacks, its sources are read on every tick: the
        # operator may be copying the key in right now (a small file, once a second).
        found = _match(missing, await asyncio.to_thread(self._local, True)) if missing else {}
        with self._lock:
            active = next((r for r in rows if r[4] == "active"), None)
            before = self.keyring.active
            self.keyring.learn(found, active[0] if active else None)
            for r in missing:
                if r[0] not in found and (r[0], r[4]) not in self._warned:
                    self._warned.add((r[0], r[4]))
                    level = logging.ERROR if r[4] == "active" else logging.WARNING
                    log.log(
                        level,
                        "master key %s is %s in the keyring but not found in %s%s",
                        _describe(r),
                        r[4],
                        self.sources.places(),
                        f"; this node keeps wrapping new keys with member {before:d}" if r[4] == "active" else "",
                    )
            if self.keyring.active != before:
                log.info("master key member %d is now active", self.keyring.active)
                self._rewrap_due = True
        if self._rewrap_due:
            self._rewrap_due = False  # pragma: no mutate (a re-wrap every tick finds nothing more: cost only)
            if active is not None and active[0] == self.keyring.active:
                done = 0
                while True:
                    batch = await self.db.write(_rewrap_batch(self.keyring, _BATCH))
                    done += batch
                    if batch < _BATCH:
                        break
                if done:
                    log.info("re-wrapped %d keys with master key member %d", done, self.keyring.active)


def rewrap(db: Database, keyring: Keyring, batch: int = _BATCH, progress: Callable[[int], None] | None = None) -> int:
    """Re-wrap every key not wrapped by the active member, ``batch`` per transaction; answers how many.

    Each row is updated only if it still holds the wrapping that was read, so nodes doing it at
    once, or a run after a crash, never undo each other.
    """
    total = 0
    while True:
        done = db.write_sync(_rewrap_batch(keyring, batch))
        total += done
        if progress is not None and done:
            progress(done)
        if done < batch:
            return total
        crash_point("rewrap-batch")


def _rewrap_batch(keyring: Keyring, batch: int) -> Callable[[Tx], int]:
    """One transaction's re-wrap: up to ``batch`` keys not wrapped by the active member."""

    def tx_fn(tx: Tx) -> int:
        rows = q.all_account_keys(tx)
        todo = [r for r in rows if member_of(r[3]) != keyring.active][:batch]
        for account_id, region, key_ref, wrapped in todo:
            fresh = keyring.wrap_key(key_ref, keyring.unwrap_key(key_ref, wrapped))
            q.rewrap_account_key(tx, account_id, region, key_ref, fresh, wrapped)
        return len(todo)

    return tx_fn


def rotate(
    db: Database,
    sources: KeySources,
    pending: bool = False,
    wait: float = POLL_SECONDS * 2,
    say: Callable[[str], None] = print,
) -> int:
    """Add a member and make it active (or ``pending``), then re-wrap; answers the member id.

    Which key becomes the member: one this process reaches that the keyring does not list yet (a
    key of an external provider named with ``--master-key-command`` / ``--pkcs11-*``, or one an
    interrupted rotation left in the file), adopted; otherwise a new key in the key file. With an
    external provider named, no key is ever made in software: if every key it names is already a
    member, the rotate is refused in one line saying to make a new key in that store first.
    An unfinished earlier rotation is finished instead (no second member is added).
    """
    local = sources.load()
    rows = db.read_sync(member_rows)
    if not rows:
        raise KeyringError("this database has no keyring yet: start the server once first")
    keyring = open_keyring(sources.settings, db, sources)
    leftover = db.read_sync(lambda tx: wrap_counts(tx))
    stale = sum(n for m, n in leftover.items() if m != keyring.active)
    known = {r[1] for r in rows}
    adopt = [p for p in local if p.fingerprint not in known]
    if stale and not adopt:
        say(f"finishing the earlier rotation: {stale} keys still wrapped by older members")
        done = rewrap(db, keyring)
        say(f"{done} keys re-wrapped; every key is wrapped by member {keyring.active}")
        return keyring.active
    if adopt:
        provider = adopt[0]
        say(
            f"using the key {provider.fingerprint} ({provider.description}), which the keyring does not list yet "
            f"(added by an interrupted rotation, or given in another provider)"
        )
    elif sources.external:
        # The operator named a key held outside (a token, a secret store) and the keyring lists it
        # already: a software key made now would defeat the point of naming it. Refused.
        rows_by_fp = {r[1]: r for r in rows}
        named = sources.external[0]
        row = rows_by_fp[named.fingerprint]
        again = {"active": "", "retired": "a retired member is not used again; "}.get(
            row[4], f"make it active with: strongroom master-key activate {row[0]}; or "
        )
        raise KeyringError(
            f"{named.description} (fingerprint {named.fingerprint}) is already member {row[0]} "
            f"({row[4]}) of the keyring; {again}{sources.new_key_hint()}"
        )
    else:
        provider = sources.generate()
        crash_point("key-written")
    member = max(r[0] for r in rows) + 1

    def tx_fn(tx: Tx) -> None:
        if not pending:
            q.demote_active(tx)
        _insert_member(tx, member, provider, "pending" if pending else "active")

    db.write_sync(tx_fn)
    crash_point("member-added")
    if pending:
        say(
            f"member {member} (fingerprint {provider.fingerprint}, {provider.description}) added as pending; give "
            f"every node this key, then run: strongroom master-key activate {member}"
        )
        return member
    keyring.learn({member: provider}, member)
    _finish(db, keyring, wait, say)
    return member


def activate(
    db: Database,
    sources: KeySources,
    member: int,
    wait: float = POLL_SECONDS * 2,
    say: Callable[[str], None] = print,
) -> None:
    """Make a pending (or previous) member active, then re-wrap every key with it."""
    keyring = open_keyring(sources.settings, db, sources)
    rows = {r[0]: r for r in db.read_sync(member_rows)}
    if member not in rows:
        raise KeyringError(f"the keyring has no member {member}")
    if rows[member][4] == "retired":
        raise KeyringError(f"member {member} is retired")
    if member not in keyring.members:
        raise KeyringError(f"master key {_describe(rows[member])} was not found (looked in {sources.places()}); {_HOW}")

    def tx_fn(tx: Tx) -> None:
        q.demote_active_except(tx, member)
        q.activate_member(tx, member)

    db.write_sync(tx_fn)
    crash_point("member-added")
    keyring.learn({}, member)
    _finish(db, keyring, wait, say)


def _finish(db: Database, keyring: Keyring, wait: float, say: Callable[[str], None]) -> None:
    # Running nodes read the table every POLL_SECONDS: by the time anything is re-wrapped, each
    # has loaded the new member (a node that still meets one looks for it at once anyway).
    time.sleep(wait)
    done = rewrap(db, keyring)
    say(
        f"member {keyring.active} is active; {done} keys re-wrapped. Running servers picked it up; "
        f"nothing needs a restart"
    )


def retire(db: Database, member: int) -> None:
    """Mark a member retired: refused for the active member and while any wrapped key names it."""

    def tx_fn(tx: Tx) -> None:
        state = q.member_state(tx, member)
        if state is None:
            raise KeyringError(f"the keyring has no member {member}")
        if state == "active":
            raise KeyringError(f"member {member} is the active member; rotate to another one first")
        still = wrap_counts(tx).get(member, 0)
        if still:
            raise KeyringError(
                f"member {member} still wraps {still} keys; run `strongroom master-key rotate` to "
                f"finish re-wrapping them first"
            )
        q.retire_member(tx, member)

    db.write_sync(tx_fn)


def keyring_status(db: Database) -> list[dict[str, Any]]:
    """Each member with how many wrapped keys still name it, for ``strongroom status``."""

    def tx_fn(tx: Tx) -> list[dict[str, Any]]:
        counts = wrap_counts(tx)
        return [
            {
                "id": r[0],
                "fingerprint": r[1],
                "kind": r[2],
                "description": r[3],
                "state": r[4],
                "created": r[5],
                "keys": counts.get(r[0], 0),
            }
            for r in member_rows(tx)
        ]

    return db.read_sync(tx_fn)


def internal_key(db: Database, keyring: Keyring, key_ref: str) -> bytes:
    """A random 32-byte key of strongroom's own (``key_ref``), stored wrapped in ``kms_keys`` under
    account and region ``-``, made on first use. Replaces keys once derived from the master key
    bytes, which a key held in a token does not give out."""

    def read(tx: Tx) -> bytes | None:
        return q.server_key(tx, key_ref)

    wrapped = db.read_sync(read)
    if wrapped is None:
        fresh = keyring.new_key(key_ref)

        def create(tx: Tx) -> bytes:
            existing = read(tx)
            if existing is not None:
                return existing
            q.insert_server_key(tx, key_ref, fresh, clock.now())
            return fresh

        try:
            wrapped = db.write_sync(create)
        except Conflict:
            wrapped = db.read_sync(read)
    return keyring.unwrap_key(key_ref, wrapped)  # type: ignore[arg-type]
