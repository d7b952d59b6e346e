#!/usr/bin/env python3
"""Fault catalogue: one scripted scenario per fault type, over four nights, through real `policywatch run`
passes.

Usage: python bench/faults.py [--out FILE] [--keep DIR]

Every scenario is one page (or JSON file) on a loopback fault server:
  night 1  good content v1 (the baseline) night 2  the fault (timeout, 5xx, 429 + Retry-After, reset,
  truncated body, empty 200, maintenance page,
           redirect loop, off-site redirect, 404, 410, oversize body, gzip bomb, wrong charset, malformed
           JSON, robots.txt disallow)
  night 3  good content v2 (one real edit: the fee changes)
  night 4  v2 again
The right answer for every scenario: night 2 records the fault's outcome class and creates no version and no
change (a "false change" otherwise), night 3 reports exactly one change (a "lost change" otherwise), night 4
nothing, and the fault appears in night 2's run report. Writes counts to --out (default
bench/results/faults.json); asserts nothing (tests/test_faults.py runs it and checks the answers).
"""

from __future__ import annotations

import argparse
import gzip
import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PAGE = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} - '
    "Canada.ca</title></head><body>"
    '<main property="mainContentOfPage"><h1>{title}</h1><h2>Fees</h2><p>The processing fee is {fee} per '
    "applicant. Résidents temporaires: see the officer instructions.</p><h2>Eligibility</h2><ul><li>a valid "
    "job "
    "offer</li><li>a qualifying employer</li></ul></main>"
    '<dl id="wb-dtmd"><dt>Date modified:</dt><dd><time '
    'property="dateModified">{date}</time></dd></dl></body></html>'
)
MAINTENANCE = (
    "<html><head><title>Maintenance - Canada.ca</title></head><body><h1>We are currently performing "
    "maintenance</h1><p>Please try again later.</p></body></html>"
)


def page(path: str, version: int) -> bytes:
    title = path.strip("/").split(".")[0].replace("-", " ").title()
    return PAGE.format(
        title=title, fee="$155" if version == 1 else "$230", date=f"2026-11-{10 + version:02d}"
    ).encode("utf-8")


def rounds(version: int) -> bytes:
    rows = [{"drawNumber": "301", "drawName": "STEM occupations", "drawSize": "500", "drawCRS": "486"}]
    if version == 2:
        rows.insert(
            0,
            {
                "drawNumber": "302",
                "drawName": "Canadian Experience Class",
                "drawSize": "3,000",
                "drawCRS": "518",
            },
        )
    return json.dumps({"classes": "", "rounds": rows}).encode()


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    expected: str  # outcome class on night 2
    kind: str = "html"


SCENARIOS = [
    Scenario("timeout", "/timeout.html", "timeout"),
    Scenario("server error 503", "/error-503.html", "http_error"),
    Scenario("429 with Retry-After, then OK", "/rate-limited.html", "ok"),
    Scenario("connection reset", "/reset.html", "connection_error"),
    Scenario("truncated body", "/truncated.html", "connection_error"),
    Scenario("empty 200", "/empty.html", "soft_error"),
    Scenario("maintenance page with 200", "/maintenance.html", "soft_error"),
    Scenario("redirect loop", "/loop.html", "http_error"),
    Scenario("off-site redirect", "/offsite.html", "offsite_redirect"),
    Scenario("404 then back", "/not-found.html", "http_error"),
    Scenario("410 then back", "/gone.html", "http_error"),
    Scenario("oversize body", "/oversize.html", "too_large"),
    Scenario("gzip bomb", "/bomb.html", "too_large"),
    Scenario("wrong charset", "/charset.html", "ok"),
    Scenario("robots.txt disallow", "/robots-blocked.html", "blocked"),
    Scenario("malformed JSON", "/rounds.json", "soft_error", kind="json"),
]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # clients hang up on faults by design
        pass


class FaultServer:
    """A loopback HTTP server whose answers per path depend on the night (see the module docstring)."""

    def __init__(self, offsite_port: int):
        self.night = 1
        self.hits: dict[tuple[int, str], int] = {}  # (night, path) → requests
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def send(
                self,
                status: int,
                body: bytes,
                ctype: str = "text/html; charset=utf-8",
                headers: dict[str, str] | None = None,
                length: int | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?")[0]
                server.hits[(server.night, path)] = server.hits.get((server.night, path), 0) + 1
                night = server.night
                if path == "/robots.txt":
                    rules = (
                        "User-agent: *\nDisallow: /robots-blocked.html\n"
                        if night == 2
                        else "User-agent: *\nAllow: /\n"
                    )
                    return self.send(200, rules.encode(), "text/plain")
                if night == 2:
                    return server.fault(self, path)
                version = 1 if night == 1 else 2
                if path.endswith(".json"):
                    return self.send(200, rounds(version), "application/json")
                return self.send(200, page(path, version))

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.offsite_port = offsite_port
        self._bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), 9)  # 64 MB of zeros in ~64 KB

    def fault(self, h, path: str) -> None:  # noqa: C901 - one branch per fault, on purpose
        v1 = page(path, 1)
        if path == "/timeout.html":
            time.sleep(4)
            return h.send(200, v1)
        if path == "/error-503.html":
            return h.send(503, b"Service Unavailable")
        if path == "/rate-limited.html":
            if self.hits[(2, path)] == 1:  # the first request of the night: come back in a second
                return h.send(429, b"Too Many Requests", headers={"Retry-After": "1"})
            return h.send(200, v1)
        if path == "/reset.html":
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            h.connection.close()  # RST, no response
            h.close_connection = True
            return None
        if path == "/truncated.html":
            h.send(200, v1[:200], length=len(v1))
            h.close_connection = True
            return None
        if path == "/empty.html":
            return h.send(200, b"")
        if path == "/maintenance.html":
            return h.send(200, MAINTENANCE.encode())
        if path == "/loop.html":
            return h.send(302, b"", headers={"Location": "/loop.html"})
        if path == "/offsite.html":
            return h.send(
                302, b"", headers={"Location": f"http://127.0.0.1:{self.offsite_port}/elsewhere.html"}
            )
        if path == "/not-found.html":
            return h.send(404, b"<h1>Not found</h1>")
        if path == "/gone.html":
            return h.send(410, b"<h1>Gone</h1>")
        if path == "/oversize.html":
            return h.send(200, v1 + b"<!--" + b"x" * (11 * 1024 * 1024) + b"-->")
        if path == "/bomb.html":
            return h.send(200, self._bomb, headers={"Content-Encoding": "gzip"})
        if (
            path == "/charset.html"
        ):  # the same UTF-8 content (only "Date modified" differs, so it is parsed), mislabelled
            return h.send(
                200, v1.replace(b"2026-11-11", b"2026-11-15"), ctype="text/html; charset=iso-8859-1"
            )
        if path == "/robots-blocked.html":
            return h.send(200, v1)  # never requested: robots.txt forbids it tonight
        if path == "/rounds.json":
            return h.send(
                200, rounds(1)[:-30], "application/json"
            )  # cut off mid-record, as IRCC once served it
        return h.send(200, v1)

    def __enter__(self) -> FaultServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Offsite:
    """The host an off-site redirect points to: it must receive nothing."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append(self.path)
                self.send_response(200)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def config_text(base: str, port: int, work: Path) -> str:
    watches = []
    for s in SCENARIOS:
        watches.append(
            f'[[watch]]\nurl = "{base}{s.path}"\n'
            + ('kind = "json"\njson_records = "rounds"\njson_id = "drawNumber"\n' if s.kind == "json" else "")
        )
    return (
        f'[storage]\nurl = "sqlite:///{(work / "history.db").as_posix()}"\n\n[reports]\ndir = '
        f'"{(work / "reports").as_posix()}"\n\n'
        f'[crawl]\nallowed_domains = ["127.0.0.1:{port}"]\ndownload_delay = 0\nautothrottle = false\n'
        f"timeout = 2\nretries = 1\nmax_size_mb = 10\nconcurrency_per_domain = 16\n\n" + "\n".join(watches)
    )


def run_catalogue(work: Path, policywatch: list[str]) -> dict:
    offsite = Offsite()
    with FaultServer(offsite.port) as server:
        base = f"http://127.0.0.1:{server.port}"
        cfg = work / "policywatch.toml"
        cfg.write_text(config_text(base, server.port, work), encoding="utf-8")
        nights = []
        for night in (1, 2, 3, 4):
            server.night = night
            started = time.monotonic()
            p = subprocess.run(
                [*policywatch, "run", "--config", str(cfg), "--quiet"], capture_output=True, text=True
            )
            nights.append(
                {
                    "night": night,
                    "exit": p.returncode,
                    "seconds": round(time.monotonic() - started, 2),
                    "stderr": p.stderr[-2000:],
                }
            )
    offsite.httpd.shutdown()
    con = sqlite3.connect(work / "history.db")
    try:
        results = []
        for s in SCENARIOS:
            url = base + s.path
            fetch = con.execute(
                "SELECT outcome, message, attempts FROM fetch_log WHERE url = ? AND run_id = 2", (url,)
            ).fetchone()
            changes = dict(
                con.execute(
                    "SELECT run_id, count(*) FROM change_log WHERE url = ? AND run_id > 1 GROUP BY run_id",
                    (url,),
                ).fetchall()
            )
            versions_n2 = con.execute(
                "SELECT count(*) FROM page_versions v JOIN fetch_log f ON f.fetch_id = v.fetch_id "
                "WHERE v.url = ? AND f.run_id = 2",
                (url,),
            ).fetchone()[0]
            report = (work / "reports" / "run-2.md").read_text(encoding="utf-8")
            outcome = fetch[0] if fetch else None
            shown = s.expected == "ok" or (
                outcome is not None and outcome in report and s.path.split("/")[-1] in report
            )
            results.append(
                {
                    "fault": s.name,
                    "path": s.path,
                    "expected_outcome": s.expected,
                    "outcome": outcome,
                    "message": fetch[1] if fetch else None,
                    "attempts": fetch[2] if fetch else None,
                    "false_changes": changes.get(2, 0)
                    + changes.get(4, 0)
                    + versions_n2 * (s.expected != "ok"),
                    "lost_changes": 0 if changes.get(3, 0) == 1 else 1,
                    "shown_in_report": shown,
                    "ok": outcome == s.expected
                    and changes.get(2, 0) == 0
                    and changes.get(4, 0) == 0
                    and changes.get(3, 0) == 1
                    and shown,
                }
            )
    finally:
        con.close()
    return {
        "scenarios": results,
        "nights": nights,
        "offsite_requests": offsite.requests,
        "totals": {
            "scenarios": len(results),
            "ok": sum(r["ok"] for r in results),
            "false_changes": sum(r["false_changes"] for r in results),
            "lost_changes": sum(r["lost_changes"] for r in results),
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "faults.json")
    ap.add_argument("--keep", type=Path, help="work directory to keep (default: a temporary one)")
    args = ap.parse_args()
    exe = [sys.executable, "-m", "policywatch.monitor"]
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run_catalogue(args.keep, exe)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = run_catalogue(Path(tmp), exe)
    for n in result["nights"]:
        n.pop("stderr")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for r in result["scenarios"]:
        print(
            f"{'ok  ' if r['ok'] else 'FAIL'} {r['fault']:<32} {r['outcome']!s:<17} "
            f"false={r['false_changes']} lost={r['lost_changes']} "
            f"shown={r['shown_in_report']}  {r['message'] or ''}"[:160]
        )
    t = result["totals"]
    print(
        f"{t['ok']}/{t['scenarios']} scenarios right; {t['false_changes']} false changes, "
        f"{t['lost_changes']} lost changes; "
        f"off-site host requests: {len(result['offsite_requests'])} → {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
