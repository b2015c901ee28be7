"""SQLite storage: the embedded default, Parse Server's PostgreSQL layout mirrored.

``storage.py`` is the adapter; beside it ``threads.py`` runs its calls on reader threads and one
writer thread, ``dialect.py`` compiles the query IR, ``functions.py`` holds the SQL functions that
SQL calls, ``columns.py`` the columns of fields equal but for case, ``aggregate.py`` the
aggregation spellings.
"""

from bastion.adapters.storage.sqlite.dialect import SqliteDialect
from bastion.adapters.storage.sqlite.storage import SqliteStorage

__all__ = ["SqliteDialect", "SqliteStorage"]
