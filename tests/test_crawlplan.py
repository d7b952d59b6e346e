"""The crawl plan (monitor.crawlplan): what the pass reads from the history for its crawl, and the watches, streamed
to the crawl in a file. A plan written for another config is refused, never applied to the wrong pages; a plan
that breaks off loses no watch."""
from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import Watch
from monitor.crawlplan import CHUNK, CrawlPlan, PlanError, write_plan

KEYS = [f"https://www.canada.ca/en/p/{i}.html" for i in range(CHUNK + 7)]
WATCHES = [Watch(k, topics=("fees",) if i % 2 else (), kind="json" if i == 5 else "auto",
                 json_records="rounds" if i == 5 else None, json_id="drawNumber" if i == 5 else None)
           for i, k in enumerate(KEYS)]
HISTORY = {KEYS[0]: ('"e0"', None), KEYS[3]: (None, "Tue, 01 Dec 2026 00:00:00 GMT"),
           KEYS[CHUNK + 1]: ('"e501"', "Mon, 30 Nov 2026 00:00:00 GMT"),
           "https://www.canada.ca/en/news/a.html": ('"n1"', None)}
KNOWN = [("https://www.canada.ca/en/news/a.html", "https://www.canada.ca/en/news/a.html"),
         ("https://www.canada.ca/en/news/b.html", "https://www.canada.ca/en/news/b.html")]


def _write(path: Path, asked: list[list[str]] | None = None, only: tuple[str, ...] = ()) -> Path:
    def lookup(keys: list[str]):
        if asked is not None:
            asked.append(keys)
        return {k: v for k, v in HISTORY.items() if k in keys}

    return write_plan(path, first_run=False, digest="abc", watches=WATCHES, watch_keys=KEYS, known=KNOWN,
                      lookup=lookup, only=only)


def test_round_trip_in_chunks(tmp_path):
    asked: list[list[str]] = []
    path = _write(tmp_path / "plan.jsonl", asked)
    assert not (tmp_path / "plan.jsonl.tmp").exists()
    assert max(len(a) for a in asked) <= CHUNK and sum(len(a) for a in asked) == len(KEYS) + len(KNOWN)
    plan = CrawlPlan(path, digest="abc", watches=len(KEYS))
    try:
        assert plan.first_run is False
        assert list(plan.watch_keys()) == KEYS
        assert [(p.url, p.etag) for p in plan.known] == [(KNOWN[0][0], '"n1"'), (KNOWN[1][0], None)]
        first, validators = plan.next_watches(CHUNK)
        assert first == WATCHES[:CHUNK]  # every field of every watch, in order
        assert validators == {KEYS[0]: ('"e0"', None), KEYS[3]: (None, "Tue, 01 Dec 2026 00:00:00 GMT")}
        rest, validators = plan.next_watches(CHUNK)
        assert rest == WATCHES[CHUNK:] and plan.read == len(KEYS)
        assert validators == {KEYS[CHUNK + 1]: ('"e501"', "Mon, 30 Nov 2026 00:00:00 GMT")}
        assert plan.next_watches(CHUNK) == ([], {})
    finally:
        plan.close()


@pytest.mark.parametrize("digest, watches, only", [("other", len(KEYS), ()), ("abc", len(KEYS) - 1, ()),
                                                   ("abc", len(KEYS), ("https://www.canada.ca/en/p/",))])
def test_a_plan_for_another_config_is_refused(tmp_path, digest, watches, only):
    path = _write(tmp_path / "plan.jsonl")
    with pytest.raises(PlanError, match="written for another config"):
        CrawlPlan(path, digest=digest, watches=watches, only=only)


def test_damaged_or_cut_plans_are_refused_where_they_break(tmp_path):
    path = _write(tmp_path / "plan.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "cut.jsonl").write_text("".join(lines[:1 + len(KNOWN) + 10]), encoding="utf-8")
    cut = CrawlPlan(tmp_path / "cut.jsonl", digest="abc", watches=len(KEYS))
    assert list(cut.watch_keys()) == KEYS[:10]
    assert cut.next_watches(4)[0] == WATCHES[:4]
    with pytest.raises(PlanError, match="ends early"):
        cut.next_watches(CHUNK)
    assert cut.read == 4  # handed out: four; the chunk that broke off is not (the crawl takes it from the config)
    cut.close()
    (tmp_path / "bad.jsonl").write_text(lines[0] + "{nope\n", encoding="utf-8")
    with pytest.raises(PlanError, match="damaged"):
        CrawlPlan(tmp_path / "bad.jsonl", digest="abc", watches=len(KEYS))
    with pytest.raises(PlanError, match="cannot read"):
        CrawlPlan(tmp_path / "missing.jsonl", digest="abc", watches=len(KEYS))


BODY = '[crawl]\nallowed_domains = ["www.canada.ca"]\n\n' + "".join(
    f'[[watch]]\nurl = "https://www.canada.ca/en/{i}.html"\n' for i in range(3))


def _spider(path: Path, plan: Path):
    from crawler.spiders.watchlist import WatchlistSpider

    return WatchlistSpider(config=str(path), plan=str(plan))


def test_the_spider_streams_its_watches_from_the_plan_and_keeps_none(write_config, tmp_path):
    from monitor.config import load_config

    path = write_config(BODY)
    config = load_config(path)
    keys = list(config.watch_keys())
    plan = write_plan(tmp_path / "plan.jsonl", first_run=True, digest=config.digest(), watches=config.watches,
                      watch_keys=keys, known=[], lookup=lambda ks: {keys[1]: ('"x"', None)})
    spider = _spider(path, plan)
    assert spider.first_run is True and spider.pw_config.watches == ()
    assert all(k in spider.seen for k in keys) and "https://www.canada.ca/en/other.html" not in spider.seen
    chunks = list(spider.inputs.watch_chunks())
    assert [w for ws, _ in chunks for w in ws] == list(config.watches)
    assert chunks[0][1] == {keys[1]: ('"x"', None)}
    spider.closed("finished")


def test_the_spider_reads_the_history_itself_when_its_plan_does_not_match_or_breaks_off(write_config, tmp_path,
                                                                                         caplog):
    from monitor.config import load_config

    path = write_config(BODY)
    config = load_config(path)
    keys = list(config.watch_keys())
    stale = write_plan(tmp_path / "stale.jsonl", first_run=True, digest="0" * 16, watches=config.watches,
                       watch_keys=keys, known=[], lookup=lambda ks: {})
    spider = _spider(path, stale)
    assert spider.inputs.plan is None and spider.first_run is None  # the pipeline will ask the history
    assert spider.pw_config.watches == config.watches
    assert "reading the history directly instead" in caplog.text
    spider.closed("finished")

    good = write_plan(tmp_path / "good.jsonl", first_run=False, digest=config.digest(), watches=config.watches,
                      watch_keys=keys, known=[], lookup=lambda ks: {})
    lines = good.read_text(encoding="utf-8").splitlines(keepends=True)
    good.write_text("".join(lines[:2]), encoding="utf-8")  # the header and the first watch only
    spider = _spider(path, good)
    chunks = []
    gen = spider.inputs.watch_chunks()
    chunks.append(next(gen))  # the first chunk breaks off after one watch
    assert chunks[0][0] == list(config.watches)  # all of them, from the config: none lost, none twice
    assert list(gen) == []
    assert "reading the rest of the watchlist" in caplog.text


def test_with_its_settings_on_stdin_the_spider_never_parses_the_config(write_config, tmp_path, monkeypatch):
    import io
    import sys

    from monitor.config import load_config
    from monitor.passrun import crawl_settings

    path = write_config(BODY)
    config = load_config(path)
    keys = list(config.watch_keys())
    plan = write_plan(tmp_path / "plan.jsonl", first_run=False, digest=config.digest(), watches=config.watches,
                      watch_keys=keys, known=[], lookup=lambda ks: {})
    path.unlink()  # the crawl must not need it
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(crawl_settings(config))))
    from crawler.spiders.watchlist import WatchlistSpider

    spider = WatchlistSpider(config=str(path), plan=str(plan), settings="stdin")
    assert spider.inputs.plan is not None and spider.first_run is False
    assert spider.pw_config.crawl == config.crawl and spider.pw_config.digest() == config.digest()
    assert all(k in spider.seen for k in keys)
    assert [w for ws, _ in spider.inputs.watch_chunks() for w in ws] == list(config.watches)
    spider.closed("finished")


def test_without_settings_on_stdin_the_spider_reads_the_config_file(write_config, tmp_path, monkeypatch, caplog):
    import io
    import sys

    from monitor.config import load_config

    path = write_config(BODY)
    config = load_config(path)
    keys = list(config.watch_keys())
    plan = write_plan(tmp_path / "plan.jsonl", first_run=False, digest=config.digest(), watches=config.watches,
                      watch_keys=keys, known=[], lookup=lambda ks: {})
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))  # the pass died before it wrote them
    from crawler.spiders.watchlist import WatchlistSpider

    spider = WatchlistSpider(config=str(path), plan=str(plan), settings="stdin")
    assert "did not arrive on stdin" in caplog.text
    assert spider.inputs.plan is not None and spider.pw_config.watches == ()  # the file's config matches the plan
    assert [w for ws, _ in spider.inputs.watch_chunks() for w in ws] == list(config.watches)
    spider.closed("finished")
