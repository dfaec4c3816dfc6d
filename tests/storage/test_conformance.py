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


# --------------------------------------------------------------------------------------------
# The store's rows as the operations answer them (issue 17: a mutation of store/secrets.py
# showed no test of this subset would notice these).


def test_get_secret_value_names_the_labels_of_the_version_it_read(service: SecretsManager) -> None:
    name = f"labels-{uuid.uuid4().hex}"
    run(service.create_secret(CTX, {"Name": name, "SecretString": "v1", "ClientRequestToken": "1" * 32}))
    run(
        service.put_secret_value(
            CTX,
            {"SecretId": name, "SecretString": "v2", "ClientRequestToken": "2" * 32, "VersionStages": ["B", "A"]},
        )
    )
    run(service.put_secret_value(CTX, {"SecretId": name, "SecretString": "v3", "ClientRequestToken": "3" * 32}))
    run(service.put_secret_value(CTX, {"SecretId": name, "SecretString": "v4", "ClientRequestToken": "4" * 32}))

    def read(**ask: str) -> tuple[str, str, list[str]]:
        out = run(service.get_secret_value(CTX, {"SecretId": name, **ask}))
        return out["VersionId"], out["SecretString"], out["VersionStages"]

    assert read() == ("4" * 32, "v4", ["AWSCURRENT"])
    assert read(VersionStage="AWSPREVIOUS") == ("3" * 32, "v3", ["AWSPREVIOUS"])
    assert read(VersionId="2" * 32) == ("2" * 32, "v2", ["A", "B"])  # sorted
    assert read(VersionStage="A") == ("2" * 32, "v2", ["A", "B"])
    assert read(VersionId="1" * 32) == ("1" * 32, "v1", [])  # deprecated: no label left


def test_a_resource_policys_deny_reaches_a_version_without_labels(service: SecretsManager, db: Database) -> None:
    """The one-query read (secret, version, labels, "has a policy") must not lose the policy: a
    Deny in the secret's resource policy refuses even the account's root, on every version."""
    import json
    from dataclasses import replace

    from strongroom.auth.authorizer import Authorizer
    from strongroom.auth.principal import ROOT

    name = f"deny-{uuid.uuid4().hex}"
    run(service.create_secret(CTX, {"Name": name, "SecretString": "v1", "ClientRequestToken": "1" * 32}))
    run(service.put_secret_value(CTX, {"SecretId": name, "SecretString": "v2", "ClientRequestToken": "2" * 32}))
    run(service.put_secret_value(CTX, {"SecretId": name, "SecretString": "v3", "ClientRequestToken": "3" * 32}))
    root = replace(CTX, authz=Authorizer(db), privilege=ROOT, operation="GetSecretValue", params={"SecretId": name})
    assert run(service.get_secret_value(root, {"SecretId": name, "VersionId": "1" * 32}))["SecretString"] == "v1"
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Principal": {"AWS": CTX.principal_arn}, "Action": "*", "Resource": "*"},
        ],
    }
    run(service.put_resource_policy(CTX, {"SecretId": name, "ResourcePolicy": json.dumps(deny)}))
    for ask in ({}, {"VersionId": "1" * 32}, {"VersionId": "2" * 32}, {"VersionStage": "AWSPREVIOUS"}):
        with pytest.raises(AWSError) as exc:
            run(service.get_secret_value(root, {"SecretId": name, **ask}))
        assert exc.value.code == "AccessDeniedException", ask
    with pytest.raises(AWSError) as exc:  # the operations that look the policy up on their own
        run(service.describe_secret(replace(root, operation="DescribeSecret"), {"SecretId": name}))
    assert exc.value.code == "AccessDeniedException"


def test_resource_policies_are_listed_default_first_and_deleted_by_name_or_all(service: SecretsManager) -> None:
    import json

    name = f"policies-{uuid.uuid4().hex}"
    run(service.create_secret(CTX, {"Name": name, "SecretString": "v", "ClientRequestToken": "1" * 32}))

    sids = {"a": "second", "b": "first", "default": "zero"}  # the documents sort unlike their names

    def document(policy: str) -> str:
        statement = {"Sid": sids[policy], "Effect": "Allow", "Principal": {"AWS": CTX.principal_arn}, "Action": "*"}
        return json.dumps({"Version": "2012-10-17", "Statement": [{**statement, "Resource": "*"}]})

    for policy in ("b", "default", "a"):  # "a" sorts before "default": the default still comes first
        run(
            service.put_resource_policy(
                CTX, {"SecretId": name, "PolicyName": policy, "ResourcePolicy": document(policy)}
            )
        )

    def listed() -> list[str]:
        out = run(service.list_resource_policies(CTX, {"SecretId": name}))
        return [p["PolicyName"] for p in out["ResourcePolicies"]]

    assert listed() == ["default", "a", "b"]
    got = run(service.get_resource_policy(CTX, {"SecretId": name, "PolicyName": "a"}))
    assert json.loads(got["ResourcePolicy"])["Statement"][0]["Sid"] == "second"
    run(service.delete_resource_policy(CTX, {"SecretId": name, "PolicyName": "a"}))
    assert listed() == ["default", "b"]
    run(service.delete_resource_policy(CTX, {"SecretId": name}))  # no name: every policy of the secret
    assert listed() == []


def _names_page_by_page(service: SecretsManager, prefix: str, **sort: str) -> list[str]:
    """ListSecrets two at a time (this module's PostgreSQL schema holds other tests' secrets too:
    only this test's, by their name prefix)."""
    names: list[str] = []
    token = None
    for _ in range(20):
        ask: dict[str, object] = {"MaxResults": 2, "Filters": [{"Key": "name", "Values": [prefix]}], **sort}
        if token is not None:
            ask["NextToken"] = token
        out = run(service.list_secrets(CTX, ask))
        names += [s["Name"] for s in out["SecretList"]]
        token = out.get("NextToken")
        if token is None:
            return names
    raise AssertionError(f"ListSecrets did not end: {names}")


def test_list_secrets_pages_through_every_secret_once_in_either_order(service: SecretsManager) -> None:
    from strongroom import clock

    prefix = f"page{uuid.uuid4().hex[:8]}"
    fake = clock.FakeClock(clock.now())
    previous = clock.use(fake)
    try:
        # Created in this order; names in another (byte-wise: "D" and "E" before "a", whatever
        # PostgreSQL's locale says), and one more scheduled for deletion.
        names = [f"{prefix}-{s}" for s in ("c", "a", "E", "b", "D")]
        for n in [*names, f"{prefix}-deleted"]:
            fake.advance(10)
            run(service.create_secret(CTX, {"Name": n, "SecretString": "v", "ClientRequestToken": "1" * 32}))
        run(service.delete_secret(CTX, {"SecretId": f"{prefix}-deleted"}))
    finally:
        clock.use(previous)
    assert _names_page_by_page(service, prefix) == names  # oldest first
    assert _names_page_by_page(service, prefix, IncludePlannedDeletion=True) == [*names, f"{prefix}-deleted"]
    listed = run(service.list_secrets(CTX, {"Filters": [{"Key": "name", "Values": [prefix]}], "MaxResults": 1}))
    assert listed["SecretList"][0]["SecretVersionsToStages"] == {"1" * 32: ["AWSCURRENT"]}
    assert _names_page_by_page(service, prefix, SortBy="created-date", SortOrder="desc") == names[::-1]
    assert _names_page_by_page(service, prefix, SortBy="name", SortOrder="asc") == sorted(names)
    assert _names_page_by_page(service, prefix, SortBy="name", SortOrder="desc") == sorted(names, reverse=True)


def test_list_secrets_by_last_access_pages_through_read_and_unread_secrets(service: SecretsManager) -> None:
    from strongroom import clock

    prefix = f"access{uuid.uuid4().hex[:8]}"
    fake = clock.FakeClock(clock.now())
    previous = clock.use(fake)
    try:
        names = [f"{prefix}-{i}" for i in range(6)]
        for n in names:
            run(service.create_secret(CTX, {"Name": n, "SecretString": "v", "ClientRequestToken": uuid.uuid4().hex}))
        # Read on three different days: 3, then 1, then 4; 0, 2 and 5 never (a tie that a page
        # boundary splits: the next page goes on by id).
        for i in (3, 1, 4):
            fake.advance(86400)
            run(service.get_secret_value(CTX, {"SecretId": names[i]}))
    finally:
        clock.use(previous)
    by_access = [names[0], names[2], names[5], names[3], names[1], names[4]]  # never read first (as 0), then by day
    assert _names_page_by_page(service, prefix, SortBy="last-accessed-date") == by_access
    assert _names_page_by_page(service, prefix, SortBy="last-accessed-date", SortOrder="desc") == by_access[::-1]


# --------------------------------------------------------------------------------------------
# The engines' contract (store/database.py's docstring).


def test_text_holding_nul_is_refused_before_the_statement_and_the_transaction_goes_on(db: Database) -> None:
    from strongroom.store import Unstorable

    marker = f"nul-{uuid.uuid4().hex}"
    insert = "INSERT INTO kms_keys (account_id, region, key_ref, wrapped, created_date) VALUES (?, ?, ?, ?, ?)"

    def fn(tx):  # type: ignore[no-untyped-def]
        with pytest.raises(Unstorable):
            tx.execute(insert, ("a", "r", marker + "-\x00", b"x", 0.0))
        with pytest.raises(Unstorable):
            tx.executemany(insert, [("a", "r", marker + "-many-1", b"x", 0.0), ("a", "r", marker + "\x00", b"x", 0.0)])
        # Bytes may hold a zero byte; the transaction is still usable after the refusals.
        tx.execute(insert, ("a", "r", marker + "-ok", b"\x00\x00", 0.0))

    db.write_sync(fn)
    found = db.read_sync(
        lambda tx: tx.all("SELECT key_ref, wrapped FROM kms_keys WHERE key_ref LIKE ?", (marker + "%",))
    )
    assert [(ref, bytes(wrapped)) for ref, wrapped in found] == [(marker + "-ok", b"\x00\x00")]


def test_a_duplicate_row_in_executemany_is_a_conflict_and_rolls_the_write_back(db: Database) -> None:
    marker = f"many-{uuid.uuid4().hex}"
    insert = "INSERT INTO kms_keys (account_id, region, key_ref, wrapped, created_date) VALUES (?, ?, ?, ?, ?)"
    rows = [("a", "r", marker, b"x", 0.0), ("a", "r", marker, b"y", 0.0)]
    with pytest.raises(Conflict):
        db.write_sync(lambda tx: tx.executemany(insert, rows))
    assert db.read_sync(lambda tx: tx.all("SELECT 1 FROM kms_keys WHERE key_ref = ?", (marker,))) == []


def test_a_write_hook_runs_once_in_the_next_write_and_is_discarded_with_it(db: Database) -> None:
    """The request pipeline's audit record: it commits with the write it belongs to, or not at all."""
    from strongroom.store import WriteHook, write_hook

    marker = f"hook-{uuid.uuid4().hex}"
    insert = "INSERT INTO kms_keys (account_id, region, key_ref, wrapped, created_date) VALUES (?, ?, ?, ?, ?)"

    class Record(WriteHook):
        def __init__(self, ref: str) -> None:
            self.ref, self.seen, self.discarded = ref, [], False

        def __call__(self, tx, returned):  # type: ignore[no-untyped-def]
            self.seen.append(returned)
            tx.execute(insert, ("a", "r", self.ref, b"audit", 0.0))

        def discard(self) -> None:
            self.discarded = True

    def change(ref: str, fail: bool = False):  # type: ignore[no-untyped-def]
        def fn(tx):  # type: ignore[no-untyped-def]
            tx.execute(insert, ("a", "r", ref, b"x", 0.0))
            if fail:
                raise RuntimeError("refused")
            return ref

        return fn

    failed, kept = Record(marker + "-audit-1"), Record(marker + "-audit-2")

    async def writes() -> None:
        with pytest.raises(RuntimeError, match="refused"):  # without a hook: the error itself
            await db.write(change(marker + "-0", fail=True))
        write_hook.set(failed)
        with pytest.raises(RuntimeError, match="refused"):
            await db.write(change(marker + "-1", fail=True))
        assert write_hook.get() is None  # taken by that write, even though it failed
        write_hook.set(kept)
        assert await db.write(change(marker + "-2")) == marker + "-2"
        await db.write(change(marker + "-3"))  # the hook ran once: not again here

    run(writes())
    assert (failed.discarded, kept.discarded, kept.seen) == (True, False, [marker + "-2"])
    found = db.read_sync(
        lambda tx: tx.all("SELECT key_ref FROM kms_keys WHERE key_ref LIKE ? ORDER BY key_ref", (marker + "%",))
    )
    assert [r[0] for r in found] == [marker + "-2", marker + "-3", marker + "-audit-2"]


def test_migrations_number_from_one_and_stop_at_a_reserved_one(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from strongroom.store import database as engine
    from strongroom.store import schema

    written = len(schema.MIGRATIONS)
    path = str(tmp_path / "migrations.db")

    def state(db: Database) -> tuple[list[int], list[str]]:
        versions = [r[0] for r in db.read_sync(lambda tx: tx.all("SELECT version FROM schema_version ORDER BY 1"))]
        tables = db.read_sync(
            lambda tx: tx.all("SELECT name FROM sqlite_master WHERE name IN ('later', 'after_reserved') ORDER BY 1")
        )
        return versions, [t[0] for t in tables]

    db = open_database(path)
    try:
        assert state(db) == (list(range(1, written + 1)), [])
    finally:
        db.close()
    # A release with one more migration, then a reserved (empty) one, then one written later.
    later = [*schema.MIGRATIONS, ["CREATE TABLE later (x INTEGER)"], [], ["CREATE TABLE after_reserved (x INTEGER)"]]
    monkeypatch.setattr(engine, "MIGRATIONS", later)
    db = open_database(path)
    try:
        assert state(db) == (list(range(1, written + 2)), ["later"])
        assert db.schema_version() == written + 1
    finally:
        db.close()


def test_a_sqlite_url_opens_a_file_in_a_directory_made_for_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "new" / "dir" / "store.db"
    db = open_database(f"sqlite:///{path}")
    try:
        db.write_sync(lambda tx: tx.execute("CREATE TABLE probe (x INTEGER)"))
    finally:
        db.close()
    assert path.is_file()
    # One process's database: no lock file for writers of other processes beside it.
    assert not (path.parent / "store.db-writers").exists()
    again = open_database(str(path), shared_writers=True)  # serve --workers: one, taken around each write
    try:
        assert again.read_sync(lambda tx: tx.all("SELECT name FROM sqlite_master WHERE name = 'probe'")) == [("probe",)]
        again.write_sync(lambda tx: tx.execute("INSERT INTO probe (x) VALUES (1)"))
    finally:
        again.close()
    assert (path.parent / "store.db-writers").is_file()


def test_postgresql_pools_have_the_size_asked_for(own_pg_url: str) -> None:
    """The threads the metrics report (strongroom_storage_pool): 8 unless told (``serve --workers``
    splits them). PostgreSQL only: SQLite has one writer thread."""
    for size, expected in ((None, 8), (3, 3)):
        db = open_database(own_pg_url, pool_size=size)
        try:
            assert db.pool_stats()["threads"] == expected
            assert db.read_sync(lambda tx: tx.one("SELECT 1")) == (1,)
        finally:
            db.close()


def test_concurrent_replica_promotions_lose_none_of_them(service: SecretsManager) -> None:
    """StopReplicationToReplica in six regions at once: each rewrites its primary's list of
    replicas, under the primary's row lock (PostgreSQL: FOR UPDATE), so none is lost."""
    from dataclasses import replace

    name = f"promote-{uuid.uuid4().hex}"
    regions = ["eu-west-1", "eu-central-1", "ap-south-1", "ap-northeast-1", "us-west-2", "sa-east-1"]
    run(service.create_secret(CTX, {"Name": name, "SecretString": "v", "ClientRequestToken": "1" * 32}))
    run(
        service.replicate_secret_to_regions(
            CTX, {"SecretId": name, "AddReplicaRegions": [{"Region": r} for r in regions]}
        )
    )

    async def promotions() -> None:
        await asyncio.gather(
            *(service.stop_replication_to_replica(replace(CTX, region=r), {"SecretId": name}) for r in regions)
        )

    run(promotions())
    primary = run(service.describe_secret(CTX, {"SecretId": name}))
    assert "ReplicationStatus" not in primary, primary.get("ReplicationStatus")
    for region in regions:  # each a standalone secret now
        assert "PrimaryRegion" not in run(service.describe_secret(replace(CTX, region=region), {"SecretId": name}))
