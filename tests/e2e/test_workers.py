"""``serve --workers N``: N processes on one port over one storage (strongroom.server.workers).

What a user sees: one data directory is still one server's (a second ``serve`` is refused); a
revoked key or a changed policy is obeyed by the very next request on any worker; histories of
concurrent clients stay linearizable with two workers, on SQLite and on PostgreSQL, and with one
worker killed by SIGKILL mid-workload (the parent replaces it, in one log line, and no acknowledged
write is lost); rotations run once; the audit trail is one trail; SIGTERM drains every worker.

Each worker also listens on a loopback port of its own (its functions call it back there); the
tests use those ports to choose which worker a request reaches.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from test_history import FAST, SECONDS, SECRETS, rotation_function, sqlite_integrity, tally

from strongroom.testing import ServerProcess, postgres_schema, wait_for
from strongroom.testing.history import History, Workload, check, client_for, read_final_state

WORKER_LINE = re.compile(r"worker (\d+) \(PID (\d+)\) serving; its functions call back on 127\.0\.0\.1:(\d+)")


def workers(srv: ServerProcess) -> dict[int, tuple[int, int]]:
    """Each worker's (PID, own loopback port), the latest of each index, from the server's log."""
    out: dict[int, tuple[int, int]] = {}
    for index, pid, port in WORKER_LINE.findall(srv.log()):
        out[int(index)] = (int(pid), int(port))
    return out


def ready(srv: ServerProcess, count: int = 2) -> dict[int, tuple[int, int]]:
    wait_for(lambda: f"  workers: {count}" in srv.log(), timeout=60, what="every worker started")
    found = workers(srv)
    assert sorted(found) == list(range(count)), srv.log()
    return found


def view(srv: ServerProcess, port: int, **keys: str) -> ServerProcess:
    """The same server as seen through one worker's own port (not started: nothing to start)."""
    return ServerProcess(
        data_dir=srv.data_dir,
        port=port,
        access_key_id=keys.get("access_key_id", srv.access_key_id),
        secret_access_key=keys.get("secret_access_key", srv.secret_access_key),
    )


@contextmanager
def storage(kind: str, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    if kind == "sqlite":
        yield {}
    else:
        base = request.getfixturevalue("pg_url").split("?", 1)[0]
        with postgres_schema(base) as url:
            yield {"database_url": url}


# ------------------------------------------------------------------------- one server, N workers


def test_workers_share_one_data_dir_and_a_second_server_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with ServerProcess(data_dir=data_dir, extra_args=["--workers", "2"]) as srv:
        found = ready(srv)
        parent = srv.proc.pid  # type: ignore[union-attr]
        assert all(pid != parent for pid, _ in found.values())
        # Both workers answer, each on its own port and together on the server's.
        for _, port in found.values():
            assert client_for(view(srv, port)).list_secrets()["SecretList"] == []
        second = subprocess.run(
            [sys.executable, "-m", "strongroom.cli.main", "serve", "--data-dir", str(data_dir), "--port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert second.stderr.strip() == (
            f"strongroom: the data directory {data_dir} is in use by another server (PID {parent})"
        )
        # A second group of workers on the same port is refused too (SO_REUSEPORT would let it in).
        other = subprocess.run(
            [
                sys.executable,
                "-m",
                "strongroom.cli.main",
                "serve",
                "--data-dir",
                str(tmp_path / "other"),
                "--port",
                str(srv.port),
                "--workers",
                "2",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode == 1
        assert other.stderr.strip() == (
            f"strongroom: cannot listen on 127.0.0.1:{srv.port}: the address is already in use "
            "(another server on this port?)"
        )
        code = srv.stop()
    assert code == 0  # SIGTERM: every worker drained, the parent exited cleanly
    for pid, _ in found.values():
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_dev_and_workers_is_refused_in_one_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", "serve", "--dev", "--workers", "2", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "strongroom serve: --dev keeps state in one process's memory and cannot be used with --workers. "
        "(see strongroom serve --help)"
    )


def test_a_killed_worker_is_logged_in_one_line_and_replaced(tmp_path: Path) -> None:
    with ServerProcess(data_dir=tmp_path / "data", extra_args=["--workers", "2"]) as srv:
        found = ready(srv)
        pid = found[1][0]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: workers(srv)[1][0] != pid, timeout=60, what="worker 1 replaced")
        lines = [line for line in srv.log().splitlines() if "was killed" in line]
        assert len(lines) == 1
        assert lines[0].endswith(
            f"ERROR strongroom.workers: worker 1 (PID {pid}) was killed by SIGKILL; starting another"
        )
        new_pid, new_port = workers(srv)[1]
        wait_for(lambda: view(srv, new_port).healthy(), what="worker 1's successor answering")
        assert client_for(view(srv, new_port)).list_secrets()["SecretList"] == []
        assert Path(f"/proc/{new_pid}").exists()


def test_workers_end_with_their_parent(tmp_path: Path) -> None:
    """kill -9 of the parent: the kernel stops its workers, and the data directory is free again."""
    data_dir = tmp_path / "data"
    srv = ServerProcess(data_dir=data_dir, extra_args=["--workers", "2"]).start()
    try:
        found = ready(srv)
        srv.kill()
        for pid, _ in found.values():
            wait_for(lambda pid=pid: not Path(f"/proc/{pid}").exists(), timeout=60, what=f"worker {pid} gone")
        with ServerProcess(data_dir=data_dir) as again:
            assert client_for(again).list_secrets()["SecretList"] == []
    finally:
        srv.stop()


# --------------------------------------------------------------------------- caches, coherent


ALLOW = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}],
}
DENY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}],
}


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_changed_policy_and_a_revoked_key_bind_every_worker_at_once(
    engine: str, request: pytest.FixtureRequest
) -> None:
    """Each change made through worker 0, then the very next request through worker 1 obeys it
    (worker 1 had the key and the policy cached). Five rounds: a half-second poll would let one
    through."""
    with storage(engine, request) as kwargs, ServerProcess(extra_args=["--workers", "2"], **kwargs) as srv:
        found = ready(srv)
        w0 = view(srv, found[0][1])
        sm0, iam0 = client_for(w0), client_for(w0, "iam")
        sm0.create_secret(Name="coherent", SecretString="v")
        iam0.create_user(UserName="reader")
        iam0.put_user_policy(UserName="reader", PolicyName="allow", PolicyDocument=json.dumps(ALLOW))
        key = iam0.create_access_key(UserName="reader")["AccessKey"]
        reader = client_for(
            view(srv, found[1][1], access_key_id=key["AccessKeyId"], secret_access_key=key["SecretAccessKey"])
        )
        for _ in range(5):
            assert reader.get_secret_value(SecretId="coherent")["SecretString"] == "v"  # cached on worker 1
            iam0.put_user_policy(UserName="reader", PolicyName="deny", PolicyDocument=json.dumps(DENY))
            with pytest.raises(ClientError) as refused:
                reader.get_secret_value(SecretId="coherent")
            assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
            iam0.delete_user_policy(UserName="reader", PolicyName="deny")
            assert reader.get_secret_value(SecretId="coherent")["SecretString"] == "v"
            iam0.update_access_key(UserName="reader", AccessKeyId=key["AccessKeyId"], Status="Inactive")
            with pytest.raises(ClientError) as revoked:
                reader.get_secret_value(SecretId="coherent")
            assert revoked.value.response["Error"]["Code"] == "UnrecognizedClientException"
            iam0.update_access_key(UserName="reader", AccessKeyId=key["AccessKeyId"], Status="Active")


# ------------------------------------------------------------------------------- histories


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_history_with_two_workers(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The workload of test_history.py, its clients spread over both workers (each worker's own
    port, and the shared one): linearizable, acknowledged writes read back, labels by AWS's rules,
    rotations run once each, and one audit trail holding every call."""
    with (
        storage(engine, request) as kwargs,
        ServerProcess(data_dir=tmp_path / "data", env=FAST, extra_args=["--workers", "2"], **kwargs) as srv,
    ):
        found = ready(srv)
        nodes = [view(srv, found[0][1]), view(srv, found[1][1]), srv]
        arn = rotation_function(srv, "history-rotation")
        history = History()
        workload = Workload(history, nodes, SECRETS + ["h/rotated"], rotated=["h/rotated"], rotation_arn=arn)
        workload.setup()
        workload.run(SECONDS)
        sm = client_for(srv)
        final = read_final_state(history, sm, workload.secrets)
        code = srv.stop()
        lines = _trail_lines(srv.data_dir)
    assert code == 0
    assert not check(history, final), "\n".join(check(history, final)[:20])
    assert history.indeterminate() == []
    counts = tally(history)
    assert counts.get(("PutSecretValue", "ok"), 0) >= 20, counts
    # Each node of the workload wrote: both workers served writes.
    assert {op.node for op in history.snapshot() if op.f == "PutSecretValue" and op.outcome == "ok"} >= {0, 1}
    if engine == "sqlite":
        sqlite_integrity(srv.data_dir)
        conn = sqlite3.connect(srv.data_dir / "strongroom.db")
        try:
            # No step of a rotation attempt ran twice (one engine, on worker 0).
            twice = conn.execute(
                "SELECT rotation_id, attempt, step, count(*) FROM rotation_steps "
                "GROUP BY rotation_id, attempt, step HAVING count(*) > 1"
            ).fetchall()
            steps = conn.execute("SELECT count(*) FROM rotation_steps").fetchone()[0]
            table = [row[0] for row in conn.execute("SELECT event_id FROM audit_events ORDER BY id")]
            names = dict(conn.execute("SELECT event_id, event_name FROM audit_events").fetchall())
        finally:
            conn.close()
        assert twice == []
        assert steps >= 4
        # One trail: both workers' lines whole in the same files, each record once, and the files
        # hold exactly the table's records (a RotateSecret that queued a stalled rotation again and
        # answered InvalidRequestException was once in the table only).
        got = [json.loads(line)["eventID"] for line in lines]
        assert len(got) == len(set(got))
        # Each worker draws its own ids (a forked copy of one generator made the same sequence twice).
        assert len({event_id[14:] for event_id in table}) == len(table)
        assert set(got) == set(table), {names[i] for i in set(table) ^ set(got) if i in names}
        reads = counts.get(("GetSecretValue", "ok"), 0)
        assert sum(json.loads(line)["eventName"] == "GetSecretValue" for line in lines) >= reads > 0


def _trail_lines(data_dir: Path) -> list[str]:
    files = sorted((data_dir / "audit").rglob("*.jsonl"))
    return [line for f in files for line in f.read_text().splitlines()]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_kill_9_of_one_worker_loses_nothing_acknowledged(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    with storage(engine, request) as kwargs, ExitStack() as stack:
        srv = ServerProcess(data_dir=data_dir, extra_args=["--workers", "2"], **kwargs).start()
        stack.callback(srv.stop)
        found = ready(srv)
        history = History()
        # Clients on the shared port (the kernel spreads their connections over both workers)
        # and on each worker's own port, so the killed worker is certainly mid-request.
        workload = Workload(history, [srv, view(srv, found[1][1]), view(srv, found[0][1])], SECRETS)
        workload.setup()
        workload.start()
        stack.callback(workload.stop)
        started = history.now()
        wait_for(
            lambda: len(history.acknowledged_writes()) >= 40 and history.now() - started >= SECONDS / 2,
            timeout=30 + SECONDS,
            what="40 acknowledged writes",
        )
        os.kill(found[1][0], signal.SIGKILL)
        killed_at = history.now()
        before_kill = history.acknowledged_writes(before=killed_at)
        wait_for(lambda: workers(srv)[1][0] != found[1][0], timeout=60, what="worker 1 replaced")
        wait_for(
            lambda: (
                sum(op.invoke > killed_at and op.node == 0 for op in history.acknowledged_writes()) >= 40
                and history.now() - killed_at >= SECONDS / 2
            ),
            timeout=30 + SECONDS,
            what="40 acknowledged writes on the shared port after the kill",
        )
        workload.stop()
        final = read_final_state(history, client_for(srv), SECRETS)
        log = srv.log()
        assert srv.stop() == 0
    violations = check(history, final)
    assert not violations, "\n".join(violations[:20])
    for op in before_kill:
        assert final[op.secret]["versions"][op.args["ClientRequestToken"]]["value"] == op.args["SecretString"]
    assert sum("was killed by SIGKILL; starting another" in line for line in log.splitlines()) == 1
    counts = tally(history)
    assert sum(n for (f, outcome), n in counts.items() if outcome in ("info", "fail Unavailable")) >= 1, (
        "no request met the dead worker: the kill was not mid-workload"
    )
    if engine == "sqlite":
        sqlite_integrity(data_dir)


def test_function_credentials_are_a_workers_own(tmp_path: Path) -> None:
    """A rotation requested through worker 1 is run by worker 0 (the one rotation engine), whose
    function calls back worker 0's own port (its credentials live in that worker's memory)."""
    with ServerProcess(data_dir=tmp_path / "data", env=FAST, extra_args=["--workers", "2"]) as srv:
        found = ready(srv)
        arn = rotation_function(srv, "own-rotation")
        sm = client_for(view(srv, found[1][1]))  # requested on worker 1, run by worker 0
        sm.create_secret(Name="rotated", SecretString="first")
        token = str(uuid.uuid4())
        sm.rotate_secret(SecretId="rotated", RotationLambdaARN=arn, ClientRequestToken=token)
        wait_for(
            lambda: sm.describe_secret(SecretId="rotated")["VersionIdsToStages"].get(token) == ["AWSCURRENT"],
            timeout=60,
            what="the rotation done",
        )
        assert "LastRotatedDate" in sm.describe_secret(SecretId="rotated")


def test_a_rotation_queued_by_another_worker_starts_without_waiting_for_a_poll(tmp_path: Path) -> None:
    """Worker 0 runs every rotation. With its poll an hour apart, a RotateSecret answered by worker
    1 still rotates at once: worker 1 rings the doorbell worker 0 listens to. (Before the
    doorbell, it waited for worker 0's next poll: an hour here, a second by default.)"""
    env = {**FAST, "STRONGROOM_ROTATION_POLL_SECONDS": "3600"}
    with ServerProcess(data_dir=tmp_path / "data", env=env, extra_args=["--workers", "2"]) as srv:
        found = ready(srv)
        arn = rotation_function(srv, "rung")
        sm = client_for(view(srv, found[1][1]))  # worker 1's own port
        sm.create_secret(Name="rung", SecretString="first")
        for _ in range(2):  # and again: a doorbell heard once still rings
            token = str(uuid.uuid4())
            sm.rotate_secret(SecretId="rung", RotationLambdaARN=arn, ClientRequestToken=token)
            wait_for(
                lambda token=token: (
                    sm.describe_secret(SecretId="rung")["VersionIdsToStages"].get(token) == ["AWSCURRENT"]
                ),
                timeout=60,
                what="the rotation requested on worker 1 done by worker 0",
            )


def test_a_worker_that_cannot_start_is_one_line(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "strongroom.cli.main",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
            "--workers",
            "2",
            "--master-key-file",
            str(tmp_path / "absent.key"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"strongroom: the master key file {tmp_path / 'absent.key'} does not exist (--master-key-file)"
    ]
