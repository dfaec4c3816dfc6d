"""Rotation end to end: boto3 against a running server, functions in real worker processes."""

from __future__ import annotations

import functools
import json
import operator
import os
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from strongroom.rotation.runtime import parse_cpus
from strongroom.testing import ServerProcess, wait_for
from strongroom.testing.functions import zipped

FAST = {
    "STRONGROOM_ROTATION_RETRY_BASE_SECONDS": "0.3",
    "STRONGROOM_ROTATION_MAX_ATTEMPTS": "2",
    "STRONGROOM_ROTATION_POLL_SECONDS": "0.2",
}


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
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def rotation_role(iam) -> str:
    """The execution role a rotation function needs, as on AWS: it may touch secrets, nothing else."""
    try:
        return iam.get_role(RoleName="rotation")["Role"]["Arn"]  # type: ignore[no-any-return]
    except ClientError:
        arn = iam.create_role(RoleName="rotation", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        iam.put_role_policy(RoleName="rotation", PolicyName="rotate", PolicyDocument=ROTATION_POLICY)
        return arn  # type: ignore[no-any-return]


def make_function(lam, name: str, env: dict[str, str] | None = None, allow: bool = True) -> str:
    role = rotation_role(lam._strongroom_iam)
    arn = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": zipped()},
        Timeout=30,
        Environment={"Variables": env or {}},
    )["FunctionArn"]
    if allow:
        lam.add_permission(
            FunctionName=name,
            StatementId="sm",
            Action="lambda:InvokeFunction",
            Principal="secretsmanager.amazonaws.com",
        )
    return arn


def pending_value(sm, name: str) -> str | None:
    """The id of the AWSPENDING version once it has a value, else None."""
    try:
        return sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")["VersionId"]  # type: ignore[no-any-return]
    except ClientError:
        return None


@pytest.fixture(scope="module")
def rot_server():  # type: ignore[no-untyped-def]
    with ServerProcess(env=FAST) as srv:
        yield srv


def lambda_client(srv):  # type: ignore[no-untyped-def]
    lam = srv.client("lambda")
    lam._strongroom_iam = srv.client("iam")
    return lam


@pytest.fixture
def clients(rot_server):  # type: ignore[no-untyped-def]
    return rot_server.client(), lambda_client(rot_server)


def test_rotation_runs_the_four_steps(clients):
    sm, lam = clients
    name = f"rot-{uuid.uuid4().hex[:8]}"
    fn = make_function(lam, name)
    first = sm.create_secret(Name=name, SecretString="initial")["VersionId"]
    answer = sm.rotate_secret(SecretId=name, RotationLambdaARN=fn, RotationRules={"AutomaticallyAfterDays": 30})
    token = answer["VersionId"]
    assert set(answer) - {"ResponseMetadata"} == {"ARN", "Name", "VersionId"}
    wait_for(lambda: "LastRotatedDate" in sm.describe_secret(SecretId=name))
    described = sm.describe_secret(SecretId=name)
    assert described["VersionIdsToStages"] == {token: ["AWSCURRENT"], first: ["AWSPREVIOUS"]}
    assert described["RotationEnabled"] is True
    assert described["RotationLambdaARN"] == fn
    assert described["RotationRules"]["AutomaticallyAfterDays"] == 30
    assert described["NextRotationDate"] > described["LastRotatedDate"]
    new = sm.get_secret_value(SecretId=name)
    assert new["VersionId"] == token and new["SecretString"] != "initial"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "initial"


def test_pending_version_is_value_less_until_create_secret(clients):
    sm, lam = clients
    name = f"rot-{uuid.uuid4().hex[:8]}"
    fn = make_function(lam, name, env={"SLEEP_STEP": "createSecret", "SLEEP_SECONDS": "2"})
    sm.create_secret(Name=name, SecretString="v")
    token = sm.rotate_secret(SecretId=name, RotationLambdaARN=fn)["VersionId"]
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"][token] == ["AWSPENDING"]
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    wait_for(lambda: "LastRotatedDate" in sm.describe_secret(SecretId=name))


def test_refusals(clients):
    sm, lam = clients
    name = f"rot-{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="v")
    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(SecretId=name)
    assert exc.value.response["Error"] == {
        "Code": "InvalidRequestException",
        "Message": "No Lambda rotation function ARN is associated with this secret.",
    }
    fn = make_function(lam, name, allow=False)
    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(SecretId=name, RotationLambdaARN=fn)
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    assert exc.value.response["Error"]["Message"] == (
        "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants "
        "access to the principal secretsmanager.amazonaws.com."
    )
    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(SecretId=name, RotationLambdaARN="arn:aws:lambda:us-west-2:1234566789012:function:Nope")
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(
            SecretId=name,
            RotationLambdaARN=fn,
            RotationRules={"AutomaticallyAfterDays": 2, "ScheduleExpression": "rate(10 days)"},
        )
    assert exc.value.response["Error"] == {
        "Code": "InvalidParameterException",
        "Message": "You cannot specify both rotation frequency and schedule expression together.",
    }
    # A refused call persists nothing.
    described = sm.describe_secret(SecretId=name)
    assert "RotationEnabled" not in described and "RotationLambdaARN" not in described
    assert list(described["VersionIdsToStages"].values()) == [["AWSCURRENT"]]


def test_failing_rotation_keeps_pending_and_blocks_a_new_one_until_a_manual_value(clients, rot_server):
    sm, lam = clients
    name = f"rot-{uuid.uuid4().hex[:8]}"
    fn = make_function(lam, name, env={"FAIL_STEP": "setSecret"})
    first = sm.create_secret(Name=name, SecretString="v")["VersionId"]
    token = sm.rotate_secret(SecretId=name, RotationLambdaARN=fn)["VersionId"]
    # Two attempts (the server's setting here), each failing at setSecret, the value of createSecret kept.
    wait_for(lambda: pending_value(sm, name) == token)
    # The last attempt has failed when the server says so (a bounded wait, not a sleep).
    wait_for(lambda: f"rotation {token} attempt 2 failed: setSecret failed" in rot_server.log(), what="attempt 2")
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages == {first: ["AWSCURRENT"], token: ["AWSPENDING"]}
    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(SecretId=name)
    assert exc.value.response["Error"] == {
        "Code": "InvalidRequestException",
        "Message": "A previous rotation isn't complete. That rotation will be reattempted.",
    }
    manual = sm.put_secret_value(SecretId=name, SecretString="by hand")["VersionId"]
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages[manual] == ["AWSCURRENT"] and "AWSPENDING" not in stages.get(token, [])


def test_value_set_by_hand_during_create_secret_leaves_no_stuck_pending_label(clients, rot_server):
    """A manual AWSCURRENT abandons the rotation; the function's createSecret, still running, then
    puts AWSPENDING back. The engine removes it when it stops the job, so a later RotateSecret is
    accepted instead of being refused forever ("A previous rotation isn't complete")."""
    sm, lam = clients
    name = f"rot-{uuid.uuid4().hex[:8]}"
    fn = make_function(lam, name, env={"SLEEP_STEP": "createSecret", "SLEEP_SECONDS": "3"})
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    token = sm.rotate_secret(SecretId=name, RotationLambdaARN=fn)["VersionId"]
    trail = rot_server.client("cloudtrail")

    def function_started() -> bool:  # its DescribeSecret is in the trail: it now sleeps before its put
        events = trail.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": arn}])
        return any(
            e["EventName"] == "DescribeSecret"
            and "assumed-role" in json.loads(e["CloudTrailEvent"])["userIdentity"]["arn"]
            for e in events["Events"]
        )

    wait_for(function_started)
    manual = sm.put_secret_value(SecretId=name, SecretString="by hand")["VersionId"]

    def function_put_landed() -> bool:
        try:
            return sm.get_secret_value(SecretId=name, VersionId=token)["SecretString"] != "by hand"
        except ClientError:
            return False

    wait_for(function_put_landed)
    wait_for(
        lambda: all("AWSPENDING" not in s for s in sm.describe_secret(SecretId=name)["VersionIdsToStages"].values())
    )
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages[manual] == ["AWSCURRENT"]
    assert sm.rotate_secret(SecretId=name)["VersionId"] != token


def test_cancel_keeps_configuration_and_drops_the_next_date(clients):
    sm, lam = clients
    name = f"rot-{uuid.uuid4().hex[:8]}"
    fn = make_function(lam, name)
    sm.create_secret(Name=name, SecretString="v")
    sm.rotate_secret(
        SecretId=name,
        RotationLambdaARN=fn,
        RotationRules={"ScheduleExpression": "rate(10 days)"},
        RotateImmediately=False,
    )
    assert "NextRotationDate" in sm.describe_secret(SecretId=name)
    answer = sm.cancel_rotate_secret(SecretId=name)
    assert {"ARN", "Name"} <= set(answer)
    described = sm.describe_secret(SecretId=name)
    assert described["RotationEnabled"] is False
    assert described["RotationLambdaARN"] == fn
    assert described["RotationRules"]["ScheduleExpression"] == "rate(10 days)"
    assert "NextRotationDate" not in described


def test_rotate_immediately_false_only_tests(clients):
    sm, lam = clients
    name = f"rot-{uuid.uuid4().hex[:8]}"
    fn = make_function(lam, name)
    first = sm.create_secret(Name=name, SecretString="v")["VersionId"]
    token = sm.rotate_secret(
        SecretId=name, RotationLambdaARN=fn, RotationRules={"AutomaticallyAfterDays": 7}, RotateImmediately=False
    )["VersionId"]
    wait_for(lambda: token not in sm.describe_secret(SecretId=name)["VersionIdsToStages"])
    described = sm.describe_secret(SecretId=name)
    assert described["VersionIdsToStages"] == {first: ["AWSCURRENT"]}
    assert "LastRotatedDate" not in described
    assert described["NextRotationDate"].timestamp() > time.time() + 6 * 86400


def test_lambda_invoke_and_logs(clients):
    _sm, lam = clients
    name = f"fn-{uuid.uuid4().hex[:8]}"
    source = (
        "def handler(event, context):\n    print('hello', event['x'])\n    if event.get('boom'):\n"
        "        raise ValueError('boom')\n    return {'twice': event['x'] * 2}\n"
    )
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=rotation_role(lam._strongroom_iam),
        Handler="lambda_function.handler",
        Code={"ZipFile": zipped(source)},
    )
    out = lam.invoke(FunctionName=name, Payload=json.dumps({"x": 21}), LogType="Tail")
    assert json.loads(out["Payload"].read()) == {"twice": 42}
    assert "hello 21" in __import__("base64").b64decode(out["LogResult"]).decode()
    failed = lam.invoke(FunctionName=name, Payload=json.dumps({"x": 1, "boom": True}))
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorMessage"] == "boom"
    with pytest.raises(ClientError) as exc:
        lam.get_function(FunctionName=name + "-missing")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    config = lam.get_function_configuration(FunctionName=name)
    assert config["Handler"] == "lambda_function.handler" and config["Runtime"] == "python3.11"
    assert name in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    lam.delete_function(FunctionName=name)
    with pytest.raises(ClientError):
        lam.get_function(FunctionName=name)


def test_kill_9_mid_rotation_resumes_exactly_once(tmp_path):
    data_dir = tmp_path / "data"
    srv = ServerProcess(data_dir=data_dir, env=FAST).start()
    sm, lam = srv.client(), lambda_client(srv)
    fn = make_function(lam, "slow", env={"SLEEP_STEP": "setSecret", "SLEEP_SECONDS": "3"})
    first = sm.create_secret(Name="crashy", SecretString="v")["VersionId"]
    token = sm.rotate_secret(SecretId="crashy", RotationLambdaARN=fn)["VersionId"]
    wait_for(lambda: pending_value(sm, "crashy"))  # createSecret done, setSecret sleeping
    srv.kill()
    with ServerProcess(data_dir=data_dir, env=FAST) as again:
        sm = again.client()
        wait_for(lambda: "LastRotatedDate" in sm.describe_secret(SecretId="crashy"), timeout=40)
        versions = sm.list_secret_version_ids(SecretId="crashy", IncludeDeprecated=True)["Versions"]
        assert {v["VersionId"]: v["VersionStages"] for v in versions} == {token: ["AWSCURRENT"], first: ["AWSPREVIOUS"]}


def test_function_timeout_kills_the_worker(clients):
    _, lam = clients
    name = f"slow-{uuid.uuid4().hex[:8]}"
    source = "import time\ndef handler(event, context):\n    time.sleep(30)\n"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=rotation_role(lam._strongroom_iam),
        Handler="lambda_function.handler",
        Code={"ZipFile": zipped(source)},
        Timeout=1,
    )
    # No stopwatch: a worker left running would end its 30 s sleep and answer null, without a
    # FunctionError; only the timeout's kill answers this.
    out = lam.invoke(FunctionName=name, Payload=b"{}")
    assert out["FunctionError"] == "Unhandled"
    assert json.loads(out["Payload"].read())["errorMessage"] == "Task timed out after 1.00 seconds"


def test_two_nodes_on_one_postgresql_rotate_once(pg_url):
    import base64
    import os

    from strongroom.testing import postgres_schema

    shared = {**FAST, "STRONGROOM_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    base = pg_url.split("?", 1)[0]  # a schema of its own: this deployment has its own master key
    with (
        postgres_schema(base) as url,
        ServerProcess(database_url=url, env=shared) as a,
        ServerProcess(database_url=url, env=shared) as b,
    ):
        pg_url = url
        sm_a, sm_b, lam = a.client(), b.client(), lambda_client(a)
        name = f"two-{uuid.uuid4().hex[:8]}"
        fn = make_function(lam, name, env={"SLEEP_STEP": "setSecret", "SLEEP_SECONDS": "1"})
        first = sm_a.create_secret(Name=name, SecretString="v")["VersionId"]
        tokens = []
        for _ in range(3):
            tokens.append(sm_b.rotate_secret(SecretId=name, RotationLambdaARN=fn)["VersionId"])
            wait_for(
                lambda: (
                    "AWSPENDING"
                    not in functools.reduce(
                        operator.iadd, sm_a.describe_secret(SecretId=name)["VersionIdsToStages"].values(), []
                    )
                )
            )
        versions = sm_a.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
        assert {v["VersionId"] for v in versions} == {first, *tokens}
        assert sm_b.get_secret_value(SecretId=name)["VersionId"] == tokens[-1]
        import psycopg

        with psycopg.connect(pg_url) as conn:
            steps = conn.execute(
                "SELECT r.token, count(*) FROM rotation_steps s JOIN rotations r "
                "ON r.id = s.rotation_id JOIN secrets x ON x.id = r.secret_id WHERE x.name = %s "
                "GROUP BY r.token",
                (name,),
            ).fetchall()
        assert dict(steps) == dict.fromkeys(tokens, 4)  # each step ran once, on one node


def test_history_from_the_command_line(tmp_path):
    import subprocess
    import sys

    data_dir = tmp_path / "data"
    with ServerProcess(data_dir=data_dir, env=FAST) as srv:
        sm, lam = srv.client(), lambda_client(srv)
        fn = make_function(lam, "hist", env={"FAIL_STEP": "testSecret"})
        sm.create_secret(Name="hist", SecretString="v")
        token = sm.rotate_secret(SecretId="hist", RotationLambdaARN=fn)["VersionId"]
        wait_for(
            lambda: (
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "strongroom.cli.main",
                        "rotation",
                        "history",
                        "hist",
                        "--data-dir",
                        str(data_dir),
                        "--json",
                    ],
                    capture_output=True,
                    text=True,
                ).stdout.count('"State": "failed"')
                == 1
            )
        )
    out = subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", "rotation", "history", "hist", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert token in out and "failed" in out
    assert "testSecret" in out and "failing on purpose in testSecret" in out
    assert "#2 finishSecret" not in out  # an attempt stops at its failed step


def test_invocation_logs_are_kept_encrypted_and_read_back(tmp_path):
    import subprocess
    import sys

    data_dir = tmp_path / "data"
    marker = "PRINTED-" + uuid.uuid4().hex
    with ServerProcess(data_dir=data_dir, env=FAST) as srv:
        lam = srv.client("lambda")
        # The code holds the marker reversed (code is stored as uploaded); only the output has it.
        source = f"def handler(event, context):\n    print('{marker[::-1]}'[::-1], event.get('n'))\n    return 1\n"
        lam.create_function(
            FunctionName="talker",
            Runtime="python3.11",
            Role=rotation_role(srv.client("iam")),
            Handler="lambda_function.handler",
            Code={"ZipFile": zipped(source)},
        )
        for n in range(3):
            lam.invoke(FunctionName="talker", Payload=json.dumps({"n": n}))["Payload"].read()
        for path in data_dir.rglob("*"):  # what functions print is stored, but never in clear
            if path.is_file():
                assert marker.encode() not in path.read_bytes(), path
    out = subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", "logs", "talker", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.count(marker) == 3 and f"{marker} 2" in out
    assert out.count("succeeded") == 3


def test_caller_text_cannot_forge_a_server_log_line(clients, rot_server):
    """A ClientRequestToken is caller text, and the engine logs it when an attempt fails: a newline
    in it stays inside its own line, escaped."""
    sm, lam = clients
    name = f"rot-{uuid.uuid4().hex[:8]}"
    fn = make_function(lam, name, env={"FAIL_STEP": "createSecret"})
    sm.create_secret(Name=name, SecretString="v")
    token = "x" * 20 + "\nFORGED ERROR admin\r"
    sm.rotate_secret(SecretId=name, RotationLambdaARN=fn, ClientRequestToken=token)
    wait_for(lambda: "\\x0aFORGED ERROR admin\\x0d" in rot_server.log())
    assert not any(line.startswith("FORGED") for line in rot_server.log().splitlines())


def test_function_workers_run_on_the_cpus_named(tmp_path):
    """STRONGROOM_FUNCTION_CPUS keeps rotation functions off the cores that serve requests."""
    source = "import os\ndef handler(event, context):\n    return sorted(os.sched_getaffinity(0))\n"
    cpus = sorted(os.sched_getaffinity(0))
    with ServerProcess(env={"STRONGROOM_FUNCTION_CPUS": str(cpus[-1])}) as srv:
        lam = srv.client("lambda")
        lam.create_function(
            FunctionName="where",
            Runtime="python3.11",
            Role=rotation_role(srv.client("iam")),
            Handler="lambda_function.handler",
            Code={"ZipFile": zipped(source)},
        )
        assert json.loads(lam.invoke(FunctionName="where")["Payload"].read()) == [cpus[-1]]
    with pytest.raises(RuntimeError) as exc:
        ServerProcess(env={"STRONGROOM_FUNCTION_CPUS": "0-4096"}).start()
    assert "STRONGROOM_FUNCTION_CPUS: CPU list '0-4096' names CPUs this machine does not have" in str(exc.value)


@pytest.mark.parametrize("text, cpus", [("1", {1}), ("0-1", {0, 1}), ("0, 1", {0, 1}), ("1-1,0", {0, 1})])
def test_cpu_lists_read_as_taskset_writes_them(text, cpus):
    assert parse_cpus(text) == cpus


@pytest.mark.parametrize("text", ["", "x", "1-", "-1", "99999"])
def test_cpu_lists_refused(text):
    with pytest.raises(ValueError):
        parse_cpus(text)


def test_unhandled_error_logs_as_lambdas_runtime_with_one_request_id(tmp_path):
    """An unhandled error is logged as Lambda's Python runtime logs it (``[ERROR] Type: message``
    and the traceback of the function's frames), and every line naming a request id names the
    invocation's, the one ``strongroom logs`` shows."""
    import base64
    import re
    import subprocess
    import sys

    data_dir = tmp_path / "data"
    source = (
        "import logging\n\ndef handler(event, context):\n    logging.getLogger().info('about to fail')\n"
        "    raise ValueError('boom ' + str(event['n']))\n"
    )
    with ServerProcess(data_dir=data_dir, env=FAST) as srv:
        lam = srv.client("lambda")
        lam.create_function(
            FunctionName="failer",
            Runtime="python3.11",
            Role=rotation_role(srv.client("iam")),
            Handler="lambda_function.handler",
            Code={"ZipFile": zipped(source)},
        )
        out = lam.invoke(FunctionName="failer", Payload=json.dumps({"n": 7}), LogType="Tail")
    assert out["FunctionError"] == "Unhandled"
    lines = base64.b64decode(out["LogResult"]).decode().splitlines()
    request_id = lines[0].split()[2]
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert re.fullmatch(rf"\[INFO\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{request_id}\tabout to fail", lines[1])
    assert lines[2] == "[ERROR] ValueError: boom 7"
    assert lines[3] == "Traceback (most recent call last):"
    assert lines[4].endswith('lambda_function.py", line 5, in handler'), lines
    assert lines[5] == "    raise ValueError('boom ' + str(event['n']))"
    assert lines[6] == f"END RequestId: {request_id}"
    assert lines[7].startswith(f"REPORT RequestId: {request_id}\t")
    shown = subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", "logs", "failer", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown.splitlines()[0].endswith(request_id) and "ValueError: boom 7" in shown


def test_a_refused_rotate_secret_that_requeues_is_one_record_in_table_and_files(clients, rot_server):
    """RotateSecret while an earlier rotation is stalled queues that rotation again (a change) and
    answers InvalidRequestException. Its audit record is one record, with the error, in the table
    (LookupEvents) and in the JSON-lines files alike: before, the table held a success record and
    an error record and the files the error record only."""
    sm, lam = clients
    name = f"rot-{uuid.uuid4().hex[:8]}"
    fn = make_function(lam, name, env={"FAIL_STEP": "setSecret"})
    sm.create_secret(Name=name, SecretString="v")
    token = sm.rotate_secret(SecretId=name, RotationLambdaARN=fn)["VersionId"]
    wait_for(lambda: f"rotation {token} attempt 2 failed: setSecret failed" in rot_server.log(), what="attempt 2")
    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(SecretId=name)
    assert exc.value.response["Error"]["Code"] == "InvalidRequestException"
    request_id = exc.value.response["ResponseMetadata"]["RequestId"]

    def in_table() -> list[dict]:
        events = rot_server.client("cloudtrail").lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "RotateSecret"}]
        )["Events"]
        records = [json.loads(e["CloudTrailEvent"]) for e in events]
        return [r for r in records if r["requestID"] == request_id]

    def in_files() -> list[dict]:
        assert rot_server.data_dir is not None
        lines = [line for f in (rot_server.data_dir / "audit").rglob("*.jsonl") for line in f.read_text().splitlines()]
        return [r for r in map(json.loads, lines) if r.get("requestID") == request_id]

    wait_for(lambda: in_files(), what="the refusal's line in the audit files")
    table, files = in_table(), in_files()
    assert len(table) == 1 and len(files) == 1, (table, files)
    assert table[0]["eventID"] == files[0]["eventID"]
    assert files[0]["errorCode"] == "InvalidRequestException"
    assert files[0]["errorMessage"] == "A previous rotation isn't complete. That rotation will be reattempted."
    # The stalled rotation was queued again, its attempts counted afresh: it runs (and fails) again.
    wait_for(
        lambda: rot_server.log().count(f"rotation {token} attempt 1 failed") == 2,
        what="the reattempt",
    )
