"""Every spelling Lambda accepts for one function resolves to one ARN (domain/functions.py)."""

from __future__ import annotations

import pytest

from strongroom.domain.functions import authorization_requests, resolve_function
from strongroom.errors import AWSError

ACCOUNT, REGION = "123456789012", "us-east-1"
ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:my-fn"


@pytest.mark.parametrize(
    "spelling, qualifier",
    [
        ("my-fn", None),
        ("my-fn:$LATEST", "$LATEST"),
        ("my-fn:prod", "prod"),
        (f"{ACCOUNT}:function:my-fn", None),
        (f"{ACCOUNT}:function:my-fn:7", "7"),
        (ARN, None),
        (f"{ARN}:$LATEST", "$LATEST"),
        ("function:my-fn", None),
        (f"{REGION}:{ACCOUNT}:function:my-fn", None),
        (f"arn:aws:lambda:{ACCOUNT}:function:my-fn", None),
    ],
)
def test_each_spelling_names_the_same_function(spelling: str, qualifier: str | None) -> None:
    ref = resolve_function(spelling, ACCOUNT, REGION)
    assert (ref.arn, ref.qualifier) == (ARN, qualifier)
    # Decided on the function's ARN, and on the qualified one too when there is a qualifier.
    assert ref.resources() == ((ARN,) if qualifier is None else (ARN, f"{ARN}:{qualifier}"))
    checks = authorization_requests(ACCOUNT, REGION, "aws", "UpdateFunctionCode", {"FunctionName": spelling})
    assert checks[0] == ("lambda:UpdateFunctionCode", ARN, ACCOUNT, {})


def test_the_qualifier_member_and_the_name_agree() -> None:
    assert resolve_function("my-fn", ACCOUNT, REGION, "$LATEST").qualified_arn == f"{ARN}:$LATEST"
    assert resolve_function("my-fn:$LATEST", ACCOUNT, REGION, "$LATEST").qualifier == "$LATEST"
    with pytest.raises(AWSError) as exc:
        resolve_function("my-fn:$LATEST", ACCOUNT, REGION, "prod")
    assert (exc.value.code, exc.value.message) == (
        "InvalidParameterValueException",
        "The derived qualifier from the function name does not match the specified qualifier.",
    )


@pytest.mark.parametrize(
    "spelling, code",
    [
        ("x;y", "ValidationException"),
        ("a" * 65, "ValidationException"),
        ("my fn", "ValidationException"),
        (f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:my-fn", "ResourceNotFoundException"),
    ],
)
def test_spellings_lambda_refuses(spelling: str, code: str) -> None:
    with pytest.raises(AWSError) as exc:
        resolve_function(spelling, ACCOUNT, REGION)
    assert exc.value.code == code


def test_another_accounts_function_is_that_accounts() -> None:
    ref = resolve_function("210987654321:function:my-fn", ACCOUNT, REGION)
    assert ref.arn == f"arn:aws:lambda:{REGION}:210987654321:function:my-fn"


def test_passing_a_role_is_a_decision_of_its_own() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/service-role/exec"
    checks = authorization_requests(ACCOUNT, REGION, "aws", "CreateFunction", {"FunctionName": "f", "Role": role})
    assert checks[-1] == ("iam:PassRole", role, ACCOUNT, {"iam:PassedToService": "lambda.amazonaws.com"})
    assert authorization_requests(ACCOUNT, REGION, "aws", "ListFunctions", {}) == [
        ("lambda:ListFunctions", "*", ACCOUNT, {})
    ]
