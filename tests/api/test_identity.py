"""Identity that cannot be forged (issue 11 §1, §5, §9): privilege comes from the credential, names
are validated as IAM and STS validate them, condition keys are filled as on AWS, and revoked
credentials stop working at once on every node.

Every test drives a real server with boto3, as an attacker with a low-privileged IAM user would.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import random
import sqlite3
import string
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from strongroom.testing import ServerProcess, postgres_schema, wait_for

ACCOUNT = "123456789012"


def client_for(server: ServerProcess, service: str, creds: dict[str, Any]) -> Any:
    """A client that sends what it is given: the server, not botocore, must refuse bad input."""
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
        config=Config(retries={"max_attempts": 1}, parameter_validation=False),
    )


def admin(server: ServerProcess, service: str) -> Any:
    return client_for(
        server, service, {"AccessKeyId": server.access_key_id, "SecretAccessKey": server.secret_access_key}
    )


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_user(iam: Any, *statements: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = unique("u")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy(*statements))
    return name, iam.create_access_key(UserName=name)["AccessKey"]


def make_role(
    iam: Any, trusted: str, *statements: dict[str, Any], name: str | None = None, path: str = "/"
) -> dict[str, Any]:
    name = name or unique("r")
    role = iam.create_role(
        RoleName=name,
        Path=path,
        AssumeRolePolicyDocument=policy({"Effect": "Allow", "Principal": {"AWS": trusted}, "Action": "sts:AssumeRole"}),
    )["Role"]
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=policy(*statements))
    return role  # type: ignore[no-any-return]


def session_name_error(name: str) -> str:
    return (
        "1 validation error detected: Value '" + name + "' at 'roleSessionName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
    )


# ------------------------------------------------------------------ §1: the proven exploits


@pytest.mark.parametrize(
    "session", ["x:root", "a:assumed-role/strongroom-builtin-rotation/b", ":root", "arn:aws:iam::123456789012:root"]
)
def test_a_session_name_cannot_pass_for_root_or_the_rotator(server, sm, session):
    """The exploit: a user allowed only sts:AssumeRole on a role with no policies named its
    session ``x:root`` and read a root-only secret. The name is now refused as STS refuses it."""
    iam = server.client("iam")
    user, key = make_user(iam)
    role = make_role(iam, f"arn:aws:iam::{ACCOUNT}:user/{user}")
    sts = client_for(server, "sts", key)
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=role["Arn"], RoleSessionName=session)
    assert error(exc) == ("ValidationError", session_name_error(session))
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_session_of_a_role_without_policies_gets_nothing(server, sm, name):
    iam = server.client("iam")
    sm.create_secret(Name=name, SecretString="root only")
    user, key = make_user(iam)
    role = make_role(iam, f"arn:aws:iam::{ACCOUNT}:user/{user}")
    for session in ("root", "x.root", "strongroom-builtin-rotation", "builtin-rotator"):
        creds = client_for(server, "sts", key).assume_role(RoleArn=role["Arn"], RoleSessionName=session)["Credentials"]
        as_role = client_for(server, "secretsmanager", creds)
        for call in (functools.partial(as_role.get_secret_value, SecretId=name), as_role.list_secrets):
            with pytest.raises(ClientError) as exc:
                call()
            assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
        with pytest.raises(ClientError) as exc:
            client_for(server, "iam", creds).create_user(UserName=unique("admin"))
        assert exc.value.response["Error"]["Code"] == "AccessDenied"
        who = client_for(server, "sts", creds).get_caller_identity()
        assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role['RoleName']}/{session}"
        assert who["UserId"] == f"{role['RoleId']}:{session}"


@pytest.mark.parametrize(
    "role_name", ["strongroom-builtin-rotation", "STRONGROOM-builtin-rotation", "strongroom-anything"]
)
def test_strongroom_names_are_reserved(server, role_name):
    """The exploit: a user with iam:CreateRole and sts:AssumeRole made a role named
    strongroom-builtin-rotation and read every secret."""
    iam = server.client("iam")
    trust = policy({"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"})
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust)
    assert error(exc) == (
        "InvalidInput",
        f"The role name {role_name} is reserved: names beginning with 'strongroom-' belong to strongroom.",
    )
    with pytest.raises(ClientError) as exc:
        iam.create_user(UserName=role_name)
    assert exc.value.response["Error"]["Code"] == "InvalidInput"


def test_a_role_named_like_the_rotator_gives_no_privilege(tmp_path):
    """Even a role that exists under the built-in rotator's name (written into the database behind
    strongroom's back) gives its sessions nothing: privilege comes only from the credential."""
    with ServerProcess(data_dir=tmp_path / "data") as srv:
        sm, iam = srv.client(), srv.client("iam")
        sm.create_secret(Name="crown-jewels", SecretString="v")
        user, key = make_user(iam)
        with sqlite3.connect(tmp_path / "data" / "strongroom.db") as db:
            db.execute(
                "INSERT INTO iam_principals (arn, account_id, kind, name, path, principal_id, created_date, "
                "trust_policy, max_session, tags) VALUES (?, ?, 'role', ?, '/', ?, 0, ?, 3600, '[]')",
                (
                    f"arn:aws:iam::{ACCOUNT}:role/strongroom-builtin-rotation",
                    ACCOUNT,
                    "strongroom-builtin-rotation",
                    "AROAFORGEDROLE0000001",
                    policy(
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{user}"},
                            "Action": "sts:AssumeRole",
                        }
                    ),
                ),
            )
        creds = client_for(srv, "sts", key).assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/strongroom-builtin-rotation", RoleSessionName="s1"
        )["Credentials"]
        as_role = client_for(srv, "secretsmanager", creds)
        for call in (lambda: as_role.get_secret_value(SecretId="crown-jewels"), as_role.list_secrets):
            with pytest.raises(ClientError) as exc:
                call()
            assert exc.value.response["Error"]["Code"] == "AccessDeniedException"


def test_no_name_a_caller_chooses_yields_privilege(server, sm, name):
    """The class: whatever RoleSessionName, UserName or RoleName a caller picks, it is refused with
    ValidationError or gives an identity with no privilege (no secret, no IAM write)."""
    iam = server.client("iam")
    sm.create_secret(Name=name, SecretString="root only")
    user, key = make_user(
        iam,
        {
            "Effect": "Allow",
            "Action": ["iam:CreateRole", "iam:CreateUser", "iam:CreateAccessKey", "sts:AssumeRole"],
            "Resource": "*",
        },
    )
    as_user = {s: client_for(server, s, key) for s in ("iam", "sts")}
    rng = random.Random(11)
    alphabet = string.ascii_letters + string.digits + "+=,.@-_:/*?$ " + "é"
    hostile = [
        ":root",
        "x:root",
        "root",
        "a:assumed-role/strongroom-builtin-rotation/b",
        "strongroom-builtin-rotation",
        "arn:aws:iam::123456789012:root",
        "a/b",
        "*",
        "..",
        "Root",
        "x" * 65,
        "x" * 129,
    ]
    names = hostile + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 70))) for _ in range(25)]
    role = make_role(iam, f"arn:aws:iam::{ACCOUNT}:user/{user}")
    accepted = 0
    for candidate in names:
        identities = []
        try:
            creds = as_user["sts"].assume_role(RoleArn=role["Arn"], RoleSessionName=candidate)["Credentials"]
            identities.append(creds)
        except ClientError as refused:
            assert refused.response["Error"]["Code"] == "ValidationError", (candidate, refused.response)
        for kind in ("user", "role"):
            try:
                if kind == "user":
                    as_user["iam"].create_user(UserName=candidate)
                    identities.append(as_user["iam"].create_access_key(UserName=candidate)["AccessKey"])
                else:
                    made = as_user["iam"].create_role(
                        RoleName=candidate,
                        AssumeRolePolicyDocument=policy(
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{user}"},
                                "Action": "sts:AssumeRole",
                            }
                        ),
                    )["Role"]
                    identities.append(
                        as_user["sts"].assume_role(RoleArn=made["Arn"], RoleSessionName="s1")["Credentials"]
                    )
            except ClientError as refused:
                assert refused.response["Error"]["Code"] in (
                    "ValidationError",
                    "InvalidInput",
                    "EntityAlreadyExists",
                ), (candidate, refused.response)
        for creds in identities:
            accepted += 1
            as_it = client_for(server, "secretsmanager", creds)
            with pytest.raises(ClientError) as exc:
                as_it.get_secret_value(SecretId=name)
            assert exc.value.response["Error"]["Code"] == "AccessDeniedException", candidate
            with pytest.raises(ClientError) as exc:
                client_for(server, "iam", creds).create_user(UserName=unique("x"))
            assert exc.value.response["Error"]["Code"] == "AccessDenied", candidate
    assert accepted >= 3  # the valid names among them did make identities


def test_iam_and_sts_names_are_validated_with_iams_words(server):
    iam, sts = admin(server, "iam"), admin(server, "sts")
    cases = [
        (
            lambda: iam.create_user(UserName="a:root"),
            "Value 'a:root' at 'userName' failed to satisfy constraint: Member must satisfy regular expression "
            "pattern: [\\w+=,.@-]+",
        ),
        (
            lambda: iam.create_user(UserName="ok", Path="/no-trailing-slash"),
            "Value '/no-trailing-slash' at 'path' failed to satisfy constraint: Member must satisfy regular "
            "expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)",
        ),
        (
            lambda: iam.create_role(RoleName="x" * 65, AssumeRolePolicyDocument="{}"),
            f"Value '{'x' * 65}' at 'roleName' failed to satisfy constraint: Member must have length less than or "
            "equal to 64",
        ),
        (
            lambda: iam.put_user_policy(UserName="nobody", PolicyName="a/b", PolicyDocument="{}"),
            "Value 'a/b' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression "
            "pattern: [\\w+=,.@-]+",
        ),
        (
            lambda: sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/r", RoleSessionName="s1", DurationSeconds=60),
            "Value '60' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or "
            "equal to 900",
        ),
        (
            lambda: sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/r", RoleSessionName="s1", ExternalId="a b"),
            "Value 'a b' at 'externalId' failed to satisfy constraint: Member must satisfy regular expression "
            "pattern: [\\w+=,.@:\\/-]*",
        ),
    ]
    for call, message in cases:
        with pytest.raises(ClientError) as exc:
            call()
        assert error(exc) == ("ValidationError", "1 validation error detected: " + message)


def test_a_role_session_cannot_mint_a_long_term_key_for_itself(server):
    iam = server.client("iam")
    user, key = make_user(iam)
    role = make_role(
        iam, f"arn:aws:iam::{ACCOUNT}:user/{user}", {"Effect": "Allow", "Action": "iam:*", "Resource": "*"}
    )
    creds = client_for(server, "sts", key).assume_role(RoleArn=role["Arn"], RoleSessionName="s1")["Credentials"]
    with pytest.raises(ClientError) as exc:
        client_for(server, "iam", creds).create_access_key()
    assert error(exc) == ("ValidationError", "Must specify userName when calling with non-User credentials")


def test_the_root_mints_root_keys_and_identities_say_who_is_who(sqlite_server):
    server = sqlite_server
    iam, sts = server.client("iam"), server.client("sts")
    for extra in iam.list_access_keys()["AccessKeyMetadata"]:  # other tests' root keys (a quota of 2)
        if extra["AccessKeyId"] != server.access_key_id:
            iam.delete_access_key(AccessKeyId=extra["AccessKeyId"])
    assert sts.get_caller_identity()["UserId"] == ACCOUNT
    root_key = iam.create_access_key()["AccessKey"]
    try:
        as_root = client_for(server, "sts", root_key).get_caller_identity()
        assert as_root == {**as_root, "UserId": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:root"}
        client_for(server, "iam", root_key).list_users()  # a root key is root's
    finally:
        iam.delete_access_key(AccessKeyId=root_key["AccessKeyId"])
    user, key = make_user(iam)
    user_id = iam.get_user(UserName=user)["User"]["UserId"]
    assert user_id.startswith("AIDA")
    assert client_for(server, "sts", key).get_caller_identity()["UserId"] == user_id


# ------------------------------------------------------------- §5: condition keys as on AWS


def _denied_by(server: ServerProcess, creds: dict[str, Any], secret: str) -> bool:
    try:
        client_for(server, "secretsmanager", creds).get_secret_value(SecretId=secret)
        return False
    except ClientError as refused:
        assert refused.response["Error"]["Code"] == "AccessDeniedException", refused.response
        return True


def test_identity_condition_keys_are_filled(server, sm, name):
    """A Deny keyed on aws:username, aws:userid, aws:PrincipalType or aws:PrincipalArn applies,
    for a user and for a role session (whose aws:PrincipalArn is the role's ARN, with its path)."""
    iam = server.client("iam")
    sm.create_secret(Name=name, SecretString="v")
    allow = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
    user, key = make_user(iam, allow)
    user_id = iam.get_user(UserName=user)["User"]["UserId"]
    role = make_role(iam, f"arn:aws:iam::{ACCOUNT}:user/{user}", allow, path="/team/")
    session = client_for(server, "sts", key).assume_role(RoleArn=role["Arn"], RoleSessionName="s1")["Credentials"]
    rows = [  # (condition, denies the user, denies the session)
        ({"StringEquals": {"aws:username": user}}, True, False),
        ({"Null": {"aws:username": "true"}}, False, True),
        ({"StringEquals": {"aws:userid": user_id}}, True, False),
        ({"StringLike": {"aws:userid": f"{role['RoleId']}:*"}}, False, True),
        ({"StringEquals": {"aws:userid": f"{role['RoleId']}:s1"}}, False, True),
        ({"StringEquals": {"aws:PrincipalType": "User"}}, True, False),
        ({"StringEquals": {"aws:PrincipalType": "AssumedRole"}}, False, True),
        ({"StringEquals": {"aws:PrincipalType": "Account"}}, False, False),
        ({"ArnEquals": {"aws:PrincipalArn": role["Arn"]}}, False, True),
        ({"StringEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/{user}"}}, True, False),
        ({"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}, True, True),
    ]
    for condition, user_denied, session_denied in rows:
        sm.put_resource_policy(
            SecretId=name,
            ResourcePolicy=policy(
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*",
                    "Condition": condition,
                }
            ),
        )
        assert (_denied_by(server, key, name), _denied_by(server, session, name)) == (user_denied, session_denied), (
            condition
        )


def test_trust_policies_see_the_session_name_and_external_id(server):
    iam = server.client("iam")
    user, key = make_user(iam)
    name = unique("r")
    role = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{user}"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"sts:ExternalId": "tenant-7"},
                    "StringLike": {"sts:RoleSessionName": "ci-*"},
                },
            }
        ),
    )
    sts = client_for(server, "sts", key)
    for kwargs, allowed in (
        ({"RoleSessionName": "ci-1", "ExternalId": "tenant-7"}, True),
        ({"RoleSessionName": "ci-1"}, False),
        ({"RoleSessionName": "ci-1", "ExternalId": "tenant-8"}, False),
        ({"RoleSessionName": "dev-1", "ExternalId": "tenant-7"}, False),
    ):
        if allowed:
            sts.assume_role(RoleArn=role["Role"]["Arn"], **kwargs)
            continue
        with pytest.raises(ClientError) as exc:
            sts.assume_role(RoleArn=role["Role"]["Arn"], **kwargs)
        assert exc.value.response["Error"]["Code"] == "AccessDenied", kwargs


def test_a_trust_policy_naming_the_account_needs_the_callers_own_allow(server):
    iam = server.client("iam")
    role = make_role(iam, f"arn:aws:iam::{ACCOUNT}:root")
    _, without = make_user(iam)
    _, with_allow = make_user(iam, {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role["Arn"]})
    with pytest.raises(ClientError) as exc:
        client_for(server, "sts", without).assume_role(RoleArn=role["Arn"], RoleSessionName="s1")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    client_for(server, "sts", with_allow).assume_role(RoleArn=role["Arn"], RoleSessionName="s1")
    # ... and an identity policy alone does not open a role whose trust policy names someone else.
    other = make_role(iam, f"arn:aws:iam::{ACCOUNT}:user/someone-else")
    _, greedy = make_user(iam, {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})
    with pytest.raises(ClientError) as exc:
        client_for(server, "sts", greedy).assume_role(RoleArn=other["Arn"], RoleSessionName="s1")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"


def test_audit_identity_comes_from_the_credential(server, sm):
    iam = server.client("iam")
    user, key = make_user(iam)
    role = make_role(iam, f"arn:aws:iam::{ACCOUNT}:user/{user}")
    creds = client_for(server, "sts", key).assume_role(RoleArn=role["Arn"], RoleSessionName="root")["Credentials"]
    with pytest.raises(ClientError):
        client_for(server, "secretsmanager", creds).list_secrets()
    trail = server.client("cloudtrail")
    events = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "AccessKeyId", "AttributeValue": creds["AccessKeyId"]}]
    )["Events"]
    identity = json.loads(events[0]["CloudTrailEvent"])["userIdentity"]
    assert identity["type"] == "AssumedRole"
    assert identity["principalId"] == f"{role['RoleId']}:root"
    assert identity["sessionContext"]["sessionIssuer"] == {
        "type": "Role",
        "principalId": role["RoleId"],
        "arn": role["Arn"],
        "accountId": ACCOUNT,
        "userName": role["RoleName"],
    }


# -------------------------------------------------------------- §9: rights end at once


def test_a_deleted_role_ends_its_sessions_at_once_and_is_not_revived(server, sm, name):
    iam = server.client("iam")
    sm.create_secret(Name=name, SecretString="v")
    user, key = make_user(iam)
    allow = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
    role = make_role(iam, f"arn:aws:iam::{ACCOUNT}:user/{user}", allow)
    creds = client_for(server, "sts", key).assume_role(RoleArn=role["Arn"], RoleSessionName="s1")["Credentials"]
    as_role = client_for(server, "secretsmanager", creds)
    assert as_role.get_secret_value(SecretId=name)["SecretString"] == "v"
    iam.delete_role_policy(RoleName=role["RoleName"], PolicyName="p")
    iam.delete_role(RoleName=role["RoleName"])
    with pytest.raises(ClientError) as exc:
        as_role.get_secret_value(SecretId=name)
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"
    again = make_role(iam, f"arn:aws:iam::{ACCOUNT}:user/{user}", allow, name=role["RoleName"])
    assert again["RoleId"] != role["RoleId"]
    with pytest.raises(ClientError) as exc:
        as_role.get_secret_value(SecretId=name)
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"


def _refused(call: Any, denied_is_not_yet: bool = False) -> bool:
    """Whether ``call`` is now refused as signed with an unknown key (any other error fails, except
    AccessDeniedException with ``denied_is_not_yet``: the credential still known, its rights gone)."""
    try:
        call()
    except ClientError as refused:
        code = refused.response["Error"]["Code"]
        if denied_is_not_yet and code == "AccessDeniedException":
            return False
        assert code == "UnrecognizedClientException", refused.response
        return True
    return False


# Each node reads the revocation generation every 0.5 s (auth/keys.py ``_POLL``), so a revocation
# reaches it within about a second; without that, a key it cached would be accepted for as long as
# it runs. The bound below only separates those two: 10 s, twenty polls, which no load on a test
# machine stretches a 0.5 s poll into, and far short of "never".
PROPAGATED = 10.0


def test_revocations_reach_every_node(pg_url):
    shared = {"STRONGROOM_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    base = pg_url.split("?", 1)[0]
    with (
        postgres_schema(base) as url,
        ServerProcess(database_url=url, env=shared) as a,
        ServerProcess(database_url=url, env=shared) as b,
    ):
        iam = a.client("iam")
        a.client().create_secret(Name="s", SecretString="v")
        allow = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
        user, key = make_user(iam, allow)
        role = make_role(iam, f"arn:aws:iam::{ACCOUNT}:user/{user}", allow)
        creds = client_for(b, "sts", key).assume_role(RoleArn=role["Arn"], RoleSessionName="s1")["Credentials"]
        on_b_user = client_for(b, "secretsmanager", key)
        on_b_role = client_for(b, "secretsmanager", creds)
        for _ in range(3):  # both cached on node b
            on_b_user.get_secret_value(SecretId="s")
            on_b_role.get_secret_value(SecretId="s")
        # A role deleted on node a: its session stops on node b.
        iam.delete_role_policy(RoleName=role["RoleName"], PolicyName="p")
        iam.delete_role(RoleName=role["RoleName"])
        # Node b may see the policy's deletion before the role's: for that moment the session is
        # still known and allowed nothing (AccessDeniedException), the right answer then.
        wait_for(
            lambda: _refused(lambda: on_b_role.get_secret_value(SecretId="s"), denied_is_not_yet=True),
            PROPAGATED,
            "role session refused",
        )
        make_role(iam, f"arn:aws:iam::{ACCOUNT}:user/{user}", allow, name=role["RoleName"])
        # A key deactivated on node a stops on node b. Once it has, node b has read a generation
        # newer than the new role of the old name: that role did not bring the old session back.
        iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
        wait_for(lambda: _refused(lambda: on_b_user.get_secret_value(SecretId="s")), PROPAGATED, "key refused")
        assert _refused(lambda: on_b_role.get_secret_value(SecretId="s"))
        iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Active")
        wait_for(lambda: not _refused(lambda: on_b_user.get_secret_value(SecretId="s")), PROPAGATED, "key active")
        # A deleted key stops on node b too.
        iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
        wait_for(lambda: _refused(lambda: on_b_user.get_secret_value(SecretId="s")), PROPAGATED, "deleted key refused")


def test_iam_calls_see_tags_and_the_path_of_their_target(server):
    """IAM authorizes on the user's or role's ARN with its path, with the tag keys AWS sets:
    a Deny on aws:ResourceTag, aws:RequestTag or aws:TagKeys applies to IAM calls too."""
    iam = server.client("iam")
    _user, key = make_user(
        iam,
        {"Effect": "Allow", "Action": "iam:*", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "iam:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/tier": "protected"}},
        },
        {
            "Effect": "Deny",
            "Action": "iam:CreateUser",
            "Resource": "*",
            "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": "owner"}},
        },
        {"Effect": "Deny", "Action": "iam:GetRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/locked/*"},
    )
    as_user = client_for(server, "iam", key)
    protected = unique("p")
    iam.create_user(UserName=protected, Tags=[{"Key": "tier", "Value": "protected"}])
    with pytest.raises(ClientError) as exc:
        as_user.put_user_policy(
            UserName=protected,
            PolicyName="x",
            PolicyDocument=policy({"Effect": "Allow", "Action": "*", "Resource": "*"}),
        )
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    assert "with an explicit deny in an identity-based policy" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        as_user.create_user(UserName=unique("t"), Tags=[{"Key": "owner", "Value": "me"}])
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    as_user.create_user(UserName=unique("t"), Tags=[{"Key": "team", "Value": "me"}])
    locked = make_role(iam, f"arn:aws:iam::{ACCOUNT}:root", path="/locked/")
    with pytest.raises(ClientError) as exc:
        as_user.get_role(RoleName=locked["RoleName"])
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    assert locked["Arn"] in exc.value.response["Error"]["Message"]


def test_trust_policies_see_the_roles_tags(server):
    iam = server.client("iam")
    user, key = make_user(iam)
    name = unique("r")
    iam.create_role(
        RoleName=name,
        Tags=[{"Key": "assumable", "Value": "no"}],
        AssumeRolePolicyDocument=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{user}"},
                "Action": "sts:AssumeRole",
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:ResourceTag/assumable": "no"}},
            },
        ),
    )
    with pytest.raises(ClientError) as exc:
        client_for(server, "sts", key).assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}", RoleSessionName="s1")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"


def test_a_users_path_that_reads_like_a_session_changes_nothing(server):
    """A path may hold ':' and '/': a user at /x:assumed-role/r/ is still a user with its policies."""
    iam = server.client("iam")
    name = unique("u")
    iam.create_user(UserName=name, Path="/x:assumed-role/r/")
    iam.put_user_policy(
        UserName=name,
        PolicyName="p",
        PolicyDocument=policy(
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetRandomPassword",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:username": name, "aws:PrincipalType": "User"}},
            }
        ),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    client_for(server, "secretsmanager", key).get_random_password()
    who = client_for(server, "sts", key).get_caller_identity()
    assert who["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/x:assumed-role/r/{name}"
    assert who["UserId"].startswith("AIDA")
