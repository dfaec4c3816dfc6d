"""The rotation engine: rotation requests, the four steps, retries and schedules.

A rotation is a row in ``rotations`` (the job) whose token is the id of the new version. Secrets
Manager's RotateSecret (its parameters and answers are the service's, in
``services/secretsmanager/rotating.py``) calls :meth:`RotationEngine.request` inside its
transaction, which records the job and the value-less AWSPENDING version; the call then
returns; the engine's loop then claims due jobs *through the database* (a lease in
``claimed_by`` / ``claimed_until``), so several nodes on one PostgreSQL never run one rotation
twice, and a node killed mid-rotation leaves a job another start picks up with the same token.

An attempt invokes the function four times, in order: ``createSecret``, ``setSecret``,
``testSecret``, ``finishSecret``. Between steps the engine re-reads the job: a cancelled or
abandoned rotation stops at the next step boundary. After ``finishSecret`` it checks AWSCURRENT
is on the token's version, removes AWSPENDING, sets ``LastRotatedDate`` and the next window.

A failed step fails the attempt; the rotation is retried with the same token after a capped
exponential back-off (``retry_base`` * 2^(attempt-1), at most ``retry_cap``), up to
``max_attempts``; then it is marked failed and AWSPENDING stays on the partial version, as on AWS,
until the next RotateSecret (which reattempts it) or a manual change. Every step's outcome,
duration and error text (never a value) is recorded in ``rotation_steps``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import random
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from strongroom import clock, config
from strongroom.domain import labels as L
from strongroom.domain.schedule import Schedule, ScheduleError, next_window, parse_rules, pick_moment
from strongroom.errors import AWSError
from strongroom.rotation.runtime import FunctionRuntime, FunctionSpec
from strongroom.store import Database, Tx
from strongroom.store import rotations as jobs
from strongroom.store import secrets as q
from strongroom.store.secrets import SecretRow, VersionRow

__all__ = ["CANNOT_INVOKE", "STEPS", "RotationEngine", "RotationRequest", "RotationResult", "RotationSettings"]

log = logging.getLogger("strongroom.rotation")

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
ACTIVE = ("queued", "running")

CANNOT_INVOKE = (
    "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function "
    "policy grants access to the principal secretsmanager.amazonaws.com."
)


@dataclass(frozen=True)  # pragma: no mutate (nothing assigns to it: frozen only documents that)
class RotationSettings:
    max_attempts: int = 5
    retry_base: float = 30.0
    retry_cap: float = 3600.0
    poll_interval: float = 1.0
    lease: float = 120.0
    concurrency: int = 1  # rotations run at once by one node (each running step holds a worker process)

    @classmethod
    def from_env(cls) -> RotationSettings:
        env: dict[str, Any] = config.rotation_overrides()  # config.ROTATION_VARIABLES names them
        return cls(
            max_attempts=int(env.get("max_attempts", cls.max_attempts)),
            retry_base=float(env.get("retry_base", cls.retry_base)),
            retry_cap=float(env.get("retry_cap", cls.retry_cap)),
            poll_interval=float(env.get("poll_interval", cls.poll_interval)),
            lease=float(env.get("lease", cls.lease)),
            concurrency=int(env.get("concurrency", cls.concurrency)),
        )


@dataclass(frozen=True)  # pragma: no mutate (nothing assigns to it: frozen only documents that)
class RotationRequest:
    """A RotateSecret call, checked by the service: the secret (found and locked in the caller's
    transaction), the token of the new version, the function to run, the new rotation rules (None:
    keep the secret's), whether to rotate now, and the call's time."""

    secret: SecretRow
    token: str
    function_arn: str
    rules: dict[str, Any] | None
    immediate: bool
    now: float


@dataclass(frozen=True)  # pragma: no mutate (nothing assigns to it: frozen only documents that)
class RotationResult:
    """``stalled``: a previous rotation holds AWSPENDING on another version; nothing was recorded,
    it is queued again in the same transaction and the caller refuses."""

    stalled: bool


@dataclass
class _Job:
    id: int
    secret_id: int
    token: str
    rotation_token: str
    function_arn: str
    immediate: bool
    attempts: int


class ValueCipher(Protocol):
    """What the engine needs of Secrets Manager's value cipher
    (:class:`strongroom.services.secretsmanager.values.ValueCipher`): RotateImmediately=false copies
    the current value into the pending version, decrypted and encrypted again for its new id."""

    def decrypt(
        self, tx: Tx, account_id: str, region: str, key_ref: str, arn: str, version_id: str, kind: int, blob: bytes
    ) -> str | bytes: ...

    def new_version(self, tx: Tx, secret: SecretRow, version_id: str, value: str | bytes, now: float) -> VersionRow: ...


# (tx, account, region, function reference, the rotated secret's ARN) -> what to run, or None when
# Secrets Manager may not invoke it for that secret (see Lambda.resolve).
Resolver = Callable[[Tx, str, str, str, str], "FunctionSpec | None"]


class RotationEngine:
    """Runs the rotations Secrets Manager requests (:meth:`request`); its loop runs with the server."""

    def __init__(
        self,
        cipher: ValueCipher,
        db: Database,
        runtime: FunctionRuntime,
        resolve: Resolver,
        settings: RotationSettings | None = None,
        node_id: str | None = None,
        audit: Any = None,
    ) -> None:
        self.audit = audit
        self._loop: asyncio.AbstractEventLoop | None = None
        self.cipher = cipher
        self.db = db
        self.runtime = runtime
        self.resolve = resolve
        self.settings = settings or RotationSettings()
        self.node_id = node_id or uuid.uuid4().hex
        self._wake = asyncio.Event()
        # Called by wake() besides: the doorbell of the worker that runs the engine, when this
        # process is another worker of one server (serve --workers) and runs none.
        self.also_wake: Callable[[], None] | None = None
        self._executor: ThreadPoolExecutor | None = None  # the threads that wait on function invocations

    # ----------------------------------------------------------------------- the requests

    def request(self, tx: Tx, req: RotationRequest) -> RotationResult:
        """Record a rotation of ``req.secret`` in the caller's transaction: the job, the value-less
        AWSPENDING version and the secret's rotation settings. A retry of the same request (the
        same token, its job still queued or running) changes nothing. Raises AccessDeniedException
        when Secrets Manager may not invoke the function for this secret, ResourceExistsException
        when a rotation to this token already succeeded."""
        secret, token, function_arn, now = req.secret, req.token, req.function_arn, req.now
        stages = q.stages_of(tx, secret.id)
        pending, current = stages.get(L.AWSPENDING), stages.get(L.AWSCURRENT)
        if pending is not None and pending != current and pending != token:
            # A rotation that gave up is tried again when someone asks for a new one, as AWS says;
            # the caller is refused, in this same transaction (its audit record says so).
            jobs.requeue_failed(tx, secret.id, pending, now)
            return RotationResult(stalled=True)
        if self.resolve(tx, secret.account_id, secret.region, function_arn, secret.arn) is None:
            raise AWSError("AccessDeniedException", CANNOT_INVOKE)
        existing = jobs.state_of_token(tx, secret.id, token)
        if existing is not None:
            if existing in ACTIVE:  # a retry of the same call: nothing new to do
                return RotationResult(stalled=False)
            if existing == "succeeded":
                # unverified
                raise AWSError("ResourceExistsException", "A version with this ClientRequestToken already exists.")
        secret.rotation_lambda_arn = function_arn
        if req.rules:
            secret.rotation_rules = req.rules
        secret.rotation_enabled = 1
        columns = ["rotation_lambda_arn", "rotation_rules", "rotation_enabled"]
        if secret.rotation_rules and not req.immediate:
            self._schedule(secret, now, now)
            columns += ["next_rotation_date", "rotation_due_at"]
        q.update_secret(tx, secret, *columns)
        self._enqueue(tx, secret, token, function_arn, req.immediate, now)
        return RotationResult(stalled=False)

    def wake(self) -> None:
        """Look for due jobs now (a rotation was just requested)."""
        self._wake.set()
        if self.also_wake is not None:
            self.also_wake()

    def cancel(self, tx: Tx, secret: SecretRow) -> str | None:
        """Turn off the secret's rotation and cancel its queued or running job (a running one stops
        at its next step boundary); answers the pending version, if any."""
        pending = q.stages_of(tx, secret.id).get(L.AWSPENDING)
        secret.rotation_enabled = 0
        secret.next_rotation_date = None
        secret.rotation_due_at = None
        q.update_secret(tx, secret, "rotation_enabled", "next_rotation_date", "rotation_due_at")
        jobs.cancel_active(tx, secret.id, clock.now())
        return pending

    def abandoned(self, tx: Tx, secret: SecretRow, pending_version: str) -> None:
        """A manual new AWSCURRENT ended the rotation whose pending version was ``pending_version``."""
        jobs.abandon(tx, secret.id, pending_version, clock.now())
        self._event(secret, "RotationAbandoned", {"versionId": pending_version})

    def value_changed(self, tx: Tx, secret: SecretRow, now: float) -> None:
        """A new current value set by hand counts as a rotation for ``AutomaticallyAfterDays``."""
        if secret.rotation_enabled and secret.rotation_rules and "AutomaticallyAfterDays" in secret.rotation_rules:
            self._schedule(secret, now, now)
            q.update_secret(tx, secret, "next_rotation_date", "rotation_due_at")

    # --------------------------------------------------------------------------- internals

    def _event(self, secret: SecretRow, name: str, details: dict[str, Any]) -> None:
        """A service event for the audit trail (and the log); safe from any thread."""
        log.info("%s %s %s", name, secret.arn, details.get("versionId", ""))
        if self.audit is None or self._loop is None:
            return
        from strongroom.audit import service_event_record

        record = service_event_record(secret.account_id, secret.region, "secretsmanager", name, details, secret.arn)
        self._loop.call_soon_threadsafe(lambda: self._loop.create_task(self._write_event(record)))  # type: ignore[union-attr]

    async def _write_event(self, record: dict[str, Any]) -> None:
        try:
            await self.audit.record(record)
        except Exception:  # noqa: BLE001 - the trail reports its own failure
            log.error("service event %s could not be audited", record["eventName"])

    def _enqueue(self, tx: Tx, secret: SecretRow, token: str, function_arn: str, immediate: bool, now: float) -> None:
        stages = q.stages_of(tx, secret.id)
        if q.get_version(tx, secret.id, token) is None:
            q.insert_version(tx, secret.id, VersionRow(token, now, None, 0, None, None))
        if stages.get(L.AWSPENDING) != token:
            q.set_stage(tx, secret.id, L.AWSPENDING, token)
        jobs.insert_job(tx, secret.id, token, str(uuid.uuid4()), function_arn, immediate, now)
        self._event(secret, "RotationStarted", {"versionId": token, "rotationLambdaARN": function_arn})

    def _schedule(self, secret: SecretRow, last: float, now: float) -> None:
        try:
            schedule: Schedule = parse_rules(secret.rotation_rules or {})
        except ScheduleError:
            secret.next_rotation_date = secret.rotation_due_at = None
            return
        start, end = next_window(schedule, last, now)
        secret.rotation_due_at = pick_moment(start, end, now)
        secret.next_rotation_date = end - 1 if end % 86400 == 0 else end

    async def run(self) -> None:
        """Claim and run due jobs, and start scheduled rotations, until cancelled."""
        self._loop = asyncio.get_running_loop()
        if self.db.dialect == "sqlite":
            # One node owns a SQLite file: whatever it held when it stopped is its own to resume.
            await self.db.write(jobs.release_claims)
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rotation loop error")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)
            except TimeoutError:
                pass

    async def run_once(self) -> int:
        """Start the rotations whose moment has come, then run every due job, ``concurrency`` at a
        time (a job is claimed as soon as a slot frees up), until none is left; answer how many ran."""
        more_due = await self._start_scheduled()
        running: set[asyncio.Task[None]] = set()
        ran = 0
        limit = max(1, self.settings.concurrency)
        try:
            while True:
                self._wake.clear()  # a RotateSecret from now on wakes the wait below to fill a slot
                while len(running) < limit:
                    job = await self._claim()
                    if job is None and more_due:  # the scheduler stopped at its batch size
                        more_due = await self._start_scheduled()
                        job = await self._claim()
                    if job is None:
                        break
                    running.add(asyncio.create_task(self._run_job(job)))
                    ran += 1
                if not running:
                    return ran
                woken = asyncio.ensure_future(self._wake.wait())
                done, _ = await asyncio.wait({*running, woken}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                for task in done - {woken}:
                    running.discard(task)
                    if not task.cancelled() and task.exception() is not None:
                        log.error("rotation job error", exc_info=task.exception())
        except BaseException:
            for task in running:
                task.cancel()
            raise

    def _invoke_in_thread(self, spec: FunctionSpec, event: dict[str, Any]) -> asyncio.Future[Any]:
        """``runtime.invoke`` on the engine's own threads (one per concurrent rotation: the default
        executor has min(32, CPUs + 4) and is shared with everything else)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max(1, self.settings.concurrency), thread_name_prefix="rotation")
        context = contextvars.copy_context()
        return asyncio.get_running_loop().run_in_executor(self._executor, context.run, self.runtime.invoke, spec, event)

    async def _start_scheduled(self) -> bool:
        """Queue the due scheduled rotations, 50 at most; answer whether there may be more."""
        now = clock.now()

        def tx_fn(tx: Tx) -> bool:
            rows = jobs.due_secret_ids(tx, now)
            for secret_id in rows:
                secret = q.get_secret_by_id(tx, secret_id, lock=True)
                if secret is None or not secret.rotation_lambda_arn:
                    continue
                active = jobs.has_active(tx, secret_id)
                secret.rotation_due_at = None
                q.update_secret(tx, secret, "rotation_due_at")
                stages = q.stages_of(tx, secret_id)
                if not active and stages.get(L.AWSPENDING) in (None, stages.get(L.AWSCURRENT)):
                    self._enqueue(tx, secret, str(uuid.uuid4()), secret.rotation_lambda_arn, True, now)
            return len(rows) == 50  # pragma: no mutate (the store's batch size: "more due" only hurries the next pass)

        return await self.db.write(tx_fn)

    async def _claim(self) -> _Job | None:
        now = clock.now()

        def tx_fn(tx: Tx) -> _Job | None:
            row = jobs.next_due(tx, now)
            if row is None:
                return None
            if not jobs.claim(tx, row[0], self.node_id, now + self.settings.lease, now):
                return None
            return _Job(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6])

        return await self.db.write(tx_fn)

    async def _still_wanted(self, job: _Job) -> tuple[SecretRow, FunctionSpec] | None:
        """The secret and function for the next step, or None when the job must stop here."""
        now = clock.now()

        def tx_fn(tx: Tx) -> tuple[SecretRow, FunctionSpec] | str | None:
            state = jobs.state_of(tx, job.id)
            secret = q.get_secret_by_id(tx, job.secret_id)
            if state != "running" or secret is None or secret.deleted_date is not None:
                return None
            if q.stages_of(tx, job.secret_id).get(L.AWSPENDING) != job.token:
                return None
            jobs.renew(tx, job.id, now + self.settings.lease)
            spec = self.resolve(tx, secret.account_id, secret.region, job.function_arn, secret.arn)
            if spec is None:
                return "missing"
            return secret, spec

        found = await self.db.write(tx_fn)
        if found == "missing":
            raise _StepFailed("AccessDeniedException: " + CANNOT_INVOKE)
        return found  # type: ignore[return-value]

    async def _run_job(self, job: _Job) -> None:
        attempt = job.attempts + 1
        await self.db.write(lambda tx: jobs.set_attempts(tx, job.id, attempt))
        steps = STEPS if job.immediate else ("testSecret",)
        try:
            if not job.immediate:
                await self._copy_current_to_pending(job)
            for step in steps:
                wanted = await self._still_wanted(job)
                if wanted is None:
                    log.info("rotation %s stopped before %s (cancelled or abandoned)", job.token, step)
                    await self._release(job)
                    return
                secret, spec = wanted
                event = {
                    "Step": step,
                    "SecretId": secret.arn,
                    "ClientRequestToken": job.token,
                    "RotationToken": job.rotation_token,
                }
                started = clock.now()
                renewing = asyncio.create_task(self._keep_lease(job))
                try:
                    result = await self._invoke_in_thread(spec, event)
                finally:
                    renewing.cancel()
                await self._record(
                    job,
                    attempt,
                    step,
                    started,
                    result.duration_ms,
                    "succeeded" if result.ok else "failed",
                    result.error_text or None,
                )
                if not result.ok:
                    raise _StepFailed(f"{step} failed: {result.error_text}")
            await self._finish(job)
        except _StepFailed as failure:
            await self._failed(job, attempt, str(failure))

    async def _keep_lease(self, job: _Job) -> None:
        """Renew the claim while a step runs (every third of the lease), so a slow step is never
        taken over by another node, while a node that died loses its claim one lease later."""
        while True:
            await asyncio.sleep(self.settings.lease / 3)
            until = clock.now() + self.settings.lease
            try:
                await self.db.write(functools.partial(jobs.renew_running, job_id=job.id, until=until))
            except Exception:  # noqa: BLE001 - a missed renewal is retried on the next tick
                log.warning("could not renew the lease of rotation %s", job.token)

    async def _copy_current_to_pending(self, job: _Job) -> None:
        """RotateImmediately=false: testSecret runs against a pending copy of the current value."""

        def tx_fn(tx: Tx) -> None:
            secret = q.get_secret_by_id(tx, job.secret_id, lock=True)
            if secret is None:
                return
            current = q.stages_of(tx, job.secret_id).get(L.AWSCURRENT)
            version = q.get_version(tx, job.secret_id, job.token)
            if current is None or version is None or version.value_kind != 0:
                return
            old = q.get_version(tx, job.secret_id, current)
            assert old is not None
            value = self.cipher.decrypt(
                tx,
                secret.account_id,
                secret.region,
                old.key_ref or "",
                secret.arn,
                current,
                old.value_kind,
                old.ciphertext or b"",
            )
            q.fill_version(
                tx, job.secret_id, self.cipher.new_version(tx, secret, job.token, value, version.created_date)
            )

        await self.db.write(tx_fn)

    async def _record(
        self, job: _Job, attempt: int, step: str, started: float, duration_ms: int, outcome: str, error: str | None
    ) -> None:
        await self.db.write(
            lambda tx: jobs.insert_step(
                tx, job.id, attempt, step, started, duration_ms, outcome, (error or "")[:2000] or None
            )
        )

    async def _finish(self, job: _Job) -> None:
        now = clock.now()

        def tx_fn(tx: Tx) -> None:
            secret = q.get_secret_by_id(tx, job.secret_id, lock=True)
            if secret is None:
                return
            stages = q.stages_of(tx, job.secret_id)
            if job.immediate and stages.get(L.AWSCURRENT) != job.token:
                raise _StepFailed("finishSecret did not move AWSCURRENT to the new version")
            if stages.get(L.AWSPENDING) == job.token:
                q.remove_stage(tx, job.secret_id, L.AWSPENDING)
            if not job.immediate:
                q.delete_version(tx, job.secret_id, job.token)
            else:
                secret.last_rotated_date = now
                if secret.rotation_enabled and secret.rotation_rules:
                    self._schedule(secret, now, now)
                q.update_secret(tx, secret, "last_rotated_date", "next_rotation_date", "rotation_due_at")
            jobs.succeed(tx, job.id, now)
            self._event(secret, "RotationSucceeded", {"versionId": job.token})

        try:
            await self.db.write(tx_fn)
        except _StepFailed as failure:
            await self._failed(job, job.attempts + 1, str(failure))

    async def _failed(self, job: _Job, attempt: int, error: str) -> None:
        now = clock.now()
        s = self.settings
        final = attempt >= s.max_attempts
        delay = min(s.retry_cap, s.retry_base * 2 ** (attempt - 1)) * random.uniform(0.9, 1.1)

        def tx_fn(tx: Tx) -> None:
            jobs.record_failure(
                tx, job.id, "failed" if final else "running", now + delay, error[:2000], now if final else None
            )

        await self.db.write(tx_fn)
        log.warning("rotation %s attempt %d failed: %s", job.token, attempt, error[:500])
        secret = await self.db.read(lambda tx: q.get_secret_by_id(tx, job.secret_id))
        if secret is not None:
            self._event(
                secret,
                "RotationFailed",
                {"versionId": job.token, "attempt": attempt, "final": final, "error": error[:1000]},
            )

    async def _release(self, job: _Job) -> None:
        """Stop a job that is no longer wanted. An abandoned one (a new AWSCURRENT was set by hand)
        also loses the AWSPENDING label its function may have put back after the abandonment:
        left there, it would refuse every later RotateSecret with "A previous rotation isn't
        complete" while no rotation is left to complete. A cancelled one keeps it, as on AWS."""

        def tx_fn(tx: Tx) -> None:
            jobs.release(tx, job.id, clock.now())
            state = jobs.state_of(tx, job.id)
            stages = q.stages_of(tx, job.secret_id)
            if state == "abandoned" and stages.get(L.AWSPENDING) == job.token and stages.get(L.AWSCURRENT) != job.token:
                q.remove_stage(tx, job.secret_id, L.AWSPENDING)

        await self.db.write(tx_fn)

    # ------------------------------------------------------------------------------ history

    def history(self, tx: Tx, secret_id: int) -> list[dict[str, Any]]:
        return _history(tx, secret_id)


def history_of(tx: Tx, account_id: str, region: str, secret_id: str) -> list[dict[str, Any]] | None:
    """The history of the secret named by ``secret_id`` (name or ARN), or None when there is none."""
    from strongroom.domain.names import parse_secret_id

    ref = parse_secret_id(secret_id)
    row = q.find_secret(tx, account_id, region, name=ref.name, arn=ref.arn)
    return None if row is None else _history(tx, row.id)


def _history(tx: Tx, secret_id: int) -> list[dict[str, Any]]:
    """Every rotation of a secret, newest first, with its steps. No values, ever."""
    out = []
    for row in jobs.rotations_of(tx, secret_id):
        steps = [
            {"Attempt": s[0], "Step": s[1], "Started": s[2], "DurationMs": s[3], "Outcome": s[4], "Error": s[5]}
            for s in jobs.steps_of(tx, row[0])
        ]
        out.append(
            {
                "VersionId": row[1],
                "State": row[2],
                "Attempts": row[3],
                "Started": row[4],
                "Finished": row[5],
                "LastError": row[6],
                "RotationLambdaARN": row[7],
                "Steps": steps,
            }
        )
    return out


class _StepFailed(Exception):
    pass
