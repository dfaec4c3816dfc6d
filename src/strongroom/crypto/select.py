"""Which master key provider the options name: the one place that turns options into a provider.

``provider_from_options`` answers ``None`` when no external provider is named (the key is then
the file's or ``STRONGROOM_MASTER_KEY``'s, as before), a :class:`~strongroom.crypto.command.
CommandProvider` for ``--master-key-command``, or a :class:`~strongroom.crypto.pkcs11.
PKCS11Provider` for ``--pkcs11-module`` (with ``--pkcs11-token-label``, ``--pkcs11-key-label``
and the PIN from ``STRONGROOM_PKCS11_PIN``, read by strongroom.config). Both at once, a PKCS#11
option without the module, or no PIN are refused in one line. Modules are imported only when
named, so a server that uses neither never loads ``pkcs11``.

``providers_from_settings`` answers every external provider the settings name, in order: none,
the command's, or one PKCS#11 key per ``--pkcs11-key-label`` (the option may be repeated, all
labels on the one token). Several labels are how a keyring moves from one token key to another:
the old key must still unwrap while :func:`strongroom.crypto.ring.rotate` re-wraps under the new
one (docs/key-providers.md).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_PKCS11_KEY_LABEL", "KeyProviderError", "provider_from_options", "providers_from_settings"]

DEFAULT_PKCS11_KEY_LABEL = "strongroom-master"


class KeyProviderError(SystemExit):
    """A master key provider that cannot be used: one line for the operator, exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def provider_from_options(
    *,
    master_key_command: str | None = None,
    pkcs11_module: str | None = None,
    pkcs11_token_label: str | None = None,
    pkcs11_key_label: str | None = None,
    pkcs11_pin: str | None = None,
) -> Any:
    """The provider the options name, or None for the file / environment key."""
    pkcs11_named = any(v is not None for v in (pkcs11_module, pkcs11_token_label, pkcs11_key_label))
    if master_key_command is not None and pkcs11_named:
        raise KeyProviderError("--master-key-command and --pkcs11-* name two places for one master key; give one")
    if master_key_command is not None:
        from strongroom.crypto.command import CommandProvider

        return CommandProvider(master_key_command)
    if not pkcs11_named:
        return None
    if not pkcs11_module:
        raise KeyProviderError(
            "--pkcs11-token-label and --pkcs11-key-label need --pkcs11-module (e.g. /usr/lib/softhsm/libsofthsm2.so)"
        )
    if not pkcs11_token_label:
        raise KeyProviderError("--pkcs11-module needs --pkcs11-token-label: the token holding the master key")
    if pkcs11_pin is None:
        raise KeyProviderError("the PKCS#11 token's user PIN is read from STRONGROOM_PKCS11_PIN, which is not set")
    from strongroom.crypto.pkcs11 import PKCS11Provider

    return PKCS11Provider(pkcs11_module, pkcs11_token_label, pkcs11_pin, pkcs11_key_label or DEFAULT_PKCS11_KEY_LABEL)


def providers_from_settings(settings: Any) -> list[Any]:
    """Every external provider a :class:`strongroom.config.Settings` names (see the module's doc)."""
    labels = list(dict.fromkeys(settings.pkcs11_key_labels)) or [None]
    found = [
        provider_from_options(
            master_key_command=settings.master_key_command,
            pkcs11_module=settings.pkcs11_module,
            pkcs11_token_label=settings.pkcs11_token_label,
            pkcs11_key_label=label,
            pkcs11_pin=settings.pkcs11_pin,
        )
        for label in labels
    ]
    return [p for p in found if p is not None]
