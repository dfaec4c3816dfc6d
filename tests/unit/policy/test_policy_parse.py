"""IAM policy parsing: what is accepted, what is refused (PolicyError), and BlockPublicPolicy's "public"."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.policy import Condition, Policy, PolicyError, Statement, parse_policy

ACCOUNT = "111122223333"
USER = f"arn:aws:iam::{ACCOUNT}:user/app"


def doc(*statements: dict, version: str | None = "2012-10-17") -> str:
    body: dict = {"Statement": list(statements)}
    if version is not None:
        body["Version"] = version
    return json.dumps(body)


def stmt(**extra: object) -> dict:
    return {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*", **extra}


def cond(condition: dict) -> str:
    return doc(stmt(Condition=condition))


# ------------------------------------------------------------------------------------ accepted


def test_statement_fields():
    policy = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Id": "p1",
                "Statement": {
                    "Sid": "One",
                    "Effect": "Deny",
                    "NotAction": ["secretsmanager:Delete*"],
                    "NotResource": "*",
                    "NotPrincipal": {"AWS": [USER, ACCOUNT]},
                    "Condition": {"ForAnyValue:StringLikeIfExists": {"AWS:TagKeys": ["a*", "b"]}},
                },
            }
        )
    )
    assert isinstance(policy, Policy)
    (s,) = policy.statements
    assert s == Statement(
        effect="Deny",
        actions=None,
        not_actions=("secretsmanager:Delete*",),
        resources=None,
        not_resources=("*",),
        principals=None,
        not_principals={"AWS": (USER, ACCOUNT)},
        conditions=(Condition("StringLike", "ForAnyValue", True, "aws:tagkeys", ("a*", "b")),),
        sid="One",
    )


@pytest.mark.parametrize(
    "document",
    [
        doc(stmt()),
        doc(stmt(), version="2008-10-17"),
        doc(stmt(), version=None),  # Version may be left out
        json.dumps({"Version": "2012-10-17", "Statement": stmt()}),  # a lone statement object
        doc(stmt(Sid="a"), stmt(Sid="b"), stmt()),
        doc(stmt(Action="*")),
        doc(stmt(Action=["secretsmanager:Get*", "kms:Decrypt"])),
        doc(stmt(Resource=["arn:aws:secretsmanager:*:*:secret:prod/*", "arn:aws:s3:::bucket"])),
        doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "lambda.amazonaws.com"}}),
        doc(stmt(Principal="*")),
        doc(stmt(Principal={"AWS": "*"})),
        doc(stmt(Principal={"AWS": ACCOUNT})),
        doc(stmt(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"})),
        doc(
            stmt(
                Principal={
                    "AWS": [USER, f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s", f"arn:aws:iam::{ACCOUNT}:role/p/r"]
                }
            )
        ),
        doc(stmt(Principal={"Federated": "cognito-identity.amazonaws.com"})),
        doc(stmt(Principal={"AWS": USER, "Service": ["lambda.amazonaws.com"]})),
        doc(stmt(Principal={"AWS": f"arn:aws-cn:iam::{ACCOUNT}:root"})),
        doc(stmt(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:user/division:east/app"})),  # IAM paths may hold ":"
        cond({"NumericLessThan": {"secretsmanager:RecoveryWindowInDays": 10}}),  # JSON numbers and booleans
        cond({"Bool": {"aws:SecureTransport": True}}),
        cond({"Null": {"aws:ResourceTag/team": ["true"]}}),
        cond(
            {
                "DateLessThan": {
                    "aws:CurrentTime": ["2030-01-01", "2030-01-01T00:00:00Z", "2030-01-01T00:00:00+02:00", "1893456000"]
                }
            }
        ),
        cond({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "10.1.2.3", "2001:db8::/32"]}}),
        cond({"StringEquals": {"aws:ResourceTag/Team Name": "x", "aws:RequestTag/a.b:c": "y"}}),
        cond({"StringEquals": {"aws:ResourceTag//team": "x"}}),  # a tag key may start with "/"
    ],
)
def test_accepted(document):
    parse_policy(document)


SAMPLE = {
    "String": "x",
    "Numeric": "7",
    "Date": "2030-01-01T00:00:00Z",
    "Bool": "true",
    "BinaryEquals": "QUJD",
    "IpAddress": "10.0.0.0/8",
    "NotIpAddress": "10.0.0.0/8",
    "Arn": "arn:aws:iam::*:user/*",
    "Null": "true",
}
BASE_OPERATORS = [
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Null",
]


def sample(operator: str) -> str:
    return next(v for k, v in SAMPLE.items() if operator.startswith(k))


FORMS = [
    (operator, qualifier, if_exists)
    for operator in BASE_OPERATORS
    for qualifier in ("", "ForAnyValue:", "ForAllValues:")
    for if_exists in (False, True)
    if operator != "Null" or (not qualifier and not if_exists)
]  # NullIfExists: refused (MALFORMED)


@pytest.mark.parametrize("operator, qualifier, if_exists", FORMS)
def test_every_operator_form_parses(operator, qualifier, if_exists):
    name = f"{qualifier}{operator}{'IfExists' if if_exists else ''}"
    (c,) = parse_policy(cond({name: {"aws:TagKeys": sample(operator)}})).statements[0].conditions
    assert (c.operator, c.qualifier.rstrip(":"), c.if_exists) == (operator, qualifier.rstrip(":"), if_exists)


KEYS = [
    "aws:PrincipalArn",
    "aws:PrincipalAccount",
    "aws:SourceIp",
    "aws:SecureTransport",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:RequestedRegion",
    "aws:ResourceTag/team",
    "aws:RequestTag/team",
    "aws:TagKeys",
    "aws:username",
    "aws:userid",
    "aws:SourceArn",
    "aws:SourceAccount",
    "secretsmanager:ResourceTag/team",
    "secretsmanager:SecretId",
    "secretsmanager:Name",
    "secretsmanager:Description",
    "secretsmanager:KmsKeyId",
    "secretsmanager:VersionId",
    "secretsmanager:VersionStage",
    "secretsmanager:RotationLambdaARN",
    "secretsmanager:resource/AllowRotationLambdaArn",
    "secretsmanager:BlockPublicPolicy",
    "secretsmanager:ForceDeleteWithoutRecovery",
    "secretsmanager:RecoveryWindowInDays",
    "secretsmanager:AddReplicaRegions",
    "secretsmanager:SecretPrimaryRegion",
    "lambda:FunctionArn",
    "iam:PassedToService",
    "sts:ExternalId",
]


@pytest.mark.parametrize("key", KEYS + [k.upper() for k in KEYS[:3]] + ["SecretsManager:NAME"])
def test_known_condition_keys(key):
    (c,) = parse_policy(cond({"Null": {key: "false"}})).statements[0].conditions
    assert c.key == key.lower()


# ------------------------------------------------------------------------------------ refused

MALFORMED = {
    "not json": "not json",
    "truncated": '{"Version": "2012-10-17", "Statement": [',
    "array": "[]",
    "string": '"policy"',
    "NaN": '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", '
    '"Condition": {"NumericEquals": {"secretsmanager:RecoveryWindowInDays": NaN}}}}',
    "duplicate key": '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Effect": "Deny", "Action": "*"}}',
    "duplicate operator": '{"Statement": {"Effect": "Allow", "Action": "*", "Condition": {'
    '"StringEquals": {"aws:username": "a"}, "StringEquals": {"aws:username": "b"}}}}',
    "empty statements": json.dumps({"Version": "2012-10-17", "Statement": []}),
    "no statement": json.dumps({"Version": "2012-10-17"}),
    "statement string": json.dumps({"Version": "2012-10-17", "Statement": "Allow"}),
    "statement list of strings": json.dumps({"Version": "2012-10-17", "Statement": ["Allow"]}),
    "unknown top-level": json.dumps({"Version": "2012-10-17", "Extra": 1, "Statement": stmt()}),
    "lower-case element": json.dumps({"version": "2012-10-17", "Statement": stmt()}),
    "bad version": json.dumps({"Version": "2099-01-01", "Statement": stmt()}),
    "numeric version": json.dumps({"Version": 2012, "Statement": stmt()}),
    "non-string Id": json.dumps({"Version": "2012-10-17", "Id": 1, "Statement": stmt()}),
    "unknown statement element": doc(stmt(Extra="x")),
    "lower-case statement element": doc({"effect": "Allow", "Action": "*", "Resource": "*"}),
    "missing Effect": doc({"Action": "*", "Resource": "*"}),
    "unknown Effect": doc(stmt(Effect="Maybe")),
    "lower-case Effect": doc(stmt(Effect="allow")),
    "missing Action": doc({"Effect": "Allow", "Resource": "*"}),
    "Action and NotAction": doc(stmt(NotAction="secretsmanager:Delete*")),
    "Resource and NotResource": doc(stmt(NotResource="*")),
    "Principal and NotPrincipal": doc(stmt(Principal="*", NotPrincipal={"AWS": USER})),
    "empty Action list": doc(stmt(Action=[])),
    "non-string Action": doc(stmt(Action=7)),
    "Action without service": doc(stmt(Action="GetSecretValue")),
    "Action with wildcard service": doc(stmt(Action="secrets*:GetSecretValue")),
    "Action with empty name": doc(stmt(Action="secretsmanager:")),
    "Resource not an ARN": doc(stmt(Resource="prod/db")),
    "Resource short ARN": doc(stmt(Resource="arn:aws:secretsmanager")),
    "Resource nested list": doc(stmt(Resource=[["*"]])),
    "non-string Sid": doc(stmt(Sid=1)),
    "duplicate Sid": doc(stmt(Sid="a"), stmt(Sid="a")),
    "unknown principal type": doc(stmt(Principal={"Robots": "x"})),
    "CanonicalUser principal": doc(stmt(Principal={"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eac"})),
    "empty Principal object": doc(stmt(Principal={})),
    "Principal string not *": doc(stmt(Principal=USER)),
    "partial wildcard principal": doc(stmt(Principal={"AWS": "arn:aws:iam::*:root"})),
    "wildcard role principal": doc(stmt(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/*"})),
    "question-mark principal": doc(stmt(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:user/ap?"})),
    "wildcard service": doc(stmt(Principal={"Service": "*"})),
    "principal not an ARN": doc(stmt(Principal={"AWS": "bob"})),
    "principal short account": doc(stmt(Principal={"AWS": "12345"})),
    "principal from another service": doc(stmt(Principal={"AWS": f"arn:aws:s3::{ACCOUNT}:bucket"})),
    "principal ARN naming nothing": doc(stmt(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:"})),
    "principal not an ARN but shaped like one": doc(stmt(Principal={"AWS": f"xrn:aws:iam::{ACCOUNT}:user/app"})),
    "empty principal list": doc(stmt(Principal={"AWS": []})),
    "Condition not an object": doc(stmt(Condition=["StringEquals"])),
    "operator not an object": cond({"StringEquals": "aws:username"}),
    "operator empty": cond({"StringEquals": {}}),
    "unknown operator": cond({"StringEqualsish": {"aws:SourceIp": "1"}}),
    "lower-case operator": cond({"stringequals": {"aws:username": "a"}}),
    "unknown qualifier": cond({"Sometimes:StringEquals": {"aws:SourceIp": "1"}}),
    "NullIfExists": cond({"NullIfExists": {"aws:SourceIp": "true"}}),
    "IfExists twice": cond({"StringEqualsIfExistsIfExists": {"aws:username": "a"}}),
    "unknown key": cond({"StringEquals": {"aws:MadeUpKey": "1"}}),
    "unknown service key": cond({"StringEquals": {"s3:prefix": "1"}}),
    "unsupported global key": cond({"StringEquals": {"aws:PrincipalOrgID": "o-1"}}),
    "empty tag key": cond({"StringEquals": {"aws:ResourceTag/": "1"}}),
    "empty value list": cond({"StringEquals": {"aws:username": []}}),
    "null value": cond({"StringEquals": {"aws:username": None}}),
    "nested value": cond({"StringEquals": {"aws:username": [["a"]]}}),
    "object value": cond({"StringEquals": {"aws:username": {"a": 1}}}),
    "bad number": cond({"NumericEquals": {"secretsmanager:RecoveryWindowInDays": "x"}}),
    "infinite number": cond({"NumericLessThan": {"secretsmanager:RecoveryWindowInDays": "1e999"}}),
    "python-only number": cond({"NumericEquals": {"secretsmanager:RecoveryWindowInDays": "1_0"}}),
    "bad date": cond({"DateLessThan": {"aws:CurrentTime": "next tuesday"}}),
    "one-letter date": cond({"DateLessThan": {"aws:CurrentTime": "x"}}),
    "empty date": cond({"DateLessThan": {"aws:CurrentTime": ""}}),
    "impossible date": cond({"DateLessThan": {"aws:CurrentTime": "2026-13-45T00:00:00Z"}}),
    "bad bool": cond({"Bool": {"aws:SecureTransport": "yes"}}),
    "bad null": cond({"Null": {"aws:SecureTransport": "maybe"}}),
    "bad cidr": cond({"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}),
    "bad address": cond({"NotIpAddress": {"aws:SourceIp": "ten.0.0.1"}}),
    "bad base64": cond({"BinaryEquals": {"secretsmanager:Description": "not base64!"}}),
    "base64 with a stray character": cond({"BinaryEquals": {"secretsmanager:Description": "QUJD!"}}),
    "absurd nesting": "[" * 100_000 + "]" * 100_000,
    "policy variable in Resource": doc(stmt(Resource="arn:aws:secretsmanager:*:*:secret:${aws:username}/*")),
    "policy variable in condition": cond({"StringEquals": {"aws:username": "${aws:username}"}}),
    "escaped policy variable": '{"Statement": {"Effect": "Allow", "Action": "*", "Resource": '
    '"arn:aws:s3:::b/\\u0024{aws:username}"}}',
}


@pytest.mark.parametrize("document", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_documents_are_refused(document):
    with pytest.raises(PolicyError):
        parse_policy(document)


def test_refusals_say_what_is_wrong():
    """The MalformedPolicyDocument message names the problem, not only "invalid JSON"."""
    with pytest.raises(PolicyError) as duplicate:
        parse_policy(MALFORMED["duplicate key"])
    assert str(duplicate.value) == "Duplicate key Effect in the policy."
    with pytest.raises(PolicyError) as nested:
        parse_policy(MALFORMED["absurd nesting"])
    assert str(nested.value) == "This policy contains invalid JSON."
    with pytest.raises(PolicyError) as top:
        parse_policy(json.dumps({"Version": "2012-10-17", "Zed": 1, "Extra": 2, "Statement": stmt()}))
    assert str(top.value) == "Unknown element Extra in the policy."  # the first of them, alphabetically
    with pytest.raises(PolicyError) as element:
        parse_policy(doc(stmt(Zed="x", Extra="y")))
    assert str(element.value) == "Unknown element Extra in a statement."


TRUST = doc({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"})


@pytest.mark.parametrize(
    "document, kind, ok",
    [
        (doc(stmt()), "identity", True),
        (doc(stmt(Principal="*")), "identity", False),
        (doc(stmt(NotPrincipal={"AWS": USER})), "identity", False),
        (doc({"Effect": "Allow", "Action": "*"}), "identity", False),
        (doc({"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:s3:::b"}), "identity", True),
        (doc(stmt(Principal={"AWS": USER})), "resource", True),
        (doc(stmt(NotPrincipal={"AWS": USER})), "resource", True),
        (doc(stmt()), "resource", False),
        (TRUST, "resource", True),
        (TRUST, None, True),
        (TRUST, "identity", False),
    ],
)
def test_policy_kinds(document, kind, ok):
    if ok:
        parse_policy(document, kind=kind)
    else:
        with pytest.raises(PolicyError):
            parse_policy(document, kind=kind)


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError):
        parse_policy(doc(stmt()), kind="session")
    with pytest.raises(TypeError):  # kind is keyword-only: parse_policy(text, "identity") is a mistake
        parse_policy(doc(stmt()), "identity")


def test_parse_is_cached_and_keeps_the_text():
    text = doc(stmt())
    assert parse_policy(text) is parse_policy(text)
    assert parse_policy(text).document == text


# ------------------------------------------------------------------------------------ public


def public(
    principal: object = "*", condition: dict | None = None, effect: str = "Allow", element: str = "Principal"
) -> bool:
    s = {"Effect": effect, element: principal, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
    if condition:
        s["Condition"] = condition
    return parse_policy(doc(s)).is_public()


@pytest.mark.parametrize(
    "principal, condition, expected",
    [
        ("*", None, True),
        ({"AWS": "*"}, None, True),
        ({"AWS": [USER, "*"]}, None, True),
        ({"AWS": USER}, None, False),
        ({"AWS": ACCOUNT}, None, False),
        ({"Service": "lambda.amazonaws.com"}, None, False),
        ("*", {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}, False),
        ("*", {"StringEquals": {"aws:SourceAccount": ACCOUNT}}, False),
        ("*", {"ArnEquals": {"aws:SourceArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f"}}, False),
        ("*", {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/*"}}, False),  # account fixed
        ("*", {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/admin"}}, True),  # any account
        ("*", {"StringLike": {"aws:PrincipalArn": "*"}}, True),
        ("*", {"StringLike": {"aws:PrincipalAccount": "1111*"}}, True),
        ("*", {"StringLike": {"aws:SourceAccount": ACCOUNT}}, False),  # StringLike without a wildcard pins
        ("*", {"StringEquals": {"aws:PrincipalAccount": [ACCOUNT, "444455556666"]}}, False),
        ("*", {"StringEquals": {"aws:PrincipalAccount": [ACCOUNT, "*"]}}, True),  # "*" is literal here, but be safe
        ("*", {"StringEquals": {"aws:userid": "AIDAEXAMPLE"}}, False),
        ("*", {"StringLike": {"aws:userid": "AROAEXAMPLE:*"}}, True),
        ("*", {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, False),
        ("*", {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "0.0.0.0/0"]}}, True),
        ("*", {"IpAddress": {"aws:SourceIp": "2001:db8::/16"}}, True),
        ("*", {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, False),  # the widest range that pins (IPv4)
        ("*", {"IpAddress": {"aws:SourceIp": "10.0.0.0/7"}}, True),
        ("*", {"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}, False),  # the widest range that pins (IPv6)
        ("*", {"IpAddress": {"aws:SourceIp": "2001:db8::/31"}}, True),
        ("*", {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, True),
        ("*", {"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT}}, True),  # negated: everyone else
        ("*", {"StringEqualsIfExists": {"aws:PrincipalAccount": ACCOUNT}}, True),  # holds when absent
        ("*", {"ForAllValues:StringEquals": {"aws:PrincipalAccount": ACCOUNT}}, True),
        ("*", {"ForAnyValue:StringEquals": {"aws:PrincipalAccount": ACCOUNT}}, False),
        ("*", {"Null": {"aws:PrincipalAccount": "false"}}, True),
        ("*", {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}, True),
        ("*", {"Bool": {"aws:SecureTransport": "true"}}, True),
        ("*", {"Bool": {"aws:SecureTransport": "true"}, "StringEquals": {"aws:PrincipalAccount": ACCOUNT}}, False),
    ],
)
def test_is_public(principal, condition, expected):
    assert public(principal, condition) is expected


def test_is_public_statement_kinds():
    assert not public("*", effect="Deny")
    assert public({"AWS": USER}, element="NotPrincipal")  # Allow to everyone but one
    assert not public({"AWS": USER}, effect="Deny", element="NotPrincipal")
    assert not parse_policy(doc(stmt())).is_public()  # no principal: an identity policy
    two = doc(
        {"Effect": "Allow", "Principal": {"AWS": USER}, "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:DescribeSecret", "Resource": "*"},
    )
    assert parse_policy(two).is_public()
    deny_first = doc(
        {"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:DeleteSecret", "Resource": "*"},
        {"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
    )
    assert parse_policy(deny_first).is_public()  # a Deny statement is skipped, not the end of the search


# ------------------------------------------------------------------------------------ robust

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.sampled_from(["*", "Allow", "Deny", "2012-10-17", "secretsmanager:*", "arn:aws:s3:::b"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "Version",
                    "Statement",
                    "Effect",
                    "Action",
                    "NotAction",
                    "Resource",
                    "Principal",
                    "AWS",
                    "Condition",
                    "StringEquals",
                    "aws:username",
                    "Sid",
                    "NotPrincipal",
                    "Null",
                    "ForAnyValue:IpAddress",
                    "aws:SourceIp",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_parse_raises_only_policy_error_on_json(value):
    try:
        parse_policy(json.dumps(value))
    except PolicyError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_parse_raises_only_policy_error_on_text(text):
    try:
        parse_policy(text)
    except PolicyError:
        pass
