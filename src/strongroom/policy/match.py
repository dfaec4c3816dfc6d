"""Does a statement apply to a request? Actions, resources, principals and conditions matched.

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

:func:`strongroom.policy.evaluate.evaluate` combines the answers; this module answers for one
statement (``_applies``: 0, or how the statement names the caller).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strongroom.policy.document import Condition, Statement, _cidr, _date, _number
from strongroom.policy.wildcard import like

if TYPE_CHECKING:
    from strongroom.policy.evaluate import Request

__all__: list[str] = []

_NEGATED = {  # each negated operator and the operator it negates
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
_ACCOUNT_ROOT = re.compile(r"arn:[a-z-]+:iam::(\d{12}):root")


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
    return all(_like(a, b) for a, b in zip(p, v, strict=False))  # pragma: no mutate (6 and 6: strict is the same)


_ACCOUNT = 1
_SPECIFIC = 2  # pragma: no mutate (3 or more is the same: a level is only compared with the other)


@dataclass(frozen=True)  # pragma: no mutate (nothing assigns to it: frozen only documents that)
class _Caller:
    """The identities AWS checks a caller as: its account, its role (for a role session), itself."""

    arn: str
    account: str
    role_name: str | None  # for arn:...:sts::A:assumed-role/ROLE/SESSION

    @classmethod
    def of(cls, request: Request) -> _Caller:
        role = None
        # pragma below: a session ARN has no ":" after its account (role and session names exclude it)
        parts = request.principal_arn.split(":", 5)  # pragma: no mutate
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
            and parts[5].rsplit("/", 1)[-1] == self.role_name  # pragma: no mutate ([1] is [-1]: "role/" has a "/")
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
    base = _NEGATED.get(operator, operator)
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
