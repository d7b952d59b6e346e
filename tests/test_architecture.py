"""The import rules of ARCHITECTURE.md, checked on the source (storage is the hub; the monitor never imports
the crawler; reports read only storage; the crawler uses only the monitor's per-page modules)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PER_PAGE = {"monitor", "monitor.config", "monitor.urls", "monitor.extract", "monitor.normalize", "monitor.facts",
            "monitor.diff", "monitor.jsondiff", "monitor.topics", "monitor.detect", "monitor.quality",
            "monitor.pagework", "monitor.health", "monitor.fetchresult"}


def imports(package: str) -> list[tuple[str, str]]:
    found = []
    for f in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                found += [(str(f.relative_to(ROOT)), a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((str(f.relative_to(ROOT)), node.module))
    return found


def _top(mod: str) -> str:
    """The project folder a module is in (`policywatch.monitor.cli` -> `monitor`), or the outside package."""
    parts = mod.split(".")
    return parts[1] if parts[0] == "policywatch" and len(parts) > 1 else parts[0]


def _local(mod: str) -> str:
    return mod.removeprefix("policywatch.")


@pytest.mark.parametrize("package, forbidden", [
    ("storage", {"crawler", "monitor", "reports"}),
    ("monitor", {"crawler"}),
    ("reports", {"crawler", "monitor"}),
])
def test_forbidden_imports(package, forbidden):
    bad = [(f, m) for f, m in imports(package) if _top(m) in forbidden]
    assert bad == []


def test_crawler_uses_only_per_page_monitor_modules():
    used = {_local(m) for _f, m in imports("crawler") if _top(m) == "monitor"}
    assert used and used <= PER_PAGE, used - PER_PAGE
    assert not any(_top(m) == "reports" for _f, m in imports("crawler"))


def test_per_page_modules_do_not_pull_in_the_pass():
    for mod in PER_PAGE - {"monitor"}:
        path = ROOT / (mod.replace(".", "/") + ".py")
        mods = {_local(n.module) for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom) and n.module}
        assert not mods & {"monitor.passrun", "monitor.cli", "monitor.demo", "reports.render", "reports.data"}, mod


def test_every_import_of_the_project_is_in_the_policywatch_namespace():
    """Installed, the folders are policywatch.crawler, … (pyproject's package-dir): a bare `import storage` would
    find whatever else a user's site-packages or working directory calls storage."""
    bare = [(f, m) for pkg in ("crawler", "monitor", "storage", "reports", "tests", "bench") for f, m in imports(pkg)
            if m.split(".")[0] in {"crawler", "monitor", "storage", "reports"}]
    assert bare == []
