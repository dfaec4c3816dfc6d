"""What every part of the Secrets Manager service shares: its database, its value cipher, its
lister, the rotation engine (when installed), and :meth:`ServiceBase.find_live`, the look-up of a
secret a write may change.

The operations live in mixins over this base (``describing``, ``lifecycle``, ``metadata``,
``rotating``) and in :mod:`~strongroom.services.secretsmanager.service`, which puts them together.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from strongroom.context import RequestContext
from strongroom.services.secretsmanager import cross_account
from strongroom.services.secretsmanager import messages as M
from strongroom.services.secretsmanager.listing import Lister
from strongroom.services.secretsmanager.lookup import find
from strongroom.services.secretsmanager.values import ValueCipher
from strongroom.store import Database, Tx
from strongroom.store.secrets import SecretRow

if TYPE_CHECKING:
    from strongroom.rotation.engine import RotationEngine

__all__ = ["DAY", "ServiceBase", "midnight", "ms"]

DAY = 86400.0


def midnight(t: float) -> float:
    return math.floor(t / DAY) * DAY


def ms(t: float) -> float:
    """A date as AWS answers it: epoch seconds to the millisecond (AWS's documentation examples,
    e.g. "CreatedDate": 1523477145.713 in botocore's examples-1.json; LocalStack's aws-validated
    test_last_updated_date notes the three fraction digits). Stored dates keep their precision:
    only answers are cut, so ordering and pagination are unchanged."""
    return math.floor(t * 1000) / 1000


class ServiceBase:
    db: Database
    cipher: ValueCipher
    lister: Lister
    rotation: RotationEngine | None

    # ------------------------------------------------------------------------------ look-ups

    def find_live(
        self,
        tx: Tx,
        ctx: RequestContext,
        secret_id: str,
        lock: bool = True,
        primary_only: bool = True,
        own_metadata: bool = False,
    ) -> SecretRow:
        """A secret a write may change: not scheduled for deletion, not a replica. ``own_metadata``:
        the write is of tags or resource policies, which a cross-account replica keeps as its own."""
        row = find(tx, ctx, secret_id, lock=lock)
        if row.deleted_date is not None:
            raise M.invalid_request(M.MARKED_FOR_DELETION)
        if primary_only and row.primary_arn is not None:
            raise M.invalid_parameter(M.REPLICA_WRITE)
        if primary_only and not own_metadata:
            cross_account.check_writable(row)
        return row
