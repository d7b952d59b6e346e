"""Source packs (`init --list-packs`, `init --pack NAME …`): every pack loads as a config, on the hosts of the
governments it watches, and packs merge into one config with each page once."""

from __future__ import annotations

import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from policywatch.monitor.config import load_config
from policywatch.monitor.config.packs import available
from tests.conftest import cli

PROVINCES = {  # a nominee program's government host → its province or territory
    "www.welcomebc.ca": "BC",
    "www.ontario.ca": "ON",
    "www.alberta.ca": "AB",
    "www.saskatchewan.ca": "SK",
    "immigratemanitoba.com": "MB",
    "liveinnovascotia.com": "NS",
    "www2.gnb.ca": "NB",
    "www.princeedwardisland.ca": "PE",
    "www.gov.nl.ca": "NL",
    "yukon.ca": "YT",
    "www.immigratenwt.ca": "NT",
    "www.quebec.ca": "QC",
}


def test_list_packs_names_each_pack_with_what_it_covers():
    p = cli("init", "--list-packs")
    assert p.returncode == 0, p.stderr
    for name in ("ircc", "tts", "pnp", "gazette"):
        line = next(ln for ln in p.stdout.splitlines() if ln.startswith(name))
        assert "pages" in line and "feeds" in line, line


@pytest.mark.parametrize("name", ["ircc", "tts", "pnp", "gazette"])
def test_each_pack_loads_as_a_config_of_its_own(name, tmp_path: Path):
    path = tmp_path / "policywatch.toml"
    p = cli("init", str(path), "--pack", name)
    assert p.returncode == 0, p.stderr
    cfg = load_config(path)
    assert cfg.watches and all(cfg.allowed.allows(w.url) for w in cfg.watches)
    text = path.read_text(encoding="utf-8")
    blocks = text.split("[[watch]]")[1:]
    assert all(b.lstrip(" ").startswith("#") for b in blocks), "each page says what it is"


def test_the_pnp_pack_covers_the_provinces_on_their_government_hosts(tmp_path: Path):
    path = tmp_path / "pnp.toml"
    assert cli("init", str(path), "--pack", "pnp").returncode == 0
    cfg = load_config(path)
    hosts = {urlsplit(w.url).hostname for w in cfg.watches}
    covered = {PROVINCES[h] for h in hosts if h in PROVINCES}
    assert len(covered - {"QC"}) >= 9 and "QC" in covered, covered
    assert hosts <= set(PROVINCES), hosts - set(PROVINCES)  # nothing but the governments' own sites
    assert cfg.crawl.download_delay >= 2  # small provincial hosts: gently


def test_the_gazette_pack_follows_the_gazette_for_immigration_only(tmp_path: Path):
    path = tmp_path / "gazette.toml"
    assert cli("init", str(path), "--pack", "gazette").returncode == 0
    cfg = load_config(path)
    assert len(cfg.discovery.feeds) == 2
    assert all(urlsplit(u).hostname.endswith("gazette.gc.ca") for u in cfg.discovery.feeds)
    assert all(
        "Immigration and Refugee Protection" in cfg.discovery.keywords_for(u) for u in cfg.discovery.feeds
    )
    assert all(cfg.discovery.issues_read(u) >= 2 for u in cfg.discovery.feeds)  # its entries are issues
    assert all(urlsplit(w.url).hostname.endswith("gazette.gc.ca") for w in cfg.watches)


def test_packs_merge_with_each_page_once(tmp_path: Path):
    path = tmp_path / "all.toml"
    p = cli("init", str(path), "--pack", "tts", "--pack", "ircc", "--pack", "pnp", "--pack", "gazette")
    assert p.returncode == 0, p.stderr
    cfg = load_config(path)
    urls = [w.url for w in cfg.watches]
    assert len(urls) == len(set(urls))
    singles = {
        n: {w["url"] for w in tomllib.loads((tmp_path / f"{n}.toml").read_text())["watch"]}
        for n in ("tts", "ircc", "pnp", "gazette")
        if cli("init", str(tmp_path / f"{n}.toml"), "--pack", n).returncode == 0
    }
    assert set(urls) == set().union(*singles.values())  # every pack's every page, once
    assert set(cfg.topics) >= {"innovation-stream", "express-entry", "pnp", "regulations"}


def test_init_without_a_pack_writes_todays_starter_and_an_unknown_pack_is_named(tmp_path: Path):
    plain = tmp_path / "plain.toml"
    assert cli("init", str(plain)).returncode == 0
    from importlib.resources import files

    starter = files("policywatch.monitor").joinpath("starter.toml").read_text(encoding="utf-8")
    assert plain.read_text(encoding="utf-8") == starter
    bad = cli("init", str(tmp_path / "x.toml"), "--pack", "nosuch")
    assert bad.returncode == 2 and "nosuch" in bad.stderr and "ircc" in bad.stderr
    assert not (tmp_path / "x.toml").exists()


def test_the_tts_pack_is_the_starters_watchlist():
    starter_urls = {
        w["url"]
        for w in tomllib.loads(
            Path(__file__).resolve().parent.parent.joinpath("monitor", "starter.toml").read_text()
        )["watch"]
    }
    assert {w["url"] for w in available()["tts"].watches} == starter_urls
