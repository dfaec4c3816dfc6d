"""CloudTrail: LookupEvents."""

from strongroom.services.cloudtrail.service import OPERATIONS, CloudTrail

__all__ = ["OPERATIONS", "CloudTrail"]
