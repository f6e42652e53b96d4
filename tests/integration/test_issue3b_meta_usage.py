"""Issue 3: Meta's rate-limit signals as PLATFORMS.md lists them — the usage headers
``X-App-Usage`` and ``X-Business-Use-Case-Usage`` — are honoured by every Meta adapter
(Facebook, Instagram, Threads), each header on its own; so are the throttling codes.

``usage_until`` reads each header alone; then each adapter against its fake: once an
answer says the budget is spent, the next request is not sent but RateLimited.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tests.fakes.meta import FacebookFake, InstagramFake, ThreadsFake, graph_fault
from tests.rawsettings import settings_from

from crosspost.adapters._meta import DEFAULT_THROTTLE_WAIT, usage_until
from crosspost.adapters.base import build_adapter
from crosspost.exceptions import RateLimited

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TOKEN_ENV = "CROSSPOST_TEST_META_TOKEN"


def answer(**headers: Any) -> httpx.Response:
    return httpx.Response(
        200, headers={k.replace("_", "-"): json.dumps(v) for k, v in headers.items()}
    )


@pytest.mark.parametrize("key", ["call_count", "total_time", "total_cputime"])
def test_x_app_usage_alone_at_100_percent_blocks(key: str) -> None:
    figures = {"call_count": 5, "total_time": 5, "total_cputime": 5} | {key: 100}
    assert usage_until(answer(X_App_Usage=figures), NOW) == NOW + DEFAULT_THROTTLE_WAIT
    assert usage_until(answer(X_App_Usage=figures | {key: 99}), NOW) is None


def test_business_use_case_usage_alone_sets_the_wait() -> None:
    buc = {
        "1000000001": [{"type": "pages", "call_count": 40, "estimated_time_to_regain_access": 7}]
    }
    assert usage_until(answer(X_Business_Use_Case_Usage=buc), NOW) == NOW + timedelta(minutes=7)
    buc_spent = {"1000000001": [{"type": "pages", "call_count": 100}]}
    assert usage_until(answer(X_Business_Use_Case_Usage=buc_spent), NOW) == (
        NOW + DEFAULT_THROTTLE_WAIT
    )
    buc_fine = {"1000000001": [{"type": "pages", "call_count": 40}]}
    assert usage_until(answer(X_Business_Use_Case_Usage=buc_fine), NOW) is None


@pytest.fixture(params=["facebook", "instagram", "threads"])
def fake(request: pytest.FixtureRequest) -> Iterator[Any]:
    server = {"facebook": FacebookFake, "instagram": InstagramFake, "threads": ThreadsFake}[
        request.param
    ]()
    with server:
        yield server
    assert [str(v) for v in server.validation_errors] == []


def _adapter(fake: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    monkeypatch.setenv(TOKEN_ENV, fake.token)
    keys = {"facebook": "page_id", "instagram": "ig_user_id", "threads": "user_id"}
    ids = {"facebook": "page_id", "instagram": "user_id", "threads": "user_id"}
    account = {"platform": fake.name, "base_url": fake.url, "token_env": TOKEN_ENV}
    account[keys[fake.name]] = getattr(fake, ids[fake.name])
    settings = settings_from(
        site={"url": "https://www.zv-staedtedreieck.de"},
        daemon={"state_dir": str(tmp_path / "state")},
        accounts={"meta": account},
    )
    return build_adapter("meta", settings)


@pytest.mark.parametrize("signal", ["regain", "app_usage"])
def test_every_meta_adapter_holds_back_once_the_budget_is_spent(
    fake: Any, signal: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """A successful answer whose usage headers say the budget is spent (regain in N
    minutes, or a figure at 100 %) blocks the next request: RateLimited, nothing sent."""
    adapter = _adapter(fake, monkeypatch, tmp_path)

    async def scenario() -> datetime:
        try:
            await adapter.open()
            await adapter.followers()
            if signal == "regain":
                fake.regain_minutes = 3
            else:
                fake.app_usage = 100
            await adapter.followers()  # succeeds; its headers say: stop
            sent = len(fake.requests)
            with pytest.raises(RateLimited) as caught:
                await adapter.followers()
            assert len(fake.requests) == sent
            assert caught.value.until is not None
            return caught.value.until
        finally:
            await adapter.aclose()

    until = asyncio.run(scenario())
    wait = until - datetime.now(UTC)
    if signal == "regain":
        assert timedelta(minutes=2) < wait <= timedelta(minutes=3)
    else:
        assert DEFAULT_THROTTLE_WAIT - timedelta(minutes=1) < wait <= DEFAULT_THROTTLE_WAIT


@pytest.mark.parametrize("code", [4, 17, 32, 341, 613, 80001])
def test_every_meta_adapter_takes_the_throttling_codes_as_rate_limits(
    fake: Any, code: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Graph's throttling codes (PLATFORMS.md: 4, 17, 32, 341, 613, 80001) are RateLimited
    on Facebook, Instagram and Threads alike — never an auth error or a rejection."""
    adapter = _adapter(fake, monkeypatch, tmp_path)

    async def scenario() -> None:
        try:
            await adapter.open()
            fake.inject(graph_fault(code, f"(#{code}) limit reached"))
            with pytest.raises(RateLimited, match=f"#{code}"):
                await adapter.followers()
        finally:
            await adapter.aclose()

    asyncio.run(scenario())
