"""Secret values through the encryption barrier, in process on a real SQLite database: which key a
``KmsKeyId`` names, string and binary values as stored, and a read that finds no key."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.context import RequestContext
from strongroom.crypto import Keyring, MasterKey
from strongroom.services.secretsmanager import SecretsManager
from strongroom.services.secretsmanager.values import ValueCipher, key_ref_for
from strongroom.store import Database, open_database

CTX = RequestContext(
    account_id="111122223333", region="us-east-1", principal_arn="arn:aws:iam::111122223333:root", request_id="r"
)
MASTER = MasterKey.generate()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(str(tmp_path / "values.db"))
    yield database
    database.close()


def service(db: Database) -> SecretsManager:
    return SecretsManager(db, ValueCipher(Keyring(MASTER)), b"k" * 32)


def call(sm: SecretsManager, op: str, **params: Any) -> dict[str, Any]:
    return asyncio.run(sm.handlers[op](CTX, params))


def test_a_kms_key_id_names_a_key_by_arn_alias_or_id() -> None:
    args = ("aws", "us-east-1", "111122223333")
    assert key_ref_for(None, *args) == "arn:aws:kms:us-east-1:111122223333:alias/aws/secretsmanager"
    assert key_ref_for("", *args) == "arn:aws:kms:us-east-1:111122223333:alias/aws/secretsmanager"
    arn = "arn:aws:kms:eu-west-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert key_ref_for(arn, *args) == arn
    assert key_ref_for("alias/app", *args) == "arn:aws:kms:us-east-1:111122223333:alias/app"
    assert key_ref_for("1234abcd", *args) == "arn:aws:kms:us-east-1:111122223333:key/1234abcd"


def test_each_kms_key_id_gets_its_own_key_and_values_open_under_it(db):
    sm = service(db)
    call(sm, "CreateSecret", Name="a", SecretString="va", ClientRequestToken="a" * 32)
    call(sm, "CreateSecret", Name="b", SecretString="vb", ClientRequestToken="b" * 32, KmsKeyId="alias/app")
    refs = {r[0] for r in db.read_sync(lambda tx: tx.all("SELECT key_ref FROM kms_keys", ()))}
    assert {
        "arn:aws:kms:us-east-1:111122223333:alias/aws/secretsmanager",
        "arn:aws:kms:us-east-1:111122223333:alias/app",
    } <= refs
    fresh = service(db)  # another process: nothing cached
    assert call(fresh, "GetSecretValue", SecretId="b")["SecretString"] == "vb"


def test_strings_and_binaries_are_stored_as_kinds_1_and_2_and_read_back_as_written(db):
    """The kind is on disk: a database written earlier holds 1 for strings and 2 for binaries."""
    sm = service(db)
    raw = bytes(range(256))  # not UTF-8
    call(sm, "CreateSecret", Name="s", SecretString="text", ClientRequestToken="s" * 32)
    call(sm, "CreateSecret", Name="b", SecretBinary=raw, ClientRequestToken="b" * 32)
    kinds = dict(
        db.read_sync(
            lambda tx: tx.all("SELECT s.name, v.value_kind FROM versions v JOIN secrets s ON s.id = v.secret_id", ())
        )
    )
    assert kinds == {"s": 1, "b": 2}
    got = call(service(db), "GetSecretValue", SecretId="b")
    assert got["SecretBinary"] == raw and "SecretString" not in got
    got = call(service(db), "GetSecretValue", SecretId="s")
    assert got["SecretString"] == "text" and "SecretBinary" not in got


def test_a_read_whose_key_is_gone_fails_and_makes_no_key(db):
    sm = service(db)
    call(sm, "CreateSecret", Name="s", SecretString="v", ClientRequestToken="s" * 32)
    db.write_sync(lambda tx: tx.execute("DELETE FROM kms_keys", ()))
    with pytest.raises(LookupError, match="no key arn:aws:kms:us-east-1:111122223333:alias/aws/secretsmanager"):
        call(service(db), "GetSecretValue", SecretId="s")
    assert db.read_sync(lambda tx: tx.all("SELECT key_ref FROM kms_keys", ())) == []
