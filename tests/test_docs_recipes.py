"""Documentation that is executed: the analysts' Datasette recipe (docs/analysts.md) and the README's "Install
as a tool" commands run here as written, so a recipe that stops working fails a test, not a reader."""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from policywatch.storage import open_database
from tests.conftest import BIN, ROOT, policywatch
from tests.smtp_server import free_port
from tests.test_storage import _config, _night

pytestmark = pytest.mark.slow


def _shell_block(doc: Path, heading: str) -> list[str]:
    """The command lines of the first ```sh block under `heading` (comments dropped)."""
    text = doc.read_text(encoding="utf-8").split(heading, 1)[1]
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, f"no sh block under {heading} in {doc.name}"
    lines = [line.split("  #", 1)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def _run(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        line, shell=True, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120, check=False
    )


def _wait_for_line(stream, pattern: str, timeout: float) -> str:  # noqa: ANN001
    """The first line of `stream` matching `pattern` (the server says it is up), read on a thread so a
    server that never says so fails the test at `timeout` instead of hanging it."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in stream], daemon=True).start()
    seen = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line matching {pattern!r}; saw: {''.join(seen)[-2000:]}") from None
        seen.append(line)
        if re.search(pattern, line):
            return line


def _get(url: str):  # noqa: ANN202
    with urllib.request.urlopen(url, timeout=30) as r:  # loopback only
        return json.loads(r.read())


def test_the_analysts_datasette_recipe_runs_as_written(tmp_path: Path):
    if shutil.which("sqlite3") is None and os.environ.get("CI") != "true":
        pytest.skip("the recipe's copy step needs the sqlite3 command (Debian's sqlite3)")
    db_url = f"sqlite:///{tmp_path / 'policywatch.db'}"
    db = open_database(db_url)
    cfg = _config(db_url)
    for fee, noise in (("$155", "a"), ("$230", "b")):
        _night(db, cfg, fee, noise)
    db.dispose()
    (tmp_path / "policywatch.toml").write_text(
        '[storage]\nurl = "sqlite:///policywatch.db"\n[crawl]\nallowed_domains = ["www.canada.ca"]\n'
        '[[watch]]\nurl = "https://www.canada.ca/en/wp.html"\ntopics = ["work-permits"]\n',
        encoding="utf-8",
    )
    lines = _shell_block(ROOT / "docs" / "analysts.md", "## Datasette")
    assert lines[0] == "pip install datasette"  # installed with the test extras
    *steps, serve = lines[1:]
    assert serve.startswith("datasette serve ")
    for line in steps:
        done = _run(line, tmp_path)
        assert done.returncode == 0, (line, done.stderr)
    port = free_port()
    server = subprocess.Popen(
        [*shlex.split(serve), "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_line(server.stderr, r"Uvicorn running on", timeout=60)
        name = Path(shlex.split(serve)[2]).stem  # the file the recipe serves: analysts.db → analysts
        base = f"http://127.0.0.1:{port}/{name}"
        listed = _get(f"{base}.json")
        queries = {q["name"] for q in listed.get("queries", [])}
        assert {"innovation_stream_changes", "page_as_of", "changes_by_topic", "fact_changes"} <= queries
        args = urllib.parse.urlencode({"url": "https://www.canada.ca/en/wp.html", "date": "2999-01-01"})
        rows = _get(f"{base}/page_as_of.json?_shape=array&{args}")
        assert len(rows) == 1 and "$230" in rows[0]["text"]
        facts = _get(f"{base}/fact_changes.json?_shape=array&since=2000-01-01&type=fee")
        assert [(r["before"], r["after"]) for r in facts] == [("$155", "$230")]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_readmes_install_commands_run_as_written(tmp_path: Path):
    """`pip install .` is the packaging test's (a wheel in a fresh venv); `policywatch run` fetches the live
    canada.ca and is the crawl tests' (on loopback sites); the rest runs here as the README writes it."""
    lines = _shell_block(ROOT / "README.md", "## Install as a tool")
    assert lines[0].startswith("pip install .") and "policywatch run" in lines
    for line in lines[1:]:
        if line == "policywatch run":
            assert policywatch("run", "--help").returncode == 0
            continue
        done = _run(line, tmp_path)
        assert done.returncode == 0, (line, done.stderr)
        if line.startswith("policywatch changes") and "--format json" in line:
            assert json.loads(done.stdout) == []  # a new history: no changes yet, as valid JSON
    assert (tmp_path / "policywatch.toml").is_file()
