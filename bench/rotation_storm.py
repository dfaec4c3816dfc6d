"""Rotation storm (issue 6): N secrets rotated at once by the built-in PostgreSQL rotator, while
wrk measures GetSecretValue.

    .venv/bin/python bench/rotation_storm.py [--secrets 1000] [--seconds-limit 120] [--mode rotate|due]
        [--concurrency 4] [--baseline-seconds 10] [--window 5] [--no-reads] [--py-spy FILE]

What it does, in order:

1. Creates N PostgreSQL login roles on 127.0.0.1:5432 (database ``test``), named with a prefix
   unique to the run (``storm_<8 hex>_``); they are all dropped at the end, on failure too.
2. Starts a strongroom server (SQLite, a temporary data directory) pinned to core 0, as
   bench/bench.py does; the rotation worker processes it starts inherit that pinning. The
   engine runs ``--concurrency`` rotations at once (``STRONGROOM_ROTATION_CONCURRENCY``; the
   server's default is 1; 0 here leaves it at that).
3. Creates N secrets holding the roles' credentials in AWS's JSON shape (single user).
4. Measures GetSecretValue with wrk on core 1 (the baseline, ``--baseline-seconds``).
5. Starts the storm:

   - ``--mode rotate`` (default, API only): strongroom has no API to make N secrets fall due at
     one moment (no clock that can be advanced in a server process), so N RotateSecret calls
     (``strongroom-postgresql-single-user``, ``AutomaticallyAfterDays=30``, RotateImmediately)
     are fired from 64 client threads as fast as the server takes them. The clock starts at the
     first call.
   - ``--mode due``: the scheduler's path. The server is stopped after the secrets are created,
     and each secret's rotation configuration (function, ``AutomaticallyAfterDays=30``, enabled)
     and its chosen moment (``rotation_due_at``) are written straight into its SQLite file, all
     the same instant, a little after the restart and the baseline; the engine then finds them
     due by itself. The clock starts at that instant.

6. While the storm runs, wrk measures GetSecretValue in consecutive windows (``--window``
   seconds, each request signed just before its window); progress is read from the server's
   SQLite file (the ``rotations`` table that ``strongroom rotation history`` shows; a read-only
   connection, so the server does not pay for the polling) every 0.25 s.
7. When every rotation has ended (succeeded or finally failed), or at ``--seconds-limit``: checks
   every secret through the API (a new AWSCURRENT, the old version under AWSPREVIOUS, no
   AWSPENDING) and that the role's SCRAM verifier in ``pg_authid`` matches the new password and
   not the old one (PostgreSQL here trusts loopback, so a login would prove nothing).

CPU time of the server and of its worker processes over the storm is read from ``/proc``.
``--no-reads`` runs the storm without wrk (the engine alone); ``--py-spy FILE`` records a
profile of the server and its workers during the storm.

Results: a table on stdout and ``bench/results/rotation-storm-<time>.json``. The run stops by
itself: a hard timeout (``--hard-timeout``, default from the limit and N) interrupts it, and a
watchdog thread ends the process 60 s after that if the interruption could not.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import http.client
import json
import os
import secrets as pysecrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import KEY, PY, ROOT, SECRET, check, free_port, machine, process, signed, stop, wrk

PG = "postgresql://postgres@127.0.0.1:5432/test"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:strongroom-postgresql-single-user"
RULES = {"AutomaticallyAfterDays": 30}


class HardTimeout(Exception):
    pass


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU time (user + system) of the server process and, summed, of its live children (the
    rotation workers: they stay alive, warm, for 15 minutes)."""

    def one(p: int) -> float:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / TICK

    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            children.update(int(c) for c in (task / "children").read_text().split())
    return {"server": one(pid), "workers": sum(one(c) for c in children), "worker_count": len(children)}


# ------------------------------------------------------------------------------ PostgreSQL roles


def create_roles(prefix: str, count: int) -> dict[str, str]:
    """N login roles with random first passwords; {role: password}."""
    import psycopg
    from psycopg import sql

    roles = {f"{prefix}{i:05d}": "first-" + pysecrets.token_urlsafe(18) for i in range(count)}
    with psycopg.connect(PG) as conn:  # one transaction
        for role, password in roles.items():
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
            )
    return roles


def drop_roles(prefix: str) -> int:
    import psycopg
    from psycopg import sql

    pattern = prefix.replace("_", r"\_") + "%"
    with psycopg.connect(PG, autocommit=True) as conn:
        names = [r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (pattern,))]
        for name in names:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
    return len(names)


def verifiers(prefix: str) -> dict[str, str | None]:
    import psycopg

    pattern = prefix.replace("_", r"\_") + "%"
    with psycopg.connect(PG) as conn:
        return dict(
            conn.execute("SELECT rolname, rolpassword FROM pg_authid WHERE rolname LIKE %s", (pattern,)).fetchall()
        )


# ------------------------------------------------------------------------------------ the API


class Client:
    """Signed JSON calls on one keep-alive connection per thread."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        host, port = endpoint.split("//")[1].split(":")
        self.host, self.port = host, int(port)
        self.local = threading.local()

    def call(self, target: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        request = signed(self.endpoint, "secretsmanager." + target, body)
        try:
            conn.request("POST", "/", body=request.body, headers=dict(request.headers))
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            raise
        return response.status, (json.loads(data) if data else {})


def parallel(fn: Any, items: list[Any], threads: int = 64) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, items))


# -------------------------------------------------------------------------------- progress


class Progress(threading.Thread):
    """Reads the rotations table every 0.25 s (read-only) until every secret's rotation ended."""

    def __init__(self, db_path: str, count: int, started: float, limit: float) -> None:
        super().__init__(daemon=True)
        self.db_path, self.count, self.started, self.limit = db_path, count, started, limit
        self.finished: float | None = None  # wall time when the last rotation ended
        self.timeline: list[dict[str, Any]] = []
        self.loads: list[list[float]] = []
        self.stop = threading.Event()
        self.counts: dict[str, int] = {}

    def snapshot(self) -> dict[str, int]:
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
        try:
            return dict(conn.execute("SELECT state, count(*) FROM rotations GROUP BY state").fetchall())
        finally:
            conn.close()

    def run(self) -> None:
        last_sample = 0.0
        while not self.stop.is_set():
            now = time.time()
            try:
                counts = self.snapshot()
            except sqlite3.Error:
                counts = self.counts
            self.counts = counts
            if now - last_sample >= 1.0:
                last_sample = now
                self.timeline.append({"t": round(now - self.started, 2), **counts})
                self.loads.append(loadavg())
            ended = (
                counts.get("succeeded", 0)
                + counts.get("failed", 0)
                + counts.get("abandoned", 0)
                + counts.get("cancelled", 0)
            )
            if ended >= self.count and self.finished is None:
                self.finished = now
                self.timeline.append({"t": round(now - self.started, 2), **counts})
                return
            if now - self.started > self.limit:
                return
            self.stop.wait(0.25)


# ----------------------------------------------------------------------------------- the run


def server(port: int, data_dir: str, concurrency: int, function_cpus: str | None = None) -> Any:
    args = [PY, "-m", "strongroom.cli.main", "serve", "--port", str(port), "--data-dir", data_dir]
    env = {"STRONGROOM_ADMIN_ACCESS_KEY_ID": KEY, "STRONGROOM_ADMIN_SECRET_ACCESS_KEY": SECRET}
    if concurrency:
        env["STRONGROOM_ROTATION_CONCURRENCY"] = str(concurrency)
    if function_cpus:
        env["STRONGROOM_FUNCTION_CPUS"] = function_cpus
    return process(args, f"http://127.0.0.1:{port}/_strongroom/health", env)


def gsv_request(endpoint: str) -> Any:
    return signed(endpoint, "secretsmanager.GetSecretValue", {"SecretId": "storm-gsv-target"})


def run(opts: argparse.Namespace, prefix: str, out: dict[str, Any]) -> None:
    n = opts.secrets
    print(f"creating {n} PostgreSQL roles {prefix}*", flush=True)
    t = time.monotonic()
    roles = create_roles(prefix, n)
    out["setup"] = {"roles_seconds": round(time.monotonic() - t, 1)}
    names = {role: f"storm/{role}" for role in roles}

    with tempfile.TemporaryDirectory(prefix="bench-storm-") as data_dir:
        db_path = f"{data_dir}/strongroom.db"
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        api = Client(endpoint)
        stack = contextlib.ExitStack()
        with stack:
            pid = stack.enter_context(server(port, data_dir, opts.concurrency, opts.function_cpus))
            check(
                endpoint,
                signed(
                    endpoint,
                    "secretsmanager.CreateSecret",
                    {"Name": "storm-gsv-target", "SecretString": "x" * 100, "ClientRequestToken": str(uuid.uuid4())},
                ),
            )

            def create(role: str) -> str:
                status, body = api.call(
                    "CreateSecret",
                    {
                        "Name": names[role],
                        "ClientRequestToken": str(uuid.uuid4()),
                        "SecretString": json.dumps(
                            {
                                "engine": "postgres",
                                "host": "127.0.0.1",
                                "port": 5432,
                                "username": role,
                                "password": roles[role],
                                "dbname": "test",
                                "ssl": False,
                            }
                        ),
                    },
                )
                assert status == 200, (status, body)
                return str(body["VersionId"])

            t = time.monotonic()
            first_versions = dict(zip(roles, parallel(create, list(roles)), strict=False))
            out["setup"]["create_secrets_seconds"] = round(time.monotonic() - t, 1)
            print(f"created {n} secrets in {out['setup']['create_secrets_seconds']} s", flush=True)

            if opts.mode == "due":
                stack.close()  # stop the server; write the schedule into its file; start it again
                due = time.time() + opts.baseline_seconds + 20
                conn = sqlite3.connect(db_path)
                with conn:
                    conn.execute(
                        "UPDATE secrets SET rotation_enabled = 1, rotation_lambda_arn = ?, rotation_rules = ?, "
                        "rotation_due_at = ?, next_rotation_date = ? WHERE name LIKE 'storm/%'",
                        (FUNCTION, json.dumps(RULES), due, due),
                    )
                conn.close()
                stack = contextlib.ExitStack()  # closed in the finally below
                pid = stack.enter_context(server(port, data_dir, opts.concurrency, opts.function_cpus))
                api = Client(endpoint)

            try:
                out["server_pid"] = pid
                print(f"server PID {pid} (core 0)", flush=True)
                out["load_before"] = loadavg()
                print(f"baseline GetSecretValue, {opts.baseline_seconds} s (load {out['load_before']})", flush=True)
                check(endpoint, gsv_request(endpoint))
                out["gsv_baseline"] = wrk(endpoint, gsv_request(endpoint), opts.baseline_seconds)
                print(f"  {out['gsv_baseline']}", flush=True)

                if opts.mode == "due":
                    if time.time() >= due:
                        raise RuntimeError("the storm fell due before the baseline ended; raise the margin")
                    time.sleep(max(0.0, due - time.time() - 0.5))
                    started = due
                else:
                    started = time.time()
                progress = Progress(db_path, n, started, opts.seconds_limit)
                progress.start()
                cpu_before = cpu_seconds(pid)
                spy = None
                if opts.py_spy:  # the server and its rotation workers, for the storm's length
                    spy = subprocess.Popen(
                        [
                            str(Path(PY).parent / "py-spy"),
                            "record",
                            "--subprocesses",
                            "-p",
                            str(pid),
                            "-f",
                            "raw" if opts.py_spy.endswith(".txt") else "flamegraph",
                            "-o",
                            opts.py_spy,
                            "-d",
                            str(int(opts.seconds_limit) + 5),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                fire: dict[str, Any] = {}
                if opts.mode == "rotate":

                    def rotate(role: str) -> tuple[int, str]:
                        status, body = api.call(
                            "RotateSecret",
                            {
                                "SecretId": names[role],
                                "ClientRequestToken": str(uuid.uuid4()),
                                "RotationLambdaARN": FUNCTION,
                                "RotationRules": RULES,
                            },
                        )
                        return status, body.get("__type", "") or body.get("VersionId", "")

                    firing = {}

                    def fire_all() -> None:
                        results = parallel(rotate, list(roles))
                        firing["seconds"] = round(time.time() - started, 2)
                        firing["errors"] = [r for r in results if r[0] != 200][:20]
                        firing["error_count"] = sum(1 for r in results if r[0] != 200)

                    thread = threading.Thread(target=fire_all, daemon=True)
                    thread.start()
                    fire = firing
                print(f"storm started ({opts.mode}); GetSecretValue in {opts.window} s windows", flush=True)
                windows = []
                while progress.is_alive():
                    begin = time.time() - started
                    if opts.no_reads:  # the storm alone: what rotation costs without a read load
                        progress.join(opts.window)
                        figure = {"rps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "non2xx": 0}
                    else:
                        figure = wrk(endpoint, gsv_request(endpoint), opts.window)
                    end = time.time() - started
                    figure.update({"from_s": round(begin, 1), "to_s": round(end, 1)})
                    windows.append(figure)
                    counts = progress.counts
                    print(
                        f"  t={end:5.1f}s GSV {figure['rps']:7.1f}/s p99 {figure['p99_ms']} ms  "
                        f"rotations {counts}  load {loadavg()}",
                        flush=True,
                    )
                progress.join()
                cpu_after = cpu_seconds(pid)
                if spy is not None:
                    stop(spy, signal.SIGINT, 60)
                if opts.mode == "rotate":
                    thread.join(timeout=60)
                out["load_after"] = loadavg()
                out["storm"] = storm_figures(db_path, n, started, progress, windows, fire)
                out["storm"]["cpu_seconds"] = {
                    "server": round(cpu_after["server"] - cpu_before["server"], 2),
                    "workers": round(cpu_after["workers"] - cpu_before["workers"], 2),
                    "workers_alive": cpu_after["worker_count"],
                    "note": "over the storm plus up to one wrk window after it; the server's share includes "
                    "serving wrk's GetSecretValue",
                }
                print("verifying every secret and its role's stored SCRAM verifier", flush=True)
                out["verification"] = verify(api, roles, names, first_versions, prefix)
            finally:
                stack.close()


def storm_figures(
    db_path: str, n: int, started: float, progress: Progress, windows: list[dict[str, Any]], fire: dict[str, Any]
) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    rows = conn.execute(
        "SELECT r.state, r.attempts, r.finished_date FROM rotations r JOIN secrets s "
        "ON s.id = r.secret_id WHERE s.name LIKE 'storm/%'"
    ).fetchall()
    steps = conn.execute(
        "SELECT step, count(*), avg(duration_ms), max(duration_ms), "
        "sum(outcome != 'succeeded') FROM rotation_steps GROUP BY step"
    ).fetchall()
    errors = conn.execute(
        "SELECT last_error, count(*) FROM rotations WHERE last_error IS NOT NULL "
        "GROUP BY last_error ORDER BY 2 DESC LIMIT 5"
    ).fetchall()
    conn.close()
    succeeded = sorted(r[2] - started for r in rows if r[0] == "succeeded")
    all_done = progress.finished is not None
    elapsed = (progress.finished if all_done else time.time()) - started
    during = [w for w in windows if progress.finished is None or w["to_s"] <= elapsed + 0.5]
    if not during and windows:
        during = windows[:1]  # a storm shorter than one window: the window it was in
    total_time = sum(w["to_s"] - w["from_s"] for w in during) or 1
    gsv_rps = sum(w["rps"] * (w["to_s"] - w["from_s"]) for w in during) / total_time
    pct = lambda p: round(succeeded[min(len(succeeded) - 1, int(len(succeeded) * p))], 2) if succeeded else None
    return {
        "all_ended": all_done,
        "seconds_to_all": round(elapsed, 2) if all_done else None,
        "seconds_observed": round(elapsed, 2),
        "rotations": len(rows),
        "succeeded": len(succeeded),
        "failed": sum(1 for r in rows if r[0] == "failed"),
        "not_ended": sum(1 for r in rows if r[0] in ("queued", "running")),
        "retried": sum(1 for r in rows if r[1] > 1),
        "rate_per_s": round(len(succeeded) / elapsed, 2) if elapsed > 0 else None,
        "finished_at_s": {"p50": pct(0.5), "p90": pct(0.9), "last": succeeded[-1] if succeeded else None},
        "steps": {s[0]: {"count": s[1], "avg_ms": round(s[2], 1), "max_ms": s[3], "failed": s[4]} for s in steps},
        "errors": [{"error": e[0][:300], "count": e[1]} for e in errors],
        "rotate_secret_calls": fire or None,
        "gsv_windows": windows,
        "gsv_during_rps": round(gsv_rps, 1),
        "gsv_during_min_window_rps": min((w["rps"] for w in during), default=None),
        "gsv_during_non2xx": sum(w["non2xx"] for w in windows),
        "timeline": progress.timeline,
        "load_during": progress.loads,
    }


def verify(
    api: Client, roles: dict[str, str], names: dict[str, str], first: dict[str, str], prefix: str
) -> dict[str, Any]:
    from strongroom.testing.databases import scram_matches

    def one(role: str) -> tuple[str, str | None, str]:
        status, described = api.call("DescribeSecret", {"SecretId": names[role]})
        if status != 200:
            return role, None, f"DescribeSecret {status}"
        stages = described.get("VersionIdsToStages", {})
        current = next((v for v, s in stages.items() if "AWSCURRENT" in s), None)
        if current == first[role]:
            return role, None, "AWSCURRENT did not move"
        if "AWSPREVIOUS" not in stages.get(first[role], []):
            return role, None, "the first version is not AWSPREVIOUS"
        if any("AWSPENDING" in s for s in stages.values()):
            return role, None, "AWSPENDING left"
        status, value = api.call("GetSecretValue", {"SecretId": names[role]})
        if status != 200 or value.get("VersionId") != current:
            return role, None, f"GetSecretValue {status}"
        return role, json.loads(value["SecretString"])["password"], ""

    checked = parallel(one, list(roles), threads=16)
    stored = verifiers(prefix)
    problems: dict[str, int] = {}
    good = 0
    for role, password, problem in checked:
        if not problem:
            verifier = stored.get(role)
            if password is None or password == roles[role]:
                problem = "password unchanged"
            elif not scram_matches(verifier, password):
                problem = "stored verifier does not match the new password"
            elif scram_matches(verifier, roles[role]):
                problem = "stored verifier still matches the old password"
        if problem:
            problems[problem] = problems.get(problem, 0) + 1
        else:
            good += 1
    return {"verified": good, "of": len(roles), "problems": problems}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secrets", type=int, default=1000)
    parser.add_argument("--seconds-limit", type=float, default=120, help="stop waiting for the storm after this")
    parser.add_argument("--mode", choices=("rotate", "due"), default="rotate")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="STRONGROOM_ROTATION_CONCURRENCY for the server (0: the server's default, 1)",
    )
    parser.add_argument(
        "--function-cpus",
        default=None,
        help="STRONGROOM_FUNCTION_CPUS for the server, e.g. 1: the rotation workers on the load "
        "generator's core instead of the server's (on AWS they run in Lambda, elsewhere)",
    )
    parser.add_argument("--baseline-seconds", type=int, default=10)
    parser.add_argument("--window", type=int, default=5, help="length of each wrk window during the storm")
    parser.add_argument(
        "--no-reads", action="store_true", help="no GetSecretValue load during the storm (the rotation engine alone)"
    )
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        help="record a py-spy flame graph (.svg; .txt: collapsed stacks) of the server and "
        "its workers during the storm (it costs CPU: the figures are then not comparable)",
    )
    parser.add_argument(
        "--hard-timeout",
        type=float,
        default=None,
        help="end the whole run after this many seconds (default: limit + 240 + N/10)",
    )
    opts = parser.parse_args()
    hard = opts.hard_timeout or opts.seconds_limit + 240 + opts.secrets / 10

    def alarm(*_: Any) -> None:
        raise HardTimeout(f"hard timeout of {hard:.0f} s")

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(hard))
    prefix = f"storm_{uuid.uuid4().hex[:8]}_"

    def watchdog() -> None:  # the alarm could not interrupt the run: drop the roles, end the process
        time.sleep(hard + 60)
        print("watchdog: the run did not stop after its hard timeout; ending it", file=sys.stderr, flush=True)
        with contextlib.suppress(Exception):
            drop_roles(prefix)
        os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()
    out: dict[str, Any] = {
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).isoformat(),
        "secrets": opts.secrets,
        "mode": opts.mode,
        "seconds_limit": opts.seconds_limit,
        "rotator": FUNCTION.rsplit(":", 1)[1],
        "storage": "sqlite",
        "rotation_concurrency": opts.concurrency or "server default",
        "function_cpus": opts.function_cpus or "the server's (core 0)",
        "rotation_env": {k: v for k, v in os.environ.items() if k.startswith("STRONGROOM_ROTATION")},
        "role_prefix": prefix,
    }
    error = None
    try:
        run(opts, prefix, out)
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        out["error"] = error
        print(f"run failed: {error}", file=sys.stderr, flush=True)
    finally:
        signal.alarm(0)
        out["roles_dropped"] = drop_roles(prefix)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    path = results / f"rotation-storm-{dt.datetime.now():%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(out, indent=2))
    report(out)
    print(f"\nroles dropped: {out['roles_dropped']}\nresults: {path}")
    if error:
        sys.exit(1)


def report(out: dict[str, Any]) -> None:
    s, v, b = out.get("storm"), out.get("verification"), out.get("gsv_baseline")
    if not s or not b:
        return
    ratio = s["gsv_during_rps"] / b["rps"] if b["rps"] else 0
    target = s["all_ended"] and s["seconds_to_all"] <= 60 and ratio >= 0.5 and s["failed"] == 0
    rows = [
        ("secrets rotated (mode)", f"{out['secrets']:,} ({out['mode']})"),
        ("rotation concurrency", f"{out['rotation_concurrency']} (STRONGROOM_ROTATION_CONCURRENCY)"),
        ("rotation workers' CPUs", f"{out['function_cpus']} (STRONGROOM_FUNCTION_CPUS)"),
        (
            "time until all rotated",
            f"{s['seconds_to_all']} s" if s["all_ended"] else f"not all within {s['seconds_observed']} s",
        ),
        ("succeeded / failed / not ended", f"{s['succeeded']} / {s['failed']} / {s['not_ended']}"),
        ("retried rotations", str(s["retried"])),
        ("rotations per second", str(s["rate_per_s"])),
        (
            "finished at p50 / p90 / last",
            f"{s['finished_at_s']['p50']} / {s['finished_at_s']['p90']} / {s['finished_at_s']['last']} s",
        ),
        (
            "verified (labels + SCRAM verifier)",
            f"{v['verified']} of {v['of']}" + (f" {v['problems']}" if v and v["problems"] else "") if v else "-",
        ),
        ("GetSecretValue baseline", f"{b['rps']:,.0f}/s (p99 {b['p99_ms']} ms)"),
        (
            "GetSecretValue during storm",
            f"{s['gsv_during_rps']:,.0f}/s ({ratio:.0%}; lowest window "
            f"{s['gsv_during_min_window_rps']:,.0f}/s), non-2xx {s['gsv_during_non2xx']}",
        ),
        (
            "CPU during storm: server / workers",
            f"{s['cpu_seconds']['server']} s / {s['cpu_seconds']['workers']} s "
            f"({s['cpu_seconds']['workers_alive']} workers)",
        ),
        ("load average before / after", f"{out.get('load_before')} / {out.get('load_after')}"),
        ("issue 6 target (all ≤ 60 s, GSV ≥ 50%, no failure)", "met" if target else "NOT met"),
    ]
    print("\n| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print("\n| step | count | avg ms | max ms | failed |\n|---|---:|---:|---:|---:|")
    for step, f in s["steps"].items():
        print(f"| {step} | {f['count']} | {f['avg_ms']} | {f['max_ms']} | {f['failed']} |")


if __name__ == "__main__":
    main()
