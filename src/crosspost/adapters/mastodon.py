"""Mastodon: one status per delivery, images with alt text, never twice.

``POST /api/v1/statuses`` carries an ``Idempotency-Key`` derived from the
delivery, so a resend after a lost answer returns the status the first request
created (Mastodon keeps keys for an hour). Past that window,
:meth:`MastodonAdapter.find_existing` looks the status up among the account's
recent ones. Images go up first through ``POST /api/v2/media`` with the alt
text as ``description``; while the instance is still processing one (202, then
206 on ``GET /api/v1/media/:id``) the adapter polls with a bounded backoff.

The instance's ``configuration.statuses.max_characters`` (``GET
/api/v2/instance``) is the text limit unless the account sets ``max_characters``.
Rate limits come as ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset`` (ISO 8601).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import unicodedata
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from crosspost.adapters._files import read_image
from crosspost.adapters._http import (
    Endpoint,
    HttpClient,
    dig,
    header_budget,
    header_reset_parser,
    json_body,
)
from crosspost.adapters._timestamps import parse_time
from crosspost.adapters.base import Adapter
from crosspost.config import MastodonAccount
from crosspost.exceptions import AuthError, Rejected, Transient, UnknownOutcome
from crosspost.i18n import _
from crosspost.models import AccountInfo, Media, PostMetrics, PublishRequest, PublishResult

if TYPE_CHECKING:
    from crosspost.inbox import Fetched, InteractionPage, PostRef, ReplyTarget

_SAFE_KEY = re.compile(r"[A-Za-z0-9._:-]{1,64}")
#: the bytes httpx's ``json=`` sends, from one encoder made once
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def idempotency_header(key: str) -> str:
    """The ``Idempotency-Key`` for a delivery: the key itself if header-safe, else its hash."""
    if _SAFE_KEY.fullmatch(key):
        return key
    return "sha256-" + hashlib.sha256(key.encode("utf-8")).hexdigest()


class MastodonAdapter(Adapter):
    platform = "mastodon"
    idempotent_resend = True
    # Mastodon keeps an Idempotency-Key for an hour; a margin for clock and queue time.
    idempotency_ttl = timedelta(minutes=50)
    can_reconcile = True

    #: polling a processing image: first wait, longest wait, and the whole budget (seconds)
    media_poll_first = 0.1
    media_poll_max = 2.0
    media_poll_budget = 60.0
    #: statuses looked at when reconciling (the API's maximum page)
    recent_limit = 40
    #: the most pages of recent statuses read back when reconciling
    reconcile_pages = 25
    #: statuses older than the delivery by more than this are never taken for it (clock skew)
    reconcile_skew = timedelta(minutes=5)

    config: MastodonAccount

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.config, MastodonAccount):
            raise TypeError("MastodonAdapter needs a MastodonAccount")
        self._http: HttpClient | None = None
        #: ``POST /api/v1/statuses`` of ``_http``, prepared at the first publication
        self._statuses: Endpoint | None = None
        self._limit: int | None = self.config.max_characters
        self._account_id: str | None = None

    @property
    def http(self) -> HttpClient:
        if self._http is None:
            if self._secret is None:
                raise AuthError(_("accounts.{account}: no access token").format(account=self.name))
            token = self._secret.get_secret_value()
            self._http = HttpClient(
                self.config.api_url,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                transport=self._transport,
                timeout=self._timeout,
                secrets=[token],
                reset_parser=header_reset_parser("X-RateLimit-Remaining", "X-RateLimit-Reset"),
                budget_parser=header_budget("X-RateLimit-Remaining", "X-RateLimit-Reset"),
            )
        return self._http

    async def open(self) -> None:
        """Learn the instance's character limit, unless the account sets one."""
        if self.config.max_characters is not None:
            return
        try:
            response = await self.http.request("GET", "/api/v2/instance")
        except Rejected:
            return  # an instance without /api/v2/instance (before 4.0): keep the default
        limit = dig(json_body(response), "configuration", "statuses", "max_characters")
        if isinstance(limit, int) and limit > 0:
            self._limit = limit

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
            self._statuses = None

    def text_limit(self) -> int | None:
        return self._limit

    async def publish(self, request: PublishRequest) -> PublishResult:
        media_ids = [await self._upload(media) for media in request.media]
        body: dict[str, Any] = {
            "status": request.text,
            "visibility": self.config.visibility,
            "language": self.config.language,
        }
        if media_ids:
            body["media_ids"] = media_ids
        if self._statuses is None:
            self._statuses = self.http.endpoint(
                "POST", "/api/v1/statuses", headers={"Content-Type": "application/json"}
            )
        response = await self.http.send(
            self._statuses,
            _JSON.encode(body).encode("utf-8"),
            headers=(("Idempotency-Key", idempotency_header(request.idempotency_key)),),
        )
        status = json_body(response)
        result = _result(status)
        if result is None:
            raise UnknownOutcome(
                _("POST /api/v1/statuses: the answer names no status (HTTP {status})").format(
                    status=response.status_code
                ),
                http_status=response.status_code,
            )
        return result

    async def _upload(self, media: Media) -> str:
        data = await read_image(media)
        try:
            response = await self.http.request(
                "POST",
                "/api/v2/media",
                files={"file": (media.path.name, data, media.mime)},
                data={"description": media.alt},
            )
        except UnknownOutcome as exc:
            # An attachment no status uses is invisible and expires: uploading again is safe.
            raise Transient(exc.message) from exc
        attachment = json_body(response)
        media_id = dig(attachment, "id")
        if not isinstance(media_id, (str, int)):
            raise Transient(_("POST /api/v2/media: the answer names no attachment"))
        if response.status_code == 202 or dig(attachment, "url") is None:
            await self._wait_processed(str(media_id))
        return str(media_id)

    async def _wait_processed(self, media_id: str) -> None:
        wait, waited = self.media_poll_first, 0.0
        while True:
            response = await self.http.request("GET", f"/api/v1/media/{quote(media_id, safe='')}")
            if response.status_code != 206:
                return
            if waited >= self.media_poll_budget:
                raise Transient(
                    _("image {id} still processing after {seconds:.0f} s").format(
                        id=media_id, seconds=waited
                    )
                )
            await asyncio.sleep(wait)
            waited += wait
            wait = min(wait * 2, self.media_poll_max)

    async def find_existing(self, request: PublishRequest) -> PublishResult | None:
        """The status for this delivery among the account's recent ones, if it landed.

        Pages back (``max_id``) until the statuses are older than the delivery: a
        busy account may have posted many statuses since this one landed.
        """
        account_id = await self._own_account_id()
        wanted = normalise(request.text)
        earliest = request.created_at - self.reconcile_skew
        params = {"limit": str(self.recent_limit), "exclude_reblogs": "true"}
        for _page in range(self.reconcile_pages):
            response = await self.http.request(
                "GET", f"/api/v1/accounts/{quote(account_id, safe='')}/statuses", params=params
            )
            statuses = json_body(response)
            if not isinstance(statuses, list):
                raise Transient(_("the list of recent statuses is not readable"))
            older = False
            for status in statuses:
                if not isinstance(status, dict):
                    continue
                created = parse_time(status.get("created_at"))
                if created is not None and created < earliest:
                    older = True
                    continue
                text, links = html_to_text(str(status.get("content") or ""))
                if request.link and request.link not in links and request.link not in text:
                    continue
                if normalise(text) == wanted or normalise(str(status.get("text") or "")) == wanted:
                    return _result(status)
            last = dig(statuses[-1], "id") if statuses else None
            if older or len(statuses) < self.recent_limit or not isinstance(last, str | int):
                return None
            params = {**params, "max_id": str(last)}
        return None

    async def delete(self, remote_id: str) -> None:
        # 404: already gone, which is what retracting wants.
        await self.http.request(
            "DELETE", f"/api/v1/statuses/{quote(remote_id, safe='')}", ok=(404,)
        )

    async def verify(self) -> AccountInfo:
        account = json_body(await self.http.request("GET", "/api/v1/accounts/verify_credentials"))
        acct, url, account_id = dig(account, "acct"), dig(account, "url"), dig(account, "id")
        if not isinstance(acct, str) or not isinstance(account_id, (str, int)):
            raise Transient(_("verify_credentials names no account"))
        self._account_id = str(account_id)
        host = urlsplit(url).hostname if isinstance(url, str) else None
        handle = f"@{acct}" if "@" in acct or not host else f"@{acct}@{host}"
        display = dig(account, "display_name")
        followers = dig(account, "followers_count")
        return AccountInfo(
            name=handle,
            url=url if isinstance(url, str) else None,
            detail=display if isinstance(display, str) and display else None,
            followers=followers if isinstance(followers, int) else None,
        )

    async def metrics(self, remote_id: str) -> PostMetrics | None:
        status = json_body(
            await self.http.request("GET", f"/api/v1/statuses/{quote(remote_id, safe='')}")
        )

        def count(key: str) -> int | None:
            value = dig(status, key)
            return value if isinstance(value, int) else None

        # Mastodon counts no views.
        return PostMetrics(
            likes=count("favourites_count"),
            reposts=count("reblogs_count"),
            replies=count("replies_count"),
        )

    async def followers(self) -> int | None:
        return (await self.verify()).followers

    # -- the inbox (issue 9) -----------------------------------------------------------------
    fetches_interactions = True
    #: notifications per page (the API's default; its maximum is 80)
    notifications_page = 40

    async def interactions(
        self, cursor: str | None, posts: Sequence[PostRef], *, since: datetime
    ) -> AsyncIterator[InteractionPage]:
        """Mentions (``GET /api/v1/notifications?types[]=mention``).

        With a cursor (the newest notification id stored), ``min_id`` pages forward
        from it, oldest page first, and every page moves the cursor: a fetch a rate
        limit interrupts resumes where it stopped. The first fetch of an account
        reads backwards (``max_id``) until ``since`` and sets the cursor at its end.
        """
        from crosspost.inbox import InteractionPage

        if cursor is None:
            newest: str | None = None
            max_id: str | None = None
            while True:
                answer = await self._notifications(max_id=max_id)
                found = [m for m in (self._mention(n) for n in answer) if m is not None]
                ids = [str(n["id"]) for n in answer if isinstance(n.get("id"), (str, int))]
                newest = max([*ids, *([newest] if newest else [])], key=_id_key, default=None)
                reached = any(m.created_at < since for m in found)
                last = reached or len(answer) < self.notifications_page or not ids
                yield InteractionPage(
                    [m for m in found if m.created_at >= since], newest if last else None
                )
                if last:
                    return
                max_id = min(ids, key=_id_key)
        min_id = cursor
        while True:
            answer = await self._notifications(min_id=min_id)
            found = [m for m in (self._mention(n) for n in answer) if m is not None]
            ids = [str(n["id"]) for n in answer if isinstance(n.get("id"), (str, int))]
            if ids:
                min_id = max([*ids, min_id], key=_id_key)
            yield InteractionPage(found, min_id)
            if len(answer) < self.notifications_page or not ids:
                return

    async def _notifications(
        self, *, min_id: str | None = None, max_id: str | None = None
    ) -> list[dict[str, Any]]:
        params = [("types[]", "mention"), ("limit", str(self.notifications_page))]
        if min_id is not None:
            params.append(("min_id", min_id))
        if max_id is not None:
            params.append(("max_id", max_id))
        response = await self.http.request("GET", "/api/v1/notifications", params=params)
        answer = json_body(response)
        if not isinstance(answer, list):
            raise Transient(_("GET /api/v1/notifications: the answer is not a list"))
        return [n for n in answer if isinstance(n, dict)]

    def _mention(self, note: dict[str, Any]) -> Fetched | None:
        """One notification as an interaction (None: not a readable mention)."""
        from crosspost.inbox import Fetched, InteractionKind

        status = dig(note, "status")
        acct = dig(note, "account", "acct")
        created = parse_time(dig(status, "created_at"))
        status_id = dig(status, "id")
        if (
            dig(note, "type") != "mention"
            or not isinstance(status_id, (str, int))
            or not isinstance(acct, str)
            or created is None
        ):
            return None
        text, _links = html_to_text(str(dig(status, "content") or ""))
        url = dig(status, "url") or dig(status, "uri")
        parent = dig(status, "in_reply_to_id")
        return Fetched(
            remote_id=str(status_id),
            kind=InteractionKind.MENTION,
            handle=f"@{acct}",
            text=text,
            url=url if isinstance(url, str) else None,
            created_at=created,
            parent_remote_id=str(parent) if parent is not None else None,
            reply_ref={"visibility": str(dig(status, "visibility") or "public")},
        )

    async def reply(self, target: ReplyTarget, text: str, *, key: str) -> PublishResult:
        """A status in reply to the mention, naming its author (so they are notified)."""
        handle = target.handle if target.handle.startswith("@") else f"@{target.handle}"
        if handle.lower() not in text.lower():
            text = f"{handle} {text}"
        visibility = target.reply_ref.get("visibility") or self.config.visibility
        response = await self.http.request(
            "POST",
            "/api/v1/statuses",
            json={
                "status": text,
                "in_reply_to_id": target.remote_id,
                "visibility": visibility,
                "language": self.config.language,
            },
            headers={"Idempotency-Key": idempotency_header(key)},
        )
        result = _result(json_body(response))
        if result is None:
            raise UnknownOutcome(_("POST /api/v1/statuses: the answer names no status"))
        return result

    async def _own_account_id(self) -> str:
        if self._account_id is None:
            await self.verify()
        assert self._account_id is not None
        return self._account_id


class _TextExtractor(HTMLParser):
    """Status HTML back to text: paragraphs and line breaks kept, link targets collected."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")
        elif tag == "a":
            self.links.extend(value for name, value in attrs if name == "href" and value)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(content: str) -> tuple[str, list[str]]:
    """The plain text of a status's HTML ``content`` and the links in it."""
    parser = _TextExtractor()
    parser.feed(content)
    parser.close()
    return "".join(parser.parts), parser.links


def normalise(text: str) -> str:
    """Text compared for reconciliation: NFC, whitespace runs as one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _result(status: Any) -> PublishResult | None:
    status_id = dig(status, "id")
    if not isinstance(status_id, (str, int)) or status_id == "":
        return None
    url = dig(status, "url")
    return PublishResult(remote_id=str(status_id), remote_url=url if isinstance(url, str) else None)


def _id_key(value: str) -> tuple[int, str]:
    """Mastodon ids are numeric strings: compare by length, then text."""
    return (len(value), value)


ADAPTER = MastodonAdapter
