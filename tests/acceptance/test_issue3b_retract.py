"""Issue 3: ``crosspost retract ID`` as SPEC.md has it — the installed command, on
SQLite and PostgreSQL: partial failure (Telegram's 48-hour rule) exits 1 with a clear
message and leaves that delivery published, the others retracted; ``--json``; what is
still waiting is cancelled; bad input exits 2 with one line and writes nothing.
Enqueueing for Instagram without an image is refused (Instagram has no text-only posts).
"""

from __future__ import annotations

import json

import pytest
from tests.acceptance.conftest import SITE, Workspace
from tests.fakes.mastodon import MastodonFake
from tests.fakes.telegram import TelegramFake

TELEGRAM_ENV = "CROSSPOST_TEST_TELEGRAM_TOKEN"


@pytest.fixture
def with_telegram(workspace: Workspace, telegram_fake: TelegramFake) -> Workspace:
    """The workspace (Mastodon and the website) plus a Telegram channel."""
    with workspace.config.open("a", encoding="utf-8") as config:
        config.write(
            "\n[accounts.telegram]\n"
            'platform = "telegram"\n'
            f'base_url = "{telegram_fake.url}"\n'
            f'token_env = "{TELEGRAM_ENV}"\n'
            f'chat = "@{telegram_fake.username}"\n'
        )
    workspace.env[TELEGRAM_ENV] = telegram_fake.token
    return workspace


def _states(ws: Workspace, post: int) -> dict[str, str]:
    return {d["account"]: d["state"] for d in ws.json("show", str(post))["deliveries"]}


def test_retract_past_telegrams_48_hours_fails_only_there(
    with_telegram: Workspace, mastodon: MastodonFake, telegram_fake: TelegramFake
) -> None:
    """Mastodon and the website are retracted; Telegram refuses (message older than 48
    hours): exit 1, the reason names the rule, that delivery stays published; a second
    retract tries only Telegram again."""
    ws = with_telegram
    link = f"{SITE}/aktuelles/alt"
    post = ws.json("enqueue", "--text", "Eine alte Meldung.", "--link", link)[0]["id"]
    assert ws.run("daemon", "--once", check=False).returncode == 0
    assert set(_states(ws, post).values()) == {"published"}
    [message] = telegram_fake.posts
    telegram_fake.age(message.message_id, hours=49)

    result = ws.run("retract", str(post), "--json", check=False)
    assert result.returncode == 1, result.stderr
    outcome = {r["account"]: r for r in json.loads(result.stdout)}
    assert {a: r["ok"] for a, r in outcome.items()} == {
        "mastodon": True,
        "telegram": False,
        "website": True,
    }
    assert "48 hours" in outcome["telegram"]["message"]
    assert mastodon.statuses_containing(link) == []
    assert len(telegram_fake.posts) == 1
    assert _states(ws, post) == {
        "mastodon": "retracted",
        "telegram": "published",
        "website": "retracted",
    }

    again = ws.run("retract", str(post), check=False)
    assert again.returncode == 1
    lines = again.stdout.splitlines()
    assert len(lines) == 1, again.stdout
    assert lines[0].startswith("✗ telegram: "), again.stdout
    assert "48 hours" in lines[0]
    assert "Traceback" not in again.stderr


def test_retract_cancels_what_still_waits(with_telegram: Workspace) -> None:
    """A post not yet due: retract cancels every delivery, exit 0."""
    ws = with_telegram
    post = ws.json("enqueue", "--text", "Später.", "--link", f"{SITE}/s", "--at", "+2h")[0]["id"]
    result = ws.json("retract", str(post))
    assert {r["account"]: r["ok"] for r in result} == {
        "mastodon": True,
        "telegram": True,
        "website": True,
    }
    assert set(_states(ws, post).values()) == {"cancelled"}


@pytest.mark.parametrize(("args", "needle"), [(["999"], "999"), (["abc"], "abc"), ([], "POST_ID")])
def test_retract_bad_input_exits_2_and_writes_nothing(
    workspace: Workspace, args: list[str], needle: str
) -> None:
    """A post that does not exist: one line naming it. A malformed or missing id: the
    usage error (click's usage lines, the project's form for command-line errors)."""
    workspace.run("status")  # let SQLite settle its WAL before taking the digest
    before = workspace.fingerprint()
    result = workspace.run("retract", *args, check=False)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert needle in lines[-1], result.stderr
    assert "Traceback" not in result.stderr
    if args == ["999"]:
        assert len(lines) == 1, result.stderr
    assert workspace.fingerprint() == before


def test_instagram_without_an_image_is_refused_at_enqueue(workspace: Workspace) -> None:
    """Instagram publishes no text-only posts: enqueue refuses, naming the account and
    the fix, exit 2, nothing stored — before any request to Instagram."""
    with workspace.config.open("a", encoding="utf-8") as config:
        config.write(
            "\n[accounts.instagram]\n"
            'platform = "instagram"\n'
            'base_url = "http://127.0.0.1:9"\n'  # nothing listens: enqueue must not ask
            'token_env = "CROSSPOST_TEST_INSTAGRAM_TOKEN"\n'
            'ig_user_id = "17841400000000001"\n'
        )
    workspace.env["CROSSPOST_TEST_INSTAGRAM_TOKEN"] = "ig-token"
    workspace.run("status")
    before = workspace.fingerprint()
    for extra in ([], ["--to", "instagram"], ["--dry-run"]):
        result = workspace.run(
            "enqueue", "--text", "Nur Text.", "--link", f"{SITE}/t", *extra, check=False
        )
        assert result.returncode == 2, (extra, result.stdout, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert "instagram" in lines[0], lines[0]
        assert "image" in lines[0], lines[0]
        assert workspace.fingerprint() == before
