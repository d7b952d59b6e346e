"""Commands that read a page's history: `changes`, `history`, `show`, `diff`, `explain`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from policywatch.monitor.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    ConfigOpt,
    SinceOpt,
    TableJson,
    TableJsonCsv,
    TextJson,
    _config,
    _opened,
    _write_csv,
    _write_json_array,
    app,
    check_topic,
    err,
    fail,
    out,
    parse_as_of,
    parse_when,
)
from policywatch.reports import clock


@app.command()
def changes(
    config: Path | None = ConfigOpt,
    since: str | None = SinceOpt,
    fmt: TableJsonCsv = typer.Option(TableJsonCsv.table, "--format", "-f", help="Output format."),
    topic: str | None = typer.Option(None, "--topic", help="Only changes tagged with this topic."),
    include_baseline: bool = typer.Option(
        True, "--baseline/--no-baseline", help="Include first-time recordings of watched pages."
    ),
) -> None:
    """List detected changes, oldest first (records never change once written)."""
    from policywatch.storage import queries as q
    from policywatch.storage.serialize import (
        CSV_CHANGE_FIELDS,
        change_to_dict,
        change_to_row,
    )

    cfg = _config(config)
    when = parse_when(since, zone=cfg.schedule.timezone)
    with _opened(cfg) as db:
        check_topic(cfg, db, topic)
        with db.session() as s:
            items = (
                c
                for c in q.iter_changes(s, since=when, topic=topic)
                if include_baseline or not (c.details or {}).get("baseline")
            )
            if fmt == "json":
                _write_json_array(change_to_dict(c) for c in items)
            elif fmt == "csv":
                _write_csv((change_to_row(c) for c in items), CSV_CHANGE_FIELDS)
            else:
                table = Table(
                    "id", "detected", "kind", "sig.", "topics", "title", "summary", show_lines=False
                )
                n = 0
                for c in items:
                    n += 1
                    table.add_row(
                        str(c.id),
                        clock.human(c.detected_at, cfg.schedule.timezone),
                        c.kind,
                        ("★ " if c.details_released else "") + c.significance,
                        ", ".join(c.topics or []),
                        c.title or c.url,
                        c.summary,
                    )
                out.print(table if n else "no changes")


PAGE_HELP = "A page id, its URL, or a part of the URL that names one page (e.g. innovation-stream-pilot)."


def _page(s, ref: str):
    """The page a user means: a page id (as `history` and `changes` print), the URL, or a unique fragment of
    it ("innovation-stream-pilot"); otherwise a one-line error naming the candidates or the closest URLs."""
    import difflib

    from sqlalchemy import select

    from policywatch.monitor.urls import normalize_url
    from policywatch.storage import queries as q
    from policywatch.storage.models import Page

    ref = ref.strip()
    if ref.isdigit():
        page = s.get(Page, int(ref))
        if page is None:
            fail(f"no page with id {ref} in the history", EXIT_USAGE)
        return page
    page = q.get_page(s, normalize_url(ref)) if "://" in ref else None
    if page is not None:
        return page
    needle = ref.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found = list(
        s.scalars(select(Page).where(Page.url.ilike(f"%{needle}%", escape="\\")).order_by(Page.id).limit(6))
    )
    if len(found) == 1:
        return found[0]
    if found:
        listed = "; ".join(f"{p.id} {p.url}" for p in found[:5])
        more = " …" if len(found) > 5 else ""
        fail(
            f"{ref!r} matches several pages: {listed}{more} (give a longer part of the URL or the id)",
            EXIT_USAGE,
        )
    urls = list(s.scalars(select(Page.url).limit(50000)))
    close = (
        difflib.get_close_matches(ref, urls, n=3, cutoff=0.5)
        or [
            u
            for u in urls
            if difflib.SequenceMatcher(None, ref.lower(), u.rsplit("/", 1)[-1].lower()).ratio() > 0.6
        ][:3]
    )
    hint = f"; did you mean {' or '.join(close)}?" if close else " (check the URL, or run a pass first)"
    fail(f"no page {ref} in the history{hint}", EXIT_USAGE)


@app.command()
def history(
    url: str = typer.Argument(..., metavar="PAGE", help=PAGE_HELP),
    config: Path | None = ConfigOpt,
    fmt: TableJson = typer.Option(TableJson.table, "--format", "-f", help="Output format."),
) -> None:
    """List the stored versions of a page with their dates."""
    from policywatch.storage import queries as q

    cfg = _config(config)
    with _opened(cfg) as db:
        with db.session() as s:
            page = _page(s, url)
            versions = q.versions_of(s, page.id)
            rows: list[dict[str, Any]] = [
                {
                    "version_id": v.id,
                    "captured_at": v.captured_at.isoformat(),
                    "content_hash": v.content_hash,
                    "title": v.title,
                    "date_modified": (v.meta or {}).get("date_modified"),
                }
                for v in versions
            ]
        if fmt == "json":
            _write_json_array(rows)
            return
        table = Table("version", "captured", "date modified (page)", "title", "hash")
        for r, v in zip(rows, versions, strict=True):
            table.add_row(
                str(r["version_id"]),
                clock.human(v.captured_at, cfg.schedule.timezone),
                r["date_modified"] or "",
                r["title"] or "",
                r["content_hash"][:12],
            )
        out.print(table)


def _resolve_version(s, page_id: int, ref: str | None, *, default_last: bool, option: str, zone: str):
    """The version a user means: a version id (from `history`), a date or time (as of then), or the
    default."""
    from policywatch.storage import queries as q
    from policywatch.storage.models import Version

    if ref is None:
        versions = q.versions_of(s, page_id)
        if not versions:
            fail("this page has no stored version yet", EXIT_FAILED)
        return versions[-1] if default_last else (versions[-2] if len(versions) > 1 else versions[0])
    if ref.isdigit():
        v = s.get(Version, int(ref))
        if v is None or v.page_id != page_id:
            fail(f"{option}: no version {ref} of this page", EXIT_USAGE)
        return v
    if option == "--version":
        fail(f"--version: {ref!r} is not a version id (the numbers `history` prints)", EXIT_USAGE)
    at = parse_as_of if option in ("--at", "--to") else parse_when
    when = at(ref, option=option, zone=zone)
    v = q.version_at(s, page_id, when)
    if v is None:
        first = q.versions_of(s, page_id)
        since = f" (the first is from {clock.human(first[0].captured_at, zone)})" if first else ""
        fail(f"{option}: no stored version on or before {clock.human(when, zone)}{since}", EXIT_FAILED)
    return v


@app.command()
def show(
    url: str = typer.Argument(..., metavar="PAGE", help=PAGE_HELP),
    config: Path | None = ConfigOpt,
    at: str | None = typer.Option(
        None, "--at", help="Date or date-time: the text as of then (default: latest)."
    ),
    version: int | None = typer.Option(None, "--version", help="A version id from `history`."),
) -> None:
    """Print the text of a page as of a date (or a version)."""
    cfg = _config(config)
    with _opened(cfg) as db:
        with db.session() as s:
            page = _page(s, url)
            if version is not None and at is not None:
                fail("--at and --version: give one of them", EXIT_USAGE)
            v = _resolve_version(
                s,
                page.id,
                str(version) if version is not None else at,
                default_last=True,
                option="--version" if version is not None else "--at",
                zone=cfg.schedule.timezone,
            )
            err.print(f"version {v.id} captured {clock.human(v.captured_at, cfg.schedule.timezone)}")
            sys.stdout.write(v.text + "\n")


@app.command()
def diff(
    url: str = typer.Argument(..., metavar="PAGE", help=PAGE_HELP),
    config: Path | None = ConfigOpt,
    from_: str | None = typer.Option(
        None, "--from", help="Version id or date (default: the one before --to)."
    ),
    to: str | None = typer.Option(None, "--to", help="Version id or date (default: latest)."),
    fmt: TextJson = typer.Option(TextJson.text, "--format", "-f", help="Output format."),
) -> None:
    """Structured diff between two stored versions of a page."""
    from policywatch.monitor.detection.diff import diff_blocks
    from policywatch.monitor.detection.jsondiff import diff_records
    from policywatch.storage.queries import versions_of as q_versions

    cfg = _config(config)
    with _opened(cfg) as db:
        with db.session() as s:
            page = _page(s, url)
            new = _resolve_version(
                s, page.id, to, default_last=True, option="--to", zone=cfg.schedule.timezone
            )
            if from_ is None:
                from sqlalchemy import select

                from policywatch.storage.models import Version

                old = s.scalar(
                    select(Version)
                    .where(Version.page_id == page.id, Version.captured_at < new.captured_at)
                    .order_by(Version.captured_at.desc(), Version.id.desc())
                    .limit(1)
                )
                if old is None:
                    count = len(q_versions(s, page.id))
                    if count == 1 and fmt != "json":
                        out.print(
                            f"{page.url} has one stored version ({new.id}, captured "
                            f"{clock.human(new.captured_at, cfg.schedule.timezone)}): "
                            "nothing to compare it with yet"
                        )
                        return
                    old = new
            else:
                old = _resolve_version(
                    s, page.id, from_, default_last=False, option="--from", zone=cfg.schedule.timezone
                )
            if isinstance(new.blocks, dict):
                result: Any = diff_records(old.blocks, new.blocks)
            else:
                result = diff_blocks(old.blocks, new.blocks)
        if fmt == "json":
            sys.stdout.write(
                json.dumps(
                    {"from_version_id": old.id, "to_version_id": new.id, "diff": result}, ensure_ascii=False
                )
                + "\n"
            )
            return
        out.print(
            f"version {old.id} ({clock.human(old.captured_at, cfg.schedule.timezone)}) → {new.id} "
            f"({clock.human(new.captured_at, cfg.schedule.timezone)})",
            highlight=False,
        )
        if isinstance(result, dict):
            for r in result["added"]:
                out.print(f"+ {r['description']}", highlight=False, markup=False)
            for r in result["removed"]:
                out.print(f"- {r['description']}", highlight=False, markup=False)
            for r in result["changed"]:
                out.print(
                    f"~ {r['description']}: "
                    + "; ".join(f"{f['field']}: {f['before']} → {f['after']}" for f in r["fields"]),
                    highlight=False,
                    markup=False,
                )
        else:
            for op in result:
                where = " › ".join(op["section"]) or "top"
                sign = {"added": "+", "removed": "-", "changed": "~", "moved": ">"}[op["op"]]
                line = f"{sign} [{where}] " + (
                    f"{op['before']}  →  {op['text']}" if op["op"] == "changed" else op["text"]
                )
                out.print(line, highlight=False, markup=False)
        if (isinstance(result, list) and not result) or (
            isinstance(result, dict) and not any(result[k] for k in ("added", "removed", "changed"))
        ):
            out.print("no differences")


@app.command()
def explain(
    url: str = typer.Argument(..., metavar="PAGE", help=PAGE_HELP + " Its latest stored capture is used."),
    config: Path | None = ConfigOpt,
    file: Path | None = typer.Option(
        None, "--file", help="Explain this local HTML file instead (as if served at URL)."
    ),
    blocks: bool = typer.Option(False, "--blocks", help="Also print every content block with its section."),
) -> None:
    """Show how a page is read: extractor, metadata, what was dropped as noise and why, and the content
    blocks."""
    from policywatch.monitor.detection.extract import extract_html
    from policywatch.monitor.detection.quality import soft_error_reason
    from policywatch.storage import queries as q

    cfg = _config(config)
    stored_as = None
    body: bytes | None
    if file is not None:
        try:
            body = file.read_bytes()
        except OSError as exc:
            fail(f"--file: cannot read {file}: {exc.strerror}", EXIT_USAGE)
        source = str(file)
    else:
        with _opened(cfg) as db, db.session() as s:
            page = _page(s, url)
            url = page.url
            v = q.last_version(s, page.id)
            if v is None:
                fail("this page has no stored version yet", EXIT_FAILED)
            stored_as = (v.meta or {}).get("extractor")
            body = q.body_bytes(s, v.raw_hash) if v.raw_hash else None
            if body is None:
                fail(
                    f"the raw capture of version {v.id} was pruned; use --file with a saved copy", EXIT_FAILED
                )
            source = f"version {v.id} captured {clock.human(v.captured_at, cfg.schedule.timezone)}"
    watch = cfg.watch_for(url)
    kind = watch.kind if watch is not None else "auto"
    if (
        stored_as == "json"
        or kind == "json"
        or (kind == "auto" and url.split("?")[0].lower().endswith(".json"))
    ):
        _explain_json(url, source, body, watch, blocks)
        return
    drops, ignores, _digest = cfg.rules_for(url)
    ex = extract_html(body, url, extra_noise=drops, ignore_patterns=ignores)
    how = (
        "GCWeb <main property=mainContentOfPage>"
        if ex.extractor == "gcweb"
        else "generic: <main>, <article> or <body> minus navigation"
    )
    out.print(
        f"{url}\n  source: {source}\n  extractor: {ex.extractor} ({how})", highlight=False, markup=False
    )
    out.print(f"  title: {ex.title}", highlight=False, markup=False)
    for k, v in ex.meta.items():
        if k != "extractor":
            out.print(f"  metadata (not content): {k} = {v}", highlight=False, markup=False)
    reason = soft_error_reason(ex.title, ex.text, [b["text"] for b in ex.blocks if b["kind"] in ("h1", "h2")])
    if reason:
        out.print(f"  WOULD BE A SOFT ERROR: {reason}", highlight=False, markup=False)
    out.print(f"  dropped before comparison ({len(ex.dropped)}):", highlight=False)
    for d in ex.dropped:
        out.print(f"    - {d}", highlight=False, markup=False)
    sections: dict[str, int] = {}
    for b in ex.blocks:
        key = " › ".join(b["section"]) or "(top of page)"
        sections[key] = sections.get(key, 0) + 1
    out.print(f"  content: {len(ex.blocks)} blocks, hash {ex.content_hash[:16]}", highlight=False)
    for key, n in sections.items():
        out.print(f"    {n:4d}  {key}", highlight=False, markup=False)
    if blocks:
        for b in ex.blocks:
            out.print(
                f"  [{b['kind']}] {' › '.join(b['section'])}: {b['text']}", highlight=False, markup=False
            )


@app.command()
def parity(
    config: Path | None = ConfigOpt,
    fmt: TableJson = typer.Option(TableJson.table, "--format", "-f", help="Output format."),
) -> None:
    """Each watched page and its twin in the other official language ([parity] languages): in step, or which
    language changed and has not been followed, since when."""
    from policywatch.reports.parity import pairs

    cfg = _config(config)
    if not cfg.parity.on:
        fail(
            'no [parity] in the config: set languages = ["en", "fr"] (docs/configuration.md#parity)',
            EXIT_USAGE,
        )
    with _opened(cfg, reader=True) as db, db.session() as s:
        found = pairs(s, cfg.parity.languages)
    if fmt == "json":
        _write_json_array(p.as_dict() for p in found)
        return
    if not found:
        out.print("no pairs yet: twins are found when a watched page is read (run a pass)")
        return
    table = Table("page", "twin", "status", "since", "days")
    for p in found:
        state = f"{p.ahead} ahead" if p.status == "ahead" else "in step"
        table.add_row(p.page, p.twin, state, clock.human(p.since, cfg.schedule.timezone), str(p.days or ""))
    out.print(table)


def _explain_json(url: str, source: str, body: bytes, watch: Any, blocks: bool) -> None:
    """How a JSON data file is compared: as records keyed by an id, never as text."""
    from policywatch.monitor.detection.jsondiff import (
        MalformedJSON,
        describe_record,
        parse_json,
        records_hash,
        to_records,
    )

    def say(line: str) -> None:
        out.print(line, highlight=False, markup=False)

    say(f"{url}\n  source: {source}\n  extractor: json (a data file: compared record by record, not as text)")
    records_at, id_field = (watch.json_records, watch.json_id) if watch is not None else (None, None)
    try:
        doc = to_records(parse_json(body), records_at, id_field)
    except MalformedJSON as exc:
        say(f"  WOULD BE A SOFT ERROR: malformed JSON: {exc} (the pass keeps the last good version)")
        return
    path = doc["records_path"]
    where = {None: "each top-level key is a record", "": "the top-level list"}.get(
        path, f"the list at {path!r} ({'json_records' if records_at else 'found: the longest list'})"
    )
    key = f", keyed by {doc['id_field']!r}{' (json_id)' if id_field else ''}" if doc["id_field"] else ""
    say(f"  records: {where}{key}")
    say(f"  content: {len(doc['records'])} records, hash {records_hash(doc)[:16]}")
    if doc["meta"]:
        say(f"  other fields, compared too: {', '.join(sorted(map(str, doc['meta'])))}")
    say("  a change: records added or removed, and each changed field before → after, one line per record")
    ids = list(doc["records"])
    shown = ids if blocks else ids[:3]
    for rid in shown:
        say(f"    {describe_record(rid, doc['records'][rid], doc['id_field'])}")
    if len(ids) > len(shown):
        say(f"    … and {len(ids) - len(shown)} more (--blocks lists every record)")
