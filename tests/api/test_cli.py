"""`strongroom secretsmanager ...` behaves as the aws CLI version 2 does against the same server
(tests/api/test_cli_v2.py compares output formats, errors and configuration one by one)."""

from __future__ import annotations

import functools
import json
import operator
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.testing import ServerProcess

BIN = Path(sys.executable).parent
AWS_V2 = Path("/usr/bin/aws")  # Debian's awscli (version 2), installed by make setup


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory):  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    with ServerProcess(data_dir=data_dir) as srv:
        yield srv


@pytest.fixture
def twin_servers(tmp_path):  # type: ignore[no-untyped-def]
    """Two servers prepared alike: the aws CLI runs against one, strongroom's against the other,
    so that commands that change state can be compared."""
    from strongroom.testing.functions import zipped

    servers = [ServerProcess(data_dir=tmp_path / f"data{i}").start() for i in (0, 1)]
    try:
        for srv in servers:
            srv.client().create_secret(Name="MyTestDatabaseSecret", SecretString="v")
            lam = srv.client("lambda")
            iam = srv.client("iam")
            iam.create_role(
                RoleName="rotation",
                AssumeRolePolicyDocument=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                ),
            )
            iam.put_role_policy(
                RoleName="rotation",
                PolicyName="rotate",
                PolicyDocument=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}],
                    }
                ),
            )
            lam.create_function(
                FunctionName="SecretsManagerTestRotationLambda",
                Runtime="python3.11",
                Role="arn:aws:iam::123456789012:role/rotation",
                Handler="lambda_function.lambda_handler",
                Code={"ZipFile": zipped()},
            )
            lam.add_permission(
                FunctionName="SecretsManagerTestRotationLambda",
                StatementId="sm",
                Action="lambda:InvokeFunction",
                Principal="secretsmanager.amazonaws.com",
            )
        yield servers
    finally:
        for srv in servers:
            srv.stop()


def env_for(srv: ServerProcess, home: Path) -> dict[str, str]:
    return {
        "PATH": str(BIN) + ":/usr/bin:/bin",
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": srv.access_key_id,
        "AWS_SECRET_ACCESS_KEY": srv.secret_access_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": srv.endpoint,
    }


def run_on(srv: ServerProcess, home: Path, program: str, *args: str) -> subprocess.CompletedProcess:
    # The aws CLI 2.9.19 predates AWS_ENDPOINT_URL: it is given --endpoint-url.
    argv = [str(AWS_V2), *args, "--endpoint-url", srv.endpoint] if program == "aws" else [str(BIN / program), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env_for(srv, home), timeout=60)


def settle(srv: ServerProcess) -> None:
    """Wait until no rotation of the secret is in progress (AWSPENDING gone)."""
    import time

    for _ in range(200):
        stages = srv.client().describe_secret(SecretId="MyTestDatabaseSecret")["VersionIdsToStages"]
        if "AWSPENDING" not in functools.reduce(operator.iadd, stages.values(), []):
            return
        time.sleep(0.1)
    raise AssertionError(stages)


def test_rotate_secret_documentation_examples(twin_servers, tmp_path):
    aws_server, our_server = twin_servers
    example = (
        "secretsmanager",
        "rotate-secret",
        "--secret-id",
        "MyTestDatabaseSecret",
        "--rotation-lambda-arn",
        "arn:aws:lambda:us-west-2:1234566789012:function:SecretsManagerTestRotationLambda",
        "--rotation-rules",
        "AutomaticallyAfterDays=10",
    )
    registered = tuple(a.replace("us-west-2:1234566789012", "us-east-1:123456789012") for a in example)
    for command in (
        example,
        registered,
        ("secretsmanager", "rotate-secret", "--secret-id", "MyTestDatabaseSecret"),
        ("secretsmanager", "cancel-rotate-secret", "--secret-id", "MyTestDatabaseSecret"),
    ):
        aws = run_on(aws_server, tmp_path, "aws", *command)
        ours = run_on(our_server, tmp_path, "strongroom", *command)
        assert aws.returncode == ours.returncode, (command, aws.stderr, ours.stderr)
        assert aws.stderr == ours.stderr
        if aws.stdout:
            a, o = json.loads(aws.stdout), json.loads(ours.stdout)
            assert set(a) == set(o) and a["Name"] == o["Name"]
        settle(aws_server)
        settle(our_server)
    # The first example names a function in an account that cannot exist: refused alike.
    first = run_on(our_server, tmp_path, "strongroom", *example)
    assert first.returncode == 254 and "AccessDeniedException" in first.stderr


def test_shorthand_and_file_values(cli_server, tmp_path):
    value = tmp_path / "value.json"
    value.write_text('{"password": "from a file"}')
    env = env_for(cli_server, tmp_path)
    created = subprocess.run(
        [
            str(BIN / "strongroom"),
            "secretsmanager",
            "create-secret",
            "--name",
            "from-file",
            "--secret-string",
            f"file://{value}",
            "--tags",
            "Key=env,Value=prod",
            "Key=team,Value=a",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(created.stdout)["Name"] == "from-file"
    described = cli_server.client().describe_secret(SecretId="from-file")
    assert described["Tags"] == [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "a"}]
    assert cli_server.client().get_secret_value(SecretId="from-file")["SecretString"] == '{"password": "from a file"}'


@pytest.mark.parametrize(
    "words, expected",
    [
        (["strongroom", "secretsm"], "secretsmanager"),
        (["strongroom", "secretsmanager", "rotate-sec"], "rotate-secret"),
        (["strongroom", "secretsmanager", "rotate-secret", "--secret-"], "--secret-id"),
        (["strongroom", "rotation", "hi"], "history"),
    ],
)
def test_shell_completion(words, expected, tmp_path):
    import os

    env = {
        **os.environ,
        "_STRONGROOM_COMPLETE": "bash_complete",
        "COMP_WORDS": " ".join(words),
        "COMP_CWORD": str(len(words) - 1),
        "HOME": str(tmp_path),
    }
    out = subprocess.run([str(BIN / "strongroom")], capture_output=True, text=True, env=env, timeout=60).stdout
    assert f"plain,{expected}" in out.splitlines(), out
    script = subprocess.run([str(BIN / "strongroom"), "completion", "bash"], capture_output=True, text=True).stdout
    assert "_STRONGROOM_COMPLETE=bash_complete" in script
