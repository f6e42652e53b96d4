"""The yearly evaluation report (issue 7) from a seeded year, on SQLite and PostgreSQL.

The figures in the CSV files and in the HTML are compared with what was seeded
(:mod:`tests.evaluation_seed`); the HTML is parsed and checked for anything that
would make a browser fetch from elsewhere.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from tests.evaluation_seed import ACCOUNTS, SITE, YEAR, Expected, seed_year
from tests.rawsettings import settings_from

from crosspost.clock import Clock
from crosspost.config import Settings
from crosspost.report import make_report
from crosspost.store.migrate import upgrade
from crosspost.store.sql import SqlStore


class FixedClock(Clock):
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


CLOCK = FixedClock(datetime(YEAR + 1, 1, 15, 12, tzinfo=UTC))


def settings_for(url: str) -> Settings:
    return settings_from(
        site={"url": SITE, "name": "Zweckverband Städtedreieck", "timezone": "Europe/Berlin"},
        database={"url": url},
        accounts={
            "mastodon": {"platform": "mastodon", "base_url": "https://social.example"},
            "bluesky": {"platform": "bluesky", "handle": "zv.example"},
            "website": {"platform": "feed", "path": "site"},
            "telegram": {"platform": "telegram", "chat": "@zv"},
        },
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        store = SqlStore(f"sqlite:///{tmp_path / 'crosspost.db'}", create=True)
        upgrade(store.engine)
    else:
        store = SqlStore(request.getfixturevalue("pg_url"), db_clock=False)
    try:
        yield store
    finally:
        store.close()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


class PageParser(HTMLParser):
    """Collects what a browser would fetch or follow, and the document's structure."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.fetches: list[str] = []
        self.links: list[str] = []
        self.headings: list[str] = []
        self.svgs = 0
        self.scripts = 0
        self._in_heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "script":
            self.scripts += 1
        if tag == "svg":
            self.svgs += 1
        if tag == "a" and a.get("href"):
            self.links.append(a["href"] or "")
        for name in ("src", "srcset", "data", "poster", "background"):
            if a.get(name):
                self.fetches.append(a[name] or "")
        if tag == "link" and a.get("href"):
            self.fetches.append(a["href"] or "")
        if tag in ("image", "use") and (a.get("href") or a.get("xlink:href")):
            href = a.get("href") or a.get("xlink:href") or ""
            if not href.startswith("#"):
                self.fetches.append(href)
        if tag in ("h1", "h2", "h3"):
            self._in_heading = True
            self.headings.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2", "h3"):
            self._in_heading = False

    def handle_data(self, data: str) -> None:
        if self._in_heading:
            self.headings[-1] += data


def parse(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    return parser


def as_int(value: str) -> int:
    return int(value) if value else 0


def test_report_figures_match_the_seeded_year(sql_store: SqlStore, tmp_path: Path) -> None:
    """Posts per month, by category and account, on-time share, failures, engagement,
    followers, link-back (100 %) and alt text are exactly what was seeded."""
    expected: Expected = seed_year(sql_store)
    out = tmp_path / "report"
    files = make_report(
        settings_for(sql_store.url), sql_store, year=YEAR, out=out, language="en", clock=CLOCK
    )
    assert files.posts == sum(expected.posts_per_month.values())

    per_month = {r["month"]: r for r in read_csv(out / "posts_per_month.csv")}
    assert list(per_month) == [f"{YEAR}-{m:02d}" for m in range(1, 13)]
    for month, row in per_month.items():
        assert int(row["posts"]) == expected.posts_per_month[month]
        assert int(row["deliveries"]) == expected.deliveries_per_month[month]

    by_category = {r["category"]: int(r["posts"]) for r in read_csv(out / "posts_by_category.csv")}
    assert by_category == dict(expected.posts_by_category)

    by_account = {r["account"]: r for r in read_csv(out / "posts_by_account.csv")}
    assert set(by_account) == set(ACCOUNTS)
    for account in ACCOUNTS:
        assert int(by_account[account]["deliveries"]) == expected.published_by_account[account]
    assert by_account["telegram"]["share_of_posts"] == "0.0"

    on_time = {r["account"]: r for r in read_csv(out / "on_time.csv")}
    assert int(on_time["*"]["published"]) == expected.published
    assert int(on_time["*"]["on_time"]) == expected.on_time
    assert float(on_time["*"]["share"]) == pytest.approx(expected.on_time / expected.published)
    assert float(on_time["website"]["share"]) == 1.0

    causes = {r["cause"]: int(r["failed_tries"]) for r in read_csv(out / "failure_causes.csv")}
    assert causes == dict(expected.failed_tries)
    failures = {r["account"]: r for r in read_csv(out / "failures_by_account.csv")}
    assert int(failures["telegram"]["failed"]) == expected.failed_deliveries["telegram"]
    assert (
        int(failures["bluesky"]["published_after_retry"]) == expected.posts_per_month[f"{YEAR}-07"]
    )

    engagement = {r["account"]: r for r in read_csv(out / "engagement_by_account.csv")}
    for account in ("mastodon", "bluesky"):
        assert int(engagement[account]["likes"]) == expected.likes_by_account[account]
        assert int(engagement[account]["posts_measured"]) == expected.measured_by_account[account]
        assert engagement[account]["views"] == ""  # neither platform counts views
    assert engagement["telegram"]["posts_measured"] == "0"

    top = read_csv(out / "top_posts.csv")
    assert top[0]["title"] == expected.top_post_title
    assert top[0]["link"] == expected.top_post_link
    assert int(top[0]["interactions"]) == expected.top_post_interactions
    assert len(top) == 10

    followers = {r["account"]: r for r in read_csv(out / "followers.csv")}
    for account, (first, last) in expected.followers.items():
        assert (int(followers[account]["first"]), int(followers[account]["last"])) == (first, last)
        assert int(followers[account]["change"]) == last - first
    monthly = [
        (r["month"], r["account"], int(r["followers"]))
        for r in read_csv(out / "followers_by_month.csv")
    ]
    assert monthly == [
        (f"{YEAR}-01", "mastodon", 100),
        (f"{YEAR}-02", "bluesky", 10),
        (f"{YEAR}-06", "mastodon", 150),
        (f"{YEAR}-11", "bluesky", 40),
        (f"{YEAR}-12", "mastodon", 220),
    ]

    compliance = {r["measure"]: r for r in read_csv(out / "compliance.csv")}
    assert compliance["link_back"]["share"] == "1.0"
    assert int(compliance["link_back"]["count"]) == expected.published
    assert int(compliance["alt_text"]["total"]) == expected.images
    assert int(compliance["alt_text"]["count"]) == expected.images_with_alt
    assert compliance["in_website_feed"]["share"] == "1.0"

    html = (out / "index.html").read_text(encoding="utf-8")
    page = parse(html)
    assert page.lang == "en"
    assert page.headings[0] == f"Social media evaluation {YEAR}"
    for heading in ("Posts", "Published on time", "Failures and their causes", "Engagement",
                    "Followers", "Policy compliance", "Methods"):  # fmt: skip
        assert heading in page.headings
    assert page.svgs >= 4  # posts, on time, engagement, followers
    assert expected.top_post_link in page.links
    assert "Every publication carried the canonical website link." in html


def test_report_makes_no_external_requests(sql_store: SqlStore, tmp_path: Path) -> None:
    """No script, no style sheet, image or font from elsewhere; the only absolute
    addresses are the association's own website and its posts on the platforms."""
    expected = seed_year(sql_store)
    out = tmp_path / "report"
    make_report(settings_for(sql_store.url), sql_store, year=YEAR, out=out, clock=CLOCK)
    html = (out / "index.html").read_text(encoding="utf-8")
    page = parse(html)
    assert page.scripts == 0
    assert page.fetches == []
    assert "@import" not in html
    assert re.findall(r"url\((?!#)", html) == []  # only references inside the page
    own = {SITE, *expected.post_links, *expected.remote_urls}
    absolute = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert absolute <= own, absolute - own
    relative = [link for link in page.links if "://" not in link]
    assert relative
    assert all(link.endswith(".csv") for link in relative)
    for link in relative:
        assert (out / link).is_file()


def test_report_is_german_by_default_and_deterministic(sql_store: SqlStore, tmp_path: Path) -> None:
    """The same data give byte-identical files (charts included); German is the default."""
    seed_year(sql_store)
    settings = settings_for(sql_store.url)
    first, second = tmp_path / "a", tmp_path / "b"
    make_report(settings, sql_store, year=YEAR, out=first, clock=CLOCK)
    make_report(settings, sql_store, year=YEAR, out=second, clock=CLOCK)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    page = parse((first / "index.html").read_text(encoding="utf-8"))
    assert page.lang == "de"


def test_a_year_without_posts_gives_an_honest_report(sql_store: SqlStore, tmp_path: Path) -> None:
    """No posts: every file is still written, the figures are zero or empty, the page
    says so, and no share is invented (empty, not 0 % or 100 %)."""
    seed_year(sql_store)
    out = tmp_path / "empty"
    files = make_report(
        settings_for(sql_store.url), sql_store, year=2030, out=out, language="en", clock=CLOCK
    )
    assert files.posts == 0
    assert all(int(r["posts"]) == 0 for r in read_csv(out / "posts_per_month.csv"))
    assert read_csv(out / "top_posts.csv") == []
    compliance = {r["measure"]: r for r in read_csv(out / "compliance.csv")}
    assert compliance["link_back"]["share"] == ""
    assert compliance["alt_text"]["share"] == ""
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "No post was published in 2030." in html
    page = parse(html)
    assert page.svgs == 0
    assert "Methods" in page.headings


def crosspost(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crosspost", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_report_command(tmp_path: Path) -> None:
    """`crosspost report` writes the folder and says where (or prints JSON); bad input
    is one line, exit 2, and writes nothing."""
    db = tmp_path / "q.db"
    store = SqlStore(f"sqlite:///{db}", create=True)
    try:
        upgrade(store.engine)
        seed_year(store)
    finally:
        store.close()
    config = tmp_path / "crosspost.toml"
    config.write_text(
        f'[site]\nurl = "{SITE}"\n[database]\nurl = "sqlite:///{db}"\n', encoding="utf-8"
    )
    done = crosspost(config, "report", "--year", str(YEAR), "--out", str(tmp_path / "r"), "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["html"] == str(tmp_path / "r" / "index.html")
    assert answer["posts"] == 24
    assert all(Path(p).is_file() for p in answer["csv"])

    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x", encoding="utf-8")
    for args in (
        ["--year", str(YEAR), "--out", str(a_file)],
        ["--year", "1999", "--out", str(tmp_path / "never")],
        ["--year", str(YEAR), "--lang", "fr", "--out", str(tmp_path / "never")],
        ["--out", str(tmp_path / "never")],
    ):
        bad = crosspost(config, "report", *args)
        assert bad.returncode == 2, (args, bad.stderr)
        assert "Traceback" not in bad.stderr
        assert bad.stdout == ""
    assert a_file.read_text(encoding="utf-8") == "x"
    assert not (tmp_path / "never").exists()


def test_response_times_appear_only_with_inbox_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook for the inbox: with months of response times the section and its CSV
    are there; without an inbox, or with no interaction in the year, they are not."""
    import sys
    import types
    from dataclasses import dataclass

    @dataclass
    class Month:
        month: int
        answered: int
        unanswered: int
        median_seconds: float | None
        p90_seconds: float | None
        within_hour: int
        within_day: int

    answers: list[Month] = []
    inbox = types.ModuleType("crosspost.inbox")
    # A bare stand-in module: mypy knows no attributes of a ModuleType made at run time.
    inbox.response_times = lambda store, year, zone=None: list(answers)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "crosspost.inbox", inbox)
    store = SqlStore(f"sqlite:///{tmp_path / 'q.db'}", create=True)
    try:
        upgrade(store.engine)
        seed_year(store)
        settings = settings_for(store.url)
        make_report(settings, store, year=YEAR, out=tmp_path / "none", language="en", clock=CLOCK)
        answers.extend([Month(3, 4, 1, 1800.0, 7200.0, 2, 4), Month(4, 0, 0, None, None, 0, 0)])
        make_report(settings, store, year=YEAR, out=tmp_path / "with", language="en", clock=CLOCK)
    finally:
        store.close()
    assert not (tmp_path / "none" / "response_times.csv").exists()
    assert "Response times" not in parse((tmp_path / "none" / "index.html").read_text()).headings
    assert read_csv(tmp_path / "with" / "response_times.csv") == [
        {
            "month": f"{YEAR}-03",
            "answered": "4",
            "unanswered": "1",
            "median_minutes": "30.0",
            "p90_minutes": "120.0",
            "within_hour_share": "0.5",
            "within_day_share": "1.0",
        },
        {
            "month": f"{YEAR}-04",
            "answered": "0",
            "unanswered": "0",
            "median_minutes": "",
            "p90_minutes": "",
            "within_hour_share": "",
            "within_day_share": "",
        },
    ]
    assert "Response times" in parse((tmp_path / "with" / "index.html").read_text()).headings
