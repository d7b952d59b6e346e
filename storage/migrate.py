"""Migrate a history database in a short-lived child process: `python -P -m storage.migrate`, the URL in the
environment (`POLICYWATCH_MIGRATE_URL`: never on a command line, where `ps` would show a password).

Why: Alembic, Mako and the migration scripts cost a process ≈ 13 MB that it keeps to its end; the pass process
migrates a new database (its first night, or after an upgrade) and then waits out the whole crawl with them
(10,000 pages: the pass 78 → 65 MB during its first crawl). `open_database(url, migrate_in_child=True)` runs
this instead of migrating in place; errors come back as the same one line.
"""
from __future__ import annotations

import os
import subprocess
import sys

from storage.db import StorageError, open_database

ENV = "POLICYWATCH_MIGRATE_URL"
EXIT_REFUSED = 3


def in_child(url: str) -> None:
    """Create or upgrade the database at `url` in a child process; raise StorageError with its one-line reason."""
    env = {**os.environ, ENV: url}
    done = subprocess.run([sys.executable, "-P", "-m", "storage.migrate"], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        reason = lines[-1] if done.returncode == EXIT_REFUSED and lines else (
            f"the migration process failed (exit {done.returncode}): {' | '.join(lines[-3:]) or 'no output'}")
        raise StorageError(reason)


def main() -> int:
    url = os.environ.get(ENV)
    if not url:
        print(f"{ENV} is not set", file=sys.stderr)
        return 2
    try:
        open_database(url).dispose()
    except StorageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main())
