"""Built-in MySQL / MariaDB rotators (``strongroom-mysql-single-user`` / ``-multi-user``).

Every statement addresses ``'user'@'%'``, as AWS's templates do. User names are always sent as
statement parameters (PyMySQL escapes them as string literals), never spliced into SQL.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import pymysql

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
ENGINES = ("mysql", "aurora-mysql", "mariadb")
EXCLUDE = "/@\"'\\"


def _limit() -> int:
    return int(os.environ.get("USERNAME_CHARACTER_LIMIT", "16"))


def connect(secret: Secret) -> pymysql.connections.Connection[Any] | None:
    """A connection with these credentials, or None when they do not log in."""
    tls = tls_setting(secret)
    options: dict[str, Any] = {}  # PyMySQL's default: TLS when the server offers it
    if tls is True:
        options = {"ssl_ca": ca_bundle(), "ssl_verify_cert": True, "ssl_verify_identity": True}
    elif tls is False:
        options = {"ssl_disabled": True}
    try:
        return pymysql.connect(
            host=secret["host"],
            port=int(secret.get("port") or 3306),
            user=secret["username"],
            password=secret["password"],
            database=secret.get("dbname") or None,
            connect_timeout=5,
            autocommit=True,
            **options,
        )
    except (pymysql.err.OperationalError, OSError) as exc:
        log.info("Could not log in to %s as %s: %s", secret["host"], secret["username"], exc)
        return None


def set_own_password(conn: Any, password: str) -> None:
    """The connected user changes its own password (no privilege needed)."""
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        version = cur.fetchone()[0]
        if "MariaDB" in version or version.split(".")[0] in ("5", "10", "11"):
            cur.execute("SET PASSWORD = PASSWORD(%s)", (password,))
        else:  # MySQL 8 and later dropped PASSWORD() (AWS's template breaks on 9.x here)
            cur.execute("SET PASSWORD = %s", (password,))


_IDENTIFIED = re.compile(  # the model's password hash or authentication plugin: not the clone's
    r"\s+IDENTIFIED\s+(?:BY\s+PASSWORD\s+'[^']*'|VIA\s+.*?|WITH\s+.*?)(?=\s+REQUIRE\b|\s+WITH\b|$)", re.IGNORECASE
)


def grants_for(grants: list[str], model: str, user: str, escape: Any) -> list[str]:
    """``SHOW GRANTS FOR model@'%'`` rewritten for ``user@'%'``: every mention of the grantee
    (``TO model@%`` and MariaDB's ``SET DEFAULT ROLE ... FOR model@%``) becomes ``user``, and the
    model's password hash is dropped. ``escape`` quotes a string literal (``conn.escape``)."""
    names = "|".join(re.escape(q + model + q) for q in ("`", "'", ""))
    grantee = re.compile(rf"(\s(?:TO|FOR)\s+)(?:{names})@(?:`%`|'%'|%)(?=\s|$|,)", re.IGNORECASE)
    new = escape(user) + "@'%'"
    out = []
    for grant in grants:
        statement = _IDENTIFIED.sub("", grant)
        statement, count = grantee.subn(lambda m: m.group(1) + new, statement)
        if count == 0:
            raise ValueError(f"Unexpected SHOW GRANTS line for {model}: cannot find the grantee")
        out.append(statement)
    return out


def ensure_user(conn: Any, model: str, user: str, password: str) -> None:
    """As an administrator: ``user@'%'`` with this password, created if missing with every
    privilege ``model@'%'`` holds."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM mysql.user WHERE User = %s AND Host = '%%'", (user,))
        if cur.fetchone() is None:
            cur.execute("SHOW GRANTS FOR %s@'%%'", (model,))
            grants = grants_for([row[0] for row in cur.fetchall()], model, user, conn.escape)
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
            for statement in grants:
                cur.execute(statement)
            log.info("setSecret: created %s with the grants of %s.", user, model)
        cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (user, password))


def _test(sm: Any, arn: str, token: str) -> None:
    conn = connect(get_secret(sm, arn, "AWSPENDING", ENGINES, token))
    if conn is None:
        raise ValueError(f"Unable to log into database with pending secret of secret ARN {arn}")
    with conn.cursor() as cur:
        cur.execute("SELECT NOW()")
    conn.close()
    log.info("testSecret: logged in with the pending secret of %s.", arn)


def _set_single(sm: Any, arn: str, token: str) -> None:
    pending, conn = login_for_change(sm, arn, token, ENGINES, connect)
    try:
        set_own_password(conn, pending["password"])
    finally:
        conn.close()
    log.info("setSecret: changed the password of %s.", pending["username"])


def _set_multi(sm: Any, arn: str, token: str) -> None:
    current = get_secret(sm, arn, "AWSCURRENT", ENGINES)
    pending = get_secret(sm, arn, "AWSPENDING", ENGINES, token)
    if pending["username"] != alternate(current["username"], _limit()) or pending["host"] != current["host"]:
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
    master["dbname"] = current.get("dbname")
    conn = connect(master)
    if conn is None:
        raise ValueError(f"Unable to log into database using credentials in master secret {current['masterarn']}")
    try:
        ensure_user(conn, current["username"], pending["username"], pending["password"])
    finally:
        conn.close()
    log.info("setSecret: set the password of %s.", pending["username"])


def single_user(event: dict[str, Any], context: Any) -> None:
    rotate(event, ENGINES, EXCLUDE, _set_single, _test)


def multi_user(event: dict[str, Any], context: Any) -> None:
    rotate(event, ENGINES, EXCLUDE, _set_multi, _test, next_username=lambda u: alternate(u, _limit()))
