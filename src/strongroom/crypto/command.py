"""The command provider: a master key fetched from an external secret store by a command.

``--master-key-command 'vault kv get -field=key secret/strongroom'`` (any program: a cloud
secret manager's CLI, ``pass``, ``gpg --decrypt``...) is split like a shell would (``shlex``) and
run with no shell, no standard input, the server's environment and a timeout. Its standard output
must be the base64 of 32 bytes, on one line; blank lines and ``#`` comment lines are skipped, so
the text of a ``master.key`` with one key works as it is. The key is then held in memory exactly
as a key from ``master.key`` is: wrapping and unwrapping are :class:`strongroom.crypto.MasterKey`'s
own (AES-256-GCM, the key's name as associated data, the same wire layout), and its fingerprint is
the keyring's ``fingerprint_of``, so a database can move between the file, the environment and a
command without re-wrapping anything: the same key is the same keyring member.

The command runs once, when the provider is made (at start-up, or when an operator command opens
storage): a secret store that is down then is a start-up refusal, never a failed request later.

Every failure is one :class:`KeyProviderError` line: the command not found or not executable, a
non-zero exit (with the first line of what it wrote to stderr), a timeout, output that is not a
base64 32-byte key. What the command printed on stdout is never repeated: it may be a key.
"""

from __future__ import annotations

import base64
import binascii
import shlex
import subprocess

from strongroom.crypto import MasterKey
from strongroom.crypto.select import KeyProviderError

__all__ = ["CommandProvider"]

_KEY = 32


class CommandProvider:
    """A :class:`~strongroom.crypto.providers.MasterKeyProvider` whose key a command prints."""

    kind = "command"
    TIMEOUT = 30.0

    def __init__(self, command: str, timeout: float | None = None) -> None:
        self.description = f"the output of the command {command!r}"
        self._master = MasterKey(_run(command, timeout or self.TIMEOUT))
        # The keyring's own fingerprint_of (MasterKey computes it): the same key from a file, the
        # environment or a command is one member, so a database moves between them unchanged.
        self.fingerprint = self._master.fingerprint

    def wrap(self, key: bytes, name: str) -> bytes:
        return self._master.wrap(key, name)

    def unwrap(self, wrapped: bytes, name: str) -> bytes:
        return self._master.unwrap(wrapped, name)

    # What else a master key in memory offers (the pagination key is derived from it today).
    def derive(self, purpose: bytes) -> bytes:
        return self._master.derive(purpose)


def _run(command: str, timeout: float) -> bytes:
    where = f"the master key command {command!r}"
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise KeyProviderError(f"{where} cannot be parsed: {exc}") from None
    if not argv:
        raise KeyProviderError("the master key command is empty")
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise KeyProviderError(f"{where} cannot be run: {argv[0]} was not found") from None
    except PermissionError:
        raise KeyProviderError(f"{where} cannot be run: {argv[0]} is not executable by this user") from None
    except subprocess.TimeoutExpired:
        raise KeyProviderError(f"{where} did not finish in {timeout:g} s") from None
    except OSError as exc:
        raise KeyProviderError(f"{where} cannot be run: {exc.strerror}") from None
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        reason = f": {said[0][:200]}" if said else " (it wrote nothing on stderr)"
        raise KeyProviderError(f"{where} exited with status {done.returncode}{reason}")
    # The text of a key file works too (`cat master.key`): blank and `#` comment lines are skipped.
    lines = [line.strip() for line in done.stdout.splitlines()]
    lines = [line for line in lines if line and not line.startswith(b"#")]
    if len(lines) > 1:
        raise KeyProviderError(f"{where} printed {len(lines)} keys; it must print one")
    try:
        key = base64.b64decode(lines[0] if lines else b"", validate=True)
    except (binascii.Error, ValueError):
        raise KeyProviderError(f"{where} did not print a base64 key") from None
    if not key:
        raise KeyProviderError(f"{where} printed nothing")
    if len(key) != _KEY:
        raise KeyProviderError(f"{where} printed a key of {len(key)} bytes; a master key is 32 bytes, base64-encoded")
    return key
