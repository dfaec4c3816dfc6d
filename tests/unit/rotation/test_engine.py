"""The rotation state machine with a fake clock: in-process service, real SQLite, a fake runtime.

The fake runtime plays a well-behaved rotation function (AWS's generic template) by calling the
service's own operations, so a month of schedules runs in about a second.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from strongroom import clock
from strongroom.context import RequestContext
from strongroom.crypto import Keyring, MasterKey
from strongroom.rotation.engine import RotationEngine, RotationSettings
from strongroom.rotation.runtime import FunctionSpec, InvokeResult
from strongroom.services.secretsmanager import SecretsManager
from strongroom.services.secretsmanager.values import ValueCipher
from strongroom.store import open_database

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
