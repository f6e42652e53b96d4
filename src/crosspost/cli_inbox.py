"""``crosspost inbox …`` and ``crosspost privacy purge``: the editors' inbox from the CLI.

Registered on the main group by :mod:`crosspost.cli`; like every command, the
heavy modules are imported inside the bodies.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

import click

from crosspost.cli import (
    App,
    _errors,
    echo_json,
    fail,
    json_option,
    main_group,
    one_line,
    pass_app,
)
from crosspost.i18n import _, ngettext

if TYPE_CHECKING:
    from crosspost.inbox import Interaction, MonthResponses
    from crosspost.store.inbox import SqlInbox

INTERACTION_ID = click.IntRange(1, 2**63 - 1)
#: what a stranger's text must not bring to an editor's terminal (escape sequences and
#: other controls; line breaks and tabs stay)
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def shown(text: str) -> str:
    """Text from a platform as it may be printed: control characters as visible escapes."""
    return _CONTROLS.sub(lambda m: repr(m.group())[1:-1], text)


def _inbox(app: App) -> SqlInbox:
    from crosspost.store.inbox import SqlInbox

    return SqlInbox(app.store().engine)


def interaction_json(item: Interaction) -> dict[str, Any]:
    """One interaction as ``--json`` prints it (never translated)."""
    from crosspost.views import iso

    return {
        "id": item.id,
        "account": item.account,
        "platform": item.platform,
        "kind": item.kind,
        "state": item.state.value,
        "handle": item.handle,
        "text": item.text,
        "url": item.url,
        "created_at": iso(item.created_at),
        "post": item.post_id,
        "post_title": item.post_title,
        "first_response_at": iso(item.first_response_at),
        "response_seconds": item.response_seconds,
        "replied_at": iso(item.replied_at),
        "reply_url": item.reply_url,
        "forwarded_to": item.forwarded_to,
        "forwarded_at": iso(item.forwarded_at),
        "done_at": iso(item.done_at),
    }


def _state_label(state: str) -> str:
    return {"open": _("open"), "done": _("done")}.get(state, state)


def _kind_label(kind: str) -> str:
    labels = {
        "mention": _("mention"),
        "reply": _("reply"),
        "comment": _("comment"),
        "quote": _("quote"),
    }
    return labels.get(kind, kind)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = int(seconds // 60)
    if minutes < 60:
        return _("{n} min").format(n=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return _("{h} h {m} min").format(h=hours, m=minutes)
    return _("{d} days").format(d=hours // 24)


def _list_options(fn: Any) -> Any:
    fn = click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100000))(fn)
    fn = click.option("--account", metavar="NAME", help=_("Only this account."))(fn)
    fn = click.option(
        "--open", "open_only", is_flag=True, help=_("Only interactions not yet done.")
    )(fn)
    return json_option(fn)


@click.group(invoke_without_command=True)
@_list_options
@click.pass_context
def inbox(
    ctx: click.Context, open_only: bool, account: str | None, limit: int, as_json: bool
) -> None:
    """Replies, mentions and comments from every network, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    _print_list(ctx.obj, open_only=open_only, account=account, limit=limit, as_json=as_json)


@inbox.command(name="list")
@_list_options
@pass_app
def list_(app: App, open_only: bool, account: str | None, limit: int, as_json: bool) -> None:
    """The same as `crosspost inbox`: interactions, newest first."""
    _print_list(app, open_only=open_only, account=account, limit=limit, as_json=as_json)


def _print_list(
    app: App, *, open_only: bool, account: str | None, limit: int, as_json: bool
) -> None:
    from crosspost.views import local, table, truncate

    with _errors(app):
        items = _inbox(app).list_interactions(open_only=open_only, account=account, limit=limit)
        if as_json:
            echo_json([interaction_json(i) for i in items])
            return
        if not items:
            click.echo(_("no open interactions") if open_only else _("no interactions"))
            return
        zone = app.settings.site.zone
        rows = [(_("ID"), _("STATE"), _("TIME"), _("ACCOUNT"), _("FROM"), _("TEXT"))]
        for i in items:
            state = _state_label(i.state.value)
            if i.forwarded_to:
                state += " ✉"
            if i.replied_at:
                state += " ↩"
            rows.append(
                (
                    str(i.id),
                    state,
                    local(i.created_at, zone),
                    i.account,
                    truncate(i.handle, 24) or "-",
                    truncate(i.text, 48),
                )
            )
        for line in table(rows, right=(0,)):
            click.echo(one_line(line))


@inbox.command()
@click.argument("interaction_id", type=INTERACTION_ID)
@json_option
@pass_app
def show(app: App, interaction_id: int, as_json: bool) -> None:
    """One interaction: who wrote what, where, when, and what was done."""
    from crosspost.views import local

    with _errors(app):
        item = _inbox(app).get(interaction_id)
        if as_json:
            echo_json(interaction_json(item))
            return
        zone = app.settings.site.zone
        click.echo(
            _("interaction {id}: {kind} on {account} ({platform})").format(
                id=item.id, kind=_kind_label(item.kind), account=item.account,
                platform=item.platform,
            )
        )  # fmt: skip
        click.echo("  " + _("state: {state}").format(state=_state_label(item.state.value)))
        click.echo("  " + _("from: {handle}").format(handle=one_line(item.handle) or "-"))
        click.echo("  " + _("time: {time}").format(time=local(item.created_at, zone)))
        click.echo("  " + _("link: {link}").format(link=one_line(item.url or "-")))
        if item.post_id is not None:
            click.echo(
                "  " + _("about post {id}: {title}").format(id=item.post_id, title=item.post_title)
            )
        if item.replied_at:
            click.echo(
                "  "
                + _("replied {time}: {url}").format(
                    time=local(item.replied_at, zone), url=item.reply_url or item.reply_remote_id
                )
            )
        if item.forwarded_to:
            click.echo(
                "  "
                + _("forwarded to {office} {time}").format(
                    office=item.forwarded_to, time=local(item.forwarded_at, zone)
                )
            )
        if item.done_at:
            click.echo("  " + _("done {time}").format(time=local(item.done_at, zone)))
        if item.first_response_at:
            click.echo(
                "  "
                + _("response time: {duration}").format(duration=_duration(item.response_seconds))
            )
        click.echo()
        click.echo(shown(item.text))


@inbox.command()
@click.argument("interaction_id", type=INTERACTION_ID)
@click.option("--text", help=_("The reply."))
@click.option("--template", metavar="NAME", help=_("A reply text from inbox.templates."))
@click.option("--office", metavar="NAME", help=_("The office a template names (inbox.offices)."))
@click.option("--keep-open", is_flag=True, help=_("Leave the interaction open after replying."))
@click.option("--again", is_flag=True, help=_("Reply although it was answered before."))
@json_option
@pass_app
def reply(
    app: App,
    interaction_id: int,
    text: str | None,
    template: str | None,
    office: str | None,
    keep_open: bool,
    again: bool,
    as_json: bool,
) -> None:
    """Answer on the platform, as a reply to the interaction (then it is done)."""
    import asyncio

    from crosspost.inbox import render_template
    from crosspost.inbox import reply as run_reply

    if (text is None) == (template is None):
        fail(_("give either --text or --template"), 2)
    if office is not None and template is None:
        fail(_("--office goes with --template"), 2)
    with _errors(app):
        store = _inbox(app)
        item = store.get(interaction_id)
        if template is not None:
            text = render_template(app.settings, template, handle=item.handle, office=office)
        assert text is not None
        done = asyncio.run(
            run_reply(store, app.settings, interaction_id, text, keep_open=keep_open, again=again)
        )
        if as_json:
            echo_json(interaction_json(done))
            return
        click.echo(
            _("replied to interaction {id}: {url}").format(
                id=done.id, url=done.reply_url or done.reply_remote_id
            )
        )


@inbox.command()
@click.argument("interaction_ids", nargs=-1, required=True, type=INTERACTION_ID)
@click.option("--reopen", is_flag=True, help=_("Open it again instead."))
@json_option
@pass_app
def done(app: App, interaction_ids: tuple[int, ...], reopen: bool, as_json: bool) -> None:
    """Mark interactions as done (answered elsewhere, or nothing to answer)."""
    from crosspost.clock import system_clock

    with _errors(app):
        store = _inbox(app)
        for interaction_id in interaction_ids:
            store.get(interaction_id)  # all exist, or nothing is changed
        items = [
            store.reopen(i) if reopen else store.mark_done(i, now=system_clock.now())
            for i in interaction_ids
        ]
        if as_json:
            echo_json([interaction_json(i) for i in items])
            return
        for item in items:
            line = _("interaction {id} reopened") if reopen else _("interaction {id} done")
            click.echo(line.format(id=item.id))


@inbox.command()
@click.argument("interaction_id", type=INTERACTION_ID)
@click.option(
    "--to", "office", required=True, metavar="OFFICE", help=_("An office of inbox.offices.")
)
@json_option
@pass_app
def forward(app: App, interaction_id: int, office: str, as_json: bool) -> None:
    """Mail the request (text, link, time) to a competent office."""
    from crosspost.inbox import forward as run_forward

    with _errors(app):
        item = run_forward(_inbox(app), app.settings, interaction_id, office)
        if as_json:
            echo_json(interaction_json(item))
            return
        address = app.settings.inbox.offices[office].email
        click.echo(
            _("interaction {id} forwarded to {office} <{address}>").format(
                id=item.id, office=office, address=address
            )
        )


@inbox.command()
@click.option("--account", "only", metavar="NAME", help=_("Only this account."))
@json_option
@pass_app
def sync(app: App, only: str | None, as_json: bool) -> None:
    """Fetch new interactions now (the daemon does this periodically)."""
    import asyncio

    from crosspost.inbox import sync_all

    with _errors(app):
        results = asyncio.run(sync_all(_inbox(app), app.settings, only=only))
        if as_json:
            echo_json(
                [{"account": r.account, "ok": r.ok, "new": r.new, "note": r.note} for r in results]
            )
        else:
            if not results:
                click.echo(_("no account fetches interactions"))
            for r in results:
                line = ngettext(
                    "{account}: {n} new interaction", "{account}: {n} new interactions", r.new
                ).format(account=r.account, n=r.new)
                if r.note:
                    line += f" ({r.note})"
                click.echo(("✓ " if r.ok else "✗ ") + line)
        if not all(r.ok for r in results):
            sys.exit(1)


@inbox.command(name="status")
@json_option
@pass_app
def status_(app: App, as_json: bool) -> None:
    """Per account: open interactions, last fetch, rate-limit wait, last error."""
    from crosspost.inbox import inbox_accounts
    from crosspost.views import iso, local

    with _errors(app):
        store = _inbox(app)
        states = store.sync_states()
        open_items = store.list_interactions(open_only=True, limit=1_000_000)
        rows: list[dict[str, Any]] = []
        for name in sorted(set(inbox_accounts(app.settings)) | set(states)):
            state = states.get(name, {})
            rows.append(
                {
                    "account": name,
                    "open": sum(1 for i in open_items if i.account == name),
                    "synced_at": iso(state.get("synced_at")),
                    "blocked_until": iso(state.get("blocked_until")),
                    "error": state.get("error"),
                }
            )
        if as_json:
            echo_json(rows)
            return
        if not rows:
            click.echo(_("no account fetches interactions"))
        zone = app.settings.site.zone
        for row in rows:
            state = states.get(row["account"], {})
            line = _("{account}: {n} open, fetched {time}").format(
                account=row["account"],
                n=row["open"],
                time=local(state.get("synced_at"), zone) if state.get("synced_at") else _("never"),
            )
            if row["blocked_until"]:
                line += "; " + _("rate limited until {time}").format(
                    time=local(state.get("blocked_until"), zone)
                )
            if row["error"]:
                line += "; " + _("last error: {error}").format(error=one_line(row["error"]))
            click.echo(line)


@inbox.command()
@click.option("--year", type=click.IntRange(2000, 2100), help=_("Default: this year."))
@json_option
@pass_app
def times(app: App, year: int | None, as_json: bool) -> None:
    """Response times per month (first reply or done), for the yearly report."""
    from crosspost.clock import system_clock
    from crosspost.inbox import response_times

    with _errors(app):
        zone = app.settings.site.zone
        year = year or system_clock.now().astimezone(zone).year
        months = response_times(app.store(), year, zone=zone)
        if as_json:
            echo_json({"year": year, "months": [_month_json(m) for m in months]})
            return
        from crosspost.views import table

        rows = [
            (
                _("MONTH"),
                _("ANSWERED"),
                _("OPEN"),
                _("MEDIAN"),
                _("90 %"),
                _("≤ 1 H"),
                _("≤ 24 H"),
            )
        ]
        for m in months:
            rows.append(
                (
                    f"{year}-{m.month:02d}",
                    str(m.answered),
                    str(m.unanswered),
                    _duration(m.median_seconds),
                    _duration(m.p90_seconds),
                    str(m.within_hour),
                    str(m.within_day),
                )
            )
        for line in table(rows, right=(1, 2, 5, 6)):
            click.echo(line)


def _month_json(m: MonthResponses) -> dict[str, Any]:
    return {
        "month": m.month,
        "answered": m.answered,
        "unanswered": m.unanswered,
        "median_seconds": m.median_seconds,
        "p90_seconds": m.p90_seconds,
        "max_seconds": m.max_seconds,
        "within_hour": m.within_hour,
        "within_day": m.within_day,
        "by_platform": dict(m.by_platform),
    }


@click.group()
def privacy() -> None:
    """Personal data: delete what is due."""


@privacy.command()
@click.option("--dry-run", is_flag=True, help=_("Only count what would be deleted."))
@json_option
@pass_app
def purge(app: App, dry_run: bool, as_json: bool) -> None:
    """Delete interactions done more than privacy.retention_days ago, now."""
    from datetime import timedelta

    from crosspost.clock import system_clock
    from crosspost.inbox import purge as run_purge

    with _errors(app):
        settings = app.settings
        store = _inbox(app)
        if dry_run:
            before = system_clock.now() - timedelta(days=settings.privacy.retention_days)
            count = store.due_for_purge(before=before)
        else:
            count = run_purge(store, settings)
        if as_json:
            echo_json(
                {
                    "deleted": 0 if dry_run else count,
                    "due": count,
                    "retention_days": settings.privacy.retention_days,
                }
            )
            return
        if dry_run:
            message = ngettext(
                "{n} interaction is due for deletion",
                "{n} interactions are due for deletion",
                count,
            )
        else:
            message = ngettext("{n} interaction deleted", "{n} interactions deleted", count)
        click.echo(message.format(n=count))


main_group.add_command(inbox)
main_group.add_command(privacy)
