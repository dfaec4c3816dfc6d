"""Create, read, update, version and delete secrets through boto3 against a real server."""

from __future__ import annotations

import re
import uuid

import pytest
from botocore.exceptions import ClientError


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    e = exc.value.response
    return e["Error"]["Code"], e["Error"]["Message"], e["ResponseMetadata"]["HTTPStatusCode"]


def test_create_and_get_string(sm, name):
    created = sm.create_secret(Name=name, SecretString='{"password": "hunter2"}', Description="db")
    assert re.fullmatch(
        rf"arn:aws:secretsmanager:us-east-1:123456789012:secret:{re.escape(name)}-[A-Za-z0-9]{{6}}", created["ARN"]
    )
    assert created["Name"] == name
    assert uuid.UUID(created["VersionId"])
    got = sm.get_secret_value(SecretId=name)
    assert got["SecretString"] == '{"password": "hunter2"}'
    assert got["VersionStages"] == ["AWSCURRENT"]
    assert got["VersionId"] == created["VersionId"]
    assert got["ARN"] == created["ARN"]
    assert "SecretBinary" not in got
    assert got["CreatedDate"].tzinfo is not None


def test_binary_round_trip(sm, name):
    blob = bytes(range(256))
    sm.create_secret(Name=name, SecretBinary=blob)
    got = sm.get_secret_value(SecretId=name)
    assert got["SecretBinary"] == blob
    assert "SecretString" not in got


def test_lookup_by_full_and_partial_arn(sm, name):
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "v"
    partial = arn[: -len("-XXXXXX")]
    assert sm.get_secret_value(SecretId=partial)["SecretString"] == "v"
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=partial + "-zzzzzz")
    assert error(exc) == ("ResourceNotFoundException", "Secrets Manager can't find the specified secret.", 400)


def test_partial_arn_pitfall_for_names_ending_in_six_characters(sm, name):
    """AWS takes a partial ARN ending in a hyphen and six characters for a full ARN."""
    tricky = name + "-abcdef"
    arn = sm.create_secret(Name=tricky, SecretString="v")["ARN"]
    assert sm.get_secret_value(SecretId=tricky)["SecretString"] == "v"
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "v"
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=arn[: -len("-XXXXXX")])
    assert error(exc)[0] == "ResourceNotFoundException"


def test_recreated_name_gets_a_new_arn(sm, name):
    first = sm.create_secret(Name=name, SecretString="a")["ARN"]
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    second = sm.create_secret(Name=name, SecretString="b")["ARN"]
    assert first != second
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=first)
    assert error(exc)[0] == "ResourceNotFoundException"


def test_missing_secret_is_400_not_404(sm):
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId="does/not/exist")
    assert error(exc) == ("ResourceNotFoundException", "Secrets Manager can't find the specified secret.", 400)


def test_create_existing_name(sm, name):
    sm.create_secret(Name=name, SecretString="a")
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name, SecretString="b")
    assert error(exc) == (
        "ResourceExistsException",
        f"The operation failed because the secret {name} already exists.",
        400,
    )


def test_invalid_name(sm):
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name="bad name with spaces", SecretString="x")
    code, message, status = error(exc)
    assert (code, status) == ("ValidationException", 400)  # AWS, LocalStack snapshot test_invalid_secret_name
    assert message.startswith("Invalid name. Must be a valid name containing alphanumeric characters")


def test_both_values_refused(sm, name):
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name, SecretString="x", SecretBinary=b"y")
    assert error(exc)[0] == "InvalidParameterException"
    with pytest.raises(ClientError):
        sm.describe_secret(SecretId=name)


def test_put_moves_current_and_previous(sm, name):
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    put = sm.put_secret_value(SecretId=name, SecretString="two")
    assert put["VersionStages"] == ["AWSCURRENT"]
    v2 = put["VersionId"]
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]}
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "one"
    assert sm.get_secret_value(SecretId=name, VersionId=v1)["SecretString"] == "one"
    v3 = sm.put_secret_value(SecretId=name, SecretString="three")["VersionId"]
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages == {v2: ["AWSPREVIOUS"], v3: ["AWSCURRENT"]}


def test_put_is_idempotent_per_token(sm, name):
    arn = sm.create_secret(Name=name, SecretString="one")["ARN"]
    token = str(uuid.uuid4())
    first = sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=token)
    again = sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=token)
    assert again["VersionId"] == first["VersionId"] == token
    assert len(sm.list_secret_version_ids(SecretId=name)["Versions"]) == 2
    with pytest.raises(ClientError) as exc:
        sm.put_secret_value(SecretId=name, SecretString="other", ClientRequestToken=token)
    # AWS's text (moto aws_verified test_put_different_secret_value_with_same_token)
    assert error(exc) == (
        "ResourceExistsException",
        f"You can't use ClientRequestToken {token} because that value is already in use for a version of secret {arn}.",
        400,
    )
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"


def test_put_with_custom_stage_does_not_touch_current(sm, name):
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two", VersionStages=["BLUE"])["VersionId"]
    assert sm.get_secret_value(SecretId=name)["VersionId"] == v1
    assert sm.get_secret_value(SecretId=name, VersionStage="BLUE")["SecretString"] == "two"
    v3 = sm.put_secret_value(SecretId=name, SecretString="three", VersionStages=["BLUE"])["VersionId"]
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages == {v1: ["AWSCURRENT"], v3: ["BLUE"]}
    assert v2 not in stages
    listed = {v["VersionId"] for v in sm.list_secret_version_ids(SecretId=name)["Versions"]}
    assert listed == {v1, v3}
    deprecated = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert {v["VersionId"] for v in deprecated} == {v1, v2, v3}
    assert next(v for v in deprecated if v["VersionId"] == v2).get("VersionStages") is None


def test_update_secret_description_and_value(sm, name):
    sm.create_secret(Name=name, SecretString="one", Description="first")
    out = sm.update_secret(SecretId=name, Description="second")
    assert "VersionId" not in out
    assert sm.describe_secret(SecretId=name)["Description"] == "second"
    out = sm.update_secret(SecretId=name, SecretString="two")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"
    assert out["VersionId"] == sm.get_secret_value(SecretId=name)["VersionId"]


def test_update_version_stage(sm, name):
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two")["VersionId"]
    with pytest.raises(ClientError) as exc:
        sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v1)
    assert error(exc)[0] == "InvalidParameterException"
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v1, RemoveFromVersionId=v2)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "one"
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"] == {v1: ["AWSCURRENT"], v2: ["AWSPREVIOUS"]}
    sm.update_secret_version_stage(SecretId=name, VersionStage="GREEN", MoveToVersionId=v2)
    sm.update_secret_version_stage(SecretId=name, VersionStage="GREEN", RemoveFromVersionId=v2)
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"] == {v1: ["AWSCURRENT"], v2: ["AWSPREVIOUS"]}


def test_missing_stage_answers_not_found(sm, name):
    sm.create_secret(Name=name, SecretString="one")
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")
    code, message, status = error(exc)
    assert (code, status) == ("ResourceNotFoundException", 400)
    assert "AWSPENDING" in message


def test_secret_without_value(sm, name):
    out = sm.create_secret(Name=name)
    assert "VersionId" not in out
    described = sm.describe_secret(SecretId=name)
    # AWS sends no VersionIdsToStages for a secret without a value (LocalStack snapshot
    # test_create_secret_version_from_empty_secret, "describe-secret").
    assert "VersionIdsToStages" not in described
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name)
    assert error(exc)[0] == "ResourceNotFoundException"


def test_delete_restore_and_force(sm, name):
    sm.create_secret(Name=name, SecretString="one")
    deleted = sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert deleted["Name"] == name
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name)
    assert error(exc) == (
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
        400,
    )
    described = sm.describe_secret(SecretId=name)
    assert described["DeletedDate"] == deleted["DeletionDate"]
    assert (deleted["DeletionDate"] - described["LastChangedDate"]).days in (6, 7)
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name, SecretString="again")
    assert (
        error(exc)[1]
        == "You can't create this secret because a secret with this name is already scheduled for deletion."
    )
    sm.restore_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "one"
    assert "DeletedDate" not in sm.describe_secret(SecretId=name)
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as exc:
        sm.describe_secret(SecretId=name)
    assert error(exc)[0] == "ResourceNotFoundException"


def test_forced_delete_of_a_missing_secret_succeeds_as_on_aws(sm, name):
    """DeleteSecret reference: a forced delete of an already deleted or nonexistent secret does not
    answer ResourceNotFoundException. Without force it does."""
    with pytest.raises(ClientError) as exc:
        sm.delete_secret(SecretId=name)
    assert error(exc)[0] == "ResourceNotFoundException"
    answer = sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    assert answer["Name"] == name and answer["ARN"].split(":secret:")[1].startswith(name + "-")
    created = sm.create_secret(Name=name, SecretString="one")
    sm.delete_secret(SecretId=created["ARN"], ForceDeleteWithoutRecovery=True)
    again = sm.delete_secret(SecretId=created["ARN"], ForceDeleteWithoutRecovery=True)  # already gone
    assert again["ARN"] == created["ARN"] and again["Name"] == name


@pytest.mark.parametrize("window", [6, 31])
def test_recovery_window_bounds(sm, name, window):
    sm.create_secret(Name=name, SecretString="one")
    with pytest.raises(ClientError) as exc:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=window)
    assert error(exc)[0] == "InvalidParameterException"


def test_delete_with_both_options(sm, name):
    sm.create_secret(Name=name, SecretString="one")
    with pytest.raises(ClientError) as exc:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=True)
    assert error(exc)[0] == "InvalidParameterException"


def test_last_accessed_date_is_a_day(sm, name):
    sm.create_secret(Name=name, SecretString="one")
    assert "LastAccessedDate" not in sm.describe_secret(SecretId=name)
    sm.get_secret_value(SecretId=name)
    accessed = sm.describe_secret(SecretId=name)["LastAccessedDate"]
    assert (accessed.hour, accessed.minute, accessed.second) == (0, 0, 0)
    versions = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert versions[0]["LastAccessedDate"] == accessed


def test_tags(sm, name):
    sm.create_secret(Name=name, SecretString="one", Tags=[{"Key": "env", "Value": "prod"}])
    sm.tag_resource(SecretId=name, Tags=[{"Key": "team", "Value": "a"}, {"Key": "env", "Value": "dev"}])
    tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=name)["Tags"]}
    assert tags == {"env": "dev", "team": "a"}
    sm.untag_resource(SecretId=name, TagKeys=["env"])
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "team", "Value": "a"}]
    with pytest.raises(ClientError) as exc:
        sm.tag_resource(SecretId=name, Tags=[{"Key": "aws:reserved", "Value": "x"}])
    assert error(exc)[0] == "InvalidParameterException"


def test_describe_fields_present_only_with_value(sm, name):
    sm.create_secret(Name=name, SecretString="one")
    d = sm.describe_secret(SecretId=name)
    for absent in (
        "Description",
        "KmsKeyId",
        "RotationEnabled",
        "RotationLambdaARN",
        "RotationRules",
        "LastRotatedDate",
        "NextRotationDate",
        "DeletedDate",
        "Tags",
        "PrimaryRegion",
        "ReplicationStatus",
        "OwningService",
        "LastAccessedDate",
    ):
        assert absent not in d, absent
    for present in ("ARN", "Name", "LastChangedDate", "CreatedDate", "VersionIdsToStages"):
        assert present in d, present


@pytest.mark.parametrize("operation", ["get_secret_value", "describe_secret", "delete_secret", "put_secret_value"])
def test_a_secret_id_no_name_could_have_is_a_validation_error(sm, operation):
    params = {"SecretId": "no spaces allowed"}
    if operation == "put_secret_value":
        params["SecretString"] = "v"
    with pytest.raises(ClientError) as exc:
        getattr(sm, operation)(**params)
    code, message, status = error(exc)
    assert (code, status) == ("ValidationException", 400)  # AWS, LocalStack snapshot test_invalid_secret_name
    assert message.startswith("Invalid name. Must be a valid name containing alphanumeric characters")


def test_a_value_no_engine_can_store_is_a_4xx_not_a_5xx(sm, name):
    # PostgreSQL text cannot hold U+0000; both engines refuse it alike, and nothing is stored.
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name, SecretString="v", Description="before\x00after")
    code, _, status = error(exc)
    assert (code, status) == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as exc:
        sm.describe_secret(SecretId=name)
    assert error(exc)[0] == "ResourceNotFoundException"
    sm.create_secret(Name=name, SecretString="v")  # and the server goes on writing
