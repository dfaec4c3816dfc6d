"""DeleteSecret and RestoreSecret in process on a real SQLite database: the recovery window, forced
deletes, and what may not be deleted (issue 17's mutation run found these unguarded outside the
API tests)."""

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
NOW = 1_800_000_000.0
DAY = 86400.0


@pytest.fixture
def sm(tmp_path: Path) -> Iterator[SecretsManager]:
    fake = clock.FakeClock(NOW)
    previous = clock.use(fake)
    db = open_database(str(tmp_path / "deletion.db"))
    service = SecretsManager(db, ValueCipher(Keyring(MasterKey.generate())), b"k" * 32)
    _call(service, "CreateSecret", Name="s", SecretString="v", ClientRequestToken="t" * 32)
    yield service
    db.close()
    clock.use(previous)


def _call(service: SecretsManager, op: str, **params: Any) -> dict[str, Any]:
    return asyncio.run(service.handlers[op](CTX, params))


def refused(sm: SecretsManager, op: str, **params: Any) -> AWSError:
    with pytest.raises(AWSError) as exc:
        _call(sm, op, **params)
    return exc.value


def deletion_date(answer: dict[str, Any]) -> float:
    value = answer["DeletionDate"]
    return value if isinstance(value, float | int) else value.timestamp()


def test_the_recovery_window_is_30_days_unless_told_and_7_to_30(sm):
    assert deletion_date(_call(sm, "DeleteSecret", SecretId="s")) == pytest.approx(NOW + 30 * DAY)
    _call(sm, "RestoreSecret", SecretId="s")
    for days in (6, 31):
        err = refused(sm, "DeleteSecret", SecretId="s", RecoveryWindowInDays=days)
        assert (err.code, err.message) == (
            "InvalidParameterException",
            "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
        )
    for days in (7, 30):
        assert deletion_date(_call(sm, "DeleteSecret", SecretId="s", RecoveryWindowInDays=days)) == pytest.approx(
            NOW + days * DAY
        )
        _call(sm, "RestoreSecret", SecretId="s")


def test_force_and_a_window_together_are_refused_and_force_alone_deletes_now(sm):
    err = refused(sm, "DeleteSecret", SecretId="s", ForceDeleteWithoutRecovery=True, RecoveryWindowInDays=7)
    assert (err.code, err.message) == (
        "InvalidParameterException",
        "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
    )
    assert deletion_date(_call(sm, "DeleteSecret", SecretId="s", ForceDeleteWithoutRecovery=True)) == NOW
    assert refused(sm, "DescribeSecret", SecretId="s").code == "ResourceNotFoundException"


def test_a_missing_secret_is_not_found_unless_the_delete_is_forced(sm):
    assert refused(sm, "DeleteSecret", SecretId="missing").code == "ResourceNotFoundException"
    gone = _call(sm, "DeleteSecret", SecretId="missing", ForceDeleteWithoutRecovery=True)
    assert gone["Name"] == "missing" and gone["ARN"].startswith(
        "arn:aws:secretsmanager:us-east-1:111122223333:secret:missing-"
    )
    arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbCdEf"
    gone = _call(sm, "DeleteSecret", SecretId=arn, ForceDeleteWithoutRecovery=True)
    assert (gone["ARN"], gone["Name"], deletion_date(gone)) == (arn, "app/db", NOW)
    arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:my-app-db-AbCdEf"  # hyphens in the name
    assert _call(sm, "DeleteSecret", SecretId=arn, ForceDeleteWithoutRecovery=True)["Name"] == "my-app-db"


def test_a_secret_scheduled_for_deletion_cannot_be_scheduled_again(sm):
    _call(sm, "DeleteSecret", SecretId="s", RecoveryWindowInDays=7)
    err = refused(sm, "DeleteSecret", SecretId="s", RecoveryWindowInDays=10)
    assert err.code == "InvalidRequestException"
    # A forced delete of a secret scheduled for deletion deletes it.
    _call(sm, "DeleteSecret", SecretId="s", ForceDeleteWithoutRecovery=True)
    assert refused(sm, "DescribeSecret", SecretId="s").code == "ResourceNotFoundException"


def test_a_primary_with_replicas_is_not_deleted(sm):
    arn = _call(sm, "DescribeSecret", SecretId="s")["ARN"]
    _call(sm, "ReplicateSecretToRegions", SecretId="s", AddReplicaRegions=[{"Region": "eu-west-1"}])
    err = refused(sm, "DeleteSecret", SecretId="s")
    assert (err.code, err.message) == (
        "InvalidParameterException",
        f"You can't delete secret {arn} that still has replica regions [eu-west-1].",
    )
