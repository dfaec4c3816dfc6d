"""Privilege on the credential: what migration 10 makes of keys stored before it, on both engines,
and that the key store mints privilege only where it should."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import strongroom.store.database as database
from strongroom.auth.keys import KeyStore
from strongroom.auth.principal import BUILTIN_ROTATOR, ROOT
from strongroom.crypto import Keyring, MasterKey
from strongroom.store import Database, open_database
from strongroom.store.schema import MIGRATIONS
from strongroom.testing import postgres_schema

A = "123456789012"
OLD_ROWS = [  # (access_key_id, account, principal_arn, session token?, expires_at): as schema 8 stored them
    ("AKIAROOT000000000001", A, f"arn:aws:iam::{A}:root", False, None),  # ensure_admin's key
    ("AKIAROOT000000000002", "210987654321", "arn:aws:iam::210987654321:root", False, None),  # create-account
    ("AKIAUSER000000000001", A, f"arn:aws:iam::{A}:user/app", False, None),  # a user's key
    ("ASIAFORGED0000000001", A, f"arn:aws:sts::{A}:assumed-role/r/x:root", True, 9e9),  # a forged session
    ("ASIASESSION000000001", A, f"arn:aws:sts::{A}:assumed-role/r/s1", True, 9e9),  # an honest session
    ("AKIAORPHAN0000000001", A, f"arn:aws:sts::{A}:assumed-role/r/x:root", False, None),  # a session's own key
    ("AKIAWRONG0000000001", A, "arn:aws:iam::210987654321:root", False, None),  # another account's root form
]


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database at schema 8 holding ``OLD_ROWS``; its URL."""
    if request.param == "sqlite":
        url_cm = None
        url = str(tmp_path / "old.db")
    else:
        base = request.getfixturevalue("pg_url").split("?", 1)[0]
        url_cm = postgres_schema(base)
        url = url_cm.__enter__()
    try:
        monkeypatch.setattr(database, "MIGRATIONS", MIGRATIONS[:8])
        db = open_database(url)

        def fill(tx):  # type: ignore[no-untyped-def]
            tx.execute(
                "INSERT INTO iam_principals (arn, account_id, kind, name, path, principal_id, created_date, "
                "tags) VALUES (?, ?, 'user', 'app', '/', 'AIDAAPP00000000000001', 0, '[]')",
                (f"arn:aws:iam::{A}:user/app", A),
            )
            for key, account, arn, session, expires in OLD_ROWS:
                tx.execute(
                    "INSERT INTO access_keys (access_key_id, account_id, principal_arn, secret_enc, status, "
                    "created_date, session_token_enc, expires_at) VALUES (?, ?, ?, ?, 'Active', 0, ?, ?)",
                    (key, account, arn, b"x", b"t" if session else None, expires),
                )

        db.write_sync(fill)
        db.close()
        monkeypatch.setattr(database, "MIGRATIONS", MIGRATIONS)
        yield url
    finally:
        if url_cm is not None:
            url_cm.__exit__(None, None, None)


def test_migration_marks_only_exact_root_keys_and_ends_old_sessions(old_database: str) -> None:
    db = open_database(old_database)
    try:
        rows = db.read_sync(
            lambda tx: tx.all("SELECT access_key_id, privilege, principal_id FROM access_keys ORDER BY access_key_id")
        )
    finally:
        db.close()
    assert {r[0]: (r[1], r[2]) for r in rows} == {
        "AKIAROOT000000000001": (ROOT, A),
        "AKIAROOT000000000002": (ROOT, "210987654321"),
        "AKIAUSER000000000001": (None, "AIDAAPP00000000000001"),
    }


def _store(tmp_path: Path) -> tuple[Database, KeyStore]:
    db = open_database(str(tmp_path / "k.db"))
    return db, KeyStore(db, Keyring(MasterKey.generate()))


def test_privilege_is_minted_only_where_it_belongs(tmp_path: Path) -> None:
    db, keys = _store(tmp_path)
    try:
        with pytest.raises(ValueError):
            keys.add("AKIAX0000000000000001", "s", A, f"arn:aws:iam::{A}:user/u", "AIDA", BUILTIN_ROTATOR)
        with pytest.raises(ValueError):
            keys.temporary(A, f"arn:aws:sts::{A}:assumed-role/r/s", privilege=ROOT)
        session = keys.add_session(
            A, f"arn:aws:sts::{A}:assumed-role/r/root", 900.0, "AROAX:root", f"arn:aws:iam::{A}:role/r"
        )
        assert session.privilege is None
        assert keys.lookup(session.access_key_id).privilege is None  # type: ignore[union-attr]
        # A stored 'root' on a session row (written behind the store's back) is not believed.
        db.write_sync(
            lambda tx: tx.execute(
                "UPDATE access_keys SET privilege = 'root' WHERE access_key_id = ?", (session.access_key_id,)
            )
        )
        keys.forget(session.access_key_id)
        assert keys.lookup(session.access_key_id).privilege is None  # type: ignore[union-attr]
        rotator = keys.temporary(
            A, f"arn:aws:sts::{A}:assumed-role/strongroom-builtin-rotation/f", privilege=BUILTIN_ROTATOR
        )
        assert keys.lookup(rotator.access_key_id).privilege == BUILTIN_ROTATOR  # type: ignore[union-attr]
        function = keys.temporary(A, f"arn:aws:sts::{A}:assumed-role/strongroom-builtin-rotation/f")
        assert (function.privilege, function.principal_id) == (None, "")  # no such role: no id, no policies
        admin, _ = keys.ensure_admin(A, None, None, None)
        assert keys.lookup(admin).privilege == ROOT  # type: ignore[union-attr]
    finally:
        db.close()


def test_cached_keys_are_trusted_only_while_the_generation_is_read(tmp_path: Path) -> None:
    from strongroom import clock

    db, keys = _store(tmp_path)
    try:
        other = KeyStore(db, keys._keyring)  # another node's view of the same database
        key = keys.add("AKIAK0000000000000001", "secret", A, f"arn:aws:iam::{A}:user/u", "AIDA")
        other.refresh()  # the generation as it is now
        assert other.lookup(key.access_key_id) is not None  # now cached, and trusted
        db.write_sync(
            lambda tx: (
                tx.execute("UPDATE access_keys SET status = 'Inactive' WHERE access_key_id = ?", (key.access_key_id,)),
                KeyStore.revoked(tx),
            )
        )
        assert other.lookup(key.access_key_id) is not None  # until the next read of the generation
        other.refresh()
        assert other.lookup(key.access_key_id) is None
        # A node that stops reading the generation stops trusting its cache.
        db.write_sync(
            lambda tx: tx.execute(
                "UPDATE access_keys SET status = 'Active' WHERE access_key_id = ?", (key.access_key_id,)
            )
        )
        other._missing.clear()
        assert other.lookup(key.access_key_id) is not None
        db.write_sync(
            lambda tx: tx.execute(
                "UPDATE access_keys SET status = 'Inactive' WHERE access_key_id = ?", (key.access_key_id,)
            )
        )
        other._trusted_until = clock.now() - 1
        assert other.lookup(key.access_key_id) is None
    finally:
        db.close()
