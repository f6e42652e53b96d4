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

The post rules here are the ones enqueue must check before a post is stored
(nothing is refused at publish time that could have been refused earlier):
:func:`requires_media` and :func:`check_instagram_caption`, :func:`check_threads_links`.

Pure functions apart from the file checks in :func:`media_published`; no
network, no database.
"""

from __future__ import annotations

from functools import cache

from crosspost.i18n import _

TYPE_CHECKING = False  # importing typing costs; mypy knows the name
if TYPE_CHECKING:
    # not at run time: enqueue --dry-run checks from a snapshot of the settings (dryrun.py)
    import re
    from collections.abc import Sequence

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


def public_media_urls(settings: Settings, post_id: int, media: Sequence[Media]) -> tuple[str, ...]:
    """The public URLs of a post's images on the website, in order; () without a feed."""
    from urllib.parse import quote

    found = website_feed(settings)
    if found is None or not media:
        return ()
    _name, feed = found
    assert feed.public_url is not None
    base = feed.public_url.rstrip("/")
    return tuple(
        f"{base}/media/{quote(media_file_name(post_id, n, m))}" for n, m in enumerate(media, 1)
    )


def media_published(settings: Settings, post_id: int, media: Sequence[Media]) -> bool:
    """Whether the website's feed folder holds every image of the post (True without images)."""
    if not media:
        return True
    found = website_feed(settings)
    if found is None:
        return False
    _name, feed = found
    folder = feed.path / "media"
    return all((folder / media_file_name(post_id, n, m)).is_file() for n, m in enumerate(media, 1))


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
    "fetches_public_media",
    "hashtags",
    "links",
    "media_file_name",
    "media_published",
    "public_media_urls",
    "requires_media",
    "website_feed",
]
