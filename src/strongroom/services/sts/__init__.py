"""STS: GetCallerIdentity and AssumeRole."""

from strongroom.services.sts.service import OPERATIONS, STS

__all__ = ["OPERATIONS", "STS"]
