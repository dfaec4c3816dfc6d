"""Re-export: the request context lives in the leaf module :mod:`strongroom.context`."""

from strongroom.context import RequestContext

__all__ = ["RequestContext"]
