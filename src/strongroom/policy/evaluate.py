"""Deciding a request against identity and resource policies, with AWS's logic.

**Evaluation** (``evaluate``) follows AWS's documented order:

1. an explicit ``Deny`` in any applicable policy → denied;
2. same account: an ``Allow`` in an identity policy *or* in a resource policy that names the
   principal (its ARN, its role for a role session, or ``*``) → allowed; a resource policy that
   names only the *account* delegates to the account's identity policies and grants nothing alone;
3. cross-account: an ``Allow`` in the caller's identity policies *and* in the resource policy
   (there naming the caller's account is enough);
4. otherwise the implicit deny.

:func:`access_denied_message` words a refusal as AWS's ``AccessDenied`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strongroom.policy.document import Policy
from strongroom.policy.match import _SPECIFIC, _applies, _Caller

__all__ = ["Decision", "Request", "access_denied_message", "evaluate"]


@dataclass(frozen=True)  # pragma: no mutate (nothing assigns to it: frozen only documents that)
class Request:
    principal_arn: str
    principal_account: str
    action: str
    resource: str
    resource_account: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)  # pragma: no mutate (nothing assigns to it: frozen only documents that)
class Decision:
    allowed: bool
    reason: str = ""  # AWS's words after "on resource: <arn> " in AccessDenied; "" when allowed


def evaluate(request: Request, identity_policies: list[Policy], resource_policies: list[Policy]) -> Decision:
    caller = _Caller.of(request)
    identity_allows = resource_allows = False
    for policy in identity_policies:
        for s in policy.statements:
            if _applies(s, request, caller, False):
                if s.effect == "Deny":
                    return Decision(False, "with an explicit deny in an identity-based policy")
                identity_allows = True
    same_account = request.principal_account == request.resource_account
    for policy in resource_policies:
        for s in policy.statements:
            level = _applies(s, request, caller, True)
            if level:
                if s.effect == "Deny":
                    return Decision(False, "with an explicit deny in a resource-based policy")
                # Naming the caller's account delegates to its identity policies: in the same
                # account that grants nothing more; across accounts it is the resource's side.
                if level == _SPECIFIC or not same_account:
                    resource_allows = True
    if same_account:
        if identity_allows or resource_allows:
            return Decision(True)
        return Decision(False, f"because no identity-based policy allows the {request.action} action")
    if not resource_allows:
        return Decision(False, f"because no resource-based policy allows the {request.action} action")
    if not identity_allows:
        return Decision(False, f"because no identity-based policy allows the {request.action} action")
    return Decision(True)


def access_denied_message(principal_arn: str, action: str, resource: str, decision: Decision) -> str:
    """AWS's AccessDenied text, e.g. ``User: arn:aws:iam::111122223333:user/app is not authorized to
    perform: secretsmanager:GetSecretValue on resource: arn:... because no identity-based policy
    allows the secretsmanager:GetSecretValue action``."""
    return f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {decision.reason}"
