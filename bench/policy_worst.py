"""The worst policies one can write within AWS's size quotas, and what evaluating them costs.

    .venv/bin/python bench/policy_worst.py [--budget SECONDS] [--repeat N]

A benchmark, not a test (issue 11 §4): it prints, per case, the time of one ``evaluate()`` call
(the whole decision: identity and resource policies, every statement, pattern and condition) in
microseconds, with today's matcher (strongroom.policy.wildcard) and with the backtracking regular
expression strongroom used before (kept below, clearly marked, for the A/B only). The old matcher
runs in a child process killed after ``--budget`` seconds, because on these inputs it would
otherwise run for days; such a case is reported as "> budget".

The cases are built to the limits: a secret name of 512 characters (Secrets Manager's maximum), a
resource policy of 20,480 characters (PutResourcePolicy's maximum), a user's inline policies of
2,048 characters without white space (IAM's quota), a 2,048-character Description for conditions
(its model maximum), and patterns shaped for the regex's worst case (stars separating a letter the
value repeats, a final character it never reaches) and for the new matcher's (``?``-runs it must
search for at every position).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import statistics
import sys
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import strongroom.policy as engine
from strongroom.policy import Request, evaluate, parse_policy
from strongroom.policy.limits import INLINE_POLICY_LIMITS, RESOURCE_POLICY_LIMIT, iam_size

ACCOUNT = "123456789012"
USER = f"arn:aws:iam::{ACCOUNT}:user/mallory"
PREFIX = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:"


# ---------------------------------------------------------------- OLD MATCHER (A/B only) ----
# strongroom's wildcard matching before issue 11 §4, verbatim: a backtracking regular expression.
@lru_cache(maxsize=8192)
def _old_glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


def old_like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _old_glob(pattern, ignore_case).fullmatch(value) is not None


# ------------------------------------------------------------ END OF OLD MATCHER (A/B only) --


def doc(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))


def fill(make: Callable[[int], str], limit: int, size: Callable[[str], int] = len) -> str:
    """The largest document ``make(n)`` still within ``limit`` (make grows with n)."""
    n = 1
    while size(make(n * 2)) <= limit:
        n *= 2
    low, high = n, n * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if size(make(mid)) <= limit else (low, mid)
    return make(low)


def secret_arn(name: str) -> str:
    return f"{PREFIX}{name}-AbCdEf"


class Case:
    def __init__(self, title: str, identity: list[str], resource: list[str], request: Request) -> None:
        self.title = title
        self.identity, self.resource, self.request = identity, resource, request
        self.sizes = [len(d) for d in identity + resource]

    def run(self, repeat: int) -> float:
        """Median seconds of one evaluate() with the matcher now installed in the engine."""
        identity = [parse_policy(d, kind="identity") for d in self.identity]
        resource = [parse_policy(d, kind="resource") for d in self.resource]
        evaluate(self.request, identity, resource)  # warm the caches, as the server's are
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            evaluate(self.request, identity, resource)
            times.append(time.perf_counter() - start)
        return statistics.median(times)


def request(name: str, description: str = "", action: str = "secretsmanager:GetSecretValue") -> Request:
    arn = secret_arn(name)
    context = {
        "secretsmanager:SecretId": arn,
        "aws:SourceArn": arn,
        "secretsmanager:Name": name,
        "aws:PrincipalArn": USER,
    }
    if description:
        context["secretsmanager:Description"] = description
    return Request(USER, ACCOUNT, action, arn, ACCOUNT, context)


def stars(count: int, last: str = "b") -> str:
    return "*a" * count + "*" + last


def cases() -> list[Case]:
    out = []
    typical_identity = doc(
        [
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": secret_arn("prod/db"),
            }
        ]
    )
    out.append(Case("typical: one user policy, exact ARN (the hot path)", [typical_identity], [], request("prod/db")))
    typical_resource = doc(
        [
            {"Effect": "Allow", "Principal": {"AWS": USER}, "Action": "secretsmanager:Get*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "secretsmanager:*",
                "Resource": "*",
                "Condition": {"StringNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:*"}},
            },
        ]
    )
    out.append(
        Case("typical: resource policy, Get* and a StringNotLike deny", [], [typical_resource], request("prod/db"))
    )

    def one_resource(count: int, name: str) -> Case:
        policy = doc(
            [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": USER},
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": PREFIX + stars(count),
                }
            ]
        )
        return Case(f"issue: {count} wildcards, {len(name)}-character name", [], [policy], request(name))

    out.append(one_resource(5, "a" * 150))
    out.append(one_resource(6, "a" * 500))

    name = "a" * 512

    # 20,480 characters of Resource patterns, each with many stars, none matching.
    def resource_patterns(n: int) -> str:
        return doc(
            [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": USER},
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": [PREFIX + stars(8 + i % 40, "bc"[i % 2]) for i in range(n)],
                }
            ]
        )

    out.append(
        Case(
            "worst resource policy: 20,480 chars of star patterns, 512-char name",
            [],
            [fill(resource_patterns, RESOURCE_POLICY_LIMIT)],
            request(name),
        )
    )

    # 20,480 characters of statements, each with StringLike and ArnLike conditions on long values.
    description = "a" * 2048

    def condition_statements(n: int) -> str:
        return doc(
            [
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "secretsmanager:*",
                    "Resource": "*",
                    "Condition": {
                        "ArnLike": {"aws:SourceArn": f"arn:aws:*:*:*:secret:{stars(10, 'a')}*"},
                        "StringLike": {
                            "secretsmanager:Name": stars(10, "a"),
                            "secretsmanager:Description": stars(12 + i % 20),
                        },
                    },
                }
                for i in range(n)
            ]
        )

    out.append(
        Case(
            "worst conditions: 20,480 chars of StringLike/ArnLike, 2,048-char value",
            [],
            [fill(condition_statements, RESOURCE_POLICY_LIMIT)],
            request(name, description),
        )
    )

    # The new matcher's own worst case: '?'-runs searched at every position of a long value.
    def question_marks(n: int) -> str:
        return doc(
            [
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "secretsmanager:*",
                    "Resource": "*",
                    "Condition": {
                        "StringLike": {
                            "secretsmanager:Description": ["*" + "?a" * (4 + i % 60) + "b*" for i in range(n)]
                        }
                    },
                }
            ]
        )

    out.append(
        Case(
            "worst for the new matcher: 20,480 chars of '?' runs, 2,048-char value",
            [],
            [fill(question_marks, RESOURCE_POLICY_LIMIT)],
            request(name, description),
        )
    )

    # Many short patterns, each scanning the whole long value once (cost: patterns × n).
    def many_patterns(n: int) -> str:
        return doc(
            [
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "secretsmanager:*",
                    "Resource": "*",
                    "Condition": {"StringLike": {"secretsmanager:Description": [f"*{i % 10}*" for i in range(n)]}},
                }
            ]
        )

    out.append(
        Case(
            "many short patterns: 20,480 chars of '*N*', 2,048-char value",
            [],
            [fill(many_patterns, RESOURCE_POLICY_LIMIT)],
            request(name, description),
        )
    )

    # Long literal segments that almost occur everywhere (str.find's own worst case).
    def long_literals(n: int) -> str:
        return doc(
            [
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "secretsmanager:*",
                    "Resource": "*",
                    "Condition": {
                        "StringLike": {
                            "secretsmanager:Description": [
                                "*" + "a" * (100 + i) + "b" + "a" * (100 + i) + "*" for i in range(n)
                            ]
                        }
                    },
                }
            ]
        )

    out.append(
        Case(
            "long literals: 20,480 chars of '*a..ab a..a*', 2,048-char value",
            [],
            [fill(long_literals, RESOURCE_POLICY_LIMIT)],
            request(name, description),
        )
    )

    # A user's inline policies at IAM's quota: many statements of wildcard actions and resources.
    def identity_statements(n: int) -> str:
        return doc(
            [
                {
                    "Effect": "Allow",
                    "NotAction": f"secretsmanager:*G*e*t*S*e*c*r*e*t*X{i}",
                    "Resource": PREFIX + stars(8, "b"),
                }
                for i in range(n)
            ]
        )

    out.append(
        Case(
            "worst identity policy: 2,048 chars (IAM's user quota)",
            [fill(identity_statements, INLINE_POLICY_LIMITS["user"], iam_size)],
            [],
            request(name),
        )
    )
    return out


def _old_child(case: Case, repeat: int, pipe: Any) -> None:
    engine._like = old_like  # type: ignore[attr-defined]  # the A/B switch: the old matcher in the engine
    pipe.send(case.run(repeat))


def run_old(case: Case, repeat: int, budget: float) -> float | None:
    parent, child = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.get_context("fork").Process(target=_old_child, args=(case, repeat, child))
    process.start()
    ready = parent.poll(budget)
    result = parent.recv() if ready else None
    process.kill()
    process.join()
    return result


def micro(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=10.0, help="seconds the old matcher gets per case")
    parser.add_argument("--repeat", type=int, default=200, help="evaluations per case (median reported)")
    args = parser.parse_args()
    print(f"{'case':76} {'sizes (chars)':>16} {'new':>14} {'old (regex)':>16}")
    for case in cases():
        new = case.run(args.repeat)
        old = run_old(case, 3 if "typical" not in case.title else args.repeat, args.budget)
        old_text = micro(old) if old is not None else f"> {args.budget:g} s"
        sizes = "+".join(str(s) for s in case.sizes)
        print(f"{case.title:76} {sizes:>16} {micro(new):>14} {old_text:>16}", flush=True)


if __name__ == "__main__":
    main()
