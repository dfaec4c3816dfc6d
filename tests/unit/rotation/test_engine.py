"""The rotation state machine with a fake clock: in-process service, real SQLite, a fake runtime.

The fake runtime plays a well-behaved rotation function (AWS's generic template) by calling the
service's own operations, so a month of schedules runs in about a second.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from typing import Any, ClassVar

import pytest

from strongroom import clock
from strongroom.audit import AuditTrail
from strongroom.context import RequestContext
from strongroom.crypto import Keyring, MasterKey
from strongroom.errors import AWSError
from strongroom.rotation.engine import CANNOT_INVOKE, TOKEN_IN_USE, RotationEngine, RotationSettings
from strongroom.rotation.runtime import FunctionSpec, InvokeResult
from strongroom.services.cloudtrail.service import CloudTrail
from strongroom.services.secretsmanager import SecretsManager
from strongroom.services.secretsmanager.values import ValueCipher
from strongroom.store import open_database
from strongroom.store import rotations as jobs

CTX = RequestContext(
    account_id="123456789012", region="us-east-1", principal_arn="arn:aws:iam::123456789012:root", request_id="r"
)
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:fake"
DAY = 86400.0


class FakeRuntime:
    """Answers like AWS's generic template; fails the steps named in ``fail`` while it is non-empty."""

    def __init__(self, sm: SecretsManager, loop: asyncio.AbstractEventLoop) -> None:
        self.sm = sm
        self.loop = loop
        self.events: list[dict[str, Any]] = []
        self.fail: list[str] = []

    def call(self, op: str, **params: Any) -> dict[str, Any]:
        coro = self.sm.handlers[op](CTX, params)
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def has_value(self, arn: str, token: str) -> bool:
        try:
            self.call("GetSecretValue", SecretId=arn, VersionId=token)
            return True
        except Exception:
            return False

    def invoke(self, spec: FunctionSpec, event: dict[str, Any]) -> InvokeResult:
        self.events.append(event)
        step, arn, token = event["Step"], event["SecretId"], event["ClientRequestToken"]
        if self.fail and self.fail[0] == step:
            self.fail.pop(0)
            return InvokeResult(False, error={"errorType": "RuntimeError", "errorMessage": "down"})
        stages = self.call("DescribeSecret", SecretId=arn)["VersionIdsToStages"]
        if step == "createSecret" and not self.has_value(arn, token):
            self.call(
                "PutSecretValue",
                SecretId=arn,
                ClientRequestToken=token,
                SecretString=uuid.uuid4().hex,
                VersionStages=["AWSPENDING"],
            )
        elif step == "finishSecret":
            current = next(v for v, s in stages.items() if "AWSCURRENT" in s)
            if current != token:
                self.call(
                    "UpdateSecretVersionStage",
                    SecretId=arn,
                    VersionStage="AWSCURRENT",
                    MoveToVersionId=token,
                    RemoveFromVersionId=current,
                )
        return InvokeResult(True)


@pytest.fixture
def fake_clock():  # type: ignore[no-untyped-def]
    fake = clock.FakeClock(1_767_225_600.0)  # 2026-01-01T00:00:00Z
    previous = clock.use(fake)
    yield fake
    clock.use(previous)


def setup(tmp_path, settings: RotationSettings | None = None):  # type: ignore[no-untyped-def]
    db = open_database(str(tmp_path / "engine.db"))
    sm = SecretsManager(db, ValueCipher(Keyring(MasterKey.generate())), b"k" * 32)
    runtime = FakeRuntime(sm, asyncio.get_running_loop())
    spec = FunctionSpec(key="fake", arn=FUNCTION, name="fake", handler="x")
    engine = RotationEngine(
        sm.cipher,
        db,
        runtime,
        lambda tx, a, r, arn, secret: spec if arn == FUNCTION else None,  # type: ignore[arg-type]
        settings or RotationSettings(retry_base=60, retry_cap=600, max_attempts=3),
    )
    sm.rotation = engine
    return db, sm, runtime, engine


def test_a_month_of_daily_rotations(tmp_path, fake_clock):
    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path)
        await sm.handlers["CreateSecret"](CTX, {"Name": "s", "SecretString": "v0", "ClientRequestToken": "t" * 32})
        await sm.handlers["RotateSecret"](
            CTX,
            {
                "SecretId": "s",
                "RotationLambdaARN": FUNCTION,
                "ClientRequestToken": "a" * 32,
                "RotationRules": {"AutomaticallyAfterDays": 1},
            },
        )
        assert await engine.run_once() == 1
        days = []
        for _ in range(30):  # jump to each moment the scheduler picked
            due = (await db.read(lambda tx: tx.one("SELECT rotation_due_at FROM secrets")))[0]
            assert due > fake_clock.now()
            fake_clock.set(due - 1)
            assert await engine.run_once() == 0  # not yet
            fake_clock.set(due)
            assert await engine.run_once() == 1
            days.append(int(due // DAY))
        assert days == list(range(days[0], days[0] + 30))  # one rotation a day, none skipped
        steps = [e["Step"] for e in runtime.events]
        assert steps == ["createSecret", "setSecret", "testSecret", "finishSecret"] * 31
        described = await sm.handlers["DescribeSecret"](CTX, {"SecretId": "s"})
        assert described["LastRotatedDate"] > fake_clock.now() - DAY
        assert len([v for v in described["VersionIdsToStages"].values() if v]) == 2  # AWSCURRENT + AWSPREVIOUS
        assert sorted(label for v in described["VersionIdsToStages"].values() for label in v) == [
            "AWSCURRENT",
            "AWSPREVIOUS",
        ]  # no AWSPENDING left behind
        db.close()

    asyncio.run(scenario())


def test_failed_steps_retry_with_backoff_then_give_up(tmp_path, fake_clock):
    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path)
        await sm.handlers["CreateSecret"](CTX, {"Name": "s", "SecretString": "v0", "ClientRequestToken": "t" * 32})
        runtime.fail = ["setSecret"] * 3
        token = "b" * 32
        await sm.handlers["RotateSecret"](
            CTX, {"SecretId": "s", "RotationLambdaARN": FUNCTION, "ClientRequestToken": token}
        )
        assert await engine.run_once() == 1  # attempt 1 fails at setSecret
        assert await engine.run_once() == 0  # backing off (60 s ±10%)
        fake_clock.advance(70)
        assert await engine.run_once() == 1  # attempt 2 fails
        fake_clock.advance(70)
        assert await engine.run_once() == 0  # the second back-off is 120 s (±10%)
        fake_clock.advance(75)
        assert await engine.run_once() == 1  # attempt 3 fails: gives up
        fake_clock.advance(3600)
        assert await engine.run_once() == 0
        history = await db.read(lambda tx: engine.history(tx, 1))
        assert history[0]["State"] == "failed" and history[0]["Attempts"] == 3
        assert [s["Outcome"] for s in history[0]["Steps"]] == ["succeeded", "failed"] * 3
        stages = (await sm.handlers["DescribeSecret"](CTX, {"SecretId": "s"}))["VersionIdsToStages"]
        assert stages[token] == ["AWSPENDING"]  # the partial version keeps AWSPENDING, as on AWS
        # Every attempt used the same token: createSecret's value was made once and reused.
        assert {e["ClientRequestToken"] for e in runtime.events} == {token}
        db.close()

    asyncio.run(scenario())


def test_cancel_stops_before_the_next_step(tmp_path, fake_clock):
    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path)
        await sm.handlers["CreateSecret"](CTX, {"Name": "s", "SecretString": "v0", "ClientRequestToken": "t" * 32})
        await sm.handlers["RotateSecret"](
            CTX, {"SecretId": "s", "RotationLambdaARN": FUNCTION, "ClientRequestToken": "c" * 32}
        )
        original = runtime.invoke

        def cancel_after_create(spec: FunctionSpec, event: dict[str, Any]) -> InvokeResult:
            result = original(spec, event)
            if event["Step"] == "createSecret":
                asyncio.run_coroutine_threadsafe(
                    sm.handlers["CancelRotateSecret"](CTX, {"SecretId": "s"}), runtime.loop
                ).result()
            return result

        runtime.invoke = cancel_after_create  # type: ignore[method-assign]
        await engine.run_once()
        assert [e["Step"] for e in runtime.events] == ["createSecret"]
        described = await sm.handlers["DescribeSecret"](CTX, {"SecretId": "s"})
        assert described["RotationEnabled"] is False
        assert described["VersionIdsToStages"]["c" * 32] == ["AWSPENDING"]
        db.close()

    asyncio.run(scenario())


def test_worker_lines_read_together_are_answered_apart() -> None:
    """A cold worker's "ready" line and its first answer often arrive in one read: each is its own
    line (read as one, the answer was 'unreadable' and the invocation failed)."""
    import subprocess

    from strongroom.rotation.runtime import _Worker

    worker = _Worker.__new__(_Worker)
    worker.proc = subprocess.Popen(["printf", '{"ready": true}\\n{"answer": 42}\\n{"half'], stdout=subprocess.PIPE)
    worker.proc.wait()
    worker._unread, worker.failure = bytearray(), ""
    assert worker._line(time.monotonic() + 5, "timeout") == {"ready": True}
    assert worker._line(time.monotonic() + 5, "timeout") == {"answer": 42}
    assert worker._line(time.monotonic() + 5, "timeout") is None  # an unfinished line, then the end
    worker.kill()


def test_a_finish_secret_that_moves_nothing_is_a_failed_rotation(tmp_path, fake_clock):
    """A function whose finishSecret answers success without moving AWSCURRENT has not rotated:
    the rotation is retried and then recorded as failed, and the secret keeps its value."""

    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path, RotationSettings(retry_base=60, retry_cap=600, max_attempts=2))
        await sm.handlers["CreateSecret"](CTX, {"Name": "s", "SecretString": "v0", "ClientRequestToken": "t" * 32})
        original = runtime.invoke

        def idle_finish(spec: FunctionSpec, event: dict[str, Any]) -> InvokeResult:
            if event["Step"] == "finishSecret":
                runtime.events.append(event)
                return InvokeResult(True)
            return original(spec, event)

        runtime.invoke = idle_finish  # type: ignore[method-assign]
        token = "d" * 32
        await sm.handlers["RotateSecret"](
            CTX, {"SecretId": "s", "RotationLambdaARN": FUNCTION, "ClientRequestToken": token}
        )
        assert await engine.run_once() == 1
        fake_clock.advance(70)
        assert await engine.run_once() == 1
        fake_clock.advance(3600)
        assert await engine.run_once() == 0
        history = await db.read(lambda tx: engine.history(tx, 1))
        assert (history[0]["State"], history[0]["Attempts"]) == ("failed", 2)
        assert history[0]["LastError"] == "finishSecret did not move AWSCURRENT to the new version"
        assert [e["Step"] for e in runtime.events] == ["createSecret", "setSecret", "testSecret", "finishSecret"] * 2
        described = await sm.handlers["DescribeSecret"](CTX, {"SecretId": "s"})
        assert "LastRotatedDate" not in described
        assert described["VersionIdsToStages"]["t" * 32] == ["AWSCURRENT"]
        assert described["VersionIdsToStages"][token] == ["AWSPENDING"]
        value = await sm.handlers["GetSecretValue"](CTX, {"SecretId": "s"})
        assert value["SecretString"] == "v0"
        db.close()

    asyncio.run(scenario())


def test_the_settings_default_to_what_docs_rotation_md_says_and_the_environment_overrides(monkeypatch):
    assert RotationSettings.from_env() == RotationSettings(
        max_attempts=5, retry_base=30.0, retry_cap=3600.0, poll_interval=1.0, lease=120.0, concurrency=1
    )
    for variable, value in (
        ("STRONGROOM_ROTATION_MAX_ATTEMPTS", "2"),
        ("STRONGROOM_ROTATION_RETRY_BASE_SECONDS", "0.5"),
        ("STRONGROOM_ROTATION_RETRY_CAP_SECONDS", "9"),
        ("STRONGROOM_ROTATION_POLL_SECONDS", "0.25"),
        ("STRONGROOM_ROTATION_LEASE_SECONDS", "30"),
        ("STRONGROOM_ROTATION_CONCURRENCY", "3"),
    ):
        monkeypatch.setenv(variable, value)
    assert RotationSettings.from_env() == RotationSettings(
        max_attempts=2, retry_base=0.5, retry_cap=9.0, poll_interval=0.25, lease=30.0, concurrency=3
    )


def test_the_history_records_each_step_as_it_ran(tmp_path, fake_clock):
    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path)
        await sm.handlers["CreateSecret"](CTX, {"Name": "s", "SecretString": "v0", "ClientRequestToken": "t" * 32})
        runtime.fail = ["setSecret"]
        original = runtime.invoke

        def long_error(spec: FunctionSpec, event: dict[str, Any]) -> InvokeResult:
            if runtime.fail and event["Step"] == "setSecret":
                runtime.fail.pop(0)
                runtime.events.append(event)
                return InvokeResult(False, error={"errorType": "ValueError", "errorMessage": "x" * 5000}, duration_ms=7)
            return original(spec, event)

        runtime.invoke = long_error  # type: ignore[method-assign]
        token = "e" * 32
        await sm.handlers["RotateSecret"](
            CTX, {"SecretId": "s", "RotationLambdaARN": FUNCTION, "ClientRequestToken": token}
        )
        started = fake_clock.now()
        assert await engine.run_once() == 1
        fake_clock.advance(70)  # past the first back-off (60 s ±10%)
        assert await engine.run_once() == 1
        [rotation] = await db.read(lambda tx: engine.history(tx, 1))
        assert (rotation["VersionId"], rotation["State"], rotation["Attempts"]) == (token, "succeeded", 2)
        assert rotation["RotationLambdaARN"] == FUNCTION
        steps = [(s["Attempt"], s["Step"], s["Outcome"]) for s in rotation["Steps"]]
        assert steps == [
            (1, "createSecret", "succeeded"),
            (1, "setSecret", "failed"),
            (2, "createSecret", "succeeded"),
            (2, "setSecret", "succeeded"),
            (2, "testSecret", "succeeded"),
            (2, "finishSecret", "succeeded"),
        ]
        assert rotation["Started"] == started and rotation["Finished"] == started + 70
        failed = rotation["Steps"][1]
        assert failed["Started"] == started and failed["DurationMs"] == 7
        assert failed["Error"] == ("ValueError: " + "x" * 5000)[:2000]
        assert rotation["Steps"][0]["Error"] is None
        db.close()

    asyncio.run(scenario())


def test_rotate_immediately_false_tests_a_pending_copy_of_the_current_value(tmp_path, fake_clock):
    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path)
        await sm.handlers["CreateSecret"](CTX, {"Name": "s", "SecretString": "v0", "ClientRequestToken": "t" * 32})
        seen: list[str] = []
        original = runtime.invoke

        def record(spec: FunctionSpec, event: dict[str, Any]) -> InvokeResult:
            if event["Step"] == "testSecret":
                value = runtime.call("GetSecretValue", SecretId=event["SecretId"], VersionStage="AWSPENDING")
                seen.append(value["SecretString"])
            return original(spec, event)

        runtime.invoke = record  # type: ignore[method-assign]
        token = "f" * 32
        await sm.handlers["RotateSecret"](
            CTX,
            {"SecretId": "s", "RotationLambdaARN": FUNCTION, "ClientRequestToken": token, "RotateImmediately": False},
        )
        assert await engine.run_once() == 1
        assert [e["Step"] for e in runtime.events] == ["testSecret"]
        assert seen == ["v0"]
        described = await sm.handlers["DescribeSecret"](CTX, {"SecretId": "s"})
        assert described["VersionIdsToStages"] == {"t" * 32: ["AWSCURRENT"]}  # the copy is gone
        assert (await sm.handlers["GetSecretValue"](CTX, {"SecretId": "s"}))["SecretString"] == "v0"
        db.close()

    asyncio.run(scenario())


def test_a_secret_deleted_mid_rotation_stops_it_at_the_next_step(tmp_path, fake_clock):
    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path)
        await sm.handlers["CreateSecret"](CTX, {"Name": "s", "SecretString": "v0", "ClientRequestToken": "t" * 32})
        original = runtime.invoke

        def delete_after_create(spec: FunctionSpec, event: dict[str, Any]) -> InvokeResult:
            result = original(spec, event)
            if event["Step"] == "createSecret":
                runtime.call("DeleteSecret", SecretId="s", RecoveryWindowInDays=7)
            return result

        runtime.invoke = delete_after_create  # type: ignore[method-assign]
        await sm.handlers["RotateSecret"](
            CTX, {"SecretId": "s", "RotationLambdaARN": FUNCTION, "ClientRequestToken": "d" * 32}
        )
        await engine.run_once()
        assert [e["Step"] for e in runtime.events] == ["createSecret"]
        db.close()

    asyncio.run(scenario())


def test_history_of_names_a_secret_by_name_or_arn_and_none_for_a_stranger(tmp_path, fake_clock):
    from strongroom.rotation.engine import history_of

    async def scenario() -> None:
        db, sm, _runtime, engine = setup(tmp_path)
        arn = (
            await sm.handlers["CreateSecret"](CTX, {"Name": "s", "SecretString": "v", "ClientRequestToken": "t" * 32})
        )["ARN"]
        await sm.handlers["RotateSecret"](
            CTX, {"SecretId": "s", "RotationLambdaARN": FUNCTION, "ClientRequestToken": "h" * 32}
        )
        await engine.run_once()
        for ref in ("s", arn):
            history = await db.read(lambda tx, r=ref: history_of(tx, CTX.account_id, CTX.region, r))
            assert [h["VersionId"] for h in history] == ["h" * 32]
        assert await db.read(lambda tx: history_of(tx, CTX.account_id, CTX.region, "nobody")) is None
        assert len(engine.node_id) == 32 and int(engine.node_id, 16) >= 0  # a node id of its own
        db.close()

    asyncio.run(scenario())


def test_the_next_rotation_date_is_the_last_second_of_its_window_day(tmp_path, fake_clock):
    async def scenario() -> None:
        db, sm, _runtime, engine = setup(tmp_path, RotationSettings(retry_base=60, retry_cap=600, concurrency=0))
        await sm.handlers["CreateSecret"](CTX, {"Name": "s", "SecretString": "v0", "ClientRequestToken": "t" * 32})
        await sm.handlers["RotateSecret"](
            CTX,
            {
                "SecretId": "s",
                "RotationLambdaARN": FUNCTION,
                "ClientRequestToken": "n" * 32,
                "RotationRules": {"AutomaticallyAfterDays": 2},
            },
        )
        assert await engine.run_once() == 1  # concurrency 0 still runs one at a time
        described = await sm.handlers["DescribeSecret"](CTX, {"SecretId": "s"})
        nxt = described["NextRotationDate"]
        nxt = nxt if isinstance(nxt, float | int) else nxt.timestamp()
        assert nxt % DAY == DAY - 1  # 23:59:59 UTC, the end of the day the window ends
        assert fake_clock.now() + DAY < nxt <= fake_clock.now() + 3 * DAY
        db.close()

    asyncio.run(scenario())


# ------------------------------------------------------------------ nodes, leases and the loop


async def until(predicate: Any, what: str, timeout: float = 10.0) -> Any:
    """Await ``predicate()`` (a coroutine function) until it answers something true, polling the
    running loop; AssertionError after ``timeout`` seconds (a bound, not a guess of how long)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.01)


async def create(sm: SecretsManager, name: str = "s", value: str | None = "v0") -> str:
    params: dict[str, Any] = {"Name": name, "ClientRequestToken": "t" * 32}
    if value is not None:
        params["SecretString"] = value
    return str((await sm.handlers["CreateSecret"](CTX, params))["ARN"])


async def rotate(sm: SecretsManager, token: str, name: str = "s", **extra: Any) -> dict[str, Any]:
    params = {"SecretId": name, "RotationLambdaARN": FUNCTION, "ClientRequestToken": token, **extra}
    return await sm.handlers["RotateSecret"](CTX, params)  # type: ignore[no-any-return]


async def stages_of(sm: SecretsManager, name: str = "s") -> dict[str, list[str]]:
    return (await sm.handlers["DescribeSecret"](CTX, {"SecretId": name}))["VersionIdsToStages"]  # type: ignore[no-any-return]


def second_node(engine: RotationEngine, resolve: Any = None) -> RotationEngine:
    """Another engine (node) on the same database, with the same function registry unless told."""
    return RotationEngine(
        engine.cipher, engine.db, engine.runtime, resolve or engine.resolve, engine.settings, node_id="node-b"
    )


class FlakyDatabase:
    """The engine's view of the database, failing the write it is told to (a disk that errs once)."""

    def __init__(self, db: Any) -> None:
        self.db, self.dialect, self.failures = db, db.dialect, 0

    async def read(self, fn: Any, snapshot: bool = True) -> Any:
        return await self.db.read(fn, snapshot)

    async def write(self, fn: Any, durable: bool = True) -> Any:
        if self.failures and fn is not jobs.release_claims:
            self.failures -= 1
            raise sqlite3.OperationalError("disk I/O error")
        return await self.db.write(fn, durable)


class Gate:
    """Holds the first invocation of ``step`` until opened (a step that is still running). A test
    that fails with its gate closed gets it opened at teardown (see ``open_gates``)."""

    made: ClassVar[list[Gate]] = []

    def __init__(self, runtime: FakeRuntime, step: str) -> None:
        import threading

        self.entered, self.opened, self.left = threading.Event(), threading.Event(), threading.Event()
        Gate.made.append(self)
        self.step, self.used = step, False
        self.original = runtime.invoke
        runtime.invoke = self.invoke  # type: ignore[method-assign]

    def invoke(self, spec: FunctionSpec, event: dict[str, Any]) -> InvokeResult:
        if event["Step"] == self.step and not self.used:
            self.used = True
            self.entered.set()
            try:
                assert self.opened.wait(60), "the gate was never opened"
                return self.original(spec, event)
            finally:
                self.left.set()
        return self.original(spec, event)

    async def wait_entered(self) -> None:
        await until(lambda: asyncio.sleep(0, self.entered.is_set()), f"{self.step} started")


@pytest.fixture(autouse=True)
def open_gates():  # type: ignore[no-untyped-def]
    """A failed test leaves no invocation waiting on its gate (its thread would hold up the exit)."""
    yield
    for gate in Gate.made:
        gate.opened.set()
    Gate.made.clear()


def test_a_second_node_takes_a_dead_nodes_rotation_over_only_when_its_lease_expires(tmp_path, fake_clock, caplog):
    """Node A claims the rotation and dies before its first step (its function registry fails):
    node B on the same database leaves the job alone for the lease (120 s) and then finishes it,
    with the same token. A's failed task is logged."""

    async def scenario() -> None:
        db, sm, runtime, b = setup(tmp_path)

        def registry_down(*args: Any) -> None:
            raise RuntimeError("registry down")

        a = second_node(b, registry_down)
        await create(sm)
        token = "a" * 32
        await rotate(sm, token)  # sm.rotation is B: its registry answers
        claimed = fake_clock.now()
        caplog.clear()
        assert await a.run_once() == 1  # claimed, then its task failed
        [error] = [r for r in caplog.records if r.getMessage() == "rotation job error"]
        assert error.levelname == "ERROR" and "registry down" in str(error.exc_info[1])
        assert runtime.events == []
        fake_clock.set(claimed + 119)
        assert await b.run_once() == 0  # A's lease holds
        fake_clock.set(claimed + 121)
        assert await b.run_once() == 1
        [rotation] = await db.read(lambda tx: b.history(tx, 1))
        assert (rotation["VersionId"], rotation["State"], rotation["Attempts"]) == (token, "succeeded", 2)
        assert {s["Attempt"] for s in rotation["Steps"]} == {2}
        assert (await stages_of(sm))[token] == ["AWSCURRENT"]
        assert {e["ClientRequestToken"] for e in runtime.events} == {token}
        assert [r.getMessage() for r in caplog.records].count("rotation job error") == 1  # B's task did not fail
        db.close()

    asyncio.run(scenario())


def test_each_step_renews_the_lease_from_the_moment_it_starts(tmp_path, fake_clock):
    """createSecret takes 100 s: setSecret's start renews the claim to 100 + 120 s, so another node
    cannot take the rotation over at 121 s while setSecret still runs."""

    async def scenario() -> None:
        db, sm, runtime, a = setup(tmp_path)
        b = second_node(a)
        await create(sm)
        token = "r" * 32
        await rotate(sm, token)
        started = fake_clock.now()
        original = runtime.invoke

        def slow_create(spec: FunctionSpec, event: dict[str, Any]) -> InvokeResult:
            if event["Step"] == "createSecret":
                fake_clock.advance(100)
            return original(spec, event)

        runtime.invoke = slow_create  # type: ignore[method-assign]
        gate = Gate(runtime, "setSecret")
        running = asyncio.create_task(a.run_once())
        await gate.wait_entered()
        for moment in (121, 219):
            fake_clock.set(started + moment)
            assert await b.run_once() == 0
        gate.opened.set()
        assert await running == 1
        [rotation] = await db.read(lambda tx: a.history(tx, 1))
        assert (rotation["State"], rotation["Attempts"]) == ("succeeded", 1)
        assert [e["Step"] for e in runtime.events] == ["createSecret", "setSecret", "testSecret", "finishSecret"]
        db.close()

    asyncio.run(scenario())


def test_a_slow_step_keeps_renewing_its_lease(tmp_path, fake_clock, caplog):
    """A step that runs longer than the lease is not taken over: the node renews its claim while
    the step runs (the lease is 0.3 s here, so renewals come every 0.1 s of real time)."""

    async def scenario() -> None:
        settings = RotationSettings(retry_base=60, retry_cap=600, max_attempts=3, lease=0.3)
        db, sm, runtime, b = setup(tmp_path, settings)
        flaky = FlakyDatabase(db)
        a = RotationEngine(b.cipher, flaky, runtime, b.resolve, settings, node_id="node-a")  # type: ignore[arg-type]
        await create(sm)
        await rotate(sm, "k" * 32)
        gate = Gate(runtime, "setSecret")
        running = asyncio.create_task(a.run_once())
        await gate.wait_entered()
        later = fake_clock.now() + 1000
        fake_clock.set(later)  # the claim made before setSecret has long expired
        flaky.failures = 1  # and the first renewal fails: the next one is tried all the same

        async def renewed() -> bool:
            row = await db.read(lambda tx: tx.one("SELECT claimed_by, claimed_until FROM rotations"))
            return bool(row[0] == a.node_id and row[1] > later)

        await until(renewed, "the lease renewed while setSecret runs")
        assert f"could not renew the lease of rotation {'k' * 32}" in [r.getMessage() for r in caplog.records]
        assert await b.run_once() == 0
        gate.opened.set()
        assert await running == 1
        [rotation] = await db.read(lambda tx: a.history(tx, 1))
        assert (rotation["State"], rotation["Attempts"]) == ("succeeded", 1)
        db.close()

    asyncio.run(scenario())


# ------------------------------------------------------------- what a RotateSecret call is answered


async def refused(call: Any) -> AWSError:
    try:
        await call
    except AWSError as exc:
        return exc
    raise AssertionError("the call was not refused")


def test_rotate_secret_retried_with_its_token_while_queued_records_one_rotation(tmp_path, fake_clock):
    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path)
        await create(sm)
        token = "q" * 32
        first = await rotate(sm, token)
        assert await rotate(sm, token) == first  # the SDK's retry of the same call
        assert await engine.run_once() == 1
        [rotation] = await db.read(lambda tx: engine.history(tx, 1))
        assert (rotation["VersionId"], rotation["State"]) == (token, "succeeded")
        assert [e["Step"] for e in runtime.events] == ["createSecret", "setSecret", "testSecret", "finishSecret"]
        db.close()

    asyncio.run(scenario())


def test_rotate_secret_with_the_token_of_a_finished_rotation_is_refused(tmp_path, fake_clock):
    async def scenario() -> None:
        db, sm, _runtime, engine = setup(tmp_path)
        await create(sm)
        token = "u" * 32
        await rotate(sm, token)
        assert await engine.run_once() == 1
        error = await refused(rotate(sm, token))
        assert (error.code, error.message) == (
            "ResourceExistsException",
            "A version with this ClientRequestToken already exists.",
        )
        assert await engine.run_once() == 0
        assert [h["State"] for h in await db.read(lambda tx: engine.history(tx, 1))] == ["succeeded"]
        assert (await stages_of(sm))[token] == ["AWSCURRENT"]
        db.close()

    asyncio.run(scenario())


def test_rotate_secret_with_a_function_secrets_manager_cannot_invoke_is_refused_and_records_nothing(
    tmp_path, fake_clock
):
    async def scenario() -> None:
        db, sm, _runtime, engine = setup(tmp_path)
        await create(sm)
        other = FUNCTION.replace(":fake", ":other")
        error = await refused(rotate(sm, "x" * 32, RotationLambdaARN=other))
        assert (error.code, error.message) == ("AccessDeniedException", CANNOT_INVOKE)
        described = await sm.handlers["DescribeSecret"](CTX, {"SecretId": "s"})
        assert "RotationLambdaARN" not in described and not described.get("RotationEnabled")
        assert described["VersionIdsToStages"] == {"t" * 32: ["AWSCURRENT"]}
        assert await engine.run_once() == 0
        assert await db.read(lambda tx: engine.history(tx, 1)) == []
        db.close()

    asyncio.run(scenario())


def test_a_new_rotation_after_one_that_gave_up_is_refused_and_the_old_one_reattempted(tmp_path, fake_clock):
    """AWS: "A previous rotation isn't complete. That rotation will be reattempted." The refused
    call records no rotation of its own; the failed one is queued again with its own token, and
    RotateSecret with that token is accepted."""

    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path, RotationSettings(retry_base=60, retry_cap=600, max_attempts=1))
        await create(sm)
        runtime.fail = ["setSecret"]
        stalled = "p" * 32
        await rotate(sm, stalled)
        assert await engine.run_once() == 1
        [rotation] = await db.read(lambda tx: engine.history(tx, 1))
        assert (rotation["State"], rotation["Finished"]) == ("failed", fake_clock.now())
        error = await refused(rotate(sm, "n" * 32))
        assert (error.code, error.message) == (
            "InvalidRequestException",
            "A previous rotation isn't complete. That rotation will be reattempted.",
        )
        [rotation] = await db.read(lambda tx: engine.history(tx, 1))
        assert (rotation["VersionId"], rotation["State"], rotation["Attempts"]) == (stalled, "queued", 0)
        assert "n" * 32 not in await stages_of(sm)
        assert await engine.run_once() == 1
        [rotation] = await db.read(lambda tx: engine.history(tx, 1))
        assert (rotation["VersionId"], rotation["State"]) == (stalled, "succeeded")
        assert (await stages_of(sm))[stalled] == ["AWSCURRENT"]
        assert {e["ClientRequestToken"] for e in runtime.events} == {stalled}
        # The same token after a failure: accepted, and run again.
        runtime.fail = ["setSecret"]
        again = "g" * 32
        await rotate(sm, again)
        assert await engine.run_once() == 1
        await rotate(sm, again)
        assert await engine.run_once() == 1
        assert (await stages_of(sm))[again] == ["AWSCURRENT"]
        assert [(h["VersionId"], h["State"]) for h in await db.read(lambda tx: engine.history(tx, 1))] == [
            (again, "succeeded"),
            (stalled, "succeeded"),
        ]
        db.close()

    asyncio.run(scenario())


def test_rotate_immediately_false_with_rules_schedules_the_next_rotation_at_once(tmp_path, fake_clock):
    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path)
        await create(sm)
        await rotate(sm, "w" * 32, RotateImmediately=False, RotationRules={"AutomaticallyAfterDays": 3})
        described = await sm.handlers["DescribeSecret"](CTX, {"SecretId": "s"})
        nxt = described["NextRotationDate"]
        nxt = nxt if isinstance(nxt, float | int) else nxt.timestamp()
        assert nxt == fake_clock.now() + 4 * DAY - 1  # the last second of the third day from today
        assert await engine.run_once() == 1  # the test of the current value
        assert [e["Step"] for e in runtime.events] == ["testSecret"]
        due = (await db.read(lambda tx: tx.one("SELECT rotation_due_at FROM secrets")))[0]
        fake_clock.set(due)
        assert await engine.run_once() == 1  # the scheduled rotation
        assert [e["Step"] for e in runtime.events][1:] == ["createSecret", "setSecret", "testSecret", "finishSecret"]
        db.close()

    asyncio.run(scenario())


def test_a_value_set_by_hand_postpones_only_an_automatically_after_days_schedule(tmp_path, fake_clock):
    async def scenario() -> None:
        db, sm, _runtime, engine = setup(tmp_path)

        async def next_rotation(name: str) -> float:
            nxt = (await sm.handlers["DescribeSecret"](CTX, {"SecretId": name}))["NextRotationDate"]
            return float(nxt if isinstance(nxt, float | int) else nxt.timestamp())

        for name, rules in (
            ("days", {"AutomaticallyAfterDays": 10}),
            ("rate", {"ScheduleExpression": "rate(10 days)"}),
        ):
            await create(sm, name)
            await rotate(sm, "a" * 32, name, RotationRules=rules)
        assert await engine.run_once() == 2
        before = {name: await next_rotation(name) for name in ("days", "rate")}
        assert before["days"] == before["rate"] == fake_clock.now() + 11 * DAY - 1
        fake_clock.advance(3 * DAY)
        for name in ("days", "rate"):
            await sm.handlers["PutSecretValue"](
                CTX, {"SecretId": name, "SecretString": "by hand", "ClientRequestToken": "h" * 32}
            )
        assert await next_rotation("days") == before["days"] + 3 * DAY
        assert await next_rotation("rate") == before["rate"]
        db.close()

    asyncio.run(scenario())


def test_rotate_immediately_false_on_a_secret_without_a_value_tests_an_empty_pending_version(tmp_path, fake_clock):
    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path)
        await create(sm, value=None)
        await rotate(sm, "e" * 32, RotateImmediately=False)
        assert await engine.run_once() == 1
        assert [e["Step"] for e in runtime.events] == ["testSecret"]
        [rotation] = await db.read(lambda tx: engine.history(tx, 1))
        assert rotation["State"] == "succeeded"
        described = await sm.handlers["DescribeSecret"](CTX, {"SecretId": "s"})
        assert described.get("VersionIdsToStages", {}) == {}  # the empty copy is gone
        db.close()

    asyncio.run(scenario())


def test_rotate_immediately_false_never_takes_an_existing_version_for_its_copy(tmp_path, fake_clock):
    """RotateImmediately=false tests a copy of the current value in the new version and then deletes
    that version. Named by a ClientRequestToken that is an existing version's id, it deleted that
    version (its value and its AWSPREVIOUS label) once the test succeeded: now refused."""

    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path)
        await create(sm)  # version t...t
        await sm.handlers["PutSecretValue"](
            CTX, {"SecretId": "s", "SecretString": "v1", "ClientRequestToken": "1" * 32}
        )
        error = await refused(rotate(sm, "t" * 32, RotateImmediately=False))
        assert (error.code, error.message) == ("ResourceExistsException", TOKEN_IN_USE)
        assert await engine.run_once() == 0
        assert runtime.events == []
        assert await stages_of(sm) == {"1" * 32: ["AWSCURRENT"], "t" * 32: ["AWSPREVIOUS"]}
        old = await sm.handlers["GetSecretValue"](CTX, {"SecretId": "s", "VersionId": "t" * 32})
        assert old["SecretString"] == "v0"
        assert await db.read(lambda tx: engine.history(tx, 1)) == []
        # A fresh token is tested and its copy removed, as before.
        await rotate(sm, "f" * 32, RotateImmediately=False)
        assert await engine.run_once() == 1
        assert await stages_of(sm) == {"1" * 32: ["AWSCURRENT"], "t" * 32: ["AWSPREVIOUS"]}
        db.close()

    asyncio.run(scenario())


def test_rotate_immediately_false_never_deletes_the_new_value_of_a_rotation_that_gave_up(tmp_path, fake_clock):
    """A rotation that gave up after createSecret leaves its new value in AWSPENDING, and setSecret
    may have set it in the database already: that version is the only copy of the password.
    RotateSecret with RotateImmediately=false and that version's token tested it and then deleted
    it; now refused, and the version is kept for the rotation to be tried again."""

    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path, RotationSettings(retry_base=60, retry_cap=600, max_attempts=1))
        await create(sm)
        runtime.fail = ["setSecret"]
        await rotate(sm, "n" * 32)
        assert await engine.run_once() == 1  # createSecret put the new value, setSecret failed: gave up
        assert await stages_of(sm) == {"t" * 32: ["AWSCURRENT"], "n" * 32: ["AWSPENDING"]}
        new = (await sm.handlers["GetSecretValue"](CTX, {"SecretId": "s", "VersionId": "n" * 32}))["SecretString"]
        error = await refused(rotate(sm, "n" * 32, RotateImmediately=False))
        assert (error.code, error.message) == ("ResourceExistsException", TOKEN_IN_USE)
        assert await engine.run_once() == 0
        assert await stages_of(sm) == {"t" * 32: ["AWSCURRENT"], "n" * 32: ["AWSPENDING"]}
        kept = await sm.handlers["GetSecretValue"](CTX, {"SecretId": "s", "VersionId": "n" * 32})
        assert kept["SecretString"] == new
        # The rotation itself can still be tried again, and completes with that same value.
        await rotate(sm, "n" * 32)
        assert await engine.run_once() == 1
        assert await stages_of(sm) == {"n" * 32: ["AWSCURRENT"], "t" * 32: ["AWSPREVIOUS"]}
        current = await sm.handlers["GetSecretValue"](CTX, {"SecretId": "s"})
        assert current["SecretString"] == new
        db.close()

    asyncio.run(scenario())


def test_rotate_immediately_false_may_reuse_the_token_of_a_rotation_that_gave_up_before_its_value(tmp_path, fake_clock):
    """A rotation that gave up at createSecret left a pending version without a value: nothing to
    lose. RotateSecret with RotateImmediately=false and that token tests a copy of the current value
    in it and then removes it, as with a new token."""

    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path, RotationSettings(retry_base=60, retry_cap=600, max_attempts=1))
        await create(sm)
        runtime.fail = ["createSecret"]
        await rotate(sm, "n" * 32)
        assert await engine.run_once() == 1  # gave up before any value was stored
        assert await stages_of(sm) == {"t" * 32: ["AWSCURRENT"], "n" * 32: ["AWSPENDING"]}
        await rotate(sm, "n" * 32, RotateImmediately=False)
        assert await engine.run_once() == 1
        assert [e["Step"] for e in runtime.events[-1:]] == ["testSecret"]
        assert await stages_of(sm) == {"t" * 32: ["AWSCURRENT"]}
        current = await sm.handlers["GetSecretValue"](CTX, {"SecretId": "s"})
        assert current["SecretString"] == "v0"
        db.close()

    asyncio.run(scenario())


# ------------------------------------------------------------ the server loop and the audit trail


async def events_of(db: Any, name: str) -> list[dict[str, Any]]:
    """The service events LookupEvents shows for the secret ``name``, oldest first."""
    trail = CloudTrail(db)
    answer = await trail.handlers["LookupEvents"](
        CTX, {"LookupAttributes": [{"AttributeKey": "EventSource", "AttributeValue": "secretsmanager.amazonaws.com"}]}
    )
    out = []
    for event in reversed(answer["Events"]):
        record = json.loads(event["CloudTrailEvent"])
        if record["eventType"] == "AwsServiceEvent" and record["resources"][0]["ARN"].split(":")[-1].startswith(
            name + "-"
        ):
            out.append(record)
    return out


def test_the_loop_resumes_its_own_rotations_at_once_survives_a_failed_pass_and_polls(tmp_path, fake_clock, caplog):
    """A node restarted on its SQLite file takes back the rotation it held when it stopped, without
    waiting for its old lease; a pass that fails (the database errs) is logged and the loop goes
    on; a scheduled rotation that comes due with nobody waking the loop starts on its next poll."""

    async def scenario() -> None:
        settings = RotationSettings(retry_base=60, retry_cap=600, max_attempts=3, poll_interval=0.02)
        db, sm, runtime, engine = setup(tmp_path, settings)

        def registry_down(*args: Any) -> None:
            raise RuntimeError("registry down")

        dead = second_node(engine, registry_down)
        await create(sm)
        token = "l" * 32
        await rotate(sm, token, RotationRules={"AutomaticallyAfterDays": 1})
        assert await dead.run_once() == 1  # claimed for 120 s, then the node "died"
        flaky = FlakyDatabase(db)
        flaky.failures = 1
        restarted = RotationEngine(engine.cipher, flaky, runtime, engine.resolve, settings, node_id="node-a")  # type: ignore[arg-type]
        sm.rotation = restarted
        caplog.clear()
        loop = asyncio.create_task(restarted.run())

        async def history() -> list[dict[str, Any]]:
            return await db.read(lambda tx: engine.history(tx, 1))  # type: ignore[no-any-return]

        async def succeeded() -> bool:
            return [h["State"] for h in await history()] == ["succeeded"]

        await until(succeeded, "the resumed rotation finished")  # the fake clock has not moved
        assert (await stages_of(sm))[token] == ["AWSCURRENT"]
        [failure] = [r for r in caplog.records if r.getMessage() == "rotation loop error"]
        assert "disk I/O error" in str(failure.exc_info[1])
        due = (await db.read(lambda tx: tx.one("SELECT rotation_due_at FROM secrets")))[0]
        fake_clock.set(due)

        async def rotated_again() -> bool:
            return [h["State"] for h in await history()] == ["succeeded", "succeeded"]

        await until(rotated_again, "the scheduled rotation started by a poll")
        assert not loop.done()
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
        db.close()

    asyncio.run(scenario())


def test_the_audit_trail_records_each_rotation_starting_failing_succeeding_and_abandoned(tmp_path, fake_clock, caplog):
    """Service events, as LookupEvents shows them: RotationStarted, RotationFailed (the attempt,
    whether it was the last, the error's first 1,000 characters), RotationSucceeded and
    RotationAbandoned; the failure's log line carries the error's first 500 characters."""

    async def scenario() -> None:
        settings = RotationSettings(retry_base=60, retry_cap=600, max_attempts=2, poll_interval=0.02)
        db, sm, runtime, plain = setup(tmp_path, settings)
        trail = AuditTrail(db)
        engine = RotationEngine(plain.cipher, db, runtime, plain.resolve, settings, audit=trail)
        sm.rotation = engine
        original = runtime.invoke
        long_error = "x" * 5000

        def failing_set(spec: FunctionSpec, event: dict[str, Any]) -> InvokeResult:
            if event["Step"] == "setSecret" and runtime.fail:
                runtime.fail.pop(0)
                return InvokeResult(False, error={"errorType": "ValueError", "errorMessage": long_error})
            return original(spec, event)

        runtime.invoke = failing_set  # type: ignore[method-assign]
        loop = asyncio.create_task(engine.run())
        error = ("setSecret failed: ValueError: " + long_error)[:2000]

        async def audited(name: str, event: str, count: int = 1) -> None:
            async def seen() -> bool:
                return [e["eventName"] for e in await events_of(db, name)].count(event) == count

            await until(seen, f"{count} {event} of {name} audited")

        await create(sm, "ok")
        runtime.fail = ["setSecret"]
        await rotate(sm, "o" * 32, "ok")  # wakes the loop
        await audited("ok", "RotationFailed")
        assert f"rotation {'o' * 32} attempt 1 failed: {error[:500]}" in [r.getMessage() for r in caplog.records]
        fake_clock.advance(70)  # past the back-off (60 s ±10%)
        engine.wake()
        await audited("ok", "RotationSucceeded")
        await create(sm, "gaveup")
        runtime.fail = ["setSecret"] * 2
        await rotate(sm, "g" * 32, "gaveup")
        await audited("gaveup", "RotationFailed")
        fake_clock.advance(70)
        engine.wake()
        await audited("gaveup", "RotationFailed", 2)  # the last attempt
        await sm.handlers["PutSecretValue"](
            CTX, {"SecretId": "gaveup", "SecretString": "by hand", "ClientRequestToken": "h" * 32}
        )

        await audited("gaveup", "RotationAbandoned")
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
        seen = {name: await events_of(db, name) for name in ("ok", "gaveup")}
        for records in seen.values():
            arn = records[0]["resources"][0]["ARN"]
            assert {(r["eventType"], r["eventSource"], r["resources"][0]["ARN"]) for r in records} == {
                ("AwsServiceEvent", "secretsmanager.amazonaws.com", arn)
            }
        token = "o" * 32
        assert [(r["eventName"], r["additionalEventData"]) for r in seen["ok"]] == [
            ("RotationStarted", {"versionId": token, "rotationLambdaARN": FUNCTION}),
            ("RotationFailed", {"versionId": token, "attempt": 1, "final": False, "error": error[:1000]}),
            ("RotationSucceeded", {"versionId": token}),
        ]
        token = "g" * 32
        assert [(r["eventName"], r["additionalEventData"]) for r in seen["gaveup"]] == [
            ("RotationStarted", {"versionId": token, "rotationLambdaARN": FUNCTION}),
            ("RotationFailed", {"versionId": token, "attempt": 1, "final": False, "error": error[:1000]}),
            ("RotationFailed", {"versionId": token, "attempt": 2, "final": True, "error": error[:1000]}),
            ("RotationAbandoned", {"versionId": token}),
        ]
        [rotation] = await db.read(lambda tx: engine.history(tx, 2))
        assert (rotation["State"], rotation["LastError"]) == ("abandoned", error)
        db.close()

    asyncio.run(scenario())


# ------------------------------------------------------------------- retries, slots, the scheduler


def test_a_failed_attempt_is_retried_after_a_jittered_capped_exponential_back_off(tmp_path, fake_clock):
    """retry_base 60 s and retry_cap 100 s, each ±10%: the first retry comes 54 to 66 s after the
    failure, the later ones 90 to 110 s after theirs (120 s and 240 s, capped)."""

    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path, RotationSettings(retry_base=60, retry_cap=100, max_attempts=4))
        await create(sm)
        runtime.fail = ["setSecret"] * 3
        token = "j" * 32
        await rotate(sm, token)
        assert await engine.run_once() == 1
        [rotation] = await db.read(lambda tx: engine.history(tx, 1))
        assert (rotation["State"], rotation["Finished"]) == ("running", None)  # to be retried
        for low, high in ((54, 66), (90, 110), (90, 110)):
            failed = fake_clock.now()
            fake_clock.set(failed + low - 0.1)
            assert await engine.run_once() == 0
            fake_clock.set(failed + high + 0.1)
            assert await engine.run_once() == 1
        [rotation] = await db.read(lambda tx: engine.history(tx, 1))
        assert (rotation["State"], rotation["Attempts"]) == ("succeeded", 4)
        db.close()

    asyncio.run(scenario())


def test_one_node_runs_at_most_its_concurrency_of_rotations_at_once(tmp_path, fake_clock):
    import threading

    async def scenario(concurrency: int) -> int:
        db, sm, runtime, engine = setup(tmp_path / str(concurrency), RotationSettings(concurrency=concurrency))
        original = runtime.invoke
        lock, running, most, first = threading.Lock(), [0], [0], [2]
        threads: set[str] = set()
        both = threading.Barrier(2, timeout=10)

        def counted(spec: FunctionSpec, event: dict[str, Any]) -> InvokeResult:
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
                threads.add(threading.current_thread().name)
                meet = concurrency > 1 and event["Step"] == "createSecret" and first[0] > 0
                first[0] -= meet
            try:
                if meet:
                    both.wait()  # the first two rotations' first steps run side by side
                return original(spec, event)
            finally:
                with lock:
                    running[0] -= 1

        runtime.invoke = counted  # type: ignore[method-assign]
        for name in ("s1", "s2", "s3"):
            await create(sm, name)
            await rotate(sm, "c" * 32, name)
        assert await engine.run_once() == 3
        if concurrency == 1:  # one rotation after the other
            assert [e["SecretId"].split(":")[-1][:2] for e in runtime.events] == [
                name for name in ("s1", "s2", "s3") for _ in range(4)
            ]
        assert [h["State"] for i in (1, 2, 3) for h in await db.read(lambda tx, i=i: engine.history(tx, i))] == [
            "succeeded"
        ] * 3
        db.close()
        # On the engine's own threads, one a slot (not the loop's default executor, shared with all).
        assert len(threads) == concurrency and all(name.startswith("rotation") for name in threads)
        return most[0]

    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    assert asyncio.run(scenario(1)) == 1
    assert asyncio.run(scenario(2)) == 2


def test_the_function_gets_a_rotation_token_of_its_own(tmp_path, fake_clock):
    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path)
        await create(sm)
        runtime.fail = ["setSecret"]
        await rotate(sm, "z" * 32)
        assert await engine.run_once() == 1
        fake_clock.advance(70)
        assert await engine.run_once() == 1
        tokens = {e["RotationToken"] for e in runtime.events}
        assert len(tokens) == 1  # one rotation, one token, for every step of every attempt
        [rotation_token] = tokens
        assert str(uuid.UUID(rotation_token)) == rotation_token and rotation_token != "z" * 32
        db.close()

    asyncio.run(scenario())


def test_a_rotation_still_being_retried_holds_the_scheduled_one_off(tmp_path, fake_clock):
    """A scheduled rotation comes due while an earlier one waits for its retry (its AWSPENDING
    label removed by hand meanwhile): no second rotation starts; the waiting one, no longer
    wanted, stops."""

    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path)
        await create(sm)
        await rotate(sm, "1" * 32, RotationRules={"AutomaticallyAfterDays": 1})
        assert await engine.run_once() == 1
        due = (await db.read(lambda tx: tx.one("SELECT rotation_due_at FROM secrets")))[0]
        runtime.fail = ["setSecret"]
        waiting = "2" * 32
        await rotate(sm, waiting)
        assert await engine.run_once() == 1  # failed; retried in about 60 s
        await sm.handlers["UpdateSecretVersionStage"](
            CTX, {"SecretId": "s", "VersionStage": "AWSPENDING", "RemoveFromVersionId": waiting}
        )
        fake_clock.set(max(due, fake_clock.now() + 70))
        assert await engine.run_once() == 1  # the waiting one, which stops at once
        assert [(h["VersionId"], h["State"]) for h in await db.read(lambda tx: engine.history(tx, 1))] == [
            (waiting, "abandoned"),
            ("1" * 32, "succeeded"),
        ]
        db.close()

    asyncio.run(scenario())


def test_an_abandoned_rotation_whose_function_put_awspending_back_leaves_no_awspending(tmp_path, fake_clock):
    """A value set by hand while createSecret runs abandons the rotation; the function then puts its
    version in AWSPENDING anyway. The engine stops at the next step and removes that label: left,
    it would refuse every later RotateSecret with "A previous rotation isn't complete"."""

    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path)
        await create(sm)
        original = runtime.invoke

        def set_by_hand_first(spec: FunctionSpec, event: dict[str, Any]) -> InvokeResult:
            if event["Step"] == "createSecret":
                runtime.call("PutSecretValue", SecretId="s", SecretString="by hand", ClientRequestToken="h" * 32)
            return original(spec, event)

        runtime.invoke = set_by_hand_first  # type: ignore[method-assign]
        token = "b" * 32
        await rotate(sm, token)
        assert await engine.run_once() == 1
        assert [e["Step"] for e in runtime.events] == ["createSecret"]
        stages = await stages_of(sm)
        assert stages["h" * 32] == ["AWSCURRENT"] and stages.get(token, []) == []
        [rotation] = await db.read(lambda tx: engine.history(tx, 1))
        assert rotation["State"] == "abandoned"
        runtime.invoke = original  # type: ignore[method-assign]
        await rotate(sm, "n" * 32)  # accepted
        assert await engine.run_once() == 1
        assert (await stages_of(sm))["n" * 32] == ["AWSCURRENT"]
        db.close()

    asyncio.run(scenario())


def test_a_function_secrets_manager_may_no_longer_invoke_fails_the_attempt(tmp_path, fake_clock):
    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path, RotationSettings(max_attempts=1))
        await create(sm)
        await rotate(sm, "i" * 32)
        original = runtime.invoke

        def revoke_after_create(spec: FunctionSpec, event: dict[str, Any]) -> InvokeResult:
            engine.resolve = lambda *args: None
            return original(spec, event)

        runtime.invoke = revoke_after_create  # type: ignore[method-assign]
        assert await engine.run_once() == 1
        [rotation] = await db.read(lambda tx: engine.history(tx, 1))
        assert (rotation["State"], rotation["LastError"]) == ("failed", "AccessDeniedException: " + CANNOT_INVOKE)
        assert [e["Step"] for e in runtime.events] == ["createSecret"]
        db.close()

    asyncio.run(scenario())


class UnwritableTrail:
    """An audit trail that cannot write (its database is down)."""

    async def record(self, record: dict[str, Any]) -> None:
        raise RuntimeError("audit trail unavailable")


def test_a_rotation_goes_on_when_its_service_events_cannot_be_audited_and_says_so(tmp_path, fake_clock, caplog):
    async def scenario(audit: Any) -> list[str]:
        settings = RotationSettings(poll_interval=0.02)
        db, sm, runtime, plain = setup(tmp_path / str(audit is None), settings)
        engine = RotationEngine(plain.cipher, db, runtime, plain.resolve, settings, audit=audit)
        sm.rotation = engine
        loop = asyncio.create_task(engine.run())
        caplog.clear()
        await create(sm)
        await rotate(sm, "y" * 32)

        async def succeeded() -> bool:
            return [h["State"] for h in await db.read(lambda tx: engine.history(tx, 1))] == ["succeeded"]

        await until(succeeded, "the rotation finished")
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
        db.close()
        return [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]

    (tmp_path / "True").mkdir()
    (tmp_path / "False").mkdir()
    errors = asyncio.run(scenario(UnwritableTrail()))
    assert "service event RotationStarted could not be audited" in errors
    assert "service event RotationSucceeded could not be audited" in errors
    assert asyncio.run(scenario(None)) == []  # no trail, nothing to fail


def test_stopping_the_loop_stops_the_rotation_it_is_running(tmp_path, fake_clock):
    """The server stops: the rotation whose step is running goes no further on this node (the step
    itself runs on to its end: a function cannot be interrupted)."""

    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path, RotationSettings(poll_interval=0.02))
        await create(sm)
        await rotate(sm, "v" * 32)
        gate = Gate(runtime, "createSecret")
        loop = asyncio.create_task(engine.run())
        await gate.wait_entered()
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
        await asyncio.sleep(0)
        left = [t for t in asyncio.all_tasks() if "_run_job" in t.get_coro().__qualname__]  # type: ignore[union-attr]
        assert left == []  # no rotation task outlives the loop
        gate.opened.set()
        await until(lambda: asyncio.sleep(0, gate.left.is_set()), "the step ran to its end")
        [rotation] = await db.read(lambda tx: engine.history(tx, 1))
        assert (rotation["State"], rotation["Steps"]) == ("running", [])  # its outcome unrecorded
        db.close()

    asyncio.run(scenario())


def test_the_scheduler_starts_every_due_rotation_in_one_pass_beyond_its_batch_of_50(tmp_path, fake_clock):
    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path, RotationSettings(max_attempts=1))
        for i in range(51):
            await create(sm, f"b{i}")
            await rotate(
                sm, "t" * 31 + "x", f"b{i}", RotateImmediately=False, RotationRules={"AutomaticallyAfterDays": 1}
            )
        assert await engine.run_once() == 51  # the tests of the current values
        fake_clock.advance(2 * DAY)
        runtime.fail = ["createSecret"] * 51  # cheap attempts: each fails at once
        assert await engine.run_once() == 51
        tokens = {e["SecretId"]: e["ClientRequestToken"] for e in runtime.events if e["Step"] == "createSecret"}
        assert len(tokens) == 51
        db.close()

    asyncio.run(scenario())


def test_a_rotation_that_gives_up_leaves_the_schedule_counted_from_the_last_rotation(tmp_path, fake_clock):
    """AutomaticallyAfterDays counts from the last rotation: a RotateSecret that never completes
    does not move NextRotationDate."""

    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path, RotationSettings(max_attempts=1))
        await create(sm)
        await rotate(sm, "1" * 32, RotationRules={"AutomaticallyAfterDays": 10})
        assert await engine.run_once() == 1

        async def next_rotation() -> float:
            nxt = (await sm.handlers["DescribeSecret"](CTX, {"SecretId": "s"}))["NextRotationDate"]
            return float(nxt if isinstance(nxt, float | int) else nxt.timestamp())

        scheduled = await next_rotation()
        assert scheduled == fake_clock.now() + 11 * DAY - 1
        fake_clock.advance(3 * DAY)
        runtime.fail = ["setSecret"]
        await rotate(sm, "2" * 32)
        assert await next_rotation() == scheduled
        assert await engine.run_once() == 1
        assert (await db.read(lambda tx: engine.history(tx, 1)))[0]["State"] == "failed"
        assert await next_rotation() == scheduled
        db.close()

    asyncio.run(scenario())


def test_rotation_rules_stored_by_an_older_server_that_no_longer_parse_do_not_break_a_write(tmp_path, fake_clock):
    """Rules the parser refuses now (stored before a stricter release) only lose the schedule: a
    value set by hand, which reschedules AutomaticallyAfterDays, still succeeds."""

    async def scenario() -> None:
        db, sm, _runtime, engine = setup(tmp_path)
        await create(sm)
        await rotate(sm, "1" * 32, RotationRules={"AutomaticallyAfterDays": 10})
        assert await engine.run_once() == 1
        await db.write(
            lambda tx: tx.execute("UPDATE secrets SET rotation_rules = ?", ('{"AutomaticallyAfterDays": 5000}',))
        )
        answer = await sm.handlers["PutSecretValue"](
            CTX, {"SecretId": "s", "SecretString": "by hand", "ClientRequestToken": "h" * 32}
        )
        assert answer["VersionStages"] == ["AWSCURRENT"]
        described = await sm.handlers["DescribeSecret"](CTX, {"SecretId": "s"})
        assert described["RotationEnabled"] is True and "NextRotationDate" not in described
        db.close()

    asyncio.run(scenario())


def test_a_rotation_that_finishes_after_cancel_rotate_secret_schedules_nothing(tmp_path, fake_clock):
    """CancelRotateSecret during finishSecret: the rotation still completes (the function moved
    AWSCURRENT), but sets no next rotation; RotateSecret turning rotation on again shows none
    until its own rotation completes."""

    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path)
        await create(sm)
        original = runtime.invoke

        def cancel_during_finish(spec: FunctionSpec, event: dict[str, Any]) -> InvokeResult:
            result = original(spec, event)
            if event["Step"] == "finishSecret":
                runtime.call("CancelRotateSecret", SecretId="s")
            return result

        runtime.invoke = cancel_during_finish  # type: ignore[method-assign]
        await rotate(sm, "1" * 32, RotationRules={"AutomaticallyAfterDays": 10})
        assert await engine.run_once() == 1
        described = await sm.handlers["DescribeSecret"](CTX, {"SecretId": "s"})
        assert described["RotationEnabled"] is False and "LastRotatedDate" in described
        runtime.invoke = original  # type: ignore[method-assign]
        await rotate(sm, "2" * 32)
        described = await sm.handlers["DescribeSecret"](CTX, {"SecretId": "s"})
        assert described["RotationEnabled"] is True and "NextRotationDate" not in described
        assert await engine.run_once() == 1
        described = await sm.handlers["DescribeSecret"](CTX, {"SecretId": "s"})
        assert "NextRotationDate" in described
        db.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(("jitter", "due"), [("lowest", 54.0), ("highest", 66.0)])
def test_the_back_offs_jitter_spans_ten_percent_either_side(tmp_path, fake_clock, monkeypatch, jitter, due):
    """retry_base 60 s: with the jitter at its lowest the retry is due 54 s after the failure, at
    its highest 66 s after (the jitter's draw pinned to each end of its range)."""
    import random

    monkeypatch.setattr(random, "uniform", lambda low, high: low if jitter == "lowest" else high)

    async def scenario() -> None:
        db, sm, runtime, engine = setup(tmp_path)
        await create(sm)
        runtime.fail = ["setSecret"]
        await rotate(sm, "j" * 32)
        failed = fake_clock.now()
        assert await engine.run_once() == 1
        fake_clock.set(failed + due - 0.1)
        assert await engine.run_once() == 0
        fake_clock.set(failed + due + 0.1)
        assert await engine.run_once() == 1
        db.close()

    asyncio.run(scenario())
