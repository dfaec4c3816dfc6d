"""DescribeSecret, ListSecrets and ListSecretVersionIds: a secret's metadata as AWS answers it.

Members are set only when they have a value (AWS omits empty ones); dates are cut to the
millisecond on the way out (:func:`~strongroom.services.secretsmanager.base.ms`).
"""

from __future__ import annotations

from typing import Any

from strongroom.context import RequestContext
from strongroom.members import Members, without_none
from strongroom.services.secretsmanager import cross_account, replication
from strongroom.services.secretsmanager.base import ServiceBase, ms
from strongroom.services.secretsmanager.lookup import find
from strongroom.services.secretsmanager.values import key_ref_for
from strongroom.store import Tx
from strongroom.store import secrets as q
from strongroom.store.secrets import SecretRow

__all__ = ["DescribeOperations"]


class DescribeOperations(ServiceBase):
    """The operations that describe secrets and their versions."""

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
            out["LastRotatedDate"] = ms(secret.last_rotated_date)
        if secret.last_changed_date is not None:
            out["LastChangedDate"] = ms(secret.last_changed_date)
        if secret.last_accessed_date is not None:
            out["LastAccessedDate"] = secret.last_accessed_date
        if secret.deleted_date is not None and secret.deletion_date is not None:
            out["DeletedDate"] = ms(secret.deletion_date)
        if secret.rotation_enabled and secret.next_rotation_date is not None:
            out["NextRotationDate"] = ms(secret.next_rotation_date)
        if secret.tags or secret.tags_member:  # stored as parsed: the protocol drops nulls on the way in
            # AWS: no Tags for a secret never tagged, "Tags": [] once its last tag is removed
            # (LocalStack snapshot test_secret_tags, describe_secret and describe_secret_4).
            out["Tags"] = secret.tags
        if by_version:  # a secret without a value has none (test_create_secret_version_from_empty_secret)
            out["SecretVersionsToStages"] = by_version
        if secret.owning_service is not None:
            out["OwningService"] = secret.owning_service
        if secret.created_date is not None:
            out["CreatedDate"] = ms(secret.created_date)
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
                entry: dict[str, Any] = {"VersionId": version.version_id, "CreatedDate": ms(version.created_date)}
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
