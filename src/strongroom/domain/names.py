"""Secret names and ARNs, with AWS's rules for finding a secret by name, full or partial ARN.

A secret's ARN is ``arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX`` where ``XXXXXX``
is six random characters, drawn anew each time a name is created, so a re-created secret never
answers to an old ARN.

A ``SecretId`` is resolved the way AWS documents it:

* anything not starting with ``arn:`` is a name, matched exactly;
* a full ARN matches the secret whose ARN it is;
* a *partial* ARN (the ARN without the suffix) matches the secret with that name. AWS's pitfall
  is kept on purpose: when a partial ARN itself ends in a hyphen and six characters, AWS takes it
  for a complete ARN, so a secret named ``db-abcdef`` is not found through its partial ARN.
"""

from __future__ import annotations

import re
import secrets as _random
import string
from dataclasses import dataclass

__all__ = [
    "ARN_SUFFIX_ALPHABET",
    "INVALID_NAME_MESSAGE",
    "SecretRef",
    "is_valid_name",
    "new_arn",
    "parse_secret_id",
]

ARN_SUFFIX_ALPHABET = string.ascii_letters + string.digits
_NAME_RE = re.compile(r"[A-Za-z0-9/_+=.@!-]+")
_SUFFIX_RE = re.compile(r"-[A-Za-z0-9]{6}$")

# AWS's text for a name outside the allowed characters (AWS answers it as a ValidationException:
# LocalStack's recorded snapshot test_invalid_secret_name).
INVALID_NAME_MESSAGE = (
    "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
)


def is_valid_name(name: str) -> bool:
    return _NAME_RE.fullmatch(name) is not None


def new_arn(partition: str, region: str, account_id: str, name: str) -> str:
    suffix = "".join(_random.choice(ARN_SUFFIX_ALPHABET) for _ in range(6))
    return f"arn:{partition}:secretsmanager:{region}:{account_id}:secret:{name}-{suffix}"


@dataclass(frozen=True, slots=True)
class SecretRef:
    """How a ``SecretId`` asks for a secret: by exact ARN, or by name (from a name or partial ARN).

    ``region`` / ``account_id`` are set when the id was an ARN; they must match the namespace the
    request is served in, or the secret is not found.
    """

    name: str | None
    arn: str | None
    region: str | None = None
    account_id: str | None = None


def parse_secret_id(secret_id: str) -> SecretRef:
    if not secret_id.startswith("arn:"):
        return SecretRef(name=secret_id, arn=None)
    parts = secret_id.split(":", 6)
    if len(parts) < 7 or parts[2] != "secretsmanager" or parts[5] != "secret":
        # Not a Secrets Manager ARN: AWS looks it up and finds nothing.
        return SecretRef(name=None, arn=secret_id)
    tail = parts[6]
    region, account = parts[3], parts[4]
    if _SUFFIX_RE.search(tail):
        return SecretRef(name=None, arn=secret_id, region=region, account_id=account)
    return SecretRef(name=tail, arn=None, region=region, account_id=account)
