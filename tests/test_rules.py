"""User noise rules: drop selectors and ignore patterns per site or page; editing rules never floods alerts;
`policywatch explain` shows what was dropped and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from policywatch.monitor.config import parse_config
from policywatch.monitor.pagework import FetchResult, PageWork
from policywatch.storage import open_database
from policywatch.storage import queries as q
from tests.conftest import policywatch

URL = "https://www.canada.ca/en/immigration-refugees-citizenship/page.html"
PAGE = """<html><body><main property="mainContentOfPage"><h1>Work permits</h1>
<div class="alert alert-warning"><p>{alert}</p></div>
<h2>Fees</h2><p>The fee is {fee}. Page views: {views}.</p></main></body></html>"""


def _cfg(url: str, rules: dict | None = None):
    data = {"storage": {"url": url}, "crawl": {"allowed_domains": ["www.canada.ca"]}, "watch": [{"url": URL}]}
    if rules:
        data["rules"] = rules
    return parse_config(data)


def _pass(db, cfg, **kw):
    with db.session() as s:
        run_id = q.open_run(s).id
    body = PAGE.format(**{"alert": "Port of entry notice", "fee": "$155", "views": "10", **kw}).encode()
    res = PageWork(db, cfg, run_id, first_run=run_id == 1).process(
        FetchResult(url=URL, status=200, body=body, content_type="text/html")
    )
    with db.session() as s:
        q.finish_run(s, run_id, "completed")
    return res


RULES = {
    "drop": [
        {
            "selector": ".alert",
            "url_prefix": "https://www.canada.ca/en/immigration-refugees-citizenship/",
            "why": "site-wide alert",
        }
    ],
    "ignore": [{"pattern": r"Page views: \d+\."}],
}


def test_rules_silence_noise_but_not_content(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    db = open_database(url)
    cfg = _cfg(url, RULES)
    try:
        assert _pass(db, cfg).result == "new"
        assert _pass(db, cfg, alert="A new alert", views="99").result == "unchanged"
        assert _pass(db, cfg, fee="$230", views="100").result == "changed"
    finally:
        db.dispose()


def test_adding_a_rule_does_not_flood(tmp_path: Path):
    """Night 1 without rules; night 2 the user adds rules: the old version is re-extracted with them."""
    url = f"sqlite:///{tmp_path / 'h.db'}"
    db = open_database(url)
    try:
        assert _pass(db, _cfg(url)).result == "new"
        assert _pass(db, _cfg(url, RULES), views="11").result == "unchanged"
        assert _pass(db, _cfg(url, RULES), views="12", alert="Other").result == "unchanged"
        res = _pass(db, _cfg(url, RULES), fee="$230")
        assert res.result == "changed"
    finally:
        db.dispose()


def test_rule_scope_by_url_prefix(tmp_path: Path):
    cfg = _cfg(f"sqlite:///{tmp_path / 'h.db'}", RULES)
    assert cfg.rules_for(URL)[0] == [(".alert", "site-wide alert")]
    assert cfg.rules_for("https://www.canada.ca/fr/page.html")[0] == []


def test_explain_cli(write_config, tmp_path: Path):
    page = tmp_path / "page.html"
    page.write_text(
        PAGE.format(alert="Notice", fee="$155", views="3").replace("<main", "<script>x()</script><main")
    )
    cfg = write_config(
        '[crawl]\nallowed_domains = ["www.canada.ca"]\n[[rules.drop]]\nselector = ".alert"\nwhy = '
        '"site-wide alert"\n'
        '[[rules.ignore]]\npattern = "Page views: \\\\d+\\\\."\n'
    )
    p = policywatch("explain", URL, "--config", str(cfg), "--file", str(page), "--blocks")
    assert p.returncode == 0, p.stderr
    assert "extractor: gcweb" in p.stdout
    assert "site-wide alert (.alert): <div> Notice" in p.stdout
    assert "1 scripts" in p.stdout
    assert "text rules: wording removed from 1 blocks" in p.stdout
    assert "[p] Fees: The fee is $155." in p.stdout


@pytest.mark.parametrize(
    "text, keyword, found",
    [
        ("The Innovation Stream pilot", "innovation stream", True),
        ("the INNOVATION STREAM.", "Innovation Stream", True),
        ("code C88 applies", "C88", True),
        ("code C888 applies", "C88", False),  # not a whole word
        ("xC88", "C88", False),
        ("C88", "C88", True),
        ("H-1B holders", "H-1B", True),
        ("stem cells; STEM draws", "STEM", True),
        ("systematic", "STEM", False),
    ],
)
def test_keyword_whole_word_matching(text, keyword, found):
    from policywatch.monitor.detection.topics import contains_word

    assert contains_word(text.lower(), keyword) is found
