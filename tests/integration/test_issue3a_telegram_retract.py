"""Issue 3 (Telegram): ``crosspost retract ID`` on a channel message older than 48 hours
says why it cannot be deleted (bots may delete only within 48 hours) and what to do,
exits 1, and leaves the delivery published — the installed command against the Bot API
fake, which validates every call against ``telegram-bot-api.json``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakes.telegram import TelegramFake
from tests.reliability.conftest import Workspace, clean_env, config_text

TOKEN_ENV = "CROSSPOST_TEST_TELEGRAM_TOKEN"
LINK = "https://www.zv-staedtedreieck.de/aktuelles/alt"


@pytest.fixture
def workspace(tmp_path: Path, telegram_fake: TelegramFake) -> Iterator[Workspace]:
    account = {
        "platform": "telegram",
        "base_url": telegram_fake.url,
        "token_env": TOKEN_ENV,
        "chat": "@staedtedreieck",
    }
    config = tmp_path / "crosspost.toml"
    config.write_text(config_text(tmp_path, {"telegram": account}), "utf-8")
    env = clean_env(CROSSPOST_CONFIG=str(config), **{TOKEN_ENV: telegram_fake.token})
    ws = Workspace(tmp_path, env)
    ws.run("db", "upgrade")
    try:
        yield ws
    finally:
        ws.stop_all()


def test_retract_after_48_hours_explains_the_limit_and_keeps_the_delivery(
    workspace: Workspace, telegram_fake: TelegramFake
) -> None:
    [queued] = workspace.json("enqueue", "--text", "Ein alter Beitrag.", "--link", LINK)
    post = str(queued["id"])
    workspace.run("daemon", "--once")
    [message] = telegram_fake.posts
    telegram_fake.age(message.message_id, hours=49)

    refused = workspace.run("retract", post, check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "✗ telegram: Telegram lets bots delete messages only within 48 hours" in refused.stdout
    assert "in the Telegram app instead" in refused.stdout
    assert "Traceback" not in refused.stdout + refused.stderr
    as_json = workspace.run("retract", post, "--json", check=False)
    assert as_json.returncode == 1
    [entry] = json.loads(as_json.stdout)
    assert (entry["account"], entry["ok"]) == ("telegram", False)
    assert "48 hours" in entry["message"]

    assert telegram_fake.posts == [message]  # still there
    assert workspace.json("show", post)["deliveries"][0]["state"] == "published"
