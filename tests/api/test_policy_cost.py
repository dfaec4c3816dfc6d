"""What a policy may cost: AWS's size quotas where policies are stored, and no stall while the
worst policy one can write is evaluated (issue 11 §4).

The stall: a user allowed to put a resource policy on his own secret wrote wildcards that the old
backtracking matcher took seconds to days to evaluate, on every request, while every other client
of the server waited. Here the health check must answer while such requests are in flight.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"


def client_for(server, service: str, key: dict):  # type: ignore[no-untyped-def]
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1}, read_timeout=120),
    )


def document(*statements: dict, pad: int = 0) -> str:
    """A policy, then ``pad`` spaces (JSON white space: counted by Secrets Manager, not by IAM)."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}) + " " * pad


def grant(n: int) -> dict:
    """An identity-policy statement about ``n`` characters long without white space."""
    body = {
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "arn:aws:secretsmanager:us-east-1:123456789012:secret:",
    }
    body["Resource"] += "x" * (n - len(json.dumps(body, separators=(",", ":"))))
    return body


def sized(n: int, pad: int = 0) -> str:
    """An identity policy of exactly ``n`` characters as IAM counts them (white space excluded)."""
    text = document(grant(n - 40), pad=0)
    compact = len(text) - sum(text.count(c) for c in " \t\r\n")
    text = document(grant(n - 40 + (n - compact)))
    compact = len(text) - sum(text.count(c) for c in " \t\r\n")
    assert compact == n, compact
    return text + " " * pad


@pytest.fixture
def user(server):  # type: ignore[no-untyped-def]
    iam = server.client("iam")
    name = f"app-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    return iam, name, iam.create_access_key(UserName=name)["AccessKey"]


# ------------------------------------------------------------------------------ size quotas


def test_a_users_inline_policies_share_2048_characters(server, user):
    iam, name, _ = user
    iam.put_user_policy(UserName=name, PolicyName="big", PolicyDocument=sized(1500, pad=3000))  # spaces are free
    with pytest.raises(ClientError) as exc:
        iam.put_user_policy(UserName=name, PolicyName="more", PolicyDocument=sized(549))
    assert exc.value.response["Error"]["Code"] == "LimitExceeded"
    assert exc.value.response["Error"]["Message"] == f"Maximum policy size of 2048 bytes exceeded for user {name}"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    iam.put_user_policy(UserName=name, PolicyName="more", PolicyDocument=sized(548))  # 2048 exactly
    iam.put_user_policy(UserName=name, PolicyName="big", PolicyDocument=sized(1500))  # replaces itself
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["big", "more"]
    iam.delete_user_policy(UserName=name, PolicyName="more")
    with pytest.raises(ClientError) as exc:  # one alone, too big
        iam.put_user_policy(UserName=name, PolicyName="huge", PolicyDocument=sized(2049))
    assert exc.value.response["Error"]["Message"] == f"Maximum policy size of 2048 bytes exceeded for user {name}"
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["big"]


def test_a_roles_inline_policies_share_10240_characters_and_its_trust_policy_2048(server):
    iam = server.client("iam")
    role = f"r-{uuid.uuid4().hex[:8]}"
    trust = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    too_long = document(*[{**trust, "Sid": f"S{i}"} for i in range(40)])
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=too_long)
    assert exc.value.response["Error"]["Code"] == "LimitExceeded"
    assert exc.value.response["Error"]["Message"] == "Cannot exceed quota for ACLSizePerRole: 2048"
    with pytest.raises(ClientError):
        iam.get_role(RoleName=role)
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=document(trust, pad=5000))
    iam.put_role_policy(RoleName=role, PolicyName="a", PolicyDocument=sized(8000))
    with pytest.raises(ClientError) as exc:
        iam.put_role_policy(RoleName=role, PolicyName="b", PolicyDocument=sized(2241))
    assert exc.value.response["Error"]["Code"] == "LimitExceeded"
    assert exc.value.response["Error"]["Message"] == f"Maximum policy size of 10240 bytes exceeded for role {role}"
    iam.put_role_policy(RoleName=role, PolicyName="b", PolicyDocument=sized(2240))
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["a", "b"]


def test_a_secrets_resource_policy_is_at_most_20480_characters(server, sm, name):
    sm.create_secret(Name=name, SecretString="v")
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
    }
    exact = document(statement, pad=20480 - len(document(statement)))
    sm.put_resource_policy(SecretId=name, ResourcePolicy=exact)
    assert sm.get_resource_policy(SecretId=name)["ResourcePolicy"] == exact
    with pytest.raises(ClientError) as exc:
        sm.put_resource_policy(SecretId=name, ResourcePolicy=exact + " ")
    error = exc.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert (
        "at 'resourcePolicy' failed to satisfy constraint: Member must have length less than or equal to 20480"
        in error["Message"]
    )
    assert sm.get_resource_policy(SecretId=name)["ResourcePolicy"] == exact


# --------------------------------------------------------------------------- evaluation cost


def health_seconds(server) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    with urllib.request.urlopen(f"{server.endpoint}/_strongroom/health", timeout=30) as answer:
        assert answer.status == 200
    return time.perf_counter() - start


def test_the_worst_resource_policy_does_not_stall_other_clients(server, sm, user):
    """The issue's example: 5 wildcards against a 150-character name. The old matcher took
    seconds per request on it (and held the server for as long); the health check must not wait."""
    _, user_name, key = user
    name = "a" * 150
    sm.create_secret(Name=name, SecretString="decided by the policy")
    arn_prefix = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:"
    stars = "*a" * 5 + "*b"
    sm.put_resource_policy(
        SecretId=name,
        ResourcePolicy=document(
            {
                "Sid": "Worst",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{user_name}"},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": [arn_prefix + stars, arn_prefix + stars.replace("b", "c"), arn_prefix + name + "-??????"],
            }
        ),
    )
    app = client_for(server, "secretsmanager", key)
    baseline = max(health_seconds(server) for _ in range(5))

    answers: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read_in_a_loop() -> None:
        try:
            while not stop.is_set() or not answers:
                answers.append(app.get_secret_value(SecretId=name)["SecretString"])
        except BaseException as exc:  # reported below
            errors.append(exc)

    reader = threading.Thread(target=read_in_a_loop, daemon=True)
    reader.start()
    try:
        time.sleep(0.05)  # the first GetSecretValue is on its way
        waits = [health_seconds(server) for _ in range(10)]
    finally:
        stop.set()
        reader.join(timeout=300)
    assert not errors, errors
    assert answers and set(answers) == {"decided by the policy"}
    assert max(waits) < 1.0 + 10 * baseline, (waits, baseline)
