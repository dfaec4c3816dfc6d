"""The sandbox an uploaded function's worker runs in: bubblewrap (``bwrap``), built once per server.

On AWS a function runs in a Firecracker microVM of its own. Here a worker for uploaded code is
started as ``bwrap ... python /var/rapid/bootstrap.py HANDLER /var/task``, which gives it:

- its own user, mount, PID, IPC, UTS (and, where the kernel has it, cgroup) namespaces; inside it
  is uid/gid 993 (Lambda's ``sbx_user1051``), never root, with every capability dropped and
  ``no_new_privs`` set (bwrap always sets it), so nothing it runs can regain privilege;
- a filesystem made of read-only system directories (``/usr`` and its ``/bin``, ``/lib*``
  links; from ``/etc`` only what name resolution and TLS need), the interpreter's own prefix
  read-only, the server's site-packages read-only at ``/var/runtime`` (boto3, pymysql, psycopg:
  AWS's rotation templates import them; Lambda keeps boto3 there too), the bootstrap (this
  package's ``worker.py``, which imports nothing from strongroom) at ``/var/rapid/bootstrap.py``,
  the function's code read-only at ``/var/task``, a private tmpfs ``/tmp``, a fresh ``/proc`` for
  its PID namespace and a minimal ``/dev``. DATA_DIR, the master key, other functions' code, the
  server's ``/proc`` and everything else on the host are simply not in its mount namespace;
- an environment with only what the runtime passes (Lambda's variables and the function's own):
  bwrap is started with exactly that environment, which is ``--clearenv`` plus ``--setenv`` for
  each, without writing the function's credentials into bwrap's command line (which ``ps`` shows);
- ``--die-with-parent`` and its own PID namespace: when the worker (or bwrap) is killed, every
  process it started dies with it. The runtime starts bwrap in a process group of its own and
  kills that group.

The network is shared with the host on purpose: functions reach databases and this server.

:func:`probe` runs a trivial command in the same sandbox once at start-up; a server whose probe
fails refuses uploaded code (built-in rotators, which are strongroom's own code, still run) and
says why in one line.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SANDBOX_UID", "TASK_ROOT", "Sandbox", "SandboxUnavailable", "probe"]

SANDBOX_UID = 993  # Lambda's sbx_user1051
TASK_ROOT = "/var/task"  # Lambda's LAMBDA_TASK_ROOT
RUNTIME_DIR = "/var/runtime"
BOOTSTRAP = "/var/rapid/bootstrap.py"
WORKER_SOURCE = Path(__file__).with_name("worker.py")

# From /etc, only what resolving names and verifying TLS need (each bound only if present; pki:
# AWS's rotation templates read Amazon Linux's CA bundle, /etc/pki/tls/cert.pem).
_ETC = (
    "ssl",
    "pki",
    "ca-certificates",
    "ca-certificates.conf",
    "resolv.conf",
    "hosts",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "localtime",
    "protocols",
    "services",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
)
_PASSWD = f"root:x:0:0:root:/root:/sbin/nologin\nsbx_user1051:x:{SANDBOX_UID}:{SANDBOX_UID}::/tmp:/sbin/nologin\n"
_GROUP = f"root:x:0:\nsbx_user1051:x:{SANDBOX_UID}:\n"


class SandboxUnavailable(Exception):
    """The sandbox cannot be built here; the message says why in one line."""


@dataclass(
    frozen=True,  # pragma: no mutate (nothing assigns to it or hashes it: frozen only documents that)
)
class Sandbox:
    bwrap: str

    def command(self, code_dir: str, handler: str) -> tuple[list[str], tuple[int, ...]]:
        """bwrap's argument list running ``handler`` from ``code_dir``, and the file descriptors it
        reads (``/etc/passwd`` and ``/etc/group`` for the sandbox) that must be passed to it."""
        args, fds = self._mounts(["--ro-bind", code_dir, TASK_ROOT])
        args += ["--chdir", TASK_ROOT, "--", self.python, "-s", "-B", BOOTSTRAP, handler, TASK_ROOT, RUNTIME_DIR]
        return args, fds

    @property
    def python(self) -> str:
        return os.path.realpath(sys.executable)

    def exposes(self, path: Path) -> bool:
        """Whether ``path`` (a data directory, a key file) lies in something the sandbox binds from
        the host (``/usr``, the interpreter's prefix, the site-packages, files of ``/etc``): a
        function could then read it, so the server must not run uploaded code with it there."""
        args, fds = self._mounts()
        close_fds(fds)
        target = os.path.realpath(path)
        sources = [args[i + 1] for i, arg in enumerate(args) if arg in ("--ro-bind", "--bind")]
        for source in sources:
            source = os.path.realpath(source)
            if target == source or target.startswith(source.rstrip("/") + "/"):
                return True
        return False

    def _mounts(self, extra: list[str] | None = None) -> tuple[list[str], tuple[int, ...]]:
        args = [
            self.bwrap,
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_UID),
            "--hostname",
            "sandbox",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--ro-bind",
            "/usr",
            "/usr",
        ]
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            path = Path("/") / top
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), f"/{top}"]
            elif path.is_dir():
                args += ["--ro-bind", str(path), f"/{top}"]
        for name in _ETC:
            if os.path.lexists(f"/etc/{name}"):
                args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        # The interpreter's prefix when it is not under /usr (pyenv, /opt/python): read-only, same path.
        prefix = os.path.realpath(sys.base_prefix)
        if not prefix.startswith("/usr/"):
            args += ["--ro-bind", prefix, prefix]
        for packages in _site_packages():
            args += ["--ro-bind", packages, RUNTIME_DIR]
        args += [
            "--ro-bind",
            str(WORKER_SOURCE),
            BOOTSTRAP,
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--dir",
            "/var/tmp",
        ]
        fds = []
        for data, target in ((_PASSWD, "/etc/passwd"), (_GROUP, "/etc/group")):
            fd = _data_fd(data)
            fds.append(fd)
            args += ["--ro-bind-data", str(fd), target]
        # Everything but /tmp read-only, the root included (bwrap's root is a writable tmpfs).
        args += [*(extra or []), "--remount-ro", "/"]
        return args, tuple(fds)


# RLIMIT_NPROC does not bind processes whose real uid is the host's root (the kernel exempts
# INIT_USER even inside a user namespace), so a server running as root also puts each sandboxed
# worker in a pids cgroup of its own (cgroup v1 ``pids`` hierarchy, when it is writable).
PIDS_ROOT = Path("/sys/fs/cgroup/pids")
MAX_PROCESSES = 128


def pids_cgroup(name: str) -> Path | None:
    """A new pids cgroup capped at MAX_PROCESSES, or None where there is none to make (not root,
    no writable v1 pids hierarchy: then RLIMIT_NPROC, set by the worker, is the bound)."""
    if os.geteuid() != 0 or not os.access(PIDS_ROOT, os.W_OK):
        return None
    try:
        group = PIDS_ROOT / "strongroom" / name
        group.mkdir(parents=True, exist_ok=True)  # pragma: no mutate (each name is a new uuid: it never exists)
        (group / "pids.max").write_text(str(MAX_PROCESSES))
        return group
    except OSError:
        return None


def processes_bounded() -> bool:
    """Whether a sandboxed worker's processes are bounded here: always for a server that is not
    root (RLIMIT_NPROC); for root only with a writable v1 ``pids`` hierarchy (cgroup v2 is not
    handled yet: the server then says so at start-up)."""
    return os.geteuid() != 0 or os.access(PIDS_ROOT, os.W_OK)


def remove_cgroup(group: Path | None) -> None:
    if group is None:
        return
    # The PID namespace's processes are reaped asynchronously after the kill.
    for _ in range(50):  # pragma: no mutate (a retry budget: no answer depends on it)
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            import time

            time.sleep(0.02)  # pragma: no mutate (a retry budget: no answer depends on it)


def _site_packages() -> list[str]:
    """The directory holding the server's own dependencies (its virtualenv's site-packages, or
    wherever PYTHONPATH put them): bound at /var/runtime, where the function imports boto3 from."""
    import importlib.util

    spec = importlib.util.find_spec("boto3")
    if spec is not None and spec.origin:
        return [str(Path(spec.origin).resolve().parent.parent)]
    return [p for p in site.getsitepackages() if os.path.isdir(p)][:1]


def _data_fd(data: str) -> int:
    """A pipe's read end holding ``data`` (small: it fits the pipe's buffer), for --ro-bind-data."""
    read, write = os.pipe()
    os.write(write, data.encode())
    os.close(write)
    return read


def close_fds(fds: tuple[int, ...]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def find(bwrap: str | None = None) -> Sandbox:
    """The sandbox, checked by running a command in it; :class:`SandboxUnavailable` otherwise.

    ``bwrap``: the program (``STRONGROOM_BWRAP``; default: ``bwrap`` on PATH)."""
    program = shutil.which(bwrap or "bwrap")
    if program is None:
        raise SandboxUnavailable(
            f"{bwrap or 'bwrap'} not found (install the Debian package bubblewrap: apt-get install -y bubblewrap)"
        )
    sandbox = Sandbox(program)
    probe(sandbox)
    return sandbox


def probe(sandbox: Sandbox) -> None:
    """Run the sandbox's interpreter once inside it, checking it is not root and sees no host /proc."""
    args, fds = sandbox._mounts()
    check = (
        "import os; assert os.getuid() != 0 and os.geteuid() != 0, 'root inside'; "
        "assert os.getpid() < 10, 'host PID namespace'; import boto3; print('ok')"
    )
    try:
        done = subprocess.run(
            [*args, "--", sandbox.python, "-s", "-c", f"import site; site.addsitedir({RUNTIME_DIR!r}); {check}"],
            capture_output=True,
            text=True,
            timeout=30,  # pragma: no mutate (a bound on a probe that takes a third of a second)
            pass_fds=fds,
            env={"PATH": "/usr/bin:/bin"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"{sandbox.bwrap} could not run: {exc}") from None
    finally:
        close_fds(fds)
    if done.returncode != 0 or done.stdout.strip() != "ok":
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise SandboxUnavailable(f"{sandbox.bwrap} failed its probe: {reason}")
