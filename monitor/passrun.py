"""One monitoring pass: open a run, crawl in a child process, finish the run with its health, render reports.

Why a child process: Twisted's reactor cannot be restarted, and a crash or leak in a crawl must not take the
caller (the CLI, the scheduler daemon) down. The monitor never imports the crawler: it runs `python -P -m crawler crawl
watchlist` with `SCRAPY_SETTINGS_MODULE=crawler.settings`, and watches progress in the database.
"""
from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from monitor.child import python_module
from monitor.config import Config
from monitor.crawlplan import write_plan
from monitor.health import crawl_health
from monitor.memory import give_back_free_memory
from monitor.pageserve import PassPageWork
from storage import StorageError, open_database
from storage import queries as q
from storage.locks import LockGuard, LockLost, pass_lock

if TYPE_CHECKING:
    from reports.outbox import DeliveryReport

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
    delivery: "DeliveryReport | None" = None
    delivery_error: str | None = None


#: Logs, plans and results hold URLs, server answers and tracebacks: the operator's only (the reports beside
#: them are for publishing, 0644).
LOG_DIR_MODE, LOG_FILE_MODE = 0o700, 0o600


def private_log(log_dir: Path, name: str) -> Path:
    """`log_dir/name`, created 0600 in a 0700 folder (an existing file keeps what it has); OSError as raised."""
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


def result_file(log_file: Path) -> Path:
    """Where the crawl child reports pages it could not store (crawler.pipelines writes it at the end)."""
    return log_file.with_suffix(".result.json")


def plan_file(log_file: Path) -> Path:
    """Where the pass leaves the crawl its plan (monitor.crawlplan); removed when the crawl ends."""
    return log_file.with_suffix(".plan.jsonl")


def crawl_command(config_path: Path, run_id: int, log_file: Path, log_level: str = "INFO",
                  only: tuple[str, ...] = (), plan: Path | None = None,
                  page_work_fds: tuple[int, int] | None = None) -> list[str]:
    cmd = [*python_module("crawler"), "crawl", "watchlist", "-a", f"config={config_path}", "-a", f"run_id={run_id}",
           "-s", f"LOG_FILE={log_file}", "-s", f"LOG_LEVEL={log_level}", "-s", f"POLICYWATCH_RESULT_FILE={result_file(log_file)}"]
    if page_work_fds is not None:  # the pass serves page work too (monitor.pageserve)
        cmd += ["-s", "POLICYWATCH_PAGE_WORK_FDS={},{}".format(*page_work_fds)]
    # With a plan, the crawl reads its settings from stdin (crawl_settings) instead of parsing the config file.
    return cmd + (["-a", "only=" + "|".join(only)] if only else []) + (["-a", f"plan={plan}", "-a", "settings=stdin"] if plan else [])


def crawl_settings(config: Config) -> bytes:
    """What the crawl child reads from its stdin when it has a plan: the config without its watchlist, and the
    number of watches (the plan carries them). Why: parsing a 50,000-watch TOML file costs the crawl process ≈ 6 MB
    it never hands back (≈ 4 at 10,000), for settings the pass has parsed already. Pickled, over a pipe from the
    parent, as crawler.workers hands the page-work processes theirs; never through a file."""
    return pickle.dumps((config.without_watchlist(), len(config.watches)), pickle.HIGHEST_PROTOCOL)


def write_crawl_plan(db, config: Config, path: Path, only: tuple[str, ...] = ()) -> Path:
    """Answer what the crawl would ask the history (first run? pages discovered before? each page's validators)
    into `path`, with the watches, so the crawl process needs no database and no watchlist of its own
    (monitor.crawlplan says why)."""
    with db.session() as s:
        known = [(p.url, p.url_key) for p in q.known_discovered_pages(s, config.discovery.max_pages)]
        return write_plan(path, first_run=not q.has_completed_run(s), digest=config.digest(), watches=config.watches,
                          watch_keys=list(config.watch_keys()), known=known, lookup=lambda keys: q.validators(s, keys),
                          only=only)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    errors = [ln for ln in text if " ERROR: " in ln or "Error" in ln]
    return "\n".join((errors or text)[-lines:]).strip()


def run_pass(config: Config, *, progress: ProgressFn | None = None, timeout: float | None = None,
             job: str | None = None) -> PassResult:
    """Run one pass (the nightly one, or a `[[schedule.jobs]]` entry's subset when `job` is named).

    Raises StorageError (database unusable), PassError (crawl failed) or LockBusy (a pass is running)."""
    if config.path is None:
        raise PassError("the pass needs a config file on disk (the crawl child process reads it)")
    db = open_database(config.storage_url, migrate_in_child=True)  # Alembic not kept in memory through the crawl
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


def spawn_crawl(cmd: list[str], console_log: Path, stdin: bytes | None = None,
                pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[bytes]:
    """Start a Scrapy child (a local crawl or a cluster worker): crawler settings, `stdin` on its standard input
    (none: /dev/null), its own stdout/stderr in `console_log` (tracebacks land there), `pass_fds` inherited, and
    SIGTERM if this process dies, so no orphan crawl writes on."""
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "crawler.settings"}
    with open(private_log(console_log.parent, console_log.name), "wb") as console:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                                stdout=console, stderr=subprocess.STDOUT, pass_fds=pass_fds,
                                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    if stdin is not None:  # from a thread: a payload larger than the pipe must not block the pass
        threading.Thread(target=_feed, args=(proc, stdin), name="crawl-settings", daemon=True).start()
    return proc


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    try:
        proc.stdin.write(data)  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]
    except OSError:  # the child died first: its exit status says why
        pass


def _crawl_locally(db, config: Config, run_id: int, log_file: Path, only: tuple[str, ...],
                   progress: ProgressFn | None, timeout: float | None) -> str | None:
    """The crawl as a child process on this machine; returns a failure message, or None."""
    plan = write_crawl_plan(db, config, plan_file(log_file), only)
    # With page-work processes, this process serves the crawl's first page-work channel (monitor.pageserve: it
    # waits through the crawl holding most of what such a process would load).
    page_work = PassPageWork() if config.crawl.page_worker_count() else None
    fds = page_work.fds if page_work is not None else None
    cmd = crawl_command(config.path.resolve(), run_id, log_file, only=only, plan=plan, page_work_fds=fds)  # type: ignore[union-attr]
    expected = len(config.watches)
    started = time.monotonic()
    console_log = log_file.with_name(f"run-{run_id}.console.log")
    try:
        proc = spawn_crawl(cmd, console_log, stdin=crawl_settings(config), pass_fds=fds or ())
    except BaseException:
        plan.unlink(missing_ok=True)
        raise
    finally:
        if page_work is not None:
            page_work.started()  # the crawl's ends are the crawl's now: its exit ends the page work's requests
    try:
        with config.watchlist_set_aside():  # the crawl has it from its plan; the health check gets it back after
            message = _wait_for_crawl(db, proc, run_id, expected, progress, timeout, started)
    except BaseException:
        proc.terminate()
        proc.wait(30)
        raise
    finally:
        plan.unlink(missing_ok=True)
        if page_work is not None:
            page_work.join()  # its last transaction, before the health check counts the run
            _note_page_work_error(page_work, console_log)
            give_back_free_memory()
    rc = proc.returncode
    if rc != 0 and message is None:
        detail = _tail(console_log, 1) or _tail(log_file, 3)
        message = f"crawl process exited with status {rc}: {detail}"[:1000]
    return message or _storage_failures(log_file)


def _note_page_work_error(page_work: PassPageWork, console_log: Path) -> None:
    """The pass's page work failed (the crawl went on with a page-work process in its place, and its log says
    so): its traceback goes where the crawl's own land, beside the run's log."""
    if page_work.error is None:
        return
    try:
        with open(console_log, "a", encoding="utf-8") as out:
            out.write("the pass's page work failed; the crawl started a page-work process in its place:\n")
            out.write("".join(traceback.format_exception(page_work.error)))
    except OSError:
        pass


def _wait_for_crawl(db, proc: subprocess.Popen[bytes], run_id: int, expected: int, progress: ProgressFn | None,
                    timeout: float | None, started: float) -> str | None:
    """Show progress until the crawl ends; a message when the timeout stopped it."""
    while proc.poll() is None:
        if progress is not None:
            with db.session() as s:
                done = q.run_fetch_count(s, run_id)
            progress(done, max(expected, done))
        if timeout is not None and time.monotonic() - started > timeout:
            proc.terminate()
            proc.wait(30)
            return f"crawl stopped after the {timeout:.0f} s timeout"
        try:
            proc.wait(0.3)  # returns as soon as the crawl ends
        except subprocess.TimeoutExpired:
            pass
    return None


def _storage_failures(log_file: Path) -> str | None:
    """A crawl that ran but could not store some pages failed: say how many and why (they are fetched again,
    and compared with the last stored version, next pass)."""
    try:
        res = json.loads(result_file(log_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"the crawl did not report its result (see {log_file}); pages it could not store are retried next pass"
    n = int(res.get("page_errors") or 0)
    if not n:
        return None
    return f"{n} pages could not be stored (first: {res.get('first_error')}); they are fetched again next pass"[:1000]


def _lock_lost(guard: LockGuard) -> str | None:
    try:
        guard.check()
    except LockLost as exc:
        return str(exc)
    return None


def _locked_pass(db, full: Config, progress: ProgressFn | None, timeout: float | None, job: str | None,
                 guard: LockGuard) -> PassResult:
    """The pass proper, run while this process holds the pass lock."""
    only = full.job(job).url_prefixes if job else ()
    config = full.subset(only) if job else full
    with db.session() as s:
        # We hold the lock, so a run still marked "running" belongs to a pass that died (kill -9, power loss).
        q.fail_abandoned_runs(s)
        run_id = q.open_run(s, full.digest(), scope=job or "nightly").id
    extra: dict = {}
    try:
        log_file = private_log(config.reports_dir / "logs", f"run-{run_id}.log")
        if config.cluster is not None:  # a distributed pass: seed Redis, let `policywatch worker`s drain it
            from monitor.cluster import ClusterError, coordinate

            try:
                message, extra = coordinate(db, config, run_id, progress, timeout)
            except ClusterError as exc:
                message = str(exc)
        else:
            message = _crawl_locally(db, config, run_id, log_file, only, progress, timeout)
    except OSError as exc:  # a full disk under the logs or the crawl plan: nothing was crawled
        failure = StorageError(disk_error("the pass's logs", exc))
        failure.fatal = True
        with db.session() as s:
            q.finish_run(s, run_id, "failed", str(failure)[:1000])
        raise failure from None
    except BaseException as exc:  # Ctrl-C, SIGTERM (cli.Terminated): the crawl is stopped; record the run as failed
        with db.session() as s:
            q.finish_run(s, run_id, "failed", f"interrupted ({type(exc).__name__}); the crawl was stopped")
        raise
    lost = _lock_lost(guard)  # another pass took over while ours crawled (its lock connection died)
    message = message or lost
    status = "completed" if message is None else "failed"
    with db.session() as s:
        health = {**crawl_health(s, run_id, config), **extra}
        run = q.finish_run(s, run_id, status, message, health)
        counts = q.run_counts(s, run_id)
    # Imported after the crawl: the pass process waits through the whole crawl, and what it holds then adds to the
    # peak of the process tree (Jinja, the mail and site modules: ≈ 3 MB it needs only from here on).
    from monitor.delivery import deliver, publish_site
    from reports.data import load_run_report
    from reports.render import write_run_reports

    report_error = None
    try:
        with db.session() as s:
            data = load_run_report(s, run_id, {n: t.display for n, t in config.topics.items()})
            paths = write_run_reports(data, config.reports_dir)
        paths["site"] = publish_site(db, config, run_id)
    except OSError as exc:  # the run and its changes are stored: the reports can be built again, digests still go
        paths = {}
        report_error = disk_error("the reports", exc) + "; the run and its changes are stored: `policywatch site` " \
            "rebuilds the reports"
    result = PassResult(run_id, run.status, counts, paths, health, log_file, message)
    lost = lost or _lock_lost(guard)
    if lost:  # digests go out from one pass at a time, or not at all: the pass holding the lock sends them
        raise PassError(lost)
    try:  # still under the pass lock: digests are built from finished runs only, by one process at a time
        # A job's pass (e.g. hourly JSON) leaves its changes to the next nightly digest; operators still hear of trouble.
        result.delivery = deliver(db, config, run_id=run_id, subscribers=job is None)
    except Exception as exc:  # a mail bug must not hide the pass's result; the outbox keeps what is pending
        result.delivery_error = f"{type(exc).__name__}: {exc}"
    if report_error:
        failure = StorageError(report_error + (f"; digests: {result.delivery_error}" if result.delivery_error else ""))
        failure.fatal = True
        raise failure
    if status != "completed":
        raise PassError(message or "crawl failed")
    return result
