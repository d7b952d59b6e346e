"""The outbox protocol, SMTP security paths and digest composition, against a real SMTP server (aiosmtpd) and
the real history database (SQLite and PostgreSQL). Changes are written straight into storage, so each case is
fast and exact; tests/test_digest_e2e.py drives the same code through real passes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from policywatch.monitor.config import ConfigError, parse_config
from policywatch.monitor.config.ops import MailSettings, Subscriber
from policywatch.reports.digest import collapse, compose, render_text
from policywatch.reports.mail import SendError, send_message
from policywatch.reports.outbox import Outbox
from policywatch.storage import open_database
from policywatch.storage import queries as q
from policywatch.storage.models import Change, Digest, DigestItem
from policywatch.storage.types import utcnow
from tests.smtp_server import SmtpSink, free_port, make_cert

TOPICS = {"innovation-stream": "Innovation Stream", "fees": "Fees"}


def _mail(port: int, **kw) -> MailSettings:
    return MailSettings(
        host="127.0.0.1", port=port, sender="policywatch <alerts@policywatch.test>", timeout=5, **kw
    )


def _night(db, specs: list[tuple[str, str, list[str]]], *, released: bool = False) -> list[int]:
    """One finished run with a change per (url, significance, topics) spec; returns the change ids."""
    ids = []
    with db.session() as s:
        run = q.open_run(s)
        for url, sig, topics in specs:
            page, _ = q.get_or_create_page(s, url, url, source="watch", topics=topics)
            c = Change(
                page_id=page.id,
                run_id=run.id,
                detected_at=utcnow(),
                kind="changed",
                significance=sig,
                topics=topics,
                details_released=released,
                url=url,
                title=f"Page {url[-6:]}",
                summary=f"{url} changed",
                details={
                    "blocks": [
                        {"op": "added", "section": ["Fees"], "text": f"New text <b>{run.id}</b>", "index": 0}
                    ]
                },
            )
            s.add(c)
            s.flush()
            ids.append(c.id)
        q.finish_run(s, run.id, "completed")
    return ids


@pytest.fixture
def db(db_url):
    database = open_database(db_url)
    yield database
    database.dispose()


def _box(db, mail, **kw) -> Outbox:
    return Outbox(db, mail, base_url="https://r.example.org/", topic_names=TOPICS, **kw)


def test_refused_digest_is_folded_into_the_next_one(db):
    """Server down → failed; next delivery with new changes → ONE digest covering both nights, old one
    superseded."""
    alice = Subscriber("alice@example.org")
    port = free_port()
    box = _box(db, _mail(port))
    _night(db, [("https://x/base01", "low", [])])  # before alice subscribed: never sent to her
    box.deliver([alice])  # registers alice at the current top
    first = _night(db, [("https://x/page01", "high", ["fees"])])
    report = box.deliver([alice])  # nothing listens on `port`
    assert report.failed and not report.sent
    second = _night(db, [("https://x/page02", "medium", []), ("https://x/page01", "low", ["fees"])])
    with SmtpSink(port=port) as sink:
        report = box.deliver([alice])
    assert len(sink.messages) == 1 and report.sent
    text = sink.parsed()[0].get_body(("plain",)).get_content()
    assert "changed 2 times since" in text  # page01 changed on both nights: one entry
    with db.session() as s:
        rows = {d.status: d for d in s.scalars(select(Digest))}
        assert set(rows) == {"sent", "superseded"}
        items = sorted(i.change_id for i in s.scalars(select(DigestItem)))
        assert items == sorted(first + second)  # every change once, none from before she subscribed
        assert rows["sent"].range_from < first[0] and rows["sent"].range_to == max(second)
        assert sink.parsed()[0]["Message-ID"] == rows["sent"].message_id


def test_unknown_fate_resends_the_same_bytes(db):
    """The connection drops while DATA is in flight: the fate is unknown, so the same bytes go again next
    time."""
    alice = Subscriber("alice@example.org")
    sink = SmtpSink()
    box = _box(db, _mail(sink.port))
    box.deliver([alice])
    _night(db, [("https://x/page01", "high", [])])

    def drop(envelope):
        raise ConnectionResetError("simulated: the reply never reaches the client")

    sink.on_data = None
    with sink:
        import asyncio

        async def handle_DATA(server, session, envelope):  # the server queues it, then the connection dies
            sink.messages.append(
                (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
            )
            server.transport.close()
            await asyncio.sleep(0.2)
            return "250 ok"

        original = sink.handle_DATA
        sink.handle_DATA = handle_DATA  # type: ignore[method-assign]
        report = box.deliver([alice])
        assert report.pending and not report.failed and not report.sent
        sink.handle_DATA = original  # type: ignore[method-assign]
        _night(db, [("https://x/page02", "high", [])])  # a later change does not jump the queue
        report = box.deliver([alice])
    raws = [raw for _f, _r, raw in sink.messages]
    assert len(raws) == 3 and raws[0] == raws[1] and raws[2] != raws[0]
    ids = [m["Message-ID"] for m in sink.parsed()]
    assert ids[0] == ids[1] != ids[2]
    with db.session() as s:
        assert [(d.status, d.attempts) for d in s.scalars(select(Digest).order_by(Digest.id))] == [
            ("sent", 2),
            ("sent", 1),
        ]


def test_topics_significance_heartbeat_and_weekly(db):
    now = [utcnow()]
    subs = [
        Subscriber("inno@example.org", topics=("innovation-stream",), heartbeat=True),
        Subscriber("big@example.org", min_significance="high"),
        Subscriber("weekly@example.org", frequency="weekly"),
    ]
    with SmtpSink() as sink:
        box = _box(db, _mail(sink.port), now=lambda: now[0])
        box.deliver(subs)
        assert [m["To"] for m in sink.parsed()] == []  # no pass yet: not even a heartbeat
        _night(db, [("https://x/fees01", "medium", ["fees"])])
        box.deliver(subs)
        box.deliver(subs)  # a second delivery for the same pass: no second heartbeat
        got = [(m["To"], m["Subject"]) for m in sink.parsed()]
        assert got == [("inno@example.org", "policywatch: no changes (pass 1)")]
        sink.messages.clear()
        _night(db, [("https://x/inno01", "low", ["innovation-stream"])], released=True)
        _night(db, [("https://x/big001", "high", [])])
        box.deliver(subs)
        got = {m["To"]: m["Subject"] for m in sink.parsed()}
        # "details released" reaches the topic's subscriber and, despite min_significance, everyone
        assert got == {
            "inno@example.org": "Innovation Stream: details released · 1 change",
            "big@example.org": "Innovation Stream: details released · 2 changes",
        }
        sink.messages.clear()
        now[0] += timedelta(days=7)
        box.deliver(subs)
        got = {m["To"]: m["Subject"] for m in sink.parsed()}
        assert list(got) == [
            "inno@example.org",
            "weekly@example.org",
        ]  # inno: heartbeat; weekly: a week's worth
        assert got["weekly@example.org"] == "Innovation Stream: details released · 3 changes"


def test_starttls_with_login_from_environment(tmp_path, db, monkeypatch):
    cert, key = make_cert(tmp_path)
    mail = _mail(
        free_port(),
        security="starttls",
        username_env="PW_TEST_SMTP_USER",
        password_env="PW_TEST_SMTP_PASS",
        ca_file=cert,
    )
    monkeypatch.setenv("PW_TEST_SMTP_USER", "digest-bot")
    monkeypatch.setenv("PW_TEST_SMTP_PASS", "s3cret-Pa55")
    with SmtpSink(port=mail.port, starttls=(cert, key), credentials=("digest-bot", "s3cret-Pa55")) as sink:
        send_message(
            mail,
            b"Subject: t\r\nMessage-ID: <1@x>\r\n\r\nhello\r\n",
            "alerts@policywatch.test",
            ["a@example.org"],
        )
        assert sink.logins == ["digest-bot"] and len(sink.messages) == 1
        monkeypatch.setenv("PW_TEST_SMTP_PASS", "wrong-Pa55")
        alice = Subscriber("alice@example.org")
        box = _box(db, mail)
        box.deliver([alice])
        _night(db, [("https://x/page01", "high", [])])
        report = box.deliver([alice])
        assert report.failed and "refused the login" in report.failed[0][1]
        with db.session() as s:
            errors = [d.last_error for d in s.scalars(select(Digest))]
        assert errors and not any("Pa55" in (e or "") for e in errors)  # the secret is never stored
        monkeypatch.delenv("PW_TEST_SMTP_PASS")
        with pytest.raises(SendError, match="PW_TEST_SMTP_PASS is not set") as exc:
            send_message(mail, b"x", "alerts@policywatch.test", ["a@example.org"])
        assert exc.value.definite


def test_implicit_tls_and_untrusted_certificate(tmp_path):
    cert, key = make_cert(tmp_path)
    with SmtpSink(implicit_tls=(cert, key)) as sink:
        send_message(
            _mail(sink.port, security="ssl", ca_file=cert),
            b"Subject: t\r\n\r\nhi\r\n",
            "a@policywatch.test",
            ["b@example.org"],
        )
        assert len(sink.messages) == 1
        with pytest.raises(SendError) as exc:  # the system CAs do not know our relay: refuse, definitely
            send_message(
                _mail(sink.port, security="ssl"),
                b"Subject: t\r\n\r\nhi\r\n",
                "a@policywatch.test",
                ["b@example.org"],
            )
        assert exc.value.definite and "CERTIFICATE_VERIFY_FAILED" in str(exc.value)
        assert len(sink.messages) == 1
    with SmtpSink() as plain:  # starttls demanded, server does not offer it: never send in clear
        with pytest.raises(SendError, match="does not offer STARTTLS"):
            send_message(
                _mail(plain.port, security="starttls"), b"x", "a@policywatch.test", ["b@example.org"]
            )
        assert plain.messages == []


def test_scraped_markup_is_inert_in_the_digest(db):
    """Scraped text containing markup is escaped in the HTML part (the browser test renders it too)."""
    _night(db, [("https://x/evil01", "high", [])])
    with db.session() as s:
        changes = list(s.scalars(select(Change)))
        changes[0].summary = 'Fee <script>alert(1)</script> <img src=x onerror="alert(2)">'
        d = compose(changes, Subscriber("a@example.org"), base_url=None, topic_names=TOPICS)
        from policywatch.reports.digest import render_html

        html = render_html(d)
    assert "<script>alert" not in html and "<img src=x" not in html and "&lt;script&gt;" in html
    assert "<b>1</b>" not in html and "&lt;b&gt;1&lt;/b&gt;" in html  # block text too
    assert "alert(1)" in render_text(d)  # plain text is plain text


def test_collapse_keeps_latest_state_and_counts(db):
    a = _night(db, [("https://x/page01", "low", [])])
    b = _night(db, [("https://x/page01", "high", []), ("https://x/page02", "low", [])])
    with db.session() as s:
        entries = collapse(s.scalars(select(Change)))
        assert [(e.times, e.latest.id, e.significance) for e in entries] == [
            (2, b[0], "high"),
            (1, b[1], "low"),
        ]
        assert entries[0].first.id == a[0]


@pytest.mark.parametrize(
    "body, message",
    [
        ('[[subscriber]]\nemail = "a@example.org"\n', "[mail] is missing"),
        ('[mail]\nhost = "h"\n[[subscriber]]\nemail = "not-an-address"\n', "subscriber[0].email"),
        (
            '[mail]\nhost = "h"\n[[subscriber]]\nemail = "a@example.org"\ntopics = ["nope"]\n',
            "unknown topic 'nope'",
        ),
        (
            '[mail]\nhost = "h"\n[[subscriber]]\nemail = "a@example.org"\nfrequency = "daily"\n',
            "nightly or weekly",
        ),
        ('[mail]\nhost = "h"\nusername_env = "bob"\npassword_env = "hunter2!"\n', "never the secret itself"),
        ('[mail]\nhost = "h"\nsecurity = "tls"\n', "none, starttls or ssl"),
        ('[mail]\nhost = "h"\npassword = "x"\n', "mail.password: unknown key"),
    ],
)
def test_mail_config_errors(body, message):
    import tomllib

    data = tomllib.loads('[crawl]\nallowed_domains = ["www.canada.ca"]\n' + body)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_config(data, Path("/tmp/x.toml"))
