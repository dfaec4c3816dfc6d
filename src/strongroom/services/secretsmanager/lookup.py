"""Finding a secret a call names, and the IAM decision on it.

A SecretId is a name or an ARN; an ARN may name another account's secret, reachable only when
policies are enforced. :func:`find` resolves the reference, authorizes the call on what it found
(or on the ARN asked for, when nothing is there: a caller who may not touch it learns
AccessDenied, not whether it exists) and only then answers ResourceNotFoundException. The
operations of the service and its helpers (replication, cross-account replicas) share these, so
they need not import the service module.
"""

from __future__ import annotations

from typing import Any, Protocol

from strongroom.context import RequestContext
from strongroom.domain.names import INVALID_NAME_MESSAGE, is_valid_name, parse_secret_id
from strongroom.errors import AWSError
from strongroom.services.secretsmanager import messages as M
from strongroom.services.secretsmanager.values import ValueCipher
from strongroom.store import Database, Tx
from strongroom.store import secrets as q
from strongroom.store.secrets import SecretRow

__all__ = ["ServiceParts", "authorize", "find", "owner_of", "parse_id"]


class ServiceParts(Protocol):
    """What the service's helpers (replication, cross-account replicas) use of the service: its
    database and its value cipher. Typed so, they need not import the service module."""

    db: Database
    cipher: ValueCipher


def find(tx: Tx, ctx: RequestContext, secret_id: str, lock: bool = False) -> SecretRow:
    ref = parse_id(secret_id)
    owner = owner_of(ctx, ref)
    if owner is None:
        authorize(tx, ctx, None, secret_id)
        raise M.not_found()
    row = q.find_secret(tx, owner, ctx.region, name=ref.name, arn=ref.arn, lock=lock)
    authorize(tx, ctx, row, secret_id)
    if row is None:
        raise M.not_found()
    return row


def parse_id(secret_id: str) -> Any:
    """A SecretId as a name or ARN; a name with characters no name may have is refused as AWS
    refuses it on every operation (ValidationException, LocalStack snapshot test_invalid_secret_name)."""
    if not secret_id.startswith("arn:") and not is_valid_name(secret_id):
        raise AWSError("ValidationException", INVALID_NAME_MESSAGE)
    return parse_secret_id(secret_id)


def owner_of(ctx: RequestContext, ref: Any) -> str | None:
    """The account whose secret ``ref`` names, or None when it cannot be reached from here.

    A full ARN may name another account's secret: reachable when policies are enforced (both
    the caller's policies and the secret's resource policy must then allow, as on AWS).
    """
    if ref.region is not None and ref.region != ctx.region:
        return None
    if ref.account_id is None or ref.account_id == ctx.account_id:
        return ctx.account_id
    return ref.account_id if ctx.authz is not None else None


def authorize(
    tx: Tx, ctx: RequestContext, secret: SecretRow | None, secret_id: str, has_policy: bool | None = None
) -> None:
    """IAM's decision for this call on this secret (or on the ARN asked for, when it is absent:
    a caller who may not touch it learns AccessDenied, not whether it exists). ``has_policy``:
    whether the secret has a resource policy, when the caller already knows (None: look)."""
    if ctx.authz is None:
        return
    if secret is not None:
        resource = secret.arn
    elif secret_id.startswith("arn:"):
        resource = secret_id
    else:
        resource = f"arn:{ctx.partition}:secretsmanager:{ctx.region}:{ctx.account_id}:secret:{secret_id}"
    ctx.authz.check_secret(tx, ctx, secret, resource, has_policy)
