"""Facts and the structured block diff, data-driven: each case names what must be found."""

from __future__ import annotations

import pytest

from policywatch.monitor.detection.diff import diff_blocks, inline_diff
from policywatch.monitor.detection.facts import compare_facts, extract_facts


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The work permit fee is $155.", [("fee", "$155")]),
        ("Biometrics cost CAN$85 and $1,000.50.", [("fee", "CAN$85"), ("fee", "$1,000.50")]),
        ("In place until March 22, 2026 (2024-03-22).", [("date", "March 22, 2026"), ("date", "2024-03-22")]),
        (
            "Work permits of up to 5 years; processing in 14 days.",
            [("duration", "up to 5 years"), ("duration", "14 days")],
        ),
        ("Up to 5 years", [("duration", "Up to 5 years")]),
        (
            "TEER categories 0, 1, 2 or 3 and NOC 21231",
            [("teer", "TEER categories 0, 1, 2 or 3"), ("noc", "NOC 21231")],
        ),
        (
            "Exemption code C88 replaces C10; see R205(c)(ii).",
            [("exemption_code", "C88"), ("exemption_code", "C10")],
        ),
        ("A cap of 10,000 applications; 500 invitations.", [("count", "10,000"), ("count", "500")]),
        ("A 20% increase", [("percentage", "20%")]),
    ],
)
def test_extract_facts(text, expected):
    assert [(f["type"], f["value"]) for f in extract_facts(text)] == expected


def test_compare_facts_pairs_same_type_as_changed():
    r = compare_facts(extract_facts("fee $155, code C88"), extract_facts("fee $230, code C88, code C90"))
    assert r["changed"] == [{"type": "fee", "before": "$155", "after": "$230"}]
    assert r["added"] == [{"type": "exemption_code", "value": "C90"}] and r["removed"] == []


def B(kind, text, section=(), **kw):
    return {"kind": kind, "section": list(section), "text": text, **kw}


BASE = [
    B("h2", "Fees"),
    B("p", "The work permit fee is $155.", ["Fees"]),
    B("h2", "Eligibility"),
    B("li", "You must have a job offer.", ["Eligibility"]),
    B("li", "You must leave Canada.", ["Eligibility"]),
    B("p", "See the guide.", ["Eligibility"], links=["https://x/guide.pdf"]),
]


def _ops(new):
    return [(o["op"], o["section"], o["text"]) for o in diff_blocks(BASE, new)]


CASES = {
    "sentence added": (
        BASE[:5] + [B("p", "Apply online.", ["Eligibility"])] + BASE[5:],
        [("added", ["Eligibility"], "Apply online.")],
    ),
    "fee changed": (
        [BASE[0], B("p", "The work permit fee is $230.", ["Fees"])] + BASE[2:],
        [("changed", ["Fees"], "The work permit fee is $230.")],
    ),
    "list item removed": (BASE[:4] + BASE[5:], [("removed", ["Eligibility"], "You must leave Canada.")]),
    "paragraph moved": (
        [BASE[0], BASE[1], BASE[2], BASE[4], BASE[3], BASE[5]],
        [("moved", ["Eligibility"], "You must leave Canada.")],
    ),
    "link target changed": (
        BASE[:5] + [B("p", "See the guide.", ["Eligibility"], links=["https://x/guide-2025.pdf"])],
        [("changed", ["Eligibility"], "See the guide.")],
    ),
    "section added": (
        BASE + [B("h2", "How to apply"), B("p", "Use the portal.", ["How to apply"])],
        [("added", [], "How to apply"), ("added", ["How to apply"], "Use the portal.")],
    ),
    "nothing": (list(BASE), []),
}


@pytest.mark.parametrize("name", list(CASES))
def test_diff_cases(name):
    new, expected = CASES[name]
    assert _ops(new) == expected


def test_changed_block_carries_facts_and_inline_diff():
    new = [BASE[0], B("p", "The work permit fee is $230.", ["Fees"])] + BASE[2:]
    op = diff_blocks(BASE, new)[0]
    assert op["before"] == "The work permit fee is $155."
    assert op["facts"]["changed"] == [{"type": "fee", "before": "$155", "after": "$230", "section": ["Fees"]}]
    assert op["inline"] == [["equal", "The work permit fee is "], ["del", "$155."], ["ins", "$230."]]


def test_link_change_keeps_old_links():
    new = BASE[:5] + [B("p", "See the guide.", ["Eligibility"], links=["https://x/guide-2025.pdf"])]
    op = diff_blocks(BASE, new)[0]
    assert op["links_before"] == ["https://x/guide.pdf"] and op["links"] == ["https://x/guide-2025.pdf"]


def test_inline_diff_roundtrip():
    a, b = "Workers in TEER 0 or 1 may apply.", "Workers in TEER 0, 1, 2 or 3 may apply now."
    segs = inline_diff(a, b)
    assert "".join(t for op, t in segs if op != "ins") == a
    assert "".join(t for op, t in segs if op != "del") == b
