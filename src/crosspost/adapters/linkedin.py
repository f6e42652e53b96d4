"""LinkedIn organization page: one post per delivery, with the canonical link as an
article, images with alt text, never twice.

Every request carries ``LinkedIn-Version: <account version>`` and
``X-Restli-Protocol-Version: 2.0.0``; URNs in paths and query strings are
percent-encoded (Rest.li 2.0), ``List(...)`` syntax is not.

* Text post: ``POST /rest/posts`` with ``content.article {source: link, title}``;
  the post's URN comes back in the ``x-restli-id`` header of the 201.
* Image post: ``POST /rest/images?action=initializeUpload`` → ``PUT`` the bytes to
  the ``uploadUrl`` → ``content.media {id, altText}`` (two to twenty images:
  ``content.multiImage``). An image post carries no article card; the link stays
  in the commentary, where LinkedIn turns it into a link.
* ``commentary`` is "little text format": the reserved characters are escaped
  with a backslash (:func:`escape_little_text`), otherwise LinkedIn reads them
  as markup and silently cuts the text at the first one.
* No idempotency keys: after a lost answer :meth:`LinkedInAdapter.find_existing`
  looks the post up among the page's recent posts (``q=author`` finder).
* Rate limits are daily quotas reset at 00:00 UTC; a 429 comes without headers,
  so it blocks the account until the next midnight UTC (a ``Retry-After``, if
  LinkedIn ever sends one, wins).
* Tokens last 60 days and are usually not refreshable: the expiry comes from
  token introspection when the account has client credentials, else from the
  configured ``token_expires_at``; ``open`` logs a warning before it runs out.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx

from crosspost.adapters._client import ClientAdapter
from crosspost.adapters._files import read_image
from crosspost.adapters._http import HttpClient, as_int, dig, json_body, platform_message
from crosspost.clock import Clock, system_clock
from crosspost.config import LinkedInAccount
from crosspost.exceptions import (
    AuthError,
    ConfigError,
    PlatformError,
    RateLimited,
    Rejected,
    Transient,
    UnknownOutcome,
)
from crosspost.i18n import _
from crosspost.models import (
    AccountInfo,
    Media,
    PostMetrics,
    PublishRequest,
    PublishResult,
)
from crosspost.observability import EventLogger

if TYPE_CHECKING:
    from crosspost.inbox import Fetched, InteractionPage, PostRef, ReplyTarget

RESTLI_PROTOCOL = "2.0.0"
#: characters little text format reserves for markup (mentions, hashtags, templates)
LITTLE_RESERVED = "\\|{}@[]()<>#*_~"
_RESERVED_CLASS = "[" + re.escape(LITTLE_RESERVED) + "]"
_TO_ESCAPE = re.compile(f"({_RESERVED_CLASS})")
_ESCAPED = re.compile(rf"\\({_RESERVED_CLASS})")
_ORGANIZATION = re.compile(r"(?:urn:li:organization:)?([0-9]+)")
_VERSION = re.compile(r"[0-9]{6}")
#: the Posts API's limit for ``altText``
ALT_TEXT_MAX = 4086
#: images in one post (``multiImage`` takes 2 to 20)
IMAGES_MAX = 20
OAUTH_URL = "https://www.linkedin.com"
FEED_URL = "https://www.linkedin.com/feed/update/"

log = EventLogger("crosspost.adapters.linkedin")


def escape_little_text(text: str) -> str:
    """``text`` as little text format shows it verbatim: every reserved character escaped."""
    return _TO_ESCAPE.sub(r"\\\1", text)


def unescape_little_text(text: str) -> str:
    """The plain text behind escaped little text (markup other than escapes is kept)."""
    return _ESCAPED.sub(r"\1", text)


def organization_urn(value: str) -> str:
    """``urn:li:organization:N`` from the URN itself or the bare number N."""
    found = _ORGANIZATION.fullmatch(value.strip())
    if found is None:
        raise ValueError(value)
    return f"urn:li:organization:{found.group(1)}"


def next_utc_midnight(now: datetime) -> datetime:
    """The next 00:00 UTC strictly after ``now``: when LinkedIn's daily quotas reset."""
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=UTC)


def daily_quota_reset(response: httpx.Response, now: datetime) -> datetime | None:
    """LinkedIn answers an exhausted quota with a bare 429: wait for the daily reset."""
    return next_utc_midnight(now) if response.status_code == 429 else None


def post_url(urn: str) -> str:
    return f"{FEED_URL}{urn}/"


def normalise(text: str) -> str:
    """Text compared for reconciliation: NFC, whitespace runs as one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


class LinkedInAdapter(ClientAdapter[HttpClient]):
    platform = "linkedin"
    idempotent_resend = False
    can_reconcile = True

    #: posts per page read when reconciling, and the most pages read back
    recent_limit = 50
    reconcile_pages = 20
    #: posts older than the delivery by more than this are never taken for it (clock skew)
    reconcile_skew = timedelta(minutes=5)

    config: LinkedInAccount

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.config, LinkedInAccount):
            raise TypeError("LinkedInAdapter needs a LinkedInAccount")
        try:
            self.organization = organization_urn(self.config.organization)
        except ValueError:
            raise ConfigError(
                _(
                    "accounts.{account}.organization: {value!r} is not an organization; "
                    "use urn:li:organization:<number> (the number in the page's admin URL)"
                ).format(account=self.name, value=self.config.organization)
            ) from None
        if not _VERSION.fullmatch(self.config.version):
            raise ConfigError(
                _(
                    "accounts.{account}.version: {value!r} is not a LinkedIn API version; "
                    'use YYYYMM such as "202501"'
                ).format(account=self.name, value=self.config.version)
            )
        self.clock: Clock = system_clock
        #: learnt from token introspection; None: unknown (the configured date applies)
        self._expires_at: datetime | None = None

    # -- the connection ------------------------------------------------------------------

    def connect(self) -> HttpClient:
        token = self.configured_secret(
            _("accounts.{account}: no access token").format(account=self.name)
        )
        return HttpClient(
            self.config.api_url,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "LinkedIn-Version": self.config.version,
                "X-Restli-Protocol-Version": RESTLI_PROTOCOL,
            },
            transport=self._transport,
            timeout=self._timeout,
            secrets=[token],
            reset_parser=daily_quota_reset,
            clock=self.clock,
        )

    async def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, url, classify=self._classify, **kwargs)

    def _classify(self, response: httpx.Response) -> PlatformError | None:
        """LinkedIn's envelope ``{status, serviceErrorCode, code, message}`` where it says more."""
        status = response.status_code
        reason = self.http.redact(platform_message(response))
        if status == 401:
            return AuthError(
                _(
                    "LinkedIn refused the access token ({reason}); LinkedIn tokens last 60 days "
                    "and cannot be refreshed: create a new one and replace accounts.{account}'s "
                    "token (see docs/platforms/linkedin.md)"
                ).format(reason=reason, account=self.name),
                http_status=status,
            )
        if status == 403:
            return AuthError(
                _(
                    "LinkedIn denies the request ({reason}); the token needs the scopes "
                    "w_organization_social and r_organization_social, and its member must be "
                    "an administrator or content administrator of {organization}"
                ).format(reason=reason, organization=self.organization),
                http_status=status,
            )
        if status == 426:
            # Every request of the account fails until the admin changes the config.
            return AuthError(
                _(
                    "LinkedIn no longer serves API version {version} ({reason}); set "
                    "accounts.{account}.version to a current YYYYMM"
                ).format(version=self.config.version, reason=reason, account=self.name),
                http_status=status,
            )
        return None

    async def open(self) -> None:
        """Learn when the token expires (introspection, if configured) and warn in time."""
        try:
            await self._introspect()
        except (Transient, Rejected, RateLimited) as error:
            log.warning("token_introspection_failed", account=self.name, error=error.message)
        self._warn_before_expiry()

    # -- publishing ----------------------------------------------------------------------

    async def publish(self, request: PublishRequest) -> PublishResult:
        self._check_media(request.media)
        images = [(await self._upload(media), media.alt) for media in request.media]
        response = await self._call("POST", "/rest/posts", json=self.post_body(request, images))
        urn = response.headers.get("x-restli-id", "").strip()
        if not urn.startswith("urn:li:"):
            raise UnknownOutcome(
                _("POST /rest/posts: the answer names no post (HTTP {status})").format(
                    status=response.status_code
                ),
                http_status=response.status_code,
            )
        return PublishResult(remote_id=urn, remote_url=post_url(urn))

    def post_body(
        self, request: PublishRequest, images: list[tuple[str, str]] | None = None
    ) -> dict[str, Any]:
        """The ``POST /rest/posts`` body for ``request`` with its uploaded ``(urn, alt)`` images."""
        body: dict[str, Any] = {
            "author": self.organization,
            "commentary": escape_little_text(request.text),
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        if not images:
            title = request.title.strip() or request.link
            body["content"] = {"article": {"source": request.link, "title": title}}
        elif len(images) == 1:
            [(urn, alt)] = images
            body["content"] = {"media": {"id": urn, "altText": alt}}
        else:
            body["content"] = {
                "multiImage": {"images": [{"id": urn, "altText": alt} for urn, alt in images]}
            }
        return body

    def _check_media(self, media: tuple[Media, ...]) -> None:
        if len(media) > IMAGES_MAX:
            raise Rejected(
                _("LinkedIn takes at most {limit} images per post, not {count}").format(
                    limit=IMAGES_MAX, count=len(media)
                ),
                sent=False,
            )
        for item in media:
            if len(item.alt) > ALT_TEXT_MAX:
                raise Rejected(
                    _(
                        "{path}: the alt text has {length} characters; LinkedIn takes {limit}"
                    ).format(path=item.path.name, length=len(item.alt), limit=ALT_TEXT_MAX),
                    sent=False,
                )

    async def _upload(self, media: Media) -> str:
        data = await read_image(media)
        try:
            response = await self._call(
                "POST",
                "/rest/images?action=initializeUpload",
                json={"initializeUploadRequest": {"owner": self.organization}},
            )
        except UnknownOutcome as exc:
            # An image no post uses is invisible: initialising again is safe.
            raise Transient(exc.message) from exc
        value = dig(json_body(response), "value")
        upload_url, image = dig(value, "uploadUrl"), dig(value, "image")
        if not isinstance(upload_url, str) or not isinstance(image, str):
            raise Transient(_("POST /rest/images: the answer names no upload address"))
        if not self._trusted_upload_url(upload_url):
            raise Rejected(
                _(
                    "LinkedIn named an upload address outside linkedin.com ({host}); "
                    "the image and the token are not sent there"
                ).format(host=urlsplit(upload_url).hostname),
                sent=False,
            )
        await self._call("PUT", upload_url, content=data, headers={"Content-Type": media.mime})
        return image

    def _trusted_upload_url(self, url: str) -> bool:
        """The token goes along with the bytes: only to LinkedIn (or the configured server)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme == "https" and (host == "linkedin.com" or host.endswith(".linkedin.com")):
            return True
        api = urlsplit(self.config.api_url)
        return (parts.scheme, parts.netloc) == (api.scheme, api.netloc)

    # -- recovery, retraction, figures -----------------------------------------------------

    async def find_existing(self, request: PublishRequest) -> PublishResult | None:
        """The post for this delivery among the page's recent ones, if it landed.

        Pages back (newest first) until the posts are older than the delivery: a
        busy page may have published many posts since this one landed.
        """
        wanted = normalise(request.text)
        earliest = request.created_at - self.reconcile_skew
        for page in range(self.reconcile_pages):
            posts = await self._recent_posts(self.recent_limit, start=page * self.recent_limit)
            found, older = self._match(posts, request, wanted, earliest)
            if found is not None:
                return found
            if older or len(posts) < self.recent_limit:
                return None
        return None

    def _match(
        self, posts: list[Any], request: PublishRequest, wanted: str, earliest: datetime
    ) -> tuple[PublishResult | None, bool]:
        """The post for the delivery on this page, and whether the page reached older posts."""
        older = False
        for post in posts:
            if not isinstance(post, dict) or post.get("author") != self.organization:
                continue
            created = _from_millis(post.get("createdAt"))
            if created is not None and created < earliest:
                older = True
                continue
            commentary = post.get("commentary")
            if not isinstance(commentary, str) or normalise(unescape_little_text(commentary)) != (
                wanted
            ):
                continue
            if not _same_content(post.get("content"), request):
                continue
            urn = post.get("id")
            if isinstance(urn, str) and urn.startswith("urn:li:"):
                return PublishResult(remote_id=urn, remote_url=post_url(urn)), older
        return None, older

    async def _recent_posts(self, count: int, *, start: int = 0) -> list[Any]:
        """The page's latest posts (``q=author`` finder), newest first, from ``start``."""
        paging = f"&start={start}" if start else ""
        response = await self._call(
            "GET",
            f"/rest/posts?author={_encode(self.organization)}&q=author&count={count}{paging}",
            headers={"X-RestLi-Method": "FINDER"},
        )
        posts = dig(json_body(response), "elements")
        if not isinstance(posts, list):
            raise Transient(_("the list of the page's recent posts is not readable"))
        return posts

    async def delete(self, remote_id: str) -> None:
        # LinkedIn answers 204 for a post deleted before; 404: never there, gone all the same.
        await self._call("DELETE", f"/rest/posts/{_encode(remote_id)}", ok=(404,))

    async def metrics(self, remote_id: str) -> PostMetrics | None:
        social = json_body(await self._call("GET", f"/rest/socialActions/{_encode(remote_id)}"))
        views, reposts = await self._share_statistics(remote_id)
        return PostMetrics(
            likes=as_int(dig(social, "likesSummary", "totalLikes")),
            replies=as_int(dig(social, "commentsSummary", "aggregatedTotalComments")),
            reposts=reposts,
            views=views,
        )

    # -- the inbox (issue 9) -----------------------------------------------------------------
    fetches_interactions = True
    #: comments per request (the API's page size)
    comments_page = 100

    def interactions(
        self, cursor: str | None, posts: Sequence[PostRef], *, since: datetime
    ) -> AsyncIterator[InteractionPage]:
        """Comments on the organization's recent posts (``GET /rest/socialActions/{urn}/comments``).

        The commenter is a member URN only (names need a profile permission crosspost
        does not ask for): the inbox keeps no handle for LinkedIn, the comment's link
        shows who wrote it to an editor who opens it.
        """
        from crosspost.adapters._comments import comments_per_post

        return comments_per_post(posts, cursor, since, self._comments)

    async def _comments(self, post: PostRef, after: datetime) -> list[Fetched]:
        from crosspost.inbox import Fetched, InteractionKind

        found: list[Fetched] = []
        start = 0
        for _page in range(10):
            answer = json_body(
                await self._call(
                    "GET",
                    f"/rest/socialActions/{_encode(post.remote_id)}/comments",
                    params={"start": start, "count": self.comments_page},
                )
            )
            elements = dig(answer, "elements")
            if not isinstance(elements, list):
                raise Transient(_("the list of comments is not readable"))
            for item in elements:
                urn, created = dig(item, "commentUrn"), _from_millis(dig(item, "created", "time"))
                if not isinstance(urn, str) or created is None or created < after:
                    continue
                if dig(item, "actor") == self.organization:
                    continue  # the organization's own answers
                found.append(
                    Fetched(
                        remote_id=urn,
                        kind=InteractionKind.COMMENT,
                        handle="",
                        text=str(dig(item, "message", "text") or ""),
                        url=f"{post_url(post.remote_id)}?commentUrn={_encode(urn)}",
                        created_at=created,
                        parent_remote_id=post.remote_id,
                        reply_ref={"object": post.remote_id},
                    )
                )
            total = as_int(dig(answer, "paging", "total"))
            start += len(elements)
            if not elements or total is None or start >= total:
                break
        return found

    async def reply(self, target: ReplyTarget, text: str, *, key: str) -> PublishResult:
        """A comment as the organization under the comment (``parentComment``)."""
        body = {
            "actor": self.organization,
            "object": target.reply_ref.get("object") or target.parent_remote_id,
            "parentComment": target.remote_id,
            "message": {"text": text},
        }
        response = await self._call(
            "POST", f"/rest/socialActions/{_encode(target.remote_id)}/comments", json=body
        )
        urn = response.headers.get("x-restli-id") or dig(json_body(response), "commentUrn")
        if not isinstance(urn, str) or not urn:
            raise UnknownOutcome(_("POST comments: the answer names no comment"))
        return PublishResult(remote_id=urn, remote_url=None)

    async def _share_statistics(self, urn: str) -> tuple[int | None, int | None]:
        """Impressions and reshares; (None, None) without ``rw_organization_admin``."""
        if urn.startswith("urn:li:share:"):
            kind, field = "shares", "share"
        elif urn.startswith("urn:li:ugcPost:"):
            kind, field = "ugcPosts", "ugcPost"
        else:
            return None, None
        try:
            response = await self._call(
                "GET",
                "/rest/organizationalEntityShareStatistics?q=organizationalEntity"
                f"&organizationalEntity={_encode(self.organization)}&{kind}=List({_encode(urn)})",
            )
        except (AuthError, Rejected):
            # 403: the token lacks rw_organization_admin; 400: older than LinkedIn's 12 months.
            return None, None
        elements = dig(json_body(response), "elements")
        for element in elements if isinstance(elements, list) else []:
            if isinstance(element, dict) and element.get(field) == urn:
                totals = element.get("totalShareStatistics")
                return as_int(dig(totals, "impressionCount")), as_int(dig(totals, "shareCount"))
        return None, None

    async def followers(self) -> int | None:
        """The Page's followers; None when the token lacks the optional admin scope (403)."""
        try:
            response = await self._call(
                "GET",
                f"/rest/networkSizes/{_encode(self.organization)}"
                "?edgeType=COMPANY_FOLLOWED_BY_MEMBER",
            )
        except AuthError as error:
            if error.http_status == 403:
                return None  # a missing optional scope must not pause the account
            raise
        return as_int(dig(json_body(response), "firstDegreeSize"))

    # -- the credential --------------------------------------------------------------------

    async def verify(self) -> AccountInfo:
        # The check every account needs: reading the page's posts (r_organization_social)
        # is what reconciliation depends on. Name and followers are extras.
        await self._recent_posts(1)
        organization: Any = None
        try:
            number = self.organization.rsplit(":", 1)[1]
            organization = json_body(await self._call("GET", f"/rest/organizations/{number}"))
        except (AuthError, Rejected):
            pass  # the lookup wants rw_organization_admin; the URN names the page as well
        try:
            followers = await self.followers()
        except Rejected:
            followers = None
        notes = [self.organization]
        try:
            await self._introspect()
        except (Transient, Rejected, RateLimited) as error:
            notes.append(_("token introspection failed: {reason}").format(reason=error.message))
        expires = self.token_expires_at()
        if expires is not None:
            notes.append(self._expiry_note(expires))
        name, vanity = dig(organization, "localizedName"), dig(organization, "vanityName")
        return AccountInfo(
            name=name if isinstance(name, str) and name else self.organization,
            url=f"https://www.linkedin.com/company/{vanity}/" if isinstance(vanity, str) else None,
            detail="; ".join(notes),
            token_expires_at=expires,
            followers=followers,
        )

    def token_expires_at(self) -> datetime | None:
        """From token introspection when it answered, else the configured ``token_expires_at``."""
        return self._expires_at or self.config.token_expires_at

    def _client_credentials(self) -> tuple[str | None, str | None]:
        """The app's client id and secret, needed only for token introspection.

        Read with getattr: the account keys ``client_id`` and ``client_secret_env``
        are not part of the configuration schema yet.
        """
        client_id = getattr(self.config, "client_id", None)
        secret_env = getattr(self.config, "client_secret_env", None)
        secret = os.environ.get(secret_env) if isinstance(secret_env, str) else None
        return (client_id if isinstance(client_id, str) and client_id else None), (
            secret.strip() if secret and secret.strip() else None
        )

    async def _introspect(self) -> None:
        """Ask LinkedIn when the token expires (``POST /oauth/v2/introspectToken``).

        A client of its own: the OAuth host is not the API, takes neither the bearer
        header nor the version headers, and a 429 there must not block publishing.
        """
        client_id, client_secret = self._client_credentials()
        if self._secret is None or not client_id or not client_secret:
            return
        token = self._secret.get_secret_value()
        oauth = HttpClient(
            self.config.base_url or OAUTH_URL,
            transport=self._transport,
            timeout=self._timeout,
            secrets=[token, client_secret],
            clock=self.clock,
        )
        try:
            response = await oauth.request(
                "POST",
                "/oauth/v2/introspectToken",
                data={"client_id": client_id, "client_secret": client_secret, "token": token},
            )
        except UnknownOutcome as exc:
            raise Transient(exc.message) from exc  # a lookup: asking again changes nothing
        except AuthError as exc:
            # 401 here is about the app's client credentials, not the page's token.
            raise Rejected(exc.message, http_status=exc.http_status) from exc
        finally:
            await oauth.aclose()
        answer = json_body(response)
        if dig(answer, "active") is False:
            raise AuthError(
                _(
                    "LinkedIn says the access token is {status}; LinkedIn tokens last 60 days "
                    "and cannot be refreshed: create a new one and replace accounts.{account}'s "
                    "token (see docs/platforms/linkedin.md)"
                ).format(status=dig(answer, "status") or "inactive", account=self.name)
            )
        expires = dig(answer, "expires_at")
        if isinstance(expires, int) and not isinstance(expires, bool) and expires > 0:
            self._expires_at = datetime.fromtimestamp(expires, UTC)

    def _expiry_note(self, expires: datetime) -> str:
        left = expires - self.clock.now()
        when = expires.astimezone(UTC).date().isoformat()
        if left <= timedelta(0):
            return _("token expired on {date}: create a new one").format(date=when)
        if left <= timedelta(days=self.settings.daemon.token_expiry_warning_days):
            return _("token expires on {date}, in {days} days: renew it now").format(
                date=when, days=left.days
            )
        return _("token valid until {date}").format(date=when)

    def _warn_before_expiry(self) -> None:
        expires = self.token_expires_at()
        if expires is None:
            return
        left = expires - self.clock.now()
        if left <= timedelta(days=self.settings.daemon.token_expiry_warning_days):
            log.warning(
                "token_expiring",
                account=self.name,
                expires_at=expires.isoformat(timespec="seconds"),
                note=self._expiry_note(expires),
            )


def _same_content(content: Any, request: PublishRequest) -> bool:
    """Whether a post's ``content`` is what this request would have made."""
    if not isinstance(content, dict):
        return False
    if not request.media:
        source: Any = dig(content, "article", "source")
        return isinstance(source, str) and source == request.link
    if len(request.media) == 1:
        return isinstance(dig(content, "media", "id"), str)
    images = dig(content, "multiImage", "images")
    return isinstance(images, list) and len(images) == len(request.media)


def _encode(urn: str) -> str:
    """A URN as Rest.li 2.0 wants it in a path or query: every reserved character encoded."""
    return quote(urn, safe="")


def _from_millis(value: Any) -> datetime | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


ADAPTER = LinkedInAdapter
