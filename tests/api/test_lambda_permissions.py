"""Lambda's permissions as on AWS (issue 11 §2): execution roles and iam:PassRole, every spelling
of a function decided on its ARN, the model's constraints, reserved names, and RotateSecret's
lambda:InvokeFunction and function-policy checks. boto3 against a real server."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from strongroom.testing.functions import zipped

ACCOUNT = "123456789012"
CANNOT_ASSUME = "The role defined for the function cannot be assumed by Lambda."
CANNOT_INVOKE = (
    "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function "
    "policy grants access to the principal secretsmanager.amazonaws.com."
)
ECHO = "def handler(event, context):\n    return event\n"
LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def execution_role(iam, name: str, policy: str | None = None) -> str:  # type: ignore[no-untyped-def]
    """Role ``name`` (created when missing) that Lambda may assume."""
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]  # type: ignore[no-any-return]
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
        if policy is not None:
            iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=policy)
        return arn  # type: ignore[no-any-return]


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def client_for(server, service: str, key: dict):  # type: ignore[no-untyped-def]
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1}),
    )


def error_of(call, *args, **kwargs) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as exc:
        call(*args, **kwargs)
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def admin(sqlite_server):  # type: ignore[no-untyped-def]
    return sqlite_server.client("lambda"), sqlite_server.client("iam"), sqlite_server.client()


@pytest.fixture
def user(sqlite_server):  # type: ignore[no-untyped-def]
    """A fresh IAM user (no policies yet) and a function of root's it may be given rights on."""
    iam = sqlite_server.client("iam")
    name = unique("dev")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return iam, name, key


def create(lam, iam, name: str, source: str = ECHO, role: str = "lambda-exec") -> str:  # type: ignore[no-untyped-def]
    return lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=execution_role(iam, role, None),
        Handler="lambda_function.handler",
        Code={"ZipFile": zipped(source)},
    )["FunctionArn"]


# ----------------------------------------------------------------------- roles and PassRole


def test_a_function_needs_an_existing_role_lambda_may_assume(admin):
    lam, iam, _ = admin
    name = unique("fn")
    ec2_only = unique("ec2-role")
    iam.create_role(RoleName=ec2_only, AssumeRolePolicyDocument=LAMBDA_TRUST.replace("lambda.", "ec2."))
    for role in (
        f"arn:aws:iam::{ACCOUNT}:role/no-such-role",
        f"arn:aws:iam::{ACCOUNT}:role/{ec2_only}",  # trusts another service
        f"arn:aws:iam::{ACCOUNT}:role/strongroom-builtin-rotation",  # was: every secret
        "arn:aws:iam::210987654321:role/lambda-exec",
    ):  # another account's
        assert error_of(
            lam.create_function,
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler="lambda_function.handler",
            Code={"ZipFile": zipped(ECHO)},
        ) == ("InvalidParameterValueException", CANNOT_ASSUME)
    with pytest.raises(ClientError):
        lam.get_function(FunctionName=name)  # nothing was created
    create(lam, iam, name)
    for role in (
        f"arn:aws:iam::{ACCOUNT}:role/no-such-role",
        f"arn:aws:iam::{ACCOUNT}:role/{ec2_only}",
        f"arn:aws:iam::{ACCOUNT}:role/strongroom-builtin-rotation",
    ):
        assert error_of(lam.update_function_configuration, FunctionName=name, Role=role) == (
            "InvalidParameterValueException",
            CANNOT_ASSUME,
        )
    assert lam.get_function_configuration(FunctionName=name)["Role"].endswith(":role/lambda-exec")


def test_passing_a_role_needs_iam_pass_role_for_lambda(sqlite_server, admin, user):
    _lam, root_iam, _ = admin
    iam, user_name, key = user
    role = execution_role(root_iam, "lambda-exec", None)
    mine = client_for(sqlite_server, "lambda", key)
    name = unique("fn")

    def create_mine() -> dict:
        return mine.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler="lambda_function.handler",
            Code={"ZipFile": zipped(ECHO)},
        )

    iam.put_user_policy(
        UserName=user_name,
        PolicyName="lambda",
        PolicyDocument=policy({"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}),
    )
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/{user_name}"
    assert error_of(create_mine) == (
        "AccessDeniedException",
        f"User: {user_arn} is not authorized to perform: iam:PassRole on resource: "
        f"{role} because no identity-based policy allows the iam:PassRole action",
    )
    # PassRole for another service does not let a role be handed to Lambda.
    iam.put_user_policy(
        UserName=user_name,
        PolicyName="pass",
        PolicyDocument=policy(
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": role,
                "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            }
        ),
    )
    assert error_of(create_mine)[0] == "AccessDeniedException"
    iam.put_user_policy(
        UserName=user_name,
        PolicyName="pass",
        PolicyDocument=policy(
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": role,
                "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
            }
        ),
    )
    assert create_mine()["Role"] == role
    other = execution_role(root_iam, unique("other-exec"), None)
    assert error_of(mine.update_function_configuration, FunctionName=name, Role=other) == (
        "AccessDeniedException",
        f"User: {user_arn} is not authorized to perform: iam:PassRole on resource: "
        f"{other} because no identity-based policy allows the iam:PassRole action",
    )
    assert mine.update_function_configuration(FunctionName=name, Timeout=9)["Timeout"] == 9  # no role: no PassRole


def test_an_uploaded_function_acts_as_its_own_role_only(admin):
    """Was: a function without a usable role ran with the built-in rotator's credentials."""
    lam, iam, sm = admin
    secret = sm.create_secret(Name=unique("s"), SecretString="root only")["ARN"]
    source = (
        "import os, boto3\ndef handler(event, context):\n"
        "    sm = boto3.client('secretsmanager', endpoint_url=os.environ['SECRETS_MANAGER_ENDPOINT'])\n"
        "    try:\n        return sm.get_secret_value(SecretId=event['id'])['SecretString']\n"
        "    except Exception as exc:\n        return str(exc)\n"
    )
    name = unique("reader")
    create(lam, iam, name, source, role="no-rights")
    out = json.loads(lam.invoke(FunctionName=name, Payload=json.dumps({"id": secret}))["Payload"].read())
    assert f"assumed-role/no-rights/{name} is not authorized to perform: secretsmanager:GetSecretValue" in out


# ------------------------------------------------------------- every spelling, one decision


def spellings(name: str) -> list[str]:
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
    return [
        name,
        f"{name}:$LATEST",
        f"{ACCOUNT}:function:{name}",
        f"{ACCOUNT}:function:{name}:$LATEST",
        arn,
        f"{arn}:$LATEST",
        f"function:{name}",
        f"us-east-1:{ACCOUNT}:function:{name}",
    ]


def test_every_spelling_resolves_to_the_function_arn() -> None:
    from strongroom.domain.functions import resolve_function

    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:F"
    for spelling in spellings("F"):
        ref = resolve_function(spelling, ACCOUNT, "us-east-1")
        assert ref.arn == arn, spelling
        assert ref.resources()[0] == arn and set(ref.resources()) <= {arn, f"{arn}:$LATEST"}
    assert resolve_function("F", ACCOUNT, "us-east-1", "$LATEST").resources() == (arn, f"{arn}:$LATEST")


def test_a_deny_on_the_function_arn_holds_for_every_spelling(sqlite_server, admin, user):
    """Was: "123456789012:function:F", "F:$LATEST" and "<arn>:$LATEST" were authorized as other
    resources, and an attacker denied F replaced its code through them."""
    lam, root_iam, _ = admin
    iam, user_name, key = user
    name = unique("guarded")
    arn = create(lam, root_iam, name)
    iam.put_user_policy(
        UserName=user_name,
        PolicyName="p",
        PolicyDocument=policy(
            {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "lambda:*", "Resource": arn},
        ),
    )
    mine = client_for(sqlite_server, "lambda", key)
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/{user_name}"
    for spelling in spellings(name):
        for call, action, kwargs in (
            (mine.update_function_code, "UpdateFunctionCode", {"ZipFile": zipped("x = 1\n")}),
            (mine.invoke, "InvokeFunction", {}),
            (mine.get_function, "GetFunction", {}),
            (
                mine.add_permission,
                "AddPermission",
                {"StatementId": "s", "Action": "lambda:InvokeFunction", "Principal": "*"},
            ),
            (mine.delete_function, "DeleteFunction", {}),
        ):
            assert error_of(call, FunctionName=spelling, **kwargs) == (
                "AccessDeniedException",
                f"User: {user_arn} is not authorized to perform: lambda:{action} on "
                f"resource: {arn} with an explicit deny in an identity-based policy",
            ), spelling
    assert (
        lam.get_function(FunctionName=name)["Configuration"]["CodeSha256"]
        == lam.get_function(FunctionName=arn)["Configuration"]["CodeSha256"]
    )
    assert json.loads(lam.invoke(FunctionName=name, Payload=b'{"k": 1}')["Payload"].read()) == {"k": 1}


def test_a_qualified_call_is_decided_on_both_arns(sqlite_server, admin, user):
    lam, root_iam, _ = admin
    iam, user_name, key = user
    name = unique("q")
    arn = create(lam, root_iam, name)
    mine = client_for(sqlite_server, "lambda", key)
    # Allowed on the function ARN only: the unqualified spellings work, qualified ones need F:$LATEST too.
    iam.put_user_policy(
        UserName=user_name,
        PolicyName="p",
        PolicyDocument=policy({"Effect": "Allow", "Action": "lambda:GetFunction", "Resource": arn}),
    )
    for spelling in spellings(name):
        if "$LATEST" in spelling:
            assert error_of(mine.get_function, FunctionName=spelling)[1].endswith(
                f"on resource: {arn}:$LATEST because no identity-based policy allows the lambda:GetFunction action"
            )
        else:
            assert mine.get_function(FunctionName=spelling)["Configuration"]["FunctionArn"] == arn
    assert error_of(mine.get_function, FunctionName=name, Qualifier="$LATEST")[0] == "AccessDeniedException"
    iam.put_user_policy(
        UserName=user_name,
        PolicyName="p",
        PolicyDocument=policy(
            {"Effect": "Allow", "Action": "lambda:GetFunction", "Resource": f"{arn}*"},
            {"Effect": "Deny", "Action": "lambda:GetFunction", "Resource": f"{arn}:$LATEST"},
        ),
    )
    assert mine.get_function(FunctionName=name)["Configuration"]["FunctionArn"] == arn
    assert error_of(mine.get_function, FunctionName=f"{name}:$LATEST")[1].endswith(
        f"on resource: {arn}:$LATEST with an explicit deny in an identity-based policy"
    )


def test_names_lambda_does_not_accept(admin):
    lam, iam, _ = admin
    name = unique("fn")
    create(lam, iam, name)
    assert error_of(lam.get_function, FunctionName=f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:{name}") == (
        "ResourceNotFoundException",
        "Functions from 'us-west-2' are not reachable in this region ('us-east-1')",
    )
    assert error_of(lam.get_function, FunctionName=f"{name}:1")[0] == "ResourceNotFoundException"
    assert error_of(lam.get_function, FunctionName=f"{name}:$LATEST", Qualifier="v2") == (
        "InvalidParameterValueException",
        "The derived qualifier from the function name does not match the specified qualifier.",
    )
    assert error_of(lam.get_function, FunctionName=f"210987654321:function:{name}") == (
        "AccessDeniedException",
        f"User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: lambda:GetFunction "
        f"on resource: arn:aws:lambda:us-east-1:210987654321:function:{name} because no "
        "resource-based policy allows the lambda:GetFunction action",
    )
    assert error_of(lam.delete_function, FunctionName=name, Qualifier="$LATEST") == (
        "InvalidParameterValueException",
        "$LATEST version cannot be deleted without deleting the function.",
    )
    code, message = error_of(lam.get_function, FunctionName="x;y")
    assert code == "ValidationException"
    assert message.startswith(
        "1 validation error detected: Value 'x;y' at 'functionName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?"
    )
    assert error_of(lam.get_function, FunctionName="a" * 65) == (
        "ValidationException",
        f"1 validation error detected: Value '{'a' * 65}' at 'functionName' failed to "
        "satisfy constraint: Member must have length less than or equal to 64",
    )


def test_the_model_constraints_apply_to_the_whole_value(sqlite_server, admin):
    """Was: patterns were searched for, so any value holding one allowed character passed."""
    _, iam, _ = admin
    lam = boto3.client(
        "lambda",
        endpoint_url=sqlite_server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=sqlite_server.access_key_id,
        aws_secret_access_key=sqlite_server.secret_access_key,
        config=Config(retries={"max_attempts": 1}, parameter_validation=False),
    )
    role = execution_role(iam, "lambda-exec", None)
    base = {
        "FunctionName": unique("fn"),
        "Runtime": "python3.11",
        "Role": role,
        "Handler": "lambda_function.handler",
        "Code": {"ZipFile": zipped(ECHO)},
    }
    cases = {
        "FunctionName": ("a b", "functionName"),
        "Handler": ("lambda function.handler", "handler"),
        "Role": (f"x {role}", "role"),
    }
    for member, (value, label) in cases.items():
        code, message = error_of(lam.create_function, **{**base, member: value})
        assert code == "ValidationException", member
        assert message.startswith(
            f"1 validation error detected: Value '{value}' at '{label}' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
        ), message
    assert error_of(lam.create_function, **{**base, "MemorySize": 64}) == (
        "ValidationException",
        "1 validation error detected: Value '64' at 'memorySize' failed to satisfy "
        "constraint: Member must have value greater than or equal to 128",
    )
    code, message = error_of(lam.create_function, **{**base, "Environment": {"Variables": {"A-B": "v"}}})
    assert code == "ValidationException" and "at 'environment.variables.key'" in message


def test_strongroom_names_are_reserved(admin):
    lam, iam, _ = admin
    role = execution_role(iam, "lambda-exec", None)

    def create_named(name: str) -> tuple[str, str]:
        return error_of(
            lam.create_function,
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler="lambda_function.handler",
            Code={"ZipFile": zipped(ECHO)},
        )

    assert create_named("strongroom-postgresql-single-user") == (
        "ResourceConflictException",
        "Function already exist: strongroom-postgresql-single-user",
    )
    assert create_named(f"{ACCOUNT}:function:strongroom-mysql-multi-user")[0] == "ResourceConflictException"
    assert create_named("strongroom-mine") == (
        "InvalidParameterValueException",
        "Function names beginning with strongroom- are reserved for strongroom's built-in functions.",
    )
    builtin = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:strongroom-mysql-single-user"
    for call, kwargs in (
        (lam.update_function_code, {"ZipFile": zipped(ECHO)}),
        (lam.update_function_configuration, {"Timeout": 5}),
        (lam.delete_function, {}),
        (lam.get_policy, {}),
        (lam.add_permission, {"StatementId": "s", "Action": "lambda:InvokeFunction", "Principal": "*"}),
    ):
        for spelling in ("strongroom-mysql-single-user", builtin, f"{builtin}:$LATEST"):
            assert error_of(call, FunctionName=spelling, **kwargs)[0] == "InvalidParameterValueException"


def test_only_root_invokes_a_builtin_directly(sqlite_server, user):
    """The built-ins act with the rotation role's rights: another caller may not choose their event,
    even when its policies allow lambda:InvokeFunction on them."""
    iam, user_name, key = user
    iam.put_user_policy(
        UserName=user_name,
        PolicyName="p",
        PolicyDocument=policy({"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}),
    )
    mine = client_for(sqlite_server, "lambda", key)
    assert error_of(mine.invoke, FunctionName="strongroom-mysql-single-user", Payload=b"{}") == (
        "InvalidParameterValueException",
        "strongroom-mysql-single-user is a strongroom built-in function; only Secrets Manager invokes it.",
    )
    out = sqlite_server.client("lambda").invoke(FunctionName="strongroom-mysql-single-user", Payload=b"{}")
    assert out["FunctionError"] == "Unhandled"  # root ran it; the event was not a rotation step
    # Read the answer whole: an unread payload keeps its connection open until the garbage
    # collector finds it, and its ResourceWarning then fails whichever test runs next.
    assert "errorMessage" in json.loads(out["Payload"].read())


# ----------------------------------------------------------------------------- RotateSecret


def test_rotate_secret_needs_the_callers_invoke_right(sqlite_server, admin, user):
    """Was: RotateSecret ran any function its caller names, even one it may not invoke."""
    lam, root_iam, sm = admin
    iam, user_name, key = user
    name = unique("rotator")
    arn = create(lam, root_iam, name)
    lam.add_permission(
        FunctionName=name, StatementId="sm", Action="lambda:InvokeFunction", Principal="secretsmanager.amazonaws.com"
    )
    secret = sm.create_secret(Name=unique("s"), SecretString="v")["ARN"]
    iam.put_user_policy(
        UserName=user_name,
        PolicyName="p",
        PolicyDocument=policy({"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}),
    )
    mine = client_for(sqlite_server, "secretsmanager", key)
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/{user_name}"
    for spelling in (arn, name, f"{ACCOUNT}:function:{name}", f"{arn}:$LATEST"):
        assert error_of(
            mine.rotate_secret, SecretId=secret, RotationLambdaARN=spelling, ClientRequestToken=str(uuid.uuid4())
        ) == (
            "AccessDeniedException",
            f"User: {user_arn} is not authorized to perform: lambda:InvokeFunction on "
            f"resource: {arn} because no identity-based policy allows the "
            "lambda:InvokeFunction action",
        )
    builtin = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:strongroom-postgresql-single-user"
    assert (
        error_of(mine.rotate_secret, SecretId=secret, RotationLambdaARN=builtin, ClientRequestToken=str(uuid.uuid4()))[
            0
        ]
        == "AccessDeniedException"
    )
    assert sm.describe_secret(SecretId=secret).get("RotationEnabled") is not True
    iam.put_user_policy(
        UserName=user_name,
        PolicyName="invoke",
        PolicyDocument=policy({"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arn}),
    )
    token = str(uuid.uuid4())
    assert mine.rotate_secret(
        SecretId=secret,
        RotationLambdaARN=arn,
        ClientRequestToken=token,
        RotateImmediately=False,
        RotationRules={"AutomaticallyAfterDays": 30},
    )["VersionId"]
    # The stored function is checked too when the call names none.
    iam.delete_user_policy(UserName=user_name, PolicyName="invoke")
    assert (
        error_of(mine.rotate_secret, SecretId=secret, ClientRequestToken=str(uuid.uuid4()))[0]
        == "AccessDeniedException"
    )


def test_rotate_secret_obeys_the_function_policy(admin):
    """Was: any statement naming secretsmanager.amazonaws.com let every secret use the function;
    its SourceArn and SourceAccount were ignored."""
    lam, iam, sm = admin
    name = unique("rotator")
    arn = create(lam, iam, name)
    secret = sm.create_secret(Name=unique("s"), SecretString="v")["ARN"]
    other = sm.create_secret(Name=unique("s"), SecretString="v")["ARN"]

    def rotate(secret_arn: str) -> dict:
        return sm.rotate_secret(
            SecretId=secret_arn,
            RotationLambdaARN=arn,
            ClientRequestToken=str(uuid.uuid4()),
            RotateImmediately=False,
            RotationRules={"AutomaticallyAfterDays": 30},
        )

    assert error_of(rotate, secret) == ("AccessDeniedException", CANNOT_INVOKE)  # no policy at all
    lam.add_permission(
        FunctionName=name,
        StatementId="other-account",
        Action="lambda:InvokeFunction",
        Principal="secretsmanager.amazonaws.com",
        SourceAccount="210987654321",
    )
    assert error_of(rotate, secret) == ("AccessDeniedException", CANNOT_INVOKE)
    lam.add_permission(
        FunctionName=name,
        StatementId="one-secret",
        Action="lambda:InvokeFunction",
        Principal="secretsmanager.amazonaws.com",
        SourceArn=other,
        SourceAccount=ACCOUNT,
    )
    assert error_of(rotate, secret) == ("AccessDeniedException", CANNOT_INVOKE)
    assert rotate(other)["ARN"] == other
    lam.add_permission(
        FunctionName=name, StatementId="s3", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com"
    )
    assert error_of(rotate, secret) == ("AccessDeniedException", CANNOT_INVOKE)
    lam.add_permission(
        FunctionName=name,
        StatementId="this-secret",
        Action="lambda:InvokeFunction",
        Principal="secretsmanager.amazonaws.com",
        SourceArn=secret,
    )
    assert rotate(secret)["ARN"] == secret
