"""Page work in child processes (crawler.workers): results are stored exactly as on the thread path, a dead
worker costs only its pages in flight, and workers never outlive the crawl process."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crawler.workers import PageWorkerDied, PageWorkerPool
from monitor.config import parse_config
from monitor.pagework import FetchResult
from storage import open_database
from storage import queries as q
from storage.models import Change, Fetch, Version

ROOT = Path(__file__).resolve().parent.parent
PAGE = ('<html><head><title>Page {i}</title></head><body><main property="mainContentOfPage"><h1>Permit {i}</h1>'
        '<h2>Fees</h2><p>The processing fee is {fee}.</p></main></body></html>')


def _config(db_url: str, n: int):
    return parse_config({"storage": {"url": db_url}, "crawl": {"allowed_domains": ["www.canada.ca"]},
                         "watch": [{"url": f"https://www.canada.ca/en/p{i}.html"} for i in range(n)]})


def _result(i: int, fee: str = "$155") -> FetchResult:
    return FetchResult(url=f"https://www.canada.ca/en/p{i}.html", status=200, content_type="text/html",
                       body=PAGE.format(i=i, fee=fee).encode())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _open_pool(tmp_path: Path, n: int, processes: int, start: int | None = None):
    """A fresh SQLite history with one open run, and a pool of page-work processes writing against it."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    db = open_database(url)
    with db.session() as s:
        run_id = q.open_run(s).id
    return db, PageWorkerPool(_config(url, n), run_id, True, processes, start)


def _run_night(db_url: str, n: int, fee: str, first: bool, processes: int = 2) -> list[str]:
    db = open_database(db_url)
    with db.session() as s:
        run_id = q.open_run(s).id
    pool = PageWorkerPool(_config(db_url, n), run_id, first, processes)

    async def go():
        return await asyncio.gather(*(pool.process(_result(i, fee)) for i in range(n)))
    try:
        outcomes = asyncio.run(go())
    finally:
        pool.shutdown()
        db.dispose()
    return [o.result for o in outcomes]


def test_two_workers_store_every_page_once_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert _run_night(url, 30, "$155", True) == ["new"] * 30  # baselines
    second = _run_night(url, 30, "$230", False)
    assert second == ["changed"] * 30
    db = open_database(url)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Fetch)) == 60
        assert s.scalar(select(func.count()).select_from(Version)) == 60
        changed = s.scalars(select(Change).where(Change.kind != "new_page")).all()
        assert len(changed) == 30 and all("$230" in (c.summary or "") for c in changed)
    db.dispose()


def test_a_worker_killed_between_batches_loses_nothing_and_the_pool_recovers(tmp_path):
    """kill -9 of an idle page-work process: the next batch finds the pipe broken before it goes in, so a new
    process gets it and every page is stored. (A batch the process held when it died is lost: see the
    pass-channel test below, and each page is one transaction, so nothing is half-written.)"""
    db, pool = _open_pool(tmp_path, 5, 1)

    async def go():
        assert (await pool.process(_result(0))).outcome == "ok"
        (victim,) = pool.pids()
        os.kill(victim, signal.SIGKILL)
        while _alive(victim):
            await asyncio.sleep(0.01)
        outcomes = [await pool.process(_result(i)) for i in range(1, 5)]
        assert [o.outcome for o in outcomes] == ["ok"] * 4
        assert victim not in pool.pids() and len(pool.pids()) == 1
    try:
        asyncio.run(go())
    finally:
        pool.shutdown()
    with db.session() as s:
        stored = set(s.scalars(select(Fetch.page_id)).all())
    assert len(stored) == 5
    db.dispose()


def test_workers_exit_when_the_crawl_process_is_killed(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    db = open_database(url)
    with db.session() as s:
        q.open_run(s)  # run 1, which the workers write against
    db.dispose()
    script = textwrap.dedent(f"""
        import asyncio, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from tests.test_workers import _config, _result
        from crawler.workers import PageWorkerPool
        pool = PageWorkerPool(_config({url!r}, 2), 1, True, 2)
        asyncio.run(pool.process(_result(0)))
        asyncio.run(pool.process(_result(1)))
        print(" ".join(map(str, pool.pids())), flush=True)
        time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(x) for x in p.stdout.readline().split()]
        assert pids and all(_alive(pid) for pid in pids)
        p.kill()  # kill -9: no chance to shut the pool down
        p.wait()
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in pids), "page workers outlived the crawl process"
    finally:
        if p.poll() is None:
            p.kill()


def test_page_workers_setting_is_validated():
    from monitor.config import ConfigError
    base = {"crawl": {"allowed_domains": ["www.canada.ca"]}}
    assert parse_config(base).crawl.page_worker_count() >= 1
    assert parse_config({"crawl": {**base["crawl"], "page_workers": 0}}).crawl.page_worker_count() == 0
    with pytest.raises(ConfigError, match="page_workers"):
        parse_config({"crawl": {**base["crawl"], "page_workers": -3}})


@pytest.mark.parametrize("workers", [0, 1])
def test_a_pass_stores_the_same_with_or_without_page_worker_processes(workers, permits_site, write_config, tmp_path):
    from tests.conftest import permits_config_body, policywatch
    body = permits_config_body(permits_site).replace("retries = 0\n", f"retries = 0\npage_workers = {workers}\n", 1)
    assert f"page_workers = {workers}" in body
    cfg = write_config(body)
    p = policywatch("run", "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    assert "5 fetched" in p.stdout and "0 failed" in p.stdout
    permits_site.night(2)
    p = policywatch("run", "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    import sqlite3
    con = sqlite3.connect(tmp_path / "history.db")
    try:
        changed = {u for (u,) in con.execute("SELECT url FROM change_log WHERE kind = 'changed'")}
    finally:
        con.close()
    assert permits_site.url("/en/work-permits.html") in changed


def test_results_travel_in_batches_and_one_pages_error_stays_its_own(tmp_path):
    """Many small results share a trip to a worker, yet each page is its own transaction: a page whose work
    fails gets its own error (with the worker's traceback as its cause), the others in its batch are stored."""
    from crawler.workers import RemoteTraceback

    db, pool = _open_pool(tmp_path, 12, 1)
    broken = FetchResult(url="https://www.canada.ca/en/p5.html", status=200, content_type="text/html",
                         body="text where bytes belong")  # type: ignore[arg-type]  # a bug in the caller

    async def go():
        items = [broken if i == 5 else _result(i) for i in range(12)]
        return await asyncio.gather(*(pool.process(item) for item in items), return_exceptions=True)
    try:
        results = asyncio.run(go())
    finally:
        pool.shutdown()
    assert isinstance(results[5], TypeError) and isinstance(results[5].__cause__, RemoteTraceback)
    assert "sha256" in str(results[5].__cause__)
    assert [r.result for i, r in enumerate(results) if i != 5] == ["new"] * 11
    assert pool.batches_sent < 12  # shared trips
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Version)) == 11
    db.dispose()


def test_workers_that_cannot_start_fail_every_page_as_fatal_and_nothing_hangs(tmp_path, monkeypatch):
    """A page-work process that dies before its first answer, twice, is not started a third time: its pages and
    every page queued after them fail with a fatal PageWorkerDied (the pipeline then stops the crawl), no wait."""
    import crawler.workers as workers

    monkeypatch.setattr(workers, "WORKER_COMMAND", [sys.executable, "-c", "import sys; sys.exit(3)"])
    db, pool = _open_pool(tmp_path, 40, 2)

    async def go():
        out = []
        for i in range(8):  # one batch a round: each worker dies at most twice, then none is left
            out += await asyncio.gather(*(pool.process(_result(i * 5 + j)) for j in range(5)), return_exceptions=True)
        return out
    try:
        results = asyncio.run(asyncio.wait_for(go(), 60))
    finally:
        pool.shutdown()
    assert all(isinstance(r, PageWorkerDied) for r in results)
    assert sum(not r.fatal for r in results) <= 4 * 5  # two starts per worker, five pages a batch
    assert results[-1].fatal and "cannot start" in str(results[-1])
    assert pool.pids() == []
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Fetch)) == 0
    db.dispose()


def test_workers_are_added_only_while_page_work_falls_behind(tmp_path):
    """Started with one worker of at most two: pages handed over one at a time (an unchanged night: the worker
    keeps up) start no other; a burst of batches queued behind the busy worker (a first pass) starts the second,
    and every page is stored once either way."""
    N = 20 + 16 * 192  # 16 waves, 0.1 s apart
    db, pool = _open_pool(tmp_path, N, 2, start=1)

    async def go():
        steady = [await pool.process(_result(i)) for i in range(20)]  # each awaited: never a queue
        workers_then = len(pool.workers)
        burst = []
        # A first pass: results keep coming faster than one worker stores them, for longer than GROW_WINDOW
        # (the pool looks at its workers' load as it hands batches over).
        for first in range(20, N, 192):
            burst += [asyncio.ensure_future(pool.process(_result(i))) for i in range(first, min(first + 192, N))]
            await asyncio.sleep(0.1)
        return steady + list(await asyncio.gather(*burst)), workers_then
    try:
        outcomes, workers_then = asyncio.run(go())
    finally:
        pool.shutdown()
    assert workers_then == 1
    assert len(pool.workers) == 2
    assert [o.result for o in outcomes] == ["new"] * N
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Version)) == N
    db.dispose()


def test_the_pass_s_page_work_serves_the_pool_and_a_broken_channel_is_replaced_by_a_process(tmp_path):
    """The first worker can be the pass's page work (monitor.pageserve.PassPageWork, over two pipes): it stores
    pages with no page-work process started. When that channel breaks mid-batch (the pass serving it died), only
    that batch's pages fail, and a page-work process takes its place for the rest."""
    import threading

    from crawler.workers import PassChannel
    from monitor.frames import read_frame
    from monitor.pageserve import PassPageWork

    db = open_database(f"sqlite:///{tmp_path / 'w.db'}")
    with db.session() as s:
        run_id = q.open_run(s).id
    config = _config(f"sqlite:///{tmp_path / 'w.db'}", 6)
    page_work = PassPageWork()
    pool = PageWorkerPool(config, run_id, True, 1, channel=PassChannel(page_work.fds))
    try:
        async def served():
            outcomes = [await pool.process(_result(i)) for i in range(2)]
            assert pool.pids() == [] and pool.spawned() == 0  # the pass's thread did it
            return [o.result for o in outcomes]
        assert asyncio.run(served()) == ["new", "new"]
    finally:
        pool.shutdown()
    page_work.join(10)
    assert not page_work.thread.is_alive() and page_work.error is None

    # A channel whose server reads the arguments and one batch, then goes away without answering.
    req_r, req_w = os.pipe()
    ans_r, ans_w = os.pipe()

    def dying_pass():
        with os.fdopen(req_r, "rb") as requests, os.fdopen(ans_w, "wb"):
            read_frame(requests), read_frame(requests)
    server = threading.Thread(target=dying_pass, daemon=True)
    server.start()
    pool = PageWorkerPool(config, run_id, True, 1, channel=PassChannel((req_w, ans_r)))
    try:
        async def broken():
            with pytest.raises(PageWorkerDied):
                await pool.process(_result(2))
            outcomes = [await pool.process(_result(i)) for i in range(3, 6)]
            assert len(pool.pids()) == 1 and pool.spawned() == 1  # a process in the channel's place
            return [o.result for o in outcomes]
        assert asyncio.run(broken()) == ["new"] * 3
    finally:
        pool.shutdown()
    server.join(5)
    with db.session() as s:
        count = s.scalar(select(func.count()).select_from(Fetch))
    db.dispose()
    assert count == 5  # pages 0, 1, 3, 4, 5: page 2 died with the channel, nothing half-written


def test_an_unusable_pass_channel_setting_falls_back_to_page_work_processes(caplog):
    """POLICYWATCH_PAGE_WORK_FDS is set by the pass; a value that is not two open descriptors is logged and
    ignored (the crawl's own page-work processes do all the work), never a crash."""
    from crawler.workers import PassChannel

    assert PassChannel.from_setting(None) is None and PassChannel.from_setting("") is None
    import resource

    beyond = resource.getrlimit(resource.RLIMIT_NOFILE)[0] + 10  # never an open descriptor of this process
    for value in ("three", "1,2,3", f"{beyond},{beyond + 1}"):
        caplog.clear()
        assert PassChannel.from_setting(value) is None
        assert "page-work processes do it all" in caplog.text and value in caplog.text
