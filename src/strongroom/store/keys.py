"""Queries for keys: the wrapped account keys (``kms_keys``), the keyring's members
(``keyring``), access keys (``access_keys``) and the revocation generation (``key_generation``).

Every function takes an open :class:`~strongroom.store.database.Tx`; the caller decides the
transaction's extent. Wrapped keys and encrypted secrets are passed and returned as opaque bytes:
nothing here decrypts. Keys of the server itself (the access-key encryption key, the audit
trail's key) live in ``kms_keys`` under account and region ``'-'``.
"""

from __future__ import annotations

from typing import Any

from strongroom.store.database import Tx

__all__ = [
    "access_key",
    "activate_member",
    "all_account_keys",
    "all_wrapped",
    "any_account_key",
    "bump_generation",
    "delete_access_key",
    "delete_role_sessions",
    "demote_active",
    "demote_active_except",
    "first_root_key",
    "generation",
    "has_account_keys",
    "has_credentials",
    "has_keyring",
    "has_keys",
    "insert_access_key",
    "insert_account_key",
    "insert_member",
    "insert_server_key",
    "insert_session_key",
    "is_key_of",
    "keyring_members",
    "long_term_key_count",
    "long_term_keys",
    "member_state",
    "purge_expired_sessions",
    "retire_member",
    "rewrap_account_key",
    "server_key",
    "set_key_status",
    "wrapped_key",
]

# ------------------------------------------------------------------------------------ kms_keys


def wrapped_key(tx: Tx, account_id: str, region: str, key_ref: str) -> bytes | None:
    """An account's wrapped key, or None when it has none yet."""
    row = tx.one(
        "SELECT wrapped FROM kms_keys WHERE account_id = ? AND region = ? AND key_ref = ?",
        (account_id, region, key_ref),
    )
    return None if row is None else bytes(row[0])


def insert_account_key(tx: Tx, account_id: str, region: str, key_ref: str, wrapped: bytes, now: float) -> None:
    """Raises Conflict when another node created the key first."""
    tx.execute(
        "INSERT INTO kms_keys (account_id, region, key_ref, wrapped, created_date) VALUES (?, ?, ?, ?, ?)",
        (account_id, region, key_ref, wrapped, now),
    )


def server_key(tx: Tx, key_ref: str) -> bytes | None:
    """One of the server's own wrapped keys (account and region ``'-'``), or None."""
    row = tx.one("SELECT wrapped FROM kms_keys WHERE account_id = '-' AND region = '-' AND key_ref = ?", (key_ref,))
    return None if row is None else bytes(row[0])


def insert_server_key(tx: Tx, key_ref: str, wrapped: bytes, now: float) -> None:
    tx.execute(
        "INSERT INTO kms_keys (account_id, region, key_ref, wrapped, created_date) VALUES ('-', '-', ?, ?, ?)",
        (key_ref, wrapped, now),
    )


def all_wrapped(tx: Tx) -> list[bytes]:
    """Every wrapped key, of accounts and of the server."""
    return [bytes(r[0]) for r in tx.all("SELECT wrapped FROM kms_keys")]


def any_account_key(tx: Tx) -> tuple[str, bytes] | None:
    """(key_ref, wrapped) of some key, or None when the store holds none."""
    row = tx.one("SELECT key_ref, wrapped FROM kms_keys LIMIT 1")
    return None if row is None else (row[0], bytes(row[1]))


def has_account_keys(tx: Tx) -> bool:
    return tx.one("SELECT 1 FROM kms_keys LIMIT 1") is not None


def all_account_keys(tx: Tx) -> list[tuple[str, str, str, bytes]]:
    """(account_id, region, key_ref, wrapped) of every key."""
    rows = tx.all("SELECT account_id, region, key_ref, wrapped FROM kms_keys")
    return [(r[0], r[1], r[2], bytes(r[3])) for r in rows]


def rewrap_account_key(tx: Tx, account_id: str, region: str, key_ref: str, fresh: bytes, wrapped: bytes) -> None:
    """Replace a wrapped key by ``fresh`` only if it is still ``wrapped`` (a compare-and-set)."""
    tx.execute(
        "UPDATE kms_keys SET wrapped = ? WHERE account_id = ? AND region = ? AND key_ref = ? AND wrapped = ?",
        (fresh, account_id, region, key_ref, wrapped),
    )


# ------------------------------------------------------------------------------------- keyring


def keyring_members(tx: Tx) -> list[tuple[Any, ...]]:
    """(id, fingerprint, kind, description, state, created_date) of every member, by id."""
    rows = tx.all("SELECT id, fingerprint, kind, description, state, created_date FROM keyring ORDER BY id")
    return [tuple(r) for r in rows]


def has_keyring(tx: Tx) -> bool:
    return tx.one("SELECT 1 FROM keyring LIMIT 1") is not None


def insert_member(tx: Tx, member: int, fingerprint: str, kind: str, description: str, state: str, now: float) -> None:
    tx.execute(
        "INSERT INTO keyring (id, fingerprint, kind, description, state, created_date) VALUES (?, ?, ?, ?, ?, ?)",
        (member, fingerprint, kind, description, state, now),
    )


def member_state(tx: Tx, member: int) -> str | None:
    row = tx.one("SELECT state FROM keyring WHERE id = ?", (member,))
    return None if row is None else str(row[0])


def demote_active(tx: Tx) -> None:
    tx.execute("UPDATE keyring SET state = 'previous' WHERE state = 'active'")


def demote_active_except(tx: Tx, member: int) -> None:
    tx.execute("UPDATE keyring SET state = 'previous' WHERE state = 'active' AND id <> ?", (member,))


def activate_member(tx: Tx, member: int) -> None:
    tx.execute("UPDATE keyring SET state = 'active' WHERE id = ?", (member,))


def retire_member(tx: Tx, member: int) -> None:
    tx.execute("UPDATE keyring SET state = 'retired' WHERE id = ?", (member,))


# --------------------------------------------------------------------------------- access_keys


def generation(tx: Tx) -> int:
    """The revocation generation; -1 before the store has one."""
    row = tx.one("SELECT generation FROM key_generation WHERE id = 1")
    return int(row[0]) if row else -1


def bump_generation(tx: Tx) -> None:
    tx.execute("UPDATE key_generation SET generation = generation + 1 WHERE id = 1")


def insert_access_key(
    tx: Tx,
    access_key_id: str,
    account_id: str,
    principal_arn: str,
    secret_enc: bytes,
    now: float,
    privilege: str | None,
    principal_id: str,
) -> None:
    """A long-term key, active."""
    tx.execute(
        "INSERT INTO access_keys (access_key_id, account_id, principal_arn, secret_enc, status, "
        "created_date, privilege, principal_id) VALUES (?, ?, ?, ?, 'Active', ?, ?, ?)",
        (access_key_id, account_id, principal_arn, secret_enc, now, privilege, principal_id),
    )


def insert_session_key(
    tx: Tx,
    access_key_id: str,
    account_id: str,
    principal_arn: str,
    secret_enc: bytes,
    now: float,
    session_token_enc: bytes,
    expires_at: float,
    principal_id: str,
    role_arn: str,
) -> None:
    """Temporary credentials (a role's session), active until ``expires_at``."""
    tx.execute(
        "INSERT INTO access_keys (access_key_id, account_id, principal_arn, secret_enc, status, "
        "created_date, session_token_enc, expires_at, principal_id, role_arn) "
        "VALUES (?, ?, ?, ?, 'Active', ?, ?, ?, ?, ?)",
        (
            access_key_id,
            account_id,
            principal_arn,
            secret_enc,
            now,
            session_token_enc,
            expires_at,
            principal_id,
            role_arn,
        ),
    )


def purge_expired_sessions(tx: Tx, before: float) -> None:
    tx.execute("DELETE FROM access_keys WHERE expires_at IS NOT NULL AND expires_at < ?", (before,))


def access_key(tx: Tx, access_key_id: str) -> tuple[Any, ...] | None:
    """(account_id, principal_arn, secret_enc, status, session_token_enc, expires_at, privilege,
    principal_id, role_arn) of a key, or None."""
    return tx.one(
        "SELECT account_id, principal_arn, secret_enc, status, session_token_enc, expires_at, "
        "privilege, principal_id, role_arn FROM access_keys WHERE access_key_id = ?",
        (access_key_id,),
    )


def first_root_key(tx: Tx, account_id: str, privilege: str) -> str | None:
    """The id of an account's oldest long-term key carrying ``privilege``, or None."""
    row = tx.one(
        "SELECT access_key_id FROM access_keys WHERE account_id = ? AND privilege = ? AND expires_at IS NULL "
        "ORDER BY created_date LIMIT 1",
        (account_id, privilege),
    )
    return None if row is None else str(row[0])


def has_credentials(tx: Tx, principal_arn: str, account_id: str) -> bool:
    """Whether ``principal_arn`` has a key, or the account a root key."""
    return (
        tx.one(
            "SELECT 1 FROM access_keys WHERE principal_arn = ? OR (account_id = ? AND privilege = 'root')",
            (principal_arn, account_id),
        )
        is not None
    )


def has_keys(tx: Tx, principal_arn: str) -> bool:
    """Whether a principal holds any key (a user with keys cannot be deleted)."""
    return bool(tx.one("SELECT 1 FROM access_keys WHERE principal_arn = ?", (principal_arn,)))


def long_term_key_count(tx: Tx, principal_arn: str) -> int:
    row = tx.one("SELECT count(*) FROM access_keys WHERE principal_arn = ? AND expires_at IS NULL", (principal_arn,))
    return int(row[0]) if row else 0


def long_term_keys(tx: Tx, principal_arn: str) -> list[tuple[str, str, float]]:
    """(access_key_id, status, created_date) of a principal's long-term keys, oldest first."""
    rows = tx.all(
        "SELECT access_key_id, status, created_date FROM access_keys WHERE principal_arn = ? "
        "AND expires_at IS NULL ORDER BY created_date",
        (principal_arn,),
    )
    return [(r[0], r[1], r[2]) for r in rows]


def is_key_of(tx: Tx, access_key_id: str, principal_arn: str) -> bool:
    return bool(
        tx.one(
            "SELECT 1 FROM access_keys WHERE access_key_id = ? AND principal_arn = ?", (access_key_id, principal_arn)
        )
    )


def set_key_status(tx: Tx, access_key_id: str, status: str) -> None:
    tx.execute("UPDATE access_keys SET status = ? WHERE access_key_id = ?", (status, access_key_id))


def delete_access_key(tx: Tx, access_key_id: str) -> None:
    tx.execute("DELETE FROM access_keys WHERE access_key_id = ?", (access_key_id,))


def delete_role_sessions(tx: Tx, role_arn: str) -> None:
    tx.execute("DELETE FROM access_keys WHERE role_arn = ?", (role_arn,))
