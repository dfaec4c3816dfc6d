"""What every built-in rotator shares: the prologue, createSecret and finishSecret.

One deliberate difference from AWS's templates: ``setSecret`` always applies the pending
password (an idempotent statement) instead of skipping when a login with it already works. A
server that trusts loopback connections accepts any password, and the templates then "rotate"
without changing anything; applying the password is right on every server.

A database module supplies ``connect(secret) -> connection | None`` and the ``setSecret`` and
``testSecret`` steps; ``rotate`` does the rest exactly as AWS's templates do.

Passwords never reach a log line: every password read from a secret during a step is remembered,
and an error whose message would carry one (a database may quote a statement back) is replaced by
a redacted copy before it leaves the handler.

The secret's optional ``ssl`` key means what it means in AWS's templates: ``true`` (or
``"true"``) requires TLS with a verified certificate and host name, ``false`` never uses TLS, and
absent uses TLS when the server offers it and plaintext otherwise. Certificates are checked against
``SSL_CERT_FILE`` when set, else the system's CA bundle.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from collections.abc import Callable
from typing import Any

import boto3

log = logging.getLogger("strongroom.rotation.builtin")

Secret = dict[str, Any]
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def _flag(name: str, default: str) -> bool:
    return os.environ.get(name, default).lower() in ("true", "1", "y", "yes")


_passwords: set[str] = set()  # every password read during the current step (one step at a time)


def _remember(secret: Secret) -> None:
    if isinstance(secret.get("password"), str) and secret["password"]:
        _passwords.add(secret["password"])


class RedactedError(Exception):
    """A step's failure whose message contained a password: the message, with it replaced."""


def redacted(text: str) -> str:
    for password in sorted(_passwords, key=len, reverse=True):
        text = text.replace(password, "********")
    return text


def tls_setting(secret: Secret) -> bool | None:
    """The secret's ``ssl`` key: True (verified TLS required), False (never), None (if offered)."""
    value = secret.get("ssl")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None  # absent or not understood: as AWS's templates do, TLS when possible


def ca_bundle() -> str:
    paths = ssl.get_default_verify_paths()
    return os.environ.get("SSL_CERT_FILE") or paths.cafile or paths.openssl_cafile


_clients: dict[tuple[str, ...], Any] = {}


def client() -> Any:
    """The Secrets Manager client, made once per worker process and reused by every step: making
    one costs tens of milliseconds of CPU, more than a step's own calls, and a reused client keeps
    its connection. A new one is made if the endpoint or the credentials in the environment change."""
    endpoint = os.environ["SECRETS_MANAGER_ENDPOINT"]
    key = (
        endpoint,
        *(
            os.environ.get(name, "")
            for name in (
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "AWS_REGION",
                "AWS_DEFAULT_REGION",
            )
        ),
    )
    found = _clients.get(key)
    if found is None:
        _clients.clear()
        found = _clients[key] = boto3.client("secretsmanager", endpoint_url=endpoint)
    return found


def get_secret(sm: Any, arn: str, stage: str, engines: tuple[str, ...], token: str | None = None) -> Secret:
    """A version's JSON, checked for the keys a database rotation needs."""
    if token is None:
        value = sm.get_secret_value(SecretId=arn, VersionStage=stage)
    else:
        value = sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage=stage)
    secret: Secret = json.loads(value["SecretString"])
    if not isinstance(secret, dict):
        raise ValueError(f"The {stage} value of {arn} is not a JSON object")
    _remember(secret)
    for key in ("host", "username", "password"):
        if key not in secret:
            raise KeyError(f"{key} key is missing from secret JSON")
    if secret.get("engine") not in engines:
        raise KeyError(
            f"Database engine must be set to one of {', '.join(engines)} in order to use this rotation function"
        )
    return secret


def new_password(sm: Any, default_exclude: str) -> str:
    return sm.get_random_password(  # type: ignore[no-any-return]
        ExcludeCharacters=os.environ.get("EXCLUDE_CHARACTERS", default_exclude),
        PasswordLength=int(os.environ.get("PASSWORD_LENGTH", "32")),
        ExcludeNumbers=_flag("EXCLUDE_NUMBERS", "false"),
        ExcludePunctuation=_flag("EXCLUDE_PUNCTUATION", "false"),
        ExcludeUppercase=_flag("EXCLUDE_UPPERCASE", "false"),
        ExcludeLowercase=_flag("EXCLUDE_LOWERCASE", "false"),
        RequireEachIncludedType=_flag("REQUIRE_EACH_INCLUDED_TYPE", "true"),
    )["RandomPassword"]


def alternate(username: str, limit: int) -> str:
    """``app`` ↔ ``app_clone``: alternating users take turns."""
    if username.endswith("_clone"):
        return username[: -len("_clone")]
    clone = username + "_clone"
    if len(clone) > limit:
        raise ValueError(f"Unable to clone user, username length with _clone appended would exceed {limit} characters")
    return clone


def login_for_change(
    sm: Any, arn: str, token: str, engines: tuple[str, ...], connect: Callable[[Secret], Any]
) -> tuple[Secret, Any]:
    """Single user: the pending version and a connection as the user itself, with the current
    password, else the pending one (this step already ran), else the previous one."""
    current = get_secret(sm, arn, "AWSCURRENT", engines)
    pending = get_secret(sm, arn, "AWSPENDING", engines, token)
    if (pending["username"], pending["host"]) != (current["username"], current["host"]):
        raise ValueError(f"Attempting to modify user {pending['username']} other than current user or host")
    conn = connect(current) or connect(pending)
    if conn is None:
        try:
            conn = connect(get_secret(sm, arn, "AWSPREVIOUS", engines))
        except sm.exceptions.ResourceNotFoundException:
            conn = None
    if conn is None:
        raise ValueError(f"Unable to log into database with previous, current, or pending secret of secret arn {arn}")
    return pending, conn


def rotate(
    event: dict[str, Any],
    engines: tuple[str, ...],
    default_exclude: str,
    set_secret: Callable[[Any, str, str], None],
    test_secret: Callable[[Any, str, str], None],
    next_username: Callable[[str], str] | None = None,
) -> None:
    """One step of a rotation, as AWS's ``lambda_handler``: raising means the step failed."""
    _passwords.clear()
    try:
        _rotate(event, engines, default_exclude, set_secret, test_secret, next_username)
    except Exception as exc:
        message = str(exc)
        if redacted(message) != message:
            raise RedactedError(f"{type(exc).__name__}: {redacted(message)}") from None
        raise
    finally:
        _passwords.clear()


def _rotate(
    event: dict[str, Any],
    engines: tuple[str, ...],
    default_exclude: str,
    set_secret: Callable[[Any, str, str], None],
    test_secret: Callable[[Any, str, str], None],
    next_username: Callable[[str], str] | None,
) -> None:
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    if step not in STEPS:
        raise ValueError(f"Invalid step parameter {step} for secret {arn}")
    sm = client()
    metadata = sm.describe_secret(SecretId=arn)
    if "RotationEnabled" in metadata and not metadata["RotationEnabled"]:
        raise ValueError(f"Secret {arn} is not enabled for rotation")
    versions = metadata["VersionIdsToStages"]
    if token not in versions:
        raise ValueError(f"Secret version {token} has no stage for rotation of secret {arn}.")
    if "AWSCURRENT" in versions[token]:
        log.info("Secret version %s already set as AWSCURRENT for secret %s.", token, arn)
        return
    if "AWSPENDING" not in versions[token]:
        raise ValueError(f"Secret version {token} not set as AWSPENDING for rotation of secret {arn}.")
    if step == "createSecret":
        current = get_secret(sm, arn, "AWSCURRENT", engines)
        try:
            get_secret(sm, arn, "AWSPENDING", engines, token)
            log.info("createSecret: the pending version of %s already has a value.", arn)
            return
        except sm.exceptions.ResourceNotFoundException:
            pass
        pending = dict(current)
        if next_username is not None:
            pending["username"] = next_username(current["username"])
        pending["password"] = new_password(sm, default_exclude)
        _remember(pending)
        sm.put_secret_value(
            SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(pending), VersionStages=["AWSPENDING"]
        )
        log.info("createSecret: put a new pending version of %s.", arn)
    elif step == "setSecret":
        set_secret(sm, arn, token)
    elif step == "testSecret":
        test_secret(sm, arn, token)
    elif step == "finishSecret":
        current_id = next((v for v, stages in versions.items() if "AWSCURRENT" in stages), None)
        move = {"RemoveFromVersionId": current_id} if current_id else {}  # AWS's template sends None and fails
        sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token, **move)
        log.info("finishSecret: %s is now AWSCURRENT for %s.", token, arn)
