"""Issue 5: what the platforms' answers say of an account's request budget, from the
headers (:func:`header_budget`, X's three budgets, Meta's usage headers) through the
HTTP client (:data:`ANSWERS`) and the publisher into the store's ``AccountState``.

Every request goes to an ``httpx.MockTransport``; nothing is sent anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tests.rawsettings import settings_from

from crosspost.adapters._http import HttpClient, as_count, header_budget
from crosspost.adapters._meta import DEFAULT_THROTTLE_WAIT
from crosspost.adapters.base import ANSWERS, Adapter, Answers, build_adapter
from crosspost.adapters.bluesky import BlueskyAdapter
from crosspost.adapters.facebook import FacebookAdapter
from crosspost.adapters.mastodon import MastodonAdapter
from crosspost.adapters.x import XAdapter
from crosspost.clock import FrozenClock
from crosspost.exceptions import PlatformError
from crosspost.models import SAME_WINDOW, Budget, DeliveryState, Post, PublishRequest, Rendered
from crosspost.publisher import Publisher
from crosspost.retry import RetryPolicy
from crosspost.store.memory import MemoryStore

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BASE = "https://api.platform.example"
SITE = "https://www.zv-staedtedreieck.de"
LINK = f"{SITE}/aktuelles/budget"
TOKEN_ENV = "CROSSPOST_TEST_BUDGET_TOKEN"
REMAINING, RESET = "X-RateLimit-Remaining", "X-RateLimit-Reset"

Handler = Callable[[httpx.Request], httpx.Response]


def real_reset(seconds: float = 3600) -> datetime:
    """A reset time in the real future, whole seconds (the adapters read the system clock)."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)


def epoch(moment: datetime) -> str:
    return str(int(moment.timestamp()))


def iso(moment: datetime) -> str:
    """As Mastodon writes it: ISO 8601 with milliseconds and ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def limited(
    status: int, remaining: str | None, reset: str | None, body: Any = None
) -> httpx.Response:
    headers = {}
    if remaining is not None:
        headers[REMAINING] = remaining
    if reset is not None:
        headers[RESET] = reset
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


def script(*answers: httpx.Response) -> Handler:
    """A handler that gives the answers in order, one per request."""
    queue = list(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        return queue.pop(0)

    return answer


def record(calls: Callable[[], Any]) -> Answers:
    """Run ``calls`` (an async function) in a fresh loop inside ``ANSWERS.set(Answers())``,
    as the publisher does around an attempt; what was recorded."""
    answers = Answers()

    async def main() -> None:
        token = ANSWERS.set(answers)
        try:
            await calls()
        finally:
            ANSWERS.reset(token)

    asyncio.run(main())
    return answers


# --- Budget.merged ------------------------------------------------------------------------


def test_one_window_keeps_the_smaller_remaining_whatever_the_order() -> None:
    """Two answers of one window (same reset): the smaller ``remaining`` wins, in both
    orders: answers that arrive out of order never raise the budget."""
    older, newer = Budget(7, NOW), Budget(4, NOW)
    assert older.merged(newer) == Budget(4, NOW)
    assert newer.merged(older) == Budget(4, NOW)


def test_resets_within_the_tolerance_are_one_window() -> None:
    """Resets up to SAME_WINDOW apart (rounding, clock drift) are one window: the smaller
    remaining and the later reset, in both orders; just beyond, a new window."""
    early, late = Budget(3, NOW), Budget(9, NOW + SAME_WINDOW)
    assert early.merged(late) == Budget(3, NOW + SAME_WINDOW)
    assert late.merged(early) == Budget(3, NOW + SAME_WINDOW)
    beyond = Budget(9, NOW + SAME_WINDOW + timedelta(seconds=1))
    assert early.merged(beyond) == beyond


def test_a_later_reset_replaces_an_earlier_one_is_ignored() -> None:
    """A later reset is a new window (its full remaining counts); an answer from an
    earlier window changes nothing."""
    stored = Budget(0, NOW)
    refilled = Budget(299, NOW + timedelta(minutes=5))
    assert stored.merged(refilled) == refilled
    assert refilled.merged(stored) == refilled


# --- header_budget, as_count --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12", 12), ("12.0", 12), (" 3 ", 3), ("0", 0), ("-1", 0)],
)
def test_a_count_of_requests_left(value: str, expected: int) -> None:
    assert as_count(value) == expected


@pytest.mark.parametrize("value", [None, "", "abc", "nan", "inf", "-inf"])
def test_no_usable_count(value: str | None) -> None:
    assert as_count(value) is None


@pytest.mark.parametrize(
    ("reset", "expected"),
    [
        (epoch(NOW + timedelta(minutes=15)), NOW + timedelta(minutes=15)),  # epoch seconds
        (iso(NOW + timedelta(minutes=5)), NOW + timedelta(minutes=5)),  # Mastodon's ISO 8601
        ("60", NOW + timedelta(seconds=60)),  # seconds from now
    ],
)
def test_the_budget_a_pair_of_headers_states(reset: str, expected: datetime) -> None:
    parse = header_budget(REMAINING, RESET)
    assert parse(limited(200, "12", reset), NOW) == Budget(12, expected)


@pytest.mark.parametrize(
    ("remaining", "reset"),
    [(None, "60"), ("12", None), ("abc", "60"), ("nan", "60"), ("12", "bald")],
)
def test_half_a_budget_is_none(remaining: str | None, reset: str | None) -> None:
    """Both headers or nothing: a count without a reset (or the reverse) says no budget."""
    assert header_budget(REMAINING, RESET)(limited(200, remaining, reset), NOW) is None


def send(handler: Handler, *paths: str) -> Answers:
    """GET each path on one HttpClient with the Mastodon headers' budget parser; the
    statuses and budget recorded (errors are the client's business, not this test's)."""

    async def calls() -> None:
        client = HttpClient(
            BASE,
            transport=httpx.MockTransport(handler),
            budget_parser=header_budget(REMAINING, RESET),
            clock=FrozenClock(NOW),
        )
        try:
            for path in paths:
                with contextlib.suppress(PlatformError):
                    await client.request("GET", path)
        finally:
            await client.aclose()

    return record(calls)


@pytest.mark.parametrize("reset", ["0", epoch(NOW), epoch(NOW - timedelta(minutes=1))])
def test_a_budget_whose_reset_has_come_is_not_recorded(reset: str) -> None:
    """A window that already refilled says nothing about what is left now."""
    answers = send(script(limited(200, "3", reset)), "/a")
    assert answers.statuses == [200]
    assert answers.budget is None


# --- through the HTTP client --------------------------------------------------------------


def test_every_answer_records_its_status() -> None:
    """A success, a server error and a 429 are all recorded, in order."""
    reset = epoch(NOW + timedelta(minutes=15))
    answers = send(
        script(limited(200, "5", reset), limited(503, None, None), limited(429, "0", reset)),
        "/a", "/b", "/c",
    )  # fmt: skip
    assert answers.statuses == [200, 503, 429]
    assert answers.budget == Budget(0, NOW + timedelta(minutes=15))


def test_the_last_answer_with_a_budget_wins() -> None:
    """Each answer that states a budget replaces the one before (merging is the store's);
    an answer without one leaves it as it was."""
    first, later = NOW + timedelta(minutes=15), NOW + timedelta(minutes=30)
    answers = send(
        script(
            limited(200, "3", epoch(first)),
            limited(200, "7", epoch(later)),
            limited(200, None, None),
        ),
        "/a", "/b", "/c",
    )  # fmt: skip
    assert answers.statuses == [200, 200, 200]
    assert answers.budget == Budget(7, later)


def test_an_error_answer_states_a_budget_too() -> None:
    """A refused request used the budget as well: its headers count."""
    reset = epoch(NOW + timedelta(minutes=15))
    answers = send(script(limited(200, "5", reset), limited(503, "4", reset)), "/a", "/b")
    assert answers.budget == Budget(4, NOW + timedelta(minutes=15))


def test_without_answers_being_recorded_nothing_breaks() -> None:
    """Outside an attempt (``ANSWERS`` unset: accounts check, the inbox) nothing is kept."""

    async def main() -> None:
        client = HttpClient(
            BASE,
            transport=httpx.MockTransport(script(limited(200, "5", "60"))),
            budget_parser=header_budget(REMAINING, RESET),
            clock=FrozenClock(NOW),
        )
        try:
            await client.request("GET", "/a")
        finally:
            await client.aclose()

    assert ANSWERS.get() is None
    asyncio.run(main())


# --- the adapters' clients ----------------------------------------------------------------


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "tok-budget-0123456789")


def adapter(table: dict[str, Any], handler: Handler, name: str = "acct") -> Adapter:
    settings = settings_from(
        site={"url": SITE, "name": "Zweckverband Städtedreieck"},
        accounts={name: {"token_env": TOKEN_ENV, **table}},
    )
    return build_adapter(name, settings, transport=httpx.MockTransport(handler))


def publish_request(account: str = "acct", delivery_id: int = 1) -> PublishRequest:
    return PublishRequest(
        delivery_id=delivery_id,
        post_id=1,
        account=account,
        text=f"Der Wertstoffhof hat länger geöffnet.\n\n{LINK}",
        link=LINK,
        title="Wertstoffhof",
        media=(),
        idempotency_key=f"k-{delivery_id}",
        created_at=NOW,
    )


STATUS = {"id": "109400000000000001", "url": "https://social.example/@zv/109400000000000001"}


@pytest.mark.parametrize("form", [epoch, iso], ids=["epoch", "iso"])
def test_mastodon_publication_records_the_budget(
    secret: None, form: Callable[[datetime], str]
) -> None:
    """Mastodon's ``X-RateLimit-Remaining``/``-Reset`` (ISO 8601 on real instances) on
    the answer to ``POST /api/v1/statuses``."""
    reset = real_reset()
    mastodon = adapter(
        {"platform": "mastodon", "base_url": "https://social.example", "max_characters": 500},
        script(limited(200, "41", form(reset), STATUS)),
    )
    assert isinstance(mastodon, MastodonAdapter)

    async def calls() -> None:
        try:
            await mastodon.publish(publish_request())
        finally:
            await mastodon.aclose()

    answers = record(calls)
    assert answers.statuses == [200]
    assert answers.budget == Budget(41, reset)


def test_bluesky_client_records_the_budget(secret: None) -> None:
    """Bluesky's ``RateLimit-Remaining``/``RateLimit-Reset`` (epoch seconds)."""
    reset = real_reset(300)
    answer = httpx.Response(
        200, json={}, headers={"RateLimit-Remaining": "1658", "RateLimit-Reset": epoch(reset)}
    )
    bluesky = adapter(
        {"platform": "bluesky", "handle": "zv-staedtedreieck.bsky.social"}, script(answer)
    )
    assert isinstance(bluesky, BlueskyAdapter)

    async def calls() -> None:
        try:
            await bluesky.http.request("GET", "/xrpc/com.atproto.server.describeServer")
        finally:
            await bluesky.aclose()

    assert record(calls).budget == Budget(1658, reset)


#: which of X's budgets runs out first: its reset, as seconds from now (computed in the
#: test, not at import: a long run must not find the window already past)
X_WINDOW_S, X_DAY_S, X_APP_S = 900, 20 * 3600, 21 * 3600


@pytest.mark.parametrize(
    ("window", "user", "app", "remaining", "reset_s"),
    [
        ("50", "3", "900", 3, X_DAY_S),  # the user's 24-hour posting cap
        ("50", "90", "2", 2, X_APP_S),  # the app's
        ("1", "90", "900", 1, X_WINDOW_S),  # the 15-minute window
    ],
    ids=["user-cap", "app-cap", "window"],
)
def test_x_client_records_the_smallest_of_its_three_budgets(
    secret: None, window: str, user: str, app: str, remaining: int, reset_s: int
) -> None:
    """X reports three budgets on a post's answer; the one that runs out first counts."""
    now = real_reset(0)
    headers = {
        "x-rate-limit-remaining": window,
        "x-rate-limit-reset": epoch(now + timedelta(seconds=X_WINDOW_S)),
        "x-user-limit-24hour-remaining": user,
        "x-user-limit-24hour-reset": epoch(now + timedelta(seconds=X_DAY_S)),
        "x-app-limit-24hour-remaining": app,
        "x-app-limit-24hour-reset": epoch(now + timedelta(seconds=X_APP_S)),
    }
    expected = Budget(remaining, now + timedelta(seconds=reset_s))
    x = adapter({"platform": "x"}, script(httpx.Response(200, json={}, headers=headers)))
    assert isinstance(x, XAdapter)

    async def calls() -> None:
        try:
            await x.http.request("GET", "/2/users/me")
        finally:
            await x.aclose()

    assert record(calls).budget == expected


def facebook_publishes(usage: dict[str, int]) -> Answers:
    """A Facebook Page post whose answer carries ``X-App-Usage`` = ``usage``."""
    answer = httpx.Response(
        200, json={"id": "1234_5678"}, headers={"X-App-Usage": json.dumps(usage)}
    )
    facebook = adapter({"platform": "facebook", "page_id": "1234"}, script(answer))
    assert isinstance(facebook, FacebookAdapter)
    facebook.clock = FrozenClock(NOW)

    async def calls() -> None:
        try:
            await facebook.publish(publish_request())
        finally:
            await facebook.aclose()

    return record(calls)


def test_a_meta_success_that_used_up_the_apps_calls_spends_the_budget(secret: None) -> None:
    """Meta says no count, only "spent" (``call_count`` at 100 %): none left until the
    usage decays (``usage_until``)."""
    answers = facebook_publishes({"call_count": 100, "total_time": 12, "total_cputime": 8})
    assert answers.statuses == [200]
    assert answers.budget == Budget(0, NOW + DEFAULT_THROTTLE_WAIT)


def test_a_meta_success_with_calls_left_states_no_budget(secret: None) -> None:
    answers = facebook_publishes({"call_count": 60, "total_time": 12, "total_cputime": 8})
    assert answers.statuses == [200]
    assert answers.budget is None


# --- the publisher writes it to the store -------------------------------------------------


def enqueue(store: MemoryStore, now: datetime) -> None:
    post = Post(title="Wertstoffhof", body="Der Wertstoffhof hat länger geöffnet.", link=LINK,
                category=None, publish_at=None, accounts=("acct",))  # fmt: skip
    text = f"Der Wertstoffhof hat länger geöffnet.\n\n{LINK}"
    rendered = [Rendered("acct", "mastodon", text, len(text), 500, "characters")]
    store.enqueue(post, rendered, due_at=now, created_by="editor", now=now)


def publish_once(answer: httpx.Response) -> tuple[DeliveryState | None, MemoryStore]:
    """One delivery to a Mastodon account, published by a Publisher on a MemoryStore;
    the platform gives ``answer``. The delivery's new state, and the store."""
    now = datetime.now(UTC)
    store = MemoryStore()
    enqueue(store, now)
    mastodon = adapter(
        {"platform": "mastodon", "base_url": "https://social.example", "max_characters": 500},
        script(answer),
    )
    publisher = Publisher(
        store,
        {"acct": mastodon},
        clock=FrozenClock(now),
        policy=RetryPolicy(base=1.0, maximum=60.0, max_attempts=3, jitter=lambda: 0.0),
        max_inline_wait=0.0,
    )
    [delivery] = store.claim_due(
        "w1", now=now, lease=timedelta(seconds=60), capacity={"acct": 4}, reconcilable=()
    )

    async def main() -> DeliveryState | None:
        try:
            return await publisher.publish(delivery)
        finally:
            await mastodon.aclose()

    return asyncio.run(main()), store


@pytest.mark.parametrize(
    ("status", "body", "state"),
    [
        (200, STATUS, DeliveryState.PUBLISHED),
        (503, {"error": "Service Unavailable"}, DeliveryState.RETRYING),
        (422, {"error": "Validation failed: Text too long"}, DeliveryState.FAILED),
    ],
    ids=["published", "retried-later", "rejected"],
)
def test_the_settlement_records_what_the_last_answer_said(
    secret: None, status: int, body: dict[str, str], state: DeliveryState
) -> None:
    """Whatever became of the delivery, the account's budget in the store is what the
    platform's answer said (written with the settlement)."""
    reset = real_reset()
    outcome, store = publish_once(limited(status, "17", iso(reset), body))
    assert outcome is state
    account = store.account_states()["acct"]
    assert account.budget == Budget(17, reset)
    assert account.blocked_until is None  # requests are left


def test_a_429_with_nothing_left_blocks_the_account_until_the_reset(secret: None) -> None:
    reset = real_reset()
    outcome, store = publish_once(limited(429, "0", iso(reset), {"error": "Too many requests"}))
    assert outcome is DeliveryState.RETRYING
    account = store.account_states()["acct"]
    assert account.budget == Budget(0, reset)
    assert account.blocked_until == reset


def test_a_success_that_used_the_last_request_blocks_the_account(secret: None) -> None:
    """No 429 needed: an answer saying nothing is left blocks the account until the
    reset, with the settlement (every daemon's claims see it)."""
    reset = real_reset()
    outcome, store = publish_once(limited(200, "0", iso(reset), STATUS))
    assert outcome is DeliveryState.PUBLISHED
    account = store.account_states()["acct"]
    assert account.budget == Budget(0, reset)
    assert account.blocked_until == reset
