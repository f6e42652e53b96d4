"""The operations commands: ``status --check``, ``db backup``, ``db restore``, ``db prune``.

Registered on the ``crosspost`` group by :mod:`crosspost.cli` (imported at its
end). Like every command, they import the heavy modules inside their bodies.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from crosspost.cli import App, _errors, db, echo_json, json_option, one_line, pass_app
from crosspost.i18n import _, ngettext


def status_check(app: App, as_json: bool) -> NoReturn:
    """``status --check``: one line, exit 0/1/2/3; any error is UNKNOWN (3), never a traceback."""
    from crosspost.exceptions import CrosspostError
    from crosspost.health import Health, evaluate, unknown

    health: Health
    if as_json:
        # --json is never translated: the messages in it stay English.
        import gettext

        from crosspost import i18n

        i18n._translation = gettext.NullTranslations()
    try:
        from crosspost.clock import system_clock

        health = evaluate(app.settings, app.store(), system_clock.now())
    except CrosspostError as exc:
        health = unknown(exc.message)
    except Exception as exc:  # noqa: BLE001 - a monitoring check answers UNKNOWN, never crashes
        health = unknown(repr(exc))
    finally:
        app.close()
    if as_json:
        echo_json(health.as_json())
    else:
        click.echo(one_line(health.line()))
    sys.exit(int(health.level))


@db.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help=_("Overwrite FILE if it exists."))
@json_option
@pass_app
def backup(app: App, file: Path, force: bool, as_json: bool) -> None:
    """Copy the database to FILE, consistently, while the daemon runs."""
    from crosspost.store.backup import backup as run_backup

    with _errors(app):
        result = run_backup(app.store(), file, force=force)
        if as_json:
            echo_json(
                {
                    "path": str(result.path),
                    "size": result.size,
                    "schema": result.revision,
                    "backend": result.backend,
                }
            )
            return
        click.echo(
            _("backup written to {path} ({size} bytes, schema {revision})").format(
                path=result.path, size=result.size, revision=result.revision
            )
        )


@db.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--yes", is_flag=True, help=_("Do not ask; replace the database."))
@pass_app
def restore(app: App, file: Path, yes: bool) -> None:
    """Replace the whole database with the backup FILE (every daemon must be stopped)."""
    from datetime import timedelta

    from crosspost.clock import system_clock
    from crosspost.exceptions import InputError
    from crosspost.store.backup import restore as run_restore

    with _errors(app):
        settings = app.settings
        if not yes:
            if not sys.stdin.isatty():
                raise InputError(_("restore replaces the whole database; add --yes to confirm"))
            if not click.confirm(
                _("Replace the whole database with {path}?").format(path=file), default=False
            ):
                raise InputError(_("nothing restored"))
        from crosspost.cli import open_store

        store = open_store(settings.database.url, create=True)
        try:
            result = run_restore(
                store,
                file,
                now=system_clock.now(),
                stale_after=timedelta(seconds=settings.daemon.lease_seconds * 2),
            )
        finally:
            store.close()
        if result.saved is not None:
            click.echo(_("the previous database was saved to {path}").format(path=result.saved))
        click.echo(
            _("restored {path} (schema {revision})").format(
                path=result.path, revision=result.revision
            )
        )
        if result.migrated:
            click.echo(_("the schema was upgraded to this version's"))


@db.command()
@click.option(
    "--days",
    type=click.IntRange(1, 100_000),
    help=_("Keep this many days (default: retention.attempts_days)."),
)
@click.option("--dry-run", is_flag=True, help=_("Only count what would be deleted."))
@json_option
@pass_app
def prune(app: App, days: int | None, dry_run: bool, as_json: bool) -> None:
    """Delete attempts of settled deliveries and alert records older than the retention."""
    from datetime import timedelta

    from crosspost.clock import system_clock
    from crosspost.exceptions import InputError
    from crosspost.store.operations import OperationsStore

    with _errors(app):
        keep = days or app.settings.retention.attempts_days
        if not keep:
            raise InputError(
                _("retention.attempts_days is 0 (keep everything); pass --days N to prune")
            )
        before = system_clock.now() - timedelta(days=keep)
        pruned = OperationsStore(app.store()).prune(before, dry_run=dry_run)
        if as_json:
            echo_json(
                {"attempts": pruned.attempts, "alert_events": pruned.events, "dry_run": dry_run}
            )
            return
        text = (
            ngettext(
                "{n} attempt older than {days} days would be deleted",
                "{n} attempts older than {days} days would be deleted",
                pruned.attempts,
            )
            if dry_run
            else ngettext(
                "{n} attempt older than {days} days deleted",
                "{n} attempts older than {days} days deleted",
                pruned.attempts,
            )
        )
        click.echo(text.format(n=pruned.attempts, days=keep))
