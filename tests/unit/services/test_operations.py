"""Secrets Manager's writes and reads in process on a real SQLite database: client tokens and
retries, the answers' members, what each refusal says, last-access dates, BatchGetSecretValue,
UpdateSecret's key change and UpdateSecretVersionStage's moves (issue 17: a mutation of
services/secretsmanager/service.py showed these unguarded outside the API tests)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom import clock
from strongroom.context import RequestContext
from strongroom.crypto import Keyring, MasterKey
from strongroom.errors import AWSError
from strongroom.services.secretsmanager import SecretsManager
from strongroom.services.secretsmanager.values import ValueCipher
from strongroom.store import Database, open_database
from strongroom.store import secrets as rows

CTX = RequestContext(
    account_id="111122223333", region="us-east-1", principal_arn="arn:aws:iam::111122223333:root", request_id="r"
)
NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
DAY = 86400.0
MIDNIGHT = NOW - NOW % DAY
DEFAULT_KEY = "arn:aws:kms:us-east-1:111122223333:alias/aws/secretsmanager"


@pytest.fixture
def fake() -> Iterator[clock.FakeClock]:
    fake = clock.FakeClock(NOW)
    previous = clock.use(fake)
    yield fake
    clock.use(previous)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(str(tmp_path / "operations.db"))
    yield database
    database.close()


@pytest.fixture
def sm(db: Database, fake: clock.FakeClock) -> SecretsManager:
    return SecretsManager(db, ValueCipher(Keyring(MasterKey.generate())), b"k" * 32)


def call(sm: SecretsManager, op: str, **params: Any) -> dict[str, Any]:
    return asyncio.run(sm.handlers[op](CTX, params))


def refused(sm: SecretsManager, op: str, **params: Any) -> tuple[str, str]:
    with pytest.raises(AWSError) as exc:
        call(sm, op, **params)
    return exc.value.code, exc.value.message


def tok(i: int) -> str:
    return f"{i:032d}"


def stages(sm: SecretsManager, name: str = "s") -> dict[str, list[str]]:
    return {v: sorted(s) for v, s in call(sm, "DescribeSecret", SecretId=name).get("VersionIdsToStages", {}).items()}


def version_count(db: Database) -> int:
    return int(db.read_sync(lambda tx: tx.one("SELECT count(*) FROM versions"))[0])


# ------------------------------------------------------------------------- values and tokens


def placeholder(db, stage: str | None = None, name: str = "s", version: int = 1) -> None:  # type: ignore[no-untyped-def]
    """A value-less version ``tok(version)`` of secret ``name``, as the rotation engine writes one
    (labelled ``stage`` when given)."""

    def write(tx):  # type: ignore[no-untyped-def]
        secret = rows.find_secret(tx, CTX.account_id, CTX.region, name=name)
        rows.insert_version(tx, secret.id, rows.VersionRow(tok(version), NOW, None, 0, None, None))
        if stage is not None:
            rows.set_stage(tx, secret.id, stage, tok(version))

    db.write_sync(write)


def test_both_values_or_none_where_one_is_needed_are_refused(sm):
    assert refused(sm, "CreateSecret", Name="s", SecretString="a", SecretBinary=b"a", ClientRequestToken=tok(1)) == (
        "InvalidParameterException",
        "You can't specify both a binary secret value and a string secret value in the same secret.",
    )
    call(sm, "CreateSecret", Name="s", SecretString="a", ClientRequestToken=tok(1))
    assert refused(sm, "PutSecretValue", SecretId="s", ClientRequestToken=tok(2)) == (
        "InvalidRequestException",
        "You must provide either SecretString or SecretBinary.",
    )
    assert refused(sm, "PutSecretValue", SecretId="s", SecretString="b") == (
        "InvalidRequestException",
        "You must provide a ClientRequestToken value. We recommend a UUID-type value.",
    )
    assert refused(sm, "CreateSecret", Name="t", SecretString="a") == (
        "InvalidRequestException",
        "You must provide a ClientRequestToken value. We recommend a UUID-type value.",
    )
    assert refused(sm, "UpdateSecret", SecretId="s", SecretString="b")[0] == "InvalidRequestException"
    assert call(sm, "GetSecretValue", SecretId="s")["SecretString"] == "a"


def test_a_secret_made_without_a_value_has_no_version_until_one_is_put(sm, db):
    made = call(sm, "CreateSecret", Name="s")  # no value: no token needed, and no version
    assert set(made) == {"ARN", "Name"}
    assert stages(sm) == {} and version_count(db) == 0
    assert refused(sm, "GetSecretValue", SecretId="s") == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT",
    )
    put = call(sm, "PutSecretValue", SecretId="s", SecretString="v", ClientRequestToken=tok(1))
    assert put["VersionStages"] == ["AWSCURRENT"]
    assert stages(sm) == {tok(1): ["AWSCURRENT"]}  # no AWSPREVIOUS: nothing was current before


def test_create_secret_retried_with_its_token_answers_the_same_and_another_value_is_refused(sm, db):
    first = call(sm, "CreateSecret", Name="s", SecretString="v", ClientRequestToken=tok(1))
    assert set(first) == {"ARN", "Name", "VersionId"} and first["VersionId"] == tok(1)
    assert call(sm, "CreateSecret", Name="s", SecretString="v", ClientRequestToken=tok(1)) == first
    assert version_count(db) == 1
    arn = first["ARN"]
    assert refused(sm, "CreateSecret", Name="s", SecretString="other", ClientRequestToken=tok(1)) == (
        "ResourceExistsException",
        f"You can't use ClientRequestToken {tok(1)} because that value is already in use for a version of "
        f"secret {arn}.",
    )
    exists = ("ResourceExistsException", "The operation failed because the secret s already exists.")
    assert refused(sm, "CreateSecret", Name="s", SecretString="v", ClientRequestToken=tok(2)) == exists
    assert refused(sm, "CreateSecret", Name="s") == exists
    assert refused(sm, "CreateSecret", Name="s", ClientRequestToken=tok(1)) == exists  # a token, but no value
    assert call(sm, "GetSecretValue", SecretId="s")["SecretString"] == "v" and version_count(db) == 1


def test_a_name_scheduled_for_deletion_cannot_be_created_again(sm):
    call(sm, "CreateSecret", Name="s", SecretString="v", ClientRequestToken=tok(1))
    call(sm, "DeleteSecret", SecretId="s", RecoveryWindowInDays=7)
    assert refused(sm, "CreateSecret", Name="s", SecretString="v", ClientRequestToken=tok(1)) == (
        "InvalidRequestException",
        "You can't create this secret because a secret with this name is already scheduled for deletion.",
    )
    assert refused(sm, "GetSecretValue", SecretId="s") == (
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
    )


def test_an_invalid_name_is_refused_and_replicas_are_answered_only_when_asked(sm):
    assert refused(sm, "CreateSecret", Name="bad name!", SecretString="v", ClientRequestToken=tok(1))[0] == (
        "ValidationException"
    )
    plain = call(sm, "CreateSecret", Name="plain", SecretString="v", ClientRequestToken=tok(1))
    assert "ReplicationStatus" not in plain
    replicated = call(
        sm,
        "CreateSecret",
        Name="replicated",
        SecretString="v",
        ClientRequestToken=tok(1),
        AddReplicaRegions=[{"Region": "eu-west-1"}],
    )
    assert [r["Region"] for r in replicated["ReplicationStatus"]] == ["eu-west-1"]


def test_a_retried_put_of_an_old_token_moves_no_label_back(sm):
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))
    call(sm, "PutSecretValue", SecretId="s", SecretString="v1", ClientRequestToken=tok(1), VersionStages=["X", "A"])
    call(sm, "PutSecretValue", SecretId="s", SecretString="v2", ClientRequestToken=tok(2))
    call(sm, "PutSecretValue", SecretId="s", SecretString="v3", ClientRequestToken=tok(3))
    # The retry of token 1 (AWSCURRENT, the default) answers the labels token 1 has now.
    again = call(sm, "PutSecretValue", SecretId="s", SecretString="v1", ClientRequestToken=tok(1))
    assert (again["VersionId"], again["VersionStages"]) == (tok(1), ["A", "X"])
    assert stages(sm) == {tok(1): ["A", "X"], tok(2): ["AWSPREVIOUS"], tok(3): ["AWSCURRENT"]}
    assert call(sm, "GetSecretValue", SecretId="s")["SecretString"] == "v3"


def test_a_rotations_placeholder_version_is_filled_by_its_token(sm, db):
    """The rotation engine writes a value-less version labelled AWSPENDING; the rotation
    function's PutSecretValue with that token gives it its value (no new version, no refusal)."""
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))

    placeholder(db, "AWSPENDING")
    assert refused(sm, "GetSecretValue", SecretId="s", VersionStage="AWSPENDING") == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret value for staging label: AWSPENDING",
    )
    assert refused(sm, "GetSecretValue", SecretId="s", VersionId=tok(1)) == (
        "ResourceNotFoundException",
        f"Secrets Manager can't find the specified secret value for VersionId: {tok(1)}",
    )
    put = call(
        sm, "PutSecretValue", SecretId="s", SecretString="new", ClientRequestToken=tok(1), VersionStages=["AWSPENDING"]
    )
    assert put["VersionStages"] == ["AWSPENDING"]
    got = call(sm, "GetSecretValue", SecretId="s", VersionStage="AWSPENDING")
    assert (got["VersionId"], got["SecretString"]) == (tok(1), "new")
    assert call(sm, "GetSecretValue", SecretId="s")["SecretString"] == "v0" and version_count(db) == 2
    # Filled, it is a version like any other: the same token with another value is refused.
    assert refused(sm, "PutSecretValue", SecretId="s", SecretString="x", ClientRequestToken=tok(1))[0] == (
        "ResourceExistsException"
    )


# ----------------------------------------------------------------------------------- reads


def test_get_secret_value_refusals_name_what_was_asked(sm):
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))
    call(sm, "PutSecretValue", SecretId="s", SecretString="v1", ClientRequestToken=tok(1))
    assert refused(sm, "GetSecretValue", SecretId="missing") == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
    other_region = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:s-AbCdEf"
    assert refused(sm, "GetSecretValue", SecretId=other_region)[0] == "ResourceNotFoundException"
    assert refused(sm, "GetSecretValue", SecretId="s", VersionId=tok(7)) == (
        "ResourceNotFoundException",
        f"Secrets Manager can't find the specified secret value for VersionId: {tok(7)}",
    )
    assert refused(sm, "GetSecretValue", SecretId="s", VersionStage="NOPE") == (
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret value for staging label: NOPE",
    )
    assert refused(sm, "GetSecretValue", SecretId="s", VersionId=tok(0), VersionStage="AWSCURRENT") == (
        "InvalidRequestException",
        "You provided a VersionStage that is not associated to the provided VersionId.",
    )
    got = call(sm, "GetSecretValue", SecretId="s", VersionId=tok(0), VersionStage="AWSPREVIOUS")
    assert (got["SecretString"], got["VersionStages"], got["CreatedDate"]) == ("v0", ["AWSPREVIOUS"], NOW)


def _last_access(sm: SecretsManager) -> tuple[float | None, dict[str, float | None]]:
    described = call(sm, "DescribeSecret", SecretId="s")
    versions = call(sm, "ListSecretVersionIds", SecretId="s", IncludeDeprecated=True)["Versions"]
    return described.get("LastAccessedDate"), {v["VersionId"]: v.get("LastAccessedDate") for v in versions}


def test_a_read_records_the_day_of_access_on_the_version_and_the_secret(sm, fake):
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))
    call(sm, "PutSecretValue", SecretId="s", SecretString="v1", ClientRequestToken=tok(1))
    assert _last_access(sm) == (None, {tok(0): None, tok(1): None})
    call(sm, "GetSecretValue", SecretId="s")
    assert _last_access(sm) == (MIDNIGHT, {tok(0): None, tok(1): MIDNIGHT})
    # The same day, another version: recorded too, though the secret's date is already today's.
    call(sm, "GetSecretValue", SecretId="s", VersionStage="AWSPREVIOUS")
    assert _last_access(sm) == (MIDNIGHT, {tok(0): MIDNIGHT, tok(1): MIDNIGHT})
    fake.advance(DAY)
    call(sm, "GetSecretValue", SecretId="s", VersionId=tok(0))
    assert _last_access(sm) == (MIDNIGHT + DAY, {tok(0): MIDNIGHT + DAY, tok(1): MIDNIGHT})


def test_batch_get_secret_value_takes_ids_or_filters_and_reports_each_failure(sm):
    for name in ("app-a", "app-b", "other"):
        call(sm, "CreateSecret", Name=name, SecretString=f"v-{name}", ClientRequestToken=tok(1))
    assert refused(sm, "BatchGetSecretValue") == (
        "InvalidParameterException",
        "Either 'SecretIdList' or 'Filters' must be provided.",
    )
    filters = [{"Key": "name", "Values": ["app-"]}]
    assert refused(sm, "BatchGetSecretValue", SecretIdList=["app-a"], Filters=filters)[0] == "InvalidParameterException"
    assert refused(sm, "BatchGetSecretValue", SecretIdList=["app-a"], MaxResults=5)[0] == "InvalidParameterException"
    assert refused(sm, "BatchGetSecretValue", SecretIdList=[f"x{i}" for i in range(21)])[0] == (
        "InvalidParameterException"
    )
    twenty = call(sm, "BatchGetSecretValue", SecretIdList=["app-a"] + [f"x{i}" for i in range(19)])
    assert [v["Name"] for v in twenty["SecretValues"]] == ["app-a"]
    assert len(twenty["Errors"]) == 19
    assert twenty["Errors"][0] == {
        "SecretId": "x0",
        "ErrorCode": "ResourceNotFoundException",
        "Message": "Secrets Manager can't find the specified secret.",
    }
    by_filter = call(sm, "BatchGetSecretValue", Filters=filters)
    assert [(v["Name"], v["SecretString"]) for v in by_filter["SecretValues"]] == [
        ("app-a", "v-app-a"),
        ("app-b", "v-app-b"),
    ]
    assert by_filter["Errors"] == [] and "NextToken" not in by_filter
    first = call(sm, "BatchGetSecretValue", Filters=filters, MaxResults=1)
    assert [v["Name"] for v in first["SecretValues"]] == ["app-a"]
    rest = call(sm, "BatchGetSecretValue", Filters=filters, MaxResults=1, NextToken=first["NextToken"])
    assert [v["Name"] for v in rest["SecretValues"]] == ["app-b"]


# ---------------------------------------------------------------------------------- writes


def test_update_secret_changes_what_it_is_given_and_makes_a_version_only_for_a_value(sm, db, fake):
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0), Description="d0")
    fake.advance(60)
    out = call(sm, "UpdateSecret", SecretId="s", Description="d1", Type="t")
    assert set(out) == {"ARN", "Name"} and version_count(db) == 1
    described = call(sm, "DescribeSecret", SecretId="s")
    assert (described["Description"], described["Type"], described["LastChangedDate"]) == ("d1", "t", NOW + 60)
    fake.advance(60)
    out = call(sm, "UpdateSecret", SecretId="s", SecretString="v1", ClientRequestToken=tok(1))
    assert out["VersionId"] == tok(1)
    assert stages(sm) == {tok(0): ["AWSPREVIOUS"], tok(1): ["AWSCURRENT"]}
    described = call(sm, "DescribeSecret", SecretId="s")
    assert (described["Description"], described["LastChangedDate"]) == ("d1", NOW + 120)


def _version_keys(sm: SecretsManager) -> dict[str, list[str]]:
    versions = call(sm, "ListSecretVersionIds", SecretId="s", IncludeDeprecated=True)["Versions"]
    return {v["VersionId"]: v["KmsKeyIds"] for v in versions}


def _stored_keys(db: Database) -> dict[str, str]:
    return dict(db.read_sync(lambda tx: tx.all("SELECT version_id, key_ref FROM versions")))


def test_a_new_kms_key_re_encrypts_the_labelled_versions_only(sm, db):
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))
    call(sm, "PutSecretValue", SecretId="s", SecretString="v1", ClientRequestToken=tok(1))
    call(sm, "PutSecretValue", SecretId="s", SecretString="v2", ClientRequestToken=tok(2))
    app = "arn:aws:kms:us-east-1:111122223333:alias/app"
    call(sm, "UpdateSecret", SecretId="s", KmsKeyId="alias/app")
    assert _stored_keys(db) == {tok(0): DEFAULT_KEY, tok(1): app, tok(2): app}
    assert _version_keys(sm) == {tok(0): ["DefaultEncryptionKey"], tok(1): ["alias/app"], tok(2): ["alias/app"]}
    fresh = SecretsManager(db, sm.cipher, b"k" * 32)
    for version, value in ((tok(0), "v0"), (tok(1), "v1"), (tok(2), "v2")):
        assert call(fresh, "GetSecretValue", SecretId="s", VersionId=version)["SecretString"] == value
    # The same key again changes nothing; an empty KmsKeyId goes back to the default key.
    call(sm, "UpdateSecret", SecretId="s", KmsKeyId="alias/app")
    assert _stored_keys(db) == {tok(0): DEFAULT_KEY, tok(1): app, tok(2): app}
    call(sm, "UpdateSecret", SecretId="s", KmsKeyId="")
    assert "KmsKeyId" not in call(sm, "DescribeSecret", SecretId="s")
    assert _stored_keys(db) == {tok(0): DEFAULT_KEY, tok(1): DEFAULT_KEY, tok(2): DEFAULT_KEY}
    assert call(sm, "GetSecretValue", SecretId="s")["SecretString"] == "v2"


def test_a_new_kms_key_skips_value_less_versions_and_re_encrypts_every_other(sm, db):
    """Four labelled versions with values and four labelled placeholders: each placeholder is
    skipped, and the versions after it (in whatever order) are still re-encrypted."""
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))
    for i in (1, 2, 3):
        call(
            sm, "PutSecretValue", SecretId="s", SecretString=f"v{i}", ClientRequestToken=tok(i), VersionStages=[f"V{i}"]
        )

    def placeholders(tx):  # type: ignore[no-untyped-def]
        secret = rows.find_secret(tx, CTX.account_id, CTX.region, name="s")
        for i in (4, 5, 6, 7):
            rows.insert_version(tx, secret.id, rows.VersionRow(tok(i), NOW, None, 0, None, None))
            rows.set_stage(tx, secret.id, f"P{i}", tok(i))

    db.write_sync(placeholders)
    call(sm, "UpdateSecret", SecretId="s", KmsKeyId="alias/app")
    app = "arn:aws:kms:us-east-1:111122223333:alias/app"
    assert _stored_keys(db) == {**{tok(i): app for i in range(4)}, **{tok(i): None for i in range(4, 8)}}
    for i in range(4):
        assert call(sm, "GetSecretValue", SecretId="s", VersionId=tok(i))["SecretString"] == f"v{i}"


def test_update_secret_version_stage_moves_a_label_between_versions(sm, fake):
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))
    call(sm, "PutSecretValue", SecretId="s", SecretString="v1", ClientRequestToken=tok(1), VersionStages=["BLUE"])
    fake.advance(60)
    out = call(sm, "UpdateSecretVersionStage", SecretId="s", VersionStage="BLUE", MoveToVersionId=tok(1))
    assert set(out) == {"ARN", "Name"}
    assert call(sm, "DescribeSecret", SecretId="s")["LastChangedDate"] == NOW + 60
    assert refused(sm, "UpdateSecretVersionStage", SecretId="s", VersionStage="BLUE", MoveToVersionId=tok(0))[0] == (
        "InvalidParameterException"
    )
    call(
        sm,
        "UpdateSecretVersionStage",
        SecretId="s",
        VersionStage="BLUE",
        MoveToVersionId=tok(0),
        RemoveFromVersionId=tok(1),
    )
    assert stages(sm) == {tok(0): ["AWSCURRENT", "BLUE"]}  # version 1 has no label left
    assert refused(sm, "UpdateSecretVersionStage", SecretId="s", VersionStage="BLUE", RemoveFromVersionId=tok(1)) == (
        "InvalidParameterException",
        f"The parameter RemoveFromVersionId is invalid. Staging label BLUE is not attached to version {tok(1)}.",
    )
    # A new label needs no RemoveFromVersionId.
    call(sm, "UpdateSecretVersionStage", SecretId="s", VersionStage="GREEN", MoveToVersionId=tok(1))
    assert call(sm, "GetSecretValue", SecretId="s", VersionStage="GREEN")["SecretString"] == "v1"


def test_awscurrent_moved_onto_a_secret_without_one_makes_no_awsprevious(sm):
    call(sm, "CreateSecret", Name="s")
    call(sm, "PutSecretValue", SecretId="s", SecretString="v1", ClientRequestToken=tok(1), VersionStages=["STAGED"])
    assert refused(sm, "GetSecretValue", SecretId="s")[0] == "ResourceNotFoundException"
    call(sm, "UpdateSecretVersionStage", SecretId="s", VersionStage="AWSCURRENT", MoveToVersionId=tok(1))
    assert stages(sm) == {tok(1): ["AWSCURRENT", "STAGED"]}
    assert call(sm, "GetSecretValue", SecretId="s")["SecretString"] == "v1"


def test_a_primary_reports_when_each_replica_was_last_read(sm, fake):
    call(sm, "CreateSecret", Name="s", SecretString="v", ClientRequestToken=tok(1))
    call(
        sm,
        "ReplicateSecretToRegions",
        SecretId="s",
        AddReplicaRegions=[{"Region": "eu-west-1"}, {"Region": "ap-south-1"}],
    )
    replica = dataclasses.replace(CTX, region="eu-west-1")
    described = asyncio.run(sm.describe_secret(replica, {"SecretId": "s"}))
    assert "Tags" not in described and "LastAccessedDate" not in described  # never tagged, never read
    fake.advance(DAY)
    assert asyncio.run(sm.get_secret_value(replica, {"SecretId": "s"}))["SecretString"] == "v"
    status = {
        r["Region"]: r.get("LastAccessedDate") for r in call(sm, "DescribeSecret", SecretId="s")["ReplicationStatus"]
    }
    assert status == {"eu-west-1": MIDNIGHT + DAY, "ap-south-1": None}


def test_a_replica_region_holding_the_name_fails_unless_overwriting_is_asked_for(sm):
    ireland = dataclasses.replace(CTX, region="eu-west-1")
    for name in ("kept", "replaced"):
        asyncio.run(sm.create_secret(ireland, {"Name": name, "SecretString": "local", "ClientRequestToken": tok(9)}))
    replica = [{"Region": "eu-west-1"}]
    kept = call(sm, "CreateSecret", Name="kept", SecretString="v", ClientRequestToken=tok(1), AddReplicaRegions=replica)
    assert [(r["Status"], r["StatusMessage"]) for r in kept["ReplicationStatus"]] == [
        ("Failed", "Replication failed: Secret name already exists in the destination region.")
    ]
    assert asyncio.run(sm.get_secret_value(ireland, {"SecretId": "kept"}))["SecretString"] == "local"
    replaced = call(
        sm,
        "CreateSecret",
        Name="replaced",
        SecretString="v",
        ClientRequestToken=tok(1),
        AddReplicaRegions=replica,
        ForceOverwriteReplicaSecret=True,
    )
    assert [r["Status"] for r in replaced["ReplicationStatus"]] == ["InSync"]
    assert asyncio.run(sm.get_secret_value(ireland, {"SecretId": "replaced"}))["SecretString"] == "v"


def test_batch_get_secret_value_by_filter_answers_twenty_a_page_unless_told(sm):
    for i in range(21):
        call(sm, "CreateSecret", Name=f"many-{i:02d}", SecretString=str(i), ClientRequestToken=tok(1))
    filters = [{"Key": "name", "Values": ["many-"]}]
    first = call(sm, "BatchGetSecretValue", Filters=filters)
    assert [v["Name"] for v in first["SecretValues"]] == [f"many-{i:02d}" for i in range(20)]
    rest = call(sm, "BatchGetSecretValue", Filters=filters, NextToken=first["NextToken"])
    assert [v["SecretString"] for v in rest["SecretValues"]] == ["20"] and "NextToken" not in rest


def test_create_secret_with_a_pending_placeholders_token_is_told_the_name_exists(sm, db):
    """A value-less version is no earlier CreateSecret to answer again: the name exists."""
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))

    placeholder(db, "AWSPENDING")
    assert refused(sm, "CreateSecret", Name="s", SecretString="v1", ClientRequestToken=tok(1)) == (
        "ResourceExistsException",
        "The operation failed because the secret s already exists.",
    )


def test_a_value_put_with_the_pending_versions_own_token_keeps_its_pending_label(sm, db):
    """Filling the rotation's placeholder and making it current at once does not end the rotation
    (only another version made current by hand does)."""
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))

    placeholder(db, "AWSPENDING")
    put = call(sm, "PutSecretValue", SecretId="s", SecretString="v1", ClientRequestToken=tok(1))
    assert put["VersionStages"] == ["AWSCURRENT", "AWSPENDING"]
    assert stages(sm) == {tok(0): ["AWSPREVIOUS"], tok(1): ["AWSCURRENT", "AWSPENDING"]}


def test_a_placeholder_made_current_by_hand_is_filled_with_every_label_asked_for(sm, db):
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))

    placeholder(db)
    call(
        sm,
        "UpdateSecretVersionStage",
        SecretId="s",
        VersionStage="AWSCURRENT",
        MoveToVersionId=tok(1),
        RemoveFromVersionId=tok(0),
    )
    put = call(
        sm,
        "PutSecretValue",
        SecretId="s",
        SecretString="v1",
        ClientRequestToken=tok(1),
        VersionStages=["AWSCURRENT", "X"],
    )
    assert put["VersionStages"] == ["AWSCURRENT", "X"]
    assert stages(sm) == {tok(0): ["AWSPREVIOUS"], tok(1): ["AWSCURRENT", "X"]}


def test_a_value_under_the_default_key_is_not_written_from_another_account(sm, db):
    """Whatever the resource policy allows: the account's default key cannot be shared (AWS's
    rule for GetSecretValue and PutSecretValue; UpdateSecret with a value uses the key the same
    way), while an UpdateSecret that touches no value is allowed."""
    import json

    from strongroom.auth.authorizer import Authorizer
    from strongroom.auth.principal import ROOT

    arn = call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))["ARN"]
    other = "444455556666"
    grant = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{other}:root"},
        "Action": "secretsmanager:*",
        "Resource": "*",
    }
    call(
        sm,
        "PutResourcePolicy",
        SecretId="s",
        ResourcePolicy=json.dumps({"Version": "2012-10-17", "Statement": [grant]}),
    )
    root_b = dataclasses.replace(
        CTX, account_id=other, principal_arn=f"arn:aws:iam::{other}:root", authz=Authorizer(db), privilege=ROOT
    )

    def as_b(op: str, **params: Any) -> dict[str, Any]:
        ctx = dataclasses.replace(root_b, operation=op, params=params)
        return asyncio.run(sm.handlers[op](ctx, params))

    as_b("UpdateSecret", SecretId=arn, Description="from b")  # no value: allowed
    with pytest.raises(AWSError) as exc:  # a secret that is not there, asked for by ARN: not found
        as_b("GetSecretValue", SecretId=arn.replace(":secret:s-", ":secret:gone-"))
    assert exc.value.code == "ResourceNotFoundException"
    assert call(sm, "DescribeSecret", SecretId="s")["Description"] == "from b"
    default_key = (
        "You can't access a secret from a different AWS account if you encrypt the secret with the default KMS "
        "service key."
    )
    for op, params in (
        ("UpdateSecret", {"SecretString": "v1", "ClientRequestToken": tok(1)}),
        ("PutSecretValue", {"SecretString": "v1", "ClientRequestToken": tok(1)}),
        ("GetSecretValue", {}),
    ):
        with pytest.raises(AWSError) as exc:
            as_b(op, SecretId=arn, **params)
        assert (exc.value.code, exc.value.message) == ("InvalidRequestException", default_key), op
    assert stages(sm) == {tok(0): ["AWSCURRENT"]}


def test_a_value_set_by_hand_abandons_the_rotation_and_restarts_its_schedule(sm, db, fake):
    """With rotation on: a new AWSCURRENT set by hand ends the rotation whose pending version it
    would otherwise be replaced by, and counts as a rotation for AutomaticallyAfterDays."""
    from strongroom.rotation.engine import RotationEngine, RotationSettings, history_of
    from strongroom.rotation.runtime import FunctionSpec

    function = "arn:aws:lambda:us-east-1:111122223333:function:rotator"
    spec = FunctionSpec(key="rotator", arn=function, name="rotator", handler="x")
    # No job is run here (nothing calls run_once): the engine only records; it needs no runtime.
    sm.rotation = RotationEngine(
        sm.cipher, db, None, lambda tx, a, r, arn, secret: spec if arn == function else None, RotationSettings()
    )
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))
    call(
        sm,
        "RotateSecret",
        SecretId="s",
        RotationLambdaARN=function,
        ClientRequestToken=tok(1),
        RotationRules={"AutomaticallyAfterDays": 30},
        RotateImmediately=False,
    )
    scheduled = call(sm, "DescribeSecret", SecretId="s")["NextRotationDate"]

    def history() -> list[tuple[str, str]]:
        found = db.read_sync(lambda tx: history_of(tx, CTX.account_id, CTX.region, "s"))
        return [(h["VersionId"], h["State"]) for h in found]

    assert history() == [(tok(1), "queued")]
    fake.advance(10 * DAY)
    call(sm, "PutSecretValue", SecretId="s", SecretString="by hand", ClientRequestToken=tok(2))
    assert history() == [(tok(1), "abandoned")]
    assert stages(sm) == {tok(0): ["AWSPREVIOUS"], tok(2): ["AWSCURRENT"]}
    assert call(sm, "DescribeSecret", SecretId="s")["NextRotationDate"] == scheduled + 10 * DAY


def test_a_cross_account_replica_gets_the_values_and_never_a_rotations_placeholder(sm, db):
    from strongroom.auth.authorizer import Authorizer
    from strongroom.auth.principal import ROOT

    authz = Authorizer(db)
    a = dataclasses.replace(CTX, authz=authz, privilege=ROOT)
    b = dataclasses.replace(
        CTX, account_id="444455556666", principal_arn="arn:aws:iam::444455556666:root", authz=authz, privilege=ROOT
    )

    def as_(ctx: RequestContext, op: str, **params: Any) -> dict[str, Any]:
        return asyncio.run(sm.handlers[op](dataclasses.replace(ctx, operation=op, params=params), params))

    primary = as_(a, "CreateSecret", Name="p", SecretString="v0", ClientRequestToken=tok(0), KmsKeyId="alias/p")["ARN"]
    as_(a, "PutSecretValue", SecretId="p", SecretString="v1", ClientRequestToken=tok(1))

    placeholder(db, "AWSPENDING", name="p", version=2)
    replica = as_(b, "CreateSecret", Name="r", CrossAccountPrimaryARN=primary, KmsKeyId="alias/r")["ARN"]
    as_(a, "AssociateCrossAccountReplica", SecretId="p", CrossAccountReplicaARN=replica)
    listed = as_(b, "ListSecretVersionIds", SecretId="r", IncludeDeprecated=True)["Versions"]
    assert {v["VersionId"]: v.get("VersionStages") for v in listed} == {tok(0): ["AWSPREVIOUS"], tok(1): ["AWSCURRENT"]}
    assert as_(b, "GetSecretValue", SecretId="r")["SecretString"] == "v1"
