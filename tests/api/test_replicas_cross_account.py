"""Cross-account replicas between two accounts of one strongroom, through boto3, on both engines.

The flow is AWS's: the replica account creates the replica (CreateSecret with
CrossAccountPrimaryARN and its own customer managed key), the primary account associates it
(AssociateCrossAccountReplica), the value follows the primary, and either side ends the link
(DisassociateCrossAccountReplica on the primary, StopReplicationToReplica on the replica).
"""

from __future__ import annotations

import configparser
import json
import secrets
import subprocess
import sys
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

PRIMARY_ACCOUNT = "123456789012"  # the server's own account: server.client() is its root


def _client(server: Any, service: str, key: dict[str, str], region: str = "us-east-1") -> Any:
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        region_name=region,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1}),
    )


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _error(exc: pytest.ExceptionInfo[ClientError]) -> dict[str, str]:
    return exc.value.response["Error"]  # type: ignore[no-any-return]


class Account:
    """Another account of the same server, made with ``strongroom admin create-account``."""

    def __init__(self, server: Any, tmp_dir: Any) -> None:
        self.id = "".join(secrets.choice("0123456789") for _ in range(12))
        creds = tmp_dir / f"account-{self.id}.ini"
        args = [
            sys.executable,
            "-m",
            "strongroom.cli.main",
            "admin",
            "create-account",
            self.id,
            "--data-dir",
            str(server.data_dir),
            "--credentials-file",
            str(creds),
        ]
        if server.database_url:
            args += ["--database-url", server.database_url]
        subprocess.run(args, check=True, capture_output=True)
        parsed = configparser.ConfigParser()
        parsed.read(creds)
        self.key = {
            "AccessKeyId": parsed["strongroom"]["aws_access_key_id"],
            "SecretAccessKey": parsed["strongroom"]["aws_secret_access_key"],
        }
        self.server = server

    def client(self, service: str = "secretsmanager", region: str = "us-east-1") -> Any:
        return _client(self.server, service, self.key, region)


@pytest.fixture(scope="module")
def other(server: Any, tmp_path_factory: pytest.TempPathFactory) -> Account:
    """The replica account (one per storage engine)."""
    return Account(server, tmp_path_factory.mktemp("accounts"))


def _pair(server: Any, other: Account, name: str, value: str = "one") -> tuple[str, str]:
    """A primary in the server's account and a replica of it in ``other``: (primary ARN, replica ARN)."""
    primary = server.client().create_secret(Name=name, SecretString=value)["ARN"]
    replica = other.client().create_secret(
        Name=name + "-replica", CrossAccountPrimaryARN=primary, KmsKeyId="alias/replicas"
    )["ARN"]
    return primary, replica


# ------------------------------------------------------------------------------- happy path


def test_replica_follows_every_new_version_of_its_primary(server, other, name):
    mine, theirs = server.client(), other.client()
    primary = mine.create_secret(Name=name, SecretString="one", Tags=[{"Key": "side", "Value": "primary"}])
    created = theirs.create_secret(
        Name=name + "-replica",
        CrossAccountPrimaryARN=primary["ARN"],
        KmsKeyId="alias/replicas",
        Tags=[{"Key": "side", "Value": "replica"}],
    )
    replica = created["ARN"]
    assert replica.startswith(f"arn:aws:secretsmanager:us-east-1:{other.id}:secret:{name}-replica-")
    assert "VersionId" not in created
    # Created, not yet associated: no value, status Pending, and the managed policy that lets the
    # primary's account accept the replication.
    described = theirs.describe_secret(SecretId=replica)
    assert described["CrossAccountPrimary"] == {"PrimarySecretARN": primary["ARN"], "ReplicationStatus": "Pending"}
    assert "CrossAccountReplicas" not in described
    with pytest.raises(ClientError) as exc:
        theirs.get_secret_value(SecretId=replica)
    assert _error(exc)["Code"] == "ResourceNotFoundException"
    listed = theirs.list_resource_policies(SecretId=replica)["ResourcePolicies"]
    assert [p["PolicyName"] for p in listed] == ["cross-account-replication"]
    managed = json.loads(
        theirs.get_resource_policy(SecretId=replica, PolicyName="cross-account-replication")["ResourcePolicy"]
    )
    assert managed["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{PRIMARY_ACCOUNT}:root"}
    assert managed["Statement"][0]["Action"] == "secretsmanager:AcceptCrossAccountReplication"
    assert "CrossAccountReplicas" not in mine.describe_secret(SecretId=name)

    answer = mine.associate_cross_account_replica(SecretId=name, CrossAccountReplicaARN=replica)
    assert {k: v for k, v in answer.items() if k != "ResponseMetadata"} == {
        "ARN": primary["ARN"],
        "CrossAccountReplicaARN": replica,
        "ReplicationStatus": "InSync",
    }
    assert mine.describe_secret(SecretId=name)["CrossAccountReplicas"] == [
        {"ReplicaSecretARN": replica, "ReplicationStatus": "InSync"}
    ]
    described = theirs.describe_secret(SecretId=replica)
    assert described["CrossAccountPrimary"] == {"PrimarySecretARN": primary["ARN"], "ReplicationStatus": "InSync"}
    got = theirs.get_secret_value(SecretId=replica)
    assert (got["SecretString"], got["VersionId"], got["VersionStages"]) == (
        "one",
        primary["VersionId"],
        ["AWSCURRENT"],
    )

    # Every new version of the primary reaches the replica, with its labels.
    second = mine.put_secret_value(SecretId=name, SecretString="two")["VersionId"]
    assert theirs.get_secret_value(SecretId=replica)["SecretString"] == "two"
    assert theirs.get_secret_value(SecretId=replica, VersionStage="AWSPREVIOUS")["SecretString"] == "one"
    third = mine.update_secret(SecretId=name, SecretString="three")["VersionId"]
    assert theirs.get_secret_value(SecretId=replica)["VersionId"] == third
    mine.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=second, RemoveFromVersionId=third
    )
    assert theirs.get_secret_value(SecretId=replica)["SecretString"] == "two"
    mine.put_secret_value(SecretId=name, SecretBinary=b"\x00\xffbinary")
    assert theirs.get_secret_value(SecretId=replica)["SecretBinary"] == b"\x00\xffbinary"
    assert (
        theirs.describe_secret(SecretId=replica)["VersionIdsToStages"]
        == mine.describe_secret(SecretId=name)["VersionIdsToStages"]
    )

    # Only values travel: the replica keeps its own key, tags and policies.
    mine.tag_resource(SecretId=name, Tags=[{"Key": "extra", "Value": "x"}])
    mine.update_secret(SecretId=name, Description="the primary's own")
    described = theirs.describe_secret(SecretId=replica)
    assert described["Tags"] == [{"Key": "side", "Value": "replica"}]
    assert described["KmsKeyId"] == "alias/replicas"
    assert "Description" not in described

    # Associating again is a repair: same answer, still in sync.
    again = mine.associate_cross_account_replica(SecretId=primary["ARN"], CrossAccountReplicaARN=replica)
    assert again["ReplicationStatus"] == "InSync"
    assert mine.describe_secret(SecretId=name)["CrossAccountReplicas"] == [
        {"ReplicaSecretARN": replica, "ReplicationStatus": "InSync"}
    ]

    # Both calls are in the trail of the account that made them.
    events = server.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AssociateCrossAccountReplica"}]
    )["Events"]
    assert any(replica in e["CloudTrailEvent"] for e in events)


def test_a_replication_role_is_shown_on_the_primary(server, other, name):
    primary, replica = _pair(server, other, name)
    role = f"arn:aws:iam::{PRIMARY_ACCOUNT}:role/replicator"
    server.client().associate_cross_account_replica(
        SecretId=primary, CrossAccountReplicaARN=replica, ReplicationRoleARN=role, ReplicaRestriction="NoRestriction"
    )
    assert server.client().describe_secret(SecretId=primary)["CrossAccountReplicas"] == [
        {"ReplicaSecretARN": replica, "ReplicationRoleARN": role, "ReplicationStatus": "InSync"}
    ]


# ---------------------------------------------------------------------- what a replica is


def test_the_replica_is_read_only_but_keeps_its_own_metadata(server, other, name):
    primary, replica = _pair(server, other, name)
    mine, theirs = server.client(), other.client()
    mine.associate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=replica)
    current = theirs.get_secret_value(SecretId=replica)["VersionId"]
    function = f"arn:aws:lambda:us-east-1:{other.id}:function:f"
    refused = [
        lambda: theirs.put_secret_value(SecretId=replica, SecretString="mine now"),
        lambda: theirs.update_secret(SecretId=replica, SecretString="mine now"),
        lambda: theirs.update_secret(SecretId=replica, Description="mine now"),
        lambda: theirs.update_secret_version_stage(SecretId=replica, VersionStage="X", MoveToVersionId=current),
        lambda: theirs.replicate_secret_to_regions(SecretId=replica, AddReplicaRegions=[{"Region": "eu-west-1"}]),
        lambda: theirs.rotate_secret(SecretId=replica, RotationLambdaARN=function),
        lambda: theirs.delete_secret(SecretId=replica),
        lambda: theirs.delete_secret(SecretId=replica, ForceDeleteWithoutRecovery=True),
    ]
    for call in refused:
        with pytest.raises(ClientError) as exc:
            call()
        assert _error(exc)["Code"] == "InvalidParameterException", _error(exc)
    assert theirs.get_secret_value(SecretId=replica)["SecretString"] == "one"
    # Its tags and resource policies are its own to change.
    theirs.tag_resource(SecretId=replica, Tags=[{"Key": "team", "Value": "b"}])
    theirs.untag_resource(SecretId=replica, TagKeys=["team"])
    theirs.put_resource_policy(
        SecretId=replica,
        ResourcePolicy=_policy(
            {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "*", "Resource": "*"}
        ),
    )
    names = [p["PolicyName"] for p in theirs.list_resource_policies(SecretId=replica)["ResourcePolicies"]]
    assert names == ["default", "cross-account-replication"]
    # The primary cannot be deleted while it has a replica.
    with pytest.raises(ClientError) as exc:
        mine.delete_secret(SecretId=primary, ForceDeleteWithoutRecovery=True)
    assert _error(exc)["Code"] == "InvalidParameterException"
    assert replica in _error(exc)["Message"]
    # The primary's account may accept replication into the replica, nothing more: no read.
    with pytest.raises(ClientError) as exc:
        mine.get_secret_value(SecretId=replica)
    assert _error(exc)["Code"] == "AccessDeniedException"
    assert "because no resource-based policy allows" in _error(exc)["Message"]


def test_the_default_key_rule_still_holds_across_accounts(server, other, name):
    # The primary lives under its account's default key: replication works, but the replica account
    # still cannot read the primary itself, whatever the primary's resource policy says.
    primary, replica = _pair(server, other, name)
    mine, theirs = server.client(), other.client()
    mine.associate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=replica)
    mine.put_resource_policy(
        SecretId=primary,
        ResourcePolicy=_policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{other.id}:root"},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        ),
    )
    with pytest.raises(ClientError) as exc:
        theirs.get_secret_value(SecretId=primary)
    assert _error(exc) == {
        "Code": "InvalidRequestException",
        "Message": "You can't access a secret from a different AWS account if you encrypt the secret with "
        "the default KMS service key.",
    }
    assert theirs.get_secret_value(SecretId=replica)["SecretString"] == "one"


# ---------------------------------------------------------------------------------- refusals


def test_create_replica_refusals(server, other, name):
    primary = server.client().create_secret(Name=name, SecretString="v")["ARN"]
    theirs = other.client()
    base = {"Name": name + "-replica", "CrossAccountPrimaryARN": primary, "KmsKeyId": "alias/replicas"}
    wrong: list[dict[str, Any]] = [
        {"SecretString": "v"},
        {"SecretBinary": b"v"},
        {"Description": "d"},
        {"Type": "t"},
        {"AddReplicaRegions": [{"Region": "eu-west-1"}]},
        {"KmsKeyId": None},  # no customer managed key
        {"KmsKeyId": "alias/aws/secretsmanager"},
        {"KmsKeyId": f"arn:aws:kms:us-east-1:{other.id}:alias/aws/secretsmanager"},
        {"CrossAccountPrimaryARN": primary.replace("us-east-1", "eu-west-1")},  # another region
        {"CrossAccountPrimaryARN": primary.replace(PRIMARY_ACCOUNT, other.id)},  # its own account
        {"CrossAccountPrimaryARN": "arn:aws:s3:::some-bucket/some-key"},
    ]
    for change in wrong:
        params = {k: v for k, v in {**base, **change}.items() if v is not None}
        with pytest.raises(ClientError) as exc:
            theirs.create_secret(**params)
        assert _error(exc)["Code"] == "InvalidParameterException", (change, _error(exc))
    with pytest.raises(ClientError) as exc:
        theirs.describe_secret(SecretId=name + "-replica")
    assert _error(exc)["Code"] == "ResourceNotFoundException"  # nothing was made
    theirs.create_secret(**base)
    with pytest.raises(ClientError) as exc:
        theirs.create_secret(**base)
    assert _error(exc)["Code"] == "ResourceExistsException"


def test_associate_refusals(server, other, name):
    mine, theirs = server.client(), other.client()
    primary, replica = _pair(server, other, name)
    standalone = theirs.create_secret(Name=name + "-plain", SecretString="v", KmsKeyId="alias/replicas")["ARN"]
    other_primary = mine.create_secret(Name=name + "-2", SecretString="v")["ARN"]
    of_other = theirs.create_secret(
        Name=name + "-of-2", CrossAccountPrimaryARN=other_primary, KmsKeyId="alias/replicas"
    )["ARN"]

    def refused(secret_id: str, replica_arn: str) -> dict[str, str]:
        with pytest.raises(ClientError) as exc:
            mine.associate_cross_account_replica(SecretId=secret_id, CrossAccountReplicaARN=replica_arn)
        return _error(exc)

    # Not made as a replica of this primary: the replica account did not agree to it. A plain
    # secret of the other account grants nothing to this one; a replica of another primary does
    # (its managed policy names this account), but not for this primary.
    assert refused(primary, standalone)["Code"] == "AccessDeniedException"
    assert refused(primary, of_other)["Code"] == "InvalidRequestException"
    # Not there at all.
    assert refused(primary, replica[:-6] + "zzzzzz")["Code"] == "ResourceNotFoundException"
    assert refused(name + "-nowhere", replica)["Code"] == "ResourceNotFoundException"
    # Same region, another account.
    assert refused(primary, replica.replace("us-east-1", "eu-west-1"))["Code"] == "InvalidParameterException"
    assert refused(primary, other_primary)["Code"] == "InvalidParameterException"
    # At most one cross-account replica per primary.
    mine.associate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=replica)
    second = theirs.create_secret(Name=name + "-second", CrossAccountPrimaryARN=primary, KmsKeyId="alias/replicas")[
        "ARN"
    ]
    assert refused(primary, second)["Code"] == "LimitExceededException"
    # A primary scheduled for deletion.
    mine.delete_secret(SecretId=other_primary, RecoveryWindowInDays=7)
    assert refused(other_primary, of_other) == {
        "Code": "InvalidRequestException",
        "Message": "You can't perform this operation on the secret because it was marked for deletion.",
    }
    # Disassociating what is not associated.
    with pytest.raises(ClientError) as exc:
        mine.disassociate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=second)
    assert _error(exc)["Code"] == "InvalidRequestException"


# ------------------------------------------------------------------------ ending the link


def test_disassociate_detaches_and_stop_makes_the_replica_standalone(server, other, name):
    mine, theirs = server.client(), other.client()
    primary, replica = _pair(server, other, name)
    mine.associate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=replica)

    # From the primary's side: the replica stays, Detached, still a replica, no longer updated.
    answer = mine.disassociate_cross_account_replica(SecretId=name, CrossAccountReplicaARN=replica)
    assert {k: v for k, v in answer.items() if k != "ResponseMetadata"} == {
        "ARN": primary,
        "CrossAccountReplicaARN": replica,
    }
    assert "CrossAccountReplicas" not in mine.describe_secret(SecretId=name)
    assert theirs.describe_secret(SecretId=replica)["CrossAccountPrimary"] == {
        "PrimarySecretARN": primary,
        "ReplicationStatus": "Detached",
    }
    mine.put_secret_value(SecretId=name, SecretString="two")
    assert theirs.get_secret_value(SecretId=replica)["SecretString"] == "one"
    with pytest.raises(ClientError) as exc:
        theirs.put_secret_value(SecretId=replica, SecretString="mine")
    assert _error(exc)["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        theirs.delete_secret(SecretId=replica)
    assert _error(exc)["Code"] == "InvalidParameterException"

    # Associated again, the replica catches up at once.
    mine.associate_cross_account_replica(SecretId=name, CrossAccountReplicaARN=replica)
    assert theirs.get_secret_value(SecretId=replica)["SecretString"] == "two"

    # From the replica's side: a standalone secret without the managed policy; the primary sees
    # it Detached and may only be deleted once it has disassociated it too.
    assert theirs.stop_replication_to_replica(SecretId=replica)["ARN"] == replica
    described = theirs.describe_secret(SecretId=replica)
    assert "CrossAccountPrimary" not in described
    assert theirs.list_resource_policies(SecretId=replica)["ResourcePolicies"] == []
    assert mine.describe_secret(SecretId=name)["CrossAccountReplicas"] == [
        {"ReplicaSecretARN": replica, "ReplicationStatus": "Detached"}
    ]
    mine.put_secret_value(SecretId=name, SecretString="three")
    assert theirs.get_secret_value(SecretId=replica)["SecretString"] == "two"
    theirs.put_secret_value(SecretId=replica, SecretString="its own now")
    assert theirs.get_secret_value(SecretId=replica)["SecretString"] == "its own now"
    assert mine.get_secret_value(SecretId=name)["SecretString"] == "three"
    with pytest.raises(ClientError) as exc:  # standalone, without the managed policy: no consent left
        mine.associate_cross_account_replica(SecretId=name, CrossAccountReplicaARN=replica)
    assert _error(exc)["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as exc:
        mine.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    assert _error(exc)["Code"] == "InvalidParameterException"
    mine.disassociate_cross_account_replica(SecretId=name, CrossAccountReplicaARN=replica)
    mine.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    theirs.delete_secret(SecretId=replica, ForceDeleteWithoutRecovery=True)


def test_stop_before_association_and_by_partial_arn(server, other, name):
    mine, theirs = server.client(), other.client()
    primary = mine.create_secret(Name=name, SecretString="v")["ARN"]
    partial = primary[:-7]  # the ARN without its random suffix
    replica = theirs.create_secret(Name=name + "-replica", CrossAccountPrimaryARN=partial, KmsKeyId="alias/replicas")[
        "ARN"
    ]
    mine.associate_cross_account_replica(SecretId=name, CrossAccountReplicaARN=replica[:-7])
    assert theirs.describe_secret(SecretId=replica)["CrossAccountPrimary"]["PrimarySecretARN"] == primary
    mine.disassociate_cross_account_replica(SecretId=name, CrossAccountReplicaARN=replica[:-7])
    pending = theirs.create_secret(Name=name + "-pending", CrossAccountPrimaryARN=primary, KmsKeyId="alias/replicas")[
        "ARN"
    ]
    theirs.stop_replication_to_replica(SecretId=pending)
    assert "CrossAccountPrimary" not in theirs.describe_secret(SecretId=pending)
    theirs.delete_secret(SecretId=pending, ForceDeleteWithoutRecovery=True)


# --------------------------------------------------------------------------- permissions


def _user(server: Any, iam: Any, *statements: dict[str, Any]) -> Any:
    user = f"u-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    if statements:
        iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=_policy(*statements))
    return user, _client(server, "secretsmanager", key)


def test_both_accounts_must_allow(server, other, name):
    mine, theirs = server.client(), other.client()
    primary, replica = _pair(server, other, name)
    iam = server.client("iam")
    user, app = _user(
        server, iam, {"Effect": "Allow", "Action": "secretsmanager:AssociateCrossAccountReplica", "Resource": primary}
    )

    def denied(call: Any) -> str:
        with pytest.raises(ClientError) as exc:
            call()
        assert _error(exc)["Code"] == "AccessDeniedException", _error(exc)
        return _error(exc)["Message"]

    def associate() -> Any:
        return app.associate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=replica)

    # The primary's side: AssociateCrossAccountReplica and GetSecretValue on the primary ...
    assert "secretsmanager:GetSecretValue on resource: " + primary in denied(associate)
    iam.put_user_policy(
        UserName=user,
        PolicyName="p",
        PolicyDocument=_policy(
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:AssociateCrossAccountReplica", "secretsmanager:GetSecretValue"],
                "Resource": primary,
            }
        ),
    )
    # ... and AcceptCrossAccountReplication on the replica, in the caller's own policies ...
    message = denied(associate)
    assert f"secretsmanager:AcceptCrossAccountReplication on resource: {replica}" in message
    assert "because no identity-based policy allows" in message
    iam.put_user_policy(
        UserName=user,
        PolicyName="p",
        PolicyDocument=_policy(
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:AssociateCrossAccountReplica", "secretsmanager:GetSecretValue"],
                "Resource": primary,
            },
            {"Effect": "Allow", "Action": "secretsmanager:AcceptCrossAccountReplication", "Resource": replica},
        ),
    )
    # ... and in the replica's resource policy: the replica account withdraws its consent.
    theirs.delete_resource_policy(SecretId=replica, PolicyName="cross-account-replication")
    message = denied(lambda: mine.associate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=replica))
    assert "because no resource-based policy allows" in message
    assert "CrossAccountPrimary" in theirs.describe_secret(SecretId=replica)  # nothing changed
    assert "CrossAccountReplicas" not in mine.describe_secret(SecretId=primary)
    # Both sides allow again: the user may associate.
    theirs.put_resource_policy(
        SecretId=replica,
        PolicyName="cross-account-replication",
        ResourcePolicy=_policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": PRIMARY_ACCOUNT},
                "Action": "secretsmanager:AcceptCrossAccountReplication",
                "Resource": "*",
            }
        ),
    )
    assert (
        app.associate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=replica)["ReplicationStatus"]
        == "InSync"
    )
    # Disassociating needs its own permission.
    assert "secretsmanager:DisassociateCrossAccountReplica" in denied(
        lambda: app.disassociate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=replica)
    )
    mine.disassociate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=replica)


def test_the_replica_account_needs_the_policy_permissions(server, other, name):
    primary = server.client().create_secret(Name=name, SecretString="v")["ARN"]
    iam = other.client("iam")
    # Creating a replica attaches the managed policy: CreateSecret alone is not enough.
    _, creator = _user(server, iam, {"Effect": "Allow", "Action": "secretsmanager:CreateSecret", "Resource": "*"})
    with pytest.raises(ClientError) as exc:
        creator.create_secret(Name=name + "-replica", CrossAccountPrimaryARN=primary, KmsKeyId="alias/replicas")
    assert _error(exc)["Code"] == "AccessDeniedException"
    assert "secretsmanager:PutResourcePolicy" in _error(exc)["Message"]
    _, creator = _user(
        server,
        iam,
        {
            "Effect": "Allow",
            "Action": ["secretsmanager:CreateSecret", "secretsmanager:PutResourcePolicy"],
            "Resource": "*",
        },
    )
    replica = creator.create_secret(Name=name + "-replica", CrossAccountPrimaryARN=primary, KmsKeyId="alias/replicas")[
        "ARN"
    ]
    # Stopping replication removes it: StopReplicationToReplica alone is not enough.
    _, stopper = _user(
        server, iam, {"Effect": "Allow", "Action": "secretsmanager:StopReplicationToReplica", "Resource": "*"}
    )
    with pytest.raises(ClientError) as exc:
        stopper.stop_replication_to_replica(SecretId=replica)
    assert "secretsmanager:DeleteResourcePolicy" in _error(exc)["Message"]
    assert "CrossAccountPrimary" in other.client().describe_secret(SecretId=replica)
    _, stopper = _user(
        server,
        iam,
        {
            "Effect": "Allow",
            "Action": ["secretsmanager:StopReplicationToReplica", "secretsmanager:DeleteResourcePolicy"],
            "Resource": "*",
        },
    )
    stopper.stop_replication_to_replica(SecretId=replica)
    assert "CrossAccountPrimary" not in other.client().describe_secret(SecretId=replica)
