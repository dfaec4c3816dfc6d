"""Backups: one consistent, encrypted snapshot of a whole database, restorable anywhere.

The snapshot is logical (every row of every table, in dependency order), so a backup of SQLite
restores into PostgreSQL and the other way round. It is read in one transaction (a consistent
point in time: SQLite's snapshot, PostgreSQL's ``REPEATABLE READ``).

File layout (version 2)::

    STRONGROOM-BACKUP-2\\n | header length (4) | header (JSON) | frames

The header (readable, not secret) records the keyring as it was: every member's id, fingerprint,
provider and state, and which member wrapped this backup's key; and that key, random for each
backup, wrapped by that member (so a key held in a token, which never gives out bytes to derive
from, backs up too). Frames are ``length (4) | nonce (12) | AES-256-GCM``, each sealing up to
1 MiB of JSON lines under the backup key, with a hash of the header, the frame's index and a
last-frame flag as associated data, so the header cannot be edited and frames cannot be
reordered, dropped or truncated without the restore noticing. The ``keyring`` table is in the
snapshot, and secret values inside are still the database's ciphertext: restoring needs the
master keys the backup's keyring names, found by fingerprint (a rotation after the backup does
not matter while the older key is kept). Version 1 backups (a key derived from the master key
bytes, before the keyring) still restore with a file or environment key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto import DecryptionError, Keyring
from strongroom.store.database import Database, Tx

__all__ = ["TABLES", "BackupError", "backup", "restore"]

MAGIC_V1 = b"STRONGROOM-BACKUP-1\n"
MAGIC = b"STRONGROOM-BACKUP-2\n"
_BACKUP_KEY_REF = "strongroom:backup"
FRAME = 1 << 20
# Parents before children, so foreign keys hold while rows go back in.
TABLES = [
    "keyring",
    "kms_keys",
    "access_keys",
    "secrets",
    "versions",
    "stages",
    "policies",
    "functions",
    "rotations",
    "rotation_steps",
    "audit_events",
    "iam_principals",
    "iam_inline_policies",
    "function_invocations",
]
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


def _aad(index: int, last: bool, bound: bytes = b"") -> bytes:
    return b"strongroom backup\x00" + bound + struct.pack(">Q?", index, last)


def _keyring_rows(tx: Tx) -> list[dict[str, Any]]:
    return [
        {"id": r[0], "fingerprint": r[1], "kind": r[2], "description": r[3], "state": r[4]}
        for r in tx.all("SELECT id, fingerprint, kind, description, state FROM keyring ORDER BY id")
    ]


def backup(db: Database, keyring: Keyring, out: BinaryIO, progress: Callable[[str, int], None] | None = None) -> int:
    """Write a snapshot of ``db`` to ``out``; answers the number of rows."""
    key = AESGCM.generate_key(256)
    header = orjson.dumps(
        {
            "keyring": db.read_sync(_keyring_rows),
            "member": keyring.active,
            "wrapped_key": base64.b64encode(keyring.wrap_key(_BACKUP_KEY_REF, key)).decode(),
        }
    )
    bound = hashlib.sha256(header).digest()
    aead = AESGCM(key)
    out.write(MAGIC + struct.pack(">I", len(header)) + header)
    buffer: list[bytes] = []
    size = 0
    index = 0

    def flush(last: bool) -> None:
        nonlocal buffer, size, index
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, b"".join(buffer), _aad(index, last, bound))
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
    return total


def _open_key(source: BinaryIO, providers: list[Any]) -> tuple[AESGCM, bytes]:
    """The backup's key, opened by whichever of ``providers`` its keyring names (by fingerprint)."""
    magic = source.read(len(MAGIC))
    if magic == MAGIC_V1:
        for provider in providers:
            derive = getattr(provider, "derive", None)  # only file and environment keys have bytes to derive from
            if derive is not None:
                return AESGCM(derive(b"backup")), b""  # version 1 bound nothing more
        raise BackupError(
            "this backup predates the keyring: it opens only with a master key file or STRONGROOM_MASTER_KEY"
        )
    if magic != MAGIC:
        raise BackupError("not a strongroom backup")
    raw = source.read(4)
    length = struct.unpack(">I", raw)[0] if len(raw) == 4 else 0
    header_bytes = source.read(length)
    try:
        header = orjson.loads(header_bytes)
        rows, member, wrapped = header["keyring"], int(header["member"]), base64.b64decode(header["wrapped_key"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise BackupError("the backup's header is damaged") from None
    by_fp = {p.fingerprint: p for p in providers}
    members = {int(r["id"]): by_fp[r["fingerprint"]] for r in rows if r.get("fingerprint") in by_fp}
    if member not in members:
        wanted: dict[str, Any] = next((r for r in rows if r.get("id") == member), {})
        raise BackupError(
            f"the backup does not open with this master key: it was made under member {member} "
            f"(fingerprint {wanted.get('fingerprint')}, {wanted.get('description')}); give that key "
            f"with --master-key-file FILE, STRONGROOM_MASTER_KEY, --master-key-command or --pkcs11-*"
        )
    try:
        key = Keyring(members, member).unwrap_key(_BACKUP_KEY_REF, wrapped)
    except DecryptionError:
        raise BackupError("the backup does not open with this master key, or it was altered") from None
    return AESGCM(key), hashlib.sha256(header_bytes).digest()


def _lines(source: BinaryIO, providers: list[Any]) -> Iterator[bytes]:
    aead, bound = _open_key(source, providers)
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
                plain = aead.decrypt(nonce, sealed, _aad(index, last, bound))
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


def restore(
    db: Database, providers: list[Any], source: BinaryIO, progress: Callable[[str, int], None] | None = None
) -> int:
    """Load a snapshot into an empty database (same schema version); answers the number of rows.

    ``providers``: the master keys this process can reach (the backup's keyring picks by
    fingerprint). A keyring the target made for itself while empty is replaced by the backup's.
    """
    lines = _lines(source, providers)
    first = orjson.loads(next(lines))
    current = db.schema_version()
    if first.get("schema") != current:
        raise BackupError(f"the backup is of schema {first.get('schema')}, this database is at {current}")

    def tx_fn(tx: Tx) -> int:
        for name in ("secrets", "access_keys", "functions", "iam_principals", "kms_keys"):
            if tx.one(f"SELECT 1 FROM {name} LIMIT 1") is not None:
                raise BackupError(f"the target database is not empty ({name}); restore into a fresh one")
        tx.execute("DELETE FROM keyring")
        table: str | None = None
        insert, count, total = "", 0, 0
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
                tx.execute(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"COALESCE((SELECT max(id) FROM {name}), 0) + 1, false)"
                )
        return total

    return db.write_sync(tx_fn)


def backup_file(db: Database, keyring: Keyring, path: Path, progress: Callable[[str, int], None] | None = None) -> int:
    """A backup written atomically (a temporary file renamed), mode 0600."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        total = backup(db, keyring, out, progress)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return total
