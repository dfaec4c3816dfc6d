"""The authorizer's decisions, in process on a real SQLite database: who is refused, and in which
words. The same decisions are exercised over the wire in tests/api/test_access.py; these are the
cases a mutation of auth/authorizer.py showed no test would notice (issue 17)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from strongroom.auth.authorizer import Authorizer
from strongroom.auth.principal import BUILTIN_ROTATOR, ROOT
from strongroom.context import RequestContext
from strongroom.crypto import Keyring, MasterKey
from strongroom.errors import AWSError
from strongroom.services.secretsmanager import SecretsManager
from strongroom.services.secretsmanager.values import ValueCipher
from strongroom.store import Database, identities, open_database
from strongroom.store import secrets as secret_rows

A, B = "111122223333", "444455556666"
ROOT_CTX = RequestContext(
    account_id=A, region="us-east-1", principal_arn=f"arn:aws:iam::{A}:root", request_id="r", privilege=ROOT
)
APP = f"arn:aws:iam::{A}:user/app"
USER_CTX = RequestContext(account_id=A, region="us-east-1", principal_arn=APP, request_id="r", principal_id="AIDAAPP")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(str(tmp_path / "authz.db"))
    yield database
    database.close()


@pytest.fixture
def secret_arn(db: Database) -> str:
    service = SecretsManager(db, ValueCipher(Keyring(MasterKey.generate())), b"k" * 32)
    out = asyncio.run(
        service.create_secret(ROOT_CTX, {"Name": "app/db", "SecretString": "s3cret", "ClientRequestToken": "t" * 32})
    )
    return str(out["ARN"])


def _policy(effect: str, principal: str, action: str = "secretsmanager:GetSecretValue") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": effect, "Principal": {"AWS": principal}, "Action": action, "Resource": "*"}],
        }
    )


def _put_policy(db: Database, arn: str, document: str) -> None:
    def fn(tx):  # type: ignore[no-untyped-def]
        secret = secret_rows.secret_by_arn(tx, arn)
        secret_rows.put_policy(tx, secret.id, "ResourcePolicy", document, 0.0)

    db.write_sync(fn)


def _check(db: Database, ctx: RequestContext, arn: str, operation: str = "GetSecretValue") -> None:
    ctx = replace(ctx, operation=operation, params={"SecretId": arn})
    authz = Authorizer(db)
    db.read_sync(lambda tx: authz.check_secret(tx, ctx, secret_rows.secret_by_arn(tx, arn), arn))


def _denied(db: Database, ctx: RequestContext, arn: str, operation: str = "GetSecretValue") -> AWSError:
    with pytest.raises(AWSError) as exc:
        _check(db, ctx, arn, operation)
    return exc.value


def test_root_is_refused_by_an_explicit_deny_in_the_secrets_resource_policy(db, secret_arn):
    _check(db, ROOT_CTX, secret_arn)  # no policy: root may
    _put_policy(db, secret_arn, _policy("Allow", f"arn:aws:iam::{B}:root"))
    _check(db, ROOT_CTX, secret_arn)  # a policy that denies nothing: root still may
    _put_policy(db, secret_arn, _policy("Deny", f"arn:aws:iam::{A}:root"))
    err = _denied(db, ROOT_CTX, secret_arn)
    assert (err.code, err.message) == (
        "AccessDeniedException",
        f"User: arn:aws:iam::{A}:root is not authorized to perform: secretsmanager:GetSecretValue on resource: "
        f"{secret_arn} with an explicit deny in a resource-based policy",
    )
    _check(db, ROOT_CTX, secret_arn, "DescribeSecret")  # the deny names one action only


def test_the_builtin_rotator_is_refused_by_an_explicit_deny_too(db, secret_arn):
    rotator = replace(USER_CTX, principal_arn=f"arn:aws:sts::{A}:assumed-role/x/y", privilege=BUILTIN_ROTATOR)
    _check(db, rotator, secret_arn)
    _put_policy(db, secret_arn, _policy("Deny", "*"))
    assert _denied(db, rotator, secret_arn).message.endswith("with an explicit deny in a resource-based policy")


def test_a_user_gets_what_an_identity_policy_grants_and_nothing_else(db, secret_arn):
    err = _denied(db, USER_CTX, secret_arn)
    assert err.message == (
        f"User: {APP} is not authorized to perform: secretsmanager:GetSecretValue on resource: {secret_arn} "
        "because no identity-based policy allows the secretsmanager:GetSecretValue action"
    )
    grant = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn}],
    }
    db.write_sync(lambda tx: identities.put_inline_policy(tx, APP, A, "read", json.dumps(grant)))
    _check(db, USER_CTX, secret_arn)
    assert _denied(db, USER_CTX, secret_arn, "PutSecretValue").code == "AccessDeniedException"
    # An explicit deny in the secret's policy beats the user's own grant.
    _put_policy(db, secret_arn, _policy("Deny", APP))
    assert _denied(db, USER_CTX, secret_arn).message.endswith("with an explicit deny in a resource-based policy")


def test_the_caller_context_names_the_user(db, secret_arn):
    """``aws:username`` and ``aws:PrincipalType`` are what a condition sees for an IAM user."""
    grant = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:username": "app", "aws:PrincipalType": "User"}},
            }
        ],
    }
    db.write_sync(lambda tx: identities.put_inline_policy(tx, APP, A, "read", json.dumps(grant)))
    _check(db, USER_CTX, secret_arn)
    other = replace(USER_CTX, principal_arn=f"arn:aws:iam::{A}:user/other")
    db.write_sync(lambda tx: identities.put_inline_policy(tx, other.principal_arn, A, "read", json.dumps(grant)))
    assert _denied(db, other, secret_arn).code == "AccessDeniedException"


def test_a_deny_unless_tls_policy_refuses_plain_http_and_lets_tls_through(db, secret_arn):
    """The resource policy AWS recommends for "TLS only" (Deny when ``aws:SecureTransport`` is
    false): a request over plain HTTP is refused, the same request over TLS is allowed."""
    deny_plain = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": APP}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "secretsmanager:*",
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }
    _put_policy(db, secret_arn, json.dumps(deny_plain))
    error = _denied(db, replace(USER_CTX, secure=False), secret_arn)
    assert error.code == "AccessDeniedException"
    assert "with an explicit deny in a resource-based policy" in error.message
    _check(db, replace(USER_CTX, secure=True), secret_arn)


def test_another_accounts_root_needs_the_secrets_resource_policy(db, secret_arn):
    foreign_root = replace(ROOT_CTX, account_id=B, principal_arn=f"arn:aws:iam::{B}:root")
    err = _denied(db, foreign_root, secret_arn)
    assert err.message.endswith("because no resource-based policy allows the secretsmanager:GetSecretValue action")
    _put_policy(db, secret_arn, _policy("Allow", f"arn:aws:iam::{B}:root"))
    _check(db, foreign_root, secret_arn)


def test_the_builtin_rotator_has_no_privilege_outside_secrets_manager(db):
    rotator = replace(USER_CTX, principal_arn=f"arn:aws:sts::{A}:assumed-role/x/y", privilege=BUILTIN_ROTATOR)
    authz = Authorizer(db)
    db.read_sync(lambda tx: authz.check_call(tx, rotator, "secretsmanager", "ListSecrets", {}))
    with pytest.raises(AWSError) as exc:
        db.read_sync(lambda tx: authz.check_call(tx, rotator, "iam", "ListUsers", {}))
    assert (exc.value.code, exc.value.status) == ("AccessDenied", 403)
    with pytest.raises(AWSError) as exc:
        db.read_sync(lambda tx: authz.check_call(tx, USER_CTX, "secretsmanager", "ListSecrets", {}))
    assert (exc.value.code, exc.value.status) == ("AccessDeniedException", 400)
    db.read_sync(lambda tx: authz.check_call(tx, ROOT_CTX, "iam", "ListUsers", {}))
    db.read_sync(lambda tx: authz.check_call(tx, USER_CTX, "sts", "GetCallerIdentity", {}))


def test_a_changed_identity_policy_counts_once_the_cache_is_invalidated(db, secret_arn):
    authz = Authorizer(db)
    ctx = replace(USER_CTX, operation="GetSecretValue", params={"SecretId": secret_arn})

    def check() -> None:
        db.read_sync(lambda tx: authz.check_secret(tx, ctx, secret_rows.secret_by_arn(tx, secret_arn), secret_arn))

    with pytest.raises(AWSError):
        check()
    grant = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    db.write_sync(lambda tx: identities.put_inline_policy(tx, APP, A, "all", json.dumps(grant)))
    authz.invalidate()
    check()


ROLE = f"arn:aws:iam::{A}:role/rotator"


def _make_role(db: Database, role_id: str = "AROAROTATOR") -> None:
    row = {
        "arn": ROLE,
        "account_id": A,
        "kind": "role",
        "name": "rotator",
        "path": "/",
        "principal_id": role_id,
        "created_date": 0.0,
        "trust_policy": "{}",
        "description": None,
        "max_session": 3600,
        "tags": "[]",
    }
    db.write_sync(lambda tx: identities.insert_principal(tx, row))


def test_a_role_session_gets_its_roles_policies(db, secret_arn):
    _make_role(db)
    grant = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    db.write_sync(lambda tx: identities.put_inline_policy(tx, ROLE, A, "all", json.dumps(grant)))
    session = replace(
        USER_CTX,
        principal_arn=f"arn:aws:sts::{A}:assumed-role/rotator/s1",
        principal_id="AROAROTATOR:s1",
        role_arn=ROLE,
    )
    _check(db, session, secret_arn)
    # A session of another role of the same name (another id) gets nothing.
    stale = replace(session, principal_id="AROAOLDROLE:s1")
    assert _denied(db, stale, secret_arn).code == "AccessDeniedException"


def test_calls_to_other_services_are_decided_too(db):
    authz = Authorizer(db)
    for service, operation, params, code in (
        ("cloudtrail", "LookupEvents", {}, "AccessDeniedException"),
        ("lambda", "GetFunction", {"FunctionName": "f"}, "AccessDeniedException"),
        ("iam", "ListUsers", {}, "AccessDenied"),
    ):
        with pytest.raises(AWSError) as exc:
            db.read_sync(lambda tx, s=service, o=operation, p=params: authz.check_call(tx, USER_CTX, s, o, p))
        assert exc.value.code == code, service
    # sts:AssumeRole is decided by the service with the role's trust policy, not here.
    db.read_sync(lambda tx: authz.check_call(tx, USER_CTX, "sts", "AssumeRole", {"RoleArn": ROLE}))
    assert authz.resource_less("ListSecrets") and not authz.resource_less("GetSecretValue")


def test_request_parameters_reach_conditions_as_aws_writes_them(db, secret_arn):
    """Booleans as ``true``/``false``, every other value as sent (case kept)."""
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringEquals": {"secretsmanager:ForceDeleteWithoutRecovery": "true"}},
            },
            {
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringEquals": {"secretsmanager:Description": "Secret"}},
            },
        ],
    }
    db.write_sync(lambda tx: identities.put_inline_policy(tx, APP, A, "p", json.dumps(deny)))
    authz = Authorizer(db)

    def check(operation: str, params: dict) -> None:
        ctx = replace(USER_CTX, operation=operation, params={"SecretId": secret_arn, **params})
        db.read_sync(lambda tx: authz.check_secret(tx, ctx, secret_rows.secret_by_arn(tx, secret_arn), secret_arn))

    check("DeleteSecret", {"ForceDeleteWithoutRecovery": False})
    with pytest.raises(AWSError):
        check("DeleteSecret", {"ForceDeleteWithoutRecovery": True})
    check("UpdateSecret", {"Description": "secret"})
    with pytest.raises(AWSError):
        check("UpdateSecret", {"Description": "Secret"})


def test_a_caller_that_says_the_secret_has_a_policy_gets_it_read(db, secret_arn):
    _put_policy(db, secret_arn, _policy("Allow", APP))
    authz = Authorizer(db)
    ctx = replace(USER_CTX, operation="GetSecretValue", params={"SecretId": secret_arn})
    db.read_sync(
        lambda tx: authz.check_secret(tx, ctx, secret_rows.secret_by_arn(tx, secret_arn), secret_arn, has_policy=True)
    )
    with pytest.raises(AWSError):  # told there is none: none is read, and nothing else allows
        db.read_sync(
            lambda tx: authz.check_secret(
                tx, ctx, secret_rows.secret_by_arn(tx, secret_arn), secret_arn, has_policy=False
            )
        )


def test_assume_role_needs_the_trust_policy_and_its_conditions(db):
    authz = Authorizer(db)
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{A}:root"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": "shared"}},
                }
            ],
        }
    )
    asyncio.run(authz.check_assume_role(ROOT_CTX, ROLE, A, trust, {"sts:ExternalId": "shared"}))
    with pytest.raises(AWSError) as exc:
        asyncio.run(authz.check_assume_role(ROOT_CTX, ROLE, A, trust, {"sts:ExternalId": "other"}))
    assert (exc.value.code, exc.value.status) == ("AccessDenied", 403)
    assert exc.value.message.startswith(
        f"User: arn:aws:iam::{A}:root is not authorized to perform: sts:AssumeRole on resource: {ROLE}"
    )
    with pytest.raises(AWSError):
        asyncio.run(authz.check_assume_role(ROOT_CTX, ROLE, A, trust))


def _grant(db: Database, arn: str, *statements: dict) -> None:
    document = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    db.write_sync(lambda tx: identities.put_inline_policy(tx, arn, A, "p", document))


def test_identity_policies_are_cached_for_five_seconds(db, secret_arn):
    """Another node's IAM change (no invalidate() here) counts within five seconds, not before."""
    from strongroom import clock

    fake = clock.FakeClock(1_800_000_000.0)
    previous = clock.use(fake)
    try:
        _grant(db, APP, {"Effect": "Allow", "Action": "*", "Resource": "*"})
        authz = Authorizer(db)
        ctx = replace(USER_CTX, operation="GetSecretValue", params={"SecretId": secret_arn})

        def check() -> None:
            db.read_sync(lambda tx: authz.check_secret(tx, ctx, secret_rows.secret_by_arn(tx, secret_arn), secret_arn))

        check()
        db.write_sync(lambda tx: identities.delete_inline_policy(tx, APP, "p"))
        fake.advance(4.9)
        check()  # still the cached grant
        fake.set(1_800_000_005.0)  # five seconds to the instant: read again
        with pytest.raises(AWSError):
            check()
    finally:
        clock.use(previous)


def test_the_secrets_tags_and_rotation_function_reach_conditions(db, secret_arn):
    def fn(tx):  # type: ignore[no-untyped-def]
        row = secret_rows.secret_by_arn(tx, secret_arn)
        row.tags = [{"Key": "team", "Value": "blue"}]
        row.rotation_lambda_arn = f"arn:aws:lambda:us-east-1:{A}:function:rot"
        secret_rows.update_secret(tx, row, "tags", "rotation_lambda_arn")

    _grant(
        db,
        APP,
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/team": "blue", "secretsmanager:ResourceTag/team": "blue"}},
        },
        {
            "Effect": "Allow",
            "Action": "secretsmanager:DescribeSecret",
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "secretsmanager:resource/AllowRotationLambdaArn": f"arn:aws:lambda:us-east-1:{A}:function:rot",
                    "secretsmanager:SecretId": secret_arn,
                }
            },
        },
    )
    assert _denied(db, USER_CTX, secret_arn).code == "AccessDeniedException"
    assert _denied(db, USER_CTX, secret_arn, "DescribeSecret").code == "AccessDeniedException"
    db.write_sync(fn)
    _check(db, USER_CTX, secret_arn)
    _check(db, USER_CTX, secret_arn, "DescribeSecret")


def test_secrets_manager_calls_about_one_secret_wait_for_the_secret(db, secret_arn):
    """The pipeline's check lets GetSecretValue through to the service, which decides on the
    secret's ARN: a grant on that ARN alone is enough."""
    _grant(db, APP, {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn})
    authz = Authorizer(db)
    db.read_sync(lambda tx: authz.check_call(tx, USER_CTX, "secretsmanager", "GetSecretValue", {"SecretId": "x"}))
    _check(db, USER_CTX, secret_arn)


def test_iam_calls_are_decided_on_the_target_and_its_tags(db):
    user_row = {
        "arn": f"arn:aws:iam::{A}:user/team/bob",
        "account_id": A,
        "kind": "user",
        "name": "bob",
        "path": "/team/",
        "principal_id": "AIDABOB",
        "created_date": 0.0,
        "trust_policy": None,
        "description": None,
        "max_session": None,
        "tags": json.dumps([{"Key": "team", "Value": "blue"}]),
    }
    db.write_sync(lambda tx: identities.insert_principal(tx, user_row))
    _grant(
        db,
        APP,
        {
            "Effect": "Allow",
            "Action": "iam:GetUser",
            "Resource": f"arn:aws:iam::{A}:user/team/bob",
            "Condition": {"StringEquals": {"aws:ResourceTag/team": "blue"}},
        },
        {
            "Effect": "Allow",
            "Action": "iam:CreateUser",
            "Resource": f"arn:aws:iam::{A}:user/new/*",
            "Condition": {
                "StringEquals": {"aws:RequestTag/team": "blue"},
                "ForAllValues:StringEquals": {"aws:TagKeys": ["team"]},
            },
        },
    )
    authz = Authorizer(db)

    def check(operation: str, params: dict) -> None:
        db.read_sync(lambda tx: authz.check_call(tx, USER_CTX, "iam", operation, params))

    check("GetUser", {"UserName": "bob"})
    check("CreateUser", {"UserName": "carol", "Path": "/new/", "Tags": [{"Key": "team", "Value": "blue"}]})
    with pytest.raises(AWSError) as exc:
        check("CreateUser", {"UserName": "carol", "Path": "/new/", "Tags": [{"Key": "team", "Value": "red"}]})
    assert (exc.value.code, exc.value.status) == ("AccessDenied", 403)
    with pytest.raises(AWSError):
        check("CreateUser", {"UserName": "carol", "Path": "/new/"})


def test_a_trust_policy_naming_the_caller_is_enough(db):
    """In the role's account, a trust policy that names the user lets it in without any policy of
    its own; one that names only the account needs the user's own sts:AssumeRole too."""
    authz = Authorizer(db)

    def trust(principal: str) -> str:
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}],
            }
        )

    asyncio.run(authz.check_assume_role(USER_CTX, ROLE, A, trust(APP)))
    with pytest.raises(AWSError) as exc:
        asyncio.run(authz.check_assume_role(USER_CTX, ROLE, A, trust(f"arn:aws:iam::{A}:root")))
    assert exc.value.message.endswith("because no identity-based policy allows the sts:AssumeRole action")
    _grant(db, APP, {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE})
    authz.invalidate()
    asyncio.run(authz.check_assume_role(USER_CTX, ROLE, A, trust(f"arn:aws:iam::{A}:root")))


def test_tags_a_call_sets_reach_conditions(db, secret_arn):
    _grant(
        db,
        APP,
        {
            "Effect": "Allow",
            "Action": "secretsmanager:TagResource",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:RequestTag/team": "blue"},
                "ForAllValues:StringEquals": {"aws:TagKeys": ["team"]},
            },
        },
    )
    authz = Authorizer(db)

    def tag(tags: list) -> None:
        ctx = replace(USER_CTX, operation="TagResource", params={"SecretId": secret_arn, "Tags": tags})
        db.read_sync(lambda tx: authz.check_secret(tx, ctx, secret_rows.secret_by_arn(tx, secret_arn), secret_arn))

    tag([{"Key": "team", "Value": "blue"}])
    with pytest.raises(AWSError):
        tag([{"Key": "team", "Value": "red"}])
    with pytest.raises(AWSError):
        tag([{"Key": "owner", "Value": "blue"}])


def test_iam_calls_about_the_caller_itself_are_decided_on_its_own_arn(db):
    _grant(
        db,
        APP,
        {"Effect": "Allow", "Action": ["iam:GetUser", "iam:ListAccessKeys"], "Resource": APP},
        {"Effect": "Allow", "Action": "iam:ListRoles", "Resource": "*"},
    )
    authz = Authorizer(db)
    for operation in ("GetUser", "ListAccessKeys", "ListRoles"):
        db.read_sync(lambda tx, o=operation: authz.check_call(tx, USER_CTX, "iam", o, {}))
    with pytest.raises(AWSError):
        db.read_sync(lambda tx: authz.check_call(tx, USER_CTX, "iam", "ListUsers", {}))
