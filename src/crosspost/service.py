"""The editors' and admins' operations, as a Python API; the CLI is a thin skin over it.

Every operation that changes the queue validates everything first and writes
only when all of it is valid, so bad input writes nothing.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence
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
