"""Static SVG charts for the report site, drawn with pygal when the site is built: no JavaScript (pygal's
inline config script is removed, and the site's Content-Security-Policy allows none), inline in the page (the
policy allows no image loads), each shown beside a table of its data.

- a page's timeline: its versions and its changes over time, coloured by significance;
- for a JSON data file of draws (IRCC's Express Entry rounds), the CRS cut-off over time by round type.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from policywatch.reports import clock

SIGNIFICANCE_COLOURS = {"version": "#7a7a7a", "low": "#5e9c76", "medium": "#d27f00", "high": "#b00020"}
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S | re.I)
MAX_SERIES = 8  # round types beyond these are drawn together as "other"


def _svg(chart: Any) -> str:
    """The chart as inline SVG markup, without its script."""
    return _SCRIPT.sub("", chart.render(is_unicode=True))


def _style(colours: Sequence[str]) -> Any:
    from pygal.style import Style

    return Style(
        background="white",
        plot_background="white",
        foreground="#222",
        foreground_strong="#222",
        foreground_subtle="#666",
        colors=tuple(colours),
        font_family="system-ui, -apple-system, Segoe UI, sans-serif",
    )


def _ts(when: datetime) -> float:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _axis_zone(timezone: str, times: Sequence[float]) -> str:
    """How the time axis names its zone: "EST" when one abbreviation covers the span, else the zone's name
    ("America/Toronto" across a change of daylight time)."""
    labels = {clock.zone_label(timezone, datetime.fromtimestamp(t, UTC)) for t in (min(times), max(times))}
    return labels.pop() if len(labels) == 1 else timezone


def page_timeline(versions: Sequence[Any], changes: Sequence[Any], timezone: str = "UTC") -> str | None:
    """Versions (grey) and changes by significance (green, amber, red) on one time axis, in the configured
    zone (`[schedule] timezone`, named in the axis title); None when the page has nothing to draw."""
    import pygal

    points: dict[str, list[tuple[float, int]]] = {"version": [], "low": [], "medium": [], "high": []}
    for v in versions:
        points["version"].append((_ts(v.captured_at), 0))
    for c in changes:
        if (c.details or {}).get("baseline"):
            continue
        level = c.significance if c.significance in points else "low"
        points[level].append((_ts(c.detected_at), {"low": 1, "medium": 2, "high": 3}[level]))
    if len(points["version"]) < 2 and not (points["low"] or points["medium"] or points["high"]):
        return None  # one version and no change (a page's first night): nothing to draw, and cheaper so
    times = [t for pts in points.values() for t, _ in pts]
    short = max(times) - min(times) < 2 * 86400  # a couple of days: say the hour too
    zone = clock.zone(timezone)

    def when(ts: float) -> str:
        local = datetime.fromtimestamp(ts, UTC).astimezone(zone)
        return local.strftime("%m-%d %H:%M" if short else "%Y-%m-%d")

    chart = pygal.XY(
        js=[],
        disable_xml_declaration=True,
        style=_style([SIGNIFICANCE_COLOURS[k] for k in points]),
        width=860,
        height=230,
        stroke=False,
        dots_size=6,
        show_y_guides=False,
        range=(-0.5, 3.5),
        y_labels=[0, 1, 2, 3],
        y_labels_major_every=1,
        legend_at_bottom=True,
        x_value_formatter=when,
        x_label_rotation=20,
        show_minor_x_labels=False,
        x_labels_major_count=6,
        x_title=f"{'Date and time' if short else 'Date'} ({_axis_zone(timezone, times)})",
        title="Versions and changes over time",
    )
    chart.value_formatter = lambda y: ["version", "low", "medium", "high"][int(y)] if 0 <= y <= 3 else ""
    for name, pts in points.items():
        chart.add(name if name == "version" else f"{name} change", pts or [None])  # type: ignore[list-item]
    return _svg(chart)


@dataclass
class CrsChart:
    svg: str
    rows: list[tuple[str, str, int]]  # (date, round type, CRS cut-off), newest first


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def crs_over_time(records: Sequence[dict[str, Any]]) -> CrsChart | None:
    """The CRS cut-off of each round over time, one line per round type (the most frequent types; the rest as
    "other"); None when the records are not draws with a date, a type and a score."""
    import pygal

    rows: list[tuple[str, str, int]] = []
    for r in records:
        date, kind, crs = str(r.get("drawDate", "")), str(r.get("drawName", "")), str(r.get("drawCRS", ""))
        digits = crs.replace(",", "").strip()
        if _DATE.match(date) and kind and digits.isdigit():
            rows.append((date[:10], kind, int(digits)))
    if len(rows) < 2:
        return None
    counts: dict[str, int] = {}
    for _, kind, _ in rows:
        counts[kind] = counts.get(kind, 0) + 1
    kept = [k for k, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:MAX_SERIES]]
    series: dict[str, list[tuple[float, int]]] = {k: [] for k in kept}
    for day, kind, cutoff in sorted(rows):
        ts = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
        series.setdefault(kind if kind in kept else "other", []).append((ts, cutoff))
    palette = [
        "#26374a",
        "#b00020",
        "#d27f00",
        "#5e9c76",
        "#6b4fa0",
        "#1f78b4",
        "#8c564b",
        "#e377c2",
        "#7a7a7a",
    ]
    chart = pygal.XY(
        js=[],
        disable_xml_declaration=True,
        style=_style(palette),
        width=860,
        height=360,
        dots_size=2,
        legend_at_bottom=True,
        legend_at_bottom_columns=2,  # two columns hold IRCC's longest round names in full
        truncate_legend=-1,  # never "French language proficienc…"
        x_value_formatter=_day,
        x_label_rotation=20,
        x_title="Draw date",
        y_title="CRS cut-off score",
        title="CRS cut-off by round type",
    )
    for name, pts in series.items():
        chart.add(name, pts)
    return CrsChart(_svg(chart), sorted(rows, reverse=True))
