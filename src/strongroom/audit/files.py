"""The trail's JSON-lines files, in CloudTrail's layout::

    DIR/AWSLogs/<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/<account>_CloudTrail_<region>_<YYYYMMDDTHH>00Z.jsonl

One file per account, region and hour, opened ``0600`` in folders made ``0700``, appended to and
kept open for its hour (a record of a new hour closes the last hour's files). A record is
appended whole or not at all (``_append_whole``): a full disk never leaves a torn line for the
next append to run into. The database's ``audit_events`` table is the durable copy; these files
are for shipping elsewhere. Retention applies to the table (:meth:`AuditTrail.purge_expired
<strongroom.audit.trail.AuditTrail.purge_expired>`); the files are the operator's to rotate.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from strongroom.audit.records import _line

__all__ = ["TrailFiles"]


def _append_whole(fd: int, data: bytes) -> None:
    """Append all of ``data`` or nothing: a short write (a full disk, a file-size limit) is cut
    back off before the error propagates, so the file never holds a torn record that the next
    append would run into."""
    written = 0
    try:
        while written < len(data):
            written += os.write(fd, data[written:])
    except OSError:
        if written:
            os.ftruncate(fd, os.fstat(fd).st_size - written)
        raise


class TrailFiles:
    """The open files of one trail directory. Thread-safe (appends come from the database's
    writer thread and from the event loop)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._file_lock = threading.Lock()
        self._files: dict[str, int] = {}

    def append(self, records: list[dict[str, Any]], lines: list[bytes] | None = None) -> None:
        """Append to the hour's file of each account and region; files stay open for their hour.
        ``lines``: the records' JSON lines, when already made."""
        by_file: dict[str, list[bytes]] = {}
        for i, r in enumerate(records):
            hour = r["eventTime"][:13]  # 2026-11-22T16
            account, region = r["recipientAccountId"], r["awsRegion"]
            key = f"{account}/{region}/{hour}"
            by_file.setdefault(key, []).append(lines[i] if lines is not None else _line(r))
        with self._file_lock:
            for key, lines in by_file.items():
                fd = self._files.get(key)
                if fd is None:
                    fd = self._open(key)
                _append_whole(fd, b"".join(lines))

    def _open(self, key: str) -> int:
        account, region, hour = key.split("/")
        day = hour[:10].replace("-", "/")
        folder = self.directory / "AWSLogs" / account / "CloudTrail" / region / day
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = hour[:10].replace("-", "") + "T" + hour[11:13]
        path = folder / f"{account}_CloudTrail_{region}_{stamp}00Z.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        for old_key in [k for k in self._files if k.rsplit("/", 1)[1] != hour]:
            os.close(self._files.pop(old_key))  # a new hour: last hour's files are done
        self._files[key] = fd
        return fd

    def close(self) -> None:
        with self._file_lock:
            for fd in self._files.values():
                os.close(fd)
            self._files.clear()
