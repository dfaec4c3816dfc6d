"""The ``audit_events`` table's queries: the audit trail inserts and purges, LookupEvents reads.

A row is (``event_id``, ``account_id``, ``region``, ``event_time`` (epoch seconds),
``event_name``, ``event_source``, ``read_only`` (0/1), ``username``, ``access_key_id``,
``resource_name``, ``resource_type``, ``record`` (the record's JSON)), in that order: what
:func:`strongroom.audit.records._row` makes. ``id``, the table's own key, orders the records as
they were committed; LookupEvents pages on it, newest first.
"""

from __future__ import annotations

from typing import Any

from strongroom.store.database import Tx

__all__ = ["LOOKUP_COLUMNS", "insert", "lookup", "purge_before"]

_INSERT = (
    "INSERT INTO audit_events (event_id, account_id, region, event_time, event_name, event_source, "
    "read_only, username, access_key_id, resource_name, resource_type, record) VALUES "
)
_ROW_MARKS = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_ROWS_PER_STATEMENT = 500  # 6,000 parameters: within SQLite's 32,766 and PostgreSQL's 65,535


def insert(tx: Tx, rows: list[tuple[Any, ...]]) -> None:
    """One statement per 500 records: a batch is one round trip on PostgreSQL, where a relaxed
    write runs each statement on its own. (A batch larger than that, a burst of thousands of
    calls in one turn of the event loop, is a few statements; each record is whole either way.)"""
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        tx.execute(_INSERT + ", ".join([_ROW_MARKS] * len(chunk)), [value for row in chunk for value in row])


def purge_before(tx: Tx, cutoff: float) -> int:
    """Delete the records older than ``cutoff`` (epoch seconds); how many went."""
    return int(tx.execute("DELETE FROM audit_events WHERE event_time < ?", (cutoff,)).rowcount or 0)


# The columns LookupEvents may filter on (one at a time, as CloudTrail allows).
LOOKUP_COLUMNS = frozenset(
    {
        "event_id",
        "event_name",
        "read_only",
        "username",
        "resource_type",
        "resource_name",
        "event_source",
        "access_key_id",
    }
)


def lookup(
    tx: Tx,
    account_id: str,
    region: str,
    attribute: tuple[str, Any] | None,
    start: Any,
    end: Any,
    before: int | None,
    limit: int,
) -> list[tuple[Any, ...]]:
    """Up to ``limit`` (``id``, ``record``) rows of one account and region, newest first:
    ``attribute`` a (column of :data:`LOOKUP_COLUMNS`, value) pair, ``start``/``end`` bounds on
    ``event_time`` (inclusive; None: open), ``before`` an ``id`` to page below."""
    where = ["account_id = ?", "region = ?"]
    args: list[Any] = [account_id, region]
    if attribute is not None:
        column, value = attribute
        if column not in LOOKUP_COLUMNS:
            raise ValueError(f"audit_events cannot be looked up by {column!r}")
        where.append(f"{column} = ?")
        args.append(value)
    if start is not None:
        where.append("event_time >= ?")
        args.append(start)
    if end is not None:
        where.append("event_time <= ?")
        args.append(end)
    if before is not None:
        where.append("id < ?")
        args.append(before)
    return tx.all(
        f"SELECT id, record FROM audit_events WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
        [*args, limit],
    )
