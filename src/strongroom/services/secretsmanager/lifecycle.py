"""DeleteSecret and RestoreSecret, and the purge of secrets whose recovery window has ended.

A deletion is scheduled (7 to 30 days, 30 by default) unless forced; a forced delete of a secret
that is not there answers as if it were (AWS's documented behaviour). A replica, a primary with
replicas and a cross-account primary with linked replicas cannot be deleted.
"""

from __future__ import annotations

from typing import Any

from strongroom import clock
from strongroom.context import RequestContext
from strongroom.domain.names import new_arn, parse_secret_id
from strongroom.errors import AWSError
from strongroom.services.secretsmanager import cross_account
from strongroom.services.secretsmanager import messages as M
from strongroom.services.secretsmanager.base import DAY, ServiceBase, ms
from strongroom.services.secretsmanager.lookup import find
from strongroom.store import Tx
from strongroom.store import secrets as q
from strongroom.store.secrets import SecretRow

__all__ = ["LifecycleOperations"]


class LifecycleOperations(ServiceBase):
    """The operations that schedule, cancel and carry out a secret's deletion."""

    # -------------------------------------------------------------------------------- delete

    async def delete_secret(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        force = p.get("ForceDeleteWithoutRecovery", False)
        window = p.get("RecoveryWindowInDays")
        if force and window is not None:
            raise M.invalid_parameter(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
            )
        if window is None:
            window = 30
        if not force and not 7 <= window <= 30:
            raise M.invalid_parameter("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
        now = clock.now()

        def tx_fn(tx: Tx) -> dict[str, Any]:
            try:
                secret = find(tx, ctx, p["SecretId"], lock=True)
            except AWSError as err:
                if not force or err.code != "ResourceNotFoundException":
                    raise
                # AWS: "If you forcibly delete an already deleted or nonexistent secret, the
                # operation does not return ResourceNotFoundException" (DeleteSecret API reference,
                # ForceDeleteWithoutRecovery). The members answered then are # unverified.
                return self.gone(ctx, p["SecretId"], now)
            if secret.primary_arn is not None:
                raise M.invalid_parameter(M.REPLICA_WRITE)
            if secret.replicas:
                # AWS, errors quoted in gruntwork-io/cloud-nuke#435 and rebuy-de/aws-nuke#1127
                raise M.invalid_parameter(
                    "You can't delete secret "
                    + secret.arn
                    + " that still has replica regions ["
                    + ", ".join(r["Region"] for r in secret.replicas)
                    + "]."
                )
            cross_account.check_deletable(secret)
            if force:
                q.delete_secret_row(tx, secret.id)
                return {"ARN": secret.arn, "Name": secret.name, "DeletionDate": ms(now)}
            if secret.deleted_date is not None:
                raise M.invalid_request(M.MARKED_FOR_DELETION)
            secret.deleted_date = now
            secret.deletion_date = now + window * DAY
            q.update_secret(tx, secret, "deleted_date", "deletion_date")
            return {"ARN": secret.arn, "Name": secret.name, "DeletionDate": ms(secret.deletion_date)}

        return await self.db.write(tx_fn)

    @staticmethod
    def gone(ctx: RequestContext, secret_id: str, now: float) -> dict[str, Any]:
        """DeleteSecret's answer for a forced delete of a secret that is not there: the ARN asked
        for, or one made for the name (with a fresh suffix, as a new secret would get)."""
        ref = parse_secret_id(secret_id)
        if ref.arn is not None:
            # The name with its suffix: the ARN's last field (a name holds no colon, so any maxsplit from 6 agrees).
            named = ref.arn.split(":", 6)[-1]  # pragma: no mutate
            return {"ARN": ref.arn, "Name": named.rsplit("-", 1)[0], "DeletionDate": ms(now)}
        assert ref.name is not None
        return {
            "ARN": new_arn(ctx.partition, ctx.region, ctx.account_id, ref.name),
            "Name": ref.name,
            "DeletionDate": ms(now),
        }

    async def restore_secret(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> dict[str, Any]:
            secret = find(tx, ctx, p["SecretId"], lock=True)
            if secret.primary_arn is not None:
                raise M.invalid_parameter(M.REPLICA_WRITE)
            secret.deleted_date = None
            secret.deletion_date = None
            secret.last_changed_date = clock.now()
            q.update_secret(tx, secret, "deleted_date", "deletion_date", "last_changed_date")
            return {"ARN": secret.arn, "Name": secret.name}

        return await self.db.write(tx_fn)

    async def purge_due(self, limit: int = 100) -> list[SecretRow]:  # pragma: no mutate (a batch size)
        """Delete for good the secrets whose recovery window has ended; returns them."""
        now = clock.now()

        def tx_fn(tx: Tx) -> list[SecretRow]:
            gone = []
            for secret_id in q.due_for_purge(tx, now, limit):
                row = q.get_secret_by_id(tx, secret_id)
                if row is not None:
                    gone.append(row)
                q.delete_secret_row(tx, secret_id)
            return gone

        return await self.db.write(tx_fn)
