"""A pass whose fetches all failed says so first — in the run output, the report, the site and the operator's
alert — and lists the discovery sources that failed. It never reads like a quiet night."""

from __future__ import annotations

from tests.conftest import policywatch, scripted_server
from tests.smtp_server import SmtpSink, free_port


def test_a_pass_where_nothing_could_be_fetched_says_so_first(write_config, tmp_path):
    dead = free_port()  # nothing listens here: every fetch is refused

    def feed(path: str):
        return 500, {"Content-Type": "text/plain"}, b"Internal Server Error"

    with scripted_server(feed) as feed_port, SmtpSink() as smtp:
        watches = "\n".join(
            f'[[watch]]\nurl = "http://127.0.0.1:{dead}/en/page-{i}.html"\n' for i in range(3)
        )
        cfg = write_config(
            f"""[crawl]
allowed_domains = ["127.0.0.1:{dead}", "127.0.0.1:{feed_port}"]
download_delay = 0
autothrottle = false
retries = 0
obey_robots = false
timeout = 5

[discovery]
feeds = ["http://127.0.0.1:{feed_port}/news/feed.atom"]

[mail]
host = "127.0.0.1"
port = {smtp.port}
sender = "policywatch@example.org"
operator = "ops@example.org"
timeout = 5

{watches}"""
        )
        p = policywatch("run", "--config", str(cfg), "--quiet")
        messages = smtp.parsed()
    assert p.returncode == 0, p.stderr
    first = p.stderr.strip().splitlines()[0]
    assert first.startswith("policywatch: run 1: No page could be fetched (3 of 3 failed:"), p.stderr
    assert "refused" in first.lower() and "discovery source failed (feed" in first
    assert p.stdout.startswith("run 1: 3 fetched, 0 new, 0 changed, 0 unchanged, 3 failed")

    report = (tmp_path / "reports" / "run-1.md").read_text(encoding="utf-8")
    assert report.splitlines()[0].startswith("# policywatch — run 1: No page could be fetched (3 of 3 failed")
    assert "No changes since the previous pass" not in report
    assert f"discovery source failed: feed <http://127.0.0.1:{feed_port}/news/feed.atom>" in report
    html = (tmp_path / "reports" / "run-1.html").read_text(encoding="utf-8")
    assert '<p class="failure"><strong>No page could be fetched (3 of 3 failed' in html
    index = (tmp_path / "reports" / "site" / "index.html").read_text(encoding="utf-8")
    assert "Last pass (run 1," in index and "No page could be fetched" in index
    assert "No changes recorded yet." not in index
    ops = [m for m in messages if "ops@example.org" in m["To"]]
    assert ops and "3 of 3 fetches failed — No page could be fetched" in ops[0].get_content()
