"""STS: who am I, and temporary credentials for a role whose trust policy lets the caller in.

AssumeRole is allowed when the role's trust policy names the caller (or the caller's account and
the caller's own policies allow ``sts:AssumeRole`` on the role), exactly as IAM evaluates a
resource policy together with identity policies. The credentials are stored (encrypted) so that
every node accepts them, and expire after ``DurationSeconds`` (900 to the role's maximum).

``RoleSessionName``, ``ExternalId``, ``DurationSeconds`` and the rest are checked against the
model by the protocol layer before this runs (``[\\w+=,.@-]*`` for a session name: no ``:`` or
``/``, so a session ARN cannot pass for another principal's). A session carries its role's unique
id (``AROA...:session``): a role deleted and made again under its name is another role, and the
old sessions are deleted with the old one. A session never carries a privilege, whatever it is
called. The trust policy sees ``sts:RoleSessionName``, ``sts:ExternalId`` (when given), the role's
tags (``aws:ResourceTag/*``) and the session tags asked for (``aws:RequestTag/*``,
``aws:TagKeys``).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from strongroom.auth.keys import KeyStore
from strongroom.context import RequestContext
from strongroom.errors import AWSError
from strongroom.store import Database, Tx, identities

__all__ = ["OPERATIONS", "STS"]

OPERATIONS = ["GetCallerIdentity", "AssumeRole"]
_ROLE_ARN = re.compile(r"^arn:aws:iam::(\d{12}):role/(?:.*/)?([\w+=,.@-]+)$")


class STS:
    def __init__(self, db: Database, keys: KeyStore, authorizer: Any) -> None:
        self.db = db
        self.keys = keys
        self.authorizer = authorizer
        self.handlers = {"GetCallerIdentity": self.get_caller_identity, "AssumeRole": self.assume_role}

    async def get_caller_identity(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        # UserId is aws:userid: the account id for root, AIDA... for a user, AROA...:session.
        return {"UserId": ctx.principal_id or ctx.access_key_id, "Account": ctx.account_id, "Arn": ctx.principal_arn}

    async def assume_role(self, ctx: RequestContext, p: dict[str, Any]) -> dict[str, Any]:
        role_arn, session = p["RoleArn"], p["RoleSessionName"]
        m = _ROLE_ARN.match(role_arn)
        if m is None:
            raise AWSError("ValidationError", f"{role_arn} is invalid")
        account, name = m.group(1), m.group(2)

        def tx_fn(tx: Tx) -> tuple[str, str, int, str, str]:
            row = identities.role_for_session(tx, account, name)
            if row is None:
                raise AWSError(
                    "AccessDenied",
                    f"User: {ctx.principal_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                    403,
                )
            return row[0], row[1], int(row[2] or 3600), row[3], row[4]

        trust, role_id, max_session, own_arn, tags = await self.db.read(tx_fn)
        context: dict[str, Any] = {"sts:RoleSessionName": session}
        if "ExternalId" in p:
            context["sts:ExternalId"] = p["ExternalId"]
        for tag in json.loads(tags or "[]"):  # the role's tags
            context[f"aws:ResourceTag/{tag['Key']}"] = tag.get("Value", "")
        if "Tags" in p:  # session tags the caller asks for
            context["aws:TagKeys"] = [t["Key"] for t in p["Tags"]]
            for tag in p["Tags"]:
                context[f"aws:RequestTag/{tag['Key']}"] = tag.get("Value", "")
        await self.authorizer.check_assume_role(ctx, role_arn, account, trust, context)
        duration = int(p.get("DurationSeconds", 3600))
        if duration > max_session:
            raise AWSError(
                "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
            )
        assumed_arn = f"arn:aws:sts::{account}:assumed-role/{name}/{session}"
        credential = await asyncio.to_thread(
            self.keys.add_session, account, assumed_arn, float(duration), f"{role_id}:{session}", own_arn
        )
        return {
            "Credentials": {
                "AccessKeyId": credential.access_key_id,
                "SecretAccessKey": credential.secret_access_key,
                "SessionToken": credential.session_token,
                "Expiration": credential.expires_at,
            },
            "AssumedRoleUser": {"AssumedRoleId": f"{role_id}:{session}", "Arn": assumed_arn},
            "PackedPolicySize": 0,
        }
