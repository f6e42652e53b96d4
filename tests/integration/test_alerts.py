"""Alerts by e-mail against a real SMTP server (aiosmtpd on 127.0.0.1, STARTTLS, AUTH)
and a real database (SQLite and PostgreSQL): which events mail, at most one mail per
event kind and account per throttle window -- across restarts and several daemons --,
nothing lost while the mail server is down, the daily digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.contract.test_store import NOW, claim, enqueue, only
from tests.rawsettings import settings_from
from tests.smtpfixture import SmtpServer

from crosspost.alerts import Alerts
from crosspost.config import Settings
from crosspost.models import DeliveryState
from crosspost.store.sql import SqlStore

SITE = "https://www.zv-staedtedreieck.de"


def settings_for(smtp: SmtpServer, **alerts: Any) -> Settings:
    return settings_from(
        site={"url": SITE, "name": "Zweckverband Städtedreieck", "timezone": "Europe/Berlin"},
        accounts={
            "mastodon": {"platform": "mastodon", "base_url": "https://social.example"},
            "bluesky": {"platform": "bluesky", "handle": "zv.example"},
            "website": {"platform": "feed", "path": "site"},
        },
        smtp=smtp.settings().model_dump(),
        alerts={"to": ["admin@example.de"], **alerts},
    )


def fail(store: SqlStore, account: str = "mastodon", *, title: str = "Weihnachtsmarkt") -> int:
    """Enqueue a post for ``account`` and let its delivery fail for good; the post id."""
    post_id = enqueue(store, account, title=title)
    claimed = only([d for d in claim(store) if d.post_id == post_id])
    attempt = store.start_attempt(claimed, now=NOW)
    assert attempt is not None
    assert store.settle(
        claimed, DeliveryState.FAILED, now=NOW, error="Validation failed: Text too long"
    )
    return post_id


def test_a_failed_delivery_mails_the_admin_once(
    sql_store: SqlStore, smtp_server: SmtpServer
) -> None:
    """A delivery that fails for good mails the admins over STARTTLS with login; the
    mail names the account, the post and the platform's reason; a second round mails
    nothing more."""
    alerts = Alerts(settings_for(smtp_server), sql_store)
    post_id = fail(sql_store)
    done = alerts.run(NOW + timedelta(minutes=1))
    assert (done.found, done.mailed) == (1, 1)
    [received] = smtp_server.wait_for(1)
    assert received.tls
    assert received.authenticated
    assert received.rcpt_tos == ["admin@example.de"]
    message = received.message
    assert "delivery failed on mastodon" in message["Subject"]
    assert "Zweckverband Städtedreieck" in message["Subject"]
    body = message.get_content()
    assert f'post {post_id} "Weihnachtsmarkt": Validation failed: Text too long' in body
    assert "crosspost retry ID" in " ".join(body.split())  # the advice, wrapped at 72
    again = alerts.run(NOW + timedelta(minutes=2))
    assert (again.found, again.mailed) == (0, 0)
    assert len(smtp_server.messages) == 1


def test_at_most_one_mail_per_kind_and_account_per_hour(
    sql_store: SqlStore, smtp_server: SmtpServer
) -> None:
    """Failures within the hour wait and go out together in the next mail; another
    account or another kind has its own window."""
    alerts = Alerts(settings_for(smtp_server), sql_store)
    fail(sql_store, title="Erster")
    alerts.run(NOW + timedelta(minutes=1))
    fail(sql_store, title="Zweiter")
    fail(sql_store, title="Dritter")
    fail(sql_store, "bluesky", title="Bluesky-Post")
    held = alerts.run(NOW + timedelta(minutes=30))
    assert held.found == 3
    assert held.mailed == 1  # bluesky's own window
    subjects = [m["Subject"] for m in smtp_server.messages]
    assert len(subjects) == 2
    assert "on bluesky" in subjects[1]
    later = alerts.run(NOW + timedelta(minutes=62))
    assert later.mailed == 1
    third = smtp_server.messages[2]
    assert "on mastodon (2)" in third["Subject"]
    assert '"Zweiter"' in third.get_content()
    assert '"Dritter"' in third.get_content()
    assert '"Erster"' not in third.get_content()


def test_the_throttle_holds_across_restarts_and_daemons(
    sql_store: SqlStore, smtp_server: SmtpServer
) -> None:
    """The window lives in the database: a restarted daemon (a new Alerts) and a second
    daemon on the same database send nothing within the hour; an event found by both is
    stored and mailed once."""
    settings = settings_for(smtp_server)
    first = Alerts(settings, sql_store)
    fail(sql_store, title="Erster")
    first.run(NOW + timedelta(minutes=1))
    fail(sql_store, title="Zweiter")
    second_store = SqlStore(sql_store.url, db_clock=False)
    try:
        restarted = Alerts(settings, sql_store)
        other_daemon = Alerts(settings, second_store)
        a = restarted.run(NOW + timedelta(minutes=5))
        b = other_daemon.run(NOW + timedelta(minutes=5))
        assert a.found + b.found == 1
        assert a.mailed + b.mailed == 0
        c = other_daemon.run(NOW + timedelta(minutes=61))
        d = restarted.run(NOW + timedelta(minutes=61))
        assert c.mailed + d.mailed == 1
    finally:
        second_store.close()
    assert len(smtp_server.messages) == 2


def test_nothing_is_lost_while_the_mail_server_refuses(
    sql_store: SqlStore, smtp_server: SmtpServer
) -> None:
    """A refused mail gives the window back: the next round sends the same events."""
    alerts = Alerts(settings_for(smtp_server), sql_store)
    post_id = fail(sql_store)
    smtp_server.reject = "451 try again later"
    refused = alerts.run(NOW + timedelta(minutes=1))
    assert (refused.mailed, refused.failed_mails) == (0, 1)
    smtp_server.reject = None
    retried = alerts.run(NOW + timedelta(minutes=2))
    assert retried.mailed == 1
    [received] = smtp_server.wait_for(1)
    assert f"post {post_id}" in received.message.get_content()


def test_unknown_paused_token_and_late_events(sql_store: SqlStore, smtp_server: SmtpServer) -> None:
    """Each kind mails its own message with its own advice: an unknown outcome (not
    while the daemon may still settle it), a paused account, an expiring token, a late
    delivery (not for a paused account)."""
    settings = settings_for(smtp_server, late_minutes=15, token_expiry_days=14)
    alerts = Alerts(settings, sql_store)
    # unknown: a request in flight when its worker died, reaped
    unknown_post = enqueue(sql_store, "website", title="Ungewiss")
    claimed = only([d for d in claim(sql_store) if d.post_id == unknown_post])
    assert sql_store.start_attempt(claimed, now=NOW) is not None
    assert sql_store.reap_expired(now=NOW + timedelta(minutes=2)) == 1
    sql_store.pause_account("bluesky", "401 invalid app password", now=NOW)
    sql_store.set_token_expiry("mastodon", NOW + timedelta(days=3), now=NOW)
    late_post = enqueue(sql_store, "mastodon", title="Verspätet", due_at=NOW)
    enqueue(sql_store, "bluesky", title="Wartet auf Bluesky", due_at=NOW)

    fresh = alerts.run(NOW + timedelta(minutes=3))
    kinds = sorted(m["Subject"].split(": ", 1)[1] for m in smtp_server.messages)
    assert kinds == ["account paused on bluesky", "token expires soon on mastodon"]
    assert fresh.mailed == 2

    later = alerts.run(NOW + timedelta(minutes=20))
    assert later.mailed == 2
    by_subject = {m["Subject"].split(": ", 1)[1]: m.get_content() for m in smtp_server.messages}
    assert '"Ungewiss"' in by_subject["delivery outcome unknown on website"]
    unknown_body = " ".join(by_subject["delivery outcome unknown on website"].split())
    assert "crosspost cancel ID" in unknown_body
    late = by_subject["deliveries late on mastodon"]
    assert f'post {late_post} "Verspätet"' in late
    assert "20 minutes late" in late
    assert "Wartet auf Bluesky" not in "".join(by_subject.values())
    assert "401 invalid app password" in by_subject["account paused on bluesky"]


def test_an_unknown_settled_meanwhile_is_not_mailed(
    sql_store: SqlStore, smtp_server: SmtpServer
) -> None:
    """An unknown found while another mail of its kind holds the window, but settled by
    the daemon before the window opens again, is dropped."""
    alerts = Alerts(settings_for(smtp_server, events=["unknown"]), sql_store)
    posts = [enqueue(sql_store, "website", title=t) for t in ("A", "B")]
    claimed = [d for d in claim(sql_store) if d.post_id in posts]
    for d in claimed:
        assert sql_store.start_attempt(d, now=NOW) is not None
    assert sql_store.reap_expired(now=NOW + timedelta(minutes=2)) == 2
    alerts.run(NOW + timedelta(minutes=5))
    # a third one becomes unknown; then the daemon settles it
    third = enqueue(sql_store, "website", title="C")
    [d] = [d for d in claim(sql_store, now=NOW + timedelta(minutes=5)) if d.post_id == third]
    assert sql_store.start_attempt(d, now=NOW + timedelta(minutes=5)) is not None
    assert sql_store.reap_expired(now=NOW + timedelta(minutes=7)) == 1
    alerts.run(NOW + timedelta(minutes=10))
    [found] = [
        x
        for x in claim(sql_store, now=NOW + timedelta(minutes=11), reconcilable=("feed",))
        if x.post_id == third
    ]
    assert sql_store.settle(found, DeliveryState.PUBLISHED, now=NOW + timedelta(minutes=11))
    alerts.run(NOW + timedelta(minutes=70))
    assert len(smtp_server.messages) == 1
    assert '"C"' not in smtp_server.messages[0].get_content()


def test_daily_digest(sql_store: SqlStore, smtp_server: SmtpServer) -> None:
    """mode = "digest": no immediate mail; one digest a day at digest_time (site time
    zone) of every event since the last one; none when nothing happened."""
    settings = settings_for(smtp_server, mode="digest", digest_time="07:00")
    alerts = Alerts(settings, sql_store)
    # 2026-12-01 08:00 UTC is 09:00 in Berlin: today's digest time has passed
    fail(sql_store, title="Erster")
    fail(sql_store, "bluesky", title="Zweiter")
    first = alerts.run(NOW)
    assert (first.mailed, first.digests) == (0, 1)
    [digest] = smtp_server.wait_for(1)
    assert "daily digest: 2 events" in digest.message["Subject"]
    body = digest.message.get_content()
    assert "mastodon: post" in body
    assert "bluesky: post" in body
    fail(sql_store, title="Dritter")
    assert alerts.run(NOW + timedelta(hours=12)).digests == 0  # not before tomorrow 07:00
    next_morning = datetime(2026, 12, 2, 6, 1, tzinfo=UTC)  # 07:01 in Berlin
    assert alerts.run(next_morning).digests == 1
    assert "daily digest: 1 event" in smtp_server.messages[1]["Subject"]
    assert alerts.run(datetime(2026, 12, 3, 6, 1, tzinfo=UTC)).digests == 0  # nothing new


def test_the_mail_never_contains_a_secret(sql_store: SqlStore, smtp_server: SmtpServer) -> None:
    """A platform message that echoes a registered secret is scrubbed before mailing."""
    from crosspost.observability import register_secret

    register_secret("tok-SECRET-4711")
    post_id = enqueue(sql_store, "mastodon")
    claimed = only(claim(sql_store))
    assert claimed.post_id == post_id
    assert sql_store.settle(
        claimed, DeliveryState.FAILED, now=NOW, error="bad token tok-SECRET-4711"
    )
    Alerts(settings_for(smtp_server), sql_store).run(NOW + timedelta(minutes=1))
    [received] = smtp_server.wait_for(1)
    assert "tok-SECRET-4711" not in received.message.as_string()
    assert smtp_server.password not in received.message.as_string()
