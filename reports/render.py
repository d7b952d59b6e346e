"""Render reports with Jinja2 (autoescape on for HTML: scraped text is hostile and must never execute)."""

from __future__ import annotations

import errno
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context, select_autoescape
from markupsafe import Markup

from policywatch.reports import clock
from policywatch.reports.data import ReportData, clip_words
from policywatch.reports.safetext import finalize

_env: Environment | None = None


def environment() -> Environment:
    global _env
    if _env is None:
        _env = Environment(
            loader=PackageLoader("policywatch.reports", "templates"),
            autoescape=select_autoescape(
                disabled_extensions=("md.j2", "txt.j2"), default=True, default_for_string=True
            ),  # md/txt escape via |md
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            finalize=finalize,  # bidirectional controls out of every value printed (reports.safetext)
        )
        _env.filters["section"] = lambda s: " › ".join(s) if s else "Top of page"
        _env.filters["md"] = _md_escape
        _env.filters["iso"] = clock.iso  # machines: the feed
        _env.filters["local"] = _local_time  # HTML: the configured zone, named; UTC on hover
        _env.filters["when"] = _when  # text and Markdown: the configured zone, named
        _env.filters["day"] = _day
        _env.filters["cell"] = one_line
        _env.filters["block"] = block_text
    return _env


@pass_context
def _local_time(ctx: Any, when: datetime | None) -> Markup:
    """A time in the configured zone (`timezone` in the template's context), the UTC time on hover and in
    `datetime`."""
    if when is None:
        return Markup("")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        clock.iso(when), clock.human(when, "UTC", seconds=True), clock.human(when, ctx.get("timezone"))
    )


@pass_context
def _when(ctx: Any, when: datetime | None) -> str:
    return clock.human(when, ctx.get("timezone"))


@pass_context
def _day(ctx: Any, when: datetime | None) -> str:
    return clock.day(when, ctx.get("timezone"))


#: Where a page's title stands in a change's summary ("… — new page: <title>", "Now watching: <title> — …").
_TITLE_PARTS = (
    " — new page: {}",
    "New page: {} — ",
    "New page: {}",
    "Now watching: {} — ",
    "Now watching: {}",
)


def one_line(change: Any, n: int = 120) -> str:
    """A change's summary for a cell beside its page's title (the site index, a feed entry): without the
    title again, cut at a word to about `n` characters."""
    summary = " ".join(str(change.summary or "").split())
    title = " ".join(str(change.title or "").split())
    if title:
        for part in _TITLE_PARTS:
            for t in {title, title.split(" – ")[0], title.split(" - ")[0]}:
                if t and part.format(t) in summary:
                    summary = summary.replace(part.format(t), "" if part.startswith(" ") else "").strip(" —")
                    break
    if getattr(change, "details_released", False):  # the cell's badge says it
        summary = summary.replace("Innovation Stream details released — ", "")
        summary = summary.replace(" — Innovation Stream details released", "")
    return clip_words(summary or str(change.summary or ""), n)


def block_text(op: Any) -> str:
    """A block's text for a digest line: a table row without its empty cells ("Innovation Stream pilot | C88",
    never "Innovation Stream pilot | | C88")."""
    text = str((op or {}).get("text", "") if isinstance(op, dict) else op or "")
    if isinstance(op, dict) and op.get("kind") == "tr":
        return " | ".join(c for c in (x.strip() for x in re.split(r"\s*\|\s*", text)) if c)
    return text


def _md_escape(text: Any) -> str:
    """Scraped text in Markdown: neutralize HTML and link syntax so it renders as the words it is."""
    s = str(text or "")
    for ch, rep in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        s = s.replace(ch, rep)
    for ch in "\\`*_[]#|":
        s = s.replace(ch, "\\" + ch)
    return s


#: Reports and the site are for publishing: a web server running as another user must be able to read them.
PUBLISHED_MODE = 0o644


def write_atomic(path: Path, text: str, *, root: Path | None = None) -> None:
    """Write via a temporary file and rename, so a reader never sees half a report, and a full disk leaves the
    previous file as it was (and no temporary file behind). With `root`, no folder between it and the file
    may be a symbolic link: a link planted inside the site folder never sends a write outside it."""
    if root is not None:
        _folders_within(root, path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), PUBLISHED_MODE)  # mkstemp makes 0600
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _folders_within(root: Path, folder: Path) -> None:
    """Create `folder` under `root` one level at a time, refusing any level that is a symbolic link."""
    try:
        parts = folder.relative_to(root).parts
    except ValueError:
        raise OSError(errno.EXDEV, f"refusing to write outside {root}: {folder}") from None
    here = root
    root.mkdir(parents=True, exist_ok=True)
    for part in parts:
        here = here / part
        if part in ("", ".", "..") or here.is_symlink():
            raise OSError(
                errno.ELOOP, f"refusing to write through {here}: a symbolic link inside {root} (remove it)"
            )
        here.mkdir(exist_ok=True)


def render_markdown(data: ReportData) -> str:
    return environment().get_template("report.md.j2").render(r=data, timezone=data.timezone)


def render_html(data: ReportData) -> str:
    return environment().get_template("report.html.j2").render(r=data, timezone=data.timezone)


def write_run_reports(data: ReportData, out_dir: Path, *, latest: bool = True) -> dict[str, Path]:
    """Write run-<id>.md/.html and (`latest`) refresh latest.md / index.html; return the paths."""
    rid = data.run.id
    md, html = render_markdown(data), render_html(data)
    paths = {"markdown": out_dir / f"run-{rid}.md", "html": out_dir / f"run-{rid}.html"}
    write_atomic(paths["markdown"], md, root=out_dir)
    write_atomic(paths["html"], html, root=out_dir)
    if latest:
        write_atomic(out_dir / "latest.md", md, root=out_dir)
        write_atomic(out_dir / "index.html", html, root=out_dir)
    return paths
