"""The built-in rotators change real PostgreSQL and MariaDB users, through RotateSecret."""

from __future__ import annotations

import base64
import json
import time
import uuid

import psycopg
import pymysql
import pytest
from botocore.exceptions import ClientError

from strongroom.testing import wait_for
from strongroom.testing.databases import maria, maria_logs_in, scram_matches, stored_verifier

PG = "postgresql://postgres@127.0.0.1:5432/test"
FAST = {
    "STRONGROOM_ROTATION_RETRY_BASE_SECONDS": "0.3",
    "STRONGROOM_ROTATION_MAX_ATTEMPTS": "2",
    "STRONGROOM_ROTATION_POLL_SECONDS": "0.2",
}


def builtin(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:function:strongroom-{name}"


@pytest.fixture(scope="module")
def srv():  # type: ignore[no-untyped-def]
    from strongroom.testing import ServerProcess

    with ServerProcess(env=FAST) as server:
        yield server


def rotate_and_wait(sm, name: str, function: str) -> dict:  # type: ignore[no-untyped-def]
    """Rotate, wait (60 s at most) until AWSPENDING is gone, check the labels moved; the new value."""
    old = sm.get_secret_value(SecretId=name)
    token = sm.rotate_secret(SecretId=name, RotationLambdaARN=function)["VersionId"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        described = sm.describe_secret(SecretId=name)
        stages = described["VersionIdsToStages"]
        if stages.get(token) == ["AWSCURRENT"]:
            assert stages[old["VersionId"]] == ["AWSPREVIOUS"]
            assert "LastRotatedDate" in described
            previous = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
            assert previous["VersionId"] == old["VersionId"]
            assert previous["SecretString"] == old["SecretString"]
            current = sm.get_secret_value(SecretId=name)
            assert current["VersionId"] == token
            return json.loads(current["SecretString"])  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"rotation did not finish: {sm.describe_secret(SecretId=name)}")


# ------------------------------------------------------------------------------------ MariaDB


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
    sm.create_secret(
        Name=name,
        SecretString=json.dumps(
            {
                "engine": "mariadb",
                "host": "127.0.0.1",
                "port": 3306,
                "username": user,
                "password": "first-Password-1",
                "dbname": "test",
                "ssl": False,
                "note": "kept",
            }
        ),
    )
    for _ in range(2):
        old = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
        new = rotate_and_wait(sm, name, builtin("mysql-single-user"))
        assert new["username"] == user and new["password"] != old["password"]
        assert {k: v for k, v in new.items() if k != "password"} == {k: v for k, v in old.items() if k != "password"}
        assert len(new["password"]) == 32
        assert maria_logs_in(user, new["password"])
        assert not maria_logs_in(user, old["password"])


def test_mysql_multi_user_alternates_with_the_same_privileges(srv, maria_user):
    sm, (user, table) = srv.client(), maria_user
    master = sm.create_secret(
        Name=f"maria-master-{user}",
        SecretString=json.dumps({"engine": "mysql", "host": "127.0.0.1", "username": "root", "password": ""}),
    )["ARN"]
    name = f"maria-multi-{user}"
    sm.create_secret(
        Name=name,
        SecretString=json.dumps(
            {
                "engine": "mysql",
                "host": "127.0.0.1",
                "port": "3306",
                "username": user,
                "password": "first-Password-1",
                "dbname": "test",
                "masterarn": master,
            }
        ),
    )
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
    first = sm.create_secret(
        Name=name,
        SecretString=json.dumps(
            {"engine": "oracle", "host": "127.0.0.1", "username": user, "password": "first-Password-1"}
        ),
    )["VersionId"]
    token = sm.rotate_secret(SecretId=name, RotationLambdaARN=builtin("mysql-single-user"))["VersionId"]
    # Both attempts (the server's setting here) have failed when the server says so.
    wait_for(lambda: f"rotation {token} attempt 2 failed: createSecret failed" in srv.log(), what="attempt 2")
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages == {first: ["AWSCURRENT"], token: ["AWSPENDING"]}
    assert maria_logs_in(user, "first-Password-1")


@pytest.mark.parametrize(
    ("function", "engine"),
    [
        ("mysql-single-user", "postgres"),
        ("mysql-multi-user", "oracle"),
        ("postgresql-single-user", "mysql"),
        ("postgresql-multi-user", "mariadb"),
    ],
)
def test_each_builtin_refuses_a_wrong_engine_with_a_clear_error(srv, function, engine):
    sm, lam = srv.client(), srv.client("lambda")
    name = f"wrong-{function}-{uuid.uuid4().hex[:8]}"
    arn = sm.create_secret(
        Name=name,
        SecretString=json.dumps(
            {"engine": engine, "host": "127.0.0.1", "username": "nobody", "password": "first-Password-1"}
        ),
    )["ARN"]
    token = str(uuid.uuid4())
    # A pending version, as the engine would leave it: the handler must refuse before any database work.
    sm.put_secret_value(
        SecretId=name,
        ClientRequestToken=token,
        SecretString=json.dumps(
            {"engine": engine, "host": "127.0.0.1", "username": "nobody", "password": "second-Password-2"}
        ),
        VersionStages=["AWSPENDING"],
    )
    for step in ("createSecret", "setSecret", "testSecret"):
        out = lam.invoke(
            FunctionName=builtin(function),
            LogType="Tail",
            Payload=json.dumps(
                {"Step": step, "SecretId": arn, "ClientRequestToken": token, "RotationToken": str(uuid.uuid4())}
            ),
        )
        assert out.get("FunctionError") == "Unhandled", step
        error = json.loads(out["Payload"].read())
        assert error["errorType"] == "KeyError"
        assert "Database engine must be set to" in error["errorMessage"]
        logs = base64.b64decode(out.get("LogResult", "")).decode()
        assert "first-Password-1" not in logs and "second-Password-2" not in logs


def test_steps_driven_one_by_one_never_log_a_password(srv, maria_user):
    """The four steps invoked by hand, as AWS's docs describe testing a function: each step's log
    names users and ARNs, never a password; a repeated step is harmless."""
    sm, lam, (user, _) = srv.client(), srv.client("lambda"), maria_user
    name = f"maria-steps-{user}"
    secret = {
        "engine": "mariadb",
        "host": "127.0.0.1",
        "port": "3306",
        "username": user,
        "password": "first-Password-1",
        "dbname": "test",
    }
    arn = sm.create_secret(Name=name, SecretString=json.dumps(secret))["ARN"]
    token = str(uuid.uuid4())
    sm.put_secret_value(
        SecretId=name,
        ClientRequestToken=token,
        VersionStages=["AWSPENDING"],
        SecretString=json.dumps({**secret, "password": "second-Password-2"}),
    )
    for step in ("createSecret", "setSecret", "setSecret", "testSecret", "finishSecret", "finishSecret"):
        out = lam.invoke(
            FunctionName=builtin("mysql-single-user"),
            LogType="Tail",
            Payload=json.dumps(
                {"Step": step, "SecretId": arn, "ClientRequestToken": token, "RotationToken": str(uuid.uuid4())}
            ),
        )
        assert "FunctionError" not in out, (step, out["Payload"].read())
        logs = base64.b64decode(out.get("LogResult", "")).decode()
        assert "first-Password-1" not in logs and "second-Password-2" not in logs
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert "AWSCURRENT" in stages[token]
    assert maria_logs_in(user, "second-Password-2") and not maria_logs_in(user, "first-Password-1")


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


def test_postgresql_single_user(srv, pg_user):
    sm = srv.client()
    name = f"pg-{pg_user}"
    sm.create_secret(
        Name=name,
        SecretString=json.dumps(
            {
                "engine": "postgres",
                "host": "127.0.0.1",
                "port": 5432,
                "username": pg_user,
                "password": "first-Password-1",
                "dbname": "test",
                "ssl": "false",
            }
        ),
    )
    old = "first-Password-1"
    for _ in range(2):
        new = rotate_and_wait(sm, name, builtin("postgresql-single-user"))
        assert new["username"] == pg_user and new["password"] != old
        stored = stored_verifier(pg_user)
        assert stored is not None and scram_matches(stored, new["password"])
        assert not scram_matches(stored, old)
        old = new["password"]


def test_postgresql_multi_user(srv, pg_user):
    sm = srv.client()
    master = sm.create_secret(
        Name=f"pg-master-{pg_user}",
        SecretString=json.dumps(
            {
                "engine": "postgres",
                "host": "127.0.0.1",
                "username": pg_user + "_master",
                "password": "master-Password-1",
                "dbname": "test",
            }
        ),
    )["ARN"]
    name = f"pg-multi-{pg_user}"
    sm.create_secret(
        Name=name,
        SecretString=json.dumps(
            {
                "engine": "postgres",
                "host": "127.0.0.1",
                "username": pg_user,
                "password": "first-Password-1",
                "dbname": "test",
                "masterarn": master,
            }
        ),
    )
    first = rotate_and_wait(sm, name, builtin("postgresql-multi-user"))
    assert first["username"] == pg_user + "_clone"
    assert scram_matches(stored_verifier(pg_user + "_clone") or "", first["password"])
    with psycopg.connect(host="127.0.0.1", user=first["username"], password=first["password"], dbname="test") as c:
        c.execute(f"SELECT count(*) FROM t_{pg_user}")  # inherits the original's privileges
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(f"INSERT INTO t_{pg_user} VALUES (1)")  # and no more
    assert scram_matches(stored_verifier(pg_user) or "", "first-Password-1")  # untouched until its turn
    second = rotate_and_wait(sm, name, builtin("postgresql-multi-user"))
    assert second["username"] == pg_user
    assert scram_matches(stored_verifier(pg_user) or "", second["password"])
    assert scram_matches(stored_verifier(pg_user + "_clone") or "", first["password"])  # now the standby
    third = rotate_and_wait(sm, name, builtin("postgresql-multi-user"))
    assert third["username"] == pg_user + "_clone"
    assert scram_matches(stored_verifier(pg_user + "_clone") or "", third["password"])


def test_builtin_functions_cannot_be_changed(srv):
    lam = srv.client("lambda")
    with pytest.raises(ClientError) as exc:
        lam.delete_function(FunctionName="strongroom-mysql-single-user")
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"
