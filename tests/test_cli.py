"""The command line as users and scripts drive it: exit codes, stdout purity, history commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from policywatch.monitor import __version__
from tests.conftest import cli, policywatch


def test_help_and_version():
    p = cli("--help")
    assert p.returncode == 0
    for cmd in ("run", "changes", "demo", "init", "history", "show", "diff", "export", "sql", "db"):
        assert cmd in p.stdout
    v = cli("--version")
    assert v.returncode == 0 and v.stdout.strip() == f"policywatch {__version__}"


def test_missing_config_exit_2(tmp_path: Path):
    p = policywatch("run", "--config", str(tmp_path / "nope.toml"))
    assert p.returncode == 2
    assert p.stderr.strip() == f"policywatch: config error: config file not found: {tmp_path / 'nope.toml'}"
    assert p.stdout == ""


def test_invalid_config_names_key(write_config):
    cfg = write_config('[crawl]\nallowed_domains = ["a.ca"]\n[[watch]]\nurl = "https://b.ca/x"\n')
    p = cli("changes", "--config", str(cfg), "--format", "json")
    assert p.returncode == 2 and "watch[0].url" in p.stderr and p.stdout == ""


def test_database_unusable_exit_3(write_config, tmp_path: Path):
    bad = tmp_path / "junk.db"
    bad.write_bytes(b"garbage" * 500)
    cfg = write_config('[crawl]\nallowed_domains = ["a.ca"]\n', storage=f"sqlite:///{bad}")
    p = cli("changes", "--config", str(cfg), "--format", "json")
    assert p.returncode == 3 and "not a policywatch database" in p.stderr and p.stdout == ""


def test_init_writes_valid_starter(tmp_path: Path):
    target = tmp_path / "policywatch.toml"
    p = cli("init", str(target))
    assert p.returncode == 0, p.stderr
    text = target.read_text()
    for needle in (
        "innovation-stream-pilot.html",
        "ee_rounds_123_en.json",
        "work-permit-h1b-visa.html",
        "start-visa.html",
        "exemption-codes.html",
        "global-talent.html",
        "category-based-selection.html",
        "tech-talent-strategy",
        "api.io.canada.ca",
    ):
        assert needle in text
    again = cli("init", str(target))
    assert again.returncode == 2 and "--force" in again.stderr


@pytest.fixture
def history_db(permits_site, write_config, tmp_path):
    cfg = write_config(f"""
[crawl]
allowed_domains = ["{permits_site.host}"]
download_delay = 0
[[watch]]
url = "{permits_site.url("/en/work-permits.html")}"
topics = ["work-permits"]
[[watch]]
url = "{permits_site.url("/data/rounds.json")}"
""")
    for night in (1, 2):
        permits_site.night(night)
        p = policywatch("run", "--config", str(cfg))
        assert p.returncode == 0, p.stderr
    return str(cfg), permits_site


def test_changes_formats(history_db):
    cfg, site = history_db
    js = cli("changes", "--config", cfg, "--format", "json")
    data = json.loads(js.stdout)
    assert [c["kind"] for c in data] == ["new_page", "new_page", "changed", "changed"]
    csv_out = cli("changes", "--config", cfg, "--format", "csv", "--topic", "work-permits", "--no-baseline")
    lines = csv_out.stdout.strip().splitlines()
    assert (
        lines[0].startswith("id,url,detected_at,kind") and len(lines) == 2 and "fee: $155 -> $230" in lines[1]
    )
    future = cli("changes", "--config", cfg, "--format", "json", "--since", "2999-01-01")
    assert json.loads(future.stdout) == []
    bad = cli("changes", "--config", cfg, "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_history_show_diff(history_db):
    cfg, site = history_db
    url = site.url("/en/work-permits.html")
    h = json.loads(cli("history", url, "--config", cfg, "--format", "json").stdout)
    assert len(h) == 2
    first = cli("show", url, "--config", cfg, "--version", str(h[0]["version_id"]))
    assert "$155" in first.stdout and "$230" not in first.stdout
    at = cli("show", url, "--config", cfg, "--at", h[0]["captured_at"])
    assert at.stdout == first.stdout
    latest = cli("show", url, "--config", cfg)
    assert "$230" in latest.stdout
    d = json.loads(cli("diff", url, "--config", cfg, "--format", "json").stdout)
    assert [op["op"] for op in d["diff"]] == ["changed", "added"]
    txt = cli("diff", url, "--config", cfg)
    assert (
        "~ [Fees] The work permit processing fee is $155.  →  The work permit processing fee is $230."
        in txt.stdout
    )
    missing = cli("show", site.url("/nope.html"), "--config", cfg)
    assert missing.returncode == 2 and "no page" in missing.stderr


def test_export_streams(history_db):
    cfg, _ = history_db
    nd = cli("export", "fetches", "--config", cfg, "--format", "ndjson").stdout.strip().splitlines()
    assert len(nd) == 4 and all(json.loads(line)["url"] for line in nd)
    arr = json.loads(cli("export", "versions", "--config", cfg, "--format", "json").stdout)
    assert len(arr) == 4 and {"url", "version_id", "text"} <= set(arr[0])
    csv_out = cli("export", "changes", "--config", cfg, "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("id,url,detected_at") and len(csv_out) == 5


def test_sql_read_only(history_db):
    cfg, _ = history_db
    ok = cli(
        "sql",
        "SELECT kind, count(*) AS n FROM change_log GROUP BY kind ORDER BY kind",
        "--config",
        cfg,
        "--format",
        "json",
    )
    assert json.loads(ok.stdout) == [{"kind": "changed", "n": 2}, {"kind": "new_page", "n": 2}]
    for stmt in ("DELETE FROM changes", "UPDATE pages SET url = 'x'", "DROP TABLE runs"):
        p = cli("sql", stmt, "--config", cfg)
        assert p.returncode == 2 and "read-only" in p.stderr, (stmt, p.stderr)
    count = cli("sql", "SELECT count(*) AS n FROM changes", "--config", cfg, "--format", "json")
    assert json.loads(count.stdout) == [{"n": 4}]


def test_every_command_is_in_the_readmes_table_and_its_help_renders_as_written():
    """Like sqlite-utils: the README's command table names every command (and group subcommand) the CLI has;
    each command's help keeps its brackets ("[[schedule.jobs]]", "[archive]") and shows no type names for
    flags."""

    import typer

    from policywatch.monitor.cli import app

    root = typer.main.get_command(app)
    commands = []
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        if hasattr(cmd, "commands"):  # a group: db, digest
            commands += [f"{name} {sub}" for sub in cmd.commands]
        else:
            commands.append(name)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Commands", 1)[1].split("\n\n", 2)[1]
    rows = re.findall(r"^\| `policywatch ([a-z-]+)(?: ([a-z-]+))?", table, re.M)
    documented = {f"{a} {b}".strip() for a, b in rows} | {a for a, _ in rows}
    missing = [c for c in commands if c not in documented]
    assert not missing, f"commands missing from the README's table: {missing}"
    for c in commands:
        p = cli(*c.split(), "--help")
        assert p.returncode == 0 and "<bool>" not in p.stdout and "[]" not in p.stdout, (c, p.stdout)
    assert "[[schedule.jobs]]" in policywatch("run", "--help").stdout
    assert "[archive]" in policywatch("backfill", "--help").stdout


def test_fit_and_finish_names_dates_and_reports(history_db, tmp_path):
    """A name a user types is checked (known names in the error); a plain date "as of" is the end of that day;
    a report never glues a heading to a line; error text is cut at a word."""
    from datetime import UTC, datetime

    from policywatch.reports.data import failure_summary

    cfg, _site = history_db
    p = cli("changes", "--config", cfg, "--topic", "nosuchtopic")
    assert p.returncode == 2 and "nosuchtopic" in p.stderr and "work-permits" in p.stderr, p.stderr
    p = cli("export", "changes", "--config", cfg, "--format", "json", "--topic", "nosuchtopic")
    assert p.returncode == 2 and "known:" in p.stderr
    p = cli("changes", "--config", cfg, "--topic", "work-permits", "--format", "json")
    assert p.returncode == 0 and json.loads(p.stdout)

    today = datetime.now(UTC).date().isoformat()  # captured today: "as of today" finds it
    p = cli("show", "work-permits", "--config", cfg, "--at", today)
    assert p.returncode == 0, p.stderr
    p = cli("show", "work-permits", "--config", cfg, "--at", "2001-01-01")
    assert p.returncode == 1 and "no stored version on or before 2001-01-01 23:59 EST" in p.stderr

    reports = Path(cfg).parent / "reports"
    for md in reports.glob("run-*.md"):
        for line in md.read_text(encoding="utf-8").splitlines():
            assert "##" not in line or line.startswith("#"), (md.name, line)

    line = failure_summary(
        {
            "fetched": 3,
            "failed": 3,
            "failures": [{"message": "Connection was refused by other side: 111: " * 3}],
        }
    )
    assert line is not None and line.endswith(" 111: Connection…)"), line  # a whole word, then …


ZONED = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} E[SD]T")  # the demo's and the tests' America/Toronto


def test_every_human_time_is_in_the_configured_zone_and_names_it(history_db):
    """One time policy: CLI tables, `show`, `diff` and `status` print `[schedule] timezone` with the zone
    named (never microseconds, never a bare UTC clock); JSON keeps ISO 8601 with its offset."""
    cfg, _site = history_db
    wide = {"COLUMNS": "220"}
    for args in (("changes",), ("history", "work-permits"), ("status",)):
        p = cli(*args, "--config", cfg, env=wide)
        assert p.returncode == 0 and ZONED.search(p.stdout), (args, p.stdout)
        assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d+", p.stdout), (args, p.stdout)  # no microseconds
    p = cli("show", "work-permits", "--config", cfg)
    assert ZONED.search(p.stderr), p.stderr
    p = cli("diff", "work-permits", "--config", cfg)
    assert len(ZONED.findall(p.stdout)) == 2, p.stdout
    p = cli("changes", "--config", cfg, "--format", "json")
    iso = re.compile(r"\d{4}-\d{2}-\d{2}T[\d:.]+\+00:00")
    assert all(iso.fullmatch(c["detected_at"]) for c in json.loads(p.stdout))


def test_show_names_the_option_that_was_wrong(history_db):
    cfg, _site = history_db
    p = cli("show", "work-permits", "--config", cfg, "--version", "999")
    assert p.returncode == 2 and "--version: no version 999" in p.stderr, p.stderr
    p = cli("show", "work-permits", "--config", cfg, "--version", "1", "--at", "2026-01-01")
    assert p.returncode == 2 and "give one of them" in p.stderr
    p = cli("show", "work-permits", "--config", cfg, "--at", "2025-99-01")
    assert p.returncode == 2 and "'2025-99-01' is not a date" in p.stderr


def test_sql_help_names_every_documented_view():
    from policywatch.storage.roles import ANALYST_VIEWS

    text = " ".join(cli("sql", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert [v for v in ANALYST_VIEWS if v not in text] == []


@pytest.mark.parametrize(
    "value, zone, as_of, expected",
    [
        # a plain date: its start for "since", its end for "as of", in the configured zone
        ("2026-12-05", "America/Toronto", False, "2026-12-05T05:00:00+00:00"),
        ("2026-12-05", "America/Toronto", True, "2026-12-06T04:59:59.999999+00:00"),
        ("2026-07-05", "America/Toronto", False, "2026-07-05T04:00:00+00:00"),  # daylight time
        ("2026-12-05", "UTC", True, "2026-12-05T23:59:59.999999+00:00"),
        ("2026-12-05", "Asia/Tokyo", False, "2026-12-04T15:00:00+00:00"),
        # a time without an offset is in the zone; with one it is exact, whatever the zone
        ("2026-12-05T09:30", "America/Toronto", False, "2026-12-05T14:30:00+00:00"),
        ("2026-12-05T09:30-08:00", "America/Toronto", True, "2026-12-05T17:30:00+00:00"),
        ("2026-12-05T09:30Z", "Asia/Tokyo", False, "2026-12-05T09:30:00+00:00"),
    ],
)
def test_one_date_input_policy(value, zone, as_of, expected):
    from datetime import UTC, datetime

    from policywatch.monitor.cli.common import parse_as_of, parse_when

    got = parse_as_of(value, option="--at", zone=zone) if as_of else parse_when(value, zone=zone)
    assert got is not None and got.astimezone(UTC) == datetime.fromisoformat(expected)


def test_a_date_that_does_not_exist_is_a_usage_error():
    from policywatch.monitor.cli.common import CliError, parse_as_of, parse_when

    for call in (lambda: parse_when("2025-99-01"), lambda: parse_as_of("2025-02-30", option="--at")):
        with pytest.raises(CliError) as exc:
            call()
        assert exc.value.code == 2 and "is not a date" in str(exc.value)
