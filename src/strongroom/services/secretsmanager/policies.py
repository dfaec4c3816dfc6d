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

from strongroom.errors import AWSError
from strongroom.policy import PolicyError, load_json, parse_policy

__all__ = ["check_syntax", "is_public", "validation_errors"]

_STATEMENT_KEYS = {
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
}


def _problems(document: str) -> list[str]:
    try:
        policy = load_json(document)
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
    problems = _problems(document)
    if not problems:
        try:
            parse_policy(document, kind="resource")
        except PolicyError as exc:
            problems.append(str(exc))
    return problems


def check_syntax(document: str) -> None:
    problems = _all_problems(document)
    if problems:
        raise AWSError("MalformedPolicyDocumentException", problems[0])


def validation_errors(document: str) -> list[dict[str, str]]:
    return [{"CheckName": "SYNTAX_CHECKING", "ErrorMessage": p} for p in _all_problems(document)]


def is_public(document: str) -> bool:
    """BlockPublicPolicy's test; the rule lives with the evaluator (``Policy.is_public``)."""
    return parse_policy(document, kind="resource").is_public()
