"""Whether a function's policy (its AddPermission statements) lets Secrets Manager invoke it.

Evaluated by :mod:`strongroom.policy` as AWS evaluates a service principal's call; a statement
the engine cannot honour denies (fail closed), and no statement denies.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["SECRETS_MANAGER", "allows_secretsmanager"]

SECRETS_MANAGER = "secretsmanager.amazonaws.com"


def allows_secretsmanager(row: dict[str, Any], source_arn: str | None, source_account: str) -> bool:
    """Does the function's policy let Secrets Manager invoke it on behalf of the secret ``source_arn``?

    Evaluated by the policy engine as AWS does for a service principal: the statements'
    ``Principal``, ``Action`` and ``Resource`` must match, and their conditions see
    ``aws:SourceArn`` (the secret's ARN) and ``aws:SourceAccount``. No statement: no invocation.
    """
    from strongroom.policy import PolicyError, Request, evaluate, parse_policy

    statements = json.loads(row["policy"])
    if not statements:
        return False
    try:
        policy = parse_policy(json.dumps({"Version": "2012-10-17", "Statement": statements}))
    except PolicyError:
        return False  # fail closed on a statement the engine cannot honour
    context: dict[str, Any] = {"aws:SourceAccount": source_account}
    if source_arn is not None:
        context["aws:SourceArn"] = source_arn
    request = Request(
        principal_arn=SECRETS_MANAGER,
        principal_account=source_account,
        action="lambda:InvokeFunction",
        resource=row["arn"],
        resource_account=source_account,
        context=context,
    )
    return evaluate(request, [], [policy]).allowed
