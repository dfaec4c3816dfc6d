"""Rotation functions for tests: zipped the way `aws lambda create-function --zip-file` takes them."""

from __future__ import annotations

import io
import zipfile

__all__ = ["GENERIC_ROTATION", "zipped"]

# A rotation function in the shape of AWS's generic template: createSecret stores a new random
# value on AWSPENDING, finishSecret moves AWSCURRENT. Environment variables make it fail or stall
# (FAIL_STEP, SLEEP_STEP + SLEEP_SECONDS), or write the predictable value VALUE_PREFIX + token.
GENERIC_ROTATION = '''
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
'''


def zipped(source: str = GENERIC_ROTATION, name: str = "lambda_function.py") -> bytes:
    """A zip holding ``source`` as ``name``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, source)
    return buf.getvalue()
