"""The ``crosspost`` command: parse, call the core, print, map errors to exit codes.

Exit codes: 0 success, 1 the operation failed, 2 bad input or usage.
Heavy modules (SQLAlchemy, httpx, pydantic) are imported inside the commands
so that ``--help`` and simple commands start fast.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from crosspost import __version__
from crosspost.i18n import _, localize_click, ngettext, translate_command_help

if TYPE_CHECKING:
    from crosspost.config import Settings
    from crosspost.service import Crosspost
    from crosspost.store.sql import SqlStore

F = TypeVar("F", bound=Callable[..., Any])
#: post ids are positive 64-bit integers (SQLite and PostgreSQL cannot look up larger ones)
POST_ID = click.IntRange(1, 2**63 - 1)


class App:
    """What every command needs, loaded on first use."""

    def __init__(self, config: str | None, verbosity: int) -> None:
        self.config_arg = config
        self.verbosity = verbosity
        self._settings: Settings | None = None
        self._store: SqlStore | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from crosspost.config import config_path, load_settings

            self._settings = load_settings(config_path(self.config_arg))
        return self._settings

    def store(self, *, check: bool = True) -> SqlStore:
        if self._store is None:
            self._store = open_store(self.settings.database.url)
            if check:
                self._store.check_schema()
        return self._store

    def service(self) -> Crosspost:
        from crosspost.service import Crosspost

        return Crosspost(self.settings, self.store())

    def checker(self) -> Crosspost:
        """A service that validates without writing. On SQLite it reads the learnt
        limits with the standard library instead of SQLAlchemy (editors feel start-up)."""
        from crosspost.service import Crosspost
        from crosspost.store.memory import MemoryStore
        from crosspost.store.peek import learned_limits, sqlite_file

        path = sqlite_file(self.settings.database.url)
        if path is None:
            return self.service()
        scratch = MemoryStore()
        for account, limit in learned_limits(path).items():
            scratch.set_text_limit(account, limit, now=scratch_time())
        return Crosspost(self.settings, scratch)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def scratch_time() -> Any:
    from crosspost.clock import system_clock

    return system_clock.now()


def open_store(url: str, *, create: bool = False) -> SqlStore:
    """The store behind ``database.url``; a URL no installed driver can open is bad input."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from crosspost.exceptions import ConfigError
    from crosspost.store.sql import SqlStore

    try:
        return SqlStore(url, create=create)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        shown = re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", url)  # never print a password
        raise ConfigError(
            _(
                "database.url: cannot open {url!r} ({reason}); use sqlite:///path/to/crosspost.db "
                "or postgresql+psycopg://user@host/database"
            ).format(url=shown, reason=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        ) from exc


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


#: what would break an error line in two or steer the terminal (file names may hold it)
_LINE_BREAKING = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with control characters and line separators shown as escapes."""
    return _LINE_BREAKING.sub(lambda m: repr(m.group())[1:-1], text)


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(_("crosspost: error: {message}").format(message=one_line(message)), err=True)
    sys.exit(code)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help=_("Print JSON (not translated)."))(
        fn
    )


@contextmanager
def _errors(app: App | None) -> Iterator[None]:
    from crosspost.exceptions import CrosspostError

    try:
        yield
    except CrosspostError as exc:
        if app is not None and app.verbosity > 0 and exc.__cause__ is not None:
            click.echo(f"  {exc.__cause__!r}", err=True)
        fail(exc.message, exc.exit_code)
    finally:
        if app is not None:
            app.close()


pass_app = click.make_pass_decorator(App)


localize_click()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="crosspost")
@click.option(
    "--config",
    "config",
    metavar="FILE",
    help=_(
        "Configuration file (default: $CROSSPOST_CONFIG, ./config/crosspost.toml, "
        "/etc/crosspost/crosspost.toml)."
    ),
)
@click.option("-v", "--verbose", count=True, help=_("More detail (repeat for debug)."))
@click.option("-q", "--quiet", is_flag=True, help=_("Only warnings and errors."))
@click.pass_context
def main_group(ctx: click.Context, config: str | None, verbose: int, quiet: bool) -> None:
    """Publish the association's posts to every social network, always linking back
    to the website."""
    app = App(config, -1 if quiet else verbose)
    ctx.obj = app
    ctx.call_on_close(app.close)


# -- enqueue / preview ------------------------------------------------------------------
@main_group.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--text", help=_("Post text (instead of files)."))
@click.option("--title", help=_("Title (default: the first line of the text)."))
@click.option("--link", help=_("The page on the website (default: site.url)."))
@click.option("--at", "at", metavar="WHEN", help=_('now, +2h, "2026-12-01 09:00" or ISO 8601.'))
@click.option("--to", "to", metavar="A,B", help=_("Accounts (default: routing, else all)."))
@click.option("--category", help=_("One of site.categories."))
@click.option("--dry-run", is_flag=True, help=_("Validate only; store nothing."))
@click.option("--force", is_flag=True, help=_("Enqueue even a duplicate (audited)."))
@json_option
@pass_app
def enqueue(
    app: App,
    files: tuple[Path, ...],
    text: str | None,
    title: str | None,
    link: str | None,
    at: str | None,
    to: str | None,
    category: str | None,
    dry_run: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Validate posts and put them in the queue; print each new post id."""
    if bool(files) == (text is not None):
        fail(_("give either post FILES or --text, not both or neither"), 2)
    if files and (link or to or category or title):
        fail(_("--link, --to, --category and --title go with --text; in files use front matter"), 2)
    with _errors(app):
        service = app.checker() if dry_run else app.service()
        if text is not None:
            targets = [a.strip() for a in to.split(",") if a.strip()] if to else []
            posts = [
                service.post_from_text(
                    text, link=link, category=category, accounts=targets, title=title
                )
            ]
        else:
            posts = service.read_files(list(files))
        planned = [service.plan(post, at=at) for post in posts]
        from crosspost.workflow import Workflow  # approval, series, duplicates, quiet hours

        flow = Workflow(service)
        notes = [[*p.notes, *flow.notes(p, dedup=dry_run)] for p in planned]
        stored = [None] * len(planned) if dry_run else flow.enqueue(planned, force=force)
        if as_json:
            echo_json(
                [
                    {
                        "id": r.post_ids[0] if r else None,
                        "ids": r.post_ids if r else [],
                        "series": r.series_id if r else None,
                        "state": ("draft" if r.draft else "scheduled") if r else None,
                        "source": p.post.source,
                        "title": p.post.title,
                        "due_at": _iso(min(r.dues.values(), default=p.due_at) if r else p.due_at),
                        "accounts": [a.account for a in p.rendered],
                    }
                    for r, p in zip(stored, planned, strict=True)
                ]
            )
            return
        for r, p, extra in zip(stored, planned, notes, strict=True):
            names = ", ".join(a.account for a in p.rendered)
            due = min(r.dues.values(), default=p.due_at) if r else p.due_at
            if r is None:
                line = _("valid: {title} → {accounts}, due {due}")
            elif r.series_id is not None:
                line = _("enqueued series {series} as posts {ids}: {title} → {accounts}")
            elif r.draft:
                line = _("enqueued post {id} as a draft: {title} → {accounts}, due {due}")
            else:
                line = _("enqueued post {id}: {title} → {accounts}, due {due}")
            click.echo(
                line.format(
                    id=r.post_ids[0] if r else None,
                    ids=", ".join(str(i) for i in r.post_ids) if r else "",
                    series=r.series_id if r else None,
                    title=p.post.title,
                    accounts=names,
                    due=service.local(due),
                )
            )
            for note in extra:
                click.echo("  " + _("note: {note}").format(note=note))


def _iso(when: Any) -> str | None:
    from crosspost.views import iso

    return iso(when)


@main_group.command()
@click.argument("target")
@json_option
@pass_app
def preview(app: App, target: str, as_json: bool) -> None:
    """Show the exact text each account would receive (FILE or post ID)."""
    from crosspost.exceptions import NotFound

    with _errors(app):
        service = app.service()
        notes: list[str] = []
        # Only ASCII digits make an id ("²" is a digit to str.isdigit, and a possible file name).
        if target.isascii() and target.isdigit() and not Path(target).exists():
            if not 0 < int(target) < 2**63:
                raise NotFound(_("post {id} does not exist").format(id=target))
            _post, rendered = service.stored_preview(int(target))
            dues = {d.account: d.due_at for d in service.store.deliveries_of(int(target))}
            if _post.publish_at is not None:
                # A repeated autumn wall time was stored as its first occurrence (fold 0).
                wall = _post.publish_at.astimezone(service.settings.site.zone)
                if wall.fold == 0 and wall.replace(fold=1).utcoffset() != wall.utcoffset():
                    notes.append(
                        _(
                            "{time} occurs twice in {zone} (daylight saving time ends); "
                            "the first occurrence is used"
                        ).format(
                            time=service.local(_post.publish_at),
                            zone=service.settings.site.zone.key,
                        )
                    )
        else:
            from crosspost.workflow import Workflow  # quiet hours, approval, repeat, duplicates

            flow = Workflow(service)
            planned = service.plan(service.read_files([Path(target)])[0], check=False)
            rendered, notes = planned.rendered, [*planned.notes, *flow.notes(planned)]
            dues = flow.dues(planned)
            if not planned.post.publish_at:
                notes.insert(0, _("no publication time: published as soon as possible"))
            else:
                notes.insert(0, _("due {time}").format(time=service.local(planned.due_at)))
        if as_json:
            echo_json(
                [
                    {
                        "account": r.account,
                        "platform": r.platform,
                        "due_at": _iso(dues.get(r.account)),
                        "text": r.text,
                        "length": r.length,
                        "limit": r.limit,
                        "unit": r.unit,
                        "fits": r.length <= r.limit,
                    }
                    for r in rendered
                ]
            )
            return
        for note in notes:
            click.echo(_("note: {note}").format(note=note))
        too_long = [r.account for r in rendered if r.length > r.limit]
        for r in rendered:
            verdict = "" if r.length <= r.limit else "  " + _("TOO LONG")
            click.echo(
                f"── {r.account} ({r.platform}) {r.length}/{r.limit} {_(r.unit)}{verdict} ──"
            )
            click.echo(r.text)
            click.echo()
        if too_long:
            fail(
                _("{target}: too long for {accounts}; shorten the text or add a variant").format(
                    target=target, accounts=", ".join(too_long)
                ),
                2,
            )


# -- reading the queue --------------------------------------------------------------------
STATES = ["scheduled", "publishing", "published", "retrying", "failed", "unknown",
          "cancelled", "retracted", "draft", "rejected", "pending"]  # fmt: skip


@main_group.command(name="list")
@click.option(
    "--status",
    "status",
    type=click.Choice(STATES),
    help=_("Only posts with a delivery in this state ('pending': not yet final)."),
)
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100000))
@click.option("--recurring", is_flag=True, help=_("The recurring series instead of posts."))
@json_option
@pass_app
def list_(app: App, status: str | None, limit: int, recurring: bool, as_json: bool) -> None:
    """Posts with their per-account delivery states, newest first."""
    from crosspost.models import DeliveryState, post_state
    from crosspost.views import (
        delivery_summary,
        local,
        post_json,
        state_label,
        table,
        truncate,
    )
    from crosspost.workflow_cli import draft_state

    with _errors(app):
        store = app.store()
        if recurring:
            from crosspost.workflow_cli import echo_series

            echo_series(app, as_json)
            return
        states = None
        if status == "pending":
            states = {s for s in DeliveryState if not s.is_final}
        elif status:
            states = {DeliveryState(status)}
        rows = store.list_posts(states=states, limit=limit)
        if as_json:
            echo_json([post_json(p, ds) for p, ds in rows])
            return
        if not rows:
            click.echo(_("no posts"))
            return
        zone = app.settings.site.zone
        lines = [(_("ID"), _("STATE"), _("DUE"), _("TITLE"), _("ACCOUNTS"))]
        for post, ds in rows:
            due = min((d.due_at for d in ds), default=post.publish_at)
            lines.append(
                (
                    str(post.id),
                    state_label(draft_state(post, ds, post_state([d.state for d in ds]))),
                    local(due, zone),
                    truncate(post.title, 36),
                    delivery_summary(ds),
                )
            )
        for line in table(lines, right=(0,)):
            click.echo(line)


@main_group.command()
@click.argument("post_id", type=POST_ID)
@json_option
@pass_app
def show(app: App, post_id: int, as_json: bool) -> None:
    """One post: its deliveries, attempts and remote URLs."""
    from crosspost.models import post_state
    from crosspost.views import attempt_json, attempt_line, local, post_json, state_label

    with _errors(app):
        store = app.store()
        post = store.get_post(post_id)
        ds = store.deliveries_of(post_id)
        attempts = store.attempts(post_id=post_id)
        from crosspost.workflow_cli import echo_facts, workflow_facts  # approval, series

        facts = workflow_facts(app, post_id)
        if as_json:
            data = post_json(post, ds)
            data["attempts"] = [attempt_json(a) for a in attempts]
            data.update(facts)
            echo_json(data)
            return
        zone = app.settings.site.zone
        click.echo(_("post {id}: {title}").format(id=post.id, title=post.title))
        click.echo(
            "  " + _("state: {state}").format(state=state_label(post_state([d.state for d in ds])))
        )
        echo_facts(facts, post_id)
        click.echo("  " + _("link: {link}").format(link=post.link))
        click.echo("  " + _("category: {category}").format(category=post.category or "-"))
        click.echo(
            "  "
            + _("created {time} by {user}").format(
                time=local(post.created_at, zone), user=post.created_by
            )
        )
        if post.source:
            click.echo("  " + _("file: {path}").format(path=post.source))
        click.echo("  " + _("deliveries:"))
        for d in ds:
            line = f"    {d.account:<14} {state_label(d.state.value):<20} {local(d.due_at, zone)}"
            if d.remote_url:
                line += f"  {d.remote_url}"
            if d.error:
                line += f"  ({d.error})"
            click.echo(line)
        if attempts:
            click.echo("  " + _("attempts:"))
            for a in attempts:
                click.echo("    " + attempt_line(a, zone))


# -- changing the queue -------------------------------------------------------------------
@main_group.command()
@click.argument("post_id", type=POST_ID)
@pass_app
def cancel(app: App, post_id: int) -> None:
    """Cancel a post's waiting deliveries."""
    with _errors(app):
        from crosspost.workflow import Workflow  # audited; a post of a series stops the series

        n, stopped = Workflow(app.service()).cancel(post_id)
        click.echo(
            ngettext(
                "post {id}: {n} delivery cancelled", "post {id}: {n} deliveries cancelled", n
            ).format(id=post_id, n=n)
        )
        if stopped is not None:
            click.echo(_("series {series} stopped: no more occurrences").format(series=stopped))
        if n == 0 and stopped is None:
            sys.exit(1)


@main_group.command()
@click.argument("post_id", type=POST_ID)
@click.option(
    "--at", "at", required=True, metavar="WHEN", help=_('now, +2h, "2026-12-01 09:00" or ISO 8601.')
)
@pass_app
def reschedule(app: App, post_id: int, at: str) -> None:
    """Move a post's waiting deliveries to another time."""
    from crosspost.exceptions import InputError
    from crosspost.timeparse import TimeError, parse_when

    with _errors(app):
        service = app.service()
        now = service.clock.now()
        try:
            resolved = parse_when(at, app.settings.site.zone, now)
        except TimeError as exc:
            raise InputError(_("--at: {problem}").format(problem=exc)) from None
        from crosspost.workflow import Workflow  # audited; drafts too; quiet hours

        dues = Workflow(service).reschedule(post_id, max(resolved.at, now))
        n, due = len(dues), min(dues.values(), default=max(resolved.at, now))
        click.echo(
            ngettext(
                "post {id}: {n} delivery now due {due}",
                "post {id}: {n} deliveries now due {due}",
                n,
            ).format(id=post_id, n=n, due=service.local(due))
        )
        if resolved.ambiguous:
            click.echo(
                _("note: that time occurs twice (daylight saving time ends); the first is used")
            )
        if n == 0:
            sys.exit(1)


@main_group.command()
@click.argument("post_id", type=POST_ID, required=False)
@click.option("--failed", is_flag=True, help=_("Retry every failed or unknown delivery."))
@pass_app
def retry(app: App, post_id: int | None, failed: bool) -> None:
    """Put failed (or unknown) deliveries back in the queue."""
    if (post_id is None) == (not failed):
        fail(_("give a post ID or --failed"), 2)
    with _errors(app):
        from crosspost.workflow import Workflow  # audited; quiet hours

        n = Workflow(app.service()).retry(post_id)
        click.echo(
            ngettext("{n} delivery queued again", "{n} deliveries queued again", n).format(n=n)
        )
        if n == 0:
            sys.exit(1)


# -- log and status ------------------------------------------------------------------------
@main_group.command()
@click.option("--post", "post_id", type=POST_ID, help=_("Only this post."))
@click.option("--since", metavar="WHEN", help=_("2h, today, or a date."))
@click.option("--follow", "-f", is_flag=True, help=_("Keep printing new attempts."))
@json_option
@pass_app
def log(app: App, post_id: int | None, since: str | None, follow: bool, as_json: bool) -> None:
    """Delivery attempts: time, account, outcome, HTTP status, error."""
    import time as _time

    from crosspost.clock import system_clock
    from crosspost.exceptions import InputError
    from crosspost.models import Outcome
    from crosspost.timeparse import TimeError, parse_since
    from crosspost.views import attempt_json, attempt_line

    with _errors(app):
        store = app.store()
        zone = app.settings.site.zone
        since_at = None
        if since:
            try:
                since_at = parse_since(since, zone, system_clock.now())
            except TimeError as exc:
                raise InputError(_("--since: {problem}").format(problem=exc)) from None

        def emit(a: Any) -> None:
            if as_json:
                click.echo(json.dumps(attempt_json(a), ensure_ascii=False))
            else:
                click.echo(attempt_line(a, zone))

        attempts = store.attempts(post_id=post_id, since=since_at, limit=100000)
        if as_json and not follow:
            echo_json([attempt_json(a) for a in attempts])
            return
        printed: set[int] = set()
        for a in attempts:
            if follow and a.outcome is Outcome.PENDING:
                continue
            emit(a)
            printed.add(a.id)
        if not follow:
            return
        # Pending attempts are printed once they finish; the cursor stays before them.
        cursor = min(
            (a.id - 1 for a in attempts if a.id not in printed), default=max(printed, default=0)
        )
        try:
            while True:
                _time.sleep(0.5)
                batch = store.attempts(post_id=post_id, after_id=cursor, limit=10000)
                for a in batch:
                    if a.id in printed or a.outcome is Outcome.PENDING:
                        continue
                    emit(a)
                    printed.add(a.id)
                waiting = [a.id for a in batch if a.id not in printed]
                if waiting:
                    cursor = min(waiting) - 1
                elif batch:
                    cursor = batch[-1].id
                sys.stdout.flush()
        except KeyboardInterrupt:
            return


@main_group.command()
@click.option(
    "--check",
    is_flag=True,
    help=_("One line and exit 0/1/2/3 (OK/WARNING/CRITICAL/UNKNOWN) for monitoring."),
)
@json_option
@pass_app
def status(app: App, as_json: bool, check: bool) -> None:
    """Queue depth by state, next due time, failures, paused accounts, live daemons."""
    if check:
        from crosspost.ops_cli import status_check

        status_check(app, as_json)
    from crosspost.clock import system_clock
    from crosspost.models import DeliveryState
    from crosspost.views import iso, local, state_label
    from crosspost.workflow_cli import echo_drafts, echo_open_interactions

    with _errors(app):
        store = app.store()
        settings = app.settings
        now = system_clock.now()
        counts = store.counts()
        accounts = [a for a in settings.enabled_accounts()]
        due = store.next_due(accounts=accounts, reconcilable=[])
        # every one: what the daemon cannot settle must reach the admin (SPEC: "listed by status")
        problems = store.list_posts(
            states={DeliveryState.FAILED, DeliveryState.UNKNOWN}, limit=1_000_000
        )
        states = store.account_states()
        paused = {n: st for n, st in states.items() if st.paused_reason}
        limits = _rate_limits(states, now)
        expiring = _expiring_tokens(settings, states, now)
        stale = settings.daemon.lease_seconds * 2
        daemons = [dm for dm in store.daemons() if (now - dm.heartbeat_at).total_seconds() <= stale]
        if as_json:
            echo_json(
                {
                    "counts": {s.value: counts.get(s, 0) for s in DeliveryState},
                    "next_due": iso(due),
                    "problems": [
                        {
                            "post": p.id,
                            "title": p.title,
                            "account": d.account,
                            "state": d.state.value,
                            "error": d.error,
                        }
                        for p, ds in problems
                        for d in ds
                        if d.state in (DeliveryState.FAILED, DeliveryState.UNKNOWN)
                    ],
                    "paused_accounts": {n: st.paused_reason for n, st in paused.items()},
                    "rate_limits": {
                        n: {
                            "remaining": st.budget.remaining if st.budget else None,
                            "reset": iso(st.budget.reset if st.budget else None),
                            "blocked_until": iso(blocked),
                        }
                        for n, (st, blocked) in limits.items()
                    },
                    "expiring_tokens": {n: iso(when) for n, when in expiring.items()},
                    "daemons": [
                        {
                            "worker": dm.worker,
                            "host": dm.host,
                            "pid": dm.pid,
                            "version": dm.version,
                            "heartbeat_at": iso(dm.heartbeat_at),
                            "in_hand": dm.in_hand,
                        }
                        for dm in daemons
                    ],
                    **echo_drafts(app, as_json=True),
                    **echo_open_interactions(app, now, as_json=True),
                }
            )
            return
        zone = settings.site.zone
        click.echo(_("deliveries:"))
        for s in DeliveryState:
            if counts.get(s):
                click.echo(f"  {state_label(s.value):<14} {counts[s]:>6}")
        if not counts:
            click.echo("  " + _("none"))
        click.echo(
            _("next due: {time}").format(time=local(due, zone) if due else _("nothing waiting"))
        )
        for p, ds in problems:
            for d in ds:
                if d.state in (DeliveryState.FAILED, DeliveryState.UNKNOWN):
                    click.echo(
                        _("{state}: post {id} on {account}: {error}").format(
                            state=state_label(d.state.value),
                            id=p.id,
                            account=d.account,
                            error=d.error or "-",
                        )
                    )
        echo_drafts(app, as_json=False)  # awaiting approval; not published, time passed
        echo_open_interactions(app, now, as_json=False)  # the inbox: unanswered, per account
        for name, st in paused.items():
            click.echo(
                _("paused account {account}: {reason}").format(
                    account=name, reason=st.paused_reason
                )
            )
        for name, (st, blocked) in limits.items():
            if blocked is not None:
                line = _("account {account} rate-limited until {time}").format(
                    account=name, time=local(blocked, zone)
                )
            else:
                assert st.budget is not None
                line = ngettext(
                    "rate limit of {account}: {n} request left until {time}",
                    "rate limit of {account}: {n} requests left until {time}",
                    st.budget.remaining,
                ).format(account=name, n=st.budget.remaining, time=local(st.budget.reset, zone))
            click.echo(line)
        for name, when in expiring.items():
            click.echo(
                _("token of {account} expires {time}: renew it").format(
                    account=name, time=local(when, zone)
                )
            )
        if daemons:
            for dm in daemons:
                click.echo(
                    _(
                        "daemon {host} pid {pid} (version {version}), "
                        "last heartbeat {time}, {n} in hand"
                    ).format(
                        host=dm.host,
                        pid=dm.pid,
                        version=dm.version,
                        time=local(dm.heartbeat_at, zone),
                        n=dm.in_hand,
                    )
                )
        else:
            click.echo(_("no daemon is running"))


def _rate_limits(states: dict[str, Any], now: Any) -> dict[str, tuple[Any, Any]]:
    """Accounts with a request budget in an open window or a rate-limit block, shared
    by all daemons (docs/scaling.md): the state and the block's end (None: none)."""
    found = {}
    for name, st in sorted(states.items()):
        blocked = st.blocked_until if st.blocked_until and st.blocked_until > now else None
        if blocked is not None or (st.budget is not None and st.budget.reset > now):
            found[name] = (st, blocked)
    return found


def _expiring_tokens(settings: Any, states: dict[str, Any], now: Any) -> dict[str, Any]:
    """Accounts whose credential expires within daemon.token_expiry_warning_days."""
    from datetime import timedelta

    horizon = now + timedelta(days=settings.daemon.token_expiry_warning_days)
    found = {}
    for name, account in settings.enabled_accounts().items():
        state = states.get(name)
        when = (state.token_expires_at if state else None) or account.token_expires_at
        if when is not None and when <= horizon:
            found[name] = when
    return found


@main_group.command()
@click.argument("post_id", type=POST_ID)
@json_option
@pass_app
def retract(app: App, post_id: int, as_json: bool) -> None:
    """Delete a post everywhere it was published (and cancel what still waits)."""
    import asyncio

    from crosspost.service import retract as run_retract

    with _errors(app):
        results = asyncio.run(run_retract(app.service(), post_id))
        if as_json:
            echo_json([{"account": r.account, "ok": r.ok, "message": r.message} for r in results])
        else:
            if not results:
                click.echo(_("post {id}: nothing to retract").format(id=post_id))
            for r in results:
                mark = "✓" if r.ok else "✗"
                click.echo(f"{mark} {r.account}: {r.message}")
        if not all(r.ok for r in results):
            sys.exit(1)


@main_group.group()
def metrics() -> None:
    """Engagement figures for the yearly evaluation."""


@metrics.command()
@click.option("--since", metavar="WHEN", help=_("Only posts published since (e.g. 30d)."))
@json_option
@pass_app
def collect(app: App, since: str | None, as_json: bool) -> None:
    """Sample likes, reposts, replies, views of published posts at fixed ages, and
    today's follower counts; store them (resumable; the daemon does it periodically)."""
    import asyncio

    from crosspost.clock import system_clock
    from crosspost.exceptions import InputError
    from crosspost.service import collect_metrics
    from crosspost.timeparse import TimeError, parse_since

    with _errors(app):
        since_at = None
        if since:
            try:
                since_at = parse_since(since, app.settings.site.zone, system_clock.now())
            except TimeError as exc:
                raise InputError(_("--since: {problem}").format(problem=exc)) from None

        from crosspost.sampling import ProgressBar

        with ProgressBar(enabled=not as_json and sys.stderr.isatty()) as bar:
            results = asyncio.run(
                collect_metrics(app.service(), since=since_at, progress=bar.update)
            )
        if as_json:
            echo_json([{"account": r.account, "ok": r.ok, "message": r.message} for r in results])
        else:
            for r in results:
                click.echo(f"{'✓' if r.ok else '✗'} {r.account}: {r.message}")
        if not all(r.ok for r in results):
            sys.exit(1)


@main_group.command()
@click.option(
    "--year",
    type=click.IntRange(2000, 2100),
    required=True,
    help=_("The calendar year to evaluate (in the site's time zone)."),
)
@click.option(
    "--out",
    "out",
    metavar="DIR",
    type=click.Path(path_type=Path),
    help=_("Folder for index.html and the CSV files (default: ./report-YEAR)."),
)
@click.option(
    "--lang",
    "language",
    type=click.Choice(["de", "en"]),
    default="de",
    show_default=True,
    help=_("Language of the report."),
)
@json_option
@pass_app
def report(app: App, year: int, out: Path | None, language: str, as_json: bool) -> None:
    """Write the yearly evaluation: a self-contained HTML page and a CSV file per figure."""
    from crosspost.report import check_output, make_report

    folder = out if out is not None else Path(f"report-{year}")
    with _errors(app):
        check_output(folder)
        files = make_report(app.settings, app.store(), year=year, out=folder, language=language)
        if as_json:
            echo_json(
                {
                    "year": year,
                    "language": language,
                    "html": str(files.html),
                    "csv": [str(p) for p in files.csv],
                    "posts": files.posts,
                }
            )
        else:
            click.echo(
                _("Report {year} written: {path} ({n} CSV files beside it)").format(
                    year=year, path=files.html, n=len(files.csv)
                )
            )


# -- accounts -------------------------------------------------------------------------------
@main_group.group(invoke_without_command=True)
@json_option
@click.pass_context
def accounts(ctx: click.Context, as_json: bool) -> None:
    """The configured accounts; `accounts check` verifies each credential."""
    if ctx.invoked_subcommand is not None:
        return
    app: App = ctx.obj
    from crosspost.clock import system_clock
    from crosspost.views import iso, local

    with _errors(app):
        settings = app.settings
        states = app.store().account_states()
        now = system_clock.now()
        rows = []
        for name, account in settings.accounts.items():
            state = states.get(name)
            rows.append(
                {
                    "account": name,
                    "platform": account.platform,
                    "enabled": account.enabled,
                    "base_url": account.base_url or account.default_base_url,
                    "paused": state.paused_reason if state else None,
                    "text_limit": state.text_limit if state else None,
                    # as the platform last stated it (the window may have ended since)
                    "rate_limit": (
                        {"remaining": state.budget.remaining, "reset": iso(state.budget.reset)}
                        if state and state.budget
                        else None
                    ),
                    "blocked_until": iso(state.blocked_until) if state else None,
                }
            )
        if as_json:
            echo_json(rows)
            return
        for row in rows:
            flags = [] if row["enabled"] else [_("disabled")]
            if row["paused"]:
                flags.append(_("paused: {reason}").format(reason=row["paused"]))
            state = states.get(str(row["account"]))
            if state and state.blocked_until and state.blocked_until > now:
                flags.append(
                    _("rate-limited until {time}").format(
                        time=local(state.blocked_until, settings.site.zone)
                    )
                )
            extra = f"  ({'; '.join(flags)})" if flags else ""
            click.echo(f"{row['account']:<16} {row['platform']:<10} {row['base_url'] or ''}{extra}")


@accounts.command()
@json_option
@pass_app
def check(app: App, as_json: bool) -> None:
    """Verify every enabled account's credential against its platform."""
    import asyncio
    from datetime import timedelta

    from crosspost.adapters.base import build_adapter
    from crosspost.clock import system_clock
    from crosspost.exceptions import CrosspostError

    async def verify_all() -> list[dict[str, Any]]:
        results = []
        settings = app.settings
        store = app.store()
        for name in settings.enabled_accounts():
            entry: dict[str, Any] = {"account": name, "platform": settings.accounts[name].platform}
            try:
                adapter = build_adapter(name, settings)
                try:
                    info = await adapter.verify()
                finally:
                    await adapter.aclose()
            except CrosspostError as exc:
                entry.update(ok=False, error=exc.message)
            else:
                now = system_clock.now()
                expires = info.token_expires_at or adapter.token_expires_at()
                entry.update(
                    ok=True,
                    name=info.name,
                    url=info.url,
                    detail=info.detail,
                    token_expires_at=expires.isoformat() if expires else None,
                )
                if expires is not None:
                    store.set_token_expiry(name, expires, now=now)
                    if expires - now <= timedelta(days=settings.daemon.token_expiry_warning_days):
                        entry["warning"] = _("the token expires {time}: renew it").format(
                            time=expires.astimezone(settings.site.zone).strftime("%Y-%m-%d")
                        )
                if store.resume_account(name, now=now):
                    entry["resumed"] = True
                    from crosspost.workflow import hold_for_quiet_hours

                    hold_for_quiet_hours(settings, store, name, now, now=now)
            results.append(entry)
        return results

    with _errors(app):
        results = asyncio.run(verify_all())
        if as_json:
            echo_json(results)
        else:
            for r in results:
                if r["ok"]:
                    line = _("{account}: OK ({name})").format(account=r["account"], name=r["name"])
                    if r.get("resumed"):
                        line += " " + _("— resumed")
                    if r.get("warning"):
                        line += " — " + r["warning"]
                else:
                    line = _("{account}: FAILED: {error}").format(
                        account=r["account"], error=r["error"]
                    )
                click.echo(line)
        if not all(r["ok"] for r in results):
            sys.exit(1)


# -- daemon and database ---------------------------------------------------------------------
@main_group.command()
@click.option(
    "--once",
    is_flag=True,
    help=_("Publish what is due, then exit (1 if anything failed or is unknown)."),
)
@pass_app
def daemon(app: App, once: bool) -> None:
    """Run the scheduler in the foreground (systemd runs this)."""
    import asyncio

    from crosspost.daemon import Daemon
    from crosspost.observability import setup_logging

    setup_logging(app.verbosity)
    with _errors(app):
        store = app.store()
        runner = Daemon(app.settings, store, once=once, db_threads=1 if store.is_sqlite else 4)
        code = asyncio.run(runner.run())
    sys.exit(code)


@main_group.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@pass_app
def upgrade(app: App) -> None:
    """Create or migrate the schema to this version."""
    from crosspost.store.migrate import upgrade as run_upgrade
    from crosspost.store.schema import SCHEMA_REVISION

    with _errors(app):
        store = open_store(app.settings.database.url, create=True)
        try:
            run_upgrade(store.engine)
        finally:
            store.close()
        click.echo(
            _("database {url} is at schema {revision}").format(
                url=store.safe_url, revision=SCHEMA_REVISION
            )
        )


def main() -> None:
    """Entry point: every error a user can hit is one line and an exit code, never a traceback."""
    try:
        main_group.main(prog_name="crosspost", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo(_("aborted"), err=True)
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        if not isinstance(exc, click.exceptions.NoArgsIsHelpError):  # that one is the help text
            # click declares message Final; its value (a bad argument) may hold line breaks
            vars(exc)["message"] = one_line(exc.message)
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the last guard: one line, never a traceback
        if "-v" in sys.argv or "--verbose" in sys.argv or "-vv" in sys.argv:
            import traceback

            traceback.print_exc()
        click.echo(
            _("crosspost: internal error: {error} (run with -v for details)").format(
                error=repr(exc)
            ),
            err=True,
        )
        sys.exit(1)


def _register_inbox() -> None:
    """The inbox commands live in their own module (issue 9), which adds them to the
    group when it is imported (in whichever order the two modules are imported)."""
    import crosspost.cli_inbox  # noqa: F401


_register_inbox()


def _register_workflow() -> None:
    """approve, reject, edit, audit (issue 8)."""
    from crosspost import workflow_cli  # noqa: F401 - registers on import


_register_workflow()


def _register_operations() -> None:
    """db backup, db restore, db prune (issue 10); status --check is in status itself."""
    from crosspost import ops_cli  # noqa: F401 - registers on import


_register_operations()

translate_command_help(main_group)
