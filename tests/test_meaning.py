"""Significance from meaning, one rule per class, each tried on before/after wording of the kind several
governments' sites use (federal instructions, provincial nominee programs on Drupal, WordPress, ASP.NET and
Sitecore, the old cic.gc.ca). Data-driven, like urlwatch's filter tests: each row is a page section before
and after, the significance the change must get, and what its one-line summary must say.

Every row goes through the real path: generic extraction of a small page, the block diff, detection.
"""

from __future__ import annotations

import pytest

from policywatch.monitor.detection.detect import detect_html
from policywatch.monitor.detection.extract import extract_html
from policywatch.monitor.detection.meaning import clip

URL = "https://www.immigration.example.ca/programs/stream.html"


def page(section: str, *, heading: str = "Program details") -> str:
    return (
        "<!DOCTYPE html><html><head><title>Stream</title></head><body>"
        "<header><nav><a href='/'>Home</a></nav></header><main><h1>Skilled worker stream</h1>"
        "<p>This stream is for skilled workers with a job offer from an employer in the province.</p>"
        f"<h2>{heading}</h2>{section}<h2>Contact</h2><p>Questions can be sent through our enquiry form.</p>"
        "</main><footer>© Province</footer></body></html>"
    )


def detect(before: str, after: str, **kw):
    return detect_pages(page(before, **kw), page(after, **kw))


def detect_pages(before_html: str, after_html: str):
    """Two whole pages through generic extraction, the block diff and detection."""
    old = extract_html(before_html, URL)
    new = extract_html(after_html, URL)
    return detect_html(
        url=URL,
        title=new.title,
        old={"blocks": old.blocks, "meta": old.meta, "text": old.text},
        new_blocks=new.blocks,
        new_meta=new.meta,
        watch_topics=[],
        topic_defs={},
    )


# (rule, before, after, significance, the summary holds)
CASES = [
    # -- high: open, closed, paused, now accepting; an intake number from or to 0 -------------------------
    (
        "intake opened 0 → 600",
        "<p>Applications accepted this intake period: 0 applications.</p>",
        "<p>Applications accepted this intake period: 600 applications.</p>",
        "high",
        "Intake opened: 0 → 600 applications",
    ),
    (
        "intake closed 500 → 0 (table)",
        "<table><tr><th>Stream</th><th>Intake cap</th></tr><tr><td>Tech pilot</td><td>500</td></tr></table>",
        "<table><tr><th>Stream</th><th>Intake cap</th></tr><tr><td>Tech pilot</td><td>0</td></tr></table>",
        "high",
        "500 → 0",
    ),
    (
        "now accepting (Drupal)",
        "<p>The program is not currently accepting new registrations.</p>",
        "<p>The program is now accepting new registrations.</p>",
        "high",
        "now accepting",
    ),
    (
        "paused (WordPress)",
        "<p>This stream is open. There is no deadline.</p>",
        "<p>This stream is paused while priorities are reviewed.</p>",
        "high",
        "paused",
    ),
    (
        "closed: cap reached (old cic.gc.ca)",
        "<p>Applications received after the cap is reached will be returned.</p>",
        "<p>The cap for this year has been reached. Applications are no longer being accepted.</p>",
        "high",
        "no longer being accepted",
    ),
    (
        "reopens on a date (Sitecore)",
        "<p>Registration is temporarily paused.</p>",
        "<p>Registration reopens on January 15, 2025.</p>",
        "high",
        "January 15, 2025",
    ),
    (
        "not accepting → a number of applications (the new words are the news)",
        "<p>We are not accepting applications at this time.</p>",
        "<p>We will accept up to 600 applications during this intake period.</p>",
        "high",
        "600 applications",
    ),
    (
        "a status cell in a table",
        "<table><tr><th>Stream</th><th>Status</th></tr><tr><td>Skilled Worker</td><td>Closed</td></tr>"
        "</table>",
        "<table><tr><th>Stream</th><th>Status</th></tr><tr><td>Skilled Worker</td><td>Open</td></tr></table>",
        "high",
        "Open",
    ),
    # -- medium: policy facts -------------------------------------------------------------------------------
    (
        "fee changed",
        "<p>You must pay a non-refundable application fee of $1,500.</p>",
        "<p>You must pay a non-refundable application fee of $2,000.</p>",
        "medium",
        "Fee: $1,500 → $2,000",
    ),
    (
        "new fee sentence, the last step",
        "<ol><li>Submit your application online.</li></ol>",
        "<ol><li>Submit your application online.</li><li>Pay the $300 fee online as the last step.</li></ol>",
        "medium",
        "Pay the $300 fee online as the last step.",
    ),
    (
        "payment method",
        "<p>Payment must be made by credit card through the online system.</p>",
        "<p>Payment must be made by Visa or Mastercard through the online system.</p>",
        "medium",
        "credit card → Visa or Mastercard",
    ),
    (
        "deadline date",
        "<p>Submit your application no later than March 1, 2025.</p>",
        "<p>Submit your application no later than April 15, 2025.</p>",
        "medium",
        "March 1, 2025 → April 15, 2025",
    ),
    (
        "days to submit after an invitation",
        "<p>You have 14 calendar days to submit an application after you are invited.</p>",
        "<p>You have 30 calendar days to submit an application after you are invited.</p>",
        "medium",
        "Deadline: 14 calendar days → 30 calendar days",
    ),
    (
        "new NOC requirement (list item)",
        "<p>You must:</p><ul><li>have a job offer;</li></ul>",
        "<p>You must:</p><ul><li>have a job offer;</li><li>have a job offer in NOC skill type 0 or skill "
        "level A or B;</li></ul>",
        "medium",
        "NOC skill type 0 or skill level A or B",
    ),
    (
        "language level",
        "<p>You must have a language level of CLB 4 or higher.</p>",
        "<p>You must have a language level of CLB 5 or higher.</p>",
        "medium",
        "CLB 4 → CLB 5",
    ),
    (
        "credential assessment required",
        "<p>Include your diploma.</p>",
        "<p>Include your diploma. An educational credential assessment is required for foreign diplomas.</p>",
        "medium",
        "educational credential assessment",
    ),
    (
        "form renamed",
        "<ul><li>the signed Consent to Disclose Information form.</li></ul>",
        "<ul><li>the signed Use of a Representative and Consent to Disclose Information form.</li></ul>",
        "medium",
        "Use of a Representative",
    ),
    (
        "IRCC form number added",
        "<p>Use the Generic Application Form for Canada (IMM 0008).</p>",
        "<p>Use the Generic Application Form for Canada (IMM 0008) and Schedule A (IMM 5669).</p>",
        "medium",
        "IMM 5669",
    ),
    (
        "processing time",
        "<p>Most complete applications are processed within 3 months.</p>",
        "<p>Most complete applications are processed within 6 months.</p>",
        "medium",
        "Processing time: 3 months → 6 months",
    ),
    (
        "who may represent applicants",
        "<p>A representative must be a consultant or a lawyer.</p>",
        "<p>A representative must be a lawyer in good standing with a Canadian law society.</p>",
        "medium",
        "lawyer in good standing",
    ),
    (
        "documents e-mail removed",
        "<p>Send documents by e-mail to docs@pnp.example.ca.</p>",
        "<p>Upload documents to your online account.</p>",
        "medium",
        "docs@pnp.example.ca",
    ),
    (
        "a list item added under a lead-in that states the rule",
        "<p>To apply for the Start-up Visa Program, you must</p><ul><li>have a letter of support;</li></ul>",
        "<p>To apply for the Start-up Visa Program, you must</p><ul><li>have a letter of support;</li>"
        "<li>have a qualifying business;</li></ul>",
        "medium",
        "New requirement: “have a qualifying business;”",
    ),
    (
        "an eligibility list item removed (the rule is in the heading)",
        "<ul><li>an offer of arranged employment; or</li><li>one year of work experience.</li></ul>",
        "<ul><li>one year of work experience.</li></ul>",
        "medium",
        "arranged employment",
    ),
    (
        "a wage is a wage",
        "<p>The wage offered must be at least $18.00 per hour.</p>",
        "<p>The wage offered must be at least $20.00 per hour.</p>",
        "medium",
        "Wage: $18.00 → $20.00",
    ),
    # -- low: wording, typos, punctuation, banners -----------------------------------------------------------
    (
        "typo",
        "<p>Create an account and submit your aplication.</p>",
        "<p>Create an account and submit your application.</p>",
        "low",
        "Typo",
    ),
    (
        "punctuation and case",
        "<p>If you are nominated, you can apply for permanent residence.</p>",
        "<p>If you are nominated you can apply for Permanent Residence.</p>",
        "low",
        "Typo or punctuation",
    ),
    (
        "a visitor counter is no fact",
        "<p>This page has been viewed 12,204 times.</p>",
        "<p>This page has been viewed 12,377 times.</p>",
        "low",
        "Reworded",
    ),
    (
        "a closed office is no program status",
        "<p>Our office is open Monday to Friday.</p>",
        "<p>Our office is closed on Fridays in summer.</p>",
        "low",
        "office is closed",
    ),
    (
        "a form's link gets a cache-buster",
        "<p>Download the <a href='/forms/consent.pdf?v=1'>consent form</a>.</p>",
        "<p>Download the <a href='/forms/consent.pdf?v=2'>consent form</a>.</p>",
        "low",
        "Link target changed",
    ),
    (
        "a form's link points to a new version",
        "<p>Download the <a href='/forms/consent-2023.pdf'>consent form</a>.</p>",
        "<p>Download the <a href='/forms/consent-2025.pdf'>consent form</a>.</p>",
        "medium",
        "Form link changed",
    ),
    (
        "wording with no rule in it",
        "<p>Learn more about living and working in our province.</p>",
        "<p>Discover more about life and work in our beautiful province.</p>",
        "low",
        "Reworded",
    ),
    (
        "maintenance banner (facts and all)",
        "",
        "<div class='alert alert-warning'><p>The online system will be unavailable Saturday, March 2, 2024 "
        "from 6 p.m. to 11 p.m. for maintenance.</p></div>",
        "low",
        "Site notice shown",
    ),
    (
        "a high-volume banner",
        "",
        "<div class='box'><p>Due to high volumes, processing may take longer than the posted 3 months.</p>"
        "</div>",
        "low",
        "Site notice shown",
    ),
    (
        "holiday closure banner",
        "<div role='alert'><p>Our offices will be closed Monday, August 5, 2024 for the Civic Holiday.</p>"
        "</div>",
        "",
        "low",
        "Site notice gone",
    ),
]


@pytest.mark.parametrize(
    ("rule", "before", "after", "significance", "says"), CASES, ids=[c[0] for c in CASES]
)
def test_significance_from_meaning(rule, before, after, significance, says):
    d = detect(before, after, heading="Eligibility" if "eligibility" in rule else "Program details")
    assert d is not None, rule
    assert d.significance == significance, (rule, d.summary)
    assert says in d.summary, (rule, d.summary)
    assert "\n" not in d.summary


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("<p>Apply online. Pay the fee.</p>", "<p>Apply online.</p><p>Pay the fee.</p>"),  # split in two
        ("<div>Apply online through the portal.</div>", "<p>Apply online through the portal.</p>"),
        ("<p>Apply <b>online</b> through the portal.</p>", "<p>Apply online through  the portal.</p>"),
    ],
)
def test_markup_only_edits_are_no_change(before, after):
    assert detect(before, after) is None


def test_the_lead_is_the_most_significant_fact_and_the_rest_counted():
    d = detect(
        "<p>The fee is $100.</p><p>Read the guide first,</p><p>Intake: 0 applications.</p>",
        "<p>The fee is $150.</p><p>Read the guide first.</p><p>Intake: 600 applications.</p>",
    )
    assert d.significance == "high"
    assert d.summary.startswith("Intake opened: 0 → 600 applications")
    # up to two facts, each whole, then what else changed: the fee is the second, the wording counted
    assert (
        d.summary
        == "Intake opened: 0 → 600 applications; Fee: $100 → $150 (Program details) (+1 more: 1 changed)"
    )


def test_summaries_never_cut_mid_word():
    long = "Applicants must " + " ".join(f"provide document number {i} in colour" for i in range(40)) + "."
    d = detect("<p>Short rule.</p>", f"<p>Short rule.</p><p>{long}</p>")
    lead = d.summary
    assert "…" in lead
    quoted = lead.split("“", 1)[1].split("…", 1)[0]
    assert long.startswith(quoted) and long[len(quoted)] == " "  # the cut falls between words
    assert clip("word " * 100, 20) == "word word word word…"


def test_a_new_pages_summary_states_its_key_facts_once():
    from policywatch.monitor.demo import _shell, gcweb_page, markdown_to_html
    from policywatch.monitor.detection.facts import extract_facts, unique_facts

    md = (
        __import__("pathlib").Path(__file__).parent.parent
        / "monitor"
        / "demo_site"
        / "pages"
        / "innovation-stream-pilot.md"
    ).read_text(encoding="utf-8")
    title, body = markdown_to_html(md)
    ex = extract_html(gcweb_page(_shell(1), title, body, "2024-03-22"), "https://www.canada.ca/en/pilot.html")
    d = detect_html(
        url="https://www.canada.ca/en/pilot.html",
        title=ex.title,
        old=None,
        new_blocks=ex.blocks,
        new_meta=ex.meta,
        watch_topics=[],
        topic_defs={},
        discovered=True,
    )
    # facts first, then what the page is, its title shortened at its dash
    assert d.summary == (
        "$155 fee · C88 · TEER 0–3 · until 2026-03-22 · NOC 31303 — new page: Innovation Stream pilot"
    ), d.summary
    assert d.summary.index("$155 fee") < 45
    added = d.details["facts"]["added"]
    assert len(added) == len({(f["type"], f["value"]) for f in added})  # C88 once, not six times
    assert ("wage", "$27") in {(f["type"], f["value"]) for f in added}  # "$27 per hour" is a wage
    assert ("fee", "$27") not in {(f["type"], f["value"]) for f in added}
    assert len(unique_facts(extract_facts(ex.text))) == len(added)


FRENCH = (
    '<html lang="fr"><body><main><h1>Volet des talents mondiaux</h1><h2>{h}</h2><p>{p}</p></main>'
    "</body></html>"
)


@pytest.mark.parametrize(
    "section, before, after, significance, starts",
    [
        (
            "Frais",
            "Les frais de traitement sont de 155 $.",
            "Les frais de traitement sont de 230 $.",
            "medium",
            "Fee: 155 $ → 230 $",
        ),
        (
            "État",
            "Nous acceptons les demandes.",
            "Nous n'acceptons plus de demandes pour ce volet.",
            "high",
            "Status",
        ),
        (
            "Dates",
            "Le programme prend fin le 22 mars 2026.",
            "Le programme prend fin le 22 mars 2027.",
            "medium",
            "Date: 22 mars 2026 → 22 mars 2027",
        ),
        (
            "Délais",
            "Délai de traitement : 212 jours",
            "Délai de traitement : 209 jours",
            "medium",
            "Duration: 212 jours → 209 jours",
        ),
    ],
)
def test_a_french_page_reads_fact_first(section, before, after, significance, starts):
    d = detect_pages(FRENCH.format(h=section, p=before), FRENCH.format(h=section, p=after))
    assert d.significance == significance and d.summary.startswith(starts), d.summary


LISTING = (
    '<html lang="en"><head><title>Program delivery updates - Canada.ca</title></head><body>'
    '<main property="mainContentOfPage"><h1>Program delivery updates</h1><table>'
    "<tr><th>Category</th><th>Title</th><th>Date published</th></tr>{rows}"
    '<tr><td>Temporary residents</td><td><a href="/en/u/visitors.html">Visitors: super visa</a></td>'
    "<td>July 30, 2024</td></tr></table></main></body></html>"
)
PGWP = (
    '<tr><td>Temporary residents</td><td><a href="/en/u/pgwp.html">Post-graduation work permit (PGWP)</a>'
    "</td><td>August 15, 2024</td></tr>"
)


@pytest.mark.parametrize(
    "before, after, summary",
    [
        ("", PGWP, "New program delivery update: Post-graduation work permit (PGWP) — August 15, 2024"),
        (PGWP, "", "Program delivery update removed: Post-graduation work permit (PGWP) — August 15, 2024"),
        (
            "",
            PGWP.replace('<a href="/en/u/pgwp.html">', "").replace("</a>", ""),
            "New entry:",
        ),  # no page of its own
    ],
)
def test_a_listings_new_row_names_the_entry_it_announces(before, after, summary):
    d = detect_pages(LISTING.format(rows=before), LISTING.format(rows=after))
    assert d.summary.startswith(summary) and d.significance == "medium", d.summary


@pytest.mark.parametrize(
    "text, expected",
    [
        # an amount may begin inside a word; a code may not
        ("Pay US$155 or CAN$ 1,200 now. xC88 is no code, C88 is.", ["$155 fee", "C88"]),
        # a long line: facts at both ends, far apart, words between (scanned only near the digits); a TEER
        # range written with "to" is a range
        (
            "The fee is $230. "
            + "Applicants need a valid job offer in a listed occupation. " * 8
            + "Deadline: until March 22, 2026, TEER categories 0 to 3.",
            ["$230 fee", "TEER 0–3", "until 2026-03-22"],
        ),
        # a French line: amount, date and code
        (
            "Les frais sont de 1 050 $ jusqu'au 22 mars 2024 (FEER 2).",
            ["1 050 $ fee", "TEER 2", "until 2024-03-22"],
        ),
    ],
)
def test_key_facts_are_found_wherever_they_stand(text, expected):
    from policywatch.monitor.detection.facts import key_facts

    assert key_facts(text) == expected
