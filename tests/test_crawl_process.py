"""The crawl process carries only what a crawl uses: a real `watchlist` crawl in a fresh interpreter, then its
loaded modules. Each module named here cost the crawl process megabytes on every night (BENCHMARKS.md).
A pass's crawl (run id and crawl plan given) never opens the database: storage and SQLAlchemy stay in the
page work (the pass's thread and page-work processes)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import ROOT, permits_config_body

# What the crawl must not import, and why it once did.
UNUSED = {
    "scrapy_redis": "the cluster worker spider, imported by Scrapy's loader for every crawl",
    "redis": "the same, through scrapy-redis",
    "aiohttp": "Scrapy's remote-control extension module, imported even when disabled",
    "tldextract": "Scrapy's cookies middleware module (cookies are off)",
    "requests": "the same, through tldextract",
}

CRAWL = """
import json, sys
from scrapy.crawler import CrawlerProcess
from scrapy.utils.project import get_project_settings
process = CrawlerProcess(get_project_settings())
crawler = process.create_crawler("watchlist")
process.crawl(crawler, config=sys.argv[1], **json.loads(sys.argv[2]))
process.start()
stats = crawler.stats.get_stats()
print(json.dumps({"modules": sorted(sys.modules), "responses": stats.get("downloader/response_count", 0)}))
"""


def _crawl(config: Path, tmp_path: Path, **args: str) -> dict:
    script = tmp_path / "crawl.py"
    script.write_text(CRAWL, encoding="utf-8")
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "crawler.settings", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-P", str(script), str(config), json.dumps(args)], capture_output=True,
                          text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_watchlist_crawl_imports_no_unused_integration(permits_site, write_config, tmp_path):
    result = _crawl(write_config(permits_config_body(permits_site)), tmp_path)
    assert result["responses"] >= 4  # a real crawl of the fixture site, robots.txt and the watchlist
    loaded = {m.split(".")[0] for m in result["modules"]}
    assert "scrapy" in loaded and "crawler" in loaded
    assert {m: why for m, why in UNUSED.items() if m in loaded} == {}


@contextmanager
def _before_the_crawl(path: Path, tmp_path: Path):
    """What a pass does before it starts its crawl: load the config, open a run, write the crawl plan."""
    from monitor.config import load_config
    from monitor.passrun import write_crawl_plan
    from storage import open_database
    from storage import queries as q

    config = load_config(path)
    db = open_database(config.storage_url)
    try:
        with db.session() as s:
            run_id = q.open_run(s, config.digest()).id
        yield config, db, run_id, write_crawl_plan(db, config, tmp_path / "run.plan.jsonl")
    finally:
        db.dispose()


def test_a_pass_s_crawl_leaves_the_database_to_its_page_workers_integration(permits_site, write_config, tmp_path):
    """The pass's own crawl command (python -m crawler, a run id, a crawl plan, the settings on stdin): the page-work
    processes store every page, and the crawl process loads neither storage nor SQLAlchemy, nor pydantic
    (crawler/__main__.py), and does not read the config file (it is gone before the crawl starts)."""
    from monitor.passrun import crawl_command, crawl_settings
    from storage import queries as q

    path = write_config(permits_config_body(permits_site))
    with _before_the_crawl(path, tmp_path) as (config, db, run_id, plan):
        cmd = crawl_command(path, run_id, tmp_path / "run.log", plan=plan) + [
            "-s", 'EXTENSIONS={"tests.crawl_probe.ModulesProbe": 0}', "-s", f"PROBE_FILE={tmp_path / 'modules.json'}"]
        env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "crawler.settings", "PYTHONPATH": str(ROOT)}
        path.rename(tmp_path / "elsewhere.toml")
        done = subprocess.run(cmd, capture_output=True, timeout=120, env=env, cwd=tmp_path, input=crawl_settings(config))
        assert done.returncode == 0, done.stderr[-2000:]
        assert "WARNING" not in (tmp_path / "run.log").read_text(encoding="utf-8")  # no fallback was needed
        with db.session() as s:
            stored = q.run_fetch_count(s, run_id)
    assert stored == len(config.watches) + 1  # the page-work processes stored every page (and one discovered)
    loaded = set(json.loads((tmp_path / "modules.json").read_text(encoding="utf-8")))
    assert {m.split(".")[0] for m in loaded} & {"sqlalchemy", "storage", "alembic", "psycopg", "pydantic"} == set()
    assert "monitor.pagework" not in loaded and "monitor.crawlplan" in loaded and "scrapy" in loaded


def test_a_pass_serves_its_crawl_s_page_work_itself_integration(permits_site, write_config, tmp_path):
    """With one page-work process allowed, the pass's crawl starts none: the pass process serves the page work on a
    thread (monitor.pageserve) and every page is stored, in the pass's own database connection."""
    from monitor.pageserve import PassPageWork
    from monitor.passrun import crawl_command, crawl_settings
    from storage import queries as q

    path = write_config(permits_config_body(permits_site).replace("[crawl]\n", "[crawl]\npage_workers = 1\n", 1))
    with _before_the_crawl(path, tmp_path) as (config, db, run_id, plan):
        page_work = PassPageWork()
        cmd = crawl_command(path, run_id, tmp_path / "run.log", plan=plan, page_work_fds=page_work.fds)
        env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "crawler.settings", "PYTHONPATH": str(ROOT)}
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=120, env=env, cwd=tmp_path,
                                  input=crawl_settings(config), pass_fds=page_work.fds)
        finally:
            page_work.started()
        page_work.join(30)
        assert done.returncode == 0, done.stderr[-2000:]
        assert not page_work.thread.is_alive() and page_work.error is None
        with db.session() as s:
            stored = q.run_fetch_count(s, run_id)
    assert stored == len(config.watches) + 1
    log = (tmp_path / "run.log").read_text(encoding="utf-8")
    assert "'policywatch/page_work_processes': 1," in log
    assert "'policywatch/page_work_processes_started': 0," in log  # no page-work process of the crawl's own
    assert "page work stopped" not in log and "WARNING" not in log


def test_every_spider_is_listed_and_loads_by_name(monkeypatch):
    from scrapy.spiderloader import get_spider_loader
    from scrapy.utils.project import get_project_settings

    monkeypatch.setenv("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    loader = get_spider_loader(get_project_settings())
    assert loader.list() == ["cluster_worker", "watchlist"]
    for name in loader.list():
        assert loader.load(name).name == name
    try:
        loader.load("nope")
    except KeyError as exc:
        assert "watchlist" in str(exc)
    else:
        raise AssertionError("an unknown spider name must fail")


def test_a_pass_whose_own_page_work_fails_loses_no_page_integration(permits_site, write_config, tmp_path, monkeypatch):
    """The pass's page-work thread fails as the crawl starts (before any page reaches it): the crawl starts a
    page-work process in its place, which stores every page; the crawl log says so, and the pass's traceback
    lands in the console log beside the run's log."""
    from monitor import pageserve
    from monitor.config import load_config
    from monitor.frames import read_frame
    from monitor.passrun import run_pass
    from storage import open_database
    from storage import queries as q

    def broken(requests, answers):
        read_frame(requests)  # the crawl's hello, then nothing: as if the database could not be opened
        raise RuntimeError("simulated failure of the pass's page work")

    path = write_config(permits_config_body(permits_site))
    monkeypatch.setattr(pageserve, "serve", broken)
    config = load_config(path)
    assert run_pass(config).status == "completed"
    logs = path.parent / "reports" / "logs"
    assert "simulated failure of the pass's page work" in (logs / "run-1.console.log").read_text(encoding="utf-8")
    crawl_log = (logs / "run-1.log").read_text(encoding="utf-8")
    assert "the pass's page work stopped before it got its next" in crawl_log
    assert "'policywatch/page_work_processes_started': 1," in crawl_log
    db = open_database(config.storage_url)
    try:
        with db.session() as s:
            assert q.run_fetch_count(s, 1) == len(config.watches) + 1
    finally:
        db.dispose()
