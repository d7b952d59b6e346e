"""policywatch's history database: models, migrations and queries.

Storage is the hub of the data flow: the crawler, the monitor and the reports use it; it imports none of them.
"""

from policywatch.storage.db import Database, StorageError, open_database

__all__ = ["Database", "StorageError", "open_database"]
