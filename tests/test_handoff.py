"""What crosses between a pass and its crawl child (monitor.handoff): typed, versioned, validated on read. A
request for a config that changed since the pass read it is refused before anything is fetched."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from policywatch.monitor.config import load_config
from policywatch.monitor.handoff import CrawlReport, CrawlRequest, HandoffError
from policywatch.monitor.nightly.passrun import crawl_command
from policywatch.storage import open_database
from policywatch.storage import queries as q
from tests.conftest import permits_config_body


def test_a_request_and_a_report_read_back_as_written(tmp_path: Path):
    req = CrawlRequest(config_path="/x/policywatch.toml", config_digest="abc", run_id=3, only=("https://a/",))
    req.write(tmp_path / "req.json")
    assert CrawlRequest.read(tmp_path / "req.json") == req
    assert stat.S_IMODE(os.stat(tmp_path / "req.json").st_mode) == 0o600  # beside the logs: operator's only
    report = CrawlReport(run_id=3)
    for n in range(60):
        report.page_failed(f"https://a/{n}", "database is locked")
    report.source_failed("feed", "https://a/feed", "http_error: 404")
    report.write(tmp_path / "rep.json")
    back = CrawlReport.read(tmp_path / "rep.json")
    assert back.pages_failed == 60 and len(back.failures) == 50  # all counted, the first 50 listed
    assert back.discovery_failed[0].url == "https://a/feed"


@pytest.mark.parametrize(
    "content, where",
    [
        (b'{"version": 2, "run_id": 1}', "version"),
        (b'{"version": 1, "run_id": 0}', "run_id"),
        (b'{"version": 1, "run_id": 1, "page_errors": 3}', "page_errors"),  # an older file's field
        (b"page_errors=3", "(the file)"),
    ],
)
def test_a_report_that_is_not_this_version_s_is_a_clear_error(tmp_path: Path, content: bytes, where: str):
    (tmp_path / "rep.json").write_bytes(content)
    with pytest.raises(HandoffError) as err:
        CrawlReport.read(tmp_path / "rep.json")
    assert f"is not valid: {where}" in str(err.value) and "CrawlReport" in str(err.value)


def test_a_missing_report_says_so(tmp_path: Path):
    with pytest.raises(HandoffError, match="cannot be read"):
        CrawlReport.read(tmp_path / "nothing.json")


def test_a_crawl_refuses_a_config_changed_since_the_pass_read_it(permits_site, write_config, tmp_path):
    cfg_path = write_config(permits_config_body(permits_site))
    config = load_config(cfg_path)
    db = open_database(config.storage_url)
    with db.session() as s:
        run_id = q.open_run(s, config.digest()).id
    db.dispose()
    request = tmp_path / "run.request.json"
    CrawlRequest(
        config_path=str(cfg_path),
        config_digest="0" * 16,  # what the pass read before someone edited the file
        run_id=run_id,
        report_path=str(tmp_path / "run.report.json"),
    ).write(request)
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "policywatch.crawler.settings"}
    done = subprocess.run(
        crawl_command(request, tmp_path / "run.log"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "changed since the pass started" in (tmp_path / "run.log").read_text()
    assert permits_site.server.requests == []  # nothing was fetched
    assert not (tmp_path / "run.report.json").exists()
    con = sqlite3.connect(tmp_path / "history.db")
    assert con.execute("SELECT count(*) FROM fetches").fetchone()[0] == 0
    con.close()


def test_a_pass_request_names_the_job_subset_as_a_list(tmp_path: Path):
    """A job's URL prefixes cross as a list (never joined with a separator a URL may contain)."""
    req = CrawlRequest(config_path="c", config_digest="d", run_id=1, only=("https://a/x|y", "https://b/"))
    req.write(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["only"] == ["https://a/x|y", "https://b/"]
    assert CrawlRequest.read(tmp_path / "r.json").only == ("https://a/x|y", "https://b/")
