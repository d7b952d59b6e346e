"""Plain-data forms of stored records, for JSON/CSV output and exports (stable key order)."""

from __future__ import annotations

import json
from typing import Any

from policywatch.storage.models import Change, Fetch, Version

#: The public contract's keys come first, in this order; details follow.
CHANGE_KEYS = (
    "id",
    "url",
    "detected_at",
    "kind",
    "significance",
    "topics",
    "summary",
    "title",
    "details_released",
    "run_id",
    "from_version_id",
    "to_version_id",
)
CSV_CHANGE_FIELDS = (
    "id",
    "url",
    "detected_at",
    "kind",
    "significance",
    "topics",
    "summary",
    "title",
    "details_released",
    "sections",
    "facts_changed",
    "run_id",
    "from_version_id",
    "to_version_id",
)


def iso(dt: Any) -> str | None:
    return dt.isoformat() if dt is not None else None


def change_to_dict(c: Change) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": c.id,
        "url": c.url,
        "detected_at": iso(c.detected_at),
        "kind": c.kind,
        "significance": c.significance,
        "topics": list(c.topics or []),
        "summary": c.summary,
        "title": c.title,
        "details_released": bool(c.details_released),
        "backfilled": bool((c.details or {}).get("backfilled")),  # read from a web archive, never e-mailed
        "run_id": c.run_id,
        "from_version_id": c.from_version_id,
        "to_version_id": c.to_version_id,
    }
    for key, value in (c.details or {}).items():
        d.setdefault(key, value)
    return d


def change_to_row(c: Change) -> dict[str, Any]:
    d = change_to_dict(c)
    facts = (c.details or {}).get("facts", {}) or {}
    row = {k: d.get(k) for k in CSV_CHANGE_FIELDS}
    row["topics"] = ";".join(d["topics"])
    row["sections"] = " | ".join(d.get("sections", []) or [])
    row["facts_changed"] = "; ".join(
        f"{f['type']}: {f['before']} -> {f['after']}" for f in facts.get("changed", [])
    )
    return row


def version_to_dict(v: Version, url: str) -> dict[str, Any]:
    return {
        "url": url,
        "version_id": v.id,
        "page_id": v.page_id,
        "captured_at": iso(v.captured_at),
        "content_hash": v.content_hash,
        "raw_hash": v.raw_hash,
        "title": v.title,
        "text": v.text,
        "meta": v.meta,
    }


def fetch_to_dict(f: Fetch, url: str) -> dict[str, Any]:
    return {
        "url": url,
        "fetch_id": f.id,
        "run_id": f.run_id,
        "fetched_at": iso(f.fetched_at),
        "outcome": f.outcome,
        "http_status": f.http_status,
        "message": f.message,
        "attempts": f.attempts,
        "bytes": f.bytes,
        "duration_ms": f.duration_ms,
        "etag": f.etag,
        "last_modified": f.last_modified,
        "raw_hash": f.raw_hash,
        "content_hash": f.content_hash,
        "content_changed": bool(f.content_changed),
    }


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=False)
