"""Queries for secrets, versions, staging labels and resource policies.

Every function takes an open :class:`~strongroom.store.database.Tx`; the caller decides the
transaction's extent. Rows map to small dataclasses in snake_case; nothing here knows AWS's wire
names. JSON-valued columns (tags, rotation rules, replicas) are stored as compact JSON text.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from strongroom.store.database import Tx

__all__ = [
    "SecretRow",
    "VersionRow",
    "delete_secret_row",
    "find_secret",
    "get_secret_by_id",
    "get_version",
    "insert_secret",
    "insert_version",
    "remove_stage",
    "set_stage",
    "stages_of",
    "update_secret",
    "value_for",
    "versions_of",
]


@dataclass(slots=True)  # pragma: no mutate (memory only: nothing sets an attribute that is not a field)
class SecretRow:
    id: int
    account_id: str
    region: str
    name: str
    arn: str
    description: str | None = None
    kms_key_id: str | None = None
    type: str | None = None
    # Every SecretRow the code makes names both dates, and a row read back has them: the defaults
    # are never used (pragma: equivalent mutants).
    created_date: float = 0.0  # pragma: no mutate
    last_changed_date: float = 0.0  # pragma: no mutate
    last_accessed_date: float | None = None
    deleted_date: float | None = None
    deletion_date: float | None = None
    rotation_enabled: int | None = None
    rotation_lambda_arn: str | None = None
    rotation_rules: dict[str, Any] | None = None
    last_rotated_date: float | None = None
    next_rotation_date: float | None = None
    owning_service: str | None = None
    external_metadata: list[dict[str, str]] | None = None
    external_role_arn: str | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    primary_arn: str | None = None
    replicas: list[dict[str, Any]] = field(default_factory=list)
    rotation_due_at: float | None = None  # the moment inside the window the scheduler picked
    cross_account_primary: dict[str, Any] | None = None  # on a cross-account replica
    cross_account_replicas: list[dict[str, Any]] = field(default_factory=list)  # on its primary
    # 1: answer "Tags" even when empty (the secret had tags once), as AWS does. Every SecretRow made
    # names it, or (a region replica) has it copied from its primary: the default is never used.
    tags_member: int = 0  # pragma: no mutate


SECRET_COLUMNS = [f.name for f in fields(SecretRow)]
_SELECT = "SELECT " + ", ".join(SECRET_COLUMNS) + " FROM secrets"
_JSON_COLUMNS = {
    "rotation_rules",
    "external_metadata",
    "tags",
    "replicas",
    "cross_account_primary",
    "cross_account_replicas",
}
_JSON_INDEXES = [i for i, name in enumerate(SECRET_COLUMNS) if name in _JSON_COLUMNS]


def _secret(row: tuple[Any, ...] | None) -> SecretRow | None:
    if row is None:
        return None
    values = list(row)
    for i in _JSON_INDEXES:
        text = values[i]
        if text is not None:
            # Most secrets have no replicas and no links: a fresh empty list, without a parse.
            values[i] = [] if text == "[]" else orjson.loads(text)
    return SecretRow(*values)


def _dump(name: str, value: Any) -> Any:
    if name in _JSON_COLUMNS and value is not None:
        return orjson.dumps(value).decode()
    return value


def find_secret(
    tx: Tx,
    account_id: str,
    region: str,
    *,  # pragma: no mutate (every caller names these: "/" for "*" is equivalent)
    name: str | None = None,
    arn: str | None = None,
    lock: bool = False,
) -> SecretRow | None:
    lock_sql = tx.lock_clause if lock else ""
    if arn is not None:
        return _secret(
            tx.one(f"{_SELECT} WHERE arn = ? AND account_id = ? AND region = ?{lock_sql}", (arn, account_id, region))
        )
    return _secret(
        tx.one(f"{_SELECT} WHERE account_id = ? AND region = ? AND name = ?{lock_sql}", (account_id, region, name))
    )


def get_secret_by_id(tx: Tx, secret_id: int, lock: bool = False) -> SecretRow | None:
    return _secret(tx.one(f"{_SELECT} WHERE id = ?{tx.lock_clause if lock else ''}", (secret_id,)))


def secret_by_arn(tx: Tx, arn: str) -> SecretRow | None:
    return _secret(tx.one(f"{_SELECT} WHERE arn = ?", (arn,)))


def insert_secret(tx: Tx, row: SecretRow) -> int:
    names = [n for n in SECRET_COLUMNS if n != "id"]
    sql = f"INSERT INTO secrets ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)}) RETURNING id"
    returned = tx.one(sql, [_dump(n, getattr(row, n)) for n in names])
    assert returned is not None
    (new_id,) = returned
    row.id = int(new_id)
    return row.id


def update_secret(tx: Tx, row: SecretRow, *columns: str) -> None:
    """Write the named columns of ``row`` back."""
    sets = ", ".join(f"{c} = ?" for c in columns)
    tx.execute(f"UPDATE secrets SET {sets} WHERE id = ?", [_dump(c, getattr(row, c)) for c in columns] + [row.id])


def delete_secret_row(tx: Tx, secret_id: int) -> None:
    # Children first: SQLite's foreign keys would cascade, but spelling it out keeps both engines
    # and any future table honest.
    tx.execute("DELETE FROM stages WHERE secret_id = ?", (secret_id,))
    tx.execute("DELETE FROM versions WHERE secret_id = ?", (secret_id,))
    tx.execute("DELETE FROM policies WHERE secret_id = ?", (secret_id,))
    tx.execute("DELETE FROM secrets WHERE id = ?", (secret_id,))


@dataclass(slots=True)  # pragma: no mutate (memory only: nothing sets an attribute that is not a field)
class VersionRow:
    version_id: str
    created_date: float
    last_accessed_date: float | None
    value_kind: int  # 0: no value (a rotation's placeholder), 1: string, 2: binary
    key_ref: str | None
    ciphertext: bytes | None


_VERSION_COLS = "version_id, created_date, last_accessed_date, value_kind, key_ref, ciphertext"


def _version(row: tuple[Any, ...] | None) -> VersionRow | None:
    if row is None:
        return None
    v = VersionRow(*row)
    # The row's own value: some drivers give a memoryview, which VersionRow's type does not admit.
    # Both engines' drivers (sqlite3, psycopg 3) return bytes, so this never runs (pragma: the
    # mutants of a branch no engine reaches are equivalent).
    if row[5] is not None and not isinstance(row[5], bytes):  # pragma: no mutate
        v.ciphertext = bytes(row[5])  # pragma: no mutate
    return v


def versions_of(tx: Tx, secret_id: int) -> list[VersionRow]:
    rows = tx.all(
        f"SELECT {_VERSION_COLS} FROM versions WHERE secret_id = ? ORDER BY created_date DESC, version_id", (secret_id,)
    )
    return [v for v in map(_version, rows) if v is not None]


def get_version(tx: Tx, secret_id: int, version_id: str) -> VersionRow | None:
    return _version(
        tx.one(f"SELECT {_VERSION_COLS} FROM versions WHERE secret_id = ? AND version_id = ?", (secret_id, version_id))
    )


def insert_version(tx: Tx, secret_id: int, version: VersionRow) -> None:
    tx.execute(
        f"INSERT INTO versions (secret_id, {_VERSION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            secret_id,
            version.version_id,
            version.created_date,
            version.last_accessed_date,
            version.value_kind,
            version.key_ref,
            version.ciphertext,
        ),
    )


def fill_version(tx: Tx, secret_id: int, version: VersionRow) -> None:
    """Give a value-less version (a rotation's placeholder) its value."""
    tx.execute(
        "UPDATE versions SET value_kind = ?, key_ref = ?, ciphertext = ?, created_date = ? "
        "WHERE secret_id = ? AND version_id = ?",
        (version.value_kind, version.key_ref, version.ciphertext, version.created_date, secret_id, version.version_id),
    )


def delete_version(tx: Tx, secret_id: int, version_id: str) -> None:
    tx.execute("DELETE FROM versions WHERE secret_id = ? AND version_id = ?", (secret_id, version_id))


def version_ids_before(tx: Tx, secret_id: int, before: float) -> list[str]:
    """Ids of the versions created before ``before`` (the candidates for retention's purge)."""
    rows = tx.all("SELECT version_id FROM versions WHERE secret_id = ? AND created_date < ?", (secret_id, before))
    return [version_id for (version_id,) in rows]


def newest_version_ids(tx: Tx, secret_id: int, limit: int) -> set[str]:
    return {
        version_id
        for (version_id,) in tx.all(
            "SELECT version_id FROM versions WHERE secret_id = ? ORDER BY created_date DESC, version_id LIMIT ?",
            (secret_id, limit),
        )
    }


# The one call without with_value reads a cross-account replica, which never holds a value-less
# version (its primary's placeholders are not copied): the default's mutant is equivalent.
def version_ids(tx: Tx, secret_id: int, with_value: bool = False) -> set[str]:  # pragma: no mutate
    """Ids of a secret's versions; ``with_value``: only those holding a value (not a rotation's
    placeholder)."""
    if with_value:
        return {
            version_id
            for (version_id,) in tx.all(
                "SELECT version_id FROM versions WHERE secret_id = ? AND value_kind <> 0", (secret_id,)
            )
        }
    return {version_id for (version_id,) in tx.all("SELECT version_id FROM versions WHERE secret_id = ?", (secret_id,))}


def rewrap_version(tx: Tx, secret_id: int, version_id: str, key_ref: str, ciphertext: bytes) -> None:
    """A version's value encrypted anew (under another key)."""
    tx.execute(
        "UPDATE versions SET key_ref = ?, ciphertext = ? WHERE secret_id = ? AND version_id = ?",
        (key_ref, ciphertext, secret_id, version_id),
    )


def touch(tx: Tx, secret_id: int, version_id: str, today: float) -> None:
    """Record ``today`` as the last access of a version and of its secret."""
    tx.execute(
        "UPDATE versions SET last_accessed_date = ? WHERE secret_id = ? AND version_id = ?",
        (today, secret_id, version_id),
    )
    tx.execute("UPDATE secrets SET last_accessed_date = ? WHERE id = ?", (today, secret_id))


def clear_contents(tx: Tx, secret_id: int) -> None:
    """Remove a secret's labels, versions and policies, keeping its row (a replica refilled)."""
    tx.execute("DELETE FROM stages WHERE secret_id = ?", (secret_id,))
    tx.execute("DELETE FROM versions WHERE secret_id = ?", (secret_id,))
    tx.execute("DELETE FROM policies WHERE secret_id = ?", (secret_id,))


def stages_of(tx: Tx, secret_id: int) -> dict[str, str]:
    """stage -> version_id."""
    return dict(tx.all("SELECT stage, version_id FROM stages WHERE secret_id = ?", (secret_id,)))


def set_stage(tx: Tx, secret_id: int, stage: str, version_id: str) -> None:
    tx.execute("DELETE FROM stages WHERE secret_id = ? AND stage = ?", (secret_id, stage))
    tx.execute("INSERT INTO stages (secret_id, stage, version_id) VALUES (?, ?, ?)", (secret_id, stage, version_id))


def remove_stage(tx: Tx, secret_id: int, stage: str) -> None:
    tx.execute("DELETE FROM stages WHERE secret_id = ? AND stage = ?", (secret_id, stage))


def remove_stages(tx: Tx, secret_id: int) -> None:
    tx.execute("DELETE FROM stages WHERE secret_id = ?", (secret_id,))


_VALUE_SQL: dict[tuple[str, bool, bool], str] = {}


def _value_sql(dialect: str, by_version: bool, by_arn: bool) -> str:
    sql = _VALUE_SQL.get((dialect, by_version, by_arn))
    if sql is None:
        secret_cols = ", ".join("s." + c for c in SECRET_COLUMNS)
        version_cols = ", ".join("v." + c.strip() for c in _VERSION_COLS.split(","))
        concat = "group_concat(l.stage, ',')" if dialect == "sqlite" else "string_agg(l.stage, ',')"
        labels = f"(SELECT {concat} FROM stages l WHERE l.secret_id = s.id AND l.version_id = v.version_id)"
        join = (
            "LEFT JOIN versions v ON v.secret_id = s.id AND v.version_id = ?"
            if by_version
            else "LEFT JOIN stages st ON st.secret_id = s.id AND st.stage = ? "
            "LEFT JOIN versions v ON v.secret_id = s.id AND v.version_id = st.version_id"
        )
        where = (
            "s.arn = ? AND s.account_id = ? AND s.region = ?"
            if by_arn
            else "s.account_id = ? AND s.region = ? AND s.name = ?"
        )
        sql = _VALUE_SQL[(dialect, by_version, by_arn)] = (
            f"SELECT {secret_cols}, {version_cols}, {labels}, "
            f"EXISTS (SELECT 1 FROM policies p WHERE p.secret_id = s.id) FROM secrets s {join} WHERE {where}"
        )
    return sql


def value_for(
    tx: Tx, account_id: str, region: str, name: str | None, arn: str | None, version_id: str | None, stage: str | None
) -> tuple[SecretRow, VersionRow | None, list[str], bool] | None:
    """The hot read in one query: a secret, the version asked for, that version's labels, and
    whether the secret has a resource policy (so the authorizer needs no query of its own when
    it has none).

    Returns None when the secret does not exist; the version is None when it does not.
    """
    first: tuple[Any, ...] = (version_id,) if version_id is not None else (stage or "AWSCURRENT",)
    keys = (arn, account_id, region) if arn is not None else (account_id, region, name)
    row = tx.one(_value_sql(tx.dialect, version_id is not None, arn is not None), first + keys)
    if row is None:
        return None
    n = len(SECRET_COLUMNS)
    secret = _secret(row[:n])
    assert secret is not None
    has_policy = bool(row[n + 7])
    if row[n] is None:
        return secret, None, [], has_policy
    version = _version(row[n : n + 6])
    assert version is not None
    return secret, version, sorted(row[n + 6].split(",")) if row[n + 6] else [], has_policy


# ------------------------------------------------------------------------------------ policies


def policies_of(tx: Tx, secret_id: int) -> list[tuple[str, str]]:
    """(policy_name, document), ``default`` first, then by name."""
    rows = tx.all("SELECT policy_name, document FROM policies WHERE secret_id = ?", (secret_id,))
    return sorted(rows, key=lambda r: (r[0] != "default", r[0]))


def policy_documents(tx: Tx, secret_id: int) -> list[str]:
    """The documents of a secret's resource policies, in no particular order."""
    return [document for (document,) in tx.all("SELECT document FROM policies WHERE secret_id = ?", (secret_id,))]


def has_policy(tx: Tx, secret_id: int) -> bool:
    return tx.one("SELECT 1 FROM policies WHERE secret_id = ? LIMIT 1", (secret_id,)) is not None


def put_policy(tx: Tx, secret_id: int, name: str, document: str, now: float) -> None:
    tx.execute("DELETE FROM policies WHERE secret_id = ? AND policy_name = ?", (secret_id, name))
    tx.execute(
        "INSERT INTO policies (secret_id, policy_name, document, created_date) VALUES (?, ?, ?, ?)",
        (secret_id, name, document, now),
    )


def delete_policy(tx: Tx, secret_id: int, name: str | None) -> None:
    if name is None:
        tx.execute("DELETE FROM policies WHERE secret_id = ?", (secret_id,))
    else:
        tx.execute("DELETE FROM policies WHERE secret_id = ? AND policy_name = ?", (secret_id, name))


# ------------------------------------------------------------------------------------- listing


ORDER_EXPRESSIONS = {
    "created-date": "created_date",
    "last-changed-date": "last_changed_date",
    "last-accessed-date": "COALESCE(last_accessed_date, 0)",
    "name": "name",
}


def list_secrets(
    tx: Tx,
    account_id: str,
    region: str,
    sort_by: str,
    descending: bool,
    after: tuple[Any, int] | None,
    limit: int,
    include_deleted: bool,
) -> list[SecretRow]:
    """A page in keyset order ``(sort key, id)``; ``after`` is the last row of the page before.

    Keyset pagination keeps tokens stable while secrets are added: a new secret never shifts a
    page boundary. Names compare byte-wise on both engines (PostgreSQL's locale collation would
    order them differently from SQLite).
    """
    expr = ORDER_EXPRESSIONS[sort_by]
    if expr == "name" and tx.dialect == "postgresql":
        expr = 'name COLLATE "C"'
    where = ["account_id = ?", "region = ?"]
    params: list[Any] = [account_id, region]
    if not include_deleted:
        where.append("deleted_date IS NULL")
    if after is not None:
        op = "<" if descending else ">"
        where.append(f"({expr} {op} ? OR ({expr} = ? AND id {op} ?))")
        params += [after[0], after[0], after[1]]
    direction = "DESC" if descending else "ASC"
    sql = f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY {expr} {direction}, id {direction} LIMIT ?"
    params.append(limit)
    return [s for s in map(_secret, tx.all(sql, params)) if s is not None]


def sort_value(row: SecretRow, sort_by: str) -> Any:
    if sort_by == "name":
        return row.name
    if sort_by == "last-accessed-date":
        return row.last_accessed_date or 0
    return getattr(row, sort_by.replace("-", "_"))


def all_stages(tx: Tx, secret_ids: list[int]) -> dict[int, dict[str, list[str]]]:
    """secret id -> version id -> labels, for many secrets in one query."""
    out: dict[int, dict[str, list[str]]] = {i: {} for i in secret_ids}
    if not secret_ids:
        return out
    marks = ", ".join("?" for _ in secret_ids)
    for sid, stage, vid in tx.all(
        f"SELECT secret_id, stage, version_id FROM stages WHERE secret_id IN ({marks}) ORDER BY stage", secret_ids
    ):
        out[sid].setdefault(vid, []).append(stage)
    return out


def last_accessed_by_arn(tx: Tx, arns: list[str]) -> dict[str, float]:
    """ARN -> last access date of those secrets that were ever read, in one query (the replicas
    a DescribeSecret reports on)."""
    if not arns:
        return {}
    marks = ", ".join("?" for _ in arns)
    return dict(
        tx.all(
            f"SELECT arn, last_accessed_date FROM secrets WHERE arn IN ({marks}) AND last_accessed_date IS NOT NULL",
            arns,
        )
    )


# The one caller names the batch size: the default is never used (pragma: equivalent).
def due_for_purge(tx: Tx, now: float, limit: int = 100) -> list[int]:  # pragma: no mutate
    return [
        secret_id
        for (secret_id,) in tx.all(
            "SELECT id FROM secrets WHERE deletion_date IS NOT NULL AND deletion_date <= ? LIMIT ?", (now, limit)
        )
    ]
