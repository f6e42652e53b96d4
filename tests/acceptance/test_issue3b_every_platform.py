"""Issue 3, "done when": every platform publishes, retracts and reports metrics
THROUGH ``crosspost`` — the installed command in subprocesses, on SQLite and
PostgreSQL, against each platform's test server of the adapter contract suite
(``tests/fakes/harness.py``: the fakes, and Bluesky's real PDS).

One post file with an image (alt text) and a per-platform variant goes
``enqueue`` → ``daemon --once`` → ``metrics collect`` (once the post is a day
old) → ``retract``; each step is checked on the platform and in the database.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tests.fakes
from sqlalchemy import select, update
from tests.acceptance.conftest import (
    SITE,
    Workspace,
    clean_env,
    toml_value,
    write_crosspost_toml,
)
from tests.commandline import CROSSPOST
from tests.fakes.fixtures import assert_clean
from tests.fakes.harness import HARNESSES, Harness

from crosspost.store.schema import account_metrics, deliveries, post_metrics

for _module in pkgutil.iter_modules(tests.fakes.__path__):
    importlib.import_module(f"tests.fakes.{_module.name}")

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415478da63f8cfc000000301010018dd8db00000000049454e44ae426082"
)
LIKES = 7


def _set_likes(harness: Harness, remote_id: str) -> bool:
    """Give the published post LIKES likes on the platform; False where the platform's
    API has no per-post figures crosspost can read (Telegram bots; a bare PDS)."""
    fake: Any = getattr(harness, "fake", None)
    match harness.platform:
        case "mastodon":
            [status] = [s for s in fake.statuses if s.id == remote_id]
            status.extra["favourites_count"] = LIKES
        case "facebook":
            [post] = [p for p in fake.posts if p.id == remote_id]
            post.reactions = LIKES
        case "instagram" | "threads":
            [media] = [m for m in fake.media if m.id == remote_id]
            media.likes = LIKES
        case "linkedin":
            [post] = [p for p in fake.posts if p.urn == remote_id]
            post.likes = LIKES
        case "x":
            [tweet] = [t for t in fake.tweets if t.id == remote_id]
            tweet.metrics["like_count"] = LIKES
        case _:
            return False
    return True


#: the follower count each platform's server tells (None: a bare PDS has no AppView)
FOLLOWERS: dict[str, Callable[[Any], int | None]] = {
    "mastodon": lambda h: h.fake.followers_count,
    "facebook": lambda h: h.fake.followers,
    "instagram": lambda h: h.fake.followers,
    "threads": lambda h: h.fake.followers,
    "linkedin": lambda h: h.fake.followers,
    "x": lambda h: h.fake.followers,
    "telegram": lambda h: h.fake.members,
    "bluesky": lambda h: None,
    "webhook": lambda h: None,  # a receiver has no followers
}


def _daemon_once(ws: Workspace) -> int:
    """``crosspost daemon --once``, its log kept in a file to show should it hang."""
    log = ws.root / "daemon-once.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [CROSSPOST, "daemon", "--once"],
            cwd=ws.root,
            env=ws.env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        return process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError("daemon --once did not finish:\n" + log.read_text()) from None


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    with HARNESSES[request.param]() as h:
        yield h
        assert_clean(h.server)


@pytest.fixture
def platform_workspace(tmp_path: Path, harness: Harness, database_url: str) -> Iterator[Workspace]:
    name = harness.platform
    table = "\n".join(f"{k} = {toml_value(v)}" for k, v in harness.account().items())
    write_crosspost_toml(
        tmp_path,
        database_url,
        {"poll_interval": 0.1, "backoff_base": 0.2, "state_dir": tmp_path / "state"},
        f"""
[accounts.{name}]
{table}

[accounts.website]
platform = "feed"
path = "{tmp_path / "site"}"
public_url = "{SITE}/social"
""",
    )
    env = clean_env(tmp_path)
    env[harness.token_env] = harness.token
    ws = Workspace(tmp_path, env, database_url)
    ws.run("db", "upgrade")
    yield ws
    ws.stop_all()


def test_publish_metrics_and_retract_through_the_command(
    platform_workspace: Workspace, harness: Harness
) -> None:
    ws, name = platform_workspace, harness.platform
    link = f"{SITE}/aktuelles/freibad-{name}"
    alt = "Das Freibad am Morgen, leere Bahnen"
    (ws.root / "freibad.png").write_bytes(PNG)
    (ws.root / "post.md").write_text(
        f"""+++
title = "Freibad öffnet"
link = "{link}"
accounts = ["{name}", "website"]

[[media]]
path = "freibad.png"
alt = "{alt}"

[variants.{name}]
text = "Für {name}: Das Freibad öffnet am Samstag 🏊"
+++
Das Freibad im Städtedreieck öffnet am Samstag um 7 Uhr.
""",
        encoding="utf-8",
    )

    # enqueue → daemon --once: published once, with the variant, the link and the image's alt
    [enqueued] = ws.json("enqueue", str(ws.root / "post.md"))
    post_id = enqueued["id"]
    assert _daemon_once(ws) == 0
    [on_platform] = [p for p in harness.posts() if link in p.text]
    assert f"Für {name}: Das Freibad öffnet am Samstag" in on_platform.text
    assert alt in on_platform.alts or alt in on_platform.text
    shown = {d["account"]: d for d in ws.json("show", str(post_id))["deliveries"]}
    assert shown[name]["state"] == "published"
    assert shown[name]["remote_id"] == on_platform.remote_id

    # metrics collect, once the post is a day old: its figures and the followers stored
    has_figures = _set_likes(harness, on_platform.remote_id)
    store = ws.store()
    try:
        with store.engine.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.post_id == post_id)
                .values(published_at=datetime.now(UTC) - timedelta(hours=25))
            )
    finally:
        store.close()
    collected = {r["account"]: r for r in ws.json("metrics", "collect")}
    assert collected[name]["ok"] is True, collected
    store = ws.store()
    try:
        with store.engine.connect() as conn:
            samples = conn.execute(
                select(post_metrics.c.likes).where(post_metrics.c.account == name)
            ).all()
            followers = conn.execute(
                select(account_metrics.c.followers).where(account_metrics.c.account == name)
            ).all()
    finally:
        store.close()
    # one sample at age 1 day; Bluesky's bare PDS (no AppView) gives no figures, so the
    # sample is recorded empty; the Bot API has no metrics at all, so none is taken
    expected_samples = {"telegram": [], "webhook": []}.get(
        name, [(LIKES,) if has_figures else (None,)]
    )
    assert [tuple(s) for s in samples] == expected_samples
    expected_followers = FOLLOWERS[name](harness)
    assert [f[0] for f in followers] == (
        [expected_followers] if expected_followers is not None else []
    )

    if not harness.supports_delete:
        # a webhook cannot take a post back: retract says so, exits 1, the delivery stays
        result = ws.run("retract", str(post_id), "--json", check=False)
        assert result.returncode == 1, result.stderr
        outcome = {r["account"]: r for r in json.loads(result.stdout)}
        assert outcome[name]["ok"] is False
        assert "cannot be deleted" in outcome[name]["message"]
        assert outcome["website"]["ok"] is True
        states = {d["account"]: d["state"] for d in ws.json("show", str(post_id))["deliveries"]}
        assert states == {name: "published", "website": "retracted"}
        return

    # retract: gone from the platform and the website, both deliveries retracted
    retracted = ws.json("retract", str(post_id))
    assert {r["account"]: r["ok"] for r in retracted} == {name: True, "website": True}
    assert [p for p in harness.posts() if link in p.text] == []
    states = {d["account"]: d["state"] for d in ws.json("show", str(post_id))["deliveries"]}
    assert states == {name: "retracted", "website": "retracted"}
