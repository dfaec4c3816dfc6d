"""Queries for functions (``functions``) and their invocations (``function_invocations``).

Every function takes an open :class:`~strongroom.store.database.Tx`; the caller decides the
transaction's extent. A function is a dict of :data:`FUNCTION_COLUMNS` (the code itself is read
only by :func:`code_of`: listing and resolving never load the zip); the environment and the
invocations' logs are ciphertext the caller decrypts.
"""

from __future__ import annotations

from typing import Any

from strongroom.store.database import Tx

__all__ = [
    "FUNCTION_COLUMNS",
    "code_of",
    "delete_function",
    "function_row",
    "function_rows",
    "insert_function",
    "insert_invocation",
    "invocations_of",
    "role_trust_policy",
    "set_code",
    "set_policy",
    "update_function",
]

FUNCTION_COLUMNS = (
    "name",
    "arn",
    "runtime",
    "handler",
    "role",
    "description",
    "timeout",
    "memory_size",
    "environment_enc",
    "code_sha256",
    "code_size",
    "revision_id",
    "policy",
    "last_modified",
)

# ----------------------------------------------------------------------------------- functions


def function_row(tx: Tx, account_id: str, region: str, name: str) -> dict[str, Any] | None:
    row = tx.one(
        f"SELECT {', '.join(FUNCTION_COLUMNS)} FROM functions WHERE account_id = ? AND region = ? AND name = ?",
        (account_id, region, name),
    )
    return None if row is None else dict(zip(FUNCTION_COLUMNS, row, strict=False))


def function_rows(tx: Tx, account_id: str, region: str, after: str, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` functions named after ``after``, by name."""
    rows = tx.all(
        f"SELECT {', '.join(FUNCTION_COLUMNS)} FROM functions WHERE account_id = ? AND region = ? "
        "AND name > ? ORDER BY name LIMIT ?",
        (account_id, region, after, limit),
    )
    return [dict(zip(FUNCTION_COLUMNS, r, strict=False)) for r in rows]


def code_of(tx: Tx, account_id: str, region: str, name: str) -> bytes | None:
    """A function's zip archive."""
    blob = tx.one(
        "SELECT code FROM functions WHERE account_id = ? AND region = ? AND name = ?", (account_id, region, name)
    )
    return None if blob is None else bytes(blob[0])


def insert_function(
    tx: Tx,
    account_id: str,
    region: str,
    name: str,
    arn: str,
    runtime: str,
    handler: str,
    role: str,
    description: str,
    timeout: int,
    memory_size: int,
    environment_enc: bytes | None,
    code: bytes,
    code_sha256: str,
    revision_id: str,
    now: float,
) -> None:
    """A new function with no permissions; raises Conflict when the name is taken."""
    tx.execute(
        "INSERT INTO functions (account_id, region, name, arn, runtime, handler, role, description, "
        "timeout, memory_size, environment_enc, code, code_sha256, code_size, revision_id, policy, "
        "last_modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', ?)",
        (
            account_id,
            region,
            name,
            arn,
            runtime,
            handler,
            role,
            description,
            timeout,
            memory_size,
            environment_enc,
            code,
            code_sha256,
            len(code),
            revision_id,
            now,
        ),
    )


def set_code(tx: Tx, arn: str, code: bytes, code_sha256: str, revision_id: str, now: float) -> None:
    tx.execute(
        "UPDATE functions SET code = ?, code_sha256 = ?, code_size = ?, revision_id = ?, last_modified = ? "
        "WHERE arn = ?",
        (code, code_sha256, len(code), revision_id, now, arn),
    )


def update_function(tx: Tx, arn: str, sets: dict[str, Any]) -> None:
    """Write the columns named in ``sets`` (names of :data:`FUNCTION_COLUMNS`, never user input)."""
    tx.execute(
        f"UPDATE functions SET {', '.join(f'{k} = ?' for k in sets)} WHERE arn = ?",
        [*sets.values(), arn],
    )


def set_policy(tx: Tx, arn: str, policy: str, revision_id: str) -> None:
    tx.execute("UPDATE functions SET policy = ?, revision_id = ? WHERE arn = ?", (policy, revision_id, arn))


def delete_function(tx: Tx, arn: str) -> None:
    tx.execute("DELETE FROM functions WHERE arn = ?", (arn,))


def role_trust_policy(tx: Tx, role_arn: str) -> str | None:
    """The trust policy of the role a function would run as ("" or None: it has none, or there is
    no such role)."""
    row = tx.one("SELECT trust_policy FROM iam_principals WHERE arn = ? AND kind = 'role'", (role_arn,))
    return None if row is None else row[0]


# ------------------------------------------------------------------------ function_invocations


def insert_invocation(
    tx: Tx,
    function_arn: str,
    request_id: str,
    started: float,
    duration_ms: float,
    step: str | None,
    outcome: str,
    error: str | None,
    logs_enc: bytes | None,
) -> None:
    """Record an invocation; only the newest 1,000 of a function are kept."""
    tx.execute(
        "INSERT INTO function_invocations (function_arn, request_id, started_date, duration_ms, step, "
        "outcome, error, logs_enc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (function_arn, request_id, started, duration_ms, step, outcome, error, logs_enc),
    )
    tx.execute(
        "DELETE FROM function_invocations WHERE function_arn = ? AND id <= (SELECT id FROM "
        "function_invocations WHERE function_arn = ? ORDER BY id DESC LIMIT 1 OFFSET 1000)",
        (function_arn, function_arn),
    )


def invocations_of(tx: Tx, function_arn: str, limit: int) -> list[tuple[Any, ...]]:
    """(request_id, started_date, duration_ms, step, outcome, error, logs_enc), newest first."""
    return tx.all(
        "SELECT request_id, started_date, duration_ms, step, outcome, error, logs_enc FROM "
        "function_invocations WHERE function_arn = ? ORDER BY id DESC LIMIT ?",
        (function_arn, limit),
    )
