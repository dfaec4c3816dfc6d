"""IAM policy documents, parsed strictly: ``parse_policy`` and ``load_json``.

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

The result is a :class:`~strongroom.policy.document.Policy`; parses are cached by text and kind.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from functools import lru_cache
from typing import Any

from strongroom.policy.document import (
    _ACCOUNT_ID,
    Condition,
    Policy,
    PolicyError,
    Statement,
    _cidr,
    _date,
    _has_wildcard,
    _number,
)

__all__ = ["load_json", "parse_policy"]

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
_PRINCIPAL_TYPES = ("AWS", "Service", "Federated")
_VENDOR = re.compile(r"[A-Za-z0-9-]+")


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


@lru_cache(maxsize=4096)  # pragma: no mutate (a cache bound: no answer depends on it)
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

        # ``item`` is bound as a default: strings() is called only within this loop step.
        def strings(name: str, check: Any, item: dict[str, Any] = item) -> tuple[str, ...] | None:
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
