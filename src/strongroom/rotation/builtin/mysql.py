"""Built-in MySQL / MariaDB rotators (``strongroom-mysql-single-user`` / ``-multi-user``).

Every statement addresses ``'user'@'%'``, as AWS's templates do.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import pymysql

from strongroom.rotation.builtin._common import Secret, alternate, get_secret, login_for_change, rotate

log = logging.getLogger("strongroom.rotation.builtin")
ENGINES = ("mysql", "aurora-mysql", "mariadb")
EXCLUDE = '/@"\'\\'


def _limit() -> int:
    return int(os.environ.get("USERNAME_CHARACTER_LIMIT", "16"))


def connect(secret: Secret) -> pymysql.connections.Connection | None:  # type: ignore[name-defined]
    try:
        return pymysql.connect(host=secret["host"], port=int(secret.get("port", 3306)), user=secret["username"],
                               password=secret["password"], database=secret.get("dbname"), connect_timeout=5,
                               autocommit=True)
    except pymysql.err.OperationalError:
        return None


def _test(sm: Any, arn: str, token: str) -> None:
    conn = connect(get_secret(sm, arn, "AWSPENDING", ENGINES, token))
    if conn is None:
        raise ValueError(f"Unable to log into database with pending secret of secret ARN {arn}")
    with conn.cursor() as cur:
        cur.execute("SELECT NOW()")
    conn.close()


def _set_single(sm: Any, arn: str, token: str) -> None:
    pending, conn = login_for_change(sm, arn, token, ENGINES, connect)
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        version = cur.fetchone()[0]
        # A user may always set its own password with SET PASSWORD; MySQL 8 dropped PASSWORD().
        if "MariaDB" in version or version.split(".")[0] in ("5", "10", "11"):
            cur.execute("SET PASSWORD = PASSWORD(%s)", (pending["password"],))
        else:
            cur.execute("SET PASSWORD = %s", (pending["password"],))
    conn.close()
    log.info("setSecret: changed the password of %s.", pending["username"])


_TO_USER = re.compile(r"TO\s+[`']?([^`'@]+)[`']?@[`']?%[`']?", re.IGNORECASE)
_IDENTIFIED = re.compile(r"\s+IDENTIFIED BY PASSWORD\s+'[^']*'", re.IGNORECASE)


def _set_multi(sm: Any, arn: str, token: str) -> None:
    current = get_secret(sm, arn, "AWSCURRENT", ENGINES)
    pending = get_secret(sm, arn, "AWSPENDING", ENGINES, token)
    if pending["username"] != alternate(current["username"], _limit()) or pending["host"] != current["host"]:
        raise ValueError("The pending user must be the alternate of the current user on the same host")
    check = connect(current)
    if check is None:
        raise ValueError(f"Unable to log into database using current credentials for secret {arn}")
    check.close()
    master = get_secret(sm, current["masterarn"], "AWSCURRENT", ENGINES)
    if master["host"] != current["host"]:
        raise ValueError("The master secret must be for the same host as the rotated secret")
    master["dbname"] = current.get("dbname")
    conn = connect(master)
    if conn is None:
        raise ValueError(f"Unable to log into database using credentials in master secret {current['masterarn']}")
    user, password = pending["username"], pending["password"]
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM mysql.user WHERE User = %s AND Host = '%%'", (user,))
        if cur.fetchone() is None:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
            cur.execute("SHOW GRANTS FOR %s@'%%'", (current["username"],))
            for (grant,) in cur.fetchall():
                # The same privileges, for the other user: rewrite the grantee of each statement.
                statement = _IDENTIFIED.sub("", grant)
                statement = _TO_USER.sub(lambda m: "TO " + conn.escape(user) + "@'%'", statement, count=1)
                cur.execute(statement)
        cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (user, password))
    conn.close()
    log.info("setSecret: set the password of %s.", user)


def single_user(event: dict[str, Any], context: Any) -> None:
    rotate(event, ENGINES, EXCLUDE, _set_single, _test)


def multi_user(event: dict[str, Any], context: Any) -> None:
    rotate(event, ENGINES, EXCLUDE, _set_multi, _test, next_username=lambda u: alternate(u, _limit()))
