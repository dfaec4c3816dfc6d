"""Relational storage: one code path for SQLite (the default) and PostgreSQL.

:mod:`strongroom.store.database` is the contract (:class:`Database`, :class:`Tx`);
:mod:`strongroom.store.sqlite` and :mod:`strongroom.store.postgres` the engines;
:mod:`strongroom.store.schema` the migrations; the other modules the queries, one per table family.
This package only re-exports.
"""

from strongroom.store.database import Conflict, Database, Tx, Unstorable, WriteHook, open_database, write_hook

__all__ = ["Conflict", "Database", "Tx", "Unstorable", "WriteHook", "open_database", "write_hook"]
