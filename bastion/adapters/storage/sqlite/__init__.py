"""SQLite storage (storage.py) and its helpers."""

from bastion.adapters.storage.sqlite.storage import SqliteDialect, SqliteStorage

__all__ = ["SqliteDialect", "SqliteStorage"]
