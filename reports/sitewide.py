"""Site-wide notices: the same block added to (or removed from) many pages in one pass is one notice, not N
changes.

Why: IRCC injects alerts on every page of a section (a port-of-entry notice on every officer-instruction
page). A consultant wants one line — "a notice appeared on 14 pages: …" — not 14 entries burying the change
that matters. A change is part of a notice when every block it added or removed was added or removed,
identically, on at least MIN_PAGES pages in the same set of changes; any other edit on the page keeps it a
change of its own. "Details released" changes are never folded away.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from policywatch.reports.safetext import clip_words
from policywatch.storage.models import Change

MIN_PAGES = 3


@dataclass
class Notice:
    ops: tuple[tuple[str, str], ...]  # (added | removed, block text)
    changes: list[Change] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return len({c.page_id for c in self.changes})

    @property
    def summary(self) -> str:
        parts = [f"{op}: “{clip_words(text, 160)}”" for op, text in self.ops]
        return f"Site-wide notice on {self.pages} pages — " + "; ".join(parts)


def _ops(c: Change) -> tuple[tuple[str, str], ...] | None:
    ops = (c.details or {}).get("blocks") or []
    if (
        c.kind != "changed"
        or c.details_released
        or not ops
        or any(op.get("op") not in ("added", "removed") for op in ops)
    ):
        return None
    return tuple(sorted({(op["op"], op.get("text", "")) for op in ops}))


def split_notices(changes: Iterable[Change]) -> tuple[list[Notice], list[Change]]:
    """(site-wide notices, the other changes in their original order)."""
    changes = list(changes)
    pages_with: dict[tuple[str, str], set[int]] = defaultdict(set)
    keyed: dict[int, tuple[tuple[str, str], ...]] = {}
    for c in changes:
        key = _ops(c)
        if key is not None:
            keyed[c.id] = key
            for op in key:
                pages_with[op].add(c.page_id)
    notices: dict[tuple[tuple[str, str], ...], Notice] = {}
    rest = []
    for c in changes:
        key = keyed.get(c.id)
        if key is not None and all(len(pages_with[op]) >= MIN_PAGES for op in key):
            notices.setdefault(key, Notice(key)).changes.append(c)
        else:
            rest.append(c)
    return sorted(notices.values(), key=lambda n: -n.pages), rest
