"""The editorial workflow as a Python API: approval, series, duplicates, quiet hours, edit.

:class:`Workflow` sits beside :class:`~crosspost.service.Crosspost` and uses its
settings, store and clock. What it stores goes through
:class:`~crosspost.store.workflow.SqlWorkflow`, which audits every change in
the change's own transaction. On the in-memory store (``enqueue --dry-run``)
there is no queue to compare with or approve in: planning works, writing does
not.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from crosspost.exceptions import ConfigError, InputError, PostFileError, Refused
from crosspost.i18n import _
from crosspost.models import Post
from crosspost.policy import daemon_due_rule, may_be_quiet, quiet_due
from crosspost.service import Crosspost, Planned, current_user

if TYPE_CHECKING:  # SQLAlchemy and dateutil only where they are used: dry runs start fast
    from crosspost.config import Settings
    from crosspost.recurrence import Recurrence
    from crosspost.store.audit import AuditEntry
    from crosspost.store.base import Store
    from crosspost.store.workflow import (
        Approval,
        DedupQuery,
        SeriesInfo,
        SqlWorkflow,
    )

#: how many coming occurrences ``preview`` lists for a recurring post
PREVIEW_OCCURRENCES = 3


@dataclass(frozen=True, slots=True)
class Enqueued:
    """What ``enqueue`` stored for one planned post."""

    post_ids: list[int]
    draft: bool
    dues: dict[str, datetime]
    series_id: int | None = None
    notes: list[str] = field(default_factory=list)


class Workflow:
    def __init__(self, service: Crosspost, *, actor: str | None = None) -> None:
        self.service = service
        self.settings = service.settings
        self.zone = service.settings.site.zone
        self.actor = actor or current_user()
        self.sql: SqlWorkflow | None = None
        if type(service.store).__name__ == "SqlStore":  # not imported for a scratch store
            from crosspost.store.sql import SqlStore
            from crosspost.store.workflow import SqlWorkflow

            if isinstance(service.store, SqlStore):
                self.sql = SqlWorkflow(service.store)

    def _db(self) -> SqlWorkflow:
        if self.sql is None:  # pragma: no cover - the CLI always has a database here
            raise InputError(_("this needs the queue's database"))
        return self.sql

    def now(self) -> datetime:
        return self.service.clock.now()

    # -- policy -----------------------------------------------------------------------
    def due_rule(self, category: str | None, account: str, base: datetime) -> datetime:
        """``base``, moved out of the account's and the category's quiet hours."""
        try:
            return quiet_due(self.settings, category, account, base)
        except ValueError:
            raise ConfigError(
                _("quiet hours of account {account} leave no time to publish").format(
                    account=account
                )
            ) from None

    def needs_approval(self, post: Post) -> bool:
        return self.settings.approval.required_for(post.category)

    def dedup_query(self, post: Post) -> DedupQuery | None:
        if self.sql is None:
            return None
        from crosspost.store.workflow import DedupQuery

        link = None if self._is_site_root(post.link) else post.link
        # days == 0 (guard off): nothing is checked, the keys are stored all the same
        return DedupQuery(days=self.settings.dedup.days, link=link, body=post.body,
                          zone=self.zone)  # fmt: skip

    def _is_site_root(self, link: str) -> bool:
        """The default link (the site itself) is shared by many posts: not a duplicate sign."""
        site = urlsplit(self.settings.site.url)
        mine = urlsplit(link)
        return (mine.netloc.lower(), mine.path.rstrip("/"), mine.query) == (
            site.netloc.lower(),
            site.path.rstrip("/"),
            site.query,
        )

    def recurrence(self, planned: Planned) -> Recurrence | None:
        post = planned.post
        if post.repeat is None:
            return None
        from crosspost.recurrence import RecurrenceError, parse_recurrence

        start = post.publish_at or self.now()
        try:
            return parse_recurrence(post.repeat, start, self.zone)
        except RecurrenceError as exc:
            raise PostFileError(
                _("{file}: repeat: {problem}").format(file=post.source or "--text", problem=exc)
            ) from None

    def dues(self, planned: Planned, base: datetime | None = None) -> dict[str, datetime]:
        at = planned.due_at if base is None else base
        return {r.account: self.due_rule(planned.post.category, r.account, at)
                for r in planned.rendered}  # fmt: skip

    def notes(self, planned: Planned, *, dedup: bool = True) -> list[str]:
        """What ``preview`` and ``enqueue`` add about approval, repetition and quiet hours."""
        notes: list[str] = []
        recurrence = self.recurrence(planned)
        base = planned.due_at
        if recurrence is not None:
            coming = list(recurrence.after(self.now(), until=self.now() + timedelta(days=3660)))[
                :PREVIEW_OCCURRENCES
            ]
            if not coming:
                raise PostFileError(
                    _("{file}: repeat: the rule has no occurrence after now").format(
                        file=planned.post.source or "--text"
                    )
                )
            base = coming[0]
            notes.append(
                _("repeats ({rule}); next: {times}").format(
                    rule=recurrence.rule,
                    times=", ".join(self.service.local(t) for t in coming),
                )
            )
        for account, due in self.dues(planned, base).items():
            if due != base:
                notes.append(
                    _("{account}: quiet hours; due {time} instead").format(
                        account=account, time=self.service.local(due)
                    )
                )
        if self.needs_approval(planned.post):
            notes.append(
                _("needs approval: stored as a draft until another person runs crosspost approve")
            )
        if dedup and self.sql is not None and recurrence is None:
            query = self.dedup_query(planned.post)
            if query is not None:
                from crosspost.store.workflow import describe_duplicates

                found = self.sql.duplicates(planned.rendered, self.dues(planned), query)
                if found:
                    notes.append(describe_duplicates(planned.post, found, self.zone))
        return notes

    # -- enqueue ----------------------------------------------------------------------
    def enqueue(self, planned: Sequence[Planned], *, force: bool = False) -> list[Enqueued]:
        db = self._db()
        now = self.now()
        results = []
        # One transaction: a failure part-way (a duplicate, a full disk) queues none,
        # so running the same command again cannot queue any post twice.
        with db.transaction() as conn:
            if self.settings.dedup.days > 0:
                # the guard's locks of every account first, in one order: two batches
                # that share accounts wait for each other instead of deadlocking
                db.lock_accounts(conn, (r.account for p in planned for r in p.rendered))
            for p in planned:
                results.append(self._enqueue_one(db, conn, p, now=now, force=force))
        return results

    def _enqueue_one(
        self, db: SqlWorkflow, conn: Any, p: Planned, *, now: datetime, force: bool
    ) -> Enqueued:
        draft = self.needs_approval(p.post)
        if draft and p.post.publish_at is not None and p.post.publish_at <= now:
            # "in the past: as soon as possible" -- for a draft, as soon as it is approved
            p = p.replace(post=p.post.replace(publish_at=None))
        recurrence = self.recurrence(p)
        if recurrence is not None:
            recurrence_config = self.settings.recurrence
            series_id, ids = db.create_series(
                p.post,
                recurrence,
                p.rendered,
                draft=draft,
                actor=self.actor,
                now=now,
                due_rule=self.due_rule,
                horizon=timedelta(days=recurrence_config.horizon_days),
                spread=timedelta(seconds=recurrence_config.spread_seconds),
                dedup=self.dedup_query(p.post),
                force=force,
                conn=conn,
            )
            if not ids:
                raise PostFileError(
                    _("{file}: repeat: the rule has no occurrence after now").format(
                        file=p.post.source or "--text"
                    )
                )
            return Enqueued(post_ids=ids, draft=draft, dues={}, series_id=series_id)
        dues = self.dues(p)
        post_id = db.enqueue(
            p.post,
            p.rendered,
            dues=dues,
            draft=draft,
            actor=self.actor,
            now=now,
            dedup=self.dedup_query(p.post),
            force=force,
            conn=conn,
        )
        return Enqueued(post_ids=[post_id], draft=draft, dues=dues)

    # -- approval ---------------------------------------------------------------------
    def approve(self, post_id: int) -> Approval:
        return self._db().approve(post_id, actor=self.actor, now=self.now(), due_rule=self.due_rule)

    def reject(self, post_id: int, reason: str) -> list[int]:
        reason = reason.strip()
        if not reason:
            raise InputError(_("--reason: say why, so the author can fix it"))
        return self._db().reject(post_id, reason=reason, actor=self.actor, now=self.now())

    # -- the queue, audited -----------------------------------------------------------
    def cancel(self, post_id: int) -> tuple[int, int | None]:
        return self._db().cancel(post_id, actor=self.actor, now=self.now())

    def reschedule(self, post_id: int, at: datetime) -> dict[str, datetime]:
        return self._db().reschedule(
            post_id, at, actor=self.actor, now=self.now(), due_rule=self.due_rule
        )

    def retry(self, post_id: int | None) -> int:
        return self._db().retry(post_id, actor=self.actor, now=self.now(), due_rule=self.due_rule)

    def mark_retracted(self, delivery_id: int) -> bool:
        if self.sql is None:
            return self.service.store.mark_retracted(delivery_id, now=self.now())
        return self.sql.mark_retracted(delivery_id, actor=self.actor, now=self.now())

    def cancel_waiting(self, post_id: int) -> int:
        if self.sql is None:
            return self.service.store.cancel(post_id, now=self.now())
        return self.sql.cancel(post_id, actor=self.actor, now=self.now())[0]

    # -- series -----------------------------------------------------------------------
    def materialise(self, actor: str) -> list[int]:
        if self.sql is None:
            return []
        config = self.settings.recurrence
        return self.sql.materialise(
            now=self.now(),
            horizon=timedelta(days=config.horizon_days),
            spread=timedelta(seconds=config.spread_seconds),
            due_rule=self.due_rule,
            actor=actor,
        )

    def series(self) -> list[SeriesInfo]:
        return self._db().series_list()

    # -- reading ----------------------------------------------------------------------
    def audit(self, post_id: int | None = None) -> list[AuditEntry]:
        if post_id is not None:
            self.service.store.get_post(post_id)  # NotFound for a post that does not exist
        return self._db().audit(post_id=post_id)

    def drafts(self) -> list[tuple[int, str, datetime, bool]]:
        return self._db().drafts(self.now())

    # -- edit -------------------------------------------------------------------------
    def edit_form(self, post_id: int) -> str:
        """The post as a post file, for the editor; refuses a post that cannot change."""
        post, rows = self._db().stored_form(post_id)
        self._db().check_editable(post_id, [r["state"] for r in rows])
        accounts = [r["account"] for r in rows if r["state"] not in ("cancelled", "rejected")]
        lines = [
            "+++",
            "# " + _("crosspost edit: post {id} (its id stays).").format(id=post_id),
            "# " + _("Save and close the editor to apply; leave it unchanged to keep the post."),
            "# " + _("Media paths must be absolute."),
            f"title = {_toml(post['title'])}",
            f"link = {_toml(post['link'])}",
        ]
        if post["category"]:
            lines.append(f"category = {_toml(post['category'])}")
        if post["publish_at"] is not None:
            wall = post["publish_at"].astimezone(self.zone).replace(tzinfo=None)
            lines.append(f"publish_at = {wall.isoformat(timespec='seconds')}")
        lines.append("accounts = [" + ", ".join(_toml(a) for a in accounts) + "]")
        for m in post["media"]:
            lines += ["", "[[media]]", f"path = {_toml(m['path'])}", f"alt = {_toml(m['alt'])}"]
        for target, text in sorted(post["variants"].items()):
            lines += ["", f"[variants.{_toml(target)}]", f"text = {_toml(text)}"]
        lines += ["+++", post["body"], ""]
        return "\n".join(lines)

    def apply_edit(self, post_id: int, path: Path, *, force: bool = False) -> list[str]:
        """Validate the edited file in full and store it under the same post id."""
        original, _rows = self._db().stored_form(post_id)
        post = self.service.read_files([path])[0]
        if post.repeat is not None:
            raise PostFileError(
                _(
                    "{file}: repeat: a series cannot be changed with edit; cancel it and "
                    "enqueue the changed post"
                ).format(file=path)
            )
        post = post.replace(source=original["source"])
        planned = self.service.plan(post)
        # an edit after approval needs a new approval: the approver saw the old text
        draft = self.needs_approval(planned.post) or bool(original["approval_required"])
        return self._db().edit(
            post_id,
            planned.post,
            planned.rendered,
            dues=self.dues(planned),
            draft=draft,
            actor=self.actor,
            now=self.now(),
            dedup=self.dedup_query(planned.post),
            force=force,
        )


def hold_for_quiet_hours(
    settings: Settings, store: Store, account: str, at: datetime, *, now: datetime
) -> dict[int, datetime]:
    """An account the daemon may publish on again from ``at`` (resumed, or rate-limited
    until then): its waiting deliveries that would go out inside quiet hours are due
    at the window's end instead. {delivery id: new due}; nothing without quiet hours
    or on a store without a database."""
    if not may_be_quiet(settings, account) or type(store).__name__ != "SqlStore":
        return {}
    from crosspost.store.sql import SqlStore
    from crosspost.store.workflow import SqlWorkflow

    assert isinstance(store, SqlStore)
    return SqlWorkflow(store).hold_for_quiet_hours(
        account, at, now=now, due_rule=daemon_due_rule(settings)
    )


def _toml(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def run_editor(text: str, post_id: int) -> tuple[str, Path]:
    """Open $VISUAL / $EDITOR on ``text``; the edited text and the file holding it."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    folder = Path(tempfile.mkdtemp(prefix="crosspost-edit-"))
    path = folder / f"post-{post_id}.md"
    path.write_text(text, encoding="utf-8")
    try:
        command = [*shlex.split(editor), str(path)]
        result = subprocess.run(command, check=False)  # noqa: S603 - the user's own editor
    except (OSError, ValueError) as exc:
        raise InputError(
            _("cannot start the editor {editor!r} ({reason}); set $EDITOR").format(
                editor=editor, reason=exc
            )
        ) from None
    if result.returncode != 0:
        raise Refused(
            _("the editor exited with {code}; post {id} is unchanged (your text: {path})").format(
                code=result.returncode, id=post_id, path=path
            )
        )
    return path.read_text(encoding="utf-8", errors="replace"), path


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    from crosspost.views import iso

    return {
        "id": entry.id,
        "time": iso(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "post": entry.post_id,
        "series": entry.series_id,
        "detail": dict(entry.detail),
    }
