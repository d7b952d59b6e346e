"""Captures from WARC files (`policywatch backfill --warc`): the reverse of `policywatch export warc`, and
what any crawler that writes WARC (Heritrix, Browsertrix, wget --warc-file) leaves behind. Read with
warcio."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from policywatch.monitor.backfill.captures import Capture


class WarcError(Exception):
    pass


def _timestamp(warc_date: str) -> str:
    """WARC-Date (2024-03-22T10:15:00Z, fractions allowed) as 14 archive digits (UTC)."""
    value = warc_date.strip().replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise WarcError(f"WARC-Date {warc_date!r} is not a date") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def read_warc(path: Path) -> Iterator[tuple[str, Capture, bytes, str | None, str | None, str]]:
    """(url, capture, body, content type, charset, where) of each successful HTTP response in the file."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    try:
        with open(path, "rb") as stream:
            for record in ArchiveIterator(stream):
                if record.rec_type != "response" or record.http_headers is None:
                    continue
                status = record.http_headers.get_statuscode()
                if status != "200":
                    continue
                url = record.rec_headers.get_header("WARC-Target-URI") or ""
                date = record.rec_headers.get_header("WARC-Date") or ""
                body = record.content_stream().read()
                digest = record.rec_headers.get_header("WARC-Payload-Digest") or (
                    "sha256:" + hashlib.sha256(body).hexdigest()
                )
                ctype = record.http_headers.get_header("Content-Type")
                charset = None
                if ctype and "charset=" in ctype.lower():
                    charset = ctype.lower().split("charset=", 1)[1].split(";")[0].strip().strip('"') or None
                capture = Capture(_timestamp(date), url, digest, ctype or "", status)
                offset = f"{path.name}@{record.rec_headers.get_header('WARC-Record-ID') or ''}"
                yield url, capture, body, ctype, charset, offset
    except ArchiveLoadFailed as exc:
        raise WarcError(f"{path}: not a readable WARC file ({exc})") from None
    except OSError as exc:
        raise WarcError(f"{path}: {exc.strerror or exc}") from None
