"""The sandbox uploaded functions run in (rotation/sandbox.py), checked from inside one: a command
run in exactly the sandbox a worker gets (one bwrap start, about a third of a second), and the
refusals and limits around it, without a server. tests/e2e/test_sandbox.py attacks the same
sandbox through a running server with a hostile function (slow: too slow to run per mutant, so
these are what a mutation of sandbox.py is measured against first; issue 17)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.rotation import sandbox as sb

INSIDE = r"""
import json, os, socket, sys
def writable(path):
    try:
        with open(os.path.join(path, "probe"), "w") as f:
            f.write("x")
        return True
    except OSError:
        return False
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
sys.path.insert(0, "/var/runtime")
import boto3
print(json.dumps({
    "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid()],
    "pid": os.getpid(),
    "hostname": socket.gethostname(),
    "cwd": os.getcwd(),
    "task": sorted(os.listdir("/var/task")),
    "passwd": open("/etc/passwd").read(),
    "group": open("/etc/group").read(),
    "capabilities": status["CapEff"].strip(),
    "no_new_privs": status["NoNewPrivs"].strip(),
    "writable": {p: writable(p) for p in ("/tmp", "/var/task", "/", "/usr", "/etc", "/var/tmp")},
    "bootstrap": open("/var/rapid/bootstrap.py").read(),
    "boto3": boto3.__file__.startswith("/var/runtime/"),
    "exists": {p: os.path.exists(p) for p in ("/bin/sh", "/etc/hosts", "/etc/shadow", sys.argv[1], sys.argv[2])},
}))
"""


@pytest.fixture(scope="module")
def sandbox() -> sb.Sandbox:
    try:
        return sb.find()
    except sb.SandboxUnavailable as exc:  # the e2e sandbox tests need it as well; make setup installs it
        pytest.fail(f"bubblewrap is needed here: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def inside(sandbox: sb.Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """What a command run in the sandbox of a function sees (its code: one file, handler.py)."""
    code = tmp_path_factory.mktemp("code")
    (code / "handler.py").write_text("def handler(event, context):\n    return event\n")
    data = tmp_path_factory.mktemp("data")  # the server's data directory: not in the sandbox
    (data / "master.key").write_text("secret")
    args, fds = sandbox.command(str(code), "handler.handler")
    assert args[0] == sandbox.bwrap
    cut = args.index("--")
    assert args[cut + 1 :] == [
        sandbox.python,
        "-s",
        "-B",
        sb.BOOTSTRAP,
        "handler.handler",
        sb.TASK_ROOT,
        sb.RUNTIME_DIR,
    ]
    try:
        done = subprocess.run(
            [*args[: cut + 1], sandbox.python, "-s", "-c", INSIDE, str(data / "master.key"), str(code)],
            capture_output=True,
            text=True,
            timeout=60,
            pass_fds=fds,
            env={"PATH": "/usr/bin:/bin"},
        )
    finally:
        sb.close_fds(fds)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_inside_it_is_lambdas_user_with_no_capabilities(inside: dict[str, object]) -> None:
    assert inside["ids"] == [993, 993, 993, 993]
    assert inside["passwd"] == ("root:x:0:0:root:/root:/sbin/nologin\nsbx_user1051:x:993:993::/tmp:/sbin/nologin\n")
    assert inside["group"] == "root:x:0:\nsbx_user1051:x:993:\n"
    assert inside["capabilities"] == "0000000000000000" and inside["no_new_privs"] == "1"
    assert int(inside["pid"]) < 10  # type: ignore[call-overload]  # a PID namespace of its own
    assert inside["hostname"] == "sandbox"


def test_inside_only_tmp_is_writable_and_the_code_is_at_var_task(inside: dict[str, object]) -> None:
    assert inside["writable"] == {
        "/tmp": True,
        "/var/task": False,
        "/": False,
        "/usr": False,
        "/etc": False,
        "/var/tmp": False,
    }
    assert inside["cwd"] == "/var/task" and inside["task"] == ["handler.py"]
    assert inside["bootstrap"] == sb.WORKER_SOURCE.read_text()
    assert inside["boto3"] is True  # the server's own packages, read-only at /var/runtime


def test_inside_the_host_is_not_there(inside: dict[str, object]) -> None:
    exists = dict(inside["exists"])  # type: ignore[call-overload]
    data_key, code_dir = [k for k in exists if k not in ("/bin/sh", "/etc/hosts", "/etc/shadow")]
    assert exists == {"/bin/sh": True, "/etc/hosts": True, "/etc/shadow": False, data_key: False, code_dir: False}


def test_what_the_sandbox_binds_from_the_host_is_exposed(sandbox: sb.Sandbox, tmp_path: Path) -> None:
    site_packages = sb._site_packages()[0]
    assert sandbox.exposes(Path("/usr"))
    assert sandbox.exposes(Path("/usr/share/data-dir"))
    assert sandbox.exposes(Path(site_packages) / "strongroom-data")
    assert sandbox.exposes(Path("/etc/hosts"))
    assert sandbox.exposes(Path("/etc/ssl/private/master.key"))
    assert sandbox.exposes(Path(os.path.realpath(sys.base_prefix)) / "data")
    assert not sandbox.exposes(Path("/usrdata"))  # a name that only begins like a bound one
    assert not sandbox.exposes(Path("/etc/shadow"))
    assert not sandbox.exposes(tmp_path / "data")
    assert not sandbox.exposes(Path("/var/lib/strongroom"))


def test_the_packages_bound_at_var_runtime_are_where_boto3_is(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import boto3

    first, second = tmp_path / "site-a", tmp_path / "site-b"
    first.mkdir()
    second.mkdir()
    # The interpreter's site directories need not hold it (PYTHONPATH, another virtualenv).
    monkeypatch.setattr(sb.site, "getsitepackages", lambda: [str(tmp_path / "missing"), str(first), str(second)])
    assert sb._site_packages() == [str(Path(boto3.__file__).resolve().parent.parent)]
    # Without boto3 anywhere: the first site directory that exists, only that one.
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert sb._site_packages() == [str(first)]


def test_the_password_files_reach_bwrap_through_pipes_that_are_closed_after(sandbox: sb.Sandbox) -> None:
    args, fds = sandbox.command("/nonexistent", "h.handler")
    assert len(fds) == 2
    targets = {args[i + 2]: int(args[i + 1]) for i, arg in enumerate(args) if arg == "--ro-bind-data"}
    assert set(targets) == {"/etc/passwd", "/etc/group"} and set(targets.values()) == set(fds)
    assert os.read(targets["/etc/group"], 1000) == b"root:x:0:\nsbx_user1051:x:993:\n"
    sb.close_fds(fds)
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)
    sb.close_fds(fds)  # closing again is harmless
    # exposes() builds the same list, and closes its pipes too.
    before = set(os.listdir("/proc/self/fd"))
    sandbox.exposes(Path("/usr"))
    assert set(os.listdir("/proc/self/fd")) == before


def test_the_root_is_read_only_last_after_the_code_is_bound(sandbox: sb.Sandbox) -> None:
    args, fds = sandbox.command("/srv/code", "h.handler")
    sb.close_fds(fds)
    cut = args.index("--")
    assert args[cut - 7 : cut] == ["--ro-bind", "/srv/code", sb.TASK_ROOT, "--remount-ro", "/", "--chdir", sb.TASK_ROOT]
    bare, fds = sandbox._mounts()
    sb.close_fds(fds)
    assert bare[-2:] == ["--remount-ro", "/"]


# ------------------------------------------------------------------------- refusals at start


@pytest.fixture
def fake_bwrap(tmp_path: Path) -> Path:
    return tmp_path / "bwrap"


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_a_missing_program_is_named_with_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(sb.SandboxUnavailable) as missing:
        sb.find(str(tmp_path / "no-bwrap"))
    assert str(missing.value) == (
        f"{tmp_path / 'no-bwrap'} not found (install the Debian package bubblewrap: apt-get install -y bubblewrap)"
    )


def test_a_program_that_does_not_isolate_fails_the_probe(fake_bwrap: Path) -> None:
    # It runs the command on the host as it is: root here, or the host's PID namespace.
    program = _script(fake_bwrap, 'while [ "$1" != "--" ]; do shift; done; shift; exec "$@"\n')
    with pytest.raises(sb.SandboxUnavailable) as refused:
        sb.find(program)
    reason = str(refused.value)
    assert reason.startswith(f"{program} failed its probe: AssertionError: ")
    assert reason.endswith("root inside" if os.geteuid() == 0 else "host PID namespace")


def test_probe_failures_say_why_in_one_line(fake_bwrap: Path, tmp_path: Path) -> None:
    program = _script(
        fake_bwrap, "echo 'first line' >&2\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n"
    )
    with pytest.raises(sb.SandboxUnavailable) as refused:
        sb.probe(sb.Sandbox(program))
    assert str(refused.value) == f"{program} failed its probe: bwrap: No permissions to create new namespace"
    silent = _script(fake_bwrap, "echo nope\n")  # exit 0, but not the probe's answer
    with pytest.raises(sb.SandboxUnavailable) as refused:
        sb.probe(sb.Sandbox(silent))
    assert str(refused.value) == f"{silent} failed its probe: exit status 0"
    ok = _script(fake_bwrap, "echo ok\nexit 3\n")  # the right words, a failed exit
    with pytest.raises(sb.SandboxUnavailable, match=r"failed its probe: exit status 3$"):
        sb.probe(sb.Sandbox(ok))
    (tmp_path / "not-a-program").mkdir()
    with pytest.raises(sb.SandboxUnavailable, match="could not run: "):
        sb.probe(sb.Sandbox(str(tmp_path / "not-a-program")))


def test_the_real_sandbox_passes_its_probe(sandbox: sb.Sandbox) -> None:
    assert sb.find(sandbox.bwrap) == sandbox  # found on PATH by its name, and probed


# ------------------------------------------------------------------- the processes' bound


def test_a_server_that_is_not_root_is_bounded_by_rlimit_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert sb.processes_bounded() is True
    assert sb.pids_cgroup("x") is None  # RLIMIT_NPROC, set by the worker, is the bound


def test_a_root_server_needs_a_writable_pids_hierarchy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(sb, "PIDS_ROOT", tmp_path / "no-such-hierarchy")
    assert sb.processes_bounded() is False and sb.pids_cgroup("x") is None
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o500)
    monkeypatch.setattr(sb, "PIDS_ROOT", read_only)
    if os.access(read_only, os.W_OK):  # root ignores modes: made unwritable by a file in the way
        read_only.chmod(0o700)
        (read_only / "strongroom").write_text("not a directory")
        assert sb.processes_bounded() is True and sb.pids_cgroup("x") is None  # mkdir fails: no group
    else:
        assert sb.processes_bounded() is False and sb.pids_cgroup("x") is None


def test_a_root_servers_workers_get_a_pids_cgroup_of_128(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(sb, "PIDS_ROOT", tmp_path)  # a directory standing in for the v1 hierarchy
    group = sb.pids_cgroup("worker-1")
    assert group == tmp_path / "strongroom" / "worker-1"
    assert (group / "pids.max").read_text() == "128"
    assert sb.processes_bounded() is True
    (group / "pids.max").unlink()  # cgroupfs removes its own files with the group; a directory does not
    sb.remove_cgroup(group)
    assert not group.exists()
    sb.remove_cgroup(group)  # gone already: nothing to do
    sb.remove_cgroup(None)


def test_a_group_still_in_use_is_retried_then_left(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import time

    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)  # the retries' pauses, without waiting them out
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "cgroup.procs").write_text("")  # a directory that cannot be removed yet
    sb.remove_cgroup(busy)  # no error: the worker is gone, its group is left behind
    assert busy.exists() and len(waits) > 1
    waits.clear()
    sb.remove_cgroup(tmp_path / "gone")  # already removed: no retry at all
    assert waits == []
