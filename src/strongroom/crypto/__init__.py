"""Envelope encryption: the master key, the keys it wraps, and AES-256-GCM with associated data.

Three levels, as in KMS and Vault:

* the **master key** (32 random bytes) lives outside the database: in ``DATA_DIR/master.key``
  (mode 0600), in a file the operator names, or in ``STRONGROOM_MASTER_KEY``. Losing it loses
  every secret; the database alone is useless to whoever steals it.
* **keys** (one per account, region and ``KmsKeyId``, plus one for access keys) are random
  32-byte keys stored in the database *wrapped* by the master key, bound to their name by
  associated data so a wrapped key moved to another row does not unwrap.
* every **value** gets its own random data key, wrapped by its key; the value is sealed under the
  data key with the caller's associated data (for a secret value: the ARN and version id).

Ciphertext layout (version 1)::

    0x01 | nonce (12) | wrapped data key (32 + 16) | nonce (12) | ciphertext + tag (16)

Wrapped-key layout: ``0x01 | nonce (12) | key + tag (48)``.

Edge cases: a blob sealed under another master key, with other associated data, or altered in a
single bit raises :class:`DecryptionError`; nothing ever returns partial plaintext. Unwrapped keys
are cached in memory (they never change once written), so the hot read path does one unwrap of
the data key and one decryption.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import hashlib
import hmac
import os
import resource
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.cache import BoundedCache

__all__ = ["DecryptionError", "Keyring", "MasterKey", "harden_process"]

_VERSION = b"\x01"
_NONCE = 12
_KEY = 32
_TAG = 16
_WRAPPED_DK = _KEY + _TAG
_HEADER = 1 + _NONCE + _WRAPPED_DK + _NONCE


class DecryptionError(Exception):
    """A ciphertext or wrapped key that does not open: wrong master key, wrong binding, or tampering."""


class MasterKey:
    """The root of the key hierarchy. Its bytes never leave this object except to derive keys."""

    __slots__ = ("_key", "_aead")

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY:
            raise ValueError("the master key must be exactly 32 bytes")
        self._key = key
        self._aead = AESGCM(key)

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(_KEY))

    @classmethod
    def from_env(cls, text: str) -> MasterKey:
        """From the base64 text of ``STRONGROOM_MASTER_KEY`` (32 bytes once decoded)."""
        return cls(_decode(text, "STRONGROOM_MASTER_KEY"))

    @classmethod
    def from_file(cls, path: Path) -> MasterKey:
        """From a file holding the base64 key. Refuses a file others may read or write."""
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            raise SystemExit(f"the master key file {path} is readable by others (mode {oct(mode)}); "
                             f"run: chmod 600 {path}")
        return cls(_decode(path.read_text(), str(path)))

    @classmethod
    def load_or_create(cls, path: Path) -> MasterKey:
        """The key in ``path``, made (random, mode 0600, fsynced) on first start."""
        if path.exists():
            return cls.from_file(path)
        key = os.urandom(_KEY)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(key).decode() + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        try:
            # link() refuses to replace a key another process wrote first; that one wins.
            os.link(tmp, path)
        except FileExistsError:
            os.unlink(tmp)
            return cls.from_file(path)
        os.unlink(tmp)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return cls(key)

    def derive(self, purpose: bytes) -> bytes:
        """A 32-byte key for one purpose, independent of every other purpose's key."""
        return hmac.new(self._key, b"strongroom derive\x00" + purpose, hashlib.sha256).digest()

    def token_key_material(self) -> bytes:
        return self.derive(b"tokens")

    def wrap(self, key: bytes, name: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, key, _wrap_aad(name))

    def unwrap(self, wrapped: bytes, name: str) -> bytes:
        if len(wrapped) != 1 + _NONCE + _WRAPPED_DK or wrapped[:1] != _VERSION:
            raise DecryptionError(f"the wrapped key {name} is malformed")
        try:
            return self._aead.decrypt(wrapped[1:1 + _NONCE], wrapped[1 + _NONCE:], _wrap_aad(name))
        except InvalidTag:
            raise DecryptionError(f"the key {name} does not unwrap: the master key does not match "
                                  "this database, or the stored key was altered") from None


def _wrap_aad(name: str) -> bytes:
    return b"strongroom key\x00" + name.encode()


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SystemExit(f"the master key in {where} is not base64") from None
    if len(key) != _KEY:
        raise SystemExit(f"the master key in {where} must be 32 bytes, base64-encoded (got {len(key)})")
    return key


class Keyring:
    """Seals and opens values under named keys wrapped by the master key. Thread-safe."""

    # Unwrapped data keys kept for reads (bounded; oldest dropped first). They add no exposure
    # the account keys held above do not already have: those unwrap every data key.
    DATA_KEY_CACHE = 8192
    ACCOUNT_KEY_CACHE = 1024

    def __init__(self, master: MasterKey) -> None:
        self._master = master
        self._open = BoundedCache(self.ACCOUNT_KEY_CACHE)
        self._data_keys = BoundedCache(self.DATA_KEY_CACHE)

    def new_key(self, key_ref: str) -> bytes:
        """A fresh random key for ``key_ref``, wrapped by the master key, for the database."""
        return self._master.wrap(os.urandom(_KEY), key_ref)

    def _aead(self, key_ref: str, wrapped: bytes) -> AESGCM:
        cache_key = (key_ref, wrapped)  # the name too: a wrapped key only opens under its own name
        aead = self._open.get(cache_key)
        if aead is None:
            aead = AESGCM(self._master.unwrap(wrapped, key_ref))
            self._open.put(cache_key, aead)
        return aead

    def encrypt(self, key_ref: str, wrapped: bytes, plaintext: bytes, aad: bytes) -> bytes:
        kek = self._aead(key_ref, wrapped)
        data_key = AESGCM.generate_key(256)
        n1, n2 = os.urandom(_NONCE), os.urandom(_NONCE)
        wrapped_dk = kek.encrypt(n1, data_key, aad)
        return _VERSION + n1 + wrapped_dk + n2 + AESGCM(data_key).encrypt(n2, plaintext, aad)

    def decrypt(self, key_ref: str, wrapped: bytes, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < _HEADER + _TAG or blob[:1] != _VERSION:
            raise DecryptionError("the ciphertext is malformed")
        # The cache is keyed by the key's name, the wrapped data key *and* the associated data, so
        # a data key copied into another row, or a row pointed at another key, still has to unwrap
        # under that row's key, ARN and version first.
        cache_key = (key_ref, blob[:_HEADER - _NONCE], aad)
        try:
            aead = self._data_keys.get(cache_key)
            if aead is None:
                kek = self._aead(key_ref, wrapped)
                aead = AESGCM(kek.decrypt(blob[1:1 + _NONCE], blob[1 + _NONCE:1 + _NONCE + _WRAPPED_DK], aad))
                self._data_keys.put(cache_key, aead)
            return aead.decrypt(blob[_HEADER - _NONCE:_HEADER], blob[_HEADER:], aad)
        except InvalidTag:
            raise DecryptionError("the ciphertext does not open under its key and associated data") from None


def harden_process() -> None:
    """Keep secrets out of core dumps and away from other processes' debuggers (Linux)."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_DUMPABLE = 4
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass
