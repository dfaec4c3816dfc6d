"""IAM policy evaluation, table-driven: one row per operator and element, positive and negative."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.policy import PolicyError, Request, access_denied_message, evaluate, parse_policy

ACCOUNT = "111122223333"
USER = f"arn:aws:iam::{ACCOUNT}:user/app"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/db-AbCdEf"


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow_if(condition: dict) -> str:
    return doc({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*", "Condition": condition})


def request(context: dict | None = None, action: str = "secretsmanager:GetSecretValue", resource: str = SECRET,
            principal: str = USER, account: str = ACCOUNT, resource_account: str = ACCOUNT) -> Request:
    return Request(principal, account, action, resource, resource_account, context or {})


def allowed(document: str, req: Request | None = None, resource_policies: tuple[str, ...] = ()) -> bool:
    return evaluate(req or request(), [parse_policy(document)],
                    [parse_policy(d) for d in resource_policies]).allowed


CONDITIONS = [
    # operator, condition values, context, expected
    ("StringEquals", {"aws:PrincipalAccount": ACCOUNT}, {"aws:PrincipalAccount": ACCOUNT}, True),
    ("StringEquals", {"aws:PrincipalAccount": "999"}, {"aws:PrincipalAccount": ACCOUNT}, False),
    ("StringNotEquals", {"aws:RequestedRegion": "eu-west-1"}, {"aws:RequestedRegion": "us-east-1"}, True),
    ("StringNotEquals", {"aws:RequestedRegion": "us-east-1"}, {"aws:RequestedRegion": "us-east-1"}, False),
    ("StringEqualsIgnoreCase", {"secretsmanager:Name": "PROD"}, {"secretsmanager:Name": "prod"}, True),
    ("StringNotEqualsIgnoreCase", {"secretsmanager:Name": "PROD"}, {"secretsmanager:Name": "prod"}, False),
    ("StringLike", {"secretsmanager:Name": "prod/*"}, {"secretsmanager:Name": "prod/db"}, True),
    ("StringLike", {"secretsmanager:Name": "prod/?b"}, {"secretsmanager:Name": "prod/db"}, True),
    ("StringLike", {"secretsmanager:Name": "prod/[a]"}, {"secretsmanager:Name": "prod/a"}, False),  # no regex
    ("StringNotLike", {"secretsmanager:Name": "dev/*"}, {"secretsmanager:Name": "prod/db"}, True),
    ("NumericEquals", {"secretsmanager:RecoveryWindowInDays": "7"}, {"secretsmanager:RecoveryWindowInDays": "7"}, True),
    ("NumericNotEquals", {"secretsmanager:RecoveryWindowInDays": "7"}, {"secretsmanager:RecoveryWindowInDays": "7"}, False),
    ("NumericLessThan", {"secretsmanager:RecoveryWindowInDays": "10"}, {"secretsmanager:RecoveryWindowInDays": "7"}, True),
    ("NumericLessThanEquals", {"secretsmanager:RecoveryWindowInDays": "7"}, {"secretsmanager:RecoveryWindowInDays": "7"}, True),
    ("NumericGreaterThan", {"secretsmanager:RecoveryWindowInDays": "7"}, {"secretsmanager:RecoveryWindowInDays": "7"}, False),
    ("NumericGreaterThanEquals", {"secretsmanager:RecoveryWindowInDays": "7"}, {"secretsmanager:RecoveryWindowInDays": "30"}, True),
    ("NumericEquals", {"secretsmanager:RecoveryWindowInDays": "x"}, {"secretsmanager:RecoveryWindowInDays": "7"}, False),
    ("DateLessThan", {"aws:CurrentTime": "2030-01-01T00:00:00Z"}, {"aws:CurrentTime": "2026-11-22T10:00:00Z"}, True),
    ("DateGreaterThan", {"aws:CurrentTime": "2030-01-01T00:00:00Z"}, {"aws:CurrentTime": "2026-11-22T10:00:00Z"}, False),
    ("DateEquals", {"aws:EpochTime": "1700000000"}, {"aws:EpochTime": "1700000000"}, True),
    ("DateNotEquals", {"aws:EpochTime": "1700000000"}, {"aws:EpochTime": "1700000001"}, True),
    ("DateLessThanEquals", {"aws:CurrentTime": "2026-11-22T10:00:00Z"}, {"aws:CurrentTime": "2026-11-22T10:00:00Z"}, True),
    ("DateGreaterThanEquals", {"aws:CurrentTime": "2026-11-22T10:00:01Z"}, {"aws:CurrentTime": "2026-11-22T10:00:00Z"}, False),
    ("Bool", {"aws:SecureTransport": "true"}, {"aws:SecureTransport": "false"}, False),
    ("Bool", {"aws:SecureTransport": "false"}, {"aws:SecureTransport": "FALSE"}, True),
    ("BinaryEquals", {"secretsmanager:Description": "QUJD"}, {"secretsmanager:Description": "QUJD"}, True),
    ("IpAddress", {"aws:SourceIp": "10.0.0.0/8"}, {"aws:SourceIp": "10.1.2.3"}, True),
    ("IpAddress", {"aws:SourceIp": "10.0.0.0/8"}, {"aws:SourceIp": "192.168.1.1"}, False),
    ("IpAddress", {"aws:SourceIp": "2001:db8::/32"}, {"aws:SourceIp": "2001:db8::1"}, True),
    ("NotIpAddress", {"aws:SourceIp": "10.0.0.0/8"}, {"aws:SourceIp": "192.168.1.1"}, True),
    ("ArnEquals", {"aws:PrincipalArn": USER}, {"aws:PrincipalArn": USER}, True),
    ("ArnLike", {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}, {"aws:PrincipalArn": USER}, True),
    ("ArnLike", {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}, {"aws:PrincipalArn": USER}, False),
    ("ArnNotEquals", {"aws:PrincipalArn": USER}, {"aws:PrincipalArn": USER}, False),
    ("ArnNotLike", {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}, {"aws:PrincipalArn": USER}, True),
    ("Null", {"aws:ResourceTag/team": "true"}, {}, True),
    ("Null", {"aws:ResourceTag/team": "false"}, {}, False),
    ("Null", {"aws:ResourceTag/team": "false"}, {"aws:ResourceTag/team": "blue"}, True),
    # a missing key: false, except IfExists and the negated forms
    ("StringEquals", {"aws:ResourceTag/team": "blue"}, {}, False),
    ("StringEqualsIfExists", {"aws:ResourceTag/team": "blue"}, {}, True),
    ("StringEqualsIfExists", {"aws:ResourceTag/team": "blue"}, {"aws:ResourceTag/team": "red"}, False),
    ("StringNotEquals", {"aws:ResourceTag/team": "blue"}, {}, True),
    # several values for one key: any of them
    ("StringEquals", {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]}, {"aws:RequestedRegion": "us-east-1"}, True),
    # multi-valued keys
    ("ForAnyValue:StringEquals", {"aws:TagKeys": ["env"]}, {"aws:TagKeys": ["team", "env"]}, True),
    ("ForAnyValue:StringEquals", {"aws:TagKeys": ["env"]}, {"aws:TagKeys": ["team"]}, False),
    ("ForAnyValue:StringEquals", {"aws:TagKeys": ["env"]}, {}, False),
    ("ForAllValues:StringEquals", {"aws:TagKeys": ["env", "team"]}, {"aws:TagKeys": ["team"]}, True),
    ("ForAllValues:StringEquals", {"aws:TagKeys": ["env"]}, {"aws:TagKeys": ["team", "env"]}, False),
    ("ForAllValues:StringEquals", {"aws:TagKeys": ["env"]}, {}, True),
    # condition keys compare case-insensitively
    ("StringEquals", {"AWS:REQUESTEDREGION": "us-east-1"}, {"aws:RequestedRegion": "us-east-1"}, True),
]


@pytest.mark.parametrize("operator, values, context, expected", CONDITIONS)
def test_condition_operators(operator, values, context, expected):
    assert allowed(allow_if({operator: values}), request(context)) is expected


def test_conditions_and_together():
    document = allow_if({"StringEquals": {"aws:RequestedRegion": "us-east-1"},
                         "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    assert allowed(document, request({"aws:RequestedRegion": "us-east-1", "aws:SourceIp": "10.0.0.1"}))
    assert not allowed(document, request({"aws:RequestedRegion": "us-east-1", "aws:SourceIp": "11.0.0.1"}))


@pytest.mark.parametrize("statement, action, resource, expected", [
    ({"Action": "secretsmanager:*", "Resource": "*"}, "secretsmanager:GetSecretValue", SECRET, True),
    ({"Action": "SecretsManager:getsecretvalue", "Resource": "*"}, "secretsmanager:GetSecretValue", SECRET, True),
    ({"Action": "secretsmanager:Get*", "Resource": "*"}, "secretsmanager:PutSecretValue", SECRET, False),
    ({"NotAction": "secretsmanager:Delete*", "Resource": "*"}, "secretsmanager:GetSecretValue", SECRET, True),
    ({"NotAction": "secretsmanager:Delete*", "Resource": "*"}, "secretsmanager:DeleteSecret", SECRET, False),
    ({"Action": "*", "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/db-??????"},
     "secretsmanager:GetSecretValue", SECRET, True),
    ({"Action": "*", "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:PROD/*"},
     "secretsmanager:GetSecretValue", SECRET, False),  # resources are case-sensitive
    ({"Action": "*", "NotResource": "arn:aws:secretsmanager:*:*:secret:prod/*"},
     "secretsmanager:GetSecretValue", SECRET, False),
    ({"Action": "*", "Resource": "arn:aws:secretsmanager:us-east-1:*:secret:prod/db.AbCdEf"},
     "secretsmanager:GetSecretValue", SECRET, False),  # "." is literal
])
def test_action_and_resource_matching(statement, action, resource, expected):
    assert allowed(doc({"Effect": "Allow", **statement}), request(action=action, resource=resource)) is expected


def test_explicit_deny_beats_allow_everywhere():
    allow = doc({"Effect": "Allow", "Action": "*", "Resource": "*"})
    deny = doc({"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": "*"})
    d = evaluate(request(), [parse_policy(allow), parse_policy(deny)], [])
    assert not d.allowed and d.reason == "with an explicit deny in an identity-based policy"
    resource_deny = doc({"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"})
    d = evaluate(request(), [parse_policy(allow)], [parse_policy(resource_deny)])
    assert not d.allowed and d.reason == "with an explicit deny in a resource-based policy"


def test_implicit_deny_and_aws_message():
    d = evaluate(request(), [], [])
    assert not d.allowed
    assert access_denied_message(USER, "secretsmanager:GetSecretValue", SECRET, d) == (
        f"User: {USER} is not authorized to perform: secretsmanager:GetSecretValue on resource: {SECRET} "
        "because no identity-based policy allows the secretsmanager:GetSecretValue action")


@pytest.mark.parametrize("principal, expected", [
    # Naming the account (or its root) delegates to the account's identity policies: by itself it
    # grants nothing to a user of the same account.
    ({"AWS": USER}, True), ({"AWS": ACCOUNT}, False), ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, False),
    ({"AWS": "*"}, True), ("*", True), ({"AWS": "arn:aws:iam::999988887777:root"}, False),
    ({"AWS": f"arn:aws:iam::{ACCOUNT}:user/other"}, False), ({"Service": "lambda.amazonaws.com"}, False),
])
def test_resource_policy_principals_same_account(principal, expected):
    resource = doc({"Effect": "Allow", "Principal": principal, "Action": "secretsmanager:*", "Resource": "*"})
    assert evaluate(request(), [], [parse_policy(resource)]).allowed is expected
    # ...while an explicit deny naming the account applies to everyone in it.
    deny = doc({"Effect": "Deny", "Principal": principal, "Action": "secretsmanager:*", "Resource": "*"})
    allow_all = parse_policy(doc({"Effect": "Allow", "Action": "*", "Resource": "*"}))
    assert evaluate(request(), [allow_all], [parse_policy(deny)]).allowed is (principal in (
        {"AWS": "arn:aws:iam::999988887777:root"}, {"AWS": f"arn:aws:iam::{ACCOUNT}:user/other"},
        {"Service": "lambda.amazonaws.com"}))


def test_not_principal():
    resource = doc({"Effect": "Deny", "NotPrincipal": {"AWS": USER}, "Action": "*", "Resource": "*"},
                   {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"})
    assert evaluate(request(), [], [parse_policy(resource)]).allowed
    other = request(principal=f"arn:aws:iam::{ACCOUNT}:user/other")
    assert not evaluate(other, [], [parse_policy(resource)]).allowed


def test_assumed_role_sessions_match_their_role():
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/s1"
    resource = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/reader"},
                    "Action": "*", "Resource": "*"})
    assert evaluate(request(principal=session), [], [parse_policy(resource)]).allowed


def test_cross_account_needs_both_sides():
    caller = "arn:aws:iam::999988887777:user/x"
    identity = parse_policy(doc({"Effect": "Allow", "Action": "*", "Resource": "*"}))
    resource = parse_policy(doc({"Effect": "Allow", "Principal": {"AWS": "999988887777"}, "Action": "*",
                                 "Resource": "*"}))
    req = request(principal=caller, account="999988887777")
    assert evaluate(req, [identity], [resource]).allowed
    only_identity = evaluate(req, [identity], [])
    assert not only_identity.allowed and "no resource-based policy allows" in only_identity.reason
    only_resource = evaluate(req, [], [resource])
    assert not only_resource.allowed and "no identity-based policy allows" in only_resource.reason


@pytest.mark.parametrize("document", [
    "not json", "[]", json.dumps({"Statement": []}),
    json.dumps({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Resource": "*"}}),
    json.dumps({"Version": "2012-10-17", "Statement": {"Effect": "Maybe", "Action": "*", "Resource": "*"}}),
    json.dumps({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "NotAction": "x"}}),
    json.dumps({"Version": "2012-10-17", "Extra": 1, "Statement": {"Effect": "Allow", "Action": "*"}}),
    json.dumps({"Version": "2099-01-01", "Statement": {"Effect": "Allow", "Action": "*"}}),
    allow_if({"StringEqualsish": {"aws:SourceIp": "1"}}),
    allow_if({"Sometimes:StringEquals": {"aws:SourceIp": "1"}}),
    allow_if({"NullIfExists": {"aws:SourceIp": "true"}}),
    allow_if({"StringEquals": {"aws:MadeUpKey": "1"}}),
    allow_if({"StringEquals": {"aws:ResourceTag/": "1"}}),
    doc({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::${aws:username}/*"}),
    doc({"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": {"Robots": "x"}}),
])
def test_malformed_documents_are_refused(document):
    with pytest.raises(PolicyError):
        parse_policy(document)


def test_is_public():
    assert parse_policy(doc({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"})).is_public()
    assert not parse_policy(doc({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
                                 "Condition": {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}})).is_public()
    assert not parse_policy(doc({"Effect": "Allow", "Principal": {"AWS": USER}, "Action": "*",
                                 "Resource": "*"})).is_public()


values = st.one_of(st.text(max_size=20), st.lists(st.text(max_size=10), max_size=3), st.none(),
                   st.integers().map(str))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["aws:SourceIp", "aws:CurrentTime", "aws:TagKeys", "aws:PrincipalArn",
                                        "secretsmanager:RecoveryWindowInDays", "aws:ResourceTag/team"]), values))
def test_evaluation_never_raises_on_any_context(context):
    document = allow_if({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}, "DateLessThan": {"aws:CurrentTime": "2030-01-01"},
                         "ForAllValues:StringLike": {"aws:TagKeys": "a*"}, "ArnLike": {"aws:PrincipalArn": "arn:*"},
                         "NumericLessThanIfExists": {"secretsmanager:RecoveryWindowInDays": "10"},
                         "Null": {"aws:ResourceTag/team": "false"}})
    evaluate(request(context), [parse_policy(document)], [])
