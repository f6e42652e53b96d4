"""Approval (four eyes): drafts wait until another person approves or rejects them.

Drafts are deliveries in the state ``draft``: the claim reads only
``scheduled``/``retrying``/``unknown`` rows (``ix_deliveries_due``), so the
daemon never sees one. Approval turns them into ``scheduled``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from crosspost.exceptions import Refused
from crosspost.i18n import _
from crosspost.models import DeliveryState
from crosspost.store.audit import write_audit
from crosspost.store.schema import audit_log, deliveries, posts, series
from crosspost.store.workflow._base import DueRule, WorkflowBase, aware


@dataclass(frozen=True, slots=True)
class Approval:
    post_ids: list[int]
    series_id: int | None
    dues: dict[int, datetime] = field(default_factory=dict)


class ApprovalWorkflow(WorkflowBase):
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

    def _reviewable(
        self, conn: Connection, post_id: int, actor: str, own_post: str
    ) -> tuple[Mapping[Any, Any], list[Mapping[Any, Any]]]:
        """The draft post and its draft deliveries, if ``actor`` may review it.

        ``own_post`` is the refusal for its author ({id}, {user}).
        """
        post = self._post_row(conn, post_id)
        drafts = self._drafts(conn, post_id)
        if not drafts:
            raise Refused(_("post {id} is not awaiting approval").format(id=post_id))
        if actor in self._authors(conn, post):
            raise Refused(own_post.format(id=post_id, user=actor))
        return post, drafts

    def approve(self, post_id: int, *, actor: str, now: datetime, due_rule: DueRule) -> Approval:
        """Release a draft (and, for a series, the series); four eyes: not its author."""
        with self.store._write() as conn:
            post, drafts = self._reviewable(
                conn,
                post_id,
                actor,
                _(
                    "post {id}: you ({user}) wrote or edited it; another person must "
                    "approve it (four-eyes principle)"
                ),
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
            post, _drafts = self._reviewable(
                conn,
                post_id,
                actor,
                _(
                    "post {id}: you ({user}) wrote or edited it; another person reviews it. "
                    "To withdraw your own draft: crosspost cancel {id}"
                ),
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
                n = self._set_state(
                    conn, DeliveryState.REJECTED, now=now, states=(DeliveryState.DRAFT.value,),
                    error=reason, post_id=target,
                )  # fmt: skip
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
            due_at = aware(due)
            result.append((int(pid), title, due_at, publish_at is not None and due_at <= now))
        return result
