"""``strongroom``: the command line."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import click

from strongroom import config

# The command modules register their commands on the group when imported.
from strongroom.cli import keys, operate, services  # noqa: F401
from strongroom.cli.common import _key_provider_options, _prepare_data_dir, _settings, _storage_errors, cli

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
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    envvar="STRONGROOM_WORKERS",
    help="Server processes sharing the port and the storage (one per core); see docs/deploy.md.",
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
    workers: int,
    dev: bool,
    dev_allow_remote: bool,
    unsafe_functions: bool,
) -> None:
    """Run the server.

    Start-up order: the data directory is checked and locked, the address bound, storage opened,
    and only then is "listening on" printed. Each mistake on the way is one line and exit 1.
    """
    from strongroom.crypto import harden_process
    from strongroom.server.build import build, describe_endpoint
    from strongroom.server.listen import ListenError, bind, bind_workers, is_loopback

    # Everything the server creates (database, WAL/SHM, audit files, function code) is its own.
    os.umask(0o077)
    _configure_logging()
    if dev:
        _check_dev(host, data_dir, database_url, dev_allow_remote)
    elif dev_allow_remote:
        raise click.UsageError("--dev-allow-remote only means something with --dev.")
    if dev and workers > 1:
        raise click.UsageError("--dev keeps state in one process's memory and cannot be used with --workers.")
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
        sockets = (
            bind_workers(settings.host, settings.port, workers) if workers > 1 else [bind(settings.host, settings.port)]
        )
    except ListenError as exc:
        raise click.ClickException(str(exc)) from None
    if settings.port == 0:  # the port the kernel chose is the one to print and to give functions
        settings = dataclasses.replace(settings, port=sockets[0].getsockname()[1])
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
    if workers > 1:
        try:
            code = _serve_workers(settings, sockets, trusted_proxies)
        finally:
            if lock is not None:
                lock.release()
        sys.exit(code)
    with _storage_errors(settings):
        server = build(settings)
    click.echo(describe_endpoint(server))
    sys.stdout.flush()
    # uvicorn drains in-flight requests on SIGTERM/SIGINT, then re-raises the signal to the handler
    # that was there before it. Make that handler a clean exit, so a drained stop exits 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    try:
        _run(server.app, settings, sockets, trusted_proxies)
    finally:
        if lock is not None:
            lock.release()


def _run(
    app: Any,
    settings: config.Settings,
    sockets: list[socket.socket],
    trusted_proxies: str | None,
    on_started: Any = None,
) -> None:
    """Serve ``app`` on ``sockets`` with uvicorn until SIGTERM/SIGINT (drained), then return.
    ``on_started``: called once every socket accepts connections."""
    import uvicorn

    # The client's address decides aws:SourceIp conditions and the audit's sourceIPAddress, so
    # X-Forwarded-For is believed only from proxies named here (uvicorn's default believes any
    # client on 127.0.0.1, which would let a local process claim any address).
    from strongroom.server.http import WholeAnswerHttpToolsProtocol

    protocol = functools.partial(WholeAnswerHttpToolsProtocol, read_timeout=settings.read_timeout_seconds)
    uv_config = uvicorn.Config(
        app,
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

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and on_started is not None:
                on_started()

    Server(uv_config).run(sockets=sockets)


def _serve_workers(settings: config.Settings, sockets: list[socket.socket], trusted_proxies: str | None) -> int:
    """``serve --workers N``: the parent forks one worker per socket and supervises them
    (strongroom.server.workers says how and why); answer the parent's exit status."""
    from strongroom.cache import SharedCounter
    from strongroom.server.build import build, describe_endpoint
    from strongroom.server.listen import bind
    from strongroom.server.workers import supervise

    shared = SharedCounter(len(sockets))

    def worker(index: int, sock: socket.socket, ready: Any) -> int:
        shared.slot = index
        try:
            # Its functions call back this worker alone: their credentials live in its memory.
            callback = bind("127.0.0.1", 0)
            callback_port = callback.getsockname()[1]
            with _storage_errors(settings):
                server = build(
                    settings,
                    shared=shared,
                    callback_port=callback_port,
                    background=index == 0,
                    # The workers split one node's PostgreSQL pool: N workers open about as many
                    # connections as one process would, not N times as many.
                    pool_size=max(2, 8 // len(sockets)),
                )
        except Exception as exc:  # an operator's mistake is one line, as main() makes it
            line = _failure_line(exc)
            if line is None:
                raise
            click.echo(" ".join(line.split("\n")), err=True)
            return 1
        except SystemExit as exc:
            if isinstance(exc.code, str):
                click.echo(f"strongroom: {exc.code}", err=True)
                return 1
            raise
        signal.signal(signal.SIGTERM, _exit_cleanly)  # as in one process: a drained stop exits 0
        signal.signal(signal.SIGINT, _exit_cleanly)
        logging.getLogger("strongroom.workers").info(
            "worker %d (PID %d) serving; its functions call back on 127.0.0.1:%d", index, os.getpid(), callback_port
        )
        _run(server.app, settings, [sock, callback], trusted_proxies, lambda: ready(describe_endpoint(server)))
        return 0

    def on_ready(banner: str) -> None:
        click.echo(f"{banner}\n  workers: {len(sockets)}")
        sys.stdout.flush()

    return supervise(sockets, worker, on_ready)


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
    except Exception as exc:
        line = _failure_line(exc)
        if line is None:
            raise
        _fail(line, 1)
    sys.exit(rv if isinstance(rv, int) else 0)


def _failure_line(exc: Exception) -> str | None:
    """The one line for an error a command did not turn into a sentence of its own (a refusal,
    an operating-system or a database error); None for a surprise, which keeps its traceback."""
    import sqlite3

    if isinstance(exc, click.ClickException):
        return f"strongroom: {exc.format_message()}"
    if isinstance(exc, OSError):
        return f"strongroom: {exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}"
    if isinstance(exc, sqlite3.Error):
        return f"strongroom: the database cannot be used: {exc}"
    return None


def _fail(message: str, code: int) -> None:
    click.echo(" ".join(message.split("\n")), err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
