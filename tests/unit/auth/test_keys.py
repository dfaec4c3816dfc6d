"""The access-key store in process, on a real SQLite database and the fake clock: which keys it
answers, for how long it trusts what it cached, and what it refuses. An attacker's view: a key
deactivated, deleted or expired that is still accepted, a session token that opens for another
session, a role made again under the same name, a key of another account (issue 17: the cases a
mutation of auth/keys.py showed no test would notice)."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom import clock
from strongroom.auth import keys as keys_module
from strongroom.auth.keys import KeyStore, new_access_key_id, new_secret_access_key, write_credentials_file
from strongroom.auth.principal import BUILTIN_ROTATOR, ROOT
from strongroom.cache import SharedCounter
from strongroom.crypto import DecryptionError, Keyring, MasterKey
from strongroom.store import Database, Tx, open_database

A, B = "111122223333", "444455556666"
USER = f"arn:aws:iam::{A}:user/app"
KEY = "AKIAAPP0000000000001"
T0 = 1_800_000_000.0


@pytest.fixture
def fake() -> Iterator[clock.FakeClock]:
    fake = clock.FakeClock(T0)
    previous = clock.use(fake)
    yield fake
    clock.use(previous)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(str(tmp_path / "keys.db"))
    yield database
    database.close()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(MasterKey.generate())


@pytest.fixture
def store(db: Database, keyring: Keyring, fake: clock.FakeClock) -> KeyStore:
    return KeyStore(db, keyring)


def _status(db: Database, key: str, status: str, by: KeyStore | None = None) -> None:
    """A key's status changed: by the node ``by`` as IAM does it (the row, and the revocation in the
    same transaction), or behind every node's back when ``by`` is None."""

    def fn(tx: Tx) -> None:
        tx.execute("UPDATE access_keys SET status = ? WHERE access_key_id = ?", (status, key))
        if by is not None:
            by.revoked(tx)

    db.write_sync(fn)


def _role(db: Database, name: str, role_id: str, path: str = "/", account: str = A) -> str:
    arn = f"arn:aws:iam::{account}:role{path}{name}"
    db.write_sync(
        lambda tx: tx.execute(
            "INSERT INTO iam_principals (arn, account_id, kind, name, path, principal_id, created_date, tags) "
            "VALUES (?, ?, 'role', ?, ?, ?, 0, '[]')",
            (arn, account, name, path, role_id),
        )
    )
    return arn


def _stored(db: Database) -> set[str]:
    return {r[0] for r in db.read_sync(lambda tx: tx.all("SELECT access_key_id FROM access_keys"))}


# ------------------------------------------------------------------------------ minting keys


def test_minted_key_ids_and_secrets_have_the_aws_shapes() -> None:
    ids = {new_access_key_id() for _ in range(50)}
    assert len(ids) == 50
    for key_id in ids:
        assert len(key_id) == 20 and key_id.startswith("AKIA")
        assert set(key_id[4:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    secrets = {new_secret_access_key() for _ in range(50)}
    assert len(secrets) == 50 and {len(s) for s in secrets} == {40}


def test_credentials_file_is_private_even_over_a_leftover_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "credentials"
    write_credentials_file(path, "AKIAONE", "secret-one")
    assert path.read_text() == "[strongroom]\naws_access_key_id = AKIAONE\naws_secret_access_key = secret-one\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A temporary file left readable by everyone (an earlier crash, or planted) is not reused as is.
    leftover = path.with_name("credentials.tmp")
    leftover.write_text("old")
    os.chmod(leftover, 0o644)
    write_credentials_file(path, "AKIATWO", "secret-two")
    assert "secret-two" in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not leftover.exists()


def test_a_credentials_file_cut_short_is_never_readable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "credentials"

    def disk_error(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", disk_error)
    previous = os.umask(0)  # the mode asked for, nothing masked off by the caller's umask
    try:
        with pytest.raises(OSError, match="Input/output error"):
            write_credentials_file(path, "AKIAONE", "secret-one")
    finally:
        os.umask(previous)
    assert not path.exists()
    left = path.with_name("credentials.tmp")  # the secret, written before the failure
    assert stat.S_IMODE(left.stat().st_mode) == 0o600


# ------------------------------------------------------------------------- long-term keys


def test_a_key_is_answered_on_another_node_with_its_account_and_privilege(
    db: Database, keyring: Keyring, store: KeyStore
) -> None:
    made = store.add(KEY, "s3cret", A, USER, "AIDAAPP")
    store.add("AKIAROOT000000000001", "r00t", B, f"arn:aws:iam::{B}:root", B, ROOT)
    other = KeyStore(db, keyring)  # another node: nothing cached
    got = other.lookup(KEY)
    assert got == made
    assert (got.secret_access_key, got.account_id, got.principal_arn, got.principal_id) == (  # type: ignore[union-attr]
        "s3cret",
        A,
        USER,
        "AIDAAPP",
    )
    assert (got.privilege, got.session_token, got.expires_at, got.role_arn) == (None, None, None, "")  # type: ignore[union-attr]
    theirs = other.lookup("AKIAROOT000000000001")
    assert (theirs.account_id, theirs.privilege, theirs.principal_id) == (B, ROOT, B)  # type: ignore[union-attr]
    # The secret is stored encrypted, bound to its key id: copied to another key's row, it does not open.
    stored = bytes(
        db.read_sync(lambda tx: tx.all("SELECT secret_enc FROM access_keys WHERE access_key_id = ?", (KEY,)))[0][0]
    )
    assert b"s3cret" not in stored
    db.write_sync(
        lambda tx: tx.execute(
            "UPDATE access_keys SET secret_enc = ? WHERE access_key_id = 'AKIAROOT000000000001'", (stored,)
        )
    )
    with pytest.raises(DecryptionError):
        KeyStore(db, keyring).lookup("AKIAROOT000000000001")


def test_an_inactive_key_is_refused_and_found_again_once_active(
    db: Database, keyring: Keyring, store: KeyStore, fake: clock.FakeClock
) -> None:
    store.add(KEY, "s3cret", A, USER, "AIDAAPP")
    _status(db, KEY, "Inactive", by=store)
    other = KeyStore(db, keyring)
    assert other.lookup(KEY) is None
    _status(db, KEY, "Active")
    # An unknown (or refused) id is asked of the database again only after a second.
    fake.set(T0 + 0.9)
    assert other.lookup(KEY) is None
    fake.set(T0 + 1.0)
    assert other.lookup(KEY) is not None


def test_a_key_added_here_is_answered_at_once_after_a_miss(store: KeyStore) -> None:
    assert store.lookup(KEY) is None  # e.g. a request signed with it just before it was made
    store.add(KEY, "s3cret", A, USER, "AIDAAPP")
    got = store.lookup(KEY)
    assert got is not None and got.secret_access_key == "s3cret"


def test_a_node_trusts_its_cached_keys_for_two_seconds_after_reading_the_generation(
    db: Database, keyring: Keyring, store: KeyStore, fake: clock.FakeClock
) -> None:
    store.add(KEY, "s3cret", A, USER, "AIDAAPP")
    other = KeyStore(db, keyring)
    other.refresh()
    assert other.lookup(KEY) is not None
    # The key is deleted behind the node's back, without a revocation being recorded.
    db.write_sync(lambda tx: tx.execute("DELETE FROM access_keys WHERE access_key_id = ?", (KEY,)))
    fake.set(T0 + 1.9)
    assert other.lookup(KEY) is not None  # still trusted from memory
    fake.set(T0 + 2.0)
    assert other.lookup(KEY) is None  # the generation was not read for two seconds: asked again
    # Without any read of the generation (a command-line tool), nothing is trusted from memory.
    third = KeyStore(db, keyring)
    store.add("AKIAAPP0000000000002", "x", A, USER, "AIDAAPP")
    assert third.lookup("AKIAAPP0000000000002") is not None
    db.write_sync(lambda tx: tx.execute("DELETE FROM access_keys WHERE access_key_id = 'AKIAAPP0000000000002'"))
    assert third.lookup("AKIAAPP0000000000002") is None


def test_a_revocation_elsewhere_drops_every_cached_key_and_tells_the_listeners(
    db: Database, keyring: Keyring, store: KeyStore, fake: clock.FakeClock
) -> None:
    store.add(KEY, "s3cret", A, USER, "AIDAAPP")
    other = KeyStore(db, keyring)
    told: list[str] = []
    other.listeners.append(lambda: told.append("changed"))
    other.refresh()
    assert told == []  # the first read of the generation is no change
    assert other.lookup(KEY) is not None
    assert other.lookup("AKIAAPP0000000000002") is None  # remembered as missing for a second
    store.add("AKIAAPP0000000000002", "two", A, USER, "AIDAAPP")
    _status(db, KEY, "Inactive", by=store)
    other.refresh()
    assert told == ["changed"]
    assert other.lookup(KEY) is None  # dropped at once, not after the trust window
    assert other.lookup("AKIAAPP0000000000002") is not None  # the remembered miss is dropped too
    other.refresh()
    assert told == ["changed"]  # the same generation again: nothing to tell


def test_workers_sharing_a_counter_see_a_revocation_on_the_very_next_request(
    db: Database, keyring: Keyring, store: KeyStore
) -> None:
    shared = SharedCounter(2)
    one, two = KeyStore(db, keyring), KeyStore(db, keyring)
    for worker in (one, two):  # two workers of one server (here in one process, sharing slot 0)
        worker.shared = shared
        worker.refresh()
    store.add(KEY, "s3cret", A, USER, "AIDAAPP")
    assert two.lookup(KEY) is not None  # cached by worker two
    told: list[str] = []
    two.listeners.append(lambda: told.append("changed"))
    # Worker one deactivates the key: the row and the generation in one transaction, then it
    # forgets the key itself and announces it to the others.
    _status(db, KEY, "Inactive", by=one)
    one.forget(KEY)
    assert two.lookup(KEY) is None
    assert told == ["changed"]


def test_a_worker_that_cannot_read_the_generation_trusts_nothing_it_cached(
    db: Database, keyring: Keyring, store: KeyStore
) -> None:
    shared = SharedCounter(1)
    worker = KeyStore(db, keyring)
    worker.shared = shared
    worker.refresh()
    store.add(KEY, "s3cret", A, USER, "AIDAAPP")
    assert worker.lookup(KEY) is not None
    local = worker.temporary(
        A, f"arn:aws:sts::{A}:assumed-role/strongroom-builtin-rotation/f", privilege=BUILTIN_ROTATOR
    )
    told: list[str] = []
    worker.listeners.append(lambda: told.append("changed"))
    _status(db, KEY, "Inactive")
    db.write_sync(lambda tx: tx.execute("ALTER TABLE key_generation RENAME TO key_generation_gone"))
    shared.bump()  # another worker changed something
    assert worker.lookup(KEY) is None  # not from memory: from the database, which refuses it
    assert told == ["changed"]  # the identity-policy cache is dropped as well
    assert worker.lookup(local.access_key_id) == local  # in-memory keys have no row to read again


def test_a_key_loaded_while_it_was_revoked_here_is_not_cached(db: Database, keyring: Keyring, store: KeyStore) -> None:
    store.add(KEY, "s3cret", A, USER, "AIDAAPP")
    node = KeyStore(db, keyring)
    node.refresh()
    real_read = db.read_sync

    def racing_read(fn: Callable[[Tx], Any], snapshot: bool = True) -> Any:
        row = real_read(fn, snapshot)  # the key was read while still active ...
        _status(db, KEY, "Inactive", by=node)  # ... and deactivated through this node before the load ended
        node.forget(KEY)
        return row

    db.read_sync = racing_read  # type: ignore[method-assign]
    assert node.lookup(KEY) is not None  # the request that was in flight
    db.read_sync = real_read  # type: ignore[method-assign]
    assert node.lookup(KEY) is None  # the next one is refused: the stale load was not cached


def test_a_key_loaded_while_another_node_revoked_it_is_not_cached(
    db: Database, keyring: Keyring, store: KeyStore
) -> None:
    store.add(KEY, "s3cret", A, USER, "AIDAAPP")
    node = KeyStore(db, keyring)
    node.refresh()
    real_read = db.read_sync

    def racing_read(fn: Callable[[Tx], Any], snapshot: bool = True) -> Any:
        db.read_sync = real_read  # type: ignore[method-assign]
        row = real_read(fn, snapshot)  # the key was read while still active ...
        _status(db, KEY, "Inactive", by=store)  # ... another node deactivated it ...
        node.refresh()  # ... and this node's watch read the new generation before the load ended
        return row

    db.read_sync = racing_read  # type: ignore[method-assign]
    assert node.lookup(KEY) is not None  # the request that was in flight
    assert node.lookup(KEY) is None  # the next one is refused: the stale load was not cached


def test_a_session_loaded_while_its_role_was_deleted_here_is_not_cached(
    db: Database, keyring: Keyring, store: KeyStore
) -> None:
    deploy = _role(db, "deploy", "AROADEPLOY")
    session = store.add_session(A, f"arn:aws:sts::{A}:assumed-role/deploy/s", 900.0, "AROADEPLOY:s", deploy)
    node = KeyStore(db, keyring)
    node.refresh()
    real_read = db.read_sync

    def racing_read(fn: Callable[[Tx], Any], snapshot: bool = True) -> Any:
        db.read_sync = real_read  # type: ignore[method-assign]
        row = real_read(fn, snapshot)  # the session was read ...
        db.write_sync(lambda tx: tx.execute("DELETE FROM access_keys WHERE role_arn = ?", (deploy,)))
        node.forget_role(deploy)  # ... and its role deleted through this node before the load ended
        return row

    db.read_sync = racing_read  # type: ignore[method-assign]
    assert node.lookup(session.access_key_id) is not None  # the request that was in flight
    assert node.lookup(session.access_key_id) is None


def test_forgetting_a_key_here_refuses_it_at_once_and_tells_the_other_workers(
    db: Database, keyring: Keyring, store: KeyStore
) -> None:
    shared = SharedCounter(1)
    store.shared = shared
    store.refresh()
    store.add(KEY, "s3cret", A, USER, "AIDAAPP")
    assert store.lookup(KEY) is not None
    before = shared.value
    db.write_sync(lambda tx: tx.execute("DELETE FROM access_keys WHERE access_key_id = ?", (KEY,)))
    store.forget(KEY)
    assert shared.value == before + 1
    assert store.lookup(KEY) is None
    # A key id first missing, then made by another node, then forgotten here: found at once.
    assert store.lookup("AKIAAPP0000000000002") is None
    KeyStore(db, keyring).add("AKIAAPP0000000000002", "two", A, USER, "AIDAAPP")
    store.forget("AKIAAPP0000000000002")
    assert store.lookup("AKIAAPP0000000000002") is not None


# ------------------------------------------------------------------------ role sessions (STS)


def test_a_session_carries_its_token_expiry_and_role_and_never_a_privilege(
    db: Database, keyring: Keyring, store: KeyStore, fake: clock.FakeClock
) -> None:
    role_arn = _role(db, "deploy", "AROADEPLOY", path="/ci/")
    made = store.add_session(A, f"arn:aws:sts::{A}:assumed-role/deploy/s1", 900.0, "AROADEPLOY:s1", role_arn)
    assert made.access_key_id.startswith("ASIA") and len(made.access_key_id) == 20
    assert made.expires_at == T0 + 900.0 and made.privilege is None
    got = KeyStore(db, keyring).lookup(made.access_key_id)
    assert got == made
    assert (got.session_token, got.principal_id, got.role_arn) == (made.session_token, "AROADEPLOY:s1", role_arn)  # type: ignore[union-attr]
    # Another session's token, copied into this row, does not open: each is bound to its key id.
    second = store.add_session(A, f"arn:aws:sts::{A}:assumed-role/deploy/s2", 900.0, "AROADEPLOY:s2", role_arn)
    token = db.read_sync(
        lambda tx: tx.all("SELECT session_token_enc FROM access_keys WHERE access_key_id = ?", (second.access_key_id,))
    )[0][0]
    db.write_sync(
        lambda tx: tx.execute(
            "UPDATE access_keys SET session_token_enc = ? WHERE access_key_id = ?", (token, made.access_key_id)
        )
    )
    with pytest.raises(DecryptionError):
        KeyStore(db, keyring).lookup(made.access_key_id)


def test_sessions_expired_for_a_day_are_purged_when_a_session_is_made(
    db: Database, store: KeyStore, fake: clock.FakeClock
) -> None:
    role_arn = _role(db, "deploy", "AROADEPLOY")
    old = store.add_session(A, f"arn:aws:sts::{A}:assumed-role/deploy/old", 900.0, "AROADEPLOY:old", role_arn)
    store.add(KEY, "s3cret", A, USER, "AIDAAPP")
    fake.set(T0 + 900.0 + 86400.0 - 0.5)
    store.add_session(A, f"arn:aws:sts::{A}:assumed-role/deploy/b", 900.0, "AROADEPLOY:b", role_arn)
    assert old.access_key_id in _stored(db)  # expired less than a day ago: kept
    fake.set(T0 + 900.0 + 86400.0 + 0.5)
    store.add_session(A, f"arn:aws:sts::{A}:assumed-role/deploy/c", 900.0, "AROADEPLOY:c", role_arn)
    assert old.access_key_id not in _stored(db)
    assert KEY in _stored(db)  # long-term keys never expire


def test_forgetting_a_role_drops_its_sessions_only(db: Database, keyring: Keyring, store: KeyStore) -> None:
    deploy, build = _role(db, "deploy", "AROADEPLOY"), _role(db, "build", "AROABUILD")
    store.refresh()
    one = store.add_session(A, f"arn:aws:sts::{A}:assumed-role/deploy/s", 900.0, "AROADEPLOY:s", deploy)
    two = store.add_session(A, f"arn:aws:sts::{A}:assumed-role/build/s", 900.0, "AROABUILD:s", build)
    assert store.lookup(one.access_key_id) is not None and store.lookup(two.access_key_id) is not None
    db.write_sync(lambda tx: tx.execute("DELETE FROM access_keys WHERE role_arn = ?", (deploy,)))
    db.write_sync(lambda tx: tx.execute("DELETE FROM access_keys WHERE role_arn = ?", (build,)))
    store.forget_role(deploy)
    assert store.lookup(one.access_key_id) is None
    assert store.lookup(two.access_key_id) is not None  # still cached: build was not deleted here


# ---------------------------------------------------------- in-memory credentials of functions


def test_function_credentials_act_as_the_role_as_it_is_now(
    db: Database, store: KeyStore, fake: clock.FakeClock
) -> None:
    role_arn = _role(db, "rotator", "AROAROTATOR", path="/svc/")
    _role(db, "rotator", "AROAOTHERACCOUNT", account=B)
    got = store.temporary(A, f"arn:aws:sts::{A}:assumed-role/rotator/fn-1", ttl=600.0)
    assert got.access_key_id.startswith("ASIA") and len(got.access_key_id) == 20
    assert (got.account_id, got.principal_id, got.role_arn, got.privilege) == (A, "AROAROTATOR:fn-1", role_arn, None)
    assert got.expires_at == T0 + 600.0 and got.session_token
    assert store.temporary(A, f"arn:aws:sts::{A}:assumed-role/rotator/fn-2").expires_at == T0 + 3600.0  # an hour
    assert store.lookup(got.access_key_id) == got
    # A role name that only begins like another's, or none at all: no role id, so no policy.
    lookalike = store.temporary(A, f"arn:aws:sts::{A}:assumed-role/rotator2/fn-1")
    assert (lookalike.principal_id, lookalike.role_arn) == ("", f"arn:aws:iam::{A}:role/rotator2")


def test_function_credentials_end_when_revoked_or_expired(db: Database, store: KeyStore, fake: clock.FakeClock) -> None:
    store.add(KEY, "s3cret", A, USER, "AIDAAPP")
    store.refresh()
    arn = f"arn:aws:sts::{A}:assumed-role/strongroom-builtin-rotation/f"
    first = store.temporary(A, arn, ttl=60.0, privilege=BUILTIN_ROTATOR)
    second = store.temporary(A, arn, ttl=600.0, privilege=BUILTIN_ROTATOR)
    store.revoke(first.access_key_id)
    assert store.lookup(first.access_key_id) is None
    assert store.lookup(second.access_key_id) == second
    store.revoke(KEY)  # a stored key is not ended by revoke (IAM deactivates those)
    assert store.lookup(KEY) is not None
    third = store.temporary(A, arn, ttl=60.0, privilege=BUILTIN_ROTATOR)
    fake.advance(60.0)
    store.temporary(A, arn, privilege=BUILTIN_ROTATOR)  # expired ones are dropped when one is made
    assert store.lookup(third.access_key_id) == third  # expiring now, not before
    fake.advance(0.5)
    store.temporary(A, arn, privilege=BUILTIN_ROTATOR)
    assert store.lookup(third.access_key_id) is None
    assert store.lookup(second.access_key_id) == second


# ------------------------------------------------------------------- the administrator's key


def test_ensure_admin_makes_one_root_key_and_writes_it_once(
    db: Database, keyring: Keyring, store: KeyStore, tmp_path: Path
) -> None:
    creds = tmp_path / "admin" / "credentials"
    key_id, path = store.ensure_admin(A, None, None, creds)
    assert path == creds and key_id in creds.read_text()
    got = KeyStore(db, keyring).lookup(key_id)
    assert (got.privilege, got.principal_arn, got.principal_id) == (ROOT, f"arn:aws:iam::{A}:root", A)  # type: ignore[union-attr]
    creds.write_text("kept by the operator")
    again, _ = KeyStore(db, keyring).ensure_admin(A, None, None, creds)
    assert again == key_id and creds.read_text() == "kept by the operator"
    creds.unlink()
    KeyStore(db, keyring).ensure_admin(A, None, None, creds)
    assert key_id in creds.read_text() and got.secret_access_key in creds.read_text()  # type: ignore[union-attr]
    # Another account gets its own root key.
    theirs, _ = store.ensure_admin(B, None, None, None)
    assert theirs != key_id and store.lookup(theirs).account_id == B  # type: ignore[union-attr]


def test_ensure_admin_with_a_given_key(db: Database, keyring: Keyring, store: KeyStore) -> None:
    assert store.ensure_admin(A, "AKIAGIVEN0000000001", "given-secret", None) == ("AKIAGIVEN0000000001", None)
    got = KeyStore(db, keyring).lookup("AKIAGIVEN0000000001")
    assert (got.secret_access_key, got.privilege) == ("given-secret", ROOT)  # type: ignore[union-attr]
    assert store.ensure_admin(A, "AKIAGIVEN0000000001", "given-secret", None)[0] == "AKIAGIVEN0000000001"
    with pytest.raises(SystemExit, match="already exists with another secret key"):
        KeyStore(db, keyring).ensure_admin(A, "AKIAGIVEN0000000001", "another", None)


def test_a_given_key_needs_both_values(db: Database, keyring: Keyring, store: KeyStore, tmp_path: Path) -> None:
    made, _ = store.ensure_admin(A, "AKIAGIVEN0000000001", None, None)  # a secret forgotten in the environment
    assert made != "AKIAGIVEN0000000001" and store.lookup(made).privilege == ROOT  # type: ignore[union-attr]
    assert store.ensure_admin(A, None, "given-secret", None)[0] == made
    assert KeyStore(db, keyring).lookup("AKIAGIVEN0000000001") is None


def test_two_nodes_starting_with_the_same_given_key_both_start(db: Database, keyring: Keyring) -> None:
    one, two = KeyStore(db, keyring), KeyStore(db, keyring)
    real_read = db.read_sync

    def racing_read(fn, snapshot=True):  # type: ignore[no-untyped-def]
        db.read_sync = real_read  # type: ignore[method-assign]
        found = real_read(fn, snapshot)  # node one finds no such key ...
        two.ensure_admin(A, "AKIAGIVEN0000000001", "given-secret", None)  # ... node two adds it meanwhile
        return found

    db.read_sync = racing_read  # type: ignore[method-assign]
    assert one.ensure_admin(A, "AKIAGIVEN0000000001", "given-secret", None) == ("AKIAGIVEN0000000001", None)
    assert KeyStore(db, keyring).lookup("AKIAGIVEN0000000001").privilege == ROOT  # type: ignore[union-attr]


# ------------------------------------------------------------------------ the background watch


def test_the_watch_reads_the_generation_and_says_when_it_cannot(
    db: Database, keyring: Keyring, store: KeyStore, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add(KEY, "s3cret", A, USER, "AIDAAPP")
    node = KeyStore(db, keyring)
    reads: list[int] = []
    outage = {"down": False}
    real = keys_module._read_generation

    def read(tx: Tx) -> int:
        reads.append(1)
        if outage["down"]:
            raise ConnectionError("the database is gone")
        return real(tx)

    monkeypatch.setattr(keys_module, "_read_generation", read)
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    monkeypatch.setattr(keys_module, "asyncio", types.SimpleNamespace(sleep=no_wait))

    async def main() -> None:
        task = asyncio.create_task(node.watch())

        async def until(n: int) -> None:
            goal = len(reads) + n
            for _ in range(10_000):  # at most about ten seconds
                if len(reads) >= goal:
                    return
                await asyncio.sleep(0.001)
            raise AssertionError("the watch did not read the generation")

        await until(1)
        assert node.lookup(KEY) is not None
        _status(db, KEY, "Inactive")
        assert node.lookup(KEY) is not None  # trusted: the generation is being read
        outage["down"] = True
        await until(3)
        outage["down"] = False
        await until(2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.WARNING, logger="strongroom.keys"):
        asyncio.run(main())
    # Half a second between two reads: a revoked key is refused on every node within that
    # (docs/security.md), and the cache is trusted for longer than that, so it is not dropped between.
    assert waits and set(waits) == {0.5}
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "cannot read the revocation generation (ConnectionError): every key is checked in the database",
        "the revocation generation can be read again: cached keys are trusted again",
    ]
