"""An X API v2 server with one user, checking every request against the OpenAPI contract.

Serves what crosspost uses: ``POST /2/tweets``, ``GET|DELETE /2/tweets/:id``,
``POST /2/media/upload`` (one-shot, multipart), ``POST /2/media/metadata``,
``GET /2/users/me``, ``GET /2/users/:id/tweets`` and the OAuth 2 token
endpoint ``POST /2/oauth2/token`` (``grant_type=refresh_token``, rotating the
refresh token on every use, as X does).

Every request is validated against ``x-openapi.json`` with openapi-core; the
file is read once per process and patched in memory (the file itself is never
changed) where openapi-core cannot check it:

* the ``OAuth2UserToken`` scheme is OAuth 2, which openapi-core does not check
  at all (any request passes): it becomes HTTP bearer, which it does check;
* ``MediaUploadResponse`` requires a ``meta`` property it never defines (and
  X's upload answer has none): the requirement is dropped;
* openapi-core ignores multipart parts its schema does not name, although the
  upload schema says ``additionalProperties: false``: the fake refuses them;
* the token endpoint is not in the contract: it is checked against X's
  documented form (``application/x-www-form-urlencoded``; ``grant_type``,
  ``refresh_token``, ``client_id``; nothing else).

The contract declares no text length and no rate-limit headers. As on X, the
text is weighed with twitter-text v3 (:func:`crosspost.counting.count_x`, 280),
too long answers 400 "Your Tweet text is too long", the same text twice answers
403 "You are not allowed to create a Tweet with duplicate content.", and every
answer carries ``x-rate-limit-limit/remaining/reset`` (reset in epoch seconds;
``POST /2/tweets`` also ``x-user-limit-24hour-*``). Stored texts come back as X
shows them: URLs shortened to ``https://t.co/…`` (``entities.urls`` maps them
back), ``&``, ``<``, ``>`` HTML-escaped, and a media link appended to a post
with images. Access tokens expire (``access_lifetime``, 2 hours by default).

Run it alone: ``python -m tests.fakes.x --port 0``.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import itertools
import json
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crosspost.counting import count_x
from tests.fakes.harness import Harness, OnPlatform, ServedAccount, register
from tests.fakes.mastodon import _describe, _OpenAPIRequest, _OpenAPIResponse
from tests.fakes.server import (
    ContractFile,
    FakeRequest,
    FakeResponse,
    FakeServer,
    json_response,
    main,
    skip_without_spec,
    spec_path,
)

if TYPE_CHECKING:
    from openapi_core import OpenAPI

SPEC_NAME = "x-openapi.json"
HOST_URL = "https://api.x.com"  # the contract's server
DEFAULT_TOKEN = "fake-x-access-token-0"
DEFAULT_REFRESH = "fake-x-refresh-token-0"
CLIENT_ID = "ZmFrZS1jbGllbnQtaWQ6MTpjaQ"
USER_ID = "1480000000000000001"
TOKEN_ROUTE = "POST /2/oauth2/token"
URL_RE = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)\]'}]")
TOO_LONG = (
    "Your Tweet text is too long. For more information on how Twitter determines text "
    "length see https://github.com/twitter/twitter-text."
)
DUPLICATE = "You are not allowed to create a Tweet with duplicate content."


def _parse_spec(data: dict[str, Any]) -> OpenAPI:
    from openapi_core import Config, OpenAPI

    _patch_spec(data)
    config = Config(
        spec_validator_cls=None,
        # X answers errors as RFC 7807 documents, a media type openapi-core
        # does not read as JSON by itself.
        extra_media_type_deserializers={"application/problem+json": _problem_json},
    )
    return OpenAPI.from_dict(data, config=config)


#: the patched contract, parsed once per process
x_spec = ContractFile(SPEC_NAME, _parse_spec)


def _problem_json(body: bytes | str, **_options: Any) -> Any:
    return json.loads(body)


def _patch_spec(data: dict[str, Any]) -> None:
    schemes = data["components"]["securitySchemes"]
    schemes["OAuth2UserToken"] = {"type": "http", "scheme": "bearer"}
    # The upload answer requires a "meta" it never defines, and X does not send one.
    upload = data["components"]["schemas"]["MediaUploadResponse"]
    upload["required"] = [r for r in upload.get("required", []) if r != "meta"] or None
    if upload["required"] is None:
        del upload["required"]


def problem(
    status: int, title: str, detail: str, kind: str = "about:blank", **extra: Any
) -> FakeResponse:
    """An RFC 7807 problem document, as X answers errors."""
    body = {"title": title, "detail": detail, "type": kind, "status": status, **extra}
    response = json_response(body, status)
    response.headers["Content-Type"] = "application/problem+json"
    return response


def t_co(url: str) -> str:
    """X's short link for ``url`` (deterministic here)."""
    return "https://t.co/" + hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()[:10]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class FakeMedia:
    id: str
    filename: str | None
    content_type: str
    size: int
    alt: str | None = None
    tweet_id: str | None = None

    @property
    def media_key(self) -> str:
        return f"3_{self.id}"


@dataclass
class FakeTweet:
    id: str
    text: str
    media_ids: list[str]
    created_at: datetime
    deleted: bool = False
    in_reply_to: str | None = None
    metrics: dict[str, int] = field(
        default_factory=lambda: {
            "retweet_count": 0,
            "reply_count": 0,
            "like_count": 0,
            "quote_count": 0,
            "bookmark_count": 0,
            "impression_count": 0,
        }
    )


class XFake(FakeServer):
    """X with one user (``@staedtedreieck``) and one OAuth 2 app."""

    name = "x"

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        refresh_token: str = DEFAULT_REFRESH,
        client_id: str = CLIENT_ID,
        access_lifetime: int = 7200,
        rate_limit: int = 300,
        rate_window: float = 900.0,
        posts_per_day: int = 100,
        check_responses: bool = True,
        **server_options: Any,
    ) -> None:
        super().__init__(**server_options)
        self.spec = x_spec()
        self.check_responses = check_responses
        self.client_id = client_id
        self.access_lifetime = access_lifetime
        #: valid access tokens and when each expires (epoch seconds)
        self.access_tokens: dict[str, float] = {token: time.time() + access_lifetime}
        self._first_token = token
        #: the one refresh token that works now (None: none does)
        self.refresh_token: str | None = refresh_token
        self.username = "staedtedreieck"
        self.followers = 4321
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.posts_per_day = posts_per_day
        #: what DELETE answers for a post that is not there: "not_found" (404) or "false"
        #: (200 with ``deleted: false``)
        self.missing_delete = "not_found"
        self.media: dict[str, FakeMedia] = {}
        self._tweets: dict[str, FakeTweet] = {}
        self._ids = itertools.count(1_860_000_000_000_000_001)
        self._token_serial = itertools.count(1)
        self._windows: dict[str, tuple[float, int]] = {}
        self._day: tuple[float, int] = (time.time(), 0)
        self.route("POST", "/2/tweets", self._create_tweet)
        self.route("GET", "/2/tweets/{id}", self._get_tweet)
        self.route("DELETE", "/2/tweets/{id}", self._delete_tweet)
        self.route("POST", "/2/media/upload", self._upload_media)
        self.route("POST", "/2/media/metadata", self._media_metadata)
        self.route("GET", "/2/users/me", self._users_me)
        self.route("GET", "/2/users/{id}/tweets", self._user_tweets)
        self.route("POST", "/2/oauth2/token", self._oauth_token)
        self.route("GET", "/2/users/{id}/mentions", self._mentions)
        #: other people's posts that mention the account (the inbox), oldest first
        self._mentioning: list[dict[str, Any]] = []

    # what tests look at

    @property
    def token(self) -> str:
        """The first access token (the one an account starts with), valid or not."""
        return self._first_token

    @property
    def tweets(self) -> list[FakeTweet]:
        """The posts on the account now (deleted ones left out), oldest first."""
        with self.lock:
            return [t for t in self._tweets.values() if not t.deleted]

    def expire_access_tokens(self) -> None:
        """Every access token issued so far has run out (as after two hours)."""
        with self.lock:
            self.access_tokens = dict.fromkeys(self.access_tokens, 0.0)

    def revoke(self) -> None:
        """The user revoked the app: no access token and no refresh token works."""
        with self.lock:
            self.access_tokens.clear()
            self.refresh_token = None

    def mention(
        self, text: str, *, username: str = "buerger_in", in_reply_to: str | None = None
    ) -> str:
        """Someone else's post naming ``@staedtedreieck``; its id."""
        with self.lock:
            post_id = str(next(self._ids))
            post: dict[str, Any] = {
                "id": post_id,
                "text": text,
                "edit_history_tweet_ids": [post_id],
                "created_at": _iso(datetime.now(UTC)),
                "author_id": str(900_000 + len(self._mentioning)),
                "conversation_id": in_reply_to or post_id,
                "_username": username,
            }
            if in_reply_to is not None:
                post["referenced_tweets"] = [{"type": "replied_to", "id": in_reply_to}]
            self._mentioning.append(post)
            return post_id

    def replies_to(self, post_id: str) -> list[FakeTweet]:
        """The account's posts in reply to ``post_id``."""
        return [t for t in self.tweets if t.in_reply_to == post_id]

    def snapshot(self) -> dict[str, Any]:
        return {
            "tweets": [{"id": t.id, "text": t.text, "media_ids": t.media_ids} for t in self.tweets],
            "media": {m.id: {"alt": m.alt, "tweet_id": m.tweet_id} for m in self.media.values()},
        }

    # validation, authentication, rate limits

    def validate(self, request: FakeRequest) -> list[str]:
        if request.method == "POST" and request.path == "/2/oauth2/token":
            return _check_token_request(request)
        from openapi_core.templating.paths.exceptions import PathNotFound

        try:
            self.spec.validate_request(_OpenAPIRequest(request, host_url=HOST_URL))
        except PathNotFound:
            return [f"the X API has no {request.method} {request.path}"]
        except Exception as exc:  # noqa: BLE001 - openapi-core raises many kinds
            return [_describe(exc)]
        if request.path == "/2/media/upload" and request.content_type.startswith("multipart/"):
            allowed = {"media", "media_category", "media_type", "additional_owners", "shared"}
            unknown = sorted(request.form().keys() - allowed)
            if unknown:
                return [f"/2/media/upload: unknown multipart parts {unknown}"]
        return []

    def invalid(self, request: FakeRequest, errors: list[str]) -> FakeResponse:
        if all(e.startswith("SecurityValidationError") for e in errors):
            return self._unauthorized()
        if request.route == TOKEN_ROUTE:
            return json_response(
                {"error": "invalid_request", "error_description": "; ".join(errors)}, 400
            )
        return problem(
            400,
            "Invalid Request",
            "One or more parameters to your request was invalid.",
            "https://api.twitter.com/2/problems/invalid-request",
            errors=[{"message": e} for e in errors],
        )

    def not_found(self, request: FakeRequest) -> FakeResponse:
        return problem(404, "Not Found Error", f"No route for {request.method} {request.path}")

    def before(self, request: FakeRequest) -> FakeResponse | None:
        if request.route == TOKEN_ROUTE:
            return None
        header = request.header("authorization") or ""
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        with self.lock:
            if token is None or self.access_tokens.get(token, 0.0) <= time.time():
                return self._unauthorized()
            now = time.time()
            assert request.route is not None
            start, used = self._windows.get(request.route, (now, 0))
            if now >= start + self.rate_window:
                start, used = now, 0
            self._windows[request.route] = (start, used + 1)
            if used + 1 > self.rate_limit:
                return problem(429, "Too Many Requests", "Too Many Requests")
        return None

    def decorate(self, request: FakeRequest, response: FakeResponse) -> None:
        if request.route == TOKEN_ROUTE or request.route is None:
            return
        with self.lock:
            start, used = self._windows.get(request.route, (time.time(), 0))
            day_start, posted = self._day
        response.headers["x-rate-limit-limit"] = str(self.rate_limit)
        response.headers["x-rate-limit-remaining"] = str(max(0, self.rate_limit - used))
        response.headers["x-rate-limit-reset"] = str(int(start + self.rate_window))
        if request.route == "POST /2/tweets":
            response.headers["x-user-limit-24hour-limit"] = str(self.posts_per_day)
            response.headers["x-user-limit-24hour-remaining"] = str(
                max(0, self.posts_per_day - posted)
            )
            response.headers["x-user-limit-24hour-reset"] = str(int(day_start + 86400))

    def check_response(self, request: FakeRequest, response: FakeResponse) -> list[str]:
        if not self.check_responses:
            return []
        if request.route == TOKEN_ROUTE:
            body = json.loads(response.body)
            needed = {"token_type", "expires_in", "access_token", "scope", "refresh_token"}
            if response.status == 200 and not needed <= body.keys():
                return [f"token answer lacks {needed - body.keys()}"]
            return []
        try:
            self.spec.validate_response(
                _OpenAPIRequest(request, host_url=HOST_URL), _OpenAPIResponse(response)
            )
        except Exception as exc:  # noqa: BLE001 - see validate()
            return [_describe(exc)]
        return []

    def _unauthorized(self) -> FakeResponse:
        return problem(401, "Unauthorized", "Unauthorized")

    # the token endpoint

    def _oauth_token(self, request: FakeRequest) -> FakeResponse:
        form = {name: part.text for name, part in request.form().items()}
        with self.lock:
            if form.get("client_id") != self.client_id:
                return json_response(
                    {
                        "error": "unauthorized_client",
                        "error_description": "Missing valid authorization header",
                    },
                    401,
                )
            if self.refresh_token is None or form.get("refresh_token") != self.refresh_token:
                return json_response(
                    {
                        "error": "invalid_request",
                        "error_description": "Value passed for the token was invalid.",
                    },
                    400,
                )
            serial = next(self._token_serial)
            access = f"fake-x-access-token-{serial}"
            self.refresh_token = f"fake-x-refresh-token-{serial}"
            self.access_tokens[access] = time.time() + self.access_lifetime
            return json_response(
                {
                    "token_type": "bearer",
                    "expires_in": self.access_lifetime,
                    "access_token": access,
                    "scope": "tweet.write users.read tweet.read media.write offline.access",
                    "refresh_token": self.refresh_token,
                }
            )

    # posts

    def _tweet_json(self, tweet: FakeTweet, fields: set[str]) -> dict[str, Any]:
        text, urls = self._rendered(tweet)
        data: dict[str, Any] = {
            "id": tweet.id,
            "text": html.escape(text, quote=False),
            "edit_history_tweet_ids": [tweet.id],
        }
        if "created_at" in fields:
            data["created_at"] = _iso(tweet.created_at)
        if "entities" in fields and urls:
            data["entities"] = {"urls": urls}
        if "public_metrics" in fields:
            data["public_metrics"] = dict(tweet.metrics)
        if "author_id" in fields:
            data["author_id"] = USER_ID
        return data

    def _rendered(self, tweet: FakeTweet) -> tuple[str, list[dict[str, Any]]]:
        """The text as X stores it (URLs as t.co, a media link at the end) and its URL entities."""
        parts: list[str] = []
        urls: list[dict[str, Any]] = []
        position = length = 0
        for match in URL_RE.finditer(tweet.text):
            before = tweet.text[position : match.start()]
            parts.append(before)
            length += len(before)
            short = t_co(match.group())
            urls.append(
                {
                    "start": length,
                    "end": length + len(short),
                    "url": short,
                    "expanded_url": match.group(),
                    "display_url": match.group().split("://", 1)[1][:26],
                }
            )
            parts.append(short)
            length += len(short)
            position = match.end()
        parts.append(tweet.text[position:])
        text = "".join(parts)
        if tweet.media_ids:
            short = t_co(f"media:{tweet.id}")
            start = len(text) + 1
            text = f"{text} {short}"
            urls.append(
                {
                    "start": start,
                    "end": start + len(short),
                    "url": short,
                    "expanded_url": f"https://x.com/{self.username}/status/{tweet.id}/photo/1",
                    "display_url": f"pic.x.com/{short.rsplit('/', 1)[1]}",
                    "media_key": self.media[tweet.media_ids[0]].media_key,
                }
            )
        return text, urls

    def _create_tweet(self, request: FakeRequest) -> FakeResponse:
        body = request.json() or {}
        text = body.get("text") or ""
        media_ids = [str(m) for m in (body.get("media") or {}).get("media_ids", [])]
        with self.lock:
            if not text.strip() and not media_ids:
                return self._invalid("You must specify either text or media.", "text", text)
            if count_x(text) > 280:
                return self._invalid(TOO_LONG, "text", text)
            unusable = [m for m in media_ids if m not in self.media or self.media[m].tweet_id]
            if unusable:
                return self._invalid(
                    f"Media id {unusable[0]} is not valid.", "media.media_ids", unusable[0]
                )
            if any(t.text == text for t in self.tweets if text):
                return problem(403, "Forbidden", DUPLICATE)
            day_start, posted = self._day
            if time.time() >= day_start + 86400:
                day_start, posted = time.time(), 0
            if posted >= self.posts_per_day:
                return problem(429, "Too Many Requests", "Too Many Requests")
            in_reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
            if in_reply_to is not None and not (
                self._find(str(in_reply_to))
                or any(m["id"] == str(in_reply_to) for m in self._mentioning)
            ):
                return self._invalid(
                    "The post you are replying to does not exist or is not visible to you.",
                    "reply.in_reply_to_tweet_id",
                    str(in_reply_to),
                )
            self._day = (day_start, posted + 1)
            tweet = FakeTweet(
                id=str(next(self._ids)),
                text=text,
                media_ids=media_ids,
                created_at=datetime.now(UTC),
                in_reply_to=str(in_reply_to) if in_reply_to is not None else None,
            )
            self._tweets[tweet.id] = tweet
            for media_id in media_ids:
                self.media[media_id].tweet_id = tweet.id
            rendered = self._tweet_json(tweet, set())
            return json_response({"data": {"id": tweet.id, "text": rendered["text"]}}, 201)

    def _invalid(self, message: str, parameter: str, value: str) -> FakeResponse:
        return problem(
            400,
            "Invalid Request",
            "One or more parameters to your request was invalid.",
            "https://api.twitter.com/2/problems/invalid-request",
            errors=[{"message": message, "parameters": {parameter: [value]}}],
        )

    def _find(self, tweet_id: str) -> FakeTweet | None:
        tweet = self._tweets.get(tweet_id)
        return None if tweet is None or tweet.deleted else tweet

    def _missing(self, tweet_id: str) -> dict[str, Any]:
        return {
            "value": tweet_id,
            "detail": f"Could not find tweet with id: [{tweet_id}].",
            "title": "Not Found Error",
            "resource_type": "tweet",
            "parameter": "id",
            "resource_id": tweet_id,
            "type": "https://api.twitter.com/2/problems/resource-not-found",
        }

    def _get_tweet(self, request: FakeRequest) -> FakeResponse:
        fields = set((request.arg("tweet.fields") or "").split(","))
        with self.lock:
            tweet = self._find(request.params["id"])
            if tweet is None:  # X answers 200 with the problem in "errors"
                return json_response({"errors": [self._missing(request.params["id"])]})
            return json_response({"data": self._tweet_json(tweet, fields)})

    def _delete_tweet(self, request: FakeRequest) -> FakeResponse:
        with self.lock:
            tweet = self._find(request.params["id"])
            if tweet is None:
                if self.missing_delete == "false":
                    return json_response({"data": {"deleted": False}})
                missing = self._missing(request.params["id"])
                return problem(404, missing.pop("title"), missing.pop("detail"), **missing)
            tweet.deleted = True
            return json_response({"data": {"deleted": True}})

    def _user_tweets(self, request: FakeRequest) -> FakeResponse:
        if request.params["id"] != USER_ID:
            return json_response(
                {
                    "errors": [
                        {
                            "value": request.params["id"],
                            "detail": f"Could not find user with id: [{request.params['id']}].",
                            "title": "Not Found Error",
                            "resource_type": "user",
                            "parameter": "id",
                            "resource_id": request.params["id"],
                            "type": "https://api.twitter.com/2/problems/resource-not-found",
                        }
                    ]
                }
            )
        fields = set((request.arg("tweet.fields") or "").split(","))
        limit = int(request.arg("max_results") or 10)
        start = request.arg("start_time")
        since = datetime.fromisoformat(start.replace("Z", "+00:00")) if start else None
        with self.lock:
            found = [t for t in reversed(self.tweets) if since is None or t.created_at >= since]
            page = [self._tweet_json(t, fields) for t in found[:limit]]
        if not page:
            return json_response({"meta": {"result_count": 0}})
        meta = {"result_count": len(page), "newest_id": page[0]["id"], "oldest_id": page[-1]["id"]}
        return json_response({"data": page, "meta": meta})

    def _mentions(self, request: FakeRequest) -> FakeResponse:
        """Newest first, ``since_id``/``start_time`` bounds, ``pagination_token`` to go older."""
        if request.params["id"] != USER_ID:
            return json_response({"errors": [{"title": "Not Found Error", "detail": "no user"}]})
        limit = int(request.arg("max_results") or 10)
        if not 5 <= limit <= 100:
            return self._invalid("max_results must be 5 to 100", "max_results", str(limit))
        since_id, token = request.arg("since_id"), request.arg("pagination_token")
        start = request.arg("start_time")
        since = datetime.fromisoformat(start.replace("Z", "+00:00")) if start else None
        fields = set((request.arg("tweet.fields") or "").split(","))
        expansions = set((request.arg("expansions") or "").split(","))
        with self.lock:
            found = [
                m
                for m in reversed(self._mentioning)
                if (since_id is None or int(m["id"]) > int(since_id))
                and (
                    since is None
                    or datetime.fromisoformat(m["created_at"][:-1] + "+00:00") >= since
                )
                and (token is None or int(m["id"]) < int(token))
            ]
            page = found[:limit]
        if not page:
            return json_response({"meta": {"result_count": 0}})
        data = []
        for m in page:
            item = {k: v for k, v in m.items() if not k.startswith("_")}
            for name in ("created_at", "author_id", "conversation_id", "referenced_tweets"):
                if name not in fields and name in item and name != "author_id":
                    item.pop(name)
            if "author_id" not in fields and "author_id" not in expansions:
                item.pop("author_id")
            data.append(item)
        meta: dict[str, Any] = {
            "result_count": len(page),
            "newest_id": page[0]["id"],
            "oldest_id": page[-1]["id"],
        }
        if len(found) > limit:
            meta["next_token"] = page[-1]["id"]
        answer: dict[str, Any] = {"data": data, "meta": meta}
        if "author_id" in expansions:
            answer["includes"] = {
                "users": [
                    {"id": m["author_id"], "name": m["_username"], "username": m["_username"]}
                    for m in page
                ]
            }
        return json_response(answer)

    # media

    def _upload_media(self, request: FakeRequest) -> FakeResponse:
        form = request.form()
        upload = form["media"]
        content_type = (
            form["media_type"].text if "media_type" in form else upload.content_type or ""
        )
        if not content_type.startswith("image/"):
            return self._invalid("media type unrecognized.", "media_type", content_type)
        if len(upload.data) > 5 * 1024 * 1024:
            return self._invalid("File size exceeds 5242880 bytes.", "media", upload.filename or "")
        with self.lock:
            media = FakeMedia(
                id=str(next(self._ids)),
                filename=upload.filename,
                content_type=content_type,
                size=len(upload.data),
            )
            self.media[media.id] = media
        return json_response(
            {
                "data": {
                    "id": media.id,
                    "media_key": media.media_key,
                    "size": media.size,
                    "expires_after_secs": 86400,
                }
            }
        )

    def _media_metadata(self, request: FakeRequest) -> FakeResponse:
        body = request.json() or {}
        with self.lock:
            media = self.media.get(str(body.get("id")))
            if media is None:
                return self._invalid("Media id not found.", "id", str(body.get("id")))
            alt = (body.get("metadata") or {}).get("alt_text")
            if alt is not None:
                media.alt = alt["text"]
            answer: dict[str, Any] = {"id": media.id, "associated_metadata": {}}
            if media.alt is not None:
                answer["associated_metadata"]["alt_text"] = {"text": media.alt}
        return json_response({"data": answer})

    # the user

    def _users_me(self, request: FakeRequest) -> FakeResponse:
        fields = set((request.arg("user.fields") or "").split(","))
        user: dict[str, Any] = {
            "id": USER_ID,
            "name": "Zweckverband Städtedreieck",
            "username": self.username,
        }
        if "public_metrics" in fields:
            user["public_metrics"] = {
                "followers_count": self.followers,
                "following_count": 12,
                "tweet_count": len(self.tweets),
                "listed_count": 3,
                "like_count": 0,
            }
        return json_response({"data": user})


def _check_token_request(request: FakeRequest) -> list[str]:
    """X's token endpoint: a urlencoded refresh request with the public client's id."""
    kind = request.content_type.split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return [f"/2/oauth2/token takes application/x-www-form-urlencoded, not {kind or 'nothing'}"]
    form = {name: part.text for name, part in request.form().items()}
    errors = [f"/2/oauth2/token: unknown parameter {n!r}" for n in form if n not in _TOKEN_FIELDS]
    if form.get("grant_type") != "refresh_token":
        errors.append(
            f"/2/oauth2/token: grant_type {form.get('grant_type')!r} is not refresh_token"
        )
    errors += [
        f"/2/oauth2/token: {n} is missing"
        for n in ("refresh_token", "client_id")
        if not form.get(n)
    ]
    if (request.header("authorization") or "").startswith("Bearer "):
        errors.append("/2/oauth2/token: a Bearer token does not belong on the token endpoint")
    return errors


_TOKEN_FIELDS = frozenset({"grant_type", "refresh_token", "client_id"})


# --- the contract suite's harness --------------------------------------------------------------


class XHarness(ServedAccount):
    platform = "x"
    create_route = "POST /2/tweets"
    token_env = "CROSSPOST_TEST_X_TOKEN"
    supports_images = True
    recovers_unknown = True  # the timeline lookup settles a lost answer
    supports_delete = True

    def __init__(self, folder: Path) -> None:
        self.server = XFake()
        self.fake = self.server
        self.token = self.server.token
        self.refresh_file = folder / "x-refresh-token"
        self.refresh_file.write_text(DEFAULT_REFRESH + "\n", encoding="utf-8")
        self.refresh_file.chmod(0o600)

    def account_keys(self) -> dict[str, Any]:
        return {"refresh_token_file": str(self.refresh_file), "client_id": self.fake.client_id}

    def posts(self) -> list[OnPlatform]:
        return [
            OnPlatform(
                remote_id=t.id,
                text=t.text,
                alts=[self.fake.media[m].alt or "" for m in t.media_ids],
            )
            for t in self.fake.tweets
        ]

    def revoke(self) -> None:
        self.fake.revoke()


@register("x")
@contextmanager
def x_harness() -> Iterator[Harness]:
    skip_without_spec(SPEC_NAME)
    with tempfile.TemporaryDirectory(prefix="crosspost-x-") as folder:
        harness = XHarness(Path(folder))
        with harness.server:
            yield harness


# --- running it alone -------------------------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the first valid access token")
    parser.add_argument("--refresh-token", default=DEFAULT_REFRESH)
    parser.add_argument("--client-id", default=CLIENT_ID)
    parser.add_argument("--access-lifetime", type=int, default=7200, help="seconds")
    parser.add_argument("--rate-limit", type=int, default=300, help="requests per window")
    parser.add_argument("--rate-window", type=float, default=900.0, help="seconds")


def _build(args: argparse.Namespace) -> XFake:
    if spec_path(SPEC_NAME) is None:
        raise SystemExit(f"tests.fakes.x: {SPEC_NAME} not found; set CROSSPOST_TEST_SPECS")
    return XFake(
        host=args.host,
        port=args.port,
        latency=args.latency,
        verbose=args.verbose,
        token=args.token,
        refresh_token=args.refresh_token,
        client_id=args.client_id,
        access_lifetime=args.access_lifetime,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
    )


def _describe_fake(fake: FakeServer) -> dict[str, Any]:
    assert isinstance(fake, XFake)
    return {
        "platform": "x",
        "token": fake.token,
        "refresh_token": fake.refresh_token,
        "client_id": fake.client_id,
        "user_id": USER_ID,
    }


if __name__ == "__main__":
    raise SystemExit(main(_build, _add_arguments, describe=_describe_fake))
