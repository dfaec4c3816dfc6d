"""strongroom's IAM evaluator against an independent one: @cloud-copilot/iam-simulate (npm).

Every row of the evaluator's own tables (condition operators, action/resource matching, resource
policy principals, cross-account) is decided by both; the decisions must agree. The simulator
runs in Node from tests/policy_sim (installed by `make test`); it is never part of strongroom.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from test_policy_eval import ACCOUNT, CONDITIONS, SECRET, USER, allow_if, doc

from strongroom.policy import Request, evaluate, parse_policy

SIM = Path(__file__).resolve().parents[2] / "policy_sim"


def simulate(cases: list[tuple[Request, list[str], str | None]]) -> list[dict]:
    assert (SIM / "node_modules" / "@cloud-copilot" / "iam-simulate").is_dir(), (
        "run `make test` (it runs npm ci in tests/policy_sim)"
    )
    simulations = []
    for request, identity, resource in cases:
        simulations.append(
            {
                "request": {
                    "principal": request.principal_arn,
                    "action": request.action,
                    "resource": {"resource": request.resource, "accountId": request.resource_account},
                    "contextVariables": request.context,
                },
                "identityPolicies": [{"name": f"p{i}", "policy": json.loads(d)} for i, d in enumerate(identity)],
                "serviceControlPolicies": [],
                "resourceControlPolicies": [],
                "resourcePolicy": json.loads(resource) if resource else None,
            }
        )
    out = subprocess.run(
        ["node", str(SIM / "simulate.mjs")],
        input=json.dumps(simulations),
        capture_output=True,
        text=True,
        check=True,
        cwd=SIM,
        timeout=120,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


# Rows where the simulator departs from AWS's documentation (strongroom follows the documentation):
SIMULATOR_DIFFERS = {
    # The simulator reads an epoch in milliseconds against an ISO date but in seconds on its own;
    # AWS documents epoch seconds (aws:EpochTime).
    (
        "DateEquals",
        json.dumps({"aws:CurrentTime": "2023-11-14T22:13:20Z"}),
        json.dumps({"aws:CurrentTime": "1700000000"}),
    ),
    # AWS: Null false checks that the key "is present and its value is not empty"; an empty set is null.
    ("Null", json.dumps({"aws:TagKeys": "true"}), json.dumps({"aws:TagKeys": []})),
}


def cases() -> list[tuple[str, Request, list[str], str | None]]:
    out = []
    # Service keys exist only for the actions that set them (the simulator knows which): use one.
    actions = {
        "secretsmanager:name": "secretsmanager:CreateSecret",
        "secretsmanager:description": "secretsmanager:UpdateSecret",
        "secretsmanager:recoverywindowindays": "secretsmanager:DeleteSecret",
        "secretsmanager:addreplicaregions": "secretsmanager:ReplicateSecretToRegions",
    }
    for operator, values, context, _ in CONDITIONS:
        if (operator, json.dumps(values), json.dumps(context)) in SIMULATOR_DIFFERS:
            continue
        key = next(iter(values)).lower()
        action = actions.get(key, "secretsmanager:GetSecretValue")
        request = Request(USER, ACCOUNT, action, SECRET, ACCOUNT, context)
        out.append((f"{operator} {values} {context}", request, [allow_if({operator: values})], None))
    for action in ("secretsmanager:GetSecretValue", "secretsmanager:DeleteSecret", "secretsmanager:PutSecretValue"):
        for statement in (
            {"Action": "secretsmanager:Get*", "Resource": "*"},
            {"NotAction": "secretsmanager:Delete*", "Resource": "*"},
            {"Action": "*", "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/db-??????"},
            {"Action": "*", "NotResource": "arn:aws:secretsmanager:*:*:secret:prod/*"},
        ):
            request = Request(USER, ACCOUNT, action, SECRET, ACCOUNT, {})
            out.append((f"{action} {statement}", request, [doc({"Effect": "Allow", **statement})], None))
    for principal in (
        {"AWS": USER},
        {"AWS": ACCOUNT},
        {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "*",
        {"AWS": "arn:aws:iam::999988887777:root"},
        {"AWS": f"arn:aws:iam::{ACCOUNT}:user/other"},
    ):
        resource = doc({"Effect": "Allow", "Principal": principal, "Action": "secretsmanager:*", "Resource": "*"})
        request = Request(USER, ACCOUNT, "secretsmanager:GetSecretValue", SECRET, ACCOUNT, {})
        out.append((f"resource policy principal {principal}", request, [], resource))
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/s1"
    for principal in (
        {"AWS": f"arn:aws:iam::{ACCOUNT}:role/reader"},
        {"AWS": session},
        {"AWS": f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/s2"},
        {"AWS": f"arn:aws:iam::{ACCOUNT}:role/writer"},
    ):
        resource = doc({"Effect": "Allow", "Principal": principal, "Action": "secretsmanager:*", "Resource": "*"})
        request = Request(session, ACCOUNT, "secretsmanager:GetSecretValue", SECRET, ACCOUNT, {})
        out.append((f"session, resource policy principal {principal}", request, [], resource))
    caller = "arn:aws:iam::999988887777:user/x"
    allow_all = doc({"Effect": "Allow", "Action": "*", "Resource": "*"})
    grant = doc({"Effect": "Allow", "Principal": {"AWS": "999988887777"}, "Action": "*", "Resource": "*"})
    deny = doc({"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"})
    for name, identity, resource in (
        ("both sides", [allow_all], grant),
        ("identity only", [allow_all], None),
        ("resource only", [], grant),
        ("explicit deny", [allow_all], deny),
    ):
        request = Request(caller, "999988887777", "secretsmanager:GetSecretValue", SECRET, ACCOUNT, {})
        out.append((f"cross-account {name}", request, identity, resource))
    return out


def test_decisions_agree_with_an_independent_simulator():
    rows = cases()
    verdicts = simulate([(r, i, p) for _, r, i, p in rows])
    compared, refused, disagreements = 0, [], []
    for (name, request, identity, resource), verdict in zip(rows, verdicts, strict=False):
        if "error" in verdict:
            refused.append((name, verdict["error"][:200]))  # inputs the simulator will not take
            continue
        ours = evaluate(
            request, [parse_policy(d) for d in identity], [parse_policy(resource)] if resource else []
        ).allowed
        compared += 1
        if ours != (verdict["result"] == "Allowed"):
            disagreements.append((name, ours, verdict["result"]))
    assert not disagreements, disagreements
    assert compared >= 0.8 * len(rows), (compared, len(rows), refused)
