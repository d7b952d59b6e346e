"""Extraction: canada.ca content without furniture, metadata kept apart, blocks with sections, links,
images."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from policywatch.monitor.detection.extract import NoMainContent, extract_html

NOISE = Path(__file__).parent / "eval" / "noise"
PAGE = """<html lang="en"><head><title>T - Canada.ca</title><meta name="dcterms.modified" content="2024-03-22">
<link rel="canonical" href="https://www.canada.ca/en/canonical.html"><script>var x=1</script></head><body>
<nav>Menu</nav><main property="mainContentOfPage"><h1>Innovation Stream</h1>
<p>Intro with&nbsp;a <strong>bold</strong>  word<br>and a break.</p>
<h2>Eligibility</h2><ul><li>Item one<ul><li>Nested item</li></ul></li></ul>
<h3>Wage</h3><table><tr><th>TEER</th><th>Wage</th></tr><tr><td>0</td><td>$80,000</td></tr></table>
<p><a href="/en/doc.pdf">Guide</a> <img src="/img/chart.png" alt="Chart of caps"></p>
<script>rotating()</script><div class="wb-share">Share {x}</div>
<section class="pagedetails"><dl id="wb-dtmd"><dt>Date modified:</dt><dd><time property="dateModified">2024-03-22</time></dd></dl></section>
</main><footer>Footer</footer></body></html>"""


def test_gcweb_blocks_sections_and_metadata():
    ex = extract_html(PAGE, "https://www.canada.ca/en/page.html")
    assert ex.extractor == "gcweb" and ex.title == "Innovation Stream"
    assert (
        ex.meta["date_modified"] == "2024-03-22"
        and ex.meta["canonical_url"] == "https://www.canada.ca/en/canonical.html"
    )
    texts = [(b["kind"], b["section"], b["text"]) for b in ex.blocks]
    assert ("p", [], "Intro with a bold word and a break.") in texts
    assert ("li", ["Eligibility"], "Item one") in texts
    assert ("li", ["Eligibility"], "Nested item") in texts
    assert ("tr", ["Eligibility", "Wage"], "0 | $80,000") in texts
    linked = next(b for b in ex.blocks if b.get("links"))
    assert linked["links"] == ["https://www.canada.ca/en/doc.pdf"]
    assert linked["images"] == [{"src": "https://www.canada.ca/img/chart.png", "alt": "Chart of caps"}]
    joined = ex.text
    for noise in ("Menu", "Footer", "rotating", "Share", "Date modified", "var x"):
        assert noise not in joined


def test_date_modified_is_metadata_not_content():
    a = extract_html(PAGE, "u")
    b = extract_html(PAGE.replace("2024-03-22", "2025-01-01"), "u")
    assert a.content_hash == b.content_hash and a.meta["date_modified"] != b.meta["date_modified"]


def test_link_target_change_is_a_content_change():
    a = extract_html(PAGE, "u")
    b = extract_html(PAGE.replace("/en/doc.pdf", "/en/doc-v2.pdf"), "u")
    assert a.content_hash != b.content_hash


def test_real_captures_noise_only_same_hash():
    """36 real canada.ca captures: 3 pages × 12 nights whose content never changed → 3 hashes."""
    by_page: dict[str, set[str]] = {}
    for f in sorted(NOISE.glob("*.html")):
        page = f.name.split("__")[0]
        by_page.setdefault(page, set()).add(
            extract_html(f.read_bytes(), "https://www.canada.ca/x.html").content_hash
        )
    assert len(by_page) == 3 and all(len(h) == 1 for h in by_page.values())


def test_generic_fallback_and_required_gcweb():
    html = (
        "<html><body><header>Site</header><article><h1>Blog</h1><p>Post text "
        "here.</p></article><footer>f</footer></body></html>"
    )
    ex = extract_html(html, "https://example.org/")
    assert ex.extractor == "generic" and [b["text"] for b in ex.blocks] == ["Blog", "Post text here."]
    with pytest.raises(NoMainContent):
        extract_html(html, "https://example.org/", require_gcweb=True)


def test_charset_from_bytes():
    body = (
        "<html><head><meta charset='windows-1252'></head><body><main "
        "property='mainContentOfPage'><h1>Frais</h1><p>Co\xfbt : 155 $</p></main></body></html>"
    ).encode("cp1252")
    ex = extract_html(body, "u", encoding="cp1252")
    assert ex.blocks[1]["text"] == "Coût : 155 $"


def test_content_hash_serializes_blocks_once_and_matches_the_canonical_hash():
    """Extraction.content_hash reuses blocks_json (also what the page work stores): it must equal the
    canonical content_hash(title, blocks) that every stored version was hashed with, or every page would look
    new."""
    import json

    from policywatch.monitor.detection.extract import content_hash

    for f in sorted(NOISE.rglob("*.html"))[:6]:
        ex = extract_html(f.read_bytes(), "https://www.canada.ca/en/x.html")
        assert ex.blocks and ex.content_hash == content_hash(ex.title, ex.blocks)
        assert json.loads(ex.blocks_json) == ex.blocks


def test_gcweb_furniture_matcher_equals_the_css_selectors() -> None:
    """The one-pass matcher for GCWeb's furniture selectors removes exactly what cssselect's XPath would, in
    the same order, on awkward markup: nested matches, tabs and newlines in class, a no-break space (not a
    class separator), duplicate ids, a match inside an earlier match."""
    import copy

    from policywatch.monitor.detection import extract as ex

    html = """<html><body><main property="mainContentOfPage" class="container"><h1>T</h1>
    <p>Keep one.</p><section class="pagedetails"><p>a</p><div class="pagedetails"><dl id="wb-dtmd">d</dl></div></section>
    <div class="x\tpagedetails\ny">b</div><div class="pagedetails\u00a0x">keep two</div><p id="wb-dtmd">c</p>
    <span class="wb-share">s</span>tail stays<div id="gc-pft"><p class="gc-pgnt-hdr">n</p></div>
    <div class="wb-sharex">keep three</div><section class="x pagedetails"><p id="gc-pft">e</p></section></main></body></html>"""
    doc = ex.parse_html(html.encode(), "utf-8")
    fast_main, css_main = ex.find_gcweb_main(doc), ex.find_gcweb_main(copy.deepcopy(doc))
    fast_notes: list[str] = []
    css_notes: list[str] = []
    ex._clean(fast_main, ex.GCWEB_NOISE, "furniture", fast_notes)
    ex._clean(css_main, list(ex.GCWEB_NOISE), "furniture", css_notes)  # a copy of the list: the CSS path
    assert fast_notes == css_notes and len(fast_notes) >= 7
    assert etree.tostring(fast_main) == etree.tostring(css_main)
    text = "".join(fast_main.itertext())
    assert "keep two" in text and "keep three" in text and "tail stays" in text and "Keep one." in text


def test_orjson_and_the_stdlib_encode_blocks_identically_on_every_code_point() -> None:
    """Content hashes were defined with `json.dumps(sort_keys=True, ensure_ascii=False, separators=(",",
    ":"))`; the extractor encodes with orjson. The two must give the same bytes for every character a block
    can hold (a different escape anywhere would make every page with that character look changed)."""
    import json

    import orjson

    chars = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    for i in range(0, len(chars), 4096):
        text = "".join(chars[i : i + 4096])
        blocks = [
            {
                "text": text,
                "kind": "p",
                "section": [text[:7]],
                "links": [text[-5:]],
                "images": [{"src": text[:3], "alt": text[3:9]}],
            }
        ]
        expected = json.dumps(blocks, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8"
        )
        assert orjson.dumps(blocks, option=orjson.OPT_SORT_KEYS) == expected, (
            f"code points from U+{ord(chars[i]):04X}"
        )


@pytest.mark.parametrize(
    "html",
    [
        # the date in the first #wb-dtmd; meta tags in head
        """<html><head><meta name="dcterms.modified" content="2020-01-01"><meta name="dcterms.issued" content=" 2019-05-05 ">
    <link rel="canonical" href="https://x/a"></head><body><dl id="wb-dtmd"><time>2024-03-22</time></dl></body></html>""",
        # no #wb-dtmd: the meta date; an empty and a missing content before the real one; a canonical in the
        # body
        """<html><head><meta name="dcterms.modified" content="  "><meta name="dcterms.modified">
    <meta name="dcterms.modified" content="2021-02-02"></head><body><link rel="canonical" href="https://x/b">
    <link rel="canonical" href="https://x/c"><meta name="DCTERMS.issued" content="no: case differs"></body></html>""",
        # a first #wb-dtmd without a date, a duplicate id holding one (the full scan's case)
        """<html><head><meta name="dcterms.modified" content="2021-02-02"></head><body><div id="wb-dtmd">no date</div>
    <section><dl id="wb-dtmd"><dd><time> </time><time>2023-07-07</time></dd></dl></section></body></html>""",
        # a #wb-dtmd whose <time> is empty everywhere: falls back to the meta tag
        """<html><head><meta name="dcterms.modified" content="2021-02-02"><link rel="canonical stylesheet" href="x.css">
    </head><body><dl id="wb-dtmd"><time></time></dl></body></html>""",
        # nothing at all
        """<html><body><p>plain</p></body></html>""",
    ],
)
def test_metadata_equals_the_xpath_definitions(html: str) -> None:
    """`extract_metadata` reads meta/link elements in one pass and scans for #wb-dtmd only when libxml2's ID
    index knows one; on awkward markup it must give what the XPath definitions it replaced give."""
    from policywatch.monitor.detection import extract as ex

    doc = ex.parse_html(html.encode(), "utf-8")

    def first(xpath: str) -> str | None:
        for value in doc.xpath(xpath):
            value = ex.normalize_text(str(value))
            if value:
                return value
        return None

    expected = {
        "date_modified": first("id('wb-dtmd')//time/text()")
        or first("//*[@id='wb-dtmd']//time/text()")
        or first("//meta[@name='dcterms.modified']/@content"),
        "date_issued": first("//meta[@name='dcterms.issued']/@content"),
        "canonical_url": first("//link[@rel='canonical']/@href"),
        "lang": doc.get("lang"),
    }
    assert ex.extract_metadata(doc) == {k: v for k, v in expected.items() if v}
