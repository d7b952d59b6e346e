"""Fetch outcome classes and the soft-error check (a 200 that is not the page).

Why: a maintenance page, a WAF "Access Denied" or an empty body served with status 200 must never become a
new version, or the next good night would report every paragraph as changed. Heuristics follow EDGI's
snapshot-quality ideas: error wording in title/headings, too little text, a missing content area.
"""

from __future__ import annotations

import re

OUTCOMES = (
    "ok",
    "not_modified",
    "http_error",
    "timeout",
    "connection_error",
    "too_large",
    "blocked",
    "offsite_redirect",
    "soft_error",
    "unreadable",
)
FAILED_OUTCOMES = {
    "http_error",
    "timeout",
    "connection_error",
    "too_large",
    "blocked",
    "offsite_redirect",
    "soft_error",
    "unreadable",  # the page arrived but could not be read (its parse, extraction or comparison failed)
}

_ERROR_WORDS = re.compile(
    r"access denied|request rejected|the requested url was rejected|temporarily unavailable|service "
    r"unavailable|"
    r"under maintenance|scheduled maintenance|maintenance in progress|site maintenance|we(?:'|’)ll be back|"
    r"page not found|error 404|404 not found|500 internal server error|bad gateway|gateway time-?out|"
    r"attention required|are you a robot|captcha|too many requests|server error|nous ne pouvons pas trouver",
    re.IGNORECASE,
)
MIN_TEXT_CHARS = 40


def soft_error_reason(title: str, text: str, headings: list[str]) -> str | None:
    """Why this 200 response is not real content, or None when it looks like a page."""
    probe = " ".join([title, *headings[:3]])
    m = _ERROR_WORDS.search(probe)
    if m:
        return f"error page served with status 200 (“{m.group(0)}”)"
    if len(text.strip()) < MIN_TEXT_CHARS and not headings:  # a short page with a heading is still a page
        return f"almost empty page ({len(text.strip())} characters of text)"
    if len(text) < 400:
        m = _ERROR_WORDS.search(text)
        if m:
            return f"error page served with status 200 (“{m.group(0)}”)"
    return None
