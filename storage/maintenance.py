"""Retention and archiving: prune old raw bodies (text, hashes and changes stay), export WARC for
archivists."""

from __future__ import annotations

import io
import json
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
    return result.rowcount or 0, int(freed)


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


def datasette_metadata(database_name: str) -> dict:
    from importlib.resources import files

    text = files("policywatch.storage").joinpath("datasette-metadata.json").read_text(encoding="utf-8")
    return json.loads(text.replace("__DATABASE__", database_name))
