"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, LargeBinary
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes everywhere.

    Why: SQLite has no time zones, PostgreSQL has; analysts and the `changes` JSON need ISO 8601 with an
    offset either way, so values go in as UTC and always come out tz-aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class PackedJSON(bytes):
    """A value for a CompressedJSON column that the caller has serialized and compressed already (stored as
    is).

    Why: the page work serializes a version's blocks anyway (for the content hash) and compresses them before
    its write transaction begins, so the database lock is not held for it."""

    @classmethod
    def pack(cls, json_text: str | bytes) -> PackedJSON:
        data = json_text.encode("utf-8") if isinstance(json_text, str) else json_text
        return cls(zlib.compress(data, 6))


class CompressedJSON(TypeDecorator[Any]):
    """JSON stored zlib-compressed (a BLOB / bytea), read back as Python objects.

    Why: a version's blocks repeat every block's section path and text; compressed they take a fraction of the
    space (the history database keeps every version forever). The plain text stays in `versions.text` for SQL.
    """

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, PackedJSON):
            return bytes(value)
        return zlib.compress(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), 6)

    def process_result_value(self, value: bytes | None, dialect) -> Any:
        if value is None:
            return None
        return json.loads(zlib.decompress(value))


class HexDigest(TypeDecorator[str]):
    """A SHA-256 stored as its 32 bytes, handed to Python as the usual 64-character hex string.

    Why: a fetch row is written for every URL every night; two hex digests were 128 of its ~220 bytes.
    The `fetch_log` view shows them as hex text again, for analysts.
    """

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> bytes | None:
        return bytes.fromhex(value) if value else None

    def process_result_value(self, value: bytes | memoryview | None, dialect) -> str | None:
        return bytes(value).hex() if value is not None else None
