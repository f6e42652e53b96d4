"""What each account receives: the canonical link rule, target accounts, variants, limits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crosspost.compose import (
    canonical_link,
    contains_link,
    render,
    target_accounts,
    telegram_caption,
    with_link,
)
from crosspost.config import Settings
from crosspost.counting import TELEGRAM_CAPTION_LIMIT
from crosspost.exceptions import PostRejected
from crosspost.models import Media, Post

SettingsFactory = Callable[..., Settings]  # the ``settings`` fixture of conftest.py
SITE_URL = "https://www.zv-staedtedreieck.de"  # the factory's site.url
LINK = f"{SITE_URL}/aktuelles/weihnachtsmarkt"
WHERE = "posts/weihnachtsmarkt.md"


def make_post(body: str = "Der Weihnachtsmarkt öffnet am 1. Dezember.", **fields: Any) -> Post:
    values: dict[str, Any] = {
        "title": "Weihnachtsmarkt",
        "body": body,
        "link": LINK,
        "category": None,
        "publish_at": None,
        "accounts": (),
        "source": WHERE,
    }
    values.update(fields)
    return Post(**values)


def texts_by_account(post: Post, settings: Any, **kwargs: Any) -> dict[str, str]:
    return {r.account: r.text for r in render(post, settings, **kwargs)}


# --- the canonical link -------------------------------------------------------------------


def test_link_defaults_to_site_url(settings: SettingsFactory) -> None:
    """A post without link gets site.url as its canonical link."""
    assert canonical_link("", settings(), where=WHERE) == SITE_URL


@pytest.mark.parametrize(
    "link",
    [
        LINK,
        f"{SITE_URL}/aktuelles/weihnachtsmarkt?jahr=2026#programm",
        f"{SITE_URL}/stellen/Sachbearbeiter%20Abfall",
        "https://WWW.ZV-Staedtedreieck.DE/Aktuelles",
    ],
)
def test_link_on_site_host_is_returned_unaltered(settings: SettingsFactory, link: str) -> None:
    """A link on the site's host (any letter case) passes exactly as written: no change at all."""
    assert canonical_link(link, settings(), where=WHERE) == link


def test_link_on_a_listed_link_host_is_accepted(settings: SettingsFactory) -> None:
    """A host listed in site.link_hosts is as good as the site's own host."""
    link = "https://wertstoffhof.zv-staedtedreieck.de/oeffnungszeiten"
    configured = settings(link_hosts=["wertstoffhof.zv-staedtedreieck.de"])
    assert canonical_link(link, configured, where=WHERE) == link


@pytest.mark.parametrize(
    ("listed", "link"),
    [
        ("städtedreieck.de", "https://xn--stdtedreieck-hcb.de/kleiderladen"),
        ("xn--stdtedreieck-hcb.de", "https://städtedreieck.de/kleiderladen"),
        ("städtedreieck.de", "https://städtedreieck.de/kleiderladen"),
    ],
)
def test_unicode_and_punycode_spellings_of_a_listed_host_match(
    settings: SettingsFactory, listed: str, link: str
) -> None:
    """An umlaut host and its punycode form are the same host, whichever way each is written."""
    assert canonical_link(link, settings(link_hosts=[listed]), where=WHERE) == link


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example/aktuelles",
        "https://www.zv-staedtedreieck.de.evil.example/aktuelles",
        "https://evil-zv-staedtedreieck.de/aktuelles",
        "https://presse.zv-staedtedreieck.de/aktuelles",  # subdomain not listed
        "https://www.zv-städtedreieck.de/aktuelles",  # ä for ae: another domain
        "https://www.zv-staedtedr\u0435ieck.de/aktuelles",  # Cyrillic е
        "https://www.xn--zv-staedtedrieck-kgn.de/aktuelles",  # the same, as punycode
        "https://www.zv-staedtedreiek.de/aktuelles",  # typo-squat
    ],
)
def test_link_to_another_host_is_rejected(settings: SettingsFactory, link: str) -> None:
    """Only the site's host and site.link_hosts pass; look-alikes are compared as punycode."""
    with pytest.raises(PostRejected) as caught:
        canonical_link(link, settings(), where=WHERE)
    message = str(caught.value)
    assert message.startswith(f"{WHERE}: link:")
    assert "www.zv-staedtedreieck.de" in message  # the editor learns what is allowed
    assert "site.link_hosts" in message


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "javascript://www.zv-staedtedreieck.de/%0aalert(1)",
        "ftp://www.zv-staedtedreieck.de/aktuelles",
        "data:text/html,<b>x</b>",
        "mailto:info@zv-staedtedreieck.de",
        "http://www.zv-staedtedreieck.de/aktuelles",  # the site is https
        "//www.zv-staedtedreieck.de/aktuelles",
        "/aktuelles/weihnachtsmarkt",
        "www.zv-staedtedreieck.de/aktuelles",
    ],
)
def test_link_that_is_not_a_web_address_on_the_site_is_rejected(
    settings: SettingsFactory, link: str
) -> None:
    """Non-https schemes and relative or scheme-less links are refused, naming the field."""
    with pytest.raises(PostRejected, match=f"^{WHERE}: link:"):
        canonical_link(link, settings(), where=WHERE)


def test_http_link_is_accepted_when_the_site_itself_is_http(settings: SettingsFactory) -> None:
    """A site still served over http may link to its own http pages."""
    configured = settings(url="http://www.zv-staedtedreieck.de")
    link = "http://www.zv-staedtedreieck.de/aktuelles"
    assert canonical_link(link, configured, where=WHERE) == link


@pytest.mark.parametrize(
    "link",
    [
        "https://redaktion@www.zv-staedtedreieck.de/aktuelles",
        "https://redaktion:geheim@www.zv-staedtedreieck.de/aktuelles",
        "https://:geheim@www.zv-staedtedreieck.de/aktuelles",
    ],
)
def test_link_with_user_info_is_rejected(settings: SettingsFactory, link: str) -> None:
    """A user name or password in the link is refused even on the right host."""
    with pytest.raises(PostRejected, match="user name or password"):
        canonical_link(link, settings(), where=WHERE)


@pytest.mark.parametrize(
    "link",
    [
        f" {LINK}",
        f"{LINK} ",
        f"{SITE_URL}/aktuelles/weihnachts markt",
        f"{SITE_URL}/aktuelles/\tweihnachtsmarkt",
        f"{SITE_URL}/aktuelles\n/weihnachtsmarkt",
        f"{SITE_URL}/aktuelles/\u00a0weihnachtsmarkt",
    ],
)
def test_link_with_whitespace_is_rejected(settings: SettingsFactory, link: str) -> None:
    """Any whitespace in or around the link is refused rather than trimmed or encoded."""
    with pytest.raises(PostRejected, match="spaces"):
        canonical_link(link, settings(), where=WHERE)


# --- appending the link ---------------------------------------------------------------------


def test_link_is_appended_after_a_blank_line() -> None:
    """Text without the link gets it after one blank line, the text's own edges trimmed."""
    assert with_link("  Der Markt öffnet.\n\n", LINK) == f"Der Markt öffnet.\n\n{LINK}"


@pytest.mark.parametrize(
    "text",
    [
        f"Alle Infos: {LINK}",
        f"{LINK}\n\nDer Markt öffnet.",
        f"Mehr unter {LINK}. Wir freuen uns!",
        f"Mehr unter {LINK}, auf unserer Seite.",
        f"Programm ({LINK}) und Anfahrt.",
        f"Programm: „{LINK}“",
        f"Mehr unter {LINK}!",
    ],
)
def test_text_that_already_holds_the_link_is_left_as_it_is(text: str) -> None:
    """The link standing as a whole address, even before punctuation, is not added again."""
    assert contains_link(text, LINK)
    assert with_link(text, LINK) == text


@pytest.mark.parametrize(
    "text",
    [
        f"Siehe {LINK}/programm",
        f"Siehe {LINK}-2025",
        f"Siehe {LINK}.html",
        f"Siehe {LINK}.html.",
        f"Siehe {LINK}?utm_source=mastodon",
        f"Siehe {LINK}#anfahrt",
        f"Siehe {LINK}_alt",
        f"Siehe {LINK}%20",
        f"Siehe https://archiv.example/?url={LINK}",
        f"Siehe https://archiv.example/web/2026/{LINK}",
        f"Siehe x{LINK}",
    ],
)
def test_longer_address_holding_the_link_does_not_count(text: str) -> None:
    """A different URL that merely contains the link gets the link appended after all."""
    assert not contains_link(text, LINK)
    assert with_link(text, LINK) == f"{text}\n\n{LINK}"


def test_site_url_as_link_is_not_found_inside_a_longer_address_with_a_port() -> None:
    """For a host-only link, the same host with a port or path is another address."""
    text = f"Intern: {SITE_URL}:8443/intranet"
    assert not contains_link(text, SITE_URL)
    assert with_link(text, SITE_URL).endswith(f"\n\n{SITE_URL}")


def test_rendered_link_is_exactly_the_link_given(settings: SettingsFactory) -> None:
    """Query, fragment, percent-encoding and letter case survive rendering; nothing is added."""
    link = f"{SITE_URL}/Aktuelles/Weihnachts%2Dmarkt?jahr=2026#Programm"
    rendered = render(make_post(link=link), settings())
    for item in rendered:
        assert item.text.endswith(f"\n\n{link}")
        assert "utm_" not in item.text


# --- target accounts ------------------------------------------------------------------------


def test_explicit_accounts_are_used_in_order_without_duplicates(
    settings: SettingsFactory,
) -> None:
    """Accounts named in the post are the targets, in the editor's order, each once."""
    post = make_post(accounts=("bluesky", "mastodon", "bluesky"), category="veranstaltung")
    configured = settings(routing={"veranstaltung": ["website"]})
    assert target_accounts(post, configured, where=WHERE) == ["bluesky", "mastodon"]


def test_explicit_unknown_account_is_refused(settings: SettingsFactory) -> None:
    """Naming an account that is not configured is an error naming it and the known ones."""
    with pytest.raises(PostRejected) as caught:
        target_accounts(make_post(accounts=("myspace",)), settings(), where=WHERE)
    message = str(caught.value)
    assert "'myspace'" in message
    assert "bluesky, mastodon, telegram, website" in message


def test_explicit_disabled_account_is_refused(settings: SettingsFactory) -> None:
    """An editor who names a disabled account is told so instead of it being skipped."""
    accounts = {
        "mastodon": {"platform": "mastodon", "base_url": "https://social.example"},
        "bluesky": {"platform": "bluesky", "handle": "zv.bsky.social", "enabled": False},
    }
    post = make_post(accounts=("mastodon", "bluesky"))
    with pytest.raises(PostRejected, match="'bluesky' is disabled"):
        target_accounts(post, settings(accounts=accounts), where=WHERE)


def test_routing_for_the_category_picks_the_accounts(settings: SettingsFactory) -> None:
    """Without explicit accounts, the routing entry of the post's category decides."""
    configured = settings(routing={"stellenangebot": ["mastodon", "website"]})
    post = make_post(category="stellenangebot")
    assert target_accounts(post, configured, where=WHERE) == ["mastodon", "website"]


def test_routing_skips_disabled_accounts(settings: SettingsFactory) -> None:
    """A disabled account in the admin's routing is skipped silently, the rest still get it."""
    accounts = {
        "mastodon": {"platform": "mastodon", "base_url": "https://social.example"},
        "website": {"platform": "feed", "path": "queue/site", "enabled": False},
    }
    configured = settings(accounts=accounts, routing={"stellenangebot": ["website", "mastodon"]})
    post = make_post(category="stellenangebot")
    assert target_accounts(post, configured, where=WHERE) == ["mastodon"]


def test_routing_with_only_disabled_accounts_is_refused(settings: SettingsFactory) -> None:
    """When routing leaves no enabled account the post is refused, not silently dropped."""
    accounts = {
        "mastodon": {"platform": "mastodon", "base_url": "https://social.example"},
        "website": {"platform": "feed", "path": "queue/site", "enabled": False},
    }
    configured = settings(accounts=accounts, routing={"stellenangebot": ["website"]})
    with pytest.raises(PostRejected, match="no account to publish to"):
        target_accounts(make_post(category="stellenangebot"), configured, where=WHERE)


@pytest.mark.parametrize("category", [None, "tourismus"])
def test_without_accounts_or_routing_all_enabled_accounts_are_targets(
    settings: SettingsFactory, category: str | None
) -> None:
    """No explicit accounts and no routing for the category: every enabled account."""
    accounts = {
        "mastodon": {"platform": "mastodon", "base_url": "https://social.example"},
        "bluesky": {"platform": "bluesky", "handle": "zv.bsky.social", "enabled": False},
        "website": {"platform": "feed", "path": "queue/site"},
    }
    configured = settings(accounts=accounts, routing={"stellenangebot": ["website"]})
    post = make_post(category=category)
    assert target_accounts(post, configured, where=WHERE) == ["mastodon", "website"]


def test_unknown_category_is_refused_listing_the_categories(settings: SettingsFactory) -> None:
    """A category outside site.categories is refused with the list of valid ones."""
    with pytest.raises(PostRejected) as caught:
        target_accounts(make_post(category="sport"), settings(), where=WHERE)
    message = str(caught.value)
    assert message.startswith(f"{WHERE}: category:")
    assert "'sport'" in message
    assert "veranstaltung" in message


def test_no_enabled_account_at_all_is_refused(settings: SettingsFactory) -> None:
    """A configuration whose accounts are all disabled cannot take a post."""
    accounts = {"website": {"platform": "feed", "path": "queue/site", "enabled": False}}
    with pytest.raises(PostRejected, match="no account to publish to"):
        target_accounts(make_post(), settings(accounts=accounts), where=WHERE)


# --- variants -------------------------------------------------------------------------------


def test_variant_by_account_name_goes_to_that_account_only(settings: SettingsFactory) -> None:
    """A variant keyed by account name replaces the body there and nowhere else."""
    post = make_post(body="Langer Text.", variants={"bluesky": "Kurzer Text."})
    texts = texts_by_account(post, settings())
    assert texts["bluesky"] == f"Kurzer Text.\n\n{LINK}"
    assert texts["mastodon"] == f"Langer Text.\n\n{LINK}"


def test_variant_by_platform_goes_to_every_account_of_that_platform(
    settings: SettingsFactory,
) -> None:
    """A variant keyed by platform applies to all accounts on that platform."""
    accounts = {
        "zv_social": {"platform": "mastodon", "base_url": "https://social.example"},
        "zv_bund": {"platform": "mastodon", "base_url": "https://social.bund.de"},
        "website": {"platform": "feed", "path": "queue/site"},
    }
    post = make_post(body="Langer Text.", variants={"mastodon": "Fediverse-Text."})
    texts = texts_by_account(post, settings(accounts=accounts))
    assert texts["zv_social"] == texts["zv_bund"] == f"Fediverse-Text.\n\n{LINK}"
    assert texts["website"] == f"Langer Text.\n\n{LINK}"


def test_account_variant_wins_over_platform_variant(settings: SettingsFactory) -> None:
    """When both exist, the variant for the account beats the one for its platform."""
    accounts = {
        "zv_social": {"platform": "mastodon", "base_url": "https://social.example"},
        "zv_bund": {"platform": "mastodon", "base_url": "https://social.bund.de"},
    }
    post = make_post(variants={"mastodon": "Für alle.", "zv_bund": "Für den Bund."})
    texts = texts_by_account(post, settings(accounts=accounts))
    assert texts["zv_bund"].startswith("Für den Bund.")
    assert texts["zv_social"].startswith("Für alle.")


def test_variant_for_neither_account_nor_platform_is_refused(settings: SettingsFactory) -> None:
    """A variant whose key matches nothing configured is a typo the editor must hear about."""
    post = make_post(variants={"blusky": "Kurz."})
    with pytest.raises(PostRejected, match=r"variants\.blusky: neither an account nor a platform"):
        render(post, settings())


def test_variant_that_holds_the_link_is_not_given_it_twice(settings: SettingsFactory) -> None:
    """A variant already ending in the link is sent as written."""
    variant = f"Kurz: {LINK}"
    post = make_post(variants={"bluesky": variant})
    assert texts_by_account(post, settings())["bluesky"] == variant


# --- limits ---------------------------------------------------------------------------------


def bluesky_only(settings: SettingsFactory) -> Any:
    return settings(accounts={"bsky": {"platform": "bluesky", "handle": "zv.bsky.social"}})


def test_text_exactly_at_the_limit_fits(settings: SettingsFactory) -> None:
    """Text plus blank line plus link of exactly the limit is accepted and counted so."""
    body = "a" * (300 - 2 - len(LINK))
    (item,) = render(make_post(body=body), bluesky_only(settings))
    assert (item.account, item.platform, item.length, item.limit) == ("bsky", "bluesky", 300, 300)
    assert item.text == f"{body}\n\n{LINK}"


def test_text_one_over_the_limit_is_refused_naming_account_length_and_limit(
    settings: SettingsFactory,
) -> None:
    """One character too many: refused at enqueue with account, counted length and limit."""
    body = "a" * (300 - 2 - len(LINK) + 1)
    with pytest.raises(PostRejected) as caught:
        render(make_post(body=body), bluesky_only(settings))
    message = str(caught.value)
    assert message.startswith(f"{WHERE}: too long for account bsky (bluesky): 301 of 300")
    assert "[variants.bsky]" in message


def test_over_limit_is_never_truncated_when_checking_is_off(settings: SettingsFactory) -> None:
    """With check=False (preview) the full text comes back with its length over the limit."""
    body = "a" * 400
    (item,) = render(make_post(body=body), bluesky_only(settings), check=False)
    assert item.text == f"{body}\n\n{LINK}"
    assert item.length == 400 + 2 + len(LINK)
    assert item.limit == 300


def test_mastodon_counts_the_link_as_23_against_max_characters(settings: SettingsFactory) -> None:
    """An account's max_characters is its limit; Mastodon counts any URL as 23."""
    accounts = {
        "social": {
            "platform": "mastodon",
            "base_url": "https://social.example",
            "max_characters": 100,
        }
    }
    fits = make_post(body="a" * (100 - 2 - 23))
    (item,) = render(fits, settings(accounts=accounts))
    assert (item.length, item.limit) == (100, 100)
    with pytest.raises(PostRejected, match=r"account social \(mastodon\): 101 of 100"):
        render(make_post(body="a" * (100 - 2 - 23 + 1)), settings(accounts=accounts))


def test_learned_limit_applies_unless_the_account_sets_one(settings: SettingsFactory) -> None:
    """A limit learned from the instance replaces the default but not max_characters."""
    accounts = {
        "learned": {"platform": "mastodon", "base_url": "https://a.example"},
        "configured": {
            "platform": "mastodon",
            "base_url": "https://b.example",
            "max_characters": 700,
        },
        "plain": {"platform": "mastodon", "base_url": "https://c.example"},
    }
    learned = {"learned": 5000, "configured": 5000}
    rendered = render(make_post(), settings(accounts=accounts), learned_limits=learned)
    assert {r.account: r.limit for r in rendered} == {
        "learned": 5000,
        "configured": 700,
        "plain": 500,
    }


def test_telegram_with_an_image_uses_the_caption_limit(settings: SettingsFactory) -> None:
    """Text under a Telegram photo may have 1024 units, not 4096, and the caption also
    describes the image (Telegram has no alt field); without photo 4096 apply."""
    accounts = {"tg": {"platform": "telegram", "chat": "@zv"}}
    body = "a" * 1000
    image = Media(path=Path("/posts/markt.jpg"), alt="Marktstände")
    (plain,) = render(make_post(body=body), settings(accounts=accounts))
    assert plain.limit == 4096
    with pytest.raises(PostRejected) as caught:
        render(make_post(body=body, media=(image,)), settings(accounts=accounts))
    caption = f"{body}\n\nBild: Marktstände\n\n{LINK}"
    assert telegram_caption(f"{body}\n\n{LINK}", ["Marktstände"], LINK) == caption
    expected = len(caption)
    assert f"account tg (telegram): {expected} of {TELEGRAM_CAPTION_LIMIT}" in str(caught.value)


def test_limit_error_names_the_failing_account_among_several(settings: SettingsFactory) -> None:
    """Only the account that is too short is named; the others would have fitted."""
    body = "a" * 400  # over Bluesky's 300, within the others
    with pytest.raises(PostRejected) as caught:
        render(make_post(body=body), settings())
    assert "account bluesky (bluesky)" in str(caught.value)


def test_where_defaults_to_the_post_source_then_to_text_option(settings: SettingsFactory) -> None:
    """Errors name the post file, or --text for posts typed on the command line."""
    bad = "https://evil.example/"
    with pytest.raises(PostRejected, match=f"^{WHERE}: link"):
        render(make_post(link=bad), settings())
    with pytest.raises(PostRejected, match=r"^--text: link"):
        render(make_post(link=bad, source=None), settings())
