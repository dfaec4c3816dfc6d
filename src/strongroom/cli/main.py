"""``strongroom``: the command line."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click

from strongroom import __version__, config

__all__ = ["main"]


class OneLineFormatter(logging.Formatter):
    """One event, one line: control characters in a message (a caller's ``ClientRequestToken``,
    a rotation function's error text) are escaped, so no one can forge a log line. Tracebacks
    appended after the message keep their lines."""

    _ESCAPES = {i: f"\\x{i:02x}" for i in (*range(0x20), 0x7f, 0x85)} | {0x2028: "\\u2028", 0x2029: "\\u2029"}

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = record.message.translate(self._ESCAPES)
        return super().formatMessage(record)


def _configure_logging() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


@click.group()
@click.version_option(__version__, prog_name="strongroom")
def cli() -> None:
    """strongroom: a self-hosted secrets manager that speaks the AWS Secrets Manager API."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=config.DEFAULT_PORT, show_default=True, type=int, help="Port to listen on.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Where the database, master key and credentials live [default: ./strongroom-data].")
@click.option("--database-url", default=None,
              help="A SQLite path, or postgresql://... to share one database between several nodes.")
@click.option("--account-id", default=None, help=f"The account the administrator key belongs to "
                                                 f"[default: {config.DEFAULT_ACCOUNT}].")
@click.option("--master-key-file", type=click.Path(path_type=Path), default=None,
              help="Read the master key from this file instead of DATA_DIR/master.key.")
@click.option("--trusted-proxies", default=None, envvar="STRONGROOM_TRUSTED_PROXIES",
              help="Addresses (comma-separated, or *) of reverse proxies whose X-Forwarded-For names the "
                   "client. Unset: the header is ignored and the connection's address is the client's.")
@click.option("--dev", is_flag=True, help="In-memory state, signatures not checked, POST /_strongroom/reset. "
                                          "For tests only.")
def serve(host: str, port: int, data_dir: Path | None, database_url: str | None, account_id: str | None,
          master_key_file: Path | None, trusted_proxies: str | None, dev: bool) -> None:
    """Run the server."""
    import uvicorn

    from strongroom.crypto import harden_process
    from strongroom.server.build import build, describe_endpoint

    _configure_logging()
    if dev and database_url:
        raise click.UsageError("--dev keeps state in memory and cannot be used with --database-url.")
    harden_process()
    settings = config.from_env(host=host, port=port, data_dir=data_dir, database_url=database_url,
                               account_id=account_id, master_key_file=master_key_file, dev=dev or None)
    if settings.dev:
        click.secho("WARNING: --dev mode: state is in memory and lost on exit, request signatures are NOT "
                    "checked, and POST /_strongroom/reset wipes everything. Never use it for real secrets.",
                    fg="red", bold=True, err=True)
    server = build(settings)
    click.echo(describe_endpoint(server))
    sys.stdout.flush()
    # The client's address decides aws:SourceIp conditions and the audit's sourceIPAddress, so
    # X-Forwarded-For is believed only from proxies named here (uvicorn's default believes any
    # client on 127.0.0.1, which would let a local process claim any address).
    from strongroom.server.http import WholeAnswerHttpToolsProtocol

    uv_config = uvicorn.Config(server.app, host=settings.host, port=settings.port, loop="uvloop",
                               http=WholeAnswerHttpToolsProtocol, lifespan="on", access_log=False, log_level="warning",
                               timeout_graceful_shutdown=30, server_header=False, date_header=False,
                               proxy_headers=bool(trusted_proxies), forwarded_allow_ips=trusted_proxies or None)
    # uvicorn drains in-flight requests on SIGTERM/SIGINT, then re-raises the signal to the handler
    # that was there before it. Make that handler a clean exit, so a drained stop exits 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    uvicorn.Server(uv_config).run()


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
def rotation_history(secret: str, data_dir: Path | None, database_url: str | None, account_id: str | None,
                     region: str, as_json: bool) -> None:
    """Every rotation of SECRET (a name or an ARN): attempts, steps, durations, errors. No values."""
    import datetime as dt
    import json

    from strongroom.rotation.engine import history_of
    from strongroom.store import open_database

    settings = config.from_env(data_dir=data_dir, database_url=database_url, account_id=account_id)
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
        return "-" if t is None else dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")

    for r in rotations:
        click.secho(f"{r['VersionId']}  {r['State']:<10} attempts {r['Attempts']}  started {when(r['Started'])}"
                    f"  finished {when(r['Finished'])}", bold=True)
        for step in r["Steps"]:
            line = f"    #{step['Attempt']} {step['Step']:<13} {step['Outcome']:<9} {step['DurationMs']:>7} ms"
            click.echo(line + (f"  {step['Error']}" if step["Error"] else ""))
    if not rotations:
        click.echo("no rotations yet")


@cli.command("logs")
@click.argument("function")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="The server's data directory.")
@click.option("--database-url", default=None, help="The server's database, if not under --data-dir.")
@click.option("--master-key-file", type=click.Path(path_type=Path), default=None,
              help="The master key, if not DATA_DIR/master.key (function logs are stored encrypted).")
@click.option("--account-id", default=None, help="The function's account [default: the server's].")
@click.option("--region", default="us-east-1", show_default=True, help="The function's region.")
@click.option("--limit", default=20, show_default=True, help="How many invocations, newest first.")
def logs(function: str, data_dir: Path | None, database_url: str | None, master_key_file: Path | None,
         account_id: str | None, region: str, limit: int) -> None:
    """The newest invocations of FUNCTION (name or ARN) with what it printed and logged."""
    import datetime as dt

    from strongroom.rotation.runtime import FunctionRuntime
    from strongroom.server.build import open_storage
    from strongroom.services.lambda_ import Lambda
    from strongroom.services.secretsmanager.values import ValueCipher

    settings = config.from_env(data_dir=data_dir, database_url=database_url, account_id=account_id,
                               master_key_file=master_key_file)
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
        when = dt.datetime.fromtimestamp(row["Started"], dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        click.secho(f"{when}  {row['Step'] or '-':<13} {row['Outcome']:<9} {row['DurationMs']:>7} ms  "
                    f"{row['RequestId']}", bold=True, fg=None if row["Outcome"] == "succeeded" else "red")
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
@click.option("--master-key-file", type=click.Path(path_type=Path), default=None,
              help="The master key, if not DATA_DIR/master.key.")
@click.option("--credentials-file", type=click.Path(path_type=Path), default=None,
              help="Write the new administrator's key here (mode 0600) instead of printing it.")
def create_account(account_id: str, data_dir: Path | None, database_url: str | None, master_key_file: Path | None,
                   credentials_file: Path | None) -> None:
    """A new account (12 digits) and its first administrator key. Each account's secrets, users,
    roles and functions are its own; a running server accepts the key at once."""
    import re

    from strongroom.auth.keys import KeyStore, new_access_key_id, new_secret_access_key, write_credentials_file
    from strongroom.server.build import open_storage

    if not re.fullmatch(r"\d{12}", account_id):
        raise click.BadParameter("an account id is 12 digits", param_hint="ACCOUNT_ID")
    settings = config.from_env(data_dir=data_dir, database_url=database_url, master_key_file=master_key_file)
    db, keyring, _ = open_storage(settings)
    try:
        keys = KeyStore(db, keyring)
        principal = f"arn:aws:iam::{account_id}:root"
        exists = db.read_sync(lambda tx: tx.one("SELECT 1 FROM access_keys WHERE principal_arn = ?", (principal,)))
        if exists:
            raise click.ClickException(f"account {account_id} already exists")
        access_key_id, secret = new_access_key_id(), new_secret_access_key()
        keys.add(access_key_id, secret, account_id, principal)
    finally:
        db.close()
    if credentials_file is not None:
        write_credentials_file(credentials_file, access_key_id, secret)
        click.echo(f"account {account_id}: administrator key {access_key_id} written to {credentials_file}")
    else:
        click.echo(f"account {account_id}\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}")


def _storage_options(fn: Any) -> Any:
    fn = click.option("--master-key-file", type=click.Path(path_type=Path), default=None,
                      help="The master key, if not DATA_DIR/master.key.")(fn)
    fn = click.option("--database-url", default=None, help="The database, if not under --data-dir.")(fn)
    return click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                        help="The data directory [default: ./strongroom-data].")(fn)


def _open_storage(data_dir: Path | None, database_url: str | None, master_key_file: Path | None,
                  keyring: bool = True) -> Any:
    """The database and its keyring (``keyring`` false: the master keys found, unchecked, for a
    restore into an empty database, which has no keyring of its own yet)."""
    from strongroom.crypto.providers import KeySources
    from strongroom.server.build import open_storage
    from strongroom.store import open_database

    settings = config.from_env(data_dir=data_dir, database_url=database_url, master_key_file=master_key_file)
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if keyring:
        db, ring, sources = open_storage(settings)
        return db, ring, sources
    sources = KeySources(settings)
    providers = sources.load()
    if not providers:
        raise click.ClickException(f"no master key was found (looked in {sources.places()}); give the key the backup "
                                   f"was made with: --master-key-file FILE or STRONGROOM_MASTER_KEY")
    return open_database(settings.resolved_database_url), providers, sources


@cli.command("status")
@click.option("--endpoint-url", default=f"http://127.0.0.1:{config.DEFAULT_PORT}", show_default=True,
              help="The running server to ask for its health.")
@_storage_options
def status(endpoint_url: str, data_dir: Path | None, database_url: str | None, master_key_file: Path | None) -> None:
    """Health, version and storage of the server; the keyring; accounts, secrets and the rotation queue."""
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(endpoint_url.rstrip("/") + "/_strongroom/health", timeout=5) as r:
            health = json.loads(r.read())
        click.echo(f"server      {endpoint_url}: {health.get('status')} (version {health.get('version')}, "
                   f"{health.get('storage')}, schema {health.get('schema')})")
    except (urllib.error.URLError, OSError) as exc:
        click.secho(f"server      {endpoint_url}: not answering ({exc})", fg="red")
    settings = config.from_env(data_dir=data_dir, database_url=database_url, master_key_file=master_key_file)
    from strongroom.crypto.ring import keyring_status
    from strongroom.store import open_database

    db = open_database(settings.resolved_database_url)
    try:
        members = keyring_status(db)

        def tx_fn(tx: Any) -> dict[str, Any]:
            return {
                "accounts": tx.one("SELECT count(DISTINCT account_id) FROM access_keys WHERE expires_at IS NULL "
                                   "AND account_id <> '-'")[0],
                "secrets": tx.one("SELECT count(*) FROM secrets WHERE deleted_date IS NULL")[0],
                "scheduled for deletion": tx.one("SELECT count(*) FROM secrets WHERE deleted_date IS NOT NULL")[0],
                "functions": tx.one("SELECT count(*) FROM functions")[0],
                "rotations": dict(tx.all("SELECT state, count(*) FROM rotations GROUP BY state")),
            }

        facts = db.read_sync(tx_fn)
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
        created = dt.datetime.fromtimestamp(m["created"], dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
        line = (f"{'keyring' if i == 0 else '':<11} member {m['id']}  {m['state']:<8}  fingerprint {m['fingerprint']}  "
                f"{m['keys']} keys  {m['description']}  created {created}")
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

    settings = config.from_env(data_dir=data_dir, database_url=database_url)
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = open_database(settings.resolved_database_url)
    try:
        click.echo(f"schema version {db.schema_version()} of {len(MIGRATIONS)}")
    finally:
        db.close()


@cli.group("master-key")
def master_key_group() -> None:
    """The keyring of master keys that wrap every other key (docs/keys.md)."""


@master_key_group.command("rotate")
@_storage_options
@click.option("--pending", is_flag=True, help="Add the new key as pending, not active: for several machines, "
                                              "copy it to every node, then run `master-key activate ID`.")
def master_key_rotate(data_dir: Path | None, database_url: str | None, master_key_file: Path | None,
                      pending: bool) -> None:
    """A new master key, active at once on every running node; every stored key re-wrapped with it.

    Safe while servers run: they learn of the new member through the database within a second,
    and the old member keeps opening what it wrapped until the re-wrap is done. Interrupted, it is
    finished by running it again (or by any server, in the background). The old key stays in the
    key file until you retire it (`master-key retire ID`) and remove it.
    """
    from strongroom.crypto.ring import rotate

    db, _, sources = _open_storage(data_dir, database_url, master_key_file)
    try:
        rotate(db, sources, pending=pending, say=click.echo)
    finally:
        db.close()


@master_key_group.command("activate")
@click.argument("member", type=int)
@_storage_options
def master_key_activate(member: int, data_dir: Path | None, database_url: str | None,
                        master_key_file: Path | None) -> None:
    """Make the pending MEMBER active (every node must hold its key first), then re-wrap with it."""
    from strongroom.crypto.ring import activate

    db, _, sources = _open_storage(data_dir, database_url, master_key_file)
    try:
        activate(db, sources, member, say=click.echo)
    finally:
        db.close()


@master_key_group.command("retire")
@click.argument("member", type=int)
@_storage_options
def master_key_retire(member: int, data_dir: Path | None, database_url: str | None,
                      master_key_file: Path | None) -> None:
    """Retire MEMBER: refused while it is active or any wrapped key still names it."""
    from strongroom.crypto.ring import retire
    from strongroom.store import open_database

    settings = config.from_env(data_dir=data_dir, database_url=database_url, master_key_file=master_key_file)
    db = open_database(settings.resolved_database_url)
    try:
        retire(db, member)
    finally:
        db.close()
    click.echo(f"member {member} retired; its key opens nothing in the database now. Keep it as long as you keep "
               f"backups made before the rotation (docs/keys.md)")


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


@cli.command("backup")
@click.argument("file", type=click.Path(path_type=Path))
@_storage_options
def backup_command(file: Path, data_dir: Path | None, database_url: str | None, master_key_file: Path | None) -> None:
    """A consistent, encrypted snapshot of everything in FILE (mode 0600), while the server runs."""
    from strongroom.store.backup import TABLES, backup_file

    db, keyring, _ = _open_storage(data_dir, database_url, master_key_file)
    try:
        with click.progressbar(length=len(TABLES), label="backing up") as bar:
            total = backup_file(db, keyring, file, lambda table, count: bar.update(1))
    finally:
        db.close()
    click.echo(f"{total} rows written to {file}; restoring it needs master key member {keyring.active} "
               f"(fingerprint {keyring.members[keyring.active].fingerprint}) and any key its keyring still used")


@cli.command("restore")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@_storage_options
def restore_command(file: Path, data_dir: Path | None, database_url: str | None, master_key_file: Path | None) -> None:
    """Load a backup into a fresh data directory or database (refused if it holds anything)."""
    from strongroom.store.backup import TABLES, BackupError, restore

    db, providers, _ = _open_storage(data_dir, database_url, master_key_file, keyring=False)
    try:
        with file.open("rb") as source, click.progressbar(length=len(TABLES), label="restoring") as bar:
            total = restore(db, providers, source, lambda table, count: bar.update(1))
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        db.close()
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
    @cli.command(service, cls=_ServiceCommand,
                 context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                   "help_option_names": []},
                 short_help=f"The aws CLI's {service} commands, against strongroom.",
                 help=f"aws {service} ..., against this strongroom (the aws CLI's own commands). "
                      f"`strongroom {service} help` shows them.")
    @click.argument("args", nargs=-1, type=click.UNPROCESSED, shell_complete=_aws_completion(service))
    def command(args: tuple[str, ...]) -> None:
        from strongroom.cli.aws import run

        sys.exit(run(service, args))


for _service in ("secretsmanager", "lambda", "iam", "sts", "cloudtrail"):
    _service_command(_service)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
