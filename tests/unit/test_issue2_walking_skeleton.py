"""Issue 2 (walking skeleton): the daemon's promises that no other unit test pins down.

* the attempt row, with the delivery's idempotency key, is in the store *before* the
  request leaves (so a crash mid-request leaves a trace the next daemon reconciles);
* ``daemon --once`` exits 0 when everything due was published, and 1 when anything
  failed or is ``unknown``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from tests.unit.scripted import SETTINGS, ScriptedAdapter

from crosspost.daemon import Daemon
from crosspost.exceptions import PlatformError, Rejected, UnknownOutcome
from crosspost.models import DeliveryState, Outcome, Post, PublishRequest, PublishResult, Rendered
from crosspost.store.memory import MemoryStore

LINK = "https://www.zv-staedtedreieck.de/aktuelles/weihnachtsmarkt"
TEXT = f"Der Weihnachtsmarkt öffnet am 1. Dezember.\n\n{LINK}"


def enqueue(store: MemoryStore, accounts: tuple[str, ...]) -> int:
    post = Post(
        title="Weihnachtsmarkt",
        body="Der Weihnachtsmarkt öffnet am 1. Dezember.",
        link=LINK,
        category=None,
        publish_at=None,
        accounts=accounts,
    )
    rendered = [Rendered(a, "console", TEXT, len(TEXT), 500, "characters") for a in accounts]
    now = datetime.now(UTC)
    return store.enqueue(post, rendered, due_at=now, created_by="editor", now=now)


class Witness(ScriptedAdapter):
    """Looks into the store at the moment the request would leave."""

    def __init__(self, name: str, store: MemoryStore) -> None:
        super().__init__(name)
        self.store = store
        #: per request: the attempts stored for the post, and the delivery's state
        self.seen: list[list[tuple[Outcome, str, DeliveryState]]] = []

    async def publish(self, request: PublishRequest) -> PublishResult:
        [delivery] = [
            d for d in self.store.deliveries_of(request.post_id) if d.account == self.name
        ]
        self.seen.append(
            [
                (a.outcome, a.idempotency_key, delivery.state)
                for a in self.store.attempts(post_id=request.post_id)
            ]
        )
        return await super().publish(request)


def test_the_attempt_row_is_written_before_the_request() -> None:
    """When the adapter sends, a ``pending`` attempt with the delivery's deterministic
    idempotency key is already stored and the delivery is ``publishing``; afterwards
    the same row holds the outcome."""
    store = MemoryStore()
    post = enqueue(store, ("a",))
    [delivery] = store.deliveries_of(post)
    witness = Witness("a", store)
    daemon = Daemon(SETTINGS, store, once=True, adapters={"a": witness}, handle_signals=False)
    assert asyncio.run(daemon.run()) == 0
    assert witness.seen == [[(Outcome.PENDING, delivery.idempotency_key, DeliveryState.PUBLISHING)]]
    assert [request.idempotency_key for request in witness.calls] == [delivery.idempotency_key]
    [attempt] = store.attempts(post_id=post)
    assert attempt.outcome is Outcome.PUBLISHED
    assert attempt.idempotency_key == delivery.idempotency_key


@pytest.mark.parametrize(
    ("step", "state", "code"),
    [
        pytest.param(None, DeliveryState.PUBLISHED, 0, id="all-published"),
        pytest.param(
            Rejected("Validation failed: Text is too long", http_status=422),
            DeliveryState.FAILED,
            1,
            id="failed",
        ),
        pytest.param(UnknownOutcome("read timeout"), DeliveryState.UNKNOWN, 1, id="unknown"),
    ],
)
def test_daemon_once_exit_code(step: PlatformError | None, state: DeliveryState, code: int) -> None:
    """``--once`` publishes what is due on every account and exits 0 only when nothing
    failed and nothing is unknown; the other account is published all the same."""
    store = MemoryStore()
    post = enqueue(store, ("a", "b"))
    good, other = ScriptedAdapter("a"), ScriptedAdapter("b", [step])
    daemon = Daemon(
        SETTINGS, store, once=True, adapters={"a": good, "b": other}, handle_signals=False
    )
    assert asyncio.run(daemon.run()) == code
    states = {d.account: d.state for d in store.deliveries_of(post)}
    assert states == {"a": DeliveryState.PUBLISHED, "b": state}
    assert len(other.calls) == 1  # an unknown outcome is never blindly sent again


def test_the_webhook_sends_the_site_address_when_the_post_has_no_link_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SPEC rule 1: ``link`` defaults to ``site.url``. A post stored without a link of
    its own reaches the webhook with the site's address as ``link`` (never ""), in a
    body whose HMAC-SHA256 signature still verifies."""
    import hashlib
    import hmac
    import json

    import httpx
    from tests.rawsettings import settings_from

    from crosspost.adapters.base import build_adapter
    from crosspost.adapters.webhook import SIGNATURE_HEADER

    site = "https://www.zv-staedtedreieck.de"
    monkeypatch.setenv("CROSSPOST_TEST_WEBHOOK_SECRET", "whsec-issue2")
    settings = settings_from(
        site={"url": site},
        accounts={
            "intranet": {
                "platform": "webhook",
                "url": "https://intranet.zv-staedtedreieck.de/hook",
                "token_env": "CROSSPOST_TEST_WEBHOOK_SECRET",
            }
        },
    )
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    adapter = build_adapter("intranet", settings, transport=httpx.MockTransport(answer))
    request = PublishRequest(
        delivery_id=1,
        post_id=1,
        account="intranet",
        text=f"Ohne eigenen Link\n\n{site}",
        link="",
        title="Ohne eigenen Link",
        media=(),
        idempotency_key="k-1",
        created_at=datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
    )

    async def scenario() -> None:
        try:
            await adapter.publish(request)
        finally:
            await adapter.aclose()

    asyncio.run(scenario())
    [sent] = seen
    assert json.loads(sent.content)["link"] == site
    expected = hmac.new(b"whsec-issue2", sent.content, hashlib.sha256).hexdigest()
    assert sent.headers[SIGNATURE_HEADER] == f"sha256={expected}"


class Gate(ScriptedAdapter):
    """Holds every request until released, counting how many are in flight at once."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.release = asyncio.Event()
        self.in_flight = 0
        self.peak = 0

    async def publish(self, request: PublishRequest) -> PublishResult:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self.release.wait()
            return await super().publish(request)
        finally:
            self.in_flight -= 1


def test_requests_in_flight_per_account_are_bounded_by_its_concurrency() -> None:
    """Five due deliveries on an account with ``concurrency = 2``: two requests go out,
    the daemon claims nothing more while they are in flight (the other account is not
    held up), and after their release all five are published, never more than two at once."""
    from tests.rawsettings import settings_from

    settings = settings_from(
        site={"url": "https://www.zv-staedtedreieck.de"},
        accounts={"a": {"platform": "console", "concurrency": 2}, "b": {"platform": "console"}},
    )
    store = MemoryStore()
    posts = [enqueue(store, ("a",)) for _ in range(5)]
    other = enqueue(store, ("b",))
    gate, free = Gate("a"), ScriptedAdapter("b")
    daemon = Daemon(settings, store, adapters={"a": gate, "b": free}, handle_signals=False)

    def states(account: str) -> list[DeliveryState]:
        return [
            d.state for p in [*posts, other] for d in store.deliveries_of(p) if d.account == account
        ]

    async def until(condition: Callable[[], bool]) -> None:
        for _ in range(1000):  # bounded: a test that hangs must fail
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("timed out")

    async def scenario() -> int:
        running = asyncio.create_task(daemon.run())
        await until(lambda: gate.in_flight == 2 and states("b") == [DeliveryState.PUBLISHED])
        assert await daemon._claim() == 0  # no free slot for "a", nothing due on "b"
        assert sorted(states("a")).count(DeliveryState.PUBLISHING) == 2
        assert states("a").count(DeliveryState.SCHEDULED) == 3
        gate.release.set()
        await until(lambda: states("a") == [DeliveryState.PUBLISHED] * 5)
        daemon.stop()
        return await asyncio.wait_for(running, timeout=30)

    assert asyncio.run(scenario()) == 0
    assert gate.peak == 2
    assert len(gate.calls) == 5
