"""Built-in PostgreSQL rotators (``strongroom-postgresql-single-user`` / ``-multi-user``).

Passwords go to the server as SCRAM verifiers computed by libpq (``PQencryptPasswordConn``), never
as plaintext, so statement logs and ``pg_stat_statements`` cannot record them.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

from strongroom.rotation.builtin._common import (
    Secret,
    alternate,
    ca_bundle,
    get_secret,
    login_for_change,
    rotate,
    tls_setting,
)

log = logging.getLogger("strongroom.rotation.builtin")
ENGINES = ("postgres", "aurora-postgresql")
EXCLUDE = ":/@\"'\\"
NAME_LIMIT = 63  # NAMEDATALEN - 1


def connect(secret: Secret) -> psycopg.Connection[Any] | None:
    """A connection with these credentials, or None when they do not log in."""
    tls = tls_setting(secret)
    options: dict[str, Any] = {"sslmode": "prefer"}
    if tls is True:
        options = {"sslmode": "verify-full", "sslrootcert": ca_bundle()}
    elif tls is False:
        options = {"sslmode": "disable"}
    try:
        return psycopg.connect(
            host=secret["host"],
            port=int(secret.get("port") or 5432),
            user=secret["username"],
            password=secret["password"],
            dbname=secret.get("dbname") or "postgres",
            connect_timeout=5,
            autocommit=True,
            **options,
        )
    except psycopg.OperationalError as exc:
        log.info("Could not log in to %s as %s: %s", secret["host"], secret["username"], str(exc).strip())
        return None


def set_password(conn: psycopg.Connection[Any], user: str, password: str) -> None:
    """``ALTER ROLE user PASSWORD <verifier>``: a role may always change its own password."""
    verifier = conn.pgconn.encrypt_password(password.encode(), user.encode()).decode()
    conn.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(sql.Identifier(user), sql.Literal(verifier)))


def ensure_user(conn: psycopg.Connection[Any], model: str, user: str, password: str) -> None:
    """As a superuser (or CREATEROLE holder): ``user`` with this password, created if missing as
    a login role that is a member of ``model`` and so holds its privileges."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
    if not exists:
        verifier = conn.pgconn.encrypt_password(password.encode(), user.encode()).decode()
        conn.execute(
            sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(user), sql.Literal(verifier))
        )
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(model), sql.Identifier(user)))
        log.info("setSecret: created %s as a member of %s.", user, model)
    else:
        set_password(conn, user, password)


def _test(sm: Any, arn: str, token: str) -> None:
    conn = connect(get_secret(sm, arn, "AWSPENDING", ENGINES, token))
    if conn is None:
        raise ValueError(f"Unable to log into database with pending secret of secret ARN {arn}")
    with conn:
        conn.execute("SELECT now()")
    log.info("testSecret: logged in with the pending secret of %s.", arn)


def _set_single(sm: Any, arn: str, token: str) -> None:
    pending, conn = login_for_change(sm, arn, token, ENGINES, connect)
    with conn:
        set_password(conn, pending["username"], pending["password"])
    log.info("setSecret: changed the password of %s.", pending["username"])


def _set_multi(sm: Any, arn: str, token: str) -> None:
    current = get_secret(sm, arn, "AWSCURRENT", ENGINES)
    pending = get_secret(sm, arn, "AWSPENDING", ENGINES, token)
    if pending["username"] != alternate(current["username"], NAME_LIMIT) or pending["host"] != current["host"]:
        raise ValueError("The pending user must be the alternate of the current user on the same host")
    check = connect(current)  # the confused-deputy guard AWS's template has
    if check is None:
        raise ValueError(f"Unable to log into database using current credentials for secret {arn}")
    check.close()
    if "masterarn" not in current:
        raise KeyError("masterarn key is missing from secret JSON")
    master = get_secret(sm, current["masterarn"], "AWSCURRENT", ENGINES)
    if master["host"] != current["host"]:
        raise ValueError("The master secret must be for the same host as the rotated secret")
    master["dbname"] = current.get("dbname") or "postgres"
    conn = connect(master)
    if conn is None:
        raise ValueError(f"Unable to log into database using credentials in master secret {current['masterarn']}")
    with conn:
        ensure_user(conn, current["username"], pending["username"], pending["password"])
    log.info("setSecret: set the password of %s.", pending["username"])


def single_user(event: dict[str, Any], context: Any) -> None:
    rotate(event, ENGINES, EXCLUDE, _set_single, _test)


def multi_user(event: dict[str, Any], context: Any) -> None:
    rotate(event, ENGINES, EXCLUDE, _set_multi, _test, next_username=lambda u: alternate(u, NAME_LIMIT))
