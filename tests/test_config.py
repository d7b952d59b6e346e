"""Configuration: loading, validation with messages that name the key, and the lookup order."""

from __future__ import annotations

from pathlib import Path

import pytest

from policywatch.monitor.config import ConfigError, load_config, parse_config

GOOD = """
[storage]
url = "sqlite:///data/pw.db"
[crawl]
allowed_domains = ["www.canada.ca", "127.0.0.1:8080"]
[[watch]]
url = "https://www.canada.ca/en/immigration-refugees-citizenship/news.html"
topics = ["innovation-stream", "news"]
[topics.innovation-stream]
keywords = ["Tech Talent Strategy"]
[reports]
dir = "out"
"""


def test_good_config_and_relative_paths(tmp_path: Path):
    p = tmp_path / "pw.toml"
    p.write_text(GOOD)
    cfg = load_config(p)
    assert cfg.storage_url == f"sqlite:///{tmp_path / 'data' / 'pw.db'}"
    assert cfg.reports_dir == tmp_path / "out"
    assert cfg.watches[0].topics == ("innovation-stream", "news")
    # the built-in rule keeps its keywords; the user's table adds to them
    assert cfg.topics["innovation-stream"].keywords[:3] == (
        "Innovation Stream",
        "Global Hypergrowth Project",
        "C88",
    )
    assert "Tech Talent Strategy" in cfg.topics["innovation-stream"].keywords
    assert cfg.topics["innovation-stream"].display == "Innovation Stream"
    assert cfg.topics["news"].display == "News"  # a topic needs no table


def test_env_var_and_default_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    p = tmp_path / "elsewhere.toml"
    p.write_text(GOOD)
    monkeypatch.setenv("POLICYWATCH_CONFIG", str(p))
    assert load_config(None).path == p
    monkeypatch.delenv("POLICYWATCH_CONFIG")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ConfigError, match=r"config file not found: policywatch.toml \(run `policywatch init`"
    ):
        load_config(None)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[crawl]\nallowed_domains = ['a.ca']\n[storge]\nurl='x'", r"storge: unknown section"),
        ("[crawl]\nallowed_domain = ['a.ca']", r"crawl.allowed_domain: unknown key"),
        ("[storage]\nurl='x'", r"storage.url: 'x' is not an SQLAlchemy URL"),
        ("[crawl]\nallowed_domains = 'a.ca'", r"crawl.allowed_domains: expected list"),
        ("[crawl]\nallowed_domains = []", r"crawl.allowed_domains: empty"),
        ("[crawl]\nallowed_domains = ['a.ca:99999']", r"crawl.allowed_domains\[0\]: .*invalid port"),
        ("[crawl]\nallowed_domains = ['a.ca']\nmax_size_mb = 1", r"crawl.max_size_mb: must be at least 10"),
        (
            "[crawl]\nallowed_domains = ['a.ca']\ndownload_delay = true",
            r"crawl.download_delay: expected a number",
        ),
        ("[crawl]\nallowed_domains = ['a.ca']\n[[watch]]\ntopics=['x']", r"watch\[0\].url: missing"),
        # a source table's own key is named, not "expected str" for the table as a whole
        (
            "[crawl]\nallowed_domains = ['a.ca']\n[discovery]\n"
            "feeds = [{ url = 'https://a.ca/f', entries = 'issue' }]",
            r"discovery.feeds\[0\].entries: 'issue' is not pages or issues",
        ),
        (
            "[crawl]\nallowed_domains = ['a.ca']\n[discovery]\n"
            "feeds = [{ url = 'https://a.ca/f', max_issues = 0 }]",
            r"discovery.feeds\[0\].max_issues: must be at least 1",
        ),
        (
            "[crawl]\nallowed_domains = ['a.ca']\n[discovery]\nfeeds = [5]",
            r"discovery.feeds\[0\]: expected str",
        ),
        (
            "[crawl]\nallowed_domains = ['a.ca']\n[[watch]]\nurl='https://evil.example/x'",
            r"watch\[0\].url: .* outside crawl.allowed_domains",
        ),
        (
            "[crawl]\nallowed_domains = ['a.ca']\n[[watch]]\nurl='ftp://a.ca/x'",
            r"watch\[0\].url: .*not http/https",
        ),
        (
            "[crawl]\nallowed_domains = "
            "['a.ca']\n[[watch]]\nurl='https://a.ca/x'\n[[watch]]\nurl='https://A.ca/x#frag'",
            r"watch\[1\].url: .* listed twice",
        ),
        (
            "[crawl]\nallowed_domains = ['a.ca']\n[[watch]]\nurl='https://a.ca/x'\ntopics='t'",
            r"watch\[0\].topics: expected list",
        ),
        (
            "[crawl]\nallowed_domains = ['a.ca']\n[discovery]\nfollow_prefixes=['https://b.ca/']",
            r"discovery.follow_prefixes\[0\]: .* outside",
        ),
        (
            "[crawl]\nallowed_domains = ['a.ca']\n[discovery]\nfeeds=['https://api.io.canada.ca/x']",
            r"discovery.feeds\[0\]: .* outside",
        ),
        ("[crawl]\nallowed_domains = ['a.ca']\n[topics.x]\nkeyword=['y']", r"topics.x.keyword: unknown key"),
        ("", r"crawl.allowed_domains: missing"),
        (
            "[crawl]\nallowed_domains = ['a.ca']\n[[rules.drop]]\nselector = '..x'",
            r"rules.drop\[0\].selector: invalid CSS selector",
        ),
        (
            "[crawl]\nallowed_domains = ['a.ca']\n[[rules.ignore]]\npattern = '(unclosed'",
            r"rules.ignore\[0\].pattern: invalid regular expression",
        ),
        (
            "[crawl]\nallowed_domains = ['a.ca']\n[[rules.ignore]]\nregex = 'x'",
            r"rules.ignore\[0\].regex: unknown key",
        ),
    ],
)
def test_bad_configs_name_the_key(tmp_path: Path, text: str, message: str):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(p)


def test_invalid_toml_says_where(tmp_path: Path):
    p = tmp_path / "broken.toml"
    p.write_text("[crawl\nallowed_domains = 1")
    with pytest.raises(ConfigError, match=r"broken.toml: invalid TOML: .*line 1"):
        load_config(p)


def test_digest_changes_with_settings():
    a = parse_config({"crawl": {"allowed_domains": ["a.ca"]}})
    b = parse_config({"crawl": {"allowed_domains": ["b.ca"]}})
    assert a.digest() != b.digest() and len(a.digest()) == 16


def test_digest_is_the_one_runs_already_recorded(tmp_path):
    """Runs store the config digest; it is computed at parse time now (the parsed TOML is not kept), and must
    stay the value earlier releases recorded for the same file, or every old run would look like another
    config."""
    path = tmp_path / "policywatch.toml"
    path.write_text(
        '[storage]\nurl = "sqlite:///history.db"\n\n[crawl]\nallowed_domains = ["www.canada.ca"]\n\n'
        '[[watch]]\nurl = "https://www.canada.ca/en/immigration-refugees-citizenship.html"\n'
        'topics = ["innovation-stream"]\n',
        encoding="utf-8",
    )
    assert (
        load_config(path).digest() == "6a4235c1154eb485"
    )  # the value the release before this change recorded


def test_the_watch_index_holds_each_url_once():
    """The pass and the crawl hold the whole watchlist (≈ 1 KB a watch over the tree before): the index and
    the crawl's "seen" set reuse the watch's own URL string when it is already normalized, and a Watch has no
    __dict__."""
    from policywatch.monitor.urls import normalize_url

    urls = ["https://www.canada.ca/en/a.html", "HTTPS://WWW.Canada.ca/en/b.html#top"]
    cfg = parse_config({"crawl": {"allowed_domains": ["www.canada.ca"]}, "watch": [{"url": u} for u in urls]})
    keys = list(cfg.watch_keys())
    assert keys == [normalize_url(u) for u in urls] and keys[1] != urls[1]
    assert keys[0] is cfg.watches[0].url  # shared, not a copy
    assert cfg.watch_for(urls[1]) is cfg.watches[1]
    assert not hasattr(cfg.watches[0], "__dict__")


@pytest.mark.parametrize("value", ["5", '"https://www.canada.ca/en/a.html"', "true"])
def test_a_watch_key_of_the_wrong_type_in_a_file_is_a_config_error(tmp_path, value):
    path = tmp_path / "policywatch.toml"
    path.write_text(f'watch = {value}\n[crawl]\nallowed_domains = ["www.canada.ca"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="watch"):
        load_config(path)


def test_page_workers_is_accepted_with_a_warning_and_cluster_is_refused(tmp_path, caplog):
    """Issue 20: existing configs with `page_workers` keep working; `[cluster]` says it was removed and what
    to do."""
    base = '[crawl]\nallowed_domains = ["www.canada.ca"]\n'
    path = tmp_path / "p.toml"
    path.write_text(base.replace("]\n", "]\npage_workers = 4\n", 1), encoding="utf-8")
    with caplog.at_level("WARNING", logger="policywatch.config"):
        config = load_config(path)
    assert "crawl.page_workers is deprecated and ignored" in caplog.text
    assert not hasattr(config.crawl, "page_workers")
    path.write_text(base + '[cluster]\nredis_url = "redis://127.0.0.1:6379/0"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^cluster: the cluster mode .* was removed.*Scaling"):
        load_config(path)


def test_mail_goes_to_an_smtp_server_or_to_an_mbox_file(tmp_path):
    from policywatch.monitor.config import ConfigError, parse_config

    base = {"crawl": {"allowed_domains": ["www.canada.ca"]}}
    cfg = parse_config({**base, "mail": {"mbox": "out/digests.mbox"}}, tmp_path / "pw.toml")
    assert cfg.mail is not None and cfg.mail.mbox == (tmp_path / "out" / "digests.mbox").resolve()
    for mail, says in (({}, "neither"), ({"host": "smtp.example.org", "mbox": "x.mbox"}, "both")):
        with pytest.raises(ConfigError, match=f"mail: set host .* or mbox .*not {says}"):
            parse_config({**base, "mail": mail})
