"""The `policywatch` command line (Typer + rich), one module per group of commands.

Contract (see README): every subcommand takes `--config PATH`; machine-readable output (JSON, CSV, NDJSON)
goes to stdout and nothing else does; logs and progress go to stderr. Exit codes: 0 done, 1 the pass or
command failed, 2 bad usage or configuration, 3 database unusable, 4 another pass is running, 130 interrupted
(Ctrl-C), 143 stopped by SIGTERM.
"""

from __future__ import annotations

import sys

import typer

# Each module registers its commands on the app.
from policywatch.monitor.cli import backfill, data, history, passes, reports, setup  # noqa: F401
from policywatch.monitor.cli.common import (
    EXIT_FAILED,
    EXIT_STORAGE,
    EXIT_USAGE,
    CliError,
    Terminated,
    app,
    err,
)
from policywatch.monitor.config import ConfigError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console entry point: turn known errors into one-line messages and exit codes."""
    from sqlalchemy.exc import DBAPIError

    from policywatch.storage.db import StorageError, describe_error

    try:
        app(args=argv, standalone_mode=False)
    except CliError as exc:
        sys.stderr.write(f"policywatch: {exc}\n")
        sys.exit(exc.code)
    except ConfigError as exc:
        sys.stderr.write(f"policywatch: config error: {exc}\n")
        sys.exit(EXIT_USAGE)
    except StorageError as exc:
        sys.stderr.write(f"policywatch: {exc}\n")
        sys.exit(EXIT_STORAGE)
    except (
        DBAPIError
    ) as exc:  # the database failed mid-command (locked, disk full, server gone): one line, exit 3
        sys.stderr.write(f"policywatch: {describe_error(exc)}\n")
        sys.exit(EXIT_STORAGE)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("policywatch: aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("policywatch: interrupted")
        sys.exit(130)
    except Terminated:
        err.print("policywatch: terminated (SIGTERM); the pass was stopped and recorded as failed")
        sys.exit(143)
    except OSError as exc:  # a file policywatch could not write or read (full disk, permissions): one line
        import errno

        where = f" {exc.filename}" if exc.filename else ""
        sys.stderr.write(
            f"policywatch: cannot write{where}: {exc.strerror or exc}\n"
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)
            else f"policywatch: {exc.strerror or exc}:{where}\n"
        )
        sys.exit(
            EXIT_STORAGE if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO) else EXIT_FAILED
        )
    except Exception as exc:  # Click usage errors (Typer vendors Click) arrive here in non-standalone mode
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show(file=sys.stderr)
            sys.exit(EXIT_USAGE if exc.exit_code == 2 else exc.exit_code)
        raise


if __name__ == "__main__":
    main()
