"""PostgreSQL storage: Parse Server's table layout, served through an asyncpg pool.

``storage.py`` is the adapter; the modules beside it each do one of its jobs: ``dialect.py`` and
``regex.py`` compile the query IR, ``codecs.py`` converts values, ``errors.py`` turns PostgreSQL's
errors into Parse's, ``transaction.py`` holds a task's transaction, ``json_reads.py`` is the fast
read path (with ``object_json.py``, ``batched_reads.py`` and ``lateral.py``), ``pool.py`` the
connection pool and ``aggregate.py`` the aggregation spellings.
"""

from bastion.adapters.storage.postgres.dialect import PostgresDialect
from bastion.adapters.storage.postgres.storage import PostgresStorage

__all__ = ["PostgresDialect", "PostgresStorage"]
