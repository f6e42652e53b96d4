"""What the adapter integration tests (``tests/integration/test_*_adapter.py``) share.

Each of them builds an adapter from :class:`~crosspost.config.Settings` as the daemon does
(:func:`build`), runs a scenario with the adapter opened and closed around it (:func:`run`),
and publishes requests that differ only in their defaults (:class:`Requests`); the cases
every platform has (delete twice, a refused credential) are scenarios here. The platform's
own account table, fake, faults and what each case must show stay in the test module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from crosspost.adapters.base import Adapter, build_adapter
from crosspost.exceptions import AuthError, RateLimited, Rejected, Transient, UnknownOutcome
from crosspost.models import Checkpoint, Media, PublishRequest, PublishResult
from tests.rawsettings import settings_from

T = TypeVar("T")
A = TypeVar("A", bound=Adapter)

SITE = {"url": "https://www.zv-staedtedreieck.de", "name": "Zweckverband Städtedreieck"}


def build(
    kind: type[A],
    name: str,
    account: dict[str, Any],
    *,
    timeout: float = 5.0,
    state_dir: Path | None = None,
) -> A:
    """The adapter for the account ``name`` with the table ``account``, built from Settings
    as the daemon does (its secret already in the variable the table names)."""
    daemon: dict[str, Any] = {"http_timeout": timeout}
    if state_dir is not None:
        daemon["state_dir"] = str(state_dir)
    settings = settings_from(site=SITE, daemon=daemon, accounts={name: account})
    adapter = build_adapter(name, settings)
    assert isinstance(adapter, kind)
    return adapter


def run(adapter: Adapter, scenario: Callable[[], Awaitable[T]]) -> T:
    """Run ``scenario`` in a fresh event loop, with the adapter opened and closed around it."""

    async def main() -> T:
        await adapter.open()
        try:
            return await scenario()
        finally:
            await adapter.aclose()

    return asyncio.run(main())


async def publish_twice(adapter: Adapter, request: PublishRequest) -> tuple[str, str]:
    """Publish ``request`` and then the same again (a resend); the two remote ids."""
    first = await adapter.publish(request)
    second = await adapter.publish(request)
    return first.remote_id, second.remote_id


async def lost_then_found(
    adapter: Adapter, request: PublishRequest, on_platform: Callable[[], Sequence[Any]]
) -> tuple[Any, PublishResult]:
    """The post lands but its answer is lost: UnknownOutcome (sent); ``find_existing`` then
    finds the one post ``on_platform``. That post and what was found."""
    with pytest.raises(UnknownOutcome) as caught:
        await adapter.publish(request)
    assert caught.value.sent is True
    [landed] = on_platform()
    found = await adapter.find_existing(request)
    assert found is not None
    assert found.remote_id == landed.id
    return landed, found


async def transient_then_published(adapter: Adapter, request: PublishRequest) -> Transient:
    """The first try fails as Transient; the same request tried again publishes. The error."""
    with pytest.raises(Transient) as caught:
        await adapter.publish(request)
    await adapter.publish(request)
    return caught.value


async def rate_limited_until(
    call: Callable[[], Awaitable[object]], *, match: str | None = None
) -> datetime:
    """``call`` raises RateLimited (its text matching ``match``) that says until when; that
    instant."""
    with pytest.raises(RateLimited, match=match) as caught:
        await call()
    until = caught.value.until
    assert until is not None
    return until


async def delete_twice(
    adapter: Adapter, request: PublishRequest, on_platform: Callable[[], Sequence[object]]
) -> None:
    """Publish ``request``, delete the post and find nothing ``on_platform``, then delete it
    again: a post already gone counts as deleted."""
    result = await adapter.publish(request)
    await adapter.delete(result.remote_id)
    assert on_platform() == []
    await adapter.delete(result.remote_id)


def refused(adapter: Adapter, request: PublishRequest, match: str) -> Rejected:
    """Publishing ``request`` (the adapter opened around it) fails for good: Rejected, its
    text matching ``match``; the error, to look at further."""
    with pytest.raises(Rejected, match=match) as caught:
        run(adapter, lambda: adapter.publish(request))
    return caught.value


def unreadable_image_refused(
    adapter: Adapter, requests: Callable[..., PublishRequest], folder: Path
) -> None:
    """Publishing a post whose image file is missing fails for good (Rejected, not sent),
    naming the file."""
    media = (Media(folder / "fehlt.jpg", "Alt"),)
    with pytest.raises(Rejected, match=r"fehlt\.jpg") as caught:
        run(adapter, lambda: adapter.publish(requests(media=media)))
    assert caught.value.sent is False


async def auth_failures(adapter: Adapter, request: PublishRequest, match: str) -> list[AuthError]:
    """Publishing ``request`` and verifying the account each raise an AuthError whose text
    matches ``match`` (the credential is refused); the two errors, to look at further."""
    errors = []
    for call in (lambda: adapter.publish(request), adapter.verify):
        with pytest.raises(AuthError, match=match) as caught:
            await call()
        errors.append(caught.value)
    return errors


@dataclass(frozen=True)
class Requests:
    """Publish requests of one delivery of one account: ``publish_request()`` is the default
    one; ``publish_request(text, media=..., created_at=..., progress=...)`` varies it."""

    account: str
    text: str
    link: str
    title: str
    key: str
    delivery_id: int = 1

    def __call__(
        self,
        text: str | None = None,
        *,
        media: tuple[Media, ...] = (),
        created_at: datetime | None = None,
        progress: Mapping[str, str] | None = None,
        checkpoint: Checkpoint | None = None,
        media_urls: tuple[str, ...] = (),
    ) -> PublishRequest:
        # without a checkpoint the request keeps PublishRequest's own default
        extra: dict[str, Any] = {"checkpoint": checkpoint} if checkpoint else {}
        return PublishRequest(
            delivery_id=self.delivery_id,
            post_id=self.delivery_id,
            account=self.account,
            text=self.text if text is None else text,
            link=self.link,
            title=self.title,
            media=media,
            idempotency_key=self.key,
            created_at=created_at or datetime.now(UTC) - timedelta(minutes=1),
            progress=dict(progress or {}),
            media_urls=media_urls,
            **extra,
        )
