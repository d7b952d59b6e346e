"""The static report site: an index of changes, a page per change (side-by-side and inline diff), a timeline
per page, and an Atom feed — plain files under `<reports.dir>/site/`, publishable by any web server.

Why static: consultants click "diff" in a digest; a folder of files served by nginx, S3 or GitHub Pages has
nothing to patch or keep running. Scraped text only ever appears as Jinja-escaped text, never as markup, and
every page carries a Content-Security-Policy that forbids scripts and remote loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from policywatch.reports.charts import crs_over_time, page_timeline
from policywatch.reports.data import failure_summary, is_baseline, rank_key
from policywatch.reports.parity import notes as parity_notes
from policywatch.reports.render import environment, write_atomic
from policywatch.storage.models import Change, Page, Run, Version

INDEX_LIMIT = 500
FEED_LIMIT = 100
#: Timelines read together: three queries for this many pages (an IN list SQLite and PostgreSQL both take).
TIMELINE_CHUNK = 500
FEED_SCAN = 5000  # a topic's feed is read from the latest changes (a topic quiet for longer shows fewer)
_TOPIC_FILE = re.compile(r"[a-z0-9][a-z0-9_-]{0,80}")


@dataclass
class SideBySide:
    """One row of the side-by-side view: what the old page said | what the new page says. Context rows
    (`op == "context"`) are the unchanged block before or after, or a table's header row, shown greyed."""

    section: list[str]
    op: str
    left: list[list[str]]  # [op, text] segments
    right: list[list[str]]


def _blocks(version: Version | None) -> list[dict[str, Any]]:
    blocks = version.blocks if version is not None else None
    return blocks if isinstance(blocks, list) else []


def _header(blocks: list[dict[str, Any]], index: int) -> int | None:
    """The index of the first row of the table holding blocks[index], when it names columns (no digits)."""
    if not 0 <= index < len(blocks) or blocks[index].get("kind") != "tr":
        return None
    i = index
    while i > 0 and blocks[i - 1].get("kind") == "tr":
        i -= 1
    if i == index or any(ch.isdigit() for ch in blocks[i].get("text", "")):
        return None
    return i


def _changed(section: list[str], inline: list[list[str]]) -> SideBySide:
    """A changed row: the old words on the left, the new on the right, from one word diff."""
    left = [seg for seg in inline if seg[0] in ("equal", "del")]
    return SideBySide(section, "changed", left, [seg for seg in inline if seg[0] in ("equal", "ins")])


def side_by_side(
    change: Change, before: Version | None = None, after: Version | None = None
) -> list[SideBySide]:
    """The change's operations as rows, in reading order, each with its context: the unchanged block before
    and after it (and a table's header row), from the versions compared. A paragraph removed and another
    added in its place in the same section read as one "changed" row with the word diff detection recorded
    (`replaced_by`)."""
    ops = list((change.details or {}).get("blocks") or [])
    rows = _Rows(_blocks(before), _blocks(after), ops)
    i = 0
    while i < len(ops):
        op, nxt = ops[i], ops[i + 1] if i + 1 < len(ops) else None
        rows.before(op)
        if _replaced(op, nxt):
            assert nxt is not None
            # (a change stored before detection recorded the word diff: the whole texts, old and new)
            inline = op.get("replaced_by") or [["del", op.get("text", "")], ["ins", nxt.get("text", "")]]
            rows.rows.append(_changed(op.get("section") or [], inline))
            i, op = i + 1, nxt
        else:
            rows.rows.append(_row(op))
        rows.after(op)
        i += 1
    return rows.rows


def _replaced(op: dict[str, Any], nxt: dict[str, Any] | None) -> bool:
    return (
        op["op"] == "removed"
        and nxt is not None
        and nxt["op"] == "added"
        and (nxt.get("section") or []) == (op.get("section") or [])
        and nxt.get("kind") == op.get("kind")
    )


def _row(op: dict[str, Any]) -> SideBySide:
    sec, text = op.get("section") or [], op.get("text", "")
    if op["op"] == "changed":
        return _changed(sec, op.get("inline") or [])
    if op["op"] == "added":
        return SideBySide(sec, "added", [], [["ins", text]])
    if op["op"] == "removed":
        return SideBySide(sec, "removed", [["del", text]], [])
    return SideBySide(sec, "moved", [["equal", text]], [["equal", text]])


class _Rows:
    """The rows of a diff page and the context blocks already shown (each once)."""

    def __init__(self, old: list[dict[str, Any]], new: list[dict[str, Any]], ops: list[dict[str, Any]]):
        self.old, self.new = old, new
        self.touched_new = {op.get("index") for op in ops if op["op"] in ("added", "changed", "moved")}
        self.rows: list[SideBySide] = []
        self.shown: set[tuple[str, Any]] = set()

    def context(self, side: str, index: int | None) -> None:
        blocks = self.old if side == "old" else self.new
        if index is None or not 0 <= index < len(blocks) or (side, index) in self.shown:
            return
        if side == "new" and index in self.touched_new:
            return
        self.shown.add((side, index))
        b = blocks[index]
        text = [["equal", b.get("text", "")]]
        self.rows.append(SideBySide(b.get("section") or [], "context", text, text))

    def before(self, op: dict[str, Any]) -> None:
        """A table's header row once per diff (the same header in the old and the new version is one row, and
        the row before a change is no second copy of it), then the block before the operation."""
        side = "old" if op["op"] == "removed" else "new"
        blocks, index = (self.old if side == "old" else self.new), op.get("index")
        if not isinstance(index, int):
            return
        header = _header(blocks, index)
        if header is not None:
            if ("hdr", blocks[header].get("text", "")) not in self.shown:
                self.shown.add(("hdr", blocks[header].get("text", "")))
                self.context(side, header)
            self.shown.add((side, header))
        self.context(side, index - 1)

    def after(self, op: dict[str, Any]) -> None:
        index = op.get("index")
        if isinstance(index, int):
            self.context("old" if op["op"] == "removed" else "new", index + 1)


class Site:
    """Writes the site for the changes of a pass (and refreshes the index, feed and touched timelines)."""

    def __init__(
        self,
        out_dir: Path,
        *,
        base_url: str | None,
        topic_names: dict[str, str],
        timezone: str = "UTC",
        parity: tuple[tuple[str, ...], float] = ((), 3.0),
    ):
        self.dir = out_dir
        self.base_url = base_url
        self.topic_names = topic_names
        self.timezone = timezone  # times are shown in it, with UTC on hover
        self.parity = parity  # ([parity] languages, grace_days): the index's language-parity notes

    def _render(self, template: str, path: Path, *, root: str | None = None, **ctx: Any) -> None:
        """`root`: the way back to the site's root from `path` (by default, from its depth)."""
        root = "../" * (len(path.relative_to(self.dir).parts) - 1) if root is None else root
        write_atomic(
            path,
            environment()
            .get_template(template)
            .render(
                root=root, base_url=self.base_url, topic_names=self.topic_names, timezone=self.timezone, **ctx
            ),
            root=self.dir,
        )

    def change_page(self, s: Session, c: Change) -> Path:
        path = self.dir / "changes" / f"{c.id}.html"
        before = s.get(Version, c.from_version_id) if c.from_version_id else None
        after = s.get(Version, c.to_version_id) if c.to_version_id else None
        order = list(
            s.scalars(
                select(Version.id)
                .where(Version.page_id == c.page_id)
                .order_by(Version.captured_at, Version.id)
            )
        )
        number = {vid: i for i, vid in enumerate(order, start=1)}  # "version 3 of this page"
        for v in (before, after):
            if v is not None:
                self.version_page(s, v, number.get(v.id), len(order))
        self._render(
            "site_change.html.j2",
            path,
            c=c,
            rows=side_by_side(c, before, after),
            before=before,
            after=after,
            number=number,
            versions_total=len(order),
        )
        return path

    def version_page(self, s: Session, v: Version, number: int | None, total: int) -> Path:
        """The text of one stored version, linked from the diff pages."""
        path = self.dir / "versions" / f"{v.id}.html"
        page = s.get(Page, v.page_id)
        self._render("site_version.html.j2", path, v=v, page=page, number=number, total=total)
        return path

    def timeline(self, s: Session, page_id: int) -> Path:
        return self.timelines(s, [page_id])[0]

    def timelines(self, s: Session, page_ids: Iterable[int]) -> list[Path]:
        """Each page's timeline (and a page for each of its versions' text not written yet). Read a few
        hundred pages at a time, three queries each, not three a page: a first night has a timeline for every
        watched page."""
        ids, paths = sorted(set(page_ids)), []
        for first in range(0, len(ids), TIMELINE_CHUNK):
            chunk = ids[first : first + TIMELINE_CHUNK]
            pages = {p.id: p for p in s.scalars(select(Page).where(Page.id.in_(chunk)))}
            versions: dict[int, list[Any]] = {pid: [] for pid in chunk}
            for row in s.execute(
                select(Version.page_id, Version.id, Version.captured_at, Version.content_hash)
                .where(Version.page_id.in_(chunk))
                .order_by(Version.captured_at, Version.id)
            ):
                versions[row.page_id].append(row)
            # In time order: a backfill adds old captures (and their changes) after live ones
            changes: dict[int, list[Change]] = {pid: [] for pid in chunk}
            for c in s.scalars(
                select(Change).where(Change.page_id.in_(chunk)).order_by(Change.detected_at, Change.id)
            ):
                changes[c.page_id].append(c)
            unwritten = [
                v.id
                for vs in versions.values()
                for v in vs
                if not (self.dir / "versions" / f"{v.id}.html").exists()
            ]
            texts = (
                {v.id: v for v in s.scalars(select(Version).where(Version.id.in_(unwritten)))}
                if unwritten
                else {}
            )
            for pid in chunk:
                if pid in pages:
                    paths.append(self._timeline(s, pages[pid], versions[pid], changes[pid], texts))
        return paths

    def _timeline(
        self, s: Session, page: Page, versions: list[Any], changes: list[Change], texts: dict[int, Version]
    ) -> Path:
        path = self.dir / "pages" / f"{page.id}.html"
        for n, v in enumerate(versions, start=1):  # each version's text has a page the timeline links to
            if v.id in texts:
                self.version_page(s, texts[v.id], n, len(versions))
        crs = None
        if page.extractor == "json" and versions:  # draws over time (the Express Entry rounds)
            latest = s.get(Version, max(versions, key=lambda v: (v.captured_at, v.id)).id)
            doc = latest.blocks if latest is not None else None
            records = doc.get("records") if isinstance(doc, dict) else None
            if isinstance(records, dict):  # keyed by the records' ids
                records = list(records.values())
            if isinstance(records, list):
                crs = crs_over_time([r for r in records if isinstance(r, dict)])
        self._render(
            "site_timeline.html.j2",
            path,
            page=page,
            versions=versions,
            changes=changes,
            timeline_svg=page_timeline(versions, changes, self.timezone),
            crs=crs,
        )
        return path

    def index_and_feed(self, s: Session) -> None:
        recent = list(s.scalars(select(Change).order_by(Change.id.desc()).limit(INDEX_LIMIT)))
        shown = sorted((c for c in recent if not is_baseline(c)), key=rank_key)  # as the run report
        last = s.scalar(select(Run).where(Run.status != "running").order_by(Run.id.desc()).limit(1))
        failure = failure_summary(last.health) if last is not None else None
        if last is not None and last.status == "failed" and not failure:
            failure = f"the pass failed: {last.message or 'no message'}"
        self._feed(self.dir / "feed.atom", shown[:FEED_LIMIT])
        feeds = self.topic_feeds(s, {t for c in shown for t in (c.topics or [])})
        self._render(
            "site_index.html.j2",
            self.dir / "index.html",
            changes=shown,
            last=last,
            failure=failure,
            topic_feeds=[(t, self.topic_names.get(t, t.replace("-", " "))) for t in feeds],
            parity_notes=parity_notes(s, *self.parity),
        )

    def _feed(self, path: Path, changes: Sequence[Change], topic: str | None = None) -> None:
        # Relative links resolve against xml:base (base_url: the site's root) when there is one, else against
        # the feed's own place (topics/ is one level down)
        self._render(
            "feed.atom.j2",
            path,
            root="" if self.base_url else None,
            changes=changes,
            updated=max((c.detected_at for c in changes), default=None),
            feed_path=path.relative_to(self.dir).as_posix(),
            feed_topic=topic,
            feed_topic_name=self.topic_names.get(topic, topic) if topic else None,
        )

    def topic_feeds(self, s: Session, topics: Iterable[str] = ()) -> list[str]:
        """`topics/<topic>.atom` for every configured topic and every topic in `topics`: the topic's latest
        changes, newest first, for readers who subscribe by topic."""
        wanted = {t for t in set(self.topic_names) | set(topics) if _TOPIC_FILE.fullmatch(t)}  # safe names
        by_topic: dict[str, list[Change]] = {t: [] for t in wanted}
        for c in s.scalars(select(Change).order_by(Change.id.desc()).limit(FEED_SCAN)):
            if is_baseline(c):
                continue
            for t in c.topics or []:
                if t in by_topic and len(by_topic[t]) < FEED_LIMIT:
                    by_topic[t].append(c)
        for topic, changes in sorted(by_topic.items()):
            self._feed(self.dir / "topics" / f"{topic}.atom", sorted(changes, key=rank_key), topic)
        return sorted(by_topic)

    def write_changes(
        self, s: Session, changes: Sequence[Change], *, also_pages: Iterable[int] = ()
    ) -> list[Path]:
        """Pages for these changes, the timelines of the pages they touch and of `also_pages`, the index and
        the feed. A "now watching" note (a baseline) gets neither a page nor a timeline: nothing links to a
        page only recorded so far, and a first night records every watched page (its timeline comes with its
        first change, with every version's text)."""
        changes = [c for c in changes if not is_baseline(c)]
        pages = {c.page_id for c in changes} | set(also_pages)
        paths = [self.change_page(s, c) for c in changes]
        paths += self.timelines(s, pages)
        self.index_and_feed(s)
        return paths

    def rebuild(self, s: Session) -> int:
        """Every change page, the timeline of every page with a change to show, the index and the feed (after
        an upgrade or a template change)."""
        n = 0
        page_ids = set()
        for c in s.scalars(select(Change).order_by(Change.id).execution_options(yield_per=200)):
            if is_baseline(c):
                continue
            self.change_page(s, c)
            page_ids.add(c.page_id)
            n += 1
        self.timelines(s, page_ids)  # every page with a change to show
        self.index_and_feed(s)
        return n
