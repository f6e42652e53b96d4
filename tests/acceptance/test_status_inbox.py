"""``crosspost status`` shows the inbox's unanswered interactions per account (count
and the oldest one's age), in words and in ``--json``, on SQLite and PostgreSQL;
``status --check`` does not judge them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.acceptance.conftest import Workspace
from tests.fakes.mastodon import MastodonFake


def publish(ws: Workspace) -> str:
    """Enqueue and publish one post on Mastodon; its status id."""
    [entry] = ws.json("enqueue", "--text", "Baustelle in der Lindenstraße", "--to", "mastodon")
    ws.run("daemon", "--once")
    [delivery] = ws.json("show", str(entry["id"]))["deliveries"]
    assert delivery["state"] == "published"
    return str(delivery["remote_id"])


def test_status_counts_the_unanswered_interactions_and_the_oldest_ones_age(
    workspace: Workspace, mastodon: MastodonFake
) -> None:
    ws = workspace
    with ws.config.open("a", encoding="utf-8") as config:
        config.write("\n[inbox]\nsync_interval = 10\n")
    status_id = publish(ws)
    assert ws.json("status")["open_interactions"] == {}
    assert "inbox of" not in ws.run("status").stdout
    check_before = ws.run("status", "--check", check=False)

    three_hours_ago = datetime.now(UTC) - timedelta(hours=3, minutes=5)
    mastodon.mention("@staedtedreieck Wann ist die Baustelle fertig?", in_reply_to=status_id,
                     at=three_hours_ago)  # fmt: skip
    mastodon.mention("@staedtedreieck Danke für die Info!", in_reply_to=status_id,
                     acct="nachbarin@example.social")  # fmt: skip
    assert ws.json("inbox", "sync")[0]["new"] == 2

    shown = ws.json("status")["open_interactions"]
    assert set(shown) == {"mastodon"}
    assert shown["mastodon"]["count"] == 2
    oldest = datetime.fromisoformat(shown["mastodon"]["oldest_at"])
    assert abs(oldest - three_hours_ago) < timedelta(seconds=1)
    assert 3 * 3600 <= shown["mastodon"]["oldest_age_seconds"] < 4 * 3600
    assert "inbox of mastodon: 2 open interactions" in ws.run("status").stdout
    assert "(3 hours ago)" in ws.run("status").stdout
    # monitoring is not about the inbox: the same answer as before
    check_after = ws.run("status", "--check", check=False)
    assert check_after.returncode == check_before.returncode
    assert "interaction" not in check_after.stdout

    # answered but kept open: no longer waiting for an answer; done: gone
    old, new = sorted(ws.json("inbox", "--open"), key=lambda i: i["created_at"])
    ws.run("inbox", "reply", str(old["id"]), "--text", "Ende Mai.", "--keep-open")
    shown = ws.json("status")["open_interactions"]
    assert shown["mastodon"]["count"] == 1
    assert shown["mastodon"]["oldest_at"] == new["created_at"]
    assert "inbox of mastodon: 1 open interaction," in ws.run("status").stdout
    ws.run("inbox", "done", str(new["id"]))
    assert ws.json("status")["open_interactions"] == {}
