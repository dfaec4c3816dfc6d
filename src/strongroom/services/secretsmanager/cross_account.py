"""Replicas in another account of the same strongroom (AWS's cross-account replication).

The model is AWS's (docs/operations.md, "Replication between accounts", cites the pages):

* the **replica account** creates the replica: ``CreateSecret`` with ``CrossAccountPrimaryARN``,
  no value, its own customer managed ``KmsKeyId``. strongroom attaches the managed resource policy
  ``cross-account-replication``, which lets the primary's account accept the replication
  (``secretsmanager:AcceptCrossAccountReplication``): that is the replica side's consent, and the
  replica account can withdraw it by deleting the policy;
* the **primary account** associates it (``AssociateCrossAccountReplica``): the caller needs
  ``AssociateCrossAccountReplica`` and ``GetSecretValue`` on the primary, and
  ``AcceptCrossAccountReplication`` on the replica, where both sides must allow (the caller's own
  policies and the replica's resource policy), as for any cross-account call;
* from then on every write of the primary copies its versions (values re-encrypted under the
  replica's key, bound to the replica's ARN) and their staging labels into the replica, in the
  same transaction, exactly when region replicas are rewritten (:func:`replication.sync` calls
  :func:`sync`). The replica's own metadata (tags, description, policies, key) stays its own;
* either side can end the link: ``DisassociateCrossAccountReplica`` on the primary leaves the
  replica ``Detached`` (still a replica: read-only, not deletable); ``StopReplicationToReplica`` on
  the replica makes it standalone, removes the managed policy, and leaves the primary's entry
  ``Detached`` until the primary disassociates it.

Each side keeps its own view of the link (``cross_account_primary`` on the replica,
``cross_account_replicas`` on the primary), because each side changes it on its own.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from strongroom import clock
from strongroom.context import RequestContext
from strongroom.domain import labels as L
from strongroom.domain.names import new_arn, parse_secret_id
from strongroom.errors import AWSError
from strongroom.services.secretsmanager import lookup, policies, tags
from strongroom.services.secretsmanager import messages as M
from strongroom.services.secretsmanager.lookup import ServiceParts
from strongroom.services.secretsmanager.values import key_ref_for
from strongroom.store import Conflict, Tx
from strongroom.store import secrets as q
from strongroom.store.secrets import SecretRow, VersionRow

__all__ = [
    "MANAGED_POLICY",
    "associate",
    "check_deletable",
    "check_value_access",
    "check_writable",
    "create_replica",
    "describe",
    "disassociate",
    "managed_policy",
    "stop",
    "sync",
]

MANAGED_POLICY = "cross-account-replication"
PENDING, IN_SYNC, FAILED, DETACHED = "Pending", "InSync", "Failed", "Detached"
# Members a cross-account replica may not be created with (CreateSecret's API reference).
_NOT_ON_REPLICA = ("SecretString", "SecretBinary", "Description", "AddReplicaRegions", "Type")
_DEFAULT_KEYS = ("", "alias/aws/secretsmanager")
# The label of a rotation in progress stays on the primary: the rotation engine ends it without a
# write the replica would follow, and a replica must not show a rotation that is over.
_NOT_REPLICATED_LABELS = {L.AWSPENDING}


# ----------------------------------------------------------------------------------- checks


def _is_default_key(kms_key_id: str | None) -> bool:
    return kms_key_id is None or kms_key_id in _DEFAULT_KEYS or kms_key_id.endswith(":alias/aws/secretsmanager")


def _other_account_secret_arn(ctx: RequestContext, arn: str, member: str) -> Any:
    """``arn`` as a SecretRef naming a secret of another account in the caller's region."""
    ref = parse_secret_id(arn)
    parts = arn.split(":")
    if ref.account_id is None or len(parts) < 7 or parts[1] != ctx.partition:
        raise M.invalid_parameter(f"The {member} {arn} is not a valid secret ARN.")  # unverified
    if ref.region != ctx.region:
        # AWS: "The primary and replica secrets must be in the same Amazon Web Services Region
        # and partition" (AssociateCrossAccountReplica, CreateSecret API references).
        raise M.invalid_parameter(
            f"The {member} must be in the same Region as this secret ({ctx.region})."
        )  # unverified
    if ref.account_id == ctx.account_id:
        raise M.invalid_parameter(f"The {member} must be in a different AWS account.")  # unverified
    return ref


def _names_arn(ref: Any, arn: str) -> bool:
    """Whether the SecretRef (a full or partial ARN) names the secret whose full ARN is ``arn``."""
    if ref.arn is not None:
        return bool(ref.arn == arn)
    if ref.name is None or ref.account_id is None:
        return False
    partition = arn.split(":", 2)[1]
    return arn.rsplit("-", 1)[0] == f"arn:{partition}:secretsmanager:{ref.region}:{ref.account_id}:secret:{ref.name}"


def check_value_access(ctx: RequestContext, secret: SecretRow) -> None:
    """A value read or written from another account needs a key that account may use: the
    account's default key cannot be shared, so AWS refuses GetSecretValue and PutSecretValue (and,
    as they use the key the same way, BatchGetSecretValue's reads and UpdateSecret with a value)
    whatever the policies say, while calls that touch no value (DescribeSecret, the resource
    policy, ListSecretVersionIds, tags, DeleteSecret) are allowed (LocalStack's aws-validated
    test_cross_account_access). UpdateSecret is # unverified: AWS's recordings show the other two."""
    if secret.account_id != ctx.account_id and _is_default_key(secret.kms_key_id):
        raise M.invalid_request(M.DEFAULT_KEY_CROSS_ACCOUNT)


def check_writable(secret: SecretRow) -> None:
    """A cross-account replica takes its versions from its primary only (also once detached,
    until StopReplicationToReplica makes it standalone)."""
    if secret.cross_account_primary is not None:
        raise M.invalid_parameter(
            "Operation not permitted on a cross-account replica secret. Call must be made on the primary "
            f"secret {secret.cross_account_primary['PrimarySecretARN']}."
        )  # unverified


def check_deletable(secret: SecretRow) -> None:
    """AWS: each account must end replication from its own side before it deletes its secret
    (DeleteSecret API reference; "Stop cross-account replication" in the user guide)."""
    if secret.cross_account_replicas:
        raise M.invalid_parameter(
            f"You can't delete secret {secret.arn} that still has cross-account replicas ["
            + ", ".join(r["ReplicaSecretARN"] for r in secret.cross_account_replicas)
            + "]. Call DisassociateCrossAccountReplica first."
        )  # unverified
    if secret.cross_account_primary is not None:
        raise M.invalid_parameter(
            f"You can't delete secret {secret.arn} while it is a cross-account replica. "
            "Call StopReplicationToReplica first."
        )  # unverified


def _as(ctx: RequestContext, operation: str) -> RequestContext:
    """The same caller, asking for another action (AWS checks several per call here)."""
    return dataclasses.replace(ctx, operation=operation)


def managed_policy(primary_account: str, partition: str) -> str:
    """The replica's consent: the primary's account may accept replication into it. Naming the
    account delegates to that account's own policies, so its IAM users need the action too.

    AWS documents the policy's name and purpose, not its text: this document is # unverified."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "CrossAccountReplication",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{primary_account}:root"},
                    "Action": "secretsmanager:AcceptCrossAccountReplication",
                    "Resource": "*",
                }
            ],
        },
        separators=(",", ":"),
    )


# ----------------------------------------------------------------------------------- create


async def create_replica(sm: ServiceParts, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    """CreateSecret with ``CrossAccountPrimaryARN``, in the replica's account."""
    name = p["Name"]
    given = [m for m in _NOT_ON_REPLICA if m in p]
    if given:
        # AWS: a cross-account replica "can't include AddReplicaRegions, Description, SecretBinary,
        # SecretString, or Type" (CreateSecret API reference).
        raise M.invalid_parameter(
            f"You can't specify {given[0]} when you create a cross-account replica secret."
        )  # unverified
    if _is_default_key(p.get("KmsKeyId")):
        # AWS: "The replica must use a customer managed KMS key" (CreateSecret API reference).
        raise M.invalid_parameter(
            "You must specify a customer managed KMS key in KmsKeyId to create a cross-account replica secret."
        )  # unverified
    primary_ref = _other_account_secret_arn(ctx, p["CrossAccountPrimaryARN"], "CrossAccountPrimaryARN")
    new_tags = tags.validate(p.get("Tags", []))
    document = managed_policy(primary_ref.account_id, ctx.partition)
    policies.check_syntax(document)
    now = clock.now()

    def tx_fn(tx: Tx) -> dict[str, Any]:
        lookup.authorize(tx, ctx, None, name)
        existing = q.find_secret(tx, ctx.account_id, ctx.region, name=name, lock=True)
        if existing is not None:
            if existing.deleted_date is not None:
                raise M.invalid_request(M.SCHEDULED_NAME)
            raise M.exists(f"The operation failed because the secret {name} already exists.")
        row = SecretRow(
            id=0,
            account_id=ctx.account_id,
            region=ctx.region,
            name=name,
            arn=new_arn(ctx.partition, ctx.region, ctx.account_id, name),
            kms_key_id=p["KmsKeyId"],
            created_date=now,
            last_changed_date=now,
            tags=new_tags,
            tags_member=int(bool(new_tags)),
            cross_account_primary={"PrimarySecretARN": p["CrossAccountPrimaryARN"], "ReplicationStatus": PENDING},
        )
        # AWS: creating a replica "also needs secretsmanager:PutResourcePolicy", because Secrets
        # Manager attaches the managed policy (Permissions for cross-account replication).
        lookup.authorize(tx, _as(ctx, "PutResourcePolicy"), None, row.arn)
        try:
            q.insert_secret(tx, row)
        except Conflict:
            raise M.exists(f"The operation failed because the secret {name} already exists.") from None
        q.put_policy(tx, row.id, MANAGED_POLICY, document, now)
        return {"ARN": row.arn, "Name": row.name}

    return await sm.db.write(tx_fn)


# ------------------------------------------------------------------------ associate / stop


async def associate(sm: ServiceParts, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    replica_ref = _other_account_secret_arn(ctx, p["CrossAccountReplicaARN"], "CrossAccountReplicaARN")
    role = p.get("ReplicationRoleARN")
    if role is not None and not (role.startswith(f"arn:{ctx.partition}:iam::{ctx.account_id}:role/")):
        # AWS: "The ARN of an IAM role in the primary account" (AssociateCrossAccountReplica).
        raise M.invalid_parameter(
            f"The ReplicationRoleARN {role} is not a role in account {ctx.account_id}."
        )  # unverified
    now = clock.now()

    def tx_fn(tx: Tx) -> dict[str, Any]:
        primary = lookup.find(tx, ctx, p["SecretId"], lock=True)
        # AWS: the caller also needs GetSecretValue on the primary (AssociateCrossAccountReplica).
        lookup.authorize(tx, _as(ctx, "GetSecretValue"), primary, primary.arn)
        if primary.account_id != ctx.account_id:
            raise M.invalid_parameter(
                "You must call AssociateCrossAccountReplica from the account that owns the primary secret."
            )  # unverified
        if primary.deleted_date is not None:
            raise M.invalid_request(M.MARKED_FOR_DELETION)
        if primary.primary_arn is not None:
            raise M.invalid_parameter(M.REPLICA_WRITE)
        check_writable(primary)
        replica = q.find_secret(
            tx, replica_ref.account_id, ctx.region, name=replica_ref.name, arn=replica_ref.arn, lock=True
        )
        # AWS: "secretsmanager:AcceptCrossAccountReplication on the replica secret", decided with
        # the replica's resource policy, as every call into another account.
        lookup.authorize(tx, _as(ctx, "AcceptCrossAccountReplication"), replica, p["CrossAccountReplicaARN"])
        if replica is None:
            raise M.not_found()
        link = replica.cross_account_primary
        if link is None or not _names_arn(parse_secret_id(link["PrimarySecretARN"]), primary.arn):
            # AWS: "the replica account owner must have created the replica secret as a
            # cross-account replica of the primary secret" (AssociateCrossAccountReplica).
            raise M.invalid_request(
                f"The secret {replica.arn} is not a cross-account replica of {primary.arn}."
            )  # unverified
        if replica.deleted_date is not None:
            raise M.invalid_request(M.MARKED_FOR_DELETION)
        others = [r for r in primary.cross_account_replicas if r["ReplicaSecretARN"] != replica.arn]
        if others:
            # AWS: "A primary secret can have at most one cross-account replica."
            raise AWSError(
                "LimitExceededException",
                f"The secret {primary.arn} already has a cross-account replica {others[0]['ReplicaSecretARN']}.",
            )  # unverified
        # Called again for the same replica, it repairs: the entry is rewritten and the replica
        # copied again (AWS: "This operation is idempotent ... to repair replication").
        entry: dict[str, Any] = {"ReplicaSecretARN": replica.arn, "ReplicationStatus": IN_SYNC}
        if role is not None:
            entry["ReplicationRoleARN"] = role
        primary.cross_account_replicas = [entry]
        q.update_secret(tx, primary, "cross_account_replicas")
        replica.cross_account_primary = {"PrimarySecretARN": primary.arn, "ReplicationStatus": IN_SYNC}
        q.update_secret(tx, replica, "cross_account_primary")
        _copy(sm, tx, primary, replica, now)
        return {"ARN": primary.arn, "CrossAccountReplicaARN": replica.arn, "ReplicationStatus": IN_SYNC}

    return await sm.db.write(tx_fn)


async def disassociate(sm: ServiceParts, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
    wanted = parse_secret_id(p["CrossAccountReplicaARN"])

    def tx_fn(tx: Tx) -> dict[str, Any]:
        primary = lookup.find(tx, ctx, p["SecretId"], lock=True)
        entry = next((r for r in primary.cross_account_replicas if _names_arn(wanted, r["ReplicaSecretARN"])), None)
        if entry is None:
            raise M.invalid_request(
                f"The secret {primary.arn} has no cross-account replica {p['CrossAccountReplicaARN']}."
            )  # unverified
        primary.cross_account_replicas = [r for r in primary.cross_account_replicas if r is not entry]
        q.update_secret(tx, primary, "cross_account_replicas")
        replica = q.secret_by_arn(tx, entry["ReplicaSecretARN"])
        if replica is not None:
            replica = q.get_secret_by_id(tx, replica.id, lock=True)
        if (
            replica is not None
            and replica.cross_account_primary is not None
            and replica.cross_account_primary["PrimarySecretARN"] == primary.arn
        ):
            # AWS: the replica "remains in the other account and its replication status changes
            # to Detached" (DisassociateCrossAccountReplica).
            replica.cross_account_primary = {"PrimarySecretARN": primary.arn, "ReplicationStatus": DETACHED}
            q.update_secret(tx, replica, "cross_account_primary")
        return {"ARN": primary.arn, "CrossAccountReplicaARN": entry["ReplicaSecretARN"]}

    return await sm.db.write(tx_fn)


def stop(sm: ServiceParts, tx: Tx, ctx: RequestContext, replica: SecretRow) -> None:
    """StopReplicationToReplica on a cross-account replica, in the replica's account: it becomes a
    standalone secret, loses the managed policy, and its primary sees it ``Detached``."""
    assert replica.cross_account_primary is not None
    # AWS: for a cross-account replica the caller also needs DeleteResourcePolicy, because the
    # managed policy is removed (StopReplicationToReplica API reference).
    lookup.authorize(tx, _as(ctx, "DeleteResourcePolicy"), replica, replica.arn)
    primary_arn = replica.cross_account_primary["PrimarySecretARN"]
    replica.cross_account_primary = None
    replica.last_changed_date = clock.now()
    q.update_secret(tx, replica, "cross_account_primary", "last_changed_date")
    q.delete_policy(tx, replica.id, MANAGED_POLICY)
    primary = q.secret_by_arn(tx, primary_arn)
    if primary is not None:
        primary = q.get_secret_by_id(tx, primary.id, lock=True)
    if primary is None:
        return
    changed = False
    for entry in primary.cross_account_replicas:
        if entry["ReplicaSecretARN"] == replica.arn:
            # AWS: "Secrets Manager updates the primary secret's replication status to Detached
            # for this replica" (StopReplicationToReplica).
            entry["ReplicationStatus"] = DETACHED
            entry.pop("StatusMessage", None)
            changed = True
    if changed:
        q.update_secret(tx, primary, "cross_account_replicas")


# -------------------------------------------------------------------------------- replicate


def sync(sm: ServiceParts, tx: Tx, primary: SecretRow) -> None:
    """Bring every in-sync cross-account replica of ``primary`` up to date, in the transaction of
    the primary's write (so, as for region replicas, a replica is never behind an acknowledged
    write)."""
    now = clock.now()
    changed = False
    for entry in primary.cross_account_replicas:
        if entry.get("ReplicationStatus") != IN_SYNC:
            continue
        replica = q.secret_by_arn(tx, entry["ReplicaSecretARN"])
        link = None if replica is None else replica.cross_account_primary
        if (
            replica is None
            or link is None
            or link.get("PrimarySecretARN") != primary.arn
            or link.get("ReplicationStatus") != IN_SYNC
        ):
            # Cannot happen through the API (a linked replica cannot be deleted or promoted
            # without the primary's entry changing), but a restored backup could hold it.
            entry.update(
                ReplicationStatus=FAILED, StatusMessage="The replica secret is no longer linked to this primary secret."
            )  # unverified
            changed = True
            continue
        _copy(sm, tx, primary, replica, now)
    if changed:
        q.update_secret(tx, primary, "cross_account_replicas")


def _copy(sm: ServiceParts, tx: Tx, primary: SecretRow, replica: SecretRow, now: float) -> None:
    """Make the replica's versions and labels the primary's: versions it lacks are copied (the
    value decrypted under the primary's key and encrypted under the replica's, bound to the
    replica's ARN), versions the primary no longer has go. Only values: a placeholder version of
    a rotation in progress, and its AWSPENDING label, stay on the primary."""
    # Ids first: only the versions the replica lacks are read whole (and decrypted).
    wanted = q.version_ids(tx, primary.id, with_value=True)
    have = q.version_ids(tx, replica.id)
    stages = {s: v for s, v in q.stages_of(tx, primary.id).items() if v in wanted and s not in _NOT_REPLICATED_LABELS}
    if have == wanted and q.stages_of(tx, replica.id) == stages:
        return  # a write of the primary's metadata: nothing for the replica
    q.remove_stages(tx, replica.id)
    for version_id in have - wanted:
        q.delete_version(tx, replica.id, version_id)
    key_ref = key_ref_for(replica.kms_key_id, replica.arn.split(":", 2)[1], replica.region, replica.account_id)
    for version_id in sorted(wanted - have):
        version = q.get_version(tx, primary.id, version_id)
        assert version is not None
        value = sm.cipher.decrypt(
            tx,
            primary.account_id,
            primary.region,
            version.key_ref or "",
            primary.arn,
            version_id,
            version.value_kind,
            version.ciphertext or b"",
        )
        kind, blob = sm.cipher.encrypt(tx, replica.account_id, replica.region, key_ref, replica.arn, version_id, value)
        q.insert_version(tx, replica.id, VersionRow(version_id, version.created_date, None, kind, key_ref, blob))
    for stage, version_id in stages.items():
        q.set_stage(tx, replica.id, stage, version_id)
    replica.last_changed_date = now
    q.update_secret(tx, replica, "last_changed_date")


# --------------------------------------------------------------------------------- describe


def describe(secret: SecretRow) -> dict[str, Any]:
    """DescribeSecret's members for either side of a link; none for other secrets."""
    out: dict[str, Any] = {}
    if secret.cross_account_primary is not None:
        out["CrossAccountPrimary"] = {k: v for k, v in secret.cross_account_primary.items() if v is not None}
    if secret.cross_account_replicas:
        out["CrossAccountReplicas"] = [
            {k: v for k, v in e.items() if v is not None} for e in secret.cross_account_replicas
        ]
    return out
