"""Built-in PostgreSQL rotators (``strongroom-postgresql-single-user`` / ``-multi-user``)."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

from strongroom.rotation.builtin._common import Secret, alternate, get_secret, login_for_change, rotate

log = logging.getLogger("strongroom.rotation.builtin")
ENGINES = ("postgres", "aurora-postgresql")
EXCLUDE = ':/@"\'\\'


def connect(secret: Secret) -> psycopg.Connection[Any] | None:
    """A connection with these credentials, or None when they do not log in."""
    try:
        return psycopg.connect(host=secret["host"], port=int(secret.get("port", 5432)), user=secret["username"],
                               password=secret["password"], dbname=secret.get("dbname", "postgres"),
                               connect_timeout=5, autocommit=True)
    except psycopg.OperationalError:
        return None


def _test(sm: Any, arn: str, token: str) -> None:
    conn = connect(get_secret(sm, arn, "AWSPENDING", ENGINES, token))
    if conn is None:
        raise ValueError(f"Unable to log into database with pending secret of secret ARN {arn}")
    with conn:
        conn.execute("SELECT now()")


def _set_single(sm: Any, arn: str, token: str) -> None:
    pending, conn = login_for_change(sm, arn, token, ENGINES, connect)
    with conn:
        conn.execute(sql.SQL("ALTER USER {} WITH PASSWORD {}").format(
            sql.Identifier(pending["username"]), sql.Literal(pending["password"])))
    log.info("setSecret: changed the password of %s.", pending["username"])


def _set_multi(sm: Any, arn: str, token: str) -> None:
    current = get_secret(sm, arn, "AWSCURRENT", ENGINES)
    pending = get_secret(sm, arn, "AWSPENDING", ENGINES, token)
    if pending["username"] != alternate(current["username"], 63) or pending["host"] != current["host"]:
        raise ValueError("The pending user must be the alternate of the current user on the same host")
    check = connect(current)  # the confused-deputy guard AWS's template has
    if check is None:
        raise ValueError(f"Unable to log into database using current credentials for secret {arn}")
    check.close()
    master = get_secret(sm, current["masterarn"], "AWSCURRENT", ENGINES)
    if master["host"] != current["host"]:
        raise ValueError("The master secret must be for the same host as the rotated secret")
    master["dbname"] = current.get("dbname", "postgres")
    conn = connect(master)
    if conn is None:
        raise ValueError(f"Unable to log into database using credentials in master secret {current['masterarn']}")
    with conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (pending["username"],)).fetchone()
        user, password = sql.Identifier(pending["username"]), sql.Literal(pending["password"])
        if exists:
            conn.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(user, password))
        else:
            conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(user, password))
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(current["username"]), user))
    log.info("setSecret: set the password of %s.", pending["username"])


def single_user(event: dict[str, Any], context: Any) -> None:
    rotate(event, ENGINES, EXCLUDE, _set_single, _test)


def multi_user(event: dict[str, Any], context: Any) -> None:
    rotate(event, ENGINES, EXCLUDE, _set_multi, _test, next_username=lambda u: alternate(u, 63))
