"""Rotation functions for tests: zipped the way `aws lambda create-function --zip-file` takes them."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

__all__ = ["GENERIC_ROTATION", "LAMBDA_TRUST", "ROTATION_POLICY", "create_function", "execution_role", "zipped"]

# A rotation function in the shape of AWS's generic template: createSecret stores a new random
# value on AWSPENDING, finishSecret moves AWSCURRENT. Environment variables make it fail or stall
# (FAIL_STEP, SLEEP_STEP + SLEEP_SECONDS), or write the predictable value VALUE_PREFIX + token.
GENERIC_ROTATION = """
import os, time, boto3

def lambda_handler(event, context):
    sm = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    meta = sm.describe_secret(SecretId=arn)
    if not meta["RotationEnabled"]:
        raise ValueError("Secret %s is not enabled for rotation" % arn)
    stages = meta["VersionIdsToStages"]
    if token not in stages:
        raise ValueError("no stage for rotation")
    if "AWSCURRENT" in stages[token]:
        return
    print("step", step, "remaining", context.get_remaining_time_in_millis())
    if os.environ.get("FAIL_STEP") == step:
        raise RuntimeError("failing on purpose in " + step)
    if os.environ.get("SLEEP_STEP") == step:
        time.sleep(float(os.environ["SLEEP_SECONDS"]))
    if step == "createSecret":
        try:
            sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        except sm.exceptions.ResourceNotFoundException:
            if "VALUE_PREFIX" in os.environ:
                pw = os.environ["VALUE_PREFIX"] + token
            else:
                pw = sm.get_random_password(ExcludeCharacters="/@\\"'\\\\")["RandomPassword"]
            sm.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=pw, VersionStages=["AWSPENDING"])
    elif step == "finishSecret":
        current = next(v for v, s in stages.items() if "AWSCURRENT" in s)
        sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                       RemoveFromVersionId=current)
"""


def zipped(source: str = GENERIC_ROTATION, name: str = "lambda_function.py") -> bytes:
    """A zip holding ``source`` as ``name``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, source)
    return buf.getvalue()


# What a rotation function needs on AWS, and so here: an execution role Lambda may assume, with
# the Secrets Manager rights the function uses (docs/rotation.md).
LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)
ROTATION_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                    "secretsmanager:GetRandomPassword",
                ],
                "Resource": "*",
            }
        ],
    }
)


def execution_role(iam: Any, name: str = "rotation", policy: str | None = ROTATION_POLICY) -> str:
    """The ARN of role ``name`` (created when missing) that Lambda may assume, holding ``policy``."""
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]  # type: ignore[no-any-return]
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
        if policy is not None:
            iam.put_role_policy(RoleName=name, PolicyName="rotate", PolicyDocument=policy)
        return arn  # type: ignore[no-any-return]


def create_function(
    lam: Any,
    iam: Any,
    name: str,
    source: str = GENERIC_ROTATION,
    role: str = "rotation",
    allow_secretsmanager: bool = True,
    **config: Any,
) -> str:
    """Create function ``name`` as a user on AWS would: with an execution role Lambda may assume and,
    for rotation, the function policy statement letting Secrets Manager invoke it. Returns its ARN."""
    arn = lam.create_function(
        FunctionName=name,
        Runtime=config.pop("Runtime", "python3.11"),
        Role=execution_role(iam, role),
        Handler=config.pop("Handler", "lambda_function.lambda_handler"),
        Code={"ZipFile": zipped(source)},
        **config,
    )["FunctionArn"]
    if allow_secretsmanager:
        lam.add_permission(
            FunctionName=name,
            StatementId="secretsmanager",
            Action="lambda:InvokeFunction",
            Principal="secretsmanager.amazonaws.com",
        )
    return arn  # type: ignore[no-any-return]
