#!/usr/bin/env python3
"""A loopback server for an N-page canada.ca-like corpus (the real GCWeb page shell, 30–120 KB pages), run as
a separate process so it never competes with the measured crawler for the GIL.

Usage: python bench/corpus_server.py --pages N [--port P] [--corpus synthetic|real]
       (prints the port on stdout, then serves)

`--corpus real`: copies of real canada.ca captures (tests/eval/noise: three pages, twelve captures each,
whose content never changed — only their noise did), one number changed in each copy (its heading carries
the page's number), so no two pages are the same bytes; a noise night serves each page's next real capture,
a change night adds a real fee line to `rate` of the pages.

Nights are switched with `GET /__night?n=K&mode=M`, modes:
  first      night content v1, noise seed 1 same       byte-identical to the previous night (ETags match:
  conditional requests get 304) noise      same content, every page's bytes differ by noise only (rotated
  script hash, analytics token) change     like noise, plus a real edit (the fee) on `rate` of the pages
  (`&rate=0.01`)
Each night's pages are generated when the night is switched and kept in memory, so the first tool measured on
a night does not pay for generating them (≈75 KB × N of RAM).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
SHELL = (ROOT / "monitor" / "demo_site" / "shells" / "shell-1.html").read_text(encoding="utf-8")
MAIN_START = SHELL.index("<main")
MAIN_END = SHELL.index("</main>") + len("</main>")
HEAD, TAIL = SHELL[:MAIN_START], SHELL[MAIN_END:]

SENTENCES = [
    "Officers must verify that the employer is eligible under the Global Talent Stream.",
    "Applicants need a valid job offer in an occupation listed in the National Occupational Classification.",
    "The exemption code applies to work permits issued under the public policy.",
    "Processing times vary with the number of applications received.",
    "Biometrics are required unless the applicant is exempt.",
]


def page_size_kb(i: int) -> int:
    return 30 + (i * 37) % 91  # 30 … 120 KB, spread evenly


REAL = ROOT / "tests" / "eval" / "noise"


def _real_captures() -> list[list[bytes]]:
    """Each real page's captures, oldest first."""
    groups: dict[str, list[Path]] = {}
    for f in sorted(REAL.glob("*.html")):
        groups.setdefault(f.name.split("__")[0], []).append(f)
    return [[f.read_bytes() for f in files] for _, files in sorted(groups.items())]


class Corpus:
    def __init__(self, n: int):
        self.n = n
        self.night = 1
        self.noise_seed = 1
        self.changed: set[int] = set()
        self.version: dict[int, int] = {}
        self.etags: dict[int, str] = {}  # per page for the current bytes, so a 304 needs no page generation

    def set_night(self, n: int, mode: str, rate: float) -> None:
        self.night = n
        if mode == "first":
            self.noise_seed, self.changed = 1, set()
        elif mode == "same":
            pass
        elif mode == "noise":
            self.noise_seed = n
            self.changed = set()
        elif mode == "change":
            self.noise_seed = n
            step = max(1, round(1 / rate)) if rate > 0 else self.n + 1
            self.changed = set(range(n % step, self.n, step))
            for i in self.changed:
                self.version[i] = self.version.get(i, 1) + 1
        if mode != "same":
            self.body.cache_clear()
            self.etags.clear()
            for i in range(self.n):  # build the night before any tool asks: no tool pays for generating pages
                self.etag(i)

    def etag(self, i: int) -> str:
        if i not in self.etags:
            self.etags[i] = '"' + hashlib.md5(self.body(i)).hexdigest() + '"'
        return self.etags[i]

    @cache  # noqa: B019  (one server object for the process) the whole night in memory (≈75 KB a page): serving costs the same for every tool
    def body(self, i: int) -> bytes:
        if self.real is not None:
            return self.real_body(i)
        return self.synthetic_body(i)

    real: list[list[bytes]] | None = None

    def real_body(self, i: int) -> bytes:
        """Page i: a copy of a real capture (the page's next capture each noise night), its number in its
        heading, and a fee line once it was edited."""
        assert self.real is not None
        captures = self.real[i % len(self.real)]
        body = captures[(self.noise_seed - 1 + i) % len(captures)]
        edit = b""
        if self.version.get(i, 1) > 1:
            edit = f"<p>The processing fee is ${150 + 5 * self.version[i]}.</p>".encode()
        return body.replace(b"</h1>", f" {i}</h1>".encode() + edit, 1)

    def synthetic_body(self, i: int) -> bytes:
        fee = f"${150 + 5 * self.version.get(i, 1)}"
        paras = [
            f"<h1>Program {i}: work permit instructions</h1>",
            "<h2>Fees</h2>",
            f"<p>The processing fee for program {i} is {fee} per applicant.</p>",
            "<h2>Eligibility</h2>",
        ]
        target = page_size_kb(i) * 1024 - len(HEAD) - len(TAIL) - 400
        k = 0
        while sum(len(p) for p in paras) < target:
            paras.append(f"<p>{SENTENCES[(i + k) % len(SENTENCES)]} (section {k} of program {i})</p>")
            k += 1
        token = hashlib.sha256(f"{self.noise_seed}-{i}".encode()).hexdigest()
        noise = (
            f'<script src="/etc/designs/canada/wet-boew/js/wet-boew.min.js?v={token[:12]}"></script>'
            f'<div class="analytics" data-token="{token}" hidden></div>'
        )
        main = f'<main property="mainContentOfPage" class="container">{"".join(paras)}</main>'
        return (HEAD + main + noise + TAIL).encode("utf-8")


def serve(n: int, port: int, kind: str = "synthetic") -> None:
    corpus = Corpus(n)
    if kind == "real":
        corpus.real = _real_captures()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as two writes: with Nagle's algorithm on, the body's last segment waits
        # for the client's delayed ACK (tens of ms on Linux loopback): every tool measured the server's
        # stalls.
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            if url.path == "/__night":
                qs = parse_qs(url.query)
                corpus.set_night(int(qs["n"][0]), qs["mode"][0], float(qs.get("rate", ["0.01"])[0]))
                return self._send(200, b"ok", "text/plain")
            if url.path == "/robots.txt":
                return self._send(200, b"User-agent: *\nAllow: /\n", "text/plain")
            if url.path.startswith("/en/p/") and url.path.endswith(".html"):
                try:
                    i = int(url.path[6:-5])
                except ValueError:
                    i = -1
                if 0 <= i < n:
                    etag = corpus.etag(i)
                    if self.headers.get("If-None-Match") == etag:
                        self.send_response(304)
                        self.send_header("ETag", etag)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return None
                    return self._send(200, corpus.body(i), "text/html; charset=utf-8", etag)
            return self._send(404, b"not found", "text/plain")

        def _send(self, status: int, body: bytes, ctype: str, etag: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            if etag:
                self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

    ThreadingHTTPServer.request_queue_size = 256  # 16 connections per tool, bursts: no refused connections
    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.daemon_threads = True
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--corpus", choices=("synthetic", "real"), default="synthetic")
    a = ap.parse_args()
    sys.exit(serve(a.pages, a.port, a.corpus))
