"""The crawl plan (monitor.crawlplan): what the pass reads from the history for its crawl, streamed to the crawl in
a file. A plan that does not match the crawl's config must be refused, never applied to the wrong pages."""
from __future__ import annotations

from pathlib import Path

import pytest

from monitor.crawlplan import CHUNK, CrawlPlan, PlanError, write_plan

KEYS = [f"https://www.canada.ca/en/p/{i}.html" for i in range(CHUNK + 7)]
HISTORY = {KEYS[0]: ('"e0"', None), KEYS[3]: (None, "Tue, 01 Dec 2026 00:00:00 GMT"),
           KEYS[CHUNK + 1]: ('"e501"', "Mon, 30 Nov 2026 00:00:00 GMT"),
           "https://www.canada.ca/en/news/a.html": ('"n1"', None)}
KNOWN = [("https://www.canada.ca/en/news/a.html", "https://www.canada.ca/en/news/a.html"),
         ("https://www.canada.ca/en/news/b.html", "https://www.canada.ca/en/news/b.html")]


def _write(path: Path, asked: list[list[str]] | None = None) -> Path:
    def lookup(keys: list[str]):
        if asked is not None:
            asked.append(keys)
        return {k: v for k, v in HISTORY.items() if k in keys}

    return write_plan(path, first_run=False, digest="abc", watch_keys=KEYS, known=KNOWN, lookup=lookup)


def test_round_trip_in_chunks(tmp_path):
    asked: list[list[str]] = []
    path = _write(tmp_path / "plan.jsonl", asked)
    assert not (tmp_path / "plan.jsonl.tmp").exists()
    assert max(len(a) for a in asked) <= CHUNK and sum(len(a) for a in asked) == len(KEYS) + len(KNOWN)
    plan = CrawlPlan(path, digest="abc", watches=len(KEYS))
    try:
        assert plan.first_run is False
        assert [(p.url, p.etag) for p in plan.known] == [(KNOWN[0][0], '"n1"'), (KNOWN[1][0], None)]
        first = plan.validators(KEYS[:CHUNK])
        assert first == {KEYS[0]: ('"e0"', None), KEYS[3]: (None, "Tue, 01 Dec 2026 00:00:00 GMT")}
        assert plan.validators(KEYS[CHUNK:]) == {KEYS[CHUNK + 1]: ('"e501"', "Mon, 30 Nov 2026 00:00:00 GMT")}
        with pytest.raises(PlanError, match="no more watches"):
            plan.validators(["https://www.canada.ca/extra"])
    finally:
        plan.close()


@pytest.mark.parametrize("digest, watches", [("other", len(KEYS)), ("abc", len(KEYS) - 1)])
def test_a_plan_for_another_config_is_refused(tmp_path, digest, watches):
    path = _write(tmp_path / "plan.jsonl")
    with pytest.raises(PlanError, match="written for another config"):
        CrawlPlan(path, digest=digest, watches=watches)


def test_out_of_order_damaged_or_cut_plans_are_refused(tmp_path):
    path = _write(tmp_path / "plan.jsonl")
    plan = CrawlPlan(path, digest="abc", watches=len(KEYS))
    with pytest.raises(PlanError, match="does not follow the watchlist"):
        plan.validators([KEYS[1]])  # the crawl asks for another page than the plan's next: never misapplied
    plan.close()
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "cut.jsonl").write_text("".join(lines[:10]), encoding="utf-8")
    cut = CrawlPlan(tmp_path / "cut.jsonl", digest="abc", watches=len(KEYS))
    with pytest.raises(PlanError, match="ends early"):
        cut.validators(KEYS[:CHUNK])
    cut.close()
    (tmp_path / "bad.jsonl").write_text(lines[0] + "{nope\n", encoding="utf-8")
    with pytest.raises(PlanError, match="damaged"):
        CrawlPlan(tmp_path / "bad.jsonl", digest="abc", watches=len(KEYS))
    with pytest.raises(PlanError, match="cannot read"):
        CrawlPlan(tmp_path / "missing.jsonl", digest="abc", watches=len(KEYS))


def test_the_spider_reads_the_history_itself_when_its_plan_does_not_match(write_config, tmp_path, caplog):
    from crawler.spiders.watchlist import WatchlistSpider
    from monitor.config import load_config

    path = write_config('[crawl]\nallowed_domains = ["www.canada.ca"]\n\n[[watch]]\nurl = "https://www.canada.ca/en/a.html"\n')
    config = load_config(path)
    key = "https://www.canada.ca/en/a.html"
    good = write_plan(tmp_path / "good.jsonl", first_run=True, digest=config.digest(), watch_keys=[key], known=[],
                      lookup=lambda keys: {key: ('"x"', None)})
    spider = WatchlistSpider(config=str(path), plan=str(good))
    assert spider.first_run is True and spider._validators([key]) == {key: ('"x"', None)}
    spider.closed("finished")
    stale = write_plan(tmp_path / "stale.jsonl", first_run=True, digest="0" * 16, watch_keys=[key], known=[],
                       lookup=lambda keys: {})
    spider = WatchlistSpider(config=str(path), plan=str(stale))
    assert spider.plan is None and spider.first_run is None  # the pipeline will ask the history
    assert "reading the history directly instead" in caplog.text
