"""A real strongroom server in a subprocess, for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["ServerProcess", "free_port", "postgres_schema"]

TEST_ACCESS_KEY_ID = "AKIASTRONGROOMTEST01"
TEST_SECRET_ACCESS_KEY = "strongroom/test/secret/key/0123456789abcd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres_schema(base_url: str = "postgresql://postgres@127.0.0.1:5432/test") -> Iterator[str]:
    """A fresh schema for one run; the URL routes every connection to it. Dropped afterwards."""
    import psycopg

    name = f"strongroom_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


class ServerProcess:
    """``strongroom serve`` on loopback. Use as a context manager, or call start() / stop()."""

    def __init__(
        self,
        *,
        database_url: str | None = None,
        dev: bool = False,
        data_dir: Path | None = None,
        access_key_id: str = TEST_ACCESS_KEY_ID,
        secret_access_key: str = TEST_SECRET_ACCESS_KEY,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
        preexec_fn: Callable[[], None] | None = None,
        ca_bundle: Path | None = None,
    ) -> None:
        self._tmp = None if data_dir is not None else tempfile.TemporaryDirectory(prefix="strongroom-")
        self.data_dir = data_dir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.database_url = database_url
        self.dev = dev
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.extra_args = extra_args or []
        self.extra_env = env or {}
        self.port = port or free_port()
        self.preexec_fn = preexec_fn  # runs in the child before exec: e.g. resource limits for fault tests
        # Given when the server serves TLS (--tls-cert in extra_args): the CA its certificate is
        # checked against; the endpoint is then https.
        self.ca_bundle = ca_bundle
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.ca_bundle else 'http'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        args = [sys.executable, "-m", "strongroom.cli.main", "serve", "--port", str(self.port)]
        if self.dev:
            args.append("--dev")
        else:
            args += ["--data-dir", str(self.data_dir)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        args += self.extra_args
        env = dict(os.environ)
        env.update(
            STRONGROOM_ADMIN_ACCESS_KEY_ID=self.access_key_id, STRONGROOM_ADMIN_SECRET_ACCESS_KEY=self.secret_access_key
        )
        env.update(self.extra_env)
        # Open for the server's whole life, so no ``with``: _cleanup closes it.
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, env=env, preexec_fn=self.preexec_fn
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.stop()
                output = self.log()
                self._cleanup()
                raise RuntimeError(f"strongroom exited with {code}:\n{output}")
            if self.healthy():
                return self
            time.sleep(0.05)
        self.stop()
        output = self.log()
        self._cleanup()
        raise RuntimeError(f"strongroom did not become healthy in {timeout}s:\n{output}")

    def healthy(self) -> bool:
        import ssl

        context = ssl.create_default_context(cafile=str(self.ca_bundle)) if self.ca_bundle else None
        try:
            with urllib.request.urlopen(f"{self.endpoint}/_strongroom/health", timeout=1, context=context) as r:
                status: int = r.status  # urlopen's answer is untyped (an HTTPResponse here)
                return status == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        self._log.close()
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def client(self, service: str = "secretsmanager", region: str = "us-east-1", **kwargs: Any) -> Any:
        import boto3
        from botocore.config import Config

        # boto3's stubs type a client per literal service name; a name chosen at run time gets
        # the untyped one.
        make_client: Callable[..., Any] = boto3.client
        return make_client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(retries={"max_attempts": 1}),
            **({"verify": str(self.ca_bundle)} if self.ca_bundle else {}),
            **kwargs,
        )

    def aws_environment(self) -> dict[str, str]:
        """The variables that point any AWS SDK or tool at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            **({"AWS_CA_BUNDLE": str(self.ca_bundle)} if self.ca_bundle else {}),
        }

    def session(self, region: str = "us-east-1") -> Any:
        """A boto3 session whose clients reach this server (pass ``endpoint_url``, or set
        ``AWS_ENDPOINT_URL`` from :meth:`aws_environment`)."""
        import boto3

        return boto3.Session(
            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key, region_name=region
        )

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
