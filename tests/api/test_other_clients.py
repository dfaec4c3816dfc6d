"""The AWS SDK for JavaScript v3 and the aws CLI against a real server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

JS_DIR = Path(__file__).resolve().parents[1] / "js"


def test_javascript_sdk(server, name):
    node = shutil.which("node")
    assert node, "node is needed for the JavaScript SDK test (the README's setup installs it)"
    assert (JS_DIR / "node_modules" / "@aws-sdk" / "client-secrets-manager").is_dir(), (
        "run `make test` (it runs npm ci in tests/js)"
    )
    result = subprocess.run(
        [node, str(JS_DIR / "smoke.mjs"), server.endpoint, server.access_key_id, server.secret_access_key, name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["first"] == "from-js-1"
    assert out["second"] == "from-js-2"
    assert out["putStages"] == ["AWSCURRENT"]
    assert out["listed"] == [name]
    assert out["createdDateIsDate"] is True
    assert out["missing"]["name"] == "ResourceNotFoundException"
    assert out["missing"]["status"] == 400
    assert out["missing"]["message"] == "Secrets Manager can't find the specified secret."


def aws(server, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=server.access_key_id,
        AWS_SECRET_ACCESS_KEY=server.secret_access_key,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_PAGER="",
    )
    exe = Path(sys.executable).with_name("aws")
    return subprocess.run(
        [str(exe), "--endpoint-url", server.endpoint, "--output", "json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_aws_cli(server, name):
    created = aws(
        server,
        "secretsmanager",
        "create-secret",
        "--name",
        name,
        "--secret-string",
        "cli-1",
        "--tags",
        "Key=env,Value=test",
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["Name"] == name
    got = aws(server, "secretsmanager", "get-secret-value", "--secret-id", name)
    assert json.loads(got.stdout)["SecretString"] == "cli-1"
    put = aws(server, "secretsmanager", "put-secret-value", "--secret-id", name, "--secret-string", "cli-2")
    assert json.loads(put.stdout)["VersionStages"] == ["AWSCURRENT"]
    described = json.loads(aws(server, "secretsmanager", "describe-secret", "--secret-id", name).stdout)
    assert described["Tags"] == [{"Key": "env", "Value": "test"}]
    listed = aws(server, "secretsmanager", "list-secrets", "--filters", f"Key=name,Values={name}")
    assert [s["Name"] for s in json.loads(listed.stdout)["SecretList"]] == [name]
    missing = aws(server, "secretsmanager", "get-secret-value", "--secret-id", name + "-missing")
    # The aws CLI on PyPI is version 1, which exits 255 on a service error (version 2 exits 254).
    assert missing.returncode == 255
    assert (
        "An error occurred (ResourceNotFoundException) when calling the GetSecretValue operation: "
        "Secrets Manager can't find the specified secret."
    ) in missing.stderr
    pw = aws(server, "secretsmanager", "get-random-password", "--password-length", "20")
    assert len(json.loads(pw.stdout)["RandomPassword"]) == 20
