"""``strongroom master-key``: the keyring's members, online rotation, retirement, and keys made
on a PKCS#11 token (docs/keys.md, docs/key-providers.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from strongroom import config
from strongroom.cli.common import (
    _echo_keyring,
    _key_provider_options,
    _open_storage,
    _settings,
    _storage_options,
    cli,
)

__all__: list[str] = []


@cli.group("master-key")
def master_key_group() -> None:
    """The keyring of master keys that wrap every other key (docs/keys.md)."""


@master_key_group.command("rotate")
@_storage_options
@_key_provider_options
@click.option(
    "--pending",
    is_flag=True,
    help="Add the new key as pending, not active: for several machines, "
    "copy it to every node, then run `master-key activate ID`.",
)
def master_key_rotate(
    data_dir: Path | None,
    database_url: str | None,
    master_key_file: Path | None,
    key_options: dict[str, Any],
    pending: bool,
) -> None:
    """A new master key, active at once on every running node; every stored key re-wrapped with it.

    Safe while servers run: they learn of the new member through the database within a second,
    and the old member keeps opening what it wrapped until the re-wrap is done. Interrupted, it is
    finished by running it again (or by any server, in the background). The old key stays in the
    key file until you retire it (`master-key retire ID`) and remove it.
    """
    from strongroom.crypto.ring import rotate

    db, _, sources, _ = _open_storage(data_dir, database_url, master_key_file, key_options)
    try:
        rotate(db, sources, pending=pending, say=click.echo)
    finally:
        db.close()


@master_key_group.command("activate")
@click.argument("member", type=int)
@_storage_options
@_key_provider_options
def master_key_activate(
    member: int,
    data_dir: Path | None,
    database_url: str | None,
    master_key_file: Path | None,
    key_options: dict[str, Any],
) -> None:
    """Make the pending MEMBER active (every node must hold its key first), then re-wrap with it."""
    from strongroom.crypto.ring import activate

    db, _, sources, _ = _open_storage(data_dir, database_url, master_key_file, key_options)
    try:
        activate(db, sources, member, say=click.echo)
    finally:
        db.close()


@master_key_group.command("retire")
@click.argument("member", type=int)
@_storage_options
def master_key_retire(
    member: int, data_dir: Path | None, database_url: str | None, master_key_file: Path | None
) -> None:
    """Retire MEMBER: refused while it is active or any wrapped key still names it."""
    from strongroom.crypto.ring import retire
    from strongroom.store import open_database

    settings = config.from_env(data_dir=data_dir, database_url=database_url, master_key_file=master_key_file)
    db = open_database(settings.resolved_database_url)
    try:
        retire(db, member)
    finally:
        db.close()
    click.echo(
        f"member {member} retired; its key opens nothing in the database now. Keep it as long as you keep "
        f"backups made before the rotation (docs/keys.md)"
    )


@master_key_group.command("list")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="The data directory.")
@click.option("--database-url", default=None, help="The database, if not under --data-dir.")
def master_key_list(data_dir: Path | None, database_url: str | None) -> None:
    """The keyring's members: state, fingerprint, how many keys each still wraps, where it lives."""
    from strongroom.crypto.ring import keyring_status
    from strongroom.store import open_database

    settings = config.from_env(data_dir=data_dir, database_url=database_url)
    db = open_database(settings.resolved_database_url)
    try:
        _echo_keyring(keyring_status(db))
    finally:
        db.close()


@master_key_group.command("pkcs11-init")
@click.option(
    "--pkcs11-module",
    default=None,
    help="PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so (PIN from STRONGROOM_PKCS11_PIN).",
)
@click.option("--pkcs11-token-label", default=None, help="Label of the PKCS#11 token to make the key on.")
@click.option("--pkcs11-key-label", default=None, help="Label of the new key [default: strongroom-master].")
def master_key_pkcs11_init(
    pkcs11_module: str | None, pkcs11_token_label: str | None, pkcs11_key_label: str | None
) -> None:
    """Make the master key on a PKCS#11 token (AES-256, sensitive, not extractable): the token
    generates it and never lets it out. Refused if the token already holds a key by that label."""
    from strongroom.crypto.pkcs11 import create_key
    from strongroom.crypto.select import DEFAULT_PKCS11_KEY_LABEL, KeyProviderError, provider_from_options

    settings = _settings()
    if not pkcs11_module or not pkcs11_token_label:
        raise click.UsageError("--pkcs11-module and --pkcs11-token-label name the token to make the key on.")
    if settings.pkcs11_pin is None:
        raise click.ClickException("the token's user PIN is read from STRONGROOM_PKCS11_PIN, which is not set")
    label = pkcs11_key_label or DEFAULT_PKCS11_KEY_LABEL
    try:
        fingerprint = create_key(pkcs11_module, pkcs11_token_label, settings.pkcs11_pin, label)
        # Opened again as a server opens it: what was made is what will be found.
        provider = provider_from_options(
            pkcs11_module=pkcs11_module,
            pkcs11_token_label=pkcs11_token_label,
            pkcs11_key_label=label,
            pkcs11_pin=settings.pkcs11_pin,
        )
    except KeyProviderError as exc:
        raise click.ClickException(str(exc)) from None
    assert provider.fingerprint == fingerprint
    provider.close()
    click.echo(f"master key {label!r} made on PKCS#11 token {pkcs11_token_label!r}; fingerprint {fingerprint}")
