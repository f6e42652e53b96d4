"""The inbox on every platform, over real HTTP on 127.0.0.1: each adapter fetches the
replies, mentions and comments on a post it published (through the fake's contract
checks, or the real Bluesky PDS), a second fetch with the stored cursor brings nothing
twice, and a reply lands on the platform as a reply to exactly that interaction.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tests.fakes.bluesky import BlueskyProxy, Pds, pds_or_skip
from tests.fakes.fixtures import FakeStarter, assert_clean
from tests.fakes.linkedin import LinkedInFake
from tests.fakes.mastodon import SPEC_NAME as MASTODON_SPEC
from tests.fakes.mastodon import MastodonFake
from tests.fakes.meta import (
    FACEBOOK_TOKEN,
    INSTAGRAM_TOKEN,
    PUBLIC_MEDIA,
    THREADS_TOKEN,
    FacebookFake,
    InstagramFake,
    ThreadsFake,
)
from tests.fakes.server import lose_response, rate_limit, skip_without_spec
from tests.fakes.telegram import SPEC_NAME as TELEGRAM_SPEC
from tests.fakes.telegram import TelegramFake
from tests.fakes.x import XFake
from tests.rawsettings import settings_from

from crosspost.adapters.base import Adapter, build_adapter
from crosspost.adapters.mastodon import MastodonAdapter
from crosspost.adapters.threads import ThreadsAdapter
from crosspost.config import Settings
from crosspost.exceptions import RateLimited
from crosspost.inbox import (
    Fetched,
    InteractionKind,
    InteractionPage,
    InteractionState,
    PostRef,
    ReplyTarget,
)
from crosspost.models import Media, PublishRequest, PublishResult

SITE = {"url": "https://www.zv-staedtedreieck.de", "name": "Zweckverband Städtedreieck"}
LINK = "https://www.zv-staedtedreieck.de/aktuelles/wertstoffhof"
TEXT = f"Der Wertstoffhof hat am Samstag länger geöffnet.\n\n{LINK}"
QUESTION = "Nimmt der Wertstoffhof auch Sperrmüll an?"
ANSWER = "Ja, bis 2 m³ pro Anlieferung. Fragen zum Sperrmüll beantwortet das Bauamt."
TOKEN_ENV = "CROSSPOST_TEST_INBOX_TOKEN"

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def fetch(
    adapter: Adapter, cursor: str | None, posts: list[PostRef]
) -> tuple[list[Fetched], str | None]:
    """Every page of one fetch, and the cursor the last page left."""
    items: list[Fetched] = []
    last = cursor
    try:
        page: InteractionPage
        async for page in adapter.interactions(
            cursor, posts, since=datetime.now(UTC) - timedelta(hours=1)
        ):
            items.extend(page.items)
            if page.cursor is not None:
                last = page.cursor
    finally:
        await adapter.aclose()
    return items, last


def request(account: str, text: str = TEXT, **extra: Any) -> PublishRequest:
    return PublishRequest(
        delivery_id=1,
        post_id=1,
        account=account,
        text=text,
        link=LINK,
        title="Wertstoffhof",
        media=(),
        idempotency_key=f"inbox-test-{account}",
        created_at=datetime.now(UTC) - timedelta(minutes=1),
        **extra,
    )


@dataclass
class Platform:
    """One platform under test: how to publish, be answered, and find our reply."""

    adapter: Callable[[], Adapter]
    #: someone answers the post (remote id, url); returns the interaction's remote id
    answer: Callable[[PublishResult], str]
    #: our replies under that interaction: their texts
    replies: Callable[[str], list[str]]
    kind: InteractionKind
    handle: str
    #: publish the post on the platform (default: the adapter's publish)
    publish: Callable[[Adapter], PublishResult] | None = None


def settings_for(account: dict[str, Any], tmp_path: Path) -> Settings:
    return settings_from(
        site=SITE,
        daemon={"http_timeout": 10.0, "state_dir": str(tmp_path / "state")},
        accounts={"acc": account},
    )


def mastodon(start_fake: FakeStarter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Platform:
    skip_without_spec(MASTODON_SPEC)
    fake = start_fake(MastodonFake())
    monkeypatch.setenv(TOKEN_ENV, fake.token)
    settings = settings_for(
        {"platform": "mastodon", "base_url": fake.url, "token_env": TOKEN_ENV}, tmp_path
    )
    return Platform(
        adapter=lambda: build_adapter("acc", settings),
        answer=lambda post: fake.mention(f"@staedtedreieck {QUESTION}", in_reply_to=post.remote_id),
        replies=lambda remote: [s.text for s in fake.replies_to(remote)],
        kind=InteractionKind.MENTION,
        handle="@buerger@example.social",
    )


def x(start_fake: FakeStarter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Platform:
    fake = start_fake(XFake())
    monkeypatch.setenv(TOKEN_ENV, fake.token)
    settings = settings_for(
        {"platform": "x", "base_url": fake.url, "token_env": TOKEN_ENV}, tmp_path
    )
    return Platform(
        adapter=lambda: build_adapter("acc", settings),
        answer=lambda post: fake.mention(f"@staedtedreieck {QUESTION}", in_reply_to=post.remote_id),
        replies=lambda remote: [t.text for t in fake.replies_to(remote)],
        kind=InteractionKind.MENTION,
        handle="@buerger_in",
    )


def facebook(start_fake: FakeStarter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Platform:
    fake = start_fake(FacebookFake())
    monkeypatch.setenv(TOKEN_ENV, FACEBOOK_TOKEN)
    settings = settings_for(
        {"platform": "facebook", "base_url": fake.url, "token_env": TOKEN_ENV,
         "page_id": fake.page_id},
        tmp_path,
    )  # fmt: skip
    return Platform(
        adapter=lambda: build_adapter("acc", settings),
        answer=lambda post: fake.comment(post.remote_id, QUESTION),
        replies=lambda remote: [c.text for c in fake.replies_to(remote)],
        kind=InteractionKind.COMMENT,
        handle="Erika Mustermann",
    )


def instagram(start_fake: FakeStarter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Platform:
    fake = start_fake(InstagramFake())
    monkeypatch.setenv(TOKEN_ENV, INSTAGRAM_TOKEN)
    settings = settings_for(
        {"platform": "instagram", "base_url": fake.url, "token_env": TOKEN_ENV,
         "ig_user_id": fake.user_id},
        tmp_path,
    )  # fmt: skip
    image = tmp_path / "wertstoffhof.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0fake jpeg")

    def publish_image(adapter: Adapter) -> PublishResult:
        base = request("acc")
        full = PublishRequest(
            delivery_id=base.delivery_id,
            post_id=base.post_id,
            account=base.account,
            text=base.text,
            link=base.link,
            title=base.title,
            media=(Media(image, "Das Tor des Wertstoffhofs", "image/jpeg"),),
            idempotency_key=base.idempotency_key,
            created_at=base.created_at,
            media_urls=(f"{PUBLIC_MEDIA}/1-1.jpg",),
        )

        async def go() -> PublishResult:
            try:
                return await adapter.publish(full)
            finally:
                await adapter.aclose()

        return run(go())

    return Platform(
        adapter=lambda: build_adapter("acc", settings),
        answer=lambda post: fake.comment(post.remote_id, QUESTION),
        replies=lambda remote: [c.text for c in fake.replies_to(remote)],
        kind=InteractionKind.COMMENT,
        handle="@erika.mustermann",
        publish=publish_image,
    )


def threads(start_fake: FakeStarter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Platform:
    fake = start_fake(ThreadsFake())
    monkeypatch.setenv(TOKEN_ENV, THREADS_TOKEN)
    settings = settings_for(
        {"platform": "threads", "base_url": fake.url, "token_env": TOKEN_ENV,
         "user_id": fake.user_id},
        tmp_path,
    )  # fmt: skip

    def adapter() -> Adapter:
        made = build_adapter("acc", settings)
        assert isinstance(made, ThreadsAdapter)
        made.container_poll_first = 0.01
        return made

    return Platform(
        adapter=adapter,
        answer=lambda post: fake.comment(post.remote_id, QUESTION),
        replies=lambda remote: [c.text for c in fake.replies_to(remote)],
        kind=InteractionKind.REPLY,
        handle="@erika.mustermann",
    )


def linkedin(start_fake: FakeStarter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Platform:
    fake = start_fake(LinkedInFake())
    monkeypatch.setenv(TOKEN_ENV, fake.token)
    settings = settings_for(
        {"platform": "linkedin", "base_url": fake.url, "token_env": TOKEN_ENV,
         "organization": fake.organization},
        tmp_path,
    )  # fmt: skip
    return Platform(
        adapter=lambda: build_adapter("acc", settings),
        answer=lambda post: fake.add_comment(post.remote_id, QUESTION),
        replies=lambda remote: [c["message"]["text"] for c in fake.replies_to(remote)],
        kind=InteractionKind.COMMENT,
        handle="",
    )


def telegram(start_fake: FakeStarter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Platform:
    skip_without_spec(TELEGRAM_SPEC)
    fake = start_fake(TelegramFake())
    monkeypatch.setenv(TOKEN_ENV, fake.token)
    settings = settings_for(
        {"platform": "telegram", "base_url": fake.url, "token_env": TOKEN_ENV,
         "chat": "@staedtedreieck", "fetch_comments": True},
        tmp_path,
    )  # fmt: skip

    def answer(post: PublishResult) -> str:
        comment = fake.comment(int(post.remote_id.rsplit("/", 1)[1]), QUESTION)
        return f"{fake.group_id}/{comment}"

    return Platform(
        adapter=lambda: build_adapter("acc", settings),
        answer=answer,
        replies=lambda remote: fake.replies_to(int(remote.rsplit("/", 1)[1])),
        kind=InteractionKind.COMMENT,
        handle="@erika_m",
    )


@pytest.fixture
def bluesky_pds() -> Iterator[tuple[Pds, BlueskyProxy]]:
    pds = pds_or_skip()
    with BlueskyProxy(pds) as proxy:
        yield pds, proxy
    assert_clean(proxy)


PLATFORMS = {
    "mastodon": mastodon,
    "x": x,
    "facebook": facebook,
    "instagram": instagram,
    "threads": threads,
    "linkedin": linkedin,
    "telegram": telegram,
}


def scenario(platform: Platform) -> None:
    publish = platform.publish or (lambda a: run(_publish(a)))
    post = publish(platform.adapter())
    ref = PostRef(1, post.remote_id, post.remote_url, datetime.now(UTC))
    asked = platform.answer(post)

    items, cursor = run(fetch(platform.adapter(), None, [ref]))
    assert [(i.remote_id, i.text, i.kind) for i in items] == [
        (asked, items[0].text, platform.kind)
    ], items
    assert QUESTION in items[0].text
    assert items[0].handle == platform.handle
    assert items[0].parent_remote_id == post.remote_id
    assert cursor is not None

    again, _cursor = run(fetch(platform.adapter(), cursor, [ref]))
    # nothing arrived since: a resumed fetch brings nothing new (per-post platforms list
    # the same-second edge again; the store keeps each interaction once)
    assert {i.remote_id for i in again} <= {asked}

    target = ReplyTarget(
        remote_id=items[0].remote_id,
        handle=items[0].handle,
        kind=items[0].kind.value,
        parent_remote_id=items[0].parent_remote_id,
        reply_ref=items[0].reply_ref,
    )

    async def answer() -> PublishResult:
        adapter = platform.adapter()
        try:
            return await adapter.reply(target, ANSWER, key="inbox-1-test")
        finally:
            await adapter.aclose()

    result = run(answer())
    assert result.remote_id
    replies = platform.replies(asked)
    assert len(replies) == 1, replies
    assert ANSWER in replies[0]


async def _publish(adapter: Adapter) -> PublishResult:
    try:
        return await adapter.publish(request(adapter.name))
    finally:
        await adapter.aclose()


@pytest.mark.parametrize("name", list(PLATFORMS))
def test_interactions_reach_the_inbox_and_a_reply_lands_under_them(
    name: str, start_fake: FakeStarter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fetch finds the answer to our post (handle, text, parent), resumes from its cursor,
    and the reply is posted on the platform under exactly that interaction."""
    scenario(PLATFORMS[name](start_fake, tmp_path, monkeypatch))


def test_bluesky_on_the_real_pds(
    bluesky_pds: tuple[Pds, BlueskyProxy], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply by another account on the PDS reaches the inbox (listNotifications comes from
    the stand-in AppView, built from the PDS's real records), and our answer is a record the
    PDS validated whose reply.parent is that reply and reply.root our post."""
    pds, proxy = bluesky_pds
    name = f"inbox-{os.getpid()}"
    monkeypatch.setenv(TOKEN_ENV, pds.create_app_password(name))
    try:
        settings = settings_for(
            {"platform": "bluesky", "base_url": proxy.url, "token_env": TOKEN_ENV,
             "handle": pds.handle},
            tmp_path,
        )  # fmt: skip
        citizen = proxy.watch(pds.citizen())
        post = run(_publish(build_adapter("acc", settings)))
        rkey = post.remote_id.rsplit("/", 1)[-1]
        ours = pds.record(rkey)
        assert ours is not None
        parent = {"uri": post.remote_id, "cid": ours["cid"]}
        asked = citizen.post(QUESTION, reply_to=parent)

        ref = PostRef(1, post.remote_id, post.remote_url, datetime.now(UTC))
        items, cursor = run(fetch(build_adapter("acc", settings), None, [ref]))
        mine = [i for i in items if i.remote_id == asked["uri"]]
        assert len(mine) == 1
        item = mine[0]
        assert item.kind is InteractionKind.REPLY
        assert item.text == QUESTION
        assert item.handle == f"@{citizen.handle}"
        assert item.parent_remote_id == post.remote_id
        again, _cursor = run(fetch(build_adapter("acc", settings), cursor, [ref]))
        assert asked["uri"] not in {i.remote_id for i in again}

        async def answer() -> PublishResult:
            adapter = build_adapter("acc", settings)
            try:
                target = ReplyTarget(item.remote_id, item.handle, "reply", None, item.reply_ref)
                return await adapter.reply(target, ANSWER, key="k")
            finally:
                await adapter.aclose()

        result = run(answer())
        record = pds.record(result.remote_id.rsplit("/", 1)[-1])
        assert record is not None
        assert record["value"]["text"] == ANSWER
        assert record["value"]["reply"]["parent"] == {"uri": asked["uri"], "cid": asked["cid"]}
        assert record["value"]["reply"]["root"] == parent
    finally:
        pds.revoke_app_password(name)


def test_telegram_comments_only_when_the_account_asks(
    start_fake: FakeStarter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without fetch_comments the inbox leaves the bot's updates alone (another program may
    read them); with it, only comments on the channel's posts are kept."""
    from crosspost.adapters.telegram import TelegramAdapter

    off = settings_for({"platform": "telegram", "chat": "@x", "token_env": TOKEN_ENV}, tmp_path)
    assert not TelegramAdapter.inbox_enabled(off.accounts["acc"])
    platform = telegram(start_fake, tmp_path, monkeypatch)
    post = run(_publish(platform.adapter()))
    fake = start_fake.started[-1]
    assert isinstance(fake, TelegramFake)
    with fake.lock:  # a message in the group that answers no channel post
        fake.updates.append(
            {
                "update_id": 699_999_999,
                "message": {
                    "message_id": 999,
                    "date": int(datetime.now(UTC).timestamp()),
                    "chat": fake._group_json(),
                    "from": {"id": 1, "is_bot": False, "first_name": "Max"},
                    "text": "Hallo zusammen",
                },
            }
        )
    platform.answer(post)
    items, cursor = run(fetch(platform.adapter(), None, []))
    assert [i.text for i in items] == [QUESTION]
    assert cursor is not None
    assert fake.updates[-1]["update_id"] == int(cursor)


def test_a_rate_limit_stops_the_fetch_and_names_the_reset(
    start_fake: FakeStarter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """429 on the notifications: RateLimited with the platform's reset, and the client
    sends nothing more before it."""
    platform = mastodon(start_fake, tmp_path, monkeypatch)
    fake = start_fake.started[-1]
    assert isinstance(fake, MastodonFake)
    fake.inject(rate_limit(120), route="GET /api/v1/notifications")
    adapter = platform.adapter()
    with pytest.raises(RateLimited) as caught:
        run(fetch(adapter, None, []))
    assert caught.value.until is not None
    assert caught.value.until > datetime.now(UTC) + timedelta(seconds=60)
    assert len(fake.requests_to("GET /api/v1/notifications")) == 1


def test_mastodon_reads_back_to_since_first_then_forward_from_its_cursor(
    start_fake: FakeStarter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first fetch pages backwards and stops at ``since`` (older mentions stay out);
    later fetches page forward from the cursor, and a rate limit in the middle loses
    nothing: the pages before it moved the cursor, the next fetch brings the rest."""
    platform = mastodon(start_fake, tmp_path, monkeypatch)
    fake = start_fake.started[-1]
    assert isinstance(fake, MastodonFake)
    old = fake.mention("@staedtedreieck alt", at=datetime.now(UTC) - timedelta(days=3))
    first = [fake.mention(f"@staedtedreieck eins {n}") for n in range(5)]

    def small() -> Adapter:
        adapter = platform.adapter()
        assert isinstance(adapter, MastodonAdapter)
        adapter.notifications_page = 2
        return adapter

    items, cursor = run(fetch(small(), None, []))
    assert sorted(i.remote_id for i in items) == sorted(first)
    assert old not in {i.remote_id for i in items}
    assert cursor is not None

    later = [fake.mention(f"@staedtedreieck zwei {n}") for n in range(5)]
    pages: list[InteractionPage] = []

    async def interrupted() -> None:
        adapter = small()
        try:
            async for page in adapter.interactions(cursor, [], since=datetime.now(UTC)):
                pages.append(page)
                if len(pages) == 2:  # the third request is refused
                    fake.inject(rate_limit(60), route="GET /api/v1/notifications")
        finally:
            await adapter.aclose()

    with pytest.raises(RateLimited):
        run(interrupted())
    got = [i.remote_id for p in pages for i in p.items]
    assert sorted(got) == sorted(later[:4])
    resumed = pages[-1].cursor
    assert resumed is not None
    rest, _cursor = run(fetch(small(), resumed, []))
    assert [i.remote_id for i in rest] == later[4:]


def test_a_reply_whose_answer_was_lost_is_not_sent_again_unasked(
    start_fake: FakeStarter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The platform took the reply but the answer was lost: the interaction counts as
    answered-maybe, a second reply needs --again, and with it goes through."""
    from crosspost.exceptions import InputError, UnknownOutcome
    from crosspost.inbox import reply as inbox_reply
    from crosspost.store.inbox import SqlInbox
    from crosspost.store.migrate import upgrade
    from crosspost.store.sql import SqlStore

    platform = facebook(start_fake, tmp_path, monkeypatch)
    fake = start_fake.started[-1]
    assert isinstance(fake, FacebookFake)
    post = run(_publish(platform.adapter()))
    asked = platform.answer(post)
    ref = PostRef(1, post.remote_id, post.remote_url, datetime.now(UTC))
    items, cursor = run(fetch(platform.adapter(), None, [ref]))
    store = SqlStore(f"sqlite:///{tmp_path / 'inbox.db'}", create=True)
    try:
        upgrade(store.engine)
        inbox = SqlInbox(store.engine)
        now = datetime.now(UTC)
        assert inbox.claim_sync("acc", "w", now=now, lease=timedelta(minutes=1))
        inbox.add_page("acc", "facebook", InteractionPage(items, cursor), worker="w", now=now)
        [item] = inbox.list_interactions()
        config = platform.adapter().settings
        fake.inject(lose_response(), route="POST /{node}/comments")
        with pytest.raises(UnknownOutcome, match="--again"):
            run(inbox_reply(inbox, config, item.id, ANSWER))
        assert platform.replies(asked) == [ANSWER]  # it did land
        with pytest.raises(InputError, match="--again"):
            run(inbox_reply(inbox, config, item.id, ANSWER))
        assert platform.replies(asked) == [ANSWER]
        answered = run(inbox_reply(inbox, config, item.id, "Nachtrag", again=True))
        assert platform.replies(asked) == [ANSWER, "Nachtrag"]
        assert answered.state is InteractionState.DONE
    finally:
        store.close()
