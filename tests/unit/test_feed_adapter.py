"""The feed adapter: the website's own Atom feed and HTML archive, written to a folder."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.rawsettings import settings_from
from tests.unprivileged import without_file_powers

from crosspost.adapters.base import build_adapter
from crosspost.adapters.feed import FEED_SIZE, FeedAdapter
from crosspost.clock import FrozenClock
from crosspost.exceptions import AuthError, Rejected, Transient
from crosspost.models import Media, PublishRequest

SITE = {"url": "https://www.zv-staedtedreieck.de", "name": "Zweckverband Städtedreieck"}
PUBLIC_URL = "https://www.zv-staedtedreieck.de/archiv"
LINK = "https://www.zv-staedtedreieck.de/aktuelles/weihnachtsmarkt"
ATOM = "{http://www.w3.org/2005/Atom}"


def make_adapter(folder: Path, public_url: str | None = PUBLIC_URL) -> FeedAdapter:
    account: dict[str, str] = {"platform": "feed", "path": str(folder)}
    if public_url:
        account["public_url"] = public_url
    adapter = build_adapter("web", settings_from(site=SITE, accounts={"web": account}))
    assert isinstance(adapter, FeedAdapter)
    return adapter


def make_request(
    post_id: int,
    *,
    text: str | None = None,
    title: str = "Weihnachtsmarkt im Städtedreieck",
    link: str = LINK,
    media: tuple[Media, ...] = (),
) -> PublishRequest:
    return PublishRequest(
        delivery_id=1000 + post_id,
        post_id=post_id,
        account="web",
        text=text if text is not None else f"Beitrag {post_id}.\n\n{link}",
        link=link,
        title=title,
        media=media,
        idempotency_key=f"delivery-{1000 + post_id}",
        created_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
    )


def parse_feed(folder: Path) -> ET.Element:
    root = ET.parse(folder / "feed.xml").getroot()
    assert root.tag == f"{ATOM}feed"
    return root


def feed_entries(folder: Path) -> list[ET.Element]:
    return parse_feed(folder).findall(f"{ATOM}entry")


def leftover_temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_publishing_the_same_post_again_replaces_its_entry(tmp_path: Path) -> None:
    """A resend of a post id leaves one entry, with the newest text and the first publish time."""
    adapter = make_adapter(tmp_path)
    adapter.clock = FrozenClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    first = asyncio.run(adapter.publish(make_request(7, text="Erste Fassung")))
    adapter.clock.advance(timedelta(minutes=5))
    second = asyncio.run(adapter.publish(make_request(7, text="Zweite Fassung")))

    assert first == second
    entries = feed_entries(tmp_path)
    assert len(entries) == 1
    assert entries[0].findtext(f"{ATOM}content") == "Zweite Fassung"
    assert entries[0].findtext(f"{ATOM}published") == "2026-12-01T08:00:00Z"
    assert entries[0].findtext(f"{ATOM}updated") == "2026-12-01T08:05:00Z"
    state = json.loads((tmp_path / "entries.json").read_text(encoding="utf-8"))
    assert list(state["entries"]) == ["7"]


def test_feed_is_valid_atom_linking_to_the_canonical_page(tmp_path: Path) -> None:
    """Feed and entry carry id, title, updated, author, self link; the entry links to ``link``."""
    adapter = make_adapter(tmp_path)
    result = asyncio.run(adapter.publish(make_request(3)))

    root = parse_feed(tmp_path)
    assert root.findtext(f"{ATOM}id", "").startswith("tag:www.zv-staedtedreieck.de,")
    assert root.findtext(f"{ATOM}title") == "Zweckverband Städtedreieck"
    assert root.findtext(f"{ATOM}updated")
    assert root.findtext(f"{ATOM}author/{ATOM}name") == "Zweckverband Städtedreieck"
    self_link = root.find(f"{ATOM}link[@rel='self']")
    assert self_link is not None
    assert self_link.get("href") == f"{PUBLIC_URL}/feed.xml"

    (entry,) = root.findall(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}id", "").startswith("tag:")
    assert entry.findtext(f"{ATOM}title") == "Weihnachtsmarkt im Städtedreieck"
    alternate = entry.find(f"{ATOM}link[@rel='alternate']")
    assert alternate is not None
    assert alternate.get("href") == LINK
    content = entry.find(f"{ATOM}content")
    assert content is not None
    assert content.get("type") == "text"
    assert result.remote_id == "3"
    assert result.remote_url == f"{PUBLIC_URL}/posts/3.html"


def test_entry_ids_are_stable_across_resends_and_other_posts(tmp_path: Path) -> None:
    """An entry keeps its Atom id when resent, and every post has its own."""
    adapter = make_adapter(tmp_path)
    asyncio.run(adapter.publish(make_request(1)))
    before = {e.findtext(f"{ATOM}id") for e in feed_entries(tmp_path)}
    asyncio.run(adapter.publish(make_request(2)))
    asyncio.run(adapter.publish(make_request(1, text="geändert")))
    after = [e.findtext(f"{ATOM}id") for e in feed_entries(tmp_path)]
    assert len(set(after)) == 2
    assert before <= set(after)


def test_without_public_url_the_remote_url_is_the_page_file(tmp_path: Path) -> None:
    """Without ``public_url`` the feed has no self link and the result points at the file."""
    adapter = make_adapter(tmp_path, public_url=None)
    result = asyncio.run(adapter.publish(make_request(4)))
    assert result.remote_url == (tmp_path / "posts" / "4.html").absolute().as_uri()
    root = parse_feed(tmp_path)
    assert root.find(f"{ATOM}link[@rel='self']") is None


def test_markup_in_the_text_is_escaped_everywhere(tmp_path: Path) -> None:
    """``<script>`` in title or text is shown as text on the pages and kept as text in the feed."""
    text = "Achtung <script>alert('x')</script> & mehr: https://www.zv-staedtedreieck.de/a?b=1&c=2."
    adapter = make_adapter(tmp_path)
    asyncio.run(adapter.publish(make_request(5, text=text, title="<b>Titel</b> & Co")))

    page = (tmp_path / "posts" / "5.html").read_text(encoding="utf-8")
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    for html in (page, index):
        assert "<script" not in html
        assert "<b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; mehr" in page
    assert "&lt;b&gt;Titel&lt;/b&gt; &amp; Co" in index
    # the URL is a link, without the full stop that ends the sentence
    url = "https://www.zv-staedtedreieck.de/a?b=1&amp;c=2"
    assert f'<a href="{url}">{url}</a>.' in page

    (entry,) = feed_entries(tmp_path)
    assert entry.findtext(f"{ATOM}content") == text
    assert entry.findtext(f"{ATOM}title") == "<b>Titel</b> & Co"


def test_control_characters_do_not_break_the_feed(tmp_path: Path) -> None:
    """Characters XML cannot carry are dropped, so feed.xml always parses."""
    adapter = make_adapter(tmp_path)
    asyncio.run(adapter.publish(make_request(6, text="Glocke\x07 und Form\x0cfeed")))
    (entry,) = feed_entries(tmp_path)
    assert entry.findtext(f"{ATOM}content") == "Glocke und Formfeed"


def test_post_page_links_prominently_to_the_website(tmp_path: Path) -> None:
    """The page is German, names the canonical page, local time and "Read on the website"."""
    adapter = make_adapter(tmp_path)
    adapter.clock = FrozenClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    asyncio.run(adapter.publish(make_request(8)))
    page = (tmp_path / "posts" / "8.html").read_text(encoding="utf-8")
    assert '<html lang="de">' in page
    assert f'<link rel="canonical" href="{LINK}">' in page
    assert f'<strong><a href="{LINK}">Read on the website</a></strong>' in page
    # machine-readable in UTC, shown in the site's time zone (CET in December)
    assert '<time datetime="2026-12-01T08:00:00Z">2026-12-01 09:00</time>' in page
    assert "<h1>Weihnachtsmarkt im Städtedreieck</h1>" in page


def test_pages_fetch_nothing_from_elsewhere(tmp_path: Path) -> None:
    """Archive and post pages load no scripts, stylesheets or images from other servers."""
    adapter = make_adapter(tmp_path)
    asyncio.run(adapter.publish(make_request(9)))
    for name in ("index.html", "posts/9.html"):
        html = (tmp_path / name).read_text(encoding="utf-8")
        assert "<script" not in html
        assert 'src="http' not in html
        assert 'rel="stylesheet"' not in html


def test_images_are_copied_and_described(tmp_path: Path) -> None:
    """Media land in ``media/``; the page shows them with alt text, the feed as enclosures."""
    image = tmp_path / "in" / "Markt Foto.JPG"
    image.parent.mkdir()
    image.write_bytes(b"\xff\xd8fake jpeg\xff\xd9")
    alt = 'Beleuchtete Marktstände auf dem "Platz der Freiheit"'
    folder = tmp_path / "site"
    adapter = make_adapter(folder)
    asyncio.run(adapter.publish(make_request(10, media=(Media(path=image, alt=alt),))))

    copied = folder / "media" / "10-1.jpg"
    assert copied.read_bytes() == image.read_bytes()
    page = (folder / "posts" / "10.html").read_text(encoding="utf-8")
    assert (
        '<img src="../media/10-1.jpg" '
        'alt="Beleuchtete Marktstände auf dem &quot;Platz der Freiheit&quot;">'
    ) in page
    (entry,) = feed_entries(folder)
    enclosure = entry.find(f"{ATOM}link[@rel='enclosure']")
    assert enclosure is not None
    assert enclosure.get("href") == f"{PUBLIC_URL}/media/10-1.jpg"
    assert enclosure.get("title") == alt
    assert enclosure.get("type") == "image/jpeg"
    assert enclosure.get("length") == str(len(image.read_bytes()))


def test_a_missing_image_rejects_the_post(tmp_path: Path) -> None:
    """An image that cannot be read is a permanent failure for this post, naming the file."""
    adapter = make_adapter(tmp_path / "site")
    missing = tmp_path / "fehlt.jpg"
    with pytest.raises(Rejected, match=r"fehlt\.jpg"):
        asyncio.run(adapter.publish(make_request(11, media=(Media(path=missing, alt="x"),))))


def test_delete_removes_entry_page_and_media(tmp_path: Path) -> None:
    """Retracting a post takes it out of feed, archive, state and the media folder."""
    image = tmp_path / "bild.png"
    image.write_bytes(b"png")
    folder = tmp_path / "site"
    adapter = make_adapter(folder)
    asyncio.run(adapter.publish(make_request(12, media=(Media(image, "Ein Bild", "image/png"),))))
    result = asyncio.run(adapter.publish(make_request(13)))

    asyncio.run(adapter.delete("12"))

    assert [e.findtext(f"{ATOM}id", "").rsplit("/", 1)[-1] for e in feed_entries(folder)] == ["13"]
    assert not (folder / "posts" / "12.html").exists()
    assert not (folder / "media" / "12-1.png").exists()
    assert "posts/12.html" not in (folder / "index.html").read_text(encoding="utf-8")
    assert asyncio.run(adapter.find_existing(make_request(12))) is None
    assert asyncio.run(adapter.find_existing(make_request(13))) == result
    asyncio.run(adapter.delete("12"))  # deleting again is harmless


def test_delete_refuses_foreign_ids(tmp_path: Path) -> None:
    """A remote id that is not a post id is refused rather than used as a path."""
    adapter = make_adapter(tmp_path)
    with pytest.raises(Rejected):
        asyncio.run(adapter.delete("../entries"))


def test_find_existing_sees_only_published_posts(tmp_path: Path) -> None:
    """Reconciliation answers from entries.json: None before, the result after publishing."""
    adapter = make_adapter(tmp_path)
    assert asyncio.run(adapter.find_existing(make_request(14))) is None
    result = asyncio.run(adapter.publish(make_request(14)))
    assert asyncio.run(adapter.find_existing(make_request(14))) == result


def test_feed_keeps_the_newest_entries_and_the_archive_all(tmp_path: Path) -> None:
    """feed.xml carries the newest FEED_SIZE entries; index.html lists every post, newest first."""
    adapter = make_adapter(tmp_path)
    adapter.clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    for post_id in range(1, FEED_SIZE + 6):
        adapter.clock.advance(timedelta(minutes=1))
        asyncio.run(adapter.publish(make_request(post_id)))

    ids = [e.findtext(f"{ATOM}id", "").rsplit("/", 1)[-1] for e in feed_entries(tmp_path)]
    assert ids == [str(n) for n in range(FEED_SIZE + 5, 5, -1)]
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    positions = [index.index(f'href="posts/{n}.html"') for n in range(FEED_SIZE + 5, 0, -1)]
    assert positions == sorted(positions)


def test_concurrent_tasks_lose_no_entry(tmp_path: Path) -> None:
    """Many publishes in flight at once in one event loop all end up in feed and archive."""
    adapter = make_adapter(tmp_path)

    async def publish_all() -> None:
        await asyncio.gather(*(adapter.publish(make_request(n)) for n in range(1, 31)))

    asyncio.run(publish_all())
    assert len(feed_entries(tmp_path)) == 30
    state = json.loads((tmp_path / "entries.json").read_text(encoding="utf-8"))
    assert sorted(map(int, state["entries"])) == list(range(1, 31))


CHILD = r"""
import asyncio, sys
from datetime import UTC, datetime
from crosspost.adapters.base import build_adapter
from crosspost.config import Settings
from crosspost.models import PublishRequest

folder, first = sys.argv[1], int(sys.argv[2])
settings = Settings(
    site={"url": "https://www.zv-staedtedreieck.de", "name": "Zweckverband Städtedreieck"},
    accounts={"web": {"platform": "feed", "path": folder}},
)
adapter = build_adapter("web", settings)

def request(n):
    return PublishRequest(
        delivery_id=n, post_id=n, account="web", text=f"Beitrag {n}",
        link="https://www.zv-staedtedreieck.de/", title=f"Beitrag {n}", media=(),
        idempotency_key=f"k{n}", created_at=datetime.now(UTC),
    )

async def main():
    await asyncio.gather(*(adapter.publish(request(n)) for n in range(first, first + 20)))

print("ready", flush=True)
sys.stdin.readline()  # both processes start together
asyncio.run(main())
"""


def test_two_processes_lose_no_entry(tmp_path: Path) -> None:
    """Two daemons writing into one folder at the same time keep all 40 posts."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path), str(first)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for first in (1, 101)
    ]
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.close()
    for child in children:
        assert child.wait(timeout=120) == 0, child.stderr.read() if child.stderr else ""
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()

    expected = [*range(1, 21), *range(101, 121)]
    state = json.loads((tmp_path / "entries.json").read_text(encoding="utf-8"))
    assert sorted(map(int, state["entries"])) == expected
    assert len(feed_entries(tmp_path)) == 40
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert all(f'href="posts/{n}.html"' in index for n in expected)
    assert sorted(int(p.stem) for p in (tmp_path / "posts").glob("*.html")) == expected
    assert leftover_temp_files(tmp_path) == []


def test_a_failed_replace_keeps_the_previous_feed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed replace of feed.xml keeps the old feed, leaves no temp file, commits nothing."""
    adapter = make_adapter(tmp_path)
    asyncio.run(adapter.publish(make_request(1)))
    previous = (tmp_path / "feed.xml").read_bytes()
    real_replace = os.replace

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).name == "feed.xml":
            raise OSError(errno.EIO, "simulated crash")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(Transient, match="simulated crash"):
        asyncio.run(adapter.publish(make_request(2)))

    assert (tmp_path / "feed.xml").read_bytes() == previous
    assert leftover_temp_files(tmp_path) == []
    assert asyncio.run(adapter.find_existing(make_request(2))) is None

    monkeypatch.setattr(os, "replace", real_replace)
    asyncio.run(adapter.publish(make_request(2)))
    assert len(feed_entries(tmp_path)) == 2


def test_temp_files_of_a_killed_writer_are_swept(tmp_path: Path) -> None:
    """A temp file left by a process killed mid-write disappears with the next change."""
    adapter = make_adapter(tmp_path)
    asyncio.run(adapter.publish(make_request(1)))
    orphan = tmp_path / ".feed.xml.0123456789ab.tmp"
    orphan.write_text("half a feed")
    asyncio.run(adapter.publish(make_request(2)))
    assert not orphan.exists()


def test_a_corrupt_state_file_pauses_the_account(tmp_path: Path) -> None:
    """An unreadable entries.json is an account problem (AuthError), and nothing is overwritten."""
    (tmp_path / "entries.json").write_text("{not json", encoding="utf-8")
    adapter = make_adapter(tmp_path)
    with pytest.raises(AuthError, match=r"entries\.json"):
        asyncio.run(adapter.publish(make_request(1)))
    assert (tmp_path / "entries.json").read_text(encoding="utf-8") == "{not json"
    with pytest.raises(AuthError):
        asyncio.run(adapter.verify())


@without_file_powers
def test_an_unwritable_folder_pauses_the_account(tmp_path: Path) -> None:
    """A folder the daemon may not write is reported as an account problem by publish and verify."""
    tmp_path.chmod(0o555)
    try:
        adapter = make_adapter(tmp_path / "site")
        with pytest.raises(AuthError, match="write access"):
            asyncio.run(adapter.verify())
        with pytest.raises(AuthError):
            asyncio.run(adapter.publish(make_request(1)))
    finally:
        tmp_path.chmod(0o755)


def test_verify_creates_the_folder(tmp_path: Path) -> None:
    """verify() makes a missing folder and reports the feed's URL and size."""
    folder = tmp_path / "neu" / "site"
    info = asyncio.run(make_adapter(folder).verify())
    assert folder.is_dir()
    assert info.url == f"{PUBLIC_URL}/feed.xml"
    assert info.detail == "0 posts in the archive"
    assert leftover_temp_files(folder) == []
    assert not (folder / ".crosspost-probe").exists()


def test_a_post_without_title_is_titled_by_its_first_line(tmp_path: Path) -> None:
    """``enqueue --text`` posts have no title; the first line of the text stands in."""
    adapter = make_adapter(tmp_path)
    asyncio.run(adapter.publish(make_request(15, title="", text="Heute geschlossen.\n\nMehr")))
    (entry,) = feed_entries(tmp_path)
    assert entry.findtext(f"{ATOM}title") == "Heute geschlossen."
