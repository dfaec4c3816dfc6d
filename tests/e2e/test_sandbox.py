"""Hostile functions: uploaded code tries to reach what it must not, and every attempt fails.

Each attack is one branch of one uploaded function (``HOSTILE``), invoked through the Lambda API
of a real server with a data directory; the test asserts what the function itself reports back.
Also: a server without a usable sandbox refuses uploaded code (built-in rotators still run),
``--unsafe-functions``, idle workers reaped, deleted functions' workers and credentials ended,
and a hanging function cannot starve IAM calls.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from strongroom.rotation import sandbox as sandbox_module
from strongroom.testing import ServerProcess, wait_for
from strongroom.testing.functions import execution_role, zipped

pytestmark = pytest.mark.skipif(
    not shutil.which("bwrap"), reason="bubblewrap is installed by `make setup` (scripts/ensure-system-packages)"
)

HOSTILE = r"""
import os, sys, time, subprocess, resource

def attempt(fn):
    try:
        return {"ok": True, "value": fn()}
    except BaseException as exc:
        return {"ok": False, "error": type(exc).__name__ + ": " + str(exc)}

def read(path):
    with open(path, "rb") as f:
        return f.read(64).hex()

def write(path):
    with open(path, "w") as f:
        f.write("x")
    return path

def fork_bomb(limit):
    children, error = [], None
    try:
        for _ in range(limit):
            pid = os.fork()
            if pid == 0:
                time.sleep(2)
                os._exit(0)
            children.append(pid)
    except OSError as exc:
        error = type(exc).__name__ + ": " + str(exc)
    for pid in children:
        os.waitpid(pid, 0)
    return {"forked": len(children), "error": error}

def leave_behind(marker):
    # Escape the worker's process group and parentage (double fork + setsid), then sleep.
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(120)", marker])
        os._exit(0)
    os.waitpid(pid, 0)
    return "left"

def scan(roots, needle):
    found = []
    for root in roots:
        for top, dirs, files in os.walk(root):
            for name in files:
                try:
                    with open(os.path.join(top, name), "rb") as f:
                        if needle.encode() in f.read(1 << 20):
                            found.append(os.path.join(top, name))
                except OSError:
                    pass
    return found

def handler(event, context):
    a = event["attack"]
    if a == "read":
        return attempt(lambda: read(event["path"]))
    if a == "list":
        return attempt(lambda: os.listdir(event["path"]))
    if a == "exists":
        return os.path.exists(event["path"])
    if a == "write":
        return attempt(lambda: write(event["path"]))
    if a == "identity":
        return {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "pid": os.getpid(),
                "id": subprocess.run(["id"], capture_output=True, text=True).stdout.strip(),
                "setuid": attempt(lambda: os.setuid(0)), "cwd": os.getcwd(), "file": __file__,
                "caps": [line for line in open("/proc/self/status").read().splitlines()
                         if line.startswith(("CapEff", "NoNewPrivs"))]}
    if a == "environment":
        return dict(os.environ)
    if a == "memory":
        return attempt(lambda: len(bytearray(event["bytes"])))
    if a == "fork":
        return fork_bomb(event["limit"])
    if a == "files":
        opened, error = [], None
        try:
            for _ in range(5000):
                opened.append(open("/dev/null"))
        except OSError as exc:
            error = type(exc).__name__
        for f in opened:
            f.close()
        return {"opened": len(opened), "error": error}
    if a == "leave":
        return leave_behind(event["marker"])
    if a == "scan":
        return scan(["/tmp", "/var", "/etc", "/dev/shm"], event["needle"])
    if a == "sleep":
        time.sleep(event["seconds"])
        return "slept"
    if a == "credentials":
        return {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
    if a == "databases":
        import pymysql, psycopg
        with pymysql.connect(host="127.0.0.1", port=3306, user="root") as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            mysql = cur.fetchone()[0]
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as conn:
            postgres = conn.execute("SELECT 1").fetchone()[0]
        return {"mysql": mysql, "postgres": postgres, "pymysql": pymysql.__file__}
    if a == "raise":
        def inner():
            raise ValueError("hostile failure")
        inner()
"""

LAMBDA_VARIABLES = {
    # Lambda's documented ("defined runtime environment") variables this runtime sets.
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_EXECUTION_ENV",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "_HANDLER",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "TZ",
    "LANG",
    "PATH",
    "HOME",
    "PYTHONUNBUFFERED",
    "PWD",
    # strongroom's: where this server is (the function calls it back), and the function's ARN.
    "SECRETS_MANAGER_ENDPOINT",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_LAMBDA",
    "STRONGROOM_FUNCTION_ARN",
    # The function's own.
    "MINE",
}


UNPRIVILEGED_USER = "strongroom-test"


def _unprivileged_server(data_root: Path) -> ServerProcess:
    """A server running as an ordinary user (``strongroom-test``, created as a system user when the
    tests run as root), with a data directory of its own, as an operator would run it."""
    if os.geteuid() != 0:
        pytest.skip("already unprivileged: the server-user variant covers it")
    if subprocess.run(["id", UNPRIVILEGED_USER], capture_output=True).returncode != 0:
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", UNPRIVILEGED_USER],
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            pytest.skip(f"cannot create {UNPRIVILEGED_USER}: {made.stderr.strip()}")
    entry = pwd.getpwnam(UNPRIVILEGED_USER)
    # The interpreter must be one that user can run: a virtualenv under /root (mode 0700) is not.
    python = sys.executable
    packages = str(Path(importlib.util.find_spec("boto3").origin).parent.parent)  # type: ignore[union-attr,arg-type]
    source = str(Path(importlib.util.find_spec("strongroom").origin).parent.parent)  # type: ignore[union-attr,arg-type]
    env = {"HOME": "/tmp", "PYTHONPATH": f"{packages}:{source}", "PATH": "/usr/local/bin:/usr/bin:/bin"}

    def runs(candidate: str) -> bool:
        return (
            subprocess.run(
                [
                    "setpriv",
                    f"--reuid={entry.pw_uid}",
                    f"--regid={entry.pw_gid}",
                    "--clear-groups",
                    "env",
                    "-i",
                    *[f"{k}={v}" for k, v in env.items()],
                    candidate,
                    "-c",
                    "import strongroom.cli.main, boto3",
                ],
                capture_output=True,
            ).returncode
            == 0
        )

    if not runs(python):
        python = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
        if not os.path.exists(python) or not runs(python):
            pytest.skip(f"no Python interpreter with strongroom's dependencies that {UNPRIVILEGED_USER} may run")
    data_root.chmod(0o755)
    os.chown(data_root, entry.pw_uid, entry.pw_gid)

    def drop() -> None:
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    server = ServerProcess(data_dir=data_root / "data", preexec_fn=drop, env=env)
    server.python = python  # type: ignore[attr-defined]
    return server


@pytest.fixture(scope="module", params=["server-user", "unprivileged"])
def hostile(request, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The hostile function on a server running as the tests' user (root on CI), then on one
    running as an ordinary user."""
    if request.param == "unprivileged":
        data_root = Path(tempfile.mkdtemp(prefix="strongroom-unprivileged-"))
        server = _unprivileged_server(data_root)
    else:
        server = ServerProcess(data_dir=tmp_path_factory.mktemp("sandbox") / "data")
    python = getattr(server, "python", sys.executable)
    real = sys.executable
    sys.executable = python  # ServerProcess starts `sys.executable -m strongroom.cli.main serve`
    try:
        srv = server.start()
    finally:
        sys.executable = real
    try:
        if request.param == "unprivileged":  # the server itself runs as the ordinary user
            assert os.stat(f"/proc/{srv.proc.pid}").st_uid == pwd.getpwnam(UNPRIVILEGED_USER).pw_uid != 0
        data_dir = srv.data_dir
        lam = srv.client("lambda")
        name = f"hostile-{uuid.uuid4().hex[:8]}"
        hostile_function(srv, lam, name, Timeout=30, MemorySize=128, Environment={"Variables": {"MINE": "own"}})
        other_marker = f"other-function-{uuid.uuid4().hex}"
        lam.create_function(
            FunctionName=name + "-other",
            Runtime="python3.11",
            Role=execution_role(srv.client("iam"), "r", None),
            Handler="lambda_function.handler",
            Code={"ZipFile": zipped(f"def handler(event, context):\n    return '{other_marker}'\n")},
        )
        assert json.loads(lam.invoke(FunctionName=name + "-other")["Payload"].read()) == other_marker  # unpacked
        yield srv, lam, name, data_dir, other_marker
    finally:
        srv.stop()
    if request.param == "unprivileged":
        shutil.rmtree(data_root, ignore_errors=True)


def hostile_function(srv: ServerProcess, lam: Any, name: str, **config: Any) -> None:
    """Function ``name`` running HOSTILE, with an execution role Lambda may assume."""
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=execution_role(srv.client("iam"), "r", None),
        Handler="lambda_function.handler",
        Code={"ZipFile": zipped(HOSTILE)},
        **config,
    )


def call(lam, name: str, **event):  # type: ignore[no-untyped-def]
    out = lam.invoke(FunctionName=name, Payload=json.dumps(event))
    payload = json.loads(out["Payload"].read())
    assert "FunctionError" not in out, payload
    return payload


def test_not_root_no_capabilities_and_lambdas_paths(hostile):
    _srv, lam, name, _, _ = hostile
    me = call(lam, name, attack="identity")
    assert me["uid"] == me["euid"] == me["gid"] == sandbox_module.SANDBOX_UID != 0
    assert me["id"].startswith("uid=993(sbx_user1051) gid=993(sbx_user1051)")
    # uid 0 is not even mapped in its user namespace: setuid(0) is EINVAL (EPERM if it were).
    assert not me["setuid"]["ok"] and me["setuid"]["error"].startswith(("OSError", "PermissionError"))
    assert "CapEff:\t0000000000000000" in me["caps"] and "NoNewPrivs:\t1" in me["caps"]
    assert me["cwd"] == "/var/task" and me["file"] == "/var/task/lambda_function.py"
    assert me["pid"] < 10  # its own PID namespace


def test_master_key_database_and_data_dir_unreachable(hostile):
    _srv, lam, name, data_dir, _ = hostile
    assert (data_dir / "master.key").exists() and (data_dir / "strongroom.db").exists()
    for path in (data_dir / "master.key", data_dir / "strongroom.db", data_dir / "admin-credentials"):
        got = call(lam, name, attack="read", path=str(path))
        assert not got["ok"] and got["error"].startswith("FileNotFoundError"), (path, got)
    assert call(lam, name, attack="exists", path=str(data_dir)) is False
    assert not call(lam, name, attack="list", path=str(data_dir / "functions"))["ok"]


def test_server_environment_and_proc_unreachable(hostile):
    srv, lam, name, _, _ = hostile
    pid = srv.proc.pid
    got = call(lam, name, attack="read", path=f"/proc/{pid}/environ")
    assert not got["ok"] and got["error"].startswith("FileNotFoundError"), got
    # Only the sandbox's own processes are in its /proc.
    pids = [p for p in call(lam, name, attack="list", path="/proc")["value"] if p.isdigit()]
    assert all(int(p) < 10 for p in pids), pids
    env = call(lam, name, attack="environment")
    assert set(env) <= LAMBDA_VARIABLES, set(env) - LAMBDA_VARIABLES
    assert env["MINE"] == "own" and env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert srv.secret_access_key not in json.dumps(env)
    assert not any(k.startswith("STRONGROOM_ADMIN") for k in env)


def test_other_functions_code_unreachable(hostile):
    _srv, lam, name, _data_dir, other_marker = hostile
    assert call(lam, name, attack="scan", needle=other_marker) == []
    assert call(lam, name, attack="list", path="/var/task")["value"] == ["lambda_function.py"]


@pytest.mark.parametrize(
    "path",
    [
        "/var/task/lambda_function.py",
        "/var/task/new.py",
        "/etc/passwd",
        "/usr/evil",
        "/var/runtime/boto3/evil.py",
        "/evil",
        "/var/rapid/bootstrap.py",
    ],
)
def test_writes_outside_tmp_fail(hostile, path):
    _srv, lam, name, _, _ = hostile
    got = call(lam, name, attack="write", path=path)
    assert not got["ok"], got
    assert got["error"].split(":")[0] in ("OSError", "PermissionError", "FileNotFoundError"), got


def test_tmp_is_writable_and_private(hostile):
    _srv, lam, name, _, _ = hostile
    marker = f"private-{uuid.uuid4().hex}"
    assert call(lam, name, attack="write", path=f"/tmp/{marker}")["ok"]
    assert not Path(f"/tmp/{marker}").exists()  # the host's /tmp is not the function's


def test_memory_is_capped(hostile):
    _srv, lam, name, _, _ = hostile
    got = call(lam, name, attack="memory", bytes=4 * 1024**3)  # MemorySize 128 + headroom is far below
    assert not got["ok"] and got["error"].startswith("MemoryError"), got


def test_fork_bomb_is_bounded(hostile):
    srv, lam, name, _, _ = hostile
    if os.stat(f"/proc/{srv.proc.pid}").st_uid == 0 and not sandbox_module.processes_bounded():
        pytest.skip("a root server needs a writable v1 pids cgroup to bound processes (it warns at start-up)")
    got = call(lam, name, attack="fork", limit=1000)
    assert got["forked"] < 130 and got["error"] and "BlockingIOError" in got["error"], got


def test_open_files_are_capped(hostile):
    _srv, lam, name, _, _ = hostile
    got = call(lam, name, attack="files")
    assert got["opened"] < 1024 and got["error"] == "OSError", got


def test_database_drivers_and_loopback_network_are_there(hostile):
    """What AWS's rotation templates need: pymysql / psycopg importable (read-only, /var/runtime),
    and the databases reachable on loopback (the network is not unshared)."""
    _srv, lam, name, _, _ = hostile
    got = call(lam, name, attack="databases")
    assert got["mysql"] == got["postgres"] == 1 and got["pymysql"].startswith("/var/runtime/pymysql/")


def test_error_answers_show_only_var_task_frames(hostile):
    _srv, lam, name, data_dir, _ = hostile
    out = lam.invoke(FunctionName=name, Payload=json.dumps({"attack": "raise"}), LogType="Tail")
    error = json.loads(out["Payload"].read())
    assert out["FunctionError"] == "Unhandled" and error["errorMessage"] == "hostile failure"
    assert error["stackTrace"] and all(
        f.startswith('  File "/var/task/lambda_function.py"') for f in error["stackTrace"]
    )
    text = json.dumps(error) + base64.b64decode(out["LogResult"]).decode()
    assert str(data_dir) not in text and "strongroom" not in text and "bootstrap" not in text


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                pass
    return found


def test_no_process_outlives_its_worker(hostile):
    """A function double-forks and setsid()s a sleeper; deleting the function kills its worker,
    and nothing it started survives on the host."""
    srv, lam, _, _, _ = hostile
    name = f"leaver-{uuid.uuid4().hex[:8]}"
    hostile_function(srv, lam, name)
    marker = f"left-behind-{uuid.uuid4().hex}"
    assert call(lam, name, attack="leave", marker=marker) == "left"
    # The grandchild execs the sleeper after the function has answered: wait for it to show.
    wait_for(lambda: _processes_with(marker), timeout=10, what="the sleeper running while its worker lives")
    lam.delete_function(FunctionName=name)
    wait_for(lambda: not _processes_with(marker), timeout=10)


def test_a_deleted_functions_credentials_stop_at_once(hostile):
    srv, lam, _, _, _ = hostile
    name = f"creds-{uuid.uuid4().hex[:8]}"
    hostile_function(srv, lam, name)
    creds = call(lam, name, attack="credentials")
    stolen = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=srv.endpoint,
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=creds["AWS_SESSION_TOKEN"],
        config=Config(retries={"max_attempts": 1}),
    )
    try:
        stolen.list_secrets()
    except ClientError as exc:  # the role may not allow it, but the key itself was known
        assert exc.response["Error"]["Code"] == "AccessDeniedException"
    lam.delete_function(FunctionName=name)
    with pytest.raises(ClientError) as exc:
        stolen.list_secrets()
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_a_hanging_function_cannot_starve_iam():
    """Invocations of one function beyond its concurrency get Lambda's TooManyRequestsException at
    once, and none of them holds a thread IAM needs (before: 6 hanging invocations filled the
    default executor on 2 cores and CreateAccessKey waited for them)."""
    with ServerProcess(env={"STRONGROOM_FUNCTION_CONCURRENCY": "2"}, data_dir=None) as srv:
        lam = srv.client("lambda")
        lam = boto3.client(
            "lambda",
            region_name="us-east-1",
            endpoint_url=srv.endpoint,
            aws_access_key_id=srv.access_key_id,
            aws_secret_access_key=srv.secret_access_key,
            config=Config(retries={"max_attempts": 1}, read_timeout=60),
        )
        iam = srv.client("iam")
        name = f"hang-{uuid.uuid4().hex[:8]}"
        hostile_function(srv, lam, name, Timeout=20)
        codes: list[str] = []

        def hang() -> None:
            try:
                lam.invoke(FunctionName=name, Payload=json.dumps({"attack": "sleep", "seconds": 15}))["Payload"].read()
                codes.append("ok")
            except ClientError as exc:
                codes.append(exc.response["Error"]["Code"])

        threads = [threading.Thread(target=hang) for _ in range(8)]
        for thread in threads:
            thread.start()
        wait_for(lambda: codes.count("TooManyRequestsException") >= 6, timeout=20)
        iam.create_user(UserName="starved")
        iam.create_access_key(UserName="starved")
        # Answered while the two hung invocations still sleep their 15 s: nothing waited for them
        # (an event, not a stopwatch; a server that queued IAM behind them would answer after both).
        assert len(codes) == 6
        with pytest.raises(ClientError) as exc:
            lam.invoke(FunctionName=name, Payload=json.dumps({"attack": "sleep", "seconds": 0}))
        assert exc.value.response["Error"]["Code"] == "TooManyRequestsException"
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        lam.delete_function(FunctionName=name)  # kills the two running workers
        for thread in threads:
            thread.join(30)
        assert len(codes) == 8  # every call answered
        assert codes.count("TooManyRequestsException") == 6


def test_idle_workers_are_reaped_and_their_credentials_revoked(tmp_path):
    with ServerProcess(data_dir=tmp_path / "data", env={"STRONGROOM_FUNCTION_IDLE_SECONDS": "1"}) as srv:
        lam = srv.client("lambda")
        name = f"idle-{uuid.uuid4().hex[:8]}"
        hostile_function(srv, lam, name)
        creds = call(lam, name, attack="credentials")
        code_root = str(tmp_path / "data" / "functions")
        assert _processes_with(code_root), "a warm worker (bwrap binds its code from DATA_DIR/functions)"
        wait_for(lambda: not _processes_with(code_root), timeout=10)
        stolen = boto3.client(
            "sts",
            region_name="us-east-1",
            endpoint_url=srv.endpoint,
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=creds["AWS_SESSION_TOKEN"],
        )

        def refused() -> str | None:  # the reaper revokes right after the worker's processes are gone
            try:
                stolen.get_caller_identity()
            except ClientError as exc:
                return exc.response["Error"]["Code"]  # type: ignore[no-any-return]
            return None

        assert wait_for(refused, timeout=5) in ("InvalidClientTokenId", "UnrecognizedClientException")
        assert call(lam, name, attack="identity")["uid"] == 993  # a new worker starts on demand


BUILTIN_EVENT = {"Step": "createSecret", "ClientRequestToken": "t" * 32, "RotationToken": "r"}


def test_without_a_sandbox_uploaded_code_is_refused_but_builtins_run(tmp_path):
    with ServerProcess(data_dir=tmp_path / "data", env={"STRONGROOM_BWRAP": "/nonexistent/bwrap"}) as srv:
        lines = [line for line in srv.log().splitlines() if "uploaded functions will NOT run" in line]
        assert len(lines) == 1 and "/nonexistent/bwrap not found" in lines[0] and "Traceback" not in srv.log()
        lam, sm = srv.client("lambda"), srv.client()
        name = f"refused-{uuid.uuid4().hex[:8]}"
        hostile_function(srv, lam, name)
        out = lam.invoke(FunctionName=name, Payload=json.dumps({"attack": "identity"}))
        error = json.loads(out["Payload"].read())
        assert out["FunctionError"] == "Unhandled" and error["errorType"] == "Runtime.SandboxUnavailable"
        assert "without its sandbox" in error["errorMessage"] and "--unsafe-functions" in error["errorMessage"]
        # A built-in rotator (strongroom's own code) still runs: it refuses the wrong engine itself.
        arn = sm.create_secret(
            Name="db", SecretString=json.dumps({"engine": "oracle", "username": "u", "password": "p", "host": "h"})
        )["ARN"]
        sm.put_secret_value(SecretId=arn, ClientRequestToken="t" * 32, SecretString="{}", VersionStages=["AWSPENDING"])
        out = lam.invoke(
            FunctionName="strongroom-mysql-single-user",
            Payload=json.dumps({**BUILTIN_EVENT, "Step": "setSecret", "SecretId": arn}),
        )
        assert "Database engine must be set to" in json.loads(out["Payload"].read())["errorMessage"]


def test_unsafe_functions_runs_unsandboxed_with_a_loud_warning(tmp_path):
    with ServerProcess(
        data_dir=tmp_path / "data", extra_args=["--unsafe-functions"], env={"STRONGROOM_BWRAP": "/nonexistent/bwrap"}
    ) as srv:
        assert "WARNING: --unsafe-functions: uploaded functions run WITHOUT a sandbox" in srv.log()
        lam = srv.client("lambda")
        name = f"unsafe-{uuid.uuid4().hex[:8]}"
        hostile_function(srv, lam, name)
        me = call(lam, name, attack="identity")
        assert me["uid"] == os.getuid() and me["file"].startswith(str(tmp_path / "data"))


def test_a_data_dir_the_sandbox_would_bind_refuses_uploaded_code():
    """A data directory inside a directory the sandbox binds read-only (here the server's
    site-packages, bound at /var/runtime) would let a function read the master key and the
    database: the server says so in one line and runs no uploaded code."""
    packages = Path(importlib.util.find_spec("boto3").origin).resolve().parent.parent  # type: ignore[arg-type]
    data = Path(tempfile.mkdtemp(prefix="strongroom-exposed-", dir=packages))
    try:
        with ServerProcess(data_dir=data / "data") as srv:
            lines = [line for line in srv.log().splitlines() if "uploaded functions will NOT run" in line]
            assert len(lines) == 1 and "would be visible inside it" in lines[0], srv.log()
            lam = srv.client("lambda")
            name = f"exposed-{uuid.uuid4().hex[:8]}"
            hostile_function(srv, lam, name)
            out = lam.invoke(FunctionName=name, Payload=json.dumps({"attack": "identity"}))
            error = json.loads(out["Payload"].read())
            assert error["errorType"] == "Runtime.SandboxUnavailable" and "would be visible" in error["errorMessage"]
    finally:
        shutil.rmtree(data, ignore_errors=True)
