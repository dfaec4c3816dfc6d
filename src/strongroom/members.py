"""A marker for answers a service built without absent members.

AWS omits absent members instead of sending ``null``, so the JSON protocol drops ``None`` values
at every depth before it serializes an answer. That walk is the largest single cost of a page of
ListSecrets (100 entries of a dozen members each). A service that builds a part of its answer
with no ``None`` anywhere inside wraps it in :class:`Members`, and the protocol serializes it as
it is: the walk looks only at plain ``dict`` and ``list`` values.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Members", "without_none"]


class Members(dict):  # type: ignore[type-arg]
    """A ``dict`` with no ``None`` at any depth."""


def without_none(value: Any) -> Any:
    """``value`` with ``None`` members dropped at every depth (for data read back from storage)."""
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value if v is not None]
    return value
