"""Master key providers: where the keyring's members live, and the one factory that finds them.

A provider holds one master key and does two things with it: wrap a 32-byte key under associated
data (the wrapped key's name and keyring member id), and unwrap. Nothing else in strongroom ever
sees master key material, so a provider may keep its key where it cannot be read at all (a
PKCS#11 token: ``crypto/pkcs11.py``; an external secret store: ``crypto/command.py``).

Built in here:

* **file**: ``DATA_DIR/master.key`` (or ``--master-key-file``), mode 0600, one base64 key per
  line; blank lines and ``#`` comments are ignored. A file from before the keyring holds one
  line and is read unchanged. ``strongroom master-key rotate`` appends a line (the whole file
  rewritten to a temporary file, fsynced, renamed over, directory fsynced), so the file holds
  every member this node can open. Which line is which member is not written anywhere: the
  database's ``keyring`` table names each member's fingerprint, and a key is the member whose
  fingerprint it has.
* **env**: ``STRONGROOM_MASTER_KEY``, one base64 key, or several separated by spaces, commas or
  newlines (``#`` comment lines skipped, so ``"$(cat master.key)"`` works).

:class:`KeySources` is the factory: ``load()`` answers every key this process can reach (the
external providers named by ``--master-key-command`` or ``--pkcs11-*`` first, then the
environment, then the file), ``generate()`` makes a new member in the file (never while an
external provider is named), and ``places()`` says where it looked, for refusals.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import re
import stat
from pathlib import Path
from typing import Any, Protocol

from strongroom.crypto import MasterKey

__all__ = ["KeySources", "KeyringError", "MasterKeyProvider", "read_key_file"]

_KEY = 32


class MasterKeyProvider(Protocol):
    kind: str  # "file" | "env" | "command" | "pkcs11"
    description: str  # where the key lives, for status and errors (no secret material)
    fingerprint: str  # stable id of the key material across processes

    def wrap(self, key: bytes, name: str) -> bytes: ...  # name = associated data binding
    def unwrap(self, wrapped: bytes, name: str) -> bytes: ...  # raises DecryptionError


class KeyringError(SystemExit):
    """An operator mistake about master keys: one line, a non-zero exit, no traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"the master key in {where} is not base64") from None
    if len(key) != _KEY:
        raise KeyringError(f"the master key in {where} must be 32 bytes, base64-encoded (got {len(key)})")
    return key


def read_key_file(path: Path) -> list[bytes]:
    """Every key in a key file. Refuses a file others may read or write, or one that is not a file."""
    try:
        st = os.stat(path)
    except PermissionError:
        raise KeyringError(f"the master key file {path} cannot be read by this user") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyringError(f"the master key file {path} is not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise KeyringError(
            f"the master key file {path} is readable by others (mode {oct(mode)}); run: chmod 600 {path}"
        )
    try:
        text = path.read_text()
    except (PermissionError, UnicodeDecodeError) as exc:
        raise KeyringError(f"the master key file {path} cannot be read: {exc}") from None
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            keys.append(_decode(line, f"{path} (line {number})"))
    return keys


def _write_atomically(path: Path, text: str, replace: bool) -> bool:
    """Write ``text`` to ``path`` through a fsynced temporary file. With ``replace`` false, a file
    another process wrote first wins (link() refuses to replace it): answers False then."""
    tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
    finally:
        if tmp.exists():
            os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True


class KeySources:
    """Where this process finds master keys (``settings``: :class:`strongroom.config.Settings`)."""

    ENV = "STRONGROOM_MASTER_KEY"

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.dev = bool(settings.dev)
        self.explicit_file = settings.master_key_file is not None
        self.file: Path = settings.master_key_file or settings.data_dir / "master.key"
        self.env_text: str | None = settings.master_key_env
        # Keys held outside the data directory (--master-key-command, --pkcs11-*): opened once,
        # since load() runs every second and must not re-run a command or open a token session.
        from strongroom.crypto.select import providers_from_settings

        self.external: list[Any] = [] if self.dev else providers_from_settings(settings)

    def places(self) -> str:
        where = [f"the file {self.file}"]
        where[:0] = [p.description for p in self.external]
        if self.env_text is not None:
            where.insert(0, f"the environment variable {self.ENV}")
        return " and ".join(where)

    def load(self) -> list[Any]:
        """Every key this process can reach, each once (by fingerprint). Reads the file again each
        time: a node learns of a key the operator copied in without a restart."""
        found: list[Any] = list(self.external)
        if self.env_text is not None:
            # The text of a key file works too ($(cat master.key)): comment lines are skipped.
            text = "\n".join(line for line in self.env_text.splitlines() if not line.strip().startswith("#"))
            for part in re.split(r"[\s,]+", text.strip()):
                if part:
                    found.append(MasterKey(_decode(part, self.ENV), "env", f"environment variable {self.ENV}"))
        if not self.dev:
            if self.file.exists():
                found += [MasterKey(key, "file", f"file {self.file}") for key in read_key_file(self.file)]
            elif self.explicit_file and not found:
                raise KeyringError(f"the master key file {self.file} does not exist (--master-key-file)")
        # The external provider (PKCS#11, command) comes first: it is the one a new keyring starts
        # with. A key found here that the keyring does not list becomes the next member at `master-key rotate`,
        # which is how a keyring moves from one provider to another.
        unique: dict[str, Any] = {}
        for provider in found:
            unique.setdefault(provider.fingerprint, provider)
        return list(unique.values())

    def generate(self) -> Any:
        """A new random key, made durable where this process keeps keys, before anything uses it.

        The file is created (mode 0600) or a line appended; comment lines record when and the
        fingerprint, so an operator can tell the lines apart. Refused when the operator named a
        key held elsewhere (a token, a secret store): a key made in software then would be a key
        outside the HSM that nobody asked for. Those keys are made in their store and adopted.
        """
        if self.external:
            raise KeyringError(
                f"no new key is made in software while the master key is held in "
                f"{self.external[0].description}; {self.new_key_hint()}"
            )
        if self.dev:
            return MasterKey(os.urandom(_KEY), "memory", "in memory (--dev)")
        key = os.urandom(_KEY)
        provider = MasterKey(key, "file", f"file {self.file}")
        when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        line = f"# fingerprint {provider.fingerprint}, added {when}\n{base64.b64encode(key).decode()}\n"
        try:
            if self.file.exists():
                old = self.file.read_text()
                _write_atomically(self.file, old + ("" if old.endswith("\n") or not old else "\n") + line, True)
            elif not _write_atomically(self.file, line, False):
                return None  # another process made the file first: the caller loads it
        except OSError as exc:
            raise KeyringError(f"cannot write the master key file {self.file}: {exc.strerror or exc}") from None
        return provider

    def new_key_hint(self) -> str:
        """How to make a new key in the named external store, for refusals."""
        kind = self.external[0].kind if self.external else "file"
        if kind == "pkcs11":
            return (
                "make a new key on the token first (strongroom master-key pkcs11-init --pkcs11-key-label NEW), "
                "then give both labels: --pkcs11-key-label NEW --pkcs11-key-label CURRENT"
            )
        if kind == "command":
            return (
                "store a new key in the secret store and name it with --master-key-command, the current one "
                "still reachable (STRONGROOM_MASTER_KEY or the key file) until every key is re-wrapped"
            )
        return "run it without --master-key-command or --pkcs11-* to add a key to the file"
