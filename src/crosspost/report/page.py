"""The report as one self-contained HTML page, in a chosen language.

Self-contained: styles inline, charts as inline SVG, no scripts, no fonts,
images or style sheets from elsewhere; the only addresses are the association's
own posts (its website and its posts on the platforms) and the CSV files beside
the page. Every text goes through the catalogue of the report's language
(``--lang``), not the process's locale.
"""

from __future__ import annotations

import gettext
import html
from collections.abc import Sequence
from dataclasses import dataclass

from crosspost import __version__
from crosspost.i18n import N_
from crosspost.report import charts
from crosspost.report.figures import CAUSES, Cell, Figures, Table
from crosspost.report.methods import PLATFORM_NOTES

#: column id → heading (message id)
COLUMN_LABELS: dict[str, str] = {
    "month": N_("Month"),
    "posts": N_("Posts"),
    "deliveries": N_("Publications"),
    "category": N_("Category"),
    "share": N_("Share"),
    "account": N_("Account"),
    "platform": N_("Platform"),
    "share_of_posts": N_("Share of posts"),
    "published": N_("Published"),
    "on_time": N_("On time"),
    "cause": N_("Cause"),
    "failed_tries": N_("Failed tries"),
    "published_after_retry": N_("Published after a retry"),
    "failed": N_("Failed"),
    "unknown": N_("Outcome unknown"),
    "posts_measured": N_("Publications measured"),
    "likes": N_("Likes"),
    "reposts": N_("Reposts"),
    "replies": N_("Replies"),
    "views": N_("Views"),
    "interactions_per_post": N_("Interactions per post"),
    "age_days": N_("Age (days)"),
    "samples": N_("Samples"),
    "rank": N_("Rank"),
    "post": N_("Post"),
    "title": N_("Title"),
    "interactions": N_("Interactions"),
    "link": N_("Website"),
    "platform_links": N_("On the platforms"),
    "first_day": N_("First day"),
    "first": N_("Followers then"),
    "last_day": N_("Last day"),
    "last": N_("Followers at last"),
    "change": N_("Change"),
    "change_share": N_("Change (share)"),
    "followers": N_("Followers"),
    "measure": N_("Measure"),
    "count": N_("Count"),
    "total": N_("Of"),
    "answered": N_("Answered"),
    "unanswered": N_("Unanswered"),
    "median_minutes": N_("Median (minutes)"),
    "p90_minutes": N_("90 % within (minutes)"),
    "within_hour_share": N_("Within an hour"),
    "within_day_share": N_("Within a day"),
}
SHARE_COLUMNS = {
    "share",
    "share_of_posts",
    "change_share",
    "within_hour_share",
    "within_day_share",
}
CAUSE_LABELS: dict[str, str] = {
    "rate_limit": N_("rate limit of the platform (429)"),
    "platform_error": N_("platform error (5xx)"),
    "network": N_("network or timeout before sending"),
    "answer_lost": N_("answer lost after sending (outcome unknown)"),
    "interrupted": N_("daemon stopped during the request"),
    "credentials": N_("credentials refused (401/403)"),
    "refused": N_("refused by the platform (4xx)"),
}
MEASURE_LABELS: dict[str, str] = {
    "link_back": N_("Publications carrying the canonical website link"),
    "alt_text": N_("Images with alt text"),
    "in_website_feed": N_("Posts also in the website's feed"),
}
MONTHS = (
    N_("Jan"),
    N_("Feb"),
    N_("Mar"),
    N_("Apr"),
    N_("May"),
    N_("Jun"),
    N_("Jul"),
    N_("Aug"),
    N_("Sep"),
    N_("Oct"),
    N_("Nov"),
    N_("Dec"),
)
assert set(CAUSES) == set(CAUSE_LABELS)

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:60rem;margin:0 auto;
padding:1rem 1.5rem 3rem;color:#1a1a1a;line-height:1.5}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{margin-top:2.5rem;border-bottom:2px solid #0072B2}
table{border-collapse:collapse;margin:1rem 0;font-size:.92rem}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border-bottom:1px solid #ccc;padding:.25rem .6rem;vertical-align:top}
th{text-align:left;background:#f2f5f8}td.d{white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1rem 0}figure svg{max-width:100%;height:auto}figcaption{font-size:.9rem;color:#444}
dl.key{display:grid;grid-template-columns:auto auto;gap:.2rem 1.5rem;max-width:40rem}
dl.key dt{font-weight:600}dl.key dd{margin:0}
.note{background:#fff8e1;border-left:4px solid #E69F00;padding:.5rem .8rem}
.ok{background:#e8f5e9;border-left:4px solid #009E73;padding:.5rem .8rem}
footer{margin-top:3rem;font-size:.85rem;color:#555}
@media print{h2{break-after:avoid}table,figure{break-inside:avoid}}
"""


@dataclass(frozen=True, slots=True)
class Context:
    site_name: str
    site_url: str
    language: str
    #: the day the figures were read (local date, ISO)
    as_of: str
    sample_ages: list[int]
    on_time_minutes: int
    csv_files: list[str]


class Writer:
    """Number and text formatting of one language."""

    def __init__(self, translation: gettext.NullTranslations, language: str) -> None:
        self._ = translation.gettext
        #: the same, for computed message ids (labels looked up in a table)
        self.gettext = translation.gettext
        self.ngettext = translation.ngettext
        self.german = language.startswith("de")

    def number(self, value: Cell) -> str:
        if value is None:
            return "–"
        if isinstance(value, int):
            text = f"{value:,}"
            return text.replace(",", ".") if self.german else text
        if isinstance(value, float):
            text = f"{value:,.2f}".rstrip("0").rstrip(".")
            if self.german:
                text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
            return text
        return str(value)

    def percent(self, value: float | None) -> str:
        if value is None:
            return "–"
        text = f"{value * 100:.1f}".removesuffix(".0")
        return f"{text.replace('.', ',')} %" if self.german else f"{text} %"

    def month(self, key: str) -> str:
        """``2026-03`` → ``Mär 2026`` / ``Mar 2026``."""
        year, number = key.split("-")
        return f"{self._(MONTHS[int(number) - 1])} {year}"


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def render(figures: Figures, ctx: Context, translation: gettext.NullTranslations) -> str:
    w = Writer(translation, ctx.language)
    _ = w._
    ngettext = w.ngettext
    year = figures.year
    parts: list[str] = []
    add = parts.append
    title = _("Social media evaluation {year}").format(year=year)
    add("<!DOCTYPE html>")
    add(f'<html lang="{esc(ctx.language)}">')
    add("<head>")
    add('<meta charset="utf-8">')
    add('<meta name="viewport" content="width=device-width, initial-scale=1">')
    add(f'<meta name="generator" content="crosspost {esc(__version__)}">')
    add(f"<title>{esc(title)} – {esc(ctx.site_name)}</title>")
    add(f"<style>{STYLE}</style>")
    add("</head>")
    add("<body>")
    add("<header>")
    add(f"<h1>{esc(title)}</h1>")
    add(f'<p>{esc(ctx.site_name)} · <a href="{esc(ctx.site_url)}">{esc(ctx.site_url)}</a></p>')
    add(
        "<p>"
        + esc(
            _(
                "Period: 1 January to 31 December {year} (times in {zone}). Figures as "
                "collected by crosspost up to {date}."
            ).format(year=year, zone=figures.zone, date=ctx.as_of)
        )
        + "</p>"
    )
    add("</header>")
    add("<main>")

    # -- summary ---------------------------------------------------------------------------
    add(f"<section><h2>{esc(_('Summary'))}</h2>")
    if figures.posts == 0:
        add(f'<p class="note">{esc(_("No post was published in {year}.").format(year=year))}</p>')
    add('<dl class="key">')
    key_figures = [
        (_("Posts published"), w.number(figures.posts)),
        (_("Publications on all accounts"), w.number(figures.deliveries)),
        (_("Accounts"), w.number(len(figures.platforms))),
        (_("Published on time"), w.percent(figures.on_time_share)),
        (_("Canonical website link (link-back)"), w.percent(figures.link_back_share)),
        (_("Images with alt text"), w.percent(figures.alt_text_share)),
        (_("Posts also in the website's feed"), w.percent(figures.feed_share)),
    ]
    for term, value in key_figures:
        add(f"<dt>{esc(term)}</dt><dd>{esc(value)}</dd>")
    add("</dl></section>")

    # -- posts -----------------------------------------------------------------------------
    add(f"<section><h2>{esc(_('Posts'))}</h2>")
    month_keys = [str(r[0]) for r in figures.table("posts_per_month").rows]
    month_labels = [w.month(m).split(" ")[0] for m in month_keys]
    if figures.posts:
        by_cat = figures.table("posts_by_category_month")
        categories = sorted({str(r[1]) for r in by_cat.rows})
        series = [
            (
                c or _("(none)"),
                [int(r[2] or 0) for r in by_cat.rows if r[1] == c],
            )
            for c in categories
        ]
        caption = _("Posts per month by category, {year}").format(year=year)
        add(
            _figure(
                charts.stacked_bars(month_labels, series, label=caption, ylabel=_("Posts")), caption
            )
        )
    add(
        _table(
            w, figures.table("posts_per_month"), _("Posts and publications per month"), month=True
        )
    )
    add(_table(w, figures.table("posts_by_category"), _("Posts by category")))
    add(_pivot(w, figures.table("posts_by_category_month"), _("Posts per month and category")))
    add(_table(w, figures.table("posts_by_account"), _("Publications by account")))
    add(_pivot(w, figures.table("posts_by_account_month"), _("Publications per month and account")))
    add("</section>")

    # -- on time ---------------------------------------------------------------------------
    add(f"<section><h2>{esc(_('Published on time'))}</h2>")
    add(
        "<p>"
        + esc(
            ngettext(
                "A publication counts as on time when it went out at most {n} minute after "
                "the post's time.",
                "A publication counts as on time when it went out at most {n} minutes after "
                "the post's time.",
                ctx.on_time_minutes,
            ).format(n=ctx.on_time_minutes)
        )
        + "</p>"
    )
    on_time = figures.table("on_time")
    measured_rows = [r for r in on_time.rows if r[0] != "*" and r[3] is not None]
    if measured_rows:
        caption = _("Share published on time by account, {year}").format(year=year)
        add(
            _figure(
                charts.horizontal_bars(
                    [str(r[0]) for r in measured_rows],
                    [float(r[3] or 0) for r in measured_rows],
                    label=caption,
                    xlabel=_("Share on time"),
                    percent=True,
                ),
                caption,
            )
        )
    add(_table(w, on_time, _("Publications on time"), all_label=_("all accounts")))
    add("</section>")

    # -- failures --------------------------------------------------------------------------
    add(f"<section><h2>{esc(_('Failures and their causes'))}</h2>")
    add(
        "<p>"
        + esc(
            _(
                "A failed try is retried automatically where that is safe; a publication "
                "fails for good only after the last try or on a refusal."
            )
        )
        + "</p>"
    )
    causes = figures.table("failure_causes")
    add(_table(w, causes, _("Failed tries by cause"), labels={"cause": CAUSE_LABELS}))
    add(_table(w, figures.table("failures_by_account"), _("Failures by account")))
    add("</section>")

    # -- engagement ------------------------------------------------------------------------
    add(f"<section><h2>{esc(_('Engagement'))}</h2>")
    ages = ", ".join(str(a) for a in ctx.sample_ages)
    add(
        "<p>"
        + esc(
            _(
                "Figures as the platforms report them, sampled {ages} days after "
                "publication; each post counts with its latest sample. Interactions are "
                "likes, reposts and replies; “–” means the platform gives no such figure."
            ).format(ages=ages)
        )
        + "</p>"
    )
    engagement = figures.table("engagement_by_account")
    with_figures = [r for r in engagement.rows if r[7] is not None]
    if with_figures:
        caption = _("Interactions per post by account, {year}").format(year=year)
        add(
            _figure(
                charts.horizontal_bars(
                    [str(r[0]) for r in with_figures],
                    [float(r[7] or 0) for r in with_figures],
                    label=caption,
                    xlabel=_("Interactions per post"),
                ),
                caption,
            )
        )
    elif figures.deliveries:
        add(f'<p class="note">{esc(_("No engagement figures were collected for this year."))}</p>')
    add(_table(w, engagement, _("Engagement by account")))
    add(_table(w, figures.table("engagement_by_category"), _("Engagement by category")))
    add(_table(w, figures.table("engagement_by_age"), _("Engagement by age of the post")))
    add(f"<h3>{esc(_('Top posts'))}</h3>")
    add(_top_posts(w, figures.table("top_posts")))
    add("</section>")

    # -- followers -------------------------------------------------------------------------
    add(f"<section><h2>{esc(_('Followers'))}</h2>")
    add(
        "<p>"
        + esc(
            _(
                "Each account's follower count, read once a day: numbers only, no names. "
                "The monthly figure is the last count of the month."
            )
        )
        + "</p>"
    )
    monthly = figures.table("followers_by_month")
    if monthly.rows:
        accounts = sorted({str(r[1]) for r in monthly.rows})
        values = {(str(r[0]), str(r[1])): r[2] for r in monthly.rows}
        series_f: list[tuple[str, Sequence[float | None]]] = [
            (
                a,
                [
                    float(v) if isinstance(v := values.get((m, a)), int | float) else None
                    for m in month_keys
                ],
            )
            for a in accounts
        ]
        caption = _("Followers per account at the end of each month, {year}").format(year=year)
        add(
            _figure(
                charts.lines(month_labels, series_f, label=caption, ylabel=_("Followers")), caption
            )
        )
    add(_table(w, figures.table("followers"), _("Follower growth by account")))
    add(_pivot(w, monthly, _("Followers at the end of each month")))
    add("</section>")

    # -- compliance ------------------------------------------------------------------------
    add(f"<section><h2>{esc(_('Policy compliance'))}</h2>")
    if figures.link_back_share is not None:
        if figures.link_back_share == 1:
            verdict = _("Every publication carried the canonical website link.")
            add(f'<p class="ok">{esc(verdict)}</p>')
        else:
            verdict = _("Not every publication carried the canonical website link: see the table.")
            add(f'<p class="note">{esc(verdict)}</p>')
    add(_table(w, figures.table("compliance"), _("Compliance"), labels={"measure": MEASURE_LABELS}))
    add("</section>")

    # -- response times (only where the inbox exists) ----------------------------------------
    responses = figures.tables.get("response_times")
    if responses is not None:
        add(f"<section><h2>{esc(_('Response times'))}</h2>")
        add(
            "<p>"
            + esc(
                _(
                    "How quickly comments and messages received in the inbox were answered, "
                    "by the month they arrived."
                )
            )
            + "</p>"
        )
        add(_table(w, responses, _("Response times per month"), month=True))
        add("</section>")

    # -- methods ---------------------------------------------------------------------------
    add(f"<section><h2>{esc(_('Methods'))}</h2>")
    methods = [
        _(
            "Source: crosspost's own queue (every post, every publication and every try) and "
            "the figures it collected from the platforms' interfaces. Nothing was copied by hand."
        ),
        _(
            "A post counts in the month of its first publication. A publication is one post "
            "on one account."
        ),
        _(
            "Engagement is sampled {ages} days after publication; a sample is taken by the "
            "first collection after that age, and an age the collection missed stays empty "
            "rather than being filled with a later figure."
        ).format(ages=ages),
        _(
            "Only aggregate figures: follower counts are numbers, and the report names no "
            "person who liked, shared or commented."
        ),
        _(
            "Link-back: the text sent contains the canonical link of the post as a whole "
            "address. Alt text: images of the year's posts with a non-empty description."
        ),
    ]
    if responses is None:
        methods.append(
            _("Response times are not part of this report: no inbox data exist for the year.")
        )
    add("<ul>" + "".join(f"<li>{esc(m)}</li>" for m in methods) + "</ul>")
    used = sorted(set(figures.platforms.values()) & set(PLATFORM_NOTES)) or sorted(PLATFORM_NOTES)
    add(f"<table><caption>{esc(_('What each platform counts'))}</caption>")
    add(
        f'<thead><tr><th scope="col">{esc(_("Platform"))}</th>'
        f'<th scope="col">{esc(_("Counted"))}</th>'
        f'<th scope="col">{esc(_("Cannot tell"))}</th></tr></thead><tbody>'
    )
    for platform in used:
        counts, cannot = PLATFORM_NOTES[platform]
        add(
            f'<tr><th scope="row">{esc(platform)}</th><td>{esc(_(counts))}</td>'
            f"<td>{esc(_(cannot))}</td></tr>"
        )
    add("</tbody></table>")
    add("</section>")
    add("</main>")

    # -- footer ----------------------------------------------------------------------------
    add("<footer>")
    add(f"<p>{esc(_('Every table of this report as a CSV file:'))} ")
    add(", ".join(f'<a href="{esc(name)}">{esc(name)}</a>' for name in ctx.csv_files))
    add("</p>")
    add(f"<p>{esc(_('Made with crosspost {version}.').format(version=__version__))}</p>")
    add("</footer>")
    add("</body>")
    add("</html>")
    return "\n".join(parts) + "\n"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>"


def _cell(w: Writer, column: str, value: Cell, labels: dict[str, dict[str, str]]) -> str:
    if column in labels and isinstance(value, str):
        return f"<td>{esc(w.gettext(labels[column].get(value, value)))}</td>"
    if column in SHARE_COLUMNS:
        fraction = float(value) if isinstance(value, float | int) else None
        return f'<td class="n">{esc(w.percent(fraction))}</td>'
    if column == "month" and isinstance(value, str):
        return f"<td>{esc(w.month(value))}</td>"
    if isinstance(value, int | float) or value is None:
        return f'<td class="n">{esc(w.number(value))}</td>'
    return f"<td>{esc(value)}</td>"


def _table(
    w: Writer,
    table: Table,
    caption: str,
    *,
    month: bool = False,
    labels: dict[str, dict[str, str]] | None = None,
    all_label: str | None = None,
) -> str:
    _ = w._
    labels = labels or {}
    if not table.rows:
        return f"<p><strong>{esc(caption)}:</strong> {esc(_('no data for this year.'))}</p>"
    head = "".join(f'<th scope="col">{esc(_(COLUMN_LABELS.get(c, c)))}</th>' for c in table.columns)
    body: list[str] = []
    for row in table.rows:
        cells = []
        for column, value in zip(table.columns, row, strict=True):
            if column == "account" and value == "*" and all_label:
                cells.append(f"<td><strong>{esc(all_label)}</strong></td>")
            else:
                cells.append(_cell(w, column, value, labels))
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _pivot(w: Writer, table: Table, caption: str) -> str:
    """A long table (month, key, value) as months × keys."""
    _ = w._
    if not table.rows:
        return f"<p><strong>{esc(caption)}:</strong> {esc(_('no data for this year.'))}</p>"
    months = sorted({str(r[0]) for r in table.rows})
    keys = list(dict.fromkeys(str(r[1]) for r in table.rows))
    values = {(str(r[0]), str(r[1])): r[2] for r in table.rows}
    key_label = _(COLUMN_LABELS.get(table.columns[1], table.columns[1]))
    head = f'<th scope="col">{esc(_("Month"))}</th>' + "".join(
        f'<th scope="col">{esc(k or _("(none)"))}</th>' for k in keys
    )
    body = "".join(
        f'<tr><th scope="row">{esc(w.month(m))}</th>'
        + "".join(f'<td class="n">{esc(w.number(values.get((m, k))))}</td>' for k in keys)
        + "</tr>"
        for m in months
    )
    return (
        f"<table><caption>{esc(caption)} ({esc(key_label)})</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _top_posts(w: Writer, table: Table) -> str:
    _ = w._
    if not table.rows:
        return f"<p>{esc(_('No post has engagement figures yet.'))}</p>"
    cols = (
        "rank",
        "title",
        "category",
        "published",
        "interactions",
        "likes",
        "reposts",
        "replies",
        "views",
    )
    head = "".join(f'<th scope="col">{esc(_(COLUMN_LABELS[c]))}</th>' for c in cols)
    body = []
    index = {c: i for i, c in enumerate(table.columns)}
    for row in table.rows:
        title = esc(row[index["title"]])
        link = row[index["link"]]
        platform_links = str(row[index["platform_links"]] or "").split()
        cell = f'<a href="{esc(link)}">{title}</a>' if link else title
        if platform_links:
            cell += "<br>" + " · ".join(
                f'<a href="{esc(u)}">{esc(_host(u))}</a>' for u in platform_links
            )
        cells = []
        for c in cols:
            if c == "title":
                cells.append(f"<td>{cell}</td>")
            elif c == "published":
                cells.append(f'<td class="d">{esc(row[index[c]])}</td>')
            elif c == "category":
                cells.append(f"<td>{esc(row[index[c]])}</td>")
            else:
                cells.append(f'<td class="n">{esc(w.number(row[index[c]]))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table><caption>{esc(_('The posts with the most interactions'))}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or url
