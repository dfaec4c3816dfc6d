"""The Secrets Manager operations.

Each operation takes the request's context and its parameters (AWS's wire names, already
validated against the model's shapes by the protocol layer) and returns the response members.
Each write runs as one transaction (``db.write``); the secret's row is locked first so that
concurrent writers to one secret serialize.

Timestamps are returned as epoch seconds (floats); the protocol layer writes them as AWS does.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from strongroom import clock
from strongroom.context import RequestContext
from strongroom.domain import labels as L
from strongroom.domain.names import INVALID_NAME_MESSAGE, is_valid_name, new_arn
from strongroom.errors import AWSError
from strongroom.services.secretsmanager import cross_account, replication, tags
from strongroom.services.secretsmanager import messages as M
from strongroom.services.secretsmanager.base import midnight, ms
from strongroom.services.secretsmanager.describing import DescribeOperations
from strongroom.services.secretsmanager.lifecycle import LifecycleOperations
from strongroom.services.secretsmanager.listing import Lister
from strongroom.services.secretsmanager.lookup import authorize, owner_of, parse_id
from strongroom.services.secretsmanager.metadata import MetadataOperations
from strongroom.services.secretsmanager.rotating import RotationOperations
from strongroom.services.secretsmanager.values import ValueCipher, key_ref_for
from strongroom.store import Conflict, Database, Tx
from strongroom.store import secrets as q
from strongroom.store.secrets import SecretRow

if TYPE_CHECKING:  # pragma: no mutate (an import for annotations only: made at run time it changes nothing)
    from strongroom.rotation.engine import RotationEngine

__all__ = ["SecretsManager"]

Handler = Callable[[RequestContext, dict[str, Any]], Awaitable[dict[str, Any]]]


class SecretsManager(DescribeOperations, LifecycleOperations, MetadataOperations, RotationOperations):
    """All operations of the service, keyed by their AWS names in :attr:`handlers`."""

    def __init__(self, db: Database, cipher: ValueCipher, token_key: bytes) -> None:
        self.db = db
        self.cipher = cipher
        self.lister = Lister(db, token_key)
        self.rotation: RotationEngine | None = None  # the rotation engine, once the server installed one
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
        version = self.cipher.new_version(tx, secret, token, value, now)
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
                id=0,  # pragma: no mutate (replaced by the id the INSERT returns)
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
                "CreatedDate": ms(version.created_date),
            }
            out["SecretString" if isinstance(value, str) else "SecretBinary"] = value
            today = midnight(clock.now())
            stale = (version.last_accessed_date, secret.last_accessed_date) != (today, today)
            return out, secret, version.version_id, stale

        # One statement decides (secret, version, labels, "has a policy"): no snapshot needed; a
        # policy document or key read after it may only be newer, as if the call came later. (A
        # snapshot would answer the same, at the cost of BEGIN/COMMIT: an equivalent mutant.)
        out, secret, vid, stale = await self.db.read(tx_fn, snapshot=False)  # pragma: no mutate
        if stale:
            await self._touch(secret.id, vid)
        return out

    async def _touch(self, secret_id: int, version_id: str) -> None:
        """Record today's date as the last access, at most once a day per version."""
        today = midnight(clock.now())

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
                with_stages=False,  # pragma: no mutate (only the ARNs are used: labels change no answer)
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


def new_token() -> str:
    return str(uuid.uuid4())
