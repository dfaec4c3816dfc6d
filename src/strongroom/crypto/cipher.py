"""Envelope encryption: the master key, the keys it wraps, and AES-256-GCM with associated data.

Three levels, as in KMS and Vault:

* the **master keys** live outside the database, one per keyring member (a provider: the file
  ``DATA_DIR/master.key`` or one the operator names, ``STRONGROOM_MASTER_KEY``, ... see
  :mod:`strongroom.crypto.providers`). Losing them loses every secret; the database alone is
  useless to whoever steals it.
* **keys** (one per account, region and ``KmsKeyId``, plus strongroom's own: access keys,
  pagination tokens) are random 32-byte keys stored in the database *wrapped* by a master key, bound to their name by
  associated data so a wrapped key moved to another row does not unwrap.
* every **value** gets its own random data key, wrapped by its key; the value is sealed under the
  data key with the caller's associated data (for a secret value: the ARN and version id).

Ciphertext layout (version 1)::

    0x01 | nonce (12) | wrapped data key (32 + 16) | nonce (12) | ciphertext + tag (16)

Wrapped-key layout (what the database stores)::

    0x02 | keyring member id (2, big-endian) | the member's wrapping of the key

The member's wrapping is the provider's own (for file and environment keys: ``0x01 | nonce (12) |
key + tag (48)``), made with the key's name *and the member id* as associated data, so a header
edited to name another member does not unwrap. Keys wrapped before the keyring existed are the
bare provider wrapping (``0x01 ...``, no member id, no id in the associated data): they belong to
member 1, the key every older database was made with, and are re-wrapped by the first rotation.
See :mod:`strongroom.crypto.ring` for members, rotation and retirement, and docs/keys.md.

Edge cases: a blob sealed under another master key, with other associated data, or altered in a
single bit raises :class:`DecryptionError`; nothing ever returns partial plaintext. Unwrapped keys
are cached in memory (they never change once written), so the hot read path does one unwrap of
the data key and one decryption.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.cache import BoundedCache

if TYPE_CHECKING:
    from strongroom.crypto.providers import MasterKeyProvider

__all__ = ["DecryptionError", "Keyring", "UnknownMember", "member_of"]

_VERSION = b"\x01"
_WRAP_V2 = b"\x02"
_NONCE = 12
_KEY = 32
_TAG = 16
_WRAPPED_DK = _KEY + _TAG
_HEADER = 1 + _NONCE + _WRAPPED_DK + _NONCE


class DecryptionError(Exception):
    """A ciphertext or wrapped key that does not open: wrong master key, wrong binding, or tampering."""


class UnknownMember(DecryptionError):
    """A wrapped key names a keyring member this process does not hold (yet)."""

    def __init__(self, member: int) -> None:
        super().__init__(f"master key member {member} is not loaded in this process")
        self.member = member


def member_of(wrapped: bytes) -> int:
    """The keyring member a wrapped key names (1 for a key wrapped before the keyring)."""
    if wrapped[:1] == _WRAP_V2 and len(wrapped) > 3:
        return int.from_bytes(wrapped[1:3], "big")
    return 1


def _member_name(key_ref: str, member: int) -> str:
    return f"{key_ref}\x00member {member}"


def _wrap_aad(name: str) -> bytes:
    return b"strongroom key\x00" + name.encode()


class Keyring:
    """Seals and opens values under named keys wrapped by the keyring's members. Thread-safe.

        ``members`` maps member ids to providers; the ``active`` one wraps every new key; a wrapped
        key is opened by the member its header names. Nodes learn of members added by another process
        through :meth:`learn` (see :mod:`strongroom.crypto.ring`); a wrapped key naming a member not
        loaded yet is tried with the keys ``on_unknown()`` answers (the process's key sources, read
    again) before :class:`UnknownMember` is raised.
    """

    # Unwrapped data keys kept for reads (bounded; oldest dropped first). They add no exposure
    # the account keys held above do not already have: those unwrap every data key.
    DATA_KEY_CACHE = 8192  # pragma: no mutate (a bound on memory: no answer depends on it)
    ACCOUNT_KEY_CACHE = 1024  # pragma: no mutate (a bound on memory: no answer depends on it)

    def __init__(self, members: Any, active: int = 1, on_unknown: Callable[[], list[Any]] | None = None) -> None:
        if not isinstance(members, dict):
            members = {1: members}
        self._members: dict[int, MasterKeyProvider] = dict(members)
        if active not in self._members:
            raise ValueError(f"the active member {active} is not loaded")
        self._active = active
        self._on_unknown = on_unknown
        self._open: BoundedCache[tuple[str, bytes], AESGCM] = BoundedCache(self.ACCOUNT_KEY_CACHE)
        self._data_keys: BoundedCache[tuple[str, bytes, bytes], AESGCM] = BoundedCache(self.DATA_KEY_CACHE)

    @property
    def active(self) -> int:
        return self._active

    @property
    def members(self) -> dict[int, Any]:
        return dict(self._members)

    def learn(self, members: dict[int, Any], active: int | None) -> None:
        """Add members (never drops one: a key wrapped by it may still be cached somewhere) and
        switch the active member when it is loaded."""
        merged = {**self._members, **members}
        if active is not None and active in merged:
            self._members, self._active = merged, active
        else:
            self._members = merged

    member_of = staticmethod(member_of)

    def wrap_key(self, key_ref: str, key: bytes) -> bytes:
        member = self._active
        return _WRAP_V2 + member.to_bytes(2, "big") + self._members[member].wrap(key, _member_name(key_ref, member))

    def unwrap_key(self, key_ref: str, wrapped: bytes) -> bytes:
        if wrapped[:1] != _WRAP_V2:
            return self._open_with(1, wrapped, key_ref)  # before the keyring: member 1, no id bound
        # A header and at most a byte: refused as malformed here or by the member, in other words.
        if len(wrapped) < 4:  # pragma: no mutate (the bound moved by one is refused by the member)
            raise DecryptionError(f"the wrapped key {key_ref} is malformed")
        member = int.from_bytes(wrapped[1:3], "big")
        return self._open_with(member, wrapped[3:], _member_name(key_ref, member))

    def _open_with(self, member: int, inner: bytes, name: str) -> bytes:
        provider = self._members.get(member)
        if provider is not None:
            return provider.unwrap(inner, name)
        # A member added since this process last read the keyring: look among the keys it can
        # reach for one that opens this key. The associated data binds the member id, so a key
        # that opens it is that member's (authenticated, not guessed).
        held = {p.fingerprint for p in self._members.values()}
        for candidate in self._on_unknown() if self._on_unknown is not None else []:
            if candidate.fingerprint in held:
                continue
            try:
                plain = candidate.unwrap(inner, name)
            except DecryptionError:
                continue
            self.learn({member: candidate}, None)
            return plain  # type: ignore[no-any-return]
        raise UnknownMember(member)

    def new_key(self, key_ref: str) -> bytes:
        """A fresh random key for ``key_ref``, wrapped by the active member, for the database."""
        return self.wrap_key(key_ref, os.urandom(_KEY))

    def _aead(self, key_ref: str, wrapped: bytes) -> AESGCM:
        cache_key = (key_ref, wrapped)  # the name too: a wrapped key only opens under its own name
        aead = self._open.get(cache_key)
        if aead is None:
            aead = AESGCM(self.unwrap_key(key_ref, wrapped))
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
        cache_key = (key_ref, blob[: _HEADER - _NONCE], aad)  # pragma: no mutate (a longer key only caches less)
        try:
            aead = self._data_keys.get(cache_key)
            if aead is None:
                kek = self._aead(key_ref, wrapped)
                aead = AESGCM(kek.decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE : 1 + _NONCE + _WRAPPED_DK], aad))
                self._data_keys.put(cache_key, aead)
            return aead.decrypt(blob[_HEADER - _NONCE : _HEADER], blob[_HEADER:], aad)
        except InvalidTag:
            raise DecryptionError("the ciphertext does not open under its key and associated data") from None
