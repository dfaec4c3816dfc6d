"""The SQLite engine of :class:`~strongroom.store.database.Database` (the default).

Reads run inline on the calling thread (a point query takes microseconds; a thread hop costs
more), on one reader connection, each in its own ``BEGIN``/``COMMIT`` snapshot. Writes run on one
writer thread that commits queued writes together ("group commit"): each write runs in its own
savepoint, so one write's failure never undoes another's, and one fsync acknowledges them all. A
group in which every write waived durability commits with ``synchronous=NORMAL``; one durable
write makes the whole group's commit durable (``synchronous=FULL``).

**Several processes on one file** (``serve --workers``, ``shared_writers=True``): each process's
writer thread takes an ``flock`` on ``<database>-writers`` around each group's transaction. Without
it the processes' writers meet on SQLite's own write lock, whose busy handler sleeps (1 ms, then
2, 5, ...) instead of waiting for the lock's release: with two workers, reads (each waiting on its
audit record's commit) came out slower than with one. The kernel wakes a waiting ``flock`` at
once, and drops it when its process dies, so a killed worker never leaves the others locked out.

Edge cases: a connection that refuses WAL mode or ``synchronous=FULL`` fails the start
(``RuntimeError``), as does a database whose ``PRAGMA quick_check`` is not ``ok``; ``:memory:``
is one shared in-memory database for the reader and the writer connections; ``write_sync`` from
the writer thread itself is refused (it would wait on itself).
"""

from __future__ import annotations

import fcntl
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from strongroom.store.database import Database, Tx, _migrate

__all__ = ["SQLiteDatabase"]

T = TypeVar("T")

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

    def __init__(self, path: str, shared_writers: bool = False) -> None:
        self.url = path
        self._path = path
        # Opened by this process (not inherited): flock excludes other open files, not this one.
        self._writers_lock = (
            os.open(f"{path}-writers", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            if shared_writers and path != ":memory:"
            else None
        )
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

    def pool_stats(self) -> dict[str, int]:
        # One writer thread (its queue: writes waiting for a group commit); reads run inline.
        return {"threads": 1, "connections": 2, "queued": self._queue.qsize()}

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
                if self._writers_lock is not None:
                    fcntl.flock(self._writers_lock, fcntl.LOCK_EX)
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
            finally:
                if self._writers_lock is not None:
                    fcntl.flock(self._writers_lock, fcntl.LOCK_UN)
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
        if self._writers_lock is not None:
            os.close(self._writers_lock)
