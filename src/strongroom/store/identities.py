"""Queries for identities and their policies: IAM users and roles (``iam_principals``) and their
inline policies (``iam_inline_policies``).

Every function takes an open :class:`~strongroom.store.database.Tx`; the caller decides the
transaction's extent. A principal is a dict of :data:`PRINCIPAL_COLUMNS` (``tags`` as the stored
JSON text); policy documents are the stored JSON text, parsed by the caller.
"""

from __future__ import annotations

from typing import Any

from strongroom.store.database import Tx

__all__ = [
    "PRINCIPAL_COLUMNS",
    "delete_inline_policy",
    "delete_principal",
    "has_inline_policies",
    "inline_policies_of",
    "inline_policy",
    "inline_policy_names",
    "insert_principal",
    "other_inline_policies",
    "principal",
    "principal_exists",
    "principals",
    "put_inline_policy",
    "role_arn_by_id",
    "role_for_session",
    "role_id_and_arn",
    "tagged_principal",
]

PRINCIPAL_COLUMNS = (
    "arn",
    "account_id",
    "kind",
    "name",
    "path",
    "principal_id",
    "created_date",
    "trust_policy",
    "description",
    "max_session",
    "tags",
)

# ------------------------------------------------------------------------------ iam_principals


def principal(tx: Tx, account_id: str, kind: str, name: str) -> dict[str, Any] | None:
    row = tx.one(
        f"SELECT {', '.join(PRINCIPAL_COLUMNS)} FROM iam_principals WHERE account_id = ? AND kind = ? AND name = ?",
        (account_id, kind, name),
    )
    return None if row is None else dict(zip(PRINCIPAL_COLUMNS, row, strict=False))


def principal_exists(tx: Tx, account_id: str, kind: str, name: str) -> bool:
    return bool(
        tx.one(
            "SELECT 1 FROM iam_principals WHERE account_id = ? AND kind = ? AND name = ?",
            (account_id, kind, name),
        )
    )


def insert_principal(tx: Tx, row: dict[str, Any]) -> None:
    """Raises Conflict when the name is taken (another node created it first)."""
    tx.execute(
        f"INSERT INTO iam_principals ({', '.join(PRINCIPAL_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in PRINCIPAL_COLUMNS)})",
        [row[c] for c in PRINCIPAL_COLUMNS],
    )


def principals(tx: Tx, account_id: str, kind: str) -> list[dict[str, Any]]:
    """An account's users or roles, by name."""
    rows = tx.all(
        f"SELECT {', '.join(PRINCIPAL_COLUMNS)} FROM iam_principals WHERE account_id = ? AND kind = ? ORDER BY name",
        (account_id, kind),
    )
    return [dict(zip(PRINCIPAL_COLUMNS, r, strict=False)) for r in rows]


def delete_principal(tx: Tx, arn: str) -> None:
    tx.execute("DELETE FROM iam_principals WHERE arn = ?", (arn,))


def role_id_and_arn(tx: Tx, account_id: str, name: str) -> tuple[str, str] | None:
    """(principal_id, arn) of a role, or None."""
    row = tx.one(
        "SELECT principal_id, arn FROM iam_principals WHERE account_id = ? AND kind = 'role' AND name = ?",
        (account_id, name),
    )
    return None if row is None else (row[0], row[1])


def role_arn_by_id(tx: Tx, account_id: str, role_id: str) -> str | None:
    """The ARN of the role with this id (a role made again under its name has another id)."""
    row = tx.one(
        "SELECT arn FROM iam_principals WHERE account_id = ? AND kind = 'role' AND principal_id = ?",
        (account_id, role_id),
    )
    return row[0] if row else None


def role_for_session(tx: Tx, account_id: str, name: str) -> tuple[Any, ...] | None:
    """(trust_policy, principal_id, max_session, arn, tags) of a role, or None."""
    return tx.one(
        "SELECT trust_policy, principal_id, max_session, arn, tags FROM iam_principals "
        "WHERE account_id = ? AND kind = 'role' AND name = ?",
        (account_id, name),
    )


def tagged_principal(tx: Tx, account_id: str, kind: str, name: str | None) -> tuple[str, str | None] | None:
    """(arn, tags) of a user or role, or None."""
    row = tx.one(
        "SELECT arn, tags FROM iam_principals WHERE account_id = ? AND kind = ? AND name = ?",
        (account_id, kind, name),
    )
    return None if row is None else (row[0], row[1])


# ------------------------------------------------------------------------- iam_inline_policies


def inline_policies_of(tx: Tx, principal_arn: str) -> list[str]:
    """The documents of a principal's inline policies."""
    return [r[0] for r in tx.all("SELECT document FROM iam_inline_policies WHERE principal_arn = ?", (principal_arn,))]


def has_inline_policies(tx: Tx, principal_arn: str) -> bool:
    return bool(tx.one("SELECT 1 FROM iam_inline_policies WHERE principal_arn = ?", (principal_arn,)))


def other_inline_policies(tx: Tx, principal_arn: str, policy_name: str) -> list[str]:
    """The documents of a principal's inline policies but ``policy_name``."""
    return [
        r[0]
        for r in tx.all(
            "SELECT document FROM iam_inline_policies WHERE principal_arn = ? AND policy_name <> ?",
            (principal_arn, policy_name),
        )
    ]


def put_inline_policy(tx: Tx, principal_arn: str, account_id: str, policy_name: str, document: str) -> None:
    tx.execute(
        "DELETE FROM iam_inline_policies WHERE principal_arn = ? AND policy_name = ?", (principal_arn, policy_name)
    )
    tx.execute(
        "INSERT INTO iam_inline_policies (principal_arn, account_id, policy_name, document) VALUES (?, ?, ?, ?)",
        (principal_arn, account_id, policy_name, document),
    )


def inline_policy(tx: Tx, principal_arn: str, policy_name: str) -> str | None:
    row = tx.one(
        "SELECT document FROM iam_inline_policies WHERE principal_arn = ? AND policy_name = ?",
        (principal_arn, policy_name),
    )
    return None if row is None else str(row[0])


def delete_inline_policy(tx: Tx, principal_arn: str, policy_name: str) -> bool:
    """Whether there was such a policy."""
    gone = tx.execute(
        "DELETE FROM iam_inline_policies WHERE principal_arn = ? AND policy_name = ?", (principal_arn, policy_name)
    )
    return bool(gone.rowcount)


def inline_policy_names(tx: Tx, principal_arn: str) -> list[str]:
    return [
        r[0]
        for r in tx.all(
            "SELECT policy_name FROM iam_inline_policies WHERE principal_arn = ? ORDER BY policy_name",
            (principal_arn,),
        )
    ]
