"""The audit trail: one CloudTrail-format record per API call and per service event.

Records go to the ``audit_events`` table (the durable copy, what ``LookupEvents`` reads) and,
when a directory is given, to JSON-lines files in CloudTrail's layout::

    DIR/AWSLogs/<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/<account>_CloudTrail_<region>_<YYYYMMDDTHH>00Z.jsonl

(:mod:`strongroom.audit.files`). The record shape is :mod:`strongroom.audit.records`'s, the SQL
:mod:`strongroom.store.audit_events`'s, and ``LookupEvents`` :mod:`strongroom.services.cloudtrail`'s.

**Fail closed.** ``record`` returns only once the record is committed; the server answers a call
only after that, so a read whose record cannot be written does not return the secret (the caller
gets ``InternalServiceError``). Writes are refused up front while the trail is failing, and a
Secrets Manager write's record is inserted in the write's own transaction (the pipeline passes
:meth:`AuditTrail.insert` as the store's ``write_hook``): the change and its record commit
together, so no change is ever applied without its record.

**Group commit.** Records from concurrent requests are written together, one transaction per
batch, so auditing every GetSecretValue costs a share of one commit, not a commit each.

**Reads are committed, not fsynced.** A batch of records of read-only calls commits with
``durable=False`` (see ``store.database``): committed and handed to the operating system before
the answer leaves, so a server crash or kill loses none, and a failing disk still stops the
answer; only a power failure can lose the last few milliseconds of them (the log is written in
order, so never one older than the last durable commit). Each fsync cost a read about 40 µs of
CPU when batches are small. Records of writes, refusals of writes and service events are always
durable; ``durable_reads`` (``STRONGROOM_AUDIT_DURABLE_READS=1``) makes reads durable too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from time import perf_counter
from typing import Any

from strongroom import clock
from strongroom.audit.files import TrailFiles
from strongroom.audit.records import _line, _row
from strongroom.store import Database, Tx, audit_events

__all__ = ["AuditTrail"]

log = logging.getLogger("strongroom.audit")


class AuditTrail:
    """Durable, group-committed audit records; see the module docstring."""

    def insert(self, tx: Tx, record: dict[str, Any]) -> None:
        """Add ``record`` to the database in the caller's transaction (a write and its record then
        commit together); :meth:`append_file` writes its JSON line once that transaction committed."""
        audit_events.insert(tx, [_row(record)])

    def append_file(self, record: dict[str, Any]) -> None:
        if self._files is not None:
            self._files.append([record])

    def __init__(
        self, db: Database, directory: Path | None = None, retention_days: float = 365.0, durable_reads: bool = False
    ) -> None:
        self.db = db
        self.durable_reads = durable_reads
        self.directory = directory
        self.retention_days = retention_days
        self.healthy = True
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._flushing = False
        self._files = TrailFiles(directory) if directory is not None else None
        self._in_flight = 0  # records handed to the database, not yet committed
        # Each batch's time from submission to its calls resuming, on the loop's thread (the metrics).
        self.on_flush: Callable[[float], None] | None = None

    @property
    def queue_depth(self) -> int:
        """Records waiting for their commit: queued, or in a batch being committed."""
        return len(self._pending) + self._in_flight

    async def record(self, record: dict[str, Any]) -> None:
        """Return once ``record`` is committed; raise if it cannot be."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((record, future))
        if not self._flushing:
            # Records made in this turn of the event loop go together; flushes may overlap (the
            # writer thread then commits them together), so no call waits for an earlier batch.
            self._flushing = True
            loop.call_soon(self._start_flush)
        await future

    def _start_flush(self) -> None:
        """Hand the batch to the database; its calls resume when the commit's outcome is back.
        (A callback, not a task: a task and a wrapped future per batch cost more than the insert.)"""
        self._flushing = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        self._in_flight += len(batch)
        records = [r for r, _ in batch]
        appended = False
        durable = self.durable_reads or not all(r["readOnly"] and r["eventType"] == "AwsApiCall" for r in records)
        loop = asyncio.get_running_loop()
        try:
            # A record that cannot be serialized fails its batch closed instead of leaving every
            # call in the batch waiting forever on its future.
            lines = [_line(r) for r in records]
            rows = [_row(r, line) for r, line in zip(records, lines, strict=False)]
        except Exception as exc:  # noqa: BLE001 - every waiting call fails closed
            self._finish(batch, exc, None)
            return

        def tx_fn(tx: Tx) -> None:
            nonlocal appended
            audit_events.insert(tx, rows)
            if self._files is not None and not appended:
                # In the same step as the insert, on the writer's thread: no second hand-off. Once
                # only: PostgreSQL runs tx_fn again when a connection drops at its COMMIT.
                self._files.append(records, lines)
                appended = True

        started = perf_counter()

        def done(outcome: Future[None]) -> None:  # on the database's thread
            loop.call_soon_threadsafe(self._finish, batch, outcome.exception(), started)

        self.db.submit_write(tx_fn, durable=durable).add_done_callback(done)

    def _finish(
        self,
        batch: list[tuple[dict[str, Any], asyncio.Future[None]]],
        error: BaseException | None,
        started: float | None,
    ) -> None:
        self._in_flight -= len(batch)
        if started is not None and self.on_flush is not None:
            self.on_flush(perf_counter() - started)
        if error is not None:
            self.healthy = False
            log.error("audit records could not be written: %s", type(error).__name__)
            for _, future in batch:
                if not future.done():
                    future.set_exception(RuntimeError("audit trail unavailable"))
            return
        self.healthy = True
        for _, future in batch:
            if not future.done():
                future.set_result(None)

    def close(self) -> None:
        if self._files is not None:
            self._files.close()

    async def purge_expired(self) -> int:
        cutoff = clock.now() - self.retention_days * 86400

        return await self.db.write(lambda tx: audit_events.purge_before(tx, cutoff))
