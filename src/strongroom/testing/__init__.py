"""Helpers for tests — strongroom's own, and other projects' that want a real Secrets Manager.

:class:`ServerProcess` starts ``strongroom serve`` on a free loopback port in a subprocess and
stops it by its PID; :func:`postgres_schema` gives a test run its own PostgreSQL schema.
"""

from strongroom.testing.server import ServerProcess, free_port, postgres_schema
from strongroom.testing.waiting import wait_for

__all__ = ["ServerProcess", "free_port", "postgres_schema", "wait_for"]
