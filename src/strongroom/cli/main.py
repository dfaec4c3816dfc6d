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
from strongroom.cli import keys, migrate, operate, services  # noqa: F401
from strongroom.cli.common import _key_provider_options, _prepare_data_dir, _settings, _storage_errors, cli
from strongroom.cli.settings import config_option, print_config

__all__ = ["main"]


class OneLineFormatter(logging.Formatter):
    """One event, one line: control characters in a message (a caller's ``ClientRequestToken``,
    a rotation function's error text) are escaped, so no one can forge a log line. Tracebacks
    appended after the message keep their lines."""

    _ESCAPES = {i: f"\\x{i:02x}" for i in (*range(0x20), 0x7F, 0x85)} | {0x2028: "\\u2028", 0x2029: "\\u2029"}

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = record.message.translate(self._ESCAPES)
        return super().formatMessage(record)


class JSONFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``,
    ``message``, and the request's fields when the line is about one (``request_id``,
    ``service``, ``operation``, ``principal``, ``status``, ``error``, ``duration_ms``); a
    traceback is the ``exception`` member. Messages never carry secret values (the same lines
    as the text format)."""

    FIELDS = ("request_id", "service", "operation", "principal", "status", "error", "duration_ms")

    def format(self, record: logging.LogRecord) -> str:
        import datetime as dt

        import orjson

        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def _configure_logging(log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


@cli.command()
@config_option
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
@click.option(
    "--tls-cert",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Serve HTTPS (TLS 1.2 and up) with this PEM certificate chain; reloaded on SIGHUP. Needs --tls-key.",
)
@click.option(
    "--tls-key",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The PEM private key of --tls-cert (reloaded with it on SIGHUP).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object a line, with a line per request (request id, operation, principal, status, duration).",
)
@click.option(
    "--metrics-listen",
    default=None,
    metavar="HOST:PORT",
    help="Also serve the metrics without authentication on this loopback address, for a local "
    "Prometheus (the API port's /_strongroom/metrics needs a signed request).",
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
    tls_cert: Path | None,
    tls_key: Path | None,
    log_format: str,
    metrics_listen: str | None,
    config: Path | None,
    print_config: bool,
) -> None:
    """Run the server.

    Every option can also be set in the --config file or by its STRONGROOM_* variable
    (flag > environment > file > default; docs/configuration.md).

    Start-up order: the data directory is checked and locked, the address bound, storage opened,
    and only then is "listening on" printed. Each mistake on the way is one line and exit 1.
    """
    from strongroom.crypto import harden_process
    from strongroom.server.build import build, describe_endpoint
    from strongroom.server.listen import ListenError, bind, bind_workers, is_loopback

    if print_config:
        _print_config(key_options)
        return
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together.")
    metrics_address = _metrics_address(metrics_listen) if metrics_listen else None
    # Everything the server creates (database, WAL/SHM, audit files, function code) is its own.
    os.umask(0o077)
    _configure_logging(log_format)
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
        tls_cert=tls_cert,
        tls_key=tls_key,
        log_format=log_format,
        metrics_listen=metrics_listen,
        **key_options,
    )
    tls = _tls(settings)
    lock = None if settings.dev else _prepare_data_dir(settings, "serve")
    try:
        sockets = (
            bind_workers(settings.host, settings.port, workers) if workers > 1 else [bind(settings.host, settings.port)]
        )
    except ListenError as exc:
        raise click.ClickException(str(exc)) from None
    if settings.port == 0:  # the port the kernel chose is the one to print and to give functions
        settings = dataclasses.replace(settings, port=sockets[0].getsockname()[1])
    # Function workers call the server with an SDK that trusts no private CA and may not match the
    # certificate's names: under TLS they get a loopback plain-HTTP listener of their own (every
    # request on it is signed and authorized as on the main port; loopback only). With --workers,
    # each worker opens its own (its functions' credentials live in its memory alone).
    internal = None
    if tls is not None and workers == 1:
        internal = bind("127.0.0.1", 0)
        settings = dataclasses.replace(settings, function_endpoint=f"http://127.0.0.1:{internal.getsockname()[1]}")
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
            code = _serve_workers(settings, sockets, trusted_proxies, tls, metrics_address)
        finally:
            if lock is not None:
                lock.release()
        sys.exit(code)
    with _storage_errors(settings):
        server = build(settings)
    if metrics_address is not None:
        _listen_for_metrics(server, *metrics_address)
    click.echo(describe_endpoint(server))
    sys.stdout.flush()
    # uvicorn drains in-flight requests on SIGTERM/SIGINT, then re-raises the signal to the handler
    # that was there before it. Make that handler a clean exit, so a drained stop exits 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    try:
        _run(server.app, settings, sockets, trusted_proxies, tls, internal)
    finally:
        if lock is not None:
            lock.release()


def _run(
    app: Any,
    settings: config.Settings,
    sockets: list[socket.socket],
    trusted_proxies: str | None,
    tls: Any = None,
    plain: socket.socket | None = None,
    on_started: Any = None,
) -> None:
    """Serve ``app`` on ``sockets`` with uvicorn until SIGTERM/SIGINT (drained), then return.
    ``tls``: the reloading TLS context for ``sockets``; ``plain``: one more listener without TLS
    (the functions' loopback one); ``on_started``: called once every socket accepts connections."""
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
        # JSON logs: uvicorn's own lines ("Invalid HTTP request received.") go through the root
        # logger's JSON handler instead of uvicorn's text formatter.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
    )

    if tls is not None:
        uv_config.load()
        uv_config.ssl = tls.context  # TLS 1.2+, its certificate swapped on SIGHUP (server/tls.py)
    # SIGHUP (systemctl reload) reloads what can be reloaded; its default action would end the server.
    signal.signal(signal.SIGHUP, functools.partial(_reload_tls, tls))
    _make_server(uv_config, plain, on_started).run(sockets=sockets)


def _serve_workers(
    settings: config.Settings,
    sockets: list[socket.socket],
    trusted_proxies: str | None,
    tls: Any,
    metrics_address: tuple[str, int] | None,
) -> int:
    """``serve --workers N``: the parent forks one worker per socket and supervises them
    (strongroom.server.workers says how and why); answer the parent's exit status."""
    from strongroom.cache import Doorbell, SharedCounter
    from strongroom.server.build import build, describe_endpoint
    from strongroom.server.listen import bind
    from strongroom.server.workers import supervise

    shared = SharedCounter(len(sockets))
    doorbell = Doorbell()  # a rotation queued by any worker starts in worker 0 at once

    def worker(index: int, sock: socket.socket, ready: Any) -> int:
        shared.slot = index
        try:
            # Its functions call back this worker alone: their credentials live in its memory. The
            # callback listener is plain HTTP on loopback even under TLS (as in one process).
            callback = bind("127.0.0.1", 0)
            callback_port = callback.getsockname()[1]
            with _storage_errors(settings):
                server = build(
                    settings,
                    shared=shared,
                    doorbell=doorbell,
                    callback_port=callback_port,
                    background=index == 0,
                    # The workers split one node's PostgreSQL pool: N workers open about as many
                    # connections as one process would, not N times as many.
                    pool_size=max(2, 8 // len(sockets)),
                )
            if metrics_address is not None and index == 0:
                _listen_for_metrics(server, *metrics_address)  # worker 0's counts (docs/metrics.md)
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
        _run(server.app, settings, [sock], trusted_proxies, tls, callback, lambda: ready(describe_endpoint(server)))
        return 0

    def on_ready(banner: str) -> None:
        click.echo(f"{banner}\n  workers: {len(sockets)}")
        sys.stdout.flush()

    return supervise(sockets, worker, on_ready)


def _server_class() -> Any:
    import asyncio

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, with one more listener without TLS (the functions' loopback one).
        Built as uvicorn 0.54's ``startup`` builds its own listeners (uvicorn is pinned)."""

        def __init__(self, config: uvicorn.Config, plain: socket.socket | None, on_started: Any) -> None:
            super().__init__(config)
            self.plain = plain
            self.on_started = on_started

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.should_exit:
                return
            if self.plain is not None:
                await self._listen_plain()
            if self.started and self.on_started is not None:
                self.on_started()

        async def _listen_plain(self) -> None:
            assert self.plain is not None
            config = self.config

            def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
                return config.http_protocol_class(  # type: ignore[call-arg]
                    config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=_loop
                )

            loop = asyncio.get_running_loop()
            self.servers.append(await loop.create_server(create_protocol, sock=self.plain, backlog=config.backlog))

    return Server


def _make_server(config: Any, plain: Any, on_started: Any = None) -> Any:
    return _server_class()(config, plain, on_started)


def _tls(settings: config.Settings) -> Any:
    """The TLS context that reloads on SIGHUP, or None without --tls-cert."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    from strongroom.server.tls import ReloadingTLS, TLSError

    try:
        return ReloadingTLS(settings.tls_cert, settings.tls_key)
    except TLSError as exc:
        raise click.ClickException(str(exc)) from None


def _reload_tls(tls: Any, signum: int, frame: object) -> None:
    from strongroom.server.tls import TLSError

    log = logging.getLogger("strongroom.server")
    if tls is None:
        log.info("SIGHUP: nothing to reload (no --tls-cert); still serving")
        return
    try:
        tls.reload()
    except TLSError as exc:
        log.error("SIGHUP: %s; still serving the previous certificate", exc)
        return
    log.info("SIGHUP: TLS certificate reloaded from %s; new connections use it", tls.cert)


def _metrics_address(text: str) -> tuple[str, int]:
    from strongroom.server.listen import is_loopback

    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{text!r} is not HOST:PORT", param_hint="--metrics-listen")
    if not is_loopback(host):
        raise click.BadParameter(
            f"{host} is not a loopback address: the metrics listener has no authentication "
            "(scrape /_strongroom/metrics on the API port with a signed request instead)",
            param_hint="--metrics-listen",
        )
    return host, int(port)


def _listen_for_metrics(server: Any, host: str, port: int) -> None:
    from strongroom.server.listen import _why
    from strongroom.server.metrics import listen

    try:
        listen(server.app.metrics, host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen for metrics on {host}:{port}: {_why(exc)}") from None
    click.echo(f"  metrics: http://{host}:{port}/metrics (no authentication; loopback only)")


def _print_config(key_options: dict[str, Any]) -> None:
    """``serve --print-config``: the options as the command resolved them, then the settings the
    environment alone sets, secrets masked."""
    ctx = click.get_current_context()
    try:
        settings = config.from_env()
    except config.ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    option_fields = {p.name for p in ctx.command.params} | set(key_options)
    extra: dict[str, tuple[Any, str]] = {}
    for field in dataclasses.fields(settings):
        if field.name in option_fields:
            continue
        value = getattr(settings, field.name)
        if isinstance(value, Path):
            value = str(value)
        extra[field.name.replace("_", "-")] = (_mask(field.name.replace("_", "-"), value), "environment or default")
    click.echo(print_config(ctx, extra, _mask))


_SECRET_WORDS = ("secret", "pin", "password", "master-key-env")


def _mask(key: str, value: Any) -> Any:
    """What --print-config shows of a value: secrets as ***, a URL without its password."""
    if value is None or value == ():
        return value
    if any(word in key for word in _SECRET_WORDS):
        return "***"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) and "://" in value and "@" in value:
        scheme, rest = value.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return value


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
