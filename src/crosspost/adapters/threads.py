"""Threads: text and image posts through containers, never twice, with a token kept fresh.

A text post is a ``TEXT`` container (``POST /{user-id}/threads`` with ``text`` and the
canonical link as ``link_attachment``, which Threads shows as a preview card); an image
post is an ``IMAGE`` container with ``image_url`` (the image's public URL on the
website, ``PublishRequest.media_urls``) and ``alt_text``; several images make a
``CAROUSEL``. ``POST /{user-id}/threads_publish?creation_id=…`` publishes the container.
The never-twice flow (container checkpoint, ``GET /{container}?fields=status``) is
:class:`~crosspost.adapters._meta.ContainerAdapter`'s.

Threads counts 500 characters, an emoji as many as its UTF-8 bytes
(:func:`crosspost.counting.count_threads`), and refuses more than 5 links.

Tokens live 60 days. :meth:`ThreadsAdapter.keep_fresh` (at ``open``, and before requests
at most every :attr:`ThreadsAdapter.recheck_every` in a daemon that runs for weeks)
refreshes the token when it expires within :attr:`ThreadsAdapter.refresh_before` (``GET
/refresh_access_token?grant_type=th_refresh_token``; Meta refreshes tokens at least a
day old) and keeps the
new one, with its expiry, in ``<state_dir>/sessions/<account>-token`` (0600). The
configured token is only the start: while it stays the same, the kept one is used;
when the admin configures a new one, it wins. When the expiry is not known yet it is
asked for once (``GET /debug_token``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crosspost.adapters._files import write_private
from crosspost.adapters._meta import ContainerAdapter, Graph, dig, insight_values, node
from crosspost.adapters._timestamps import parse_time
from crosspost.clock import Clock, system_clock
from crosspost.config import ThreadsAccount
from crosspost.counting import DEFAULT_LIMITS, count_threads
from crosspost.exceptions import AuthError, PlatformError, Rejected, Transient
from crosspost.i18n import _
from crosspost.media import check_threads_links
from crosspost.models import AccountInfo, PostMetrics, PublishRequest, PublishResult
from crosspost.observability import EventLogger, register_secret

if TYPE_CHECKING:
    from crosspost.inbox import Fetched, PostRef, ReplyTarget

METRICS = "views,likes,replies,reposts,quotes"
STATE_VERSION = 1
_VERSION_SUFFIX = re.compile(r"/v\d+(?:\.\d+)?$")

log = EventLogger("crosspost.adapters.threads")


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _epoch(value: Any) -> datetime | None:
    """A Unix time from the API; 0 (never) and nonsense are None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


class ThreadsAdapter(ContainerAdapter):
    platform = "threads"
    status_field = "status"
    text_field = "text"
    media_edge = "threads"
    publish_edge = "threads_publish"
    max_images = 20

    #: refresh the token once it expires within this
    refresh_before = timedelta(days=7)
    #: Meta refreshes only tokens at least this old
    refresh_min_age = timedelta(hours=24)
    #: how often a running daemon looks at the token's expiry again
    recheck_every = timedelta(hours=12)

    config: ThreadsAccount

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.config, ThreadsAccount):
            raise TypeError("ThreadsAdapter needs a ThreadsAccount")
        self.clock: Clock = system_clock
        self._token: str | None = None
        self._expires_at: datetime | None = None
        self._issued_at: datetime | None = None
        self._checked_at: datetime | None = None

    # -- the token ------------------------------------------------------------------------

    @property
    def token_path(self) -> Path:
        """Where the newest token and its expiry are kept (a secret: 0600, never in the DB)."""
        return self.state_dir / f"{self.name}-token"

    def _configured(self) -> str:
        if self._secret is None:
            raise AuthError(_("accounts.{account}: no access token").format(account=self.name))
        return self._secret.get_secret_value()

    def _load(self) -> str:
        """The token to use: the kept one while the configured one is unchanged."""
        if self._token is not None:
            return self._token
        configured = self._configured()
        token, expires, issued = configured, self.config.token_expires_at, None
        state = self._read_state()
        if state is not None and state.get("source") == _fingerprint(configured):
            kept = state.get("access_token")
            if isinstance(kept, str) and kept:
                token = kept
                expires = parse_time(state.get("expires_at")) or expires
                issued = parse_time(state.get("issued_at"))
        self._token, self._expires_at, self._issued_at = token, expires, issued
        register_secret(token)
        return token

    def _read_state(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.token_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("token_file_unreadable", account=self.name, error=str(exc))
            return None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            return None
        return data

    def _write_state(self) -> None:
        assert self._token is not None
        state = {
            "version": STATE_VERSION,
            "access_token": self._token,
            "expires_at": self._expires_at.isoformat() if self._expires_at else None,
            "issued_at": self._issued_at.isoformat() if self._issued_at else None,
            "source": _fingerprint(self._configured()),
        }
        write_private(self.token_path, json.dumps(state))

    def token_expires_at(self) -> datetime | None:
        if self._token is None and self._secret is not None:
            self._load()
        return self._expires_at or self.config.token_expires_at

    def graph_token(self) -> str:
        return self._load()

    async def _use(self, token: str) -> None:
        """Switch to ``token`` for every later request."""
        register_secret(token)
        self._token = token
        await self.aclose()  # the next request builds a client with the new token

    async def open(self) -> None:
        """Learn when the token expires and refresh it when that is near."""
        await self.keep_fresh(force=True)

    async def keep_fresh(self, *, force: bool = False) -> None:
        """Refresh the token when it expires within :attr:`refresh_before`.

        Runs at ``open`` and, for a daemon that runs for weeks, again before requests
        once :attr:`recheck_every` has passed since the last look; in between it costs
        nothing.
        """
        now = self.clock.now()
        if (
            not force
            and self._checked_at is not None
            and now - self._checked_at < self.recheck_every
        ):
            return
        self._checked_at = now
        self._load()
        if self._expires_at is None:
            await self._learn_expiry()
        if self._expires_at is not None and self._expires_at <= now:
            raise AuthError(
                _(
                    "the Threads token expired on {date}; create a new one and configure it "
                    "(docs/platforms/threads.md)"
                ).format(date=self._expires_at.date().isoformat())
            )
        if self._expires_at is not None and self._expires_at - now <= self.refresh_before:
            old_enough = self._issued_at is None or now - self._issued_at >= self.refresh_min_age
            if old_enough:
                await self.refresh()

    async def _learn_expiry(self) -> None:
        token = self._load()
        try:
            data = await self.graph.get("/debug_token", input_token=token)
        except PlatformError as exc:
            # Only a Threads tester's token may inspect tokens: not knowing the expiry is no
            # reason to stop. A revoked token shows up on the first real request instead.
            log.info("token_expiry_unknown", account=self.name, error=exc.message)
            return
        expires = _epoch(dig(data, "data", "expires_at"))
        if expires is None:
            return
        self._expires_at = expires
        self._issued_at = _epoch(dig(data, "data", "issued_at"))
        self._write_state()

    async def refresh(self) -> None:
        """Exchange the token for a fresh one (60 more days) and keep it."""
        token = self._load()
        root = _VERSION_SUFFIX.sub("", self.config.api_url.rstrip("/"))
        client = Graph(
            root,
            token,
            transport=self._transport,
            timeout=self._timeout,
            clock=self.clock,
            bearer=False,  # this endpoint takes the token as access_token
        )
        try:
            data = await client.get(
                "/refresh_access_token", grant_type="th_refresh_token", access_token=token
            )
        except PlatformError as exc:
            # The token still works until it expires (a revoked one shows up on the first
            # real request); the next start tries again.
            log.warning("token_refresh_failed", account=self.name, error=exc.message)
            return
        finally:
            await client.aclose()
        fresh = dig(data, "access_token")
        lifetime = dig(data, "expires_in")
        if not isinstance(fresh, str) or not fresh:
            log.warning("token_refresh_failed", account=self.name, error="no access_token")
            return
        now = self.clock.now()
        await self._use(fresh)
        self._issued_at = now
        if isinstance(lifetime, (int, float)) and not isinstance(lifetime, bool) and lifetime > 0:
            self._expires_at = now + timedelta(seconds=lifetime)
        else:
            self._expires_at = None
        self._write_state()
        log.info(
            "token_refreshed",
            account=self.name,
            expires_at=self._expires_at.isoformat(timespec="seconds") if self._expires_at else None,
        )

    # -- posts --------------------------------------------------------------------------

    async def publish(self, request: PublishRequest) -> PublishResult:
        await self.keep_fresh()
        return await super().publish(request)

    async def find_existing(self, request: PublishRequest) -> PublishResult | None:
        await self.keep_fresh()
        return await super().find_existing(request)

    async def delete(self, remote_id: str) -> None:
        await self.keep_fresh()
        await super().delete(remote_id)

    @property
    def user_id(self) -> str:
        return self.config.user_id

    def _status_fields(self) -> str:
        return "status,error_message"

    def check(self, request: PublishRequest) -> None:
        length, limit = count_threads(request.text), DEFAULT_LIMITS["threads"]
        if length > limit:
            raise Rejected(
                _(
                    "too long for Threads: {length} of {limit} characters (emoji count their "
                    "UTF-8 bytes); add a shorter variant"
                ).format(length=length, limit=limit),
                sent=False,
            )
        problem = check_threads_links(request.text, None if request.media else request.link)
        if problem is not None:
            raise Rejected(problem, sent=False)

    def container_fields(self, request: PublishRequest, urls: Sequence[str]) -> dict[str, str]:
        if not urls:
            fields = {"media_type": "TEXT", "text": request.text}
            if request.link:
                fields["link_attachment"] = request.link
            return fields
        if len(urls) == 1:
            return {
                "media_type": "IMAGE",
                "image_url": urls[0],
                "text": request.text,
                "alt_text": request.media[0].alt,
            }
        return {"media_type": "CAROUSEL", "text": request.text}

    def item_fields(self, url: str, alt: str) -> dict[str, str]:
        return {"media_type": "IMAGE", **super().item_fields(url, alt)}

    async def metrics(self, remote_id: str) -> PostMetrics | None:
        await self.keep_fresh()
        try:
            data = await self.graph.get(f"/{node(remote_id)}/insights", metric=METRICS)
        except Rejected:
            return None  # no insights for this post (e.g. threads_manage_insights not granted)
        values = insight_values(data)
        reposts = values.get("reposts")
        if reposts is not None:
            reposts += values.get("quotes", 0)  # a quote shares the post too
        return PostMetrics(
            likes=values.get("likes"),
            reposts=reposts,
            replies=values.get("replies"),
            views=values.get("views"),
        )

    async def followers(self) -> int | None:
        try:
            data = await self.graph.get(
                f"/{node(self.user_id)}/threads_insights", metric="followers_count"
            )
        except Rejected:
            return None  # threads_manage_insights not granted
        return insight_values(data).get("followers_count")

    # -- the inbox (issue 9) -----------------------------------------------------------------

    async def comments(self, post: PostRef, after: datetime) -> list[Fetched]:
        """Replies to the account's recent posts (``GET /{media-id}/replies``, newest first)."""
        from crosspost.adapters._comments import graph_comments, username_comment
        from crosspost.inbox import InteractionKind

        await self.keep_fresh()

        def parse(raw: Any) -> Fetched | None:
            url = dig(raw, "permalink")
            return username_comment(post, raw, kind=InteractionKind.REPLY, url=url)

        return await graph_comments(
            self.graph,
            f"/{node(post.remote_id)}/replies",
            {"fields": "id,text,username,timestamp,permalink", "reverse": "true"},
            parse,
            after,
            newest_first=True,
        )

    async def reply(self, target: ReplyTarget, text: str, *, key: str) -> PublishResult:
        """A text post in reply (``reply_to_id``): container, then ``threads_publish``."""
        await self.keep_fresh()
        path = f"/{node(self.user_id)}/{self.media_edge}"
        container = await self._create(
            path, {"media_type": "TEXT", "text": text, "reply_to_id": target.remote_id}
        )
        await self.wait_finished(container)
        return await self.publish_container(container)

    async def verify(self) -> AccountInfo:
        await self.keep_fresh()
        data = await self.graph.get("/me", fields="id,username,name")
        username, user_id = dig(data, "username"), dig(data, "id")
        if not isinstance(username, str) or not username:
            raise Transient(_("the Threads account's name is not readable"))
        if user_id is not None and str(user_id) != self.config.user_id:
            raise AuthError(
                _(
                    "the token belongs to Threads user {actual}, but accounts.{account}.user_id "
                    "is {configured}"
                ).format(actual=user_id, account=self.name, configured=self.config.user_id)
            )
        name = dig(data, "name")
        return AccountInfo(
            name=f"@{username}",
            url=f"https://www.threads.net/@{username}",
            detail=name if isinstance(name, str) and name else None,
            token_expires_at=self.token_expires_at(),
            followers=await self.followers(),
        )


ADAPTER = ThreadsAdapter
