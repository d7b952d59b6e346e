"""The crawl process: a real `watchlist` crawl in a fresh interpreter carries only what a crawl uses, and a
pass is two processes — the pass and its Scrapy crawl, which stores each page itself on one worker thread."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, permits_config_body

# What the crawl must not import, and why it once did.
UNUSED = {
    "aiohttp": "Scrapy's remote-control extension module, imported even when disabled",
    "tldextract": "Scrapy's cookies middleware module (cookies are off)",
    "requests": "the same, through tldextract",
}

CRAWL = """
import inspect, json, sys, threading
sources = []  # what the crawl read of its own source: nothing (see crawler/settings.py)
_getsource = inspect.getsource
inspect.getsource = lambda obj: sources.append(getattr(obj, "__name__", "?")) or _getsource(obj)
import logging
debug_records = []  # each response's DEBUG line built below the crawl's LOG_LEVEL (INFO): none
_factory = logging.getLogRecordFactory()
def _record(*args, **kwargs):
    record = _factory(*args, **kwargs)
    if record.levelno < logging.INFO and record.getMessage().startswith("Crawled ("):
        debug_records.append(record.getMessage()[:80])
    return record
logging.setLogRecordFactory(_record)
from scrapy.crawler import CrawlerProcess
from scrapy.utils.project import get_project_settings
process = CrawlerProcess(get_project_settings())
crawler = process.create_crawler("watchlist")
process.crawl(crawler, config=sys.argv[1], **json.loads(sys.argv[2]))
process.start()
stats = crawler.stats.get_stats()
print(json.dumps({"modules": sorted(sys.modules), "responses": stats.get("downloader/response_count", 0),
                  "sources_read": sources, "debug_records": debug_records,
                  "stored": {k: v for k, v in stats.items() if k.startswith("policywatch/result/")}}))
"""


def _crawl(config: Path, tmp_path: Path, **args: str) -> dict:
    script = tmp_path / "crawl.py"
    script.write_text(CRAWL, encoding="utf-8")
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "policywatch.crawler.settings", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-P", str(script), str(config), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_watchlist_crawl_imports_no_unused_integration(permits_site, write_config, tmp_path):
    result = _crawl(write_config(permits_config_body(permits_site)), tmp_path)
    assert result["responses"] >= 4  # a real crawl of the fixture site, robots.txt and the watchlist
    loaded = {m.split(".")[0] for m in result["modules"]}
    assert "scrapy" in loaded and "policywatch.crawler" in result["modules"]
    assert {m: why for m, why in UNUSED.items() if m in loaded} == {}
    assert sum(result["stored"].values()) == 5  # the crawl stored every page itself (4 watched, 1 discovered)
    # Scrapy would read and parse a callback's source to warn about generators that return a value, again for
    # each response whose bound method the cache has lost
    assert result["sources_read"] == []
    # nor build each request's DEBUG lines ("Crawled (200) <GET …>") only for Scrapy's handler to drop them
    assert result["debug_records"] == []
    # run by hand (`-a config=…`), the crawl opened a run of its own and finished it with its health
    con = sqlite3.connect(tmp_path / "history.db")
    runs = con.execute("SELECT status, health IS NOT NULL FROM runs").fetchall()
    con.close()
    assert runs == [("completed", 1)]


def test_a_pass_is_two_processes_integration(permits_site, write_config, tmp_path):
    """`policywatch run`: the pass and one crawl child, which has no children of its own."""
    cfg = write_config(permits_config_body(permits_site))
    permits_site.server.delay = 0.3
    pass_proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "policywatch.monitor", "run", "--config", str(cfg), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: set[tuple[int, ...]] = set()
    while pass_proc.poll() is None:
        children = _children(pass_proc.pid)
        seen.add((len(children), *sorted(len(_children(c)) for c in children)))
    out, err = pass_proc.communicate()
    assert pass_proc.returncode == 0, err
    assert "5 fetched" in out
    assert (1, 0) in seen and all(shape in {(0,), (1, 0)} for shape in seen), seen
    # The child leaves without the interpreter's teardown: its exit handlers still flushed its whole log; and
    # its settings are named as this Scrapy names them (no deprecation warning in every night's log)
    log = (tmp_path / "reports" / "logs" / "run-1.log").read_text(encoding="utf-8")
    assert log.rstrip().endswith("Spider closed (finished)"), log[-500:]
    assert "Deprecat" not in log, log


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().split(")")[-1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d.name))
    return out


def test_the_watchlist_spider_is_listed(monkeypatch):
    from scrapy.spiderloader import get_spider_loader
    from scrapy.utils.project import get_project_settings

    monkeypatch.setenv("SCRAPY_SETTINGS_MODULE", "policywatch.crawler.settings")
    loader = get_spider_loader(get_project_settings())
    assert loader.list() == ["watchlist"]
    assert loader.load("watchlist").name == "watchlist"


def test_pages_are_settled_on_the_reactors_thread_only_on_sqlite(tmp_path, pg_url):
    """On SQLite a statement costs microseconds: a 304's or an unchanged body's few statements run where the
    response arrives. On a database server each one waits on the network, which must not hold up the
    downloads: every page goes to the worker thread."""
    from types import SimpleNamespace

    from policywatch.crawler.pipelines import StorePipeline
    from policywatch.monitor.config import parse_config
    from policywatch.storage import open_database

    for url, here in ((f"sqlite:///{tmp_path / 'h.db'}", True), (pg_url, False)):
        cfg = parse_config({"storage": {"url": url}, "crawl": {"allowed_domains": ["www.canada.ca"]}})
        db = open_database(url)
        try:
            spider = SimpleNamespace(inputs=SimpleNamespace(db=db), pw_config=cfg, run_id=1, report=None)
            pipeline = StorePipeline(SimpleNamespace(spider=spider))  # type: ignore[arg-type]
            pipeline.open_spider()
            assert pipeline.settle_here is here, url
            pipeline.close_spider()
        finally:
            db.dispose()
