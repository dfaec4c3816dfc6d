"""The machine's PostgreSQL and MariaDB, as tests of database rotation look at them.

PostgreSQL here may trust loopback connections (any password logs in), so "the password changed"
is proved from the stored SCRAM verifier; MariaDB checks passwords, so a login proves it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

__all__ = ["PG_URL", "maria", "maria_logs_in", "scram_matches", "stored_verifier"]

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def stored_verifier(role: str, url: str = PG_URL) -> str | None:
    """The password verifier PostgreSQL keeps for ``role`` (None: no role, or no password)."""
    import psycopg

    with psycopg.connect(url) as admin:
        row = admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
    return None if row is None else row[0]


def scram_matches(stored: str | None, password: str) -> bool:
    """Does a ``SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey`` verifier belong to ``password``?"""
    if not stored or not stored.startswith("SCRAM-SHA-256$"):
        return False
    iterations_salt, keys = stored.split("$", 1)[1].split("$")
    iterations, salt = iterations_salt.split(":")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest() == base64.b64decode(keys.split(":")[0])


def maria(user: str = "root", password: str = "") -> Any:
    """A connection to the machine's MariaDB, database ``test``."""
    import pymysql

    return pymysql.connect(
        host="127.0.0.1", port=3306, user=user, password=password, database="test", autocommit=True, connect_timeout=5
    )


def maria_logs_in(user: str, password: str) -> bool:
    import pymysql

    try:
        pymysql.connect(host="127.0.0.1", port=3306, user=user, password=password, connect_timeout=5).close()
        return True
    except pymysql.err.OperationalError:
        return False
