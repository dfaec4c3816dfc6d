"""Relational storage: one code path for SQLite (the default) and PostgreSQL."""

from strongroom.store.database import Conflict, Database, Tx, Unstorable, WriteHook, open_database, write_hook

__all__ = ["Conflict", "Database", "Tx", "Unstorable", "WriteHook", "open_database", "write_hook"]
