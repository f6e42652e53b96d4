"""The editors' and admins' operations, as a Python API; the CLI is a thin skin over it.

Every operation that changes the queue validates everything first and writes
only when all of it is valid, so bad input writes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping  # loaded with tomllib anyway

from crosspost.clock import system_clock
from crosspost.compose import account_limit, render
from crosspost.counting import measure
from crosspost.exceptions import PostFileError
from crosspost.i18n import _
from crosspost.postfile import post_from_data, read_post_file
from crosspost.records import Post, Record, Rendered
from crosspost.timeparse import TimeError, parse_when

TYPE_CHECKING = False  # importing typing costs; mypy knows the name
if TYPE_CHECKING:
    # not at run time: enqueue --dry-run starts without pydantic, the store, pathlib and
    # the models of deliveries (dryrun.py)
    from collections.abc import Callable, Iterator, Sequence
    from datetime import datetime
    from pathlib import Path

    from crosspost.clock import Clock
    from crosspost.config import Settings
    from crosspost.models import Delivery, DeliveryState, StoredPost
    from crosspost.store.base import Store


def current_user() -> str:
    """Who is acting: the OS user, or the one behind sudo."""
    import getpass

    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


class Planned(Record):
    """A validated post, the time it is due, and what each account receives."""

    _fields = ("post", "due_at", "rendered", "notes")
    __slots__ = _fields

    post: Post
    due_at: datetime
    rendered: list[Rendered]
    #: notes for the editor (time in the past, ambiguous wall time)
    notes: list[str]

    def __init__(
        self,
        post: Post,
        due_at: datetime,
        rendered: list[Rendered],
        notes: list[str] | None = None,
    ) -> None:
        object.__setattr__(self, "post", post)
        object.__setattr__(self, "due_at", due_at)
        object.__setattr__(self, "rendered", rendered)
        object.__setattr__(self, "notes", [] if notes is None else notes)


class LazyLimits(Mapping[str, int]):
    """The limits ``load`` returns, loaded on the first look.

    A Mastodon account with ``max_characters`` never needs the limits the daemon
    learnt; ``enqueue --dry-run`` then does not open the database at all.
    """

    def __init__(self, load: Callable[[], dict[str, int]]) -> None:
        self._load = load
        self._limits: dict[str, int] | None = None

    def _loaded(self) -> dict[str, int]:
        if self._limits is None:
            self._limits = self._load()
        return self._limits

    def __getitem__(self, name: str) -> int:
        return self._loaded()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


class Crosspost:
    def __init__(self, settings: Settings, store: Store, *, clock: Clock = system_clock) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock

    # -- planning -----------------------------------------------------------------------
    def learned_limits(self) -> dict[str, int]:
        return {
            name: state.text_limit
            for name, state in self.store.account_states().items()
            if state.text_limit
        }

    def read_files(self, paths: Sequence[Path | str]) -> list[Post]:
        now = self.clock.now()
        return [read_post_file(p, zone=self.settings.site.zone, now=now) for p in paths]

    def post_from_text(
        self,
        text: str,
        *,
        link: str | None,
        category: str | None,
        accounts: Sequence[str],
        title: str | None,
    ) -> Post:
        data: dict[str, object] = {"accounts": list(accounts)}
        if link is not None:
            data["link"] = link
        if category is not None:
            data["category"] = category
        if title is not None:
            data["title"] = title
        return post_from_data(
            data,
            text,
            source="--text",
            folder=None,
            zone=self.settings.site.zone,
            now=self.clock.now(),
        )

    def plan(self, post: Post, *, at: str | None = None, check: bool = True) -> Planned:
        """Validate a post for every target account and decide when it is due."""
        now = self.clock.now()
        zone = self.settings.site.zone
        notes: list[str] = []
        publish_at, ambiguous = post.publish_at, post.ambiguous_time
        if at is not None:
            try:
                resolved = parse_when(at, zone, now)
            except TimeError as exc:
                raise PostFileError(_("--at: {problem}").format(problem=exc)) from None
            publish_at, ambiguous = resolved.at, resolved.ambiguous
        if publish_at is None or publish_at <= now:
            if publish_at is not None and publish_at < now:
                notes.append(
                    _(
                        "the publication time {time} is in the past: published as soon as possible"
                    ).format(time=self.local(publish_at))
                )
            due = now
        else:
            due = publish_at
        if ambiguous and publish_at is not None:
            notes.append(
                _(
                    "{time} occurs twice in {zone} (daylight saving time ends); "
                    "the first occurrence is used"
                ).format(time=self.local(publish_at), zone=zone.key)
            )
        # SPEC: ``link`` defaults to ``site.url``; stored so that every view and adapter has it
        link = post.link or self.settings.site.url
        post = post.replace(publish_at=publish_at, ambiguous_time=ambiguous, link=link)
        learned = LazyLimits(self.learned_limits)  # read only if an account's limit is learnt
        rendered = render(post, self.settings, learned_limits=learned, check=check)
        return Planned(post=post, due_at=due, rendered=rendered, notes=notes)

    def enqueue(self, planned: Sequence[Planned]) -> list[int]:
        """Store validated posts; return their ids."""
        user = current_user()
        now = self.clock.now()
        # One transaction: a failure part-way (disk full) queues none, so a retry
        # of the same command cannot queue any post twice.
        return self.store.enqueue_many(
            [(p.post, p.rendered, p.due_at) for p in planned], created_by=user, now=now
        )

    # -- reading ------------------------------------------------------------------------
    def stored_preview(self, post_id: int) -> tuple[StoredPost, list[Rendered]]:
        post = self.store.get_post(post_id)
        rendered = []
        learned = self.learned_limits()
        for d in self.store.deliveries_of(post_id):
            limit = (
                account_limit(d.account, self.settings, learned)
                if d.account in self.settings.accounts
                else None
            )
            caption = d.platform == "telegram" and bool(post.media)
            m = measure(d.platform, d.text, limit=None if caption else limit, caption=caption)
            rendered.append(
                Rendered(
                    account=d.account,
                    platform=d.platform,
                    text=d.text,
                    length=m.length,
                    limit=m.limit,
                    unit=m.unit,
                )
            )
        return post, rendered

    def local(self, when: datetime) -> str:
        """A time as editors read it: wall time in the site's zone."""
        return when.astimezone(self.settings.site.zone).strftime("%Y-%m-%d %H:%M %Z")

    def pending_states(self) -> set[DeliveryState]:
        from crosspost.models import DeliveryState

        return {s for s in DeliveryState if not s.is_final}


def delivery_sort_key(d: Delivery) -> tuple[str, int]:
    return (d.account, d.id)


class AccountOutcome(Record):
    """What an operation did on one account (retract, metrics)."""

    _fields = ("account", "ok", "message")
    __slots__ = _fields

    account: str
    ok: bool
    message: str

    def __init__(self, account: str, ok: bool, message: str) -> None:
        object.__setattr__(self, "account", account)
        object.__setattr__(self, "ok", ok)
        object.__setattr__(self, "message", message)


async def retract(service: Crosspost, post_id: int) -> list[AccountOutcome]:
    """Delete a post everywhere it was published; cancel what is still waiting."""
    from crosspost.adapters.base import build_adapter
    from crosspost.exceptions import CrosspostError
    from crosspost.models import DeliveryState
    from crosspost.workflow import Workflow  # the audit log records who retracted

    store, flow = service.store, Workflow(service)
    deliveries = store.deliveries_of(post_id)
    if not deliveries:
        store.get_post(post_id)  # NotFound for a post that does not exist
    results: list[AccountOutcome] = []
    waiting = [d for d in deliveries if d.state.is_pending or d.state is DeliveryState.UNKNOWN]
    if waiting:
        flow.cancel_waiting(post_id)
        for d in waiting:
            note = _("cancelled before publication")
            if d.state is DeliveryState.UNKNOWN:
                note = _("cancelled; it may be on the platform already — check it there")
            results.append(AccountOutcome(d.account, d.state is not DeliveryState.UNKNOWN, note))
    for d in deliveries:
        if d.state is DeliveryState.PUBLISHING:
            results.append(
                AccountOutcome(
                    d.account, False, _("being published right now; run retract again shortly")
                )
            )
        if d.state is not DeliveryState.PUBLISHED or d.remote_id is None:
            continue
        if d.account not in service.settings.accounts:
            results.append(
                AccountOutcome(d.account, False, _("the account is no longer configured"))
            )
            continue
        try:
            adapter = build_adapter(d.account, service.settings)
            try:
                await adapter.delete(d.remote_id)
            finally:
                await adapter.aclose()
        except CrosspostError as exc:
            results.append(AccountOutcome(d.account, False, exc.message))
            continue
        flow.mark_retracted(d.id)
        results.append(AccountOutcome(d.account, True, _("deleted")))
    _remove_public_media(service, post_id)
    return results


def _remove_public_media(service: Crosspost, post_id: int) -> None:
    """Once nothing of the post is published any more, its images copied into
    ``[media] path`` for Instagram and Threads leave the website too."""
    from crosspost.media import remove_public_media
    from crosspost.models import DeliveryState

    if service.settings.media.path is None:
        return
    if any(
        d.state in (DeliveryState.PUBLISHED, DeliveryState.PUBLISHING)
        for d in service.store.deliveries_of(post_id)
    ):
        return
    try:
        remove_public_media(service.settings, post_id, service.store.get_post(post_id).media)
    except OSError as exc:
        from crosspost.observability import EventLogger

        EventLogger("crosspost.service").warning(
            "media_remove_failed", post=post_id, error=exc.strerror or str(exc)
        )


async def collect_metrics(
    service: Crosspost,
    *,
    since: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[AccountOutcome]:
    """Sample engagement of published posts at their fixed ages and today's follower
    counts, and store them (see :mod:`crosspost.sampling`)."""
    from crosspost.exceptions import InputError
    from crosspost.sampling import collect
    from crosspost.store.metrics import EvaluationStore
    from crosspost.store.sql import SqlStore

    if not isinstance(service.store, SqlStore):
        raise InputError(_("metrics are collected into a SQL database only"))
    runs = await collect(
        service.settings,
        EvaluationStore(service.store),
        clock=service.clock,
        progress=progress,
        since=since,
    )
    return [AccountOutcome(r.account, r.ok, r.message) for r in runs]
