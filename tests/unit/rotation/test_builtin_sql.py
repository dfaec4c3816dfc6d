"""The built-in rotators' SQL, run directly against the machine's PostgreSQL and MariaDB.

Every test makes its own uniquely named users and drops them. PostgreSQL here trusts loopback
connections, so "the password changed" is proved from the stored SCRAM verifier.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pymysql
import pytest
from psycopg import sql

from strongroom.rotation.builtin import _common, mysql, postgresql
from strongroom.testing.databases import maria, maria_logs_in, scram_matches, stored_verifier

PG = "postgresql://postgres@127.0.0.1:5432/test"
pytestmark = [pytest.mark.postgres, pytest.mark.mariadb]


def unique(prefix: str = "u") -> str:
    return prefix + uuid.uuid4().hex[:8]


# ------------------------------------------------------------------------------------- common


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("TRUE", True),
        ("false", False),
        ("yes", None),
        (None, None),
        (1, None),
    ],
)
def test_tls_setting(value: Any, expected: bool | None) -> None:
    secret = {} if value is None else {"ssl": value}
    assert _common.tls_setting(secret) is expected


def test_alternate_users_and_the_length_limit() -> None:
    assert _common.alternate("app", 16) == "app_clone"
    assert _common.alternate("app_clone", 16) == "app"
    assert _common.alternate("a" * 10, 16) == "a" * 10 + "_clone"
    with pytest.raises(ValueError, match="exceed 16 characters"):
        _common.alternate("a" * 11, 16)


def test_redaction_replaces_every_remembered_password() -> None:
    _common._passwords.clear()
    _common._remember({"password": "hunter2-long"})
    _common._remember({"password": ""})  # an empty password is not "redacted" everywhere
    try:
        assert _common.redacted("near 'hunter2-long' at line 1") == "near '********' at line 1"
        assert _common.redacted("nothing here") == "nothing here"
    finally:
        _common._passwords.clear()


def test_rotate_refuses_an_unknown_step_before_calling_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRETS_MANAGER_ENDPOINT", raising=False)  # would be a KeyError if reached
    with pytest.raises(ValueError, match="Invalid step parameter"):
        postgresql.single_user({"Step": "create_secret", "SecretId": "arn", "ClientRequestToken": "t"}, None)


# --------------------------------------------------------------------------------- PostgreSQL


def pg_admin() -> psycopg.Connection[Any]:
    return psycopg.connect(PG, autocommit=True)


@pytest.fixture
def pg_roles() -> Iterator[list[str]]:
    """Names to drop afterwards (tables owned by them are dropped with DROP OWNED)."""
    roles: list[str] = []
    yield roles
    with pg_admin() as admin:
        for role in reversed(roles):
            if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                admin.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def pg_secret(user: str, password: str, **extra: Any) -> dict[str, Any]:
    return {
        "engine": "postgres",
        "host": "127.0.0.1",
        "port": "5432",
        "username": user,
        "password": password,
        "dbname": "test",
        **extra,
    }


@pytest.mark.parametrize("name", ["plain", 'We"ird Name; DROP'])
def test_pg_a_role_changes_its_own_password_as_a_scram_verifier(pg_roles: list[str], name: str) -> None:
    role = f"{name}-{uuid.uuid4().hex[:6]}"
    pg_roles.append(role)
    with pg_admin() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'first-Password-1'").format(sql.Identifier(role)))
    conn = postgresql.connect(pg_secret(role, "first-Password-1"))
    assert conn is not None
    with conn:
        postgresql.set_password(conn, role, "second-Password-2")
    stored = stored_verifier(role)
    assert scram_matches(stored, "second-Password-2") and not scram_matches(stored, "first-Password-1")


def test_pg_the_plaintext_password_is_never_sent_to_the_server(pg_roles: list[str]) -> None:
    role = unique("pg")
    pg_roles.append(role)
    with pg_admin() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn = postgresql.connect(pg_secret(role, "x"))
        assert conn is not None
        sent: list[str] = []
        with conn:
            original = conn.execute

            def spy(query: Any, *args: Any, **kwargs: Any) -> Any:
                sent.append(query.as_string(conn) if hasattr(query, "as_string") else str(query))
                return original(query, *args, **kwargs)

            conn.execute = spy  # type: ignore[method-assign]
            postgresql.set_password(conn, role, "very-Secret-Password-9")
    assert sent and all("very-Secret-Password-9" not in statement for statement in sent)
    assert scram_matches(stored_verifier(role), "very-Secret-Password-9")


def test_pg_ensure_user_creates_a_member_with_the_same_privileges_then_only_changes_its_password(
    pg_roles: list[str],
) -> None:
    model = unique("pg")
    clone = model + "_clone"
    pg_roles.extend([model, clone])
    with pg_admin() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'first-Password-1'").format(sql.Identifier(model)))
        admin.execute(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(f"t_{model}")))
        admin.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(f"t_{model}"), sql.Identifier(model)))
        postgresql.ensure_user(admin, model, clone, "clone-Password-1")
        member = admin.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (clone, model)).fetchone()
        assert member == (True,)
        postgresql.ensure_user(admin, model, clone, "clone-Password-2")  # exists: password only
    assert scram_matches(stored_verifier(clone), "clone-Password-2")
    with psycopg.connect(host="127.0.0.1", user=clone, password="clone-Password-2", dbname="test") as conn:
        conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(f"t_{model}")))


def test_pg_connect_honours_the_ssl_key() -> None:
    # This server does not offer TLS: required TLS fails, disabled and "when offered" log in.
    assert postgresql.connect(pg_secret("postgres", "", ssl=True)) is None
    for value in (False, "false", None):
        conn = postgresql.connect(pg_secret("postgres", "", **({} if value is None else {"ssl": value})))
        assert conn is not None
        conn.close()


def test_pg_connect_returns_none_when_nothing_listens() -> None:
    assert postgresql.connect({"host": "127.0.0.1", "port": 1, "username": "x", "password": "y"}) is None


# ------------------------------------------------------------------------------------ MariaDB


@pytest.fixture
def maria_names() -> Iterator[list[str]]:
    """Users, roles and tables (``table:``-prefixed) to drop afterwards."""
    names: list[str] = []
    yield names
    root = maria()
    with root.cursor() as cur:
        for name in names:
            if name.startswith("table:"):
                cur.execute(f"DROP TABLE IF EXISTS `{name[6:]}`")
            elif name.startswith("role:"):
                cur.execute("DROP ROLE IF EXISTS %s", (name[5:],))
            else:
                cur.execute("DROP USER IF EXISTS %s@'%%'", (name,))
    root.close()


def maria_secret(user: str, password: str, **extra: Any) -> dict[str, Any]:
    return {
        "engine": "mariadb",
        "host": "127.0.0.1",
        "port": 3306,
        "username": user,
        "password": password,
        "dbname": "test",
        **extra,
    }


def show_grants(user: str) -> list[str]:
    root = maria()
    with root.cursor() as cur:
        cur.execute("SHOW GRANTS FOR %s@'%%'", (user,))
        rows = [row[0] for row in cur.fetchall()]
    root.close()
    return rows


def test_maria_a_user_changes_its_own_password(maria_names: list[str]) -> None:
    user = unique("m")
    maria_names.append(user)
    root = maria()
    with root.cursor() as cur:
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, "first-Password-1"))
    root.close()
    conn = mysql.connect(maria_secret(user, "first-Password-1", dbname=None))  # no database privilege
    assert conn is not None
    mysql.set_own_password(conn, "second-Password-2")
    conn.close()
    assert maria_logs_in(user, "second-Password-2")
    assert not maria_logs_in(user, "first-Password-1")


def test_maria_ensure_user_copies_every_grant(maria_names: list[str]) -> None:
    model = unique("m")
    clone, role, table = model + "_clone", "role_" + model, "t_" + model
    maria_names.extend([model, clone, "role:" + role, "table:" + table])
    root = maria()
    with root.cursor() as cur:
        cur.execute(f"CREATE TABLE `{table}` (x INT)")
        cur.execute(f"CREATE TABLE `{table}_2` (x INT)")
        maria_names.append(f"table:{table}_2")
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (model, "first-Password-1"))
        cur.execute("CREATE ROLE %s", (role,))
        cur.execute(f"GRANT SELECT ON test.`{table}` TO %s@'%%' WITH GRANT OPTION", (model,))
        cur.execute(f"GRANT INSERT ON test.`{table}_2` TO %s", (role,))
        quoted_role, quoted_model = root.escape(role).replace("'", "`"), root.escape(model)
        cur.execute(f"GRANT {quoted_role} TO {quoted_model}@'%'")
        cur.execute(f"SET DEFAULT ROLE {quoted_role} FOR {quoted_model}@'%'")
    mysql.ensure_user(root, model, clone, "clone-Password-1")
    mysql.ensure_user(root, model, clone, "clone-Password-2")  # exists: password only
    root.close()

    def normalised(user: str) -> list[str]:
        return sorted(
            line.replace(f"`{user}`@`%`", "GRANTEE").split(" IDENTIFIED BY PASSWORD")[0] for line in show_grants(user)
        )

    assert normalised(clone) == normalised(model)
    assert not maria_logs_in(clone, "clone-Password-1")
    clone_conn = maria(clone, "clone-Password-2")
    with clone_conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM `{table}`")
        cur.execute(f"INSERT INTO `{table}_2` VALUES (1)")  # through the default role
        with pytest.raises(pymysql.err.OperationalError):
            cur.execute("CREATE TABLE nope (x INT)")
    clone_conn.close()


def test_grants_for_rewrites_only_the_grantee() -> None:
    def escape(s: str) -> str:
        return "'" + s.replace("'", "\\'") + "'"

    lines = [
        "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*ABC' REQUIRE SSL",
        "GRANT SELECT ON `app`.`TO app` TO `app`@`%` WITH GRANT OPTION",  # a table named like the user
        "GRANT SELECT, INSERT ON `db`.* TO 'app'@'%'",  # MySQL 5.x quoting
        "GRANT `r1`@`%` TO `app`@`%`",  # MySQL 8 role
        "SET DEFAULT ROLE `r1` FOR `app`@`%`",  # MariaDB
    ]
    assert mysql.grants_for(lines, "app", "app_clone", escape) == [
        "GRANT USAGE ON *.* TO 'app_clone'@'%' REQUIRE SSL",
        "GRANT SELECT ON `app`.`TO app` TO 'app_clone'@'%' WITH GRANT OPTION",
        "GRANT SELECT, INSERT ON `db`.* TO 'app_clone'@'%'",
        "GRANT `r1`@`%` TO 'app_clone'@'%'",
        "SET DEFAULT ROLE `r1` FOR 'app_clone'@'%'",
    ]
    with pytest.raises(ValueError, match="cannot find the grantee"):
        mysql.grants_for(["GRANT SELECT ON *.* TO `other`@`%`"], "app", "app_clone", escape)


def test_maria_connect_honours_the_ssl_key() -> None:
    # This server has TLS disabled: required TLS fails, disabled and "when offered" log in.
    assert mysql.connect(maria_secret("root", "", ssl="true")) is None
    for value in (False, "false", None):
        conn = mysql.connect(maria_secret("root", "", **({} if value is None else {"ssl": value})))
        assert conn is not None
        conn.close()


def test_maria_connect_returns_none_for_wrong_credentials_and_closed_ports() -> None:
    assert mysql.connect(maria_secret("nobody_" + uuid.uuid4().hex[:6], "x")) is None
    assert mysql.connect({"host": "127.0.0.1", "port": "1", "username": "x", "password": "y"}) is None
