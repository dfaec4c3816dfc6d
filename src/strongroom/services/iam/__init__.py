"""IAM: users, roles, access keys and inline policies."""

from strongroom.services.iam.service import IAM, OPERATIONS

__all__ = ["IAM", "OPERATIONS"]
