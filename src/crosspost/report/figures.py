"""The report's figures: aggregate tables computed from the year's rows (pure functions).

Every table becomes one CSV file (``<key>.csv``, column ids as header, shares as
decimal fractions) and one table in the HTML report. Only aggregates leave this
module: counts per month, category, account, cause; the association's own posts
(titles and links) in the top list; no follower names, no interactions' authors.

Definitions (also in ``docs/evaluation.md``):

* a post counts in the month of its **first** publication on any account;
* a delivery is **on time** when it was published at most ``on_time_minutes`` after
  the post's time (``publish_at``, or the moment it was enqueued if that was later);
* a post's **engagement** is its latest sample per account (the greatest age);
  interactions = likes + reposts + replies (views are reported apart);
* **link-back**: the text sent contains the canonical link as a whole address.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from crosspost.compose import contains_link
from crosspost.models import PostMetrics
from crosspost.store.metrics import DeliveryRow, EvaluationRows, PostRow, SampleRow

Cell = str | int | float | None

#: how many posts the top list shows
TOP_POSTS = 10


@dataclass(frozen=True, slots=True)
class Table:
    key: str
    columns: tuple[str, ...]
    rows: list[tuple[Cell, ...]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Figures:
    year: int
    zone: str
    #: account → platform, for every account that appears in the year
    platforms: dict[str, str]
    tables: dict[str, Table]
    #: headline numbers
    posts: int
    deliveries: int
    on_time_share: float | None
    link_back_share: float | None
    alt_text_share: float | None
    feed_share: float | None
    measured_deliveries: int
    follower_samples: int

    def table(self, key: str) -> Table:
        return self.tables[key]


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _sum(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def interactions(m: PostMetrics) -> int | None:
    return _sum((m.likes, m.reposts, m.replies))


def cause_of(outcome: str, http_status: int | None) -> str:
    """A failed try's cause, as a stable id (translated where shown)."""
    if outcome == "rate_limited":
        return "rate_limit"
    if outcome == "auth":
        return "credentials"
    if outcome == "rejected":
        return "refused"
    if outcome == "unknown":
        return "answer_lost"
    if outcome == "crashed":
        return "interrupted"
    if http_status is not None and http_status >= 500:
        return "platform_error"
    return "network"


#: the causes in the order the report lists them
CAUSES = (
    "rate_limit",
    "platform_error",
    "network",
    "answer_lost",
    "interrupted",
    "credentials",
    "refused",
)


def months(year: int) -> list[str]:
    return [f"{year}-{m:02d}" for m in range(1, 13)]


def compute(
    rows: EvaluationRows,
    *,
    year: int,
    zone: ZoneInfo,
    on_time_minutes: int,
    sample_ages: list[int],
) -> Figures:
    def local(when: datetime) -> datetime:
        return when.astimezone(zone)

    def month(when: datetime) -> str:
        return local(when).strftime("%Y-%m")

    posts = {p.id: p for p in rows.posts}
    published = [d for d in rows.deliveries if d.published_at is not None]
    platforms = {d.account: d.platform for d in rows.deliveries}
    first_published: dict[int, datetime] = {}
    for d in published:
        assert d.published_at is not None
        seen = first_published.get(d.post_id)
        if seen is None or d.published_at < seen:
            first_published[d.post_id] = d.published_at
    year_posts = {
        pid: when
        for pid, when in first_published.items()
        if local(when).year == year and pid in posts
    }
    tables: dict[str, Table] = {}

    # -- posts per month, by category, by account ---------------------------------------
    per_month = Counter(month(w) for w in year_posts.values())
    deliveries_month = Counter(month(d.published_at) for d in published if d.published_at)
    tables["posts_per_month"] = Table(
        "posts_per_month",
        ("month", "posts", "deliveries"),
        [(m, per_month[m], deliveries_month[m]) for m in months(year)],
    )
    categories = sorted({posts[p].category or "" for p in year_posts})
    by_category = Counter(posts[p].category or "" for p in year_posts)
    tables["posts_by_category"] = Table(
        "posts_by_category",
        ("category", "posts", "share"),
        [(c, by_category[c], share(by_category[c], len(year_posts))) for c in categories],
    )
    cat_month = Counter((month(w), posts[p].category or "") for p, w in year_posts.items())
    tables["posts_by_category_month"] = Table(
        "posts_by_category_month",
        ("month", "category", "posts"),
        [(m, c, cat_month[(m, c)]) for m in months(year) for c in categories],
    )
    accounts = sorted(platforms)
    by_account = Counter(d.account for d in published)
    tables["posts_by_account"] = Table(
        "posts_by_account",
        ("account", "platform", "deliveries", "share_of_posts"),
        [
            (
                a,
                platforms[a],
                by_account[a],
                share(len({d.post_id for d in published if d.account == a}), len(year_posts)),
            )
            for a in accounts
        ],
    )
    acc_month = Counter((month(d.published_at), d.account) for d in published if d.published_at)
    tables["posts_by_account_month"] = Table(
        "posts_by_account_month",
        ("month", "account", "deliveries"),
        [(m, a, acc_month[(m, a)]) for m in months(year) for a in accounts],
    )

    # -- on time -------------------------------------------------------------------------
    tolerance = timedelta(minutes=on_time_minutes)

    def scheduled(post: PostRow) -> datetime:
        return max(post.publish_at or post.created_at, post.created_at)

    on_time_by: dict[str, list[bool]] = defaultdict(list)
    for d in published:
        assert d.published_at is not None
        post = posts.get(d.post_id)
        if post is None:
            continue
        on_time_by[d.account].append(d.published_at <= scheduled(post) + tolerance)
    on_rows: list[tuple[Cell, ...]] = []
    for a in accounts:
        flags = on_time_by.get(a, [])
        on_rows.append((a, len(flags), sum(flags), share(sum(flags), len(flags))))
    every = [f for flags in on_time_by.values() for f in flags]
    on_time_share = share(sum(every), len(every))
    on_rows.append(("*", len(every), sum(every), on_time_share))
    tables["on_time"] = Table("on_time", ("account", "published", "on_time", "share"), on_rows)

    # -- failures ------------------------------------------------------------------------
    tries = Counter(cause_of(t.outcome, t.http_status) for t in rows.attempts)
    cause_deliveries: dict[str, set[int]] = defaultdict(set)
    for attempt in rows.attempts:
        cause_deliveries[cause_of(attempt.outcome, attempt.http_status)].add(attempt.delivery_id)
    tables["failure_causes"] = Table(
        "failure_causes",
        ("cause", "failed_tries", "deliveries"),
        [(c, tries[c], len(cause_deliveries[c])) for c in CAUSES if tries[c]],
    )
    failed_tries = Counter(t.account for t in rows.attempts)
    retried = {t.delivery_id for t in rows.attempts}
    final = Counter((d.account, d.state) for d in rows.deliveries)
    tables["failures_by_account"] = Table(
        "failures_by_account",
        ("account", "failed_tries", "published_after_retry", "failed", "unknown"),
        [
            (
                a,
                failed_tries[a],
                sum(1 for d in published if d.account == a and d.id in retried),
                final[(a, "failed")],
                final[(a, "unknown")],
            )
            for a in accounts
        ],
    )

    # -- engagement ----------------------------------------------------------------------
    latest: dict[int, SampleRow] = {}
    for s in rows.samples:
        seen_sample = latest.get(s.delivery_id)
        if seen_sample is None or _sample_order(s) > _sample_order(seen_sample):
            latest[s.delivery_id] = s
    by_id = {d.id: d for d in published}
    measured = {i: s for i, s in latest.items() if i in by_id}

    def engagement_row(samples: list[SampleRow]) -> tuple[Cell, ...]:
        likes = _sum(s.metrics.likes for s in samples)
        reposts = _sum(s.metrics.reposts for s in samples)
        replies = _sum(s.metrics.replies for s in samples)
        views = _sum(s.metrics.views for s in samples)
        total = _sum((likes, reposts, replies))
        per_post = round(total / len(samples), 2) if samples and total is not None else None
        return (len(samples), likes, reposts, replies, views, per_post)

    eng_cols = ("posts_measured", "likes", "reposts", "replies", "views", "interactions_per_post")
    tables["engagement_by_account"] = Table(
        "engagement_by_account",
        ("account", "platform", *eng_cols),
        [
            (
                a,
                platforms[a],
                *engagement_row([s for i, s in measured.items() if by_id[i].account == a]),
            )
            for a in accounts
        ],
    )
    tables["engagement_by_category"] = Table(
        "engagement_by_category",
        ("category", *eng_cols),
        [
            (
                c,
                *engagement_row(
                    [
                        s
                        for i, s in measured.items()
                        if (posts[by_id[i].post_id].category or "") == c
                        and by_id[i].post_id in year_posts
                    ]
                ),
            )
            for c in categories
        ],
    )
    age_rows: list[tuple[Cell, ...]] = []
    for age in sample_ages:
        for a in accounts:
            aged = [
                s
                for s in rows.samples
                if s.age_days == age and s.delivery_id in by_id and s.account == a
            ]
            if aged:
                age_rows.append((age, a, *engagement_row(aged)[:5]))
    tables["engagement_by_age"] = Table(
        "engagement_by_age",
        ("age_days", "account", "samples", "likes", "reposts", "replies", "views"),
        age_rows,
    )
    tables["top_posts"] = _top_posts(posts, year_posts, by_id, measured, zone)

    # -- followers -----------------------------------------------------------------------
    by_acc: dict[str, list[tuple[datetime, str, int]]] = defaultdict(list)
    for f in rows.followers:
        if local(f.collected_at).year == year:
            by_acc[f.account].append((f.collected_at, f.day, f.followers))
    follower_rows: list[tuple[Cell, ...]] = []
    monthly_rows: list[tuple[Cell, ...]] = []
    for a in sorted(by_acc):
        series = sorted(by_acc[a])
        first, last = series[0], series[-1]
        day_of = local(first[0]).date().isoformat(), local(last[0]).date().isoformat()
        follower_rows.append(
            (
                a,
                platforms.get(a, ""),
                day_of[0],
                first[2],
                day_of[1],
                last[2],
                last[2] - first[2],
                share(last[2] - first[2], first[2]) if first[2] else None,
            )
        )
        end_of_month: dict[str, int] = {}
        for when, _day, n in series:
            end_of_month[month(when)] = n
        monthly_rows.extend((m, a, end_of_month[m]) for m in months(year) if m in end_of_month)
    tables["followers"] = Table(
        "followers",
        ("account", "platform", "first_day", "first", "last_day", "last", "change", "change_share"),
        follower_rows,
    )
    tables["followers_by_month"] = Table(
        "followers_by_month",
        ("month", "account", "followers"),
        sorted(monthly_rows, key=lambda r: (str(r[0]), str(r[1]))),
    )

    # -- compliance ----------------------------------------------------------------------
    linked = [contains_link(d.text, posts[d.post_id].link) for d in published if d.post_id in posts]
    images = [alt.strip() != "" for p in year_posts for alt in posts[p].alts]
    in_feed = {d.post_id for d in published if d.platform == "feed"}
    feed_posts = sum(1 for p in year_posts if p in in_feed)
    link_back_share = share(sum(linked), len(linked))
    alt_share = share(sum(images), len(images))
    feed_share = share(feed_posts, len(year_posts))
    tables["compliance"] = Table(
        "compliance",
        ("measure", "count", "total", "share"),
        [
            ("link_back", sum(linked), len(linked), link_back_share),
            ("alt_text", sum(images), len(images), alt_share),
            ("in_website_feed", feed_posts, len(year_posts), feed_share),
        ],
    )
    return Figures(
        year=year,
        zone=zone.key,
        platforms=platforms,
        tables=tables,
        posts=len(year_posts),
        deliveries=len(published),
        on_time_share=on_time_share,
        link_back_share=link_back_share,
        alt_text_share=alt_share,
        feed_share=feed_share,
        measured_deliveries=len(measured),
        follower_samples=sum(len(v) for v in by_acc.values()),
    )


def _sample_order(s: SampleRow) -> tuple[int, datetime]:
    return (s.age_days if s.age_days is not None else -1, s.collected_at)


def _top_posts(
    posts: dict[int, PostRow],
    year_posts: dict[int, datetime],
    by_id: dict[int, DeliveryRow],
    measured: dict[int, SampleRow],
    zone: ZoneInfo,
) -> Table:
    per_post: dict[int, list[tuple[DeliveryRow, SampleRow]]] = defaultdict(list)
    for i, s in measured.items():
        d = by_id[i]
        if d.post_id in year_posts:
            per_post[d.post_id].append((d, s))
    ranked = []
    for pid, pairs in per_post.items():
        samples = [s for _d, s in pairs]
        total = _sum(interactions(s.metrics) for s in samples)
        if total is None:
            continue
        ranked.append((total, pid, pairs))
    ranked.sort(key=lambda t: (-t[0], t[1]))
    rows: list[tuple[Cell, ...]] = []
    for rank, (total, pid, pairs) in enumerate(ranked[:TOP_POSTS], start=1):
        post = posts[pid]
        samples = [s for _d, s in pairs]
        first: date = year_posts[pid].astimezone(zone).date()
        urls = " ".join(
            d.remote_url for d, _s in sorted(pairs, key=lambda p: p[0].account) if d.remote_url
        )
        rows.append(
            (
                rank,
                pid,
                post.title,
                post.category or "",
                first.isoformat(),
                total,
                _sum(s.metrics.likes for s in samples),
                _sum(s.metrics.reposts for s in samples),
                _sum(s.metrics.replies for s in samples),
                _sum(s.metrics.views for s in samples),
                post.link,
                urls,
            )
        )
    return Table(
        "top_posts",
        (
            "rank",
            "post",
            "title",
            "category",
            "published",
            "interactions",
            "likes",
            "reposts",
            "replies",
            "views",
            "link",
            "platform_links",
        ),
        rows,
    )
