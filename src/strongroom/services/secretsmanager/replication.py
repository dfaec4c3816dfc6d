"""Replicas in other regions of the same strongroom.

A replica is a secret row in another region with the primary's name and ARN suffix, read-only,
rewritten from the primary inside the same transaction as every write of the primary, so a
replica is never behind an acknowledged write. Values are re-encrypted under the replica region's
key, bound to the replica's ARN.
"""

from __future__ import annotations

from typing import Any

from strongroom.context import RequestContext
from strongroom.services.secretsmanager import cross_account
from strongroom.services.secretsmanager import messages as M
from strongroom.services.secretsmanager.lookup import ServiceParts
from strongroom.services.secretsmanager.values import key_ref_for
from strongroom.store import Tx
from strongroom.store import secrets as q
from strongroom.store.secrets import SecretRow, VersionRow

__all__ = ["add", "describe", "parse_regions", "promote", "remove", "sync"]

_COPIED = (
    "description",
    "kms_key_id",
    "type",
    "last_changed_date",
    "rotation_enabled",
    "rotation_lambda_arn",
    "rotation_rules",
    "last_rotated_date",
    "next_rotation_date",
    "owning_service",
    "external_metadata",
    "external_role_arn",
    "tags",
    "tags_member",
    "deleted_date",
    "deletion_date",
)


def parse_regions(ctx: RequestContext, items: list[dict[str, Any]] | None) -> list[tuple[str, str | None]]:
    if not items:
        return []
    out: list[tuple[str, str | None]] = []
    for item in items:
        region = item.get("Region")
        if not region:
            raise M.invalid_parameter("A replica Region is required.")  # unverified
        if region == ctx.region:
            raise M.invalid_parameter(
                "Invalid replica region: a secret can't be replicated to its own region."
            )  # unverified
        if any(r == region for r, _ in out):
            raise M.invalid_parameter(f"Duplicate replica region {region}.")  # unverified
        out.append((region, item.get("KmsKeyId")))
    return out


def _replica_arn(primary_arn: str, region: str) -> str:
    parts = primary_arn.split(":", 6)
    parts[3] = region
    return ":".join(parts)


def _status(
    entries: list[dict[str, Any]], arn: str | None = None, accessed: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    """The ReplicationStatus entries; with ``accessed`` (replica ARN -> last access), each one
    read in its region carries its LastAccessedDate, which AWS omits for a replica never read
    (ReplicationStatusType in AWS's API reference)."""
    out = []
    for e in entries:
        entry = {k: v for k, v in e.items() if v is not None}
        when = None if accessed is None or arn is None else accessed.get(_replica_arn(arn, e["Region"]))
        if when is not None:
            entry["LastAccessedDate"] = when
        out.append(entry)
    return out


def replica_arns(secret: SecretRow) -> list[str]:
    """The ARNs of a primary's region replicas (those that exist: a Failed entry has none of its own)."""
    return [_replica_arn(secret.arn, e["Region"]) for e in secret.replicas if e.get("Status") == "InSync"]


def add(
    sm: ServiceParts, tx: Tx, primary: SecretRow, regions: list[tuple[str, str | None]], force: bool, now: float
) -> list[dict[str, Any]]:
    existing = {r["Region"] for r in primary.replicas}
    for region, kms_key_id in regions:
        if region in existing:
            raise M.invalid_parameter(f"The secret is already replicated to {region}.")  # unverified
        clash = q.find_secret(tx, primary.account_id, region, name=primary.name, lock=True)
        entry: dict[str, Any] = {"Region": region, "KmsKeyId": kms_key_id or "alias/aws/secretsmanager"}
        if clash is not None and not force:
            entry.update(
                Status="Failed",
                StatusMessage="Replication failed: Secret name already exists in the destination region.",
            )
            primary.replicas.append(entry)
            continue
        if clash is not None:
            q.delete_secret_row(tx, clash.id)
        replica = SecretRow(
            id=0,
            account_id=primary.account_id,
            region=region,
            name=primary.name,
            arn=_replica_arn(primary.arn, region),
            created_date=now,
            last_changed_date=now,
            primary_arn=primary.arn,
        )
        q.insert_secret(tx, replica)
        entry.update(Status="InSync", StatusMessage="Replication succeeded")
        primary.replicas.append(entry)
    q.update_secret(tx, primary, "replicas")
    sync(sm, tx, primary)
    return _status(primary.replicas)


def remove(sm: ServiceParts, tx: Tx, primary: SecretRow, regions: list[str]) -> list[dict[str, Any]]:
    keep = []
    for entry in primary.replicas:
        if entry["Region"] in regions:
            replica = q.secret_by_arn(tx, _replica_arn(primary.arn, entry["Region"]))
            if replica is not None and replica.primary_arn == primary.arn:
                q.delete_secret_row(tx, replica.id)
        else:
            keep.append(entry)
    primary.replicas = keep
    q.update_secret(tx, primary, "replicas")
    return _status(keep)


def sync(sm: ServiceParts, tx: Tx, primary: SecretRow) -> None:
    """Rewrite every in-sync replica from the primary: metadata, versions, labels, policies; and
    bring its cross-account replicas up to date (their values and labels only)."""
    if primary.cross_account_replicas:
        cross_account.sync(sm, tx, primary)
    if not primary.replicas:
        return
    versions = q.versions_of(tx, primary.id)
    stages = q.stages_of(tx, primary.id)
    policies = q.policies_of(tx, primary.id)
    for entry in primary.replicas:
        if entry.get("Status") != "InSync":
            continue
        replica = q.secret_by_arn(tx, _replica_arn(primary.arn, entry["Region"]))
        if replica is None or replica.primary_arn != primary.arn:
            continue
        for column in _COPIED:
            setattr(replica, column, getattr(primary, column))
        kms = entry.get("KmsKeyId")
        replica.kms_key_id = None if kms == "alias/aws/secretsmanager" else kms
        q.update_secret(tx, replica, *_COPIED)
        q.clear_contents(tx, replica.id)
        key_ref = key_ref_for(replica.kms_key_id, "aws", replica.region, replica.account_id)
        for version in versions:
            blob = None
            kind = version.value_kind
            if kind != 0:
                value = sm.cipher.decrypt(
                    tx,
                    primary.account_id,
                    primary.region,
                    version.key_ref or "",
                    primary.arn,
                    version.version_id,
                    kind,
                    version.ciphertext or b"",
                )
                kind, blob = sm.cipher.encrypt(
                    tx, replica.account_id, replica.region, key_ref, replica.arn, version.version_id, value
                )
            q.insert_version(
                tx,
                replica.id,
                VersionRow(
                    version.version_id,
                    version.created_date,
                    version.last_accessed_date,
                    kind,
                    key_ref if kind else None,
                    blob,
                ),
            )
        for stage, version_id in stages.items():
            q.set_stage(tx, replica.id, stage, version_id)
        for name, document in policies:
            q.put_policy(tx, replica.id, name, document, replica.last_changed_date)


def promote(sm: ServiceParts, tx: Tx, replica: SecretRow) -> None:
    """StopReplicationToReplica: the replica becomes a standalone secret."""
    if replica.primary_arn is None:
        raise M.invalid_request("The secret is not a replica.")  # unverified
    primary = q.secret_by_arn(tx, replica.primary_arn)
    if primary is not None:
        primary = q.get_secret_by_id(tx, primary.id, lock=True) or primary
        primary.replicas = [r for r in primary.replicas if r["Region"] != replica.region]
        q.update_secret(tx, primary, "replicas")
    replica.primary_arn = None
    q.update_secret(tx, replica, "primary_arn")


def describe(secret: SecretRow, accessed: dict[str, float] | None = None) -> dict[str, Any]:
    if secret.primary_arn is not None:
        return {"PrimaryRegion": secret.primary_arn.split(":")[3]}
    if secret.replicas:
        return {"PrimaryRegion": secret.region, "ReplicationStatus": _status(secret.replicas, secret.arn, accessed)}
    return {}
