"""The import rules of ARCHITECTURE.md, checked on the source: one line per package, what it must never
import.

Storage is the hub and imports none of the others; reports read only storage; the monitor never imports the
crawler (the crawl is a child process); detection is pure (no config, no pass, no CLI, no storage); the config
knows nothing of the pass or the CLI; the crawl never imports the pass, the CLI or the reports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

NEVER = {
    "storage": {"crawler", "monitor", "reports"},
    "reports": {"crawler", "monitor"},
    "crawler": {
        "reports",
        "monitor.cli",
        "monitor.nightly.passrun",
        "monitor.nightly.scheduler",
        "monitor.nightly.delivery",
        "monitor.demo",
    },
    "monitor": {"crawler"},
    "monitor.detection": {
        "monitor.config",
        "monitor.nightly",
        "monitor.cli",
        "monitor.pagework",
        "storage",
        "reports",
        "crawler",
    },
    "monitor.config": {"monitor.nightly", "monitor.cli", "monitor.pagework", "storage", "reports", "crawler"},
    "monitor.nightly": {"monitor.cli", "crawler"},
    "monitor.backfill": {"monitor.cli", "monitor.nightly", "crawler", "reports"},
}


def imports(package: str) -> list[tuple[str, str]]:
    """(file, module) for every absolute import in a folder of the repository, `policywatch.` taken off."""
    found = []
    for f in (ROOT / package.replace(".", "/")).rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                found += [(str(f.relative_to(ROOT)), a.name.removeprefix("policywatch.")) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((str(f.relative_to(ROOT)), node.module.removeprefix("policywatch.")))
    return found


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize("package", sorted(NEVER))
def test_forbidden_imports(package):
    bad = [(f, m) for f, m in imports(package) if any(_under(m, p) for p in NEVER[package])]
    assert bad == []


def test_every_import_of_the_project_is_in_the_policywatch_namespace():
    """Installed, the folders are policywatch.crawler, … (pyproject's package-dir): a bare `import storage`
    would find whatever else a user's site-packages or working directory calls storage."""
    bare = []
    for pkg in ("crawler", "monitor", "storage", "reports", "tests", "bench"):
        for f in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text(), str(f))):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module]
                    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                    else []
                )
                bare += [
                    (str(f), n)
                    for n in names
                    if n.split(".")[0] in {"crawler", "monitor", "storage", "reports"}
                ]
    assert bare == []


def test_architecture_names_every_module_of_the_monitor():
    """ARCHITECTURE.md's "monitor/ by role" table names every module of each monitor/ folder (a module it
    does not name is a part of the design nobody can find)."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    table = text.split("## monitor/ by role", 1)[1].split("\n## ", 1)[0]
    missing = []
    for folder in sorted(p for p in (ROOT / "monitor").iterdir() if (p / "__init__.py").is_file()):
        row = next((line for line in table.splitlines() if f"`monitor/{folder.name}/`" in line), "")
        for module in sorted(folder.glob("*.py")):
            if module.stem != "__init__" and f"`{module.stem}`" not in row:
                missing.append(f"monitor/{folder.name}/{module.name}")
    assert missing == [], missing
