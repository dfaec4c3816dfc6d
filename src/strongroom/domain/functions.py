"""What a Lambda ``FunctionName`` refers to, and what IAM authorizes a call on.

Lambda accepts one function under many spellings: ``F``, ``F:$LATEST``, the partial ARN
``123456789012:function:F``, the full ARN ``arn:aws:lambda:us-east-1:123456789012:function:F``,
each with an optional ``:qualifier`` (and a separate ``Qualifier`` member on some operations).
Every spelling is resolved here, once, to a :class:`FunctionRef`; the authorizer and the service
both use :func:`resolve_function`, so a policy written for the function's ARN decides every
spelling of it (a ``Deny`` on ``…:function:F`` once missed ``123456789012:function:F`` and
``F:$LATEST``, which the authorizer compared as raw text).

Edge cases, as AWS answers them:

* a spelling that does not match the model's pattern, or a bare name longer than 64
  characters: ``ValidationException`` in the model's words;
* an ARN of another region: ``ResourceNotFoundException: Functions from 'R' are not reachable in
  this region ('S')``;
* a qualifier in the name and a different ``Qualifier`` member:
  ``InvalidParameterValueException: The derived qualifier from the function name does not match
  the specified qualifier.``;
* an ARN of another account resolves to that account; IAM then decides it as a cross-account call
  (strongroom keeps no cross-account function grants, so only the service's not-found follows).

Qualified calls are authorized on the unqualified function ARN **and** on the qualified ARN: AWS
authorizes a qualified call on the qualified ARN, and strongroom's only version, ``$LATEST``, is
the function itself, so a ``Deny`` on either ARN applies (a policy allowing ``…:function:F*``
allows both).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from strongroom.errors import AWSError

__all__ = ["LAMBDA_SERVICE", "FunctionRef", "authorization_requests", "lambda_action", "resolve_function"]

LAMBDA_SERVICE = "lambda.amazonaws.com"
_MAX_NAME = 64  # "If you specify only the function name, it is limited to 64 characters in length."
# The model's NamespacedFunctionName pattern with its parts named (botocore lambda 2015-03-31).
_REF = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:)?"
    r"(?:(?P<region>(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?(?:function:)?(?P<name>[a-zA-Z0-9-_.]+)"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9-_]+))?"
)
_SHOWN_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?"
)


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """One function (and the qualifier it was named with, if any)."""

    partition: str
    region: str
    account: str
    name: str
    qualifier: str | None = None

    @property
    def arn(self) -> str:
        """The unqualified function ARN: the function itself."""
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{self.name}"

    @property
    def qualified_arn(self) -> str:
        return self.arn if self.qualifier is None else f"{self.arn}:{self.qualifier}"

    def resources(self) -> tuple[str, ...]:
        """The ARNs a call on this reference is authorized on (see the module docstring)."""
        return (self.arn,) if self.qualifier is None else (self.arn, self.qualified_arn)


def _validation(value: str, constraint: str) -> AWSError:
    return AWSError(
        "ValidationException",
        f"1 validation error detected: Value '{value}' at 'functionName' failed to satisfy constraint: {constraint}",
    )


def resolve_function(
    ref: str, account_id: str, region: str, qualifier: str | None = None, partition: str = "aws"
) -> FunctionRef:
    """The function ``ref`` names for a caller in ``account_id`` / ``region`` (raises AWS's errors)."""
    m = _REF.fullmatch(ref)
    if m is None:
        raise _validation(ref, f"Member must satisfy regular expression pattern: {_SHOWN_PATTERN}")
    name = m.group("name")
    if len(name) > _MAX_NAME:
        raise _validation(ref, f"Member must have length less than or equal to {_MAX_NAME}")
    named_region = m.group("region") or region
    if named_region != region:
        raise AWSError(
            "ResourceNotFoundException",
            f"Functions from '{named_region}' are not reachable in this region ('{region}')",
            404,
        )
    derived = m.group("qualifier")
    if qualifier == "":
        qualifier = None
    if derived is not None and qualifier is not None and derived != qualifier:
        raise AWSError(
            "InvalidParameterValueException",
            "The derived qualifier from the function name does not match the specified qualifier.",
        )
    return FunctionRef(partition, region, m.group("account") or account_id, name, derived or qualifier)


def lambda_action(operation: str) -> str:
    """The IAM action of a Lambda operation (Invoke is ``lambda:InvokeFunction``)."""
    return "lambda:InvokeFunction" if operation == "Invoke" else f"lambda:{operation}"


def authorization_requests(
    account_id: str, region: str, partition: str, operation: str, params: dict[str, Any]
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """``(action, resource, resource account, condition keys)`` for each decision a call needs.

    Every ARN the function reference resolves to (see :class:`FunctionRef`), then ``iam:PassRole``
    on a ``Role`` the call hands to Lambda, with ``iam:PassedToService`` as AWS sets it.
    """
    out: list[tuple[str, str, str, dict[str, Any]]] = []
    action = lambda_action(operation)
    if "FunctionName" in params:
        ref = resolve_function(params["FunctionName"], account_id, region, params.get("Qualifier"), partition)
        out.extend((action, resource, ref.account, {}) for resource in ref.resources())
    else:
        out.append((action, "*", account_id, {}))
    role = params.get("Role")
    if role and operation in ("CreateFunction", "UpdateFunctionConfiguration"):
        parts = role.split(":")
        out.append(
            ("iam:PassRole", role, parts[4] if len(parts) > 4 else account_id, {"iam:PassedToService": LAMBDA_SERVICE})
        )
    return out
