"""The offline demo: a small canada.ca-like site over three nights, served on loopback, one pass per night.

The pages are real IRCC wording (officer instructions and the Start-up Visa page, converted to Markdown and
wrapped here in a real canada.ca GCWeb page shell), except the Tech Talent Strategy backgrounder, a sample
written from the public record. The shells are three real captures of one canada.ca page whose rotating
scripts differ, so every night carries real noise. The story:

- night 1: the baseline; the backgrounder says Innovation Stream details "will be released later"; the
  exemption-code table has no C88 row; IRCC's rounds JSON has rounds up to #335.
- night 2: noise only (new script hashes, new "Date modified"), and IRCC's rounds JSON is malformed, exactly
  as IRCC served it on 2025-02-19: a soft error, never "all rounds removed".
- night 3: the pilot page appears (found by following links), the C88 row is added, the backgrounder's
  promise is replaced by criteria, the Start-up Visa page gains a list item, rounds #336 and #337 appear.

The builder functions are also used by the evaluation corpus (tests/eval) to wrap real pages in GCWeb.
"""

from __future__ import annotations

import hashlib
import html
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from policywatch.monitor.nightly.passrun import PassResult

SITE = files("policywatch.monitor").joinpath("demo_site")
IRCC = "/en/immigration-refugees-citizenship"
OPS = (
    f"{IRCC}/corporate/publications-manuals/operational-bulletins-manuals/temporary-residents/foreign-workers"
)
PATHS = {
    "backgrounder": f"{IRCC}/news/2023/06/canadas-tech-talent-strategy.html",
    "exemption-codes": f"{OPS}/exemption-codes.html",
    "pilot": f"{OPS}/public-policy-competitiveness-economy/innovation-stream-pilot.html",
    "h1b": f"{OPS}/work-permit-h1b-visa.html",
    "start-visa": f"{IRCC}/services/immigrate-canada/start-visa.html",
    "ee-rounds": "/content/dam/ircc/documents/json/ee_rounds_123_en.json",
}
NIGHTS = (1, 2, 3)
IRCC_NAME = "Immigration, Refugees and Citizenship Canada"
LATER = "More details will be released later."
RELEASED = (
    "The Innovation Stream pilot opened on March 22, 2024. Employers of the Global Hypergrowth Project can "
    "hire "
    "workers in TEER 0, 1, 2 or 3 occupations on employer-specific work permits of up to 5 years under LMIA "
    "exemption code C88. See the [Innovation Stream pilot instructions](https://www.canada.ca"
    f"{PATHS['pilot']})."
)


# --- Markdown (as converted from IRCC pages) → GCWeb HTML ----------------------------------------------
_LINK = re.compile(r"\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)")  # one level of nested [ ] in link text
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _inline(text: str, local_links: dict[str, str]) -> str:
    out, pos = [], 0
    for m in _LINK.finditer(text):
        out.append(html.escape(text[pos : m.start()]))
        href = m.group(2)
        bare = href.split("#")[0]
        href = local_links.get(bare, href)
        out.append(f'<a href="{html.escape(href)}">{html.escape(m.group(1))}</a>')
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return _BOLD.sub(r"<strong>\1</strong>", "".join(out))


def markdown_to_html(md: str, local_links: dict[str, str] | None = None) -> tuple[str, str]:
    """Convert the converter's Markdown back to simple HTML; return (title, body HTML without the h1)."""
    text = re.sub(r"\A---\n.*?\n---\n", "", md, flags=re.S)
    lines = [ln.rstrip("\r") for ln in text.splitlines()]
    page = _MarkdownPage(local_links or {})
    i = 0
    while i < len(lines):
        i += page.line(lines[i], lines[i + 1] if i + 1 < len(lines) else "")
    page.close()
    title, parts = page.title, page.parts
    if not title and parts and re.match(r"<h2>", parts[0]):  # a page whose first heading is its title
        title = re.sub(r"<[^>]+>", "", parts.pop(0))
    return html.unescape(title), "\n".join(parts)


class _MarkdownPage:
    """The HTML of one Markdown page, a line at a time: headings, nested lists, tables, paragraphs."""

    def __init__(self, links: dict[str, str]):
        self.links = links
        self.title = ""
        self.table = False
        self.parts: list[str] = []
        self.para: list[str] = []
        self.list_stack: list[int] = []

    def flush_para(self) -> None:
        if self.para:
            self.parts.append(f"<p>{_inline(' '.join(self.para), self.links)}</p>")
            self.para.clear()

    def close_lists(self, level: int = 0) -> None:
        while len(self.list_stack) > level:
            self.list_stack.pop()
            self.parts.append("</ul>")

    def close_table(self) -> None:
        if self.table:
            self.parts.append("</tbody></table>")
            self.table = False

    def close(self) -> None:
        self.flush_para()
        self.close_lists()
        self.close_table()

    def line(self, ln: str, nxt: str) -> int:
        """Read one line (and the next, for a setext heading's underline); returns the lines consumed."""
        stripped = ln.strip()
        if stripped.startswith("Published Time:"):
            return 1
        underline = nxt.strip() or "x"
        if stripped and not stripped.startswith("|") and re.fullmatch(r"=+|-{3,}", underline):
            self.close()
            if underline.startswith("="):
                self.title = self.title or stripped
            else:
                self.parts.append(f"<h2>{_inline(stripped, self.links)}</h2>")
            return 2
        m = re.match(r"(#{1,6})\s+(.*)", stripped)
        if m:
            self.close()
            heading = m.group(2).strip("* ").strip()
            if len(m.group(1)) == 1 and not self.title:
                self.title = heading
            else:
                level = max(2, len(m.group(1)))
                self.parts.append(f"<h{level}>{_inline(heading, self.links)}</h{level}>")
            return 1
        m = re.match(r"(\s*)[*-]\s+(.*)", ln)
        if m and not stripped.startswith("**"):
            self.list_item(len(m.group(1)) // 4 + 1, m.group(2))
        elif stripped.startswith("|"):
            self.table_row(stripped)
        elif not stripped:
            self.close()
        else:
            self.close_lists()
            self.close_table()
            self.para.append(stripped)
        return 1

    def list_item(self, level: int, text: str) -> None:
        self.flush_para()
        self.close_table()
        if len(self.list_stack) < level:
            while len(self.list_stack) < level:
                self.list_stack.append(level)
                self.parts.append("<ul>")
        else:
            self.close_lists(level)
        self.parts.append(f"<li>{_inline(text, self.links)}</li>")

    def table_row(self, stripped: str) -> None:
        self.flush_para()
        self.close_lists()
        cells = [c.strip() for c in stripped.strip("|").split("|")]
        if all(re.fullmatch(r":?-{3,}:?", c) for c in cells if c):
            return  # the header's underline
        if not self.table:
            self.parts.append('<table class="table table-bordered"><tbody>')
            self.table = True
        self.parts.append("<tr>" + "".join(f"<td>{_inline(c, self.links)}</td>" for c in cells) + "</tr>")


def gcweb_page(shell: str, title: str, body_html: str, date_modified: str, url: str | None = None) -> str:
    """Put content into a real canada.ca page shell: new <title>, <h1>, main content and "Date modified".
    With `url`, what names the page in its <head> is this page's too (canonical and English alternate,
    title, publisher); the shell's French alternate and issue date, which are its own page's, go."""
    safe_title = html.escape(title)
    page = re.sub(
        r"<title>.*?</title>", f"<title>{safe_title} - Canada.ca</title>", shell, count=1, flags=re.S
    )
    if url is not None:
        href = html.escape(url)
        for pattern, value in (
            (r'<link rel="canonical" href="[^"]*', f'<link rel="canonical" href="{href}'),
            (
                r'<link rel="alternate" hreflang="en" href="[^"]*',
                f'<link rel="alternate" hreflang="en" href="{href}',
            ),
            (r'\s*<link rel="alternate" hreflang="fr" href="[^"]*"/>', ""),
            (r'\s*<meta name="dcterms.issued"[^>]*>', ""),
            (
                r'<meta name="dcterms.title" content="[^"]*',
                f'<meta name="dcterms.title" content="{safe_title}',
            ),
            (r'<meta name="author" content="[^"]*', f'<meta name="author" content="{IRCC_NAME}'),
            (
                r'<meta name="dcterms.creator" content="[^"]*',
                f'<meta name="dcterms.creator" content="{IRCC_NAME}',
            ),
        ):
            page = re.sub(pattern, lambda _m, v=value: str(v), page, count=1)  # type: ignore[misc]
    page = re.sub(
        r'(<meta name="dcterms.modified" title="W3CDTF" content=")[^"]*',
        rf"\g<1>{date_modified}",
        page,
        count=1,
    )
    start = page.index("<main")
    start = page.index(">", start) + 1
    details = page.index('<section class="pagedetails">', start)
    end = page.index("</main>", details)
    pagedetails = re.sub(
        r'(<time property="dateModified">)[^<]*', rf"\g<1>{date_modified}", page[details:end], count=1
    )
    content = f'\n<h1 property="name" id="wb-cont" dir="ltr">{safe_title}</h1>\n{body_html}\n'
    return page[:start] + content + pagedetails + page[end:]


def _shell(night: int) -> str:
    return SITE.joinpath("shells", f"shell-{night}.html").read_text(encoding="utf-8")


def _md(name: str) -> str:
    return SITE.joinpath("pages", f"{name}.md").read_text(encoding="utf-8")


def build_night(night: int) -> dict[str, tuple[bytes, str]]:
    """path → (body, content type) of the demo site on one night."""
    local = {f"https://www.canada.ca{p}": p for key, p in PATHS.items() if key != "pilot" or night >= 3}
    shell = _shell(night)
    modified = {1: "2024-03-01", 2: "2024-03-20", 3: "2024-03-22"}[night]
    site: dict[str, tuple[bytes, str]] = {}

    def add_page(key: str, md: str, date: str = modified) -> None:
        title, body = markdown_to_html(md, local)
        page = gcweb_page(shell, title, body, date, url=f"https://www.canada.ca{PATHS[key]}")
        site[PATHS[key]] = (page.encode("utf-8"), "text/html; charset=UTF-8")

    back = _md("tech-talent-strategy-backgrounder")
    add_page("backgrounder", back.replace(LATER, RELEASED) if night >= 3 else back)
    codes = _md("exemption-codes")
    if night < 3:  # the C88 row appeared with the pilot on March 22, 2024
        codes = "\n".join(ln for ln in codes.splitlines() if "| Innovation Stream pilot |" not in ln)
    add_page("exemption-codes", codes)
    add_page("h1b", _md("work-permit-h1b-visa"), "2024-09-27")
    sv = _md("start-visa")
    if night >= 3:
        sv = sv.replace(
            "- meet the language requirements\n",
            "- have a qualifying business\n- meet the language requirements\n",
            1,
        )
    add_page("start-visa", sv, "2024-07-08")
    if night >= 3:
        add_page("pilot", _md("innovation-stream-pilot"))
    site[PATHS["ee-rounds"]] = (
        SITE.joinpath("json", f"ee_rounds-night-{night}.json").read_bytes(),
        "application/json",
    )
    return site


# --- a loopback server that can switch nights ----------------------------------------------------------
class NightServer:
    """Serves one night of a site dict on 127.0.0.1 with ETags (so conditional GETs get real 304s)."""

    def __init__(self, pages: dict[str, tuple[bytes, str]] | None = None):
        self.pages = pages or {}
        self.requests: list[tuple[str, str | None]] = []  # (path, If-None-Match) of every request, for tests
        #: (time.monotonic(), Host header, path) of every request: when each host was asked, for pacing tests
        self.arrivals: list[tuple[float, str, str]] = []
        self.delay = 0.0  # seconds to wait before answering (tests of slow servers and concurrent passes)
        #: when set to an Event, each request waits for it (at most a minute): a test holds a pass mid-crawl
        #: and lets it go on an event, not after a guessed delay
        self.hold: threading.Event | None = None
        self.arrived = threading.Event()  # set by every request: what a test waits on instead of polling
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?")[0]
                server.requests.append((path, self.headers.get("If-None-Match")))
                server.arrivals.append((time.monotonic(), self.headers.get("Host") or "", path))
                server.arrived.set()
                if server.delay:
                    time.sleep(server.delay)
                hold = server.hold
                if hold is not None:
                    hold.wait(60)
                if path == "/robots.txt":
                    body, ctype = b"User-agent: *\nAllow: /\n", "text/plain"
                elif path in server.pages:
                    body, ctype = server.pages[path]
                else:
                    body, ctype = b"<html><body><h1>Not found</h1></body></html>", "text/html"
                    self.send_response(404)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> NightServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def demo_config(base: str, out_dir: Path) -> str:
    host = base.split("://", 1)[1]
    watches = [
        ("backgrounder", ["innovation-stream"]),
        ("exemption-codes", ["innovation-stream"]),
        ("h1b", ["h1b"]),
        ("start-visa", ["start-up-visa"]),
    ]
    lines = [
        "# Written by `policywatch demo`: the demo site on a loopback port.",
        "[storage]",
        f'url = "sqlite:///{(out_dir / "policywatch.db").as_posix()}"',
        "",
        "[crawl]",
        f'allowed_domains = ["{host}"]',
        "download_delay = 0",
        "autothrottle = false",
        "concurrency_per_domain = 8",
        "",
        "[discovery]",
        f'follow_prefixes = ["{base}{IRCC}/corporate/publications-manuals/"]',
        "depth = 1",
        "max_pages = 50",
        "",
        "[reports]",
        f'dir = "{(out_dir / "reports").as_posix()}"',
        "",
        "[topics.h1b]",
        'display = "H-1B open work permit"',
        'keywords = ["H-1B"]',
        "",
        "# Digests go to a file, not an SMTP server: open digests.mbox in any mail reader, or try",
        "# `policywatch digest preview --since 1d --config THIS_FILE` (the demo has delivered its digests",
        "# already: without --since, preview shows what is still to send, which is nothing).",
        "[mail]",
        f'mbox = "{(out_dir / "digests.mbox").as_posix()}"',
        'sender = "policywatch demo <policywatch@demo.invalid>"',
        "",
        "[[subscriber]]",
        'email = "Consultant <consultant@demo.invalid>"',
        'topics = ["innovation-stream"]',
        "",
        "[[subscriber]]",
        'email = "Analyst <analyst@demo.invalid>"',
        "",
    ]
    for key, topics in watches:
        lines += ["[[watch]]", f'url = "{base}{PATHS[key]}"', f"topics = {topics!r}".replace("'", '"'), ""]
    lines += [
        "[[watch]]",
        f'url = "{base}{PATHS["ee-rounds"]}"',
        'topics = ["express-entry"]',
        'kind = "json"',
        'json_records = "rounds"',
        'json_id = "drawNumber"',
        "",
    ]
    return "\n".join(lines)


def run_demo(
    out_dir: Path,
    out: Console,
    err: Console,
    nights: tuple[int, ...] = NIGHTS,
    on_night: Callable[[int], None] | None = None,
) -> list[dict]:
    """Run the demo into `out_dir` (a fresh database each time); print what each night found."""
    from policywatch.monitor.config import load_config
    from policywatch.monitor.nightly.passrun import run_pass

    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("policywatch.db", "policywatch.db-wal", "policywatch.db-shm", "digests.mbox"):
        (out_dir / stale).unlink(missing_ok=True)
    results = []
    with NightServer() as server:
        cfg_path = out_dir / "policywatch.toml"
        cfg_path.write_text(demo_config(server.base, out_dir), encoding="utf-8")
        config = load_config(cfg_path)
        for night in nights:
            server.pages = build_night(night)
            err.print(f"night {night}: serving {len(server.pages)} pages at {server.base}")
            result = run_pass(config)
            c = result.counts
            out.print(
                f"night {night} (run {result.run_id}): {c['fetched']} fetched, {c['new']} new, "
                f"{c['changed']} changed, "
                f"{c['unchanged']} unchanged, {c['failed']} failed",
                highlight=False,
            )
            _print_night(out, config.storage_url, result, server.base)
            results.append({"night": night, "run_id": result.run_id, "counts": c, "reports": result.reports})
            if on_night:
                on_night(night)
    out.print(f"\nreports: {out_dir / 'reports' / 'index.html'}  (and latest.md; one run-N file per night)")
    out.print(
        f"site:    {out_dir / 'reports' / 'site' / 'index.html'}  (a diff page per change, page timelines, "
        "feed.atom)"
    )
    out.print(f"database: {out_dir / 'policywatch.db'}  — try: policywatch changes --config {cfg_path}")
    out.print(
        f"digests: {out_dir / 'digests.mbox'}  (the demo's subscribers' e-mail, as a mailbox file, sent "
        f"already) — try: policywatch digest preview --since 1d --config {cfg_path}"
    )
    return results


def _print_night(out: Console, storage_url: str, result: PassResult, base: str) -> None:
    """A night's changes, one line each in the order every report uses, and its fetch problems."""
    from sqlalchemy import select

    from policywatch.monitor.detection.detect import short_title
    from policywatch.reports.data import rank_key
    from policywatch.reports.render import one_line
    from policywatch.storage import open_database
    from policywatch.storage.models import Change

    db = open_database(storage_url)
    try:
        with db.session() as s:
            changes = sorted(s.scalars(select(Change).where(Change.run_id == result.run_id)), key=rank_key)
            for ch in changes:
                if (ch.details or {}).get("baseline"):
                    continue
                star = "★ " if ch.details_released else ""
                page = short_title(ch.title or ch.url)
                out.print(
                    f"  {star}[{ch.significance}] {page}: {one_line(ch, 160)}", markup=False, highlight=False
                )
    finally:
        db.dispose()
    for f in result.health.get("failures", []):
        out.print(
            f"  fetch problem (not a change): {f['url'].replace(base, '')} — {f['outcome']}: {f['message']}",
            markup=False,
            highlight=False,
        )
