"""IAM policy evaluation, table-driven: one row per operator and element, positive and negative."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.policy import Decision, Request, access_denied_message, evaluate, parse_policy

ACCOUNT = "111122223333"
OTHER = "999988887777"
USER = f"arn:aws:iam::{ACCOUNT}:user/app"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/db-AbCdEf"
LAMBDA = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:rotate"


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow_if(condition: dict) -> str:
    return doc({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*", "Condition": condition})


def request(
    context: dict | None = None,
    action: str = "secretsmanager:GetSecretValue",
    resource: str = SECRET,
    principal: str = USER,
    account: str = ACCOUNT,
    resource_account: str = ACCOUNT,
) -> Request:
    return Request(principal, account, action, resource, resource_account, context or {})


def allowed(document: str, req: Request | None = None, resource_policies: tuple[str, ...] = ()) -> bool:
    return evaluate(req or request(), [parse_policy(document)], [parse_policy(d) for d in resource_policies]).allowed


RW = "secretsmanager:RecoveryWindowInDays"
NOW = "2026-11-22T10:00:00Z"

CONDITIONS = [
    # operator, condition values, context, expected
    # --- strings
    ("StringEquals", {"aws:PrincipalAccount": ACCOUNT}, {"aws:PrincipalAccount": ACCOUNT}, True),
    ("StringEquals", {"aws:PrincipalAccount": "999"}, {"aws:PrincipalAccount": ACCOUNT}, False),
    ("StringEquals", {"aws:RequestedRegion": "US-EAST-1"}, {"aws:RequestedRegion": "us-east-1"}, False),  # values: case
    ("StringEquals", {"aws:RequestedRegion": "us-*"}, {"aws:RequestedRegion": "us-east-1"}, False),  # no wildcards
    ("StringNotEquals", {"aws:RequestedRegion": "eu-west-1"}, {"aws:RequestedRegion": "us-east-1"}, True),
    ("StringNotEquals", {"aws:RequestedRegion": "us-east-1"}, {"aws:RequestedRegion": "us-east-1"}, False),
    ("StringEqualsIgnoreCase", {"secretsmanager:Name": "PROD"}, {"secretsmanager:Name": "prod"}, True),
    ("StringEqualsIgnoreCase", {"secretsmanager:Name": "PROD"}, {"secretsmanager:Name": "dev"}, False),
    ("StringNotEqualsIgnoreCase", {"secretsmanager:Name": "PROD"}, {"secretsmanager:Name": "prod"}, False),
    ("StringNotEqualsIgnoreCase", {"secretsmanager:Name": "PROD"}, {"secretsmanager:Name": "dev"}, True),
    ("StringLike", {"secretsmanager:Name": "prod/*"}, {"secretsmanager:Name": "prod/db"}, True),
    ("StringLike", {"secretsmanager:Name": "prod/?b"}, {"secretsmanager:Name": "prod/db"}, True),
    ("StringLike", {"secretsmanager:Name": "prod/?"}, {"secretsmanager:Name": "prod/db"}, False),
    ("StringLike", {"secretsmanager:Name": "PROD/*"}, {"secretsmanager:Name": "prod/db"}, False),  # case-sensitive
    ("StringLike", {"secretsmanager:Name": "prod/[a]"}, {"secretsmanager:Name": "prod/a"}, False),  # no regex
    ("StringLike", {"secretsmanager:Name": "prod.db"}, {"secretsmanager:Name": "prodxdb"}, False),  # "." literal
    ("StringNotLike", {"secretsmanager:Name": "dev/*"}, {"secretsmanager:Name": "prod/db"}, True),
    ("StringNotLike", {"secretsmanager:Name": "prod/*"}, {"secretsmanager:Name": "prod/db"}, False),
    # --- numbers
    ("NumericEquals", {RW: "7"}, {RW: "7"}, True),
    ("NumericEquals", {RW: "7"}, {RW: "7.0"}, True),
    ("NumericEquals", {RW: "7"}, {RW: "8"}, False),
    ("NumericEquals", {RW: "7"}, {RW: "seven"}, False),  # an unreadable request value never matches
    ("NumericNotEquals", {RW: "7"}, {RW: "7"}, False),
    ("NumericNotEquals", {RW: "7"}, {RW: "30"}, True),
    ("NumericLessThan", {RW: "10"}, {RW: "7"}, True),
    ("NumericLessThan", {RW: "7"}, {RW: "7"}, False),
    ("NumericLessThanEquals", {RW: "7"}, {RW: "7"}, True),
    ("NumericLessThanEquals", {RW: "7"}, {RW: "8"}, False),
    ("NumericGreaterThan", {RW: "7"}, {RW: "7"}, False),
    ("NumericGreaterThan", {RW: "7"}, {RW: "30"}, True),
    ("NumericGreaterThanEquals", {RW: "7"}, {RW: "30"}, True),
    ("NumericGreaterThanEquals", {RW: "7"}, {RW: "6"}, False),
    ("NumericLessThan", {RW: 10}, {RW: "7"}, True),  # a JSON number in the policy
    # --- dates: ISO 8601 or epoch seconds, on either side
    ("DateLessThan", {"aws:CurrentTime": "2030-01-01T00:00:00Z"}, {"aws:CurrentTime": NOW}, True),
    ("DateLessThan", {"aws:CurrentTime": "2020-01-01T00:00:00Z"}, {"aws:CurrentTime": NOW}, False),
    ("DateGreaterThan", {"aws:CurrentTime": "2030-01-01T00:00:00Z"}, {"aws:CurrentTime": NOW}, False),
    ("DateGreaterThan", {"aws:CurrentTime": "2020-01-01"}, {"aws:CurrentTime": NOW}, True),
    ("DateEquals", {"aws:EpochTime": "1700000000"}, {"aws:EpochTime": "1700000000"}, True),
    ("DateEquals", {"aws:CurrentTime": "2023-11-14T22:13:20Z"}, {"aws:CurrentTime": "1700000000"}, True),
    ("DateEquals", {"aws:CurrentTime": "2023-11-14T23:13:20+01:00"}, {"aws:CurrentTime": "2023-11-14T22:13:20Z"}, True),
    ("DateEquals", {"aws:CurrentTime": "2026-11-22"}, {"aws:CurrentTime": "2026-11-22T00:00:00Z"}, True),  # UTC
    ("DateEquals", {"aws:CurrentTime": "2026-11-22T10:00:00z"}, {"aws:CurrentTime": NOW}, True),  # RFC 3339's "z"
    ("DateEquals", {"aws:CurrentTime": NOW}, {"aws:CurrentTime": "2026-11-22T10:00:00z"}, True),
    ("DateEquals", {"aws:EpochTime": "1700000000"}, {"aws:EpochTime": "not a date"}, False),
    ("DateNotEquals", {"aws:EpochTime": "1700000000"}, {"aws:EpochTime": "1700000001"}, True),
    ("DateNotEquals", {"aws:EpochTime": "1700000000"}, {"aws:EpochTime": "1700000000"}, False),
    ("DateLessThanEquals", {"aws:CurrentTime": NOW}, {"aws:CurrentTime": NOW}, True),
    ("DateLessThanEquals", {"aws:CurrentTime": "2026-11-22T09:59:59Z"}, {"aws:CurrentTime": NOW}, False),
    ("DateGreaterThanEquals", {"aws:CurrentTime": "2026-11-22T10:00:01Z"}, {"aws:CurrentTime": NOW}, False),
    ("DateGreaterThanEquals", {"aws:CurrentTime": NOW}, {"aws:CurrentTime": NOW}, True),
    # --- booleans, binary
    ("Bool", {"aws:SecureTransport": "true"}, {"aws:SecureTransport": "false"}, False),
    ("Bool", {"aws:SecureTransport": "true"}, {"aws:SecureTransport": "true"}, True),
    ("Bool", {"aws:SecureTransport": "false"}, {"aws:SecureTransport": "FALSE"}, True),
    ("Bool", {"aws:SecureTransport": True}, {"aws:SecureTransport": "true"}, True),  # a JSON boolean
    ("BinaryEquals", {"secretsmanager:Description": "QUJD"}, {"secretsmanager:Description": "QUJD"}, True),
    ("BinaryEquals", {"secretsmanager:Description": "QUJD"}, {"secretsmanager:Description": "QUJE"}, False),
    # --- IP addresses
    ("IpAddress", {"aws:SourceIp": "10.0.0.0/8"}, {"aws:SourceIp": "10.1.2.3"}, True),
    ("IpAddress", {"aws:SourceIp": "10.0.0.0/8"}, {"aws:SourceIp": "192.168.1.1"}, False),
    ("IpAddress", {"aws:SourceIp": "10.1.2.3"}, {"aws:SourceIp": "10.1.2.3"}, True),  # one address: a /32
    ("IpAddress", {"aws:SourceIp": "10.1.2.3/32"}, {"aws:SourceIp": "10.1.2.4"}, False),
    ("IpAddress", {"aws:SourceIp": "2001:db8::/32"}, {"aws:SourceIp": "2001:db8::1"}, True),
    ("IpAddress", {"aws:SourceIp": "2001:db8::/32"}, {"aws:SourceIp": "2001:db9::1"}, False),
    ("IpAddress", {"aws:SourceIp": "::/0"}, {"aws:SourceIp": "10.1.2.3"}, False),  # versions never mix
    ("IpAddress", {"aws:SourceIp": "0.0.0.0/0"}, {"aws:SourceIp": "not an address"}, False),
    ("IpAddress", {"aws:SourceIp": ["192.168.0.0/16", "10.0.0.0/8"]}, {"aws:SourceIp": "10.1.2.3"}, True),
    ("NotIpAddress", {"aws:SourceIp": "10.0.0.0/8"}, {"aws:SourceIp": "192.168.1.1"}, True),
    ("NotIpAddress", {"aws:SourceIp": "10.0.0.0/8"}, {"aws:SourceIp": "10.9.9.9"}, False),
    # --- ARNs: six parts compared separately, wildcards per part, case-sensitive
    ("ArnEquals", {"aws:PrincipalArn": USER}, {"aws:PrincipalArn": USER}, True),
    ("ArnEquals", {"aws:PrincipalArn": USER}, {"aws:PrincipalArn": USER + "2"}, False),
    ("ArnEquals", {"aws:SourceArn": f"arn:aws:lambda:*:{ACCOUNT}:function:rotate"}, {"aws:SourceArn": LAMBDA}, True),
    ("ArnLike", {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}, {"aws:PrincipalArn": USER}, True),
    ("ArnLike", {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}, {"aws:PrincipalArn": USER}, False),
    ("ArnLike", {"aws:PrincipalArn": "arn:aws:iam::*:USER/*"}, {"aws:PrincipalArn": USER}, False),
    ("ArnLike", {"aws:SourceArn": "arn:aws:lambda:*:function:rotate"}, {"aws:SourceArn": LAMBDA}, False),  # no colon
    ("ArnLike", {"aws:SourceArn": "arn:aws:lambda:*"}, {"aws:SourceArn": "lambda-rotate"}, False),  # not an ARN
    (  # a "*" stays within its component: the account's cannot take the resource's "x:"
        "ArnLike",
        {"aws:SourceArn": "arn:aws:lambda:us-east-1:*:function:rotate"},
        {"aws:SourceArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:x:function:rotate"},
        False,
    ),
    ("ArnNotEquals", {"aws:PrincipalArn": USER}, {"aws:PrincipalArn": USER}, False),
    ("ArnNotEquals", {"aws:PrincipalArn": USER}, {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/x"}, True),
    ("ArnNotLike", {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}, {"aws:PrincipalArn": USER}, True),
    ("ArnNotLike", {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}, {"aws:PrincipalArn": USER}, False),
    # --- Null: tests presence
    ("Null", {"aws:ResourceTag/team": "true"}, {}, True),
    ("Null", {"aws:ResourceTag/team": "true"}, {"aws:ResourceTag/team": "blue"}, False),
    ("Null", {"aws:ResourceTag/team": "false"}, {}, False),
    ("Null", {"aws:ResourceTag/team": "false"}, {"aws:ResourceTag/team": "blue"}, True),
    ("Null", {"aws:TagKeys": "true"}, {"aws:TagKeys": []}, True),  # an empty set is null
    # --- a missing key: false, except IfExists and the negated forms
    ("StringEquals", {"aws:ResourceTag/team": "blue"}, {}, False),
    ("StringLike", {"aws:ResourceTag/team": "*"}, {}, False),
    ("StringEqualsIfExists", {"aws:ResourceTag/team": "blue"}, {}, True),
    ("StringEqualsIfExists", {"aws:ResourceTag/team": "blue"}, {"aws:ResourceTag/team": "red"}, False),
    ("StringEqualsIfExists", {"aws:ResourceTag/team": "blue"}, {"aws:ResourceTag/team": "blue"}, True),
    ("NumericLessThanIfExists", {RW: "10"}, {}, True),
    ("NumericLessThanIfExists", {RW: "10"}, {RW: "30"}, False),
    ("BoolIfExists", {"aws:SecureTransport": "true"}, {}, True),
    ("IpAddressIfExists", {"aws:SourceIp": "10.0.0.0/8"}, {"aws:SourceIp": "11.0.0.1"}, False),
    ("StringNotEquals", {"aws:ResourceTag/team": "blue"}, {}, True),
    ("StringNotLike", {"aws:ResourceTag/team": "b*"}, {}, True),
    ("NumericNotEquals", {RW: "7"}, {}, True),
    ("NotIpAddress", {"aws:SourceIp": "10.0.0.0/8"}, {}, True),
    ("ArnNotLike", {"aws:SourceArn": "arn:aws:lambda:*:*:function:*"}, {}, True),
    ("NumericEquals", {RW: "7"}, {}, False),
    ("DateLessThan", {"aws:CurrentTime": "2030-01-01"}, {}, False),
    ("Bool", {"aws:SecureTransport": "false"}, {}, False),
    ("IpAddress", {"aws:SourceIp": "0.0.0.0/0"}, {}, False),
    ("ArnLike", {"aws:SourceArn": "*"}, {}, False),
    # --- several values for one key: any of them (OR); for negated operators none of them (NOR)
    ("StringEquals", {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]}, {"aws:RequestedRegion": "us-east-1"}, True),
    ("StringEquals", {"aws:RequestedRegion": ["eu-west-1", "us-west-2"]}, {"aws:RequestedRegion": "us-east-1"}, False),
    (
        "StringNotEquals",
        {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]},
        {"aws:RequestedRegion": "us-east-1"},
        False,
    ),
    (
        "StringNotEquals",
        {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]},
        {"aws:RequestedRegion": "ap-south-1"},
        True,
    ),
    # --- several keys under one operator: all of them (AND)
    (
        "StringEquals",
        {"aws:RequestedRegion": "us-east-1", "aws:PrincipalAccount": ACCOUNT},
        {"aws:RequestedRegion": "us-east-1", "aws:PrincipalAccount": ACCOUNT},
        True,
    ),
    (
        "StringEquals",
        {"aws:RequestedRegion": "us-east-1", "aws:PrincipalAccount": ACCOUNT},
        {"aws:RequestedRegion": "us-east-1", "aws:PrincipalAccount": OTHER},
        False,
    ),
    # --- multi-valued keys
    ("ForAnyValue:StringEquals", {"aws:TagKeys": ["env"]}, {"aws:TagKeys": ["team", "env"]}, True),
    ("ForAnyValue:StringEquals", {"aws:TagKeys": ["env"]}, {"aws:TagKeys": ["team"]}, False),
    ("ForAnyValue:StringEquals", {"aws:TagKeys": ["env"]}, {}, False),
    ("ForAnyValue:StringEquals", {"aws:TagKeys": ["env"]}, {"aws:TagKeys": []}, False),
    ("ForAnyValue:StringEqualsIfExists", {"aws:TagKeys": ["env"]}, {}, False),  # still false (AWS re:Post)
    ("ForAnyValue:StringNotEquals", {"aws:TagKeys": ["env"]}, {"aws:TagKeys": ["env", "team"]}, True),
    ("ForAnyValue:StringNotEquals", {"aws:TagKeys": ["env"]}, {"aws:TagKeys": ["env"]}, False),
    ("ForAnyValue:StringNotEquals", {"aws:TagKeys": ["env"]}, {}, False),
    ("ForAnyValue:StringLike", {"aws:TagKeys": ["e*"]}, {"aws:TagKeys": ["team", "env"]}, True),
    ("ForAllValues:StringEquals", {"aws:TagKeys": ["env", "team"]}, {"aws:TagKeys": ["team"]}, True),
    ("ForAllValues:StringEquals", {"aws:TagKeys": ["env"]}, {"aws:TagKeys": ["team", "env"]}, False),
    ("ForAllValues:StringEquals", {"aws:TagKeys": ["env"]}, {}, True),
    ("ForAllValues:StringEquals", {"aws:TagKeys": ["env"]}, {"aws:TagKeys": []}, True),
    ("ForAllValues:StringEqualsIfExists", {"aws:TagKeys": ["env"]}, {}, True),
    # AWS's own table for ForAllValues:StringNotLike (multi-valued context key examples)
    ("ForAllValues:StringNotLike", {"aws:TagKeys": "key1*"}, {"aws:TagKeys": ["key1:legal"]}, False),
    ("ForAllValues:StringNotLike", {"aws:TagKeys": "key1*"}, {"aws:TagKeys": ["key1:hr", "key1:personnel"]}, False),
    ("ForAllValues:StringNotLike", {"aws:TagKeys": "key1*"}, {"aws:TagKeys": ["key2:audit"]}, True),
    ("ForAllValues:StringNotLike", {"aws:TagKeys": "key1*"}, {}, True),
    (
        "ForAnyValue:StringEquals",
        {"secretsmanager:AddReplicaRegions": "eu-west-1"},
        {"secretsmanager:AddReplicaRegions": ["us-west-2", "eu-west-1"]},
        True,
    ),
    (
        "ForAllValues:StringEquals",
        {"secretsmanager:AddReplicaRegions": "eu-west-1"},
        {"secretsmanager:AddReplicaRegions": ["us-west-2", "eu-west-1"]},
        False,
    ),
    # --- condition keys compare case-insensitively (tag keys too); values per operator
    ("StringEquals", {"AWS:REQUESTEDREGION": "us-east-1"}, {"aws:RequestedRegion": "us-east-1"}, True),
    ("StringEquals", {"aws:RequestedRegion": "us-east-1"}, {"AWS:requestedregion": "us-east-1"}, True),
    ("StringEquals", {"aws:ResourceTag/Team": "blue"}, {"aws:ResourceTag/team": "blue"}, True),
    ("StringEquals", {"aws:ResourceTag/team": "Blue"}, {"aws:ResourceTag/team": "blue"}, False),
    ("StringEquals", {"secretsmanager:ResourceTag/team": "blue"}, {"secretsmanager:ResourceTag/team": "blue"}, True),
]


@pytest.mark.parametrize("operator, values, context, expected", CONDITIONS)
def test_condition_operators(operator, values, context, expected):
    assert allowed(allow_if({operator: values}), request(context)) is expected


@pytest.mark.parametrize("operator, values, context, expected", CONDITIONS)
def test_condition_operators_in_deny(operator, values, context, expected):
    """The same condition on a Deny: it denies exactly when it holds."""
    policies = [
        parse_policy(doc({"Effect": "Allow", "Action": "*", "Resource": "*"})),
        parse_policy(doc({"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {operator: values}})),
    ]
    assert evaluate(request(context), policies, []).allowed is not expected


def test_conditions_and_together():
    document = allow_if(
        {"StringEquals": {"aws:RequestedRegion": "us-east-1"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    )
    assert allowed(document, request({"aws:RequestedRegion": "us-east-1", "aws:SourceIp": "10.0.0.1"}))
    assert not allowed(document, request({"aws:RequestedRegion": "us-east-1", "aws:SourceIp": "11.0.0.1"}))
    assert not allowed(document, request({"aws:SourceIp": "10.0.0.1"}))


@pytest.mark.parametrize(
    "statement, action, resource, expected",
    [
        ({"Action": "*", "Resource": "*"}, "secretsmanager:GetSecretValue", SECRET, True),
        ({"Action": "secretsmanager:*", "Resource": "*"}, "secretsmanager:GetSecretValue", SECRET, True),
        ({"Action": "secretsmanager:*", "Resource": "*"}, "iam:GetUser", SECRET, False),
        ({"Action": "SecretsManager:getsecretvalue", "Resource": "*"}, "secretsmanager:GetSecretValue", SECRET, True),
        ({"Action": "secretsmanager:Get*", "Resource": "*"}, "secretsmanager:PutSecretValue", SECRET, False),
        ({"Action": "secretsmanager:?etSecretValue", "Resource": "*"}, "secretsmanager:GetSecretValue", SECRET, True),
        ({"Action": "secretsmanager:?SecretValue", "Resource": "*"}, "secretsmanager:GetSecretValue", SECRET, False),
        (
            {"Action": ["secretsmanager:Describe*", "secretsmanager:GetSecretValue"], "Resource": "*"},
            "secretsmanager:GetSecretValue",
            SECRET,
            True,
        ),
        ({"Action": "secretsmanager:GetSecret", "Resource": "*"}, "secretsmanager:GetSecretValue", SECRET, False),
        ({"NotAction": "secretsmanager:Delete*", "Resource": "*"}, "secretsmanager:GetSecretValue", SECRET, True),
        ({"NotAction": "secretsmanager:Delete*", "Resource": "*"}, "secretsmanager:DeleteSecret", SECRET, False),
        ({"NotAction": "SECRETSMANAGER:delete*", "Resource": "*"}, "secretsmanager:DeleteSecret", SECRET, False),
        ({"Action": "*", "Resource": SECRET}, "secretsmanager:GetSecretValue", SECRET, True),
        (
            {"Action": "*", "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/db-??????"},
            "secretsmanager:GetSecretValue",
            SECRET,
            True,
        ),
        (
            {"Action": "*", "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/db-?????"},
            "secretsmanager:GetSecretValue",
            SECRET,
            False,
        ),
        (
            {"Action": "*", "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:PROD/*"},
            "secretsmanager:GetSecretValue",
            SECRET,
            False,
        ),  # resources are case-sensitive
        (
            {"Action": "*", "Resource": "arn:aws:secretsmanager:*:*:secret:*"},
            "secretsmanager:GetSecretValue",
            SECRET,
            True,
        ),
        (
            {"Action": "*", "Resource": [f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:dev/*", SECRET]},
            "secretsmanager:GetSecretValue",
            SECRET,
            True,
        ),
        (
            {"Action": "*", "NotResource": "arn:aws:secretsmanager:*:*:secret:prod/*"},
            "secretsmanager:GetSecretValue",
            SECRET,
            False,
        ),
        (
            {"Action": "*", "NotResource": "arn:aws:secretsmanager:*:*:secret:dev/*"},
            "secretsmanager:GetSecretValue",
            SECRET,
            True,
        ),
        (
            {"Action": "*", "Resource": "arn:aws:secretsmanager:us-east-1:*:secret:prod/db.AbCdEf"},
            "secretsmanager:GetSecretValue",
            SECRET,
            False,
        ),  # "." is literal
        (
            {"Action": "*", "Resource": "arn:aws:secretsmanager:us-east-1:*:secret:prod/db-(AbCdEf)"},
            "secretsmanager:GetSecretValue",
            SECRET,
            False,
        ),  # so are regex groups
    ],
)
def test_action_and_resource_matching(statement, action, resource, expected):
    assert allowed(doc({"Effect": "Allow", **statement}), request(action=action, resource=resource)) is expected


ALLOW_ALL = doc({"Effect": "Allow", "Action": "*", "Resource": "*"})
DENY_GET = doc({"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": "*"})
RP_ALLOW_USER = doc({"Effect": "Allow", "Principal": {"AWS": USER}, "Action": "*", "Resource": "*"})
RP_DENY_ALL = doc({"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"})
ID_DENY = "with an explicit deny in an identity-based policy"
RP_DENY = "with an explicit deny in a resource-based policy"
NO_ID = "because no identity-based policy allows the secretsmanager:GetSecretValue action"
NO_RP = "because no resource-based policy allows the secretsmanager:GetSecretValue action"


@pytest.mark.parametrize(
    "identity, resource, expected",
    [
        ([ALLOW_ALL], [], Decision(True)),
        ([], [], Decision(False, NO_ID)),
        ([ALLOW_ALL, DENY_GET], [], Decision(False, ID_DENY)),
        ([DENY_GET, ALLOW_ALL], [], Decision(False, ID_DENY)),
        ([DENY_GET], [RP_ALLOW_USER], Decision(False, ID_DENY)),  # a deny beats a resource policy's allow
        ([ALLOW_ALL], [RP_DENY_ALL], Decision(False, RP_DENY)),  # and a resource deny an identity allow
        ([], [RP_ALLOW_USER], Decision(True)),
        (
            [doc({"Effect": "Deny", "NotAction": "secretsmanager:Describe*", "Resource": "*"}), ALLOW_ALL],
            [],
            Decision(False, ID_DENY),
        ),
        ([doc({"Effect": "Deny", "NotAction": "secretsmanager:Get*", "Resource": "*"}), ALLOW_ALL], [], Decision(True)),
        ([doc({"Effect": "Deny", "Action": "*", "NotResource": SECRET}), ALLOW_ALL], [], Decision(True)),
        (
            [
                doc(
                    {
                        "Effect": "Deny",
                        "Action": "*",
                        "Resource": "*",
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ),
                ALLOW_ALL,
            ],
            [],
            Decision(True),
        ),  # a deny whose condition fails does not apply
        (
            [
                doc(
                    {"Effect": "Deny", "Action": "secretsmanager:Delete*", "Resource": "*"},
                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                )
            ],
            [],
            Decision(True),
        ),
    ],
    ids=lambda v: None,
)
def test_same_account_decisions(identity, resource, expected):
    d = evaluate(request(), [parse_policy(p) for p in identity], [parse_policy(p) for p in resource])
    assert d == expected


def test_aws_message():
    d = evaluate(request(), [], [])
    assert not d.allowed
    assert access_denied_message(USER, "secretsmanager:GetSecretValue", SECRET, d) == (
        f"User: {USER} is not authorized to perform: secretsmanager:GetSecretValue on resource: {SECRET} "
        "because no identity-based policy allows the secretsmanager:GetSecretValue action"
    )
    d = evaluate(request(), [parse_policy(DENY_GET)], [])
    assert access_denied_message(USER, "secretsmanager:GetSecretValue", SECRET, d).endswith(
        f"on resource: {SECRET} with an explicit deny in an identity-based policy"
    )


SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/s1"


@pytest.mark.parametrize(
    "caller, principal, expected",
    [
        # Naming the account (or its root) delegates to the account's identity policies: by itself it
        # grants nothing to a user of the same account.
        (USER, {"AWS": USER}, True),
        (USER, {"AWS": ACCOUNT}, False),
        (USER, {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, False),
        (USER, {"AWS": "*"}, True),
        (USER, "*", True),
        (USER, {"AWS": f"arn:aws:iam::{OTHER}:root"}, False),
        (USER, {"AWS": f"arn:aws:iam::{ACCOUNT}:user/other"}, False),
        (USER, {"Service": "lambda.amazonaws.com"}, False),
        (USER, {"AWS": [f"arn:aws:iam::{ACCOUNT}:user/other", USER]}, True),
        (USER, {"AWS": f"arn:aws:iam::{ACCOUNT}:user/App"}, False),  # ARNs compare exactly
        # role sessions match their role, whatever the role's path, and their own session ARN
        (SESSION, {"AWS": f"arn:aws:iam::{ACCOUNT}:role/reader"}, True),
        (SESSION, {"AWS": f"arn:aws:iam::{ACCOUNT}:role/team/reader"}, True),
        (SESSION, {"AWS": f"arn:aws:iam::{ACCOUNT}:role/division:east/reader"}, True),  # a path may hold ":"
        (SESSION, {"AWS": SESSION}, True),
        (SESSION, {"AWS": f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/s2"}, False),
        (SESSION, {"AWS": f"arn:aws:iam::{ACCOUNT}:role/writer"}, False),
        (SESSION, {"AWS": f"arn:aws:iam::{OTHER}:role/reader"}, False),
        (SESSION, {"AWS": f"arn:aws:iam::{ACCOUNT}:user/reader"}, False),
    ],
)
def test_resource_policy_principals_same_account(caller, principal, expected):
    req = request(principal=caller)
    resource = doc({"Effect": "Allow", "Principal": principal, "Action": "secretsmanager:*", "Resource": "*"})
    assert evaluate(req, [], [parse_policy(resource)]).allowed is expected


@pytest.mark.parametrize(
    "caller, principal, expected",
    [
        # A service (Lambda assuming a rotation role, Secrets Manager invoking a function) is named by
        # its service principal; a federated caller by its identity provider.
        ("lambda.amazonaws.com", {"Service": "lambda.amazonaws.com"}, True),
        ("lambda.amazonaws.com", {"Service": ["ec2.amazonaws.com", "lambda.amazonaws.com"]}, True),
        ("lambda.amazonaws.com", {"Service": "ec2.amazonaws.com"}, False),
        ("cognito-identity.amazonaws.com", {"Federated": "cognito-identity.amazonaws.com"}, True),
        ("cognito-identity.amazonaws.com", {"Federated": "accounts.google.com"}, False),
    ],
)
def test_resource_policy_service_and_federated_principals(caller, principal, expected):
    resource = doc({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", "Resource": "*"})
    req = request(principal=caller, action="sts:AssumeRole")
    assert evaluate(req, [], [parse_policy(resource)]).allowed is expected


@pytest.mark.parametrize(
    "principal, denied",
    [
        # ...while an explicit deny naming the account applies to everyone in it.
        ({"AWS": USER}, True),
        ({"AWS": ACCOUNT}, True),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, True),
        ({"AWS": "*"}, True),
        ("*", True),
        ({"AWS": f"arn:aws:iam::{OTHER}:root"}, False),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:user/other"}, False),
        ({"Service": "lambda.amazonaws.com"}, False),
    ],
)
def test_resource_policy_deny_principals(principal, denied):
    deny = doc({"Effect": "Deny", "Principal": principal, "Action": "secretsmanager:*", "Resource": "*"})
    d = evaluate(request(), [parse_policy(ALLOW_ALL)], [parse_policy(deny)])
    assert d.allowed is not denied
    if denied:
        assert d.reason == RP_DENY


ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/reader"


@pytest.mark.parametrize(
    "caller, not_principal, spared",
    [
        # With Deny, the caller is spared only when each of its identities is listed (AWS: "you must
        # also specify the account ARN"; for a session also the role).
        (USER, [USER, ROOT], True),
        (USER, [USER, ACCOUNT], True),
        (USER, [USER], False),
        (USER, [ROOT], False),
        (USER, [f"arn:aws:iam::{ACCOUNT}:user/other", ROOT], False),
        (SESSION, [SESSION, ROLE, ROOT], True),
        (SESSION, [SESSION, f"arn:aws:iam::{ACCOUNT}:role/path/reader", ROOT], True),
        (SESSION, [SESSION, ROOT], False),
        (SESSION, [ROLE, ROOT], False),
        (SESSION, [SESSION, ROLE], False),
        (USER, ["*"], True),
    ],
)
def test_not_principal_with_deny(caller, not_principal, spared):
    resource = doc(
        {"Effect": "Deny", "NotPrincipal": {"AWS": not_principal}, "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
    )
    d = evaluate(request(principal=caller), [], [parse_policy(resource)])
    assert d.allowed is spared
    if not spared:
        assert d.reason == RP_DENY


@pytest.mark.parametrize(
    "not_principal, expected",
    [
        # With Allow, everyone but the listed principals: listing any of the caller's identities excludes it.
        ([f"arn:aws:iam::{ACCOUNT}:user/other"], True),
        ([USER], False),
        ([ROOT], False),
        ([f"arn:aws:iam::{OTHER}:root"], True),
    ],
)
def test_not_principal_with_allow(not_principal, expected):
    resource = doc({"Effect": "Allow", "NotPrincipal": {"AWS": not_principal}, "Action": "*", "Resource": "*"})
    assert evaluate(request(), [], [parse_policy(resource)]).allowed is expected


CALLER = f"arn:aws:iam::{OTHER}:user/x"


def cross(identity: list[str], resource: list[str], caller: str = CALLER) -> Decision:
    req = request(principal=caller, account=OTHER)
    return evaluate(req, [parse_policy(d) for d in identity], [parse_policy(d) for d in resource])


def grant(principal: object, effect: str = "Allow") -> str:
    return doc({"Effect": effect, "Principal": principal, "Action": "secretsmanager:GetSecretValue", "Resource": "*"})


@pytest.mark.parametrize(
    "identity, resource, expected",
    [
        ([ALLOW_ALL], [grant({"AWS": OTHER})], Decision(True)),
        ([ALLOW_ALL], [grant({"AWS": f"arn:aws:iam::{OTHER}:root"})], Decision(True)),
        ([ALLOW_ALL], [grant({"AWS": CALLER})], Decision(True)),
        ([ALLOW_ALL], [grant("*")], Decision(True)),
        ([ALLOW_ALL], [], Decision(False, NO_RP)),
        ([], [grant({"AWS": OTHER})], Decision(False, NO_ID)),
        ([], [grant({"AWS": CALLER})], Decision(False, NO_ID)),  # naming the caller exactly is still one side
        ([], [], Decision(False, NO_RP)),
        ([ALLOW_ALL], [grant({"AWS": ACCOUNT})], Decision(False, NO_RP)),  # names the owner's account, not the caller's
        ([ALLOW_ALL], [grant({"AWS": f"arn:aws:iam::{OTHER}:user/y"})], Decision(False, NO_RP)),
        ([ALLOW_ALL, DENY_GET], [grant({"AWS": OTHER})], Decision(False, ID_DENY)),
        ([ALLOW_ALL], [grant({"AWS": OTHER}), grant({"AWS": OTHER}, "Deny")], Decision(False, RP_DENY)),
        ([ALLOW_ALL], [grant("*"), grant({"AWS": OTHER}, "Deny")], Decision(False, RP_DENY)),
    ],
    ids=lambda v: None,
)
def test_cross_account_needs_both_sides(identity, resource, expected):
    assert cross(identity, resource) == expected


def test_cross_account_role_session():
    session = f"arn:aws:sts::{OTHER}:assumed-role/app/s"
    assert cross([ALLOW_ALL], [grant({"AWS": f"arn:aws:iam::{OTHER}:role/app"})], session).allowed
    assert not cross([ALLOW_ALL], [grant({"AWS": f"arn:aws:iam::{ACCOUNT}:role/app"})], session).allowed


def test_context_values_need_not_be_strings():
    """A caller of evaluate() may pass JSON's booleans and numbers: they read as their JSON text."""
    secure = allow_if({"Bool": {"aws:SecureTransport": "true"}})
    assert allowed(secure, request({"aws:SecureTransport": True}))
    assert not allowed(secure, request({"aws:SecureTransport": False}))
    assert allowed(allow_if({"NumericEquals": {RW: "7"}}), request({RW: 7}))


def test_a_session_arn_without_a_session_name_is_not_the_role():
    """Only arn:...:sts::ACCOUNT:assumed-role/ROLE/SESSION is a session of ROLE (fail closed)."""
    resource = doc({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "*", "Resource": "*"})
    assert evaluate(request(principal=SESSION), [], [parse_policy(resource)]).allowed
    odd = request(principal=f"arn:aws:sts::{ACCOUNT}:assumed-role/reader")
    assert not evaluate(odd, [], [parse_policy(resource)]).allowed


def test_resource_policy_conditions_apply():
    rp = doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": USER},
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}},
        }
    )
    assert evaluate(request({"aws:PrincipalAccount": ACCOUNT}), [], [parse_policy(rp)]).allowed
    assert not evaluate(request(), [], [parse_policy(rp)]).allowed


def test_identity_policy_principal_is_ignored():
    """Principal means nothing in an identity policy (IAM refuses it; with kind=None it parses)."""
    p = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}, "Action": "*", "Resource": "*"})
    assert evaluate(request(), [parse_policy(p)], []).allowed


def test_resource_policy_statement_without_principal_never_applies():
    assert not evaluate(request(), [], [parse_policy(ALLOW_ALL)]).allowed
    assert evaluate(request(), [parse_policy(ALLOW_ALL)], [parse_policy(DENY_GET)]).allowed


# ------------------------------------------------------------------------------ never raises

_KEY_NAMES = [
    "aws:SourceIp",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:TagKeys",
    "aws:PrincipalArn",
    "aws:SecureTransport",
    "aws:SourceArn",
    "secretsmanager:RecoveryWindowInDays",
    "secretsmanager:Description",
    "aws:ResourceTag/team",
    "AWS:SOURCEIP",
]
_values = st.one_of(
    st.text(max_size=30),
    st.lists(st.text(max_size=12), max_size=4),
    st.none(),
    st.integers().map(str),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.sampled_from(
        [
            "10.0.0.1",
            "::1",
            "2026-01-01T00:00:00Z",
            "1e999",
            "nan",
            "-0",
            "true",
            "arn:aws:iam::1:user/x",
            "arn:::::",
            "0.0.0.0/0",
            "9999-12-31T23:59:59+14:00",
        ]
    ),
)
_EVERYTHING = allow_if(
    {
        "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
        "NotIpAddressIfExists": {"aws:SourceIp": "::/0"},
        "DateLessThan": {"aws:CurrentTime": "2030-01-01"},
        "DateGreaterThanEquals": {"aws:EpochTime": "0"},
        "ForAllValues:StringLike": {"aws:TagKeys": "a*"},
        "ForAnyValue:StringNotEquals": {"aws:TagKeys": "b"},
        "ArnLike": {"aws:PrincipalArn": "arn:*"},
        "ArnNotEqualsIfExists": {"aws:SourceArn": "arn:aws:*:*:*:*"},
        "NumericLessThanIfExists": {RW: "10"},
        "NumericNotEquals": {RW: "-1.5"},
        "Null": {"aws:ResourceTag/team": "false"},
        "BoolIfExists": {"aws:SecureTransport": "true"},
        "BinaryEquals": {"secretsmanager:Description": "QUJD"},
        "StringEqualsIgnoreCase": {"aws:ResourceTag/team": "x"},
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(_KEY_NAMES), _values))
def test_evaluation_never_raises_on_any_context(context):
    # The resource policy allows the user whatever the context and nothing denies: allowed. Without
    # it, the identity policy's conditions decide, and a refusal says that no identity policy allows.
    result = evaluate(request(context), [parse_policy(_EVERYTHING)], [parse_policy(RP_ALLOW_USER)])
    assert (result.allowed, result.reason) == (True, "")
    alone = evaluate(request(context), [parse_policy(_EVERYTHING)], [])
    assert (alone.allowed, alone.reason) in {(True, ""), (False, NO_ID)}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=20), _values), st.text(max_size=40), st.text(max_size=40), st.text(max_size=40))
def test_evaluation_never_raises_on_any_request(context, principal, action, resource):
    req = Request(principal, "1", action, resource, "2", context)
    evaluate(req, [parse_policy(_EVERYTHING)], [parse_policy(RP_ALLOW_USER), parse_policy(RP_DENY_ALL)])
