"""The GCWeb fingerprint shortcut: a night whose bytes differ only outside <main> (rotated scripts, analytics,
"Date modified") is recognised without parsing; any change inside <main> or <title>, or to the noise rules,
is parsed and compared as usual."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from policywatch.monitor import pagework
from policywatch.monitor.config import parse_config
from policywatch.monitor.detection import extract
from policywatch.monitor.pagework import FetchResult, PageWork, Pending, main_fingerprint
from policywatch.storage import open_database
from policywatch.storage import queries as q
from policywatch.storage.models import Fetch

URL = "https://www.canada.ca/en/x.html"
PAGE = (
    '<html><head><title>{title}</title><script src="/wet.js?v={noise}"></script></head><body>'
    '<main property="mainContentOfPage"><h1>Work permits</h1><h2>Fees</h2><p>The fee is {fee}.</p></main>'
    '<dl id="wb-dtmd"><dt>Date modified:</dt><dd><time>{date}</time></dd></dl></body></html>'
)


def page(noise="a", fee="$155", title="Work permits - Canada.ca", date="2026-11-01") -> bytes:
    return PAGE.format(noise=noise, fee=fee, title=title, date=date).encode()


def test_fingerprint_covers_title_main_charset_and_rules():
    base = main_fingerprint(page(), "utf-8", "")
    assert base == main_fingerprint(page(noise="b", date="2026-11-20"), "utf-8", "")  # furniture only
    assert base != main_fingerprint(page(fee="$230"), "utf-8", "")
    assert base != main_fingerprint(page(title="Other"), "utf-8", "")
    assert base != main_fingerprint(page(), "iso-8859-1", "")
    assert base != main_fingerprint(page(), "utf-8", "rules-digest")
    assert main_fingerprint(b"<html><body>no main</body></html>", "utf-8", "") is None


@pytest.mark.parametrize(
    "second, parsed, changed",
    [
        (page(noise="b", date="2026-11-20"), False, False),  # shortcut: not parsed, unchanged
        (page(noise="b", fee="$230"), True, True),  # inside <main>: parsed, a change
    ],
)
def test_pagework_uses_the_shortcut_only_when_main_is_identical(
    tmp_path, monkeypatch, second, parsed, changed
):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    cfg = parse_config(
        {"storage": {"url": url}, "crawl": {"allowed_domains": ["www.canada.ca"]}, "watch": [{"url": URL}]}
    )
    db = open_database(url)
    calls: list[int] = []
    real = extract.extract_html  # what the page pipeline calls (monitor.page.content)
    monkeypatch.setattr(extract, "extract_html", lambda *a, **k: calls.append(1) or real(*a, **k))
    try:
        for n, body in enumerate((page(), second), start=1):
            with db.session() as s:
                run_id = q.open_run(s).id
            calls.clear()
            out = PageWork(db, cfg, run_id, first_run=n == 1).process(
                FetchResult(
                    url=URL,
                    outcome="ok",
                    status=200,
                    body=body,
                    content_type="text/html; charset=utf-8",
                    encoding="utf-8",
                )
            )
        assert bool(calls) is parsed
        assert (out.result == "changed") is changed
        with db.session() as s:
            hashes = [f.content_hash for f in s.scalars(select(Fetch).order_by(Fetch.id))]
        assert (hashes[0] == hashes[1]) is (not changed)  # the shortcut records the right content hash
    finally:
        db.dispose()


def test_settle_does_the_unread_paths_and_leaves_a_page_to_read_untouched(tmp_path, monkeypatch):
    """The crawl settles 304s, failures and unchanged bodies where the response arrives and hands only the
    pages that must be read to its worker: `settle` writes nothing for those, and `process` then stores them
    with what `settle` computed (the body hashed once)."""
    url = f"sqlite:///{tmp_path / 'h.db'}"
    cfg = parse_config(
        {"storage": {"url": url}, "crawl": {"allowed_domains": ["www.canada.ca"]}, "watch": [{"url": URL}]}
    )
    db = open_database(url)

    def result(body: bytes | None, outcome: str = "ok", status: int = 200) -> FetchResult:
        return FetchResult(
            url=URL, outcome=outcome, status=status, body=body, content_type="text/html; charset=utf-8"
        )

    def fetches() -> list[tuple[str, bool]]:
        with db.session() as s:
            return [(f.outcome, f.content_changed) for f in s.scalars(select(Fetch).order_by(Fetch.id))]

    try:
        with db.session() as s:
            run_id = q.open_run(s).id
        work = PageWork(db, cfg, run_id, first_run=True)
        first = work.settle(result(page()))
        assert isinstance(first, Pending) and first.prev_hashes is None  # a new page must be read
        assert fetches() == []  # …and nothing was written for it yet
        hashed: list[bytes] = []
        real = pagework.hashlib.sha256
        monkeypatch.setattr(pagework.hashlib, "sha256", lambda b=b"": hashed.append(b) or real(b))
        assert work.process(result(page()), first).result == "new"
        assert page() not in hashed  # the body was hashed once, by settle
        monkeypatch.undo()
        assert work.settle(result(page(noise="b"))).outcome == "ok"  # furniture only: settled
        assert work.settle(result(None, "not_modified", 304)).outcome == "not_modified"
        assert work.settle(result(b"busy", "http_error", 503)).result == "failed"
        changed = work.settle(result(page(fee="$230")))
        assert isinstance(changed, Pending) and changed.prev_hashes is not None
        assert [o for o, _ in fetches()] == ["ok", "ok", "not_modified", "http_error"]
        assert work.process(result(page(fee="$230")), changed).result == "changed"
        assert fetches()[-1] == ("ok", True)
    finally:
        db.dispose()
