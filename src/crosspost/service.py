"""The editors' and admins' operations, as a Python API; the CLI is a thin skin over it.

Every operation that changes the queue validates everything first and writes
only when all of it is valid, so bad input writes nothing.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from crosspost.clock import Clock, system_clock
from crosspost.compose import account_limit, render
from crosspost.config import Settings
from crosspost.counting import measure
from crosspost.exceptions import PostFileError
from crosspost.i18n import _
from crosspost.models import Delivery, DeliveryState, Post, Rendered, StoredPost
from crosspost.postfile import post_from_data, read_post_file
from crosspost.store.base import Store
from crosspost.timeparse import TimeError, parse_when


def current_user() -> str:
    """Who is acting: the OS user, or the one behind sudo."""
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@dataclass(frozen=True, slots=True)
class Planned:
    """A validated post, the time it is due, and what each account receives."""

    post: Post
    due_at: datetime
    rendered: list[Rendered]
    #: notes for the editor (time in the past, ambiguous wall time)
    notes: list[str] = field(default_factory=list)


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

    def read_files(self, paths: Sequence[Path]) -> list[Post]:
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
        post = replace(post, publish_at=publish_at, ambiguous_time=ambiguous)
        rendered = render(post, self.settings, learned_limits=self.learned_limits(), check=check)
        return Planned(post=post, due_at=due, rendered=rendered, notes=notes)

    def enqueue(self, planned: Sequence[Planned]) -> list[int]:
        """Store validated posts; return their ids."""
        user = current_user()
        now = self.clock.now()
        return [
            self.store.enqueue(p.post, p.rendered, due_at=p.due_at, created_by=user, now=now)
            for p in planned
        ]

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
        return {s for s in DeliveryState if not s.is_final}


def delivery_sort_key(d: Delivery) -> tuple[str, int]:
    return (d.account, d.id)


@dataclass(frozen=True, slots=True)
class AccountOutcome:
    """What an operation did on one account (retract, metrics)."""

    account: str
    ok: bool
    message: str


async def retract(service: Crosspost, post_id: int) -> list[AccountOutcome]:
    """Delete a post everywhere it was published; cancel what is still waiting."""
    from crosspost.adapters.base import build_adapter
    from crosspost.exceptions import CrosspostError

    store, now = service.store, service.clock.now()
    deliveries = store.deliveries_of(post_id)
    if not deliveries:
        store.get_post(post_id)  # NotFound for a post that does not exist
    results: list[AccountOutcome] = []
    waiting = [d for d in deliveries if d.state.is_pending or d.state is DeliveryState.UNKNOWN]
    if waiting:
        store.cancel(post_id, now=now)
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
        store.mark_retracted(d.id, now=service.clock.now())
        results.append(AccountOutcome(d.account, True, _("deleted")))
    return results


async def collect_metrics(
    service: Crosspost,
    *,
    since: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[AccountOutcome]:
    """Fetch engagement of published posts and follower counts, and store them."""
    from crosspost.adapters.base import build_adapter
    from crosspost.exceptions import CrosspostError, RateLimited

    store = service.store
    published = [
        d for d in store.published(since=since) if d.account in service.settings.enabled_accounts()
    ]
    by_account: dict[str, list[Delivery]] = {}
    for d in published:
        by_account.setdefault(d.account, []).append(d)
    results: list[AccountOutcome] = []
    done = 0
    total = len(published)
    for name in service.settings.enabled_accounts():
        collected = 0
        try:
            adapter = build_adapter(name, service.settings)
        except CrosspostError as exc:
            results.append(AccountOutcome(name, False, exc.message))
            done += len(by_account.get(name, []))
            continue
        try:
            followers = await adapter.followers()
            if followers is not None:
                store.record_followers(name, followers, now=service.clock.now())
            for d in by_account.get(name, []):
                metrics = await adapter.metrics(d.remote_id or "")
                if metrics is not None:
                    store.record_metrics(d, metrics, now=service.clock.now())
                    collected += 1
                done += 1
                if progress:
                    progress(done, total)
        except RateLimited as exc:
            results.append(
                AccountOutcome(
                    name, False, _("rate limited; try later: {reason}").format(reason=exc.message)
                )
            )
            continue
        except CrosspostError as exc:
            results.append(AccountOutcome(name, False, exc.message))
            continue
        finally:
            await adapter.aclose()
        results.append(
            AccountOutcome(
                name,
                True,
                _("{n} posts measured; followers: {followers}").format(
                    n=collected, followers="-" if followers is None else followers
                ),
            )
        )
    return results
