"""Digests end to end: real passes (Scrapy on a loopback site) and a real SMTP server (aiosmtpd) on loopback.

Four nights: a heartbeat, a mail outage, the catch-up digest per subscriber (topics filtered), an operator
alert, and a pass killed (SIGKILL) after the SMTP server took a digest but before it was recorded: the next
`digest send` re-sends the same message (same Message-ID), never a second digest.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess

import pytest

from tests.conftest import BIN, cli, permits_config_body, policywatch
from tests.smtp_server import SmtpSink

pytestmark = pytest.mark.slow

SENDER = "policywatch <alerts@policywatch.test>"


def _config(site, write_config, tmp_path, smtp_port: int) -> str:
    return str(
        write_config(
            f"""
[reports]
dir = "{(tmp_path / "reports").as_posix()}"
base_url = "https://reports.example.org/pw"

[mail]
host = "127.0.0.1"
port = {smtp_port}
sender = "{SENDER}"
operator = "ops@policywatch.test"
timeout = 5

[[subscriber]]
email = "alice@example.org"
name = "Alice Tremblay"

[[subscriber]]
email = "bob@example.org"
topics = ["innovation-stream"]
heartbeat = true

[[subscriber]]
email = "carol@example.org"
topics = ["express-entry"]
"""
            + permits_config_body(site)
        )
    )


def _rows(tmp_path, sql: str) -> list[tuple]:
    con = sqlite3.connect(tmp_path / "history.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _parts(msg) -> dict[str, str]:
    return {p.get_content_type(): p.get_content() for p in msg.walk() if not p.is_multipart()}


def test_four_nights_of_digests(permits_site, write_config, tmp_path):
    sink = SmtpSink()
    cfg = _config(permits_site, write_config, tmp_path, sink.port)

    # night 1: baseline. Only bob, who asked for a heartbeat, hears that nothing changed.
    with sink:
        p = policywatch("run", "--config", cfg)
    assert p.returncode == 0, p.stderr
    assert [m["To"] for m in sink.parsed()] == ["bob@example.org"]
    assert sink.parsed()[0]["Subject"] == "policywatch: no changes (pass 1)"
    sink.messages.clear()

    # night 2: changes, but the mail server is down. The pass still succeeds; the digests are kept as failed.
    permits_site.night(2)
    p = policywatch("run", "--config", cfg)
    assert p.returncode == 0, p.stderr
    assert "FAILED for alice@example.org" in p.stderr
    assert sink.messages == []
    assert {
        r: s for r, s in _rows(tmp_path, "SELECT recipient, status FROM digest_log WHERE run_id = 2")
    } == {"alice@example.org": "failed", "bob@example.org": "failed", "carol@example.org": "failed"}
    assert "alice" not in (tmp_path / "reports" / "run-2.md").read_text()  # reports are not where mail goes
    p = cli("digest", "preview", "--config", cfg, "--subscriber", "alice@example.org")
    assert p.returncode == 0, p.stderr
    assert "$155 -> $230" in p.stdout and "subject: Innovation Stream: details released" in p.stderr

    # night 3: only fetch failures (no change); the server is back: every subscriber gets night 2's changes
    # once, filtered by their topics; the operator (and only the operator) hears that most fetches failed.
    permits_site.night(3)
    with sink:
        p = policywatch("run", "--config", cfg)
    assert p.returncode == 0, p.stderr
    by_to = {m["To"].addresses[0].addr_spec: m for m in sink.parsed()}
    assert set(by_to) == {"alice@example.org", "bob@example.org", "carol@example.org", "ops@policywatch.test"}
    alice = by_to["alice@example.org"]
    assert alice["Subject"] == "Innovation Stream: details released · 4 changes"
    assert alice["To"].addresses[0].display_name == "Alice Tremblay"
    assert alice.get_content_type() == "multipart/alternative"
    parts = _parts(alice)
    assert set(parts) == {"text/plain", "text/html"}
    assert (
        "$155 -> $230" in parts["text/plain"] and "You must have no criminal record." in parts["text/plain"]
    )
    assert '<del style="background:#fbd3d3;">$155</del>' in parts["text/html"]
    assert '<ins style="background:#d4f7d4;text-decoration:none;">$230</ins>' in parts["text/html"]
    assert "https://reports.example.org/pw/changes/" in parts["text/html"]
    # the release ranks first
    assert parts["text/plain"].index("[DETAILS RELEASED]") < parts["text/plain"].index("$155")
    bob_text = _parts(by_to["bob@example.org"])["text/plain"]
    # the release itself and the news hub that now lists it: both carry the innovation-stream topic
    assert by_to["bob@example.org"]["Subject"] == "Innovation Stream: details released · 2 changes"
    assert "$155" not in bob_text and "Innovation Stream" in bob_text
    carol_text = _parts(by_to["carol@example.org"])["text/plain"]
    assert "round 3" in carol_text and "$155" not in carol_text and "DETAILS RELEASED" not in carol_text
    ops = by_to["ops@policywatch.test"]
    assert "pass 3 needs attention" in ops["Subject"] and "fetches failed" in ops.get_content()
    for who in ("alice", "bob", "carol"):
        assert "needs attention" not in by_to[f"{who}@example.org"]["Subject"]
    # the Message-ID on the wire is the one committed to the outbox; nothing new arrived since night 2's
    # refused digests, so each was retried as it was (same coverage, same Message-ID), now sent on its second
    # attempt
    rows = _rows(tmp_path, "SELECT recipient, message_id, status, attempts FROM digest_log WHERE run_id = 2")
    assert {r[0]: r[1:] for r in rows}["alice@example.org"] == (alice["Message-ID"], "sent", 2)
    assert {r[2] for r in rows} == {"sent"}
    sink.messages.clear()

    # the static site and its Atom feed: one entry per change, linked to its diff page
    import xml.etree.ElementTree as ET

    atom = "{http://www.w3.org/2005/Atom}"
    site = tmp_path / "reports" / "site"
    feed = ET.parse(site / "feed.atom").getroot()
    entries = feed.findall(f"{atom}entry")
    assert (
        len(entries) == 4
        and feed.get("{http://www.w3.org/XML/1998/namespace}base") == "https://reports.example.org/pw/"
    )
    for e in entries:
        href = e.find(f"{atom}link[@rel='alternate']").get("href")
        assert (site / href).is_file()
    wp_change = next(
        e for e in entries if "work-permits" in e.find(f"{atom}link[@rel='related']").get("href")
    )
    page = (site / wp_change.find(f"{atom}link[@rel='alternate']").get("href")).read_text()
    assert "Side by side" in page and "<del>$155</del>" in page and "<ins>$230</ins>" in page
    (site / "index.html").unlink()
    p = cli("site", "--config", cfg)
    assert p.returncode == 0 and (site / "index.html").is_file()

    # night 4: study is removed. The pass is killed (SIGKILL) right after the server accepted alice's digest,
    # before the outbox recorded it.
    permits_site.night(4)
    proc = subprocess.Popen(
        [str(BIN / "policywatch"), "run", "--config", cfg],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )

    def crash(envelope):
        if "alice@example.org" in envelope.rcpt_tos:
            os.kill(proc.pid, signal.SIGKILL)

    sink.on_data = crash
    with sink:
        proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL
        assert [r for _f, r, _b in sink.messages] == [["alice@example.org"]]
        first = sink.messages[0][2]
        assert _rows(
            tmp_path,
            "SELECT status FROM digest_log WHERE recipient = 'alice@example.org' "
            "ORDER BY digest_id DESC LIMIT 1",
        ) == [("pending",)]
        sink.on_data = None
        p = cli("digest", "send", "--config", cfg)
        assert p.returncode == 0, p.stderr
        again = [raw for _f, r, raw in sink.messages if r == ["alice@example.org"]]
        assert again == [first, first]  # the same bytes, so the same Message-ID: receivers de-duplicate it
        assert [m["To"] for m in sink.parsed()].count("bob@example.org") == 1  # bob's heartbeat for pass 4
        # and asking again sends nothing more
        n = len(sink.messages)
        p = cli("digest", "send", "--config", cfg)
        assert p.returncode == 0, p.stderr
        assert len(sink.messages) == n

    # never doubled: no change is covered by two Message-IDs for one subscriber; every wanted change was
    # covered
    doubled = _rows(
        tmp_path,
        """SELECT i.subscriber_id, i.change_id, count(DISTINCT d.message_id) FROM digest_items i
           JOIN digests d ON d.id = i.digest_id
           GROUP BY 1, 2 HAVING count(DISTINCT d.message_id) > 1""",
    )
    assert doubled == []
    alice_changes = {
        c
        for (c,) in _rows(
            tmp_path,
            """SELECT i.change_id FROM digest_items i JOIN digests d ON d.id = i.digest_id
        WHERE d.recipient = 'alice@example.org' AND d.status = 'sent'""",
        )
    }
    wanted = {c for (c,) in _rows(tmp_path, "SELECT change_id FROM change_log WHERE run_id > 1")}
    assert alice_changes == wanted and len(wanted) == 5
    assert _rows(
        tmp_path,
        "SELECT attempts, status FROM digest_log WHERE recipient = 'alice@example.org' "
        "ORDER BY digest_id DESC LIMIT 1",
    ) == [(2, "sent")]
