"""Content extraction on the templates Canadian governments use besides GCWeb (monitor/detection/layout.py).

Each test builds a page the way such a template marks it up and checks what a consultant needs: the content
read whole, the menus and footers left out, a sidebar that states rules kept as its own section, nothing
outside the document read.
"""

from __future__ import annotations

from pathlib import Path

from policywatch.monitor.detection.extract import GENERIC_VERSION, extract_html

URL = "https://www.pnp.example.ca/immigrate/page.aspx"
BODY = (
    "<h1>Employer Job Offer</h1><p>The category is for skilled workers with a permanent, full-time job offer "
    "from an employer in the province.</p><h2>Who is eligible</h2><ul><li>You must have a Job Approval "
    "Letter.</li><li>You must meet the language requirement of CLB 4.</li></ul>"
)
WEBFORMS = (
    "<!DOCTYPE html><html><head><title>Employer Job Offer - PNP</title></head><body>"
    '<form method="post" action="./page.aspx" id="mainForm"><div class="aspNetHidden">'
    '<input type="hidden" name="__VIEWSTATE" value="{state}"/></div>'
    '<table><tr><td id="ctl00_tdLeft"><ul><li><a href="/a">Immigrating</a></li><li><a href="/b">Forms</a>'
    "</li></ul>{sidebar}</td><td>{body}</td></tr></table>"
    '<div id="ctl00_pnlFooter" class="footer">Privacy | Server WEB0{state}</div></form></body></html>'
)
RULES = (
    "<h3>Representatives</h3><p>A representative must be a member of the College of Immigration and "
    "Citizenship Consultants or a lawyer.</p>"
)


def texts(ex) -> list[str]:
    return [b["text"] for b in ex.blocks]


def test_a_body_inside_one_form_is_read_whole():
    """ASP.NET WebForms wraps the whole body in one <form>: never dropped for being a form (it was: every
    fetch read 0 characters and was recorded as an almost empty page)."""
    ex = extract_html(WEBFORMS.format(state="1", sidebar="", body=BODY), URL)
    assert ex.extractor == "generic" and ex.title == "Employer Job Offer"
    assert texts(ex)[1].startswith("The category is for skilled workers")
    assert "You must meet the language requirement of CLB 4." in texts(ex)
    assert not any("Immigrating" in t or "Privacy" in t for t in texts(ex))  # menu and footer are furniture
    assert ex.meta["extraction"] == GENERIC_VERSION


def test_view_state_and_server_names_are_not_content():
    a = extract_html(WEBFORMS.format(state="1", sidebar="", body=BODY), URL)
    b = extract_html(WEBFORMS.format(state="7", sidebar="", body=BODY), URL)
    assert a.content_hash == b.content_hash


def test_text_outside_the_document_is_ignored():
    page = WEBFORMS.format(state="1", sidebar="", body=BODY)
    clean = extract_html(page, URL)
    for junk in (
        "Trace: Page_Load 0.0132s; SQL 4 queries; node WEB03\r\n" + page,
        "<br />\n<b>Notice</b>: Undefined index: lang in functions.php on line 212<br />\n" + page,
        page + "\n<!-- 0.118s -->\nPowered by IIS node WEB04",
        "\ufeff" + page,
    ):
        assert extract_html(junk.encode("utf-8"), URL, encoding="utf-8").content_hash == clean.content_hash


def test_a_sidebar_that_states_rules_is_its_own_section_and_its_menu_is_not():
    ex = extract_html(WEBFORMS.format(state="1", sidebar=RULES, body=BODY), URL)
    side = [b for b in ex.blocks if b["section"][:1] == ["Sidebar"]]
    assert [b["text"] for b in side] == [
        "Representatives",
        "A representative must be a member of the College of Immigration and Citizenship Consultants or a "
        "lawyer.",
    ]
    assert side[1]["section"] == ["Sidebar", "Representatives"]
    assert not any(t in ("Immigrating", "Forms") for t in texts(ex))
    # a column with no rule in it (a social-media box) stays furniture
    social = "<h3>Follow us</h3><p>Find us on X and Facebook for news and events.</p>"
    assert not any(
        b["section"][:1] == ["Sidebar"]
        for b in extract_html(WEBFORMS.format(state="1", sidebar=social, body=BODY), URL).blocks
    )


def test_landmarks_first_then_text_density():
    wordpress = (
        "<html><body><header id='masthead' class='site-header'><p class='site-title'>Coastal Immigration</p>"
        "<nav><ul><li><a href='/'>Home</a></li></ul></nav></header><div id='content' class='site-content'>"
        "<main id='primary' class='site-main'><article class='page'><header class='entry-header'>"
        "<h1 class='entry-title'>Physicians stream</h1></header><div class='entry-content'>"
        "<p>Candidates must have a signed offer of employment from the health authority.</p></div></article>"
        "</main><aside id='secondary' class='widget-area'><section class='widget widget_recent_entries'>"
        "<h2>Recent News</h2><ul><li><a href='/n1'>Story one</a></li></ul></section></aside></div>"
        "</body></html>"
    )
    ex = extract_html(wordpress, URL)
    assert texts(ex) == [
        "Physicians stream",
        "Candidates must have a signed offer of employment from the health authority.",
    ]
    assert any("landmark <main#primary>" in d for d in ex.dropped)
    # a table layout with no landmark at all: the cell that holds most of the text
    table = (
        "<html><body><table><tr><td colspan='2'><img src='/logo.gif' alt='Province'> <a href='/'>Home</a>"
        "</td></tr><tr><td><a href='/a'>Apply</a><br><a href='/b'>Fees</a></td><td><h1>Skilled workers"
        "</h1><p>You must have at least one year of paid work experience in the occupation.</p><p>The "
        "processing fee for the principal applicant is $550 and must be paid when you apply.</p></td></tr>"
        "<tr><td colspan='2'><small>Important notices</small></td></tr></table></body></html>"
    )
    ex = extract_html(table, URL)
    assert texts(ex)[0] == "Skilled workers" and len(texts(ex)) == 3
    assert any("text density <td>" in d for d in ex.dropped)


def test_last_updated_is_metadata_and_alert_blocks_say_so():
    page = (
        "<html><body><main><h1>Stream</h1><p>Last updated: April 3, 2024</p>"
        "<div class='alert alert-warning'><p>The portal will be unavailable Saturday for maintenance.</p>"
        "</div>"
        "<p>You must apply online.</p></main></body></html>"
    )
    ex = extract_html(page, URL)
    assert ex.meta["date_modified"] == "April 3, 2024"
    assert "Last updated: April 3, 2024" not in texts(ex)
    notice = next(b for b in ex.blocks if "unavailable" in b["text"])
    assert notice.get("notice") is True
    assert "notice" not in next(b for b in ex.blocks if b["text"] == "You must apply online.")


def test_gcweb_pages_are_extracted_as_before():
    """GCWeb's block extractor is unchanged: a canada.ca page reads the same with the generic templates'
    rules in place (the golden file holds every stored page to the byte)."""
    page = next((Path(__file__).parent / "eval" / "noise").glob("*.html")).read_bytes()
    ex = extract_html(page, "https://www.canada.ca/en/x.html")
    assert ex.extractor == "gcweb" and "extraction" not in ex.meta


def test_a_page_stored_by_an_older_generic_extractor_is_compared_like_with_like(tmp_path, monkeypatch):
    """A stored version extracted by an earlier generic extractor is extracted again from its raw body before
    comparing, so an upgrade never reports the extractor's own difference as a change."""
    from policywatch.monitor.config import parse_config
    from policywatch.monitor.detection import extract
    from policywatch.monitor.detection.extract import Extraction
    from policywatch.monitor.pagework import FetchResult, PageWork
    from policywatch.storage import open_database
    from policywatch.storage import queries as q

    db_url = f"sqlite:///{tmp_path / 'h.db'}"
    cfg = parse_config(
        {
            "storage": {"url": db_url},
            "crawl": {"allowed_domains": ["www.pnp.example.ca"]},
            "watch": [{"url": URL}],
        }
    )
    real = extract.extract_html  # what the page pipeline calls (monitor.page.content)

    def older(*args, **kwargs):  # what the previous release stored: no sidebar, its own version marker
        ex = real(*args, **kwargs)
        blocks = [b for b in ex.blocks if b["section"][:1] != ["Sidebar"]]
        return Extraction(ex.extractor, ex.title, blocks, {**ex.meta, "extraction": "generic-1"}, ex.dropped)

    db = open_database(db_url)
    try:

        def night(state: str, first: bool):
            with db.session() as s:
                run_id = q.open_run(s).id
            body = WEBFORMS.format(state=state, sidebar=RULES, body=BODY).encode()
            return PageWork(db, cfg, run_id, first_run=first).process(
                FetchResult(url=URL, outcome="ok", status=200, body=body, content_type="text/html")
            )

        monkeypatch.setattr(extract, "extract_html", older)
        assert night("1", True).outcome == "ok"
        monkeypatch.setattr(extract, "extract_html", real)
        result = night("2", False)
        assert result.outcome == "ok" and result.change_id is None, result
        # compared as stored, the upgrade would have read as the sidebar being added
        from policywatch.monitor.detection.detect import detect_html

        page = WEBFORMS.format(state="2", sidebar=RULES, body=BODY)
        stale, fresh = older(page, URL), real(page, URL)
        assert detect_html(
            url=URL,
            title=fresh.title,
            old={"blocks": stale.blocks, "meta": stale.meta, "text": stale.text},
            new_blocks=fresh.blocks,
            new_meta=fresh.meta,
            watch_topics=[],
            topic_defs={},
        )
    finally:
        db.dispose()


def test_sessions_in_links_are_not_content():
    """ASP.NET's cookieless sessions and session or tracking parameters change on every visit."""
    page = (
        "<html><body><main><h1>Forms</h1><p>Download the <a href='{href}'>consent form</a> and sign it.</p>"
        "</main></body></html>"
    )
    a = extract_html(page.format(href="/(S(lit3py55t21z5v55vlm25s55))/forms/consent.aspx?id=4&sid=91"), URL)
    b = extract_html(page.format(href="/(S(x0a1b2c3d4e5f6g7h8i9j0kk))/forms/consent.aspx?id=4&sid=17"), URL)
    assert a.content_hash == b.content_hash
    assert a.blocks[1]["links"] == ["https://www.pnp.example.ca/forms/consent.aspx?id=4"]


def test_a_sidebar_keeps_an_e_mail_address_that_is_only_a_link():
    sidebar = (
        "<h3>Submitting documents</h3><p>Documents requested after you apply must be sent by e-mail:</p>"
        "<ul><li><a href='mailto:pnp.docs@gov.example.ca'>pnp.docs@gov.example.ca</a></li>"
        "<li><a href='/forms'>Forms</a></li></ul>"
    )
    ex = extract_html(WEBFORMS.format(state="1", sidebar=sidebar, body=BODY), URL)
    side = [b["text"] for b in ex.blocks if b["section"][:1] == ["Sidebar"]]
    assert "pnp.docs@gov.example.ca" in side and "Forms" not in side
