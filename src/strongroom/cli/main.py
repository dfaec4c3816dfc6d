"""``strongroom``: the command line."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from strongroom import __version__, config

__all__ = ["main"]


class OneLineFormatter(logging.Formatter):
    """One event, one line: control characters in a message (a caller's ``ClientRequestToken``,
    a rotation function's error text) are escaped, so no one can forge a log line. Tracebacks
    appended after the message keep their lines."""

    _ESCAPES = {i: f"\\x{i:02x}" for i in (*range(0x20), 0x7F, 0x85)} | {0x2028: "\\u2028", 0x2029: "\\u2029"}

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = record.message.translate(self._ESCAPES)
        return super().formatMessage(record)


def _configure_logging() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


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


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=config.DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on."
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the database, master key and credentials live [default: ./strongroom-data].",
)
@click.option(
    "--database-url",
    default=None,
    help="A SQLite path, or postgresql://... to share one database between several nodes.",
)
@click.option(
    "--account-id",
    default=None,
    help=f"The account the administrator key belongs to [default: {config.DEFAULT_ACCOUNT}].",
)
@click.option(
    "--master-key-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Read the master key from this file instead of DATA_DIR/master.key.",
)
@_key_provider_options
@click.option(
    "--trusted-proxies",
    default=None,
    envvar="STRONGROOM_TRUSTED_PROXIES",
    help="Addresses (comma-separated, or *) of reverse proxies whose X-Forwarded-For names the "
    "client. Unset: the header is ignored and the connection's address is the client's.",
)
@click.option(
    "--dev",
    is_flag=True,
    help="In-memory state, signatures not checked, POST /_strongroom/reset. For tests only; listens on loopback only.",
)
@click.option(
    "--dev-allow-remote",
    is_flag=True,
    help="Let --dev listen on an address other machines can reach (a container's 0.0.0.0). "
    "Anyone who reaches it can do anything: its signatures are not checked.",
)
@click.option(
    "--unsafe-functions",
    is_flag=True,
    help="Run uploaded functions WITHOUT the sandbox, as the server's own user (they can read the "
    "master key and every secret). Env: STRONGROOM_UNSAFE_FUNCTIONS=1.",
)
def serve(
    host: str,
    port: int,
    data_dir: Path | None,
    database_url: str | None,
    account_id: str | None,
    master_key_file: Path | None,
    key_options: dict[str, Any],
    trusted_proxies: str | None,
    dev: bool,
    dev_allow_remote: bool,
    unsafe_functions: bool,
) -> None:
    """Run the server.

    Start-up order: the data directory is checked and locked, the address bound, storage opened,
    and only then is "listening on" printed. Each mistake on the way is one line and exit 1.
    """
    import uvicorn

    from strongroom.crypto import harden_process
    from strongroom.server.build import build, describe_endpoint
    from strongroom.server.listen import ListenError, bind, is_loopback

    # Everything the server creates (database, WAL/SHM, audit files, function code) is its own.
    os.umask(0o077)
    _configure_logging()
    if dev:
        _check_dev(host, data_dir, database_url, dev_allow_remote)
    elif dev_allow_remote:
        raise click.UsageError("--dev-allow-remote only means something with --dev.")
    harden_process()
    settings = _settings(
        host=host,
        port=port,
        data_dir=data_dir,
        database_url=database_url,
        account_id=account_id,
        master_key_file=master_key_file,
        dev=dev or None,
        unsafe_functions=unsafe_functions or None,
        **key_options,
    )
    lock = None if settings.dev else _prepare_data_dir(settings, "serve")
    try:
        sock = bind(settings.host, settings.port)
    except ListenError as exc:
        raise click.ClickException(str(exc)) from None
    if settings.port == 0:  # the port the kernel chose is the one to print and to give functions
        settings = dataclasses.replace(settings, port=sock.getsockname()[1])
    if settings.dev:
        click.secho(
            "WARNING: --dev mode: state is in memory and lost on exit, request signatures are NOT "
            "checked, and POST /_strongroom/reset wipes everything. Never use it for real secrets.",
            fg="red",
            bold=True,
            err=True,
        )
        if not is_loopback(settings.host):
            click.secho(
                f"WARNING: --dev-allow-remote: anyone who can reach {settings.host}:{settings.port} can "
                "read and change everything.",
                fg="red",
                bold=True,
                err=True,
            )
    with _storage_errors(settings):
        server = build(settings)
    click.echo(describe_endpoint(server))
    sys.stdout.flush()
    # The client's address decides aws:SourceIp conditions and the audit's sourceIPAddress, so
    # X-Forwarded-For is believed only from proxies named here (uvicorn's default believes any
    # client on 127.0.0.1, which would let a local process claim any address).
    from strongroom.server.http import WholeAnswerHttpToolsProtocol

    protocol = functools.partial(WholeAnswerHttpToolsProtocol, read_timeout=settings.read_timeout_seconds)
    uv_config = uvicorn.Config(
        server.app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        # uvicorn calls any protocol factory (the partial above); its annotation names a class only.
        http=protocol,  # type: ignore[arg-type]
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=30,
        server_header=False,
        date_header=False,
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=trusted_proxies or None,
    )
    # uvicorn drains in-flight requests on SIGTERM/SIGINT, then re-raises the signal to the handler
    # that was there before it. Make that handler a clean exit, so a drained stop exits 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    try:
        uvicorn.Server(uv_config).run(sockets=[sock])
    finally:
        if lock is not None:
            lock.release()


def _check_dev(host: str, data_dir: Path | None, database_url: str | None, allow_remote: bool) -> None:
    """--dev checks no signature, so it is refused anywhere it could be mistaken for a real server."""
    from strongroom.server.listen import is_loopback

    if database_url:
        raise click.UsageError("--dev keeps state in memory and cannot be used with --database-url.")
    if data_dir is not None:
        raise click.UsageError("--dev keeps state in memory and cannot be used with --data-dir.")
    if not is_loopback(host) and not allow_remote:
        raise click.UsageError(
            f"--dev listens on loopback only (it checks no signature); --host {host} needs --dev-allow-remote as well."
        )


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


def _aws_completion(service: str) -> Any:
    """Complete service commands with the aws CLI's own completer."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from awscli.completer import Completer
        from click.shell_completion import CompletionItem

        line = " ".join(["aws", service, *ctx.params.get("args", ()), incomplete])
        return [CompletionItem(word) for word in Completer().complete(line, len(line))]

    return complete


@cli.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh"]))
def completion(shell: str) -> None:
    """The completion script: `eval "$(strongroom completion bash)"` (or zsh) in your shell's rc file."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, "strongroom", "_STRONGROOM_COMPLETE").source())


class _ServiceCommand(click.Command):
    """A pass-through to the aws CLI; its options (``--secret-id``...) complete with aws's completer."""

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        return _aws_completion(self.name or "")(ctx, self.params[0], incomplete)  # type: ignore[no-any-return]


def _service_command(service: str) -> None:
    @cli.command(
        service,
        cls=_ServiceCommand,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
        short_help=f"The aws CLI's {service} commands, against strongroom.",
        help=f"aws {service} ..., against this strongroom (the aws CLI's own commands). "
        f"`strongroom {service} help` shows them.",
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED, shell_complete=_aws_completion(service))
    def command(args: tuple[str, ...]) -> None:
        from strongroom.cli.aws import run

        sys.exit(run(service, args))


for _service in ("secretsmanager", "lambda", "iam", "sts", "cloudtrail"):
    _service_command(_service)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main() -> None:
    """Run the command line. Every operator mistake ends as one line on stderr and a non-zero
    exit: click's usage errors (which would print three lines), refusals, and, as a last resort,
    an operating-system or database error that no command turned into a sentence of its own."""
    try:
        rv = cli.main(prog_name="strongroom", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()  # a group named alone: its help, as click prints it
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "strongroom"
        _fail(f"{where}: {exc.format_message()} (see {where} --help)", exc.exit_code)
    except click.ClickException as exc:
        _fail(f"strongroom: {exc.format_message()}", exc.exit_code)
    except click.Abort:
        _fail("strongroom: aborted", 1)
    except SystemExit as exc:
        if isinstance(exc.code, str):  # a refusal raised as SystemExit("...") (master keys, providers)
            _fail(f"strongroom: {exc.code}", 1)
        raise
    except OSError as exc:
        _fail(f"strongroom: {exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}", 1)
    except Exception as exc:
        import sqlite3

        if not isinstance(exc, sqlite3.Error):
            raise
        _fail(f"strongroom: the database cannot be used: {exc}", 1)
    sys.exit(rv if isinstance(rv, int) else 0)


def _fail(message: str, code: int) -> None:
    click.echo(" ".join(message.split("\n")), err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
