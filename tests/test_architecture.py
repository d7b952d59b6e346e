"""The import rules of ARCHITECTURE.md, checked on the source: one line per package, what it must never
import, on resolved module names (`from policywatch.monitor import pagework` is an import of
`monitor.pagework`, a relative import is resolved against its file), and no import cycle between modules.

Storage is the hub and imports none of the others; reports read only storage; the monitor never imports the
crawler (the crawl is a child process); detection is pure (no config, no pass, no CLI, no storage); the config
knows nothing of the pass or the CLI; the crawl never imports the pass, the CLI or the reports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOP = ("crawler", "monitor", "storage", "reports")

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
        "monitor.page",
        "monitor.pagework",
        "storage",
        "reports",
        "crawler",
    },
    "monitor.page": {
        "monitor.nightly",
        "monitor.cli",
        "monitor.pagework",
        "monitor.backfill",
        "reports",
        "crawler",
    },
    "monitor.config": {
        "monitor.nightly",
        "monitor.cli",
        "monitor.page",
        "monitor.pagework",
        "storage",
        "reports",
        "crawler",
    },
    "monitor.nightly": {"monitor.cli", "crawler"},
    "monitor.backfill": {"monitor.cli", "monitor.nightly", "monitor.pagework", "crawler", "reports"},
    "monitor.urls": {"monitor", "storage", "reports", "crawler"},
    "monitor.fetchresult": {
        "monitor.detection",
        "monitor.page",
        "monitor.pagework",
        "monitor.nightly",
        "monitor.cli",
        "storage",
        "reports",
        "crawler",
    },
}


def module_of(path: Path) -> str:
    """`monitor/page/content.py` → `monitor.page.content` (a package's __init__ is the package)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    base = ROOT / name.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Ids of the import nodes under `if TYPE_CHECKING:`: they are never executed."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def resolved_imports(source: str, module: str, is_package: bool = False) -> list[str]:
    """The project modules a file imports, resolved: `from a import b` is `a.b` when `a.b` is a module, a
    relative import is read from the file's package, `policywatch.` is taken off; imports of other projects
    are left out. Imports under `if TYPE_CHECKING:` count (a type still couples the modules)."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name.removeprefix("policywatch.") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = (node.module or "").removeprefix("policywatch.")
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append(full if _is_module(full) else base)
    return [m for m in found if m.split(".")[0] in TOP and (m.split(".")[0] != m or _is_module(m))]


def project_files():
    for top in TOP:
        yield from (ROOT / top).rglob("*.py")


def graph(*, runtime_only: bool = False) -> dict[str, set[str]]:
    """module → the project modules it imports (`runtime_only`: imports run at import time of the module, not
    inside a function or under TYPE_CHECKING: the ones a cycle breaks)."""
    edges: dict[str, set[str]] = {}
    for f in project_files():
        mod = module_of(f)
        source = f.read_text(encoding="utf-8")
        if runtime_only:
            tree = ast.parse(source)
            skip = _type_checking_only(tree)
            top_level = [n for n in tree.body if id(n) not in skip]
            source = "\n".join(
                ast.unparse(n) for n in top_level if isinstance(n, ast.Import | ast.ImportFrom)
            )
        edges[mod] = set(resolved_imports(source, mod, f.name == "__init__.py")) - {mod}
    return edges


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize("package", sorted(NEVER))
def test_forbidden_imports(package):
    bad = [
        (mod, target)
        for mod, targets in graph().items()
        if _under(mod, package)
        for target in targets
        if any(_under(target, p) for p in NEVER[package])
    ]
    assert bad == []


def test_the_check_sees_every_way_of_writing_an_import():
    """The blind spot this test once had: a module imported as a name of its package, or relatively."""
    mod = "monitor.detection.detect"
    assert resolved_imports("from policywatch.monitor import pagework", mod) == ["monitor.pagework"]
    assert resolved_imports("import policywatch.monitor.pagework as p", mod) == ["monitor.pagework"]
    assert resolved_imports("from ..pagework import PageWork", mod) == ["monitor.pagework"]
    assert resolved_imports("from . import facts", mod) == ["monitor.detection.facts"]
    assert resolved_imports("from policywatch.storage.models import Page", mod) == ["storage.models"]
    assert resolved_imports("import orjson", mod) == []


def test_no_import_cycles_between_modules():
    """No module reaches itself through imports run when modules load (a cycle makes the import order matter
    and hides which part depends on which). Imports inside a function are how a cycle is broken on purpose,
    so only module-level ones count."""
    edges = graph(runtime_only=True)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_every_import_of_the_project_is_in_the_policywatch_namespace():
    """Installed, the folders are policywatch.crawler, … (pyproject's package-dir): a bare `import storage`
    would find whatever else a user's site-packages or working directory calls storage."""
    bare = []
    for pkg in (*TOP, "tests", "bench"):
        for f in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text(), str(f))):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module]
                    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                    else []
                )
                bare += [(str(f), n) for n in names if n.split(".")[0] in set(TOP)]
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


def test_architecture_states_the_rules_this_test_checks():
    """Every package this test holds to a rule has its line in ARCHITECTURE.md's import rules."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    rules = text.split("## Import rules", 1)[1].split("\n## ", 1)[0]
    named = {p for p in NEVER if f"`{p.replace('.', '/')}" in rules}
    assert named == set(NEVER), set(NEVER) - named


#: The few functions allowed past 60 lines: Typer commands whose options are most of their length.
LONG_FUNCTIONS_ALLOWED = 5
MAX_FUNCTION_LINES, MAX_MODULE_LINES = 60, 600


def test_runtime_code_stays_small():
    """Small modules with one job each: no runtime module over 600 lines, at most five functions over 60
    (migrations aside: they are history)."""
    long_functions, long_modules = [], []
    for f in project_files():
        if "migrations" in f.parts:
            continue
        source = f.read_text(encoding="utf-8")
        if len(source.splitlines()) > MAX_MODULE_LINES:
            long_modules.append(str(f.relative_to(ROOT)))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{f.relative_to(ROOT)}:{node.lineno} {node.name} ({length})")
    assert long_modules == []
    assert len(long_functions) <= LONG_FUNCTIONS_ALLOWED, long_functions
