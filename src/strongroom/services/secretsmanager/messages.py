"""AWS's error codes and message texts for Secrets Manager, in one place.

Each text is AWS's own where AWS documents it or a recorded AWS answer shows it; a text marked
``# unverified`` in the code is our closest AWS-style wording (docs/operations.md lists them).
"""

from __future__ import annotations

from strongroom.errors import AWSError

NOT_FOUND = "Secrets Manager can't find the specified secret."
MARKED_FOR_DELETION = "You can't perform this operation on the secret because it was marked for deletion."
SCHEDULED_NAME = "You can't create this secret because a secret with this name is already scheduled for deletion."
BOTH_VALUES = "You can't specify both a binary secret value and a string secret value in the same secret."
# InvalidParameterException on AWS (errors quoted in gruntwork-io/cloud-nuke#435, rebuy-de/aws-nuke#1127).
REPLICA_WRITE = "Operation not permitted on a replica secret. Call must be made in primary secret's region."


def not_found() -> AWSError:
    return AWSError("ResourceNotFoundException", NOT_FOUND)


def invalid_parameter(message: str) -> AWSError:
    return AWSError("InvalidParameterException", message)


def invalid_request(message: str) -> AWSError:
    return AWSError("InvalidRequestException", message)


def exists(message: str) -> AWSError:
    return AWSError("ResourceExistsException", message)


def token_in_use(token: str, arn: str) -> str:
    """ResourceExistsException's text for a ClientRequestToken already naming a version with
    another value (moto's aws_verified test_create_different_secret_with_same_token and
    test_put_different_secret_value_with_same_token)."""
    return (
        f"You can't use ClientRequestToken {token} because that value is already in use for a version of secret {arn}."
    )


# InvalidRequestException on AWS for a value read or written from another account when the secret
# is under the account's default key (LocalStack's aws-validated test_cross_account_access).
DEFAULT_KEY_CROSS_ACCOUNT = (
    "You can't access a secret from a different AWS account if you encrypt the secret with the default KMS service key."
)
