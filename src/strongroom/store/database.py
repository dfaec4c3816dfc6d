"""The database seam: transactions on SQLite or PostgreSQL behind one small interface.

Contract (every engine):

* ``read(fn)`` / ``write(fn)`` run ``fn(tx)`` in one transaction and return its result. If ``fn``
  raises, the transaction is rolled back and the exception propagates unchanged.
* A write is acknowledged (its coroutine returns) only after its transaction is durably
  committed: SQLite in WAL mode with ``synchronous=FULL``, PostgreSQL with ``synchronous_commit``
  left on. The one exception is asked for by name: ``write(fn, durable=False)`` is acknowledged
  once its transaction is committed and written to the operating system, before the disk has it.
  SQLite commits it with ``synchronous=NORMAL``; PostgreSQL runs it on the autocommit connection,
  whose session has ``synchronous_commit`` off, each statement its own transaction (so give it one
  statement). A crash of the server loses none of it; a power failure can lose the last such
  commits, never a durable one, and never one older than the last durable commit (the log is
  written in order). The audit trail uses it for records of reads.
* Writers to one secret serialize: a write transaction that locks a secret with
  ``tx.lock_clause`` (``FOR UPDATE`` on PostgreSQL) keeps other writers out until it ends; SQLite
  has a single writer thread, so writes never interleave there at all.
* SQL is written once with ``?`` placeholders; the PostgreSQL engine translates them.
* A unique or foreign-key violation raises :class:`Conflict`. On PostgreSQL the transaction is
  dead after that, so a caller catches it only to answer with an error.

Edge cases every engine honours (the storage conformance suite, tests/storage/, checks them):

* A text value holding U+0000 raises :class:`Unstorable` before the statement runs, on both
  engines (PostgreSQL text cannot hold it), so the transaction stays usable.
* ``fn`` may run more than once: PostgreSQL retries it on a serialization failure or deadlock, and
  once on a dropped connection. It must not have effects outside ``tx``.
* A :class:`WriteHook` set in the task's ``write_hook`` runs at the end of the *next* write, in its
  transaction; it is discarded when that write does not commit. ``submit_write`` takes no hook.
* ``read(fn, snapshot=False)`` runs each statement on its own: for reads one statement decides.
* Migrations (:data:`strongroom.store.schema.MIGRATIONS`) run at open, once, whatever the number
  of nodes opening the database together; an empty migration is a reserved one and stops them.

The engines: :mod:`strongroom.store.sqlite` (reads inline, one writer thread with group commit)
and :mod:`strongroom.store.postgres` (a small pool of threads, one connection each).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextvars import ContextVar
from typing import Any, TypeVar

from strongroom.store.schema import MIGRATIONS

__all__ = [
    "Conflict",
    "Database",
    "Tx",
    "Unstorable",
    "WriteHook",
    "open_database",
    "write_hook",
]

T = TypeVar("T")


class WriteHook:
    """A step to run at the end of the *next* write transaction of the current task, in that same
    transaction. The request pipeline sets one (``write_hook``) so that a write and its audit
    record commit together or not at all. ``write`` takes it (it runs once), calls it inside the
    transaction, and calls :meth:`discard` when that transaction did not commit."""

    def __call__(self, tx: Tx, returned: Any) -> None:
        raise NotImplementedError

    def discard(self) -> None:
        """The transaction the step ran in was rolled back (or never ran)."""


write_hook: ContextVar[WriteHook | None] = ContextVar("strongroom_write_hook", default=None)


def _take_hook(fn: Callable[[Tx], T]) -> tuple[Callable[[Tx], T], WriteHook | None]:
    hook = write_hook.get()
    if hook is None:
        return fn, None
    write_hook.set(None)

    def run(tx: Tx) -> T:
        result = fn(tx)
        hook(tx, result)
        return result

    return run, hook


async def _hooked_write(submit: Callable[[Callable[[Tx], T]], Future[T]], fn: Callable[[Tx], T]) -> T:
    """Submit a write with the task's pending :class:`WriteHook`, if any, run in its transaction."""
    run, hook = _take_hook(fn)
    try:
        return await asyncio.wrap_future(submit(run))
    except BaseException:
        if hook is not None:
            hook.discard()
        raise


Row = tuple[Any, ...]


class Conflict(Exception):
    """A uniqueness or reference rule of the schema refused a write."""


class Unstorable(ValueError):
    """A value one of the engines cannot store (PostgreSQL text cannot hold U+0000)."""


class Tx:
    """One open transaction. Rows come back as plain tuples."""

    lock_clause = ""
    dialect = "sqlite"

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        _check_text(params)  # the same rule on both engines
        try:
            return self._conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from None

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self.execute(sql, params).fetchone()  # type: ignore[no-any-return]

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.execute(sql, params).fetchall()  # type: ignore[no-any-return]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            _check_text(row)
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from None


def _check_text(params: Sequence[Any]) -> None:
    # Checked here, before the statement, so the transaction stays usable and the caller learns why.
    for value in params:
        if isinstance(value, str) and "\x00" in value:
            raise Unstorable("text values cannot contain the character U+0000")


class Database:
    """The interface both engines implement (see the module docstring for the contract)."""

    dialect: str
    url: str

    # The engines override read, read_sync and submit_write with these same defaults: the base
    # class's are never used (pragma: an equivalent mutant).
    async def read(self, fn: Callable[[Tx], T], snapshot: bool = True) -> T:  # pragma: no mutate
        """Run ``fn`` for a read. With ``snapshot`` (the default) every statement of ``fn`` sees
        one consistent state. ``snapshot=False`` runs each statement on its own (no BEGIN/COMMIT
        round trips): for reads that one statement decides, where a later statement seeing a
        newer state is harmless."""
        raise NotImplementedError

    async def write(self, fn: Callable[[Tx], T], durable: bool = True) -> T:
        """Run ``fn`` in one write transaction (with the task's pending :class:`WriteHook`);
        return once it is committed, durably unless ``durable=False``."""
        return await _hooked_write(lambda run: self.submit_write(run, durable), fn)

    def submit_write(self, fn: Callable[[Tx], T], durable: bool = True) -> Future[T]:  # pragma: no mutate
        """``write`` without the coroutine: the write queued, its outcome in the returned future
        (for callers that wait with a callback, such as the audit trail's batches). No write
        hook is taken."""
        raise NotImplementedError

    def read_sync(self, fn: Callable[[Tx], T], snapshot: bool = True) -> T:  # pragma: no mutate
        """``read`` for callers outside the event loop (the CLI, start-up, worker threads)."""
        raise NotImplementedError

    def write_sync(self, fn: Callable[[Tx], T]) -> T:
        """A durable ``write`` for callers outside the event loop. No write hook is taken."""
        raise NotImplementedError

    def close(self) -> None:
        """Finish the queued writes and close every connection."""
        raise NotImplementedError

    def pool_stats(self) -> dict[str, int]:
        """The engine's threads and connections, and the work queued for them (the metrics)."""
        return {}

    def schema_version(self) -> int:
        return self.read_sync(_max_version)


def _max_version(tx: Tx) -> int:
    row = tx.one("SELECT coalesce(max(version), 0) FROM schema_version")
    assert row is not None  # an aggregate answers one row, whatever the table holds
    (version,) = row
    return int(version)


def _migrate(db: Database, types: dict[str, str]) -> None:
    def step(tx: Tx) -> None:
        tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = _max_version(tx)
        for number, statements in enumerate(MIGRATIONS, start=1):
            if number <= current:
                continue
            if not statements:
                break  # a reserved, not yet written migration: stop before it
            for statement in statements:
                tx.execute(statement.format(**types))
            tx.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))

    db.write_sync(step)


def open_database(url: str, pool_size: int | None = None, shared_writers: bool = False) -> Database:
    """``postgresql://...`` opens PostgreSQL (``pool_size`` threads, each with its connections;
    the engine's default when None); anything else is a SQLite path (or ``:memory:``), whose
    writers take turns with other processes' when ``shared_writers`` (``serve --workers``)."""
    # The engines import this module (the contract), hence the late imports; PostgreSQL's also
    # keeps psycopg unloaded for a SQLite server.
    if url.startswith(("postgresql://", "postgres://")):
        from strongroom.store.postgres import PostgresDatabase

        return PostgresDatabase(url) if pool_size is None else PostgresDatabase(url, pool_size)
    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///") :]
    if url != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(url)), exist_ok=True)
    from strongroom.store.sqlite import SQLiteDatabase

    return SQLiteDatabase(url, shared_writers)
