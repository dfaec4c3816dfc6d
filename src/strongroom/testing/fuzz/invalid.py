"""Invalid values: a request's parameters broken on purpose (wrong types, out of range, unknown
members, oversized), and whether the model refuses what was sent.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

# ---------------------------------------------------------------------------- invalid values


def _wrong_type(rng: random.Random, value: Any) -> Any:
    options: list[Any] = [
        None,
        True,
        False,
        0,
        -1,
        1.5,
        2**63,
        -(2**63) - 1,
        2**64 + 7,
        1e300,
        -0.0,
        "",
        "x",
        "12",
        "true",
        [],
        [1, "a"],
        {},
        {"a": {"b": []}},
        "\x00",
    ]
    while True:
        new = rng.choice(options)
        if type(new) is not type(value):
            return new


def _refused(member: Any, value: Any) -> bool:
    """Whether the server must refuse ``value`` for ``member`` on type alone (JSON protocols)."""
    kind = member.type_name
    if value is None:
        return False  # AWS ignores nulls
    if kind == "string":
        return not isinstance(value, str)
    if kind == "boolean":
        return not isinstance(value, bool)
    if kind in ("integer", "long"):
        if isinstance(value, bool):
            return True
        if isinstance(value, float):
            return not value.is_integer() or abs(value) >= 2**63
        return not isinstance(value, int) or not -(2**63) <= value < 2**63
    if kind in ("float", "double", "timestamp"):
        return isinstance(value, bool) or not isinstance(value, (int, float))
    if kind == "list":
        return not isinstance(value, list)
    if kind in ("structure", "map"):
        return not isinstance(value, dict)
    if kind == "blob":
        return not isinstance(value, str)
    return False


def _mutate(rng: random.Random, params: dict[str, Any], shape: Any) -> tuple[dict[str, Any], str, bool]:
    """One targeted change to ``params``, its name, and whether it certainly makes them invalid."""
    params = json.loads(json.dumps(params, default=lambda b: base64.b64encode(b).decode()))
    members = dict(shape.members) if shape is not None else {}
    how = rng.choice(
        [
            "wrong-type",
            "out-of-range",
            "drop-required",
            "unknown-member",
            "null",
            "enum",
            "odd-text",
            "long-list",
            "nested-wrong-type",
            "empty-string",
        ]
    )
    target = rng.choice(list(members)) if members else None
    if how == "unknown-member" or target is None:
        params[rng.choice(["Fuzz", "secretId", "SECRETID", "", "\u00e9", "__type", "Action", "x" * 300])] = rng.choice(
            [1, "x", None, [], {"y": [1]}, "\x00"]
        )
        return params, "unknown-member", False
    member = members[target]
    meta = member.metadata
    low, high = meta.get("min"), meta.get("max")
    if how == "drop-required":
        required = list(shape.metadata.get("required", ()))
        if required:
            params.pop(rng.choice(required), None)
            return params, how, True
        how = "wrong-type"
    certain = False
    if how == "null":
        params[target] = None
    elif how == "wrong-type":
        params[target] = _wrong_type(rng, params.get(target, "x"))
        certain = _refused(member, params[target])
    elif how == "out-of-range":
        if member.type_name in ("integer", "long"):
            value = rng.choice([(low or 0) - 1, (high or 2**31) + 1, 2**63, -(2**63), 2**31])
            certain = (
                (low is not None and value < low)
                or (high is not None and value > high)
                or not -(2 ** (31 if member.type_name == "integer" else 63))
                <= value
                < 2 ** (31 if member.type_name == "integer" else 63)
            )
        elif member.type_name == "string":
            value = "a" * ((high or 2048) + rng.choice([1, 1, 1000])) if rng.random() < 0.7 else ""
            certain = (high is not None and len(value) > high) or (low is not None and len(value) < low)
        elif member.type_name == "blob":
            value = base64.b64encode(b"\x00" * ((high or 4096) + 1)).decode()
            certain = high is not None
        elif member.type_name == "list":
            value = [params[target][0] if params.get(target) else "x"] * ((high or 50) + 1)
            certain = high is not None and params.get(target) is not None and bool(params.get(target))
        else:
            value = _wrong_type(rng, params.get(target))
            certain = _refused(member, value)
        params[target] = value
    elif how == "enum":
        params[target] = rng.choice(["", "NOPE", "awscurrent", "asc ", "\u0000"])
        certain = bool(meta.get("enum")) or member.type_name not in ("string", "blob")  # "NOPE" is base64
    elif how == "odd-text":
        params[target] = rng.choice(
            [
                "\x00",
                "\ud800",
                "\udfff\ud800",
                "a\u0000b",
                "\U0001f511" * 300,
                "\u202e" * 5,
                "' OR 1=1 --",
                "%s%n",
                "../../etc/passwd",
                "<x/>",
                "\\",
                "\r\n",
                " " * 10,
            ]
        )
        certain = member.type_name not in ("string", "blob")
    elif how == "long-list":
        params[target] = ["x"] * rng.choice([21, 1000, 20000])
        certain = member.type_name != "list" or (high is not None and len(params[target]) > high)
    elif how == "nested-wrong-type":
        params[target] = rng.choice(
            [
                {"Key": 1},
                [{"Key": "k", "Value": ["v"]}],
                [None],
                [[[]]],
                {"Region": None},
                [{"Region": 5}],
                [{"": ""}],
            ]
        )
    elif how == "empty-string":
        params[target] = ""
        certain = member.type_name not in ("string", "blob") or bool(low) or bool(meta.get("enum"))
    return params, how, certain
