"""JSON endpoints (IRCC's data files): records keyed by their natural id, diffed field by field.

Why records: IRCC's `ee_rounds_123_en.json` is one list of 300+ rounds; a text diff of it is unreadable, and
"round 337 added: Canadian Experience Class, 4,000 invitations, CRS 521" is what a consultant needs.
Malformed JSON (as IRCC really served on 2025-02-19) raises MalformedJSON: the caller records a soft error,
never "all rows removed".
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

ID_CANDIDATES = ("drawNumber", "id", "key", "code", "number", "uid")
#: Fields that describe a record best, for summaries, in order (Express Entry rounds first).
DESCRIBE_FIELDS = ("drawName", "drawSize", "drawCRS", "drawDateFull", "name", "title", "value")


class MalformedJSON(ValueError):
    """The body is not valid JSON (or not the expected shape)."""


def _natural(key: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key))


def parse_json(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJSON(f"malformed JSON: {exc}") from exc
    except RecursionError:
        raise MalformedJSON("JSON nested too deeply to read") from None


def _get_path(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            raise MalformedJSON(f"JSON has no {path!r} (missing {part!r})")
        data = data[part]
    return data


def _find_record_list(data: Any) -> tuple[str | None, list[dict[str, Any]] | None]:
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return "", data
    if isinstance(data, dict):
        best: tuple[str | None, list[dict[str, Any]] | None] = (None, None)
        for key, value in data.items():
            if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
                if best[1] is None or len(value) > len(best[1]):
                    best = (key, value)
        return best
    return None, None


def _pick_id(records: list[dict[str, Any]], wanted: str | None) -> str:
    if wanted:
        if not all(wanted in r for r in records):
            raise MalformedJSON(f"some records have no {wanted!r} field")
        return wanted
    fields = list(records[0].keys())
    for name in list(ID_CANDIDATES) + fields:
        values = [r.get(name) for r in records]
        if all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values) and len(
            set(map(str, values))
        ) == len(values):
            return name
    raise MalformedJSON("cannot find a unique id field in the JSON records (set json_id in the watch)")


def to_records(data: Any, records_path: str | None = None, id_field: str | None = None) -> dict[str, Any]:
    """Normalize a JSON document to {"records": {id: record}, "id_field", "records_path", "meta": {...}}."""
    if records_path:
        path: str | None = records_path
        records = _get_path(data, records_path)
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise MalformedJSON(f"{records_path!r} is not a list of objects")
    else:
        path, records = _find_record_list(data)
    if records is not None:
        idf = _pick_id(records, id_field)
        keyed = {str(r[idf]): r for r in records}
        meta = {k: v for k, v in data.items() if k != path} if isinstance(data, dict) else {}
        return {"format": "json", "records_path": path, "id_field": idf, "records": keyed, "meta": meta}
    if isinstance(data, dict):  # an object of objects (IRCC processing times): top-level keys are the ids
        return {"format": "json", "records_path": None, "id_field": None, "records": dict(data), "meta": {}}
    raise MalformedJSON("JSON is neither a list of records nor an object")


def records_hash(doc: dict[str, Any]) -> str:
    payload = json.dumps(
        [doc["records"], doc.get("meta")], sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def records_text(doc: dict[str, Any]) -> str:
    """One line per record, for full-text search and `show`."""
    lines = []
    for rid in sorted(doc["records"], key=_natural, reverse=True):
        lines.append(f"{rid}: {json.dumps(doc['records'][rid], sort_keys=True, ensure_ascii=False)}")
    return "\n".join(lines)


def describe_record(rid: str, record: Any, id_field: str | None) -> str:
    noun = "round" if id_field == "drawNumber" else "record"
    if not isinstance(record, dict):
        return f"{noun} {rid}: {record}"
    parts = []
    for f in DESCRIBE_FIELDS:
        if f in record and record[f] not in (None, ""):
            v = str(record[f])
            parts.append(f"{v} invitations" if f == "drawSize" else f"CRS {v}" if f == "drawCRS" else v)
    if not parts:
        parts = [f"{k}={v}" for k, v in list(record.items())[:3] if not isinstance(v, (dict, list))]
    return f"{noun} {rid}: {', '.join(parts)}" if parts else f"{noun} {rid}"


def diff_records(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Records added, removed and changed (with field-level before/after) between two normalized docs."""
    o, n = old["records"], new["records"]
    idf = new.get("id_field")
    added = sorted((k for k in n if k not in o), key=_natural, reverse=True)
    removed = sorted((k for k in o if k not in n), key=_natural, reverse=True)
    changed = []
    for k in sorted((k for k in n if k in o and n[k] != o[k]), key=_natural, reverse=True):
        before, after = o[k], n[k]
        if isinstance(before, dict) and isinstance(after, dict):
            fields = [
                {"field": f, "before": before.get(f), "after": after.get(f)}
                for f in sorted(set(before) | set(after))
                if before.get(f) != after.get(f)
            ]
        else:
            fields = [{"field": None, "before": before, "after": after}]
        changed.append({"id": k, "fields": fields, "description": describe_record(k, after, idf)})
    meta_changed = [
        {"field": f, "before": old.get("meta", {}).get(f), "after": new.get("meta", {}).get(f)}
        for f in sorted(set(old.get("meta", {})) | set(new.get("meta", {})))
        if old.get("meta", {}).get(f) != new.get("meta", {}).get(f)
    ]
    return {
        "id_field": idf,
        "added": [{"id": k, "record": n[k], "description": describe_record(k, n[k], idf)} for k in added],
        "removed": [{"id": k, "record": o[k], "description": describe_record(k, o[k], idf)} for k in removed],
        "changed": changed,
        "meta_changed": meta_changed,
    }
