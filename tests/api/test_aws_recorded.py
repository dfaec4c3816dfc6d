"""Answers checked against what AWS itself answered, through boto3, on both engines.

Each expectation here is an answer recorded from real AWS, cited next to it:

* LocalStack's snapshot file ``tests/aws/services/secretsmanager/test_secretsmanager.snapshot.json``
  (repository localstack/localstack; each snapshot key is the test's name; the file is recorded
  against AWS) and its ``@markers.aws.validated`` tests in ``test_secretsmanager.py``;
* moto's tests marked ``@aws_verified`` (repository getmoto/moto,
  ``tests/test_secretsmanager/test_list_secrets.py`` and ``test_secretsmanager.py``), run against AWS;
* AWS's user guide, "Find secrets in AWS Secrets Manager"
  (https://docs.aws.amazon.com/secretsmanager/latest/userguide/manage_search-secret.html).

The server is shared by the module's tests, so every ListSecrets call is scoped by a filter on a
prefix unique to the test.
"""

from __future__ import annotations

import configparser
import json
import re
import secrets
import subprocess
import sys
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

DEFAULT_KEY_MESSAGE = (
    "You can't access a secret from a different AWS account if you encrypt the secret with the default KMS service key."
)


def _error(exc: pytest.ExceptionInfo[ClientError]) -> dict[str, str]:
    return exc.value.response["Error"]  # type: ignore[no-any-return]


def _entries(sm: Any, *filters: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
    """Every page: a filtered page may come back empty with a NextToken, as on AWS, when the
    shared server holds many other secrets."""
    out: list[dict[str, Any]] = []
    for page in sm.get_paginator("list_secrets").paginate(Filters=list(filters), **params):
        out += page["SecretList"]
    return out


def _names(sm: Any, *filters: dict[str, Any], **params: Any) -> list[str]:
    return [s["Name"] for s in _entries(sm, *filters, **params)]


# ---------------------------------------------------------------------------- empty members


def test_describe_a_secret_created_with_an_empty_description_and_no_value(sm, name):
    # LocalStack snapshot test_create_secret_version_from_empty_secret: "create-empty-secret" has
    # ARN and Name only; "describe-secret" has ARN, CreatedDate, LastChangedDate, Name (no
    # Description, no VersionIdsToStages); "put-secret-value" has ARN, Name, VersionId, VersionStages.
    created = sm.create_secret(Name=name, Description="")
    created.pop("ResponseMetadata")
    assert sorted(created) == ["ARN", "Name"]
    described = sm.describe_secret(SecretId=created["ARN"])
    described.pop("ResponseMetadata")
    assert sorted(described) == ["ARN", "CreatedDate", "LastChangedDate", "Name"]
    put = sm.put_secret_value(SecretId=created["ARN"], SecretString="example-string-to-protect")
    put.pop("ResponseMetadata")
    assert sorted(put) == ["ARN", "Name", "VersionId", "VersionStages"]
    assert put["VersionStages"] == ["AWSCURRENT"]
    # ListSecrets' entries follow DescribeSecret: no empty Description either.
    listed = _entries(sm, {"Key": "name", "Values": [name]})
    assert [sorted(e) for e in listed] == [["ARN", "CreatedDate", "LastChangedDate", "Name", "SecretVersionsToStages"]]


def test_a_value_less_secret_is_listed_without_version_stages(sm, name):
    # As DescribeSecret (test_create_secret_version_from_empty_secret): nothing to map, no member.
    sm.create_secret(Name=name)
    listed = _entries(sm, {"Key": "name", "Values": [name]})
    assert [sorted(e) for e in listed] == [["ARN", "CreatedDate", "LastChangedDate", "Name"]]


def test_tags_member_before_tagging_and_after_the_last_tag_is_removed(sm, name):
    # LocalStack snapshot test_secret_tags: "describe_secret" (never tagged) has no Tags;
    # "describe_secret_4" and "describe_secret_6" (every tag removed) have "Tags": [].
    arn = sm.create_secret(Name=name)["ARN"]
    assert "Tags" not in sm.describe_secret(SecretId=arn)
    sm.tag_resource(SecretId=arn, Tags=[{"Key": "tag1", "Value": "value1"}])
    sm.tag_resource(SecretId=arn, Tags=[{"Key": "tag2", "Value": "value2"}])
    assert sm.describe_secret(SecretId=arn)["Tags"] == [
        {"Key": "tag1", "Value": "value1"},
        {"Key": "tag2", "Value": "value2"},
    ]
    sm.untag_resource(SecretId=arn, TagKeys=["tag1"])
    assert sm.describe_secret(SecretId=arn)["Tags"] == [{"Key": "tag2", "Value": "value2"}]
    sm.untag_resource(SecretId=arn, TagKeys=["tag2"])
    assert sm.describe_secret(SecretId=arn)["Tags"] == []
    sm.tag_resource(SecretId=arn, Tags=[{"Key": "tag3", "Value": "value3"}, {"Key": "tag4", "Value": "value4"}])
    assert sm.describe_secret(SecretId=arn)["Tags"] == [
        {"Key": "tag3", "Value": "value3"},
        {"Key": "tag4", "Value": "value4"},
    ]
    sm.untag_resource(SecretId=arn, TagKeys=["tag3", "tag4"])
    assert sm.describe_secret(SecretId=arn)["Tags"] == []
    listed = _entries(sm, {"Key": "name", "Values": [name]})
    assert listed[0]["Tags"] == []


def test_list_secret_version_ids_names_the_default_key(sm, name):
    # LocalStack snapshot test_deprecated_secret_version_stage: every entry, labelled or not, has
    # "KmsKeyIds": ["DefaultEncryptionKey"] for a secret under the default key.
    first = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    second = sm.put_secret_value(SecretId=name, SecretString="two")["VersionId"]
    third = sm.put_secret_value(SecretId=name, SecretString="three")["VersionId"]
    versions = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert {v["VersionId"] for v in versions} == {first, second, third}
    for v in versions:
        assert v["KmsKeyIds"] == ["DefaultEncryptionKey"]
        assert sorted(v) == ["CreatedDate", "KmsKeyIds", "VersionId"] + (
            ["VersionStages"] if v["VersionId"] != first else []
        )


def test_list_secret_version_ids_names_a_customer_key(sm, name):
    sm.create_secret(Name=name, SecretString="one", KmsKeyId="alias/fidelity")
    versions = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert [v["KmsKeyIds"] for v in versions] == [["alias/fidelity"]]


def test_validate_resource_policy_sends_empty_validation_errors(sm, name):
    # AWS's documentation example (botocore's examples-1.json, ValidateResourcePolicy):
    # {"PolicyValidationPassed": true, "ValidationErrors": []}.
    sm.create_secret(Name=name, SecretString="v")
    policy = json.dumps(
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
    out = sm.validate_resource_policy(SecretId=name, ResourcePolicy=policy)
    out.pop("ResponseMetadata")
    assert out == {"PolicyValidationPassed": True, "ValidationErrors": []}


def test_forced_delete_of_a_secret_that_does_not_exist(sm, name):
    # LocalStack aws-validated test_delete_non_existent_secret_returns_as_if_secret_exists: Name is
    # the name asked for, ARN and DeletionDate are there.
    out = sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    assert out["Name"] == name
    assert out["ARN"].startswith(f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-")
    assert out["DeletionDate"] is not None


def test_replication_status_carries_the_replica_s_last_access(server, name):
    # AWS's API reference, ReplicationStatusType: LastAccessedDate is "the date that the secret was
    # last accessed in the Region. This field is omitted if the secret has never been retrieved
    # in the Region."
    sm = server.client()
    sm.create_secret(Name=name, SecretString="v", AddReplicaRegions=[{"Region": "eu-west-1"}])

    def status(answer: dict[str, Any]) -> dict[str, Any]:
        return answer["ReplicationStatus"][0]  # type: ignore[no-any-return]

    assert "LastAccessedDate" not in status(sm.describe_secret(SecretId=name))
    server.client(region="eu-west-1").get_secret_value(SecretId=name)
    described = sm.describe_secret(SecretId=name)
    assert status(described)["LastAccessedDate"].timestamp() % 86400 == 0  # a day, as LastAccessedDate
    assert "LastAccessedDate" not in described  # the primary itself was never read


def test_dates_are_sent_to_the_millisecond(sm, name):
    # AWS's documentation examples (botocore's examples-1.json: "CreatedDate": 1523477145.713,
    # "LastChangedDate": 1523477145.729, "DeletionDate": "1524085349.095") and LocalStack's
    # aws-validated test_last_updated_date ("secretsmanager return a timestamp with 3 fraction
    # digits"): epoch seconds with at most three decimals.
    bodies: list[str] = []
    sm.meta.events.register("after-call.secretsmanager.*", lambda http_response, **_: bodies.append(http_response.text))
    sm.create_secret(Name=name, SecretString="v")
    sm.get_secret_value(SecretId=name)
    sm.describe_secret(SecretId=name)
    sm.list_secret_version_ids(SecretId=name)
    _entries(sm, {"Key": "name", "Values": [name]})
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    dates = [
        m
        for body in bodies
        for m in re.findall(r'"(?:CreatedDate|LastChangedDate|DeletionDate|DeletedDate)":([0-9.]+)', body)
    ]
    assert len(dates) >= 6
    assert [d for d in dates if len(d.partition(".")[2]) > 3] == []


# ---------------------------------------------------------------------------- idempotency


def test_create_with_a_used_token_and_another_value(sm, name):
    # moto aws_verified test_create_different_secret_with_same_token.
    token = str(uuid.uuid4())
    arn = sm.create_secret(Name=name, SecretString="Hello", ClientRequestToken=token)["ARN"]
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name, SecretString="Hi", ClientRequestToken=token)
    assert _error(exc) == {
        "Code": "ResourceExistsException",
        "Message": f"You can't use ClientRequestToken {token} because that value is already in use for a "
        f"version of secret {arn}.",
    }
    # moto aws_verified test_create_duplicate_secret_with_same_token: the same call again is a retry.
    again = sm.create_secret(Name=name, SecretString="Hello", ClientRequestToken=token)
    assert (again["ARN"], again["VersionId"]) == (arn, token)
    # moto aws_verified test_create_duplicate_secret_without_specifying_token.
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name, SecretString="Hello")
    assert _error(exc) == {
        "Code": "ResourceExistsException",
        "Message": f"The operation failed because the secret {name} already exists.",
    }
    # moto aws_verified test_put_different_secret_value_with_same_token and
    # test_update_different_secret_value_with_same_token: the same message.
    for call in (sm.put_secret_value, sm.update_secret):
        with pytest.raises(ClientError) as exc:
            call(SecretId=arn, SecretString="Hi", ClientRequestToken=token)
        assert _error(exc)["Message"] == (
            f"You can't use ClientRequestToken {token} because that value is "
            f"already in use for a version of secret {arn}."
        )
    # moto aws_verified test_put_same_secret_value_with_same_token and
    # test_update_same_secret_value_with_same_token: a retry.
    assert sm.put_secret_value(SecretId=arn, SecretString="Hello", ClientRequestToken=token)["VersionStages"] == [
        "AWSCURRENT"
    ]
    assert sm.update_secret(SecretId=name, SecretString="Hello", ClientRequestToken=token)["VersionId"] == token


# ------------------------------------------------------------------------------ ListSecrets


def test_list_secrets_filters_as_localstack_recorded_them(sm, name):
    # LocalStack aws-validated test_list_secrets_filtering (every assertion of it, in order).
    one, two, three, four = (
        f"{name}-1testing1/one",
        f"/{name}-2testing2/two",
        f"{name}-3testing3/three",
        f"/{name}-4testing4/four",
    )
    for n, description in ((one, "a secret"), (two, "an secret"), (three, "asecret"), (four, "thesecret")):
        sm.create_secret(Name=n, SecretString="secret", Description=description)
    ours = {one, two, three, four}

    def listed(*filters: dict[str, Any]) -> set[str]:
        return set(_names(sm, *filters)) & ours

    assert listed({"Key": "name", "Values": ["/"]}) >= {two, four}
    assert listed({"Key": "name", "Values": ["/"]}) & {one, three} == set()
    assert listed({"Key": "name", "Values": ["!/"]}) == {one, three}
    assert listed({"Key": "name", "Values": [f"{name}-1testing1 one"]}) == set()
    assert listed({"Key": "description", "Values": ["a"]}) == {one, two, three}
    assert listed({"Key": "description", "Values": ["!a"]}) == {four}
    assert listed({"Key": "description", "Values": ["a secret"]}) == {one, two}
    assert listed({"Key": "description", "Values": ["a"]}, {"Key": "name", "Values": ["secret"]}) == set()
    assert listed({"Key": "description", "Values": ["a"]}, {"Key": "name", "Values": ["an"]}) == set()
    assert listed({"Key": "description", "Values": ["!c"]}) == ours


def test_all_filter_words_case_and_order(sm, name):
    # moto aws_verified test_with_all_filter (AWS lists the matches in creation order).
    u = uuid.uuid4().hex[:6]
    first, second, third = f"SecretOne{u}", f"SecretTwo{u}", f"Thirdsecret{u}"
    tag_key, tag_val, no_match = f"SecretFTag{u}", f"SecretFValue{u}", f"none{u}"
    sm.create_secret(Name=first, SecretString="s")
    sm.create_secret(Name=second, SecretString="s", Description="DescTwo")
    sm.create_secret(Name=third, SecretString="s")
    sm.create_secret(Name=tag_key, SecretString="s", Tags=[{"Key": "1", "Value": "foo"}])
    sm.create_secret(Name=tag_val, SecretString="s", Tags=[{"Key": "foo", "Value": "v"}])
    sm.create_secret(Name=no_match, SecretString="s")
    ours = [first, second, third, tag_key, tag_val, no_match]

    def listed(value: str) -> list[str]:
        return [n for n in _names(sm, {"Key": "all", "Values": [value]}) if n in ours]

    assert listed("SecretOne") == [first]
    assert listed("foo") == [tag_key, tag_val]
    assert listed("Secret") == [first, second, tag_key, tag_val]
    assert listed("secret") == [first, second, tag_key, tag_val]
    assert listed("ret") == []
    assert listed("sec") == [first, second, tag_key, tag_val]
    assert listed("SomeSecret") == []
    assert listed("d t") == [second]
    assert listed("t") == [second, third, tag_key]


def test_all_filter_special_characters_and_capitals(sm):
    # moto aws_verified test_with_all_filter_special_characters.
    u = uuid.uuid4().hex[:6]
    special = [
        f"prod/AppBeta/{u}",
        f"prod_AppBeta_{u}",
        f"prod+AppBeta+{u}",
        f"prod=AppBeta={u}",
        f"prod.AppBeta.{u}",
        f"prod@AppBeta@{u}",
        f"prod-AppBeta-{u}",
    ]
    full_upper, partial_upper = f"uat/COMPANY/{u}", f"uat/COMPANYthings/{u}"
    for n in special + [full_upper, partial_upper]:
        sm.create_secret(Name=n, SecretString="s")
    ours = special + [full_upper, partial_upper]

    def listed(*values: str) -> list[str]:
        return [n for n in _names(sm, {"Key": "all", "Values": list(values)}) if n in ours]

    assert listed("AppBeta") == special
    assert listed("Beta") == special
    assert listed("AppBeta", "prod") == special
    assert listed("+") == []
    assert listed(u) == special + [full_upper, partial_upper]
    assert listed("company") == [full_upper]
    assert listed("things") == []
    assert listed("Ythings") == [partial_upper]
    assert listed("N") == []
    assert listed("pany") == []


def test_description_words_and_duplicate_keys(sm, name):
    # moto aws_verified test_with_filter_with_value_with_multiple_words and
    # test_with_duplicate_filter_keys (two filters with one key: both must match).
    made = {}
    for suffix, description in (
        ("foo", "one two"),
        ("bar", "one and two"),
        ("baz", "one"),
        ("qux", "two"),
        ("none", "unrelated"),
    ):
        made[suffix] = f"{name}-{suffix}"
        sm.create_secret(Name=made[suffix], SecretString="secret", Description=description)

    def listed(*filters: dict[str, Any]) -> list[str]:
        return [n for n in _names(sm, *filters) if n in made.values()]

    assert listed({"Key": "description", "Values": ["one two"]}) == [made["foo"], made["bar"]]
    assert listed({"Key": "description", "Values": ["o t"]}) == [made["foo"], made["bar"]]
    assert listed({"Key": "description", "Values": ["t"]}) == [made["foo"], made["bar"], made["qux"]]
    assert listed({"Key": "description", "Values": ["one"]}, {"Key": "description", "Values": ["two"]}) == [
        made["foo"],
        made["bar"],
    ]
    # AWS's user guide: descriptions match "not case-sensitive" ("My Description" matches
    # "my description" and "Description of my secret").
    assert listed({"Key": "description", "Values": ["ONE TWO"]}) == [made["foo"], made["bar"]]


def test_name_and_tag_filters_match_the_beginning_case_sensitive(sm, name):
    # AWS's user guide: "Name: Data returns a secret named DatabaseSecret, but not databaseSecret
    # or MyData"; "Tag key: Prod returns secrets with the tag Production and Prod1, but not secrets
    # with the tag prod or 1 Prod" (and the same for tag values).
    made = {}
    for suffix, tag in (
        ("DatabaseSecret", "Production"),
        ("databaseSecret", "Prod1"),
        ("MyData", "prod"),
        ("other", "1 Prod"),
    ):
        made[suffix] = f"{name}-{suffix}"
        sm.create_secret(Name=made[suffix], SecretString="s", Tags=[{"Key": tag, "Value": tag}])
    prefix = f"{name}-"

    def listed(*filters: dict[str, Any]) -> set[str]:
        return {n for n in _names(sm, {"Key": "name", "Values": [prefix]}, *filters) if n in made.values()}

    assert listed({"Key": "name", "Values": [prefix + "Data"]}) == {made["DatabaseSecret"]}
    assert listed({"Key": "tag-key", "Values": ["Prod"]}) == {made["DatabaseSecret"], made["databaseSecret"]}
    assert listed({"Key": "tag-value", "Values": ["Prod"]}) == {made["DatabaseSecret"], made["databaseSecret"]}
    assert listed({"Key": "tag-value", "Values": ["!Prod"]}) == {made["MyData"], made["other"]}


def test_primary_region_filter_is_a_case_sensitive_prefix(server, name):
    # AWS's API reference, Filter: "primary-region: Prefix match, case-sensitive."
    sm = server.client()
    sm.create_secret(Name=f"{name}-replicated", SecretString="s", AddReplicaRegions=[{"Region": "eu-west-1"}])
    sm.create_secret(Name=f"{name}-alone", SecretString="s")
    scope = {"Key": "name", "Values": [name]}
    assert _names(sm, scope, {"Key": "primary-region", "Values": ["us-east"]}) == [f"{name}-replicated"]
    assert _names(sm, scope, {"Key": "primary-region", "Values": ["US-EAST"]}) == []
    assert _names(sm, scope, {"Key": "primary-region", "Values": ["!us-east"]}) == [f"{name}-alone"]
    replicas = server.client(region="eu-west-1")
    assert _names(replicas, scope, {"Key": "primary-region", "Values": ["us-east-1"]}) == [f"{name}-replicated"]


def test_list_secrets_default_order_is_creation_order(sm, name):
    # moto aws_verified tests above list matches oldest first without SortBy/SortOrder, as does
    # LocalStack's AWS-recorded snapshot test_create_multi_secrets_snapshot ("list_secrets_res":
    # SecretId-0idx, 1idx, 2idx in creation order).
    made = [f"{name}-{c}" for c in "cab"]
    for n in made:
        sm.create_secret(Name=n, SecretString="s")
    assert _names(sm, {"Key": "name", "Values": [name]}) == made
    assert _names(sm, {"Key": "name", "Values": [name]}, MaxResults=1) == made
    assert _names(sm, {"Key": "name", "Values": [name]}, SortOrder="desc") == made[::-1]


# --------------------------------------------------------------------- another account's secret


def _other_account(server: Any, tmp_dir: Any) -> tuple[str, Any]:
    account = "".join(secrets.choice("0123456789") for _ in range(12))
    creds = tmp_dir / f"account-{account}.ini"
    args = [
        sys.executable,
        "-m",
        "strongroom.cli.main",
        "admin",
        "create-account",
        account,
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
    client = boto3.client(
        "secretsmanager",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=parsed["strongroom"]["aws_access_key_id"],
        aws_secret_access_key=parsed["strongroom"]["aws_secret_access_key"],
        config=Config(retries={"max_attempts": 1}),
    )
    return account, client


def _allow_everything_to(account: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": ["secretsmanager:*"],
                    "Resource": "*",
                }
            ],
        }
    )


def test_another_account_and_the_default_key(server, name, tmp_path):
    # LocalStack aws-validated test_cross_account_access: with a policy granting secretsmanager:*
    # to the other account, a secret under the default key refuses GetSecretValue and
    # PutSecretValue with DEFAULT_KEY_MESSAGE, and allows DescribeSecret, PutResourcePolicy,
    # GetResourcePolicy, ListSecretVersionIds, TagResource, UntagResource (after which the owner
    # sees "Tags": []) and DeleteSecret; the other account's ListSecrets does not show it.
    account, theirs = _other_account(server, tmp_path)
    mine = server.client()
    arn = mine.create_secret(Name=name, SecretString="secret")["ARN"]
    mine.put_resource_policy(SecretId=arn, ResourcePolicy=_allow_everything_to(account))
    assert theirs.describe_secret(SecretId=arn)["ARN"] == arn
    with pytest.raises(ClientError) as exc:
        theirs.get_secret_value(SecretId=arn)
    assert _error(exc) == {"Code": "InvalidRequestException", "Message": DEFAULT_KEY_MESSAGE}
    with pytest.raises(ClientError) as exc:
        theirs.put_secret_value(SecretId=arn, SecretString="new-secret")
    assert _error(exc) == {"Code": "InvalidRequestException", "Message": DEFAULT_KEY_MESSAGE}
    # UpdateSecret with a value uses the key as PutSecretValue does (no AWS recording: unverified).
    with pytest.raises(ClientError) as exc:
        theirs.update_secret(SecretId=arn, SecretString="new-secret")
    assert _error(exc) == {"Code": "InvalidRequestException", "Message": DEFAULT_KEY_MESSAGE}
    batch = theirs.batch_get_secret_value(SecretIdList=[arn])
    assert batch["SecretValues"] == []
    assert [(e["ErrorCode"], e["Message"]) for e in batch["Errors"]] == [
        ("InvalidRequestException", DEFAULT_KEY_MESSAGE)
    ]
    assert mine.get_secret_value(SecretId=arn)["SecretString"] == "secret"  # nothing was written
    policy = json.loads(_allow_everything_to(account))
    policy["Statement"][0]["Sid"] = "AllowCrossAccount"
    theirs.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(policy))
    got = theirs.get_resource_policy(SecretId=arn)
    assert json.loads(got["ResourcePolicy"])["Statement"][0]["Sid"] == "AllowCrossAccount"
    assert len(theirs.list_secret_version_ids(SecretId=arn)["Versions"]) == 1
    assert arn not in [s["ARN"] for s in theirs.list_secrets()["SecretList"]]
    theirs.tag_resource(SecretId=arn, Tags=[{"Key": "tag1", "Value": "value1"}])
    assert mine.describe_secret(SecretId=arn)["Tags"] == [{"Key": "tag1", "Value": "value1"}]
    theirs.untag_resource(SecretId=arn, TagKeys=["tag1"])
    assert mine.describe_secret(SecretId=arn)["Tags"] == []
    theirs.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as exc:
        mine.describe_secret(SecretId=arn)
    assert _error(exc)["Code"] == "ResourceNotFoundException"


def test_another_account_and_a_customer_key(server, name, tmp_path):
    # LocalStack aws-validated test_cross_account_access_non_default_key: under a customer key the
    # other account reads, writes, schedules the deletion and restores.
    account, theirs = _other_account(server, tmp_path)
    mine = server.client()
    arn = mine.create_secret(Name=name, SecretString="secret", KmsKeyId="alias/shared")["ARN"]
    mine.put_resource_policy(SecretId=arn, ResourcePolicy=_allow_everything_to(account))
    assert theirs.get_secret_value(SecretId=arn)["SecretString"] == "secret"
    theirs.put_secret_value(SecretId=arn, SecretString="new-secret")
    assert theirs.get_secret_value(SecretId=arn)["SecretString"] == "new-secret"
    theirs.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=False, RecoveryWindowInDays=7)
    assert mine.describe_secret(SecretId=arn).get("DeletedDate") is not None
    theirs.restore_secret(SecretId=arn)
    assert mine.describe_secret(SecretId=arn).get("DeletedDate") is None
