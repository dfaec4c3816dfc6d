"""Staging labels: the three AWS manages, and the rules that move them."""

from __future__ import annotations

__all__ = [
    "AWSCURRENT",
    "AWSPENDING",
    "AWSPREVIOUS",
    "MAX_LABELS_PER_VERSION",
    "MAX_VERSIONS_KEPT",
    "RETENTION_SECONDS",
]

AWSCURRENT = "AWSCURRENT"
AWSPREVIOUS = "AWSPREVIOUS"
AWSPENDING = "AWSPENDING"

# AWS: "You can attach up to 20 staging labels to a version."
MAX_LABELS_PER_VERSION = 20
# AWS keeps the 100 most recent versions and every version made in the last 24 hours; older
# deprecated versions (no label) are removed.
MAX_VERSIONS_KEPT = 100
RETENTION_SECONDS = 24 * 3600
