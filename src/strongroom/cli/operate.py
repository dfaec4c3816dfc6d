"""The operator's commands on a data directory or database: status, backups, the schema, an
account's first key, a function's logs, a secret's rotation history."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from strongroom import config
from strongroom.cli.common import (
    _echo_keyring,
    _key_provider_options,
    _open_storage,
    _prepare_data_dir,
    _settings,
    _storage_errors,
    _storage_options,
    cli,
)

__all__: list[str] = []


@cli.group()
def rotation() -> None:
    """Rotation: what happened, step by step."""


@rotation.command("history")
@click.argument("secret")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="The server's data directory.")
@click.option("--database-url", default=None, help="The server's database, if not under --data-dir.")
@click.option("--account-id", default=None, help="The secret's account [default: the server's].")
@click.option("--region", default="us-east-1", show_default=True, help="The secret's region.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def rotation_history(
    secret: str, data_dir: Path | None, database_url: str | None, account_id: str | None, region: str, as_json: bool
) -> None:
    """Every rotation of SECRET (a name or an ARN): attempts, steps, durations, errors. No values."""
    import datetime as dt
    import json

    from strongroom.rotation.engine import history_of
    from strongroom.store import open_database

    settings = _settings(data_dir=data_dir, database_url=database_url, account_id=account_id)
    _prepare_data_dir(settings, "rotation history", lock=False)
    with _storage_errors(settings):
        db = open_database(settings.resolved_database_url)
    try:
        rotations = db.read_sync(lambda tx: history_of(tx, settings.account_id, region, secret))
    finally:
        db.close()
    if rotations is None:
        raise click.ClickException(f"no secret {secret} in account {settings.account_id}, region {region}")
    if as_json:
        click.echo(json.dumps(rotations, indent=2))
        return

    def when(t: float | None) -> str:
        return "-" if t is None else dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")

    for r in rotations:
        click.secho(
            f"{r['VersionId']}  {r['State']:<10} attempts {r['Attempts']}  started {when(r['Started'])}"
            f"  finished {when(r['Finished'])}",
            bold=True,
        )
        for step in r["Steps"]:
            line = f"    #{step['Attempt']} {step['Step']:<13} {step['Outcome']:<9} {step['DurationMs']:>7} ms"
            click.echo(line + (f"  {step['Error']}" if step["Error"] else ""))
    if not rotations:
        click.echo("no rotations yet")


@cli.command("logs")
@click.argument("function")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="The server's data directory.")
@click.option("--database-url", default=None, help="The server's database, if not under --data-dir.")
@click.option(
    "--master-key-file",
    type=click.Path(path_type=Path),
    default=None,
    help="The master key, if not DATA_DIR/master.key (function logs are stored encrypted).",
)
@click.option("--account-id", default=None, help="The function's account [default: the server's].")
@click.option("--region", default="us-east-1", show_default=True, help="The function's region.")
@click.option("--limit", default=20, show_default=True, help="How many invocations, newest first.")
@_key_provider_options
def logs(
    function: str,
    data_dir: Path | None,
    database_url: str | None,
    master_key_file: Path | None,
    account_id: str | None,
    region: str,
    limit: int,
    key_options: dict[str, Any],
) -> None:
    """The newest invocations of FUNCTION (name or ARN) with what it printed and logged."""
    import datetime as dt

    from strongroom.rotation.runtime import FunctionRuntime
    from strongroom.server.build import open_storage
    from strongroom.services.lambda_ import Lambda
    from strongroom.services.secretsmanager.values import ValueCipher

    settings = _settings(
        data_dir=data_dir,
        database_url=database_url,
        account_id=account_id,
        master_key_file=master_key_file,
        **key_options,
    )
    _prepare_data_dir(settings, "logs", lock=False)
    with _storage_errors(settings):
        db, keyring, _ = open_storage(settings)
    functions = Lambda(db, ValueCipher(keyring), FunctionRuntime(lambda spec: {}), None)
    try:
        rows = db.read_sync(lambda tx: functions.invocations(tx, settings.account_id, region, function, limit))
    finally:
        functions.close()
        db.close()
    if not rows:
        click.echo(f"no invocations of {function} recorded")
    for row in rows:
        when = dt.datetime.fromtimestamp(row["Started"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        click.secho(
            f"{when}  {row['Step'] or '-':<13} {row['Outcome']:<9} {row['DurationMs']:>7} ms  {row['RequestId']}",
            bold=True,
            fg=None if row["Outcome"] == "succeeded" else "red",
        )
        if row["Error"]:
            click.echo(f"  {row['Error']}")
        for line in row["Logs"].splitlines():
            click.echo(f"  | {line}")


@cli.group()
def admin() -> None:
    """Operator commands that work on the data directory directly."""


@admin.command("create-account")
@click.argument("account_id")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="The server's data directory.")
@click.option("--database-url", default=None, help="The server's database, if not under --data-dir.")
@click.option(
    "--master-key-file",
    type=click.Path(path_type=Path),
    default=None,
    help="The master key, if not DATA_DIR/master.key.",
)
@click.option(
    "--credentials-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the new administrator's key here (mode 0600) instead of printing it.",
)
@_key_provider_options
def create_account(
    account_id: str,
    data_dir: Path | None,
    database_url: str | None,
    master_key_file: Path | None,
    credentials_file: Path | None,
    key_options: dict[str, Any],
) -> None:
    """A new account (12 digits) and its first administrator key. Each account's secrets, users,
    roles and functions are its own; a running server accepts the key at once."""
    import re

    from strongroom.auth.keys import KeyStore, new_access_key_id, new_secret_access_key, write_credentials_file
    from strongroom.server.build import open_storage
    from strongroom.store import keys as store_keys

    if not re.fullmatch(r"\d{12}", account_id):
        raise click.BadParameter("an account id is 12 digits", param_hint="ACCOUNT_ID")
    os.umask(0o077)
    settings = _settings(data_dir=data_dir, database_url=database_url, master_key_file=master_key_file, **key_options)
    _prepare_data_dir(settings, "admin create-account", lock=False)  # a running server takes the key at once
    with _storage_errors(settings):
        db, keyring, _ = open_storage(settings)
    try:
        keys = KeyStore(db, keyring)
        principal = f"arn:aws:iam::{account_id}:root"
        exists = db.read_sync(lambda tx: store_keys.has_credentials(tx, principal, account_id))
        if exists:
            raise click.ClickException(f"account {account_id} already exists")
        access_key_id, secret = new_access_key_id(), new_secret_access_key()
        keys.add(access_key_id, secret, account_id, principal, account_id, privilege="root")
    finally:
        db.close()
    if credentials_file is not None:
        write_credentials_file(credentials_file, access_key_id, secret)
        click.echo(f"account {account_id}: administrator key {access_key_id} written to {credentials_file}")
    else:
        click.echo(f"account {account_id}\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}")


@cli.command("status")
@click.option(
    "--endpoint-url",
    default=f"http://127.0.0.1:{config.DEFAULT_PORT}",
    show_default=True,
    help="The running server to ask for its health.",
)
@_storage_options
def status(endpoint_url: str, data_dir: Path | None, database_url: str | None, master_key_file: Path | None) -> None:
    """Health, version and storage of the server; the keyring; accounts, secrets and the rotation queue."""
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(endpoint_url.rstrip("/") + "/_strongroom/health", timeout=5) as r:
            health = json.loads(r.read())
        click.echo(
            f"server      {endpoint_url}: {health.get('status')} (version {health.get('version')}, "
            f"{health.get('storage')}, schema {health.get('schema')})"
        )
    except (urllib.error.URLError, OSError) as exc:
        click.secho(f"server      {endpoint_url}: not answering ({exc})", fg="red")
    settings = config.from_env(data_dir=data_dir, database_url=database_url, master_key_file=master_key_file)
    from strongroom.crypto.ring import keyring_status
    from strongroom.store import maintenance, open_database

    db = open_database(settings.resolved_database_url)
    try:
        members = keyring_status(db)

        facts = db.read_sync(maintenance.counts)
        click.echo(f"storage     {db.dialect}, schema {db.schema_version()}")
    finally:
        db.close()
    for key in ("accounts", "secrets", "scheduled for deletion", "functions"):
        click.echo(f"{key:<11} {facts[key]}" if len(key) < 12 else f"{key}: {facts[key]}")
    queue = facts["rotations"]
    click.echo("rotations   " + (", ".join(f"{n} {state}" for state, n in sorted(queue.items())) or "none yet"))
    _echo_keyring(members)


@cli.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
@_storage_options
def db_upgrade(data_dir: Path | None, database_url: str | None, master_key_file: Path | None) -> None:
    """Bring the schema to this version's (the server also does it at every start)."""
    from strongroom.store import open_database
    from strongroom.store.schema import MIGRATIONS

    os.umask(0o077)
    settings = _settings(data_dir=data_dir, database_url=database_url)
    # Migrating under a running (perhaps older) server is refused on SQLite; PostgreSQL nodes
    # migrate one at a time under the database's own lock.
    lock = _prepare_data_dir(settings, "db upgrade", lock=not settings.database_url)
    try:
        with _storage_errors(settings):
            db = open_database(settings.resolved_database_url)
        try:
            click.echo(f"schema version {db.schema_version()} of {len(MIGRATIONS)}")
        finally:
            db.close()
    finally:
        if lock is not None:
            lock.release()


@cli.command("backup")
@click.argument("file", type=click.Path(path_type=Path))
@_storage_options
@_key_provider_options
def backup_command(
    file: Path,
    data_dir: Path | None,
    database_url: str | None,
    master_key_file: Path | None,
    key_options: dict[str, Any],
) -> None:
    """A consistent, encrypted snapshot of everything in FILE (mode 0600), while the server runs."""
    from strongroom.store.backup import TABLES, backup_file

    db, keyring, _, _ = _open_storage(data_dir, database_url, master_key_file, key_options)
    try:
        with click.progressbar(length=len(TABLES), label="backing up") as bar:
            total = backup_file(db, keyring, file, lambda table, count: bar.update(1))
    finally:
        db.close()
    click.echo(
        f"{total} rows written to {file}; restoring it needs master key member {keyring.active} "
        f"(fingerprint {keyring.members[keyring.active].fingerprint}) and any key its keyring still used"
    )


@cli.command("restore")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@_storage_options
@_key_provider_options
def restore_command(
    file: Path,
    data_dir: Path | None,
    database_url: str | None,
    master_key_file: Path | None,
    key_options: dict[str, Any],
) -> None:
    """Load a backup into a fresh data directory or database (refused if it holds anything)."""
    from strongroom.store.backup import TABLES, BackupError, restore

    # A server writing while rows are loaded would mix its writes into the restore: refused.
    db, providers, _, lock = _open_storage(
        data_dir, database_url, master_key_file, key_options, lock_for="restore", keyring=False
    )
    try:
        with file.open("rb") as source, click.progressbar(length=len(TABLES), label="restoring") as bar:
            total = restore(db, providers, source, lambda table, count: bar.update(1))
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        db.close()
        if lock is not None:
            lock.release()
    click.echo(f"{total} rows restored from {file}")
