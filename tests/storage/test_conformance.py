"""One storage suite, run on SQLite and on PostgreSQL: transactions, schema rules, concurrency."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from strongroom.context import RequestContext
from strongroom.crypto import DecryptionError, Keyring, MasterKey
from strongroom.errors import AWSError
from strongroom.services.secretsmanager import SecretsManager
from strongroom.services.secretsmanager.values import ValueCipher
from strongroom.store import Conflict, Database, open_database
from strongroom.testing import postgres_schema


@pytest.fixture(scope="module")
def own_pg_url(pg_url: str) -> Iterator[str]:
    """A schema of this module's own: its keys are wrapped by MASTER, which is no server's key, and
    a server refuses a database holding keys its keyring cannot open (docs/keys.md)."""
    with postgres_schema(pg_url.split("?", 1)[0]) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        database = open_database(str(tmp_path / "conformance.db"))
    else:
        database = open_database(request.getfixturevalue("own_pg_url"))
    yield database
    database.close()


# One master key for the run, as one deployment has one: the PostgreSQL schema is shared by the
# module's tests, and keys it wrapped for one test must unwrap in the next.
MASTER = MasterKey.generate()


@pytest.fixture
def service(db: Database) -> SecretsManager:
    return SecretsManager(db, ValueCipher(Keyring(MASTER)), b"k" * 32)


CTX = RequestContext(
    account_id="111122223333", region="us-east-1", principal_arn="arn:aws:iam::111122223333:root", request_id="r"
)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_migrations_are_idempotent(db: Database) -> None:
    version = db.schema_version()
    assert version >= 1
    again = open_database(db.url)
    try:
        assert again.schema_version() == version
    finally:
        again.close()


def test_write_rolls_back_on_error(db: Database) -> None:
    marker = f"rollback-{uuid.uuid4().hex}"

    def fails(tx):  # type: ignore[no-untyped-def]
        tx.execute(
            "INSERT INTO kms_keys (account_id, region, key_ref, wrapped, created_date) VALUES (?, ?, ?, ?, ?)",
            ("a", "r", marker, b"x", 0.0),
        )
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        db.write_sync(fails)
    assert db.read_sync(lambda tx: tx.one("SELECT 1 FROM kms_keys WHERE key_ref = ?", (marker,))) is None


def test_schema_enforces_one_version_per_label(service: SecretsManager, db: Database) -> None:
    name = f"label-{uuid.uuid4().hex}"
    run(service.create_secret(CTX, {"Name": name, "SecretString": "a", "ClientRequestToken": "a" * 32}))
    run(service.put_secret_value(CTX, {"SecretId": name, "SecretString": "b", "ClientRequestToken": "b" * 32}))
    secret_id = db.read_sync(lambda tx: tx.one("SELECT id FROM secrets WHERE name = ?", (name,)))[0]
    with pytest.raises(Conflict):
        db.write_sync(
            lambda tx: tx.execute(
                "INSERT INTO stages (secret_id, stage, version_id) VALUES (?, ?, ?)",
                (secret_id, "AWSCURRENT", "a" * 32),
            )
        )
    with pytest.raises(Conflict):  # a label must point at a version of the same secret
        db.write_sync(
            lambda tx: tx.execute(
                "INSERT INTO stages (secret_id, stage, version_id) VALUES (?, ?, ?)",
                (secret_id, "OTHER", "no-such-version"),
            )
        )


def test_concurrent_writers_lose_nothing(service: SecretsManager) -> None:
    name = f"race-{uuid.uuid4().hex}"
    run(service.create_secret(CTX, {"Name": name, "SecretString": "0", "ClientRequestToken": "0" * 32}))

    async def writers() -> list[str]:
        async def put(i: int) -> str:
            out = await service.put_secret_value(
                CTX, {"SecretId": name, "SecretString": str(i), "ClientRequestToken": f"{i:032d}"}
            )
            return out["VersionId"]

        async def tag(i: int) -> None:
            await service.tag_resource(CTX, {"SecretId": name, "Tags": [{"Key": f"k{i}", "Value": str(i)}]})

        results = await asyncio.gather(*(put(i) for i in range(1, 41)), *(tag(i) for i in range(20)))
        return [r for r in results if r]

    versions = run(writers())
    described = run(service.describe_secret(CTX, {"SecretId": name}))
    stages = described["VersionIdsToStages"]
    assert sum(1 for labels in stages.values() if "AWSCURRENT" in labels) == 1
    assert sum(1 for labels in stages.values() if "AWSPREVIOUS" in labels) == 1
    assert len(described["Tags"]) == 20  # every tag write kept: no lost update
    listed = run(service.list_secret_version_ids(CTX, {"SecretId": name, "IncludeDeprecated": True}))
    assert set(versions) <= {v["VersionId"] for v in listed["Versions"]}


def test_concurrent_creates_of_one_name(service: SecretsManager) -> None:
    name = f"dup-{uuid.uuid4().hex}"

    async def creates() -> list[object]:
        return await asyncio.gather(
            *(
                service.create_secret(CTX, {"Name": name, "SecretString": str(i), "ClientRequestToken": f"{i:032d}"})
                for i in range(8)
            ),
            return_exceptions=True,
        )

    results = run(creates())
    ok = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, AWSError)]
    assert len(ok) == 1
    assert len(refused) == 7
    assert {r.code for r in refused} == {"ResourceExistsException"}


def test_values_bound_to_their_row(service: SecretsManager, db: Database) -> None:
    a, b = f"bind-a-{uuid.uuid4().hex}", f"bind-b-{uuid.uuid4().hex}"
    run(service.create_secret(CTX, {"Name": a, "SecretString": "secret-a", "ClientRequestToken": "a" * 32}))
    run(service.create_secret(CTX, {"Name": b, "SecretString": "secret-b", "ClientRequestToken": "a" * 32}))

    def copy(tx):  # type: ignore[no-untyped-def]
        ida = tx.one("SELECT id FROM secrets WHERE name = ?", (a,))[0]
        idb = tx.one("SELECT id FROM secrets WHERE name = ?", (b,))[0]
        blob = tx.one("SELECT ciphertext FROM versions WHERE secret_id = ?", (ida,))[0]
        tx.execute("UPDATE versions SET ciphertext = ? WHERE secret_id = ?", (blob, idb))

    db.write_sync(copy)
    with pytest.raises(DecryptionError) as exc:
        run(service.get_secret_value(CTX, {"SecretId": b}))
    assert "secret-a" not in str(exc.value)


def test_two_versions_ciphertexts_swapped_in_the_database_do_not_open(service: SecretsManager, db: Database) -> None:
    """Rolling a value back by editing the database (the current version's row given the previous
    version's ciphertext) is refused: each ciphertext is bound to its own version id."""
    name = f"swap-{uuid.uuid4().hex}"
    run(service.create_secret(CTX, {"Name": name, "SecretString": "old-value", "ClientRequestToken": "1" * 32}))
    run(service.put_secret_value(CTX, {"SecretId": name, "SecretString": "new-value", "ClientRequestToken": "2" * 32}))
    assert run(service.get_secret_value(CTX, {"SecretId": name}))["SecretString"] == "new-value"

    def swap(tx):  # type: ignore[no-untyped-def]
        sid = tx.one("SELECT id FROM secrets WHERE name = ?", (name,))[0]
        old = tx.one("SELECT ciphertext FROM versions WHERE secret_id = ? AND version_id = ?", (sid, "1" * 32))[0]
        new = tx.one("SELECT ciphertext FROM versions WHERE secret_id = ? AND version_id = ?", (sid, "2" * 32))[0]
        tx.execute("UPDATE versions SET ciphertext = ? WHERE secret_id = ? AND version_id = ?", (new, sid, "1" * 32))
        tx.execute("UPDATE versions SET ciphertext = ? WHERE secret_id = ? AND version_id = ?", (old, sid, "2" * 32))

    db.write_sync(swap)
    for ask in ({}, {"VersionStage": "AWSPREVIOUS"}, {"VersionId": "1" * 32}, {"VersionId": "2" * 32}):
        with pytest.raises(DecryptionError) as exc:
            run(service.get_secret_value(CTX, {"SecretId": name, **ask}))
        assert "value" not in str(exc.value), ask


def test_purge_after_the_recovery_window(service: SecretsManager) -> None:
    from strongroom import clock

    name = f"purge-{uuid.uuid4().hex}"
    fake = clock.FakeClock(clock.now())
    previous = clock.use(fake)
    try:
        run(service.create_secret(CTX, {"Name": name, "SecretString": "v", "ClientRequestToken": uuid.uuid4().hex}))
        run(service.delete_secret(CTX, {"SecretId": name, "RecoveryWindowInDays": 7}))
        assert name not in [s.name for s in run(service.purge_due())]
        fake.advance(7 * 86400 + 1)
        assert name in [s.name for s in run(service.purge_due())]
        with pytest.raises(AWSError) as exc:
            run(service.describe_secret(CTX, {"SecretId": name}))
        assert exc.value.code == "ResourceNotFoundException"
    finally:
        clock.use(previous)


def test_a_restored_secret_is_no_longer_due_for_purge(service: SecretsManager) -> None:
    """RestoreSecret cancels the deletion: the secret outlives its old recovery window."""
    from strongroom import clock

    name = f"restore-{uuid.uuid4().hex}"
    fake = clock.FakeClock(clock.now())
    previous = clock.use(fake)
    try:
        run(service.create_secret(CTX, {"Name": name, "SecretString": "v", "ClientRequestToken": uuid.uuid4().hex}))
        run(service.delete_secret(CTX, {"SecretId": name, "RecoveryWindowInDays": 7}))
        assert "DeletedDate" in run(service.describe_secret(CTX, {"SecretId": name}))
        fake.advance(86400)
        assert run(service.restore_secret(CTX, {"SecretId": name}))["Name"] == name
        assert "DeletedDate" not in run(service.describe_secret(CTX, {"SecretId": name}))
        fake.advance(30 * 86400)
        assert name not in [s.name for s in run(service.purge_due())]
        assert run(service.get_secret_value(CTX, {"SecretId": name}))["SecretString"] == "v"
        # Deleted again, it gets a new window counted from now, not the old one.
        deleted = run(service.delete_secret(CTX, {"SecretId": name, "RecoveryWindowInDays": 7}))
        assert deleted["DeletionDate"] == pytest.approx(fake.now() + 7 * 86400, abs=1)
    finally:
        clock.use(previous)


def test_a_write_that_waives_durability_commits_and_leaves_the_next_durable(db: Database) -> None:
    """``durable=False`` (the audit trail's records of reads) still commits, in order; it changes
    how that one commit reaches the disk, never the durability of the writes around it."""
    marker = f"relaxed-{uuid.uuid4().hex}"

    def insert(ref: str):  # type: ignore[no-untyped-def]
        def fn(tx):  # type: ignore[no-untyped-def]
            tx.execute(
                "INSERT INTO kms_keys (account_id, region, key_ref, wrapped, created_date) VALUES (?, ?, ?, ?, ?)",
                ("a", "r", ref, b"x", 0.0),
            )
            setting = "PRAGMA synchronous" if db.dialect == "sqlite" else "SHOW synchronous_commit"
            return tx.one(setting)[0]

        return fn

    async def writes() -> list[object]:
        relaxed = await db.write(insert(marker + "-1"), durable=False)
        durable = await db.write(insert(marker + "-2"))
        return [relaxed, durable]

    relaxed, durable = run(writes())
    if db.dialect == "sqlite":
        assert (relaxed, durable) == (1, 2)  # NORMAL for the relaxed commit, FULL again after it
    else:
        assert (relaxed, durable) == ("off", "on")
    found = db.read_sync(
        lambda tx: tx.all("SELECT key_ref FROM kms_keys WHERE key_ref LIKE ? ORDER BY key_ref", (marker + "%",))
    )
    assert found == [(marker + "-1",), (marker + "-2",)]
