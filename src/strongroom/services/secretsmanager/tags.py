"""Tag rules: at most 50 per secret, the ``aws:`` prefix reserved, one value per key."""

from __future__ import annotations

from typing import Any

from strongroom.services.secretsmanager import messages as M

__all__ = ["MAX_TAGS", "merge", "validate", "validate_keys"]

MAX_TAGS = 50


def _check_key(key: str) -> None:
    if key.lower().startswith("aws:"):
        raise M.invalid_parameter("Invalid tag key. The 'aws:' prefix is reserved for AWS use.")  # unverified


def validate(tags: list[dict[str, Any]]) -> list[dict[str, str]]:
    out: dict[str, str] = {}
    for tag in tags:
        key = tag.get("Key")
        if key is None:
            raise M.invalid_parameter("Invalid tag: a tag must have a Key.")  # unverified
        _check_key(key)
        out[key] = tag.get("Value", "")
    if len(out) > MAX_TAGS:
        raise M.invalid_parameter("Number of tags exceeds the limit of 50.")  # unverified
    return [{"Key": k, "Value": v} for k, v in out.items()]


def validate_keys(keys: list[str]) -> set[str]:
    for key in keys:
        _check_key(key)
    return set(keys)


def merge(existing: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    merged = {t["Key"]: t["Value"] for t in existing}
    for tag in new:
        merged[tag["Key"]] = tag["Value"]
    if len(merged) > MAX_TAGS:
        raise M.invalid_parameter("Number of tags exceeds the limit of 50.")  # unverified
    return [{"Key": k, "Value": v} for k, v in merged.items()]
