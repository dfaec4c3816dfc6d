"""The built-in rotators change real PostgreSQL and MariaDB users, through RotateSecret."""

from __future__ import annotations

import json
import time
import uuid

import psycopg
import pymysql
import pytest
from botocore.exceptions import ClientError

PG = "postgresql://postgres@127.0.0.1:5432/test"
FAST = {"STRONGROOM_ROTATION_RETRY_BASE_SECONDS": "0.3", "STRONGROOM_ROTATION_MAX_ATTEMPTS": "2",
        "STRONGROOM_ROTATION_POLL_SECONDS": "0.2"}


def builtin(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:function:strongroom-{name}"


@pytest.fixture(scope="module")
def srv():  # type: ignore[no-untyped-def]
    from strongroom.testing import ServerProcess

    with ServerProcess(env=FAST) as server:
        yield server


def rotate_and_wait(sm, name: str, function: str) -> dict:  # type: ignore[no-untyped-def]
    before = sm.get_secret_value(SecretId=name)["VersionId"]
    token = sm.rotate_secret(SecretId=name, RotationLambdaARN=function)["VersionId"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
        if stages.get(token) == ["AWSCURRENT"]:
            assert stages[before] == ["AWSPREVIOUS"]
            return json.loads(sm.get_secret_value(SecretId=name)["SecretString"])  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"rotation did not finish: {sm.describe_secret(SecretId=name)}")


# ------------------------------------------------------------------------------------ MariaDB

def maria(user: str = "root", password: str = "") -> pymysql.connections.Connection:  # type: ignore[name-defined]
    return pymysql.connect(host="127.0.0.1", port=3306, user=user, password=password, database="test",
                           autocommit=True, connect_timeout=5)


def maria_logs_in(user: str, password: str) -> bool:
    try:
        maria(user, password).close()
        return True
    except pymysql.err.OperationalError:
        return False


@pytest.fixture
def maria_user():  # type: ignore[no-untyped-def]
    name = "r" + uuid.uuid4().hex[:8]
    table = f"t_{name}"
    root = maria()
    with root.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (x INT)")
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (name, "first-Password-1"))
        cur.execute(f"GRANT SELECT ON test.{table} TO %s@'%%'", (name,))
    yield name, table
    with root.cursor() as cur:
        for user in (name, name + "_clone"):
            cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
        cur.execute(f"DROP TABLE {table}")
    root.close()


def test_mysql_single_user(srv, maria_user):
    sm, (user, _) = srv.client(), maria_user
    name = f"maria-{user}"
    sm.create_secret(Name=name, SecretString=json.dumps(
        {"engine": "mariadb", "host": "127.0.0.1", "port": 3306, "username": user, "password": "first-Password-1",
         "dbname": "test"}))
    for _ in range(2):
        old = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
        new = rotate_and_wait(sm, name, builtin("mysql-single-user"))
        assert new["username"] == user and new["password"] != old["password"]
        assert maria_logs_in(user, new["password"])
        assert not maria_logs_in(user, old["password"])


def test_mysql_multi_user_alternates_with_the_same_privileges(srv, maria_user):
    sm, (user, table) = srv.client(), maria_user
    master = sm.create_secret(Name=f"maria-master-{user}", SecretString=json.dumps(
        {"engine": "mysql", "host": "127.0.0.1", "username": "root", "password": ""}))["ARN"]
    name = f"maria-multi-{user}"
    sm.create_secret(Name=name, SecretString=json.dumps(
        {"engine": "mysql", "host": "127.0.0.1", "port": "3306", "username": user, "password": "first-Password-1",
         "dbname": "test", "masterarn": master}))
    first = rotate_and_wait(sm, name, builtin("mysql-multi-user"))
    assert first["username"] == user + "_clone"
    clone = maria(first["username"], first["password"])
    with clone.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table}")  # the clone may do what the original may
        with pytest.raises(pymysql.err.OperationalError):
            cur.execute("CREATE TABLE nope (x INT)")  # and no more
    clone.close()
    assert maria_logs_in(user, "first-Password-1")  # the previous user keeps working until its turn
    second = rotate_and_wait(sm, name, builtin("mysql-multi-user"))
    assert second["username"] == user
    assert maria_logs_in(user, second["password"]) and not maria_logs_in(user, "first-Password-1")


def test_wrong_engine_fails_the_rotation_and_keeps_pending(srv, maria_user):
    sm, (user, _) = srv.client(), maria_user
    name = f"maria-wrong-{user}"
    first = sm.create_secret(Name=name, SecretString=json.dumps(
        {"engine": "oracle", "host": "127.0.0.1", "username": user, "password": "first-Password-1"}))["VersionId"]
    token = sm.rotate_secret(SecretId=name, RotationLambdaARN=builtin("mysql-single-user"))["VersionId"]
    time.sleep(2.5)
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages == {first: ["AWSCURRENT"], token: ["AWSPENDING"]}
    assert maria_logs_in(user, "first-Password-1")


# --------------------------------------------------------------------------------- PostgreSQL

@pytest.fixture
def pg_user():  # type: ignore[no-untyped-def]
    name = "r" + uuid.uuid4().hex[:8]
    with psycopg.connect(PG, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'first-Password-1'")
        admin.execute(f"CREATE TABLE t_{name} (x int)")
        admin.execute(f"GRANT SELECT ON t_{name} TO {name}")
        admin.execute(f"CREATE ROLE {name}_master LOGIN SUPERUSER PASSWORD 'master-Password-1'")
    yield name
    with psycopg.connect(PG, autocommit=True) as admin:
        admin.execute(f"DROP TABLE t_{name}")
        for role in (name + "_clone", name, name + "_master"):
            admin.execute(f"DROP ROLE IF EXISTS {role}")


def password_hash(role: str) -> str | None:
    # This machine's PostgreSQL trusts loopback connections, so a wrong password still logs in:
    # the proof that the password changed is the stored SCRAM verifier.
    with psycopg.connect(PG) as admin:
        row = admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
    return None if row is None else row[0]


def scram_matches(stored: str, password: str) -> bool:
    import base64
    import hashlib
    import hmac

    method, rest = stored.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = base64.b64decode(keys.split(":")[0])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return method == "SCRAM-SHA-256" and hashlib.sha256(client_key).digest() == stored_key


def test_postgresql_single_user(srv, pg_user):
    sm = srv.client()
    name = f"pg-{pg_user}"
    sm.create_secret(Name=name, SecretString=json.dumps(
        {"engine": "postgres", "host": "127.0.0.1", "port": 5432, "username": pg_user,
         "password": "first-Password-1", "dbname": "test"}))
    new = rotate_and_wait(sm, name, builtin("postgresql-single-user"))
    stored = password_hash(pg_user)
    assert stored is not None and scram_matches(stored, new["password"])
    assert not scram_matches(stored, "first-Password-1")


def test_postgresql_multi_user(srv, pg_user):
    sm = srv.client()
    master = sm.create_secret(Name=f"pg-master-{pg_user}", SecretString=json.dumps(
        {"engine": "postgres", "host": "127.0.0.1", "username": pg_user + "_master",
         "password": "master-Password-1", "dbname": "test"}))["ARN"]
    name = f"pg-multi-{pg_user}"
    sm.create_secret(Name=name, SecretString=json.dumps(
        {"engine": "postgres", "host": "127.0.0.1", "username": pg_user, "password": "first-Password-1",
         "dbname": "test", "masterarn": master}))
    first = rotate_and_wait(sm, name, builtin("postgresql-multi-user"))
    assert first["username"] == pg_user + "_clone"
    assert scram_matches(password_hash(pg_user + "_clone") or "", first["password"])
    with psycopg.connect(host="127.0.0.1", user=first["username"], password=first["password"], dbname="test") as c:
        c.execute(f"SELECT count(*) FROM t_{pg_user}")  # inherits the original's privileges
    second = rotate_and_wait(sm, name, builtin("postgresql-multi-user"))
    assert second["username"] == pg_user
    assert scram_matches(password_hash(pg_user) or "", second["password"])


def test_builtin_functions_cannot_be_changed(srv):
    lam = srv.client("lambda")
    with pytest.raises(ClientError) as exc:
        lam.delete_function(FunctionName="strongroom-mysql-single-user")
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"
