"""The console adapter: shows on stdout what would be sent (the demo's platform)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.rawsettings import settings_from

from crosspost.adapters.base import build_adapter
from crosspost.adapters.console import ConsoleAdapter
from crosspost.models import Media, PublishRequest

SITE = {"url": "https://www.zv-staedtedreieck.de", "name": "Zweckverband Städtedreieck"}
LINK = "https://www.zv-staedtedreieck.de/aktuelles/weihnachtsmarkt"


def make_adapter() -> ConsoleAdapter:
    settings = settings_from(site=SITE, accounts={"demo": {"platform": "console"}})
    adapter = build_adapter("demo", settings)
    assert isinstance(adapter, ConsoleAdapter)
    return adapter


def make_request() -> PublishRequest:
    return PublishRequest(
        delivery_id=17,
        post_id=4,
        account="demo",
        text=f"Der Weihnachtsmarkt öffnet am 1. Dezember.\n\n{LINK}",
        link=LINK,
        title="Weihnachtsmarkt",
        media=(Media(path=Path("/spool/markt.jpg"), alt="Beleuchtete Marktstände"),),
        idempotency_key="k-17",
        created_at=datetime(2026, 11, 20, tzinfo=UTC),
    )


def test_publish_prints_account_text_and_media(capsys: pytest.CaptureFixture[str]) -> None:
    """The account, a separator, the exact text and each image with its alt text go to stdout."""
    result = asyncio.run(make_adapter().publish(make_request()))

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "demo" in lines[0]
    assert "4" in lines[0]
    assert set(lines[1]) == {"-"}
    assert f"Der Weihnachtsmarkt öffnet am 1. Dezember.\n\n{LINK}\n" in out
    assert "markt.jpg" in out
    assert "Beleuchtete Marktstände" in out
    assert result.remote_id == "console-17"
    assert result.remote_url is None


def test_resending_is_safe_and_stable(capsys: pytest.CaptureFixture[str]) -> None:
    """The console may print twice; the remote id stays the same, so resend is idempotent."""
    adapter = make_adapter()
    first = asyncio.run(adapter.publish(make_request()))
    second = asyncio.run(adapter.publish(make_request()))
    capsys.readouterr()
    assert first == second
    assert ConsoleAdapter.idempotent_resend


def test_verify_and_delete_need_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """verify() always succeeds; delete() only says what it would remove."""
    adapter = make_adapter()
    assert asyncio.run(adapter.verify()).name
    asyncio.run(adapter.delete("console-17"))
    assert "console-17" in capsys.readouterr().out
