"""Backups: one consistent, encrypted snapshot of a whole database, restorable anywhere.

The snapshot is logical (every row of every table, in dependency order), so a backup of SQLite
restores into PostgreSQL and the other way round. It is read in one transaction (a consistent
point in time: SQLite's snapshot, PostgreSQL's ``REPEATABLE READ``).

File layout: ``STRONGROOM-BACKUP-1\\n`` then frames ``length (4) | nonce (12) | AES-256-GCM``.
Each frame seals up to 1 MiB of JSON lines under a key derived from the master key, with the
frame's index and a last-frame flag as associated data, so frames cannot be reordered, dropped or
truncated without the restore noticing. Secret values inside are still the database's ciphertext:
restoring needs the same master key.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto import MasterKey
from strongroom.store.database import Database, Tx

__all__ = ["TABLES", "BackupError", "backup", "restore", "rewrap_keys"]

MAGIC = b"STRONGROOM-BACKUP-1\n"
FRAME = 1 << 20
# Parents before children, so foreign keys hold while rows go back in.
TABLES = ["kms_keys", "access_keys", "secrets", "versions", "stages", "policies", "functions", "rotations",
          "rotation_steps", "audit_events", "iam_principals", "iam_inline_policies", "function_invocations"]
_IDENTITY = {"secrets", "rotations", "rotation_steps", "audit_events", "function_invocations"}


class BackupError(Exception):
    pass


def _encode(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b": base64.b64encode(bytes(value)).decode()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "$b" in value:
        return base64.b64decode(value["$b"])
    return value


def _aad(index: int, last: bool) -> bytes:
    return b"strongroom backup\x00" + struct.pack(">Q?", index, last)


def backup(db: Database, master: MasterKey, out: BinaryIO, progress: Callable[[str, int], None] | None = None) -> int:
    """Write a snapshot of ``db`` to ``out``; answers the number of rows."""
    aead = AESGCM(master.derive(b"backup"))
    out.write(MAGIC)
    buffer: list[bytes] = []
    size = 0
    index = 0

    def flush(last: bool) -> None:
        nonlocal buffer, size, index
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, b"".join(buffer), _aad(index, last))
        out.write(struct.pack(">I", len(sealed)) + nonce + sealed)
        buffer, size, index = [], 0, index + 1

    def emit(item: Any) -> None:
        nonlocal size
        line = orjson.dumps(item) + b"\n"
        buffer.append(line)
        size += len(line)
        if size >= FRAME:
            flush(False)

    def tx_fn(tx: Tx) -> int:
        if tx.dialect == "postgresql":
            tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        emit({"schema": tx.one("SELECT max(version) FROM schema_version")[0]})  # type: ignore[index]
        total = 0
        for table in TABLES:
            cursor = tx.execute(f"SELECT * FROM {table}")
            columns = [d[0] for d in cursor.description]
            emit({"table": table, "columns": columns})
            count = 0
            for row in cursor.fetchall():
                emit([_encode(v) for v in row])
                count += 1
            total += count
            if progress is not None:
                progress(table, count)
        return total

    total = db.read_sync(tx_fn)
    flush(True)
    return total  # type: ignore[no-any-return]


def _lines(source: BinaryIO, master: MasterKey) -> Iterator[bytes]:
    aead = AESGCM(master.derive(b"backup"))
    if source.read(len(MAGIC)) != MAGIC:
        raise BackupError("not a strongroom backup")
    index = 0
    pending: bytes | None = None
    while True:
        header = source.read(4)
        if not header:
            raise BackupError("the backup is truncated")
        length = struct.unpack(">I", header)[0]
        nonce, sealed = source.read(12), source.read(length)
        if len(sealed) != length:
            raise BackupError("the backup is truncated")
        for last in (False, True):
            try:
                plain = aead.decrypt(nonce, sealed, _aad(index, last))
                break
            except InvalidTag:
                continue
        else:
            raise BackupError("the backup does not open with this master key, or it was altered")
        index += 1
        data = (pending or b"") + plain
        *complete, pending = data.split(b"\n")
        yield from complete
        if last:
            if pending:
                raise BackupError("the backup ends in the middle of a line")
            return


def restore(db: Database, master: MasterKey, source: BinaryIO,
            progress: Callable[[str, int], None] | None = None) -> int:
    """Load a snapshot into an empty database (same schema version); answers the number of rows."""
    lines = _lines(source, master)
    first = orjson.loads(next(lines))
    current = db.schema_version()
    if first.get("schema") != current:
        raise BackupError(f"the backup is of schema {first.get('schema')}, this database is at {current}")

    def tx_fn(tx: Tx) -> int:
        for table in ("secrets", "access_keys", "functions", "iam_principals"):
            if tx.one(f"SELECT 1 FROM {table} LIMIT 1") is not None:
                raise BackupError(f"the target database is not empty ({table}); restore into a fresh one")
        table, insert, count, total = None, "", 0, 0
        for line in lines:
            item = orjson.loads(line)
            if isinstance(item, dict):
                if table is not None and progress is not None:
                    progress(table, count)
                table, columns = item["table"], item["columns"]
                if table not in TABLES:
                    raise BackupError(f"unknown table {table} in the backup")
                insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
                count = 0
                continue
            tx.execute(insert, [_decode(v) for v in item])
            count += 1
            total += 1
        if table is not None and progress is not None:
            progress(table, count)
        if tx.dialect == "postgresql":
            for name in _IDENTITY:
                tx.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                           f"COALESCE((SELECT max(id) FROM {name}), 0) + 1, false)")
        return total

    return db.write_sync(tx_fn)  # type: ignore[no-any-return]


def backup_file(db: Database, master: MasterKey, path: Path, progress: Callable[[str, int], None] | None = None) -> int:
    """A backup written atomically (a temporary file renamed), mode 0600."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        total = backup(db, master, out, progress)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return total


def rewrap_keys(db: Database, old: MasterKey, new: MasterKey) -> int:
    """Re-wrap every stored key from ``old`` to ``new`` in one transaction; answers how many.

    Keys already wrapped by ``new`` (an interrupted earlier run) are left as they are, so running
    it again is safe.
    """
    from strongroom.crypto import DecryptionError

    def tx_fn(tx: Tx) -> int:
        count = 0
        for account_id, region, key_ref, wrapped in tx.all("SELECT account_id, region, key_ref, wrapped FROM kms_keys"):
            wrapped = bytes(wrapped)
            try:
                new.unwrap(wrapped, key_ref)
                continue  # done before
            except DecryptionError:
                pass
            plain = old.unwrap(wrapped, key_ref)
            tx.execute("UPDATE kms_keys SET wrapped = ? WHERE account_id = ? AND region = ? AND key_ref = ?",
                       (new.wrap(plain, key_ref), account_id, region, key_ref))
            count += 1
        return count

    return db.write_sync(tx_fn)  # type: ignore[no-any-return]
