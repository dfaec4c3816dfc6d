"""The master keyring in process (crypto/ring.py), on a real SQLite database and real key files:
opening it at start, rotation, activation, retirement, re-wrapping and the watcher that keeps a
running node in step. The same life runs end to end, with servers and kill -9, in
tests/e2e/test_keyring.py (88 s); these are the cases a mutation of ring.py showed no test would
notice (issue 17), fast enough to run for each mutant."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom import config
from strongroom.crypto import Keyring, MasterKey, UnknownMember, member_of, ring
from strongroom.crypto.providers import KeyringError, KeySources
from strongroom.store import Database, Tx, open_database
from strongroom.store import keys as q

A = "111122223333"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(str(tmp_path / "ring.db"))
    yield database
    database.close()


def sources_in(directory: Path, **settings: object) -> KeySources:
    directory.mkdir(mode=0o700, exist_ok=True)
    return KeySources(config.Settings(data_dir=directory, **settings))  # type: ignore[arg-type]


@pytest.fixture
def sources(tmp_path: Path) -> KeySources:
    return sources_in(tmp_path / "data")


def key_line(key: bytes) -> str:
    return base64.b64encode(key).decode()


def write_keys(path: Path, *keys: bytes) -> None:
    path.write_text("".join(key_line(k) + "\n" for k in keys))
    path.chmod(0o600)


def add_keys(db: Database, keyring: Keyring, count: int, account: str = A) -> None:
    """``count`` account keys wrapped by the keyring's active member."""

    def fn(tx: Tx) -> None:
        for i in range(count):
            q.insert_account_key(tx, account, "us-east-1", f"alias/k{i}", keyring.new_key(f"alias/k{i}"), 0.0)

    db.write_sync(fn)


def wrapped_by(db: Database) -> dict[int, int]:
    return db.read_sync(ring.wrap_counts)


def states(db: Database) -> dict[int, str]:
    return {r[0]: r[4] for r in db.read_sync(ring.member_rows)}


def started(db: Database, sources: KeySources, keys: int = 3) -> Keyring:
    """A node started once on an empty database, with ``keys`` account keys made."""
    keyring = ring.open_keyring(sources.settings, db, sources)
    add_keys(db, keyring, keys)
    return keyring


def opens_all(db: Database, keyring: Keyring) -> bool:
    for _, _, key_ref, wrapped in db.read_sync(q.all_account_keys):
        assert len(keyring.unwrap_key(key_ref, wrapped)) == 32
    return True


# ------------------------------------------------------------------------------ opening


def test_a_new_database_gets_a_new_key_file_as_member_one(db: Database, sources: KeySources) -> None:
    keyring = ring.open_keyring(sources.settings, db, sources)
    assert sources.file.exists() and len(sources.load()) == 1
    made = sources.load()[0]
    assert (keyring.active, list(keyring.members)) == (1, [1])
    rows = db.read_sync(ring.member_rows)
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [(1, made.fingerprint, "file", "active")]
    # Started again: the same key, no second one made.
    again = ring.open_keyring(sources.settings, db, sources)
    assert again.members[1].fingerprint == made.fingerprint and len(sources.load()) == 1


def test_the_keyring_finds_the_keys_from_the_settings_alone(db: Database, sources: KeySources) -> None:
    started(db, sources, keys=1)
    keyring = ring.open_keyring(sources.settings, db)  # no key sources given: made from the settings
    assert keyring.members[1].fingerprint == sources.load()[0].fingerprint and opens_all(db, keyring)


def test_a_new_database_adopts_a_key_already_there(db: Database, sources: KeySources) -> None:
    write_keys(sources.file, b"k" * 32)
    keyring = ring.open_keyring(sources.settings, db, sources)
    assert keyring.members[1].fingerprint == MasterKey(b"k" * 32).fingerprint
    assert len(sources.load()) == 1


def test_a_new_keyring_starts_with_the_key_named_outside(db: Database, tmp_path: Path) -> None:
    script = tmp_path / "print-key"
    script.write_text(f"#!/bin/sh\necho {key_line(b'e' * 32)}\n")
    script.chmod(0o700)
    sources = sources_in(tmp_path / "data", master_key_command=str(script))
    write_keys(sources.file, b"f" * 32)  # a key file beside it
    keyring = ring.open_keyring(sources.settings, db, sources)
    assert [r[1:3] for r in db.read_sync(ring.member_rows)] == [(MasterKey(b"e" * 32).fingerprint, "command")]
    assert keyring.members[1].kind == "command"


def test_a_key_file_another_process_made_first_is_the_one_used(db: Database, sources: KeySources) -> None:
    """Two processes start on an empty data directory at once: the one whose key file lost the race
    uses the other's key (no second key, no second member)."""

    def lost_the_race() -> None:
        write_keys(sources.file, b"o" * 32)  # the other process's file appears first
        return None

    sources.generate = lost_the_race  # type: ignore[method-assign]
    keyring = ring.open_keyring(sources.settings, db, sources)
    assert keyring.members[1].fingerprint == MasterKey(b"o" * 32).fingerprint
    assert [r[1] for r in db.read_sync(ring.member_rows)] == [MasterKey(b"o" * 32).fingerprint]


def test_a_dev_node_keeps_its_key_in_memory(db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dev = sources_in(tmp_path / "dev", dev=True)
    keyring = ring.open_keyring(dev.settings, db, dev)
    assert not dev.file.exists() and keyring.members[1].kind == "memory"
    add_keys(db, keyring, 1)
    assert opens_all(db, keyring)
    # Its watcher does not look for the key it holds in its (empty) key sources, nor warn.
    with caplog.at_level(logging.INFO, logger="strongroom.keyring"):
        tick(ring.Watcher(db, keyring, dev))
    assert caplog.records == [] and keyring.active == 1 and opens_all(db, keyring)


def test_a_populated_database_without_its_key_is_refused_and_no_key_is_made(
    db: Database, sources: KeySources, tmp_path: Path
) -> None:
    started(db, sources)
    fingerprint = sources.load()[0].fingerprint
    key = sources.file.read_text()
    sources.file.unlink()
    with pytest.raises(KeyringError) as refused:
        ring.open_keyring(sources.settings, db, sources)
    assert refused.value.message.startswith(
        f"no master key was found (looked in the file {sources.file}); this database's active key is member 1 "
        f"(fingerprint {fingerprint}, file {sources.file})"
    )
    assert not sources.file.exists()
    write_keys(sources.file, b"w" * 32)
    with pytest.raises(KeyringError) as wrong:
        ring.open_keyring(sources.settings, db, sources)
    assert wrong.value.message.startswith(
        f"the master key {MasterKey(b'w' * 32).fingerprint} (file {sources.file}) is not this database's: "
        f"it expects member 1 (fingerprint {fingerprint}"
    )
    sources.file.write_text(key)
    assert opens_all(db, ring.open_keyring(sources.settings, db, sources))


def test_the_table_must_name_exactly_one_active_member(db: Database, sources: KeySources) -> None:
    started(db, sources)
    db.write_sync(lambda tx: tx.execute("UPDATE keyring SET state = 'previous'"))
    with pytest.raises(KeyringError, match="the keyring table has 0 active members; it needs exactly one"):
        ring.open_keyring(sources.settings, db, sources)
    db.write_sync(lambda tx: tx.execute("UPDATE keyring SET state = 'active'"))
    db.write_sync(lambda tx: q.insert_member(tx, 2, "ff", "file", "elsewhere", "active", 0.0))
    with pytest.raises(KeyringError, match="the keyring table has 2 active members"):
        ring.open_keyring(sources.settings, db, sources)


def test_a_member_that_still_wraps_keys_must_be_found(db: Database, sources: KeySources) -> None:
    started(db, sources, keys=3)
    first = sources.file.read_text()
    assert ring.rotate(db, sources, pending=True, say=lambda _: None) == 2
    second = sources.file.read_text().replace(first, "")
    db.write_sync(
        lambda tx: (q.demote_active(tx), q.activate_member(tx, 2))  # activated, nothing re-wrapped yet
    )
    sources.file.write_text(second)
    with pytest.raises(KeyringError) as refused:
        ring.open_keyring(sources.settings, db, sources)
    assert refused.value.message.startswith("master key member 1 (fingerprint ")
    assert "still wraps 3 keys but was not found (looked in the file" in refused.value.message
    # Once nothing names member 1, its key is not needed any more.
    sources.file.write_text(first + second)
    keyring = ring.open_keyring(sources.settings, db, sources)
    ring.rewrap(db, keyring)
    sources.file.write_text(second)
    assert opens_all(db, ring.open_keyring(sources.settings, db, sources))


def test_a_database_from_before_the_keyring_registers_the_key_that_opens_it(db: Database, sources: KeySources) -> None:
    old = MasterKey(b"o" * 32)
    legacy = Keyring(old)
    add_keys(db, legacy, 2)
    write_keys(sources.file, b"x" * 32, b"o" * 32, b"y" * 32)  # the right key is not the first
    keyring = ring.open_keyring(sources.settings, db, sources)
    assert [r[1] for r in db.read_sync(ring.member_rows)] == [old.fingerprint]
    assert keyring.members[1].fingerprint == old.fingerprint and opens_all(db, keyring)
    assert len(sources.load()) == 3  # nothing generated


def test_a_database_from_before_the_keyring_is_refused_without_its_key(
    db: Database, sources: KeySources, tmp_path: Path
) -> None:
    add_keys(db, Keyring(MasterKey(b"o" * 32)), 1)
    with pytest.raises(KeyringError, match="this database holds keys but no master key was found"):
        ring.open_keyring(sources.settings, db, sources)
    assert not sources.file.exists()
    write_keys(sources.file, b"x" * 32)
    with pytest.raises(KeyringError) as refused:
        ring.open_keyring(sources.settings, db, sources)
    assert refused.value.message.startswith(
        f"the master key {MasterKey(b'x' * 32).fingerprint} (file {sources.file}) does not open this database's keys"
    )
    assert db.read_sync(ring.member_rows) == []


def test_keys_made_while_the_first_member_was_registered_are_not_claimed(db: Database, sources: KeySources) -> None:
    """Two nodes start on an empty database: the other made keys under its own key meanwhile."""
    theirs = Keyring(MasterKey(b"t" * 32))
    real_write = db.write_sync

    def racing_write(fn):  # type: ignore[no-untyped-def]
        db.write_sync = real_write  # type: ignore[method-assign]
        add_keys(db, theirs, 1)  # the other node, between our look and our registration ...
        real_write(lambda tx: q.insert_member(tx, 1, theirs.members[1].fingerprint, "file", "theirs", "active", 0.0))
        return real_write(fn)

    db.write_sync = racing_write  # type: ignore[method-assign]
    with pytest.raises(KeyringError, match="is not this database's"):
        ring.open_keyring(sources.settings, db, sources)
    assert [r[3] for r in db.read_sync(ring.member_rows)] == ["theirs"]


def test_keys_made_without_a_keyring_while_this_node_made_one_are_refused(db: Database, sources: KeySources) -> None:
    """A node of a version before the keyring made keys meanwhile: no member is registered over them."""
    real_write = db.write_sync

    def racing_write(fn):  # type: ignore[no-untyped-def]
        db.write_sync = real_write  # type: ignore[method-assign]
        add_keys(db, Keyring(MasterKey(b"t" * 32)), 1)
        return real_write(fn)

    db.write_sync = racing_write  # type: ignore[method-assign]
    with pytest.raises(KeyringError, match="the keyring table has 0 active members"):
        ring.open_keyring(sources.settings, db, sources)
    assert db.read_sync(ring.member_rows) == []


# ------------------------------------------------------------------------ rotate, re-wrap


def test_rotate_adds_an_active_member_and_rewraps_every_key(db: Database, sources: KeySources) -> None:
    started(db, sources, keys=3)
    said: list[str] = []
    assert ring.rotate(db, sources, wait=0, say=said.append) == 2
    assert states(db) == {1: "previous", 2: "active"}
    assert wrapped_by(db) == {2: 3}
    assert said == ["member 2 is active; 3 keys re-wrapped. Running servers picked it up; nothing needs a restart"]
    assert len(sources.load()) == 2
    keyring = ring.open_keyring(sources.settings, db, sources)
    assert keyring.active == 2 and opens_all(db, keyring)
    assert ring.rotate(db, sources, wait=0, say=said.append) == 3
    assert states(db) == {1: "previous", 2: "previous", 3: "active"}


def test_rotate_pending_then_activate(db: Database, sources: KeySources) -> None:
    started(db, sources, keys=2)
    said: list[str] = []
    assert ring.rotate(db, sources, pending=True, wait=0, say=said.append) == 2
    assert states(db) == {1: "active", 2: "pending"} and wrapped_by(db) == {1: 2}
    fingerprint = db.read_sync(ring.member_rows)[1][1]
    assert said == [
        f"member 2 (fingerprint {fingerprint}, file {sources.file}) added as pending; give every node this key, "
        "then run: strongroom master-key activate 2"
    ]
    ring.activate(db, sources, 2, wait=0, say=said.append)
    assert states(db) == {1: "previous", 2: "active"} and wrapped_by(db) == {2: 2}
    assert said[-1].startswith("member 2 is active; 2 keys re-wrapped.")
    # Back to member 1 (its key is still held): everything moves back.
    ring.activate(db, sources, 1, wait=0, say=said.append)
    assert states(db) == {1: "active", 2: "previous"} and wrapped_by(db) == {1: 2}


def test_activate_refusals(db: Database, sources: KeySources) -> None:
    started(db, sources, keys=1)
    with pytest.raises(KeyringError, match="the keyring has no member 2"):
        ring.activate(db, sources, 2, wait=0)
    ring.rotate(db, sources, wait=0, say=lambda _: None)
    ring.retire(db, 1)
    with pytest.raises(KeyringError, match="member 1 is retired"):
        ring.activate(db, sources, 1, wait=0)
    db.write_sync(lambda tx: q.insert_member(tx, 3, "ff" * 8, "file", "a key on another machine", "pending", 0.0))
    with pytest.raises(KeyringError) as missing:
        ring.activate(db, sources, 3, wait=0)
    assert missing.value.message.startswith(
        f"master key member 3 (fingerprint {'ff' * 8}, a key on another machine) was not found "
        f"(looked in the file {sources.file})"
    )
    assert states(db) == {1: "retired", 2: "active", 3: "pending"}


def test_rotate_before_any_start_is_refused(db: Database, sources: KeySources) -> None:
    with pytest.raises(KeyringError, match="this database has no keyring yet: start the server once first"):
        ring.rotate(db, sources, wait=0)
    assert not sources.file.exists()


def test_an_interrupted_rotation_is_finished_not_repeated(db: Database, sources: KeySources) -> None:
    started(db, sources, keys=3)
    ring.rotate(db, sources, pending=True, say=lambda _: None)
    db.write_sync(lambda tx: (q.demote_active(tx), q.activate_member(tx, 2)))  # cut before its re-wrap
    said: list[str] = []
    assert ring.rotate(db, sources, wait=0, say=said.append) == 2
    assert said == [
        "finishing the earlier rotation: 3 keys still wrapped by older members",
        "3 keys re-wrapped; every key is wrapped by member 2",
    ]
    assert wrapped_by(db) == {2: 3} and len(sources.load()) == 2 and len(states(db)) == 2


def test_a_key_the_keyring_does_not_list_yet_is_adopted(db: Database, sources: KeySources) -> None:
    started(db, sources, keys=1)
    first = sources.file.read_text()
    write_keys(sources.file, b"n" * 32)
    sources.file.write_text(first + sources.file.read_text())  # e.g. written by a rotate killed before its row
    said: list[str] = []
    assert ring.rotate(db, sources, wait=0, say=said.append) == 2
    adopted = MasterKey(b"n" * 32).fingerprint
    assert said[0] == (
        f"using the key {adopted} (file {sources.file}), which the keyring does not list yet "
        "(added by an interrupted rotation, or given in another provider)"
    )
    assert db.read_sync(ring.member_rows)[1][1] == adopted and len(sources.load()) == 2
    assert wrapped_by(db) == {2: 1}


def test_with_an_external_key_nothing_is_made_in_software(db: Database, tmp_path: Path) -> None:
    script = tmp_path / "print-key"
    script.write_text(f"#!/bin/sh\necho {key_line(b'e' * 32)}\n")
    script.chmod(0o700)
    external = sources_in(tmp_path / "ext", master_key_command=str(script))
    started(db, external, keys=1)
    with pytest.raises(KeyringError) as active:
        ring.rotate(db, external, wait=0)
    named = external.external[0]
    assert active.value.message == (
        f"{named.description} (fingerprint {named.fingerprint}) is already member 1 (active) of the keyring; "
        + external.new_key_hint()
    )
    # The same key given through the environment as well as a new one: the new one is adopted.
    both = sources_in(tmp_path / "ext", master_key_command=str(script), master_key_env=key_line(b"f" * 32))
    assert ring.rotate(db, both, wait=0, say=lambda _: None) == 2
    with pytest.raises(KeyringError) as previous:
        ring.rotate(db, both, wait=0)
    assert (
        "is already member 1 (previous) of the keyring; make it active with: strongroom master-key activate 1; or "
        in (previous.value.message)
    )
    db.write_sync(lambda tx: q.retire_member(tx, 1))
    with pytest.raises(KeyringError) as retired:
        ring.rotate(db, both, wait=0)
    assert "is already member 1 (retired) of the keyring; a retired member is not used again; " in retired.value.message
    assert not external.file.exists()


def test_the_key_named_in_another_provider_is_adopted_before_a_leftover_in_the_file(
    db: Database, tmp_path: Path
) -> None:
    sources = sources_in(tmp_path / "data")
    started(db, sources, keys=1)
    member_one = sources.file.read_text()
    sources.file.write_text(member_one + key_line(b"l" * 32) + "\n")  # left by an interrupted rotation
    script = tmp_path / "print-key"
    script.write_text(f"#!/bin/sh\necho {key_line(b'e' * 32)}\n")
    script.chmod(0o700)
    moving = sources_in(tmp_path / "data", master_key_command=str(script))  # the operator names the new store
    assert ring.rotate(db, moving, wait=0, say=lambda _: None) == 2
    assert db.read_sync(ring.member_rows)[1][1:3] == (MasterKey(b"e" * 32).fingerprint, "command")


def test_with_several_keys_named_outside_the_refusal_names_the_first(db: Database, tmp_path: Path) -> None:
    """Two PKCS#11 labels (--pkcs11-key-label NEW --pkcs11-key-label CURRENT), both members already.
    In-memory keys stand in for the token's: the keyring uses nothing but the provider interface."""
    current = MasterKey(b"c" * 32, "pkcs11", "the PKCS#11 key 'current'")
    new = MasterKey(b"n" * 32, "pkcs11", "the PKCS#11 key 'new'")
    sources = sources_in(tmp_path / "data")
    sources.external = [current]
    started(db, sources, keys=1)
    sources.external = [new, current]
    assert ring.rotate(db, sources, wait=0, say=lambda _: None) == 2  # the new label's key adopted
    with pytest.raises(KeyringError) as refused:
        ring.rotate(db, sources, wait=0)
    assert refused.value.message.startswith(
        f"the PKCS#11 key 'new' (fingerprint {new.fingerprint}) is already member 2 (active) of the keyring; "
        "make a new key on the token first"
    )
    assert not sources.file.exists()


def test_rewrap_works_in_batches_and_reports_progress(db: Database, sources: KeySources) -> None:
    old = started(db, sources, keys=7)
    ring.rotate(db, sources, pending=True, say=lambda _: None)
    db.write_sync(lambda tx: (q.demote_active(tx), q.activate_member(tx, 2)))
    keyring = ring.open_keyring(sources.settings, db, sources)
    progress: list[int] = []
    assert ring.rewrap(db, keyring, batch=3, progress=progress.append) == 7
    assert progress == [3, 3, 1] and wrapped_by(db) == {2: 7}
    assert ring.rewrap(db, keyring, batch=3, progress=progress.append) == 0
    assert progress == [3, 3, 1]  # nothing done, nothing reported
    assert ring.rewrap(db, keyring, batch=7) == 0
    assert opens_all(db, keyring)
    with pytest.raises(UnknownMember):
        opens_all(db, old)  # the old keyring alone no longer opens them: they moved


def test_keys_filling_whole_batches_are_all_rewrapped(db: Database, sources: KeySources) -> None:
    started(db, sources, keys=6)
    ring.rotate(db, sources, pending=True, say=lambda _: None)
    db.write_sync(lambda tx: (q.demote_active(tx), q.activate_member(tx, 2)))
    keyring = ring.open_keyring(sources.settings, db, sources)
    assert ring.rewrap(db, keyring, batch=3) == 6
    assert wrapped_by(db) == {2: 6}


def test_rewrap_stops_at_a_crash_point(db: Database, sources: KeySources, monkeypatch: pytest.MonkeyPatch) -> None:
    started(db, sources, keys=6)
    ring.rotate(db, sources, pending=True, say=lambda _: None)
    db.write_sync(lambda tx: (q.demote_active(tx), q.activate_member(tx, 2)))
    keyring = ring.open_keyring(sources.settings, db, sources)
    steps: list[tuple[int, int]] = []
    monkeypatch.setattr(config, "test_crash_at", lambda: "rewrap-batch")
    monkeypatch.setattr(os, "kill", lambda pid, sig: steps.append((pid, sig)))
    ring.rewrap(db, keyring, batch=2)
    assert steps == [(os.getpid(), signal.SIGKILL)] * 3  # after each full batch: 2, 2, 2 of 6


# ------------------------------------------------------------------------------- retire


def test_retire_refusals_and_status(db: Database, sources: KeySources) -> None:
    started(db, sources, keys=2)
    with pytest.raises(KeyringError, match="the keyring has no member 5"):
        ring.retire(db, 5)
    with pytest.raises(KeyringError, match="member 1 is the active member; rotate to another one first"):
        ring.retire(db, 1)
    ring.rotate(db, sources, pending=True, say=lambda _: None)
    db.write_sync(lambda tx: (q.demote_active(tx), q.activate_member(tx, 2)))
    with pytest.raises(KeyringError, match="member 1 still wraps 2 keys; run `strongroom master-key rotate`"):
        ring.retire(db, 1)
    status = ring.keyring_status(db)
    assert [(s["id"], s["state"], s["keys"], s["kind"]) for s in status] == [
        (1, "previous", 2, "file"),
        (2, "active", 0, "file"),
    ]
    assert status[0]["fingerprint"] == sources.load()[0].fingerprint
    assert status[0]["description"] == f"file {sources.file}" and isinstance(status[0]["created"], float)
    ring.rewrap(db, ring.open_keyring(sources.settings, db, sources))
    ring.retire(db, 1)
    assert states(db) == {1: "retired", 2: "active"}


# ------------------------------------------------------------------------ the server's own keys


def test_internal_keys_are_made_once_and_open_under_every_member(db: Database, sources: KeySources) -> None:
    keyring = started(db, sources, keys=0)
    one = ring.internal_key(db, keyring, "strongroom:test")
    assert len(one) == 32 and ring.internal_key(db, keyring, "strongroom:test") == one
    assert ring.internal_key(db, keyring, "strongroom:other") != one
    ring.rotate(db, sources, wait=0, say=lambda _: None)
    assert ring.internal_key(db, ring.open_keyring(sources.settings, db, sources), "strongroom:test") == one


def test_an_internal_key_made_by_another_node_meanwhile_wins(db: Database, sources: KeySources) -> None:
    keyring = started(db, sources, keys=0)
    theirs = os.urandom(32)
    real_read = db.read_sync
    calls = {"n": 0}

    def racing_read(fn, snapshot=True):  # type: ignore[no-untyped-def]
        result = real_read(fn, snapshot)
        calls["n"] += 1
        if calls["n"] == 1:  # the other node makes it between our read and our write
            db.write_sync(
                lambda tx: q.insert_server_key(tx, "strongroom:test", keyring.wrap_key("strongroom:test", theirs), 0)
            )
        return result

    db.read_sync = racing_read  # type: ignore[method-assign]
    assert ring.internal_key(db, keyring, "strongroom:test") == theirs


def test_an_internal_key_inserted_by_a_concurrent_transaction_wins(
    db: Database, sources: KeySources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on PostgreSQL: both transactions looked before either inserted; the second insert conflicts."""
    keyring = started(db, sources, keys=0)
    theirs = os.urandom(32)
    real_server_key, real_write = q.server_key, db.write_sync
    looks: list[bytes | None] = []

    def server_key(tx: Tx, key_ref: str) -> bytes | None:
        found = real_server_key(tx, key_ref)
        looks.append(found)
        return None if len(looks) == 2 else found  # our transaction's look: from before the other's commit

    def racing_write(fn):  # type: ignore[no-untyped-def]
        db.write_sync = real_write  # type: ignore[method-assign]
        real_write(
            lambda tx: q.insert_server_key(tx, "strongroom:test", keyring.wrap_key("strongroom:test", theirs), 0)
        )
        return real_write(fn)

    monkeypatch.setattr(q, "server_key", server_key)
    db.write_sync = racing_write  # type: ignore[method-assign]
    assert ring.internal_key(db, keyring, "strongroom:test") == theirs
    assert len(looks) == 3 and looks[1] is not None  # it was there: the insert conflicted, the key was read again


# ------------------------------------------------------------------------------ the watcher


def tick(watcher: ring.Watcher) -> None:
    asyncio.run(watcher.tick())


def test_a_running_node_learns_a_new_active_member_and_rewraps(
    db: Database, sources: KeySources, caplog: pytest.LogCaptureFixture
) -> None:
    keyring = started(db, sources, keys=2)
    watcher = ring.Watcher(db, keyring, KeySources(sources.settings))
    with caplog.at_level(logging.INFO, logger="strongroom.keyring"):
        tick(watcher)  # at start: nothing to re-wrap
    assert caplog.records == []
    ring.rotate(db, sources, pending=True, say=lambda _: None)
    tick(watcher)
    assert sorted(keyring.members) == [1, 2] and keyring.active == 1  # loaded, not used yet
    assert wrapped_by(db) == {1: 2}
    db.write_sync(lambda tx: (q.demote_active(tx), q.activate_member(tx, 2)))
    with caplog.at_level(logging.INFO, logger="strongroom.keyring"):
        tick(watcher)
    assert keyring.active == 2 and wrapped_by(db) == {2: 2}
    assert [r.getMessage() for r in caplog.records] == [
        "master key member 2 is now active",
        "re-wrapped 2 keys with master key member 2",
    ]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="strongroom.keyring"):
        tick(watcher)
    assert caplog.records == []


def test_the_watcher_rewraps_in_batches_until_done(
    db: Database, sources: KeySources, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    keyring = started(db, sources, keys=7)
    watcher = ring.Watcher(db, keyring, KeySources(sources.settings))
    tick(watcher)
    ring.rotate(db, sources, pending=True, say=lambda _: None)
    db.write_sync(lambda tx: (q.demote_active(tx), q.activate_member(tx, 2)))
    monkeypatch.setattr(ring, "_BATCH", 3)
    with caplog.at_level(logging.INFO, logger="strongroom.keyring"):
        tick(watcher)
    assert wrapped_by(db) == {2: 7}
    assert caplog.records[-1].getMessage() == "re-wrapped 7 keys with master key member 2"


def test_the_watcher_rewraps_what_a_cut_rotation_left_at_start(db: Database, sources: KeySources) -> None:
    started(db, sources, keys=2)
    ring.rotate(db, sources, pending=True, say=lambda _: None)
    db.write_sync(lambda tx: (q.demote_active(tx), q.activate_member(tx, 2)))
    keyring = ring.open_keyring(sources.settings, db, sources)
    tick(ring.Watcher(db, keyring, KeySources(sources.settings)))
    assert wrapped_by(db) == {2: 2}


def test_a_node_without_the_new_active_key_warns_once_and_keeps_its_member(
    db: Database, sources: KeySources, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keyring = started(db, sources, keys=1)
    own = sources_in(tmp_path / "own")  # this node's own copy of the key file, not updated
    own.file.write_text(sources.file.read_text())
    own.file.chmod(0o600)
    watcher = ring.Watcher(db, keyring, own)
    ring.rotate(db, sources, pending=True, say=lambda _: None)
    with caplog.at_level(logging.INFO, logger="strongroom.keyring"):
        tick(watcher)
        tick(watcher)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.WARNING,
            f"master key member 2 (fingerprint {db.read_sync(ring.member_rows)[1][1]}, file {sources.file}) is pending "
            f"in the keyring but not found in the file {own.file}",
        )
    ]
    caplog.clear()
    db.write_sync(lambda tx: (q.demote_active(tx), q.activate_member(tx, 2)))
    with caplog.at_level(logging.INFO, logger="strongroom.keyring"):
        tick(watcher)
        tick(watcher)
    assert [(r.levelno, r.getMessage().split(" is ")[1]) for r in caplog.records] == [
        (
            logging.ERROR,
            f"active in the keyring but not found in the file {own.file}; this node keeps wrapping "
            "new keys with member 1",
        )
    ]
    assert keyring.active == 1 and wrapped_by(db) == {1: 1}
    # The operator copies the key in: the next tick loads it, makes it active, re-wraps.
    own.file.write_text(sources.file.read_text())
    tick(watcher)
    assert keyring.active == 2 and wrapped_by(db) == {2: 1}
    # A retired member this node lacks is not looked for.
    db.write_sync(lambda tx: q.insert_member(tx, 3, "ee" * 8, "file", "gone", "retired", 0.0))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="strongroom.keyring"):
        tick(watcher)
    assert caplog.records == []


def test_a_node_without_the_new_active_key_rewraps_nothing_back_to_its_own(
    db: Database, sources: KeySources, tmp_path: Path
) -> None:
    keyring = started(db, sources, keys=1)
    own = sources_in(tmp_path / "own")
    own.file.write_text(sources.file.read_text())
    own.file.chmod(0o600)
    watcher = ring.Watcher(db, keyring, own)  # started, its first tick not run yet
    ring.rotate(db, sources, wait=0, say=lambda _: None)  # another node: member 2, every key re-wrapped
    add_keys(db, ring.open_keyring(sources.settings, db, sources), 1, account="210987654321")
    tick(watcher)  # member 2 is not in this node's file: it keeps member 1, and touches no key
    assert keyring.active == 1 and wrapped_by(db) == {2: 2}


def test_rotate_gives_running_nodes_two_polls_before_it_rewraps(
    db: Database, sources: KeySources, monkeypatch: pytest.MonkeyPatch
) -> None:
    started(db, sources, keys=1)
    events: list[object] = []
    monkeypatch.setattr(ring.time, "sleep", lambda seconds: events.append(("wait", seconds, wrapped_by(db))))
    ring.rotate(db, sources, say=lambda _: None)
    ring.activate(db, sources, 1, say=lambda _: None)
    # Two seconds (docs/keys.md): every running node reads the keyring table each second.
    assert events == [("wait", 2.0, {1: 1}), ("wait", 2.0, {2: 1})]


def test_a_key_naming_a_member_not_loaded_yet_is_opened_at_once(
    db: Database, sources: KeySources, tmp_path: Path
) -> None:
    keyring = started(db, sources, keys=1)
    ring.Watcher(db, keyring, KeySources(sources.settings))
    ring.rotate(db, sources, wait=0, say=lambda _: None)  # another process: member 2, and a re-wrap
    _, _, key_ref, wrapped = db.read_sync(q.all_account_keys)[0]
    assert member_of(wrapped) == 2
    assert len(keyring.unwrap_key(key_ref, wrapped)) == 32  # found in the key file, no tick needed
    assert sorted(keyring.members) == [1, 2]


def test_the_key_sources_are_read_again_at_most_once_a_second(
    db: Database, sources: KeySources, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring = started(db, sources, keys=0)
    watcher = ring.Watcher(db, keyring, sources)
    now = {"t": 1000.0}
    monkeypatch.setattr(ring.time, "monotonic", lambda: now["t"])
    loads: list[int] = []
    real_load = sources.load
    monkeypatch.setattr(sources, "load", lambda: loads.append(1) or real_load())
    assert len(watcher._on_unknown()) == 1 and len(loads) == 1
    now["t"] += 1.0
    watcher._on_unknown()
    assert len(loads) == 1
    now["t"] += 0.01
    watcher._on_unknown()
    assert len(loads) == 2
    watcher._local(force=True)
    assert len(loads) == 3
    sources.file.write_text("not base64\n")
    assert len(watcher._local(force=True)) == 1  # a broken file: the keys read before are kept


def test_a_broken_key_file_is_logged_and_the_keys_read_before_are_kept(
    db: Database, sources: KeySources, caplog: pytest.LogCaptureFixture
) -> None:
    keyring = started(db, sources, keys=0)
    watcher = ring.Watcher(db, keyring, sources)
    assert len(watcher._local(force=True)) == 1
    sources.file.write_text("not base64\n")
    with caplog.at_level(logging.ERROR, logger="strongroom.keyring"):
        assert len(watcher._local(force=True)) == 1
    assert caplog.records[0].getMessage().startswith("reading the master keys: the master key in ")
