"""A master key held in this process's memory, and the public fingerprint of key material.

:class:`MasterKey` is the file and environment providers' key (``DATA_DIR/master.key``,
``STRONGROOM_MASTER_KEY``) and the command provider's: it wraps keys with AES-256-GCM under the
wrapped-key layout of :mod:`strongroom.crypto.cipher` (``0x01 | nonce (12) | key + tag (48)``),
the key's name as associated data. A wrapped key that is malformed, altered or made under another
master key raises :class:`~strongroom.crypto.cipher.DecryptionError`.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto.cipher import _KEY, _NONCE, _VERSION, _WRAPPED_DK, DecryptionError, _wrap_aad

__all__ = ["MasterKey", "fingerprint_of"]

_FINGERPRINT = b"strongroom fingerprint"


def fingerprint_of(key: bytes) -> str:
    """A stable, public id of 32 bytes of key material: it reveals nothing of the key."""
    return hmac.new(key, _FINGERPRINT, hashlib.sha256).hexdigest()[:16]


class MasterKey:
    """A master key held in this process's memory: the file and environment providers of
    :class:`strongroom.crypto.providers.MasterKeyProvider`. Its bytes never leave this object."""

    __slots__ = ("_aead", "_key", "description", "fingerprint", "kind")

    def __init__(self, key: bytes, kind: str = "memory", description: str = "in memory") -> None:
        if len(key) != _KEY:
            raise ValueError("the master key must be exactly 32 bytes")
        self._key = key
        self._aead = AESGCM(key)
        self.kind = kind
        self.description = description
        self.fingerprint = fingerprint_of(key)

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(_KEY))

    def derive(self, purpose: bytes) -> bytes:
        """A 32-byte key for one purpose. Only for opening backups made before the keyring
        (version 1 backups were sealed under ``derive(b"backup")``); nothing new uses it, so a
        key that never leaves its token (PKCS#11) serves every purpose."""
        return hmac.new(self._key, b"strongroom derive\x00" + purpose, hashlib.sha256).digest()

    def wrap(self, key: bytes, name: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._aead.encrypt(nonce, key, _wrap_aad(name))

    def unwrap(self, wrapped: bytes, name: str) -> bytes:
        if len(wrapped) != 1 + _NONCE + _WRAPPED_DK or wrapped[:1] != _VERSION:
            raise DecryptionError(f"the wrapped key {name} is malformed")
        try:
            return self._aead.decrypt(wrapped[1 : 1 + _NONCE], wrapped[1 + _NONCE :], _wrap_aad(name))
        except InvalidTag:
            raise DecryptionError(
                f"the key {name} does not unwrap: the master key does not match "
                "this database, or the stored key was altered"
            ) from None
