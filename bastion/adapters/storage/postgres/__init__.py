"""PostgreSQL storage (storage.py) and its helpers."""

from bastion.adapters.storage.postgres.storage import PostgresDialect, PostgresStorage

__all__ = ["PostgresDialect", "PostgresStorage"]
