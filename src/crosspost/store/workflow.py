"""The editorial workflow on the SQL store: drafts, approval, series, duplicates, audit.

Every change here writes its ``audit_log`` row in the same transaction as the
change itself, so the log never tells of a change that did not happen nor
misses one that did. Nothing here updates or deletes an audit row.

Drafts are deliveries in the state ``draft``: the claim reads only
``scheduled``/``retrying``/``unknown`` rows (``ix_deliveries_due``), so the
daemon never sees one. Approval turns them into ``scheduled``.

Series are materialised under a lock (PostgreSQL: a transaction-scoped advisory
lock; SQLite: the write lock every transaction takes), and each occurrence is
unique per series (``uq_posts_occurrence``): two daemons doing it at once make
each occurrence once.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, insert, select, update

from crosspost.exceptions import NotFound, PostRejected, Refused
from crosspost.i18n import _, ngettext
from crosspost.models import DeliveryState, Media, Post, Rendered
from crosspost.recurrence import Recurrence
from crosspost.store._sql import media_json, post_columns
from crosspost.store.audit import AuditEntry, read_audit, write_audit
from crosspost.store.schema import audit_log, deliveries, posts, series
from crosspost.store.sql import SqlStore

#: (category, account, base instant) -> when the delivery is due (quiet hours applied)
DueRule = Callable[[str | None, str, datetime], datetime]
UTC_ZONE = ZoneInfo("UTC")
#: the advisory lock materialisation holds on PostgreSQL
MATERIALISE_LOCK = int.from_bytes(b"xp-serie", "big")

_WAITING = (DeliveryState.SCHEDULED.value, DeliveryState.RETRYING.value)
#: deliveries an edit, approval or cancel may still change
_CHANGEABLE = (*_WAITING, DeliveryState.DRAFT.value)
#: deliveries that count for the duplicate guard: on the platform or on their way there
_LIVE = (
    DeliveryState.DRAFT.value,
    DeliveryState.SCHEDULED.value,
    DeliveryState.PUBLISHING.value,
    DeliveryState.PUBLISHED.value,
    DeliveryState.RETRYING.value,
    DeliveryState.UNKNOWN.value,
)
#: a post with a delivery in one of these cannot be edited any more
_STARTED = (
    DeliveryState.PUBLISHING.value,
    DeliveryState.PUBLISHED.value,
    DeliveryState.UNKNOWN.value,
    DeliveryState.RETRACTED.value,
)


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


def digests(link: str | None, body: str) -> tuple[str | None, str]:
    """The guard's keys: SHA-256 of the link and of the text (whitespace evened out)."""
    link_key = hashlib.sha256(link.encode()).hexdigest() if link else None
    return link_key, hashlib.sha256(" ".join(body.split()).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    id: int
    rule: str
    dtstart: datetime
    timezone: str
    title: str
    category: str | None
    accounts: tuple[str, ...]
    created_by: str
    created_at: datetime
    approval_required: bool
    approved_by: str | None
    cancelled_at: datetime | None
    materialised_until: datetime | None
    #: the next waiting occurrence: (post id, due)
    next_post: tuple[int, datetime] | None = None

    def recurrence(self) -> Recurrence:
        return Recurrence(rule=self.rule, dtstart=self.dtstart, zone=ZoneInfo(self.timezone))


@dataclass(frozen=True, slots=True)
class Approval:
    post_ids: list[int]
    series_id: int | None
    dues: dict[int, datetime] = field(default_factory=dict)


class SqlWorkflow:
    """The workflow's reads and writes, on the tables of a :class:`SqlStore`."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction several calls share (``conn=``): all of them or none."""
        with self.store._write() as conn:
            yield conn

    @contextmanager
    def _joined(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
            return
        with self.store._write() as own:
            yield own

    # -- enqueue ----------------------------------------------------------------------
    def enqueue(
        self,
        post: Post,
        rendered: Sequence[Rendered],
        *,
        dues: Mapping[str, datetime],
        draft: bool,
        actor: str,
        now: datetime,
        dedup: DedupQuery | None = None,
        force: bool = False,
        conn: Connection | None = None,
    ) -> int:
        """Store a post (drafts when it needs approval) and audit it; refuse duplicates."""
        with self._joined(conn) as conn:
            detail: dict[str, Any] = {
                "accounts": [r.account for r in rendered],
                "state": "draft" if draft else "scheduled",
            }
            if dedup is not None and dedup.days > 0:
                found = self._duplicates(conn, rendered, dues, dedup, exclude_series=None)
                if found and not force:
                    raise PostRejected(describe_duplicates(post, found, dedup.zone))
                if found:
                    detail["forced_duplicates"] = sorted({d.post_id for d in found})
            post_id = self._insert_post(
                conn, post, actor=actor, now=now, approval_required=draft, keys=dedup
            )
            self._insert_deliveries(conn, post_id, rendered, dues, draft=draft, now=now)
            if post.source:
                detail["source"] = post.source
            write_audit(
                conn,
                at=now,
                actor=actor,
                action="enqueue_forced" if "forced_duplicates" in detail else "enqueue",
                post_id=post_id,
                detail=detail,
            )
        return post_id

    def _insert_post(
        self,
        conn: Connection,
        post: Post,
        *,
        actor: str,
        now: datetime,
        approval_required: bool,
        series_id: int | None = None,
        occurrence_at: datetime | None = None,
        approved: tuple[str | None, datetime | None] = (None, None),
        keys: DedupQuery | None = None,
    ) -> int:
        link_digest, text_digest = digests(keys.link, keys.body) if keys else (None, None)
        post_id = conn.execute(
            insert(posts)
            .values(
                **post_columns(post),
                created_at=now,
                created_by=actor,
                source=post.source,
                series_id=series_id,
                occurrence_at=occurrence_at,
                approval_required=approval_required,
                approved_by=approved[0],
                approved_at=approved[1],
                link_digest=link_digest,
                text_digest=text_digest,
            )
            .returning(posts.c.id)
        ).scalar_one()
        return int(post_id)

    def _insert_deliveries(
        self,
        conn: Connection,
        post_id: int,
        rendered: Sequence[Rendered] | Sequence[Mapping[Any, Any]],
        dues: Mapping[str, datetime],
        *,
        draft: bool,
        now: datetime,
    ) -> None:
        rows = []
        for r in rendered:
            account, platform, text = (
                (r.account, r.platform, r.text)
                if isinstance(r, Rendered)
                else (r["account"], r["platform"], r["text"])
            )
            rows.append(
                {
                    "post_id": post_id,
                    "account": account,
                    "platform": platform,
                    "state": (DeliveryState.DRAFT if draft else DeliveryState.SCHEDULED).value,
                    "due_at": dues[account],
                    "text": text,
                    "idempotency_key": uuid.uuid4().hex,
                    "updated_at": now,
                }
            )
        if not rows:
            return
        if not draft:
            self.store._notify(conn)
        conn.execute(insert(deliveries), rows)

    def duplicates(
        self,
        rendered: Sequence[Rendered],
        dues: Mapping[str, datetime],
        dedup: DedupQuery,
    ) -> list[Duplicate]:
        """What the guard would find for this post (``enqueue --dry-run``, ``preview``)."""
        with self.store._read() as conn:
            return self._duplicates(conn, rendered, dues, dedup, exclude_series=None)

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
        link_digest, text_digest = digests(dedup.link, dedup.body)
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
            if row.state not in _LIVE or row.id == exclude_post:
                continue
            if exclude_series is not None and row.series_id == exclude_series:
                continue
            at = self._aware(row.when)
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

    @staticmethod
    def _aware(value: Any) -> datetime:
        """An aggregate's time: SQLite may hand back text, and naive means UTC here."""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    # -- series -----------------------------------------------------------------------
    def create_series(
        self,
        post: Post,
        recurrence: Recurrence,
        rendered: Sequence[Rendered],
        *,
        draft: bool,
        actor: str,
        now: datetime,
        due_rule: DueRule,
        horizon: timedelta,
        spread: timedelta,
        dedup: DedupQuery | None = None,
        force: bool = False,
        conn: Connection | None = None,
    ) -> tuple[int, list[int]]:
        """Store a series and materialise its first occurrences; (series id, post ids)."""
        with self._joined(conn) as conn:
            self._lock_series(conn)
            detail: dict[str, Any] = {
                "accounts": [r.account for r in rendered],
                "rule": recurrence.rule,
                "state": "draft" if draft else "scheduled",
            }
            if dedup is not None and dedup.days > 0:
                first = recurrence.next_after(now) or now
                dues = {r.account: first for r in rendered}
                found = self._duplicates(conn, rendered, dues, dedup, exclude_series=None)
                if found and not force:
                    raise PostRejected(describe_duplicates(post, found, dedup.zone))
                if found:
                    detail["forced_duplicates"] = sorted({d.post_id for d in found})
            series_id = int(
                conn.execute(
                    insert(series)
                    .values(
                        rule=recurrence.rule,
                        dtstart=recurrence.dtstart.isoformat(),
                        timezone=recurrence.zone.key,
                        title=post.title,
                        body=post.body,
                        link=post.link,
                        dedup_link=dedup.link if dedup else post.link,
                        category=post.category,
                        media=media_json(post),
                        variants=dict(post.variants),
                        rendered=[
                            {"account": r.account, "platform": r.platform, "text": r.text}
                            for r in rendered
                        ],
                        source=post.source,
                        created_at=now,
                        created_by=actor,
                        approval_required=draft,
                    )
                    .returning(series.c.id)
                ).scalar_one()
            )
            if post.source:
                detail["source"] = post.source
            write_audit(
                conn,
                at=now,
                actor=actor,
                action="enqueue_forced" if "forced_duplicates" in detail else "enqueue",
                series_id=series_id,
                detail=detail,
            )
            created = self._materialise(
                conn,
                now=now,
                horizon=horizon,
                spread=spread,
                due_rule=due_rule,
                actor=actor,
                only=series_id,
            )
        return series_id, created

    def materialise(
        self,
        *,
        now: datetime,
        horizon: timedelta,
        spread: timedelta,
        due_rule: DueRule,
        actor: str,
    ) -> list[int]:
        """Turn every active series' coming occurrences into posts; the new post ids."""
        with self.store._write() as conn:
            self._lock_series(conn)
            return self._materialise(
                conn, now=now, horizon=horizon, spread=spread, due_rule=due_rule, actor=actor
            )

    def _lock_series(self, conn: Connection) -> None:
        if not self.store.is_sqlite:
            conn.execute(select(func.pg_advisory_xact_lock(MATERIALISE_LOCK)))

    def _materialise(
        self,
        conn: Connection,
        *,
        now: datetime,
        horizon: timedelta,
        spread: timedelta,
        due_rule: DueRule,
        actor: str,
        only: int | None = None,
    ) -> list[int]:
        query = select(series).where(series.c.cancelled_at.is_(None)).order_by(series.c.id)
        if only is not None:
            query = query.where(series.c.id == only)
        created: list[int] = []
        for row in conn.execute(query).mappings().all():
            info = _series(row)
            recurrence = info.recurrence()
            after = max(info.materialised_until or row["created_at"], now - timedelta(seconds=1))
            wanted = list(recurrence.after(after, until=now + horizon))
            if not wanted and (info.materialised_until is None or info.materialised_until <= now):
                following = recurrence.next_after(after)
                wanted = [following] if following is not None else []
            for at in wanted:
                post_id = self._occurrence(
                    conn, row, at, now=now, spread=spread, due_rule=due_rule, actor=actor
                )
                if post_id is not None:
                    created.append(post_id)
            if wanted:
                conn.execute(
                    update(series)
                    .where(series.c.id == info.id)
                    .values(materialised_until=max(wanted))
                )
        return created

    def _occurrence(
        self,
        conn: Connection,
        row: Mapping[Any, Any],
        at: datetime,
        *,
        now: datetime,
        spread: timedelta,
        due_rule: DueRule,
        actor: str,
    ) -> int | None:
        exists = conn.execute(
            select(posts.c.id).where(posts.c.series_id == row["id"], posts.c.occurrence_at == at)
        ).first()
        if exists is not None:
            return None
        # series due at the same instant go out one after another, not in a burst
        others = conn.execute(
            select(func.count())
            .select_from(posts)
            .where(posts.c.occurrence_at == at, posts.c.series_id != row["id"])
        ).scalar_one()
        base = at + spread * int(others)
        post = Post(
            title=row["title"],
            body=row["body"],
            link=row["link"],
            category=row["category"],
            publish_at=at,
            accounts=tuple(r["account"] for r in row["rendered"]),
            media=tuple(
                Media(path=Path(m["path"]), alt=m["alt"], mime=m["mime"]) for m in row["media"]
            ),
            variants=dict(row["variants"]),
            source=row["source"],
        )
        draft = bool(row["approval_required"]) and row["approved_by"] is None
        post_id = self._insert_post(
            conn,
            post,
            actor=row["created_by"],
            now=now,
            approval_required=bool(row["approval_required"]),
            series_id=row["id"],
            occurrence_at=at,
            approved=(row["approved_by"], row["approved_at"]),
            keys=DedupQuery(days=0, link=row["dedup_link"], body=row["body"], zone=UTC_ZONE),
        )
        dues = {
            r["account"]: due_rule(row["category"], r["account"], base) for r in row["rendered"]
        }
        self._insert_deliveries(conn, post_id, row["rendered"], dues, draft=draft, now=now)
        write_audit(
            conn,
            at=now,
            actor=actor,
            action="materialise",
            post_id=post_id,
            series_id=row["id"],
            detail={"occurrence_at": at.isoformat(), "state": "draft" if draft else "scheduled"},
        )
        return post_id

    def series_list(self) -> list[SeriesInfo]:
        with self.store._read() as conn:
            rows = conn.execute(select(series).order_by(series.c.id)).mappings().all()
            result = []
            for row in rows:
                info = _series(row)
                nxt = conn.execute(
                    select(posts.c.id, func.min(deliveries.c.due_at))
                    .join(deliveries, deliveries.c.post_id == posts.c.id)
                    .where(posts.c.series_id == info.id, deliveries.c.state.in_(_CHANGEABLE))
                    .group_by(posts.c.id)
                    .order_by(func.min(deliveries.c.due_at))
                    .limit(1)
                ).first()
                if nxt is not None:
                    info = _replace_next(info, (int(nxt[0]), self._aware(nxt[1])))
                result.append(info)
        return result

    # -- approval ---------------------------------------------------------------------
    def _post_row(self, conn: Connection, post_id: int) -> Mapping[Any, Any]:
        row = conn.execute(select(posts).where(posts.c.id == post_id)).mappings().first()
        if row is None:
            raise NotFound(_("post {id} does not exist").format(id=post_id))
        return row

    def _authors(self, conn: Connection, post: Mapping[Any, Any]) -> set[str]:
        """Who wrote or changed the post's text: none of them may approve it."""
        who = {post["created_by"]}
        who.update(
            conn.execute(
                select(audit_log.c.actor).where(
                    audit_log.c.post_id == post["id"],
                    audit_log.c.action.in_(("enqueue", "enqueue_forced", "edit")),
                )
            ).scalars()
        )
        if post["series_id"] is not None:
            who.update(
                conn.execute(
                    select(series.c.created_by).where(series.c.id == post["series_id"])
                ).scalars()
            )
        return who

    def approve(self, post_id: int, *, actor: str, now: datetime, due_rule: DueRule) -> Approval:
        """Release a draft (and, for a series, the series); four eyes: not its author."""
        with self.store._write() as conn:
            post = self._post_row(conn, post_id)
            drafts = self._drafts(conn, post_id)
            if not drafts:
                raise Refused(_("post {id} is not awaiting approval").format(id=post_id))
            if actor in self._authors(conn, post):
                raise Refused(
                    _(
                        "post {id}: you ({user}) wrote or edited it; another person must "
                        "approve it (four-eyes principle)"
                    ).format(id=post_id, user=actor)
                )
            self._check_not_expired(post, drafts, now)
            ids = [post_id]
            series_id = post["series_id"]
            dues = {
                post_id: self._release(conn, post, drafts, actor=actor, now=now, due_rule=due_rule)
            }
            write_audit(
                conn,
                at=now,
                actor=actor,
                action="approve",
                post_id=post_id,
                series_id=series_id,
                detail={"accounts": [d["account"] for d in drafts]},
            )
            if series_id is not None:
                conn.execute(
                    update(series)
                    .where(series.c.id == series_id)
                    .values(approved_by=actor, approved_at=now)
                )
                for other in (
                    conn.execute(
                        select(posts)
                        .where(posts.c.series_id == series_id, posts.c.id != post_id)
                        .order_by(posts.c.id)
                    )
                    .mappings()
                    .all()
                ):
                    others = self._drafts(conn, other["id"])
                    if not others or self._expired(other, others, now):
                        continue
                    dues[other["id"]] = self._release(
                        conn, other, others, actor=actor, now=now, due_rule=due_rule
                    )
                    ids.append(other["id"])
                    write_audit(
                        conn,
                        at=now,
                        actor=actor,
                        action="approve",
                        post_id=other["id"],
                        series_id=series_id,
                        detail={"with_series_of": post_id},
                    )
            self.store._notify(conn)
        return Approval(post_ids=ids, series_id=series_id, dues=dues)

    def _drafts(self, conn: Connection, post_id: int) -> list[Mapping[Any, Any]]:
        return list(
            conn.execute(
                select(deliveries)
                .where(
                    deliveries.c.post_id == post_id,
                    deliveries.c.state == DeliveryState.DRAFT.value,
                )
                .order_by(deliveries.c.id)
            )
            .mappings()
            .all()
        )

    @staticmethod
    def _expired(
        post: Mapping[Any, Any], drafts: Sequence[Mapping[Any, Any]], now: datetime
    ) -> bool:
        """A draft with a publication time that passed before anyone approved it."""
        return post["publish_at"] is not None and min(d["due_at"] for d in drafts) <= now

    def _check_not_expired(
        self, post: Mapping[Any, Any], drafts: Sequence[Mapping[Any, Any]], now: datetime
    ) -> None:
        if self._expired(post, drafts, now):
            raise Refused(
                _(
                    "post {id}: its publication time passed before it was approved, so it was "
                    "not published; give it a new time first: crosspost reschedule {id} --at …"
                ).format(id=post["id"])
            )

    def _release(
        self,
        conn: Connection,
        post: Mapping[Any, Any],
        drafts: Sequence[Mapping[Any, Any]],
        *,
        actor: str,
        now: datetime,
        due_rule: DueRule,
    ) -> datetime:
        """Drafts → scheduled; "as soon as possible" now means from the approval on."""
        earliest: datetime | None = None
        for d in drafts:
            due: datetime = d["due_at"]
            if post["publish_at"] is None:
                due = due_rule(post["category"], d["account"], now)
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == d["id"], deliveries.c.state == DeliveryState.DRAFT.value)
                .values(state=DeliveryState.SCHEDULED.value, due_at=due, updated_at=now)
            )
            earliest = due if earliest is None else min(earliest, due)
        conn.execute(
            update(posts).where(posts.c.id == post["id"]).values(approved_by=actor, approved_at=now)
        )
        assert earliest is not None
        return earliest

    def reject(self, post_id: int, *, reason: str, actor: str, now: datetime) -> list[int]:
        """Drafts → rejected (final); rejecting an occurrence of a series rejects the series."""
        with self.store._write() as conn:
            post = self._post_row(conn, post_id)
            if not self._drafts(conn, post_id):
                raise Refused(_("post {id} is not awaiting approval").format(id=post_id))
            if actor in self._authors(conn, post):
                raise Refused(
                    _(
                        "post {id}: you ({user}) wrote or edited it; another person reviews it. "
                        "To withdraw your own draft: crosspost cancel {id}"
                    ).format(id=post_id, user=actor)
                )
            targets = [post_id]
            series_id = post["series_id"]
            if series_id is not None:
                conn.execute(
                    update(series)
                    .where(series.c.id == series_id, series.c.cancelled_at.is_(None))
                    .values(cancelled_at=now, cancelled_by=actor)
                )
                targets = list(
                    conn.execute(
                        select(posts.c.id)
                        .where(posts.c.series_id == series_id)
                        .order_by(posts.c.id)
                    ).scalars()
                )
            rejected = []
            for target in targets:
                n = conn.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.post_id == target,
                        deliveries.c.state == DeliveryState.DRAFT.value,
                    )
                    .values(state=DeliveryState.REJECTED.value, error=reason, updated_at=now)
                ).rowcount
                if n:
                    rejected.append(target)
                    write_audit(
                        conn,
                        at=now,
                        actor=actor,
                        action="reject",
                        post_id=target,
                        series_id=series_id,
                        detail={"reason": reason, "deliveries": n},
                    )
        return rejected

    # -- changing the queue, audited ------------------------------------------------
    def cancel(self, post_id: int, *, actor: str, now: datetime) -> tuple[int, int | None]:
        """Cancel what waits (drafts too); a post of a series stops the series.

        Returns (deliveries cancelled, the series stopped or None).
        """
        with self.store._write() as conn:
            post = self._post_row(conn, post_id)
            states = [*_CHANGEABLE, DeliveryState.UNKNOWN.value]
            n = conn.execute(
                update(deliveries)
                .where(deliveries.c.post_id == post_id, deliveries.c.state.in_(states))
                .values(state=DeliveryState.CANCELLED.value, updated_at=now)
            ).rowcount
            write_audit(
                conn, at=now, actor=actor, action="cancel", post_id=post_id,
                series_id=post["series_id"], detail={"deliveries": n},
            )  # fmt: skip
            stopped = None
            series_id = post["series_id"]
            if series_id is not None:
                changed = conn.execute(
                    update(series)
                    .where(series.c.id == series_id, series.c.cancelled_at.is_(None))
                    .values(cancelled_at=now, cancelled_by=actor)
                ).rowcount
                if changed:
                    stopped = series_id
                    write_audit(
                        conn, at=now, actor=actor, action="stop_series",
                        series_id=series_id, detail={"via_post": post_id},
                    )  # fmt: skip
                # the later occurrences already made belong to the stopped series
                for other in (
                    conn.execute(
                        select(posts.c.id).where(
                            posts.c.series_id == series_id, posts.c.id != post_id
                        )
                    )
                    .scalars()
                    .all()
                ):
                    m = conn.execute(
                        update(deliveries)
                        .where(
                            deliveries.c.post_id == other,
                            deliveries.c.state.in_(_CHANGEABLE),
                        )
                        .values(state=DeliveryState.CANCELLED.value, updated_at=now)
                    ).rowcount
                    if m:
                        n += m
                        write_audit(
                            conn, at=now, actor=actor, action="cancel", post_id=other,
                            series_id=series_id, detail={"deliveries": m, "with_series": True},
                        )  # fmt: skip
        return n, stopped

    def reschedule(
        self, post_id: int, at: datetime, *, actor: str, now: datetime, due_rule: DueRule
    ) -> dict[str, datetime]:
        """Move waiting deliveries (and drafts) to ``at`` (quiet hours applied per account)."""
        with self.store._write() as conn:
            post = self._post_row(conn, post_id)
            rows = conn.execute(
                select(deliveries.c.id, deliveries.c.account).where(
                    deliveries.c.post_id == post_id, deliveries.c.state.in_(_CHANGEABLE)
                )
            ).all()
            dues: dict[str, datetime] = {}
            for delivery_id, account in rows:
                due = due_rule(post["category"], account, at)
                dues[account] = due
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == delivery_id)
                    .values(due_at=due, updated_at=now)
                )
            conn.execute(update(posts).where(posts.c.id == post_id).values(publish_at=at))
            write_audit(
                conn, at=now, actor=actor, action="reschedule", post_id=post_id,
                series_id=post["series_id"],
                detail={"publish_at": at.isoformat(), "deliveries": len(rows)},
            )  # fmt: skip
            if rows:
                self.store._notify(conn)
        return dues

    def retry(self, post_id: int | None, *, actor: str, now: datetime, due_rule: DueRule) -> int:
        """Failed/unknown deliveries back in the queue, with a fresh attempt budget."""
        states = (DeliveryState.FAILED.value, DeliveryState.UNKNOWN.value)
        with self.store._write() as conn:
            if post_id is not None:
                self._post_row(conn, post_id)
            query = (
                select(
                    deliveries.c.id, deliveries.c.post_id, deliveries.c.account, posts.c.category
                )
                .join(posts, posts.c.id == deliveries.c.post_id)
                .where(deliveries.c.state.in_(states))
                .order_by(deliveries.c.id)
            )
            if post_id is not None:
                query = query.where(deliveries.c.post_id == post_id)
            rows = conn.execute(query).all()
            by_post: dict[int, list[str]] = {}
            for delivery_id, pid, account, category in rows:
                changed = conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == delivery_id, deliveries.c.state.in_(states))
                    .values(
                        state=DeliveryState.RETRYING.value,
                        due_at=due_rule(category, account, now),
                        attempts=0,
                        error=None,
                        updated_at=now,
                    )
                ).rowcount
                if changed:
                    by_post.setdefault(pid, []).append(account)
            for pid, accounts in by_post.items():
                write_audit(
                    conn, at=now, actor=actor, action="retry", post_id=pid,
                    detail={"accounts": accounts},
                )  # fmt: skip
            if by_post:
                self.store._notify(conn)
        return sum(len(a) for a in by_post.values())

    def mark_retracted(self, delivery_id: int, *, actor: str, now: datetime) -> bool:
        with self.store._write() as conn:
            row = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id == delivery_id,
                    deliveries.c.state == DeliveryState.PUBLISHED.value,
                )
                .values(state=DeliveryState.RETRACTED.value, updated_at=now, error=None)
                .returning(deliveries.c.post_id, deliveries.c.account)
            ).first()
            if row is None:
                return False
            write_audit(
                conn, at=now, actor=actor, action="retract", post_id=row.post_id,
                detail={"account": row.account},
            )  # fmt: skip
        return True

    # -- edit -------------------------------------------------------------------------
    def edit(
        self,
        post_id: int,
        post: Post,
        rendered: Sequence[Rendered],
        *,
        dues: Mapping[str, datetime],
        draft: bool,
        actor: str,
        now: datetime,
        dedup: DedupQuery | None = None,
        force: bool = False,
    ) -> list[str]:
        """Replace a waiting post's content, keeping its id; the fields that changed."""
        with self.store._write() as conn:
            old = self._post_row(conn, post_id)
            rows = (
                conn.execute(select(deliveries).where(deliveries.c.post_id == post_id))
                .mappings()
                .all()
            )
            self.check_editable(post_id, [r["state"] for r in rows])
            if dedup is not None and dedup.days > 0:
                found = self._duplicates(
                    conn, rendered, dues, dedup, exclude_series=old["series_id"],
                    exclude_post=post_id,
                )  # fmt: skip
                if found and not force:
                    raise PostRejected(describe_duplicates(post, found, dedup.zone))
            new_values = post_columns(post)
            same_minute = (
                old["publish_at"] is not None
                and post.publish_at is not None
                and abs(old["publish_at"] - post.publish_at) < timedelta(seconds=1)
            )
            if same_minute:  # the form shows whole seconds: an untouched time stays exact
                new_values["publish_at"] = old["publish_at"]
            changed = [k for k, v in new_values.items() if old[k] != v]
            if dedup is not None:
                link_digest, text_digest = digests(dedup.link, dedup.body)
                new_values.update(link_digest=link_digest, text_digest=text_digest)
            by_account = {r["account"]: r for r in rows}
            wanted = {r.account for r in rendered}
            state = (DeliveryState.DRAFT if draft else DeliveryState.SCHEDULED).value
            for r in rendered:
                existing = by_account.get(r.account)
                if existing is None:
                    self._insert_deliveries(conn, post_id, [r], dues, draft=draft, now=now)
                    changed.append(f"accounts+{r.account}")
                    continue
                values: dict[str, Any] = {"text": r.text, "updated_at": now}
                if existing["text"] != r.text and "text" not in changed:
                    changed.append("text")
                if existing["state"] in (*_CHANGEABLE, DeliveryState.CANCELLED.value):
                    values.update(due_at=dues[r.account], state=state)
                    if existing["state"] == DeliveryState.RETRYING.value and not draft:
                        values["state"] = DeliveryState.RETRYING.value
                conn.execute(
                    update(deliveries).where(deliveries.c.id == existing["id"]).values(**values)
                )
            for account, existing in by_account.items():
                if account not in wanted and existing["state"] in _CHANGEABLE:
                    conn.execute(
                        update(deliveries)
                        .where(deliveries.c.id == existing["id"])
                        .values(state=DeliveryState.CANCELLED.value, updated_at=now)
                    )
                    changed.append(f"accounts-{account}")
            conn.execute(
                update(posts)
                .where(posts.c.id == post_id)
                .values(
                    **new_values,
                    approval_required=draft or bool(old["approval_required"]),
                    approved_by=None if draft else old["approved_by"],
                    approved_at=None if draft else old["approved_at"],
                )
            )
            write_audit(
                conn, at=now, actor=actor, action="edit", post_id=post_id,
                series_id=old["series_id"],
                detail={"changed": changed, "state": state},
            )  # fmt: skip
            if not draft:
                self.store._notify(conn)
        return changed

    @staticmethod
    def check_editable(post_id: int, states: Sequence[str]) -> None:
        if any(s in _STARTED for s in states):
            raise Refused(
                _(
                    "post {id} is already published (or being published) on at least one "
                    "account and cannot be edited; retract it with: crosspost retract {id}"
                ).format(id=post_id)
            )
        if not any(s in (*_CHANGEABLE, DeliveryState.FAILED.value) for s in states):
            raise Refused(
                _("post {id} has nothing waiting (cancelled or rejected); enqueue it anew").format(
                    id=post_id
                )
            )

    def stored_form(self, post_id: int) -> tuple[Mapping[Any, Any], list[Mapping[Any, Any]]]:
        """The post row and its deliveries (for ``edit``'s file form)."""
        with self.store._read() as conn:
            post = self._post_row(conn, post_id)
            rows = (
                conn.execute(
                    select(deliveries)
                    .where(deliveries.c.post_id == post_id)
                    .order_by(deliveries.c.id)
                )
                .mappings()
                .all()
            )
            return dict(post), [dict(r) for r in rows]

    # -- reading ----------------------------------------------------------------------
    def audit(self, *, post_id: int | None = None, limit: int = 100_000) -> list[AuditEntry]:
        with self.store._read() as conn:
            return read_audit(conn, post_id=post_id, limit=limit)

    def drafts(self, now: datetime) -> list[tuple[int, str, datetime, bool]]:
        """Posts awaiting approval: (id, title, earliest due, expired), oldest due first."""
        with self.store._read() as conn:
            rows = conn.execute(
                select(
                    posts.c.id,
                    posts.c.title,
                    posts.c.publish_at,
                    func.min(deliveries.c.due_at).label("due"),
                )
                .join(deliveries, deliveries.c.post_id == posts.c.id)
                .where(deliveries.c.state == DeliveryState.DRAFT.value)
                .group_by(posts.c.id, posts.c.title, posts.c.publish_at)
                .order_by(func.min(deliveries.c.due_at), posts.c.id)
            ).all()
        result = []
        for pid, title, publish_at, due in rows:
            due_at = self._aware(due)
            result.append((int(pid), title, due_at, publish_at is not None and due_at <= now))
        return result


def _series(row: Mapping[Any, Any]) -> SeriesInfo:
    return SeriesInfo(
        id=row["id"],
        rule=row["rule"],
        dtstart=datetime.fromisoformat(row["dtstart"]),
        timezone=row["timezone"],
        title=row["title"],
        category=row["category"],
        accounts=tuple(r["account"] for r in row["rendered"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
        approval_required=bool(row["approval_required"]),
        approved_by=row["approved_by"],
        cancelled_at=row["cancelled_at"],
        materialised_until=row["materialised_until"],
    )


def _replace_next(info: SeriesInfo, nxt: tuple[int, datetime]) -> SeriesInfo:
    from dataclasses import replace

    return replace(info, next_post=nxt)


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
