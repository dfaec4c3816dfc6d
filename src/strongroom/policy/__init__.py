"""IAM policy documents: parsed strictly, evaluated with AWS's logic.

Written here because no maintained Python library evaluates IAM policies (the few that exist
cover a subset of operators and fall back silently on the rest, which is the one thing a policy
engine must not do).

**Parsing refuses** anything it could not honour exactly: invalid JSON (also duplicate keys and
``NaN``), unknown top-level or statement elements, ``Action`` with ``NotAction`` (likewise
Resource/Principal), a missing or unknown ``Effect``, duplicate ``Sid`` values, actions without a
service prefix, resources that are neither ``*`` nor an ARN, wildcards inside a principal (AWS
allows only ``*`` as a whole), unknown condition operators or qualifiers, ``NullIfExists``,
condition keys outside the supported set, condition values the operator cannot read (a number for
``Numeric*``, a date for ``Date*``, ``true``/``false`` for ``Bool`` and ``Null``, a CIDR for
``IpAddress``, base64 for ``BinaryEquals``), and policy variables (``${...}``, however escaped in
the JSON). So a stored policy is always evaluated as written. ``kind="identity"`` additionally
requires ``Resource``/``NotResource`` and forbids ``Principal``/``NotPrincipal``; ``kind="resource"``
requires one of ``Principal``/``NotPrincipal``.

**Evaluation** (``evaluate``) follows AWS's documented order:

1. an explicit ``Deny`` in any applicable policy → denied;
2. same account: an ``Allow`` in an identity policy *or* in a resource policy that names the
   principal (its ARN, its role for a role session, or ``*``) → allowed; a resource policy that
   names only the *account* delegates to the account's identity policies and grants nothing alone;
3. cross-account: an ``Allow`` in the caller's identity policies *and* in the resource policy
   (there naming the caller's account is enough);
4. otherwise the implicit deny.

Matching (:mod:`strongroom.policy.wildcard`, no backtracking, O(n·m) at worst): ``*`` and ``?``
are the only wildcards (everything else is literal); actions compare
case-insensitively, resources case-sensitively; condition keys case-insensitively. Within a
``Condition`` block every operator and every key must hold (AND); the values listed for one key
are alternatives (OR; NOR for the negated operators). A missing key makes an operator false,
except ``...IfExists`` forms (true), the negated operators (``StringNotEquals`` ... true),
``Null`` (which tests presence), and ``ForAllValues:`` (true on a missing or empty set;
``ForAnyValue:`` is false there, with or without ``IfExists``).

``NotPrincipal`` follows AWS's warning that a caller is checked as each of its identities (the
account, the role of a session, the session or user itself): with ``Deny`` the statement spares
the caller only when *every* one of them is listed; with ``Allow`` it excludes the caller when
*any* is listed. Both readings err towards refusing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from strongroom.policy.wildcard import like

__all__ = [
    "Condition",
    "Decision",
    "Policy",
    "PolicyError",
    "Request",
    "Statement",
    "access_denied_message",
    "evaluate",
    "load_json",
    "parse_policy",
]


class PolicyError(ValueError):
    """A document strongroom refuses to store (MalformedPolicyDocument)."""


_TOP = {"Version", "Id", "Statement"}
_ELEMENTS = {
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
}
_BASE_OPERATORS = {
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Null",
}
_KEYS = {
    k.lower()
    for k in (
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:SourceIp",
        "aws:SecureTransport",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:RequestedRegion",
        "aws:TagKeys",
        "aws:username",
        "aws:userid",
        "aws:SourceArn",
        "aws:SourceAccount",
        "aws:PrincipalType",
        "secretsmanager:SecretId",
        "secretsmanager:Name",
        "secretsmanager:Description",
        "secretsmanager:KmsKeyId",
        "secretsmanager:VersionId",
        "secretsmanager:VersionStage",
        "secretsmanager:RotationLambdaARN",
        "secretsmanager:resource/AllowRotationLambdaArn",
        "secretsmanager:BlockPublicPolicy",
        "secretsmanager:ForceDeleteWithoutRecovery",
        "secretsmanager:RecoveryWindowInDays",
        "secretsmanager:AddReplicaRegions",
        "secretsmanager:SecretPrimaryRegion",
        "lambda:FunctionArn",
        "iam:PassedToService",
        "sts:ExternalId",
        "sts:RoleSessionName",
    )
}
_KEY_PREFIXES = ("aws:resourcetag/", "aws:requesttag/", "secretsmanager:resourcetag/")
_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "NumericNotEquals",
    "DateNotEquals",
    "NotIpAddress",
    "ArnNotEquals",
    "ArnNotLike",
}
_PRINCIPAL_TYPES = ("AWS", "Service", "Federated")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_VENDOR = re.compile(r"[A-Za-z0-9-]+")
_ACCOUNT_ID = re.compile(r"\d{12}")
_ACCOUNT_ROOT = re.compile(r"arn:[a-z-]+:iam::(\d{12}):root")


@dataclass(frozen=True)
class Condition:
    operator: str  # the base operator, e.g. StringLike (no qualifier, no IfExists)
    qualifier: str  # "", "ForAnyValue" or "ForAllValues"
    if_exists: bool
    key: str  # lower-cased
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


# ----------------------------------------------------------------------------------- "public"

# Condition keys that, pinned to fixed values, keep a wildcard-principal Allow from being public:
# the ones Secrets Manager's documentation names (aws:SourceArn, aws:SourceVpc, aws:SourceVpce,
# aws:SourceAccount), the further ones S3's definition of "public" names (aws:SourceOwner,
# aws:userid, an aws:SourceIp range), and the caller-pinning keys Access Analyzer honours.
_PINNING_KEYS = {
    "aws:sourcearn",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceaccount",
    "aws:sourceowner",
    "aws:userid",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
}
_ARN_KEYS = {"aws:sourcearn", "aws:principalarn"}
_PINNING_OPERATORS = {"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike"}


def _has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def _pins(c: Condition) -> bool:
    """Does this condition, on its own, restrict a statement to fixed callers or sources?"""
    if c.if_exists or c.qualifier == "ForAllValues":  # both hold when the key is absent
        return False
    if c.key == "aws:sourceip":
        if c.operator != "IpAddress":
            return False
        nets = [_cidr(v) for v in c.values]
        # strongroom's own line for "a set of CIDRs": nothing wider than a /8 (IPv4) or /32 (IPv6)
        return all(n is not None and n.prefixlen >= (8 if n.version == 4 else 32) for n in nets)
    if c.key not in _PINNING_KEYS or c.operator not in _PINNING_OPERATORS:
        return False
    for value in c.values:
        if c.key in _ARN_KEYS and c.operator in ("StringLike", "ArnEquals", "ArnLike"):
            parts = value.split(":", 5)
            if len(parts) != 6 or not _ACCOUNT_ID.fullmatch(parts[4]):
                return False  # the account must be fixed at least
        elif _has_wildcard(value) or not value:
            return False
    return True


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]
    document: str = ""

    def is_public(self) -> bool:
        """Grants access broadly, as Secrets Manager's ``BlockPublicPolicy`` means it.

        An ``Allow`` statement is public when it names ``*`` (``"Principal": "*"`` or
        ``{"AWS": "*"}``) or uses ``NotPrincipal``, unless one of its conditions pins it to fixed
        values of ``aws:SourceArn``, ``aws:SourceVpc``, ``aws:SourceVpce``, ``aws:SourceAccount``,
        ``aws:SourceOwner``, ``aws:userid``, ``aws:PrincipalAccount``, ``aws:PrincipalArn`` (for an
        ARN pattern: a fixed account), ``aws:PrincipalOrgID``, or an ``aws:SourceIp`` range no wider
        than /8 (IPv6 /32). Negated operators, ``...IfExists`` and ``ForAllValues:`` never pin (they
        hold when the key is absent). Conservative: a ``Deny`` elsewhere in the policy is not
        credited.
        """
        for s in self.statements:
            if s.effect != "Allow":
                continue
            if s.not_principals is not None:
                broad = True
            elif s.principals is not None:
                broad = "*" in s.principals.get("*", ()) or "*" in s.principals.get("AWS", ())
            else:
                broad = False
            if broad and not any(_pins(c) for c in s.conditions):
                return True
        return False


# ----------------------------------------------------------------------------------- parsing


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise PolicyError(f"{what} must be a string or a non-empty list of strings.")


def _action(value: str) -> str:
    if value == "*":
        return value
    vendor, colon, name = value.partition(":")
    if not colon or not name or not _VENDOR.fullmatch(vendor):
        raise PolicyError(
            f'Action {value} must be "*" or a service prefix and an action, such as secretsmanager:GetSecretValue.'
        )
    return value


def _resource(value: str) -> str:
    if value == "*" or (value.startswith("arn:") and len(value.split(":", 5)) == 6):
        return value
    raise PolicyError(f'Resource {value} must be in ARN format or "*".')


def _principal_entry(kind: str, value: str) -> str:
    if value == "*" and kind == "AWS":
        return value
    if not value or _has_wildcard(value):
        raise PolicyError(
            f'Invalid principal {value}: a principal is "*" or names one entity exactly '
            "(wildcards cannot match part of a principal)."
        )
    if kind == "AWS" and not _ACCOUNT_ID.fullmatch(value):
        parts = value.split(":", 5)
        if (
            len(parts) != 6
            or parts[0] != "arn"
            or parts[2] not in ("iam", "sts")
            or not _ACCOUNT_ID.fullmatch(parts[4])
            or not parts[5]
        ):
            raise PolicyError(f"Invalid principal {value}: expected an account ID or an IAM/STS ARN.")
    return value


def _principal(value: Any, element: str) -> dict[str, tuple[str, ...]]:
    if value == "*":
        return {"*": ("*",)}
    if not isinstance(value, dict) or not value:
        raise PolicyError(f'{element} must be "*" or an object such as {{"AWS": "arn:aws:iam::123456789012:root"}}.')
    out = {}
    for kind, items in value.items():
        if kind not in _PRINCIPAL_TYPES:
            raise PolicyError(f"Unsupported principal type {kind} in {element}.")
        out[kind] = tuple(_principal_entry(kind, v) for v in _strings(items, f"{element} {kind}"))
    return out


def _number(text: str) -> float | None:
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    try:
        value = float(text)
    except (ValueError, OverflowError):  # pragma: no cover - the pattern admits only floats
        return None
    return value if value not in (float("inf"), float("-inf")) else None


def _date(text: str) -> float | None:
    """Seconds since the epoch, from epoch seconds or an ISO 8601 date/time (UTC unless it says)."""
    number = _number(text)
    if number is not None:
        return number
    text = text.strip()
    if not text or not text[0].isdigit():
        return None
    try:
        when = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    try:
        return when.timestamp()
    except (OverflowError, ValueError, OSError):  # pragma: no cover - years 1..9999 all convert
        return None


def _cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _check_value(operator: str, key: str, value: str) -> None:
    """Refuse a policy value the operator could never compare (AWS's validator rejects these)."""
    ok = True
    if operator.startswith("Numeric"):
        ok = _number(value) is not None
    elif operator.startswith("Date"):
        ok = _date(value) is not None
    elif operator in ("Bool", "Null"):
        ok = value.lower() in ("true", "false")
    elif operator in ("IpAddress", "NotIpAddress"):
        ok = _cidr(value) is not None
    elif operator == "BinaryEquals":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            ok = False
    if not ok:
        raise PolicyError(f"Invalid value {value!r} for {operator} on {key}.")


def _condition_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    raise PolicyError("Condition values must be strings, numbers or booleans.")


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
            raise PolicyError(f"Condition {raw_operator} must map condition keys to values.")
        for key, raw in pairs.items():
            lowered = key.lower()
            if lowered not in _KEYS and not (lowered.startswith(_KEY_PREFIXES) and lowered.split("/", 1)[1]):
                raise PolicyError(f"Unsupported condition key {key}.")
            items = raw if isinstance(raw, list) else [raw]
            if not items:
                raise PolicyError(f"Condition {raw_operator} {key} needs at least one value.")
            values = tuple(_condition_value(v) for v in items)
            for v in values:
                _check_value(base, key, v)
            out.append(Condition(base, qualifier, if_exists, lowered, values))
    return tuple(out)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise PolicyError(f"Duplicate key {key} in the policy.")
        out[key] = value
    return out


def _refuse_constant(name: str) -> Any:
    raise PolicyError(f"This policy contains invalid JSON ({name}).")


def load_json(text: str) -> Any:
    """The policy's JSON, refusing what IAM refuses and ``json`` accepts: duplicate keys, ``NaN``
    and ``Infinity`` (``PolicyError``, a ``ValueError``); ``RecursionError`` for absurd nesting."""
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)


def _refuse_variables(node: Any) -> None:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "${" in item:
                raise PolicyError("Policy variables (${...}) are not supported by strongroom.")
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())


def parse_policy(text: str, *, kind: str | None = None) -> Policy:
    """Parse a policy document, refusing what could not be evaluated exactly (``PolicyError``).

    ``kind`` adds the checks of one policy type: ``"identity"`` (Resource required, no
    Principal) or ``"resource"`` (Principal or NotPrincipal required); ``None`` checks neither.
    """
    if kind not in (None, "identity", "resource"):
        raise ValueError(f"kind must be None, 'identity' or 'resource', not {kind!r}")
    return _parse(text, kind)


@lru_cache(maxsize=4096)
def _parse(text: str, kind: str | None) -> Policy:
    if not isinstance(text, str):
        raise PolicyError("The policy must be a JSON text.")
    try:
        doc = load_json(text)
    except PolicyError:
        raise
    except (ValueError, RecursionError):
        raise PolicyError("This policy contains invalid JSON.") from None
    if not isinstance(doc, dict):
        raise PolicyError("The policy must be a JSON object.")
    _refuse_variables(doc)
    unknown = set(doc) - _TOP
    if unknown:
        raise PolicyError(f"Unknown element {sorted(unknown)[0]} in the policy.")
    if doc.get("Version", "2008-10-17") not in ("2012-10-17", "2008-10-17"):
        raise PolicyError("The policy Version must be 2012-10-17 or 2008-10-17.")
    if "Id" in doc and not isinstance(doc["Id"], str):
        raise PolicyError("The policy Id must be a string.")
    raw = doc.get("Statement")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise PolicyError("The policy must have a Statement.")
    statements = []
    sids: set[str] = set()
    for item in raw:
        if not isinstance(item, dict):
            raise PolicyError("Each Statement must be an object.")
        unknown = set(item) - _ELEMENTS
        if unknown:
            raise PolicyError(f"Unknown element {sorted(unknown)[0]} in a statement.")
        if item.get("Effect") not in ("Allow", "Deny"):
            raise PolicyError("Each statement needs an Effect of Allow or Deny.")
        sid = item.get("Sid")
        if sid is not None:
            if not isinstance(sid, str):
                raise PolicyError("Sid must be a string.")
            if sid in sids:
                raise PolicyError(f"Statement IDs (SID) in a single policy must be unique: {sid}.")
            sids.add(sid)
        for a, b in (("Action", "NotAction"), ("Resource", "NotResource"), ("Principal", "NotPrincipal")):
            if a in item and b in item:
                raise PolicyError(f"A statement cannot have both {a} and {b}.")
        if "Action" not in item and "NotAction" not in item:
            raise PolicyError("Each statement needs an Action or NotAction.")
        has_principal = "Principal" in item or "NotPrincipal" in item
        if kind == "identity":
            if has_principal:
                raise PolicyError("An identity-based policy cannot specify a Principal or NotPrincipal.")
            if "Resource" not in item and "NotResource" not in item:
                raise PolicyError("Each statement of an identity-based policy needs a Resource or NotResource.")
        if kind == "resource" and not has_principal:
            raise PolicyError("Each statement of a resource-based policy needs a Principal or NotPrincipal.")

        def strings(name: str, check: Any) -> tuple[str, ...] | None:
            if name not in item:
                return None
            return tuple(check(v) for v in _strings(item[name], name))

        statements.append(
            Statement(
                effect=item["Effect"],
                actions=strings("Action", _action),
                not_actions=strings("NotAction", _action),
                resources=strings("Resource", _resource),
                not_resources=strings("NotResource", _resource),
                principals=_principal(item["Principal"], "Principal") if "Principal" in item else None,
                not_principals=_principal(item["NotPrincipal"], "NotPrincipal") if "NotPrincipal" in item else None,
                conditions=_conditions(item["Condition"]) if "Condition" in item else (),
                sid=sid,
            )
        )
    return Policy(tuple(statements), text)


# ----------------------------------------------------------------------------------- matching


# Wildcards are matched without backtracking (strongroom.policy.wildcard): a regular expression
# built from ``*`` took seconds to days on a pattern a caller may write into a resource policy.
_like = like


def _arn_like(pattern: str, value: str) -> bool:
    """ArnEquals/ArnLike: the six colon-separated parts compared one by one, each with wildcards."""
    v = value.split(":", 5)
    if len(v) != 6:
        return False
    p = pattern.split(":", 5)
    if len(p) != 6:
        return _like(pattern, value)  # e.g. "*": matches any ARN
    return all(_like(a, b) for a, b in zip(p, v, strict=False))


_SPECIFIC, _ACCOUNT = 2, 1


@dataclass(frozen=True)
class _Caller:
    """The identities AWS checks a caller as: its account, its role (for a role session), itself."""

    arn: str
    account: str
    role_name: str | None  # for arn:...:sts::A:assumed-role/ROLE/SESSION

    @classmethod
    def of(cls, request: Request) -> _Caller:
        role = None
        parts = request.principal_arn.split(":", 5)
        if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
            role = parts[5].split("/")[1] if parts[5].count("/") >= 2 else None
        return cls(request.principal_arn, request.principal_account, role)

    def names_account(self, entry: str) -> bool:
        if entry == self.account:
            return True
        m = _ACCOUNT_ROOT.fullmatch(entry)
        return m is not None and m.group(1) == self.account

    def names_role(self, entry: str) -> bool:
        """A role ARN (any path) naming the role this session was made from."""
        if self.role_name is None:
            return False
        parts = entry.split(":", 5)
        return (
            len(parts) == 6
            and parts[2] == "iam"
            and parts[4] == self.account
            and parts[5].startswith("role/")
            and parts[5].rsplit("/", 1)[-1] == self.role_name
        )


def _principal_matches(principals: dict[str, tuple[str, ...]], caller: _Caller) -> int:
    """How the element names the caller: 2 by its own ARN, its role or ``*``; 1 through its account; 0 not.

    The difference matters: a resource policy naming an *account* delegates to that account's
    identity policies, so within the same account it grants nothing by itself (AWS's rule).
    """
    if "*" in principals.get("*", ()):
        return _SPECIFIC
    best = 0
    for entry in principals.get("AWS", ()):
        if entry == "*" or entry == caller.arn or caller.names_role(entry):
            return _SPECIFIC
        if caller.names_account(entry):
            best = _ACCOUNT
    for service in principals.get("Service", ()):
        if service == caller.arn:
            return _SPECIFIC
    for federated in principals.get("Federated", ()):
        if federated == caller.arn:
            return _SPECIFIC
    return best


def _not_principal_spares(not_principals: dict[str, tuple[str, ...]], caller: _Caller, effect: str) -> bool:
    """Is the caller outside a NotPrincipal statement? (see the module docstring)"""
    if "*" in not_principals.get("*", ()) or "*" in not_principals.get("AWS", ()):
        return True
    entries = not_principals.get("AWS", ()) + not_principals.get("Service", ()) + not_principals.get("Federated", ())
    if not caller.arn.startswith("arn:"):  # a service or federated caller has one identity
        return caller.arn in entries
    named = [any(caller.names_account(e) for e in entries), caller.arn in entries]
    if caller.role_name is not None:
        named.append(any(caller.names_role(e) for e in entries))
    return all(named) if effect == "Deny" else any(named)


def _values(context: dict[str, Any], key: str) -> list[str] | None:
    for k, v in context.items():
        if isinstance(k, str) and k.lower() == key:
            if v is None:
                return None
            items = v if isinstance(v, (list, tuple, set, frozenset)) else [v]
            return [_text(x) for x in items if x is not None]
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _compare(base: str, a: float, b: float) -> bool:
    suffix = base[len("Numeric") :] if base.startswith("Numeric") else base[len("Date") :]
    if suffix == "Equals":
        return a == b
    if suffix == "LessThan":
        return a < b
    if suffix == "LessThanEquals":
        return a <= b
    if suffix == "GreaterThan":
        return a > b
    return a >= b  # GreaterThanEquals


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
        return a is not None and b is not None and _compare(base, a, b)
    if base.startswith("Date"):
        a, b = _date(actual), _date(expected)
        return a is not None and b is not None and _compare(base, a, b)
    if base == "Bool":
        return expected.lower() == actual.lower()
    if base == "BinaryEquals":
        return expected == actual
    if base == "IpAddress":
        network = _cidr(expected)
        try:
            address = ipaddress.ip_address(actual.strip())
        except ValueError:
            return False
        return network is not None and address.version == network.version and address in network
    if base in ("ArnEquals", "ArnLike"):
        return _arn_like(expected, actual)
    raise AssertionError(base)  # pragma: no cover - parse_policy admits no other operator


def _condition_holds(c: Condition, context: dict[str, Any]) -> bool:
    actual = _values(context, c.key)
    missing = not actual
    if c.operator == "Null":
        return any(missing == (v.lower() == "true") for v in c.values)
    negated = c.operator in _NEGATED
    if missing:
        if c.qualifier == "ForAllValues":
            return True
        if c.qualifier == "ForAnyValue":
            return False
        return c.if_exists or negated
    assert actual is not None
    # For each request value: does it match any policy value (OR)? Negated operators invert that (NOR).
    hits = [
        (not any(_one(c.operator, e, a) for e in c.values))
        if negated
        else any(_one(c.operator, e, a) for e in c.values)
        for a in actual
    ]
    if c.qualifier == "ForAllValues":
        return all(hits)
    if c.qualifier == "ForAnyValue":
        return any(hits)
    return all(hits) if negated else any(hits)


def _applies(s: Statement, request: Request, caller: _Caller, resource_policy: bool) -> int:
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
            level = _principal_matches(s.principals, caller)
            if not level:
                return 0
        elif s.not_principals is not None:
            if _not_principal_spares(s.not_principals, caller, s.effect):
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
