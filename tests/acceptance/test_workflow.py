"""The editorial workflow through the installed ``crosspost`` command (SQLite and
PostgreSQL): four eyes by OS user / ``$SUDO_USER``, unapproved posts whose time
passed, the duplicate guard, quiet hours in ``preview``, ``edit``, recurring
posts made by the daemon, and the audit log."""

from __future__ import annotations

import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from tests.acceptance.conftest import SITE, Workspace
from tests.fakes.mastodon import MastodonFake

from crosspost.store.schema import deliveries, posts

WORKFLOW_CONFIG = """
[approval]
categories = ["stellenangebot"]

[quiet_hours]
veranstaltung = "22:00-06:00"

[recurrence]
horizon_days = 15
"""


def configure(ws: Workspace) -> None:
    with ws.config.open("a", encoding="utf-8") as config:
        config.write(WORKFLOW_CONFIG)


def as_user(ws: Workspace, user: str, *args: str, check: bool = True) -> Any:
    """crosspost run by ``user`` (through sudo, as crosspost sees it: $SUDO_USER)."""
    ws.env["SUDO_USER"] = user
    try:
        return ws.run(*args, check=check)
    finally:
        del ws.env["SUDO_USER"]


def enqueue_id(result: subprocess.CompletedProcess[str]) -> int:
    words = result.stdout.split()
    return int(words[words.index("post") + 1].rstrip(":"))


def actions(ws: Workspace, post_id: int) -> list[tuple[str, str]]:
    return [(e["action"], e["actor"]) for e in ws.json("audit", "--post", str(post_id))]


def test_four_eyes_through_the_cli(workspace: Workspace, mastodon: MastodonFake) -> None:
    configure(workspace)
    made = as_user(workspace, "anna", "enqueue", "--text", "Wir suchen eine Fachkraft.",
                   "--link", f"{SITE}/stellen/1", "--category", "stellenangebot",
                   "--to", "mastodon")  # fmt: skip
    assert "draft" in made.stdout
    post_id = enqueue_id(made)
    drafts = workspace.json("list", "--status", "draft")
    assert [p["id"] for p in drafts] == [post_id]
    assert workspace.run("daemon", "--once").returncode == 0
    assert mastodon.statuses == []  # a draft is never published
    refused = as_user(workspace, "anna", "approve", str(post_id), check=False)
    assert refused.returncode == 1
    assert "another person" in refused.stderr
    as_user(workspace, "bernd", "approve", str(post_id))
    workspace.run("daemon", "--once")
    assert len(mastodon.statuses_containing("Wir suchen eine Fachkraft.")) == 1
    assert actions(workspace, post_id) == [("enqueue", "anna"), ("approve", "bernd")]


def test_an_unapproved_post_whose_time_passed_is_not_published_and_status_says_so(
    workspace: Workspace, mastodon: MastodonFake
) -> None:
    configure(workspace)
    post_id = enqueue_id(
        as_user(workspace, "anna", "enqueue", "--text", "Ausbildung 2027", "--link",
                f"{SITE}/stellen/2", "--category", "stellenangebot", "--at", "+1h")
    )  # fmt: skip
    # an hour passes without anyone approving
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    store = workspace.store()
    try:
        with store.engine.begin() as conn:
            conn.execute(update(deliveries).where(deliveries.c.post_id == post_id)
                         .values(due_at=earlier))  # fmt: skip
            conn.execute(update(posts).where(posts.c.id == post_id).values(publish_at=earlier))
    finally:
        store.close()
    workspace.run("daemon", "--once")
    assert mastodon.statuses == []
    status = workspace.json("status")
    assert [p["post"] for p in status["expired_unapproved"]] == [post_id]
    assert f"post {post_id}" in workspace.run("status").stdout
    assert "not published" in workspace.run("status").stdout
    late = as_user(workspace, "bernd", "approve", str(post_id), check=False)
    assert late.returncode == 1
    assert "reschedule" in late.stderr


def test_duplicate_guard_with_and_without_force(workspace: Workspace) -> None:
    first = enqueue_id(workspace.run("enqueue", "--text", "Hallo", "--link", f"{SITE}/dup"))
    again = workspace.run("enqueue", "--text", "Anders", "--link", f"{SITE}/dup", check=False)
    assert again.returncode == 2
    assert f"post {first}" in again.stderr
    assert len(workspace.json("list")) == 1
    forced = enqueue_id(
        workspace.run("enqueue", "--text", "Anders", "--link", f"{SITE}/dup", "--force")
    )
    assert [a for a, _u in actions(workspace, forced)] == ["enqueue_forced"]


def test_quiet_hours_show_in_preview_and_hold_the_delivery(
    workspace: Workspace, tmp_path: Path
) -> None:
    configure(workspace)
    post = tmp_path / "konzert.md"
    post.write_text(
        f'+++\ntitle = "Konzert"\nlink = "{SITE}/konzert"\ncategory = "veranstaltung"\n'
        'publish_at = 2027-06-10T23:30:00\n+++\nKonzert im Park.\n',
        encoding="utf-8",
    )  # fmt: skip
    preview = workspace.json("preview", str(post))
    # 06:00 CEST the next morning
    assert {p["due_at"] for p in preview} == {"2027-06-11T04:00:00Z"}
    assert "quiet hours" in workspace.run("preview", str(post)).stdout
    post_id = enqueue_id(workspace.run("enqueue", str(post)))
    shown = workspace.json("show", str(post_id))
    assert {d["due_at"] for d in shown["deliveries"]} == {"2027-06-11T04:00:00Z"}


def test_edit_rejects_an_over_long_text_then_applies_a_good_one(
    workspace: Workspace, tmp_path: Path
) -> None:
    post_id = enqueue_id(workspace.run("enqueue", "--text", "Kurz.", "--link", f"{SITE}/e",
                                       "--at", "+2d"))  # fmt: skip
    longer = tmp_path / "longer.sh"
    longer.write_text('#!/bin/sh\nprintf "%0600d\\n" 0 >> "$1"\n', encoding="utf-8")
    longer.chmod(longer.stat().st_mode | stat.S_IXUSR)
    workspace.env["EDITOR"] = str(longer)
    refused = workspace.run("edit", str(post_id), check=False)
    assert refused.returncode == 2
    assert "mastodon" in refused.stderr
    texts = {d["account"]: d for d in workspace.json("show", str(post_id))["deliveries"]}
    assert workspace.json("preview", str(post_id))[0]["text"].startswith("Kurz.")
    workspace.env["EDITOR"] = "sed -i s/Kurz/Knapp/"
    workspace.run("edit", str(post_id))
    after = workspace.json("show", str(post_id))
    assert after["id"] == post_id
    assert {d["account"] for d in after["deliveries"]} == set(texts)
    assert workspace.json("preview", str(post_id))[0]["text"].startswith("Knapp.")
    assert [a for a, _u in actions(workspace, post_id)] == ["enqueue", "edit"]


def test_a_published_post_cannot_be_edited(workspace: Workspace) -> None:
    post_id = enqueue_id(workspace.run("enqueue", "--text", "Jetzt.", "--link", f"{SITE}/p"))
    workspace.run("daemon", "--once")
    workspace.env["EDITOR"] = "true"
    refused = workspace.run("edit", str(post_id), check=False)
    assert refused.returncode == 1
    assert "retract" in refused.stderr


def test_recurring_posts_are_made_by_the_daemon_once_and_cancel_stops_them(
    workspace: Workspace, tmp_path: Path
) -> None:
    configure(workspace)
    post = tmp_path / "wertstoffhof.md"
    post.write_text(
        f'+++\ntitle = "Wertstoffhof"\nlink = "{SITE}/wertstoffhof"\n'
        'repeat = "FREQ=WEEKLY;BYDAY=FR;BYHOUR=8;BYMINUTE=0"\n+++\n'
        "Der Wertstoffhof hat samstags von 9 bis 13 Uhr geöffnet.\n",
        encoding="utf-8",
    )  # fmt: skip
    made = workspace.json("enqueue", str(post))
    assert made[0]["series"] is not None
    assert len(made[0]["ids"]) in (2, 3)  # every Friday within 15 days
    before = workspace.json("list")
    workspace.run("daemon", "--once")
    workspace.run("daemon", "--once")
    after = workspace.json("list")
    assert sorted(p["id"] for p in after) == sorted(p["id"] for p in before)
    [series] = workspace.json("list", "--recurring")
    assert series["state"] == "active"
    assert series["next_post"] in made[0]["ids"]
    for p in after:  # 08:00 Berlin wall time, whatever the season
        local = datetime.fromisoformat(p["publish_at"].replace("Z", "+00:00"))
        assert local.astimezone(ZoneInfo("Europe/Berlin")).hour == 8
    cancelled = workspace.run("cancel", str(series["next_post"]))
    assert "stopped" in cancelled.stdout
    assert workspace.json("list", "--recurring")[0]["state"] == "stopped"
    assert workspace.json("list", "--status", "scheduled") == []
