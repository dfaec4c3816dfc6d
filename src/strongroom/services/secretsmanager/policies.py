"""Resource policy documents: syntax checks and AWS's notion of a "public" policy.

Full evaluation of policies belongs to the identity layer; this module checks what
PutResourcePolicy and ValidateResourcePolicy must check before a document is stored.

"Public" follows AWS's published definition (the one S3 documents, which Secrets Manager's
BlockPublicPolicy uses through the same reasoning engine): a statement that allows access to a
wildcard principal is public unless a condition pins it to fixed values of ``aws:SourceArn``,
``aws:SourceAccount``, ``aws:SourceOwner``, ``aws:SourceVpc``, ``aws:SourceVpce``,
``aws:PrincipalAccount``, ``aws:PrincipalOrgID``, ``aws:PrincipalArn``, ``aws:userid`` or a
``aws:SourceIp`` range.
"""

from __future__ import annotations

import json
from typing import Any

from strongroom.errors import AWSError

__all__ = ["check_syntax", "is_public", "validation_errors"]

_STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
                   "NotResource", "Condition"}
_PINNING_KEYS = {"aws:sourcearn", "aws:sourceaccount", "aws:sourceowner", "aws:sourcevpc", "aws:sourcevpce",
                 "aws:principalaccount", "aws:principalorgid", "aws:principalarn", "aws:userid",
                 "aws:sourceip"}


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key}")
        seen[key] = value
    return seen


def _problems(document: str) -> list[str]:
    try:
        policy = json.loads(document, object_pairs_hook=_reject_duplicates,
                            parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except (ValueError, RecursionError):
        return ["This policy contains invalid Json"]
    if not isinstance(policy, dict):
        return ["This policy contains invalid Json"]
    problems = []
    unknown = set(policy) - {"Version", "Id", "Statement"}
    if unknown:
        problems.append(f"Policy document contains unknown element: {sorted(unknown)[0]}")
    if policy.get("Version", "2012-10-17") not in ("2012-10-17", "2008-10-17"):
        problems.append("The policy document has an invalid Version.")
    statements = policy.get("Statement")
    if statements is None:
        problems.append("Policy document must contain a Statement.")
        return problems
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        problems.append("Policy statement must be an object or a non-empty list.")
        return problems
    for statement in statements:
        if not isinstance(statement, dict):
            problems.append("Policy statement must be an object.")
            continue
        extra = set(statement) - _STATEMENT_KEYS
        if extra:
            problems.append(f"Statement contains unknown element: {sorted(extra)[0]}")
        if statement.get("Effect") not in ("Allow", "Deny"):
            problems.append("Statement Effect must be Allow or Deny.")
        if ("Action" in statement) == ("NotAction" in statement):
            problems.append("Statement must contain exactly one of Action or NotAction.")
        if ("Principal" in statement) == ("NotPrincipal" in statement):
            problems.append("Resource policy statements must contain exactly one of Principal or NotPrincipal.")
        if "Condition" in statement and not isinstance(statement["Condition"], dict):
            problems.append("Statement Condition must be an object.")
    return problems


def _all_problems(document: str) -> list[str]:
    """AWS's syntax checks, then the evaluator's: a policy strongroom could not evaluate exactly
    (an unknown condition operator or key) is refused rather than stored and half-honoured."""
    from strongroom.policy import PolicyError, parse_policy

    problems = _problems(document)
    if not problems:
        try:
            parse_policy(document)
        except PolicyError as exc:
            problems.append(str(exc))
    return problems


def check_syntax(document: str) -> None:
    problems = _all_problems(document)
    if problems:
        raise AWSError("MalformedPolicyDocumentException", problems[0])


def validation_errors(document: str) -> list[dict[str, str]]:
    return [{"CheckName": "SYNTAX_CHECKING", "ErrorMessage": p} for p in _all_problems(document)]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        for value in _as_list(principal.get("AWS", [])):
            if isinstance(value, str) and (value == "*" or value.startswith("arn:aws:iam::*")):
                return True
    return False


def _pinned(condition: Any) -> bool:
    if not isinstance(condition, dict):
        return False
    for operator, clauses in condition.items():
        if not isinstance(clauses, dict) or operator.startswith("ForAnyValue") or operator.endswith("IfExists"):
            continue
        if operator.startswith(("StringNotLike", "StringNotEquals", "ArnNot", "NotIpAddress")):
            continue
        for key, values in clauses.items():
            if key.lower() in _PINNING_KEYS and all(isinstance(v, str) and "*" not in v and "?" not in v
                                                    for v in _as_list(values)):
                return True
    return False


def is_public(document: str) -> bool:
    policy = json.loads(document)
    for statement in _as_list(policy.get("Statement", [])):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        if "NotPrincipal" in statement:
            return True
        if _wildcard_principal(statement.get("Principal")) and not _pinned(statement.get("Condition")):
            return True
    return False
