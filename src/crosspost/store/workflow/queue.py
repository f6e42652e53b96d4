"""Changing the queue, audited: enqueue, cancel, reschedule, retry, retract; and
keeping the deliveries of a resumed or rate-limited account out of quiet hours."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from crosspost.models import DeliveryState, Post, Rendered
from crosspost.store.audit import write_audit
from crosspost.store.schema import deliveries, posts, series
from crosspost.store.workflow._base import CHANGEABLE, WAITING, DueRule
from crosspost.store.workflow.dedup import DedupGuard, DedupQuery


class QueueWorkflow(DedupGuard):
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
            forced = self._guard(conn, post, rendered, dues, dedup, force=force)
            if forced:
                detail["forced_duplicates"] = forced
            post_id = self._insert_post(
                conn,
                post,
                actor=actor,
                now=now,
                approval_required=draft,
                keys=dedup.keys() if dedup else (None, None),
            )
            self._insert_deliveries(conn, post_id, rendered, dues, draft=draft, now=now)
            self._audit_enqueue(conn, post, detail, actor=actor, now=now, post_id=post_id)
        return post_id

    def cancel(self, post_id: int, *, actor: str, now: datetime) -> tuple[int, int | None]:
        """Cancel what waits (drafts too); a post of a series stops the series.

        Returns (deliveries cancelled, the series stopped or None).
        """
        with self.store._write() as conn:
            post = self._post_row(conn, post_id)
            states = [*CHANGEABLE, DeliveryState.UNKNOWN.value]
            n = self._set_state(
                conn, DeliveryState.CANCELLED, now=now, states=states, post_id=post_id
            )
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
                    m = self._set_state(
                        conn, DeliveryState.CANCELLED, now=now, states=CHANGEABLE, post_id=other
                    )
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
                    deliveries.c.post_id == post_id, deliveries.c.state.in_(CHANGEABLE)
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

    def hold_for_quiet_hours(
        self, account: str, at: datetime, *, now: datetime, due_rule: DueRule
    ) -> dict[int, datetime]:
        """Deliveries of ``account`` that would go out at ``at`` inside quiet hours wait.

        For an account the daemon can publish on again from ``at`` on (resumed now,
        or rate-limited until then): every waiting delivery due by then would be
        claimed at ``at``; those whose quiet hours hold ``at`` get the window's end
        as their due time. Returns {delivery id: new due}. Not audited: the daemon
        moves them, as it moves its own retries.
        """
        with self.store._write() as conn:
            rows = conn.execute(
                select(deliveries.c.id, posts.c.category)
                .join(posts, posts.c.id == deliveries.c.post_id)
                .where(
                    deliveries.c.account == account,
                    deliveries.c.state.in_(WAITING),
                    deliveries.c.due_at <= at,
                )
            ).all()
            moved: dict[int, datetime] = {}
            for delivery_id, category in rows:
                due = due_rule(category, account, at)
                if due <= at:
                    continue
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == delivery_id, deliveries.c.state.in_(WAITING))
                    .values(due_at=due, updated_at=now)
                )
                moved[int(delivery_id)] = due
        return moved
