"""Envelope encryption: the master key, the keys it wraps, and AES-256-GCM with associated data.

The modules:

* :mod:`strongroom.crypto.cipher` -- the layouts, :class:`Keyring` (seals and opens values under
  named keys wrapped by the keyring's members) and :class:`DecryptionError`;
* :mod:`strongroom.crypto.master` -- :class:`MasterKey`, a master key held in memory;
* :mod:`strongroom.crypto.harden` -- :func:`harden_process`;
* :mod:`strongroom.crypto.providers`, :mod:`~strongroom.crypto.select`,
  :mod:`~strongroom.crypto.command`, :mod:`~strongroom.crypto.pkcs11` -- where master keys come from;
* :mod:`strongroom.crypto.ring` -- the keyring's members, rotation and retirement.

This package only re-exports.
"""

from __future__ import annotations

import typing

from strongroom.crypto.cipher import DecryptionError, Keyring, UnknownMember, member_of
from strongroom.crypto.harden import harden_process
from strongroom.crypto.master import MasterKey, fingerprint_of

__all__ = ["DecryptionError", "Keyring", "MasterKey", "UnknownMember", "fingerprint_of", "harden_process", "member_of"]


def __getattr__(name: str) -> typing.Any:
    # ``strongroom.crypto.open_keyring``: the one way a process gets its keyring (it needs the
    # database, which imports this module, hence the late import).
    if name == "open_keyring":
        from strongroom.crypto.ring import open_keyring

        return open_keyring
    raise AttributeError(name)
