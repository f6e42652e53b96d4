"""The LinkedIn adapter against a fake organization page over real HTTP on 127.0.0.1.

The fake checks every request against LinkedIn's documented contract (headers,
Rest.li 2.0 encoding, the post body field by field, little text escaping);
every test ends with the check that it recorded no violation
(``fake.validation_errors == []``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from tests.adapterfixture import (
    SITE,
    Requests,
    auth_failures,
    build,
    delete_twice,
    rate_limited_until,
    refused,
    run,
)
from tests.fakes.linkedin import CLIENT_ID, CLIENT_SECRET, LinkedInFake, throttled
from tests.fakes.server import lose_response, status
from tests.rawsettings import settings_from

from crosspost import i18n
from crosspost.adapters.linkedin import (
    ALT_TEXT_MAX,
    LinkedInAdapter,
    escape_little_text,
)
from crosspost.clock import FrozenClock
from crosspost.config import LinkedInAccount
from crosspost.exceptions import (
    AuthError,
    ConfigError,
    RateLimited,
    Rejected,
    Transient,
    UnknownOutcome,
)
from crosspost.models import Media, PostMetrics

TOKEN_ENV = "CROSSPOST_TEST_LINKEDIN_TOKEN"
SECRET_ENV = "CROSSPOST_TEST_LINKEDIN_CLIENT_SECRET"
VERSION = "202501"
LINK = "https://www.zv-staedtedreieck.de/aktuelles/weihnachtsmarkt"
TITLE = "Weihnachtsmarkt im Städtedreieck"
TEXT = f"Der Weihnachtsmarkt im Städtedreieck öffnet am 1. Dezember um 16 Uhr.\n\n{LINK}"
POSTS = "POST /rest/posts"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415478da63f8cfc000000301010018dd8db00000000049454e44ae426082"
)


@pytest.fixture
def connect(
    linkedin_fake: LinkedInFake, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., LinkedInAdapter]:
    """Build an adapter for the fake from Settings, as the daemon does."""
    monkeypatch.setenv("LANGUAGE", "C")
    i18n.reset()

    def make(*, token: str | None = None, timeout: float = 5.0, **account: Any) -> LinkedInAdapter:
        monkeypatch.setenv(TOKEN_ENV, token or linkedin_fake.token)
        table = {"platform": "linkedin", "base_url": linkedin_fake.url, "token_env": TOKEN_ENV}
        table |= {"organization": linkedin_fake.organization, "version": VERSION}
        return build(LinkedInAdapter, "li", table | account, timeout=timeout)

    return make


publish_request = Requests("li", TEXT, link=LINK, title=TITLE, key="d-1-7f3a")


def image(tmp_path: Path, name: str = "markt.png") -> Path:
    path = tmp_path / name
    path.write_bytes(PNG + name.encode())
    return path


def test_text_post_sends_exactly_the_documented_body_and_headers(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter]
) -> None:
    """One organic page post: the exact JSON of the Posts API, the version and Rest.li
    headers, the bearer token; the URN from x-restli-id becomes the remote id."""
    adapter = connect()
    result = run(adapter, lambda: adapter.publish(publish_request()))

    [sent] = linkedin_fake.requests_to(POSTS)
    assert json.loads(sent.body) == {
        "author": linkedin_fake.organization,
        "commentary": TEXT,  # nothing in it needs escaping
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "content": {"article": {"source": LINK, "title": TITLE}},
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }
    assert sent.header("linkedin-version") == VERSION
    assert sent.header("x-restli-protocol-version") == "2.0.0"
    assert sent.header("authorization") == f"Bearer {linkedin_fake.token}"
    assert sent.content_type == "application/json"
    [post] = linkedin_fake.posts
    assert post.text == TEXT
    assert result.remote_id == post.urn
    assert result.remote_url == f"https://www.linkedin.com/feed/update/{post.urn}/"


def test_reserved_characters_are_escaped_and_shown_unchanged(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter]
) -> None:
    """Every little-text reserved character goes out backslash-escaped, so LinkedIn shows
    the whole text, nothing cut, nothing turned into a mention or a hashtag."""
    text = (
        "Wertstoffhof (Ost): Mo–Fr <10–18 Uhr> #Sperrmüll *neu* _ab_ ~jetzt~ "
        f"[Anmeldung] {{online}} @Rathaus a|b C:\\Pfad\n\n{LINK}"
    )
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request(text)))

    [sent] = linkedin_fake.requests_to(POSTS)
    commentary = json.loads(sent.body)["commentary"]
    assert commentary == escape_little_text(text)
    assert "\\(Ost\\)" in commentary
    assert "C:\\\\Pfad" in commentary
    [post] = linkedin_fake.posts
    assert post.text == text


def test_the_fake_catches_unescaped_markup_as_linkedin_would_cut_it(
    linkedin_fake: LinkedInFake,
) -> None:
    """A raw request with an unescaped parenthesis: LinkedIn answers 201 but cuts the text
    there; the fake does the same and records the violation, so such a client fails."""
    body = {
        "author": linkedin_fake.organization,
        "commentary": "Öffnungszeiten (neu) ab Montag",
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }
    headers = {
        "Authorization": f"Bearer {linkedin_fake.token}",
        "LinkedIn-Version": VERSION,
        "X-Restli-Protocol-Version": "2.0.0",
    }
    answer = httpx.post(f"{linkedin_fake.url}/rest/posts", json=body, headers=headers)
    assert answer.status_code == 201
    [post] = linkedin_fake.posts
    assert post.text == "Öffnungszeiten "
    [violation] = linkedin_fake.validation_errors
    assert "unescaped '('" in str(violation)
    linkedin_fake.validation_errors.clear()  # seen; the fixture checks for anything else


def test_the_fake_refuses_requests_without_the_version_headers(
    linkedin_fake: LinkedInFake,
) -> None:
    """Without LinkedIn-Version the fake answers 400 VERSION_MISSING in LinkedIn's
    envelope, publishes nothing and records the violation."""
    answer = httpx.post(
        f"{linkedin_fake.url}/rest/posts",
        json={"commentary": "x"},
        headers={"Authorization": f"Bearer {linkedin_fake.token}"},
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "VERSION_MISSING"
    assert set(answer.json()) == {"status", "code", "message"}
    assert linkedin_fake.posts == []
    [violation] = linkedin_fake.validation_errors
    assert "LinkedIn-Version" in str(violation)
    assert "X-Restli-Protocol-Version" in str(violation)
    linkedin_fake.validation_errors.clear()


def test_one_image_is_uploaded_and_posted_with_its_alt_text_and_no_article(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter], tmp_path: Path
) -> None:
    """initializeUpload for the page, PUT of the exact bytes, then content.media with the
    alt text; the canonical link stays in the commentary (an image post has no card)."""
    path = image(tmp_path)
    alt = "Beleuchtete Marktstände auf dem Platz der Freiheit"
    adapter = connect()
    media = (Media(path=path, alt=alt, mime="image/png"),)
    run(adapter, lambda: adapter.publish(publish_request(media=media)))

    [init] = linkedin_fake.requests_to("POST /rest/images")
    assert init.arg("action") == "initializeUpload"
    assert json.loads(init.body) == {
        "initializeUploadRequest": {"owner": linkedin_fake.organization}
    }
    [upload] = linkedin_fake.requests_to("PUT /dms-uploads/{token}")
    assert upload.body == path.read_bytes()
    assert upload.content_type == "image/png"
    [uploaded] = linkedin_fake.images.values()
    body = json.loads(linkedin_fake.requests_to(POSTS)[0].body)
    assert body["content"] == {"media": {"id": uploaded.urn, "altText": alt}}
    [post] = linkedin_fake.posts
    assert LINK in post.text
    assert post.alts == [alt]


def test_several_images_become_one_multi_image_post(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter], tmp_path: Path
) -> None:
    """Two images: two uploads, one post with content.multiImage in the post file's order."""
    media = (
        Media(path=image(tmp_path, "a.png"), alt="Der Marktplatz", mime="image/png"),
        Media(path=image(tmp_path, "b.png"), alt="Die Eisbahn", mime="image/png"),
    )
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request(media=media)))

    urns = list(linkedin_fake.images)
    body = json.loads(linkedin_fake.requests_to(POSTS)[0].body)
    assert body["content"] == {
        "multiImage": {
            "images": [
                {"id": urns[0], "altText": "Der Marktplatz"},
                {"id": urns[1], "altText": "Die Eisbahn"},
            ]
        }
    }
    assert [linkedin_fake.images[u].data for u in urns] == [p.path.read_bytes() for p in media]


def test_an_alt_text_longer_than_linkedin_takes_is_rejected_before_sending(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter], tmp_path: Path
) -> None:
    """Alt text over 4086 characters fails the post for good without any request."""
    adapter = connect()
    media = (Media(path=image(tmp_path), alt="A" * (ALT_TEXT_MAX + 1), mime="image/png"),)
    refusal = refused(adapter, publish_request(media=media), "4086")
    assert refusal.sent is False
    assert linkedin_fake.requests == []


def test_an_upload_address_outside_linkedin_gets_neither_image_nor_token(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter], tmp_path: Path
) -> None:
    """The upload carries the bearer token, so it only goes to linkedin.com (or base_url)."""
    linkedin_fake.upload_base = "https://uploads.example.net"
    adapter = connect()
    media = (Media(path=image(tmp_path), alt="Ein Bild", mime="image/png"),)
    with pytest.raises(Rejected, match=r"uploads\.example\.net"):
        run(adapter, lambda: adapter.publish(publish_request(media=media)))
    assert linkedin_fake.requests_to(POSTS) == []


def test_a_lost_initialize_answer_is_transient(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter], tmp_path: Path
) -> None:
    """An image initialised but never used is invisible: retrying is safe (Transient)."""
    linkedin_fake.inject(lose_response(), route="POST /rest/images")
    adapter = connect()
    media = (Media(path=image(tmp_path), alt="Ein Bild", mime="image/png"),)
    with pytest.raises(Transient):
        run(adapter, lambda: adapter.publish(publish_request(media=media)))
    assert linkedin_fake.requests_to(POSTS) == []


def test_lost_answer_after_landing_is_found_and_never_posted_twice(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter], tmp_path: Path
) -> None:
    """The post lands, the answer is lost: UnknownOutcome; find_existing (FINDER on the
    page's posts, commentary unescaped) finds it, for a text and for an image post."""
    text = f"Sperrmüll (Ost) – neue #Termine\n\n{LINK}"
    media = (Media(path=image(tmp_path), alt="Ein Container", mime="image/png"),)
    linkedin_fake.inject(lose_response(), route=POSTS, times=2)
    adapter = connect()

    async def scenario() -> None:
        for request in (publish_request(text), publish_request(text, media=media)):
            with pytest.raises(UnknownOutcome) as caught:
                await adapter.publish(request)
            assert caught.value.sent is True
            found = await adapter.find_existing(request)
            assert found is not None
            landed = [p for p in linkedin_fake.posts if p.urn == found.remote_id]
            assert len(landed) == 1
            assert landed[0].text == text
            assert found.remote_url == f"https://www.linkedin.com/feed/update/{found.remote_id}/"

    run(adapter, scenario)
    assert len(linkedin_fake.posts) == 2
    finders = linkedin_fake.requests_to("GET /rest/posts")
    assert [f.header("x-restli-method") for f in finders] == ["FINDER", "FINDER"]
    assert finders[0].arg("author") == linkedin_fake.organization


def test_find_existing_is_strict_about_text_link_and_age(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter], tmp_path: Path
) -> None:
    """Another text, an image post for a text request, or a post created before the
    delivery (beyond clock skew) is never taken for this delivery."""
    adapter = connect()

    async def scenario() -> None:
        mine = await adapter.publish(publish_request())
        assert await adapter.find_existing(publish_request()) == mine
        assert await adapter.find_existing(publish_request(f"Noch nicht da.\n\n{LINK}")) is None
        media = (Media(path=image(tmp_path), alt="Bild", mime="image/png"),)
        assert await adapter.find_existing(publish_request(media=media)) is None
        later = datetime.now(UTC) + timedelta(hours=1)
        assert await adapter.find_existing(publish_request(created_at=later)) is None

    run(adapter, scenario)


def test_bare_429_blocks_until_the_next_midnight_utc(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter]
) -> None:
    """LinkedIn's daily quota answer has no headers: RateLimited until 00:00 UTC of the
    next day, and no request at all goes out before then."""
    linkedin_fake.inject(throttled(), route=POSTS)
    adapter = connect()
    adapter.clock = FrozenClock(datetime(2026, 12, 1, 22, 15, 30, tzinfo=UTC))
    midnight = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)

    async def scenario() -> None:
        with pytest.raises(RateLimited) as first:
            await adapter.publish(publish_request())
        assert first.value.until == midnight
        assert first.value.http_status == 429
        with pytest.raises(RateLimited) as second:
            await adapter.find_existing(publish_request())
        assert second.value.until == midnight

    run(adapter, scenario)
    assert [r.status for r in linkedin_fake.requests] == [429]
    assert linkedin_fake.posts == []


def test_the_fake_exhausts_its_daily_quota_with_a_bare_429(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter]
) -> None:
    """The quota itself (not an injected fault): the request over the limit is refused
    with 429 and no rate-limit header, and the adapter waits for midnight UTC."""
    linkedin_fake.daily_limit = 1
    adapter = connect()

    async def scenario() -> None:
        await adapter.publish(publish_request())
        until = await rate_limited_until(
            lambda: adapter.publish(publish_request(f"Zweiter Beitrag\n\n{LINK}"))
        )
        assert (until.hour, until.minute, until.second) == (0, 0, 0)
        assert timedelta(0) < until - datetime.now(UTC) <= timedelta(days=1)

    run(adapter, scenario)
    refused = linkedin_fake.requests[-1]
    assert refused.status == 429
    assert len(linkedin_fake.posts) == 1


@pytest.mark.parametrize("expired", [False, True])
def test_401_is_an_auth_error_telling_to_renew_the_60_day_token(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter], expired: bool
) -> None:
    """A revoked or expired token: AuthError (the account pauses) whose message says the
    60-day token must be renewed; the token itself never shows."""
    token = "revoked-token-4f9e2c"
    if expired:
        linkedin_fake.token, linkedin_fake.token_expired = token, True
    adapter = connect(token=token)
    reason = "expired" if expired else "Invalid access token"
    for error in run(adapter, lambda: auth_failures(adapter, publish_request(), "60 days")):
        assert error.http_status == 401
        assert reason in error.message
        assert token not in error.message
    assert linkedin_fake.posts == []


def test_403_is_an_auth_error_naming_scopes_and_page_role(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter]
) -> None:
    """ACCESS_DENIED: AuthError (pause) with LinkedIn's words and what the token needs."""
    body = {
        "status": 403,
        "serviceErrorCode": 100,
        "code": "ACCESS_DENIED",
        "message": "Not enough permissions to access: partnerApiPostsExternal.CREATE.20250101",
    }
    linkedin_fake.inject(status(403, body), route=POSTS)
    adapter = connect()
    with pytest.raises(AuthError, match=r"Not enough permissions.*w_organization_social"):
        run(adapter, lambda: adapter.publish(publish_request()))


def test_a_sunset_api_version_pauses_the_account_naming_the_key_to_change(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter]
) -> None:
    """426 NONEXISTENT_VERSION fails every request of the account: AuthError (pause)
    naming the version and accounts.<name>.version."""
    linkedin_fake.oldest_version = "202601"
    adapter = connect()
    with pytest.raises(AuthError, match=r"202501.*accounts\.li\.version") as caught:
        run(adapter, lambda: adapter.publish(publish_request()))
    assert caught.value.http_status == 426


def test_validation_refusal_is_rejected_with_linkedins_message(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter]
) -> None:
    """A 422 in LinkedIn's envelope fails the post for good with LinkedIn's own words."""
    body = {"status": 422, "code": "UNPROCESSABLE_ENTITY", "message": "/commentary too long"}
    linkedin_fake.inject(status(422, body), route=POSTS)
    adapter = connect()
    refusal = refused(adapter, publish_request(), "/commentary too long")
    assert refusal.http_status == 422


def test_delete_removes_the_post_and_deleting_again_is_fine(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter]
) -> None:
    """DELETE with the URL-encoded URN; a second delete (204 again) and an unknown URN
    (404) both count as gone."""
    adapter = connect()

    async def scenario() -> None:
        await delete_twice(adapter, publish_request(), lambda: linkedin_fake.posts)
        await adapter.delete("urn:li:share:1")

    run(adapter, scenario)
    deletes = linkedin_fake.requests_to("DELETE /rest/posts/{urn}")
    assert [d.status for d in deletes] == [204, 204, 404]


def test_metrics_combine_social_actions_and_share_statistics(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter]
) -> None:
    """Likes and comments from socialActions, impressions and reshares from the page's
    share statistics; without rw_organization_admin (403) views and reposts are None."""
    adapter = connect()

    async def scenario() -> tuple[PostMetrics | None, PostMetrics | None]:
        result = await adapter.publish(publish_request())
        post = linkedin_fake.post(result.remote_id)
        post.likes, post.comments, post.impressions, post.reshares = 7, 3, 512, 2
        full = await adapter.metrics(result.remote_id)
        linkedin_fake.share_statistics = False
        partial = await adapter.metrics(result.remote_id)
        return full, partial

    full, partial = run(adapter, scenario)
    assert full == PostMetrics(likes=7, reposts=2, replies=3, views=512)
    assert partial == PostMetrics(likes=7, reposts=None, replies=3, views=None)
    stats = linkedin_fake.requests_to("GET /rest/organizationalEntityShareStatistics")
    assert (stats[0].arg("shares") or "").startswith("List(urn:li:share:")


def test_followers_and_verify(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter]
) -> None:
    """networkSizes gives the follower count; accounts check names the page, its URL,
    the followers and the configured token expiry."""
    linkedin_fake.followers = 4321
    expires = datetime.now(UTC) + timedelta(days=50)
    adapter = connect(token_expires_at=expires.isoformat())

    async def scenario() -> tuple[int | None, Any]:
        return await adapter.followers(), await adapter.verify()

    followers, info = run(adapter, scenario)
    assert followers == 4321
    assert info.name == "Zweckverband Städtedreieck"
    assert info.url == "https://www.linkedin.com/company/zv-staedtedreieck/"
    assert info.followers == 4321
    assert info.token_expires_at == expires
    assert adapter.token_expires_at() == expires
    assert linkedin_fake.organization in (info.detail or "")
    sizes = linkedin_fake.requests_to("GET /rest/networkSizes/{urn}")
    assert [s.arg("edgeType") for s in sizes] == ["COMPANY_FOLLOWED_BY_MEMBER"] * 2


def test_followers_without_the_admin_scope_are_unknown_not_an_auth_failure(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter]
) -> None:
    """403 on networkSizes (no rw_organization_admin): None, so the account is not paused
    for a figure it can live without."""
    body = {"status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED", "message": "no"}
    linkedin_fake.inject(status(403, body), route="GET /rest/networkSizes/{urn}")
    adapter = connect()
    assert run(adapter, adapter.followers) is None


def test_verify_warns_when_the_configured_expiry_is_near(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter]
) -> None:
    """Within the warning window accounts check says to renew the token now."""
    adapter = connect(token_expires_at=(datetime.now(UTC) + timedelta(days=3)).isoformat())
    info = run(adapter, adapter.verify)
    assert "renew it now" in (info.detail or "")


class _AccountWithClient(LinkedInAccount):
    """The account keys token introspection needs (not in the configuration schema yet)."""

    client_id: str | None = None
    client_secret_env: str | None = None


def _introspecting_adapter(
    fake: LinkedInFake, monkeypatch: pytest.MonkeyPatch, client_secret: str
) -> LinkedInAdapter:
    monkeypatch.setenv(SECRET_ENV, client_secret)
    settings = settings_from(site=SITE)
    config = _AccountWithClient(
        platform="linkedin",
        base_url=fake.url,
        organization=fake.organization,
        version=VERSION,
        token_expires_at=datetime(2020, 1, 1, tzinfo=UTC),
        client_id=CLIENT_ID,
        client_secret_env=SECRET_ENV,
    )
    return LinkedInAdapter("li", config, settings, secret=SecretStr(fake.token))


def test_token_introspection_tells_the_expiry(
    linkedin_fake: LinkedInFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the app's client credentials, open() learns expires_at from
    /oauth/v2/introspectToken; it wins over the configured date."""
    linkedin_fake.token_expires_at = datetime(2027, 2, 1, 12, 0, tzinfo=UTC)
    adapter = _introspecting_adapter(linkedin_fake, monkeypatch, CLIENT_SECRET)
    info = run(adapter, adapter.verify)
    assert adapter.token_expires_at() == datetime(2027, 2, 1, 12, 0, tzinfo=UTC)
    assert info.token_expires_at == datetime(2027, 2, 1, 12, 0, tzinfo=UTC)
    [asked] = linkedin_fake.requests_to("POST /oauth/v2/introspectToken")[:1]
    assert asked.form()["token"].text == linkedin_fake.token
    assert asked.header("authorization") is None  # the bearer token stays off the OAuth host


def test_introspection_of_an_expired_token_is_an_auth_error(
    linkedin_fake: LinkedInFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LinkedIn says active=false: the account pauses with the renew-the-token message."""
    linkedin_fake.token_expired = True
    adapter = _introspecting_adapter(linkedin_fake, monkeypatch, CLIENT_SECRET)
    with pytest.raises(AuthError, match=r"expired.*60 days"):
        run(adapter, adapter.verify)


def test_wrong_client_credentials_leave_the_configured_expiry(
    linkedin_fake: LinkedInFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing introspection is not the page token's fault: verify succeeds, says so,
    and keeps the configured date; the client secret never shows."""
    secret = "wrong-client-secret-77"
    adapter = _introspecting_adapter(linkedin_fake, monkeypatch, secret)
    info = run(adapter, adapter.verify)
    assert "token introspection failed" in (info.detail or "")
    assert secret not in (info.detail or "")
    assert info.token_expires_at == datetime(2020, 1, 1, tzinfo=UTC)


def test_a_malformed_organization_is_a_config_error(
    connect: Callable[..., LinkedInAdapter],
) -> None:
    """A page name instead of its URN fails at start, naming the key."""
    with pytest.raises(ConfigError, match=r"accounts\.li\.organization"):
        connect(organization="zv-staedtedreieck")


def test_a_version_not_in_yyyymm_is_refused_with_the_configuration(tmp_path: Path) -> None:
    """version = "2025-01" is refused when the configuration is read, naming the key."""
    from crosspost.config import load_settings

    config = tmp_path / "c.toml"
    config.write_text(
        '[site]\nurl = "https://www.zv-staedtedreieck.de"\n'
        '[accounts.li]\nplatform = "linkedin"\norganization = "1"\nversion = "2025-01"\n'
        'token_env = "T"\n'
    )
    with pytest.raises(ConfigError, match=r"accounts\.li\.version"):
        load_settings(config)


def test_a_bare_organization_number_is_accepted(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter]
) -> None:
    """organization = "10234567" means urn:li:organization:10234567."""
    adapter = connect(organization=linkedin_fake.organization_id)
    run(adapter, lambda: adapter.publish(publish_request()))
    assert linkedin_fake.posts[0].author == linkedin_fake.organization


def test_find_existing_pages_back_past_the_posts_published_since(
    linkedin_fake: LinkedInFake, connect: Callable[..., LinkedInAdapter]
) -> None:
    """A post that landed before 120 others (a busy page, a daemon down for a while) is
    still found: find_existing reads page after page until the posts are older than the
    delivery (found by the crash suite: reading only the newest 20 sent it twice)."""
    adapter = connect()

    async def scenario() -> None:
        mine = await adapter.publish(publish_request())
        for n in range(120):
            await adapter.publish(publish_request(f"Danach Nummer {n}.\n\n{LINK}/{n}"))
        assert await adapter.find_existing(publish_request()) == mine
        missing = publish_request(f"Nie gesendet.\n\n{LINK}")
        assert await adapter.find_existing(missing) is None

    run(adapter, scenario)
    finders = linkedin_fake.requests_to("GET /rest/posts")
    assert [f.arg("start", "0") for f in finders[:3]] == ["0", "50", "100"]
    assert linkedin_fake.validation_errors == []
