"""The domain records: posts, deliveries, attempts, and what adapters exchange.

Records are frozen; the store hands out new ones instead of mutating. A post's
own records (:class:`Post`, :class:`Media`, :class:`Rendered`) live in
:mod:`crosspost.records` and are re-exported here.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# The post's own records are written out by hand (enqueue --dry-run starts without
# dataclasses); they are the same classes here.
from crosspost.records import Media, Post, Rendered


class DeliveryState(enum.StrEnum):
    """Where one post stands on one account (SPEC: delivery states)."""

    SCHEDULED = "scheduled"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    RETRYING = "retrying"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    RETRACTED = "retracted"
    #: awaiting a second person's approval (``crosspost approve``); never claimed
    DRAFT = "draft"
    #: refused by the approver (``crosspost reject``); final
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self in _FINAL

    @property
    def is_pending(self) -> bool:
        """Still waiting to be published (claimable when due)."""
        return self in (DeliveryState.SCHEDULED, DeliveryState.RETRYING)


_FINAL = frozenset(
    {
        DeliveryState.PUBLISHED,
        DeliveryState.FAILED,
        DeliveryState.CANCELLED,
        DeliveryState.RETRACTED,
        DeliveryState.REJECTED,
    }
)


class Outcome(enum.StrEnum):
    """What one attempt (one try against the platform) ended with."""

    PENDING = "pending"  # written before the request; replaced when the answer comes
    PUBLISHED = "published"
    FOUND = "found"  # reconciliation found the post already on the platform
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
    CRASHED = "crashed"  # the worker died with the request in flight
    RELEASED = "released"  # given back unsent at shutdown


def post_state(states: list[DeliveryState]) -> str:
    """A post's state, derived from its deliveries (SPEC: never stored)."""
    if not states:
        return "empty"
    unique = set(states)
    if len(unique) == 1:
        return states[0].value
    for worst in (DeliveryState.UNKNOWN, DeliveryState.FAILED, DeliveryState.PUBLISHING):
        if worst in unique:
            return worst.value if worst is not DeliveryState.FAILED else "partly_failed"
    if unique & {DeliveryState.SCHEDULED, DeliveryState.RETRYING}:
        return "partly_published" if DeliveryState.PUBLISHED in unique else "scheduled"
    return "mixed"


@dataclass(frozen=True, slots=True)
class StoredPost:
    id: int
    title: str
    body: str
    link: str
    category: str | None
    publish_at: datetime | None
    created_at: datetime
    created_by: str
    source: str | None
    media: tuple[Media, ...]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One post on one account: the unit the daemon claims and publishes."""

    id: int
    post_id: int
    account: str
    platform: str
    state: DeliveryState
    due_at: datetime
    text: str
    idempotency_key: str
    attempts: int = 0
    remote_id: str | None = None
    remote_url: str | None = None
    error: str | None = None
    lease_until: datetime | None = None
    worker: str | None = None
    #: fencing token: bumped by every claim; a worker whose lease was taken over
    #: cannot change the row any more
    lease_token: int = 0
    #: an earlier attempt may have landed: look on the platform before sending again
    uncertain: bool = False
    updated_at: datetime | None = None
    published_at: datetime | None = None
    #: what the adapter recorded before its request (see PublishRequest.progress)
    progress: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try against the platform, written before the request goes out."""

    id: int
    delivery_id: int
    post_id: int
    account: str
    number: int
    started_at: datetime
    outcome: Outcome
    idempotency_key: str
    worker: str
    finished_at: datetime | None = None
    http_status: int | None = None
    message: str | None = None
    duration_ms: int | None = None


Checkpoint = Callable[[Mapping[str, str]], Awaitable[None]]


async def _no_checkpoint(progress: Mapping[str, str]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """Everything an adapter needs to publish one delivery."""

    delivery_id: int
    post_id: int
    account: str
    text: str
    link: str
    title: str
    media: tuple[Media, ...]
    idempotency_key: str
    created_at: datetime
    #: what an earlier attempt of this delivery recorded before its request
    #: (a Bluesky record key, a Meta container id): look it up before sending again
    progress: Mapping[str, str] = field(default_factory=dict)
    #: records ``progress`` durably *before* the request that depends on it; an
    #: adapter that chooses its own remote key calls this first
    checkpoint: Checkpoint = _no_checkpoint
    #: the URLs under which the website publishes the media (Instagram and
    #: Threads fetch images from a public URL), in the order of ``media``
    media_urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PublishResult:
    remote_id: str
    remote_url: str | None = None


#: two answers whose reset times lie closer than this speak of the same window
SAME_WINDOW = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class Budget:
    """What a platform's answer said is left of an account's request budget.

    ``remaining`` requests until ``reset``, when the window refills (Mastodon's
    ``X-RateLimit-Remaining``/``-Reset``, Bluesky's ``RateLimit-*``, X's
    ``x-rate-limit-*``; 0 where a platform only says "spent until", as Meta's usage
    headers do). The daemons share it through ``account_state`` (docs/scaling.md).
    """

    remaining: int
    reset: datetime

    def merged(self, newer: Budget) -> Budget:
        """This stored budget updated by a ``newer`` answer.

        Within one window the budget only shrinks, whatever order the answers
        arrive in: the smaller ``remaining`` wins. A later reset is a new window
        and replaces it; an answer from an earlier window changes nothing.
        """
        if abs(newer.reset - self.reset) <= SAME_WINDOW:
            return Budget(min(self.remaining, newer.remaining), max(self.reset, newer.reset))
        return newer if newer.reset > self.reset else self


@dataclass(frozen=True, slots=True)
class PostMetrics:
    """Engagement figures of one published post; None where the platform gives none."""

    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    views: int | None = None


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """What ``accounts check`` learns from a platform about a credential."""

    name: str  # the handle or display name on the platform
    url: str | None = None
    detail: str | None = None
    #: when the credential stops working (Threads, LinkedIn, X), if the platform says
    token_expires_at: datetime | None = None
    followers: int | None = None


__all__ = [
    "AccountInfo",
    "Attempt",
    "Budget",
    "Checkpoint",
    "Delivery",
    "DeliveryState",
    "Media",
    "Outcome",
    "Post",
    "PostMetrics",
    "PublishRequest",
    "PublishResult",
    "Rendered",
    "StoredPost",
    "post_state",
]
