"""``strongroom secretsmanager ...`` and the other service commands: the aws CLI's own driver.

People already know the aws CLI, so strongroom's service commands *are* the aws CLI (the PyPI
``awscli`` package, pinned): the same command and option names generated from botocore's models,
the same shorthand syntax, ``file://`` and ``fileb://``, ``--cli-input-json`` / ``--cli-input-yaml``,
``--generate-cli-skeleton``, ``--output`` and ``--query``, pagination, idempotency tokens, error
texts and exit codes. Writing a second implementation of all that would only make it drift.

They behave as the aws CLI *version 2* does (``cli/awsv2.py`` adapts version 1's driver, the one
PyPI ships): ``--output yaml|yaml-stream``, ``--cli-input-yaml``, ``--generate-cli-skeleton
yaml-input``, base64 blob arguments, ISO 8601 timestamps, exit codes 252/253/254/255/130, help
without a pager.

What strongroom adds is the defaults a local server needs, each applied only when the standard
AWS configuration is silent about it (read by botocore itself, after ``--profile`` and
``--region`` are applied):

* the endpoint ``http://127.0.0.1:8430``, unless ``--endpoint-url``, ``AWS_ENDPOINT_URL``,
  ``AWS_ENDPOINT_URL_<SERVICE>``, or ``endpoint_url`` in the profile or its ``[services]`` section
  names one;
* the region ``us-east-1``, unless ``--region``, ``AWS_REGION``, ``AWS_DEFAULT_REGION`` or the
  profile (in ``AWS_CONFIG_FILE`` or ``~/.aws/config``) names one;
* the administrator key in ``./strongroom-data/admin-credentials`` (or ``$STRONGROOM_DATA_DIR``),
  unless ``--profile``, ``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID`` (or web-identity or container
  credentials) is set, or the default profile holds credentials (in ``AWS_SHARED_CREDENTIALS_FILE``,
  ``~/.aws/credentials`` or the config file: a key, ``credential_process``, a role, SSO). The key
  is handed to the session in memory: it is never put in the environment of anything.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from strongroom import config

if TYPE_CHECKING:
    from strongroom.cli.awsv2 import LocalDefaults

__all__ = ["SERVICES", "local_defaults", "run"]

# The services strongroom serves, as the aws CLI names them.
SERVICES = ("secretsmanager", "lambda", "iam", "sts", "cloudtrail")


def local_defaults(env: dict[str, str]) -> LocalDefaults:
    """strongroom's defaults for a local server, from the environment (the data directory)."""
    from strongroom.cli.awsv2 import LocalDefaults

    data_dir = Path(env.get("STRONGROOM_DATA_DIR", "strongroom-data"))
    credentials = data_dir / "admin-credentials"
    return LocalDefaults(
        endpoint_url=f"http://127.0.0.1:{config.DEFAULT_PORT}",
        region="us-east-1",
        credentials_file=credentials.resolve() if credentials.is_file() else None,
    )


def run(service: str, args: Sequence[str]) -> int:
    """Run ``aws SERVICE ARGS`` (version 2's behaviour) in this process; its exit code."""
    from strongroom.cli.awsv2 import create_driver

    env = dict(os.environ)
    local = local_defaults(env)
    # Usage errors name the program as the aws CLI names itself, so they read exactly alike.
    sys.argv[0] = "aws"
    return create_driver(local, env).main([service, *args])
