"""The one line leads with the fact (issue 33), on any template: the publisher's metadata never leads or
alerts, the edit that matters most leads whatever its place, tables read "what: old → new (where)", service
notices and results tables are what they are, sections added with their body are medium, new pages put their
facts first.

Data-driven on wording of several governments' templates (GOV.UK, Drupal and WordPress post meta, an ASP.NET
provincial site, canada.ca); each row goes through generic extraction, the block diff and detection.
"""

from __future__ import annotations

import pytest

from policywatch.monitor.detection import pubmeta
from policywatch.monitor.detection.decode import parse_html
from policywatch.monitor.detection.detect import detect_html, short_title
from policywatch.monitor.detection.extract import extract_html
from tests.test_meaning import URL, detect, page
from tests.test_meaning import detect_pages as run

GOVUK_META = """<div class="gem-c-metadata"><dl><dt>From:</dt><dd><a href="/x">Home Office</a></dd>
<dt>Published</dt><dd>1 June 2014</dd><dt>Last updated</dt><dd>{date} — <a href="#history">See all updates</a>
</dd></dl></div>"""
GOVUK_HISTORY = """<div class="app-c-published-dates app-c-published-dates--history">Published 1 June 2014
<br>Last updated {date}<div class="app-c-published-dates__change-history">
<ol class="app-c-published-dates__list">
<li><time datetime="2022-05-13">{date}</time><p>{note}</p></li>
<li><time datetime="2022-05-12">12 May 2022</time><p>Dates updated.</p></li>
<li><time datetime="2014-06-01">1 June 2014</time><p>First published.</p></li></ol></div></div>"""
WORDPRESS_META = (
    '<div class="entry-meta"><span class="posted-on">Posted on <time>{date}</time></span>'
    '<span class="byline"> by Program staff</span></div>'
)
DRUPAL_META = '<div class="node__meta">Submitted by editor on {date}</div>'
BODY = "<h2>Extensions</h2><p>The concession applies to visas that expired by {expiry}.</p>"


def govuk(date: str, expiry: str, note: str = "Dates updated.") -> str:
    return (
        "<html><body><main id='content'><h1>Visa concessions</h1>"
        + GOVUK_META.format(date=date)
        + BODY.format(expiry=expiry)
        + GOVUK_HISTORY.format(date=date, note=note)
        + "</main></body></html>"
    )


# --- publisher metadata -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "meta",
    [GOVUK_META + GOVUK_HISTORY.replace("{note}", "Dates updated."), WORDPRESS_META, DRUPAL_META],
    ids=["govuk", "wordpress", "drupal"],
)
def test_a_date_that_only_the_publishers_metadata_moved_is_no_change(meta):
    def doc(date: str) -> str:
        return (
            "<html><body><main><h1>Work permits</h1>"
            + meta.replace("{date}", date)
            + BODY.format(expiry="31 March 2021")
            + "</main></body></html>"
        )

    assert run(doc("12 May 2022"), doc("13 May 2022")) is None
    ex = extract_html(doc("13 May 2022"), URL)
    assert "13 May 2022" not in ex.text  # never content
    assert any("publisher metadata" in d for d in ex.dropped)


def test_the_publishers_dates_and_note_are_read_and_quoted_beside_the_fact():
    ex = extract_html(govuk("13 May 2022", "30 June 2021", "Concession extended to 30 June."), URL)
    assert ex.meta["date_modified"] == "13 May 2022" and ex.meta["published"] == "1 June 2014"
    assert ex.meta["change_note"] == "Concession extended to 30 June."
    d = run(
        govuk("12 May 2022", "31 March 2021"), govuk("13 May 2022", "30 June 2021", "Concession extended.")
    )
    assert d is not None and d.significance == "medium"
    assert d.summary.startswith("Deadline: 31 March 2021 → 30 June 2021"), d.summary
    assert "12 May 2022" not in d.summary and "13 May 2022" not in d.summary  # the update date never leads
    assert d.summary.endswith("— publisher’s note: “Concession extended.”")


def test_a_dated_list_in_the_content_is_not_a_change_history():
    html = (
        "<html><body><main><h1>Sessions</h1><p>Upcoming information sessions:</p><ul>"
        "<li>4 February 2020 — Malaga</li><li>5 February 2020 — Barcelona</li></ul></main></body></html>"
    )
    assert pubmeta.find(parse_html(html).find(".//main")) == []
    assert "Malaga" in extract_html(html, URL).text


def test_an_edit_stamp_inside_a_sentence_is_metadata():
    d = detect(
        "<p>Dates are updated every Monday (last updated 5 July 2022).</p>",
        "<p>Dates are updated every Monday (last updated 11 July 2022).</p>",
    )
    assert d is not None and d.significance == "low" and d.summary.startswith("Updated: 5 July 2022")


# --- the lead and the shape of the line ---------------------------------------------------------------------
CASES = [
    (
        "a processing-times table reads what: old → new",
        "<table><tr><th>Work type</th><th>Current position (working days)</th></tr>"
        "<tr><td>Appeal</td><td>6 days</td></tr><tr><td>Fixed fee</td><td>4 days</td></tr></table>",
        "<table><tr><th>Work type</th><th>Current position (working days)</th></tr>"
        "<tr><td>Appeal</td><td>7 days</td></tr><tr><td>Fixed fee</td><td>4 days</td></tr></table>",
        "medium",
        "Appeal: 6 days → 7 days",
    ),
    (
        "a results table is results, not an intake",
        "<table><tr><th>Draw date</th><th>Invited</th><th>Minimum score</th></tr>"
        "<tr><td>2018-04-01</td><td>231 candidates</td><td>80</td></tr></table>",
        "<table><tr><th>Draw date</th><th>Invited</th><th>Minimum score</th></tr>"
        "<tr><td>2018-04-01</td><td>187 candidates</td><td>80</td></tr></table>",
        "medium",
        "Invited: 231 → 187 (2018-04-01)",
    ),
    (
        "the program's online system down is a service notice, not a status",
        "<p>Apply online through the portal.</p>",
        "<p>Apply online through the portal.</p><p>The online application system will be unavailable from "
        "6 p.m. Saturday, March 2 to 11 p.m. Sunday, March 3.</p>",
        "medium",
        "Service notice:",
    ),
    (
        "a schedule's period is a date, not wording",
        "<h3>Schedule of draws 2017/18</h3><p>Draws are held monthly.</p>",
        "<h3>Schedule of draws 2018-19</h3><p>Draws are held monthly.</p>",
        "medium",
        "Period: 2017/18 → 2018-19",
    ),
    (
        "a section added with its body leads with its heading",
        "<p>Appendix FM applies to family members.</p>",
        "<p>Appendix FM applies to family members.</p><h3>Appendix Private Life</h3>"
        "<p>This appendix sets out how long a person has lived here.</p>",
        "medium",
        "New section: Appendix Private Life",
    ),
    (
        "a name added to the page's list",
        "<p>The following areas receive an enhanced response:</p><ul><li>Suffolk</li></ul>",
        "<p>The following areas receive an enhanced response:</p><ul><li>Suffolk</li>"
        "<li>Cambridgeshire and Peterborough</li></ul>",
        "medium",
        "Added to the list: “Cambridgeshire and Peterborough”",
    ),
    (
        "an entry added to a rules index is a new section",
        "<p>The appendices of the rules:</p><ul><li><a href='/fm'>Appendix FM</a></li></ul>",
        "<p>The appendices of the rules:</p><ul><li><a href='/fm'>Appendix FM</a></li>"
        "<li><a href='/private-life'>Appendix Private Life</a></li></ul>",
        "medium",
        "New section: Appendix Private Life",
    ),
    (
        "a table row with an empty cell is quoted without it, the code first",
        "<table><tr><td>Start-up pilot</td><td></td><td>C87</td></tr></table>",
        "<table><tr><td>Start-up pilot</td><td></td><td>C87</td></tr>"
        "<tr><td>Innovation Stream pilot</td><td></td><td>C88</td></tr></table>",
        "medium",
        "“C88 — Innovation Stream pilot”",
    ),
]


@pytest.mark.parametrize("rule, before, after, significance, says", CASES, ids=[c[0] for c in CASES])
def test_the_line_leads_with_the_fact(rule, before, after, significance, says):
    d = detect(before, after)
    assert d is not None, rule
    assert d.significance == significance, (rule, d.summary)
    assert says in d.summary, (rule, d.summary)
    assert "| |" not in d.summary and "Status" not in d.summary


def test_the_edit_that_matters_leads_not_the_first_on_the_page():
    d = detect(
        "<p>Please read this page carefully before you apply.</p>"
        "<p>The site will be down for maintenance.</p>"
        "<p>The application fee is $230.</p>",
        "<p>Please read this page with care before you apply.</p><p>The site will be down on Sunday.</p>"
        "<p>The application fee is $300.</p>",
    )
    assert d is not None and d.summary.startswith("Fee: $230 → $300"), d.summary


def test_a_site_banner_stays_low():
    before = "<p>Apply online.</p>"
    after = (
        "<div class='alert alert-warning'>The online application system will be unavailable Saturday "
        "from 6 p.m."
        "</div><p>Apply online.</p>"
    )
    d = detect(before, after)
    assert d is not None and d.significance == "low", d.summary


def test_a_new_pages_line_puts_its_facts_first_and_shortens_its_title():
    long_title = "Innovation Stream pilot – Issuance of an LMIA-exempt employer-specific work permit"
    assert short_title(long_title) == "Innovation Stream pilot"
    html = page("<p>The fee is $155. Use exemption code C88 for TEER 0, 1, 2 or 3 jobs.</p>")
    ex = extract_html(html, URL)
    d = detect_html(
        url=URL,
        title=long_title + " for workers",
        old=None,
        new_blocks=ex.blocks,
        new_meta=ex.meta,
        watch_topics=[],
        topic_defs={},
        discovered=True,
    )
    assert d is not None and d.summary.startswith("$155 fee · C88 · TEER 0–3")
    assert d.summary.endswith("— new page: Innovation Stream pilot")


def test_site_cells_and_digest_lines_never_repeat_the_title_or_show_empty_cells():
    from types import SimpleNamespace

    from policywatch.reports.render import block_text, one_line

    title = "Innovation Stream pilot – Issuance of an LMIA-exempt employer-specific work permit"
    new = SimpleNamespace(
        summary="$155 fee · C88 · TEER 0–3 · until 2026-03-22 — new page: Innovation Stream pilot"
        " — Innovation Stream details released",
        title=title,
        details_released=True,
    )
    assert one_line(new) == "$155 fee · C88 · TEER 0–3 · until 2026-03-22"
    long = SimpleNamespace(summary="Requirement: " + "word " * 60, title="Page", details_released=False)
    cell = one_line(long)
    assert len(cell) <= 120 and cell.endswith("…") and not cell[:-1].endswith(" ")
    assert (
        block_text({"kind": "tr", "text": "Innovation Stream pilot | | C88"})
        == "Innovation Stream pilot | C88"
    )
    assert block_text({"kind": "p", "text": "a | | b"}) == "a | | b"
