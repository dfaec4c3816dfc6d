"""`strongroom serve` and the operator commands start cleanly or say in one line why not.

What an operator sees is asserted: the exit code, stderr being exactly one line (no traceback),
its text, and that "listening on" is printed only by a server that is bound and serving.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.testing import ServerProcess, free_port, postgres_schema
from strongroom.testing.functions import execution_role, zipped

# Root without CAP_DAC_OVERRIDE: file modes bind it as they bind any user (util-linux's setpriv).
UNPRIVILEGED = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


def strongroom(
    *args: str, env: dict[str, str] | None = None, unprivileged: bool = False
) -> subprocess.CompletedProcess[str]:
    """The command line in a subprocess; a server that does start fails the test after 5 s.
    ``unprivileged``: as root (CI), without the capabilities that let root write any file."""
    prefix = UNPRIVILEGED if unprivileged and os.geteuid() == 0 else []
    try:
        return subprocess.run(
            [*prefix, sys.executable, "-m", "strongroom.cli.main", *args],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=5,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"still running (it started):\n{exc.stdout!r}\n{exc.stderr!r}") from None


def refused(result: subprocess.CompletedProcess[str], text: str, code: int = 1) -> str:
    line = result.stderr.rstrip("\n")
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "\n" not in line, result.stderr
    assert text in line, line
    assert "listening" not in result.stdout, result.stdout
    return line


def serve(data_dir: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return strongroom("serve", "--port", str(free_port()), "--data-dir", str(data_dir), *args, **kwargs)  # type: ignore[arg-type]


def test_a_data_dir_that_is_a_file(tmp_path):
    (tmp_path / "data").write_text("not a directory")
    refused(serve(tmp_path / "data"), f"strongroom: the data directory {tmp_path / 'data'} is not a directory")
    refused(strongroom("backup", str(tmp_path / "b.bak"), "--data-dir", str(tmp_path / "data")), "is not a directory")


def test_a_data_dir_others_can_enter_is_refused_with_the_chmod_to_run(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    data.chmod(0o751)
    line = refused(serve(data), "can be entered by group or others (mode 0o751)")
    assert line.endswith(f"run: chmod 700 {data}")
    refused(strongroom("db", "upgrade", "--data-dir", str(data)), f"run: chmod 700 {data}")
    data.chmod(0o700)
    assert strongroom("db", "upgrade", "--data-dir", str(data)).returncode == 0


def test_a_taken_port_is_refused_before_anything_is_printed(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = strongroom("serve", "--port", str(port), "--data-dir", str(tmp_path / "data"))
    refused(result, f"strongroom: cannot listen on 127.0.0.1:{port}: the address is already in use")
    assert result.stdout == ""
    assert not (tmp_path / "data" / "strongroom.db").exists()  # refused before storage was opened


@pytest.mark.parametrize(
    "args, env, code, text",
    [
        (["--port", "99999"], {}, 2, "strongroom serve: Invalid value for '--port': 99999 is not in the range"),
        (["--port", "http"], {}, 2, "Invalid value for '--port': 'http' is not a valid integer"),
        (["--host", "no-such-host.invalid"], {}, 1, "cannot listen on no-such-host.invalid:"),
        (["--no-such-option"], {}, 2, "No such option '--no-such-option'"),
        (
            [],
            {"STRONGROOM_AUDIT_RETENTION_DAYS": "a year"},
            1,
            "strongroom: STRONGROOM_AUDIT_RETENTION_DAYS must be a number (got 'a year')",
        ),
        ([], {"STRONGROOM_AUDIT_RETENTION_DAYS": "-1"}, 1, "STRONGROOM_AUDIT_RETENTION_DAYS must be a positive number"),
    ],
)
def test_bad_option_values_are_one_line(tmp_path, args, env, code, text):
    refused(serve(tmp_path / "data", *args, env=env), text, code)


def test_a_read_only_database_is_refused_before_listening(tmp_path):
    data = tmp_path / "data"
    with ServerProcess(data_dir=data) as srv:
        srv.client().create_secret(Name="kept", SecretString="v")
    (data / "strongroom.db").chmod(0o400)
    line = refused(
        serve(data, unprivileged=True),
        f"strongroom: the database file {data / 'strongroom.db'} is read-only for this user",
    )
    assert "(uid" in line


def test_a_data_dir_this_user_cannot_write(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o500)
    refused(serve(data, unprivileged=True), f"the data directory {data} is not writable by this user")


def test_a_file_that_is_not_a_database(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "strongroom.db").write_bytes(b"certainly not SQLite" * 100)
    (data / "strongroom.db").chmod(0o600)
    refused(serve(data), f"strongroom: the database {data / 'strongroom.db'} cannot be used: file is not a database")


def test_an_unreachable_postgresql_is_one_line(tmp_path):
    port = free_port()  # nothing listens there
    refused(
        serve(tmp_path / "data", "--database-url", f"postgresql://postgres@127.0.0.1:{port}/x"),
        "strongroom: the database postgresql://",
    )


def test_one_server_per_sqlite_data_dir(tmp_path):
    data = tmp_path / "data"
    with ServerProcess(data_dir=data) as first:
        pid = first.proc.pid  # type: ignore[union-attr]
        refused(serve(data), f"strongroom: the data directory {data} is in use by another server (PID {pid})")
        # Offline commands that write what the server writes wait for it to stop...
        refused(
            strongroom("restore", "/dev/null", "--data-dir", str(data)),
            f"in use by another server (PID {pid}); stop it before running `strongroom restore`",
        )
        refused(strongroom("db", "upgrade", "--data-dir", str(data)), "stop it before running `strongroom db upgrade`")
        # ... those that read, or that a running server is built to see, run beside it.
        backup = strongroom("backup", str(tmp_path / "b.bak"), "--data-dir", str(data))
        assert backup.returncode == 0, backup.stderr
        account = strongroom("admin", "create-account", "210987654321", "--data-dir", str(data))
        assert account.returncode == 0, account.stderr
        first.client().create_secret(Name="still-serving", SecretString="v")
    # The lock went with the process: a killed server leaves a lock file that binds no one.
    srv = ServerProcess(data_dir=data).start()
    srv.kill()
    assert (data / "strongroom.lock").exists()
    with ServerProcess(data_dir=data) as again:
        assert again.client().get_secret_value(SecretId="still-serving")["SecretString"] == "v"
        assert (data / "strongroom.lock").read_text().split() == [str(again.proc.pid), "serve"]  # type: ignore[union-attr]


def test_postgresql_nodes_share_a_data_dir_without_a_lock(tmp_path, pg_url):
    data = tmp_path / "data"
    with postgres_schema(pg_url.split("?")[0]) as url:
        with ServerProcess(data_dir=data, database_url=url) as a, ServerProcess(data_dir=data, database_url=url) as b:
            a.client().create_secret(Name="shared", SecretString="v")
            assert b.client().get_secret_value(SecretId="shared")["SecretString"] == "v"
        assert not (data / "strongroom.lock").exists()


def test_dev_listens_on_loopback_only_and_refuses_a_data_dir(tmp_path):
    refused(
        strongroom("serve", "--dev", "--host", "0.0.0.0"),
        "strongroom serve: --dev listens on loopback only (it checks no signature); --host 0.0.0.0 needs "
        "--dev-allow-remote as well.",
        code=2,
    )
    refused(
        strongroom("serve", "--dev", "--data-dir", str(tmp_path)),
        "--dev keeps state in memory and cannot be used with --data-dir",
        code=2,
    )
    refused(
        strongroom("serve", "--dev-allow-remote", "--data-dir", str(tmp_path / "d")),
        "--dev-allow-remote only means something with --dev",
        code=2,
    )
    # With the opt-in the address check is passed (this one then fails to bind: nothing is exposed).
    refused(
        strongroom("serve", "--dev", "--dev-allow-remote", "--host", "no-such-host.invalid"),
        "cannot listen on no-such-host.invalid:",
    )
    with ServerProcess(dev=True, extra_args=["--host", "127.0.0.1"]) as srv:
        assert srv.healthy()


def test_what_the_server_writes_is_its_own(tmp_path):
    data = tmp_path / "data"
    with ServerProcess(data_dir=data) as srv:
        srv.client().create_secret(Name="s", SecretString="v")
        srv.client("lambda").create_function(
            FunctionName="f",
            Runtime="python3.11",
            Role=execution_role(srv.client("iam"), "r", None),
            Handler="lambda_function.lambda_handler",
            Code={"ZipFile": zipped()},
        )
        srv.client("lambda").invoke(FunctionName="f", Payload=b"{}")["Payload"].read()  # read: no socket left open
    seen = {p.relative_to(data).parts[0] for p in data.rglob("*")}
    assert {"strongroom.db", "master.key", "audit", "functions", "strongroom.lock"} <= seen, seen
    for path in [data, *data.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if (path.is_dir() and path.relative_to(data).parts[:1] != ("functions",)) or path == data / "functions":
            assert mode == 0o700, (path, oct(mode))
        elif path.is_file():
            assert mode & 0o077 == 0, (path, oct(mode))


def test_an_older_database_left_open_to_others_is_closed(tmp_path):
    data = tmp_path / "data"
    with ServerProcess(data_dir=data):
        pass
    (data / "strongroom.db").chmod(0o644)
    with ServerProcess(data_dir=data):
        assert stat.S_IMODE((data / "strongroom.db").stat().st_mode) == 0o600


def test_a_master_key_from_a_command(tmp_path):
    import base64

    key_file = tmp_path / "vault" / "key"
    key_file.parent.mkdir(mode=0o700)
    key_file.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    command = ["--master-key-command", f"cat {key_file}"]
    data = tmp_path / "data"
    with ServerProcess(data_dir=data, extra_args=command) as srv:
        srv.client().create_secret(Name="from-a-store", SecretString="v")
    assert not (data / "master.key").exists()  # the key was never written into the data dir
    backup = strongroom("backup", str(tmp_path / "b.bak"), "--data-dir", str(data), *command)
    assert backup.returncode == 0, backup.stderr
    with ServerProcess(data_dir=data, extra_args=command) as srv:
        assert srv.client().get_secret_value(SecretId="from-a-store")["SecretString"] == "v"
    refused(
        serve(data, "--master-key-command", "false"),
        "strongroom: the master key command 'false' exited with status 1 (it wrote nothing on stderr)",
    )
    refused(
        serve(data, "--master-key-command", str(tmp_path / "nothing-here")),
        f"strongroom: the master key command '{tmp_path / 'nothing-here'}' cannot be run: ",
    )


def test_the_banner_names_a_bound_port_even_when_the_kernel_chose_it():
    import re
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "strongroom.cli.main", "serve", "--dev", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        port = int(re.fullmatch(r"strongroom \(DEV MODE\) listening on http://127\.0\.0\.1:(\d+)\n", first)[1])  # type: ignore[index]
        assert port != 0
        # Bound before the banner: the port is taken by this server, not free for another.
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_strongroom/health", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                __import__("time").sleep(0.05)
        else:
            raise AssertionError("the server never answered")
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        proc.stdout.close()  # type: ignore[union-attr]
