"""The Secrets Manager operations.

Each operation takes the request's context and its parameters (AWS's wire names, already
validated against the model's shapes by the protocol layer) and returns the response members.
Each write runs as one transaction (``db.write``); the secret's row is locked first so that
concurrent writers to one secret serialize.

Timestamps are returned as epoch seconds (floats); the protocol layer writes them as AWS does.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from strongroom import clock
from strongroom.context import RequestContext
from strongroom.domain import labels as L
from strongroom.domain.names import INVALID_NAME_MESSAGE, is_valid_name, new_arn, parse_secret_id
from strongroom.domain.password import PasswordError, PasswordRules, generate_password
from strongroom.errors import AWSError
from strongroom.members import Members, without_none
from strongroom.services.secretsmanager import cross_account, policies, replication, tags
from strongroom.services.secretsmanager import messages as M
from strongroom.services.secretsmanager.listing import Lister
from strongroom.services.secretsmanager.lookup import authorize, find, owner_of, parse_id
from strongroom.services.secretsmanager.values import ValueCipher, key_ref_for
from strongroom.store import Conflict, Database, Tx
from strongroom.store import secrets as q
from strongroom.store.secrets import SecretRow, VersionRow

__all__ = ["SecretsManager"]

Handler = Callable[[RequestContext, dict[str, Any]], Awaitable[dict[str, Any]]]
DAY = 86400.0


def _midnight(t: float) -> float:
    return math.floor(t / DAY) * DAY


def _ms(t: float) -> float:
    """A date as AWS answers it: epoch seconds to the millisecond (AWS's documentation examples,
    e.g. "CreatedDate": 1523477145.713 in botocore's examples-1.json; LocalStack's aws-validated
    test_last_updated_date notes the three fraction digits). Stored dates keep their precision:
    only answers are cut, so ordering and pagination are unchanged."""
    return math.floor(t * 1000) / 1000


class SecretsManager:
    """All operations of the service, keyed by their AWS names in :attr:`handlers`."""

    def __init__(self, db: Database, cipher: ValueCipher, token_key: bytes) -> None:
        self.db = db
        self.cipher = cipher
        self.lister = Lister(db, token_key)
        self.rotation: Any = None  # set by the rotation engine when it is installed
        self.handlers: dict[str, Handler] = {
            "CreateSecret": self.create_secret,
            "GetSecretValue": self.get_secret_value,
            "BatchGetSecretValue": self.batch_get_secret_value,
            "PutSecretValue": self.put_secret_value,
            "UpdateSecret": self.update_secret,
            "DescribeSecret": self.describe_secret,
            "ListSecrets": self.list_secrets,
            "ListSecretVersionIds": self.list_secret_version_ids,
            "UpdateSecretVersionStage": self.update_secret_version_stage,
            "DeleteSecret": self.delete_secret,
            "RestoreSecret": self.restore_secret,
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "GetRandomPassword": self.get_random_password,
            "PutResourcePolicy": self.put_resource_policy,
            "GetResourcePolicy": self.get_resource_policy,
            "DeleteResourcePolicy": self.delete_resource_policy,
            "ListResourcePolicies": self.list_resource_policies,
            "ValidateResourcePolicy": self.validate_resource_policy,
            "ReplicateSecretToRegions": self.replicate_secret_to_regions,
            "RemoveRegionsFromReplication": self.remove_regions_from_replication,
            "StopReplicationToReplica": self.stop_replication_to_replica,
            "RotateSecret": self.rotate_secret,
            "CancelRotateSecret": self.cancel_rotate_secret,
            "AssociateCrossAccountReplica": self.associate_cross_account_replica,
            "DisassociateCrossAccountReplica": self.disassociate_cross_account_replica,
        }

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

    # -------------------------------------------------------------------------------- values

    @staticmethod
    def _value_of(params: dict[str, Any], required: bool) -> str | bytes | None:
        has_string = "SecretString" in params
        has_binary = "SecretBinary" in params
        if has_string and has_binary:
            raise M.invalid_parameter(M.BOTH_VALUES)
        if has_string:
            return params["SecretString"]  # type: ignore[no-any-return]
        if has_binary:
            return params["SecretBinary"]  # type: ignore[no-any-return]
        if required:
            # AWS: InvalidRequestException (quoted from AWS in public Terraform configs; moto asserts the same)
            raise M.invalid_request("You must provide either SecretString or SecretBinary.")
        return None

    @staticmethod
    def _token(params: dict[str, Any]) -> str:
        token = params.get("ClientRequestToken")
        if token is None:
            # A raw request without a token: the SDKs and the CLI always send one.
            # AWS, LocalStack snapshot test_no_client_request_token
            raise M.invalid_request("You must provide a ClientRequestToken value. We recommend a UUID-type value.")
        return token  # type: ignore[no-any-return]

    def _new_version(self, tx: Tx, secret: SecretRow, version_id: str, value: str | bytes, now: float) -> VersionRow:
        key_ref = key_ref_for(secret.kms_key_id, "aws", secret.region, secret.account_id)
        kind, blob = self.cipher.encrypt(tx, secret.account_id, secret.region, key_ref, secret.arn, version_id, value)
        return VersionRow(version_id, now, None, kind, key_ref, blob)

    def _store_value(
        self, tx: Tx, secret: SecretRow, token: str, value: str | bytes, stages: list[str], now: float
    ) -> list[str]:
        """Make version ``token`` with ``value`` and move ``stages`` to it; answer its labels.

        The same token with the same value is a retry and changes nothing; with another value it
        is refused, because versions never change. A value-less version (a rotation's
        placeholder) is filled.
        """
        existing = q.get_version(tx, secret.id, token)
        if existing is not None and existing.value_kind != 0:
            if not self.cipher.same_value(
                tx,
                secret.account_id,
                secret.region,
                existing.key_ref or "",
                secret.arn,
                token,
                existing.value_kind,
                existing.ciphertext or b"",
                value,
            ):
                # AWS, moto aws_verified test_put_different_secret_value_with_same_token
                raise M.exists(M.token_in_use(token, secret.arn))
            return sorted(s for s, v in q.stages_of(tx, secret.id).items() if v == token)
        version = self._new_version(tx, secret, token, value, now)
        if existing is None:
            q.insert_version(tx, secret.id, version)
        else:
            q.fill_version(tx, secret.id, version)
        self._move_stages(tx, secret, token, stages)
        self._retain(tx, secret.id, now)
        return sorted(s for s, v in q.stages_of(tx, secret.id).items() if v == token)

    def _move_stages(self, tx: Tx, secret: SecretRow, version_id: str, stages: list[str]) -> None:
        current = q.stages_of(tx, secret.id)
        for stage in stages:
            if stage == L.AWSCURRENT:
                old = current.get(L.AWSCURRENT)
                if old == version_id:
                    continue
                if old is not None:
                    q.set_stage(tx, secret.id, L.AWSPREVIOUS, old)
                q.set_stage(tx, secret.id, L.AWSCURRENT, version_id)
                # A new current value written by hand ends a rotation in progress: its pending
                # version would otherwise replace the value the user just set.
                pending = current.get(L.AWSPENDING)
                if pending is not None and pending != version_id and L.AWSPENDING not in stages:
                    q.remove_stage(tx, secret.id, L.AWSPENDING)
                    if self.rotation is not None:
                        self.rotation.abandoned(tx, secret, pending)
                if pending != version_id and self.rotation is not None:
                    # A value set by hand counts as a rotation for AutomaticallyAfterDays.
                    self.rotation.value_changed(tx, secret, clock.now())
            else:
                q.set_stage(tx, secret.id, stage, version_id)

    @staticmethod
    def _retain(tx: Tx, secret_id: int, now: float) -> None:
        """AWS keeps the 100 newest versions and all from the last 24 hours; older unlabelled go.

        Only versions past the 100th and older than a day are looked at, so a secret written
        thousands of times in a day costs one indexed count per write, not a scan of its versions.
        """
        rows = q.version_ids_before(tx, secret_id, now - L.RETENTION_SECONDS)
        if not rows:
            return
        newest = q.newest_version_ids(tx, secret_id, L.MAX_VERSIONS_KEPT)
        labelled = set(q.stages_of(tx, secret_id).values())
        for version_id in rows:
            if version_id not in newest and version_id not in labelled:
                q.delete_version(tx, secret_id, version_id)

    def _check_stages(self, stages: list[str]) -> None:
        if len(stages) > L.MAX_LABELS_PER_VERSION:
            raise AWSError(
                "LimitExceededException", "You can't attach more than 20 staging labels to a version."
            )  # unverified

    # ------------------------------------------------------------------------------- create

    async def create_secret(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        name = p["Name"]
        if not is_valid_name(name):
            # AWS, LocalStack snapshot test_invalid_secret_name: ValidationException
            raise AWSError("ValidationException", INVALID_NAME_MESSAGE)
        if "CrossAccountPrimaryARN" in p:
            return await cross_account.create_replica(self, ctx, p)
        value = self._value_of(p, required=False)
        token = self._token(p) if value is not None else p.get("ClientRequestToken")
        new_tags = tags.validate(p.get("Tags", []))
        replica_regions = replication.parse_regions(ctx, p.get("AddReplicaRegions"))
        now = clock.now()

        def tx_fn(tx: Tx) -> dict[str, Any]:
            authorize(tx, ctx, None, name)
            existing = q.find_secret(tx, ctx.account_id, ctx.region, name=name, lock=True)
            if existing is not None:
                if existing.deleted_date is not None:
                    raise M.invalid_request(M.SCHEDULED_NAME)
                if token is not None and value is not None:
                    version = q.get_version(tx, existing.id, token)
                    if version is not None and version.value_kind != 0:
                        if self.cipher.same_value(
                            tx,
                            existing.account_id,
                            existing.region,
                            version.key_ref or "",
                            existing.arn,
                            token,
                            version.value_kind,
                            version.ciphertext or b"",
                            value,
                        ):
                            # AWS, moto aws_verified test_create_duplicate_secret_with_same_token
                            return {"ARN": existing.arn, "Name": existing.name, "VersionId": token}
                        # AWS, moto aws_verified test_create_different_secret_with_same_token
                        raise M.exists(M.token_in_use(token, existing.arn))
                # AWS, moto aws_verified test_create_duplicate_secret_without_specifying_token
                raise M.exists(f"The operation failed because the secret {name} already exists.")
            row = SecretRow(
                id=0,
                account_id=ctx.account_id,
                region=ctx.region,
                name=name,
                arn=new_arn(ctx.partition, ctx.region, ctx.account_id, name),
                description=p.get("Description"),
                kms_key_id=p.get("KmsKeyId"),
                type=p.get("Type"),
                created_date=now,
                last_changed_date=now,
                tags=new_tags,
                tags_member=int(bool(new_tags)),
            )
            try:
                q.insert_secret(tx, row)
            except Conflict:
                raise M.exists(f"The operation failed because the secret {name} already exists.") from None
            out: dict[str, Any] = {"ARN": row.arn, "Name": row.name}
            if value is not None:
                assert token is not None
                self._store_value(tx, row, token, value, [L.AWSCURRENT], now)
                out["VersionId"] = token
            if replica_regions:
                out["ReplicationStatus"] = replication.add(
                    self, tx, row, replica_regions, p.get("ForceOverwriteReplicaSecret", False), now
                )
            return out

        return await self.db.write(tx_fn)

    # ---------------------------------------------------------------------------------- read

    async def get_secret_value(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        secret_id = p["SecretId"]
        version_id = p.get("VersionId")
        stage = p.get("VersionStage")
        ref = parse_id(secret_id)
        owner = owner_of(ctx, ref)
        if owner is None:
            raise M.not_found()

        def tx_fn(tx: Tx) -> tuple[dict[str, Any], SecretRow, str, bool]:
            found = q.value_for(tx, owner, ctx.region, ref.name, ref.arn, version_id, stage)
            authorize(tx, ctx, None if found is None else found[0], secret_id, None if found is None else found[3])
            if found is None:
                raise M.not_found()
            secret, version, version_labels, _ = found
            # AWS: a secret under the account's default key cannot be read from another account,
            # whatever the policies say (the managed key's policy cannot be shared).
            cross_account.check_value_access(ctx, secret)
            if secret.deleted_date is not None:
                raise M.invalid_request(M.MARKED_FOR_DELETION)
            if version is None or version.value_kind == 0:
                if version_id is not None:
                    raise AWSError(
                        "ResourceNotFoundException",
                        f"Secrets Manager can't find the specified secret value for VersionId: {version_id}",
                    )
                raise AWSError(
                    "ResourceNotFoundException",
                    f"Secrets Manager can't find the specified secret value for staging label: {stage or L.AWSCURRENT}",
                )
            if stage is not None and version_id is not None and stage not in version_labels:
                # AWS, LocalStack snapshot test_get_secret_value_errors: InvalidRequestException
                raise M.invalid_request("You provided a VersionStage that is not associated to the provided VersionId.")
            value = self.cipher.decrypt(
                tx,
                secret.account_id,
                secret.region,
                version.key_ref or "",
                secret.arn,
                version.version_id,
                version.value_kind,
                version.ciphertext or b"",
            )
            out: dict[str, Any] = {
                "ARN": secret.arn,
                "Name": secret.name,
                "VersionId": version.version_id,
                "VersionStages": version_labels,
                "CreatedDate": _ms(version.created_date),
            }
            out["SecretString" if isinstance(value, str) else "SecretBinary"] = value
            today = _midnight(clock.now())
            stale = version.last_accessed_date != today or secret.last_accessed_date != today
            return out, secret, version.version_id, stale

        # One statement decides (secret, version, labels, "has a policy"): no snapshot needed; a
        # policy document or key read after it may only be newer, as if the call came later.
        out, secret, vid, stale = await self.db.read(tx_fn, snapshot=False)
        if stale:
            await self._touch(secret.id, vid)
        return out

    async def _touch(self, secret_id: int, version_id: str) -> None:
        """Record today's date as the last access, at most once a day per version."""
        today = _midnight(clock.now())

        def tx_fn(tx: Tx) -> None:
            q.touch(tx, secret_id, version_id, today)

        await self.db.write(tx_fn)

    async def batch_get_secret_value(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        ids = p.get("SecretIdList")
        filters = p.get("Filters")
        if ids is not None and filters is not None:
            raise M.invalid_parameter(
                "Either 'SecretIdList' or 'Filters' must be provided, but not both."
            )  # unverified
        if ids is None and filters is None:
            raise M.invalid_parameter("Either 'SecretIdList' or 'Filters' must be provided.")  # unverified
        values: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        out: dict[str, Any] = {}
        if ids is not None:
            if "MaxResults" in p:
                raise M.invalid_parameter("'MaxResults' is only valid when 'Filters' are provided.")  # unverified
            if len(ids) > 20:
                raise M.invalid_parameter("You can retrieve at most 20 secrets in one call.")  # unverified
            wanted = list(ids)
        else:
            page = await self.lister.page(
                ctx,
                {"Filters": filters, "MaxResults": p.get("MaxResults", 20), "NextToken": p.get("NextToken")},
                with_stages=False,
            )
            wanted = [s.arn for s in page.rows]
            if page.next_token:
                out["NextToken"] = page.next_token
        one = dataclasses.replace(ctx, operation="GetSecretValue", params={"SecretId": None})
        for secret_id in wanted:
            try:
                values.append(await self.get_secret_value(one, {"SecretId": secret_id}))
            except AWSError as err:
                errors.append({"SecretId": secret_id, "ErrorCode": err.code, "Message": err.message})
        out["SecretValues"] = values
        out["Errors"] = errors
        return out

    # --------------------------------------------------------------------------------- write

    async def put_secret_value(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        value = self._value_of(p, required=True)
        assert value is not None
        token = self._token(p)
        stages = p.get("VersionStages") or [L.AWSCURRENT]
        self._check_stages(stages)
        now = clock.now()

        def tx_fn(tx: Tx) -> dict[str, Any]:
            secret = self.find_live(tx, ctx, p["SecretId"])
            cross_account.check_value_access(ctx, secret)
            labels = self._store_value(tx, secret, token, value, stages, now)
            secret.last_changed_date = now
            q.update_secret(tx, secret, "last_changed_date")
            replication.sync(self, tx, secret)
            return {"ARN": secret.arn, "Name": secret.name, "VersionId": token, "VersionStages": labels}

        return await self.db.write(tx_fn)

    async def update_secret(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        value = self._value_of(p, required=False)
        token = self._token(p) if value is not None else None
        now = clock.now()

        def tx_fn(tx: Tx) -> dict[str, Any]:
            secret = self.find_live(tx, ctx, p["SecretId"])
            if value is not None:
                cross_account.check_value_access(ctx, secret)
            changed = ["last_changed_date"]
            if "Description" in p:
                secret.description = p["Description"]
                changed.append("description")
            if "Type" in p:
                secret.type = p["Type"]
                changed.append("type")
            if "KmsKeyId" in p and p["KmsKeyId"] != secret.kms_key_id:
                secret.kms_key_id = p["KmsKeyId"] or None
                changed.append("kms_key_id")
                self._reencrypt_labelled(tx, secret)
            out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
            if value is not None:
                assert token is not None
                self._store_value(tx, secret, token, value, [L.AWSCURRENT], now)
                out["VersionId"] = token
            secret.last_changed_date = now
            q.update_secret(tx, secret, *changed)
            replication.sync(self, tx, secret)
            return out

        return await self.db.write(tx_fn)

    def _reencrypt_labelled(self, tx: Tx, secret: SecretRow) -> None:
        """A new KmsKeyId re-encrypts the labelled versions; older ones keep their old key."""
        key_ref = key_ref_for(secret.kms_key_id, "aws", secret.region, secret.account_id)
        for version_id in set(q.stages_of(tx, secret.id).values()):
            version = q.get_version(tx, secret.id, version_id)
            if version is None or version.value_kind == 0 or version.key_ref == key_ref:
                continue
            value = self.cipher.decrypt(
                tx,
                secret.account_id,
                secret.region,
                version.key_ref or "",
                secret.arn,
                version_id,
                version.value_kind,
                version.ciphertext or b"",
            )
            _kind, blob = self.cipher.encrypt(
                tx, secret.account_id, secret.region, key_ref, secret.arn, version_id, value
            )
            q.rewrap_version(tx, secret.id, version_id, key_ref, blob)

    async def update_secret_version_stage(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        stage = p["VersionStage"]
        move_to = p.get("MoveToVersionId")
        remove_from = p.get("RemoveFromVersionId")
        now = clock.now()

        def tx_fn(tx: Tx) -> dict[str, Any]:
            secret = self.find_live(tx, ctx, p["SecretId"])
            current = q.stages_of(tx, secret.id)
            holder = current.get(stage)
            if remove_from is not None and holder != remove_from:
                raise M.invalid_parameter(
                    f"The parameter RemoveFromVersionId is invalid. Staging label {stage} is not attached "
                    f"to version {remove_from}."
                )  # unverified
            if move_to is not None:
                target = q.get_version(tx, secret.id, move_to)
                if target is None:
                    raise M.invalid_parameter(
                        f"The parameter MoveToVersionId is invalid. Version {move_to} does not exist."
                    )  # unverified
                if holder is not None and holder != move_to and remove_from is None:
                    raise M.invalid_parameter(
                        f"The parameter RemoveFromVersionId can't be empty. Staging label {stage} is currently "
                        f"attached to version {holder}, so you must explicitly reference that version in "
                        f"RemoveFromVersionId."
                    )
                labels_on_target = [s for s, v in current.items() if v == move_to]
                if stage not in labels_on_target and len(labels_on_target) >= L.MAX_LABELS_PER_VERSION:
                    self._check_stages(labels_on_target + [stage])
                if stage == L.AWSCURRENT:
                    if holder != move_to:
                        if holder is not None:
                            q.set_stage(tx, secret.id, L.AWSPREVIOUS, holder)
                        q.set_stage(tx, secret.id, L.AWSCURRENT, move_to)
                else:
                    q.set_stage(tx, secret.id, stage, move_to)
            elif remove_from is not None:
                if stage == L.AWSCURRENT:
                    raise M.invalid_parameter(
                        "You can only move staging label AWSCURRENT to a different secret version. It can't be "
                        "completely detached."
                    )  # unverified
                q.remove_stage(tx, secret.id, stage)
            secret.last_changed_date = now
            q.update_secret(tx, secret, "last_changed_date")
            replication.sync(self, tx, secret)
            return {"ARN": secret.arn, "Name": secret.name}

        return await self.db.write(tx_fn)

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
                return {"ARN": secret.arn, "Name": secret.name, "DeletionDate": _ms(now)}
            if secret.deleted_date is not None:
                raise M.invalid_request(M.MARKED_FOR_DELETION)
            secret.deleted_date = now
            secret.deletion_date = now + window * DAY
            q.update_secret(tx, secret, "deleted_date", "deletion_date")
            return {"ARN": secret.arn, "Name": secret.name, "DeletionDate": _ms(secret.deletion_date)}

        return await self.db.write(tx_fn)

    @staticmethod
    def gone(ctx: RequestContext, secret_id: str, now: float) -> dict[str, Any]:
        """DeleteSecret's answer for a forced delete of a secret that is not there: the ARN asked
        for, or one made for the name (with a fresh suffix, as a new secret would get)."""
        ref = parse_secret_id(secret_id)
        if ref.arn is not None:
            return {"ARN": ref.arn, "Name": ref.arn.split(":", 6)[-1].rsplit("-", 1)[0], "DeletionDate": _ms(now)}
        assert ref.name is not None
        return {
            "ARN": new_arn(ctx.partition, ctx.region, ctx.account_id, ref.name),
            "Name": ref.name,
            "DeletionDate": _ms(now),
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

    async def purge_due(self, limit: int = 100) -> list[SecretRow]:
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

        return await self.db.write(tx_fn)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------------------ describe

    def describe(self, tx: Tx, secret: SecretRow) -> dict[str, Any]:
        stages = q.stages_of(tx, secret.id)
        by_version: dict[str, list[str]] = {}
        for stage, vid in sorted(stages.items()):
            by_version.setdefault(vid, []).append(stage)
        accessed = q.last_accessed_by_arn(tx, replication.replica_arns(secret)) if secret.replicas else None
        out = self.entry(secret, by_version, accessed)
        if by_version:
            out["VersionIdsToStages"] = out.pop("SecretVersionsToStages")
        out.update(cross_account.describe(secret))
        return out

    @staticmethod
    def entry(
        secret: SecretRow, by_version: dict[str, list[str]], replica_access: dict[str, float] | None = None
    ) -> dict[str, Any]:
        """The members DescribeSecret and ListSecrets share; only those with a value (set one by
        one: a page of ListSecrets makes 100 of these, and building all nineteen to drop the
        empty ones cost twice as much). ``replica_access``: replica ARN -> last access, for a
        primary's ReplicationStatus."""
        out = Members(ARN=secret.arn, Name=secret.name)  # no None anywhere: serialized without the protocol's walk
        if secret.type is not None:
            out["Type"] = secret.type
        if secret.description:  # AWS answers no Description for "" (LocalStack snapshot
            out["Description"] = secret.description  # test_create_secret_version_from_empty_secret)
        if secret.kms_key_id is not None:
            out["KmsKeyId"] = secret.kms_key_id
        if secret.rotation_enabled is not None:
            out["RotationEnabled"] = bool(secret.rotation_enabled)
        if secret.rotation_lambda_arn is not None:
            out["RotationLambdaARN"] = secret.rotation_lambda_arn
        if secret.rotation_rules is not None:
            out["RotationRules"] = without_none(secret.rotation_rules)
        if secret.external_metadata is not None:
            out["ExternalSecretRotationMetadata"] = without_none(secret.external_metadata)
        if secret.external_role_arn is not None:
            out["ExternalSecretRotationRoleArn"] = secret.external_role_arn
        if secret.last_rotated_date is not None:
            out["LastRotatedDate"] = _ms(secret.last_rotated_date)
        if secret.last_changed_date is not None:
            out["LastChangedDate"] = _ms(secret.last_changed_date)
        if secret.last_accessed_date is not None:
            out["LastAccessedDate"] = secret.last_accessed_date
        if secret.deleted_date is not None and secret.deletion_date is not None:
            out["DeletedDate"] = _ms(secret.deletion_date)
        if secret.rotation_enabled and secret.next_rotation_date is not None:
            out["NextRotationDate"] = _ms(secret.next_rotation_date)
        if secret.tags or secret.tags_member:  # stored as parsed: the protocol drops nulls on the way in
            # AWS: no Tags for a secret never tagged, "Tags": [] once its last tag is removed
            # (LocalStack snapshot test_secret_tags, describe_secret and describe_secret_4).
            out["Tags"] = secret.tags
        if by_version:  # a secret without a value has none (test_create_secret_version_from_empty_secret)
            out["SecretVersionsToStages"] = by_version
        if secret.owning_service is not None:
            out["OwningService"] = secret.owning_service
        if secret.created_date is not None:
            out["CreatedDate"] = _ms(secret.created_date)
        if secret.primary_arn is not None or secret.replicas:
            out.update(replication.describe(secret, replica_access))
        return out

    async def describe_secret(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self.db.read(lambda tx: self.describe(tx, find(tx, ctx, p["SecretId"])))

    async def list_secrets(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        page = await self.lister.page(ctx, p, with_stages=True)
        out: dict[str, Any] = {"SecretList": [self.entry(s, page.stages.get(s.id, {})) for s in page.rows]}
        if page.next_token:
            out["NextToken"] = page.next_token
        return out

    async def list_secret_version_ids(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        include_deprecated = p.get("IncludeDeprecated", False)
        limit = p.get("MaxResults") or 100
        start = self.lister.open_offset_token(p.get("NextToken"), "versions", p["SecretId"])

        def tx_fn(tx: Tx) -> dict[str, Any]:
            secret = find(tx, ctx, p["SecretId"])
            stages = q.stages_of(tx, secret.id)
            labels: dict[str, list[str]] = {}
            for stage, vid in sorted(stages.items()):
                labels.setdefault(vid, []).append(stage)
            entries = []
            for version in q.versions_of(tx, secret.id):
                if version.value_kind == 0:
                    continue
                if version.version_id not in labels and not include_deprecated:
                    continue
                entry: dict[str, Any] = {"VersionId": version.version_id, "CreatedDate": _ms(version.created_date)}
                if version.version_id in labels:
                    entry["VersionStages"] = labels[version.version_id]
                if version.last_accessed_date is not None:
                    entry["LastAccessedDate"] = version.last_accessed_date
                if version.key_ref:
                    entry["KmsKeyIds"] = [self._version_key_name(secret, version.key_ref)]
                entries.append(entry)
            out: dict[str, Any] = {"Versions": entries[start : start + limit], "ARN": secret.arn, "Name": secret.name}
            if start + limit < len(entries):
                out["NextToken"] = self.lister.offset_token("versions", p["SecretId"], start + limit)
            return out

        return await self.db.read(tx_fn)

    @staticmethod
    def _version_key_name(secret: SecretRow, key_ref: str) -> str:
        """A version's key as ListSecretVersionIds names it: AWS says ``DefaultEncryptionKey`` for
        the account's default key (LocalStack snapshot test_deprecated_secret_version_stage), and
        the secret's KmsKeyId for its customer key; a version left under another key by a change of
        KmsKeyId shows that key's ARN."""
        if key_ref.endswith(":alias/aws/secretsmanager"):
            return "DefaultEncryptionKey"
        if secret.kms_key_id and key_ref_for(secret.kms_key_id, "aws", secret.region, secret.account_id) == key_ref:
            return secret.kms_key_id
        return key_ref

    # ---------------------------------------------------------------------------------- tags

    async def tag_resource(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        new_tags = tags.validate(p["Tags"])

        def tx_fn(tx: Tx) -> dict[str, Any]:
            secret = self.find_live(tx, ctx, p["SecretId"], own_metadata=True)
            secret.tags = tags.merge(secret.tags, new_tags)
            secret.tags_member = 1  # from now on "Tags" is answered, [] once the last tag is removed
            secret.last_changed_date = clock.now()
            q.update_secret(tx, secret, "tags", "tags_member", "last_changed_date")
            replication.sync(self, tx, secret)
            return {}

        return await self.db.write(tx_fn)

    async def untag_resource(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        keys = tags.validate_keys(p["TagKeys"])

        def tx_fn(tx: Tx) -> dict[str, Any]:
            secret = self.find_live(tx, ctx, p["SecretId"], own_metadata=True)
            secret.tags = [t for t in secret.tags if t["Key"] not in keys]
            secret.last_changed_date = clock.now()
            q.update_secret(tx, secret, "tags", "last_changed_date")
            replication.sync(self, tx, secret)
            return {}

        return await self.db.write(tx_fn)

    # ------------------------------------------------------------------------------ password

    async def get_random_password(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        rules = PasswordRules(
            length=p.get("PasswordLength", 32),
            exclude_characters=p.get("ExcludeCharacters", ""),
            exclude_numbers=p.get("ExcludeNumbers", False),
            exclude_punctuation=p.get("ExcludePunctuation", False),
            exclude_uppercase=p.get("ExcludeUppercase", False),
            exclude_lowercase=p.get("ExcludeLowercase", False),
            include_space=p.get("IncludeSpace", False),
            require_each_included_type=p.get("RequireEachIncludedType", True),
        )
        try:
            return {"RandomPassword": generate_password(rules)}
        except PasswordError as exc:
            raise M.invalid_parameter(str(exc)) from None

    # ------------------------------------------------------------------------------ policies

    async def put_resource_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        document = p["ResourcePolicy"]
        policies.check_syntax(document)
        if p.get("BlockPublicPolicy", False) and policies.is_public(document):
            raise AWSError(
                "PublicPolicyException",
                "This resource policy contains a statement that grants public access to the resource.",
            )  # unverified
        name = p.get("PolicyName", "default")

        def tx_fn(tx: Tx) -> dict[str, Any]:
            secret = self.find_live(tx, ctx, p["SecretId"], own_metadata=True)
            q.put_policy(tx, secret.id, name, document, clock.now())
            replication.sync(self, tx, secret)
            out = {"ARN": secret.arn, "Name": secret.name}
            if "PolicyName" in p:
                out["PolicyName"] = name
            return out

        return await self.db.write(tx_fn)

    async def get_resource_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> dict[str, Any]:
            secret = find(tx, ctx, p["SecretId"])
            out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
            wanted = p.get("PolicyName", "default")
            for name, document in q.policies_of(tx, secret.id):
                if name == wanted:
                    out["ResourcePolicy"] = document
                    if "PolicyName" in p:
                        out["PolicyName"] = name
            return out

        return await self.db.read(tx_fn)

    async def delete_resource_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> dict[str, Any]:
            secret = self.find_live(tx, ctx, p["SecretId"], own_metadata=True)
            q.delete_policy(tx, secret.id, p.get("PolicyName"))
            replication.sync(self, tx, secret)
            out = {"ARN": secret.arn, "Name": secret.name}
            if "PolicyName" in p:
                out["PolicyName"] = p["PolicyName"]
            return out

        return await self.db.write(tx_fn)

    async def list_resource_policies(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        limit = p.get("MaxResults") or 100
        start = self.lister.open_offset_token(p.get("NextToken"), "policies", p["SecretId"])

        def tx_fn(tx: Tx) -> dict[str, Any]:
            secret = find(tx, ctx, p["SecretId"])
            names = [name for name, _doc in q.policies_of(tx, secret.id)]
            out: dict[str, Any] = {"ResourcePolicies": [{"PolicyName": n} for n in names[start : start + limit]]}
            if start + limit < len(names):
                out["NextToken"] = self.lister.offset_token("policies", p["SecretId"], start + limit)
            return out

        return await self.db.read(tx_fn)

    async def validate_resource_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        if "SecretId" in p:
            await self.db.read(lambda tx: find(tx, ctx, p["SecretId"]))
        errors = policies.validation_errors(p["ResourcePolicy"])
        # AWS sends ValidationErrors also when empty (botocore's examples-1.json, AWS's
        # documentation example for ValidateResourcePolicy: "ValidationErrors": []).
        return {"PolicyValidationPassed": not errors, "ValidationErrors": errors}

    # --------------------------------------------------------------------------- replication

    async def replicate_secret_to_regions(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        regions = replication.parse_regions(ctx, p["AddReplicaRegions"])
        now = clock.now()

        def tx_fn(tx: Tx) -> dict[str, Any]:
            secret = self.find_live(tx, ctx, p["SecretId"])
            status = replication.add(self, tx, secret, regions, p.get("ForceOverwriteReplicaSecret", False), now)
            return {"ARN": secret.arn, "ReplicationStatus": status}

        return await self.db.write(tx_fn)

    async def remove_regions_from_replication(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> dict[str, Any]:
            secret = self.find_live(tx, ctx, p["SecretId"])
            status = replication.remove(self, tx, secret, p["RemoveReplicaRegions"])
            return {"ARN": secret.arn, "ReplicationStatus": status}

        return await self.db.write(tx_fn)

    async def stop_replication_to_replica(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> dict[str, Any]:
            secret = self.find_live(tx, ctx, p["SecretId"], primary_only=False)
            if secret.cross_account_primary is not None:
                cross_account.stop(self, tx, ctx, secret)
            else:
                replication.promote(self, tx, secret)
            return {"ARN": secret.arn}

        return await self.db.write(tx_fn)

    async def associate_cross_account_replica(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await cross_account.associate(self, ctx, p)

    async def disassociate_cross_account_replica(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await cross_account.disassociate(self, ctx, p)

    # ------------------------------------------------------------------------------ rotation

    async def rotate_secret(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        if self.rotation is None:
            raise AWSError("InvalidRequestException", "Rotation is not available on this strongroom server yet.")
        return await self.rotation.rotate_secret(ctx, p)  # type: ignore[no-any-return]

    async def cancel_rotate_secret(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        if self.rotation is None:
            raise AWSError("InvalidRequestException", "Rotation is not available on this strongroom server yet.")
        return await self.rotation.cancel_rotate_secret(ctx, p)  # type: ignore[no-any-return]


def new_token() -> str:
    return str(uuid.uuid4())
