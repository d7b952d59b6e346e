"""Captures from WARC files (`policywatch backfill --warc`): the reverse of `policywatch export warc`, and
what any crawler that writes WARC (Heritrix, Browsertrix, wget --warc-file) leaves behind. Read with
warcio."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from policywatch.monitor.backfill.captures import Capture

#: The most one capture may hold (the archive client's limit too).
MAX_BODY = 32 * 1024 * 1024
_CHUNK = 64 * 1024


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


def read_warc(
    path: Path, *, max_body: int = MAX_BODY, warn: Callable[[str], None] | None = None
) -> Iterator[tuple[str, Capture, bytes, str | None, str | None, str]]:
    """(url, capture, body, content type, charset, where) of each successful HTTP response in the file.

    Hostile or broken files cost a record, not the import: a body over `max_body` (after its compression is
    undone: a gzip bomb stops there) is skipped with a warning, read a chunk at a time; a record whose
    headers or dates cannot be read is skipped with one line; a file that breaks mid-way keeps the records
    read before the break and says where it broke."""
    from warcio.archiveiterator import ArchiveIterator

    warn = warn or (lambda message: None)
    try:
        stream = open(path, "rb")
    except OSError as exc:
        raise WarcError(f"{path}: {exc.strerror or exc}") from None
    with stream:
        records = iter(ArchiveIterator(stream))
        n = 0
        while True:
            n += 1
            try:
                record = next(records)
            except StopIteration:
                return
            except Exception as exc:  # warcio raises many types for a broken file: one line, the file ends
                if n == 1:
                    raise WarcError(f"{path}: not a readable WARC file ({_first_line(exc)})") from None
                warn(
                    f"{path.name}: record {n} is malformed ({_first_line(exc)}); "
                    "the rest of the file is skipped"
                )
                return
            try:
                item = _response(path, record, max_body)
            except WarcError as exc:
                warn(f"{path.name}: record {n}: {exc}")
                continue
            except Exception as exc:
                warn(f"{path.name}: record {n} is malformed ({_first_line(exc)}); skipped")
                continue
            if item is not None:
                yield item


def _response(
    path: Path, record: Any, max_body: int
) -> tuple[str, Capture, bytes, str | None, str | None, str] | None:
    if record.rec_type != "response" or record.http_headers is None:
        return None
    status = record.http_headers.get_statuscode()
    if status != "200":
        return None
    url = record.rec_headers.get_header("WARC-Target-URI") or ""
    date = record.rec_headers.get_header("WARC-Date") or ""
    capture_time = _timestamp(date)
    body = _read_capped(record.content_stream(), max_body, url)
    digest = record.rec_headers.get_header("WARC-Payload-Digest") or (
        "sha256:" + hashlib.sha256(body).hexdigest()
    )
    ctype = record.http_headers.get_header("Content-Type")
    charset = None
    if ctype and "charset=" in ctype.lower():
        charset = ctype.lower().split("charset=", 1)[1].split(";")[0].strip().strip('"') or None
    capture = Capture(capture_time, url, digest, ctype or "", status)
    offset = f"{path.name}@{record.rec_headers.get_header('WARC-Record-ID') or ''}"
    return url, capture, body, ctype, charset, offset


def _read_capped(stream: Any, max_body: int, url: str) -> bytes:
    parts, size = [], 0
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > max_body:
            raise WarcError(
                f"body larger than {max_body // (1024 * 1024)} MB (the limit for one capture), skipped: "
                f"{url[:200]}"
            )
        parts.append(chunk)
    return b"".join(parts)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
