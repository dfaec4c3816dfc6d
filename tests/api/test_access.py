"""Who may do what: IAM users, keys and policies, STS roles, and the refusals in AWS's words."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


def client_for(server, service: str, key: dict, token: str | None = None):  # type: ignore[no-untyped-def]
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        aws_session_token=token,
        config=Config(retries={"max_attempts": 1}),
    )


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture
def user(server):  # type: ignore[no-untyped-def]
    iam = server.client("iam")
    name = f"app-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return iam, name, key


def test_a_user_reads_one_secret_and_nothing_else(server, sm, name, user):
    iam, user_name, key = user
    allowed = sm.create_secret(Name=name, SecretString="mine")["ARN"]
    other = sm.create_secret(Name=name + "-other", SecretString="not mine")["ARN"]
    iam.put_user_policy(
        UserName=user_name,
        PolicyName="read-one",
        PolicyDocument=policy({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": allowed}),
    )
    app = client_for(server, "secretsmanager", key)
    assert app.get_secret_value(SecretId=name)["SecretString"] == "mine"
    with pytest.raises(ClientError) as exc:
        app.get_secret_value(SecretId=other)
    error = exc.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        f"User: arn:aws:iam::123456789012:user/{user_name} is not authorized to perform: "
        f"secretsmanager:GetSecretValue on resource: {other} because no identity-based "
        "policy allows the secretsmanager:GetSecretValue action"
    )
    with pytest.raises(ClientError) as exc:
        app.list_secrets()
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as exc:  # a secret that does not exist: refused, not revealed
        app.get_secret_value(SecretId=name + "-nowhere")
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    # Both the allowed and the refused call are in the trail.
    trail = server.client("cloudtrail")
    events = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "AccessKeyId", "AttributeValue": key["AccessKeyId"]}]
    )["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    assert {(r["eventName"], r.get("errorCode")) for r in records} >= {
        ("GetSecretValue", None),
        ("GetSecretValue", "AccessDeniedException"),
        ("ListSecrets", "AccessDeniedException"),
    }
    assert all(r["userIdentity"]["type"] == "IAMUser" for r in records)


def test_explicit_deny_wins_and_conditions_apply(server, sm, name, user):
    iam, user_name, key = user
    sm.create_secret(Name=name, SecretString="v", Tags=[{"Key": "team", "Value": "blue"}])
    sm.create_secret(Name=name + "-red", SecretString="v", Tags=[{"Key": "team", "Value": "red"}])
    iam.put_user_policy(
        UserName=user_name,
        PolicyName="by-tag",
        PolicyDocument=policy(
            {
                "Effect": "Allow",
                "Action": "secretsmanager:*",
                "Resource": "*",
                "Condition": {"StringEquals": {"secretsmanager:ResourceTag/team": "blue"}},
            },
            {"Effect": "Deny", "Action": "secretsmanager:DeleteSecret", "Resource": "*"},
        ),
    )
    app = client_for(server, "secretsmanager", key)
    assert app.describe_secret(SecretId=name)["Name"] == name
    with pytest.raises(ClientError) as exc:
        app.describe_secret(SecretId=name + "-red")
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as exc:
        app.delete_secret(SecretId=name)
    assert exc.value.response["Error"]["Message"].endswith("with an explicit deny in an identity-based policy")


def test_a_resource_policy_grants_a_user(server, sm, name, user):
    _, user_name, key = user
    arn = sm.create_secret(Name=name, SecretString="shared")["ARN"]
    sm.put_resource_policy(
        SecretId=name,
        ResourcePolicy=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::123456789012:user/{user_name}"},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        ),
    )
    app = client_for(server, "secretsmanager", key)
    assert app.get_secret_value(SecretId=arn)["SecretString"] == "shared"


def test_malformed_policies_are_refused_when_stored(server, user):
    iam, user_name, _ = user
    for document in (
        policy(
            {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEqualz": {"aws:SourceIp": "1"}}}
        ),
        policy({"Effect": "Allow", "Action": "*", "Resource": "*", "Surprise": 1}),
        policy(
            {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:NoSuchKey": "1"}}}
        ),
        "{not json",
    ):
        with pytest.raises(ClientError) as exc:
            iam.put_user_policy(UserName=user_name, PolicyName="bad", PolicyDocument=document)
        assert exc.value.response["Error"]["Code"] == "MalformedPolicyDocument"
    assert iam.list_user_policies(UserName=user_name)["PolicyNames"] == []


def test_deactivated_and_deleted_keys_stop_working(server, user):
    iam, user_name, key = user
    iam.put_user_policy(
        UserName=user_name,
        PolicyName="p",
        PolicyDocument=policy({"Effect": "Allow", "Action": "secretsmanager:GetRandomPassword", "Resource": "*"}),
    )
    app = client_for(server, "secretsmanager", key)
    app.get_random_password()
    iam.update_access_key(UserName=user_name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as exc:
        app.get_random_password()
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert [k["Status"] for k in iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]] == ["Inactive"]
    iam.delete_access_key(UserName=user_name, AccessKeyId=key["AccessKeyId"])
    with pytest.raises(ClientError) as exc:
        iam.delete_user(UserName=user_name)
    assert exc.value.response["Error"]["Code"] == "DeleteConflict"  # its inline policy is still there
    iam.delete_user_policy(UserName=user_name, PolicyName="p")
    iam.delete_user(UserName=user_name)
    with pytest.raises(ClientError) as exc:
        iam.get_user(UserName=user_name)
    assert exc.value.response["Error"]["Code"] == "NoSuchEntity"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_assume_role_gives_temporary_credentials_limited_to_the_role(server, sm, name, user):
    iam, user_name, key = user
    role = f"reader-{uuid.uuid4().hex[:6]}"
    user_arn = f"arn:aws:iam::123456789012:user/{user_name}"
    role_arn = iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=policy(
            {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}
        ),
    )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=role,
        PolicyName="read",
        PolicyDocument=policy({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}),
    )
    sm.create_secret(Name=name, SecretString="for the role")
    sts = client_for(server, "sts", key)
    assert sts.get_caller_identity()["Arn"] == user_arn
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="s1", DurationSeconds=900)["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    as_role = client_for(server, "secretsmanager", creds, token=creds["SessionToken"])
    assert as_role.get_secret_value(SecretId=name)["SecretString"] == "for the role"
    with pytest.raises(ClientError) as exc:
        as_role.delete_secret(SecretId=name)
    assert f"assumed-role/{role}/s1" in exc.value.response["Error"]["Message"]
    who = client_for(server, "sts", creds, token=creds["SessionToken"]).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::123456789012:assumed-role/{role}/s1"
    # Without the session token the temporary key is refused.
    with pytest.raises(ClientError) as exc:
        client_for(server, "secretsmanager", creds).get_secret_value(SecretId=name)
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"
    # A role whose trust policy does not name the caller cannot be assumed.
    other = iam.create_role(
        RoleName=role + "-x",
        AssumeRolePolicyDocument=policy(
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ),
    )
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=other["Role"]["Arn"], RoleSessionName="s2")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"


def test_a_resource_policy_the_evaluator_cannot_honour_is_refused(sm, name):
    sm.create_secret(Name=name, SecretString="v")
    document = policy(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringEqualsSometimes": {"aws:SourceIp": "10.0.0.1"}},
        }
    )
    with pytest.raises(ClientError) as exc:
        sm.put_resource_policy(SecretId=name, ResourcePolicy=document)
    assert exc.value.response["Error"]["Code"] == "MalformedPolicyDocumentException"
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)
    validation = sm.validate_resource_policy(ResourcePolicy=document)
    assert validation["PolicyValidationPassed"] is False


def test_accounts_are_separate(tmp_path):
    import configparser
    import subprocess
    import sys

    from strongroom.testing import ServerProcess

    data_dir = tmp_path / "data"
    with ServerProcess(data_dir=data_dir) as srv:
        creds = tmp_path / "other-account"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "strongroom.cli.main",
                "admin",
                "create-account",
                "210987654321",
                "--data-dir",
                str(data_dir),
                "--credentials-file",
                str(creds),
            ],
            check=True,
            capture_output=True,
        )
        parsed = configparser.ConfigParser()
        parsed.read(creds)
        key = {
            "AccessKeyId": parsed["strongroom"]["aws_access_key_id"],
            "SecretAccessKey": parsed["strongroom"]["aws_secret_access_key"],
        }
        other = client_for(srv, "secretsmanager", key)
        mine = srv.client()
        mine.create_secret(Name="same-name", SecretString="account one")
        created = other.create_secret(Name="same-name", SecretString="account two")
        assert created["ARN"].startswith("arn:aws:secretsmanager:us-east-1:210987654321:secret:same-name-")
        assert other.get_secret_value(SecretId="same-name")["SecretString"] == "account two"
        assert mine.get_secret_value(SecretId="same-name")["SecretString"] == "account one"
        with pytest.raises(ClientError):  # another account's ARN is not reachable from here
            mine.get_secret_value(SecretId=created["ARN"])
        assert client_for(srv, "sts", key).get_caller_identity()["Account"] == "210987654321"
        again = subprocess.run(
            [
                sys.executable,
                "-m",
                "strongroom.cli.main",
                "admin",
                "create-account",
                "210987654321",
                "--data-dir",
                str(data_dir),
            ],
            capture_output=True,
            text=True,
        )
        assert again.returncode == 1 and "already exists" in again.stderr


def test_cross_account_reads_need_both_sides_and_a_customer_key(tmp_path):
    import configparser
    import subprocess
    import sys

    from strongroom.testing import ServerProcess

    data_dir = tmp_path / "data"
    with ServerProcess(data_dir=data_dir) as srv:
        creds = tmp_path / "owner"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "strongroom.cli.main",
                "admin",
                "create-account",
                "210987654321",
                "--data-dir",
                str(data_dir),
                "--credentials-file",
                str(creds),
            ],
            check=True,
            capture_output=True,
        )
        parsed = configparser.ConfigParser()
        parsed.read(creds)
        owner = client_for(
            srv,
            "secretsmanager",
            {
                "AccessKeyId": parsed["strongroom"]["aws_access_key_id"],
                "SecretAccessKey": parsed["strongroom"]["aws_secret_access_key"],
            },
        )
        shared = owner.create_secret(Name="shared", SecretString="for account one", KmsKeyId="alias/shared")["ARN"]
        default_key = owner.create_secret(Name="default-key", SecretString="x")["ARN"]
        caller = srv.client()  # the root of 123456789012
        with pytest.raises(ClientError) as exc:  # no resource policy: the owner's side does not allow
            caller.get_secret_value(SecretId=shared)
        assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "because no resource-based policy allows" in exc.value.response["Error"]["Message"]
        grant = policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        )
        owner.put_resource_policy(SecretId="shared", ResourcePolicy=grant)
        owner.put_resource_policy(SecretId="default-key", ResourcePolicy=grant)
        assert caller.get_secret_value(SecretId=shared)["SecretString"] == "for account one"
        with pytest.raises(ClientError) as exc:  # by name it is this account's namespace: not there
            caller.get_secret_value(SecretId="shared")
        assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
        with pytest.raises(ClientError) as exc:  # the default key cannot be used from another account
            caller.get_secret_value(SecretId=default_key)
        assert exc.value.response["Error"] == {
            "Code": "InvalidRequestException",
            "Message": "You can't access a secret from a different AWS account if you encrypt the secret with "
            "the default KMS service key.",
        }
        with pytest.raises(ClientError) as exc:  # the grant covers GetSecretValue only
            caller.delete_secret(SecretId=shared)
        assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
        # An IAM user of the calling account needs its own policy too: both sides must allow.
        iam = srv.client("iam")
        iam.create_user(UserName="reader")
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        owner.put_resource_policy(
            SecretId="shared",
            ResourcePolicy=policy(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "123456789012"},
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*",
                }
            ),
        )
        reader = client_for(srv, "secretsmanager", key)
        with pytest.raises(ClientError) as exc:
            reader.get_secret_value(SecretId=shared)
        assert "because no identity-based policy allows" in exc.value.response["Error"]["Message"]
        iam.put_user_policy(
            UserName="reader",
            PolicyName="p",
            PolicyDocument=policy({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": shared}),
        )
        assert reader.get_secret_value(SecretId=shared)["SecretString"] == "for account one"
