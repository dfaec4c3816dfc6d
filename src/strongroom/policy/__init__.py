"""IAM policy documents: parsed strictly, evaluated with AWS's logic.

Written here because no maintained Python library evaluates IAM policies (the few that exist
cover a subset of operators and fall back silently on the rest, which is the one thing a policy
engine must not do).

The modules: :mod:`~strongroom.policy.parse` (documents parsed strictly, refusing what could not
be evaluated exactly), :mod:`~strongroom.policy.document` (the parsed shape; what "public"
means), :mod:`~strongroom.policy.match` (does a statement apply to a request),
:mod:`~strongroom.policy.evaluate` (AWS's evaluation order, the AccessDenied wording),
:mod:`~strongroom.policy.wildcard` (``*`` and ``?`` without backtracking) and
:mod:`~strongroom.policy.limits` (AWS's size quotas). This package only re-exports.
"""

from __future__ import annotations

from strongroom.policy.document import Condition, Policy, PolicyError, Statement
from strongroom.policy.evaluate import Decision, Request, access_denied_message, evaluate
from strongroom.policy.parse import load_json, parse_policy

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
