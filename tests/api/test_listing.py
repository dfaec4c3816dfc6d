"""ListSecrets filters, sorting and pagination; BatchGetSecretValue."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def prefix() -> str:
    return f"ls{uuid.uuid4().hex[:8]}"


def names(page):  # type: ignore[no-untyped-def]
    return [s["Name"] for s in page["SecretList"]]


def test_filter_by_name_prefix_and_negation(sm, prefix):
    for suffix in ("alpha", "beta", "gamma"):
        sm.create_secret(Name=f"{prefix}/{suffix}", SecretString="x", Tags=[{"Key": "kind", "Value": suffix}])
    page = sm.list_secrets(Filters=[{"Key": "name", "Values": [prefix]}], SortBy="name", SortOrder="asc")
    assert names(page) == [f"{prefix}/alpha", f"{prefix}/beta", f"{prefix}/gamma"]
    page = sm.list_secrets(
        Filters=[{"Key": "name", "Values": [prefix]}, {"Key": "tag-value", "Values": ["!beta"]}],
        SortBy="name",
        SortOrder="asc",
    )
    assert names(page) == [f"{prefix}/alpha", f"{prefix}/gamma"]
    page = sm.list_secrets(Filters=[{"Key": "all", "Values": [prefix]}, {"Key": "tag-value", "Values": ["gam"]}])
    assert names(page) == [f"{prefix}/gamma"]
    entry = page["SecretList"][0]
    assert list(entry["SecretVersionsToStages"].values()) == [["AWSCURRENT"]]


def test_pagination_is_stable_while_secrets_are_added(sm, prefix):
    for i in range(7):
        sm.create_secret(Name=f"{prefix}-{i:02d}", SecretString="x")
    seen = []
    token = None
    pages = 0
    while True:
        kwargs = {
            "Filters": [{"Key": "name", "Values": [prefix]}],
            "MaxResults": 3,
            "SortBy": "name",
            "SortOrder": "asc",
        }
        if token:
            kwargs["NextToken"] = token
        page = sm.list_secrets(**kwargs)
        seen += names(page)
        pages += 1
        if pages == 1:
            sm.create_secret(Name=f"{prefix}-99", SecretString="late")
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [f"{prefix}-{i:02d}" for i in range(7)] + [f"{prefix}-99"]
    assert pages == 3


def test_tampered_token_is_refused(sm, prefix):
    for i in range(3):
        sm.create_secret(Name=f"{prefix}-{i}", SecretString="x")
    token = sm.list_secrets(Filters=[{"Key": "name", "Values": [prefix]}], MaxResults=1)["NextToken"]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(ClientError) as exc:
        sm.list_secrets(Filters=[{"Key": "name", "Values": [prefix]}], MaxResults=1, NextToken=forged)
    assert exc.value.response["Error"]["Code"] == "InvalidNextTokenException"
    with pytest.raises(ClientError) as exc:
        sm.list_secrets(Filters=[{"Key": "name", "Values": ["other"]}], MaxResults=1, NextToken=token)
    assert exc.value.response["Error"]["Code"] == "InvalidNextTokenException"


def test_planned_deletion_hidden_unless_asked(sm, prefix):
    sm.create_secret(Name=f"{prefix}-keep", SecretString="x")
    sm.create_secret(Name=f"{prefix}-gone", SecretString="x")
    sm.delete_secret(SecretId=f"{prefix}-gone")
    f = [{"Key": "name", "Values": [prefix]}]
    assert names(sm.list_secrets(Filters=f)) == [f"{prefix}-keep"]
    listed = sm.list_secrets(Filters=f, IncludePlannedDeletion=True, SortBy="name", SortOrder="asc")
    assert names(listed) == [f"{prefix}-gone", f"{prefix}-keep"]
    assert "DeletedDate" in listed["SecretList"][0]


def test_batch_get_by_ids_reports_per_secret_errors(sm, prefix):
    sm.create_secret(Name=f"{prefix}-a", SecretString="A")
    sm.create_secret(Name=f"{prefix}-b", SecretString="B")
    out = sm.batch_get_secret_value(SecretIdList=[f"{prefix}-a", f"{prefix}-b", f"{prefix}-missing"])
    assert sorted(v["SecretString"] for v in out["SecretValues"]) == ["A", "B"]
    assert [(e["SecretId"], e["ErrorCode"]) for e in out["Errors"]] == [
        (f"{prefix}-missing", "ResourceNotFoundException")
    ]


def test_batch_get_by_filter(sm, prefix):
    for i in range(3):
        sm.create_secret(Name=f"{prefix}-{i}", SecretString=str(i))
    out = sm.batch_get_secret_value(Filters=[{"Key": "name", "Values": [prefix]}])
    assert sorted(v["SecretString"] for v in out["SecretValues"]) == ["0", "1", "2"]


def test_batch_get_needs_exactly_one_selector(sm):
    with pytest.raises(ClientError) as exc:
        sm.batch_get_secret_value()
    assert exc.value.response["Error"]["Code"] == "InvalidParameterException"
