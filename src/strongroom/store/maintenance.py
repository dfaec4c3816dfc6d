"""Queries across the table families: the counts ``strongroom status`` prints, and the reset a
test server offers (``/_strongroom/reset``).

Every function takes an open :class:`~strongroom.store.database.Tx`; the caller decides the
transaction's extent.
"""

from __future__ import annotations

from typing import Any

from strongroom.store.database import Tx

__all__ = ["RESET_TABLES", "counts", "reset", "rotation_gauges", "schema_version"]

# Children before parents; accounts, keys, identities and the keyring survive a reset.
RESET_TABLES = (
    "rotation_steps",
    "rotations",
    "stages",
    "versions",
    "policies",
    "secrets",
    "functions",
    "audit_events",
    "function_invocations",
)


def _count(tx: Tx, sql: str) -> int:
    row = tx.one(sql)
    assert row is not None  # an aggregate always answers one row
    return int(row[0])


def counts(tx: Tx) -> dict[str, Any]:
    """What a store holds: accounts, live secrets, secrets scheduled for deletion, functions, and
    rotations by state."""
    return {
        "accounts": _count(
            tx, "SELECT count(DISTINCT account_id) FROM access_keys WHERE expires_at IS NULL AND account_id <> '-'"
        ),
        "secrets": _count(tx, "SELECT count(*) FROM secrets WHERE deleted_date IS NULL"),
        "scheduled for deletion": _count(tx, "SELECT count(*) FROM secrets WHERE deleted_date IS NOT NULL"),
        "functions": _count(tx, "SELECT count(*) FROM functions"),
        "rotations": dict(tx.all("SELECT state, count(*) FROM rotations GROUP BY state")),
    }


def rotation_gauges(tx: Tx, now: float) -> tuple[dict[str, int], int]:
    """Rotations by state, and the live secrets whose scheduled rotation is due (the metrics)."""
    states = {str(state): int(n) for state, n in tx.all("SELECT state, count(*) FROM rotations GROUP BY state")}
    row = tx.one(
        "SELECT count(*) FROM secrets WHERE rotation_enabled = 1 AND rotation_due_at <= ? AND deleted_date IS NULL",
        (now,),
    )
    return states, int(row[0]) if row is not None else 0


def schema_version(tx: Tx) -> int:
    """The newest migration applied (0 for an empty database)."""
    row = tx.one("SELECT max(version) FROM schema_version")
    return int(row[0] or 0) if row is not None else 0


def reset(tx: Tx) -> None:
    """Empty the tables of secrets, functions, rotations and the trail."""
    for table in RESET_TABLES:
        tx.execute(f"DELETE FROM {table}")
