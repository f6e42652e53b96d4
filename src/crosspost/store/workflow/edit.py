"""``crosspost edit``: a waiting post's content replaced under the same id."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from crosspost.exceptions import Refused
from crosspost.i18n import _
from crosspost.models import DeliveryState, Post, Rendered
from crosspost.store._sql import post_columns
from crosspost.store.audit import write_audit
from crosspost.store.schema import deliveries, posts
from crosspost.store.workflow._base import CHANGEABLE, STARTED
from crosspost.store.workflow.dedup import DedupGuard, DedupQuery


class EditWorkflow(DedupGuard):
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
            self._guard(
                conn, post, rendered, dues, dedup, force=force,
                exclude_series=old["series_id"], exclude_post=post_id,
            )  # fmt: skip
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
                link_digest, text_digest = dedup.keys()
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
                if existing["state"] in (*CHANGEABLE, DeliveryState.CANCELLED.value):
                    values.update(due_at=dues[r.account], state=state)
                    if existing["state"] == DeliveryState.RETRYING.value and not draft:
                        values["state"] = DeliveryState.RETRYING.value
                conn.execute(
                    update(deliveries).where(deliveries.c.id == existing["id"]).values(**values)
                )
            for account, existing in by_account.items():
                if account not in wanted and existing["state"] in CHANGEABLE:
                    self._set_state(
                        conn, DeliveryState.CANCELLED, now=now, states=CHANGEABLE, id=existing["id"]
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
        if any(s in STARTED for s in states):
            raise Refused(
                _(
                    "post {id} is already published (or being published) on at least one "
                    "account and cannot be edited; retract it with: crosspost retract {id}"
                ).format(id=post_id)
            )
        if not any(s in (*CHANGEABLE, DeliveryState.FAILED.value) for s in states):
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
