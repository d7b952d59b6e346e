"""Source packs: ready-made watchlists for Canadian immigration (`policywatch init --pack NAME`).

A pack is a TOML file in `monitor/packs/`: a `[pack]` table (name, summary), the hosts it needs, its
politeness, discovery sources and topics, then its `[[watch]]` blocks, each with a comment saying what the
page is. `merge` writes one starter config from several packs: hosts, sources and topics united, the
politeness of the most careful pack, every watch once (its comment kept), and the starter's own sections for
mail, the schedule and the archive.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

WATCHLIST = "# --- the watchlist"
STARTER_TAIL = "# --- e-mail digests"


@dataclass(frozen=True)
class Pack:
    name: str
    summary: str
    data: dict[str, Any] = field(repr=False)
    watch_text: str = field(repr=False)  # the [[watch]] blocks as written, comments included

    @property
    def watches(self) -> list[dict[str, Any]]:
        return list(self.data.get("watch", []))

    @property
    def feeds(self) -> list[Any]:
        return list(self.data.get("discovery", {}).get("feeds", []))


def _read(name: str, text: str) -> Pack:
    data = tomllib.loads(text)
    meta = data.get("pack", {})
    at = text.find(WATCHLIST)
    watch_text = text[text.index("\n", at) + 1 :].strip() if at >= 0 else ""
    return Pack(meta.get("name", name), meta.get("summary", ""), data, watch_text)


def available() -> dict[str, Pack]:
    """Every pack shipped with policywatch, by name."""
    folder = files("policywatch.monitor").joinpath("packs")
    packs = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            pack = _read(entry.name.removesuffix(".toml"), entry.read_text(encoding="utf-8"))
            packs[pack.name] = pack
    return packs


def _toml(value: Any) -> str:
    """A TOML value (strings, numbers, booleans, lists and inline tables of them): JSON's string escapes
    are TOML's."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def _lines(key: str, values: list[Any]) -> str:
    if not values:
        return f"{key} = []"
    return f"{key} = [\n" + "".join(f"  {_toml(v)},\n" for v in values) + "]"


def merge(packs: list[Pack], starter: str) -> str:
    """One config from these packs (in order); `starter` gives the sections every config shares."""
    m = _Merged.of(packs)
    out = _head(packs, m)
    for name, table in m.topics.items():
        out.append(f"[topics.{name}]")
        out += [f"{k} = {_toml(v)}" for k, v in table.items()]
        out.append("")
    out += _watchlist(packs)
    tail = starter[starter.index(STARTER_TAIL) :] if STARTER_TAIL in starter else ""
    return "\n".join(out) + "\n" + tail


@dataclass
class _Merged:
    """What the packs share: hosts (with the pack that needs each), discovery sources, topics, the pace."""

    hosts: dict[str, str] = field(default_factory=dict)
    prefixes: list[str] = field(default_factory=list)
    feeds: list[Any] = field(default_factory=list)
    sitemaps: list[Any] = field(default_factory=list)
    topics: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: each host's pace: the most careful of the packs that need it
    host_delay: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, packs: list[Pack]) -> _Merged:
        m = cls()
        for p in packs:
            crawl = p.data.get("crawl", {})
            pace = float(crawl.get("download_delay", 1.0))
            for h in crawl.get("allowed_domains", []):
                m.hosts.setdefault(h, p.name)
                m.host_delay[h] = max(m.host_delay.get(h, 0.0), pace)
            disc = p.data.get("discovery", {})
            m.prefixes += [x for x in disc.get("follow_prefixes", []) if x not in m.prefixes]
            m.feeds += [x for x in disc.get("feeds", []) if x not in m.feeds]
            m.sitemaps += [x for x in disc.get("sitemaps", []) if x not in m.sitemaps]
            for name, table in p.data.get("topics", {}).items():
                mine = m.topics.setdefault(name, dict(table))
                mine["keywords"] = list(
                    dict.fromkeys([*mine.get("keywords", []), *table.get("keywords", [])])
                )
        return m

    @property
    def delay(self) -> float:
        """The pace of most hosts (the least careful pack's, at least 1 s): hosts that need a slower one get
        it in host_delays."""
        return max(1.0, min(self.host_delay.values(), default=1.0))

    def slower(self) -> dict[str, float]:
        return {h: d for h, d in self.host_delay.items() if d > self.delay}


def _head(packs: list[Pack], m: _Merged) -> list[str]:
    """The file's header and its [storage], [crawl], [discovery] and [reports] tables."""
    names = " ".join(f"--pack {p.name}" for p in packs)
    return [
        f"# policywatch configuration — written by `policywatch init {names}`.",
        "# Every key is documented in docs/configuration.md. Paths are relative to this file.",
        *(f"# pack {p.name}: {p.summary}" for p in packs),
        "",
        "[storage]",
        '# Any SQLAlchemy URL. SQLite by default; for a team: "postgresql+psycopg://user@host/policywatch"',
        'url = "sqlite:///policywatch.db"',
        "",
        "[crawl]",
        "# Hosts policywatch may request (the pack that needs each). Nothing else is ever fetched.",
        "allowed_domains = [\n"
        + "".join(f"  {_toml(h)},{' ' * max(1, 30 - len(h))}# {m.hosts[h]}\n" for h in m.hosts)
        + "]",
        "# Say who you are: site operators can contact you instead of blocking you.",
        'user_agent = "policywatch/0.1 (+https://example.org/contact-for-policywatch)"',
        "obey_robots = true",
        "concurrency_per_domain = 1",
        f"download_delay = {m.delay}          # seconds between requests to one host (government hosts)",
        "timeout = 30",
        "retries = 2",
        "max_size_mb = 16",
        "",
        *(
            [
                "[crawl.host_delays]",
                "# Hosts slower than download_delay (their pack's pace): a floor AutoThrottle keeps",
                *(
                    f"{_toml(h)} = {d}{' ' * max(1, 28 - len(h))}# {m.hosts[h]}"
                    for h, d in m.slower().items()
                ),
                "",
            ]
            if m.slower()
            else []
        ),
        "[discovery]",
        _lines("follow_prefixes", m.prefixes),
        _lines("feeds", m.feeds),
        *([_lines("sitemaps", m.sitemaps)] if m.sitemaps else []),
        "depth = 1",
        "max_pages = 300",
        "",
        "[reports]",
        'dir = "reports"',
        "",
    ]


def _watchlist(packs: list[Pack]) -> list[str]:
    """Each pack's [[watch]] entries as the pack writes them (comments kept); a page two packs watch is
    watched once, with the first pack's topics."""
    out: list[str] = []
    seen: set[str] = set()
    for p in packs:
        out.append(f"# --- the watchlist: pack {p.name} {'-' * max(3, 80 - len(p.name))}")
        for block in _blocks(p.watch_text):
            url = tomllib.loads(block)["watch"][0]["url"]
            if url not in seen:
                seen.add(url)
                out += [block, ""]
    return out


def _blocks(text: str) -> list[str]:
    """The `[[watch]]` blocks of a pack, each with its comment line."""
    parts = text.split("[[watch]]")
    return ["[[watch]]" + part.rstrip() for part in parts[1:]]
