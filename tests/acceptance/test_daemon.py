"""The walking skeleton end to end: the installed ``crosspost`` command, a real
SQLite queue, the daemon in a subprocess, a Mastodon fake and the website feed."""

from __future__ import annotations

import signal
import xml.etree.ElementTree as ET
from datetime import datetime

from tests.acceptance.conftest import SITE, Workspace
from tests.fakes.mastodon import MastodonFake
from tests.fakes.server import FakeRequest, delay

ATOM = "{http://www.w3.org/2005/Atom}"


def _parse(when: str) -> datetime:
    return datetime.fromisoformat(when.replace("Z", "+00:00"))


def test_posts_due_in_the_past_now_and_soon_are_published_once_with_the_link(
    workspace: Workspace, mastodon: MastodonFake
) -> None:
    """Three posts (past, now, in 3 s) are each published exactly once on every
    account with the canonical link; the 3-second one within 1 s of its time;
    SIGTERM then stops the daemon with exit code 0."""
    daemon = workspace.start_daemon()
    workspace.wait_ready(daemon)
    links = {
        "past": f"{SITE}/aktuelles/rueckblick",
        "now": f"{SITE}/aktuelles/heute",
        "soon": f"{SITE}/aktuelles/gleich",
    }
    ids = {}
    for name, at in (("past", "2020-01-01 09:00"), ("now", "now"), ("soon", "+3s")):
        out = workspace.json(
            "enqueue", "--text", f"Beitrag {name}: Grüße aus dem Städtedreieck 👋", "--link",
            links[name], "--at", at,
        )  # fmt: skip
        ids[name] = out[0]["id"]

    mastodon.wait_for(lambda: len(mastodon.statuses) >= 3, timeout=30)
    workspace.wait_until(
        lambda: all(workspace.json("show", str(i))["state"] == "published" for i in ids.values()),
        what="every post to be published",
    )
    for name, link in links.items():
        found = mastodon.statuses_containing(link)
        assert len(found) == 1, f"{name}: {len(found)} statuses carry {link}"
        assert found[0].text.endswith("\n\n" + link)
        assert found[0].text.startswith(f"Beitrag {name}:")
    assert len(mastodon.statuses) == 3

    soon = workspace.json("show", str(ids["soon"]))
    due = _parse(soon["deliveries"][0]["due_at"])
    posts = [
        r for r in mastodon.requests_to("POST /api/v1/statuses") if links["soon"] in r.body.decode()
    ]
    assert len(posts) == 1
    lateness = (posts[0].received_at - due).total_seconds()
    assert -0.01 <= lateness <= 1.0, f"published {lateness:.3f} s after its time"

    feed = ET.parse(workspace.root / "site" / "feed.xml").getroot()
    alternates = [
        link.get("href", "")
        for entry in feed.iter(f"{ATOM}entry")
        for link in entry.iter(f"{ATOM}link")
        if link.get("rel") == "alternate"
    ]
    assert sorted(alternates) == sorted(links.values())

    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0
    assert workspace.json("status")["daemons"] == []


def test_sigkill_with_a_request_in_flight_then_restart_leaves_exactly_one_status(
    workspace: Workspace, mastodon: MastodonFake
) -> None:
    """The daemon is killed while Mastodon is still processing the status; the
    restarted daemon takes over at once, finds or safely re-sends it, and the
    instance ends with exactly one copy."""
    link = f"{SITE}/aktuelles/absturz"
    mastodon.inject(delay(3, apply=True), route="POST /api/v1/statuses")
    post = workspace.json("enqueue", "--text", "Ein Beitrag, der nur einmal erscheinen darf.",
                          "--link", link, "--to", "mastodon")[0]["id"]  # fmt: skip
    first = workspace.start_daemon()
    mastodon.wait_for(lambda: len(mastodon.requests_to("POST /api/v1/statuses")) == 1, timeout=30)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)

    second = workspace.start_daemon()
    workspace.wait_until(
        lambda: workspace.json("show", str(post))["state"] == "published",
        what="the post to be published after the restart",
    )
    shown = workspace.json("show", str(post))
    assert shown["deliveries"][0]["remote_id"] is not None
    outcomes = [a["outcome"] for a in shown["attempts"]]
    assert outcomes[0] == "crashed", outcomes
    assert outcomes[-1] in ("found", "published"), outcomes

    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0

    # The first, delayed request lands too (its answer goes nowhere): wait until
    # the fake has processed every create, then count the copies.
    def creates() -> list[FakeRequest]:
        return mastodon.requests_to("POST /api/v1/statuses")

    assert mastodon.wait_for(lambda: all(r.status is not None for r in creates()), timeout=15)
    assert len(mastodon.statuses_containing(link)) == 1
