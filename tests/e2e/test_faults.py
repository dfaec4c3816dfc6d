"""Faults: PostgreSQL connections cut and PostgreSQL restarting under load, a full disk under
SQLite, and rotation functions that hang, crash or flood their output.

* PostgreSQL (through :class:`strongroom.testing.faults.TCPProxy`): every connection reset, the
  server's backends terminated, a restart (reset, refused for 2 s, back), and single connections
  reset at a COMMIT. Clients see 200 or a retryable ``InternalServiceError`` with the request id,
  the server reconnects by itself, nothing acknowledged is lost, a token retried makes one version.
* A full disk under SQLite, as a small tmpfs (ENOSPC; needs root to mount, else skipped) and as
  ``RLIMIT_FSIZE`` (EFBIG): calls are refused cleanly, nothing is corrupt (SQLite's integrity check,
  whole lines in the JSON-lines audit trail), writes work again once there is space.
* Rotation functions that hang past their Timeout, exit, are killed, or print megabytes: rotations
  fail (and are retried) or succeed as documented, AWSCURRENT stays, reads go on, memory stays flat.

Every check is what a user sees: the AWS error code and HTTP status through boto3, the values read
back after the fault, the database file's own integrity check, the server still answering.
"""

from __future__ import annotations

import functools
import json
import resource
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from strongroom.testing import ServerProcess, postgres_schema, wait_for
from strongroom.testing.faults import TCPProxy, via_proxy


def client_for(server: ServerProcess, service: str = "secretsmanager", **config: Any) -> Any:
    """A boto3 client that never retries (``total_max_attempts=1``): every fault reaches the test."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30, **config)
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        config=config,
    )


# ------------------------------------------------------------------ PostgreSQL: cuts and restarts


@dataclass
class Failure:
    at: float
    operation: str
    code: str
    status: int
    message: str
    request_id: str


@dataclass
class Writer:
    """One client thread: PutSecretValue with a fresh ClientRequestToken, then GetSecretValue, in
    a loop, on a secret of its own. A put that fails is retried with the same token and value until
    it is acknowledged, as an SDK's retry would."""

    server: ServerProcess
    secret: str
    values: dict[str, str] = field(default_factory=dict)  # every token sent -> its value
    acknowledged: list[str] = field(default_factory=list)  # tokens whose put answered 200, in order
    successes: list[float] = field(default_factory=list)  # monotonic times of answered calls
    failures: list[Failure] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)  # tokens sent more than once
    wrong_reads: list[str] = field(default_factory=list)
    surprises: list[str] = field(default_factory=list)  # anything that is not an AWS error answer
    slowest: float = 0.0  # the longest call, answered or refused

    def run(self, stop: threading.Event) -> None:
        sm = client_for(self.server)
        n = 0
        while not stop.is_set():
            n += 1
            token = str(uuid.uuid4())
            value = f"{self.secret} #{n} {token}"
            self.values[token] = value
            for attempt in range(200):  # retried with the same token until acknowledged
                if attempt == 1:
                    self.retried.append(token)
                if self._call(
                    "PutSecretValue",
                    functools.partial(
                        sm.put_secret_value, SecretId=self.secret, ClientRequestToken=token, SecretString=value
                    ),
                ):
                    self.acknowledged.append(token)
                    break
                time.sleep(0.02)
            else:
                return
            got = self._call("GetSecretValue", lambda: sm.get_secret_value(SecretId=self.secret))
            if got and self.values.get(got["VersionId"]) != got["SecretString"]:
                self.wrong_reads.append(f"{got['VersionId']}: {got['SecretString']!r}")
            if got and got["VersionId"] != token:
                # Each writer owns its secret: the value it just wrote is the current one.
                self.wrong_reads.append(f"AWSCURRENT is {got['VersionId']}, not the acknowledged {token}")

    def _call(self, operation: str, fn: Callable[[], Any]) -> Any:
        started = time.monotonic()
        try:
            answer = fn()
        except ClientError as exc:
            self.slowest = max(self.slowest, time.monotonic() - started)
            meta = exc.response.get("ResponseMetadata", {})
            self.failures.append(
                Failure(
                    time.monotonic(),
                    operation,
                    exc.response["Error"].get("Code", ""),
                    meta.get("HTTPStatusCode", 0),
                    exc.response["Error"].get("Message", ""),
                    meta.get("RequestId", ""),
                )
            )
            return None
        except Exception as exc:
            self.surprises.append(f"{operation}: {type(exc).__name__}: {exc}")
            time.sleep(0.05)
            return None
        self.successes.append(time.monotonic())
        self.slowest = max(self.slowest, self.successes[-1] - started)
        return answer


def app_backends(admin: psycopg.Connection[Any], application_name: str) -> list[int]:
    rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,)).fetchall()
    return [r[0] for r in rows]


@pytest.mark.postgres
def test_postgresql_cut_terminated_and_restarted_under_load(pg_url: str) -> None:
    base = pg_url.split("?", 1)[0]
    application_name = f"strongroom-faults-{uuid.uuid4().hex[:8]}"  # this run's backends, and only them
    with (
        postgres_schema(base) as direct_url,
        TCPProxy("127.0.0.1", 5432) as proxy,
        psycopg.connect(base, autocommit=True) as admin,
    ):
        url = via_proxy(direct_url, proxy, application_name=application_name)
        with ServerProcess(database_url=url) as srv:
            pid = srv.proc.pid  # type: ignore[union-attr]
            sm = client_for(srv)
            writers = [Writer(srv, f"faults/pg/{i}") for i in range(4)]
            initial = {w.secret: sm.create_secret(Name=w.secret, SecretString="initial")["VersionId"] for w in writers}
            stop = threading.Event()
            threads = [threading.Thread(target=w.run, args=(stop,), daemon=True) for w in writers]
            for t in threads:
                t.start()
            faults: list[tuple[str, float]] = []
            try:
                time.sleep(1.0)
                assert proxy.connections > 0

                faults.append(("cut", time.monotonic()))  # (a) every connection reset
                assert proxy.cut() > 0
                time.sleep(1.5)

                backends = app_backends(admin, application_name)  # pg_terminate_backend
                assert backends
                faults.append(("terminate", time.monotonic()))
                admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (backends,))
                time.sleep(1.5)

                began = time.monotonic()  # (b) a restart: reset,
                proxy.outage(2.0)  # refused for 2 s, back
                faults.append(("restart", time.monotonic()))
                outage = (began, time.monotonic())
                time.sleep(2.5)
            finally:
                stop.set()
                for t in threads:
                    t.join(timeout=30)
            assert srv.proc is not None and srv.proc.pid == pid and srv.proc.poll() is None  # never restarted
            assert proxy.resets > 0 and proxy.accepted > proxy.resets  # the faults hit, the server reconnected

            report = _load_report(writers, faults)
            # No dropped HTTP connections, no timeouts: every failure is an AWS error answer.
            assert not [s for w in writers for s in w.surprises], report
            failures = [f for w in writers for f in w.failures]
            # Failures are retryable server errors in AWS's shape (5xx, a code, the request id).
            for f in failures:
                assert f.status >= 500 and f.code in ("InternalServiceError", "ServiceUnavailable"), report
                assert f.request_id and f.request_id in f.message, report
            # Outside the outage, the server reconnects inside the request. What was in flight at a
            # cut may fail (a write whose COMMIT was cut, an audit record: writes are then refused
            # until the trail writes again), and only then.
            cuts = [at for _, at in faults[:2]]
            assert [
                f
                for f in failures
                if not outage[0] <= f.at <= outage[1] + 1.0 and not any(at <= f.at <= at + 1.0 for at in cuts)
            ] == [], report
            # Nothing hangs: a call is answered or refused in a few seconds, also while PostgreSQL is away.
            assert max(w.slowest for w in writers) < 5.0, report
            # After each fault, every client is answered again within a few seconds.
            for name, ended in faults:
                for w in writers:
                    assert any(ended < t < ended + 3.0 for t in w.successes), f"{name}: {report}"
            assert not [r for w in writers for r in w.wrong_reads], report

            # Nothing half-applied: every acknowledged put is there with its value, the last one is
            # current, and a token retried after an error made exactly one version.
            for w in writers:
                assert w.acknowledged
                versions = _versions(sm, w.secret)
                assert set(w.acknowledged) <= set(versions)
                assert set(versions) <= set(w.values) | {initial[w.secret]}
                for token in w.acknowledged[-10:] + w.retried:
                    got = sm.get_secret_value(SecretId=w.secret, VersionId=token)
                    assert got["SecretString"] == w.values[token]
                assert versions[w.acknowledged[-1]] == ["AWSCURRENT"]
            print(report)

            # The worst moments: a connection reset at a COMMIT, which PostgreSQL either carried out
            # (its answer lost) or never received, in the transaction of a PutSecretValue (found by
            # its token) and in that of its audit record (found by the client's user agent). The
            # call answers 200 or a 5xx; retried with its token it answers with that one version;
            # the JSON-lines trail holds every record once.
            secret = writers[0].secret
            outcomes = []
            for target in ("PutSecretValue", "its audit record"):
                for delivered in (True, False):
                    mark = uuid.uuid4().hex
                    token, value = str(uuid.uuid4()), f"{target} cut at COMMIT, delivered: {delivered}"
                    client = client_for(srv, user_agent_extra=f"fault/{mark}")
                    before = set(_versions(sm, secret))
                    fired = proxy.cut_at_commit(
                        (token if target == "PutSecretValue" else mark).encode(), delivered=delivered
                    )
                    try:
                        client.put_secret_value(SecretId=secret, ClientRequestToken=token, SecretString=value)
                        outcomes.append(f"{value}: 200")
                    except ClientError as exc:
                        assert (exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]) == (
                            500,
                            "InternalServiceError",
                        ), value
                        outcomes.append(f"{value}: 500, then 200 when retried")
                    assert fired.wait(5), f"no COMMIT cut: {value}"
                    assert wait_for(functools.partial(_put, sm, secret, token, value), timeout=5)["VersionId"] == token
                    assert set(_versions(sm, secret)) - before == {token}, value
                    assert sm.get_secret_value(SecretId=secret)["SecretString"] == value
            print("\n".join(outcomes))
            lines = _trail_lines(srv.data_dir)
            torn = [line[:100] for line in lines if not _is_json(line)]
            assert not torn, f"torn records in the JSON-lines audit trail: {torn}"
            twice = [i for i, n in Counter(json.loads(line)["eventID"] for line in lines).items() if n > 1]
            assert not twice, f"{len(twice)} audit records written twice to the JSON-lines trail"


def _put(sm: Any, secret: str, token: str, value: str) -> dict[str, Any] | None:
    try:
        return sm.put_secret_value(
            SecretId=secret,
            ClientRequestToken=token,  # type: ignore[no-any-return]
            SecretString=value,
        )
    except ClientError:
        return None


def _versions(sm: Any, secret: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    kwargs: dict[str, Any] = {"SecretId": secret, "IncludeDeprecated": True, "MaxResults": 100}
    while True:
        page = sm.list_secret_version_ids(**kwargs)
        out.update({v["VersionId"]: v.get("VersionStages", []) for v in page["Versions"]})
        if "NextToken" not in page:
            return out
        kwargs["NextToken"] = page["NextToken"]


def _load_report(writers: list[Writer], faults: list[tuple[str, float]]) -> str:
    """What each client saw: counts, and its errors (those during the outage only summed up)."""
    outage_end = faults[-1][1]
    lines = [f"faults at {[(n, round(t, 2)) for n, t in faults]} (the restart's is when it ended)"]
    for w in writers:
        lines.append(
            f"{w.secret}: {len(w.acknowledged)} puts acknowledged, {len(w.successes)} answers, "
            f"{len(w.failures)} errors, slowest call {w.slowest:.2f}s, surprises {w.surprises[:3]}"
        )
        for f in w.failures:
            if not outage_end - 2.5 < f.at <= outage_end + 1:
                lines.append(f"   {f.at:.2f} {f.operation} {f.status} {f.code}: {f.message[:120]}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- SQLite: a full disk

BALLAST = 6 << 20  # of the tmpfs's 8 MiB: the server fills the other 2, then the ballast is deleted


@dataclass
class Disk:
    """A data directory that runs out of space, and a way to give the space back."""

    kind: str
    data_dir: Path
    preexec_fn: Callable[[], None] | None = None
    free: Callable[[int], None] = lambda pid: None


@contextmanager
def small_disk(kind: str, tmp_path: Path) -> Iterator[Disk]:
    data_dir = tmp_path / "data"  # the server's log goes next to it, outside the small disk
    data_dir.mkdir(mode=0o700)
    if kind == "rlimit":
        # No file the server writes may grow past 1 MiB: writes past it fail with EFBIG (CPython
        # ignores SIGXFSZ). Space "returns" when the limit is lifted on the running process.
        limit = 1 << 20

        def limited() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

        def lift(pid: int) -> None:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

        yield Disk(kind, data_dir, limited, lift)
        return
    # A real file system (tmpfs, 8 MiB): writes fail with ENOSPC. A ballast file takes most of it;
    # deleting the ballast is the operator freeing space.
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(data_dir)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        ballast = data_dir / "ballast"
        ballast.write_bytes(b"\0" * BALLAST)
        yield Disk(kind, data_dir, None, lambda pid: ballast.unlink())
    finally:
        if subprocess.run(["umount", str(data_dir)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(data_dir)], capture_output=True)


def _audited_puts(trail: Any) -> dict[str, list[str]]:
    """Each ClientRequestToken of a PutSecretValue in the audit trail -> the error codes of its records
    ("" for a success)."""
    out: dict[str, list[str]] = {}
    kwargs: dict[str, Any] = {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "PutSecretValue"}]}
    while True:
        page = trail.lookup_events(**kwargs)
        for event in page["Events"]:
            record = json.loads(event["CloudTrailEvent"])
            token = (record.get("requestParameters") or {}).get("clientRequestToken")
            if token:
                out.setdefault(token, []).append(record.get("errorCode", ""))
        if "NextToken" not in page:
            return out
        kwargs["NextToken"] = page["NextToken"]


def _trail_lines(data_dir: Path) -> list[bytes]:
    lines = []
    for path in sorted((data_dir / "audit").rglob("*.jsonl")):
        content = path.read_bytes()
        assert not content or content.endswith(b"\n"), f"{path.name} ends in a torn record"
        lines += content.splitlines()
    return lines


@pytest.mark.parametrize("kind", ["tmpfs", "rlimit"])
def test_sqlite_disk_full_refuses_writes_cleanly_and_recovers(kind: str, tmp_path: Path) -> None:
    with small_disk(kind, tmp_path) as disk:
        srv = ServerProcess(data_dir=disk.data_dir, preexec_fn=disk.preexec_fn).start()
        try:
            sm = client_for(srv)
            created = sm.create_secret(Name="full", SecretString="initial")
            values: dict[str, str] = {created["VersionId"]: "initial"}
            acknowledged: list[str] = []
            refused: list[tuple[str, int, str, str]] = []  # token, HTTP status, code, message
            slowest = 0.0
            began = time.monotonic()
            # Write until the disk is full, then a little more: every further call must be refused
            # cleanly, reads included (no audit record, no answer), none hanging.
            while len(refused) < 12 and time.monotonic() - began < 30:
                token = str(uuid.uuid4())
                values[token] = f"{len(values)}:" + "v" * 400
                started = time.monotonic()
                try:
                    sm.put_secret_value(SecretId="full", ClientRequestToken=token, SecretString=values[token])
                    acknowledged.append(token)
                except ClientError as exc:
                    meta = exc.response["ResponseMetadata"]
                    refused.append(
                        (token, meta["HTTPStatusCode"], exc.response["Error"]["Code"], exc.response["Error"]["Message"])
                    )
                    assert meta["RequestId"] in exc.response["Error"]["Message"]
                    try:
                        got = sm.get_secret_value(SecretId="full")
                        assert values.get(got["VersionId"]) == got["SecretString"]
                    except ClientError as read_exc:
                        assert read_exc.response["Error"]["Code"] == "InternalServiceError"
                slowest = max(slowest, time.monotonic() - started)
            assert len(refused) == 12 and acknowledged, f"the disk never filled ({len(acknowledged)} writes)"
            assert {(status, code) for _, status, code, _ in refused} == {(500, "InternalServiceError")}, refused
            assert slowest < 5, f"a call took {slowest:.1f}s while the disk was full"
            assert srv.proc is not None and srv.proc.poll() is None  # not crashed

            disk.free(srv.proc.pid)  # space returns
            freed = time.monotonic()
            wait_for(lambda: _put_ok(sm, values), timeout=5, what="a write after space returned")
            print(
                f"{kind}: {len(acknowledged)} writes, then refused; writable again "
                f"{time.monotonic() - freed:.2f}s after space returned"
            )

            # A refused put may have been applied (its JSON line was what failed), but never without
            # its record: that commits in the write's own transaction. Retried with its token, as an
            # SDK does, it answers with that same version, never a second one.
            applied_before_retry = [t for t, *_ in refused if _exists(sm, t)]
            early = _audited_puts(client_for(srv, "cloudtrail"))
            for token in applied_before_retry:
                assert "" in early.get(token, []), f"{token} was applied without its audit record"
            for token, *_ in refused:
                answer = sm.put_secret_value(SecretId="full", ClientRequestToken=token, SecretString=values[token])
                assert answer["VersionId"] == token
            assert set(_versions(sm, "full")) <= set(values)
            for token in acknowledged + [t for t, *_ in refused]:
                assert sm.get_secret_value(SecretId="full", VersionId=token)["SecretString"] == values[token]
            # Every version that exists has a successful PutSecretValue in the trail.
            trail = _audited_puts(client_for(srv, "cloudtrail"))
            for token in acknowledged + [t for t, *_ in refused]:
                assert "" in trail.get(token, []), f"no successful audit record for {token}"
            print(f"{kind}: refused but applied before their retry: {len(applied_before_retry)}")
        finally:
            srv.stop()
        # Nothing corrupt: SQLite's own check, and every line of the JSON-lines trail is whole.
        conn = sqlite3.connect(f"file:{disk.data_dir / 'strongroom.db'}?mode=ro", uri=True)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            conn.close()
        torn = [line[:100] for line in _trail_lines(disk.data_dir) if not _is_json(line)]
        assert not torn, f"torn records in the JSON-lines audit trail: {torn}"
        # Restarted without any limit: every acknowledged value is there.
        with ServerProcess(data_dir=disk.data_dir) as again:
            sm = client_for(again)
            for token in _versions(sm, "full"):
                assert token in values or token == created["VersionId"]
            for token in acknowledged + [t for t, *_ in refused]:
                assert sm.get_secret_value(SecretId="full", VersionId=token)["SecretString"] == values[token]


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
        return True
    except ValueError:
        return False


def _put_ok(sm: Any, values: dict[str, str]) -> bool:
    token = str(uuid.uuid4())
    values[token] = "written after the disk had room again"
    try:
        sm.put_secret_value(SecretId="full", ClientRequestToken=token, SecretString=values[token])
        return True
    except ClientError:
        return False


def _exists(sm: Any, token: str) -> bool:
    try:
        sm.get_secret_value(SecretId="full", VersionId=token)
        return True
    except ClientError:
        return False


# ------------------------------------------------- rotation functions that hang, crash or flood

ROTATION_FAST = {
    "STRONGROOM_ROTATION_RETRY_BASE_SECONDS": "0.3",
    "STRONGROOM_ROTATION_MAX_ATTEMPTS": "2",
    "STRONGROOM_ROTATION_POLL_SECONDS": "0.2",
}

# AWS's generic template (strongroom.testing.functions) behind a wrapper that misbehaves at one step.
FAULTY = """
import os, signal, subprocess, time
import generic

def lambda_handler(event, context):
    if event["Step"] == os.environ["FAULT_STEP"]:
        fault = os.environ["FAULT"]
        if fault == "hang":                 # far beyond the function's Timeout
            time.sleep(120)
        elif fault == "exit":               # the interpreter ends under the runtime
            os._exit(3)
        elif fault == "sigkill":            # as the kernel's OOM killer would
            os.kill(os.getpid(), signal.SIGKILL)
        elif fault == "print_lines":        # ~10 MB in 200,000 prints
            for i in range(200000):
                print("flood", i, "x" * 40)
        elif fault == "print_once":         # 30 MB in one write
            print("y" * 30000000)
        elif fault == "subprocess_output":  # a child process writing to the inherited stdout
            subprocess.run(["seq", "1", "300000"], check=True)
    return generic.lambda_handler(event, context)
"""

# fault -> (Timeout, does the rotation succeed?, the error text each failed attempt records)
FAULTS = {
    "hang": (1, False, "Task timed out after 1.00 seconds"),
    "exit": (10, False, "Runtime exited with error: exit status 3"),
    "sigkill": (10, False, "Runtime exited with error: signal: killed"),
    # Output is not an error: a function that prints megabytes rotates, its logs capped.
    "print_lines": (10, True, ""),
    "print_once": (10, True, ""),
    "subprocess_output": (10, True, ""),
}


def faulty_zip() -> bytes:
    import io
    import zipfile

    from strongroom.testing.functions import GENERIC_ROTATION

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("lambda_function.py", FAULTY)
        z.writestr("generic.py", GENERIC_ROTATION)
    return buf.getvalue()


def memory_kb(pid: int) -> dict[str, int]:
    """The server's resident memory now and at its peak (VmRSS, VmHWM), in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM")}


def _states(history: dict[str, Any]) -> str:
    return json.dumps({f: {k: h[k] for k in ("State", "Attempts", "LastError")} for f, h in history.items()}, indent=1)


def test_rotation_functions_that_hang_crash_or_flood(tmp_path: Path) -> None:
    from strongroom.rotation.engine import history_of
    from strongroom.store import open_database

    data_dir = tmp_path / "data"
    with ServerProcess(data_dir=data_dir, env=ROTATION_FAST) as srv:
        sm, lam, iam = client_for(srv), client_for(srv, "lambda"), client_for(srv, "iam")
        role = iam.create_role(
            RoleName="rotation",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        iam.put_role_policy(
            RoleName="rotation",
            PolicyName="rotate",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Resource": "*",
                            "Action": [
                                "secretsmanager:DescribeSecret",
                                "secretsmanager:GetSecretValue",
                                "secretsmanager:PutSecretValue",
                                "secretsmanager:UpdateSecretVersionStage",
                                "secretsmanager:GetRandomPassword",
                            ],
                        }
                    ],
                }
            ),
        )
        code = faulty_zip()
        first: dict[str, str] = {}
        for fault, (timeout, _, _) in FAULTS.items():
            lam.create_function(
                FunctionName=f"faulty-{fault}",
                Runtime="python3.11",
                Role=role,
                Timeout=timeout,
                Handler="lambda_function.lambda_handler",
                Code={"ZipFile": code},
                Environment={"Variables": {"FAULT": fault, "FAULT_STEP": "setSecret"}},
            )
            lam.add_permission(
                FunctionName=f"faulty-{fault}",
                StatementId="sm",
                Action="lambda:InvokeFunction",
                Principal="secretsmanager.amazonaws.com",
            )
            first[fault] = sm.create_secret(Name=f"rot/{fault}", SecretString=f"first {fault}")["VersionId"]
        sm.create_secret(Name="bystander", SecretString="still here")

        # The server keeps answering while functions misbehave: a reader in the background.
        pid = srv.proc.pid  # type: ignore[union-attr]
        before = memory_kb(pid)
        stop = threading.Event()
        reads: list[float] = []
        read_errors: list[str] = []

        def reader() -> None:
            client = client_for(srv)
            while not stop.is_set():
                for name in ["bystander", *(f"rot/{f}" for f in FAULTS)]:
                    started = time.monotonic()
                    try:
                        client.get_secret_value(SecretId=name)
                        reads.append(time.monotonic() - started)
                    except Exception as exc:
                        read_errors.append(f"{name}: {exc}")
                time.sleep(0.05)

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        tokens = {}
        try:
            for fault in FAULTS:
                tokens[fault] = sm.rotate_secret(
                    SecretId=f"rot/{fault}",
                    RotationLambdaARN=f"arn:aws:lambda:us-east-1:123456789012:function:faulty-{fault}",
                )["VersionId"]
            db = open_database(str(data_dir / "strongroom.db"))  # what `strongroom rotation history` reads
            try:
                deadline = time.monotonic() + 60
                while True:
                    history = {
                        fault: db.read_sync(
                            lambda tx, fault=fault: history_of(tx, "123456789012", "us-east-1", f"rot/{fault}")
                        )[0]
                        for fault in FAULTS
                    }
                    if all(h["State"] in ("succeeded", "failed") for h in history.values()):
                        break
                    assert time.monotonic() < deadline, f"rotations not settled in 60 s: {_states(history)}"
                    time.sleep(0.2)
            finally:
                db.close()
        finally:
            stop.set()
            thread.join(timeout=30)
        after = memory_kb(pid)

        report = _states(history)
        for fault, (_, succeeds, error) in FAULTS.items():
            rotation, stages = history[fault], sm.describe_secret(SecretId=f"rot/{fault}")["VersionIdsToStages"]
            if succeeds:
                assert rotation["State"] == "succeeded" and rotation["Attempts"] == 1, report
                assert stages == {tokens[fault]: ["AWSCURRENT"], first[fault]: ["AWSPREVIOUS"]}, report
                continue
            # Failed twice (the server's max attempts here), each attempt stopping at setSecret with the
            # runtime's own words; AWSCURRENT never moved; AWSPENDING stays on the partial version.
            assert rotation["State"] == "failed" and rotation["Attempts"] == 2, report
            failed = [s for s in rotation["Steps"] if s["Outcome"] == "failed"]
            assert [(s["Attempt"], s["Step"]) for s in failed] == [(1, "setSecret"), (2, "setSecret")], report
            assert all(s["Error"].endswith(error) for s in failed), report
            assert stages == {first[fault]: ["AWSCURRENT"], tokens[fault]: ["AWSPENDING"]}, report
            assert sm.get_secret_value(SecretId=f"rot/{fault}")["SecretString"] == f"first {fault}"

        assert not read_errors, read_errors[:5]
        assert reads and max(reads) < 2.0, f"slowest read while functions misbehaved: {max(reads):.2f}s"
        grown = (after["VmHWM"] - before["VmHWM"]) // 1024
        print(
            f"rotation faults: {len(reads)} reads, slowest {max(reads):.3f}s; server peak memory "
            f"{before['VmHWM'] // 1024} -> {after['VmHWM'] // 1024} MiB\n{report}"
        )
        assert grown < 40, f"the server's peak memory grew by {grown} MiB while functions flooded their output"

    # What a flooding function printed is kept, capped, with the runtime's own lines after it.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "strongroom.cli.main",
            "logs",
            "faulty-print_lines",
            "--data-dir",
            str(data_dir),
            "--limit",
            "4",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "flood " in out
    assert "truncated" in out and "REPORT RequestId" in out
    assert len(out) < 4 * 70_000
