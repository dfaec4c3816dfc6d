"""The operations on what surrounds a secret's value: tags, resource policies, replicas (in other
regions and, through ``cross_account``, other accounts), and GetRandomPassword.

Tags and resource policies are a cross-account replica's own (``own_metadata``); every change of
a primary is copied to its replicas in the same transaction (``replication.sync``).
"""

from __future__ import annotations

from typing import Any

from strongroom import clock
from strongroom.context import RequestContext
from strongroom.domain.password import PasswordError, PasswordRules, generate_password
from strongroom.errors import AWSError
from strongroom.services.secretsmanager import cross_account, policies, replication, tags
from strongroom.services.secretsmanager import messages as M
from strongroom.services.secretsmanager.base import ServiceBase
from strongroom.services.secretsmanager.lookup import find
from strongroom.store import Tx
from strongroom.store import secrets as q

__all__ = ["MetadataOperations"]


class MetadataOperations(ServiceBase):
    """Tags, resource policies, replication and random passwords."""

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
