"""What each account receives: the post's text (or its variant) plus the canonical link.

The rules come from the association's social-media policy (SPEC.md):

1. every post carries the canonical link — the page on the body's own website
   where the same information stands. ``link`` defaults to ``site.url``; its
   host must be ``site.url``'s or one of ``site.link_hosts``. It is appended
   after a blank line unless the text already contains it; it is never cut,
   shortened or tagged.
2. nothing is truncated: text + link over an account's limit is refused here,
   at enqueue, naming the account, the counted length and the limit.

Pure functions: no database, no network.
"""

from __future__ import annotations

import re

from crosspost.counting import DEFAULT_LIMITS, measure
from crosspost.exceptions import PostRejected
from crosspost.i18n import _
from crosspost.media import (
    check_instagram_caption,
    check_threads_links,
    fetches_public_media,
    media_site,
)
from crosspost.records import Post, Rendered

TYPE_CHECKING = False  # importing typing costs; mypy knows the name
if TYPE_CHECKING:
    # not at run time: enqueue --dry-run renders from a snapshot of the settings (dryrun.py)
    from collections.abc import Mapping, Sequence

    from crosspost.config import Settings

#: Telegram has no alt-text field: the caption describes each image on a line
#: "Bild: …". Deliberately not translated: enqueue and the daemon must build
#: captions of the same length whatever their language.
ALT_LABEL = "Bild"


def telegram_caption(text: str, alts: Sequence[str], link: str = "") -> str:
    """The caption Telegram shows under the image(s): ``text`` plus the alt texts.

    One line ``Bild: <alt>`` (``Bild 1: …``, ``Bild 2: …`` for several) per image,
    whitespace in an alt text folded to single spaces. When ``text`` ends with
    ``link`` on a line of its own (as compose appends it), the lines go before the
    link, so the link stays last; otherwise they follow the text. Without alts the
    text is returned unchanged. Enqueue must measure this result against the
    1024-unit caption limit, so that what fits at enqueue fits when sent.
    """
    labels = [" ".join(alt.split()) for alt in alts]
    if not labels:
        return text
    if len(labels) == 1:
        block = f"{ALT_LABEL}: {labels[0]}"
    else:
        block = "\n".join(f"{ALT_LABEL} {n}: {alt}" for n, alt in enumerate(labels, 1))
    body = text.strip()
    if link and body.endswith(link):
        head = body[: -len(link)]
        if not head or head.endswith("\n"):
            head = head.rstrip()
            return f"{head}\n\n{block}\n\n{link}" if head else f"{block}\n\n{link}"
    return f"{body}\n\n{block}"


def _ascii_host(host: str) -> str:
    if host.isascii():
        # what the idna codec gives for ASCII (or, for an empty or over-long label, the
        # fallback below), without importing it
        return host.lower()
    try:
        return host.lower().encode("idna").decode("ascii")
    except UnicodeError:
        return host.lower()


def _written_canonically(host: str) -> bool:
    """Whether ``host`` is spelt as its own ASCII or Unicode form.

    The idna codec maps look-alikes onto other letters (fullwidth "ｗｗｗ", the long
    "ſ", "ß" as "ss"): such a spelling would pass as the website's host although
    platforms do not link it, and newer IDNA rules make some of them other domains.
    """
    ascii_form = _ascii_host(host)
    if host.isascii():
        return True  # its ASCII form is itself, lower-cased
    try:
        unicode_form = ascii_form.encode("ascii").decode("idna")
    except UnicodeError:
        unicode_form = ascii_form
    return host.lower() in (ascii_form, unicode_form)


_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")


def url_parts(url: str) -> tuple[str, str | None, bool]:
    """(scheme, hostname, whether a user name or password is given): what
    :func:`urllib.parse.urlsplit` reads from ``url``.

    A plain address -- printable ASCII without spaces, and no ``@``, ``[``, ``]`` or
    ``%`` before its path -- is read here the way ``urlsplit`` reads it (the unit tests
    compare the two); any other goes to ``urlsplit`` itself. ``urllib.parse`` imports
    ``ipaddress``, and the two cost ``enqueue --dry-run`` a tenth of its time.
    """
    if url.isascii() and url.isprintable() and " " not in url:
        scheme, rest = "", url
        colon = url.find(":")
        if colon > 0 and url[0].isalpha() and all(c in _SCHEME_CHARS for c in url[:colon]):
            scheme, rest = url[:colon].lower(), url[colon + 1 :]
        netloc = ""
        if rest[:2] == "//":
            end = len(rest)
            for delimiter in "/?#":
                found = rest.find(delimiter, 2)
                if found >= 0:
                    end = min(end, found)
            netloc = rest[2:end]
        if not any(c in netloc for c in "@[]%"):
            hostname = netloc.partition(":")[0]
            return scheme, hostname.lower() or None, False
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.username is not None or parts.password is not None


def _invisible(ch: str) -> bool:
    """A space or an invisible character (Unicode categories Cc and Cf)."""
    if ch.isascii():
        return ch.isspace() or not ch.isprintable()  # ASCII has no Cf; Cc is the unprintable
    import unicodedata

    return ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf")


def canonical_link(link: str, settings: Settings, *, where: str) -> str:
    """The post's canonical link, checked against the allowed hosts."""
    value = link or settings.site.url
    if value != value.strip() or any(_invisible(ch) for ch in value):
        raise PostRejected(
            _("{where}: link: must not contain spaces or invisible characters").format(where=where)
        )
    scheme, hostname, has_user = url_parts(value)
    site_scheme = url_parts(settings.site.url)[0]
    allowed_schemes = {"https"} if site_scheme == "https" else {"https", "http"}
    if scheme.lower() not in allowed_schemes or not hostname:
        raise PostRejected(
            _(
                "{where}: link: {link!r} is not a web address on the website; "
                "use an https:// link to the page on {site}"
            ).format(where=where, link=value, site=settings.site.url)
        )
    if has_user:
        raise PostRejected(
            _("{where}: link: must not contain a user name or password").format(where=where)
        )
    allowed = {_ascii_host(h) for h in settings.site.allowed_hosts}
    if _ascii_host(hostname) not in allowed or not _written_canonically(hostname):
        raise PostRejected(
            _(
                "{where}: link: {host} is not the association's website; allowed hosts: "
                "{allowed} (add more with site.link_hosts)"
            ).format(where=where, host=hostname, allowed=", ".join(sorted(allowed)))
        )
    return value


def contains_link(text: str, link: str) -> bool:
    """Whether ``link`` stands in ``text`` as a whole address (not as a prefix of another)."""
    # Not inside another URL ("?url=<link>"), and not continued by URL characters; sentence
    # punctuation may follow, but punctuation that leads on into more of a URL (".html",
    # ":8443/") makes it a different address.
    pattern = (
        r"(?<![\w/.:=?&%#~+@-])"
        + re.escape(link)
        + r"(?![\w/%#?&=~+-]|[.,:;!*'()\[\]@$|]+[\w/%#?&=~+-])"
    )
    return re.search(pattern, text) is not None


def with_link(text: str, link: str) -> str:
    text = text.strip()
    if contains_link(text, link):
        return text
    return f"{text}\n\n{link}"


def target_accounts(post: Post, settings: Settings, *, where: str) -> list[str]:
    """The accounts a post goes to: explicit list, else routing for its category, else all."""
    categories = settings.site.categories
    if post.category is not None and post.category not in categories:
        raise PostRejected(
            _("{where}: category: {category!r} is not a category; use one of: {known}").format(
                where=where, category=post.category, known=", ".join(categories)
            )
        )
    if post.accounts:
        names = list(dict.fromkeys(post.accounts))
    elif post.category is not None and post.category in settings.routing:
        # Routing is the admin's: an account disabled there is simply skipped.
        names = [
            n
            for n in settings.routing[post.category]
            if n not in settings.accounts or settings.accounts[n].enabled
        ]
    else:
        names = list(settings.enabled_accounts())
    for name in names:
        account = settings.accounts.get(name)
        if account is None:
            raise PostRejected(
                _("{where}: accounts: {name!r} is not a configured account; known: {known}").format(
                    where=where, name=name, known=", ".join(sorted(settings.accounts))
                )
            )
        if not account.enabled:
            raise PostRejected(
                _("{where}: accounts: {name!r} is disabled (enabled = false in the config)").format(
                    where=where, name=name
                )
            )
    names = [n for n in names if settings.accounts[n].enabled]
    if not names:
        raise PostRejected(
            _(
                "{where}: no account to publish to; enable an account or name one with accounts"
            ).format(where=where)
        )
    return names


#: per platform: the largest image file (bytes) and the longest alt text (characters)
#: the platform accepts; what exceeds them is refused at enqueue, not at publish time
MEDIA_RULES: dict[str, tuple[int, int | None]] = {
    "mastodon": (16 * 1024 * 1024, 1500),
    "bluesky": (1_000_000, 2000),
    "x": (5 * 1024 * 1024, 1000),
    "telegram": (10 * 1024 * 1024, None),
    "facebook": (10 * 1024 * 1024, None),
    "instagram": (8 * 1024 * 1024, None),
    "threads": (8 * 1024 * 1024, None),
    "linkedin": (20 * 1024 * 1024, 4086),
}
#: platforms that publish nothing without an image
NEEDS_IMAGE = frozenset({"instagram"})


def check_media(post: Post, name: str, platform: str, *, where: str, settings: Settings) -> None:
    """Refuse images a platform would refuse (size, alt length) or a missing one."""
    if post.media and fetches_public_media(platform) and media_site(settings) is None:
        raise PostRejected(
            _(
                "{where}: account {account} ({platform}) fetches images from the website: "
                "enable a feed account with public_url (or set [media] path and "
                "public_base_url), or leave the account out"
            ).format(where=where, account=name, platform=platform)
        )
    if platform in NEEDS_IMAGE and not post.media:
        raise PostRejected(
            _(
                "{where}: account {account} ({platform}) publishes only posts with an image; "
                "add [[media]] with path and alt, or leave the account out (accounts = [...])"
            ).format(where=where, account=name, platform=platform)
        )
    max_bytes, max_alt = MEDIA_RULES.get(platform, (None, None))
    for index, media in enumerate(post.media):
        if max_alt is not None and len(media.alt) > max_alt:
            raise PostRejected(
                _(
                    "{where}: media[{index}].alt: {length} characters; {platform} accepts at "
                    "most {limit} (account {account}); shorten the alt text"
                ).format(
                    where=where,
                    index=index,
                    length=len(media.alt),
                    platform=platform,
                    limit=max_alt,
                    account=name,
                )
            )
        if max_bytes is not None:
            try:
                size = media.path.stat().st_size
            except OSError:
                continue  # postfile already checked the file; it is read again at publish
            if size > max_bytes:
                raise PostRejected(
                    _(
                        "{where}: media[{index}]: the image has {size} bytes; {platform} "
                        "accepts at most {limit} (account {account}); make it smaller"
                    ).format(
                        where=where,
                        index=index,
                        size=size,
                        platform=platform,
                        limit=max_bytes,
                        account=name,
                    )
                )


def account_limit(name: str, settings: Settings, learned: Mapping[str, int]) -> int:
    account = settings.accounts[name]
    # The platform tag decides the account's class (pydantic's discriminator).
    if account.platform == "mastodon" and account.max_characters:
        return account.max_characters
    if name in learned:
        return learned[name]
    return DEFAULT_LIMITS[account.platform]


def variant_for(post: Post, name: str, platform: str) -> str:
    return post.variants.get(name) or post.variants.get(platform) or post.body


def render(
    post: Post,
    settings: Settings,
    *,
    learned_limits: Mapping[str, int] | None = None,
    where: str | None = None,
    check: bool = True,
) -> list[Rendered]:
    """The exact text each target account receives, checked against its limit."""
    where = where or post.source or "--text"
    # not ``or``: a store's limits may be read only when an account needs one (dryrun.py)
    learned = {} if learned_limits is None else learned_limits
    link = canonical_link(post.link, settings, where=where)
    targets = target_accounts(post, settings, where=where)
    for target in post.variants:
        if target not in settings.accounts and target not in {
            a.platform for a in settings.accounts.values()
        }:
            raise PostRejected(
                _(
                    "{where}: variants.{target}: neither an account nor a platform in the config"
                ).format(where=where, target=target)
            )
    rendered: list[Rendered] = []
    for name in targets:
        platform = settings.accounts[name].platform
        text = with_link(variant_for(post, name, platform), link)
        limit = account_limit(name, settings, learned)
        check_media(post, name, platform, where=where, settings=settings)
        caption = platform == "telegram" and bool(post.media)
        measured = telegram_caption(text, [m.alt for m in post.media], link) if caption else text
        m = measure(platform, measured, limit=None if caption else limit, caption=caption)
        problem = None
        if platform == "instagram":
            problem = check_instagram_caption(text)
        elif platform == "threads":
            problem = check_threads_links(text, None if post.media else link)
        if check and problem:
            raise PostRejected(
                _("{where}: account {account}: {problem}").format(
                    where=where, account=name, problem=problem
                )
            )
        if check and not m.fits:
            raise PostRejected(
                _(
                    "{where}: too long for account {account} ({platform}): {length} of "
                    "{limit} {unit}, link included; shorten the text or add a variant: "
                    '[variants.{account}] text = "…"'
                ).format(
                    where=where,
                    account=name,
                    platform=platform,
                    length=m.length,
                    limit=m.limit,
                    unit=_(m.unit),
                )
            )
        rendered.append(
            Rendered(
                account=name,
                platform=platform,
                text=text,
                length=m.length,
                limit=m.limit,
                unit=m.unit,
            )
        )
    return rendered
