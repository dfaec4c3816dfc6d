"""Histories of concurrent clients, checked (strongroom.testing.history): one server, a server
killed with SIGKILL mid-workload, and three nodes on one PostgreSQL schema.

``STRONGROOM_HISTORY_SECONDS`` sets how long each workload runs (default 3).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from strongroom.testing import ServerProcess, postgres_schema, wait_for
from strongroom.testing.functions import zipped
from strongroom.testing.history import (
    ROTATION_ENV,
    ROTATION_FUNCTION,
    History,
    Op,
    Workload,
    check,
    client_for,
    read_final_state,
    rotation_value,
)

SECONDS = float(os.environ.get("STRONGROOM_HISTORY_SECONDS", "3"))
FAST = {
    "STRONGROOM_ROTATION_RETRY_BASE_SECONDS": "0.3",
    "STRONGROOM_ROTATION_MAX_ATTEMPTS": "2",
    "STRONGROOM_ROTATION_POLL_SECONDS": "0.2",
}
SECRETS = ["h/a", "h/b", "h/c"]

ROTATION_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                ],
                "Resource": "*",
            }
        ],
    }
)
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def rotation_function(server: ServerProcess, name: str, env: dict[str, str] | None = None) -> str:
    """A function whose createSecret writes rotation_value(token), with the role AWS requires."""
    iam, lam = client_for(server, "iam"), client_for(server, "lambda")
    role = iam.create_role(RoleName=f"rotation-{name}", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    iam.put_role_policy(RoleName=f"rotation-{name}", PolicyName="rotate", PolicyDocument=ROTATION_POLICY)
    arn = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": zipped(ROTATION_FUNCTION)},
        Timeout=30,
        Environment={"Variables": {**ROTATION_ENV, **(env or {})}},
    )["FunctionArn"]
    lam.add_permission(
        FunctionName=name, StatementId="sm", Action="lambda:InvokeFunction", Principal="secretsmanager.amazonaws.com"
    )
    return arn  # type: ignore[no-any-return]


@contextmanager
def storage(kind: str, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """ServerProcess arguments for one engine; PostgreSQL gets a schema of its own per test (each
    deployment here has its own master key)."""
    if kind == "sqlite":
        yield {}
    else:
        base = request.getfixturevalue("pg_url").split("?", 1)[0]
        with postgres_schema(base) as url:
            yield {"database_url": url}


def assert_correct(history: History, final: dict[str, Any]) -> None:
    violations = check(history, final)
    assert not violations, "\n".join(violations[:20])


def sqlite_integrity(data_dir: Path, read_only: bool = False) -> None:
    """SQLite's own checks on the server's database file, from outside the server."""
    [path] = list(data_dir.glob("*.db"))
    uri = f"file:{path}?mode=ro" if read_only else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def tally(history: History) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for op in history.snapshot():
        key = (op.f, op.outcome if op.outcome != "fail" else f"fail {op.error}")
        out[key] = out.get(key, 0) + 1
    return out


# ---------------------------------------------------------------- the checker, on histories made by hand

V1, V2, V3 = "11111111-v1", "22222222-v2", "33333333-v3"


def _op(
    i: int,
    f: str,
    args: dict[str, Any],
    span: tuple[float, float | None],
    outcome: str = "ok",
    response: dict[str, Any] | None = None,
    error: str | None = None,
) -> Op:
    return Op(i, f"p{i}", 0, f, "s", {"SecretId": "s", **args}, span[0], span[1], outcome, response, error)


def _write(i: int, f: str, token: str, span: tuple[float, float | None], outcome: str = "ok") -> Op:
    response = {"VersionId": token, "VersionStages": ["AWSCURRENT"]} if outcome == "ok" else None
    return _op(i, f, {"ClientRequestToken": token, "SecretString": f"value of {token}"}, span, outcome, response)


def _get(i: int, token: str, span: tuple[float, float], stages: list[str] | None = None, **args: Any) -> Op:
    return _op(
        i,
        "GetSecretValue",
        args,
        span,
        response={"VersionId": token, "SecretString": f"value of {token}", "VersionStages": stages or ["AWSCURRENT"]},
    )


def _describe(i: int, stages: dict[str, list[str]], span: tuple[float, float]) -> Op:
    return _op(i, "DescribeSecret", {}, span, response={"VersionIdsToStages": stages})


def _final(versions: dict[str, list[str]], values: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "s": {
            "listed": list(versions),
            "versions": {
                v: {"stages": sorted(st), "value": (values or {}).get(v, f"value of {v}")} for v, st in versions.items()
            },
        }
    }


def _base() -> list[Op]:
    return [_write(0, "CreateSecret", V1, (0, 1)), _write(1, "PutSecretValue", V2, (2, 3))]


GOOD_FINAL = _final({V1: ["AWSPREVIOUS"], V2: ["AWSCURRENT"]})


def test_checker_accepts_histories_a_correct_server_can_produce() -> None:
    ops = _base() + [
        _describe(2, {V2: ["AWSCURRENT"], V1: ["AWSPREVIOUS"]}, (4, 5)),
        _get(3, V2, (6, 7)),
        _get(4, V1, (6, 7), ["AWSPREVIOUS"], VersionId=V1),
    ]
    assert check(ops, GOOD_FINAL) == []
    # A read concurrent with a write may see either side of it.
    ops = [
        _write(0, "CreateSecret", V1, (0, 1)),
        _write(1, "PutSecretValue", V2, (2, 10)),
        _get(2, V1, (3, 4)),
        _get(3, V2, (5, 6)),
        _get(4, V2, (11, 12)),
    ]
    assert check(ops, GOOD_FINAL) == []
    # An indeterminate write (the connection dropped) may have happened, or not.
    lost = _write(2, "PutSecretValue", V3, (4, None), outcome="info")
    lost.error = "ReadTimeoutError"
    assert check(_base() + [lost], GOOD_FINAL) == []
    assert check(_base() + [lost], _final({V1: [], V2: ["AWSPREVIOUS"], V3: ["AWSCURRENT"]})) == []
    # A stage move refused because another writer moved the label first.
    refused = _op(
        2,
        "UpdateSecretVersionStage",
        {"VersionStage": "AWSCURRENT", "MoveToVersionId": V1, "RemoveFromVersionId": V1},
        (4, 5),
        "fail",
        error="InvalidParameterException",
    )
    assert check(_base() + [refused], GOOD_FINAL) == []


CASES: list[tuple[str, list[Op], dict[str, Any], str]] = [
    ("a stale read after an acknowledged write", [_get(2, V1, (4, 5))], GOOD_FINAL, "not linearizable"),
    (
        "AWSPREVIOUS not moved to the version AWSCURRENT left",
        [_describe(2, {V2: ["AWSCURRENT"]}, (4, 5))],
        GOOD_FINAL,
        "not linearizable",
    ),
    (
        "two versions hold AWSCURRENT",
        [_describe(2, {V2: ["AWSCURRENT"], V1: ["AWSCURRENT"]}, (4, 5))],
        GOOD_FINAL,
        "staging label AWSCURRENT is on 2 versions",
    ),
    (
        "a value nobody wrote",
        [
            _op(
                2,
                "GetSecretValue",
                {},
                (4, 5),
                response={"VersionId": V2, "SecretString": "forged", "VersionStages": ["AWSCURRENT"]},
            )
        ],
        GOOD_FINAL,
        "which was written as",
    ),
    ("a version nobody asked for", [], _final({V1: ["AWSPREVIOUS"], V2: ["AWSCURRENT"], V3: []}), "never asked for"),
    ("an acknowledged write lost", [], _final({V1: ["AWSCURRENT"]}), "acknowledged write lost"),
    (
        "an acknowledged write with another value",
        [],
        _final({V1: ["AWSPREVIOUS"], V2: ["AWSCURRENT"]}, {V2: "other"}),
        "reads 'other'",
    ),
    ("no AWSPREVIOUS after two current versions", [], _final({V1: [], V2: ["AWSCURRENT"]}), "no version holds"),
    (
        "a stage move acknowledged though RemoveFromVersionId did not hold the label",
        [
            _op(
                2,
                "UpdateSecretVersionStage",
                {"VersionStage": "AWSCURRENT", "MoveToVersionId": V1, "RemoveFromVersionId": V1},
                (4, 5),
                response={},
            )
        ],
        _final({V1: ["AWSCURRENT"], V2: ["AWSPREVIOUS"]}),
        "not linearizable",
    ),
    (
        "an acknowledged stage move undone",
        [
            _op(
                2,
                "UpdateSecretVersionStage",
                {"VersionStage": "AWSCURRENT", "MoveToVersionId": V1, "RemoveFromVersionId": V2},
                (4, 5),
                response={},
            )
        ],
        GOOD_FINAL,
        "not linearizable",
    ),
    (
        "an error a user should not see",
        [
            _op(
                2,
                "PutSecretValue",
                {"ClientRequestToken": V3, "SecretString": "x"},
                (4, 5),
                "fail",
                error="ResourceExistsException",
            )
        ],
        GOOD_FINAL,
        "unexpected error",
    ),
]


@pytest.mark.parametrize("wrong, extra, final, finding", CASES, ids=[c[0] for c in CASES])
def test_checker_names_each_violation(wrong: str, extra: list[Op], final: dict[str, Any], finding: str) -> None:
    violations = check(_base() + extra, final)
    assert any(finding in v for v in violations), violations


# ------------------------------------------------------------------------------- one server


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_concurrent_clients_on_one_server(engine: str, request: pytest.FixtureRequest) -> None:
    """8 threads of puts, updates, stage moves, rotations and reads on a few secrets: the history is
    linearizable, every acknowledged write reads back exactly, and the labels obey AWS's rules."""
    with storage(engine, request) as kwargs, ServerProcess(env=FAST, **kwargs) as srv:
        arn = rotation_function(srv, "history-rotation")
        history = History()
        workload = Workload(history, [srv], SECRETS + ["h/rotated"], rotated=["h/rotated"], rotation_arn=arn)
        workload.setup()
        # One rotation alone first, recorded like the rest: it works, and its function is warm.
        sm = client_for(srv)
        history.invoke(
            sm,
            "RotateSecret",
            process="setup",
            SecretId="h/rotated",
            RotationLambdaARN=arn,
            ClientRequestToken=str(uuid.uuid4()),
        )
        wait_for(lambda: "LastRotatedDate" in sm.describe_secret(SecretId="h/rotated"), what="the first rotation")
        workload.run(SECONDS)
        final = read_final_state(history, sm, workload.secrets)
    assert_correct(history, final)
    counts = tally(history)
    assert history.indeterminate() == []  # nothing timed out or failed on the server's side
    # The workload did what it is for: acknowledged writes, stage moves both made and refused,
    # and rotations amid the writes, at least one of which got as far as its function writing the value.
    assert counts.get(("PutSecretValue", "ok"), 0) >= 20, counts
    assert counts.get(("UpdateSecretVersionStage", "ok"), 0) >= 3, counts
    assert counts.get(("UpdateSecretVersionStage", "fail InvalidParameterException"), 0) >= 1, counts
    rotations = {
        op.args["ClientRequestToken"]
        for op in history.snapshot()
        if op.f == "RotateSecret" and op.outcome == "ok" and op.process.startswith("client-")
    }
    assert rotations & set(final["h/rotated"]["versions"]), counts


# ---------------------------------------------------------------------------------- kill -9


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_kill_9_mid_workload_loses_nothing_acknowledged(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    with storage(engine, request) as kwargs, ExitStack() as stack:
        srv = ServerProcess(data_dir=data_dir, **kwargs).start()
        stack.callback(srv.stop)
        history = History()
        workload = Workload(history, [srv], SECRETS)
        workload.setup()
        workload.start()
        stack.callback(workload.stop)
        started = history.now()
        wait_for(
            lambda: len(history.acknowledged_writes()) >= 40 and history.now() - started >= SECONDS / 2,
            timeout=30 + SECONDS,
            what="40 acknowledged writes",
        )
        srv.kill()
        killed_at = history.now()
        before_kill = history.acknowledged_writes(before=killed_at)
        if engine == "sqlite":
            sqlite_integrity(data_dir, read_only=True)  # the file as the crash left it
        again = ServerProcess(data_dir=data_dir, port=srv.port, **kwargs).start()  # same port: clients go on
        stack.callback(again.stop)
        restarted_at = history.now()
        wait_for(
            lambda: (
                sum(op.invoke > restarted_at for op in history.acknowledged_writes()) >= 40
                and history.now() - restarted_at >= SECONDS / 2
            ),
            timeout=30 + SECONDS,
            what="40 acknowledged writes after the restart",
        )
        workload.stop()
        final = read_final_state(history, client_for(again), SECRETS)
        again.stop()
    assert_correct(history, final)
    for op in before_kill:  # explicitly: what was acknowledged before SIGKILL is there, with its value
        assert final[op.secret]["versions"][op.args["ClientRequestToken"]]["value"] == op.args["SecretString"]
    counts = tally(history)
    assert sum(n for (f, outcome), n in counts.items() if outcome in ("info", "fail Unavailable")) >= 1, (
        "no request met the dead server: the kill was not mid-workload"
    )
    if engine == "sqlite":
        sqlite_integrity(data_dir)  # and after a clean stop of the restarted server


# ------------------------------------------------------------------------------ three nodes


def _worker_children(pid: int) -> list[int]:
    """PIDs of the rotation-function worker processes whose parent is ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        # Unsandboxed (built-in) workers run the module; sandboxed ones run bwrap with the bootstrap.
        if ppid == pid and (b"strongroom.rotation.worker" in cmdline or b"/var/rapid/bootstrap.py" in cmdline):
            out.append(int(entry.name))
    return out


def test_three_nodes_on_one_postgresql(pg_url: str) -> None:
    shared = {
        **FAST,
        "STRONGROOM_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "STRONGROOM_ROTATION_LEASE_SECONDS": "3",
    }
    with postgres_schema(pg_url.split("?", 1)[0]) as url, ExitStack() as stack:
        nodes = [stack.enter_context(ServerProcess(database_url=url, env=shared)) for _ in range(3)]
        clients = [client_for(n) for n in nodes]

        # 1. The workload, its requests spread round-robin over the three nodes.
        history = History()
        workload = Workload(history, nodes, SECRETS)
        workload.setup()
        workload.run(SECONDS)

        # 2. Read your writes across nodes: a change made on one node is seen at once on the others.
        name = "h/read-your-writes"
        token = str(uuid.uuid4())
        history.invoke(
            clients[0],
            "CreateSecret",
            process="ryw",
            Name=name,
            SecretString=f"{name}|{token}",
            ClientRequestToken=token,
        )
        versions = [token]
        for i in range(30):
            writer = i % 3
            token = str(uuid.uuid4())
            op = history.invoke(
                clients[writer],
                "PutSecretValue",
                process="ryw",
                node=writer,
                SecretId=name,
                SecretString=f"{name}|{token}",
                ClientRequestToken=token,
            )
            assert op.outcome == "ok", op.describe()
            for reader in {0, 1, 2} - {writer}:
                read = history.invoke(clients[reader], "GetSecretValue", process="ryw", node=reader, SecretId=name)
                assert (read.response or {}).get("VersionId") == token, read.describe()
                assert read.response["SecretString"] == f"{name}|{token}"  # type: ignore[index]
            if i % 3 == 2:  # and a stage move back to the version before, seen by the others at once
                moved = history.invoke(
                    clients[writer],
                    "UpdateSecretVersionStage",
                    process="ryw",
                    node=writer,
                    SecretId=name,
                    VersionStage="AWSCURRENT",
                    MoveToVersionId=versions[-1],
                    RemoveFromVersionId=token,
                )
                assert moved.outcome == "ok", moved.describe()
                for reader in {0, 1, 2} - {writer}:
                    seen = history.invoke(clients[reader], "DescribeSecret", process="ryw", node=reader, SecretId=name)
                    assert seen.response["VersionIdsToStages"] == {  # type: ignore[index]
                        versions[-1]: ["AWSCURRENT"],
                        token: ["AWSPREVIOUS"],
                    }, seen.describe()
            versions.append(token)
        final = read_final_state(history, clients[1], SECRETS + [name])
        assert_correct(history, final)
        assert history.indeterminate() == []
        assert {op.node for op in history.snapshot() if op.process.startswith("client-")} == {0, 1, 2}

        # 3. A rotation (a slow setSecret) on the node it started on, that node killed with SIGKILL
        # mid-rotation (its function worker with it, as when a machine dies): another node takes the
        # job over when the lease runs out and finishes it, exactly once.
        fn = rotation_function(nodes[0], "slow", env={"SLEEP_STEP": "setSecret", "SLEEP_SECONDS": "2"})
        first = clients[0].create_secret(Name="h/rotation", SecretString="v")["VersionId"]
        token = clients[0].rotate_secret(SecretId="h/rotation", RotationLambdaARN=fn)["VersionId"]

        def step_records() -> list[tuple[Any, ...]]:
            with psycopg.connect(url) as conn:
                return conn.execute(
                    "SELECT s.attempt, s.step, s.outcome FROM rotation_steps s JOIN rotations r "
                    "ON r.id = s.rotation_id WHERE r.token = %s ORDER BY s.id",
                    (token,),
                ).fetchall()

        wait_for(step_records, what="createSecret")  # createSecret is done: now setSecret sleeps, on one node
        pending = clients[1].get_secret_value(SecretId="h/rotation", VersionStage="AWSPENDING")
        assert (pending["VersionId"], pending["SecretString"]) == (token, rotation_value(token))
        [running] = [n for n in range(3) if _worker_children(nodes[n].proc.pid)]  # type: ignore[union-attr]
        workers = _worker_children(nodes[running].proc.pid)  # type: ignore[union-attr]
        nodes[running].kill()
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        survivor = clients[(running + 1) % 3]
        stages = survivor.describe_secret(SecretId="h/rotation")["VersionIdsToStages"]
        assert stages == {first: ["AWSCURRENT"], token: ["AWSPENDING"]}  # the kill was mid-rotation
        wait_for(
            lambda: "LastRotatedDate" in survivor.describe_secret(SecretId="h/rotation"),
            timeout=30,
            what="the rotation finished by another node",
        )
        listed = survivor.list_secret_version_ids(SecretId="h/rotation", IncludeDeprecated=True)["Versions"]
        assert {v["VersionId"]: v["VersionStages"] for v in listed} == {token: ["AWSCURRENT"], first: ["AWSPREVIOUS"]}
        assert survivor.get_secret_value(SecretId="h/rotation")["SecretString"] == rotation_value(token)

        with psycopg.connect(url) as conn:
            jobs = conn.execute("SELECT r.state FROM rotations r WHERE r.token = %s", (token,)).fetchall()
        assert jobs == [("succeeded",)]
        # Attempt 1 (the killed node) got as far as createSecret; attempt 2 (another node) ran all four.
        assert step_records() == [
            (1, "createSecret", "succeeded"),
            (2, "createSecret", "succeeded"),
            (2, "setSecret", "succeeded"),
            (2, "testSecret", "succeeded"),
            (2, "finishSecret", "succeeded"),
        ]
