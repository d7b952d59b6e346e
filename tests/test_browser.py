"""Hostile scraped content rendered in a real browser (Debian's chromium + chromium-driver, via Selenium) does
not execute: the e-mail digest's HTML part, a static site change page, and the run report.

A positive control first proves the harness would notice a script that runs. Screenshots are kept in
`test-artifacts/` for a human to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from policywatch.reports.data import load_run_report
from policywatch.reports.digest import compose, render_html
from policywatch.reports.render import write_run_reports
from policywatch.reports.site import Site
from policywatch.storage import open_database
from policywatch.storage import queries as q
from policywatch.storage.models import Change, Version
from policywatch.storage.types import utcnow
from tests.conftest import IN_CI, ROOT

ARTIFACTS = ROOT / "test-artifacts"
HOSTILE = (
    'Fee now $230 <script>document.title="PWNED";window.__pwned=1</script>'
    '<img src="x" onerror="document.title=\'PWNED\';window.__pwned=2">'
    '<a href="javascript:window.__pwned=3">click</a><svg onload="window.__pwned=4"></svg>'
)


@pytest.fixture(scope="module")
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if IN_CI:
            pytest.fail(
                "chromium and chromedriver must be installed in CI (.ci/run installs Debian's packages)"
            )
        pytest.skip("install Debian's chromium and chromium-driver to run the browser tests")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1100,1400",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors, for the checks below
    drv = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    yield drv
    drv.quit()


def _executed(browser, path: Path, shot: str) -> tuple[str, object]:
    browser.get(path.as_uri())
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / shot))
    for link in browser.find_elements(
        "css selector", "a[href^='javascript:']"
    ):  # must not exist; click if it does
        link.click()
    return browser.title, browser.execute_script(
        "return window.__pwned === undefined ? null : window.__pwned"
    )


def test_harness_notices_a_script_that_runs(browser, tmp_path):
    page = tmp_path / "control.html"
    page.write_text(f"<!DOCTYPE html><html><head><title>control</title></head><body>{HOSTILE}</body></html>")
    title, pwned = _executed(browser, page, "control.png")
    assert title == "PWNED" and pwned is not None  # without escaping, the payload runs


def test_hostile_page_text_does_not_execute_in_reports(browser, tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        with db.session() as s:
            run = q.open_run(s)
            page, _ = q.get_or_create_page(
                s,
                "https://www.canada.ca/en/x.html",
                "https://www.canada.ca/en/x.html",
                source="watch",
                topics=["innovation-stream"],
            )
            old = Version(
                page_id=page.id,
                captured_at=utcnow(),
                content_hash="a",
                title="Old",
                text="Fee $155",
                stored_blocks=[],
                meta={},
            )
            new = Version(
                page_id=page.id,
                captured_at=utcnow(),
                content_hash="b",
                title=HOSTILE,
                text=HOSTILE,
                stored_blocks=[],
                meta={},
            )
            s.add_all([old, new])
            s.flush()
            s.add(
                Change(
                    page_id=page.id,
                    run_id=run.id,
                    detected_at=utcnow(),
                    kind="changed",
                    significance="high",
                    topics=["innovation-stream"],
                    details_released=True,
                    url=page.url,
                    title=HOSTILE,
                    summary=HOSTILE,
                    from_version_id=old.id,
                    to_version_id=new.id,
                    details={
                        "reasons": [HOSTILE],
                        "facts": {
                            "changed": [
                                {"type": "fee", "before": "$155", "after": HOSTILE, "section": [HOSTILE]}
                            ]
                        },
                        "blocks": [
                            {
                                "op": "changed",
                                "section": ["Fees", HOSTILE],
                                "text": HOSTILE,
                                "before": "Fee $155",
                                "inline": [["del", "Fee $155"], ["ins", HOSTILE]],
                                "index": 0,
                            },
                            {"op": "added", "section": ["Fees"], "text": HOSTILE, "index": 1},
                        ],
                    },
                )
            )
            q.finish_run(s, run.id, "completed")
            run_id = run.id
        with db.session() as s:
            changes = list(s.scalars(select(Change)))
            from policywatch.monitor.config.ops import Subscriber

            digest_html = tmp_path / "digest.html"
            digest_html.write_text(
                render_html(
                    compose(
                        changes,
                        Subscriber("a@example.org"),
                        base_url="https://r.example.org/",
                        topic_names={},
                    )
                )
            )
            paths = Site(tmp_path / "site", base_url=None, topic_names={}).write_changes(s, changes)
            report = write_run_reports(load_run_report(s, run_id), tmp_path / "reports")["html"]
    finally:
        db.dispose()
    for path, shot in (
        (digest_html, "digest.png"),
        (paths[0], "site-change.png"),
        (tmp_path / "site" / "index.html", "site-index.png"),
        (report, "run-report.png"),
    ):
        title, pwned = _executed(browser, path, shot)
        assert title != "PWNED" and pwned is None, f"{path.name}: scraped markup executed"
        body = browser.find_element("tag name", "body").text
        assert "<script>" in body  # shown as the words it is
        assert browser.find_elements("css selector", "body script, body img, body svg") == []
    assert os.path.getsize(ARTIFACTS / "digest.png") > 1000


def _console_errors(browser) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e.get("level") == "SEVERE"]


def test_the_demo_site_report_and_digest_in_a_browser(browser, tmp_path):
    """The demo's site, run report and a digest as a reader sees them: details released first, the charts
    drawn (an SVG with a size, no script), every link on the page leading to a file that exists, and no
    console error (a CSP violation, a missing file) anywhere."""
    import mailbox
    from urllib.parse import unquote, urlsplit

    from selenium.webdriver.common.by import By

    from tests.conftest import policywatch

    out = tmp_path / "demo"
    assert policywatch("demo", "--out", str(out)).returncode == 0
    site = out / "reports" / "site"
    browser.get_log("browser")  # drop what earlier tests left

    def visit(path: Path, shot: str) -> None:
        browser.get(path.as_uri())
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / shot))
        for a in browser.find_elements(By.CSS_SELECTOR, "a[href]"):
            href = a.get_attribute("href") or ""
            if href.startswith("file:"):
                assert Path(unquote(urlsplit(href).path)).exists(), f"{path.name}: broken link {href}"
        assert _console_errors(browser) == [], path

    visit(site / "index.html", "demo-index.png")
    rows = browser.find_elements(By.CSS_SELECTOR, "table tr")[1:]
    flags = ["Details released" in r.text for r in rows]
    assert flags[0] and flags == sorted(flags, reverse=True)  # details released first

    visit(out / "reports" / "run-3.html", "demo-run-3.png")
    assert browser.find_elements(By.CSS_SELECTOR, "a[href^='site/changes/']") or browser.find_elements(
        By.XPATH, "//a[contains(@href, 'site/changes/')]"
    )

    timeline = next(p for p in (site / "pages").glob("*.html") if "CRS cut-off over time" in p.read_text())
    visit(timeline, "demo-timeline.png")
    charts = browser.find_elements(By.CSS_SELECTOR, "figure.chart svg")
    assert len(charts) >= 2 and all(c.size["width"] > 300 and c.size["height"] > 100 for c in charts)
    assert browser.find_elements(By.CSS_SELECTOR, "figure.chart svg .dots, figure.chart svg circle")
    assert browser.execute_script("return document.scripts.length") == 0

    change = next(iter(sorted((site / "changes").glob("*.html"))))
    visit(change, "demo-change.png")

    box = mailbox.mbox(str(out / "digests.mbox"))
    message = next(iter(box))
    html = next(p for p in message.walk() if p.get_content_type() == "text/html")
    digest = tmp_path / "digest.html"
    digest.write_bytes(html.get_payload(decode=True))
    visit(digest, "demo-digest.png")
    assert "Details released" in browser.find_element(By.TAG_NAME, "body").text or "C88" in (
        browser.find_element(By.TAG_NAME, "body").text
    )
