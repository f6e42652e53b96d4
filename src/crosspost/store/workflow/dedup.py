"""The duplicate guard: a post whose link or text went, or goes, to the same
account within ``dedup.days`` is refused unless forced.

It compares SHA-256 digests stored with each post (indexed), so its cost does
not grow with the queue. On PostgreSQL the check and the insert after it run
under a transaction-scoped advisory lock per account, so two enqueues of the
same post at once cannot both pass at read committed (SQLite: every write
transaction holds the database's write lock).
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from crosspost.exceptions import PostRejected
from crosspost.i18n import _, ngettext
from crosspost.models import DeliveryState, Post, Rendered
from crosspost.store.schema import deliveries, posts
from crosspost.store.workflow._base import LIVE, WorkflowBase, aware


@dataclass(frozen=True, slots=True)
class Duplicate:
    post_id: int
    account: str
    state: str
    when: datetime
    reason: str  # "link" or "text"


@dataclass(frozen=True, slots=True)
class DedupQuery:
    """What the duplicate guard compares: the link (unless it is the site's root) and text."""

    days: int  # 0: the guard is off (the keys are stored all the same)
    link: str | None  # None: the link is the site's own address, shared by many posts
    body: str
    zone: ZoneInfo

    def keys(self) -> tuple[str | None, str]:
        return digests(self.link, self.body)


def digests(link: str | None, body: str) -> tuple[str | None, str]:
    """The guard's keys: SHA-256 of the link and of the text (whitespace evened out)."""
    link_key = hashlib.sha256(link.encode()).hexdigest() if link else None
    return link_key, hashlib.sha256(" ".join(body.split()).encode()).hexdigest()


#: the accounts whose guard lock a transaction holds already (a batch locks them first)
_HELD: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def account_lock(account: str) -> int:
    """The advisory lock key (a signed 64-bit number) the guard holds for ``account``."""
    digest = hashlib.sha256(b"xp-dedup\0" + account.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class DedupGuard(WorkflowBase):
    def duplicates(
        self,
        rendered: Sequence[Rendered],
        dues: Mapping[str, datetime],
        dedup: DedupQuery,
    ) -> list[Duplicate]:
        """What the guard would find for this post (``enqueue --dry-run``, ``preview``)."""
        with self.store._read() as conn:
            return self._duplicates(conn, rendered, dues, dedup, exclude_series=None)

    def lock_accounts(self, conn: Connection, accounts: Iterable[str]) -> None:
        """Hold the guard's lock of each account until the transaction ends (PostgreSQL).

        Taken in sorted order, so two transactions locking several accounts cannot
        deadlock; a transaction that enqueues several posts takes all its accounts'
        locks first (:meth:`crosspost.workflow.Workflow.enqueue`), and the locks it
        holds already are not asked for again.
        """
        if self.store.is_sqlite:
            return  # every write transaction holds the write lock
        transaction = conn.get_transaction()
        assert transaction is not None  # the guard runs in a write transaction
        held = _HELD.setdefault(transaction, set())
        for account in sorted(set(accounts) - held):
            conn.execute(select(func.pg_advisory_xact_lock(account_lock(account))))
            held.add(account)

    def _guard(
        self,
        conn: Connection,
        post: Post,
        rendered: Sequence[Rendered],
        dues: Mapping[str, datetime],
        dedup: DedupQuery | None,
        *,
        force: bool,
        exclude_series: int | None = None,
        exclude_post: int | None = None,
    ) -> list[int]:
        """Refuse a duplicate (PostRejected) unless forced; the posts it was forced past."""
        if dedup is None or dedup.days <= 0:
            return []
        self.lock_accounts(conn, (r.account for r in rendered))
        found = self._duplicates(
            conn, rendered, dues, dedup, exclude_series=exclude_series, exclude_post=exclude_post
        )
        if found and not force:
            raise PostRejected(describe_duplicates(post, found, dedup.zone))
        return sorted({d.post_id for d in found})

    def _duplicates(
        self,
        conn: Connection,
        rendered: Sequence[Rendered],
        dues: Mapping[str, datetime],
        dedup: DedupQuery,
        *,
        exclude_series: int | None,
        exclude_post: int | None = None,
    ) -> list[Duplicate]:
        if not rendered or dedup.days <= 0:
            return []
        window = timedelta(days=dedup.days)
        when = func.coalesce(deliveries.c.published_at, deliveries.c.due_at)
        link_digest, text_digest = dedup.keys()
        candidates: Any = select(posts.c.id).where(posts.c.text_digest == text_digest)
        if link_digest is not None:
            candidates = candidates.union(
                select(posts.c.id).where(posts.c.link_digest == link_digest)
            )
        # Only the digest indexes and (post_id, account) are searched; state and time
        # are checked on the few rows found (a state filter would lead SQLite's planner
        # to walk every waiting delivery instead).
        query = (
            select(
                posts.c.id,
                posts.c.link_digest,
                posts.c.series_id,
                deliveries.c.account,
                deliveries.c.state,
                when.label("when"),
            )
            .select_from(deliveries)
            .join(posts, posts.c.id == deliveries.c.post_id)
            .where(
                deliveries.c.post_id.in_(candidates),
                deliveries.c.account.in_([r.account for r in rendered]),
            )
            .order_by(deliveries.c.post_id, deliveries.c.account)
        )
        found: list[Duplicate] = []
        for row in conn.execute(query):
            if row.state not in LIVE or row.id == exclude_post:
                continue
            if exclude_series is not None and row.series_id == exclude_series:
                continue
            at = aware(row.when)
            due = dues[row.account]
            if not due - window <= at <= due + window:
                continue
            reason = (
                "link" if link_digest is not None and row.link_digest == link_digest else "text"
            )
            found.append(
                Duplicate(post_id=row.id, account=row.account, state=row.state, when=at,
                          reason=reason)
            )  # fmt: skip
        return found


def describe_duplicates(post: Post, found: Sequence[Duplicate], zone: ZoneInfo) -> str:
    first = found[0]
    accounts = sorted({d.account for d in found})
    what = (
        _("the same link {link}").format(link=post.link)
        if first.reason == "link"
        else _("the same text")
    )
    when = first.when.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    state = _("published") if first.state == DeliveryState.PUBLISHED.value else _("queued")
    return ngettext(
        "{source}: duplicate: post {id} with {what} is already {state} for account {accounts} "
        "({time}); enqueue with --force to post it anyway",
        "{source}: duplicate: post {id} with {what} is already {state} for accounts {accounts} "
        "({time}); enqueue with --force to post it anyway",
        len(accounts),
    ).format(
        source=post.source or "--text",
        id=first.post_id,
        what=what,
        state=state,
        accounts=", ".join(accounts),
        time=when,
    )
