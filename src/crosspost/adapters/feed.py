"""The website's own copy of every post: an Atom feed and an HTML archive on disk.

The folder (``accounts.<name>.path``) is served as part of the website::

    entries.json                the state: one entry per post id (written last)
    feed.xml                    Atom 1.0, the newest FEED_SIZE entries
    index.html                  the archive, every entry, newest first
    posts/<post_id>.html        one page per post, linking to the canonical page
    media/<post_id>-<n><ext>    copies of the post's images
    .crosspost.lock             held with flock while the folder is changed

Every file is written atomically (a temporary file in the same folder, fsync,
``os.replace``, fsync of the folder), and every change happens under an
exclusive ``flock`` on the lock file, so asyncio tasks (each in its own worker
thread) and other processes never lose each other's entries. ``entries.json``
is written last: it is the commit point. A failure before it leaves the old
state, which the next change renders again in full, and :meth:`find_existing`
sees a post only once all of its files are in place. Temporary files left by a
killed process are swept away under the lock.

Publishing a post id again replaces its entry, so a resend never makes a second
copy. The feed's "credential" is write access to its folder: a folder that
cannot be written, or an unreadable ``entries.json``, raises
:class:`~crosspost.exceptions.AuthError` (the account pauses with the reason
until ``verify`` succeeds); other disk failures are
:class:`~crosspost.exceptions.Transient`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import html
import json
import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypedDict, TypeVar, cast
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from crosspost.adapters._files import replace_file
from crosspost.adapters.base import Adapter
from crosspost.clock import Clock, system_clock
from crosspost.config import FeedAccount
from crosspost.exceptions import AuthError, Rejected, Transient
from crosspost.i18n import _, ngettext
from crosspost.media import media_file_name
from crosspost.models import AccountInfo, Media, PublishRequest, PublishResult

#: how many of the newest entries feed.xml carries (the HTML archive keeps all)
FEED_SIZE = 50
STATE_FILE = "entries.json"
LOCK_FILE = ".crosspost.lock"
STATE_VERSION = 1
ATOM_NS = "http://www.w3.org/2005/Atom"

_T = TypeVar("_T")
#: errors that mean "this folder is not ours to write": pause the account
_UNUSABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
#: characters XML 1.0 forbids even when escaped
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")
_URL = re.compile(r"https?://[^\s<>\"']+")
_POST_ID = re.compile(r"^[0-9]+$")
_STYLE = (
    "body{max-width:42rem;margin:0 auto;padding:1rem;font-family:sans-serif;line-height:1.5}"
    "img{max-width:100%;height:auto}"
)


class _MediaEntry(TypedDict):
    file: str
    alt: str
    mime: str
    length: int


class _Entry(TypedDict):
    post_id: int
    atom_id: str
    title: str
    text: str
    link: str
    published: str
    updated: str
    delivery_id: int
    idempotency_key: str
    media: list[_MediaEntry]


class _State(TypedDict):
    version: int
    feed_id: str
    entries: dict[str, _Entry]


class FeedAdapter(Adapter):
    platform: ClassVar[str] = "feed"
    idempotent_resend: ClassVar[bool] = True
    can_reconcile: ClassVar[bool] = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = self.config
        if not isinstance(config, FeedAccount):
            raise TypeError(f"FeedAdapter needs a FeedAccount, not {type(config).__name__}")
        self.folder = config.path
        self.public_url = config.public_url.rstrip("/") if config.public_url else None
        self.clock: Clock = system_clock
        self._host = urlsplit(self.settings.site.url).hostname or "localhost"
        self._site_name = self.settings.site.name or self._host

    # -- the port ---------------------------------------------------------------

    async def publish(self, request: PublishRequest) -> PublishResult:
        now = self.clock.now()
        await asyncio.to_thread(self._change, lambda state: self._put(state, request, now))
        return self._result(str(request.post_id))

    async def find_existing(self, request: PublishRequest) -> PublishResult | None:
        key = str(request.post_id)
        state = await asyncio.to_thread(self._change, lambda state: state)
        return self._result(key) if key in state["entries"] else None

    async def delete(self, remote_id: str) -> None:
        if not _POST_ID.match(remote_id):
            raise Rejected(
                _("{remote_id!r} is not a post of the feed in {folder}").format(
                    remote_id=remote_id, folder=self.folder
                ),
                sent=False,
            )
        now = self.clock.now()
        await asyncio.to_thread(self._change, lambda state: self._remove(state, remote_id, now))

    async def verify(self) -> AccountInfo:
        def check(state: _State) -> int:
            _atomic_write(self.folder / ".crosspost-probe", b"")
            (self.folder / ".crosspost-probe").unlink()
            return len(state["entries"])

        count = await asyncio.to_thread(self._change, check)
        return AccountInfo(
            name=self.public_url or str(self.folder),
            url=self._url("feed.xml"),
            detail=ngettext("{n} post in the archive", "{n} posts in the archive", count).format(
                n=count
            ),
        )

    # -- changes, each under the folder lock ------------------------------------

    def _change(self, action: Callable[[_State], _T]) -> _T:
        """Run ``action`` on the current state while holding the folder's lock."""
        with self._disk_errors(), self._lock():
            return action(self._read_state())

    def _put(self, state: _State, request: PublishRequest, now: datetime) -> None:
        key = str(request.post_id)
        old = state["entries"].get(key)
        media = [self._copy_media(request.post_id, n, m) for n, m in enumerate(request.media, 1)]
        entry: _Entry = {
            "post_id": request.post_id,
            "atom_id": old["atom_id"] if old else f"{state['feed_id']}/posts/{key}",
            "title": request.title.strip() or _fallback_title(request.text),
            "text": request.text,
            # a post without its own link carries the site's (SPEC rule 1)
            "link": request.link or self.settings.site.url,
            "published": old["published"] if old else _iso(now),
            "updated": _iso(now),
            "delivery_id": request.delivery_id,
            "idempotency_key": request.idempotency_key,
            "media": media,
        }
        state["entries"][key] = entry
        self._write(Path("posts") / f"{key}.html", self._render_page(entry))
        self._write_listings(state, now)
        self._write_state(state)
        kept = {m["file"] for m in media}
        for stale in old["media"] if old else []:
            if stale["file"] not in kept:
                (self.folder / "media" / stale["file"]).unlink(missing_ok=True)

    def _remove(self, state: _State, key: str, now: datetime) -> None:
        entry = state["entries"].pop(key, None)
        # The page goes first: a retracted post must not stay readable, and a
        # failure from here on leaves the entry in place for the next retract.
        (self.folder / "posts" / f"{key}.html").unlink(missing_ok=True)
        for media in entry["media"] if entry else []:
            (self.folder / "media" / media["file"]).unlink(missing_ok=True)
        if entry is not None:
            self._write_listings(state, now)
            self._write_state(state)

    def _copy_media(self, post_id: int, number: int, media: Media) -> _MediaEntry:
        try:
            data = media.path.read_bytes()
        except OSError as exc:
            raise Rejected(
                _("image {path} cannot be read: {reason}").format(
                    path=media.path, reason=exc.strerror or type(exc).__name__
                ),
                sent=False,
            ) from exc
        # One naming rule with media.public_media_urls: Instagram and Threads fetch these.
        name = media_file_name(post_id, number, media)
        self._write(Path("media") / name, data)
        return {"file": name, "alt": media.alt, "mime": media.mime, "length": len(data)}

    # -- the disk ---------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            # flock locks belong to the open file description, so two threads of
            # one process exclude each other just as two processes do.
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._sweep_temp_files()
            yield
        finally:
            os.close(fd)

    def _sweep_temp_files(self) -> None:
        """Remove what a killed writer left behind; no writer is active under the lock."""
        for folder in (self.folder, self.folder / "posts", self.folder / "media"):
            with contextlib.suppress(FileNotFoundError), os.scandir(folder) as found:
                for item in found:
                    if _TEMP_NAME.match(item.name):
                        Path(item.path).unlink(missing_ok=True)

    @contextlib.contextmanager
    def _disk_errors(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            where = exc.filename or self.folder
            reason = exc.strerror or str(exc) or type(exc).__name__
            if exc.errno in _UNUSABLE:
                raise AuthError(
                    _(
                        "feed folder {folder}: cannot write {path}: {reason}; "
                        "give the daemon's user write access"
                    ).format(folder=self.folder, path=where, reason=reason),
                    sent=False,
                ) from exc
            raise Transient(
                _("feed folder {folder}: {path}: {reason}").format(
                    folder=self.folder, path=where, reason=reason
                )
            ) from exc

    def _read_state(self) -> _State:
        path = self.folder / STATE_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            day = self.clock.now().strftime("%Y-%m-%d")
            feed_id = f"tag:{self._host},{day}:crosspost/{quote(self.name, safe='')}"
            return {"version": STATE_VERSION, "feed_id": feed_id, "entries": {}}
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self._corrupt(path, str(exc)) from exc
        if (
            not isinstance(data, dict)
            or data.get("version") != STATE_VERSION
            or not isinstance(data.get("feed_id"), str)
            or not isinstance(data.get("entries"), dict)
        ):
            raise self._corrupt(path, _("unexpected structure"))
        return cast(_State, data)

    def _corrupt(self, path: Path, reason: str) -> AuthError:
        return AuthError(
            _("{path} cannot be read ({reason}); restore it from a backup").format(
                path=path, reason=reason
            ),
            sent=False,
        )

    def _write_state(self, state: _State) -> None:
        text = json.dumps(state, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
        self._write(Path(STATE_FILE), text)

    def _write_listings(self, state: _State, now: datetime) -> None:
        entries = sorted(
            state["entries"].values(),
            key=lambda e: (e["published"], e["post_id"]),
            reverse=True,
        )
        self._write(Path("index.html"), self._render_index(entries))
        self._write(Path("feed.xml"), self._render_feed(state["feed_id"], entries, now))

    def _write(self, relative: Path, content: str | bytes) -> None:
        data = content.encode("utf-8") if isinstance(content, str) else content
        target = self.folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(target, data)

    # -- rendering --------------------------------------------------------------

    def _url(self, relative: str) -> str | None:
        return f"{self.public_url}/{relative}" if self.public_url else None

    def _result(self, key: str) -> PublishResult:
        page = f"posts/{key}.html"
        url = self._url(page) or (self.folder / page).absolute().as_uri()
        return PublishResult(remote_id=key, remote_url=url)

    def _render_feed(self, feed_id: str, entries: list[_Entry], now: datetime) -> str:
        site = _x(self._site_name)
        lines = [
            '<?xml version="1.0" encoding="utf-8"?>',
            f'<feed xmlns="{ATOM_NS}" xml:lang="de">',
            f"  <id>{_x(feed_id)}</id>",
            f"  <title>{site}</title>",
            f"  <updated>{_iso(now)}</updated>",
            f'  <link rel="alternate" type="text/html" href={_qa(self.settings.site.url)}/>',
        ]
        self_url = self._url("feed.xml")
        if self_url:
            lines.append(f'  <link rel="self" type="application/atom+xml" href={_qa(self_url)}/>')
        lines += [
            f"  <author><name>{site}</name><uri>{_x(self.settings.site.url)}</uri></author>",
            "  <generator>crosspost</generator>",
        ]
        for entry in entries[:FEED_SIZE]:
            lines += [
                "  <entry>",
                f"    <id>{_x(entry['atom_id'])}</id>",
                f"    <title>{_x(entry['title'])}</title>",
                f"    <published>{entry['published']}</published>",
                f"    <updated>{entry['updated']}</updated>",
                f'    <link rel="alternate" type="text/html" href={_qa(entry["link"])}/>',
            ]
            for media in entry["media"]:
                href = self._url(f"media/{quote(media['file'])}") or f"media/{quote(media['file'])}"
                lines.append(
                    f'    <link rel="enclosure" type={_qa(media["mime"])} href={_qa(href)}'
                    f' length="{media["length"]}" title={_qa(media["alt"])}/>'
                )
            lines += [f'    <content type="text">{_x(entry["text"])}</content>', "  </entry>"]
        lines.append("</feed>")
        return "\n".join(lines) + "\n"

    def _render_page(self, entry: _Entry) -> str:
        body = [
            f'<header><p><a href="../index.html">{_h(self._site_name)}</a></p></header>',
            "<main>",
            "<article>",
            f"<h1>{_h(entry['title'])}</h1>",
            f"<p>{self._time(entry['published'])}</p>",
            *_paragraphs(entry["text"]),
        ]
        for media in entry["media"]:
            body.append(
                f'<figure><img src="../media/{_h(quote(media["file"]))}" '
                f'alt="{_h(media["alt"])}"></figure>'
            )
        body += [
            f"<p><strong>{_anchor(entry['link'], _('Read on the website'))}</strong></p>",
            "</article>",
            "</main>",
        ]
        head = [
            f'<link rel="canonical" href="{_h(entry["link"])}">',
            f'<link rel="alternate" type="application/atom+xml" href="../feed.xml" '
            f'title="{_h(self._site_name)}">',
        ]
        return _document(f"{entry['title']} – {self._site_name}", head, body)

    def _render_index(self, entries: list[_Entry]) -> str:
        title = _("Posts")
        body = [
            f'<header><p><a href="{_h(self.settings.site.url)}">{_h(self._site_name)}</a>'
            "</p></header>",
            "<main>",
            f"<h1>{_h(title)}</h1>",
            f'<p><a href="feed.xml">{_h(_("Subscribe to the Atom feed"))}</a></p>',
        ]
        if not entries:
            body.append(f"<p>{_h(_('No posts yet.'))}</p>")
        else:
            body.append("<ul>")
            for entry in entries:
                page = f"posts/{entry['post_id']}.html"
                body.append(
                    f'<li><article><h2><a href="{page}">{_h(entry["title"])}</a></h2>'
                    f"<p>{self._time(entry['published'])}</p></article></li>"
                )
            body.append("</ul>")
        body.append("</main>")
        head = [
            f'<link rel="alternate" type="application/atom+xml" href="feed.xml" '
            f'title="{_h(self._site_name)}">'
        ]
        return _document(f"{title} – {self._site_name}", head, body)

    def _time(self, iso: str) -> str:
        local = datetime.fromisoformat(iso).astimezone(self.settings.site.zone)
        return f'<time datetime="{iso}">{local:%Y-%m-%d %H:%M}</time>'


ADAPTER = FeedAdapter


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never a mix."""
    # 0o666 lets the umask decide, as for any file the service creates: the web
    # server must be able to read what the daemon writes.
    replace_file(path, data, mode=0o666)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fallback_title(text: str) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= 80 else first[:79].rstrip() + "…"


def _x(text: str) -> str:
    return xml_escape(_XML_INVALID.sub("", text))


def _qa(text: str) -> str:
    return quoteattr(_XML_INVALID.sub("", text))


def _h(text: str) -> str:
    return html.escape(_XML_INVALID.sub("", text), quote=True)


def _anchor(url: str, label: str) -> str:
    if urlsplit(url).scheme not in ("http", "https"):
        return _h(label)
    return f'<a href="{_h(url)}">{_h(label)}</a>'


def _linkify(text: str) -> str:
    """Escape ``text`` and turn its http(s) URLs into links."""
    out: list[str] = []
    pos = 0
    for match in _URL.finditer(text):
        url = _trim_url(match.group())
        out.append(_h(text[pos : match.start()]))
        out.append(f'<a href="{_h(url)}">{_h(url)}</a>')
        pos = match.start() + len(url)
    out.append(_h(text[pos:]))
    return "".join(out)


def _trim_url(url: str) -> str:
    """Drop sentence punctuation after a URL, keeping a balanced closing bracket."""
    while url and url[-1] in ".,;:!?)":
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def _paragraphs(text: str) -> list[str]:
    blocks = [b.strip("\n") for b in re.split(r"\n[ \t]*\n", text.strip())]
    return [f"<p>{_linkify(b).replace(chr(10), '<br>' + chr(10))}</p>" for b in blocks if b]


def _document(title: str, head: list[str], body: list[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="de">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_h(title)}</title>",
            *head,
            f"<style>{_STYLE}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )
