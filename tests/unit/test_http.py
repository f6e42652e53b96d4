"""The HTTP boundary: status and transport errors become crosspost errors, limits are kept,
secrets never reach a message. Every request goes to an ``httpx.MockTransport``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from crosspost.adapters._http import (
    USER_AGENT,
    HttpClient,
    header_reset_parser,
    parse_reset,
    parse_retry_after,
    platform_message,
)
from crosspost.clock import FrozenClock
from crosspost.exceptions import (
    AuthError,
    PlatformError,
    RateLimited,
    Rejected,
    Transient,
    UnknownOutcome,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BASE = "https://api.platform.example"
SECRET = "tok-9f8e7d6c5b4a"

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that answers from a script and keeps every request it got."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def send(
    handler: Handler,
    *calls: tuple[str, str],
    clock: FrozenClock | None = None,
    **client_args: Any,
) -> list[httpx.Response | PlatformError]:
    """Make the calls in order on one client; each gives its response or its mapped error."""

    async def run() -> list[httpx.Response | PlatformError]:
        client = HttpClient(
            BASE,
            transport=httpx.MockTransport(handler),
            secrets=[SECRET],
            clock=clock or FrozenClock(NOW),
            **client_args,
        )
        results: list[httpx.Response | PlatformError] = []
        try:
            for method, url in calls:
                try:
                    results.append(await client.request(method, url))
                except PlatformError as exc:
                    results.append(exc)
        finally:
            await client.aclose()
        return results

    return asyncio.run(run())


def one_error(handler: Handler, method: str = "POST", url: str = "/api/v1/statuses") -> Any:
    (result,) = send(handler, (method, url))
    assert isinstance(result, PlatformError), result
    return result


# --- header parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", NOW + timedelta(seconds=120)),
        (" 30 ", NOW + timedelta(seconds=30)),
        ("1.5", NOW + timedelta(seconds=1.5)),
        ("0", NOW),
        ("-5", NOW),  # never before now
        ("Tue, 01 Dec 2026 09:05:00 GMT", NOW + timedelta(minutes=5)),
        ("Tue, 01 Dec 2026 10:05:00 +0100", NOW + timedelta(minutes=5)),
    ],
)
def test_retry_after_as_seconds_or_http_date(value: str, expected: datetime) -> None:
    """Retry-After in seconds counts from now; as an HTTP date it is that instant in UTC."""
    parsed = parse_retry_after(value, NOW)
    assert parsed == expected
    assert parsed is not None
    assert parsed.tzinfo is not None


@pytest.mark.parametrize("value", [None, "", "soon", "inf", "1e400", "1e20"])
def test_unusable_retry_after_gives_none(value: str | None) -> None:
    """Missing, unreadable or absurd Retry-After values give None, never an exception."""
    assert parse_retry_after(value, NOW) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1796115600", datetime.fromtimestamp(1796115600, UTC)),  # epoch seconds
        ("60", NOW + timedelta(seconds=60)),  # delta seconds
        ("2026-12-01T09:15:00Z", NOW + timedelta(minutes=15)),
        ("2026-12-01T10:15:00+01:00", NOW + timedelta(minutes=15)),
        ("2026-12-01T09:15:00", NOW + timedelta(minutes=15)),  # naive ISO taken as UTC
    ],
)
def test_reset_as_epoch_delta_or_iso(value: str, expected: datetime) -> None:
    """Rate-limit reset headers come as epoch seconds, seconds from now, or ISO 8601."""
    assert parse_reset(value, NOW) == expected


@pytest.mark.parametrize("value", [None, "", "bald", "inf", "1e30"])
def test_unusable_reset_gives_none(value: str | None) -> None:
    """Missing, unreadable or absurd reset values give None, never an exception."""
    assert parse_reset(value, NOW) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": "The access token is invalid"}, "The access token is invalid"),
        ({"error": "invalid_grant", "error_description": "Token expired"}, "Token expired"),
        (
            {"error": {"message": "(#100) Invalid parameter", "code": 100}},
            "(#100) Invalid parameter",
        ),
        ({"errors": [{"message": "Status is a duplicate"}]}, "Status is a duplicate"),
        (
            {"ok": False, "description": "Bad Request: chat not found"},
            "Bad Request: chat not found",
        ),
        ({"detail": "Text too long"}, "Text too long"),
        ({"title": "Unprocessable"}, "Unprocessable"),
    ],
)
def test_platform_message_from_json(body: dict[str, Any], expected: str) -> None:
    """The platform's own words are taken from the usual JSON error envelopes."""
    assert platform_message(httpx.Response(400, json=body)) == expected


def test_platform_message_from_text_and_from_nothing() -> None:
    """Plain text is used with its whitespace collapsed; an empty body gives the reason."""
    assert platform_message(httpx.Response(502, text="  Bad\n\n gateway  ")) == "Bad gateway"
    assert platform_message(httpx.Response(404, content=b"")) == "Not Found"
    unknown_json = httpx.Response(400, json={"foo": "bar"})
    assert platform_message(unknown_json) == '{"foo":"bar"}'


def test_platform_message_is_shortened() -> None:
    """A long error page is cut to the limit."""
    assert platform_message(httpx.Response(500, text="x" * 1000), limit=50) == "x" * 50


# --- statuses --------------------------------------------------------------------------------


def test_success_returns_the_response_and_sends_the_user_agent() -> None:
    """A 2xx answer comes back as the response; every request says who sends it."""
    recorder = Recorder(httpx.Response(200, json={"id": "1"}))
    (response,) = send(recorder, ("POST", "/api/v1/statuses"))
    assert isinstance(response, httpx.Response)
    assert response.json() == {"id": "1"}
    assert recorder.requests[0].headers["User-Agent"] == USER_AGENT


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_an_auth_error(status: int) -> None:
    """401 and 403 mean the credentials are refused: AuthError with the status."""
    error = one_error(Recorder(httpx.Response(status, json={"error": "invalid token"})))
    assert type(error) is AuthError
    assert error.http_status == status
    assert "invalid token" in str(error)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_are_transient_and_unsent(status: int) -> None:
    """5xx and 408: the platform did not process the request, so retrying is safe."""
    error = one_error(Recorder(httpx.Response(status, text="try later")))
    assert type(error) is Transient
    assert (error.http_status, error.sent) == (status, False)


@pytest.mark.parametrize("status", [400, 404, 409, 413, 422])
def test_other_client_errors_are_rejected_with_the_platforms_message(status: int) -> None:
    """Other 4xx statuses reject the post for good, with what the platform said."""
    body = {"error": "Validation failed: Text character limit of 500 exceeded"}
    error = one_error(Recorder(httpx.Response(status, json=body)))
    assert type(error) is Rejected
    assert error.http_status == status
    assert "POST /api/v1/statuses" in str(error)
    assert f"{status} Validation failed: Text character limit of 500 exceeded" in str(error)


def test_empty_error_body_gives_the_reason_phrase() -> None:
    """With nothing in the body the message still says what the status means."""
    error = one_error(Recorder(httpx.Response(404, content=b"")))
    assert str(error) == "POST /api/v1/statuses: 404 Not Found"


def test_long_error_body_is_shortened_in_the_message() -> None:
    """An error page of any size gives a message of bounded length."""
    error = one_error(Recorder(httpx.Response(400, text="y" * 10_000)))
    assert str(error) == "POST /api/v1/statuses: 400 " + "y" * 300


def test_statuses_declared_ok_are_returned() -> None:
    """ok= lets an adapter accept a status (such as 409 for an existing record) as an answer."""

    async def run() -> httpx.Response:
        transport = httpx.MockTransport(lambda request: httpx.Response(409, json={"id": "7"}))
        client = HttpClient(BASE, transport=transport, clock=FrozenClock(NOW))
        try:
            return await client.request("PUT", "/records/7", ok=(409,))
        finally:
            await client.aclose()

    assert asyncio.run(run()).status_code == 409


def test_classifier_may_name_a_more_specific_error() -> None:
    """classify= is asked first: a platform envelope can turn a 400 into an AuthError."""

    def classify(response: httpx.Response) -> PlatformError | None:
        if response.json().get("error", {}).get("code") == 190:
            return AuthError("token expired", http_status=response.status_code)
        return None

    async def run(body: dict[str, Any]) -> PlatformError:
        transport = httpx.MockTransport(lambda request: httpx.Response(400, json=body))
        client = HttpClient(BASE, transport=transport, clock=FrozenClock(NOW))
        try:
            await client.request("POST", "/feed", classify=classify)
        except PlatformError as exc:
            return exc
        finally:
            await client.aclose()
        raise AssertionError("no error raised")

    assert type(asyncio.run(run({"error": {"code": 190}}))) is AuthError
    assert type(asyncio.run(run({"error": {"code": 100}}))) is Rejected


# --- rate limits: nothing goes out before the platform allows it ------------------------------


def test_429_is_rate_limited_until_retry_after() -> None:
    """429 gives RateLimited with until = now + Retry-After, not counted as sent."""
    error = one_error(Recorder(httpx.Response(429, headers={"Retry-After": "120"})))
    assert type(error) is RateLimited
    assert error.until == NOW + timedelta(seconds=120)
    assert (error.http_status, error.sent) == (429, False)


def test_429_with_http_date_is_rate_limited_until_that_date() -> None:
    """Retry-After as an HTTP date sets until to that instant."""
    later = NOW + timedelta(minutes=10)
    headers = {"Retry-After": format_datetime(later, usegmt=True)}
    assert one_error(Recorder(httpx.Response(429, headers=headers))).until == later


def test_429_without_hint_waits_a_minute() -> None:
    """A 429 without any header still blocks for a minute rather than hammering the platform."""
    assert one_error(Recorder(httpx.Response(429))).until == NOW + timedelta(seconds=60)


def test_429_with_absurd_retry_after_is_still_a_rate_limit() -> None:
    """A Retry-After too large to be a date is treated as no hint, never as a crash."""
    error = one_error(Recorder(httpx.Response(429, headers={"Retry-After": "1e20"})))
    assert type(error) is RateLimited
    assert error.until == NOW + timedelta(seconds=60)


def test_next_request_is_not_sent_before_retry_after() -> None:
    """After a 429 the client raises RateLimited without sending until the instant has come."""
    clock = FrozenClock(NOW)
    recorder = Recorder(
        httpx.Response(429, headers={"Retry-After": "120"}),
        httpx.Response(200, json={"id": "1"}),
    )

    async def run() -> None:
        client = HttpClient(
            BASE, transport=httpx.MockTransport(recorder), clock=clock, secrets=[SECRET]
        )
        try:
            with pytest.raises(RateLimited):
                await client.request("POST", "/api/v1/statuses")
            assert len(recorder.requests) == 1

            clock.advance(timedelta(seconds=60))
            with pytest.raises(RateLimited) as blocked:
                await client.request("GET", "/api/v1/accounts/verify_credentials")
            assert blocked.value.until == NOW + timedelta(seconds=120)
            assert blocked.value.sent is False
            clock.advance(timedelta(seconds=59))
            with pytest.raises(RateLimited):
                await client.request("POST", "/api/v1/statuses")
            assert len(recorder.requests) == 1  # nothing went out while blocked

            clock.advance(timedelta(seconds=1))  # exactly Retry-After
            response = await client.request("POST", "/api/v1/statuses")
            assert response.status_code == 200
            assert len(recorder.requests) == 2
            assert client.blocked_until is None
        finally:
            await client.aclose()

    asyncio.run(run())


def test_exhausted_budget_on_a_success_blocks_until_the_reset() -> None:
    """With a reset parser, a 2xx that leaves 0 requests blocks the next one until the reset."""
    clock = FrozenClock(NOW)
    reset = str(int((NOW + timedelta(minutes=15)).timestamp()))
    recorder = Recorder(
        httpx.Response(200, headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset}),
        httpx.Response(200),
    )
    parser = header_reset_parser("x-rate-limit-remaining", "x-rate-limit-reset")
    results = send(
        recorder, ("POST", "/2/tweets"), ("POST", "/2/tweets"), clock=clock, reset_parser=parser
    )
    assert isinstance(results[0], httpx.Response)
    assert isinstance(results[1], RateLimited)
    assert results[1].until == NOW + timedelta(minutes=15)
    assert len(recorder.requests) == 1


def test_budget_left_on_a_success_does_not_block() -> None:
    """A success with requests remaining leaves the next request free to go."""
    reset = str(int((NOW + timedelta(minutes=15)).timestamp()))
    recorder = Recorder(
        httpx.Response(200, headers={"x-rate-limit-remaining": "3", "x-rate-limit-reset": reset})
    )
    parser = header_reset_parser("x-rate-limit-remaining", "x-rate-limit-reset")
    results = send(recorder, ("POST", "/2/tweets"), ("POST", "/2/tweets"), reset_parser=parser)
    assert all(isinstance(r, httpx.Response) for r in results)
    assert len(recorder.requests) == 2


def test_429_without_retry_after_uses_the_reset_header() -> None:
    """When Retry-After is missing, the platform's reset header gives until."""
    reset = str(int((NOW + timedelta(minutes=5)).timestamp()))
    recorder = Recorder(httpx.Response(429, headers={"x-rate-limit-reset": reset}))
    parser = header_reset_parser("x-rate-limit-remaining", "x-rate-limit-reset")
    (error,) = send(recorder, ("POST", "/2/tweets"), reset_parser=parser)
    assert isinstance(error, RateLimited)
    assert error.until == NOW + timedelta(minutes=5)


# --- transport errors: was the request sent? --------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ConnectTimeout("timed out"),
        httpx.PoolTimeout("no connection free"),
    ],
)
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_connection_failures_are_transient_and_unsent(exc: Exception, method: str) -> None:
    """Nothing reached the platform when the connection failed: Transient, sent=False."""
    error = one_error(Recorder(exc), method=method)
    assert type(error) is Transient
    assert error.sent is False
    assert error.__cause__ is exc


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("timed out"),
        httpx.ReadError("connection reset by peer"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.WriteTimeout("timed out"),
    ],
)
def test_lost_answer_to_a_post_is_an_unknown_outcome(exc: Exception) -> None:
    """A POST whose answer was lost may have been published: UnknownOutcome, sent=True."""
    error = one_error(Recorder(exc), method="POST")
    assert type(error) is UnknownOutcome
    assert error.sent is True


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE", "PUT"])
def test_lost_answer_to_a_safe_request_is_transient(method: str) -> None:
    """Idempotent methods may simply be sent again: a read timeout is Transient for them."""
    error = one_error(Recorder(httpx.ReadTimeout("timed out")), method=method)
    assert type(error) is Transient


# --- secrets never reach a message ------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 422, 500])
def test_secret_echoed_by_the_server_is_redacted(status: int) -> None:
    """A server that repeats the token in its error does not get it into our message."""
    body = {"error": f"invalid token {SECRET} for this endpoint"}
    error = one_error(Recorder(httpx.Response(status, json=body)))
    assert SECRET not in str(error)
    assert "invalid token *** for this endpoint" in str(error)


def test_secret_echoed_at_the_shortening_point_leaks_no_part_of_it() -> None:
    """A token straddling the message length limit is removed whole, not cut in half."""
    body = "x" * 290 + SECRET + " trailing words"
    error = one_error(Recorder(httpx.Response(400, text=body)))
    for size in range(4, len(SECRET) + 1):
        assert SECRET[:size] not in str(error)


def test_secret_in_the_url_path_is_redacted() -> None:
    """Telegram-style token in the path: the message shows *** in its place, and no query."""
    url = f"/bot{SECRET}/sendMessage?chat_id=@zv&access_token={SECRET}"
    error = one_error(
        Recorder(httpx.Response(400, json={"description": "chat not found"})), url=url
    )
    assert SECRET not in str(error)
    assert "POST /bot***/sendMessage" in str(error)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError(f"cannot reach {BASE}/bot{SECRET}/sendMessage"),
        httpx.ReadTimeout(f"timed out reading {BASE}/bot{SECRET}/sendMessage"),
    ],
)
def test_secret_in_a_transport_error_is_redacted(exc: Exception) -> None:
    """Exception texts from the transport are redacted too."""
    error = one_error(Recorder(exc), url=f"/bot{SECRET}/sendMessage")
    assert SECRET not in str(error)


# --- prepared endpoints: the publication's request, without AsyncClient's per-request work ----

ENDPOINT_ANSWERS: list[httpx.Response | Exception] = [
    httpx.Response(201, json={"id": "9"}),
    httpx.Response(401, json={"error": f"invalid token {SECRET}"}),
    httpx.Response(422, json={"error": "Validation failed"}),
    httpx.Response(429, headers={"Retry-After": "120"}),
    httpx.Response(503, text="try later"),
    httpx.ConnectError("[Errno 111] Connection refused"),
    httpx.ReadTimeout(f"timed out reading {BASE}/bot{SECRET}"),
    httpx.RemoteProtocolError("server disconnected"),
]


def _both_ways(answer: httpx.Response | Exception) -> list[tuple[Any, httpx.Request]]:
    """The same POST once through ``request`` and once through a prepared endpoint."""
    body = '{"status":"Grüße"}'.encode()
    extra = {"Idempotency-Key": "k-1"}

    async def run() -> list[tuple[Any, httpx.Request]]:
        outcomes: list[tuple[Any, httpx.Request]] = []
        for way in ("request", "endpoint"):
            recorder = Recorder(answer)
            client = HttpClient(
                BASE,
                headers={"Authorization": f"Bearer {SECRET}", "Accept": "application/json"},
                transport=httpx.MockTransport(recorder),
                secrets=[SECRET],
                clock=FrozenClock(NOW),
            )
            try:
                if way == "request":
                    call = client.request(
                        "POST",
                        "/api/v1/statuses",
                        content=body,
                        headers={"Content-Type": "application/json", **extra},
                    )
                else:
                    endpoint = client.endpoint(
                        "post", "/api/v1/statuses", headers={"Content-Type": "application/json"}
                    )
                    call = client.send(endpoint, body, headers=extra.items())
                try:
                    result: Any = await call
                except PlatformError as exc:
                    result = exc
                outcomes.append((result, recorder.requests[0]))
                if isinstance(result, RateLimited):  # remembered by both ways alike
                    assert client.blocked_until == NOW + timedelta(seconds=120)
            finally:
                await client.aclose()
        return outcomes

    return asyncio.run(run())


@pytest.mark.parametrize("answer", ENDPOINT_ANSWERS, ids=lambda a: type(a).__name__)
def test_endpoint_sends_what_request_sends_and_maps_answers_alike(
    answer: httpx.Response | Exception,
) -> None:
    """A prepared endpoint puts the same request on the wire as ``request`` (method, URL,
    every header in order, body) and turns every answer into the same result."""
    (plain, plain_request), (prepared, prepared_request) = _both_ways(answer)
    assert prepared_request.method == plain_request.method == "POST"
    assert prepared_request.url == plain_request.url == httpx.URL(f"{BASE}/api/v1/statuses")
    assert prepared_request.headers.multi_items() == plain_request.headers.multi_items()
    assert prepared_request.content == plain_request.content
    assert prepared_request.extensions["timeout"] == plain_request.extensions["timeout"]
    assert type(prepared) is type(plain)
    if isinstance(plain, httpx.Response):
        assert (prepared.status_code, prepared.json()) == (plain.status_code, plain.json())
    else:
        assert str(prepared) == str(plain)
        assert SECRET not in str(prepared)
        assert (prepared.http_status, prepared.sent) == (plain.http_status, plain.sent)
        assert type(prepared.__cause__) is type(plain.__cause__)


def test_endpoint_is_not_used_before_retry_after() -> None:
    """A prepared endpoint keeps the rate limit too: nothing goes out before Retry-After."""
    clock = FrozenClock(NOW)
    recorder = Recorder(
        httpx.Response(429, headers={"Retry-After": "30"}), httpx.Response(201, json={"id": "1"})
    )

    async def run() -> None:
        client = HttpClient(BASE, transport=httpx.MockTransport(recorder), clock=clock)
        endpoint = client.endpoint("POST", "/api/v1/statuses")
        try:
            with pytest.raises(RateLimited):
                await client.send(endpoint, b"{}")
            clock.advance(timedelta(seconds=29))
            with pytest.raises(RateLimited) as blocked:
                await client.send(endpoint, b"{}")
            assert blocked.value.sent is False
            assert len(recorder.requests) == 1
            clock.advance(timedelta(seconds=1))
            assert (await client.send(endpoint, b"{}")).status_code == 201
            assert len(recorder.requests) == 2
        finally:
            await client.aclose()

    asyncio.run(run())


@pytest.mark.parametrize(("no_proxy", "proxied"), [("", True), ("api.platform.example", False)])
def test_endpoint_goes_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, proxied: bool
) -> None:
    """HTTPS_PROXY applies to a prepared endpoint as to every other request (NO_PROXY too)."""
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)

    async def run() -> bool:
        client = HttpClient(BASE)
        try:
            endpoint = client.endpoint("POST", "/api/v1/statuses")
            return endpoint.transport is not client._client._transport
        finally:
            await client.aclose()

    assert asyncio.run(run()) is proxied


def test_endpoint_repr_shows_no_secret() -> None:
    """A prepared endpoint holds the token (headers) and maybe a URL with one: its repr
    names only the redacted request."""

    async def run() -> str:
        client = HttpClient(BASE, headers={"Authorization": f"Bearer {SECRET}"}, secrets=[SECRET])
        try:
            return repr(client.endpoint("POST", f"/bot{SECRET}/sendMessage"))
        finally:
            await client.aclose()

    text = asyncio.run(run())
    assert SECRET not in text
    assert "POST /bot***/sendMessage" in text
