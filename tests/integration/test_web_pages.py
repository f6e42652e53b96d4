"""The web pages crosspost writes, in a real browser (headless Chromium): the yearly
report and the feed's HTML archive render without console errors, request nothing
from elsewhere, have a language, headings and alt text; a screenshot of each is
taken (kept in the test's folder, and copied to ``$CROSSPOST_SCREENSHOTS`` if set).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.browser import PageReport, open_page, require_browser
from tests.evaluation_seed import SITE, YEAR, seed_year
from tests.rawsettings import settings_from

from crosspost.report import make_report
from crosspost.store.migrate import upgrade
from crosspost.store.sql import SqlStore

REPO = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


class FixedClock:
    def now(self) -> datetime:
        return datetime(YEAR + 1, 1, 15, 12, tzinfo=UTC)


def keep(shot: Path) -> None:
    folder = os.environ.get("CROSSPOST_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(folder) / shot.name)


def assert_good_page(report: PageReport, page: Path, *, lang: str) -> None:
    assert report.problems == []
    own = page.resolve().as_uri()
    outside = [u for u in report.requests if not u.startswith("file://")]
    assert outside == [], f"the page fetched from elsewhere: {outside}"
    assert own in report.requests
    checks = report.checks
    assert checks["lang"] == lang
    assert checks["title"]
    assert checks["h1"] == 1
    assert checks["imagesWithoutAlt"] == 0
    assert checks["brokenImages"] == 0
    assert checks["unlabelledSvgs"] == 0
    assert checks["scripts"] == 0
    assert report.screenshot is not None
    data = report.screenshot.read_bytes()
    assert data.startswith(PNG)
    assert len(data) > 10_000  # a rendered page, not an empty canvas
    keep(report.screenshot)


@pytest.mark.parametrize("language", ["de", "en"])
def test_the_report_renders_in_a_browser(tmp_path: Path, language: str) -> None:
    """The report of a seeded year, in each language."""
    require_browser()
    store = SqlStore(f"sqlite:///{tmp_path / 'crosspost.db'}", create=True)
    try:
        upgrade(store.engine)
        seed_year(store)
        settings = settings_from(
            site={"url": SITE, "name": "Zweckverband Städtedreieck"},
            database={"url": store.url},
        )
        out = tmp_path / "report"
        make_report(settings, store, year=YEAR, out=out, language=language, clock=FixedClock())
    finally:
        store.close()
    page = out / "index.html"
    report = open_page(page, tmp_path / f"report-{language}.png")
    assert_good_page(report, page, lang=language)
    assert report.checks["svgs"] >= 4
    assert len(report.checks["headings"]) >= 8


def test_the_feed_archive_renders_in_a_browser(tmp_path: Path) -> None:
    """The website's own archive (index and a post page with an image) as published by
    the feed account through the real command."""
    require_browser()
    site = tmp_path / "site"
    config = tmp_path / "crosspost.toml"
    config.write_text(
        f"""
[site]
url = "{SITE}"
name = "Zweckverband Städtedreieck"
[database]
url = "sqlite:///{tmp_path / "q.db"}"
[accounts.website]
platform = "feed"
path = "{site}"
public_url = "{SITE}/social"
""",
        encoding="utf-8",
    )
    shutil.copy(REPO / "queue" / "wertstoffhof.png", tmp_path / "bild.png")
    (tmp_path / "post.md").write_text(
        '+++\ntitle = "Wertstoffhof"\ncategory = "einrichtungen"\n'
        '[[media]]\npath = "bild.png"\nalt = "Der Wertstoffhof von oben"\n+++\n'
        "Der Wertstoffhof hat neue Öffnungszeiten.\n",
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "crosspost", "--config", str(config)]
    for args in (["db", "upgrade"], ["enqueue", str(tmp_path / "post.md")], ["daemon", "--once"]):
        done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    pages = [site / "index.html", *sorted((site / "posts").glob("*.html"))]
    assert len(pages) == 2
    for i, page in enumerate(pages):
        report = open_page(page, tmp_path / f"feed-{i}.png")
        assert_good_page(report, page, lang="de")
    assert report.checks["images"] == 1
