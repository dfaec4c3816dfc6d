"""The AWS Lambda API, the part rotation needs."""

from strongroom.services.lambda_.service import BUILTINS, OPERATIONS, Lambda

__all__ = ["BUILTINS", "OPERATIONS", "Lambda"]
