"""One monitoring pass: open a run, crawl in a child process, finish the run with its health, render reports.

Why a child process: Twisted's reactor cannot be restarted, and a crash or leak in a crawl must not take the
caller (the CLI, the scheduler daemon) down. The monitor never imports the crawler: it runs `python -P -m
policywatch.crawler crawl watchlist` (Scrapy's command line) with
`SCRAPY_SETTINGS_MODULE=policywatch.crawler.settings`; the crawl reads the config file and the history itself,
stores each page in its own transaction, and the pass watches progress in the database.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from policywatch.monitor.config import Config
from policywatch.monitor.handoff import CrawlReport, CrawlRequest, HandoffError
from policywatch.monitor.nightly.child import python_module
from policywatch.monitor.nightly.health import crawl_health
from policywatch.storage import Database, StorageError, open_database
from policywatch.storage import queries as q
from policywatch.storage.locks import LockGuard, LockLost, pass_lock

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from policywatch.reports.outbox import DeliveryReport

ProgressFn = Callable[[int, int], None]


class PassError(Exception):
    """The pass could not complete (the crawl crashed or could not start)."""


@dataclass
class PassResult:
    run_id: int
    status: str
    counts: dict[str, int]
    reports: dict[str, Path] = field(default_factory=dict)
    health: dict = field(default_factory=dict)
    log_file: Path | None = None
    message: str | None = None
    delivery: DeliveryReport | None = None
    delivery_error: str | None = None


#: Logs and results hold URLs, server answers and tracebacks: the operator's only (the reports beside
#: them are for publishing, 0644).
LOG_DIR_MODE, LOG_FILE_MODE = 0o700, 0o600


def private_log(log_dir: Path, name: str) -> Path:
    """`log_dir/name`, created 0600 in a 0700 folder (an existing file keeps what it has); OSError as
    raised."""
    log_dir.mkdir(parents=True, exist_ok=True)
    if log_dir.stat().st_mode & 0o077:
        os.chmod(log_dir, LOG_DIR_MODE)
    path = log_dir / name
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, LOG_FILE_MODE))
    return path


def disk_error(what: str, exc: OSError) -> str:
    """One line for a file the pass could not write (a full disk, a read-only folder)."""
    where = f" ({exc.filename})" if exc.filename else ""
    return f"could not write {what}{where}: {exc.strerror or exc}"


def crawl_command(request_file: Path, log_file: Path, log_level: str = "INFO") -> list[str]:
    """The crawl child's command line: Scrapy's own settings (its log), and the typed request for the rest."""
    return [
        *python_module("policywatch.crawler"),
        "crawl",
        "watchlist",
        "-a",
        f"request={request_file}",
        "-s",
        f"LOG_FILE={log_file}",
        "-s",
        f"LOG_LEVEL={log_level}",
    ]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    errors = [ln for ln in text if " ERROR: " in ln or "Error" in ln]
    return "\n".join((errors or text)[-lines:]).strip()


def run_pass(
    config: Config,
    *,
    progress: ProgressFn | None = None,
    timeout: float | None = None,
    job: str | None = None,
) -> PassResult:
    """Run one pass (the nightly one, or a `[[schedule.jobs]]` entry's subset when `job` is named).

    Raises StorageError (database unusable), PassError (crawl failed) or LockBusy (a pass is running)."""
    if config.path is None:
        raise PassError("the pass needs a config file on disk (the crawl child process reads it)")
    db = open_database(config.storage_url)
    try:
        with pass_lock(db.engine) as guard:
            return _locked_pass(db, config, progress, timeout, job, guard)
    finally:
        db.dispose()


def _die_with_parent() -> None:
    """In the crawl child: get SIGTERM if the pass process dies (Linux), so no orphan crawl writes on."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def spawn_crawl(cmd: list[str], console_log: Path) -> subprocess.Popen[bytes]:
    """Start the Scrapy child: crawler settings, no standard input, its own stdout/stderr in `console_log`
    (tracebacks land there), and SIGTERM if this process dies, so no orphan crawl writes on."""
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "policywatch.crawler.settings"}
    with open(private_log(console_log.parent, console_log.name), "wb") as console:
        return subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )


def _crawl(
    db,
    config: Config,
    run_id: int,
    log_file: Path,
    only: tuple[str, ...],
    digest: str,
    progress: ProgressFn | None,
    timeout: float | None,
) -> tuple[str | None, CrawlReport | None]:
    """The crawl as a child process: its failure message (None: it ran and stored every page) and its report
    (None when it wrote none: it crashed, or could not start)."""
    assert config.path is not None  # run_pass refuses a config without a file
    report_file = log_file.with_suffix(".report.json")
    report_file.unlink(missing_ok=True)
    request_file = log_file.with_suffix(".request.json")
    CrawlRequest(
        config_path=str(config.path.resolve()),
        config_digest=digest,
        run_id=run_id,
        only=only,
        report_path=str(report_file),
    ).write(request_file)
    cmd = crawl_command(request_file, log_file)
    started = time.monotonic()
    console_log = log_file.with_name(f"run-{run_id}.console.log")
    proc = spawn_crawl(cmd, console_log)
    try:
        message = _wait_for_crawl(db, proc, run_id, len(config.watches), progress, timeout, started)
    except BaseException:
        stop_crawl(proc)
        raise
    rc = proc.returncode
    if rc != 0 and message is None:
        detail = _tail(console_log, 1) or _tail(log_file, 3)
        message = f"crawl process exited with status {rc}: {detail}"[:1000]
    try:
        report: CrawlReport | None = CrawlReport.read(report_file)
    except HandoffError as exc:
        report = None
        if message is None:
            message = (
                f"the crawl did not report its result ({exc}; see {log_file}); pages it could not store "
                "are retried next pass"
            )
    if report is not None and report.run_id != run_id:
        message = message or f"the crawl reported on run {report.run_id}, not run {run_id}"
        report = None
    return message or _storage_failures(report), report


#: How long the crawl may take to stop gracefully (Scrapy finishes the requests in flight) before it is
#: killed: a server that holds a request open must not turn a clean stop into a failed one.
STOP_GRACE = 10.0


def stop_crawl(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        log.warning("the crawl did not stop within %.0f s of SIGTERM: killed", STOP_GRACE)
        proc.kill()
        proc.wait()


def _wait_for_crawl(
    db,
    proc: subprocess.Popen[bytes],
    run_id: int,
    expected: int,
    progress: ProgressFn | None,
    timeout: float | None,
    started: float,
) -> str | None:
    """Show progress until the crawl ends; a message when the timeout stopped it."""
    while proc.poll() is None:
        if progress is not None:
            with db.session() as s:
                done = q.run_fetch_count(s, run_id)
            progress(done, max(expected, done))
        if timeout is not None and time.monotonic() - started > timeout:
            stop_crawl(proc)
            return f"crawl stopped after the {timeout:.0f} s timeout"
        try:
            proc.wait(0.3)  # returns as soon as the crawl ends
        except subprocess.TimeoutExpired:
            pass
    return None


def _storage_failures(report: CrawlReport | None) -> str | None:
    """A crawl that ran but could not store some pages failed: say how many and why (they are fetched again,
    and compared with the last stored version, next pass)."""
    if report is None or not report.pages_failed:
        return None
    first = report.failures[0] if report.failures else None
    where = f" (first: {first.url}: {first.error})" if first else ""
    return f"{report.pages_failed} pages could not be stored{where}; they are fetched again next pass"[:1000]


def _lock_lost(guard: LockGuard) -> str | None:
    try:
        guard.check()
    except LockLost as exc:
        return str(exc)
    return None


def _locked_pass(
    db: Database,
    full: Config,
    progress: ProgressFn | None,
    timeout: float | None,
    job: str | None,
    guard: LockGuard,
) -> PassResult:
    """The pass proper, run while this process holds the pass lock."""
    only = full.job(job).url_prefixes if job else ()
    config = full.subset(only) if job else full
    with db.session() as s:
        # We hold the lock, so a run still marked "running" belongs to a pass that died (kill -9, power loss).
        q.fail_abandoned_runs(s)
        run_id = q.open_run(s, full.digest(), scope=job or "nightly").id
    try:
        log_file = private_log(config.reports_dir / "logs", f"run-{run_id}.log")
        message, report = _crawl(db, config, run_id, log_file, only, full.digest(), progress, timeout)
    except OSError as exc:  # a full disk under the logs: nothing was crawled
        failure = StorageError(disk_error("the pass's logs", exc))
        failure.fatal = True
        with db.session() as s:
            q.finish_run(s, run_id, "failed", str(failure)[:1000])
        raise failure from None
    except (
        BaseException
    ) as exc:  # Ctrl-C, SIGTERM (cli.Terminated): the crawl is stopped; record the run as failed
        with db.session() as s:
            q.finish_run(s, run_id, "failed", f"interrupted ({type(exc).__name__}); the crawl was stopped")
        raise
    lost = _lock_lost(guard)  # another pass took over while ours crawled (its lock connection died)
    message = message or lost
    status = "completed" if message is None else "failed"
    with db.session() as s:
        health = crawl_health(s, run_id, config)
        health["discovery_failures"] = [f.model_dump() for f in report.discovery_failed] if report else []
        run = q.finish_run(s, run_id, status, message, health)
        counts = q.run_counts(s, run_id)
    paths, report_error = _write_reports(db, config, run_id)
    result = PassResult(run_id, run.status, counts, paths, health, log_file, message)
    lost = lost or _lock_lost(guard)
    if lost:  # digests go out from one pass at a time, or not at all: the pass holding the lock sends them
        raise PassError(lost)
    try:  # still under the pass lock: digests are built from finished runs only, by one process at a time
        # A job's pass (e.g. hourly JSON) leaves its changes to the next nightly digest; operators still hear
        # of trouble.
        from policywatch.monitor.nightly.delivery import deliver

        result.delivery = deliver(db, config, run_id=run_id, subscribers=job is None)
    except Exception as exc:  # a mail bug must not hide the pass's result; the outbox keeps what is pending
        result.delivery_error = f"{type(exc).__name__}: {exc}"
    if report_error:
        failure = StorageError(
            report_error + (f"; digests: {result.delivery_error}" if result.delivery_error else "")
        )
        failure.fatal = True
        raise failure
    if status != "completed":
        raise PassError(message or "crawl failed")
    return result


def _write_reports(db: Database, config: Config, run_id: int) -> tuple[dict[str, Path], str | None]:
    """The run's reports (and the previous one's link to them) and the site; on a full disk, no paths and the
    reason — the run and its changes are stored, the reports can be built again."""
    from policywatch.monitor.nightly.delivery import publish_site
    from policywatch.reports.data import load_run_report
    from policywatch.reports.render import write_run_reports

    try:
        with db.session() as s:
            names = {n: t.display for n, t in config.topics.items()}
            zone = config.schedule.timezone
            parity = (config.parity.languages, config.parity.grace_days)
            data = load_run_report(s, run_id, names, timezone=zone, parity=parity)
            paths = write_run_reports(data, config.reports_dir)
            prev = data.prev_run_id
            if prev is not None and (config.reports_dir / f"run-{prev}.html").exists():
                # the previous report gains its link to this one
                write_run_reports(
                    load_run_report(s, prev, names, timezone=zone, parity=parity),
                    config.reports_dir,
                    latest=False,
                )
        paths["site"] = publish_site(db, config, run_id)
    except OSError as exc:
        return {}, (
            disk_error("the reports", exc) + "; the run and its changes are stored: `policywatch site` "
            "rebuilds the reports"
        )
    return paths, None
