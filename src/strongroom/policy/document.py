"""The parsed shape of an IAM policy document, and what "public" means for one.

:func:`strongroom.policy.parse.parse_policy` makes these (frozen, so a cached parse is shared
safely); :mod:`strongroom.policy.match` and :mod:`strongroom.policy.evaluate` read them. The value
readers (``_number``, ``_date``, ``_cidr``) are here because parsing checks a condition value with
the same reader matching compares it with: a value that parses is a value that compares.

:meth:`Policy.is_public` is Secrets Manager's ``BlockPublicPolicy`` test (see its docstring).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass

__all__ = ["Condition", "Policy", "PolicyError", "Statement"]


class PolicyError(ValueError):
    """A document strongroom refuses to store (MalformedPolicyDocument)."""


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_ACCOUNT_ID = re.compile(r"\d{12}")


@dataclass(frozen=True)  # pragma: no mutate (nothing assigns to it: frozen only documents that)
class Condition:
    operator: str  # the base operator, e.g. StringLike (no qualifier, no IfExists)
    qualifier: str  # "", "ForAnyValue" or "ForAllValues"
    if_exists: bool
    key: str  # lower-cased
    values: tuple[str, ...]


@dataclass(frozen=True)  # pragma: no mutate (nothing assigns to it: frozen only documents that)
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


def _number(text: str) -> float | None:
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    try:
        value = float(text)
    except (ValueError, OverflowError):  # pragma: no cover, no mutate - the pattern admits only floats
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
    except (OverflowError, ValueError, OSError):  # pragma: no cover, no mutate - years 1..9999 all convert
        return None


def _cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


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


@dataclass(frozen=True)  # pragma: no mutate (nothing assigns to it: frozen only documents that)
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
