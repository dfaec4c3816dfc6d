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

SQLite runs reads inline on the calling thread (a point query takes microseconds; a thread hop
costs more) and writes on one writer thread that commits queued writes together ("group
commit"): each write runs in its own savepoint, so one write's failure never undoes another's,
and one fsync acknowledges them all. PostgreSQL runs both on a small pool of threads, one
connection each, and retries serialization failures and deadlocks.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, TypeVar

from strongroom.store.schema import MIGRATIONS

__all__ = [
    "Conflict",
    "Database",
    "PostgresDatabase",
    "SQLiteDatabase",
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


class Database:
    """The interface both engines implement."""

    dialect: str
    url: str

    async def read(self, fn: Callable[[Tx], T], snapshot: bool = True) -> T:
        """Run ``fn`` for a read. With ``snapshot`` (the default) every statement of ``fn`` sees
        one consistent state. ``snapshot=False`` runs each statement on its own (no BEGIN/COMMIT
        round trips): for reads that one statement decides, where a later statement seeing a
        newer state is harmless."""
        raise NotImplementedError

    async def write(self, fn: Callable[[Tx], T], durable: bool = True) -> T:
        return await _hooked_write(lambda run: self.submit_write(run, durable), fn)

    def submit_write(self, fn: Callable[[Tx], T], durable: bool = True) -> Future[T]:
        """``write`` without the coroutine: the write queued, its outcome in the returned future
        (for callers that wait with a callback, such as the audit trail's batches). No write
        hook is taken."""
        raise NotImplementedError

    def read_sync(self, fn: Callable[[Tx], T], snapshot: bool = True) -> T:
        raise NotImplementedError

    def write_sync(self, fn: Callable[[Tx], T]) -> T:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def schema_version(self) -> int:
        return self.read_sync(lambda tx: (tx.one("SELECT max(version) FROM schema_version") or (0,))[0] or 0)


def _migrate(db: Database, types: dict[str, str]) -> None:
    def step(tx: Tx) -> None:
        tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = (tx.one("SELECT max(version) FROM schema_version") or (0,))[0] or 0
        for number, statements in enumerate(MIGRATIONS, start=1):
            if number <= current:
                continue
            if not statements:
                break  # a reserved, not yet written migration: stop before it
            for statement in statements:
                tx.execute(statement.format(**types))
            tx.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))

    db.write_sync(step)


# --------------------------------------------------------------------------------------- SQLite

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)


def _sqlite_connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=256)
    for pragma in _SQLITE_PRAGMAS:
        conn.execute(pragma)
    # Fail closed if the engine did not take the durability settings.
    if path != ":memory:" and not path.startswith("file:"):
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"SQLite refused WAL mode (got {mode!r})")
    if conn.execute("PRAGMA synchronous").fetchone()[0] != 2:
        raise RuntimeError("SQLite refused synchronous=FULL")
    return conn


class _Stop:
    pass


class SQLiteDatabase(Database):
    dialect = "sqlite"
    max_group = 64

    def __init__(self, path: str) -> None:
        self.url = path
        self._path = path
        if path == ":memory:":
            # One shared in-memory database for the reader and the writer connection.
            self._path = f"file:strongroom-{id(self)}?mode=memory&cache=shared"
            self._keepalive = sqlite3.connect(self._path, uri=True, check_same_thread=False)
        self._writer_conn = self._connect()
        self._reader = self._connect()
        self._reader_lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._writer_loop, name="strongroom-sqlite-writer", daemon=True)
        self._thread.start()
        _migrate(self, {"pk": "INTEGER PRIMARY KEY", "blob": "BLOB", "real": "REAL"})
        result = self.read_sync(lambda tx: tx.one("PRAGMA quick_check"))
        if not result or result[0] != "ok":
            raise RuntimeError(f"SQLite database {path} failed its integrity check: {result}")

    def _connect(self) -> sqlite3.Connection:
        if self._path.startswith("file:"):
            conn = sqlite3.connect(
                self._path, uri=True, isolation_level=None, check_same_thread=False, cached_statements=256
            )
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=10000")
            return conn
        return _sqlite_connect(self._path)

    # Reads: inline, one consistent snapshot each.
    def read_sync(self, fn: Callable[[Tx], T], snapshot: bool = True) -> T:
        with self._reader_lock:
            conn = self._reader
            if not snapshot:  # the connection is in autocommit mode: each statement stands alone
                return fn(Tx(conn))
            conn.execute("BEGIN")
            try:
                return fn(Tx(conn))
            finally:
                conn.execute("COMMIT")

    async def read(self, fn: Callable[[Tx], T], snapshot: bool = True) -> T:
        return self.read_sync(fn, snapshot)

    # Writes: queued to the writer thread.
    def submit_write(self, fn: Callable[[Tx], T], durable: bool = True) -> Future[T]:
        future: Future[Any] = Future()
        self._queue.put((fn, future, durable))
        return future

    def write_sync(self, fn: Callable[[Tx], T]) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("write_sync called from the writer thread")
        return self.submit_write(fn).result()

    def _writer_loop(self) -> None:
        conn = self._writer_conn
        tx = Tx(conn)
        mode = "FULL"  # the connection's synchronous setting (_sqlite_connect checked it)
        while True:
            item = self._queue.get()
            if isinstance(item, _Stop):
                return
            batch = [item]
            while len(batch) < self.max_group:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(more, _Stop):
                    self._queue.put(more)
                    break
                batch.append(more)
            results: list[tuple[Future[Any], bool, Any]] = []
            # A group of writes that all waive durability commits without the fsync; one durable
            # write in the group makes the whole commit durable. The setting changes only when
            # the kind of group does (a run of audit batches pays for it once).
            synchronous = "NORMAL" if not any(durable for _fn, _future, durable in batch) else "FULL"
            try:
                if synchronous != mode:
                    conn.execute(f"PRAGMA synchronous={synchronous}")
                    mode = synchronous
                conn.execute("BEGIN IMMEDIATE")
                for fn, future, _durable in batch:
                    conn.execute("SAVEPOINT op")
                    try:
                        value = fn(tx)
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        conn.execute("ROLLBACK TO op")
                        conn.execute("RELEASE op")
                        results.append((future, False, exc))
                    else:
                        conn.execute("RELEASE op")
                        results.append((future, True, value))
                conn.execute("COMMIT")
            except BaseException as exc:  # noqa: BLE001 - the commit failed: nothing is acknowledged
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                for _fn, future, _durable in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for future, ok, value in results:
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def close(self) -> None:
        self._queue.put(_Stop())
        self._thread.join(timeout=10)
        self._writer_conn.close()
        self._reader.close()


# ----------------------------------------------------------------------------------- PostgreSQL


class _PgTx(Tx):
    lock_clause = " FOR UPDATE"
    dialect = "postgresql"

    def __init__(self, conn: Any, cursor: Any) -> None:
        super().__init__(conn)
        import psycopg

        self._cursor = cursor
        self._errors = (psycopg.errors.IntegrityError,)

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        _check_text(params)
        try:
            return self._conn.execute(self._sql(sql), params)
        except self._errors as exc:
            raise Conflict(str(exc)) from None

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self._fetch(sql, params).fetchone()  # type: ignore[no-any-return]

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._fetch(sql, params).fetchall()  # type: ignore[no-any-return]

    def _fetch(self, sql: str, params: Sequence[Any]) -> Any:
        """A query whose rows are read at once: on the connection's one reused cursor (a new
        cursor per query costs about a quarter of psycopg's CPU for a point read)."""
        _check_text(params)
        try:
            return self._cursor.execute(self._sql(sql), params)
        except self._errors as exc:
            raise Conflict(str(exc)) from None

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            _check_text(row)
        try:
            with self._conn.cursor() as cur:
                cur.executemany(self._sql(sql), rows)
        except self._errors as exc:
            raise Conflict(str(exc)) from None


def _check_text(params: Sequence[Any]) -> None:
    # Checked here, before the statement, so the transaction stays usable and the caller learns why.
    for value in params:
        if isinstance(value, str) and "\x00" in value:
            raise Unstorable("text values cannot contain the character U+0000")


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, url: str, pool_size: int = 8) -> None:
        import psycopg

        self.url = url
        self._psycopg = psycopg
        self._local = threading.local()
        self._conns: list[Any] = []
        self._conns_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="strongroom-pg")
        self._repeatable_read = psycopg.IsolationLevel.REPEATABLE_READ
        # Migrations from several nodes at once: one takes the advisory lock, the others wait.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(7406551)")
            try:
                _migrate(
                    self,
                    {
                        "pk": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                        "blob": "BYTEA",
                        "real": "DOUBLE PRECISION",
                    },
                )
            finally:
                conn.execute("SELECT pg_advisory_unlock(7406551)")

    def _conn(self, autocommit: bool = False) -> tuple[Any, Any]:
        """This thread's connection (autocommit or not) and the cursor reused for its queries."""
        attr = "autocommit_conn" if autocommit else "conn"
        found = getattr(self._local, attr, None)
        if found is None or found[0].closed:
            # The autocommit connection serves one-statement reads and the writes that waive
            # durability (see the module docstring): its commits do not wait for the WAL flush.
            conn = self._psycopg.connect(self.url, autocommit=autocommit)
            if autocommit:
                conn.execute("SET synchronous_commit TO off")
            found = (conn, conn.cursor())
            setattr(self._local, attr, found)
            with self._conns_lock:
                self._conns = [c for c in self._conns if not c.closed] + [conn]
        return found

    def _run(self, fn: Callable[[Tx], T], read_only: bool, snapshot: bool = True, durable: bool = True) -> T:
        errors = self._psycopg.errors
        for attempt in range(8):
            conn, cursor = self._conn(autocommit=not snapshot or not durable)
            try:
                if not snapshot or not durable:  # no BEGIN/COMMIT round trips: each statement stands alone
                    return fn(_PgTx(conn, cursor))
                # A read sees one snapshot (REPEATABLE READ): under PostgreSQL's default READ
                # COMMITTED each statement has its own, and ListSecretVersionIds could pair the
                # labels before a write with the versions after it. Writes keep READ COMMITTED:
                # they lock the secret's row first, and then see the latest state.
                level = self._repeatable_read if read_only else None
                if conn.isolation_level != level:
                    conn.isolation_level = level  # no round trip: it changes the next BEGIN
                with conn.transaction():
                    return fn(_PgTx(conn, cursor))
            except (errors.SerializationFailure, errors.DeadlockDetected):
                if attempt == 7:
                    raise
            except self._psycopg.OperationalError:
                # A dropped connection: reconnect once and try again.
                conn.close()
                if attempt >= 1:
                    raise
        raise AssertionError("unreachable")

    def read_sync(self, fn: Callable[[Tx], T], snapshot: bool = True) -> T:
        return self._run(fn, True, snapshot)

    def write_sync(self, fn: Callable[[Tx], T]) -> T:
        return self._run(fn, False)

    async def read(self, fn: Callable[[Tx], T], snapshot: bool = True) -> T:
        return await asyncio.wrap_future(self._pool.submit(self._run, fn, True, snapshot))

    def submit_write(self, fn: Callable[[Tx], T], durable: bool = True) -> Future[T]:
        return self._pool.submit(self._run, fn, False, True, durable)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._conns_lock:
            for conn in self._conns:
                conn.close()


def open_database(url: str) -> Database:
    """``postgresql://...`` opens PostgreSQL; anything else is a SQLite path (or ``:memory:``)."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url)
    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///") :]
    if url != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(url)), exist_ok=True)
    return SQLiteDatabase(url)
