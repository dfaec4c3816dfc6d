"""What the operator commands share: the ``strongroom`` group they hang on, the options that
name storage and master keys, and the one place each turns a storage mistake into one line."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from strongroom import __version__, config

__all__ = ["cli"]

_KEY_PROVIDER_OPTIONS = ("master_key_command", "pkcs11_module", "pkcs11_token_label", "pkcs11_key_labels")


def _key_provider_options(fn: Any) -> Any:
    """The options naming a master key held outside the data directory (docs/key-providers.md),
    for every command that opens the keyring: ``--master-key-command`` (a secret store) or
    ``--pkcs11-*`` (a token; the PIN only from STRONGROOM_PKCS11_PIN, as a flag would show it to
    anyone running `ps`). The command receives them as one ``key_options`` dict, given as is to
    :func:`_settings`."""

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        kwargs["key_options"] = {name: kwargs.pop(name) for name in _KEY_PROVIDER_OPTIONS}
        return fn(*args, **kwargs)

    command = click.option(
        "--pkcs11-key-label",
        "pkcs11_key_labels",
        multiple=True,
        help="Label of the AES key on the token [default: strongroom-master]. Repeat it to "
        "reach several keys while moving from one to another.",
    )(command)
    command = click.option("--pkcs11-token-label", default=None, help="Label of the PKCS#11 token holding the key.")(
        command
    )
    command = click.option(
        "--pkcs11-module",
        default=None,
        help="PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so (PIN from "
        "STRONGROOM_PKCS11_PIN): the master key stays on the token.",
    )(command)
    return click.option(
        "--master-key-command",
        default=None,
        help="A command (run without a shell) whose output is the base64 master key, e.g. a "
        "secret store's CLI; instead of DATA_DIR/master.key.",
    )(command)


@click.group()
@click.version_option(__version__, prog_name="strongroom")
def cli() -> None:
    """strongroom: a self-hosted secrets manager that speaks the AWS Secrets Manager API."""


def _settings(**options: Any) -> config.Settings:
    try:
        return config.from_env(**options)
    except config.ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _prepare_data_dir(settings: config.Settings, command: str, lock: bool = True) -> Any:
    """Check (and make) the data directory; lock it for ``command`` on SQLite when ``lock``.

    PostgreSQL takes no lock: several nodes share one database, each with its own data directory.
    """
    from strongroom.datadir import DataDirError, DataDirLock, prepare

    try:
        prepare(settings.data_dir)
        if lock and not settings.uses_postgres:
            return DataDirLock(settings.data_dir, command)
    except DataDirError as exc:
        raise click.ClickException(str(exc)) from None
    return None


@contextlib.contextmanager
def _storage_errors(settings: config.Settings) -> Iterator[None]:
    """A database that cannot be opened or written is one line naming it, not a traceback."""
    import sqlite3

    from strongroom.server.build import _redact

    try:
        yield
    except sqlite3.Error as exc:
        raise click.ClickException(
            f"the database {_redact(settings.resolved_database_url)} cannot be used: {exc}"
        ) from None
    except Exception as exc:
        if type(exc).__module__.startswith("psycopg") and type(exc).__name__ == "OperationalError":
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise click.ClickException(
                f"the database {_redact(settings.resolved_database_url)} cannot be reached: {first}"
            ) from None
        raise


def _storage_options(fn: Any) -> Any:
    fn = click.option(
        "--master-key-file",
        type=click.Path(path_type=Path),
        default=None,
        help="The master key, if not DATA_DIR/master.key.",
    )(fn)
    fn = click.option("--database-url", default=None, help="The database, if not under --data-dir.")(fn)
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        default=None,
        help="The data directory [default: ./strongroom-data].",
    )(fn)


def _open_storage(
    data_dir: Path | None,
    database_url: str | None,
    master_key_file: Path | None,
    key_options: dict[str, Any],
    lock_for: str | None = None,
    keyring: bool = True,
) -> Any:
    """(database, keyring, key sources, lock): the data directory checked first; with ``lock_for``
    (a command that writes what a server writes) it is locked, and refused while a server holds it.
    ``keyring`` false: the master keys found, unchecked, in place of the keyring, for a restore
    into an empty database, which has no keyring of its own yet."""
    from strongroom.crypto.providers import KeySources
    from strongroom.server.build import open_storage
    from strongroom.store import open_database

    os.umask(0o077)
    settings = _settings(data_dir=data_dir, database_url=database_url, master_key_file=master_key_file, **key_options)
    lock = _prepare_data_dir(settings, lock_for or "", lock=lock_for is not None)
    with _storage_errors(settings):
        if keyring:
            db, ring, sources = open_storage(settings)
            return db, ring, sources, lock
        sources = KeySources(settings)
        providers = sources.load()
        if not providers:
            raise click.ClickException(
                f"no master key was found (looked in {sources.places()}); give the key the "
                f"backup was made with: --master-key-file FILE, STRONGROOM_MASTER_KEY, "
                f"--master-key-command or --pkcs11-*"
            )
        return open_database(settings.resolved_database_url), providers, sources, lock


def _echo_keyring(members: list[dict[str, Any]]) -> None:
    import datetime as dt

    if not members:
        click.echo("keyring     none yet (made at the server's first start)")
        return
    for i, m in enumerate(members):
        created = dt.datetime.fromtimestamp(m["created"], dt.UTC).strftime("%Y-%m-%d %H:%M")
        line = (
            f"{'keyring' if i == 0 else '':<11} member {m['id']}  {m['state']:<8}  {m['kind']:<7}  "
            f"fingerprint {m['fingerprint']}  {m['keys']} keys  {m['description']}  created {created}"
        )
        stale = m["state"] != "active" and m["keys"]
        click.secho(line, fg="yellow" if stale else None)
