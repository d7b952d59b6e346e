"""Shared fixtures: loopback fixture sites, configs, and SQLite/PostgreSQL databases of the tests' own."""

from __future__ import annotations

import mimetypes
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from policywatch.monitor.demo import NightServer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
BIN = Path(sys.executable).parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def load_site(directory: Path) -> dict[str, tuple[bytes, str]]:
    """A directory of files → the {path: (body, content type)} a NightServer serves."""
    pages = {}
    for f in sorted(directory.rglob("*")):
        if f.is_file():
            ctype = mimetypes.guess_type(f.name)[0] or "application/octet-stream"
            if ctype.startswith("text/"):
                ctype += "; charset=utf-8"
            pages["/" + f.relative_to(directory).as_posix()] = (f.read_bytes(), ctype)
    return pages


class FixtureSite:
    """Serves `tests/fixtures/sites/<name>/night-<n>/` on a loopback port; `night(n)` switches nights."""

    def __init__(self, name: str):
        self.root = FIXTURES / "sites" / name
        self.server = NightServer()

    def night(self, n: int) -> None:
        self.server.pages = load_site(self.root / f"night-{n}")

    def url(self, path: str) -> str:
        return f"{self.server.base}{path}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.port}"


@pytest.fixture
def permits_site() -> Iterator[FixtureSite]:
    site = FixtureSite("permits")
    site.night(1)
    with site.server:
        yield site


def permits_config_body(site: FixtureSite) -> str:
    """The permits fixture site's crawl settings, discovery, topics and watchlist (shared by the e2e
    tests)."""
    return f"""
[crawl]
allowed_domains = ["{site.host}"]
download_delay = 0
autothrottle = false
retries = 0

[discovery]
follow_prefixes = ["{site.url("/en/news/")}"]
depth = 1

[topics.fees]
keywords = ["processing fee"]

[[watch]]
url = "{site.url("/en/work-permits.html")}"
topics = ["work-permits"]

[[watch]]
url = "{site.url("/en/study.html")}"

[[watch]]
url = "{site.url("/en/news/index.html")}"

[[watch]]
url = "{site.url("/data/rounds.json")}"
topics = ["express-entry"]
"""


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a TOML config under tmp_path from a text body (storage and reports default into tmp_path)."""

    def _write(body: str, *, name: str = "policywatch.toml", storage: str | None = None) -> Path:
        head = ""
        if "[storage]" not in body:
            head += f'[storage]\nurl = "{storage or "sqlite:///" + (tmp_path / "history.db").as_posix()}"\n\n'
        if "[reports]" not in body:
            head += f'[reports]\ndir = "{(tmp_path / "reports").as_posix()}"\n\n'
        path = tmp_path / name
        path.write_text(head + body, encoding="utf-8")
        return path

    return _write


def policywatch(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script as users do."""
    exe = BIN / "policywatch"
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command line in this process: `policywatch.monitor.cli.main` with the same argv, its stdout and
    stderr captured and its exit code returned, as `policywatch()` gives them. For commands that read and
    report (help, history, export, sql, init, …): a subprocess proves nothing more there, and costs a Python
    start and the imports each time. A pass (`run`) or anything about processes, signals or the console
    script itself goes through `policywatch()`."""
    import io

    from policywatch.monitor.cli import main
    from policywatch.monitor.cli.common import err, out

    streams = [io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="") for _ in range(2)]
    saved_env = {k: os.environ.get(k) for k in (env or {})}
    saved = sys.stdout, sys.stderr, sys.stdin
    code = 0
    widths = out._width, err._width  # rich read COLUMNS when the consoles were made: as a new process would
    try:
        os.environ.update(env or {})
        if "COLUMNS" in (env or {}):
            out.width = err.width = int(os.environ["COLUMNS"])
        sys.stdout, sys.stderr = streams
        sys.stdin = io.StringIO("")
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdout, sys.stderr, sys.stdin = saved
        out._width, err._width = widths
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    texts = []
    for stream in streams:
        stream.flush()
        texts.append(stream.buffer.getvalue().decode("utf-8", errors="replace"))  # type: ignore[attr-defined]
    return subprocess.CompletedProcess(["policywatch", *args], code, texts[0], texts[1])


# --- PostgreSQL -----------------------------------------------------------------------------------------
def _pg_admin_url() -> str | None:
    return os.environ.get("POLICYWATCH_TEST_PG_URL")


def _need_pg() -> str:
    url = _pg_admin_url()
    if not url:
        if IN_CI:
            pytest.fail("POLICYWATCH_TEST_PG_URL is not set: in CI the PostgreSQL tests must run, not skip")
        pytest.skip("set POLICYWATCH_TEST_PG_URL to run the PostgreSQL tests")
    return url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database of this test's own, dropped afterwards."""
    import sqlalchemy as sa

    admin = _need_pg()
    name = f"pwtest_{uuid.uuid4().hex[:12]}"
    try:
        engine = sa.create_engine(
            admin.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
        )
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # server down
        if IN_CI:
            pytest.fail(f"PostgreSQL at POLICYWATCH_TEST_PG_URL is not usable: {exc}")
        pytest.skip(f"PostgreSQL not usable: {exc}")
    url = (
        sa.engine.make_url(admin)
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False)
    )
    try:
        yield url
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


@pytest.fixture
def analyst_url(pg_url: str) -> Iterator[str]:
    """A login role of this test's own made by `db analyst-role` on `pg_url`'s database (SELECT on the
    documented views and tables only): the `read_url` a team gives its analysts. Dropped afterwards."""
    import sqlalchemy as sa

    from policywatch.storage.db import open_database
    from policywatch.storage.roles import apply_analyst_role

    name = f"pwa_{uuid.uuid4().hex[:12]}"
    db = open_database(pg_url)
    try:
        apply_analyst_role(db.engine, name)
    finally:
        db.dispose()
    url = sa.engine.make_url(pg_url).set(username=name, password=None).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,)
                )
                conn.exec_driver_sql(f'DROP OWNED BY "{name}"')
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')
        finally:
            admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every storage test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'history.db').as_posix()}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def db(db_url: str) -> Iterator[Any]:
    """The history database at `db_url` (SQLite and PostgreSQL), migrated and opened for this test, closed
    afterwards whatever the test did."""
    from policywatch.storage import open_database

    database = open_database(db_url)
    try:
        yield database
    finally:
        database.dispose()


# --- a full disk ------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 3 MB tmpfs of this test's own (needs root, as on this project's CI machines)."""
    mnt = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if r.returncode != 0:
        if IN_CI and os.geteuid() == 0:
            pytest.fail(f"cannot mount a tmpfs as root in CI: {r.stderr.strip()}")
        pytest.skip(f"mounting a small tmpfs needs root: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# --- a scripted loopback server -----------------------------------------------------------------------------
Answer = Callable[[str], tuple[int, dict[str, str], bytes]]


@contextmanager
def scripted_server(answer: Answer) -> Iterator[int]:
    """A loopback HTTP server that answers each GET with `answer(path)` -> (status, headers, body), robots.txt
    with a 404 (everything allowed); yields its port. For the faults a fixture site cannot play (a 429, a
    redirect elsewhere)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            status, headers, body = (404, {}, b"") if self.path == "/robots.txt" else answer(self.path)
            self.send_response(status)
            for name, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()
