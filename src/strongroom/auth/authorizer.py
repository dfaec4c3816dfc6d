"""Authorization: may this principal do this action on this resource? (pipeline step 5)

The decision is IAM's (:mod:`strongroom.policy`): identity policies (the user's inline policies;
for an assumed role, the role's) together with the resource's policies (a secret's resource
policies, a role's trust policy). This module gathers them and the request's condition keys.

Who is never refused here:

* the account's **root** principal (the administrator key made on first start), except by an
  explicit ``Deny`` in a secret's resource policy, as on AWS;
* strongroom's **built-in rotators**, for Secrets Manager calls in their own account.

Both are facts recorded on the credential where it was minted (``RequestContext.privilege``),
never read from the text of an ARN: a caller chooses parts of that text (a session name, a role
name), so no name can make a caller privileged.

The request context (:meth:`Authorizer.base_context`) holds every global key the policy parser
accepts that AWS sets for a direct call: ``aws:PrincipalArn`` (for a role session the role's own
ARN, with its path), ``aws:PrincipalAccount``, ``aws:PrincipalType`` (``Account``, ``User``,
``AssumedRole``), ``aws:userid`` (the account id, ``AIDA...``, ``AROA...:session``),
``aws:username`` (IAM users only), ``aws:SourceIp``, ``aws:SecureTransport``,
``aws:RequestedRegion``, ``aws:CurrentTime``, ``aws:EpochTime``. ``aws:SourceArn`` and
``aws:SourceAccount`` exist only when a service calls on a resource's behalf, as on AWS, so they
are absent from a caller's own requests.

Identity policies are cached per principal for a few seconds (``_TTL``), and dropped at once
when IAM changes them on this node or another (the key store's revocation counter, read every
half second, calls :meth:`Authorizer.invalidate`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import Any

from strongroom import clock
from strongroom.auth.principal import BUILTIN_ROTATOR, ROOT
from strongroom.context import RequestContext
from strongroom.domain.functions import authorization_requests
from strongroom.errors import AWSError
from strongroom.store import Database, Tx, identities
from strongroom.store import secrets as secret_rows

__all__ = ["BUILTIN_ROTATION_ROLE", "Authorizer"]

BUILTIN_ROTATION_ROLE = "strongroom-builtin-rotation"
_TTL = 5.0
# Operations that act on no particular resource, and those that need no permission at all.
_RESOURCE_LESS = {
    "ListSecrets",
    "GetRandomPassword",
    "BatchGetSecretValue",
    "ValidateResourcePolicy",
    "ListFunctions",
    "LookupEvents",
    "ListUsers",
    "ListRoles",
}
_FREE = {("sts", "GetCallerIdentity")}
_SECRET_KEYS = {
    "Description": "secretsmanager:Description",
    "KmsKeyId": "secretsmanager:KmsKeyId",
    "VersionId": "secretsmanager:VersionId",
    "VersionStage": "secretsmanager:VersionStage",
    "RotationLambdaARN": "secretsmanager:RotationLambdaARN",
    "ForceDeleteWithoutRecovery": "secretsmanager:ForceDeleteWithoutRecovery",
    "RecoveryWindowInDays": "secretsmanager:RecoveryWindowInDays",
    "BlockPublicPolicy": "secretsmanager:BlockPublicPolicy",
}


class Authorizer:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[float, list[Any]]] = {}
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Forget cached identity policies (this node's IAM changed them); other nodes re-read
        within ``_TTL`` seconds."""
        with self._lock:
            self._cache.clear()

    # -------------------------------------------------------------------------- gathering

    def identity_policies(self, tx: Tx, principal_arn: str, role_arn: str = "", principal_id: str = "") -> list[Any]:
        """The caller's inline policies: a user's own, or for a role session (``role_arn`` set,
        ``principal_id`` ``ROLE-ID:session``) the role's, found by the role's unique id, so a role
        deleted and made again under the same name gives its old sessions nothing."""
        from strongroom.policy import parse_policy

        now = clock.now()
        key = f"{principal_arn}\n{principal_id}"
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        owner: str | None = principal_arn
        if role_arn:  # a role session (from the credential: a user's path may read ":assumed-role/")
            role_id = principal_id.partition(":")[0]
            owner = identities.role_arn_by_id(tx, role_arn.split(":")[4], role_id) if role_id else None
        documents = [] if owner is None else identities.inline_policies_of(tx, owner)
        policies = [parse_policy(d) for d in documents]
        with self._lock:
            if len(self._cache) > 10_000:  # pragma: no mutate (a bound on memory: no answer depends on it)
                self._cache.clear()
            self._cache[key] = (now + _TTL, policies)
        return policies

    @staticmethod
    def base_context(ctx: RequestContext) -> dict[str, Any]:
        """The global condition keys of a direct call (see the module docstring)."""
        now = clock.now()
        import datetime as dt

        kind = ctx.principal_type
        context = {
            "aws:PrincipalArn": ctx.role_arn or ctx.principal_arn,
            "aws:PrincipalType": kind,
            "aws:PrincipalAccount": ctx.account_id,
            "aws:SourceIp": ctx.source_ip,
            "aws:SecureTransport": "true" if ctx.secure else "false",
            "aws:RequestedRegion": ctx.region,
            "aws:CurrentTime": dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": str(int(now)),
        }
        if ctx.principal_id:
            context["aws:userid"] = ctx.principal_id
        if kind == "User":
            # Not mutated: a user ARN has a "/", so rsplit(..., 2)[-1] and [1] name the same user.
            context["aws:username"] = ctx.principal_arn.rsplit("/", 1)[-1]  # pragma: no mutate
        return context

    @staticmethod
    def privileged(ctx: RequestContext, service: str) -> bool:
        """Root, or a built-in rotator calling Secrets Manager: from the credential only."""
        if ctx.privilege == ROOT:
            return True
        return service == "secretsmanager" and ctx.privilege == BUILTIN_ROTATOR

    # ---------------------------------------------------------------------------- deciding

    def decide(
        self,
        tx: Tx,
        ctx: RequestContext,
        action: str,
        resource: str,
        resource_account: str,
        resource_policies: list[str],
        context: dict[str, Any],
        service: str,
    ) -> None:
        """Raise ``AccessDeniedException`` in AWS's words unless the call is allowed."""
        from strongroom.policy import Request, access_denied_message, evaluate, parse_policy

        resource_parsed = [parse_policy(d) for d in resource_policies]
        same_account = resource_account == ctx.account_id
        if self.privileged(ctx, service) and (same_account or ctx.privilege == ROOT):
            if same_account and not resource_parsed:
                return
            # The root principal's own side always allows; the resource's policies still decide.
            identity: list[Any] = [
                parse_policy('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}')
            ]
        else:
            identity = self.identity_policies(tx, ctx.principal_arn, ctx.role_arn, ctx.principal_id)
        request = Request(
            principal_arn=ctx.principal_arn,
            principal_account=ctx.account_id,
            action=action,
            resource=resource,
            resource_account=resource_account,
            context={**self.base_context(ctx), **context},
        )
        decision = evaluate(request, identity, resource_parsed)
        if not decision.allowed:
            message = access_denied_message(ctx.principal_arn, action, resource, decision)
            if service in ("iam", "sts"):  # the query protocol's services say AccessDenied, with a 403
                raise AWSError("AccessDenied", message, 403)
            raise AWSError("AccessDeniedException", message)

    def secret_context(self, params: dict[str, Any], secret: Any | None) -> dict[str, Any]:
        context: dict[str, Any] = {}
        for member, key in _SECRET_KEYS.items():
            if member in params:
                value = params[member]
                context[key] = str(value).lower() if isinstance(value, bool) else str(value)
        if "Tags" in params:
            context["aws:TagKeys"] = [t["Key"] for t in params["Tags"]]
            for tag in params["Tags"]:
                context[f"aws:RequestTag/{tag['Key']}"] = tag.get("Value", "")
        if "Name" in params:
            context["secretsmanager:Name"] = params["Name"]
        if "AddReplicaRegions" in params:
            context["secretsmanager:AddReplicaRegions"] = [r["Region"] for r in params["AddReplicaRegions"]]
        if secret is not None:
            context["secretsmanager:SecretId"] = secret.arn
            context["secretsmanager:SecretPrimaryRegion"] = secret.region
            for tag in secret.tags:
                context[f"aws:ResourceTag/{tag['Key']}"] = tag.get("Value", "")
                context[f"secretsmanager:ResourceTag/{tag['Key']}"] = tag.get("Value", "")
            if secret.rotation_lambda_arn:
                context["secretsmanager:resource/AllowRotationLambdaArn"] = secret.rotation_lambda_arn
        return context

    def check_secret(
        self, tx: Tx, ctx: RequestContext, secret: Any | None, resource: str, has_policy: bool | None = None
    ) -> None:
        """Secrets Manager's check, once the secret (or its absence) is known. ``has_policy``
        spares a query when the caller read it with the secret."""
        if self.privileged(ctx, "secretsmanager") and (
            secret is None
            or (
                secret.account_id == ctx.account_id
                and not (self._has_policy(tx, secret.id) if has_policy is None else has_policy)
            )
        ):
            return
        policies = [] if secret is None or has_policy is False else secret_rows.policy_documents(tx, secret.id)
        # A secret ARN has six colons, a name none (names cannot hold one): any bound from 1 to 6 agrees.
        account = resource.split(":")[4] if resource.count(":") >= 5 else ctx.account_id  # pragma: no mutate
        self.decide(
            tx,
            ctx,
            f"secretsmanager:{ctx.operation}",
            resource,
            account,
            policies,
            self.secret_context(ctx.params or {}, secret),
            "secretsmanager",
        )

    @staticmethod
    def _has_policy(tx: Tx, secret_id: int) -> bool:
        return secret_rows.has_policy(tx, secret_id)

    @staticmethod
    def resource_less(operation: str) -> bool:
        return operation in _RESOURCE_LESS

    def check_call(self, tx: Tx, ctx: RequestContext, service: str, operation: str, params: dict[str, Any]) -> None:
        """The check for calls not about one secret: made by the pipeline before dispatch."""
        if (service, operation) in _FREE or self.privileged(ctx, service):
            return
        if service == "secretsmanager":
            if operation not in _RESOURCE_LESS:
                return  # checked by the service once the secret is found
            resource = "*"
        elif service == "lambda":
            # Decided on the ARN the name resolves to (every spelling of one function alike), and
            # iam:PassRole on a role handed to the function; see domain/functions.py.
            for action, resource, account, keys in authorization_requests(
                ctx.account_id, ctx.region, ctx.partition, operation, params
            ):
                self.decide(tx, ctx, action, resource, account, [], keys, service)
            return
        elif service == "iam":
            resource, context = self._iam_target(tx, ctx, operation, params)
            self.decide(tx, ctx, f"iam:{operation}", resource, ctx.account_id, [], context, service)
            return
        elif service == "sts":
            return  # AssumeRole is decided with the role's trust policy by the service
        else:
            resource = "*"
        self.decide(tx, ctx, f"{service}:{operation}", resource, ctx.account_id, [], {}, service)

    @staticmethod
    def _iam_target(tx: Tx, ctx: RequestContext, operation: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """An IAM call's resource (the user's or role's ARN, with its path, as IAM authorizes it)
        and its tag keys: ``aws:ResourceTag/*`` of an existing user or role, ``aws:RequestTag/*``
        and ``aws:TagKeys`` of the tags a call sets."""
        context: dict[str, Any] = {}
        if "Tags" in params:
            context["aws:TagKeys"] = [t["Key"] for t in params["Tags"]]
            for tag in params["Tags"]:
                context[f"aws:RequestTag/{tag['Key']}"] = tag.get("Value", "")
        kind, name = (
            ("user", params["UserName"])
            if "UserName" in params
            else ("role", params["RoleName"])
            if "RoleName" in params
            else (None, None)
        )
        if kind is None:
            own = operation in ("GetUser", "CreateAccessKey", "ListAccessKeys", "UpdateAccessKey", "DeleteAccessKey")
            return (ctx.principal_arn if own else "*"), context
        row = identities.tagged_principal(tx, ctx.account_id, kind, name)
        if row is None:  # to be created (its path is the call's), or absent: the service says which
            return f"arn:aws:iam::{ctx.account_id}:{kind}{params.get('Path', '/')}{name}", context
        for tag in json.loads(row[1] or "[]"):
            context[f"aws:ResourceTag/{tag['Key']}"] = tag.get("Value", "")
        return row[0], context

    async def check_assume_role(
        self, ctx: RequestContext, role_arn: str, account: str, trust: str, context: dict[str, Any] | None = None
    ) -> None:
        """The trust policy must let the caller in; unless it names the caller itself, the caller's
        own policies must also allow ``sts:AssumeRole`` on the role (root's always do).
        ``context``: the call's own keys (``sts:RoleSessionName``, ``sts:ExternalId``)."""
        from strongroom.policy import Request, access_denied_message, evaluate, parse_policy

        def tx_fn(tx: Tx) -> None:
            request = Request(
                principal_arn=ctx.principal_arn,
                principal_account=ctx.account_id,
                action="sts:AssumeRole",
                resource=role_arn,
                resource_account=account,
                context={**self.base_context(ctx), **(context or {})},
            )
            if ctx.privilege == ROOT:  # its own side always allows; the trust policy still decides
                identity: list[Any] = [
                    parse_policy(
                        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
                    )
                ]
            else:
                identity = self.identity_policies(tx, ctx.principal_arn, ctx.role_arn, ctx.principal_id)
            # A role's trust policy must always let the caller in. Naming the caller itself (or its
            # role) is enough in the role's account; naming only the caller's account delegates to
            # the caller's own policies, which must then allow sts:AssumeRole too. Explicit denies
            # in either always win.
            trust_policy = [parse_policy(trust)]
            decision = evaluate(request, identity, trust_policy)
            if decision.allowed and not evaluate(request, [], trust_policy).allowed:
                decision = evaluate(replace(request, resource_account=""), identity, trust_policy)
            if not decision.allowed:
                raise AWSError(
                    "AccessDenied", access_denied_message(ctx.principal_arn, "sts:AssumeRole", role_arn, decision), 403
                )

        await self.db.read(tx_fn)
