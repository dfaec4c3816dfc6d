"""Staging labels, client tokens and version retention, in process on a real SQLite database:
the rules of domain/labels.py as Secrets Manager's operations apply them (issue 17's mutation
run found them unguarded outside the API tests)."""

from __future__ import annotations

import asyncio
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
from strongroom.store import open_database

CTX = RequestContext(
    account_id="111122223333", region="us-east-1", principal_arn="arn:aws:iam::111122223333:root", request_id="r"
)


@pytest.fixture
def sm(tmp_path: Path) -> Iterator[SecretsManager]:
    db = open_database(str(tmp_path / "labels.db"))
    yield SecretsManager(db, ValueCipher(Keyring(MasterKey.generate())), b"k" * 32)
    db.close()


@pytest.fixture
def fake() -> Iterator[clock.FakeClock]:
    fake = clock.FakeClock(1_800_000_000.0)
    previous = clock.use(fake)
    yield fake
    clock.use(previous)


def call(sm: SecretsManager, op: str, **params: Any) -> dict[str, Any]:
    return asyncio.run(sm.handlers[op](CTX, params))


def refused(sm: SecretsManager, op: str, **params: Any) -> AWSError:
    with pytest.raises(AWSError) as exc:
        call(sm, op, **params)
    return exc.value


def stages(sm: SecretsManager, name: str = "s") -> dict[str, list[str]]:
    return call(sm, "DescribeSecret", SecretId=name)["VersionIdsToStages"]


def tok(i: int) -> str:
    return f"{i:032d}"


def test_twenty_labels_on_a_version_and_not_one_more(sm, fake):
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))
    twenty = [f"L{i}" for i in range(19)] + ["AWSCURRENT"]
    call(sm, "PutSecretValue", SecretId="s", SecretString="v1", ClientRequestToken=tok(1), VersionStages=twenty)
    assert sorted(stages(sm)[tok(1)]) == sorted(twenty)
    err = refused(sm, "UpdateSecretVersionStage", SecretId="s", VersionStage="L19", MoveToVersionId=tok(1))
    assert (err.code, err.message) == (
        "LimitExceededException",
        "You can't attach more than 20 staging labels to a version.",
    )
    # A label the version already has is no new one.
    call(sm, "UpdateSecretVersionStage", SecretId="s", VersionStage="L3", MoveToVersionId=tok(1))
    err = refused(
        sm,
        "PutSecretValue",
        SecretId="s",
        SecretString="v2",
        ClientRequestToken=tok(2),
        VersionStages=[f"M{i}" for i in range(21)],
    )
    assert err.code == "LimitExceededException"


def _versions(sm: SecretsManager) -> set[str]:
    listed = call(sm, "ListSecretVersionIds", SecretId="s", IncludeDeprecated=True, MaxResults=100)
    ids = {v["VersionId"] for v in listed["Versions"]}
    while "NextToken" in listed:
        listed = call(
            sm,
            "ListSecretVersionIds",
            SecretId="s",
            IncludeDeprecated=True,
            MaxResults=100,
            NextToken=listed["NextToken"],
        )
        ids |= {v["VersionId"] for v in listed["Versions"]}
    return ids


def test_the_hundred_newest_versions_and_every_one_younger_than_a_day_are_kept(sm, fake):
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))
    for i in range(1, 104):
        fake.advance(1)
        call(sm, "PutSecretValue", SecretId="s", SecretString=f"v{i}", ClientRequestToken=tok(i))
    assert len(_versions(sm)) == 104  # all younger than a day
    fake.set(1_800_000_000.0 + 24 * 3600 - 1)  # the first still a second short of a day
    call(sm, "PutSecretValue", SecretId="s", SecretString="v104", ClientRequestToken=tok(104))
    assert len(_versions(sm)) == 105
    fake.set(1_800_000_000.0 + 24 * 3600 + 6)  # versions 0 to 5 now older than a day
    call(sm, "PutSecretValue", SecretId="s", SecretString="v105", ClientRequestToken=tok(105))
    assert _versions(sm) == {tok(i) for i in range(6, 106)}  # the 100 newest


def test_a_labelled_version_is_kept_however_old(sm, fake):
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))
    call(sm, "UpdateSecretVersionStage", SecretId="s", VersionStage="KEEP", MoveToVersionId=tok(0))
    for i in range(1, 102):
        fake.advance(1)
        call(sm, "PutSecretValue", SecretId="s", SecretString=f"v{i}", ClientRequestToken=tok(i))
    fake.advance(2 * 24 * 3600)
    call(sm, "PutSecretValue", SecretId="s", SecretString="last", ClientRequestToken=tok(102))
    kept = _versions(sm)
    assert tok(0) in kept and tok(1) not in kept and tok(2) not in kept and len(kept) == 101


def test_moving_awscurrent_makes_awsprevious_and_its_rules(sm, fake):
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))
    call(sm, "PutSecretValue", SecretId="s", SecretString="v1", ClientRequestToken=tok(1), VersionStages=["OTHER"])
    err = refused(sm, "UpdateSecretVersionStage", SecretId="s", VersionStage="AWSCURRENT", MoveToVersionId=tok(1))
    assert err.message == (
        "The parameter RemoveFromVersionId can't be empty. Staging label AWSCURRENT is currently attached to "
        f"version {tok(0)}, so you must explicitly reference that version in RemoveFromVersionId."
    )
    err = refused(
        sm,
        "UpdateSecretVersionStage",
        SecretId="s",
        VersionStage="AWSCURRENT",
        MoveToVersionId=tok(1),
        RemoveFromVersionId=tok(1),
    )
    assert err.message == (
        f"The parameter RemoveFromVersionId is invalid. Staging label AWSCURRENT is not attached to version {tok(1)}."
    )
    err = refused(
        sm,
        "UpdateSecretVersionStage",
        SecretId="s",
        VersionStage="AWSCURRENT",
        MoveToVersionId=tok(9),
        RemoveFromVersionId=tok(0),
    )
    assert err.message == f"The parameter MoveToVersionId is invalid. Version {tok(9)} does not exist."
    call(
        sm,
        "UpdateSecretVersionStage",
        SecretId="s",
        VersionStage="AWSCURRENT",
        MoveToVersionId=tok(1),
        RemoveFromVersionId=tok(0),
    )
    assert sorted(stages(sm)[tok(1)]) == ["AWSCURRENT", "OTHER"]
    assert stages(sm)[tok(0)] == ["AWSPREVIOUS"]
    assert call(sm, "GetSecretValue", SecretId="s")["SecretString"] == "v1"
    # Moving AWSCURRENT onto the version that has it changes nothing.
    call(sm, "UpdateSecretVersionStage", SecretId="s", VersionStage="AWSCURRENT", MoveToVersionId=tok(1))
    assert stages(sm)[tok(0)] == ["AWSPREVIOUS"]
    err = refused(sm, "UpdateSecretVersionStage", SecretId="s", VersionStage="AWSCURRENT", RemoveFromVersionId=tok(1))
    assert err.message == (
        "You can only move staging label AWSCURRENT to a different secret version. It can't be completely detached."
    )
    call(sm, "UpdateSecretVersionStage", SecretId="s", VersionStage="OTHER", RemoveFromVersionId=tok(1))
    assert stages(sm)[tok(1)] == ["AWSCURRENT"]


def test_a_token_is_a_version_retries_change_nothing_and_another_value_is_refused(sm, fake):
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))
    first = call(sm, "PutSecretValue", SecretId="s", SecretString="v1", ClientRequestToken=tok(1))
    again = call(sm, "PutSecretValue", SecretId="s", SecretString="v1", ClientRequestToken=tok(1))
    assert first["VersionStages"] == again["VersionStages"] == ["AWSCURRENT"]
    assert stages(sm) == {tok(0): ["AWSPREVIOUS"], tok(1): ["AWSCURRENT"]}
    err = refused(sm, "PutSecretValue", SecretId="s", SecretString="other", ClientRequestToken=tok(1))
    assert err.code == "ResourceExistsException"
    assert call(sm, "GetSecretValue", SecretId="s")["SecretString"] == "v1"


def test_a_value_set_by_hand_ends_a_pending_rotation(sm, fake):
    call(sm, "CreateSecret", Name="s", SecretString="v0", ClientRequestToken=tok(0))
    call(sm, "PutSecretValue", SecretId="s", SecretString="p", ClientRequestToken=tok(1), VersionStages=["AWSPENDING"])
    call(sm, "PutSecretValue", SecretId="s", SecretString="by hand", ClientRequestToken=tok(2))
    assert stages(sm)[tok(2)] == ["AWSCURRENT"] and stages(sm)[tok(0)] == ["AWSPREVIOUS"]
    assert "AWSPENDING" not in [s for labels in stages(sm).values() for s in labels]
    # Written with AWSPENDING among its own labels, the pending label stays where it is put.
    call(
        sm,
        "PutSecretValue",
        SecretId="s",
        SecretString="both",
        ClientRequestToken=tok(3),
        VersionStages=["AWSCURRENT", "AWSPENDING"],
    )
    assert sorted(stages(sm)[tok(3)]) == ["AWSCURRENT", "AWSPENDING"]
