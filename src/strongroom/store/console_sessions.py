"""Queries for web console sessions (``console_sessions``, docs/console.md).

A row is found by the SHA-256 of the session cookie's token (the caller hashes it): the table
holds nothing a reader could present as a session. Every function takes an open
:class:`~strongroom.store.database.Tx`.
"""

from __future__ import annotations

from strongroom.store.database import Row, Tx

__all__ = ["delete_session", "insert_session", "purge_expired", "session"]


def insert_session(
    tx: Tx,
    token_hash: str,
    access_key_id: str,
    account_id: str,
    principal_arn: str,
    region: str,
    created: float,
    expires_at: float,
) -> None:
    tx.execute(
        "INSERT INTO console_sessions "
        "(token_hash, access_key_id, account_id, principal_arn, region, created_date, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (token_hash, access_key_id, account_id, principal_arn, region, created, expires_at),
    )


def session(tx: Tx, token_hash: str) -> Row | None:
    """``(access_key_id, account_id, principal_arn, region, created_date, expires_at)``, or None."""
    return tx.one(
        "SELECT access_key_id, account_id, principal_arn, region, created_date, expires_at "
        "FROM console_sessions WHERE token_hash = ?",
        (token_hash,),
    )


def delete_session(tx: Tx, token_hash: str) -> None:
    tx.execute("DELETE FROM console_sessions WHERE token_hash = ?", (token_hash,))


def purge_expired(tx: Tx, now: float) -> None:
    tx.execute("DELETE FROM console_sessions WHERE expires_at < ?", (now,))
