"""What the Meta adapters share: the Graph API's errors and usage headers, and the
container flow of Instagram and Threads.

Errors
    Every Graph API failure carries ``{"error": {"message", "type", "code",
    "error_subcode", "fbtrace_id"}}``, mostly with HTTP 400 whatever went wrong, so the
    code decides (Graph API "Handling Errors" guide)::

        190, 102 (token expired, revoked or invalid),
        10, 200-299 (permission missing)              -> AuthError
        4, 17, 32, 341, 613, 80000-80014 (throttled),
        368 (temporarily blocked), 9/2207042
        (Instagram's daily publishing limit)          -> RateLimited(until)
        1, 2 (temporary), is_transient, HTTP 5xx      -> Transient
        anything else (506 duplicate post, 100 ...)   -> GraphRejected (a Rejected with
                                                          the code, so adapters can tell)

    ``until`` is the longest ``estimated_time_to_regain_access`` (minutes) in
    ``X-Business-Use-Case-Usage``, else ``Retry-After``, else
    :data:`DEFAULT_THROTTLE_WAIT`. A success whose usage headers say the budget is spent
    (a regain estimate, or any ``X-App-Usage``/BUC figure at 100 %) blocks the next
    request the same way, so nothing goes out while Meta would refuse it.

Containers
    Instagram and Threads publish in two steps: a *container* is created (Meta fetches
    the image from its public URL), then published. The container id is checkpointed
    before anything depends on it; a later attempt asks the container's status first:
    ``PUBLISHED`` means the post is live (its id is found among the account's recent
    posts), ``FINISHED`` means it is ready to publish, ``IN_PROGRESS`` means wait,
    ``ERROR``/``EXPIRED`` mean start over with a new container. An unpublished container
    is invisible and expires after 24 hours, so creating one again is always safe.
"""

from __future__ import annotations

import abc
import asyncio
import json
import unicodedata
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

import httpx

from crosspost.adapters._http import HttpClient, parse_retry_after
from crosspost.adapters._timestamps import parse_time
from crosspost.adapters.base import Adapter
from crosspost.clock import Clock, system_clock
from crosspost.exceptions import (
    AuthError,
    PlatformError,
    RateLimited,
    Rejected,
    Transient,
    UnknownOutcome,
)
from crosspost.i18n import _
from crosspost.models import PublishRequest, PublishResult

if TYPE_CHECKING:
    from crosspost.inbox import Fetched, InteractionPage, PostRef

THROTTLING_CODES = frozenset({4, 17, 32, 341, 613, *range(80000, 80015)})
#: "temporarily blocked for policies violations": wait and retry (Graph API guide)
POLICY_BLOCK = 368
AUTH_CODES = frozenset({102, 190})
PERMISSION_CODES = frozenset({10, *range(200, 300)})
TRANSIENT_CODES = frozenset({1, 2})
DUPLICATE_POST = 506
#: "Unsupported get/delete request. Object does not exist, cannot be loaded due to
#: missing permissions, or does not support this operation"
NO_SUCH_OBJECT = (100, 33)
#: Instagram: the container is not ready to be published yet
NOT_READY = 9007
#: Instagram: the account reached its publishing limit for the moving 24 hours
PUBLISH_LIMIT = (9, 2207042)
#: how long to hold back after a throttling error that names no time. Meta's windows
#: roll over an hour; a quarter of it lets usage decay without hammering.
DEFAULT_THROTTLE_WAIT = timedelta(minutes=15)
PUBLISH_LIMIT_WAIT = timedelta(hours=1)
USAGE_HEADERS = ("X-App-Usage", "X-Page-Usage", "X-Business-Use-Case-Usage")


@dataclass(frozen=True, slots=True)
class GraphError:
    """The ``error`` object of a Graph API answer."""

    message: str
    type: str | None
    code: int | None
    subcode: int | None
    fbtrace_id: str | None
    is_transient: bool


class GraphRejected(Rejected):
    """The platform refused this post; ``code``/``subcode`` say why (506: duplicate)."""

    def __init__(
        self,
        message: str | None = None,
        *,
        code: int | None = None,
        subcode: int | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status)
        self.code = code
        self.subcode = subcode


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def graph_error(response: httpx.Response) -> GraphError | None:
    """The Graph API error envelope of ``response``, if it has one."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    message = error.get("error_user_msg") or error.get("message") or ""
    kind = error.get("type")
    trace = error.get("fbtrace_id")
    return GraphError(
        message=" ".join(str(message).split()),
        type=kind if isinstance(kind, str) else None,
        code=_int(error.get("code")),
        subcode=_int(error.get("error_subcode")),
        fbtrace_id=trace if isinstance(trace, str) else None,
        is_transient=error.get("is_transient") is True,
    )


def _usage_entries(response: httpx.Response) -> list[Mapping[str, Any]]:
    """Every usage record in the usage headers (BUC holds a list per business object)."""
    entries: list[Mapping[str, Any]] = []
    for header in USAGE_HEADERS:
        raw = response.headers.get(header)
        if not raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        if header == "X-Business-Use-Case-Usage":
            for records in data.values():
                if isinstance(records, list):
                    entries.extend(r for r in records if isinstance(r, dict))
        else:
            entries.append(data)
    return entries


def usage_until(response: httpx.Response, now: datetime) -> datetime | None:
    """When the usage headers allow the next request, if they say the budget is spent."""
    minutes = 0.0
    spent = False
    for entry in _usage_entries(response):
        regain = entry.get("estimated_time_to_regain_access")
        if isinstance(regain, (int, float)) and not isinstance(regain, bool):
            minutes = max(minutes, float(regain))
        for key in ("call_count", "total_time", "total_cputime"):
            value = entry.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 100:
                spent = True
    if minutes > 0:
        try:
            return now + timedelta(minutes=minutes)
        except OverflowError:
            return now + DEFAULT_THROTTLE_WAIT
    if spent:
        return now + DEFAULT_THROTTLE_WAIT
    return None


def normalise(text: str) -> str:
    """Text compared for reconciliation: NFC, whitespace runs as one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def dig(data: Any, *keys: str | int) -> Any:
    """``data[k1][k2]…`` through dicts and lists, or None where the path breaks."""
    for key in keys:
        if isinstance(key, int):
            if not isinstance(data, list) or not -len(data) <= key < len(data):
                return None
            data = data[key]
        elif isinstance(data, dict):
            data = data.get(key)
        else:
            return None
    return data


def node(value: str) -> str:
    """A Graph node id as one path segment."""
    return quote(value, safe="")


class Graph:
    """An :class:`HttpClient` speaking the Graph API: token, error envelope, usage headers."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        clock: Clock = system_clock,
        bearer: bool = True,
    ) -> None:
        self.clock = clock
        headers = {"Accept": "application/json"}
        if bearer:  # else the caller passes the token as a parameter where the API wants it
            headers["Authorization"] = f"Bearer {token}"
        self.http = HttpClient(
            base_url,
            headers=headers,
            transport=transport,
            timeout=timeout,
            secrets=[token],
            reset_parser=usage_until,
            clock=clock,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def request(
        self, method: str, url: str, *, ok: Sequence[int] = (), **kwargs: Any
    ) -> httpx.Response:
        return await self.http.request(method, url, classify=self.classify, ok=ok, **kwargs)

    async def get(self, url: str, **params: Any) -> Any:
        return answer(await self.request("GET", url, params=params))

    async def post(self, url: str, data: Mapping[str, Any], **kwargs: Any) -> Any:
        return answer(await self.request("POST", url, data=dict(data), **kwargs))

    def classify(self, response: httpx.Response) -> PlatformError | None:
        """The crosspost error for a Graph API failure (None: the status decides)."""
        error = graph_error(response)
        if error is None:
            return None
        status = response.status_code
        method = response.request.method
        what = f"{method} {self.http.redact(response.request.url.path)}"
        detail = error.message or response.reason_phrase
        if error.code is not None:
            detail += f" (#{error.code}" + (f"/{error.subcode}" if error.subcode else "") + ")"
        if error.fbtrace_id:
            detail += f" fbtrace_id {error.fbtrace_id}"
        message = _("{what}: {status} {text}").format(
            what=what, status=status, text=self.http.redact(detail)[:400]
        )
        code = error.code
        if code in AUTH_CODES or code in PERMISSION_CODES:
            return AuthError(message, http_status=status)
        throttled = code in THROTTLING_CODES or code == POLICY_BLOCK
        if throttled or (code, error.subcode) == PUBLISH_LIMIT:
            return self._throttled(response, message, code)
        if code in TRANSIENT_CODES or error.is_transient or status >= 500:
            return Transient(message, http_status=status)
        if status in (401, 403) and code is None:
            return AuthError(message, http_status=status)
        return GraphRejected(message, code=code, subcode=error.subcode, http_status=status)

    def _throttled(self, response: httpx.Response, message: str, code: int | None) -> RateLimited:
        now = self.clock.now()
        fallback = PUBLISH_LIMIT_WAIT if code == PUBLISH_LIMIT[0] else DEFAULT_THROTTLE_WAIT
        until = (
            usage_until(response, now)
            or parse_retry_after(response.headers.get("Retry-After"), now)
            or now + fallback
        )
        if self.http.blocked_until is None or self.http.blocked_until < until:
            self.http.blocked_until = until
        return RateLimited(message, until=until, http_status=response.status_code)


def answer(response: httpx.Response) -> Any:
    """The JSON body of a successful answer (None when it is not JSON)."""
    try:
        return response.json()
    except ValueError:
        return None


class GraphAdapter(Adapter):
    """Facebook, Instagram and Threads: one Graph API client per account, built on first
    use and closed with the adapter; comments fetched per post and answered as comments."""

    #: the clock the Graph client reads its usage headers' waits against
    clock: Clock = system_clock
    _graph: Graph | None = None

    def graph_token(self) -> str:
        """The token the Graph client sends: the configured one."""
        if self._secret is None:
            raise AuthError(self.no_token())
        return self._secret.get_secret_value()

    def no_token(self) -> str:
        """The admin's message when the account has no token configured."""
        return _("accounts.{account}: no access token").format(account=self.name)

    @property
    def graph(self) -> Graph:
        """The account's Graph API client."""
        if self._graph is None:
            self._graph = Graph(
                self.config.api_url,
                self.graph_token(),
                transport=self._transport,
                timeout=self._timeout,
                clock=self.clock,
            )
        return self._graph

    async def aclose(self) -> None:
        """Close the Graph client; the next request builds a new one."""
        if self._graph is not None:
            await self._graph.aclose()
            self._graph = None

    # -- the inbox (issue 9) -----------------------------------------------------------------
    fetches_interactions = True

    def interactions(
        self, cursor: str | None, posts: Sequence[PostRef], *, since: datetime
    ) -> AsyncIterator[InteractionPage]:
        """The comments on the account's recent posts, post by post (:meth:`comments`)."""
        from crosspost.adapters._comments import comments_per_post

        return comments_per_post(posts, cursor, since, self.comments)

    @abc.abstractmethod
    async def comments(self, post: PostRef, after: datetime) -> list[Fetched]:
        """The comments (or replies) on one of the account's posts newer than ``after``."""

    async def comment(self, path: str, text: str, *, no_id: str) -> PublishResult:
        """Post ``text`` as a comment to the node edge ``path``; UnknownOutcome with
        ``no_id`` when the answer names no comment."""
        data = await self.graph.post(path, {"message": text})
        reply_id = dig(data, "id")
        if not isinstance(reply_id, (str, int)) or reply_id == "":
            raise UnknownOutcome(no_id)
        return PublishResult(remote_id=str(reply_id), remote_url=None)

    async def delete(self, remote_id: str) -> None:
        """Delete the post; one already gone (error 100/33) counts as deleted."""
        try:
            await self.graph.request("DELETE", f"/{node(remote_id)}", ok=(404,))
        except GraphRejected as exc:
            if (exc.code, exc.subcode) == NO_SUCH_OBJECT:
                return  # already gone, which is what retracting wants
            raise

    # -- reconciling ------------------------------------------------------------------

    #: recent posts looked at when reconciling (the Graph API's largest page: a busy
    #: account, a daemon down a while)
    recent_limit = 100
    #: posts older than the delivery by more than this are never taken for it (clock skew)
    reconcile_skew = timedelta(minutes=5)

    async def recent_post(
        self,
        path: str,
        request: PublishRequest,
        *,
        fields: tuple[str, str, str],
        unreadable: str,
        link_in_text: bool = False,
    ) -> tuple[str, Any] | None:
        """The request's post among the newest :attr:`recent_limit` at the edge ``path``,
        whose ``fields`` are its text, time and permalink: at most :attr:`reconcile_skew`
        older than the delivery, with exactly its text (and, with ``link_in_text``, its link
        in the text). Its id and permalink (unchecked); Transient(``unreadable``) when the
        list cannot be read."""
        text_field, time_field, url_field = fields
        data = await self.graph.get(path, fields=",".join(("id", *fields)), limit=self.recent_limit)
        items = dig(data, "data")
        if not isinstance(items, list):
            raise Transient(unreadable)
        wanted = normalise(request.text)
        earliest = request.created_at - self.reconcile_skew
        for item in items:  # newest first
            created = parse_time(dig(item, time_field))
            if created is not None and created < earliest:
                continue
            text, item_id = dig(item, text_field), dig(item, "id")
            if not isinstance(text, str) or not isinstance(item_id, (str, int)) or item_id == "":
                continue
            if link_in_text and request.link and request.link not in text:
                continue
            if normalise(text) == wanted:
                return str(item_id), dig(item, url_field)
        return None


class ContainerStatus:
    PUBLISHED = "PUBLISHED"
    FINISHED = "FINISHED"
    IN_PROGRESS = "IN_PROGRESS"
    ERROR = "ERROR"
    EXPIRED = "EXPIRED"


class ContainerAdapter(GraphAdapter):
    """Instagram and Threads: container, checkpoint, status, publish; never twice."""

    can_reconcile = True
    idempotent_resend = False

    #: the container's status field: Instagram ``status_code``, Threads ``status``
    status_field: ClassVar[str]
    #: the field holding the post's text: Instagram ``caption``, Threads ``text``
    text_field: ClassVar[str]
    #: edges under the user: containers and the published posts, and publishing
    media_edge: ClassVar[str]
    publish_edge: ClassVar[str]
    #: how many images one post (a carousel) may hold
    max_images: ClassVar[int]

    #: polling a container that is still processing: first wait, longest wait, budget (s)
    container_poll_first = 0.5
    container_poll_max = 4.0
    container_poll_budget = 20.0

    @property
    @abc.abstractmethod
    def user_id(self) -> str:
        """The Graph node that owns the account's posts."""

    @abc.abstractmethod
    def check(self, request: PublishRequest) -> None:
        """Raise Rejected (sent=False) for a post the platform would refuse."""

    @abc.abstractmethod
    def container_fields(self, request: PublishRequest, urls: Sequence[str]) -> dict[str, str]:
        """The fields of the post's container (one image, text only, or the carousel's)."""

    def item_fields(self, url: str, alt: str) -> dict[str, str]:
        """The fields of one carousel item's container."""
        return {"image_url": url, "alt_text": alt, "is_carousel_item": "true"}

    # -- publishing ---------------------------------------------------------------------

    async def publish(self, request: PublishRequest) -> PublishResult:
        self.check(request)
        urls = self.media_urls(request)
        container = request.progress.get("container")
        if container:
            status = await self.container_status(container)
            if status == ContainerStatus.PUBLISHED:
                found = await self.find_recent(request)
                if found is None:
                    raise UnknownOutcome(
                        _(
                            "container {container} is published, but no post of the "
                            "{count} most recent ones carries this text; look at the account"
                        ).format(container=container, count=self.recent_limit),
                        http_status=None,
                    )
                return found
            if status in (ContainerStatus.FINISHED, ContainerStatus.IN_PROGRESS):
                if status == ContainerStatus.IN_PROGRESS:
                    await self.wait_finished(container)
                return await self.publish_container(container)
            # ERROR, EXPIRED or unknown: that container will never go live; start over.
        container = await self.create_container(request, urls)
        await request.checkpoint({"container": container})
        await self.wait_finished(container)
        return await self.publish_container(container)

    def media_urls(self, request: PublishRequest) -> tuple[str, ...]:
        """The public URLs of the post's images; Transient until the website has them all."""
        if not request.media:
            return ()
        if len(request.media) > self.max_images:
            raise Rejected(
                _("{platform} takes at most {limit} images in a post; this one has {count}").format(
                    platform=self.platform, limit=self.max_images, count=len(request.media)
                ),
                sent=False,
            )
        if len(request.media_urls) < len(request.media):
            raise Transient(_("waiting for the website to publish the image"))
        urls = request.media_urls[: len(request.media)]
        for url in urls:
            if not url.startswith("https://"):
                raise Rejected(
                    _(
                        "{platform} fetches images only from https addresses, not {url}; "
                        "give the feed account an https public_url"
                    ).format(platform=self.platform, url=url),
                    sent=False,
                )
        return urls

    async def create_container(self, request: PublishRequest, urls: Sequence[str]) -> str:
        """Create the post's container (and its carousel items first); return its id."""
        path = f"/{node(self.user_id)}/{self.media_edge}"
        fields = self.container_fields(request, urls)
        if len(urls) > 1:
            children = [
                await self._create(path, self.item_fields(url, media.alt))
                for url, media in zip(urls, request.media, strict=True)
            ]
            fields["children"] = ",".join(children)
        return await self._create(path, fields)

    async def _create(self, path: str, fields: Mapping[str, str]) -> str:
        try:
            data = await self.graph.post(path, fields)
        except UnknownOutcome as exc:
            # A container nobody publishes is invisible and expires: creating one again is safe.
            raise Transient(exc.message) from exc
        container = dig(data, "id")
        if not isinstance(container, (str, int)) or container == "":
            raise Transient(
                _("POST {edge}: the answer names no container").format(edge=self.media_edge)
            )
        return str(container)

    async def container_status(self, container: str) -> str:
        data = await self.graph.get(f"/{node(container)}", fields=self._status_fields())
        status = dig(data, self.status_field)
        return status if isinstance(status, str) else ""

    def _status_fields(self) -> str:
        return self.status_field

    async def wait_finished(self, container: str) -> None:
        """Poll the container until it is ready to publish, within the budget."""
        wait, waited = self.container_poll_first, 0.0
        while True:
            data = await self.graph.get(f"/{node(container)}", fields=self._status_fields())
            status = dig(data, self.status_field)
            if status == ContainerStatus.FINISHED:
                return
            if status == ContainerStatus.PUBLISHED:
                return  # publishing it again is refused and answered with an error we map
            if status in (ContainerStatus.ERROR, ContainerStatus.EXPIRED):
                reason = dig(data, "error_message") or dig(data, "status") or status
                raise Transient(
                    _("container {container} failed: {reason}").format(
                        container=container, reason=reason
                    )
                )
            if waited >= self.container_poll_budget:
                raise Transient(
                    _("container {container} still processing after {seconds:.0f} s").format(
                        container=container, seconds=waited
                    )
                )
            await asyncio.sleep(wait)
            waited += wait
            wait = min(wait * 2, self.container_poll_max)

    async def publish_container(self, container: str) -> PublishResult:
        path = f"/{node(self.user_id)}/{self.publish_edge}"
        try:
            data = await self.graph.post(path, {"creation_id": container})
        except GraphRejected as exc:
            if exc.code == NOT_READY:
                raise Transient(exc.message, http_status=exc.http_status) from exc
            raise
        media_id = dig(data, "id")
        if not isinstance(media_id, (str, int)) or media_id == "":
            raise UnknownOutcome(
                _("POST {edge}: the answer names no post").format(edge=self.publish_edge)
            )
        return PublishResult(
            remote_id=str(media_id), remote_url=await self.permalink(str(media_id))
        )

    async def permalink(self, media_id: str) -> str | None:
        """The post's public URL; None when it cannot be read (the post is live anyway)."""
        try:
            data = await self.graph.get(f"/{node(media_id)}", fields="permalink")
        except PlatformError:
            return None
        url = dig(data, "permalink")
        return url if isinstance(url, str) else None

    # -- reconciling ------------------------------------------------------------------

    async def find_existing(self, request: PublishRequest) -> PublishResult | None:
        """The post for this delivery, if it landed: container status first, else a lookup."""
        container = request.progress.get("container")
        if container:
            status = await self.container_status(container)
            if status != ContainerStatus.PUBLISHED:
                return None
        return await self.find_recent(request)

    async def find_recent(self, request: PublishRequest) -> PublishResult | None:
        """The account's recent post carrying exactly this text, if any."""
        found = await self.recent_post(
            f"/{node(self.user_id)}/{self.media_edge}",
            request,
            fields=(self.text_field, "timestamp", "permalink"),
            unreadable=_("the list of recent posts is not readable"),
        )
        if found is None:
            return None
        media_id, url = found
        return PublishResult(media_id, url if isinstance(url, str) else None)

    # -- the rest of the port -------------------------------------------------------------

    async def delete(self, remote_id: str) -> None:
        try:
            await super().delete(remote_id)
        except GraphRejected as exc:
            raise Rejected(
                _("{platform} refused to delete post {id}: {reason}; delete it in the app").format(
                    platform=self.platform, id=remote_id, reason=exc.message
                ),
                http_status=exc.http_status,
            ) from exc


def insight_values(data: Any) -> dict[str, int]:
    """``{"data": [{"name", "values": [{"value"}]} | {"name", "total_value": {"value"}}]}``."""
    values: dict[str, int] = {}
    for entry in dig(data, "data") or []:
        name = dig(entry, "name")
        value = dig(entry, "total_value", "value")
        if value is None:
            value = dig(entry, "values", -1, "value")
        if isinstance(name, str) and isinstance(value, int) and not isinstance(value, bool):
            values[name] = value
    return values


__all__ = [
    "DEFAULT_THROTTLE_WAIT",
    "DUPLICATE_POST",
    "NO_SUCH_OBJECT",
    "THROTTLING_CODES",
    "ContainerAdapter",
    "ContainerStatus",
    "Graph",
    "GraphAdapter",
    "GraphError",
    "GraphRejected",
    "answer",
    "dig",
    "graph_error",
    "insight_values",
    "node",
    "normalise",
    "parse_time",
    "usage_until",
]
