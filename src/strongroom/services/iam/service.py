"""The part of IAM that identity management needs: users, roles, access keys, inline policies.

Principals live per account. Secret access keys are stored encrypted by the key store and shown
once, in CreateAccessKey's answer. Policy documents are checked when stored: a document the
evaluator could not honour exactly (an unknown element, operator or key) is refused with
``MalformedPolicyDocument``, so evaluation never silently ignores a condition. As IAM does,
documents are returned URL-encoded.

Names and identifiers are checked against the model's patterns and lengths by the protocol layer
(whole-value matches, IAM's ``ValidationError``). Names beginning with ``strongroom-`` (in any
case: IAM names are unique regardless of case) are strongroom's own and refused for users and
roles (``InvalidInput``); no name gives any privilege anyway (``Credential.privilege``).

Revocations take effect at once: deactivating or deleting a key, deleting a role (and with it
every session made from it) bump the key generation in the same transaction, which every node
reads within half a second (:mod:`strongroom.auth.keys`). Policy changes bump it too, so other
nodes drop their cached identity policies as fast.
"""

from __future__ import annotations

import asyncio
import json
import secrets as _random
import string
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from strongroom import clock
from strongroom.auth.keys import KeyStore, new_access_key_id, new_secret_access_key
from strongroom.auth.principal import ROOT
from strongroom.context import RequestContext
from strongroom.errors import AWSError
from strongroom.policy.limits import INLINE_POLICY_LIMITS, TRUST_POLICY_LIMIT, iam_size
from strongroom.store import Conflict, Database, Tx
from strongroom.store import identities as q
from strongroom.store import keys as key_rows

__all__ = ["IAM", "OPERATIONS", "check_policy"]

OPERATIONS = [
    "CreateUser",
    "GetUser",
    "ListUsers",
    "DeleteUser",
    "CreateAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "PutUserPolicy",
    "GetUserPolicy",
    "DeleteUserPolicy",
    "ListUserPolicies",
    "CreateRole",
    "GetRole",
    "ListRoles",
    "DeleteRole",
    "PutRolePolicy",
    "GetRolePolicy",
    "DeleteRolePolicy",
    "ListRolePolicies",
]
RESERVED_PREFIX = "strongroom-"


def _no_such(kind: str, name: str) -> AWSError:
    return AWSError("NoSuchEntity", f"The {kind} with name {name} cannot be found.", 404)


def _not_reserved(kind: str, name: str) -> None:
    if name.lower().startswith(RESERVED_PREFIX):
        raise AWSError(
            "InvalidInput",
            f"The {kind} name {name} is reserved: names beginning with '{RESERVED_PREFIX}' belong to strongroom.",
        )


def _principal_id(prefix: str) -> str:
    return prefix + "".join(_random.choice(string.ascii_uppercase + string.digits) for _ in range(17))


def check_policy(document: str, kind: str = "identity") -> None:
    """Refuse a document the evaluator cannot honour exactly (MalformedPolicyDocument). ``kind`` is
    ``"identity"`` for user and role policies, ``"resource"`` for a role's trust policy."""
    from strongroom.policy import PolicyError, parse_policy

    try:
        parse_policy(document, kind=kind)
    except PolicyError as exc:
        raise AWSError("MalformedPolicyDocument", str(exc)) from None


class IAM:
    def __init__(self, db: Database, keys: KeyStore, on_policy_change: Callable[[], None] = lambda: None) -> None:
        self.db = db
        self.keys = keys
        self.on_policy_change = on_policy_change
        self.handlers = {name: getattr(self, "_".join(_words(name))) for name in OPERATIONS}
        keys.listeners.append(on_policy_change)  # another node changed a policy or revoked a key

    # ------------------------------------------------------------------------------ helpers

    def _get(self, tx: Tx, account_id: str, kind: str, name: str) -> dict[str, Any]:
        row = q.principal(tx, account_id, kind, name)
        if row is None:
            raise _no_such(kind, name)
        return row

    @staticmethod
    def _shape(row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"Path": row["path"], "Arn": row["arn"], "CreateDate": row["created_date"]}
        if row["kind"] == "user":
            out.update(UserName=row["name"], UserId=row["principal_id"])
        else:
            out.update(
                RoleName=row["name"],
                RoleId=row["principal_id"],
                AssumeRolePolicyDocument=quote(row["trust_policy"] or "", safe=""),
                MaxSessionDuration=row["max_session"],
            )
            if row["description"]:
                out["Description"] = row["description"]
        tags = json.loads(row["tags"] or "[]")
        if tags:
            out["Tags"] = tags
        return out

    def _create(
        self, ctx: RequestContext, kind: str, p: dict[str, Any], name: str, extra: dict[str, Any]
    ) -> Callable[[Tx], dict[str, Any]]:
        """The transaction that creates a user or role."""
        path = p.get("Path", "/")
        arn = f"arn:aws:iam::{ctx.account_id}:{kind}{path}{name}"
        row = {
            "arn": arn,
            "account_id": ctx.account_id,
            "kind": kind,
            "name": name,
            "path": path,
            "principal_id": _principal_id("AIDA" if kind == "user" else "AROA"),
            "created_date": clock.now(),
            "trust_policy": extra.get("trust_policy"),
            "description": extra.get("description"),
            "max_session": extra.get("max_session", 3600),
            "tags": json.dumps(p.get("Tags", [])),
        }

        def tx_fn(tx: Tx) -> dict[str, Any]:
            if q.principal_exists(tx, ctx.account_id, kind, name):
                raise AWSError("EntityAlreadyExists", f"{kind.capitalize()} with name {name} already exists.", 409)
            try:
                q.insert_principal(tx, row)
            except Conflict:
                raise AWSError(
                    "EntityAlreadyExists", f"{kind.capitalize()} with name {name} already exists.", 409
                ) from None
            return self._shape(row)

        return tx_fn

    async def _list(self, ctx: RequestContext, kind: str, p: dict[str, Any]) -> list[dict[str, Any]]:
        prefix = p.get("PathPrefix", "/")

        def tx_fn(tx: Tx) -> list[dict[str, Any]]:
            rows = q.principals(tx, ctx.account_id, kind)
            return [self._shape(r) for r in rows if r["path"].startswith(prefix)]

        return await self.db.read(tx_fn)

    async def _delete(self, ctx: RequestContext, kind: str, name: str) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> str:
            row = self._get(tx, ctx.account_id, kind, name)
            if q.has_inline_policies(tx, row["arn"]):
                raise AWSError("DeleteConflict", "Cannot delete entity, must delete policies first.", 409)
            if kind == "user" and key_rows.has_keys(tx, row["arn"]):
                raise AWSError("DeleteConflict", "Cannot delete entity, must delete access keys first.", 409)
            q.delete_principal(tx, row["arn"])
            if kind == "role":  # its sessions end with it, on every node
                key_rows.delete_role_sessions(tx, row["arn"])
                self.keys.revoked(tx)
            return row["arn"]  # type: ignore[no-any-return]

        arn = await self.db.write(tx_fn)
        if kind == "role":
            self.keys.forget_role(arn)
        return {}

    # ------------------------------------------------------------------------------- users

    async def create_user(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        _not_reserved("user", p["UserName"])
        tx_fn = self._create(ctx, "user", p, p["UserName"], {})
        return {"User": await self.db.write(tx_fn)}

    async def get_user(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("UserName")
        if name is None:
            if ctx.principal_type != "User":
                if ctx.privilege == ROOT:
                    return {
                        "User": {
                            "Path": "/",
                            "UserName": "root",
                            "UserId": ctx.account_id,
                            "Arn": ctx.principal_arn,
                            "CreateDate": 0.0,
                        }
                    }
                raise AWSError("ValidationError", "Must specify userName when calling with non-User credentials")
            name = ctx.principal_arn.rsplit("/", 1)[-1]
        return {"User": await self.db.read(lambda tx: self._shape(self._get(tx, ctx.account_id, "user", name)))}

    async def list_users(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return {"Users": await self._list(ctx, "user", p), "IsTruncated": False}

    async def delete_user(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self._delete(ctx, "user", p["UserName"])

    # ------------------------------------------------------------------------- access keys

    def _user_for_keys(self, tx: Tx, ctx: RequestContext, p: dict[str, Any]) -> tuple[str, str, str]:
        """The user whose keys a call is about: its name, ARN and unique id. Without
        ``UserName``, the caller itself: a user, or the account's root; a role session has no
        keys of its own (it must not mint a long-term key acting as its role)."""
        name = p.get("UserName")
        if name is None:
            if ctx.privilege == ROOT:
                return "root", ctx.principal_arn, ctx.account_id
            if ctx.principal_type != "User":
                raise AWSError("ValidationError", "Must specify userName when calling with non-User credentials")
            name = ctx.principal_arn.rsplit("/", 1)[-1]
        row = self._get(tx, ctx.account_id, "user", name)
        return name, row["arn"], row["principal_id"]

    async def create_access_key(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        name, arn, principal_id = await self.db.read(lambda tx: self._user_for_keys(tx, ctx, p))
        count = await self.db.read(lambda tx: key_rows.long_term_key_count(tx, arn))
        if count >= 2:
            raise AWSError("LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2", 409)
        access_key_id, secret = new_access_key_id(), new_secret_access_key()
        # A root's own key (no UserName) is root's: the one place besides first start and
        # `admin create-account` where a root key is minted, and only by root.
        privilege = ROOT if name == "root" and ctx.privilege == ROOT and "UserName" not in p else None
        await asyncio.to_thread(self.keys.add, access_key_id, secret, ctx.account_id, arn, principal_id, privilege)
        return {
            "AccessKey": {
                "UserName": name,
                "AccessKeyId": access_key_id,
                "Status": "Active",
                "SecretAccessKey": secret,
                "CreateDate": clock.now(),
            }
        }

    async def list_access_keys(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> dict[str, Any]:
            name, arn, _ = self._user_for_keys(tx, ctx, p)
            rows = key_rows.long_term_keys(tx, arn)
            return {
                "AccessKeyMetadata": [
                    {"UserName": name, "AccessKeyId": r[0], "Status": r[1], "CreateDate": r[2]} for r in rows
                ],
                "IsTruncated": False,
            }

        return await self.db.read(tx_fn)

    def _own_key(self, tx: Tx, ctx: RequestContext, p: dict[str, Any]) -> str:
        _, arn, _ = self._user_for_keys(tx, ctx, p)
        key = p["AccessKeyId"]
        if not key_rows.is_key_of(tx, key, arn):
            raise AWSError("NoSuchEntity", f"The Access Key with id {key} cannot be found.", 404)
        return key  # type: ignore[no-any-return]

    async def update_access_key(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> str:
            key = self._own_key(tx, ctx, p)
            key_rows.set_key_status(tx, key, p["Status"])
            self.keys.revoked(tx)
            return key

        self.keys.forget(await self.db.write(tx_fn))
        return {}

    async def delete_access_key(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> str:
            key = self._own_key(tx, ctx, p)
            key_rows.delete_access_key(tx, key)
            self.keys.revoked(tx)
            return key

        self.keys.forget(await self.db.write(tx_fn))
        return {}

    # --------------------------------------------------------------------- inline policies

    async def _put_policy(
        self, ctx: RequestContext, kind: str, name: str, policy_name: str, document: str
    ) -> dict[str, Any]:
        limit, size = INLINE_POLICY_LIMITS[kind], iam_size(document)
        too_big = AWSError("LimitExceeded", f"Maximum policy size of {limit} bytes exceeded for {kind} {name}", 409)
        if size > limit:  # before parsing: what cannot be stored is not worth reading
            raise too_big
        check_policy(document)

        def tx_fn(tx: Tx) -> None:
            arn = self._get(tx, ctx.account_id, kind, name)["arn"]
            # The quota is on all of the principal's inline policies together (this one replacing its namesake).
            if size + sum(iam_size(document) for document in q.other_inline_policies(tx, arn, policy_name)) > limit:
                raise too_big
            q.put_inline_policy(tx, arn, ctx.account_id, policy_name, document)
            self.keys.revoked(tx)  # other nodes drop cached policies at once, too

        await self.db.write(tx_fn)
        self.on_policy_change()
        self.keys.announce()  # this server's other workers drop their cached policies at once
        return {}

    async def _get_policy(self, ctx: RequestContext, kind: str, name: str, policy_name: str) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> str:
            arn = self._get(tx, ctx.account_id, kind, name)["arn"]
            document = q.inline_policy(tx, arn, policy_name)
            if document is None:
                raise AWSError("NoSuchEntity", f"The {kind} policy with name {policy_name} cannot be found.", 404)
            return document

        document = await self.db.read(tx_fn)
        key = "UserName" if kind == "user" else "RoleName"
        return {key: name, "PolicyName": policy_name, "PolicyDocument": quote(document, safe="")}

    async def _delete_policy(self, ctx: RequestContext, kind: str, name: str, policy_name: str) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> None:
            arn = self._get(tx, ctx.account_id, kind, name)["arn"]
            if not q.delete_inline_policy(tx, arn, policy_name):
                raise AWSError("NoSuchEntity", f"The {kind} policy with name {policy_name} cannot be found.", 404)
            self.keys.revoked(tx)

        await self.db.write(tx_fn)
        self.on_policy_change()
        self.keys.announce()  # this server's other workers drop their cached policies at once
        return {}

    async def _list_policies(self, ctx: RequestContext, kind: str, name: str) -> dict[str, Any]:
        def tx_fn(tx: Tx) -> list[str]:
            arn = self._get(tx, ctx.account_id, kind, name)["arn"]
            return q.inline_policy_names(tx, arn)

        return {"PolicyNames": await self.db.read(tx_fn), "IsTruncated": False}

    async def put_user_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self._put_policy(ctx, "user", p["UserName"], p["PolicyName"], p["PolicyDocument"])

    async def get_user_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self._get_policy(ctx, "user", p["UserName"], p["PolicyName"])

    async def delete_user_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self._delete_policy(ctx, "user", p["UserName"], p["PolicyName"])

    async def list_user_policies(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self._list_policies(ctx, "user", p["UserName"])

    # ------------------------------------------------------------------------------- roles

    async def create_role(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        _not_reserved("role", p["RoleName"])
        if iam_size(p["AssumeRolePolicyDocument"]) > TRUST_POLICY_LIMIT:
            raise AWSError("LimitExceeded", f"Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_LIMIT}", 409)
        check_policy(p["AssumeRolePolicyDocument"], kind="resource")
        tx_fn = self._create(
            ctx,
            "role",
            p,
            p["RoleName"],
            {
                "trust_policy": p["AssumeRolePolicyDocument"],
                "description": p.get("Description"),
                "max_session": p.get("MaxSessionDuration", 3600),
            },
        )
        return {"Role": await self.db.write(tx_fn)}

    async def get_role(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "Role": await self.db.read(lambda tx: self._shape(self._get(tx, ctx.account_id, "role", p["RoleName"])))
        }

    async def list_roles(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return {"Roles": await self._list(ctx, "role", p), "IsTruncated": False}

    async def delete_role(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self._delete(ctx, "role", p["RoleName"])

    async def put_role_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self._put_policy(ctx, "role", p["RoleName"], p["PolicyName"], p["PolicyDocument"])

    async def get_role_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self._get_policy(ctx, "role", p["RoleName"], p["PolicyName"])

    async def delete_role_policy(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self._delete_policy(ctx, "role", p["RoleName"], p["PolicyName"])

    async def list_role_policies(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        return await self._list_policies(ctx, "role", p["RoleName"])


def _words(name: str) -> list[str]:
    out: list[str] = []
    for c in name:
        if c.isupper():
            out.append(c.lower())
        else:
            out[-1] += c
    return out
