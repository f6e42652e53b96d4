"""The workflow's commands: ``approve``, ``reject``, ``edit``, ``audit``.

Registered on the ``crosspost`` group by :mod:`crosspost.cli` (imported at its
end). Like every command, they import the heavy modules inside their bodies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from crosspost.cli import POST_ID, App, _errors, echo_json, json_option, main_group, pass_app
from crosspost.i18n import _, ngettext


def workflow_of(app: App) -> Any:
    from crosspost.workflow import Workflow

    return Workflow(app.service())


@main_group.command()
@click.argument("post_id", type=POST_ID)
@pass_app
def approve(app: App, post_id: int) -> None:
    """Approve a draft (by another person than its author); it is then published on time."""
    with _errors(app):
        flow = workflow_of(app)
        approval = flow.approve(post_id)
        service = flow.service
        for pid in approval.post_ids:
            click.echo(
                _("post {id} approved; due {due}").format(
                    id=pid, due=service.local(approval.dues[pid])
                )
            )
        if approval.series_id is not None:
            click.echo(
                _("series {series} approved: its coming occurrences are scheduled directly").format(
                    series=approval.series_id
                )
            )


@main_group.command()
@click.argument("post_id", type=POST_ID)
@click.option("--reason", required=True, help=_("Why (the author reads it in show and status)."))
@pass_app
def reject(app: App, post_id: int, reason: str) -> None:
    """Reject a draft: it will not be published (a series stops)."""
    with _errors(app):
        rejected = workflow_of(app).reject(post_id, reason)
        click.echo(
            ngettext("post {ids} rejected", "posts {ids} rejected", len(rejected)).format(
                ids=", ".join(str(i) for i in rejected)
            )
        )


@main_group.command()
@click.argument("post_id", type=POST_ID)
@click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path, dir_okay=False),
    help=_("Take the changed post from this file instead of opening $EDITOR."),
)
@click.option("--force", is_flag=True, help=_("Store it even if it duplicates another post."))
@pass_app
def edit(app: App, post_id: int, file: Path | None, force: bool) -> None:
    """Change a post that is not published yet in $EDITOR; it keeps its id."""
    from crosspost.exceptions import CrosspostError
    from crosspost.workflow import run_editor

    with _errors(app):
        flow = workflow_of(app)
        form = flow.edit_form(post_id)
        if file is None:
            edited, path = run_editor(form, post_id)
            if edited == form:
                click.echo(_("post {id}: no changes").format(id=post_id))
                return
        else:
            path = file
        try:
            changed = flow.apply_edit(post_id, path, force=force)
        except CrosspostError as exc:
            if file is None:
                exc.message += " — " + _(
                    "your text is kept in {path}; fix it and run: crosspost edit {id} --file {path}"
                ).format(path=path, id=post_id)
            raise
        if file is None:
            path.unlink(missing_ok=True)
            path.parent.rmdir()
        shown = ", ".join(changed) if changed else _("nothing")
        click.echo(_("post {id} changed: {fields}").format(id=post_id, fields=shown))
        deliveries = flow.service.store.deliveries_of(post_id)
        if any(d.state.value == "draft" for d in deliveries):
            click.echo(
                _("post {id} awaits approval again: crosspost approve {id}").format(id=post_id)
            )


@main_group.command()
@click.option("--post", "post_id", type=POST_ID, help=_("Only this post (and its series)."))
@json_option
@pass_app
def audit(app: App, post_id: int | None, as_json: bool) -> None:
    """Who enqueued, edited, approved, rejected, cancelled, retried, retracted — and when."""
    from crosspost.views import local
    from crosspost.workflow import audit_json

    with _errors(app):
        entries = workflow_of(app).audit(post_id)
        if as_json:
            echo_json([audit_json(e) for e in entries])
            return
        if not entries:
            click.echo(_("no entries"))
            return
        zone = app.settings.site.zone
        for e in entries:
            target = (
                _("post {id}").format(id=e.post_id)
                if e.post_id is not None
                else _("series {id}").format(id=e.series_id)
            )
            detail = _describe(e.detail)
            click.echo(
                f"{local(e.at, zone)}  {e.actor:<12} {action_label(e.action):<22} {target}"
                + (f"  {detail}" if detail else "")
            )


def action_label(action: str) -> str:
    labels = {
        "enqueue": _("enqueued"),
        "enqueue_forced": _("enqueued (--force)"),
        "materialise": _("occurrence created"),
        "edit": _("edited"),
        "approve": _("approved"),
        "reject": _("rejected"),
        "cancel": _("cancelled"),
        "stop_series": _("series stopped"),
        "reschedule": _("rescheduled"),
        "retry": _("retried"),
        "retract": _("retracted"),
    }
    return labels.get(action, action)


def _describe(detail: Any) -> str:
    parts = []
    for key in ("reason", "accounts", "account", "changed", "rule", "forced_duplicates"):
        value = detail.get(key)
        if value:
            shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
            parts.append(f"{key}={shown}")
    return "  ".join(parts)


def echo_series(app: App, as_json: bool) -> None:
    """``list --recurring``."""
    from crosspost.views import iso, local, table, truncate

    flow = workflow_of(app)
    rows = flow.series()
    if as_json:
        echo_json(
            [
                {
                    "series": s.id,
                    "rule": s.rule,
                    "title": s.title,
                    "category": s.category,
                    "accounts": list(s.accounts),
                    "created_by": s.created_by,
                    "approval_required": s.approval_required,
                    "approved_by": s.approved_by,
                    "state": series_state(s),
                    "next_post": s.next_post[0] if s.next_post else None,
                    "next_due": iso(s.next_post[1]) if s.next_post else None,
                }
                for s in rows
            ]
        )
        return
    if not rows:
        click.echo(_("no recurring posts"))
        return
    zone = app.settings.site.zone
    lines = [(_("SERIES"), _("STATE"), _("NEXT"), _("POST"), _("RULE"), _("TITLE"))]
    for s in rows:
        lines.append(
            (
                str(s.id),
                series_label(series_state(s)),
                local(s.next_post[1], zone) if s.next_post else "-",
                str(s.next_post[0]) if s.next_post else "-",
                s.rule,
                truncate(s.title, 30),
            )
        )
    for line in table(lines, right=(0,)):
        click.echo(line)


def series_state(s: Any) -> str:
    if s.cancelled_at is not None:
        return "stopped"
    if s.approval_required and s.approved_by is None:
        return "draft"
    return "active"


def series_label(state: str) -> str:
    return {"stopped": _("stopped"), "draft": _("awaiting approval"), "active": _("active")}.get(
        state, state
    )


def echo_drafts(app: App, as_json: bool) -> dict[str, Any]:
    """What ``status`` says about approval; the JSON part."""
    from crosspost.views import iso, local

    drafts = workflow_of(app).drafts()
    data = {
        "awaiting_approval": [
            {"post": pid, "title": title, "due_at": iso(due)}
            for pid, title, due, expired in drafts
            if not expired
        ],
        "expired_unapproved": [
            {"post": pid, "title": title, "due_at": iso(due)}
            for pid, title, due, expired in drafts
            if expired
        ],
    }
    if not as_json:
        zone = app.settings.site.zone
        for pid, title, due, expired in drafts:
            line = (
                _("not published, its time passed unapproved: post {id} ({time}): {title}")
                if expired
                else _("awaiting approval: post {id} ({time}): {title}")
            )
            click.echo(line.format(id=pid, time=local(due, zone), title=title))
    return data


def echo_open_interactions(app: App, now: Any, as_json: bool) -> dict[str, Any]:
    """What ``status`` says about the inbox: per account, the interactions still open
    and not replied to, and how long the oldest has waited; the JSON part."""
    from crosspost.views import iso, local

    store = app.store()
    if not hasattr(store, "engine"):  # pragma: no cover - the CLI's store has a database
        return {"open_interactions": {}}
    from crosspost.store.inbox import SqlInbox

    found = SqlInbox(store.engine).unanswered()
    data = {
        account: {
            "count": n,
            "oldest_at": iso(oldest),
            "oldest_age_seconds": max(0, int((now - oldest).total_seconds())),
        }
        for account, (n, oldest) in sorted(found.items())
    }
    if not as_json:
        zone = app.settings.site.zone
        for account, (n, oldest) in sorted(found.items()):
            click.echo(
                ngettext(
                    "inbox of {account}: {n} open interaction, the oldest from {time} ({age} ago)",
                    "inbox of {account}: {n} open interactions, the oldest from {time} ({age} ago)",
                    n,
                ).format(
                    account=account,
                    n=n,
                    time=local(oldest, zone),
                    age=age_text(max(0.0, (now - oldest).total_seconds())),
                )
            )
    return {"open_interactions": data}


def age_text(seconds: float) -> str:
    """A waiting time as a person says it: minutes, hours or days (rounded down)."""
    minutes = int(seconds // 60)
    if minutes < 60:
        return ngettext("{n} minute", "{n} minutes", minutes).format(n=minutes)
    hours = minutes // 60
    if hours < 48:
        return ngettext("{n} hour", "{n} hours", hours).format(n=hours)
    days = hours // 24
    return ngettext("{n} day", "{n} days", days).format(n=days)


def draft_state(post: Any, deliveries: Any, state: str) -> str:
    """``list``: a draft whose publication time passed unapproved shows as expired."""
    from crosspost.clock import system_clock

    if state != "draft" or post.publish_at is None:
        return state
    due = min((d.due_at for d in deliveries), default=post.publish_at)
    return "expired" if due <= system_clock.now() else state


def workflow_facts(app: App, post_id: int) -> dict[str, Any]:
    """``show``'s extra keys: approval and series (JSON, not translated)."""
    from crosspost.views import iso

    flow = workflow_of(app)
    if flow.sql is None:
        return {}
    post, _rows = flow.sql.stored_form(post_id)
    return {
        "approval_required": bool(post["approval_required"]),
        "approved_by": post["approved_by"],
        "approved_at": iso(post["approved_at"]),
        "series": post["series_id"],
    }


def echo_facts(facts: dict[str, Any], post_id: int) -> None:
    if facts.get("approved_by"):
        click.echo("  " + _("approved by {user}").format(user=facts["approved_by"]))
    elif facts.get("approval_required"):
        click.echo(
            "  " + _("needs approval by another person: crosspost approve {id}").format(id=post_id)
        )
    if facts.get("series") is not None:
        click.echo(
            "  "
            + _("occurrence of series {series} (crosspost list --recurring)").format(
                series=facts["series"]
            )
        )
