"""A/B of GetSecretValue between two source trees, alternating, in one run on one machine.

    .venv/bin/python bench/ab.py BASE_PYTHON OTHER_PYTHON [--rounds 4] [--seconds 8]

Each PYTHON is the interpreter of a checkout's own virtualenv (``make setup`` there), e.g. a
``git worktree add /tmp/base <commit>`` of the code before a change. Each round starts a server
from each tree in turn (core 0, a fresh data directory) and measures GetSecretValue with the
administrator key and as an IAM user with a policy, with ``bench/bench.py``'s wrk driver (core 1).
Alternating rounds spreads the machine's drift over both sides; compare medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

# The checkout's root in place of this script's folder: there, bench/bench.py (a plain module
# named ``bench``) would shadow the ``bench`` folder this imports from.
sys.path[0] = str(Path(__file__).resolve().parent.parent)
import bench.bench as b  # noqa: E402 - after the sys.path fix above, which it needs


def measure(python: str, seconds: int) -> dict[str, float]:
    b.PY = python
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as data_dir:
        port = b.free_port()
        endpoint = f"http://127.0.0.1:{port}"
        with b.strongroom(port, data_dir):
            b.check(
                endpoint,
                b.signed(
                    endpoint,
                    "secretsmanager.CreateSecret",
                    {"Name": "bench", "SecretString": "x" * 100, "ClientRequestToken": str(uuid.uuid4())},
                ),
            )
            admin = b.wrk(endpoint, b.signed(endpoint, "secretsmanager.GetSecretValue", {"SecretId": "bench"}), seconds)
            reader = b.iam_user(endpoint, "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-??????")
            request = b.signed(endpoint, "secretsmanager.GetSecretValue", {"SecretId": "bench"}, credentials=reader)
            user = b.wrk(endpoint, request, seconds)
    return {"admin": admin["rps"], "user": user["rps"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("other")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=8)
    opts = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"base": [], "other": []}
    for _ in range(opts.rounds):
        for side, python in (("base", opts.base), ("other", opts.other)):
            runs[side].append(measure(python, opts.seconds))
            print(side, runs[side][-1], flush=True)
    for kind in ("admin", "user"):
        base = statistics.median(r[kind] for r in runs["base"])
        other = statistics.median(r[kind] for r in runs["other"])
        change = 100 * (other / base - 1)
        print(f"GetSecretValue ({kind}): base median {base:,.0f}/s, other {other:,.0f}/s, {change:+.1f}%")


if __name__ == "__main__":
    main()
