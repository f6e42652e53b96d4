"""What the platforms that fetch images need: public media URLs and their own post rules.

Instagram and Threads do not take an upload: Meta fetches every image from a
public URL. The website already publishes a copy of each image through the
enabled ``feed`` account that has a ``public_url`` (see
:mod:`crosspost.adapters.feed`)::

    <path>/media/<post_id>-<n><ext>   served as   <public_url>/media/<post_id>-<n><ext>

with ``n`` counting the post's images from 1 and ``ext`` the image file's own
(lower-case) suffix, else the one its MIME type suggests. The publisher hands
:func:`public_media_urls` to the adapter as ``PublishRequest.media_urls`` once
:func:`media_published` says the feed delivery has written the files, and
holds the delivery back until then.

Without such a feed, ``[media] path`` and ``public_base_url`` name a folder the web
server serves: the daemon copies the images there itself (:func:`copy_public_media`,
same file names) just before Instagram or Threads needs them, and ``crosspost
retract`` removes them again (:func:`remove_public_media`).

The post rules here are the ones enqueue must check before a post is stored
(nothing is refused at publish time that could have been refused earlier):
:func:`requires_media` and :func:`check_instagram_caption`, :func:`check_threads_links`.

Pure functions apart from the file checks in :func:`media_published` and the
copies of :func:`copy_public_media`; no network, no database.
"""

from __future__ import annotations

from functools import cache

from crosspost.i18n import _

TYPE_CHECKING = False  # importing typing costs; mypy knows the name
if TYPE_CHECKING:
    # not at run time: enqueue --dry-run checks from a snapshot of the settings (dryrun.py)
    import re
    from collections.abc import Sequence
    from pathlib import Path

    from crosspost.config import FeedAccount, Settings
    from crosspost.records import Media

#: platforms that publish no post without an image
MEDIA_REQUIRED = frozenset({"instagram"})
#: platforms that fetch images from a public URL instead of taking an upload
FETCHES_PUBLIC_MEDIA = frozenset({"instagram", "threads"})

INSTAGRAM_CAPTION_LIMIT = 2200
INSTAGRAM_MAX_HASHTAGS = 30
THREADS_MAX_LINKS = 5

_TRAILING = ".,;:!?)]}'\""


@cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(hashtag, URL), compiled on first use: only Instagram and Threads need them."""
    import re

    # A hashtag as Instagram links it: "#" after a space, punctuation or the start, then
    # letters, digits or "_" of any script. "#" inside a word or a URL starts none.
    hashtag = re.compile(r"(?<![\w#&/])#(\w+)")
    # URLs as Threads and Instagram find them: with a scheme, or a bare www. host.
    url = re.compile(r"(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
    return hashtag, url


def requires_media(platform: str) -> bool:
    """Whether ``platform`` publishes no text-only posts (Instagram needs an image)."""
    return platform in MEDIA_REQUIRED


def fetches_public_media(platform: str) -> bool:
    """Whether ``platform`` fetches images from a public URL (Instagram, Threads)."""
    return platform in FETCHES_PUBLIC_MEDIA


def media_file_name(post_id: int, number: int, media: Media) -> str:
    """The file name the feed gives image ``number`` (1-based) of post ``post_id``."""
    import re

    suffix = re.sub(r"[^a-z0-9.]", "", media.path.suffix.lower())[:10]
    if not suffix:
        import mimetypes

        suffix = mimetypes.guess_extension(media.mime) or ""
    return f"{post_id}-{number}{suffix}"


def website_feed(settings: Settings) -> tuple[str, FeedAccount] | None:
    """The first enabled feed account with a ``public_url``: where the website serves images."""
    for name, account in settings.accounts.items():
        # The platform tag decides the account's class (pydantic's discriminator).
        if account.platform == "feed" and account.enabled and account.public_url:
            return name, account
    return None


def media_site(settings: Settings) -> tuple[Path, str, bool] | None:
    """Where the website serves a post's images: (folder, its public URL, whether the
    daemon copies the files there itself), or None where nothing publishes them.

    The website's feed (``<path>/media`` at ``<public_url>/media``, written by the feed
    delivery) comes first; else ``[media] path`` at ``public_base_url``, which the
    daemon fills itself (:func:`copy_public_media`).
    """
    found = website_feed(settings)
    if found is not None:
        _name, feed = found
        assert feed.public_url is not None
        return feed.path / "media", feed.public_url.rstrip("/") + "/media", False
    config = getattr(settings, "media", None)
    if config is not None and config.path is not None and config.public_base_url:
        return config.path, config.public_base_url.rstrip("/"), True
    return None


def public_media_urls(settings: Settings, post_id: int, media: Sequence[Media]) -> tuple[str, ...]:
    """The public URLs of a post's images on the website, in order; () without a site."""
    from urllib.parse import quote

    site = media_site(settings)
    if site is None or not media:
        return ()
    _folder, base, _copies = site
    return tuple(f"{base}/{quote(media_file_name(post_id, n, m))}" for n, m in enumerate(media, 1))


def media_published(settings: Settings, post_id: int, media: Sequence[Media]) -> bool:
    """Whether the website's media folder holds every image of the post (True without images)."""
    if not media:
        return True
    site = media_site(settings)
    if site is None:
        return False
    folder, _base, _copies = site
    return all((folder / media_file_name(post_id, n, m)).is_file() for n, m in enumerate(media, 1))


def copy_public_media(settings: Settings, post_id: int, media: Sequence[Media]) -> None:
    """Copy the post's images missing from ``[media] path`` there (each atomically, 0644),
    where that folder — not a feed — is the website's; nothing otherwise.

    Raises OSError when an image cannot be read or written (the caller waits and retries).
    """
    import os

    from crosspost.adapters._files import replace_file

    site = media_site(settings)
    if site is None or not site[2]:
        return
    folder = site[0]
    for number, item in enumerate(media, 1):
        target = folder / media_file_name(post_id, number, item)
        if target.is_file():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        replace_file(target, item.path.read_bytes(), mode=0o644)
        os.chmod(target, 0o644)  # the web server reads it, whatever the service's umask


def remove_public_media(settings: Settings, post_id: int, media: Sequence[Media]) -> None:
    """Remove the post's images that :func:`copy_public_media` put into ``[media] path``
    (a retracted post's images leave the website; the feed removes its own)."""
    site = media_site(settings)
    if site is None or not site[2]:
        return
    for number, item in enumerate(media, 1):
        (site[0] / media_file_name(post_id, number, item)).unlink(missing_ok=True)


def hashtags(text: str) -> list[str]:
    """The hashtags Instagram would link in ``text`` (URL fragments are not hashtags)."""
    hashtag, url = _patterns()
    return hashtag.findall(url.sub(" ", text))


def links(text: str) -> list[str]:
    """The distinct URLs in ``text``, in order of appearance (sentence punctuation trimmed)."""
    found: dict[str, None] = {}
    for match in _patterns()[1].finditer(text):
        found[match.group().rstrip(_TRAILING)] = None
    return list(found)


def check_instagram_caption(text: str) -> str | None:
    """Why Instagram refuses ``text`` as a caption (None: it fits).

    Instagram allows 2 200 characters (counted here as UTF-16 code units, as its
    composer does) and at most 30 hashtags; a caption breaking either is refused
    when the container is created.
    """
    length = len(text.encode("utf-16-le")) // 2
    if length > INSTAGRAM_CAPTION_LIMIT:
        return _(
            "Instagram captions hold at most {limit} characters; this one has {length}"
        ).format(limit=INSTAGRAM_CAPTION_LIMIT, length=length)
    count = len(hashtags(text))
    if count > INSTAGRAM_MAX_HASHTAGS:
        return _(
            "Instagram allows at most {limit} hashtags in a caption; this one has {count}"
        ).format(limit=INSTAGRAM_MAX_HASHTAGS, count=count)
    return None


def check_threads_links(text: str, link: str | None = None) -> str | None:
    """Why Threads refuses a post for its links (None: it fits).

    Threads counts every distinct URL in the text, plus the link attachment when
    it is not one of them, and refuses more than 5.
    """
    found = links(text)
    if link and link not in found:
        found.append(link)
    if len(found) > THREADS_MAX_LINKS:
        return _("Threads allows at most {limit} links in a post; this one has {count}").format(
            limit=THREADS_MAX_LINKS, count=len(found)
        )
    return None


__all__ = [
    "FETCHES_PUBLIC_MEDIA",
    "MEDIA_REQUIRED",
    "check_instagram_caption",
    "check_threads_links",
    "copy_public_media",
    "fetches_public_media",
    "hashtags",
    "links",
    "media_file_name",
    "media_published",
    "media_site",
    "public_media_urls",
    "remove_public_media",
    "requires_media",
    "website_feed",
]
