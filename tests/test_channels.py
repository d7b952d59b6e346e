"""Team channels through the real apprise library to loopback receivers: a subscriber with only `notify`
(no e-mail, no [mail]) gets each change once with its fact first, a quiet night posts nothing, a hook that
answers 500 gets the kept message on a later pass, once; `immediate` subscribers hear from job passes; secrets
named by `notify_env` appear in no output, report or table; a long digest fits the service's limit."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from policywatch.monitor.config import ConfigError, parse_config
from tests.conftest import cli, policywatch
from tests.hook_server import hook_server

pytestmark = pytest.mark.slow


def _config(write_config, site, subscribers: str, extra: str = ""):
    return write_config(f"""
[crawl]
allowed_domains = ["{site.host}"]
download_delay = 0
retries = 0
{extra}
[[watch]]
url = "{site.url("/en/work-permits.html")}"
topics = ["work-permits"]
{subscribers}
""")


def _team(write_config, site, hook):
    """A config whose one subscriber, "team", has only a JSON webhook: the loopback `hook`."""
    team = f'[[subscriber]]\nname = "team"\nnotify = ["json://127.0.0.1:{hook.port}/hook"]\n'
    return _config(write_config, site, team)


def _run(cfg, *args: str, env: dict[str, str] | None = None):
    p = policywatch("run", "--config", str(cfg), "--quiet", *args, env=env)
    assert p.returncode == 0, p.stderr
    return p


def test_a_channel_only_subscriber_gets_each_change_once(permits_site, write_config):
    with hook_server() as hook:
        cfg = _team(write_config, permits_site, hook)
        _run(cfg)  # night 1: pages recorded for the first time, nothing to say
        assert hook.posts == []
        permits_site.night(2)
        p = _run(cfg)
        (post,) = hook.wait_for(1)
        assert "sent to team → json://127.0.0.1" in p.stdout
        body = post["body"]
        assert body["title"].startswith("policywatch: 1 change")
        assert body["message"].startswith("- **Fee: $155 → $230"), body  # the fact first
        assert post["headers"].get("X-Policywatch-Message-Id")
        permits_site.night(4)  # the same content: a quiet night
        _run(cfg)
        _run(cfg)
        assert len(hook.posts) == 1


def test_a_hook_that_fails_once_gets_the_kept_message_later_once(permits_site, write_config):
    with hook_server(statuses=[500]) as hook:
        cfg = _team(write_config, permits_site, hook)
        _run(cfg)
        permits_site.night(2)
        p = _run(cfg)  # the pass completes; the message stays in the outbox
        assert "FAILED for team → json://127.0.0.1" in p.stderr and "kept" in p.stderr
        assert [x["status"] for x in hook.wait_for(1)] == [500]
        permits_site.night(4)
        _run(cfg)
        posts = hook.wait_for(2)
        assert posts[1]["status"] == 200 and "$230" in posts[1]["body"]["message"]
        _run(cfg)
        assert len(hook.posts) == 2  # once
    con = sqlite3.connect(Path(cfg).parent / "history.db")
    try:
        rows = con.execute("SELECT recipient, status, attempts FROM digest_log").fetchall()
    finally:
        con.close()
    # the message refused once was the same message sent later: one row, two attempts
    assert len(rows) == 1 and rows[0][0].startswith("team → json://") and rows[0][1:] == ("sent", 2), rows


def test_immediate_subscribers_hear_from_a_job_pass_nightly_ones_wait(permits_site, write_config):
    with hook_server() as hook:
        jobs = f"""
[[schedule.jobs]]
name = "permits"
cron = "0 * * * *"
url_prefixes = ["{permits_site.url("/en/work-permits")}"]
"""
        subs = f"""
[[subscriber]]
name = "now"
frequency = "immediate"
notify = ["json://127.0.0.1:{hook.port}/now"]
[[subscriber]]
name = "tonight"
notify = ["json://127.0.0.1:{hook.port}/tonight"]
"""
        cfg = _config(write_config, permits_site, subs, jobs)
        _run(cfg)
        permits_site.night(2)
        _run(cfg, "--job", "permits")
        assert [p["path"] for p in hook.wait_for(1)] == ["/now"]
        _run(cfg)  # the nightly pass: the change found by the job goes to the nightly subscriber, once
        posts = hook.wait_for(2)
        assert [p["path"] for p in posts] == ["/now", "/tonight"]
        assert "$230" in posts[1]["body"]["message"]


def test_a_secret_named_by_notify_env_appears_nowhere(permits_site, write_config, tmp_path):
    secret = "T000-B000-XXXXsecretXXXX"
    with hook_server() as hook:
        cfg = _config(write_config, permits_site, '[[subscriber]]\nname = "team"\nnotify_env = "TEAM_HOOK"\n')
        env = {"TEAM_HOOK": f"json://127.0.0.1:{hook.port}/hooks/{secret}"}
        outputs = [_run(cfg, env=env)]
        permits_site.night(2)
        outputs.append(_run(cfg, env=env))
        (post,) = hook.wait_for(1)
        assert post["path"] == f"/hooks/{secret}"  # it did reach the secret URL
        outputs.append(cli("status", "--config", str(cfg), env=env))
        outputs.append(cli("sql", "SELECT * FROM digest_log", "--config", str(cfg), env=env))
        assert "$TEAM_HOOK#1" in outputs[1].stdout
        for p in outputs:
            assert secret not in p.stdout + p.stderr
        folder = Path(cfg).parent
        for path in folder.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
        # unset on a later night: said, and nothing is lost
        missing = policywatch("run", "--config", str(cfg), "--quiet", env={"TEAM_HOOK": ""})
        assert missing.returncode == 0 and "notify_env TEAM_HOOK is not set" in missing.stderr


def test_digest_test_says_per_channel_what_happened(write_config, tmp_path):
    with hook_server(statuses=[200, 500]) as hook:
        cfg = write_config(
            f'[crawl]\nallowed_domains = ["www.canada.ca"]\n[[subscriber]]\nname = "team"\n'
            f'notify = ["json://127.0.0.1:{hook.port}/a", "json://127.0.0.1:{hook.port}/b"]\n'
        )
        p = cli("digest", "test", "--config", str(cfg), "--subscriber", "team")
        assert p.returncode == 1, p.stderr
        assert f"sent a test message to json://127.0.0.1:{hook.port}/a" in p.stdout
        assert f"FAILED json://127.0.0.1:{hook.port}/b" in p.stderr
        assert "1 of 2 test message(s) not delivered" in p.stderr
        assert [x["path"] for x in hook.wait_for(2)] == ["/a", "/b"]
        bad = cli("digest", "test", "--config", str(cfg), "--subscriber", "nobody")
        assert bad.returncode == 2 and "known: team" in bad.stderr


@pytest.mark.parametrize(
    "subscriber, key, says",
    [
        ({"name": "x"}, "subscriber[0]", "give email, notify"),
        ({"notify": ["slack://T0/B0/secret"]}, "subscriber[0].notify[0]", "notify_env"),
        ({"notify": ["json://user:pw@127.0.0.1/h"]}, "subscriber[0].notify[0]", "carries a secret"),
        ({"notify": ["nonsense"]}, "subscriber[0].notify[0]", "not an apprise URL"),
        ({"notify_env": "1-BAD"}, "subscriber[0].notify_env", "not an environment variable"),
        ({"email": "a@example.org"}, "subscriber", "[mail] is missing"),
    ],
)
def test_channel_settings_are_checked_with_the_key_named(subscriber, key, says):
    with pytest.raises(ConfigError) as exc:
        parse_config({"crawl": {"allowed_domains": ["www.canada.ca"]}, "subscriber": [subscriber]})
    assert key in str(exc.value) and says in str(exc.value)


def test_a_long_digest_fits_the_services_limit(tmp_path):
    """ntfy takes 7,800 characters: 300 changes become the lines that fit, then "+N more" and the site's link;
    the message goes through apprise to a loopback ntfy server as rendered."""
    from datetime import UTC, datetime

    from policywatch.monitor.config.ops import Subscriber
    from policywatch.reports import channels as team
    from policywatch.reports.digest import compose
    from policywatch.storage.models import Change

    changes = [
        Change(
            id=i,
            page_id=i,
            url=f"https://www.canada.ca/en/p{i}.html",
            title=f"Page {i}",
            kind="changed",
            significance="medium",
            summary=f"Fee: $1{i:03d} → $2{i:03d} (Fees) and a few more words to fill the line {i}",
            topics=[],
            details={},
            details_released=False,
            detected_at=datetime(2026, 12, 5, tzinfo=UTC),
        )
        for i in range(1, 301)
    ]
    digest = compose(changes, Subscriber("", "team"), base_url="https://r.example.org/", topic_names={})
    with hook_server() as hook:
        url = f"ntfy://127.0.0.1:{hook.port}/policywatch"
        message = team.render(digest, url)
        body = json.loads(message)["body"]
        assert len(body) <= 7800 and body.count("\n- ") > 20
        assert body.splitlines()[-1].startswith("+") and "https://r.example.org/index.html" in body
        team.send(team.Channel("team", "ntfy://127.0.0.1/policywatch", url), message, "<m@x>")
        (post,) = hook.wait_for(1)
    received = post["body"]["message"] if isinstance(post["body"], dict) else str(post["body"])
    assert body.strip() in received  # ntfy puts the title above it


def test_a_config_with_channels_only_needs_no_mail_section():
    cfg = parse_config(
        {
            "crawl": {"allowed_domains": ["www.canada.ca"]},
            "subscriber": [{"name": "team", "notify": ["json://127.0.0.1:9/hook"], "frequency": "immediate"}],
        }
    )
    (sub,) = cfg.subscribers
    assert cfg.mail is None and sub.email == "" and sub.owner == "team" and sub.frequency == "immediate"


def test_a_pass_killed_mid_send_sends_the_same_message_again_once(permits_site, write_config):
    """kill -9 while the webhook holds the message: the outbox row stays pending, the next delivery sends the
    same bytes with the same X-Policywatch-Message-Id (the receiver can drop the second), and no more."""
    import os
    import signal
    import subprocess

    from tests.conftest import BIN

    with hook_server() as hook:
        cfg = _team(write_config, permits_site, hook)
        _run(cfg)
        permits_site.night(2)
        proc = subprocess.Popen(
            [str(BIN / "policywatch"), "run", "--config", str(cfg), "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        hook.on_post = lambda _post: os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL
        hook.on_post = None
        (first,) = hook.wait_for(1)
        con = sqlite3.connect(Path(cfg).parent / "history.db")
        try:
            assert con.execute("SELECT status FROM digest_log").fetchall() == [("pending",)]
        finally:
            con.close()
        p = cli("digest", "send", "--config", str(cfg))
        assert p.returncode == 0, p.stderr
        second = hook.wait_for(2)[1]
        key = "X-Policywatch-Message-Id"
        assert second["body"] == first["body"] and second["headers"][key] == first["headers"][key]
        assert cli("digest", "send", "--config", str(cfg)).returncode == 0
        assert len(hook.posts) == 2


def test_a_slack_style_incoming_webhook_gets_markdown(permits_site, write_config):
    """Mattermost's incoming webhooks speak Slack's protocol (POST /hooks/<token>, {"text": …}): the token URL
    comes from the environment, the fact arrives in Markdown."""
    with hook_server() as hook:
        cfg = _config(
            write_config, permits_site, '[[subscriber]]\nname = "desk"\nnotify_env = "DESK_HOOKS"\n'
        )
        env = {"DESK_HOOKS": f"mmost://127.0.0.1:{hook.port}/xoxbTOKEN42"}
        _run(cfg, env=env)
        permits_site.night(2)
        p = _run(cfg, env=env)
        (post,) = hook.wait_for(1)
        assert post["path"] == "/hooks/xoxbTOKEN42" and "sent to desk → $DESK_HOOKS#1" in p.stdout
        assert "**Fee: $155 → $230" in post["body"]["text"]
        assert "xoxbTOKEN42" not in p.stdout + p.stderr


def test_scraped_text_makes_no_link_mention_or_markup_in_a_channel_message():
    """A page that writes "<!channel>", "@everyone" or a Markdown link gets them to the channel as text."""
    from datetime import UTC, datetime

    from policywatch.monitor.config.ops import Subscriber
    from policywatch.reports import channels as team
    from policywatch.reports.digest import compose
    from policywatch.storage.models import Change

    hostile = "Fee: $155 → $230 <!channel> @everyone see [the form](https://evil.example/x) <https://evil.example|ok>"
    change = Change(
        id=1,
        page_id=1,
        url="https://www.canada.ca/en/p.html",
        title="Work permits @here",
        kind="changed",
        significance="medium",
        summary=hostile,
        topics=[],
        details={},
        details_released=False,
        detected_at=datetime(2026, 12, 5, tzinfo=UTC),
    )
    digest = compose([change], Subscriber("", "team"), base_url="https://r.example.org/", topic_names={})
    body = json.loads(team.render(digest, "json://127.0.0.1:9/hook"))["body"]
    assert "<!channel>" not in body and "<https://evil" not in body
    assert "@everyone" not in body and "@here" not in body
    assert "](https://evil" not in body
    assert "[diff](https://r.example.org/changes/1.html)" in body  # policywatch's own link stays a link
    assert "Fee: $155 → $230" in body
