"""The adapter port: what every platform module implements.

An adapter turns one :class:`~crosspost.models.PublishRequest` into one post on
its platform and raises only :class:`~crosspost.exceptions.PlatformError`
subclasses (mapped in :mod:`crosspost.adapters._http`). It knows nothing of
the database, of retries or of other accounts: the publisher decides what a
failure means for the delivery.

Two class attributes tell the publisher how to recover when the outcome of a
request is unknown (timeout or reset after sending):

``idempotent_resend``
    sending again with the same ``idempotency_key`` cannot make a second copy
    (Mastodon's ``Idempotency-Key`` within its window, a webhook receiver that
    deduplicates, the feed that overwrites its own entry).
``can_reconcile``
    :meth:`Adapter.find_existing` can tell for sure whether the post landed.

Where neither holds (Telegram), an unknown outcome stays ``unknown`` for the
admin: a blind resend could post twice.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from crosspost.exceptions import Rejected
from crosspost.i18n import _
from crosspost.models import Budget

if TYPE_CHECKING:
    import httpx
    from pydantic import SecretStr

    from crosspost.config import AccountBase, Settings
    from crosspost.inbox import InteractionPage, PostRef, ReplyTarget
    from crosspost.models import AccountInfo, PostMetrics, PublishRequest, PublishResult


@dataclass(slots=True)
class Answers:
    """What the platform answered during one attempt: the publisher sets a fresh one
    around each attempt (:data:`ANSWERS`), :mod:`crosspost.adapters._http` fills it."""

    #: the HTTP statuses in order; the last one is recorded with the attempt
    #: (``attempts.http_status``)
    statuses: list[int] = field(default_factory=list)
    #: the account's request budget as the last answer that gave one stated it
    #: (written with the settlement, shared by all daemons: docs/scaling.md)
    budget: Budget | None = None


ANSWERS: ContextVar[Answers | None] = ContextVar("crosspost_answers", default=None)


class Adapter(abc.ABC):
    platform: ClassVar[str]
    idempotent_resend: ClassVar[bool] = False
    #: how long the platform honours an idempotency key (None: for ever); a post it
    #: confirmed longer ago than this is never resent, even with the same key
    idempotency_ttl: ClassVar[timedelta | None] = None
    can_reconcile: ClassVar[bool] = False

    def __init__(
        self,
        name: str,
        config: AccountBase,
        settings: Settings,
        *,
        secret: SecretStr | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.config = config
        self.settings = settings
        self._secret = secret
        self._transport = transport
        self._timeout = timeout

    async def open(self) -> None:  # noqa: B027 - optional hook, most adapters need nothing
        """Prepare for publishing (log in, learn the instance's limits)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def text_limit(self) -> int | None:
        """The limit learnt from the platform, if it overrides the configured one."""
        return None

    @abc.abstractmethod
    async def publish(self, request: PublishRequest) -> PublishResult:
        """Publish; raise a PlatformError subclass on failure."""

    async def find_existing(self, request: PublishRequest) -> PublishResult | None:
        """Look the post up on the platform (only where ``can_reconcile``)."""
        raise NotImplementedError

    async def delete(self, remote_id: str) -> None:
        """Remove a published post (``crosspost retract``); gone already counts as done.

        Raise :class:`~crosspost.exceptions.Rejected` with a clear message where the
        platform does not allow it (e.g. Telegram after 48 hours).
        """
        raise Rejected(
            _("{platform} posts cannot be deleted through crosspost").format(platform=self.platform)
        )

    async def metrics(self, remote_id: str) -> PostMetrics | None:
        """Likes, reposts, replies, views of a published post; None where unavailable."""
        return None

    async def followers(self) -> int | None:
        """The account's follower count, where the platform tells it."""
        return None

    #: whether :meth:`interactions` fetches replies, mentions and comments (the inbox)
    fetches_interactions: ClassVar[bool] = False

    @classmethod
    def inbox_enabled(cls, config: AccountBase) -> bool:
        """Whether the inbox fetches this account (the platform can, and the account wants)."""
        return cls.fetches_interactions

    def interactions(
        self, cursor: str | None, posts: Sequence[PostRef], *, since: datetime
    ) -> AsyncIterator[InteractionPage]:
        """Replies, mentions and comments since ``cursor`` (or ``since`` on the first fetch),
        page by page, each with the cursor to continue after it. ``posts`` are the account's
        recently published posts (for platforms that list comments per post)."""
        raise Rejected(
            _("{platform}: crosspost cannot fetch interactions").format(platform=self.platform)
        )

    async def reply(self, target: ReplyTarget, text: str, *, key: str) -> PublishResult:
        """Answer an interaction on the platform, as a reply to it."""
        raise Rejected(
            _("{platform}: crosspost cannot reply to interactions").format(platform=self.platform),
            sent=False,
        )

    def token_expires_at(self) -> datetime | None:
        """When the credential expires, as learnt in ``open``/``verify`` (or configured)."""
        return getattr(self.config, "token_expires_at", None)

    @property
    def state_dir(self) -> Path:
        """A private folder (0700) for session files; sessions are secrets, never in the DB."""
        root = self.settings.daemon.state_dir
        folder = root / "sessions"
        # Both levels private: mkdir(parents=True) would give the state folder the umask's mode.
        for path in (root, folder):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return folder

    @abc.abstractmethod
    async def verify(self) -> AccountInfo:
        """Check the credential against the platform (``accounts check``)."""


def adapter_class(platform: str) -> type[Adapter]:
    """The adapter class for ``platform``, imported only when needed."""
    module = importlib.import_module(f"crosspost.adapters.{platform}")
    cls: type[Adapter] = module.ADAPTER
    return cls


def build_adapter(
    name: str,
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Adapter:
    """An adapter for the configured account ``name``, with its secret loaded."""
    config = settings.accounts[name]
    secret = config.secret(name) if config.needs_secret else None
    cls = adapter_class(config.platform)
    return cls(
        name,
        config,
        settings,
        secret=secret,
        transport=transport,
        timeout=settings.daemon.http_timeout,
    )
