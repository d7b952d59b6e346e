"""Extraction output is frozen: every block, title, metadata field and "dropped" note of a set of real and
fixture pages must stay byte-for-byte what it was when `tests/fixtures/extraction-golden.json` was written.

Why: the content hash of every stored version is a hash of this output. If a release extracted the same page a
little differently (a space, a block split in two), every user's next pass would see every page as "changed".
Speed work on the extractor is checked against this file; a change that is *meant* to alter the output needs a
plan for stored histories (their last versions compared like with like, as `PageWork._reextract` does when
noise rules change), a bump of `monitor.page.content.EXTRACTION_VERSION`, and the file regenerated with
`python tests/test_extract_golden.py --update`.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from policywatch.monitor.detection.extract import NoMainContent, extract_html  # noqa: E402
from tests.eval import gate  # noqa: E402

GOLDEN = Path(__file__).parent / "fixtures" / "extraction-golden.json"
RULES = ([(".alert", "rule: alerts"), ("table", "rule: tables")], [r"\bOfficers?\b", r"\d{4}-\d{2}-\d{2}"])


def _documents() -> Iterator[tuple[str, bytes]]:
    """Every HTML document the tests own: real captures, fixture sites, the eval gate's pages, generic
    pages."""
    for f in sorted((Path(__file__).parent / "eval" / "noise").glob("*.html")):
        yield f"noise/{f.name}", f.read_bytes()
    for f in sorted((Path(__file__).parent / "fixtures" / "sites").rglob("*.html")):
        yield (
            f"sites/{f.relative_to(Path(__file__).parent / 'fixtures' / 'sites').as_posix()}",
            f.read_bytes(),
        )
    for f in sorted(gate.PAGES.glob("*.md")):
        md = f.read_text(encoding="utf-8")
        for night in (1, 2):
            yield f"eval/{f.stem}/night-{night}", gate.gcweb(md, night)
    for i in range(3):
        yield f"generic/{i}", gate._generic(i)
    for case in gate.site_cases():  # the template sites of the evaluation gate, every night
        for i, night in enumerate(case.nights, start=1):
            yield f"templates/{case.name.split()[0]}/night-{i}", night.body


def _variants(name: str, body: bytes) -> Iterator[tuple[str, dict]]:
    yield name, {}
    yield name + "#rules", {"extra_noise": RULES[0], "ignore_patterns": RULES[1]}
    if (
        b'property="mainContentOfPage"' in body
    ):  # the same page without the GCWeb marker: the generic extractor
        yield name + "#generic", {"_body": body.replace(b'property="mainContentOfPage"', b"")}


def _digest(body: bytes, kw: dict) -> str:
    body = kw.pop("_body", body)
    try:
        ex = extract_html(body, "https://www.canada.ca/en/page.html", encoding="utf-8", **kw)
    except NoMainContent as exc:
        return f"NoMainContent: {exc}"
    payload = json.dumps(
        [ex.extractor, ex.title, ex.blocks, ex.meta, ex.dropped, ex.text, ex.content_hash],
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _current() -> dict[str, str]:
    return {key: _digest(body, dict(kw)) for name, body in _documents() for key, kw in _variants(name, body)}


def test_extraction_output_is_unchanged() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    current = _current()
    assert len(golden) >= 100 and set(current) == set(golden), (
        "the set of golden documents changed: regenerate on purpose"
    )
    differ = sorted(k for k in golden if golden[k] != current[k])
    assert not differ, f"extraction output changed for {len(differ)} documents, e.g. {differ[:5]}"


def test_golden_detects_a_one_character_difference() -> None:
    """The golden check can fail: one changed character in the content area changes the digest."""
    name, body = next(_documents())
    i = body.index(b"<main")
    j = body.index(b"</p>", i)  # the last character of the first paragraph
    assert _digest(body[: j - 1] + b"#" + body[j:], {}) != _digest(body, {})


if __name__ == "__main__":
    if "--update" in sys.argv:
        GOLDEN.write_text(json.dumps(_current(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {GOLDEN}")
