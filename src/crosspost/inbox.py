"""The interaction inbox: replies, mentions and comments from every network in one place.

The daemon's ``inbox`` job calls :func:`sync_account` for every enabled account
whose adapter ``fetches_interactions``: the adapter pages through what arrived
since the account's cursor, each page is stored with its cursor in one
transaction (a crash or a rate limit resumes where it stopped), and a rate
limit blocks only that account's sync until the platform's reset.

Editors work the inbox from the CLI (:mod:`crosspost.cli_inbox`): list, show,
reply (through the adapter, as a reply on the platform), done, and forward to an
office by mail. The first reply, or ``done``, is the interaction's response;
its time is also kept without any personal data in ``inbox_responses`` for the
yearly report (:func:`response_times`). :func:`purge` deletes interactions
``privacy.retention_days`` after they were done (docs/privacy.md).

This module imports neither SQLAlchemy nor httpx; the SQL lives in
:mod:`crosspost.store.inbox` (its in-memory twin in :mod:`crosspost.store.memory_inbox`),
the platforms in the adapters.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from crosspost.clock import Clock, system_clock
from crosspost.exceptions import (
    ConfigError,
    InputError,
    PlatformError,
    RateLimited,
    UnknownOutcome,
)
from crosspost.i18n import _

if TYPE_CHECKING:
    from crosspost.adapters.base import Adapter
    from crosspost.config import Settings
    from crosspost.models import PublishResult

T = TypeVar("T")
DbRunner = Callable[..., Awaitable[Any]]


class InteractionKind(enum.StrEnum):
    MENTION = "mention"  # someone named the account (Mastodon, Bluesky, X)
    REPLY = "reply"  # an answer to one of our posts (Bluesky, Threads)
    COMMENT = "comment"  # a comment under one of our posts (Facebook, Instagram, LinkedIn)
    QUOTE = "quote"  # a quote of one of our posts (Bluesky)


class InteractionState(enum.StrEnum):
    OPEN = "open"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class PostRef:
    """One of our published posts, whose comments an adapter may have to list."""

    delivery_id: int
    remote_id: str
    remote_url: str | None
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class Fetched:
    """An interaction as an adapter found it: only what answering needs."""

    remote_id: str
    kind: InteractionKind
    handle: str
    text: str
    url: str | None
    created_at: datetime
    #: the remote id of our post it answers, if the platform says
    parent_remote_id: str | None = None
    #: platform ids the reply needs (Bluesky: uri/cid of parent and root, …)
    reply_ref: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InteractionPage:
    """What one request brought, and the cursor to continue after it."""

    items: list[Fetched]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Interaction:
    id: int
    account: str
    platform: str
    remote_id: str
    kind: str
    delivery_id: int | None
    handle: str
    text: str
    url: str | None
    created_at: datetime
    fetched_at: datetime
    reply_ref: Mapping[str, str]
    state: InteractionState
    first_response_at: datetime | None = None
    replied_at: datetime | None = None
    reply_remote_id: str | None = None
    reply_url: str | None = None
    forwarded_to: str | None = None
    forwarded_at: datetime | None = None
    done_at: datetime | None = None
    #: the post it refers to (post id and title), when known
    post_id: int | None = None
    post_title: str | None = None

    @property
    def response_seconds(self) -> float | None:
        """From arrival on the platform to the first reply or ``done``."""
        if self.first_response_at is None:
            return None
        return max(0.0, (self.first_response_at - self.created_at).total_seconds())


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """What an adapter needs to answer an interaction on its platform."""

    remote_id: str
    handle: str
    kind: str
    parent_remote_id: str | None
    reply_ref: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class MonthResponses:
    """The response times of the interactions that arrived in one month."""

    month: int
    #: interactions answered (reply or done)
    answered: int
    #: interactions of the month still open without a response
    unanswered: int
    median_seconds: float | None
    p90_seconds: float | None
    max_seconds: float | None
    within_hour: int
    within_day: int
    #: answered ones per platform
    by_platform: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SyncResult:
    account: str
    fetched: int
    new: int
    #: why nothing (more) was fetched: rate limit, error, another daemon at work
    note: str | None = None
    ok: bool = True


class InboxStore(Protocol):
    """What the inbox needs from the database (:class:`crosspost.store.inbox.SqlInbox`)."""

    def sync_state(self, account: str) -> tuple[str | None, datetime | None]: ...
    def claim_sync(self, account: str, worker: str, *, now: datetime, lease: timedelta) -> bool: ...
    def release_sync(
        self,
        account: str,
        worker: str,
        *,
        now: datetime,
        blocked_until: datetime | None = None,
        error: str | None = None,
    ) -> None: ...
    def add_page(
        self,
        account: str,
        platform: str,
        page: InteractionPage,
        *,
        worker: str,
        now: datetime,
        lease: timedelta | None = None,
    ) -> int: ...
    def published_refs(self, account: str, *, since: datetime) -> list[PostRef]: ...
    def get(self, interaction_id: int) -> Interaction: ...
    def record_reply(
        self, interaction_id: int, result: PublishResult, *, now: datetime, done: bool
    ) -> Interaction: ...
    def note_reply_unknown(self, interaction_id: int, *, now: datetime) -> None: ...
    def mark_done(self, interaction_id: int, *, now: datetime) -> Interaction: ...
    def mark_forwarded(self, interaction_id: int, office: str, *, now: datetime) -> Interaction: ...
    def purge(self, *, before: datetime) -> int: ...


# -- fetching ---------------------------------------------------------------------------------


async def _inline(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return fn(*args, **kwargs)


async def sync_account(
    store: InboxStore,
    adapter: Adapter,
    settings: Settings,
    *,
    worker: str,
    clock: Clock = system_clock,
    db: DbRunner | None = None,
) -> SyncResult:
    """Fetch what arrived for one account since its cursor; store page by page.

    ``db`` runs the store's (blocking) calls, in the daemon on its database thread.
    """
    run = db or _inline
    name = adapter.name
    now = clock.now()
    lease = timedelta(seconds=max(60.0, settings.daemon.http_timeout * 4))
    if not await run(store.claim_sync, name, worker, now=now, lease=lease):
        return SyncResult(name, 0, 0, _("another daemon is fetching, or the account waits"))
    cursor, _synced = await run(store.sync_state, name)
    inbox = settings.inbox
    since = now - timedelta(days=inbox.lookback_days)
    posts = await run(store.published_refs, name, since=now - timedelta(days=inbox.watch_days))
    fetched = new = 0
    try:
        async for page in adapter.interactions(cursor, posts, since=since):
            fetched += len(page.items)
            new += await run(
                store.add_page, name, adapter.platform, page, worker=worker, now=clock.now(),
                lease=lease,
            )  # fmt: skip
    except RateLimited as exc:
        await run(
            store.release_sync, name, worker, now=clock.now(), blocked_until=exc.until,
            error=exc.message,
        )  # fmt: skip
        return SyncResult(name, fetched, new, exc.message, ok=True)
    except PlatformError as exc:
        await run(store.release_sync, name, worker, now=clock.now(), error=exc.message)
        return SyncResult(name, fetched, new, exc.message, ok=False)
    except BaseException:
        await run(store.release_sync, name, worker, now=clock.now())
        raise
    await run(store.release_sync, name, worker, now=clock.now())
    return SyncResult(name, fetched, new)


async def inbox_job(
    store: InboxStore,
    adapters: Mapping[str, Adapter],
    settings: Settings,
    *,
    worker: str,
    paused: Collection[str] = (),
    clock: Clock = system_clock,
    db: DbRunner | None = None,
) -> list[SyncResult]:
    """The daemon's periodic fetch: every account that has interactions and is not paused.

    One account's failure is logged and the others go on; only the database's
    failure (StoreError) stops the job, as in every daemon job.
    """
    from crosspost.exceptions import StoreError
    from crosspost.observability import EventLogger

    log = EventLogger("crosspost.inbox")
    results = []
    for name, adapter in adapters.items():
        if not adapter.inbox_enabled(adapter.config) or name in paused:
            continue
        try:
            result = await sync_account(store, adapter, settings, worker=worker, clock=clock, db=db)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - one account must not stop the others
            log.error("inbox_sync_crashed", account=name, error=repr(exc))
            continue
        results.append(result)
        if result.new or result.note:
            log.info(
                "inbox_synced" if result.ok else "inbox_sync_failed",
                account=name,
                new=result.new,
                note=result.note,
            )
    return results


def inbox_accounts(settings: Settings) -> list[str]:
    """The enabled accounts whose adapter fetches interactions."""
    from crosspost.adapters.base import adapter_class

    return [
        name
        for name, account in settings.enabled_accounts().items()
        if adapter_class(account.platform).inbox_enabled(account)
    ]


async def sync_all(
    store: InboxStore,
    settings: Settings,
    *,
    only: str | None = None,
    clock: Clock = system_clock,
) -> list[SyncResult]:
    """Fetch every account now (``crosspost inbox sync``): one result per account."""
    import os
    import socket

    from crosspost.adapters.base import build_adapter
    from crosspost.exceptions import CrosspostError, NotFound

    names = inbox_accounts(settings)
    if only is not None:
        if only not in names:
            raise NotFound(
                _("--account: {name} is not an enabled account that has interactions").format(
                    name=only
                )
            )
        names = [only]
    worker = f"cli:{socket.gethostname()}:{os.getpid()}"
    results = []
    for name in names:
        try:
            adapter = build_adapter(name, settings)
        except CrosspostError as exc:
            results.append(SyncResult(name, 0, 0, exc.message, ok=False))
            continue
        try:
            results.append(await sync_account(store, adapter, settings, worker=worker, clock=clock))
        finally:
            await adapter.aclose()
    return results


# -- answering --------------------------------------------------------------------------------


def render_template(settings: Settings, name: str, *, handle: str, office: str | None) -> str:
    """The text of reply template ``name`` for an interaction by ``handle``."""
    from crosspost.inbox_config import OFFICE_FIELDS, template_fields

    templates = settings.inbox.templates
    if name not in templates:
        known = ", ".join(sorted(templates)) or _("none configured")
        raise InputError(
            _("--template: no template {name!r} in inbox.templates; known: {known}").format(
                name=name, known=known
            )
        )
    template = templates[name]
    office_name = office or template.office
    values: dict[str, str] = {"handle": handle, "office": "", "email": "", "phone": ""}
    if office_name is not None:
        values.update(office_values(settings, office_name))
    elif template_fields(template.text) & OFFICE_FIELDS:
        raise InputError(
            _(
                "--template {name}: the text names an office; give --office NAME "
                "or set inbox.templates.{name}.office"
            ).format(name=name)
        )
    return template.text.format(**values)


def office_values(settings: Settings, office: str) -> dict[str, str]:
    offices = settings.inbox.offices
    if office not in offices:
        known = ", ".join(sorted(offices)) or _("none configured")
        raise InputError(
            _("no office {name!r} in inbox.offices; known: {known}").format(
                name=office, known=known
            )
        )
    entry = offices[office]
    return {"office": entry.name or office, "email": entry.email, "phone": entry.phone}


def reply_key(interaction_id: int, text: str) -> str:
    """A stable key for one reply text to one interaction (idempotent resend where possible)."""
    digest = hashlib.sha256(f"{interaction_id}\n{text}".encode()).hexdigest()[:32]
    return f"inbox-{interaction_id}-{digest}"


def check_reply_text(
    settings: Settings, platform: str, text: str, *, account: str | None = None
) -> None:
    """Refuse an empty text, or one too long for the platform (nothing is cut)."""
    from crosspost.counting import DEFAULT_LIMITS, measure

    if not text.strip():
        raise InputError(_("the reply text is empty"))
    if platform not in DEFAULT_LIMITS:
        return
    configured = settings.accounts.get(account or "")
    limit = getattr(configured, "max_characters", None)  # a Mastodon instance's own limit
    measured = measure(platform, text, limit=limit if isinstance(limit, int) else None)
    if measured.length > measured.limit:
        raise InputError(
            _("the reply is {length} {unit} long; {platform} allows {limit}").format(
                length=measured.length, unit=_(measured.unit), platform=platform,
                limit=measured.limit,
            )
        )  # fmt: skip


async def reply(
    store: InboxStore,
    settings: Settings,
    interaction_id: int,
    text: str,
    *,
    keep_open: bool = False,
    again: bool = False,
    clock: Clock = system_clock,
    adapter: Adapter | None = None,
) -> Interaction:
    """Answer on the platform, as a reply to the interaction; the first response.

    An interaction answered before is answered again only with ``again`` (a second
    reply by mistake would be public).
    """
    from crosspost.adapters.base import build_adapter

    item = store.get(interaction_id)
    if item.replied_at is not None and not again:
        raise InputError(
            _(
                "interaction {id} was answered already ({url}); give --again to reply once more"
            ).format(id=item.id, url=item.reply_url or item.reply_remote_id or _("outcome unknown"))
        )
    if adapter is None:
        if item.account not in settings.accounts:
            raise ConfigError(
                _("interaction {id}: the account {account} is no longer configured").format(
                    id=item.id, account=item.account
                )
            )
        check_reply_text(settings, item.platform, text, account=item.account)
        adapter = build_adapter(item.account, settings)
        owned = True
    else:
        check_reply_text(settings, item.platform, text, account=item.account)
        owned = False
    target = ReplyTarget(
        remote_id=item.remote_id,
        handle=item.handle,
        kind=item.kind,
        parent_remote_id=None,
        reply_ref=item.reply_ref,
    )
    try:
        result = await adapter.reply(target, text, key=reply_key(item.id, text))
    except UnknownOutcome as exc:
        # It may be on the platform: note it, so that only a deliberate --again sends more.
        store.note_reply_unknown(item.id, now=clock.now())
        raise UnknownOutcome(
            _(
                "{reason} — the reply may be on the platform: look at {url}, and give --again "
                "only if it is not there"
            ).format(reason=exc.message, url=item.url or item.remote_id),
            http_status=exc.http_status,
        ) from exc
    finally:
        if owned:
            await adapter.aclose()
    return store.record_reply(item.id, result, now=clock.now(), done=not keep_open)


def forward_message(
    settings: Settings, item: Interaction, office: str, zone: ZoneInfo
) -> tuple[str, str]:
    """Subject and body of the mail to an office: the request's text, link, time — no more."""
    name = office_values(settings, office)["office"]
    subject = _("Request via {platform} for {office} (crosspost inbox {id})").format(
        platform=item.platform, office=name, id=item.id
    )
    when = item.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    body = "\n".join(
        [
            _(
                "This request reached {site} on {platform}. Social media is no advice desk: "
                "the person is referred to you by phone or mail. Please answer them directly."
            ).format(site=settings.site.name or settings.site.url, platform=item.platform),
            "",
            _("Time: {time}").format(time=when),
            _("Link: {link}").format(link=item.url or "-"),
            "",
            item.text,
            "",
            "-- ",
            _("crosspost inbox, interaction {id}").format(id=item.id),
        ]
    )
    return subject, body


def forward(
    store: InboxStore,
    settings: Settings,
    interaction_id: int,
    office: str,
    *,
    clock: Clock = system_clock,
) -> Interaction:
    """Mail the request to an office's address over SMTP and note it."""
    from crosspost.mail import send_mail

    item = store.get(interaction_id)
    office_values(settings, office)  # an unknown office is bad input, before anything else
    if settings.smtp is None:
        raise ConfigError(
            _("smtp: no mail server configured; add an [smtp] section (docs/admin.md)")
        )
    subject, body = forward_message(settings, item, office, settings.site.zone)
    address = settings.inbox.offices[office].email
    send_mail(settings.smtp, to=[address], subject=subject, body=body)
    return store.mark_forwarded(item.id, office, now=clock.now())


def purge(store: InboxStore, settings: Settings, *, clock: Clock = system_clock) -> int:
    """Delete interactions done more than ``privacy.retention_days`` ago; how many."""
    before = clock.now() - timedelta(days=settings.privacy.retention_days)
    return store.purge(before=before)


def response_times(
    store_or_engine: Any, year: int, *, zone: ZoneInfo | None = None
) -> list[MonthResponses]:
    """Response times of the interactions that arrived in ``year``, one entry per month.

    ``store_or_engine``: a :class:`crosspost.store.sql.SqlStore` or a SQLAlchemy
    ``Engine``. Months are those of ``zone`` (default UTC). The figures come from
    ``inbox_responses`` (kept without personal data after the interactions are
    purged) and, for the unanswered ones, from the open interactions.
    """
    from crosspost.store.inbox import SqlInbox

    return SqlInbox.of(store_or_engine).response_times(year, zone=zone)


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile of sorted ``values``."""
    if not values:
        return None
    rank = max(1, -(-len(values) * share // 1))
    return values[int(rank) - 1]
