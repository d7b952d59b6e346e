"""Step two: what changed between the version before and this content. Like is compared with like: when the
noise rules or the extractor changed since the version before was stored, that version's raw body is read
again with today's, so a rule edit never reads as the page changing."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from policywatch.monitor.config import Config
from policywatch.monitor.detection import detect
from policywatch.monitor.page.content import Content, reread_html
from policywatch.storage import queries as q
from policywatch.storage.models import Version

#: Metadata that says how a version was read: the noise rules' digest, the generic extractor's version, the
#: charset read instead of a wrong declared one. When any differs, the version before is read again.
REREAD_WHEN_CHANGED = ("rules", "extraction", "charset")


def earlier(
    s: Session, config: Config, prev: Version | None, content: Content, url: str
) -> dict[str, Any] | None:
    """The version before as detection reads it ({"blocks", "meta", "text"}), or None for a first version."""
    if prev is None:
        return None
    old = {"blocks": prev.blocks, "meta": prev.meta, "text": prev.text}
    before = prev.meta or {}
    if content.is_json or all(before.get(k) == content.meta.get(k) for k in REREAD_WHEN_CHANGED):
        return old
    raw = q.body_bytes(s, prev.raw_hash) if prev.raw_hash else None
    again = reread_html(config, raw, url) if raw is not None else None
    return {"blocks": again.blocks, "meta": prev.meta, "text": again.text} if again is not None else old


def decide(
    config: Config,
    content: Content,
    old: dict[str, Any] | None,
    *,
    url: str,
    title: str,
    topics: list[str],
    discovered: bool,
    baseline: bool,
) -> detect.ChangeDecision | None:
    """The change a reader is told about, or None when nothing they would read changed."""
    common: dict[str, Any] = dict(
        url=url,
        title=title,
        old=old,
        watch_topics=topics,
        topic_defs=config.topics,
        discovered=discovered,
        baseline=baseline,
    )
    if content.is_json:
        return detect.detect_json(new_doc=content.blocks, **common)
    return detect.detect_html(new_blocks=content.blocks, new_meta=content.meta, **common)
