"""Running a campaign: cases sent by worker threads, findings and a report."""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

from strongroom.testing.fuzz.checks import Canary, classify, healthy, judge
from strongroom.testing.fuzz.generate import generate
from strongroom.testing.fuzz.requests import Case
from strongroom.testing.fuzz.transport import Outcome, execute
from strongroom.testing.fuzz.values import Context

# ------------------------------------------------------------------------------------ runner


@dataclasses.dataclass
class Report:
    seed: int
    requests: int = 0
    duration: float = 0.0
    statuses: collections.Counter[Any] = dataclasses.field(default_factory=collections.Counter)
    answers: collections.Counter[Any] = dataclasses.field(default_factory=collections.Counter)
    kinds: collections.Counter[Any] = dataclasses.field(default_factory=collections.Counter)
    details: collections.Counter[Any] = dataclasses.field(default_factory=collections.Counter)
    services: collections.Counter[Any] = dataclasses.field(default_factory=collections.Counter)
    operations: collections.Counter[Any] = dataclasses.field(default_factory=collections.Counter)
    findings: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    finding_count: int = 0
    client_errors: collections.Counter[Any] = dataclasses.field(default_factory=collections.Counter)
    client_error_indices: list[int] = dataclasses.field(default_factory=list)
    latencies: list[float] = dataclasses.field(default_factory=list)
    checks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    canary_intact: bool | None = None
    healthy_at_end: bool | None = None
    server: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.finding_count == 0
            and self.canary_intact is not False
            and self.healthy_at_end is not False
            and all(c["healthy"] and c.get("canary_intact", True) for c in self.checks)
        )

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else 0.0

        return {
            "seed": self.seed,
            "requests": self.requests,
            "duration_seconds": round(self.duration, 1),
            "requests_per_second": round(self.requests / self.duration, 1) if self.duration else None,
            "findings": self.finding_count,
            "canary_intact": self.canary_intact,
            "healthy_at_end": self.healthy_at_end,
            "generator_errors": dict(self.client_errors),
            "generator_error_indices": self.client_error_indices[:20],
            "statuses": dict(sorted(self.statuses.items())),
            "answers": dict(self.answers.most_common()),
            "kinds": dict(self.kinds.most_common()),
            "details": dict(self.details.most_common()),
            "services": dict(self.services.most_common()),
            "operations_covered": len(self.operations),
            "latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
            "checks": self.checks,
            "server": self.server,
            "first_findings": self.findings[:50],
        }


def run_campaign(
    ctx: Context,
    seed: int,
    requests: int,
    *,
    workers: int = 16,
    slow_workers: int = 48,
    canary: Canary | None = None,
    check_every: int = 10_000,
    max_seconds: float | None = None,
    progress: Any = None,
    kinds: list[str] | None = None,
    start: int = 0,
    server_pid: int | None = None,
    on_finding: Any = None,
    slow_bytes: int = 50,
) -> Report:
    """Send requests ``start .. start+requests-1`` of ``seed`` with ``workers`` threads; check as they come."""
    address = (ctx.host, ctx.port)
    report = Report(seed)
    before = canary.snapshot() if canary is not None else None
    lock = threading.Lock()
    next_index = [start]
    stop = threading.Event()
    began = time.monotonic()
    slow_pool = concurrent.futures.ThreadPoolExecutor(slow_workers, thread_name_prefix="fuzz-slow")
    slow_pending = threading.BoundedSemaphore(slow_workers * 4)
    done_count = [0]

    def record(case: Case, outcome: Outcome) -> None:
        problems = judge(case, outcome)
        with lock:
            report.requests += 1
            report.kinds[case.kind] += 1
            report.details[f"{case.kind}/{case.detail}"] += 1
            report.services[case.service or "-"] += 1
            if case.operation:
                report.operations[f"{case.service}.{case.operation}"] += 1
            report.statuses[str(outcome.status) if outcome.status is not None else f"none:{outcome.error}"] += 1
            report.answers[classify(outcome)] += 1
            if case.mode == "normal":
                report.latencies.append(outcome.elapsed)
            if problems:
                report.finding_count += 1
                finding = {
                    **case.describe(),
                    "problems": problems,
                    "status": outcome.status,
                    "answer": outcome.body[:500].decode("utf-8", "replace"),
                    "replay": f"bench/fuzz_campaign.py --seed {seed} --replay {case.index}"
                    + (f" --kind {case.kind}" if kinds else ""),
                }
                if len(report.findings) < 1000:
                    report.findings.append(finding)
                if on_finding is not None:
                    on_finding(finding)
            done_count[0] += 1

    def slow_job(case: Case) -> None:
        try:
            record(case, execute(case, address, slow_bytes=slow_bytes))
        finally:
            slow_pending.release()

    def worker() -> None:
        while not stop.is_set():
            with lock:
                i = next_index[0]
                if i >= start + requests:
                    return
                next_index[0] += 1
            kind = None if not kinds else kinds[i % len(kinds)]
            try:
                case = generate(seed, i, ctx, kind)
            except Exception as exc:  # noqa: BLE001 - a finding, reported, never a crash of the campaign
                with lock:
                    report.client_errors[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
                    report.client_error_indices.append(i)
                continue
            if case.mode in ("slow", "truncate-halfclose"):
                slow_pending.acquire()
                slow_pool.submit(slow_job, case)
                continue
            record(case, execute(case, address, slow_bytes=slow_bytes))

    def check() -> None:
        entry: dict[str, Any] = {
            "after": done_count[0],
            "seconds": round(time.monotonic() - began, 1),
            "healthy": healthy(address),
        }
        if canary is not None:
            try:
                entry["canary_intact"] = canary.snapshot() == before
            except Exception as exc:  # noqa: BLE001 - a finding, reported, never a crash of the campaign
                entry["canary_intact"] = False
                entry["canary_error"] = repr(exc)[:300]
        if server_pid is not None:
            entry["server_rss_mb"] = _rss_mb(server_pid)
        report.checks.append(entry)
        if progress is not None:
            progress(report, entry)

    threads = [threading.Thread(target=worker, name=f"fuzz-{n}", daemon=True) for n in range(workers)]
    for t in threads:
        t.start()
    next_check = check_every
    try:
        while any(t.is_alive() for t in threads):
            time.sleep(0.2)
            if max_seconds is not None and time.monotonic() - began > max_seconds:
                stop.set()
            if check_every and done_count[0] >= next_check:
                next_check += check_every
                check()
    except BaseException:  # interrupted: let the workers stop before the caller cleans up
        stop.set()
        slow_pool.shutdown(wait=False, cancel_futures=True)
        raise
    slow_pool.shutdown(wait=True)
    report.duration = time.monotonic() - began
    report.healthy_at_end = healthy(address)
    if canary is not None:
        after = canary.snapshot()
        report.canary_intact = after == before
        if not report.canary_intact:
            report.findings.append({"problems": ["canary changed"], "before": before, "after": after})
            report.finding_count += 1
    return report


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None
