"""Importing N secrets into strongroom (issue 16): secrets copied a second.

    .venv/bin/python bench/migration.py [--secrets 10000] [--versions 2] [--jobs 4]
        [--source moto|strongroom] [--timeout 3600]

What it does, in order:

1. Starts the source on loopback: moto's server (``moto_server``, the default), or a second
   strongroom server (``--source strongroom``: the figure without moto's own cost, which grows
   with the number of secrets it holds: moto finds a secret by scanning them all).
2. Fills it with N secrets of ``--versions`` versions each (the newest AWSCURRENT, the one
   before AWSPREVIOUS), 100-byte values, one tag each, from 16 client threads (not timed).
3. Starts the target: a strongroom server on SQLite in a temporary data directory (durable
   commits, every request signed, authorized and audited, as in production).
4. Runs ``strongroom import secretsmanager --jobs J --report FILE`` as a user would, and times it
   from start to exit: the first run copies everything; the second, on the same target, is the
   idempotent re-run (reads both sides, writes nothing). Both must end with exit 0 and the
   report's counts all ``created``, then all ``unchanged``.
5. Checks a sample of 100 secrets on the target against the source (version ids, labels, values).

Servers are pinned to core 0 and the import to core 1 when ``taskset`` exists (as bench/bench.py
does). Results: a table on stdout and ``bench/results/migration-<time>.json``. Each step has a
bound (``--timeout`` for each import run); the servers are stopped by their PIDs at the end, on
failure too.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from strongroom.testing import ServerProcess, free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def _pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") else []


def _client(endpoint: str, key: str = "testing", secret: str = "testing") -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=32),
    )


def fill(sm: Any, count: int, versions: int) -> None:
    def one(i: int) -> None:
        name = f"bench/{i:06d}"
        sm.create_secret(Name=name, SecretString=f"{i:06d}" + "x" * 94, Tags=[{"Key": "n", "Value": str(i)}])
        for v in range(1, versions):
            sm.put_secret_value(SecretId=name, SecretString=f"{i:06d}-{v}" + "y" * 92)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for future in concurrent.futures.as_completed([pool.submit(one, i) for i in range(count)]):
            future.result()


def timed_import(
    source: str, key: tuple[str, str], target: ServerProcess, jobs: int, report: Path, timeout: float
) -> dict[str, Any]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRONGROOM_"))},
        "AWS_ACCESS_KEY_ID": key[0],
        "AWS_SECRET_ACCESS_KEY": key[1],
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "STRONGROOM_ACCESS_KEY_ID": target.access_key_id,
        "STRONGROOM_SECRET_ACCESS_KEY": target.secret_access_key,
    }
    args = [
        *_pin(1),
        PY,
        "-m",
        "strongroom.cli.main",
        "import",
        "secretsmanager",
        "--source-endpoint-url",
        source,
        "--source-region",
        "us-east-1",
        "--endpoint-url",
        target.endpoint,
        "--jobs",
        str(jobs),
        "--report",
        str(report),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"the import failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    counts = json.loads(report.read_text())["counts"]
    # The import command's own CPU time (the servers are not its children): how much of the
    # wall time is the client's work rather than the servers'.
    return {"seconds": round(seconds, 2), "client_cpu_s": round(cpu, 2), "counts": counts}


def check_sample(source: Any, target: Any, count: int) -> None:
    for i in range(0, count, max(1, count // 100)):
        name = f"bench/{i:06d}"
        a = source.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
        b = target.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
        stages = {v["VersionId"]: sorted(v["VersionStages"]) for v in a}
        assert stages == {v["VersionId"]: sorted(v["VersionStages"]) for v in b}, name
        for version_id in stages:
            want = source.get_secret_value(SecretId=name, VersionId=version_id)["SecretString"]
            assert target.get_secret_value(SecretId=name, VersionId=version_id)["SecretString"] == want, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secrets", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--source", choices=["moto", "strongroom"], default="moto")
    parser.add_argument("--timeout", type=float, default=3600.0, help="bound on each import run, seconds")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="strongroom-bench-migration-"))
    moto: subprocess.Popen[bytes] | None = None
    source_server: ServerProcess | None = None
    key = ("testing", "testing")
    try:
        if args.source == "moto":
            port = free_port()
            endpoint = f"http://127.0.0.1:{port}"
            moto_bin = shutil.which("moto_server", path=str(Path(PY).parent)) or "moto_server"
            moto = subprocess.Popen(
                [*_pin(0), moto_bin, "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

            def up() -> bool:
                try:
                    with urllib.request.urlopen(endpoint + "/moto-api/", timeout=1):
                        return True
                except OSError:
                    return False

            wait_for(up, 60, "moto_server answering")
            source = _client(endpoint)
        else:
            source_server = ServerProcess(data_dir=work / "source").start()
            endpoint = source_server.endpoint
            key = (source_server.access_key_id, source_server.secret_access_key)
            source = _client(endpoint, *key)
        started = time.monotonic()
        fill(source, args.secrets, args.versions)
        print(f"source: {args.secrets:,} secrets x {args.versions} versions in {time.monotonic() - started:.1f} s")

        with ServerProcess(data_dir=work / "target") as target:
            first = timed_import(endpoint, key, target, args.jobs, work / "first.json", args.timeout)
            second = timed_import(endpoint, key, target, args.jobs, work / "second.json", args.timeout)
            assert first["counts"] == {"created": args.secrets}, first
            assert second["counts"] == {"unchanged": args.secrets}, second
            check_sample(source, _client(target.endpoint, target.access_key_id, target.secret_access_key), args.secrets)
    finally:
        if moto is not None:
            moto.terminate()
            try:
                moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                moto.kill()
                moto.wait()
        if source_server is not None:
            source_server.stop()
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "source": args.source,
        "secrets": args.secrets,
        "versions": args.versions,
        "jobs": args.jobs,
        "first run": first | {"secrets_per_s": round(args.secrets / first["seconds"], 1)},
        "re-run": second | {"secrets_per_s": round(args.secrets / second["seconds"], 1)},
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"migration-{dt.datetime.now():%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2))
    print(
        f"\n| import from {args.source}, {args.secrets:,} secrets x {args.versions} versions, --jobs {args.jobs} "
        "| seconds | secrets/s | import's CPU s |\n|---|---:|---:|---:|"
    )
    for run in ("first run", "re-run"):
        r = result[run]
        print(f"| {run} | {r['seconds']} | {r['secrets_per_s']:,} | {r['client_cpu_s']} |")
    print(f"\nload average {os.getloadavg()}; results: {path}")


if __name__ == "__main__":
    main()
