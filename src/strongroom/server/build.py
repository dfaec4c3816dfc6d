"""Wiring: settings in, a ready ASGI application out.

The order matters and is the same on every start: database (migrated), keyring (its master keys
found and checked against the database: :func:`strongroom.crypto.ring.open_keyring`),
administrator key, services, verifier, application. Background work (the purge of secrets past
their recovery window, the keyring watcher) starts with the application and stops with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strongroom import config
from strongroom.audit import AuditTrail
from strongroom.auth.authorizer import BUILTIN_ROTATION_ROLE, Authorizer
from strongroom.auth.keys import KeyStore
from strongroom.auth.principal import BUILTIN_ROTATOR
from strongroom.auth.sigv4 import SigV4Verifier
from strongroom.cache import Doorbell, SharedCounter
from strongroom.crypto import Keyring
from strongroom.crypto.providers import KeySources
from strongroom.crypto.ring import POLL_SECONDS, Watcher, internal_key, open_keyring
from strongroom.protocol import JSONProtocol
from strongroom.protocol.query import QueryProtocol
from strongroom.protocol.rest_json import RestJSONProtocol
from strongroom.rotation import sandbox as function_sandbox
from strongroom.rotation.engine import RotationEngine, RotationSettings
from strongroom.rotation.runtime import FunctionRuntime, FunctionSpec, parse_cpus
from strongroom.server.app import App
from strongroom.server.console import Console
from strongroom.server.metrics import Metrics, StateCollector
from strongroom.server.pipeline import Service
from strongroom.services.cloudtrail import CloudTrail
from strongroom.services.iam import IAM
from strongroom.services.iam import OPERATIONS as IAM_OPERATIONS
from strongroom.services.lambda_ import BUILTINS, Lambda
from strongroom.services.lambda_ import OPERATIONS as LAMBDA_OPERATIONS
from strongroom.services.secretsmanager import SecretsManager
from strongroom.services.secretsmanager.values import ValueCipher
from strongroom.services.sts import OPERATIONS as STS_OPERATIONS
from strongroom.services.sts import STS
from strongroom.store import Database, maintenance, open_database

__all__ = ["Server", "build"]

log = logging.getLogger("strongroom.server")

# AWS's request limits: "Request must be smaller than 69905067 bytes for the CreateFunction
# operation" (and the same for UpdateFunctionCode: 50 MB of zip, base64 in JSON); 6 MiB of Invoke
# payload. Every other Lambda call gets the general limit (Settings.max_body_bytes, 1 MiB).
LAMBDA_BODY_LIMITS = {"CreateFunction": 69_905_067, "UpdateFunctionCode": 69_905_067, "Invoke": 6 * 1024 * 1024}


@dataclass
class Server:
    settings: config.Settings
    app: App
    db: Database
    secretsmanager: SecretsManager
    lambda_: Lambda
    rotation: RotationEngine
    keys: KeyStore
    admin_access_key_id: str
    credentials_file: Path | None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


def open_storage(
    settings: config.Settings, pool_size: int | None = None, shared_writers: bool = False
) -> tuple[Database, Keyring, KeySources]:
    """The database (migrated) and its keyring; a key-related mistake is one line (KeyringError)."""
    sources = KeySources(settings)
    db = open_database(settings.resolved_database_url, pool_size, shared_writers)
    try:
        return db, open_keyring(settings, db, sources), sources
    except BaseException:
        db.close()
        raise


def build(
    settings: config.Settings,
    *,
    shared: SharedCounter | None = None,
    doorbell: Doorbell | None = None,
    callback_port: int | None = None,
    background: bool = True,
    pool_size: int | None = None,
) -> Server:
    """The server. For one worker of several (``serve --workers``): ``shared`` is the counter the
    workers share (revocations and policy changes reach every worker's caches at once),
    ``doorbell`` the one a worker rings when it queued a rotation (worker 0, which runs them,
    listens), ``callback_port`` the loopback port of this worker alone that its functions call back (their
    credentials live in this worker's memory), and ``background`` whether this worker runs the
    work that must run once per server (the rotation engine and the purge); worker 0 does.
    ``pool_size``: PostgreSQL's thread pool (the workers of one server split one node's)."""
    if settings.dev and settings.database_url:
        raise SystemExit("--dev keeps state in memory and cannot be used with --database-url")
    if not settings.dev:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db, keyring, sources = open_storage(settings, pool_size, shared_writers=shared is not None)
    watcher = Watcher(db, keyring, sources)
    keys = KeyStore(db, keyring)
    keys.shared = shared
    credentials_file = None if settings.dev else settings.data_dir / "admin-credentials"
    admin_id, credentials_file = keys.ensure_admin(
        settings.account_id, settings.admin_access_key_id, settings.admin_secret_access_key, credentials_file
    )
    # Pagination tokens are signed with a random key of strongroom's own (a key in a token
    # never gives out bytes to derive from); tokens issued by versions before it no longer open.
    token_key = internal_key(db, keyring, "strongroom:pagination-tokens")
    cipher = ValueCipher(keyring)
    sm = SecretsManager(db, cipher, token_key)
    verifier = SigV4Verifier(keys.lookup)
    if callback_port is not None:  # a --workers worker: its functions call it back on its own port
        endpoint = f"http://127.0.0.1:{callback_port}"
    else:
        endpoint = settings.function_endpoint or f"http://{_loopback(settings.host)}:{settings.port}"

    def function_env(spec: FunctionSpec) -> dict[str, str]:
        """Lambda's reserved variables, and short-lived credentials this node accepts."""
        _, _, _, region, account, _, name = spec.arn.split(":", 6)
        # A function acts as its role; only the built-in rotators (no code of their own, a reserved
        # name) act as strongroom's rotation role. An uploaded function never falls back to it.
        if spec.code_dir is None and name in BUILTINS:
            role, privilege = BUILTIN_ROTATION_ROLE, BUILTIN_ROTATOR
        elif spec.role and spec.role.rsplit("/", 1)[-1] != BUILTIN_ROTATION_ROLE:
            role, privilege = spec.role.rsplit("/", 1)[-1], None
        else:
            raise RuntimeError(f"function {spec.arn} has no execution role of its own; it is not run")
        credential = keys.temporary(account, f"arn:aws:sts::{account}:assumed-role/{role}/{name}", privilege=privilege)
        return {
            "SECRETS_MANAGER_ENDPOINT": endpoint,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
            "AWS_ENDPOINT_URL_LAMBDA": endpoint,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": credential.access_key_id,
            "AWS_SECRET_ACCESS_KEY": credential.secret_access_key,
            "AWS_SESSION_TOKEN": credential.session_token or "",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "strongroom",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3",
            "LAMBDA_TASK_ROOT": spec.code_dir or "",
            "STRONGROOM_FUNCTION_ARN": spec.arn,
            "PYTHONUNBUFFERED": "1",
        }

    cpus = config.function_cpus()
    sandbox, refusal = _function_sandbox(settings)
    try:
        runtime = FunctionRuntime(
            function_env,
            cpus=parse_cpus(cpus) if cpus else None,
            sandbox=sandbox,
            unsafe=settings.unsafe_functions,
            refusal=refusal,
            revoke=keys.revoke,
            idle_timeout=settings.function_idle_seconds,
            concurrency=settings.function_concurrency,
        )
    except ValueError as exc:
        raise SystemExit(f"STRONGROOM_FUNCTION_CPUS: {exc}") from None
    functions = Lambda(db, cipher, runtime, None if settings.dev else settings.data_dir / "functions")
    runtime.on_invoke = functions.record_invocation
    if not settings.dev:
        (settings.data_dir / "functions").mkdir(exist_ok=True, mode=0o700)
    authorizer = Authorizer(db)
    iam = IAM(db, keys, authorizer.invalidate)
    sts = STS(db, keys, authorizer)
    audit = AuditTrail(
        db,
        None if settings.dev else settings.data_dir / "audit",
        settings.audit_retention_days,
        durable_reads=settings.audit_durable_reads,
    )
    rotation = RotationEngine(cipher, db, runtime, functions.resolve, RotationSettings.from_env(), audit=audit)
    metrics = Metrics(access_log=settings.log_format == "json")
    audit.on_flush = metrics.observe_flush
    metrics.register(StateCollector(lambda: _state_gauges(db, audit, runtime, keyring)))
    sm.rotation = rotation
    if doorbell is not None and not background:
        rotation.also_wake = doorbell.ring  # worker 0 runs the rotation: start it now, not at its poll
    server: Server

    async def startup() -> None:
        server.tasks.append(asyncio.create_task(keys.watch()))  # revocations made on other nodes
        server.tasks.append(asyncio.create_task(_keyring_loop(watcher)))
        if background:
            if doorbell is not None:
                doorbell.listen(asyncio.get_running_loop(), rotation.wake)
            server.tasks.append(asyncio.create_task(_purge_loop(sm, audit, settings.purge_interval_seconds)))
            server.tasks.append(asyncio.create_task(rotation.run()))

    async def shutdown() -> None:
        for task in server.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        runtime.close()
        functions.close()
        audit.close()
        db.close()

    async def reset() -> None:
        await db.write(maintenance.reset)

    schema = db.schema_version()

    def health() -> dict[str, Any]:
        # Unauthenticated: whether the node serves and what it runs on, never whose it is. No
        # query: a node whose database is unreachable is alive (restarting it would not help);
        # /_strongroom/ready says it cannot serve. The schema is the one it migrated to at start.
        return {
            "storage": db.dialect,
            "schema": schema,
            "dev": settings.dev,
            "keyring": {"active": keyring.active, "loaded": sorted(keyring.members)},
        }

    async def readiness() -> dict[str, str]:
        return await _readiness(db, keyring)

    app = App(
        services=[
            Service("secretsmanager", JSONProtocol("secretsmanager"), sm.handlers),
            Service(
                "lambda",
                RestJSONProtocol("lambda", LAMBDA_OPERATIONS),
                functions.handlers,
                body_limits=LAMBDA_BODY_LIMITS,
            ),
            Service("cloudtrail", JSONProtocol("cloudtrail", ["LookupEvents"]), CloudTrail(db).handlers),
            Service("iam", QueryProtocol("iam", IAM_OPERATIONS), iam.handlers),
            Service("sts", QueryProtocol("sts", STS_OPERATIONS), sts.handlers),
        ],
        verifier=verifier,
        dev=settings.dev,
        account_id=settings.account_id,
        max_body_bytes=settings.max_body_bytes,
        expensive_rate=settings.expensive_calls_per_second,
        on_startup=startup,
        on_shutdown=shutdown,
        on_reset=reset,
        health=health,
        readiness=readiness,
        metrics=metrics,
        audit=audit,
        authorizer=authorizer,
    )
    app.console = Console(pipeline=app, db=db, keys=keys, functions=functions, dev=settings.dev)
    server = Server(settings, app, db, sm, functions, rotation, keys, admin_id, credentials_file)
    return server


def _state_gauges(
    db: Database, audit: AuditTrail, runtime: FunctionRuntime, keyring: Keyring
) -> list[tuple[str, str, list[str], list[tuple[list[str], float]]]]:
    """The gauges a scrape reads (server/metrics.py's StateCollector), two queries included."""
    from strongroom import clock

    states, due = db.read_sync(lambda tx: maintenance.rotation_gauges(tx, clock.now()))
    workers = runtime.worker_counts()
    pool = db.pool_stats()
    return [
        ("strongroom_audit_queue_depth", "Audit records waiting for their commit.", [], [([], audit.queue_depth)]),
        ("strongroom_audit_healthy", "1 while the audit trail commits, 0 while it fails.", [], [([], audit.healthy)]),
        (
            "strongroom_rotations",
            "Rotations recorded in the database, by state (queued, running, succeeded, failed, ...).",
            ["state"],
            [([state], n) for state, n in sorted(states.items())],
        ),
        ("strongroom_secrets_rotation_due", "Live secrets whose scheduled rotation is due now.", [], [([], due)]),
        (
            "strongroom_function_workers",
            "Function worker processes of this server, by state.",
            ["state"],
            [([state], n) for state, n in sorted(workers.items())],
        ),
        (
            "strongroom_storage_pool",
            "The storage engine's threads, open connections and queued work.",
            ["kind"],
            [([kind], n) for kind, n in sorted(pool.items())],
        ),
        ("strongroom_keyring_members_loaded", "Master keys loaded in the keyring.", [], [([], len(keyring.members))]),
    ]


async def _readiness(db: Database, keyring: Keyring) -> dict[str, str]:
    """``/_strongroom/ready``'s checks: each "ok" or what is wrong, in a few words."""
    from strongroom.store.schema import MIGRATIONS

    checks: dict[str, str] = {}
    try:
        version = await db.read(maintenance.schema_version)
        checks["storage"] = "ok"
        checks["schema"] = (
            "ok" if version == len(MIGRATIONS) else f"version {version}, this server needs {len(MIGRATIONS)}"
        )
    except Exception as exc:  # noqa: BLE001 - not ready, and the answer says why
        checks["storage"] = f"unreachable: {type(exc).__name__}"
        checks["schema"] = "unknown"
    checks["keys"] = "ok" if keyring.active in keyring.members else "the active master key is not loaded"
    return checks


async def _purge_loop(sm: SecretsManager, audit: AuditTrail, interval: float) -> None:
    from strongroom.audit import service_event_record

    while True:
        try:
            while gone := await sm.purge_due():
                for secret in gone:  # the deletion itself is a service event in the trail
                    await audit.record(
                        service_event_record(
                            secret.account_id,
                            secret.region,
                            "secretsmanager",
                            "DeleteSecret",
                            {"deletionCompleted": True},
                            secret.arn,
                        )
                    )
            await audit.purge_expired()
        except Exception:
            log.exception("purge of deleted secrets failed")
        await asyncio.sleep(interval)


def _function_sandbox(settings: config.Settings) -> tuple[function_sandbox.Sandbox | None, str]:
    """The sandbox uploaded functions run in, or None and why; one line at start-up either way."""
    if settings.unsafe_functions:
        log.warning(
            "WARNING: --unsafe-functions: uploaded functions run WITHOUT a sandbox, as this server's "
            "own user; any function can read the master key, the database and every secret"
        )
        return None, "--unsafe-functions"
    try:
        sandbox = function_sandbox.find(settings.bwrap)
    except function_sandbox.SandboxUnavailable as exc:
        log.error(
            "uploaded functions will NOT run: the function sandbox is unavailable: %s "
            "(built-in rotators still run; --unsafe-functions runs uploaded code unsandboxed)",
            exc,
        )
        return None, str(exc)
    exposed = [
        str(path)
        for path in (None if settings.dev or settings.database_url else settings.data_dir, settings.master_key_file)
        if path is not None and sandbox.exposes(path)
    ]
    if exposed:
        reason = f"{', '.join(exposed)} would be visible inside it (move it out of the system and Python directories)"
        log.error(
            "uploaded functions will NOT run: %s (built-in rotators still run; --unsafe-functions runs uploaded "
            "code unsandboxed)",
            reason,
        )
        return None, reason
    log.info("functions run in a sandbox: %s (uid %d, code at /var/task)", sandbox.bwrap, function_sandbox.SANDBOX_UID)
    if not function_sandbox.processes_bounded():
        log.warning(
            "running as root without a writable pids cgroup (%s): a function's process count is not "
            "bounded (RLIMIT_NPROC does not bind root); run strongroom as an ordinary user",
            function_sandbox.PIDS_ROOT,
        )
    return sandbox, ""


async def _keyring_loop(watcher: Watcher) -> None:
    while True:
        try:
            await watcher.tick()
        except Exception:
            log.exception("reading the keyring failed")
        await asyncio.sleep(POLL_SECONDS)


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def describe_endpoint(server: Server) -> str:
    s = server.settings
    lines = [
        f"strongroom {'(DEV MODE) ' if s.dev else ''}listening on {'https' if s.tls_cert else 'http'}://{s.host}:{s.port}",
        f"  storage: {server.db.dialect} ({'memory' if s.dev else _redact(server.db.url)})",
    ]
    if server.credentials_file is not None:
        lines.append(f"  administrator credentials: {server.credentials_file} (profile [strongroom])")
    else:
        lines.append(f"  administrator access key: {server.admin_access_key_id}")
    return "\n".join(lines)


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return os.path.abspath(url)
