"""X (Twitter) API v2: one post per delivery, images with alt text, never twice.

Images go up first (``POST /2/media/upload``, category ``tweet_image``) and get
their alt text through ``POST /2/media/metadata``; then ``POST /2/tweets``
creates the post. X has no idempotency key. What it has is a refusal of the
same text twice in a row (403 "duplicate content"), which here means "probably
posted already": :meth:`XAdapter.find_existing` looks for it among the
account's recent posts (``GET /2/users/:id/tweets``), comparing the text with
X's ``t.co`` links expanded back (``entities.urls[].expanded_url``). The same
lookup settles a request whose answer was lost, so ``can_reconcile`` is True.

Credentials: an OAuth 2 user access token (Bearer), which lasts two hours.
With ``refresh_token_file`` and ``client_id`` configured, a 401 (or a token
known to be expired) triggers ``POST /2/oauth2/token`` with
``grant_type=refresh_token``. X rotates the refresh token on every refresh: the
newest one is kept in ``<state_dir>/sessions/<account>-refresh-token`` (0600),
with the access token it came with beside it, and the configured file is read
only while that does not exist yet. A file lock makes one process refresh at a
time, so the daemon and ``crosspost accounts check`` never spend the same
refresh token twice.

Rate limits come as ``x-rate-limit-limit/remaining/reset`` (reset in epoch
seconds) and, for posting, ``x-user-limit-24hour-*`` / ``x-app-limit-24hour-*``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import html
import json
import os
import stat
import unicodedata
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from crosspost.adapters._client import ClientAdapter
from crosspost.adapters._files import read_image, write_private
from crosspost.adapters._http import HttpClient, dig, header_budget, json_body, parse_reset
from crosspost.adapters._timestamps import parse_time
from crosspost.clock import system_clock
from crosspost.config import XAccount
from crosspost.exceptions import (
    AuthError,
    PlatformError,
    Rejected,
    Transient,
    UnknownOutcome,
)
from crosspost.i18n import _
from crosspost.models import (
    AccountInfo,
    Budget,
    Media,
    PostMetrics,
    PublishRequest,
    PublishResult,
)

if TYPE_CHECKING:
    from crosspost.inbox import InteractionPage, PostRef, ReplyTarget

#: X's documented bounds: 4 images per post, 5 MB per image, 1000 characters of alt text
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_ALT = 1000
#: the image types the upload endpoint names (others go without media_type; X sniffs them)
_MEDIA_TYPES = frozenset(
    {"image/jpeg", "image/bmp", "image/png", "image/webp", "image/pjpeg", "image/tiff"}
)
_DUPLICATE = "duplicate content"
_RESET_HEADERS = (
    ("x-user-limit-24hour-remaining", "x-user-limit-24hour-reset"),
    ("x-app-limit-24hour-remaining", "x-app-limit-24hour-reset"),
    ("x-rate-limit-remaining", "x-rate-limit-reset"),
)


def rate_limit_reset(response: httpx.Response, now: datetime) -> datetime | None:
    """When X lets the next request through once a budget is used up.

    A 429 waits for the latest reset among the exhausted budgets (the 24-hour
    posting caps outlast the 15-minute windows), else for ``x-rate-limit-reset``;
    a success blocks only when one of the budgets it reports has reached 0.
    """
    headers = response.headers
    exhausted = [
        parse_reset(headers.get(reset), now)
        for remaining, reset in _RESET_HEADERS
        if (headers.get(remaining) or "").strip() in ("0", "0.0")
    ]
    known = [moment for moment in exhausted if moment is not None]
    if known:
        return max(known)
    if response.status_code == 429:
        return parse_reset(headers.get("x-rate-limit-reset"), now)
    return None


def rate_limit_budget(response: httpx.Response, now: datetime) -> Budget | None:
    """The smallest of the budgets an answer reports (the 15-minute window, the
    user's and the app's 24-hour posting caps): the one that runs out first."""
    budgets = [
        budget
        for remaining, reset in _RESET_HEADERS
        if (budget := header_budget(remaining, reset)(response, now)) is not None
    ]
    return min(budgets, key=lambda b: (b.remaining, -b.reset.timestamp()), default=None)


class DuplicateContent(Rejected):
    """X refused the post as a duplicate of one already on the account."""


class _Client(HttpClient):
    def add_secret(self, secret: str) -> None:
        """Redact a token learnt later (a refreshed access token) as well."""
        if secret and secret not in self._secrets:
            self._secrets.append(secret)


class XAdapter(ClientAdapter[_Client]):
    platform = "x"
    idempotent_resend = False
    can_reconcile = True

    #: posts looked at when reconciling (the API's largest page)
    recent_limit = 100
    #: posts older than the delivery by more than this are never taken for it (clock skew)
    reconcile_skew = timedelta(minutes=5)
    #: refresh this long before the access token is known to expire
    refresh_margin = timedelta(seconds=60)

    config: XAccount

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.config, XAccount):
            raise TypeError("XAdapter needs an XAccount")
        self._access: str | None = None
        self._expires_at: datetime | None = None
        self._user_id: str | None = None
        self._refresh_lock = asyncio.Lock()

    # credentials

    @property
    def can_refresh(self) -> bool:
        """Whether the access token renews itself (refresh token and client id configured)."""
        return self.config.refresh_token_file is not None and bool(self.config.client_id)

    def connect(self) -> _Client:
        client = _Client(
            self.config.api_url,
            headers={"Accept": "application/json"},
            transport=self._transport,
            timeout=self._timeout,
            reset_parser=rate_limit_reset,
            budget_parser=rate_limit_budget,
        )
        if self._secret is not None:
            client.add_secret(self._secret.get_secret_value())
        return client

    def _state_file(self, kind: str) -> Path:
        return self.state_dir / f"{self.name}-{kind}"

    def _current_token(self) -> str:
        if self._access is None:
            stored = _read_json(self._state_file("access-token"))
            token, expires = stored.get("access_token"), parse_time(stored.get("expires_at"))
            if isinstance(token, str) and token and self.can_refresh:
                self._access, self._expires_at = token, expires
            elif self._secret is not None:
                self._access = self._secret.get_secret_value()
            else:
                raise AuthError(_("accounts.{account}: no access token").format(account=self.name))
            self.http.add_secret(self._access)
        return self._access

    def token_expires_at(self) -> datetime | None:
        """When the credential the admin has to renew expires: the configured
        ``token_expires_at`` (``status`` and ``accounts check`` warn days before it).

        Not the access token's own expiry: with :attr:`can_refresh` it lasts two hours and
        renews itself, which is routine (warning about it would warn for ever); without a
        refresh token nothing tells when X issued it, so only the admin's date can.
        """
        return self.config.token_expires_at

    async def open(self) -> None:
        """Learn the stored access token and its expiry (no request)."""
        self._current_token()

    async def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One authenticated request; on 401 the token is refreshed once and it is sent again."""
        token = self._current_token()
        if self._expired() and self.can_refresh:
            await self._refresh(token)
            token = self._current_token()
        try:
            return await self._send(method, url, token, **kwargs)
        except AuthError as error:
            if error.http_status != 401:
                raise
            if not self.can_refresh:
                raise AuthError(
                    _(
                        "{message} (X access tokens last two hours; set refresh_token_file "
                        "and client_id to renew them)"
                    ).format(message=error.message),
                    http_status=401,
                ) from error
        await self._refresh(token)
        return await self._send(method, url, self._current_token(), **kwargs)

    async def _send(self, method: str, url: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return await self.http.request(method, url, headers=headers, classify=_classify, **kwargs)

    def _expired(self) -> bool:
        return (
            self._expires_at is not None
            and system_clock.now() >= self._expires_at - self.refresh_margin
        )

    async def _refresh(self, failed: str) -> None:
        """Exchange the refresh token for a new pair, unless someone did so meanwhile."""
        async with self._refresh_lock:
            if self._access != failed and not self._expired():
                return  # another request of this process refreshed already
            lock = await asyncio.to_thread(_lock, self._state_file("token.lock"))
            try:
                stored = _read_json(self._state_file("access-token"))
                token = stored.get("access_token")
                expires = parse_time(stored.get("expires_at"))
                if (
                    isinstance(token, str)
                    and token != failed
                    and expires
                    and (expires - self.refresh_margin > system_clock.now())
                ):
                    self._adopt(token, expires)  # another process refreshed already
                    return
                await self._exchange(self._refresh_token())
            finally:
                os.close(lock)

    def _refresh_token(self) -> str:
        rotated = self._state_file("refresh-token")
        path = rotated if rotated.is_file() else self.config.refresh_token_file
        assert path is not None
        try:
            mode = path.stat().st_mode
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise AuthError(
                _("accounts.{account}: cannot read the refresh token {path}: {reason}").format(
                    account=self.name, path=path, reason=exc.strerror or exc
                )
            ) from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO) and not os.environ.get("CREDENTIALS_DIRECTORY"):
            raise AuthError(
                _("accounts.{account}: {path} is readable by others; run: chmod 600 {path}").format(
                    account=self.name, path=path
                )
            )
        if not value:
            raise AuthError(
                _("accounts.{account}: the refresh token file {path} is empty").format(
                    account=self.name, path=path
                )
            )
        self.http.add_secret(value)
        return value

    async def _exchange(self, refresh_token: str) -> None:
        try:
            response = await self.http.request(
                "POST",
                "/2/oauth2/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": refresh_token,
                    "client_id": self.config.client_id or "",
                },
                classify=self._token_error,
            )
        except UnknownOutcome as exc:
            # Nothing was posted; the next refresh tells whether the token was spent.
            raise Transient(exc.message) from exc
        answer = json_body(response)
        access, rotated = dig(answer, "access_token"), dig(answer, "refresh_token")
        lifetime = dig(answer, "expires_in")
        if not isinstance(access, str) or not access:
            raise Transient(_("X's token endpoint answered without an access token"))
        self.http.add_secret(access)
        if isinstance(rotated, str) and rotated:
            self.http.add_secret(rotated)
            write_private(self._state_file("refresh-token"), rotated + "\n")
        seconds = lifetime if isinstance(lifetime, int) and lifetime > 0 else 7200
        expires = system_clock.now() + timedelta(seconds=seconds)
        state = {"access_token": access, "expires_at": expires.isoformat()}
        write_private(self._state_file("access-token"), json.dumps(state) + "\n")
        self._adopt(access, expires)

    def _adopt(self, token: str, expires: datetime | None) -> None:
        self.http.add_secret(token)
        self._access, self._expires_at = token, expires

    def _token_error(self, response: httpx.Response) -> PlatformError | None:
        if response.status_code in (400, 401, 403):
            answer = json_body(response)
            reason = dig(answer, "error_description") or dig(answer, "error") or ""
            return AuthError(
                _(
                    "X refused to renew the access token ({status} {reason}); authorise the "
                    "app again and put the new refresh token in {path}"
                ).format(
                    status=response.status_code,
                    reason=self.http.redact(str(reason)),
                    path=self.config.refresh_token_file,
                ),
                http_status=response.status_code,
            )
        return None

    # publishing

    async def publish(self, request: PublishRequest) -> PublishResult:
        if len(request.media) > MAX_IMAGES:
            raise Rejected(
                _("X takes at most {max} images in one post, not {count}").format(
                    max=MAX_IMAGES, count=len(request.media)
                ),
                sent=False,
            )
        media_ids = [await self._upload(media) for media in request.media]
        body: dict[str, Any] = {"text": request.text}
        if media_ids:
            body["media"] = {"media_ids": media_ids}
        try:
            response = await self._call("POST", "/2/tweets", json=body)
        except DuplicateContent as duplicate:
            # X saw this very text on the account a moment ago: probably our own earlier
            # attempt, whose answer was lost. Only the timeline can confirm it.
            found = await self.find_existing(request)
            if found is not None:
                return found
            older = await self._find(request, since=None)
            if older is not None:
                # the same text, posted before this delivery existed: not ours
                raise Rejected(
                    _(
                        "X refused the post as a duplicate of an earlier post on the "
                        "account ({url}): {message}"
                    ).format(url=older.remote_url, message=duplicate.message),
                    http_status=duplicate.http_status,
                ) from duplicate
            # Probably published, but the timeline does not show it (yet): never "failed",
            # and never a blind resend; the next attempt looks again first.
            raise UnknownOutcome(
                _(
                    "X refused the post as a duplicate, so it is probably published, but it "
                    "is not among the account's recent posts yet: {message}"
                ).format(message=duplicate.message),
                http_status=duplicate.http_status,
            ) from duplicate
        post_id = dig(json_body(response), "data", "id")
        if not isinstance(post_id, str) or not post_id:
            raise UnknownOutcome(
                _("POST /2/tweets: the answer names no post (HTTP {status})").format(
                    status=response.status_code
                ),
                http_status=response.status_code,
            )
        return _result(post_id)

    async def _upload(self, media: Media) -> str:
        if len(media.alt) > MAX_ALT:
            raise Rejected(
                _("{path}: X takes alt texts up to {max} characters, this one has {count}").format(
                    path=media.path, max=MAX_ALT, count=len(media.alt)
                ),
                sent=False,
            )
        data = await read_image(media)
        if len(data) > MAX_IMAGE_BYTES:
            raise Rejected(
                _("{path}: X takes images up to 5 MB, this one has {size} bytes").format(
                    path=media.path, size=len(data)
                ),
                sent=False,
            )
        try:
            response = await self._call(
                "POST",
                "/2/media/upload",
                files={"media": (media.path.name, data, media.mime)},
                data={"media_category": "tweet_image"}
                | ({"media_type": media.mime} if media.mime in _MEDIA_TYPES else {}),
            )
            media_id = dig(json_body(response), "data", "id")
            if not isinstance(media_id, str) or not media_id:
                raise Transient(_("POST /2/media/upload: the answer names no media id"))
            await self._call(
                "POST",
                "/2/media/metadata",
                json={"id": media_id, "metadata": {"alt_text": {"text": media.alt}}},
            )
        except UnknownOutcome as exc:
            # Media no post uses is invisible and expires: uploading again is safe.
            raise Transient(exc.message) from exc
        return media_id

    async def find_existing(self, request: PublishRequest) -> PublishResult | None:
        """The post for this delivery among the account's recent ones, if it landed."""
        return await self._find(request, since=request.created_at - self.reconcile_skew)

    async def _find(
        self, request: PublishRequest, *, since: datetime | None
    ) -> PublishResult | None:
        """A recent post of the account (``since`` then, if given) with the request's text."""
        user_id = await self._own_user_id()
        params: dict[str, Any] = {
            "max_results": self.recent_limit,
            "tweet.fields": "created_at,entities",
            "exclude": "replies,retweets",
        }
        if since is not None:
            params["start_time"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        response = await self._call(
            "GET", f"/2/users/{quote(user_id, safe='')}/tweets", params=params
        )
        answer = json_body(response)
        posts = dig(answer, "data")
        if posts is None and isinstance(answer, dict) and "errors" not in answer:
            return None  # no post in the window: X leaves "data" out
        if not isinstance(posts, list):
            raise Transient(_("the list of recent posts is not readable"))
        wanted = normalise(request.text)
        for post in posts:
            post_id = dig(post, "id")
            if not isinstance(post_id, str):
                continue
            text, links = expand(post)
            if request.link and request.link not in links and request.link not in text:
                continue
            if normalise(text) == wanted:
                return _result(post_id)
        return None

    async def delete(self, remote_id: str) -> None:
        """Delete the post; gone already (404, or ``deleted: false`` for a missing post) is done."""
        path = f"/2/tweets/{quote(remote_id, safe='')}"
        response = await self._call("DELETE", path, ok=(404,))
        if response.status_code == 404 or dig(json_body(response), "data", "deleted") is True:
            return
        check = await self._call("GET", path)
        if dig(json_body(check), "data", "id") == remote_id:
            raise Rejected(
                _("X did not delete post {id}").format(id=remote_id),
                http_status=response.status_code,
            )

    async def metrics(self, remote_id: str) -> PostMetrics | None:
        response = await self._call(
            "GET",
            f"/2/tweets/{quote(remote_id, safe='')}",
            params={"tweet.fields": "public_metrics"},
        )
        counts = dig(json_body(response), "data", "public_metrics")
        if not isinstance(counts, dict):
            return None  # the post is gone (X answers 200 with "errors")
        return PostMetrics(
            likes=_count(counts, "like_count"),
            reposts=_count(counts, "retweet_count"),
            replies=_count(counts, "reply_count"),
            views=_count(counts, "impression_count"),
        )

    async def followers(self) -> int | None:
        user = await self._me()
        return _count(dig(user, "public_metrics") or {}, "followers_count")

    async def verify(self) -> AccountInfo:
        user = await self._me()
        username, name = dig(user, "username"), dig(user, "name")
        if not isinstance(username, str):
            raise Transient(_("X's /2/users/me names no account"))
        return AccountInfo(
            name=f"@{username}",
            url=f"https://x.com/{username}",
            detail=name if isinstance(name, str) and name else None,
            token_expires_at=self.token_expires_at(),
            followers=_count(dig(user, "public_metrics") or {}, "followers_count"),
        )

    # -- the inbox (issue 9) -----------------------------------------------------------------
    fetches_interactions = True
    #: mentions per page (the API allows 5 to 100)
    mentions_page = 100

    async def interactions(
        self, cursor: str | None, posts: Sequence[PostRef], *, since: datetime
    ) -> AsyncIterator[InteractionPage]:
        """Mentions (``GET /2/users/:id/mentions``) newer than the cursor (a post id).

        X pages from the newest backwards, so the cursor moves only with the last
        page: an interrupted fetch starts again from the old cursor (what it had
        stored already is not stored twice).
        """
        from crosspost.inbox import Fetched, InteractionKind, InteractionPage

        user_id = await self._own_user_id()
        params: dict[str, str | int] = {
            "max_results": self.mentions_page,
            "tweet.fields": "created_at,author_id,conversation_id,referenced_tweets",
            "expansions": "author_id",
            "user.fields": "username",
        }
        if cursor:
            params["since_id"] = cursor
        else:
            params["start_time"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        newest: str | None = None
        while True:
            response = await self._call(
                "GET", f"/2/users/{quote(user_id, safe='')}/mentions", params=params
            )
            answer = json_body(response)
            data = dig(answer, "data") or []
            if not isinstance(data, list):
                raise Transient(_("the list of mentions is not readable"))
            users = {
                u.get("id"): u.get("username")
                for u in dig(answer, "includes", "users") or []
                if isinstance(u, dict)
            }
            found: list[Fetched] = []
            for post in data:
                post_id, author = dig(post, "id"), dig(post, "author_id")
                created = parse_time(dig(post, "created_at"))
                if not isinstance(post_id, str) or author == user_id or created is None:
                    continue
                if newest is None or (len(post_id), post_id) > (len(newest), newest):
                    newest = post_id
                username = users.get(author)
                handle = f"@{username}" if isinstance(username, str) else str(author)
                parent = next(
                    (
                        ref.get("id")
                        for ref in dig(post, "referenced_tweets") or []
                        if isinstance(ref, dict) and ref.get("type") == "replied_to"
                    ),
                    None,
                )
                text, _links = expand(post)
                found.append(
                    Fetched(
                        remote_id=post_id,
                        kind=InteractionKind.MENTION,
                        handle=handle,
                        text=text,
                        url=f"https://x.com/{username or 'i'}/status/{post_id}",
                        created_at=created,
                        parent_remote_id=parent if isinstance(parent, str) else None,
                    )
                )
            token = dig(answer, "meta", "next_token")
            last = not isinstance(token, str) or not token or not data
            yield InteractionPage(found, (newest or cursor) if last else None)
            if last:
                return
            params["pagination_token"] = token

    async def reply(self, target: ReplyTarget, text: str, *, key: str) -> PublishResult:
        """A post in reply to the mention (``reply.in_reply_to_tweet_id``)."""
        body = {"text": text, "reply": {"in_reply_to_tweet_id": target.remote_id}}
        response = await self._call("POST", "/2/tweets", json=body)
        post_id = dig(json_body(response), "data", "id")
        if not isinstance(post_id, str) or not post_id:
            raise UnknownOutcome(_("POST /2/tweets: the answer names no post"))
        return _result(post_id)

    async def _me(self) -> Any:
        response = await self._call("GET", "/2/users/me", params={"user.fields": "public_metrics"})
        user = dig(json_body(response), "data")
        user_id = dig(user, "id")
        if not isinstance(user_id, str):
            raise Transient(_("X's /2/users/me names no account"))
        self._user_id = user_id
        return user

    async def _own_user_id(self) -> str:
        if self._user_id is None:
            await self._me()
        assert self._user_id is not None
        return self._user_id


def expand(post: Any) -> tuple[str, list[str]]:
    """A post's text as it was sent: HTML entities undone, ``t.co`` links expanded back.

    X shortens every URL in the stored text to ``https://t.co/…`` and appends one more
    for attached media; ``entities.urls`` maps each back. The media link is dropped.
    Returns the text and the expanded URLs.
    """
    text = str(dig(post, "text") or "")
    urls = dig(post, "entities", "urls")
    links: list[str] = []
    if isinstance(urls, list):
        for entity in urls:
            short, expanded = dig(entity, "url"), dig(entity, "expanded_url")
            if not isinstance(short, str) or not short:
                continue
            if dig(entity, "media_key") is not None:
                text = text.replace(short, "")
            elif isinstance(expanded, str) and expanded:
                links.append(expanded)
                text = text.replace(short, expanded)
    return html.unescape(text), links


def normalise(text: str) -> str:
    """Text compared for reconciliation: NFC, whitespace runs as one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _classify(response: httpx.Response) -> PlatformError | None:
    """X's problem documents, where they mean more than the HTTP status."""
    answer = json_body(response)
    detail = dig(answer, "detail")
    status = response.status_code
    if status == 403 and isinstance(detail, str) and _DUPLICATE in detail:
        return DuplicateContent(detail, http_status=status)
    if status == 400:
        errors = dig(answer, "errors")
        messages = (
            [m for m in (dig(e, "message") for e in errors or []) if isinstance(m, str) and m]
            if isinstance(errors, list)
            else []
        )
        if messages:
            return Rejected(
                _("X refused the request: {status} {text}").format(
                    status=status, text=" ".join(messages)[:300]
                ),
                http_status=status,
            )
    return None


def _result(post_id: str) -> PublishResult:
    return PublishResult(remote_id=post_id, remote_url=f"https://x.com/i/web/status/{post_id}")


def _count(counts: Any, key: str) -> int | None:
    value = dig(counts, key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _lock(path: Path) -> int:
    """Open and exclusively lock ``path`` (blocking); closing the descriptor unlocks."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        os.close(fd)
        raise
    return fd


def _read_json(path: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            return data
    return {}


ADAPTER = XAdapter
