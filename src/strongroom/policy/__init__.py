"""IAM policy documents: parsed strictly, evaluated with AWS's logic.

Written here because no maintained Python library evaluates IAM policies (the few that exist
cover a subset of operators and fall back silently on the rest, which is the one thing a policy
engine must not do).

**Parsing refuses** anything it could not honour exactly: unknown top-level or statement
elements, ``Action`` with ``NotAction``, a missing or unknown ``Effect``, unknown condition
operators or qualifiers, condition keys outside the supported set, and policy variables
(``${...}``). So a stored policy is always evaluated as written.

**Evaluation** (``evaluate``) follows AWS's documented order:

1. an explicit ``Deny`` in any applicable policy → denied;
2. same account: an ``Allow`` in an identity policy *or* in a resource policy that names the
   principal → allowed;
3. cross-account: an ``Allow`` in the caller's identity policies *and* in the resource policy;
4. otherwise the implicit deny.

Matching: ``*`` and ``?`` are the only wildcards (everything else is literal); actions compare
case-insensitively, resources case-sensitively; condition keys case-insensitively. Within a
``Condition`` block every operator and every key must hold (AND); the values listed for one key
are alternatives (OR). A missing key makes an operator false, except ``...IfExists`` forms, the
negated operators (``StringNotEquals`` ...), ``Null``, and ``ForAllValues:`` (true on an empty set).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

__all__ = ["Decision", "Policy", "PolicyError", "Request", "Statement", "access_denied_message", "evaluate",
           "parse_policy"]


class PolicyError(ValueError):
    """A document strongroom refuses to store (MalformedPolicyDocument)."""


_TOP = {"Version", "Id", "Statement"}
_ELEMENTS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal",
             "Condition"}
_BASE_OPERATORS = {
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike",
    "StringNotLike", "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
    "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals", "DateNotEquals", "DateLessThan",
    "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals", "Bool", "BinaryEquals", "IpAddress",
    "NotIpAddress", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "Null"}
_KEYS = {k.lower() for k in (
    "aws:PrincipalArn", "aws:PrincipalAccount", "aws:SourceIp", "aws:SecureTransport", "aws:CurrentTime",
    "aws:EpochTime", "aws:RequestedRegion", "aws:TagKeys", "aws:username", "aws:userid", "aws:SourceArn",
    "aws:SourceAccount", "aws:PrincipalType", "secretsmanager:SecretId", "secretsmanager:Name",
    "secretsmanager:Description", "secretsmanager:KmsKeyId", "secretsmanager:VersionId",
    "secretsmanager:VersionStage", "secretsmanager:RotationLambdaARN",
    "secretsmanager:resource/AllowRotationLambdaArn", "secretsmanager:BlockPublicPolicy",
    "secretsmanager:ForceDeleteWithoutRecovery", "secretsmanager:RecoveryWindowInDays",
    "secretsmanager:AddReplicaRegions", "secretsmanager:SecretPrimaryRegion", "lambda:FunctionArn",
    "iam:PassedToService", "sts:ExternalId", "sts:RoleSessionName")}
_KEY_PREFIXES = ("aws:resourcetag/", "aws:requesttag/", "secretsmanager:resourcetag/")
_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "NumericNotEquals", "DateNotEquals",
            "NotIpAddress", "ArnNotEquals", "ArnNotLike"}


@dataclass(frozen=True)
class Condition:
    operator: str       # the base operator, e.g. StringLike
    qualifier: str      # "", "ForAnyValue" or "ForAllValues"
    if_exists: bool
    key: str            # lower-cased
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    principals: dict[str, tuple[str, ...]] | None
    not_principals: dict[str, tuple[str, ...]] | None
    conditions: tuple[Condition, ...] = ()
    sid: str | None = None


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]
    document: str = ""

    def is_public(self) -> bool:
        """Grants access to everyone, as Secrets Manager's BlockPublicPolicy defines it: an Allow to
        ``*`` (or ``{"AWS": "*"}``) not narrowed by a condition on the caller's account, ARN,
        organization, source IP, VPC or source account/ARN."""
        narrowing = {"aws:principalaccount", "aws:principalarn", "aws:principalorgid", "aws:sourceip",
                     "aws:sourcevpc", "aws:sourcevpce", "aws:sourceaccount", "aws:sourcearn", "aws:userid",
                     "aws:username"}
        for s in self.statements:
            if s.effect != "Allow" or s.principals is None:
                continue
            if "*" in s.principals.get("*", ()) or "*" in s.principals.get("AWS", ()):
                if not any(c.key in narrowing and not c.if_exists and c.operator not in _NEGATED
                           for c in s.conditions):
                    return True
        return False


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise PolicyError(f"{what} must be a string or a non-empty list of strings.")


def _principal(value: Any) -> dict[str, tuple[str, ...]]:
    if value == "*":
        return {"*": ("*",)}
    if not isinstance(value, dict) or not value:
        raise PolicyError("Principal must be \"*\" or an object such as {\"AWS\": \"arn:aws:iam::123456789012:root\"}.")
    out = {}
    for kind, items in value.items():
        if kind not in ("AWS", "Service", "Federated", "CanonicalUser"):
            raise PolicyError(f"Unknown principal type {kind}.")
        out[kind] = _strings(items, f"Principal {kind}")
    return out


def _conditions(block: Any) -> tuple[Condition, ...]:
    if not isinstance(block, dict):
        raise PolicyError("Condition must be an object.")
    out = []
    for raw_operator, pairs in block.items():
        qualifier, _, operator = raw_operator.rpartition(":")
        if qualifier not in ("", "ForAnyValue", "ForAllValues"):
            raise PolicyError(f"Unknown condition qualifier {qualifier}.")
        if_exists = operator.endswith("IfExists")
        base = operator[:-8] if if_exists else operator
        if base not in _BASE_OPERATORS or (if_exists and base == "Null"):
            raise PolicyError(f"Unknown condition operator {raw_operator}.")
        if not isinstance(pairs, dict) or not pairs:
            raise PolicyError(f"Condition {raw_operator} must map keys to values.")
        for key, values in pairs.items():
            lowered = key.lower()
            if lowered not in _KEYS and not (lowered.startswith(_KEY_PREFIXES) and len(lowered.split("/", 1)[1]) > 0):
                raise PolicyError(f"Unsupported condition key {key}.")
            if isinstance(values, (bool, int, float)):
                values = str(values).lower() if isinstance(values, bool) else str(values)
            if isinstance(values, list):
                values = [str(v).lower() if isinstance(v, bool) else str(v) for v in values]
            out.append(Condition(base, qualifier, if_exists, lowered, _strings(values, f"Condition {key}")))
    return tuple(out)


def parse_policy(text: str) -> Policy:
    return _parse(text)


@lru_cache(maxsize=4096)
def _parse(text: str) -> Policy:
    if "${" in text:
        raise PolicyError("Policy variables (${...}) are not supported by strongroom.")
    try:
        doc = json.loads(text)
    except ValueError:
        raise PolicyError("This policy contains invalid JSON.") from None
    if not isinstance(doc, dict):
        raise PolicyError("The policy must be a JSON object.")
    unknown = set(doc) - _TOP
    if unknown:
        raise PolicyError(f"Unknown element {sorted(unknown)[0]} in the policy.")
    if doc.get("Version", "2008-10-17") not in ("2012-10-17", "2008-10-17"):
        raise PolicyError("The policy Version must be 2012-10-17 or 2008-10-17.")
    raw = doc.get("Statement")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise PolicyError("The policy must have a Statement.")
    statements = []
    for item in raw:
        if not isinstance(item, dict):
            raise PolicyError("Each Statement must be an object.")
        unknown = set(item) - _ELEMENTS
        if unknown:
            raise PolicyError(f"Unknown element {sorted(unknown)[0]} in a statement.")
        if item.get("Effect") not in ("Allow", "Deny"):
            raise PolicyError("Each statement needs an Effect of Allow or Deny.")
        for a, b in (("Action", "NotAction"), ("Resource", "NotResource"), ("Principal", "NotPrincipal")):
            if a in item and b in item:
                raise PolicyError(f"A statement cannot have both {a} and {b}.")
        if "Action" not in item and "NotAction" not in item:
            raise PolicyError("Each statement needs an Action or NotAction.")
        statements.append(Statement(
            effect=item["Effect"],
            actions=_strings(item["Action"], "Action") if "Action" in item else None,
            not_actions=_strings(item["NotAction"], "NotAction") if "NotAction" in item else None,
            resources=_strings(item["Resource"], "Resource") if "Resource" in item else None,
            not_resources=_strings(item["NotResource"], "NotResource") if "NotResource" in item else None,
            principals=_principal(item["Principal"]) if "Principal" in item else None,
            not_principals=_principal(item["NotPrincipal"]) if "NotPrincipal" in item else None,
            conditions=_conditions(item["Condition"]) if "Condition" in item else (),
            sid=item.get("Sid")))
    return Policy(tuple(statements), text)


# ----------------------------------------------------------------------------------- matching


@lru_cache(maxsize=8192)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).match(value) is not None


def _arn_like(pattern: str, value: str) -> bool:
    p, v = pattern.split(":", 5), value.split(":", 5)
    if len(p) != 6 or len(v) != 6:
        return pattern == value if "*" not in pattern else _like(pattern, value)
    return all(_like(a, b) for a, b in zip(p, v))


def _role_of(arn: str) -> str | None:
    if ":assumed-role/" not in arn:
        return None
    account = arn.split(":")[4]
    return f"arn:aws:iam::{account}:role/{arn.split(':assumed-role/', 1)[1].split('/')[0]}"


_SPECIFIC, _ACCOUNT = 2, 1


def _principal_matches(principals: dict[str, tuple[str, ...]], request: Request) -> int:
    """How the statement names the caller: 2 by its own ARN (or ``*``), 1 through its account, 0 not at all.

    The difference matters: a resource policy naming an *account* delegates to that account's
    identity policies, so within the same account it grants nothing by itself (AWS's rule).
    """
    if "*" in principals.get("*", ()):
        return _SPECIFIC
    role = _role_of(request.principal_arn)
    best = 0
    for entry in principals.get("AWS", ()):
        if entry == "*" or entry == request.principal_arn or (role is not None and entry == role):
            return _SPECIFIC
        if entry in (request.principal_account, f"arn:aws:iam::{request.principal_account}:root"):
            best = _ACCOUNT
    for service in principals.get("Service", ()):
        if service == request.principal_arn:
            return _SPECIFIC
    return best


def _values(context: dict[str, Any], key: str) -> list[str] | None:
    for k, v in context.items():
        if k.lower() == key:
            if v is None:
                return None
            return [str(x) for x in v] if isinstance(v, (list, tuple)) else [str(v)]
    return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _one(operator: str, expected: str, actual: str) -> bool:
    """Does one request value satisfy one policy value? (for the positive form of the operator)"""
    base = operator.replace("Not", "", 1) if operator in _NEGATED else operator
    if base == "StringEquals":
        return expected == actual
    if base == "StringEqualsIgnoreCase":
        return expected.lower() == actual.lower()
    if base == "StringLike":
        return _like(expected, actual)
    if base.startswith("Numeric"):
        a, b = _number(actual), _number(expected)
        if a is None or b is None:
            return False
        return {"NumericEquals": a == b, "NumericLessThan": a < b, "NumericLessThanEquals": a <= b,
                "NumericGreaterThan": a > b, "NumericGreaterThanEquals": a >= b}[base]
    if base.startswith("Date"):
        a, b = _date(actual), _date(expected)
        if a is None or b is None:
            return False
        return {"DateEquals": a == b, "DateLessThan": a < b, "DateLessThanEquals": a <= b,
                "DateGreaterThan": a > b, "DateGreaterThanEquals": a >= b}[base]
    if base == "Bool":
        return expected.lower() == actual.lower()
    if base == "BinaryEquals":
        return expected == actual
    if base == "IpAddress":
        try:
            return ipaddress.ip_address(actual) in ipaddress.ip_network(expected, strict=False)
        except ValueError:
            return False
    if base in ("ArnEquals", "ArnLike"):
        return _arn_like(expected, actual)
    raise AssertionError(base)  # pragma: no cover - parse_policy admits no other operator


def _condition_holds(c: Condition, context: dict[str, Any]) -> bool:
    actual = _values(context, c.key)
    if c.operator == "Null":
        wants_missing = c.values[0].lower() == "true"
        return (actual is None or actual == []) == wants_missing
    negated = c.operator in _NEGATED
    if actual is None or actual == []:
        if c.qualifier == "ForAllValues":
            return True
        if c.qualifier == "ForAnyValue":
            return False
        return c.if_exists or negated
    if c.qualifier == "ForAllValues":
        hits = [any(_one(c.operator, e, a) for e in c.values) for a in actual]
        return all((not h) if negated else h for h in hits)
    if c.qualifier == "ForAnyValue":
        hits = [any(_one(c.operator, e, a) for e in c.values) for a in actual]
        return any((not h) if negated else h for h in hits)
    matched = any(_one(c.operator, e, a) for e in c.values for a in actual)
    return not matched if negated else matched


def _applies(s: Statement, request: Request, resource_policy: bool) -> int:
    """0 when the statement does not apply; otherwise how it names the caller (see above)."""
    action = request.action
    if s.actions is not None and not any(_like(p, action, True) for p in s.actions):
        return 0
    if s.not_actions is not None and any(_like(p, action, True) for p in s.not_actions):
        return 0
    if s.resources is not None and not any(_like(p, request.resource) for p in s.resources):
        return 0
    if s.not_resources is not None and any(_like(p, request.resource) for p in s.not_resources):
        return 0
    level = _SPECIFIC
    if resource_policy:
        if s.principals is not None:
            level = _principal_matches(s.principals, request)
            if not level:
                return 0
        elif s.not_principals is not None:
            if _principal_matches(s.not_principals, request):
                return 0
        else:
            return 0
    return level if all(_condition_holds(c, request.context) for c in s.conditions) else 0


# ----------------------------------------------------------------------------------- deciding


@dataclass(frozen=True)
class Request:
    principal_arn: str
    principal_account: str
    action: str
    resource: str
    resource_account: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


def evaluate(request: Request, identity_policies: list[Policy], resource_policies: list[Policy]) -> Decision:
    identity_allows = resource_allows = False
    for policy in identity_policies:
        for s in policy.statements:
            if _applies(s, request, False):
                if s.effect == "Deny":
                    return Decision(False, "with an explicit deny in an identity-based policy")
                identity_allows = True
    same_account = request.principal_account == request.resource_account
    for policy in resource_policies:
        for s in policy.statements:
            level = _applies(s, request, True)
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
    return f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {decision.reason}"
