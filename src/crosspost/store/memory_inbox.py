"""The inbox store in memory: the twin of :class:`crosspost.store.inbox.SqlInbox` for
unit tests (the same contract suite runs against both)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from crosspost.exceptions import NotFound
from crosspost.i18n import _
from crosspost.inbox import (
    Interaction,
    InteractionPage,
    InteractionState,
    MonthResponses,
    PostRef,
    percentile,
)
from crosspost.models import PublishResult


class MemoryInbox:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[int, Interaction] = {}
        self._cursors: dict[str, dict[str, object]] = {}
        #: (account, platform, received_at, responded_at, how)
        self._responses: list[tuple[str, str, datetime, datetime, str]] = []
        #: what published_refs answers, per account (tests fill it)
        self.published: dict[str, list[PostRef]] = {}
        self._next_id = 1

    # -- sync -------------------------------------------------------------------------------
    def _cursor(self, account: str) -> dict[str, object]:
        return self._cursors.setdefault(
            account, {"cursor": None, "synced_at": None, "blocked_until": None,
                      "lease_until": None, "worker": None, "error": None},
        )  # fmt: skip

    def sync_state(self, account: str) -> tuple[str | None, datetime | None]:
        with self._lock:
            row = self._cursor(account)
            cursor, synced = row["cursor"], row["synced_at"]
        assert cursor is None or isinstance(cursor, str)
        assert synced is None or isinstance(synced, datetime)
        return cursor, synced

    def claim_sync(self, account: str, worker: str, *, now: datetime, lease: timedelta) -> bool:
        with self._lock:
            row = self._cursor(account)
            held, until = row["worker"], row["lease_until"]
            blocked = row["blocked_until"]
            if isinstance(until, datetime) and until > now and held != worker:
                return False
            if isinstance(blocked, datetime) and blocked > now:
                return False
            row.update(worker=worker, lease_until=now + lease)
            return True

    def release_sync(
        self,
        account: str,
        worker: str,
        *,
        now: datetime,
        blocked_until: datetime | None = None,
        error: str | None = None,
    ) -> None:
        with self._lock:
            row = self._cursor(account)
            if row["worker"] != worker:
                return
            row.update(worker=None, lease_until=None, blocked_until=blocked_until, error=error)
            if error is None:
                row["synced_at"] = now

    def add_page(
        self,
        account: str,
        platform: str,
        page: InteractionPage,
        *,
        worker: str,
        now: datetime,
        lease: timedelta | None = None,
    ) -> int:
        new = 0
        with self._lock:
            known = {(i.account, i.remote_id) for i in self._items.values()}
            deliveries = {p.remote_id: p.delivery_id for p in self.published.get(account, [])}
            for item in page.items:
                if (account, item.remote_id) in known:
                    continue
                self._items[self._next_id] = Interaction(
                    id=self._next_id,
                    account=account,
                    platform=platform,
                    remote_id=item.remote_id,
                    kind=item.kind.value,
                    delivery_id=deliveries.get(item.parent_remote_id or ""),
                    handle=item.handle,
                    text=item.text,
                    url=item.url,
                    created_at=item.created_at.astimezone(UTC),
                    fetched_at=now,
                    reply_ref=dict(item.reply_ref),
                    state=InteractionState.OPEN,
                )
                known.add((account, item.remote_id))
                self._next_id += 1
                new += 1
            row = self._cursor(account)
            if row["worker"] == worker:
                if page.cursor is not None:
                    row["cursor"] = page.cursor
                if lease is not None:
                    row["lease_until"] = now + lease
        return new

    def published_refs(self, account: str, *, since: datetime) -> list[PostRef]:
        return [
            p
            for p in self.published.get(account, [])
            if p.published_at is None or p.published_at >= since
        ]

    # -- reading ----------------------------------------------------------------------------
    def get(self, interaction_id: int) -> Interaction:
        with self._lock:
            item = self._items.get(interaction_id)
        if item is None:
            raise NotFound(
                _(
                    "interaction {id} does not exist (or was deleted after its retention time)"
                ).format(id=interaction_id)
            )
        return item

    def list_interactions(
        self, *, open_only: bool = False, account: str | None = None, limit: int = 200
    ) -> list[Interaction]:
        with self._lock:
            items = list(self._items.values())
        items = [
            i
            for i in items
            if (not open_only or i.state is InteractionState.OPEN)
            and (account is None or i.account == account)
        ]
        items.sort(key=lambda i: (i.created_at, i.id), reverse=True)
        return items[:limit]

    # -- answering --------------------------------------------------------------------------
    def _respond(self, item: Interaction, how: str, now: datetime) -> Interaction:
        if item.first_response_at is not None:
            return item
        self._responses.append((item.account, item.platform, item.created_at, now, how))
        return replace(item, first_response_at=now)

    def _update(self, interaction_id: int, item: Interaction) -> Interaction:
        self._items[interaction_id] = item
        return item

    def record_reply(
        self, interaction_id: int, result: PublishResult, *, now: datetime, done: bool
    ) -> Interaction:
        item = self.get(interaction_id)
        with self._lock:
            item = replace(
                self._respond(item, "reply", now),
                replied_at=now,
                reply_remote_id=result.remote_id,
                reply_url=result.remote_url,
            )
            if done and item.state is not InteractionState.DONE:
                item = replace(item, state=InteractionState.DONE, done_at=now)
            return self._update(interaction_id, item)

    def note_reply_unknown(self, interaction_id: int, *, now: datetime) -> None:
        item = self.get(interaction_id)
        with self._lock:
            if item.replied_at is None:
                self._update(interaction_id, replace(item, replied_at=now))

    def mark_done(self, interaction_id: int, *, now: datetime) -> Interaction:
        item = self.get(interaction_id)
        with self._lock:
            if item.state is InteractionState.DONE:
                return item
            item = replace(
                self._respond(item, "done", now), state=InteractionState.DONE, done_at=now
            )
            return self._update(interaction_id, item)

    def reopen(self, interaction_id: int) -> Interaction:
        item = self.get(interaction_id)
        with self._lock:
            return self._update(
                interaction_id, replace(item, state=InteractionState.OPEN, done_at=None)
            )

    def mark_forwarded(self, interaction_id: int, office: str, *, now: datetime) -> Interaction:
        item = self.get(interaction_id)
        with self._lock:
            return self._update(
                interaction_id, replace(item, forwarded_to=office, forwarded_at=now)
            )

    # -- privacy and the report ---------------------------------------------------------------
    def _due(self, before: datetime) -> list[int]:
        return [
            i.id
            for i in self._items.values()
            if i.state is InteractionState.DONE and i.done_at is not None and i.done_at <= before
        ]

    def due_for_purge(self, *, before: datetime) -> int:
        with self._lock:
            return len(self._due(before))

    def purge(self, *, before: datetime) -> int:
        with self._lock:
            due = self._due(before)
            for interaction_id in due:
                del self._items[interaction_id]
            return len(due)

    def response_times(self, year: int, *, zone: ZoneInfo | None = None) -> list[MonthResponses]:
        zone = zone or ZoneInfo("UTC")
        with self._lock:
            answered = [
                (platform, received, responded)
                for _a, platform, received, responded, _how in self._responses
                if received.astimezone(zone).year == year
            ]
            waiting = [
                i.created_at
                for i in self._items.values()
                if i.first_response_at is None and i.created_at.astimezone(zone).year == year
            ]
        months = []
        for month in range(1, 13):
            values = sorted(
                max(0.0, (responded - received).total_seconds())
                for _p, received, responded in answered
                if received.astimezone(zone).month == month
            )
            platforms: dict[str, int] = {}
            for platform, received, _responded in answered:
                if received.astimezone(zone).month == month:
                    platforms[platform] = platforms.get(platform, 0) + 1
            months.append(
                MonthResponses(
                    month=month,
                    answered=len(values),
                    unanswered=sum(1 for c in waiting if c.astimezone(zone).month == month),
                    median_seconds=percentile(values, 0.5),
                    p90_seconds=percentile(values, 0.9),
                    max_seconds=values[-1] if values else None,
                    within_hour=sum(1 for v in values if v <= 3600),
                    within_day=sum(1 for v in values if v <= 86400),
                    by_platform=dict(sorted(platforms.items())),
                )
            )
        return months
