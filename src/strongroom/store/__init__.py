"""Relational storage: one code path for SQLite (the default) and PostgreSQL."""

from strongroom.store.database import Conflict, Database, Tx, Unstorable, open_database

__all__ = ["Conflict", "Database", "Tx", "Unstorable", "open_database"]
