"""Bluesky (AT Protocol): one ``app.bsky.feed.post`` record per delivery, never twice.

**Session.** ``com.atproto.server.createSession`` with the handle and the app
password (the account's secret) gives an access JWT (about 2 hours) and a
refresh JWT (rotated on every use). The pair is stored in
``<state_dir>/sessions/<account>.json`` (0600; never in the database or a log)
and reused by every later adapter, so the daemon logs in once, not once per
post: createSession is limited to 30 calls in 5 minutes. An access token that
is about to expire, or that the server refuses (``ExpiredToken`` /
``InvalidToken``, answered with 400 or 401), is renewed with
``com.atproto.server.refreshSession``; only when the refresh token is refused
too does the adapter log in again.

**Never twice.** The adapter chooses the record key itself (a TID) and has the
publisher persist it (``request.checkpoint({"rkey": …})``) *before*
``com.atproto.repo.createRecord``. A later attempt of the same delivery finds
the key in ``request.progress`` and first asks ``com.atproto.repo.getRecord``:
if the record exists, that is the published post. Creating a key that exists
already fails on the server (a 500 in today's PDS, "RecordAlreadyExists" in
newer ones), and the adapter then looks the record up instead.

**Text.** A post holds at most 300 graphemes *and* 3000 UTF-8 bytes. Bluesky
renders no link by itself: every URL gets an ``app.bsky.richtext.facet#link``
whose ``byteStart``/``byteEnd`` are UTF-8 byte offsets, and hashtags a
``#tag`` facet. Without images the canonical link also becomes an
``app.bsky.embed.external`` card.

**Images.** ``com.atproto.repo.uploadBlob`` takes the raw bytes (at most
1 000 000 per image, at most 4 per post); ``app.bsky.embed.images`` carries
each blob with its ``alt`` text and ``aspectRatio`` read from the file header.

Rate limits come as ``RateLimit-Remaining`` / ``RateLimit-Reset`` (epoch
seconds) and 429 ``RateLimitExceeded``. Likes, reposts and followers come from
the AppView (``app.bsky.feed.getPosts``, ``app.bsky.actor.getProfile``), which
the PDS proxies; a server without one answers "not supported", and the adapter
then reports nothing instead of failing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from crosspost.adapters._atproto import (
    NotSupported,
    RecordNotFound,
    TidClock,
    TokenRefused,
    card_description,
    classify,
    facets,
    image_size,
    image_type,
    is_tid,
    jwt_expiry,
)
from crosspost.adapters._client import ClientAdapter
from crosspost.adapters._files import read_image, write_private
from crosspost.adapters._http import (
    HttpClient,
    as_int,
    dig,
    header_budget,
    header_reset_parser,
    json_body,
)
from crosspost.adapters._timestamps import parse_time
from crosspost.config import BlueskyAccount
from crosspost.counting import BLUESKY_MAX_BYTES, DEFAULT_LIMITS, count_bluesky
from crosspost.exceptions import AuthError, PlatformError, Rejected, Transient, UnknownOutcome
from crosspost.i18n import _
from crosspost.models import AccountInfo, Media, PostMetrics, PublishRequest, PublishResult
from crosspost.observability import EventLogger

if TYPE_CHECKING:
    from crosspost.inbox import Fetched, InteractionPage, PostRef, ReplyTarget

log = EventLogger("crosspost.adapters.bluesky")

POST_COLLECTION = "app.bsky.feed.post"
MAX_GRAPHEMES = DEFAULT_LIMITS["bluesky"]
MAX_BYTES = BLUESKY_MAX_BYTES
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 1_000_000
#: renew the access token when it expires within this many seconds
RENEW_MARGIN = 60.0
APP_URL = "https://bsky.app"


# --- sessions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    did: str
    handle: str
    access: str
    refresh: str


# --- the adapter --------------------------------------------------------------------------------


class BlueskyAdapter(ClientAdapter[HttpClient]):
    platform = "bluesky"
    idempotent_resend = False
    can_reconcile = True

    config: BlueskyAccount

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.config, BlueskyAccount):
            raise TypeError("BlueskyAdapter needs a BlueskyAccount")
        self._session: Session | None = None
        self._session_lock = asyncio.Lock()
        self._tids = TidClock()
        # Record keys chosen in this process, by delivery key: a retry within the same
        # run finds its key even where the publisher hands back no progress.
        self._chosen: dict[str, str] = {}

    # plumbing

    @property
    def handle(self) -> str:
        return self.config.handle.removeprefix("@")

    def connect(self) -> HttpClient:
        return HttpClient(
            self.config.api_url,
            headers={"Accept": "application/json"},
            transport=self._transport,
            timeout=self._timeout,
            secrets=[self._password()],
            reset_parser=header_reset_parser("RateLimit-Remaining", "RateLimit-Reset"),
            budget_parser=header_budget("RateLimit-Remaining", "RateLimit-Reset"),
        )

    def _password(self) -> str:
        return self.configured_secret(
            _("accounts.{account}: no app password").format(account=self.name)
        )

    def _classify(self, response: httpx.Response) -> PlatformError | None:
        return classify(response, self.http.redact)

    async def _xrpc(
        self,
        method: str,
        nsid: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        """Call ``nsid`` with the session's access token, renewing it once if refused."""
        headers = {} if content_type is None else {"Content-Type": content_type}

        async def send(session: Session) -> Any:
            response = await self.http.request(
                method,
                f"/xrpc/{nsid}",
                params=params,
                json=body,
                content=content,
                headers={**headers, "Authorization": f"Bearer {session.access}"},
                classify=self._classify,
            )
            return json_body(response)

        session = await self._current_session()
        try:
            return await send(session)
        except TokenRefused:
            # Refused before it was processed, so sending it again is safe.
            return await send(await self._renew(session))

    # sessions

    @property
    def _session_file(self) -> Path:
        return self.state_dir / f"{self.name}.json"

    def _session_key(self) -> str:
        """Which server, handle and app password a stored session belongs to (a digest)."""
        material = "\0".join((self.config.api_url, self.handle, self._password()))
        return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]

    def _load_session(self) -> Session | None:
        try:
            data = json.loads(self._session_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != self._session_key():
            return None
        fields = [data.get(name) for name in ("did", "handle", "accessJwt", "refreshJwt")]
        if not all(isinstance(value, str) and value for value in fields):
            return None
        did, handle, access, refresh = (str(value) for value in fields)
        return Session(did=did, handle=handle, access=access, refresh=refresh)

    def _save_session(self, session: Session) -> None:
        path = self._session_file
        data = {
            "key": self._session_key(),
            "did": session.did,
            "handle": session.handle,
            "accessJwt": session.access,
            "refreshJwt": session.refresh,
        }
        write_private(path, json.dumps(data))

    async def _current_session(self) -> Session:
        async with self._session_lock:
            session = self._session or self._load_session()
            if session is None:
                session = await self._login()
            elif _expires_soon(session.access):
                session = await self._refresh_or_login(session)
            self._session = session
            return session

    async def _renew(self, refused: Session) -> Session:
        """A new access token after ``refused`` was turned down (once for all waiters)."""
        async with self._session_lock:
            if self._session is not None and self._session.access != refused.access:
                return self._session  # another request renewed it meanwhile
            stored = self._load_session()
            if stored is not None and stored.access != refused.access:
                # Another daemon on this host renewed it (refresh tokens are single-use).
                self._session = stored
                return stored
            self._session = await self._refresh_or_login(refused)
            return self._session

    async def _refresh_or_login(self, session: Session) -> Session:
        if _expires_soon(session.refresh):
            return await self._login()
        try:
            response = await self.http.request(
                "POST",
                "/xrpc/com.atproto.server.refreshSession",
                headers={"Authorization": f"Bearer {session.refresh}"},
                classify=self._classify,
            )
        except (TokenRefused, AuthError):
            log.info("session_refresh_refused", account=self.name)
            return await self._login()
        except UnknownOutcome as exc:
            # The old refresh token stays usable for a grace period: trying again is safe.
            raise Transient(exc.message) from exc
        renewed = self._session_from(json_body(response), fallback=session)
        self._save_session(renewed)
        log.info("session_refreshed", account=self.name)
        return renewed

    async def _login(self) -> Session:
        try:
            response = await self.http.request(
                "POST",
                "/xrpc/com.atproto.server.createSession",
                json={"identifier": self.handle, "password": self._password()},
                classify=self._classify,
            )
        except UnknownOutcome as exc:
            raise Transient(exc.message) from exc
        except AuthError as exc:
            raise AuthError(
                _("Bluesky refused the app password of @{handle}: {reason}").format(
                    handle=self.handle, reason=exc.message
                ),
                http_status=exc.http_status,
            ) from exc
        session = self._session_from(json_body(response))
        self._save_session(session)
        log.info("session_created", account=self.name, did=session.did)
        return session

    def _session_from(self, data: Any, fallback: Session | None = None) -> Session:
        values = {name: dig(data, name) for name in ("did", "handle", "accessJwt", "refreshJwt")}
        if not isinstance(values["accessJwt"], str) or not isinstance(values["refreshJwt"], str):
            raise Transient(_("the session answer holds no tokens"))
        did = values["did"] if isinstance(values["did"], str) else None
        did = did or (fallback.did if fallback else None)
        if not did:
            raise Transient(_("the session answer names no account (DID)"))
        handle = values["handle"] if isinstance(values["handle"], str) else None
        return Session(
            did=did,
            handle=handle or (fallback.handle if fallback else self.handle),
            access=values["accessJwt"],
            refresh=values["refreshJwt"],
        )

    # publishing

    async def publish(self, request: PublishRequest) -> PublishResult:
        _check_text(request.text)
        images = [await _read_image(media) for media in request.media]
        if len(images) > MAX_IMAGES:
            raise Rejected(
                _("Bluesky takes at most {limit} images per post, this one has {count}").format(
                    limit=MAX_IMAGES, count=len(images)
                ),
                sent=False,
            )
        rkey = self._known_rkey(request)
        if rkey is not None:
            existing = await self._get_post(rkey)
            if existing is not None:
                log.info("record_found", account=self.name, rkey=rkey)
                return existing
        else:
            rkey = self._tids.next()
            await request.checkpoint({"rkey": rkey})
            self._chosen[request.idempotency_key] = rkey
        embed = await self._embed(request, images)
        record: dict[str, Any] = {
            "$type": POST_COLLECTION,
            "text": request.text,
            "createdAt": _now_iso(),
            "langs": [str(getattr(self.config, "language", None) or "de")],
        }
        found_facets = facets(request.text, request.link)
        if found_facets:
            record["facets"] = found_facets
        if embed is not None:
            record["embed"] = embed
        return await self._create(rkey, record)

    async def _create(self, rkey: str, record: dict[str, Any]) -> PublishResult:
        session = await self._current_session()
        body = {"repo": session.did, "collection": POST_COLLECTION, "rkey": rkey, "record": record}
        try:
            answer = await self._xrpc("POST", "com.atproto.repo.createRecord", body=body)
        except Transient:
            # Today's PDS answers 500 when the key exists already: look before retrying.
            existing = await self._get_post(rkey)
            if existing is not None:
                log.info("record_found", account=self.name, rkey=rkey)
                return existing
            raise
        uri = dig(answer, "uri")
        if not isinstance(uri, str) or not uri.startswith("at://"):
            raise UnknownOutcome(_("createRecord: the answer names no record"))
        return self._result(uri)

    async def _embed(
        self, request: PublishRequest, images: list[tuple[Media, bytes]]
    ) -> dict[str, Any] | None:
        if images:
            return {
                "$type": "app.bsky.embed.images",
                "images": [await self._upload(media, data) for media, data in images],
            }
        if not request.link:
            return None
        return {
            "$type": "app.bsky.embed.external",
            "external": {
                "uri": request.link,
                "title": request.title or request.link,
                "description": card_description(request.text, request.link),
            },
        }

    async def _upload(self, media: Media, data: bytes) -> dict[str, Any]:
        mime = image_type(data) or media.mime
        try:
            answer = await self._xrpc(
                "POST", "com.atproto.repo.uploadBlob", content=data, content_type=mime
            )
        except UnknownOutcome as exc:
            # A blob no record uses is never shown and expires: uploading again is safe.
            raise Transient(exc.message) from exc
        blob = dig(answer, "blob")
        if not isinstance(blob, dict):
            raise Transient(_("uploadBlob: the answer names no blob"))
        image: dict[str, Any] = {"image": blob, "alt": media.alt}
        size = image_size(data)
        if size is not None:
            image["aspectRatio"] = {"width": size[0], "height": size[1]}
        return image

    def _known_rkey(self, request: PublishRequest) -> str | None:
        rkey = request.progress.get("rkey") or self._chosen.get(request.idempotency_key)
        if rkey and not is_tid(rkey):
            log.warning("progress_rkey_invalid", account=self.name, rkey=rkey)
            return None
        return rkey or None

    async def _get_post(self, rkey: str) -> PublishResult | None:
        session = await self._current_session()
        params = {"repo": session.did, "collection": POST_COLLECTION, "rkey": rkey}
        try:
            answer = await self._xrpc("GET", "com.atproto.repo.getRecord", params=params)
        except RecordNotFound:
            return None
        uri = dig(answer, "uri")
        return self._result(uri) if isinstance(uri, str) else None

    def _result(self, uri: str) -> PublishResult:
        rkey = uri.rsplit("/", 1)[-1]
        handle = self._session.handle if self._session else self.handle
        return PublishResult(
            remote_id=uri,
            remote_url=f"{APP_URL}/profile/{quote(handle, safe='')}/post/{quote(rkey, safe='')}",
        )

    async def find_existing(self, request: PublishRequest) -> PublishResult | None:
        """The record under the key an earlier attempt chose; None if none was chosen."""
        rkey = self._known_rkey(request)
        return None if rkey is None else await self._get_post(rkey)

    async def delete(self, remote_id: str) -> None:
        repo, collection, rkey = _parse_at_uri(remote_id)
        session = await self._current_session()
        if repo not in (session.did, session.handle):
            raise Rejected(
                _("{uri} belongs to another account than @{handle}").format(
                    uri=remote_id, handle=session.handle
                ),
                sent=False,
            )
        body = {"repo": session.did, "collection": collection, "rkey": rkey}
        try:
            await self._xrpc("POST", "com.atproto.repo.deleteRecord", body=body)
        except RecordNotFound:
            return  # gone already, which is what deleting wants
        except UnknownOutcome as exc:
            # deleteRecord is idempotent: sending it again cannot do harm.
            raise Transient(exc.message) from exc

    async def metrics(self, remote_id: str) -> PostMetrics | None:
        try:
            answer = await self._xrpc("GET", "app.bsky.feed.getPosts", params={"uris": remote_id})
        except NotSupported:
            return None
        posts = dig(answer, "posts")
        if not isinstance(posts, list) or not posts or not isinstance(posts[0], dict):
            return None
        post = posts[0]
        return PostMetrics(
            likes=as_int(post.get("likeCount")),
            reposts=as_int(post.get("repostCount")),
            replies=as_int(post.get("replyCount")),
            views=None,
        )

    async def followers(self) -> int | None:
        session = await self._current_session()
        try:
            answer = await self._xrpc(
                "GET", "app.bsky.actor.getProfile", params={"actor": session.did}
            )
        except NotSupported:
            return None
        return as_int(dig(answer, "followersCount"))

    # -- the inbox (issue 9) -----------------------------------------------------------------
    fetches_interactions = True
    #: notifications that need an answer (likes, reposts and follows do not)
    interaction_reasons = frozenset({"mention", "reply", "quote"})
    notifications_page = 50

    async def interactions(
        self, cursor: str | None, posts: Sequence[PostRef], *, since: datetime
    ) -> AsyncIterator[InteractionPage]:
        """Mentions, replies and quotes (``app.bsky.notification.listNotifications``).

        The AppView lists the newest first; reading goes back until the cursor's
        instant (the newest ``indexedAt`` seen), which moves only with the last page.
        A PDS without an AppView answers that it does not support the method: the
        account then has no inbox (``NotSupported``, logged by the job).
        """
        from crosspost.inbox import Fetched, InteractionKind, InteractionPage

        kinds = {
            "mention": InteractionKind.MENTION,
            "reply": InteractionKind.REPLY,
            "quote": InteractionKind.QUOTE,
        }
        seen = parse_time(cursor) or since
        newest = seen
        page_cursor: str | None = None
        session = await self._current_session()
        while True:
            params = {"limit": str(self.notifications_page)}
            if page_cursor:
                params["cursor"] = page_cursor
            answer = await self._xrpc(
                "GET", "app.bsky.notification.listNotifications", params=params
            )
            items = dig(answer, "notifications")
            if not isinstance(items, list):
                raise Transient(_("listNotifications: the answer is not readable"))
            found: list[Fetched] = []
            older = False
            for item in items:
                indexed = parse_time(dig(item, "indexedAt"))
                uri, cid = dig(item, "uri"), dig(item, "cid")
                handle, reason = dig(item, "author", "handle"), dig(item, "reason")
                if indexed is None or not isinstance(uri, str) or not isinstance(cid, str):
                    continue
                if indexed <= seen:
                    older = True
                    continue
                newest = max(newest, indexed)
                if (
                    reason not in self.interaction_reasons
                    or dig(item, "author", "did") == session.did
                ):
                    continue
                record = dig(item, "record")
                root = dig(record, "reply", "root")
                parent = dig(record, "reply", "parent", "uri")
                rkey = uri.rsplit("/", 1)[-1]
                name = handle if isinstance(handle, str) else str(dig(item, "author", "did"))
                ref = {"cid": cid}
                if isinstance(root, dict) and isinstance(root.get("uri"), str):
                    ref.update(root_uri=str(root["uri"]), root_cid=str(root.get("cid") or ""))
                created = parse_time(dig(record, "createdAt")) or indexed
                found.append(
                    Fetched(
                        remote_id=uri,
                        kind=kinds[reason],
                        handle=f"@{name}",
                        text=str(dig(record, "text") or ""),
                        url=f"{APP_URL}/profile/{quote(name, safe='')}/post/{quote(rkey, safe='')}",
                        created_at=min(created, indexed),
                        parent_remote_id=parent
                        if isinstance(parent, str)
                        else dig(item, "reasonSubject"),
                        reply_ref=ref,
                    )
                )
            page_cursor = dig(answer, "cursor")
            last = older or not items or not isinstance(page_cursor, str) or not page_cursor
            yield InteractionPage(found, newest.isoformat() if last else None)
            if last:
                return

    async def reply(self, target: ReplyTarget, text: str, *, key: str) -> PublishResult:
        """A post in reply: ``reply.parent`` is the interaction, ``reply.root`` its thread."""
        _check_text(text)
        cid = target.reply_ref.get("cid")
        if not cid:
            raise Rejected(_("the interaction lacks the record's cid to reply to"), sent=False)
        parent = {"uri": target.remote_id, "cid": cid}
        root = parent
        if target.reply_ref.get("root_uri") and target.reply_ref.get("root_cid"):
            root = {"uri": target.reply_ref["root_uri"], "cid": target.reply_ref["root_cid"]}
        record: dict[str, Any] = {
            "$type": POST_COLLECTION,
            "text": text,
            "createdAt": _now_iso(),
            "langs": [str(getattr(self.config, "language", None) or "de")],
            "reply": {"root": root, "parent": parent},
        }
        found_facets = facets(text)
        if found_facets:
            record["facets"] = found_facets
        return await self._create(self._tids.next(), record)

    async def verify(self) -> AccountInfo:
        answer = await self._xrpc("GET", "com.atproto.server.getSession")
        handle, did = dig(answer, "handle"), dig(answer, "did")
        if not isinstance(handle, str) or not isinstance(did, str):
            raise Transient(_("getSession names no account"))
        return AccountInfo(
            name=f"@{handle}",
            url=f"{APP_URL}/profile/{quote(handle, safe='')}",
            detail=did,
            followers=await self.followers(),
        )


# --- helpers ------------------------------------------------------------------------------------


def _check_text(text: str) -> None:
    count, size = count_bluesky(text)
    if count > MAX_GRAPHEMES or size > MAX_BYTES:
        raise Rejected(
            _(
                "the text has {count} graphemes and {bytes} bytes; Bluesky allows "
                "{limit} graphemes and {max_bytes} bytes"
            ).format(count=count, bytes=size, limit=MAX_GRAPHEMES, max_bytes=MAX_BYTES),
            sent=False,
        )


async def _read_image(media: Media) -> tuple[Media, bytes]:
    data = await read_image(media)
    if len(data) > MAX_IMAGE_BYTES:
        raise Rejected(
            _("{path}: {size} bytes; Bluesky takes images of at most {limit} bytes").format(
                path=media.path, size=len(data), limit=MAX_IMAGE_BYTES
            ),
            sent=False,
        )
    return media, data


def _parse_at_uri(uri: str) -> tuple[str, str, str]:
    parts = uri.removeprefix("at://").split("/")
    if not uri.startswith("at://") or len(parts) != 3 or not all(parts):
        raise Rejected(
            _("{uri} is not a Bluesky record address (at://…)").format(uri=uri), sent=False
        )
    return parts[0], parts[1], parts[2]


def _expires_soon(token: str) -> bool:
    expiry = jwt_expiry(token)
    return expiry is not None and expiry - time.time() < RENEW_MARGIN


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


ADAPTER = BlueskyAdapter
