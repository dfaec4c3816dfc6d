"""``strongroom secretsmanager ...`` and the other service commands: the aws CLI's own driver.

People already know the aws CLI, so strongroom's service commands *are* the aws CLI (the PyPI
``awscli`` package, pinned): the same command and option names generated from botocore's models,
the same shorthand syntax, ``file://`` and ``fileb://``, ``--cli-input-json`` / ``--cli-input-yaml``,
``--generate-cli-skeleton``, ``--output`` and ``--query``, pagination, idempotency tokens, error
texts and exit codes. Writing a second implementation of all that would only make it drift.

What strongroom adds is the defaults a local server needs, each applied only when the standard
AWS configuration does not already say otherwise:

* the endpoint: ``http://127.0.0.1:8430`` unless ``--endpoint-url``, ``AWS_ENDPOINT_URL`` or the
  service's ``AWS_ENDPOINT_URL_<SERVICE>`` is set;
* the credentials: the administrator key in ``./strongroom-data/admin-credentials`` (or
  ``$STRONGROOM_DATA_DIR``) when no access key, profile or shared credentials file is configured;
* the region: ``us-east-1`` when none is configured.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from strongroom import config

__all__ = ["SERVICES", "run"]

# The services strongroom serves, as the aws CLI names them, and their endpoint variable suffix.
SERVICES = {
    "secretsmanager": "SECRETS_MANAGER",
    "lambda": "LAMBDA",
    "iam": "IAM",
    "sts": "STS",
    "cloudtrail": "CLOUDTRAIL",
}


def _configured_credentials(env: dict[str, str]) -> bool:
    if env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_PROFILE") or env.get("AWS_SHARED_CREDENTIALS_FILE"):
        return True
    return (Path.home() / ".aws" / "credentials").exists()


def defaults(service: str, args: Sequence[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The arguments and environment the aws CLI driver runs with."""
    args, env = list(args), dict(env)
    suffix = SERVICES.get(service, service.upper())
    if "--endpoint-url" not in args and not env.get("AWS_ENDPOINT_URL") and not env.get(f"AWS_ENDPOINT_URL_{suffix}"):
        env[f"AWS_ENDPOINT_URL_{suffix}"] = f"http://127.0.0.1:{config.DEFAULT_PORT}"
    if "--profile" not in args and not _configured_credentials(env):
        data_dir = Path(env.get("STRONGROOM_DATA_DIR", "strongroom-data"))
        credentials = data_dir / "admin-credentials"
        if credentials.exists():
            env["AWS_SHARED_CREDENTIALS_FILE"] = str(credentials.resolve())
            env["AWS_PROFILE"] = "strongroom"
    if (
        "--region" not in args
        and not env.get("AWS_REGION")
        and not env.get("AWS_DEFAULT_REGION")
        and not (Path.home() / ".aws" / "config").exists()
    ):
        env["AWS_DEFAULT_REGION"] = "us-east-1"
    return [service, *args], env


def run(service: str, args: Sequence[str]) -> int:
    """Run ``aws SERVICE ARGS`` in this process with strongroom's defaults; its exit code."""
    argv, env = defaults(service, args, dict(os.environ))
    os.environ.clear()
    os.environ.update(env)
    import sys

    from awscli.clidriver import create_clidriver

    # Usage errors name the program as the aws CLI names itself, so they read exactly alike.
    sys.argv[0] = "aws"

    return int(create_clidriver().main(argv))
