"""`[crawl] host_delays`: a host that needs a slower pace than download_delay gets it (Scrapy's
DOWNLOAD_SLOTS), and AutoThrottle never speeds it past that floor; the source packs give each provincial host
its pack's pace."""

from __future__ import annotations

import pytest

from policywatch.monitor.config import ConfigError, load_config, parse_config
from policywatch.monitor.demo import NightServer
from tests.conftest import cli, policywatch

PAGE = (
    '<html><head><title>P{n}</title></head><body><main property="mainContentOfPage"><h1>P{n}</h1>'
    "<p>Fee {n}.</p></main></body></html>"
)


def test_a_host_delay_names_an_allowed_domain():
    base = {"crawl": {"allowed_domains": ["www.canada.ca", "www.gov.bc.ca"], "download_delay": 1}}
    cfg = parse_config({"crawl": {**base["crawl"], "host_delays": {"www.gov.bc.ca": 3}}})
    assert cfg.crawl.host_delays == (("www.gov.bc.ca", 3.0),) and cfg.crawl.download_delay == 1.0
    with pytest.raises(
        ConfigError, match=r"crawl\.host_delays\.www\.ontario\.ca: .*not one of crawl\.allowed_domains"
    ):
        parse_config({"crawl": {**base["crawl"], "host_delays": {"www.ontario.ca": 3}}})
    with pytest.raises(ConfigError, match=r"host_delays"):
        parse_config({"crawl": {**base["crawl"], "host_delays": {"www.gov.bc.ca": -1}}})


def test_packs_give_each_host_its_packs_pace(tmp_path):
    target = tmp_path / "policywatch.toml"
    p = cli("init", "--pack", "ircc", "--pack", "pnp", "--pack", "gazette", str(target))
    assert p.returncode == 0, p.stderr
    crawl = load_config(target).crawl
    delays = dict(crawl.host_delays)
    assert crawl.download_delay == 1.0  # canada.ca's pace, not the slowest pack's
    assert delays["www.ontario.ca"] == 3.0 and delays["www.gazette.gc.ca"] == 2.0
    assert "www.canada.ca" not in delays


@pytest.mark.slow
def test_a_slower_host_keeps_its_pace_under_autothrottle(write_config):
    with NightServer() as server:
        server.pages = {f"/p{n}.html": (PAGE.format(n=n).encode(), "text/html") for n in range(4)}
        fast, slow = f"127.0.0.1:{server.port}", f"localhost:{server.port}"  # two hosts, one loopback server
        watches = "".join(
            f'[[watch]]\nurl = "http://{host}/p{n}.html"\n' for host in (fast, slow) for n in range(4)
        )
        cfg = write_config(
            f"""
[crawl]
allowed_domains = ["{fast}", "{slow}"]
download_delay = 0
autothrottle = true
retries = 0

[crawl.host_delays]
"{slow}" = 0.6

{watches}"""
        )
        p = policywatch("run", "--config", str(cfg))
        assert p.returncode == 0, p.stderr
        times = {
            host: [t for t, h, path in server.arrivals if h == host and path.startswith("/p")]
            for host in (fast, slow)
        }
    assert len(times[slow]) == 4 and len(times[fast]) == 4, server.arrivals
    gaps = {host: [b - a for a, b in zip(ts, ts[1:], strict=False)] for host, ts in times.items()}
    assert min(gaps[slow]) >= 0.55, gaps  # its own pace, every time (AutoThrottle would have sped it up)
    assert min(gaps[fast]) < min(gaps[slow]), (
        gaps
    )  # the other host is not held to it (AutoThrottle speeds it up)
