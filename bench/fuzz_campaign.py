#!/usr/bin/env python
"""The fuzz campaign's command line; the campaign itself (what it sends and what it checks) is
``strongroom.testing.fuzz``, whose docstring says it all.

Request ``i`` of seed ``s`` is always the same request, so any finding is replayed with
``--seed s --replay i``. Run::

    .venv/bin/python bench/fuzz_campaign.py --requests 100000 --seed 1
    .venv/bin/python bench/fuzz_campaign.py --seed 1 --replay 4242      # print and resend one

Without ``--endpoint`` the script starts its own server (SQLite in a temporary directory, or
``--database-url postgresql://...``) and stops it at the end. It exits 1 on any finding.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from strongroom.testing.fuzz import KINDS, Canary, Context, Report, execute, generate, judge, run_campaign
from strongroom.testing.fuzz.runner import _rss_mb

# --------------------------------------------------------------------------------------- CLI


def _main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="first request index (to resume or split a campaign)")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument(
        "--endpoint",
        help="an already running server (default: start one); needs "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of its administrator",
    )
    parser.add_argument(
        "--database-url",
        help="start the server on this database instead of SQLite (PostgreSQL: in a fresh schema, dropped afterwards)",
    )
    parser.add_argument("--kind", action="append", help="only these kinds: " + ", ".join(k for k, _, _ in KINDS))
    parser.add_argument("--check-every", type=int, default=10_000, help="health and canary check interval (requests)")
    parser.add_argument("--max-seconds", type=float, default=4 * 3600, help="stop after this long whatever the count")
    parser.add_argument("--report", type=Path, help="write the full report (JSON) here")
    parser.add_argument("--findings", type=Path, help="append each finding (JSON lines) here as it happens")
    parser.add_argument("--replay", type=int, help="print request N of --seed, send it once, print the answer")
    args = parser.parse_args()
    # SIGTERM (a plain kill) stops the campaign cleanly: its server is stopped, its schema dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    server = None
    schema = contextlib.ExitStack()
    if args.endpoint:
        from urllib.parse import urlsplit

        url = urlsplit(args.endpoint)
        host, port = url.hostname or "127.0.0.1", url.port or 80
        key, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
        endpoint = args.endpoint
    else:
        from strongroom.testing import ServerProcess, postgres_schema

        database_url = args.database_url
        if database_url and database_url.startswith("postgresql"):  # a fresh schema, dropped afterwards
            database_url = schema.enter_context(postgres_schema(database_url))
        server = ServerProcess(database_url=database_url).start()
        host, port, key, secret, endpoint = (
            "127.0.0.1",
            server.port,
            server.access_key_id,
            server.secret_access_key,
            server.endpoint,
        )
        print(f"server pid {server.proc.pid} on {endpoint}, log {server.log_path}", flush=True)  # type: ignore[union-attr]
    ctx = Context(host, port, key, secret)
    try:
        if args.replay is not None:
            case = generate(args.seed, args.replay, ctx, args.kind[0] if args.kind else None)
            print(json.dumps({k: v for k, v in case.describe().items() if k != "raw_base64"}, indent=2))
            raw = case.raw(close=case.mode != "keepalive")
            print(raw[:4000].decode("latin-1") + (f"\n... ({len(raw)} bytes)" if len(raw) > 4000 else ""))
            outcome = execute(case, (host, port))
            print(f"\n--> {outcome.status} {outcome.error or ''} {outcome.headers}\n{outcome.body[:2000]!r}")
            problems = judge(case, outcome)
            print("problems:", problems or "none")
            return 1 if problems else 0
        canary_name = f"fuzz-canary/{args.seed}-{uuid.uuid4().hex[:12]}"
        ctx.canary = canary_name
        canary = Canary(endpoint, key, secret, canary_name)
        canary.create()
        findings_file = open(args.findings, "a") if args.findings else None  # noqa: SIM115

        def on_finding(finding: dict[str, Any]) -> None:
            if findings_file is not None:
                findings_file.write(json.dumps(finding) + "\n")
                findings_file.flush()
            print(
                f"FINDING #{finding['index']} {finding['kind']}/{finding['detail']} {finding['service']}."
                f"{finding['operation']}: {finding['problems']}  replay: {finding['replay']}",
                flush=True,
            )

        def progress(report: Report, entry: dict[str, Any]) -> None:
            print(
                f"[{entry['seconds']:7.1f}s] {entry['after']:>8} requests, {report.finding_count} findings, "
                f"healthy={entry['healthy']} canary={entry.get('canary_intact')} rss={entry.get('server_rss_mb')}MB "
                f"statuses={dict(sorted(report.statuses.items()))}",
                flush=True,
            )

        pid = server.proc.pid if server is not None and server.proc is not None else None
        rss_before = _rss_mb(pid) if pid else None
        report = run_campaign(
            ctx,
            args.seed,
            args.requests,
            workers=args.workers,
            canary=canary,
            check_every=args.check_every,
            max_seconds=args.max_seconds,
            progress=progress,
            kinds=args.kind,
            start=args.start,
            server_pid=pid,
            on_finding=on_finding,
        )
        if server is not None:
            log = server.log()
            report.server = {
                "alive": server.proc is not None and server.proc.poll() is None,
                "rss_mb_before": rss_before,
                "rss_mb_after": _rss_mb(pid) if pid else None,
                "log_internal_errors": log.count("internal error in request"),
                "log_tracebacks": log.count("Traceback (most recent call last)"),
                "storage": "postgresql" if args.database_url else "sqlite",
            }
        summary = report.summary()
        if args.report:
            args.report.write_text(json.dumps(summary, indent=2, default=str))
        print(json.dumps({k: v for k, v in summary.items() if k not in ("first_findings", "details")}, indent=2))
        print("OK" if report.ok else "FINDINGS", flush=True)
        return 0 if report.ok else 1
    finally:
        if server is not None:
            server.stop()
            server._cleanup()
        schema.close()


if __name__ == "__main__":
    sys.exit(_main())
