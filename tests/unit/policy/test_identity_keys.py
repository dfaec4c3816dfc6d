"""The identity condition keys strongroom fills (``Authorizer.base_context``), table-driven, and the
decisions they lead to checked against the independent IAM simulator (tests/policy_sim).

Each row: a caller (from its credential's facts, as the server builds its RequestContext), a key,
and the value AWS documents for that caller ("AWS global condition context keys"); ``None`` means
AWS leaves the key out of the request context.
"""

from __future__ import annotations

import json

import pytest
from test_policy_vs_simulator import simulate

from strongroom.auth.authorizer import Authorizer
from strongroom.context import RequestContext
from strongroom.policy import Request, evaluate, parse_policy

A = "123456789012"
SECRET = f"arn:aws:secretsmanager:us-east-1:{A}:secret:prod/db-AbCdEf"
CALLERS = {
    "root": RequestContext(A, "us-east-1", f"arn:aws:iam::{A}:root", "r", privilege="root", principal_id=A),
    "user": RequestContext(
        A, "us-east-1", f"arn:aws:iam::{A}:user/team/app", "r", principal_id="AIDAEXAMPLEUSER000001"
    ),
    "session": RequestContext(
        A,
        "us-east-1",
        f"arn:aws:sts::{A}:assumed-role/reader/s1",
        "r",
        principal_id="AROAEXAMPLEROLE000001:s1",
        role_arn=f"arn:aws:iam::{A}:role/ops/reader",
    ),
    # A session whose name only looks like root: every key says what it is.
    "session named root": RequestContext(
        A,
        "us-east-1",
        f"arn:aws:sts::{A}:assumed-role/reader/root",
        "r",
        principal_id="AROAEXAMPLEROLE000001:root",
        role_arn=f"arn:aws:iam::{A}:role/reader",
    ),
}
EXPECTED = [
    ("root", "aws:PrincipalType", "Account"),
    ("root", "aws:userid", A),
    ("root", "aws:username", None),
    ("root", "aws:PrincipalArn", f"arn:aws:iam::{A}:root"),
    ("root", "aws:PrincipalAccount", A),
    ("user", "aws:PrincipalType", "User"),
    ("user", "aws:userid", "AIDAEXAMPLEUSER000001"),
    ("user", "aws:username", "app"),
    ("user", "aws:PrincipalArn", f"arn:aws:iam::{A}:user/team/app"),
    ("session", "aws:PrincipalType", "AssumedRole"),
    ("session", "aws:userid", "AROAEXAMPLEROLE000001:s1"),
    ("session", "aws:username", None),
    ("session", "aws:PrincipalArn", f"arn:aws:iam::{A}:role/ops/reader"),
    ("session named root", "aws:PrincipalType", "AssumedRole"),
    ("session named root", "aws:PrincipalArn", f"arn:aws:iam::{A}:role/reader"),
    # Only a service calling on a resource's behalf sets these, on AWS as here.
    ("user", "aws:SourceArn", None),
    ("user", "aws:SourceAccount", None),
]


@pytest.mark.parametrize(("caller", "key", "value"), EXPECTED)
def test_identity_keys_have_awss_values(caller: str, key: str, value: str | None) -> None:
    assert Authorizer.base_context(CALLERS[caller]).get(key) == value


def _deny_if(condition: dict) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*", "Condition": condition},
            ],
        }
    )


CONDITIONS = [
    {"StringEquals": {"aws:PrincipalType": "AssumedRole"}},
    {"StringEquals": {"aws:PrincipalType": "User"}},
    {"StringEquals": {"aws:PrincipalType": "Account"}},
    {"StringLike": {"aws:userid": "AROAEXAMPLEROLE000001:*"}},
    {"StringEquals": {"aws:userid": "AIDAEXAMPLEUSER000001"}},
    {"StringEquals": {"aws:username": "app"}},
    {"Null": {"aws:username": "true"}},
    {"StringNotEqualsIfExists": {"aws:username": "app"}},
    {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{A}:role/*"}},
    {"StringEquals": {"aws:PrincipalArn": f"arn:aws:iam::{A}:root"}},
    {"Null": {"aws:SourceArn": "false"}},
]


def test_decisions_on_filled_keys_agree_with_the_simulator() -> None:
    cases = []
    for name, ctx in CALLERS.items():
        if name == "root":
            continue  # the simulator has no notion of root's implicit allow; its keys are checked above
        for condition in CONDITIONS:
            request = Request(
                ctx.principal_arn, A, "secretsmanager:GetSecretValue", SECRET, A, Authorizer.base_context(ctx)
            )
            cases.append((f"{name} {condition}", request, [_deny_if(condition)], None))
    verdicts = simulate([(request, identity, resource) for _, request, identity, resource in cases])
    disagreements = []
    for (label, request, identity, _), verdict in zip(cases, verdicts, strict=False):
        mine = evaluate(request, [parse_policy(d) for d in identity], []).allowed
        theirs = verdict.get("result") == "Allowed"
        if "error" in verdict or mine != theirs:
            disagreements.append((label, mine, verdict))
    assert not disagreements
