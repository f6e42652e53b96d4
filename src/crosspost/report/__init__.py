"""The yearly evaluation report (issue 7): ``crosspost report --year 2026``.

:func:`make_report` reads the year's rows from the queue's database
(:mod:`crosspost.store.metrics`), computes the aggregate figures
(:mod:`.figures`), draws the charts (:mod:`.charts`, matplotlib → inline SVG)
and writes one self-contained ``index.html`` (:mod:`.page`) and one CSV file per
table into the output folder. The response-time section comes from the inbox
through the hook in :mod:`.responses`.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from crosspost.clock import Clock, system_clock
from crosspost.config import Settings
from crosspost.exceptions import CrosspostError, InputError
from crosspost.i18n import _, translation

#: the report's languages (``--lang``); German is the default
LANGUAGES = ("de", "en")
#: the order of the CSV files (and of the tables in the report)
TABLE_ORDER = (
    "posts_per_month",
    "posts_by_category",
    "posts_by_category_month",
    "posts_by_account",
    "posts_by_account_month",
    "on_time",
    "failure_causes",
    "failures_by_account",
    "engagement_by_account",
    "engagement_by_category",
    "engagement_by_age",
    "top_posts",
    "followers",
    "followers_by_month",
    "compliance",
    "response_times",
)


@dataclass(frozen=True, slots=True)
class ReportFiles:
    folder: Path
    html: Path
    csv: list[Path]
    posts: int


def year_bounds(year: int, settings: Settings) -> tuple[datetime, datetime]:
    """The year in the site's time zone, as UTC instants [start, end)."""
    zone = settings.site.zone
    return (
        datetime(year, 1, 1, tzinfo=zone).astimezone(UTC),
        datetime(year + 1, 1, 1, tzinfo=zone).astimezone(UTC),
    )


def check_output(out: Path) -> None:
    """Refuse an output path that cannot be a folder, before anything is read or written."""
    if out.exists() and not out.is_dir():
        raise InputError(
            _("--out: {path} is a file; name a folder (it is created if missing)").format(path=out)
        )


def make_report(
    settings: Settings,
    store: object,
    *,
    year: int,
    out: Path,
    language: str = "de",
    clock: Clock = system_clock,
) -> ReportFiles:
    """Write the report of ``year`` into ``out``; the files written."""
    from crosspost.report.figures import compute
    from crosspost.report.page import Context, render
    from crosspost.report.responses import response_times
    from crosspost.store.metrics import EvaluationStore
    from crosspost.store.sql import SqlStore

    if language not in LANGUAGES:
        raise InputError(
            _("--lang: {lang!r} is not a report language; use one of: {known}").format(
                lang=language, known=", ".join(LANGUAGES)
            )
        )
    if not isinstance(store, SqlStore):
        raise InputError(_("the report is made from a SQL database only"))
    check_output(out)
    start, end = year_bounds(year, settings)
    rows = EvaluationStore(store).evaluation_rows(start, end)
    figures = compute(
        rows,
        year=year,
        zone=settings.site.zone,
        on_time_minutes=settings.evaluation.on_time_minutes,
        sample_ages=settings.evaluation.sample_ages,
    )
    responses = response_times(store, year, settings.site.zone)
    if responses is not None:
        figures.tables["response_times"] = responses
    keys = [k for k in TABLE_ORDER if k in figures.tables]
    csv_names = [f"{k}.csv" for k in keys]
    ctx = Context(
        site_name=settings.site.name or settings.site.url,
        site_url=settings.site.url,
        language=language,
        as_of=clock.now().astimezone(settings.site.zone).date().isoformat(),
        sample_ages=settings.evaluation.sample_ages,
        on_time_minutes=settings.evaluation.on_time_minutes,
        csv_files=csv_names,
    )
    page = render(figures, ctx, translation(language))
    contents = {name: _csv(figures.tables[k]) for k, name in zip(keys, csv_names, strict=True)}
    contents["index.html"] = page
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in contents.items():
            _write_atomically(out / name, text)
    except OSError as exc:
        raise CrosspostError(
            _("--out: cannot write the report into {path}: {reason}").format(
                path=out, reason=exc.strerror or exc
            )
        ) from None
    return ReportFiles(
        folder=out,
        html=out / "index.html",
        csv=[out / n for n in csv_names],
        posts=figures.posts,
    )


def _csv(table: object) -> str:
    from crosspost.report.figures import Table

    assert isinstance(table, Table)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()


def _write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(temporary, 0o644)  # a report is for publishing: readable by the web server
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
