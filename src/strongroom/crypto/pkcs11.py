"""The PKCS#11 provider: a master key that never leaves its token (an HSM, or SoftHSM2 for tests).

Wrap is ``C_Encrypt`` and unwrap ``C_Decrypt`` with ``CKM_AES_GCM`` *inside the token*: a random
12-byte IV from this process, the key's name as associated data (``strongroom key\\0`` + name, as
:class:`strongroom.crypto.MasterKey` binds it), a 128-bit tag. The wrapped key has MasterKey's
wire layout, ``0x01 | IV (12) | key + tag (48)``, so the database does not care which provider
wrapped a key; only the token can open it. strongroom never holds the master key's bytes.

The key is made on the token, never in software, by ``strongroom master-key pkcs11-init``
(:func:`create_key`): AES-256, ``CKA_TOKEN``, ``CKA_PRIVATE``, ``CKA_SENSITIVE`` true and
``CKA_EXTRACTABLE`` false (the token refuses to reveal or export it, even wrapped), usable for
encrypt and decrypt only, with a random 16-byte ``CKA_ID``.

Fingerprint: the first 16 hex digits of SHA-256(``strongroom pkcs11 key\\0`` + ``CKA_ID``). The
``CKA_ID`` is random and made with the key, and travels with it when an HSM cluster or backup
copies the key to another token, so the fingerprint is stable across processes, sessions and
tokens holding the same key; a new key (even under the same label) gets a new one. It is computed
from a public attribute, not from the key, so it leaks nothing, and needs no cryptographic
operation (a key check value would need ECB or CBC on the key, which it is not allowed to do).
A key made by another tool without ``CKA_ID`` is fingerprinted by the token's serial and the key's
label instead (stable, but it does not follow the key to another token).

Sessions: one read-only session, logged in once, used under a lock (a PKCS#11 session is not
for concurrent use); wraps and unwraps are rare, as the keyring caches unwrapped keys. A session
the token dropped (a restart, a removed device) is opened again once.

Errors are one :class:`~strongroom.crypto.select.KeyProviderError` line (module missing, no such
token or key, wrong PIN); a blob that does not open under the key raises
:class:`strongroom.crypto.DecryptionError`, as every provider's unwrap does.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from strongroom.crypto import DecryptionError
from strongroom.crypto.select import KeyProviderError

__all__ = ["PKCS11Provider", "create_key"]

_VERSION = b"\x01"
_NONCE = 12
_KEY = 32
_TAG = 16


def _aad(name: str) -> bytes:
    return b"strongroom key\x00" + name.encode()


def _library(module_path: str) -> Any:
    import pkcs11

    if not os.path.exists(module_path):
        raise KeyProviderError(f"the PKCS#11 module {module_path} does not exist")
    try:
        return pkcs11.lib(module_path)
    except Exception as exc:  # noqa: BLE001 - a bad .so raises RuntimeError, OSError or a PKCS11Error
        raise KeyProviderError(
            f"the PKCS#11 module {module_path} cannot be loaded: {exc or type(exc).__name__}"
        ) from None


def _open_session(module_path: str, token_label: str, pin: str, rw: bool = False) -> tuple[Any, Any]:
    import pkcs11
    from pkcs11 import exceptions as p11

    lib = _library(module_path)
    try:
        token = lib.get_token(token_label=token_label)
    except p11.NoSuchToken:
        raise KeyProviderError(f"the PKCS#11 module {module_path} has no token labelled {token_label!r}") from None
    except p11.MultipleTokensReturned:
        raise KeyProviderError(
            f"the PKCS#11 module {module_path} has several tokens labelled {token_label!r}"
        ) from None
    try:
        return token, token.open(user_pin=pin, rw=rw)
    except p11.UserAlreadyLoggedIn:
        # Login is per process and token: another session of this process already logged in.
        return token, token.open(rw=rw)
    except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
        raise KeyProviderError(f"the PIN in STRONGROOM_PKCS11_PIN is wrong for the token {token_label!r}") from None
    except p11.PinLocked:
        raise KeyProviderError(f"the token {token_label!r} is locked after too many wrong PINs") from None
    except pkcs11.PKCS11Error as exc:
        raise KeyProviderError(f"the token {token_label!r} cannot be opened: {type(exc).__name__}") from None


def _fingerprint(token: Any, key: Any, key_label: str) -> str:
    from pkcs11 import Attribute
    from pkcs11 import exceptions as p11

    try:
        key_id = bytes(key[Attribute.ID] or b"")
    except p11.PKCS11Error:
        key_id = b""
    material = key_id or (b"serial\x00" + bytes(token.serial or b"") + b"\x00label\x00" + key_label.encode())
    return hashlib.sha256(b"strongroom pkcs11 key\x00" + material).hexdigest()[:16]


def create_key(module_path: str, token_label: str, pin: str, key_label: str) -> str:
    """Make the master key on the token (refused if one has this label); answer its fingerprint."""
    import pkcs11
    from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass
    from pkcs11 import exceptions as p11

    token, session = _open_session(module_path, token_label, pin, rw=True)
    try:
        try:
            session.get_key(object_class=ObjectClass.SECRET_KEY, label=key_label)
            raise KeyProviderError(f"the token {token_label!r} already holds a key labelled {key_label!r}")
        except p11.NoSuchKey:
            pass
        except p11.MultipleObjectsReturned:
            raise KeyProviderError(f"the token {token_label!r} already holds keys labelled {key_label!r}") from None
        try:
            key = session.generate_key(
                KeyType.AES,
                256,
                label=key_label,
                id=os.urandom(16),
                store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.WRAP: False,
                    Attribute.UNWRAP: False,
                    Attribute.SIGN: False,
                    Attribute.VERIFY: False,
                    Attribute.DERIVE: False,
                },
            )
        except pkcs11.PKCS11Error as exc:
            raise KeyProviderError(f"the token {token_label!r} did not make the key: {type(exc).__name__}") from None
        return _fingerprint(token, key, key_label)
    finally:
        session.close()


class PKCS11Provider:
    """A :class:`~strongroom.crypto.providers.MasterKeyProvider` whose key stays on a PKCS#11 token."""

    kind = "pkcs11"

    def __init__(self, module_path: str, token_label: str, pin: str, key_label: str) -> None:
        self.description = f"key {key_label!r} on PKCS#11 token {token_label!r} ({module_path})"
        self._args = (module_path, token_label, pin)
        self._key_label = key_label
        self._lock = threading.Lock()
        self._session: Any = None
        self._key: Any = None
        self._open()
        self.fingerprint = _fingerprint(self._token, self._key, key_label)

    def _open(self) -> None:
        from pkcs11 import KeyType, ObjectClass
        from pkcs11 import exceptions as p11

        module_path, token_label, pin = self._args
        self._token, session = _open_session(module_path, token_label, pin)
        try:
            key = session.get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=self._key_label)
        except p11.NoSuchKey:
            session.close()
            raise KeyProviderError(
                f"the token {token_label!r} holds no AES key labelled {self._key_label!r}; make one "
                f"with: strongroom master-key pkcs11-init"
            ) from None
        except p11.MultipleObjectsReturned:
            session.close()
            raise KeyProviderError(
                f"the token {token_label!r} holds several keys labelled {self._key_label!r}"
            ) from None
        self._session, self._key = session, key

    def _call(self, fn: Any) -> Any:
        """``fn(key)`` under the lock; a session the token dropped is opened again, once."""
        from pkcs11 import exceptions as p11

        with self._lock:
            try:
                return fn(self._key)
            except (
                p11.SessionClosed,
                p11.SessionHandleInvalid,
                p11.DeviceRemoved,
                p11.TokenNotPresent,
                p11.KeyHandleInvalid,
                p11.ObjectHandleInvalid,
                p11.UserNotLoggedIn,
            ):
                self._open()
                return fn(self._key)

    def wrap(self, key: bytes, name: str) -> bytes:
        from pkcs11 import GCMParams, Mechanism

        iv = os.urandom(_NONCE)
        sealed = self._call(
            lambda k: k.encrypt(key, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, _aad(name), _TAG * 8))
        )
        return _VERSION + iv + bytes(sealed)

    def unwrap(self, wrapped: bytes, name: str) -> bytes:
        import pkcs11
        from pkcs11 import GCMParams, Mechanism

        if len(wrapped) != 1 + _NONCE + _KEY + _TAG or wrapped[:1] != _VERSION:
            raise DecryptionError(f"the wrapped key {name} is malformed")
        iv, sealed = wrapped[1 : 1 + _NONCE], wrapped[1 + _NONCE :]
        try:
            return bytes(
                self._call(
                    lambda k: k.decrypt(
                        sealed, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, _aad(name), _TAG * 8)
                    )
                )
            )
        except pkcs11.PKCS11Error:
            # The token says only that the tag does not verify (EncryptedDataInvalid on SoftHSM2,
            # FunctionFailed on some HSMs): another key, another name, or altered bytes.
            raise DecryptionError(
                f"the key {name} does not unwrap under {self.description}: the master key does not "
                "match this database, or the stored key was altered"
            ) from None

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = self._key = None
