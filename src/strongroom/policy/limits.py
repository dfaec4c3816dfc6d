"""AWS's policy size quotas, counted as AWS counts them.

Besides fidelity, the quotas bound what one request can cost: every statement, pattern and
condition of a stored policy is evaluated on each request it applies to, so a stored policy is
never longer than AWS would store.

* IAM inline policies: the *aggregate* of all inline policies of one user may not exceed 2,048
  characters, of one role 10,240 (``LimitExceeded``, HTTP 409: ``Maximum policy size of 2048 bytes
  exceeded for user NAME`` / ``... of 10240 bytes exceeded for role NAME``). Replacing a policy of
  the same name counts the new document instead of the old one.
* A role's trust policy: 2,048 characters (AWS's default quota, which an AWS account may have
  raised to 4,096; strongroom keeps the default): ``LimitExceeded``, ``Cannot exceed quota for
  ACLSizePerRole: 2048``.
* IAM counts characters without white space (AWS: "IAM does not count white space when
  calculating the size of a policy"); strongroom leaves out space, tab, CR and LF wherever they are,
  the only white space a policy document may contain in JSON.
* A secret's resource policy: 20,480 characters, white space included (the model's length limit on
  ``ResourcePolicy``; the protocol layer answers ``ValidationException`` before the service runs).
"""

from __future__ import annotations

__all__ = ["INLINE_POLICY_LIMITS", "RESOURCE_POLICY_LIMIT", "TRUST_POLICY_LIMIT", "iam_size"]

INLINE_POLICY_LIMITS = {"user": 2048, "role": 10240}
TRUST_POLICY_LIMIT = 2048
RESOURCE_POLICY_LIMIT = 20480
_WHITE = " \t\r\n"


def iam_size(document: str) -> int:
    """The size IAM charges a policy document against its quotas: characters, white space not counted."""
    return len(document) - sum(document.count(c) for c in _WHITE)
