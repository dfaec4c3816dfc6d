"""The data directory: checked before anything is read from it, and held by one server at a time.

Contracts:

* :func:`prepare` makes a missing data directory (mode 0700) and refuses one that is a file, one
  this process cannot write, and one that group or others can enter or list (the ``chmod`` to run
  is in the message, as for ``master.key``). The database and its WAL/SHM files are brought to
  0600 if an older version left them looser; one this user cannot write is refused (SQLite would
  open it read-only and fail at the first write, after "listening").
* :class:`DataDirLock` is ``flock`` on ``DATA_DIR/strongroom.lock`` held for the life of the
  process, with the holder's PID and command written into the file. A second ``serve`` on the
  same SQLite data directory is refused and told which PID holds it; so are the offline commands
  that write what a server would be writing (``restore``, ``db upgrade``). The lock is released
  by the kernel when the process ends, however it ends (kill -9 included): a stale lock file is
  harmless, only a held ``flock`` counts. The descriptor is close-on-exec, so function workers a
  server starts do not inherit it and cannot keep it after the server is gone.
* PostgreSQL mode takes no lock: several nodes share one database by design.

Every refusal is a :class:`DataDirError` whose text is one line for the operator.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

__all__ = ["DataDirError", "DataDirLock", "prepare"]

LOCK_NAME = "strongroom.lock"


class DataDirError(Exception):
    """A data directory strongroom must not use; the text says why and what to do."""


def prepare(data_dir: Path) -> None:
    """Make ``data_dir`` (0700) if missing; refuse a file, an unwritable or an open directory."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        raise DataDirError(f"the data directory {data_dir} is not a directory") from None
    except NotADirectoryError:
        raise DataDirError(f"the data directory {data_dir} cannot be made: a part of its path is a file") from None
    except PermissionError:
        raise DataDirError(f"the data directory {data_dir} cannot be made: permission denied") from None
    except OSError as exc:
        raise DataDirError(f"the data directory {data_dir} cannot be made: {exc.strerror}") from None
    info = os.stat(data_dir)
    if not stat.S_ISDIR(info.st_mode):
        raise DataDirError(f"the data directory {data_dir} is not a directory")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise DataDirError(
            f"the data directory {data_dir} can be entered by group or others (mode {oct(mode)}); "
            f"run: chmod 700 {data_dir}"
        )
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise DataDirError(f"the data directory {data_dir} is not writable by this user (uid {os.getuid()})")
    for name in ("strongroom.db", "strongroom.db-wal", "strongroom.db-shm"):
        _tighten(data_dir / name)
        # SQLite opens a read-only file read-only without a word and fails at the first write,
        # after the server said it was listening.
        if (data_dir / name).exists() and not os.access(data_dir / name, os.R_OK | os.W_OK):
            raise DataDirError(f"the database file {data_dir / name} is read-only for this user (uid {os.getuid()})")


def _tighten(path: Path) -> None:
    try:
        mode = stat.S_IMODE(os.stat(path, follow_symlinks=False).st_mode)
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
    except FileNotFoundError:
        pass
    except PermissionError:
        raise DataDirError(
            f"{path} is not this user's (uid {os.getuid()}) and is open to others; run: chmod 600 {path}"
        ) from None


class DataDirLock:
    """An exclusive ``flock`` on ``DATA_DIR/strongroom.lock`` for as long as this object lives."""

    def __init__(self, data_dir: Path, command: str = "serve") -> None:
        self.path = data_dir / LOCK_NAME
        self.data_dir = data_dir
        try:
            # os.open makes the descriptor close-on-exec (PEP 446): workers never inherit the lock.
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise DataDirError(f"the lock file {self.path} cannot be opened: {exc.strerror}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(self._fd)
            os.close(self._fd)
            self._fd = None
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise DataDirError(f"the lock file {self.path} cannot be locked: {exc.strerror}") from None
            raise DataDirError(_in_use(data_dir, holder, command)) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()} {command}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> tuple[str, str]:
    """(PID, command) the holder wrote; ``("unknown", "")`` if it has not written them yet."""
    try:
        text = os.pread(fd, 200, 0).decode("ascii", "replace").strip().split(None, 1)
    except OSError:
        text = []
    pid = text[0] if text and text[0].isdigit() else "unknown"
    return pid, text[1].strip() if len(text) > 1 else ""


def _in_use(data_dir: Path, holder: tuple[str, str], command: str) -> str:
    pid, by = holder
    who = f"another server (PID {pid})" if by in ("serve", "") else f"`strongroom {by}` (PID {pid})"
    text = f"the data directory {data_dir} is in use by {who}"
    return text if command == "serve" else f"{text}; stop it before running `strongroom {command}`"
