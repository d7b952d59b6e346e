"""Retention and archiving: prune old raw bodies (text, hashes and changes stay), export WARC for
archivists."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime
from typing import BinaryIO

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased

from policywatch.storage.models import Body, Page, Version
from policywatch.storage.queries import unpack_body


def prune_bodies(s: Session, older_than: datetime) -> tuple[int, int]:
    """Drop raw bodies created before `older_than`, except those of each page's latest version (kept so that
    new noise rules can re-extract the last version). Returns (bodies pruned, bytes freed)."""
    # Each page's last version by id and by capture time (a backfill stores old captures after live ones).
    latest = select(func.max(Version.id)).group_by(Version.page_id).scalar_subquery()
    v2 = aliased(Version)
    newest_capture = (
        select(func.max(v2.captured_at))
        .where(v2.page_id == Version.page_id)
        .correlate(Version)
        .scalar_subquery()
    )
    keep = select(Version.raw_hash).where(
        (Version.id.in_(latest)) | (Version.captured_at == newest_capture), Version.raw_hash.is_not(None)
    )
    cond = (Body.created_at < older_than) & Body.data.is_not(None) & Body.sha256.not_in(keep)
    freed = s.scalar(select(func.coalesce(func.sum(func.length(Body.data)), 0)).where(cond)) or 0
    result = s.execute(
        update(Body).where(cond).values(data=None).execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) or 0, int(freed)  # an UPDATE's result (CursorResult) has one


def write_warc(s: Session, out: BinaryIO, since: datetime | None = None) -> int:
    """Write one WARC response record per stored version whose raw body is still kept. Returns the count."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    writer = WARCWriter(out, gzip=True)
    info = writer.create_warcinfo_record(
        "policywatch.warc.gz", {"software": "policywatch", "format": "WARC File Format 1.1"}
    )
    writer.write_record(info)
    q = (
        select(Version, Page.url, Body.data, Body.content_type, Body.dict_id)
        .join(Page, Page.id == Version.page_id)
        .join(Body, Body.sha256 == Version.raw_hash)
        .where(Body.data.is_not(None))
        .order_by(Version.id)
    )
    if since is not None:
        q = q.where(Version.captured_at >= since)
    n = 0
    for version, url, data, ctype, dict_id in s.execute(q.execution_options(yield_per=200)):
        assert data is not None  # the query keeps only bodies whose data is stored
        payload = unpack_body(s, data, dict_id)
        headers = StatusAndHeaders(
            "200 OK",
            [("Content-Type", ctype or "application/octet-stream"), ("Content-Length", str(len(payload)))],
            protocol="HTTP/1.1",
        )
        record = writer.create_warc_record(
            url,
            "response",
            payload=io.BytesIO(payload),
            http_headers=headers,
            warc_headers_dict={
                "WARC-Date": version.captured_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "WARC-Payload-Digest": "sha256:" + version.raw_hash if version.raw_hash else "",
            },
        )
        writer.write_record(record)
        n += 1
    return n


def datasette_metadata(database_name: str, timezone: str = "UTC") -> dict:
    """Datasette's metadata for `database_name`: descriptions, and canned queries whose date parameters read
    as every policywatch command reads them (`[schedule] timezone`: a day or a time without an offset is in
    that zone; a day is its start for "since", its end for "as of")."""
    from importlib.resources import files

    text = files("policywatch.storage").joinpath("datasette-metadata.json").read_text(encoding="utf-8")
    meta = json.loads(text.replace("__DATABASE__", database_name).replace("__ZONE__", timezone))
    offset = _offset_sql(timezone)
    for query in meta["databases"][database_name].get("queries", {}).values():
        query["sql"] = _DATE_TOKEN.sub(lambda m: _date_sql(m.group(1), m.group(2), offset), query["sql"])
    return meta


_DATE_TOKEN = re.compile(r"__(FROM|UNTIL)\((:\w+)\)__")


def _offset_sql(timezone: str) -> str:
    """SQL for the zone's UTC offset in minutes on a day `{day}` (its local midnight): SQLite knows no time
    zones, so the offsets (1970-2069, from the tz database) are written into the query."""
    from datetime import UTC, date, timedelta
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone) if timezone != "UTC" else UTC
    changes: list[tuple[str, int]] = []
    day, last = date(1970, 1, 1), None
    while day.year < 2070:
        off = datetime(day.year, day.month, day.day, tzinfo=zone).utcoffset()
        minutes = int(off.total_seconds() // 60) if off is not None else 0
        if minutes != last:
            changes.append(("0001-01-01" if last is None else day.isoformat(), minutes))
            last = minutes
        day += timedelta(days=1)
    if len(changes) == 1:
        return str(changes[0][1])
    rows = ", ".join(f"('{d}', {m})" for d, m in changes)
    return f"(SELECT column2 FROM (VALUES {rows}) WHERE column1 <= {{day}} ORDER BY column1 DESC LIMIT 1)"


def _date_sql(kind: str, param: str, offset: str) -> str:
    """A date parameter as a UTC time SQLite compares: with an offset (or Z) as given; otherwise in the zone
    (`offset`); a plain day is its start (FROM) or the start of the next day (UNTIL, compared with <)."""
    p = f"trim({param})"
    exact = f"({p} GLOB '*[+-][0-9][0-9]:[0-9][0-9]' OR {p} GLOB '*Z')"
    local = f"datetime({p}, printf('%+d minutes', -{offset.format(day=f'date({p})')}))"
    if kind == "FROM":
        return f"CASE WHEN {exact} THEN datetime({p}) ELSE {local} END"
    next_day = f"date({p}, '+1 day')"
    day_end = f"datetime({next_day}, printf('%+d minutes', -{offset.format(day=next_day)}))"
    return (
        f"CASE WHEN length({p}) <= 10 THEN {day_end} WHEN {exact} THEN datetime({p}, '+1 seconds') "
        f"ELSE datetime({local}, '+1 seconds') END"
    )
