"""The one place where httpx errors and HTTP statuses become crosspost errors.

::

    httpx.ConnectError, ConnectTimeout, PoolTimeout  -> Transient       (nothing was sent)
    httpx.ReadTimeout, ReadError, RemoteProtocolError,
    WriteError, WriteTimeout                          -> UnknownOutcome  (may have landed)
                                                         (Transient for safe methods)
    401, 403                                          -> AuthError
    429                                               -> RateLimited(until=Retry-After/reset)
    500-599, 408                                      -> Transient
    other 4xx                                         -> Rejected (the platform's message)

Platform-specific envelopes (Meta error codes, Telegram's ``ok: false``) are
handled by passing ``classify=`` to :meth:`HttpClient.request`, which may return
a more specific error before the status mapping applies.

The client also remembers rate-limit headers: when a platform says no request
may be made before an instant, the next request raises :class:`RateLimited`
without being sent, so nothing ever goes out before ``Retry-After`` has passed.
And it hands what each answer says of the account's budget (requests left, and
when the window refills) to the publisher through :data:`ANSWERS`, which writes
it to the database with the delivery's settlement: the claims of every daemon
are capped by it (docs/scaling.md, "Rate limits").
"""

from __future__ import annotations

import functools
import json
import ssl
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from crosspost import __version__
from crosspost.adapters.base import ANSWERS
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
from crosspost.models import Budget

USER_AGENT = f"crosspost/{__version__} (+https://github.com/zv-staedtedreieck/crosspost)"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})

Classifier = Callable[[httpx.Response], PlatformError | None]
#: httpx's errors for a request that got no answer (mapped by ``HttpClient._failed``)
_TRANSPORT_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)
#: ... and those among them where nothing was sent
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
ResetParser = Callable[[httpx.Response, datetime], datetime | None]
#: the largest count of requests left that is stored (``account_state.limit_remaining``)
COUNT_MAX = 2**31 - 1
#: the account's budget an answer states (requests left, and when the window refills)
BudgetParser = Callable[[httpx.Response, datetime], Budget | None]


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """``Retry-After`` as seconds or an HTTP date, as an aware UTC instant."""
    if not value:
        return None
    value = value.strip()
    try:
        return now + timedelta(seconds=max(0.0, float(value)))
    except (ValueError, OverflowError):  # "soon", or "1e20"/"inf": no usable hint
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def parse_reset(value: str | None, now: datetime) -> datetime | None:
    """A rate-limit reset header: epoch seconds, delta seconds, or ISO 8601."""
    if not value:
        return None
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    try:
        if number > 1_000_000_000:  # epoch seconds
            return datetime.fromtimestamp(number, UTC)
        return now + timedelta(seconds=max(0.0, number))
    except (ValueError, OverflowError, OSError):  # "inf", "1e30": no usable hint
        return None


def platform_message(response: httpx.Response, limit: int = 300) -> str:
    """The platform's own words about a failure, shortened."""
    text = ""
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        text = response.text
    else:
        text = _message_from_json(body) or response.text
    text = " ".join(text.split())
    if not text:
        text = response.reason_phrase
    return text[:limit]


def _message_from_json(body: Any) -> str:
    if isinstance(body, dict):
        # XRPC and others put a code in "error" and the words in "message".
        error, message = body.get("error"), body.get("message")
        if isinstance(error, str) and " " not in error and isinstance(message, str) and message:
            return f"{error}: {message}"
        for key in ("error_description", "error", "message", "detail", "description", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict):
                nested = _message_from_json(value)
                if nested:
                    return nested
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return _message_from_json(errors[0])
    return ""


def json_body(response: httpx.Response) -> Any:
    """The response's JSON, or None when it has none (platforms answer HTML on some errors)."""
    try:
        return response.json()
    except ValueError:
        return None


def dig(data: Any, *keys: str) -> Any:
    """``data[k1][k2]…`` through nested dicts, None as soon as a level is missing."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def as_int(value: Any) -> int | None:
    """A count from JSON: an int (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context (httpx's defaults) for every account's client.

    Building one reads the whole CA bundle (tens of milliseconds); per client, a
    daemon with 20 accounts spent most of a second on it at its first deliveries.
    """
    return httpx.create_ssl_context()


def warm_up() -> None:
    """Do at a daemon's start what the first request would otherwise do (~0.5 s of CPU):
    build the TLS context and import what httpx imports lazily (httpcore, anyio's
    asyncio backend), so the first deliveries are not late by it."""
    import importlib

    shared_ssl_context()
    importlib.import_module("httpcore")
    importlib.import_module("anyio._backends._asyncio")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One request an :class:`HttpClient` sends often, prepared by :meth:`HttpClient.endpoint`.

    Its repr shows only ``what`` (redacted): the headers carry the token, and a
    URL may too (Telegram's).
    """

    method: str
    url: httpx.URL = field(repr=False)
    #: "POST /api/v1/statuses": how error messages name the request
    what: str
    #: the client's headers with the endpoint's own and ``Host``
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    extensions: dict[str, Any] = field(repr=False)
    transport: httpx.AsyncBaseTransport = field(repr=False)


class HttpClient:
    """An ``httpx.AsyncClient`` for one account, with errors mapped and limits remembered."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        secrets: Iterable[str] = (),
        reset_parser: ResetParser | None = None,
        budget_parser: BudgetParser | None = None,
        clock: Clock = system_clock,
    ) -> None:
        all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=all_headers,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,
            verify=shared_ssl_context() if transport is None else True,
        )
        self._secrets = [s for s in secrets if s]
        self._reset_parser = reset_parser
        self._budget_parser = budget_parser
        self._clock = clock
        #: no request may be sent before this instant (from Retry-After / reset headers)
        self.blocked_until: datetime | None = None

    async def aclose(self) -> None:
        await self._client.aclose()

    def add_secret(self, secret: str) -> None:
        """Redact a secret learnt later (a session token) from every message."""
        if secret and secret not in self._secrets:
            self._secrets.append(secret)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _check_blocked(self) -> None:
        """Raise RateLimited while the platform said no request may be made yet."""
        if self.blocked_until is None:
            return
        if self.blocked_until > self._clock.now():
            raise RateLimited(
                _("rate limit: no request before {until}").format(
                    until=self.blocked_until.isoformat(timespec="seconds")
                ),
                until=self.blocked_until,
                http_status=None,
            )
        self.blocked_until = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        classify: Classifier | None = None,
        ok: Iterable[int] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request; return the response or raise the mapped error."""
        method = method.upper()
        self._check_blocked()
        what = f"{method} {self.redact(url.split('?', 1)[0])}"
        try:
            response = await self._client.request(method, url, **kwargs)
        except _TRANSPORT_ERRORS as exc:
            raise self._failed(exc, method, what) from exc
        return self._answer(response, what, ok, classify)

    def endpoint(
        self, method: str, path: str, *, headers: dict[str, str] | None = None
    ) -> Endpoint:
        """A request this client sends again and again (a publication), for :meth:`send`.

        Its URL, headers, timeouts and transport are worked out once, here.
        """
        method = method.upper()
        base = self._client.base_url
        url = base.copy_with(raw_path=base.raw_path + path.lstrip("/").encode("ascii"))
        merged = httpx.Headers({"Host": url.netloc.decode("ascii")})
        merged.update(self._client.headers)
        merged.update(headers or {})
        return Endpoint(
            method=method,
            url=url,
            what=f"{method} {self.redact(path.split('?', 1)[0])}",
            headers=tuple(merged.multi_items()),
            extensions={"timeout": self._client.timeout.as_dict()},
            # the client's transport for this URL: a proxy's where the environment names one
            transport=self._client._transport_for_url(url),
        )

    async def send(
        self,
        endpoint: Endpoint,
        content: bytes,
        *,
        headers: Iterable[tuple[str, str]] = (),
        classify: Classifier | None = None,
        ok: Iterable[int] = (),
    ) -> httpx.Response:
        """Send ``content`` to ``endpoint``; return the response or raise the mapped error.

        ``headers`` are added to the endpoint's (names it does not have: a name given
        twice is sent twice).

        The same errors and rate-limit memory as :meth:`request`, but straight through
        the client's transport: a publication needs none of ``AsyncClient``'s
        per-request work (merging the base URL and default headers, the cookie jar,
        auth and redirect handling), about a quarter of a request's CPU
        (bench/README.md). The endpoint's request carries no cookies: the APIs that
        use it authenticate by token.
        """
        self._check_blocked()
        request_headers = httpx.Headers(
            [*endpoint.headers, *headers, ("Content-Length", str(len(content)))]
        )
        request = httpx.Request(
            endpoint.method,
            endpoint.url,
            headers=request_headers,
            stream=httpx.ByteStream(content),
            extensions=endpoint.extensions,
        )
        request.read()  # the body as ``request.content``, as httpx's own requests have it
        try:
            response = await endpoint.transport.handle_async_request(request)
            response.request = request
            try:
                await response.aread()  # and the connection goes back to the pool
            except BaseException:
                await response.aclose()
                raise
        except _TRANSPORT_ERRORS as exc:
            raise self._failed(exc, endpoint.method, endpoint.what) from exc
        return self._answer(response, endpoint.what, ok, classify)

    def _failed(self, exc: Exception, method: str, what: str) -> PlatformError:
        """The error for a request that got no answer."""
        if isinstance(exc, _NOT_SENT):
            return Transient(
                _("{what}: cannot connect: {reason}").format(what=what, reason=self._reason(exc))
            )
        reason = self._reason(exc)
        if method in SAFE_METHODS:
            return Transient(_("{what}: no answer: {reason}").format(what=what, reason=reason))
        return UnknownOutcome(
            _("{what}: the answer was lost after sending ({reason})").format(
                what=what, reason=reason
            ),
            # silence, not a closed connection: the platform may still be at work
            still_in_flight=isinstance(exc, httpx.TimeoutException),
        )

    def _answer(
        self,
        response: httpx.Response,
        what: str,
        ok: Iterable[int],
        classify: Classifier | None,
    ) -> httpx.Response:
        """The response if it is a success (or in ``ok``), else the mapped error raised."""
        spent_until = self._remember_limits(response)
        answers = ANSWERS.get()
        if answers is not None:
            answers.statuses.append(response.status_code)
            budget = self._budget(response, spent_until)
            if budget is not None:
                answers.budget = budget
        if response.is_success or response.status_code in ok:
            return response
        if classify is not None:
            specific = classify(response)
            if specific is not None:
                raise specific
        raise self.error_for(response, what)

    def error_for(self, response: httpx.Response, what: str) -> PlatformError:
        status = response.status_code
        # Redact before shortening, so a secret at the cut is not left half-visible.
        full = self.redact(platform_message(response, limit=sys.maxsize))
        message = _("{what}: {status} {text}").format(what=what, status=status, text=full[:300])
        if status in (401, 403):
            return AuthError(message, http_status=status)
        if status == 429:
            until = self._limit_until(response) or self._clock.now() + timedelta(seconds=60)
            self.blocked_until = until
            return RateLimited(message, until=until)
        if status >= 500 or status == 408:
            return Transient(message, http_status=status)
        return Rejected(message, http_status=status)

    def _limit_until(self, response: httpx.Response) -> datetime | None:
        now = self._clock.now()
        until = parse_retry_after(response.headers.get("Retry-After"), now)
        if until is None and self._reset_parser is not None:
            until = self._reset_parser(response, now)
        return until

    def _remember_limits(self, response: httpx.Response) -> datetime | None:
        """A success that used up the budget blocks the next request until the reset
        (returned: when the budget refills)."""
        if self._reset_parser is None or response.status_code == 429:
            return None
        now = self._clock.now()
        until = self._reset_parser(response, now)
        if until is not None and until > now:
            self.blocked_until = until
            return until
        return None

    def _budget(self, response: httpx.Response, spent_until: datetime | None) -> Budget | None:
        """The account's budget as this answer states it; a platform that only says
        "spent until" (Meta's usage headers) has none left until then."""
        now = self._clock.now()
        budget = None if self._budget_parser is None else self._budget_parser(response, now)
        if budget is None and spent_until is not None:
            budget = Budget(0, spent_until)
        if budget is None or budget.reset <= now:
            return None
        return budget

    def _reason(self, exc: Exception) -> str:
        return self.redact(str(exc) or type(exc).__name__)


def header_budget(remaining: str, reset: str) -> BudgetParser:
    """A parser for the budget a pair of headers states (requests left, reset)."""

    def parse(response: httpx.Response, now: datetime) -> Budget | None:
        left = as_count(response.headers.get(remaining))
        until = parse_reset(response.headers.get(reset), now)
        if left is None or until is None:
            return None
        return Budget(left, until)

    return parse


def as_count(value: str | None) -> int | None:
    """A header's count of requests left (``"12"``, ``"12.0"``), or None."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    # the column is a 32-bit INTEGER; no platform's window comes near that
    return min(max(0, int(number)), COUNT_MAX)


def header_reset_parser(remaining: str, reset: str) -> ResetParser:
    """A parser that blocks until ``reset`` once ``remaining`` reaches 0."""

    def parse(response: httpx.Response, now: datetime) -> datetime | None:
        left = response.headers.get(remaining)
        if response.status_code != 429 and (left is None or left.strip() not in ("0", "0.0")):
            return None
        return parse_reset(response.headers.get(reset), now)

    return parse
