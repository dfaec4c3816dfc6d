"""The web console at ``/console/`` (docs/console.md): :class:`~strongroom.server.console.app.Console`."""

from strongroom.server.console.app import Console

__all__ = ["Console"]
