"""GetRandomPassword, resource policies and replication."""

from __future__ import annotations

import json
import string

import pytest
from botocore.exceptions import ClientError

from strongroom.domain.password import PUNCTUATION


def test_random_password_defaults(sm):
    pw = sm.get_random_password()["RandomPassword"]
    assert len(pw) == 32
    assert any(c in string.ascii_lowercase for c in pw)
    assert any(c in string.ascii_uppercase for c in pw)
    assert any(c in string.digits for c in pw)
    assert any(c in PUNCTUATION for c in pw)
    assert " " not in pw


def test_random_password_options(sm):
    pw = sm.get_random_password(
        PasswordLength=64, ExcludePunctuation=True, ExcludeCharacters="abcABC123", IncludeSpace=True
    )["RandomPassword"]
    assert len(pw) == 64
    assert not set(pw) & set("abcABC123" + PUNCTUATION)
    assert " " in pw


def test_random_password_impossible(sm):
    with pytest.raises(ClientError) as exc:
        sm.get_random_password(
            ExcludeLowercase=True, ExcludeUppercase=True, ExcludeNumbers=True, ExcludePunctuation=True
        )
    assert exc.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        sm.get_random_password(PasswordLength=4097)
    assert exc.value.response["Error"]["Code"] in ("InvalidParameterException", "ValidationException")


POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        ],
    }
)
PUBLIC = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
        ],
    }
)


def test_resource_policy_round_trip(sm, name):
    sm.create_secret(Name=name, SecretString="x")
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)
    sm.put_resource_policy(SecretId=name, ResourcePolicy=POLICY)
    assert json.loads(sm.get_resource_policy(SecretId=name)["ResourcePolicy"]) == json.loads(POLICY)
    sm.delete_resource_policy(SecretId=name)
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)


def test_block_public_policy(sm, name):
    sm.create_secret(Name=name, SecretString="x")
    with pytest.raises(ClientError) as exc:
        sm.put_resource_policy(SecretId=name, ResourcePolicy=PUBLIC, BlockPublicPolicy=True)
    assert exc.value.response["Error"]["Code"] == "PublicPolicyException"
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)
    sm.put_resource_policy(SecretId=name, ResourcePolicy=PUBLIC)  # not blocked by default


def test_malformed_policy(sm, name):
    sm.create_secret(Name=name, SecretString="x")
    with pytest.raises(ClientError) as exc:
        sm.put_resource_policy(SecretId=name, ResourcePolicy="{not json")
    assert exc.value.response["Error"]["Code"] == "MalformedPolicyDocumentException"
    out = sm.validate_resource_policy(ResourcePolicy="{not json")
    assert out["PolicyValidationPassed"] is False
    assert out["ValidationErrors"]
    assert sm.validate_resource_policy(ResourcePolicy=POLICY)["PolicyValidationPassed"] is True


def test_replication_keeps_replica_in_step(server, name):
    primary = server.client(region="us-east-1")
    replica = server.client(region="eu-west-1")
    arn = primary.create_secret(Name=name, SecretString="one")["ARN"]
    status = primary.replicate_secret_to_regions(SecretId=name, AddReplicaRegions=[{"Region": "eu-west-1"}])
    assert status["ReplicationStatus"][0]["Region"] == "eu-west-1"
    assert status["ReplicationStatus"][0]["Status"] == "InSync"
    replica_arn = arn.replace("us-east-1", "eu-west-1")
    assert replica.get_secret_value(SecretId=name)["SecretString"] == "one"
    assert replica.describe_secret(SecretId=name)["PrimaryRegion"] == "us-east-1"
    assert replica.describe_secret(SecretId=name)["ARN"] == replica_arn
    primary.put_secret_value(SecretId=name, SecretString="two")
    assert replica.get_secret_value(SecretId=name)["SecretString"] == "two"
    with pytest.raises(ClientError) as exc:
        replica.put_secret_value(SecretId=name, SecretString="three")
    assert exc.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:  # AWS's text, as quoted in gruntwork-io/cloud-nuke#435
        primary.delete_secret(SecretId=name)
    assert exc.value.response["Error"] == {
        "Code": "InvalidParameterException",
        "Message": f"You can't delete secret {arn} that still has replica regions [eu-west-1].",
    }
    primary.remove_regions_from_replication(SecretId=name, RemoveReplicaRegions=["eu-west-1"])
    with pytest.raises(ClientError) as exc:
        replica.get_secret_value(SecretId=name)
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_regions_are_separate_namespaces(server, name):
    east = server.client(region="us-east-1")
    west = server.client(region="us-west-2")
    east.create_secret(Name=name, SecretString="east")
    west.create_secret(Name=name, SecretString="west")
    assert east.get_secret_value(SecretId=name)["SecretString"] == "east"
    assert west.get_secret_value(SecretId=name)["SecretString"] == "west"
