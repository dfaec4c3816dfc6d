"""A/B of the server's CPU time per GetSecretValue between two source trees, alternating.

    .venv/bin/python -m bench.cpu_ab BASE_PYTHON OTHER_PYTHON [--rounds 4] [--seconds 5]

Like ``bench/ab.py`` (same servers, same wrk load), but the figure is the server process's own
CPU time (user + system, from /proc/PID/stat) divided by the requests it answered, not requests
per second. On a machine other work is loading, throughput swings by tens of per cent between
runs while CPU time per request moves by a few: it is what the hot path costs, whatever the
neighbours do. Compare medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import uuid

import bench.bench as b

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115 - read at once
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def measure(python: str, seconds: int) -> dict[str, float]:
    b.PY = python
    with tempfile.TemporaryDirectory(prefix="bench-cpu-ab-") as data_dir:
        port = b.free_port()
        endpoint = f"http://127.0.0.1:{port}"
        with b.strongroom(port, data_dir) as pid:
            b.check(
                endpoint,
                b.signed(
                    endpoint,
                    "secretsmanager.CreateSecret",
                    {"Name": "bench", "SecretString": "x" * 100, "ClientRequestToken": str(uuid.uuid4())},
                ),
            )
            request = b.signed(endpoint, "secretsmanager.GetSecretValue", {"SecretId": "bench"})
            b.wrk(endpoint, request, 1)  # warm-up: caches, the first audit files
            before = cpu_seconds(pid)
            result = b.wrk(endpoint, request, seconds)
            used = cpu_seconds(pid) - before
    requests = result["rps"] * seconds
    return {"cpu_us": round(used / requests * 1e6, 1), "rps": result["rps"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("other")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=5)
    opts = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"base": [], "other": []}
    for _ in range(opts.rounds):
        for side, python in (("base", opts.base), ("other", opts.other)):
            runs[side].append(measure(python, opts.seconds))
            print(side, runs[side][-1], flush=True)
    base = statistics.median(r["cpu_us"] for r in runs["base"])
    other = statistics.median(r["cpu_us"] for r in runs["other"])
    print(f"server CPU per GetSecretValue: base median {base:.1f} µs, other {other:.1f} µs, {other / base - 1:+.1%}")


if __name__ == "__main__":
    main()
