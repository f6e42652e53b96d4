"""Fake Meta Graph API servers: a Facebook Page, an Instagram account, a Threads profile.

Meta publishes no machine-readable contract, so each fake checks every request
against the documented one (Graph API reference pages for Page feed/photos/
published_posts, IG User media/media_publish, IG Container, Threads posts, insights,
delete, long-lived tokens, debug_token; the "Handling Errors" guide):

* the access token, as ``Authorization: Bearer`` or ``access_token``; a wrong one is
  answered ``{"error": {"message", "type": "OAuthException", "code": 190,
  "fbtrace_id"}}`` with HTTP 400, as Graph does;
* the parameters each endpoint takes (required ones present, no unknown ones), the
  ``fields``/``metric`` names it knows, and the values: ``image_url`` an absolute https
  URL, captions and texts within their limits (Instagram 2 200 characters and 30
  hashtags; Threads 500 with emoji counted as UTF-8 bytes, at most 5 links),
  ``link_attachment`` only on text posts, ``alt_text`` only on images, carousels of
  2–10 (Instagram) or 2–20 (Threads) items, ``attached_media`` naming unpublished photos
  of the Page. A request that breaks this is a client bug: it is recorded in
  :attr:`~tests.fakes.server.FakeServer.validation_errors` and answered with error 100;
* the state machine of containers (``IN_PROGRESS`` for :attr:`processing_polls` status
  reads, then ``FINISHED``; ``PUBLISHED`` once published; publishing one twice is a
  violation), Facebook's duplicate guard (506), Instagram's 50 posts per 24 hours;
* usage headers on every answer: ``X-App-Usage`` and ``X-Business-Use-Case-Usage`` (with
  ``estimated_time_to_regain_access`` from :attr:`GraphFake.regain_minutes`).

:func:`graph_fault` builds a fault answering a Graph error (throttling codes 4, 17, 32,
613 …) for ``FakeServer.inject``. Run one alone:
``python -m tests.fakes.meta --platform threads --port 0``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import secrets
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import regex  # type: ignore[import-untyped, unused-ignore]

from tests.fakes.harness import OnPlatform, ServedAccount, register_server
from tests.fakes.server import (
    FakeRequest,
    FakeResponse,
    FakeServer,
    Fault,
    FormPart,
    json_response,
    main,
    status,
)

FACEBOOK_TOKEN = "fake-facebook-page-token"
INSTAGRAM_TOKEN = "fake-instagram-token"
THREADS_TOKEN = "fake-threads-token"
#: a public website where the contract suite's images are (see media.public_media_urls)
PUBLIC_MEDIA = "https://www.zv-staedtedreieck.de/social/media"

_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
_HASHTAG = re.compile(r"(?<![\w#&/])#(\w+)")
_EMOJI = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\u20e3]")
_GRAPHEME = regex.compile(r"\X")


def names(words: str) -> set[str]:
    """A set of names written as one space-separated string."""
    return set(words.split())


def graph_time(moment: datetime) -> str:
    """Graph's timestamp format: ``2024-05-01T10:00:00+0000``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def error_body(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    kind: str = "OAuthException",
    transient: bool | None = None,
) -> dict[str, Any]:
    """The Graph API error envelope."""
    error: dict[str, Any] = {
        "message": message,
        "type": kind,
        "code": code,
        "fbtrace_id": "A" + secrets.token_urlsafe(8),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient is not None:
        error["is_transient"] = transient
    return {"error": error}


def graph_error(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    status_code: int = 400,
    kind: str = "OAuthException",
) -> FakeResponse:
    return json_response(error_body(code, message, subcode=subcode, kind=kind), status_code)


def graph_fault(
    code: int,
    message: str = "(#4) Application request limit reached",
    *,
    subcode: int | None = None,
    status_code: int = 400,
    regain_minutes: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> Fault:
    """A fault answering a Graph error instead of processing the request (throttling: 4, 17…).

    ``regain_minutes`` adds an ``X-Business-Use-Case-Usage`` header with that
    ``estimated_time_to_regain_access``, as Meta sends with business-use-case throttling.
    """
    all_headers = dict(headers or {})
    if regain_minutes is not None:
        all_headers["X-Business-Use-Case-Usage"] = json.dumps(
            {
                "1000000001": [
                    {
                        "type": "pages",
                        "call_count": 100,
                        "total_cputime": 12,
                        "total_time": 14,
                        "estimated_time_to_regain_access": regain_minutes,
                    }
                ]
            }
        )
    return status(status_code, error_body(code, message, subcode=subcode), all_headers)


def no_such_object(node: str, method: str = "get") -> FakeResponse:
    return graph_error(
        100,
        f"Unsupported {method} request. Object with ID '{node}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation.",
        subcode=33,
        kind="GraphMethodException",
    )


def field_names(fields: str) -> list[str]:
    """The top-level names of a ``fields`` parameter (``a,b.summary(x),c{d,e}`` -> a, b, c)."""
    names, depth, current = [], 0, ""
    for char in fields:
        if char in "({":
            depth += 1
        elif char in ")}":
            depth -= 1
        if char == "," and depth == 0:
            names.append(current)
            current = ""
        else:
            current += char
    names.append(current)
    return [re.split(r"[.({]", name.strip(), maxsplit=1)[0] for name in names if name.strip()]


def is_https_url(value: str) -> bool:
    parts = urllib.parse.urlsplit(value)
    return parts.scheme == "https" and bool(parts.hostname) and " " not in value


def distinct_links(text: str) -> list[str]:
    found: dict[str, None] = {}
    for match in _URL.finditer(text):
        found[match.group().rstrip(".,;:!?)]}'\"")] = None
    return list(found)


def threads_length(text: str) -> int:
    """Threads' count: characters, an emoji as many as its UTF-8 bytes."""
    return sum(
        len(g.encode("utf-8")) if _EMOJI.search(g) else len(g) for g in _GRAPHEME.findall(text)
    )


@dataclass(frozen=True)
class Params:
    """What one endpoint takes: required and optional parameter names, file fields."""

    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    files: frozenset[str] = frozenset()
    #: parameter names that are families (``attached_media[0]``, ``attached_media[1]``…)
    prefixes: tuple[str, ...] = ()

    @staticmethod
    def of(required: str = "", optional: str = "", files: str = "", prefixes: str = "") -> Params:
        return Params(
            frozenset(required.split()),
            frozenset(optional.split()),
            frozenset(files.split()),
            tuple(prefixes.split()),
        )


@dataclass
class FakeComment:
    """A comment (Facebook, Instagram) or reply (Threads) under a post or a comment."""

    id: str
    parent: str
    text: str
    author: str
    username: str
    author_id: str
    created_at: datetime
    by_owner: bool = False


class GraphFake(FakeServer):
    """What every Meta fake shares: tokens, parameters, error envelope, usage headers."""

    name = "graph"
    #: route key -> the parameters it takes
    endpoints: ClassVar[dict[str, Params]] = {}
    #: routes that take the token only as ``access_token`` (no Authorization header)
    token_param_routes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, token: str, **server_options: Any) -> None:
        super().__init__(**server_options)
        #: the one valid access token; change it to revoke the credential
        self.token = token
        #: X-App-Usage call_count (percent of the app's hourly budget)
        self.app_usage = 1
        #: X-Business-Use-Case-Usage estimated_time_to_regain_access (minutes)
        self.regain_minutes = 0
        self._ids = itertools.count(1)
        #: comments and replies, oldest first (the inbox)
        self.comments: list[FakeComment] = []

    def next_id(self, prefix: str) -> str:
        with self.lock:
            return f"{prefix}{next(self._ids):05d}"

    # comments (the inbox)

    def comment(
        self,
        parent: str,
        text: str,
        *,
        author: str = "Erika Mustermann",
        username: str = "erika.mustermann",
        at: datetime | None = None,
    ) -> str:
        """Someone else's comment under ``parent`` (a post or a comment); its id."""
        comment_id = self.next_id("1795000000")
        with self.lock:
            self.comments.append(
                FakeComment(
                    comment_id, parent, text, author, username, "9000001",
                    at or datetime.now(UTC),
                )
            )  # fmt: skip
        return comment_id

    def replies_to(self, parent: str) -> list[FakeComment]:
        """The account's own answers under ``parent``."""
        with self.lock:
            return [c for c in self.comments if c.parent == parent and c.by_owner]

    def comment_json(self, comment: FakeComment, fields: list[str]) -> dict[str, Any]:
        return {"id": comment.id}

    def list_comments(self, request: FakeRequest, *, newest_first: bool) -> FakeResponse:
        params = self.params(request)
        limit = int(params.get("limit", "25"))
        after = params.get("after")
        fields = field_names(params.get("fields", ""))
        with self.lock:
            found = [c for c in self.comments if c.parent == request.params["node"]]
        if newest_first:
            found.reverse()
        start = int(after) if after and after.isdigit() else 0
        page = found[start : start + limit]
        body: dict[str, Any] = {"data": [self.comment_json(c, fields) for c in page]}
        if page:
            cursors = {"before": str(start), "after": str(start + len(page))}
            body["paging"] = {"cursors": cursors}
            if start + len(page) < len(found):
                body["paging"]["next"] = f"{self.url}{request.path}?after={start + len(page)}"
        return json_response(body)

    def answer_comment(self, request: FakeRequest) -> FakeResponse:
        parent = request.params["node"]
        message = self.params(request).get("message", "")
        with self.lock:
            known = any(c.id == parent for c in self.comments)
        if not known:
            return no_such_object(parent, "post")
        if not message.strip():
            return graph_error(100, "(#100) The parameter message is required")
        comment_id = self.next_id("1796000000")
        with self.lock:
            self.comments.append(
                FakeComment(
                    comment_id, parent, message, "owner", "owner", "owner",
                    datetime.now(UTC), by_owner=True,
                )
            )  # fmt: skip
        return json_response({"id": comment_id})

    # what requests carry

    @staticmethod
    def params(request: FakeRequest) -> dict[str, str]:
        """Query and body parameters together (Graph reads both)."""
        merged = {name: values[0] for name, values in request.query.items() if values}
        if request.method in ("POST", "DELETE") and request.body:
            for name, part in request.form().items():
                if part.filename is None:
                    merged[name] = part.text
        return merged

    @staticmethod
    def files(request: FakeRequest) -> dict[str, FormPart]:
        if not request.content_type.startswith("multipart/"):
            return {}
        return {n: p for n, p in request.form().items() if p.filename is not None}

    def token_of(self, request: FakeRequest) -> str | None:
        header = request.header("authorization") or ""
        scheme, _sep, value = header.partition(" ")
        if scheme.lower() in ("bearer", "oauth") and value:
            return value.strip()
        return self.params(request).get("access_token")

    def token_valid(self, token: str) -> bool:
        return token == self.token

    # validation

    def validate(self, request: FakeRequest) -> list[str]:
        spec = self.endpoints.get(request.route or "")
        if spec is None:
            return []
        errors: list[str] = []
        try:
            params = self.params(request)
            files = self.files(request)
        except (UnicodeDecodeError, ValueError) as exc:
            return [f"unreadable body: {exc}"]
        for name in sorted(spec.required - params.keys() - files.keys()):
            errors.append(f"missing required parameter {name!r}")
        known = spec.required | spec.optional | {"access_token"}
        for name in sorted(params):
            if name not in known and not name.startswith(spec.prefixes):
                errors.append(f"unknown parameter {name!r}")
        for name in sorted(files):
            if name not in spec.files:
                errors.append(f"unexpected file field {name!r}")
        twice = request.header("authorization") and "access_token" in params
        if twice and request.route not in self.token_param_routes:
            errors.append("the access token is sent twice (header and access_token)")
        if request.route in self.token_param_routes and request.header("authorization"):
            errors.append("this endpoint takes the token as access_token, not as a header")
        if not errors:
            errors = self.check(request, params, files)
        return errors

    def check(
        self, request: FakeRequest, params: dict[str, str], files: dict[str, FormPart]
    ) -> list[str]:
        """Endpoint-specific rules (values, limits, references); empty: the request is valid."""
        return []

    def check_fields(self, params: Mapping[str, str], allowed: set[str], what: str) -> list[str]:
        requested = field_names(params.get("fields", ""))
        return [f"{what} has no field {name!r}" for name in requested if name not in allowed]

    def invalid(self, request: FakeRequest, errors: list[str]) -> FakeResponse:
        return graph_error(100, "(#100) " + "; ".join(errors))

    def not_found(self, request: FakeRequest) -> FakeResponse:
        return graph_error(2500, f"Unknown path components: {request.path}")

    def before(self, request: FakeRequest) -> FakeResponse | None:
        token = self.token_of(request)
        if not token:
            return graph_error(2500, "An active access token must be used to query this.")
        if not self.token_valid(token):
            return graph_error(190, "Invalid OAuth access token - Cannot parse access token")
        return None

    def decorate(self, request: FakeRequest, response: FakeResponse) -> None:
        with self.lock:
            app, regain = self.app_usage, self.regain_minutes
        response.headers["X-App-Usage"] = json.dumps(
            {"call_count": app, "total_cputime": 1, "total_time": 1}
        )
        response.headers["X-Business-Use-Case-Usage"] = json.dumps(
            {
                "1000000001": [
                    {
                        "type": "pages",
                        "call_count": 100 if regain else app,
                        "total_cputime": 1,
                        "total_time": 1,
                        "estimated_time_to_regain_access": regain,
                    }
                ]
            }
        )
        response.headers["x-fb-trace-id"] = secrets.token_urlsafe(8)


# -- Facebook Page ------------------------------------------------------------------------


@dataclass
class FakePhoto:
    id: str
    alt: str | None
    filename: str | None
    content_type: str
    size: int
    published: bool
    post_id: str | None = None


@dataclass
class FakePagePost:
    id: str
    message: str
    link: str | None
    photo_ids: list[str]
    created_at: datetime
    deleted: bool = False
    shares: int = 0
    reactions: int = 0
    comments: int = 0


class FacebookFake(GraphFake):
    """One Facebook Page, posted to with its Page access token."""

    name = "facebook"
    MESSAGE_LIMIT = 63206
    PAGE_FIELDS: ClassVar[set[str]] = {"id", "name", "link", "followers_count", "fan_count"}
    POST_FIELDS: ClassVar[set[str]] = names(
        "id message created_time permalink_url shares reactions comments attachments"
    )
    endpoints: ClassVar[dict[str, Params]] = {
        "POST /{page}/feed": Params.of(
            optional="message link published", prefixes="attached_media["
        ),
        "POST /{page}/photos": Params.of(
            optional="url published alt_text_custom caption temporary no_story",
            files="source",
        ),
        "GET /{page}/published_posts": Params.of(optional="fields limit after before"),
        "GET /{node}": Params.of(optional="fields"),
        "DELETE /{node}": Params.of(),
        "GET /{node}/comments": Params.of(
            optional="fields filter order limit after before since summary"
        ),
        "POST /{node}/comments": Params.of(required="message", optional="attachment_url"),
    }
    COMMENT_FIELDS: ClassVar[set[str]] = names(
        "id message from created_time permalink_url parent like_count comment_count"
    )

    def __init__(
        self,
        *,
        token: str = FACEBOOK_TOKEN,
        page_id: str = "104000000000001",
        **kw: Any,
    ) -> None:
        super().__init__(token=token, **kw)
        self.page_id = page_id
        self.page_name = "Zweckverband Städtedreieck"
        self.followers = 1234
        #: how long Facebook refuses the same message again (error 506)
        self.duplicate_window = timedelta(hours=24)
        self.photos: dict[str, FakePhoto] = {}
        self._posts: dict[str, FakePagePost] = {}
        self.route("POST", "/{page}/feed", self._feed)
        self.route("POST", "/{page}/photos", self._photos)
        self.route("GET", "/{page}/published_posts", self._published_posts)
        self.route("GET", "/{node}/comments", self._comments)
        self.route("POST", "/{node}/comments", self.answer_comment)
        self.route("GET", "/{node}", self._get)
        self.route("DELETE", "/{node}", self._delete)

    @property
    def posts(self) -> list[FakePagePost]:
        """The Page's posts now (deleted ones left out), oldest first."""
        with self.lock:
            return [p for p in self._posts.values() if not p.deleted]

    def snapshot(self) -> dict[str, Any]:
        return {
            "posts": [
                {"id": p.id, "message": p.message, "link": p.link, "photos": p.photo_ids}
                for p in self.posts
            ],
            "photos": {i: {"alt": p.alt, "post": p.post_id} for i, p in self.photos.items()},
        }

    def check(
        self, request: FakeRequest, params: dict[str, str], files: dict[str, FormPart]
    ) -> list[str]:
        errors: list[str] = []
        route = request.route
        if route == "POST /{page}/feed":
            attached = {k: v for k, v in params.items() if k.startswith("attached_media[")}
            if not (params.get("message") or params.get("link") or attached):
                errors.append("a post needs message, link or attached_media")
            if len(params.get("message", "")) > self.MESSAGE_LIMIT:
                errors.append(f"message longer than {self.MESSAGE_LIMIT} characters")
            link = params.get("link")
            if link is not None and urllib.parse.urlsplit(link).scheme not in ("http", "https"):
                errors.append(f"link {link!r} is not an absolute URL")
            errors += self._check_attached(attached)
        elif route == "POST /{page}/photos":
            source = files.get("source")
            if (source is None) == ("url" not in params):
                errors.append("a photo needs exactly one of source (file) and url")
            if source is not None and not (source.content_type or "").startswith("image/"):
                errors.append(f"source is {source.content_type!r}, not an image")
            if params.get("published", "true") not in ("true", "false"):
                errors.append("published must be true or false")
        elif route == "GET /{page}/published_posts":
            errors += self.check_fields(params, self.POST_FIELDS, "a Page post")
            limit = params.get("limit", "25")
            if not limit.isdigit() or not 1 <= int(limit) <= 100:
                errors.append(f"limit {limit!r} is not between 1 and 100")
        elif route == "GET /{node}":
            node = request.params["node"]
            with self.lock:
                if node == self.page_id:
                    errors += self.check_fields(params, self.PAGE_FIELDS, "a Page")
                elif node in self._posts:
                    errors += self.check_fields(params, self.POST_FIELDS, "a Page post")
        return errors

    def _comments(self, request: FakeRequest) -> FakeResponse:
        params = self.params(request)
        errors = self.check_fields(params, self.COMMENT_FIELDS, "a comment")
        if params.get("filter", "toplevel") not in ("toplevel", "stream"):
            errors.append("filter must be toplevel or stream")
        order = params.get("order", "chronological")
        if order not in ("chronological", "reverse_chronological"):
            errors.append("order must be chronological or reverse_chronological")
        if errors:
            return graph_error(100, "(#100) " + "; ".join(errors))
        node_id = request.params["node"]
        with self.lock:
            known = node_id in self._posts or any(c.id == node_id for c in self.comments)
        if not known:
            return no_such_object(node_id)
        return self.list_comments(request, newest_first=order == "reverse_chronological")

    def comment_json(self, comment: FakeComment, fields: list[str]) -> dict[str, Any]:
        owner = {"id": self.page_id, "name": self.page_name}
        author = {"id": comment.author_id, "name": comment.author}
        values: dict[str, Any] = {
            "id": comment.id,
            "message": comment.text,
            "from": owner if comment.by_owner else author,
            "created_time": graph_time(comment.created_at),
            "permalink_url": f"https://www.facebook.com/{comment.parent}?comment_id={comment.id}",
        }
        return {k: v for k, v in values.items() if k in fields or k == "id"}

    def _check_attached(self, attached: dict[str, str]) -> list[str]:
        errors: list[str] = []
        with self.lock:
            for key, value in sorted(attached.items()):
                if not re.fullmatch(r"attached_media\[\d+\]", key):
                    errors.append(f"{key}: attached_media entries are attached_media[<n>]")
                    continue
                try:
                    media_fbid = str(json.loads(value)["media_fbid"])
                except (ValueError, KeyError, TypeError):
                    errors.append(f'{key}: not JSON {{"media_fbid": …}}')
                    continue
                photo = self.photos.get(media_fbid)
                if photo is None:
                    errors.append(f"{key}: no photo {media_fbid} on the Page")
                elif photo.published or photo.post_id is not None:
                    errors.append(f"{key}: photo {media_fbid} is published or used already")
        return errors

    def _own_page(self, request: FakeRequest) -> FakeResponse | None:
        if request.params["page"] != self.page_id:
            return no_such_object(request.params["page"], request.method.lower())
        return None

    def _feed(self, request: FakeRequest) -> FakeResponse:
        if (refused := self._own_page(request)) is not None:
            return refused
        params = self.params(request)
        message = params.get("message", "")
        photo_ids = [
            str(json.loads(v)["media_fbid"])
            for k, v in sorted(params.items(), key=lambda kv: kv[0])
            if k.startswith("attached_media[")
        ]
        now = datetime.now(UTC)
        with self.lock:
            if message and any(
                p.message == message and now - p.created_at < self.duplicate_window
                for p in self.posts
            ):
                return graph_error(506, "(#506) Duplicate status message")
            post = FakePagePost(
                id=f"{self.page_id}_{self.next_id('9000000')}",
                message=message,
                link=params.get("link"),
                photo_ids=photo_ids,
                created_at=now,
            )
            self._posts[post.id] = post
            for photo_id in photo_ids:
                self.photos[photo_id].post_id = post.id
        return json_response({"id": post.id})

    def _photos(self, request: FakeRequest) -> FakeResponse:
        if (refused := self._own_page(request)) is not None:
            return refused
        params, source = self.params(request), self.files(request).get("source")
        with self.lock:
            photo = FakePhoto(
                id=self.next_id("5000000"),
                alt=params.get("alt_text_custom"),
                filename=source.filename if source else None,
                content_type=(source.content_type if source else None) or "image/jpeg",
                size=len(source.data) if source else 0,
                published=params.get("published", "true") == "true",
            )
            self.photos[photo.id] = photo
        return json_response({"id": photo.id})

    def _post_json(self, post: FakePagePost, fields: str) -> dict[str, Any]:
        data: dict[str, Any] = {"id": post.id}
        for name in field_names(fields) or ["created_time", "message", "id"]:
            if name == "message" and post.message:
                data["message"] = post.message
            elif name == "created_time":
                data["created_time"] = graph_time(post.created_at)
            elif name == "permalink_url":
                page, _sep, number = post.id.partition("_")
                data["permalink_url"] = f"https://www.facebook.com/{page}/posts/{number}"
            elif name == "shares" and post.shares:
                data["shares"] = {"count": post.shares}  # left out while nobody shared it
            elif name in ("reactions", "comments"):
                count = post.reactions if name == "reactions" else post.comments
                data[name] = {"data": [], "summary": {"total_count": count}}
        return data

    def _published_posts(self, request: FakeRequest) -> FakeResponse:
        if (refused := self._own_page(request)) is not None:
            return refused
        params = self.params(request)
        limit = int(params.get("limit", "25"))
        with self.lock:
            newest = sorted(self.posts, key=lambda p: p.created_at, reverse=True)[:limit]
            data = [self._post_json(p, params.get("fields", "")) for p in newest]
        return json_response({"data": data, "paging": {"cursors": {"before": "b", "after": "a"}}})

    def _get(self, request: FakeRequest) -> FakeResponse:
        node, fields = request.params["node"], self.params(request).get("fields", "")
        with self.lock:
            if node == self.page_id:
                page = {
                    "id": self.page_id,
                    "name": self.page_name,
                    "link": f"https://www.facebook.com/{self.page_id}",
                    "followers_count": self.followers,
                    "fan_count": self.followers,
                }
                wanted = field_names(fields) or ["name", "id"]
                return json_response({k: v for k, v in page.items() if k in wanted or k == "id"})
            post = self._posts.get(node)
            if post is not None and not post.deleted:
                return json_response(self._post_json(post, fields))
        return no_such_object(node)

    def _delete(self, request: FakeRequest) -> FakeResponse:
        node = request.params["node"]
        with self.lock:
            post = self._posts.get(node)
            if post is None or post.deleted:
                return no_such_object(node, "delete")
            post.deleted = True
        return json_response({"success": True})


# -- containers (Instagram and Threads) -------------------------------------------------


@dataclass
class FakeContainer:
    id: str
    media_type: str  # IMAGE, TEXT, CAROUSEL
    text: str
    image_url: str | None
    alt_text: str | None
    is_item: bool
    children: list[str]
    link_attachment: str | None
    created_at: datetime
    polls_left: int
    status: str = "IN_PROGRESS"
    used_by: str | None = None  # the carousel holding this item
    media_id: str | None = None
    reply_to: str | None = None


@dataclass
class FakeMedia:
    id: str
    text: str
    alts: list[str]
    image_urls: list[str]
    link_attachment: str | None
    container_id: str
    created_at: datetime
    permalink: str
    deleted: bool = False
    likes: int = 0
    replies: int = 0
    reposts: int = 0
    quotes: int = 0
    shares: int = 0
    views: int = 0


class ContainerFake(GraphFake):
    """Instagram and Threads: containers that process, then publish into posts."""

    #: "status_code" (Instagram) or "status" (Threads)
    status_field: ClassVar[str]
    #: "caption" (Instagram) or "text" (Threads)
    text_field: ClassVar[str]
    create_route: ClassVar[str]
    publish_route: ClassVar[str]
    max_items: ClassVar[int]
    permalink_base: ClassVar[str]
    #: metric names /{media-id}/insights knows
    metrics: ClassVar[set[str]]

    def __init__(self, *, token: str, user_id: str, username: str, **kw: Any) -> None:
        super().__init__(token=token, **kw)
        self.user_id = user_id
        self.username = username
        self.display_name = "Zweckverband Städtedreieck"
        self.followers = 321
        #: status reads a new container answers IN_PROGRESS before FINISHED
        self.processing_polls = 0
        #: the next containers created go to ERROR instead (Meta could not fetch the image)
        self.failing_containers = 0
        self.containers: dict[str, FakeContainer] = {}
        self._media: dict[str, FakeMedia] = {}

    @property
    def media(self) -> list[FakeMedia]:
        """The posts on the account now (deleted ones left out), oldest first."""
        with self.lock:
            return [m for m in self._media.values() if not m.deleted]

    def media_containing(self, text: str) -> list[FakeMedia]:
        return [m for m in self.media if text in m.text]

    def expire(self, container_id: str) -> None:
        """Let a container pass its 24 hours unpublished."""
        with self.lock:
            container = self.containers[container_id]
            if container.status != "PUBLISHED":
                container.status = "EXPIRED"

    def snapshot(self) -> dict[str, Any]:
        return {
            "media": [
                {"id": m.id, "text": m.text, "alts": m.alts, "image_urls": m.image_urls}
                for m in self.media
            ],
            "containers": {c.id: c.status for c in self.containers.values()},
        }

    # the rules

    def check_text(self, text: str) -> list[str]:
        return []

    def check(
        self, request: FakeRequest, params: dict[str, str], files: dict[str, FormPart]
    ) -> list[str]:
        errors: list[str] = []
        if request.route == self.create_route:
            errors += self._check_container(params)
        elif request.route == self.publish_route:
            with self.lock:
                container = self.containers.get(params.get("creation_id", ""))
                if container is not None and container.status == "PUBLISHED":
                    errors.append(f"container {container.id} is published already")
                if container is not None and container.is_item:
                    errors.append(f"container {container.id} is a carousel item")
        elif request.route == "GET /{node}":
            errors += self._check_node_fields(request.params["node"], params)
        elif request.route == "GET /{node}/insights":
            names = [m for m in params.get("metric", "").split(",") if m]
            errors += [f"unknown metric {m!r}" for m in names if m not in self.metrics]
            if not names:
                errors.append("missing required parameter 'metric'")
        return errors

    def _check_node_fields(self, node: str, params: dict[str, str]) -> list[str]:
        return []

    def _check_container(self, params: dict[str, str]) -> list[str]:
        errors: list[str] = []
        media_type = params.get("media_type", "IMAGE")
        text = params.get(self.text_field, "")
        is_item = params.get("is_carousel_item", "false") == "true"
        if params.get("is_carousel_item", "false") not in ("true", "false"):
            errors.append("is_carousel_item must be true or false")
        if media_type == "IMAGE":
            url = params.get("image_url")
            if url is None:
                errors.append("an image container needs image_url")
            elif not is_https_url(url):
                errors.append(f"image_url {url!r} is not an absolute https URL Meta can fetch")
        elif "image_url" in params:
            errors.append(f"image_url on a {media_type} container")
        if media_type == "CAROUSEL":
            errors += self._check_children(params.get("children", ""))
            if is_item:
                errors.append("a carousel cannot be a carousel item")
        elif "children" in params:
            errors.append(f"children on a {media_type} container")
        if "alt_text" in params and media_type != "IMAGE":
            errors.append(f"alt_text on a {media_type} container (images only)")
        if is_item and text:
            errors.append(f"{self.text_field} on a carousel item (the carousel holds it)")
        errors += self.check_media_type(media_type, params)
        errors += self.check_text(text)
        return errors

    def check_media_type(self, media_type: str, params: dict[str, str]) -> list[str]:
        return []

    def _check_children(self, children: str) -> list[str]:
        ids = [c for c in children.split(",") if c]
        errors = []
        if not 2 <= len(ids) <= self.max_items:
            errors.append(f"a carousel holds 2 to {self.max_items} items, not {len(ids)}")
        with self.lock:
            for child in ids:
                item = self.containers.get(child)
                if item is None or not item.is_item:
                    errors.append(f"child {child} is not a carousel item container")
                elif item.used_by is not None:
                    errors.append(f"child {child} belongs to carousel {item.used_by} already")
        return errors

    # the endpoints

    def _own(self, request: FakeRequest) -> FakeResponse | None:
        if request.params["user"] != self.user_id:
            return no_such_object(request.params["user"], request.method.lower())
        return None

    def _create(self, request: FakeRequest) -> FakeResponse:
        if (refused := self._own(request)) is not None:
            return refused
        params = self.params(request)
        media_type = params.get("media_type", "IMAGE")
        with self.lock:
            failing = self.failing_containers > 0
            if failing:
                self.failing_containers -= 1
            container = FakeContainer(
                id=self.next_id("1789000000"),
                media_type=media_type,
                text=params.get(self.text_field, ""),
                image_url=params.get("image_url"),
                alt_text=params.get("alt_text"),
                is_item=params.get("is_carousel_item") == "true",
                children=[c for c in params.get("children", "").split(",") if c],
                link_attachment=params.get("link_attachment"),
                created_at=datetime.now(UTC),
                polls_left=self.processing_polls,
                status="ERROR" if failing else "IN_PROGRESS",
                reply_to=params.get("reply_to_id"),
            )
            if container.reply_to is not None and not (
                container.reply_to in self._media
                or any(c.id == container.reply_to for c in self.comments)
            ):
                return no_such_object(container.reply_to, "post")
            if container.status == "IN_PROGRESS" and container.polls_left == 0:
                container.status = "FINISHED"
            for child in container.children:
                self.containers[child].used_by = container.id
            self.containers[container.id] = container
        return json_response({"id": container.id})

    def _listed_comments(self, request: FakeRequest, allowed: set[str]) -> FakeResponse:
        params = self.params(request)
        errors = self.check_fields(params, allowed, "a comment")
        if errors:
            return graph_error(100, "(#100) " + "; ".join(errors))
        node_id = request.params["node"]
        with self.lock:
            known = node_id in self._media or any(c.id == node_id for c in self.comments)
        if not known:
            return no_such_object(node_id)
        newest_first = params.get("reverse", "true") == "true"
        return self.list_comments(request, newest_first=newest_first)

    def _ig_comments(self, request: FakeRequest) -> FakeResponse:
        allowed = names("id text username timestamp from like_count hidden media parent_id")
        return self._listed_comments(request, allowed)

    def _th_replies(self, request: FakeRequest) -> FakeResponse:
        allowed = names("id text username timestamp permalink media_type has_replies")
        return self._listed_comments(request, allowed)

    def comment_json(self, comment: FakeComment, fields: list[str]) -> dict[str, Any]:
        values: dict[str, Any] = {
            "id": comment.id,
            "text": comment.text,
            "username": comment.username,
            "timestamp": graph_time(comment.created_at),
            "permalink": f"{self.permalink_base}/{comment.id}",
        }
        return {k: v for k, v in values.items() if k in fields or k == "id"}

    def refuse_publish(self, container: FakeContainer) -> FakeResponse | None:
        """A platform refusal of publishing (limits), or None."""
        return None

    def _publish(self, request: FakeRequest) -> FakeResponse:
        if (refused := self._own(request)) is not None:
            return refused
        creation_id = self.params(request).get("creation_id", "")
        with self.lock:
            container = self.containers.get(creation_id)
            if container is None:
                return no_such_object(creation_id, "post")
            if container.status == "IN_PROGRESS":
                return graph_error(
                    9007, "Media ID is not available", subcode=2207027, kind="OAuthException"
                )
            if container.status in ("ERROR", "EXPIRED"):
                return graph_error(
                    9007, f"The media container is {container.status.lower()}", subcode=2207032
                )
            if container.status == "PUBLISHED":
                return graph_error(9007, "Media already published", subcode=2207001)
            if (refusal := self.refuse_publish(container)) is not None:
                return refusal
            items = [self.containers[c] for c in container.children] or [container]
            media = FakeMedia(
                id=self.next_id("1790000000"),
                text=container.text,
                alts=[i.alt_text or "" for i in items if i.image_url],
                image_urls=[i.image_url for i in items if i.image_url],
                link_attachment=container.link_attachment,
                container_id=container.id,
                created_at=datetime.now(UTC),
                permalink="",
            )
            media.permalink = f"{self.permalink_base}/{media.id}"
            container.status, container.media_id = "PUBLISHED", media.id
            if container.reply_to is not None:  # an answer, not a post of the profile
                self.comments.append(
                    FakeComment(
                        media.id, container.reply_to, media.text, self.username, self.username,
                        self.user_id, media.created_at, by_owner=True,
                    )
                )  # fmt: skip
                return json_response({"id": media.id})
            self._media[media.id] = media
        return json_response({"id": media.id})

    def _recent(self, request: FakeRequest) -> FakeResponse:
        if (refused := self._own(request)) is not None:
            return refused
        params = self.params(request)
        limit = int(params.get("limit", "25"))
        with self.lock:
            newest = sorted(self.media, key=lambda m: m.created_at, reverse=True)[:limit]
            data = [self.media_json(m, params.get("fields", "")) for m in newest]
        return json_response({"data": data, "paging": {"cursors": {"before": "b", "after": "a"}}})

    def media_json(self, media: FakeMedia, fields: str) -> dict[str, Any]:
        full = {
            "id": media.id,
            self.text_field: media.text,
            "timestamp": graph_time(media.created_at),
            "permalink": media.permalink,
            "media_type": "CAROUSEL_ALBUM" if len(media.image_urls) > 1 else "IMAGE",
            "alt_text": media.alts[0] if media.alts else None,
        }
        wanted = field_names(fields) or ["id"]
        return {k: v for k, v in full.items() if k in wanted or k == "id"}

    def user_json(self) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "username": self.username,
            "name": self.display_name,
            "followers_count": self.followers,
        }

    def _get(self, request: FakeRequest) -> FakeResponse:
        node, fields = request.params["node"], self.params(request).get("fields", "")
        wanted = field_names(fields)
        with self.lock:
            if node in (self.user_id, "me"):
                user = self.user_json()
                return json_response({k: v for k, v in user.items() if k in wanted or k == "id"})
            container = self.containers.get(node)
            if container is not None:
                if container.status == "IN_PROGRESS":
                    container.polls_left -= 1
                    if container.polls_left <= 0:
                        container.status = "FINISHED"
                    answer: dict[str, Any] = {"id": container.id, self.status_field: "IN_PROGRESS"}
                else:
                    answer = {"id": container.id, self.status_field: container.status}
                    if container.status == "ERROR":
                        answer.update(self.error_detail())
                return json_response({k: v for k, v in answer.items() if k in wanted or k == "id"})
            media = self._media.get(node)
            if media is not None and not media.deleted:
                return json_response(self.media_json(media, fields))
        return no_such_object(node)

    def error_detail(self) -> dict[str, str]:
        """What a container in ERROR says about the failure."""
        return {}

    #: insight metric -> the FakeMedia counter it reads
    metric_counters: ClassVar[dict[str, str]] = {}

    def insight(self, name: str, value: int) -> dict[str, Any]:
        return {
            "name": name,
            "period": "lifetime",
            "values": [{"value": value}],
            "title": name.title(),
            "id": f"{name}/insights/{name}/lifetime",
        }

    def _insights(self, request: FakeRequest) -> FakeResponse:
        node = request.params["node"]
        names = [m for m in self.params(request).get("metric", "").split(",") if m]
        with self.lock:
            media = self._media.get(node)
            if media is None or media.deleted:
                return no_such_object(node)
            data = [
                self.insight(n, int(getattr(media, self.metric_counters.get(n, n), 0)))
                for n in names
            ]
        return json_response({"data": data})

    def _delete(self, request: FakeRequest) -> FakeResponse:
        node = request.params["node"]
        with self.lock:
            media = self._media.get(node)
            if media is None or media.deleted:
                return no_such_object(node, "delete")
            media.deleted = True
        return json_response(self.deleted_json(node))

    def deleted_json(self, node: str) -> dict[str, Any]:
        return {"success": True}


# -- Instagram -------------------------------------------------------------------------------


class InstagramFake(ContainerFake):
    """One Instagram professional account, reached through graph.facebook.com."""

    name = "instagram"
    status_field = "status_code"
    text_field = "caption"
    create_route = "POST /{user}/media"
    publish_route = "POST /{user}/media_publish"
    max_items = 10
    permalink_base = "https://www.instagram.com/p"
    metrics: ClassVar[set[str]] = names(
        "views reach likes comments shares saved total_interactions"
    )
    CAPTION_LIMIT = 2200
    MAX_HASHTAGS = 30
    USER_FIELDS: ClassVar[set[str]] = names(
        "id username name followers_count media_count biography"
    )
    CONTAINER_FIELDS: ClassVar[set[str]] = {"id", "status_code", "status", "copyright_check_status"}
    MEDIA_FIELDS: ClassVar[set[str]] = names(
        "id caption timestamp permalink media_type alt_text like_count comments_count"
    )
    endpoints: ClassVar[dict[str, Params]] = {
        "POST /{user}/media": Params.of(
            optional="image_url caption alt_text is_carousel_item media_type children "
            "location_id user_tags collaborators"
        ),
        "POST /{user}/media_publish": Params.of(required="creation_id"),
        "GET /{user}/media": Params.of(optional="fields limit after before since until"),
        "GET /{node}/insights": Params.of(optional="metric period breakdown"),
        "GET /{node}": Params.of(optional="fields"),
        "DELETE /{node}": Params.of(),
        "GET /{node}/comments": Params.of(optional="fields limit after before"),
        "POST /{node}/replies": Params.of(required="message"),
    }

    def __init__(
        self,
        *,
        token: str = INSTAGRAM_TOKEN,
        user_id: str = "17841400000000001",
        username: str = "staedtedreieck",
        **kw: Any,
    ) -> None:
        super().__init__(token=token, user_id=user_id, username=username, **kw)
        #: API-published posts allowed in a moving 24 hours
        self.publish_limit = 50
        self.route("POST", "/{user}/media", self._create)
        self.route("POST", "/{user}/media_publish", self._publish)
        self.route("GET", "/{node}/comments", self._ig_comments)
        self.route("POST", "/{node}/replies", self.answer_comment)
        self.route("GET", "/{user}/media", self._recent)
        self.route("GET", "/{node}/insights", self._insights)
        self.route("GET", "/{node}", self._get)
        self.route("DELETE", "/{node}", self._delete)

    metric_counters: ClassVar[dict[str, str]] = {"comments": "replies"}

    def error_detail(self) -> dict[str, str]:
        # IG Container: "status" holds the error's subcode when status_code is ERROR
        return {"status": "Error: 2207052 FAILED_DOWNLOADING_IMAGE"}

    def check_text(self, text: str) -> list[str]:
        errors = []
        if len(text.encode("utf-16-le")) // 2 > self.CAPTION_LIMIT:
            errors.append(f"caption longer than {self.CAPTION_LIMIT} characters")
        tags = _HASHTAG.findall(_URL.sub(" ", text))
        if len(tags) > self.MAX_HASHTAGS:
            errors.append(f"caption with {len(tags)} hashtags (at most {self.MAX_HASHTAGS})")
        return errors

    def check_media_type(self, media_type: str, params: dict[str, str]) -> list[str]:
        if media_type not in ("IMAGE", "CAROUSEL"):
            return [f"media_type {media_type!r}: crosspost publishes images and carousels only"]
        return []

    def _check_node_fields(self, node: str, params: dict[str, str]) -> list[str]:
        with self.lock:
            if node == self.user_id:
                return self.check_fields(params, self.USER_FIELDS, "an IG User")
            if node in self.containers:
                return self.check_fields(params, self.CONTAINER_FIELDS, "an IG Container")
            if node in self._media:
                return self.check_fields(params, self.MEDIA_FIELDS, "an IG Media")
        return []

    def refuse_publish(self, container: FakeContainer) -> FakeResponse | None:
        day_ago = datetime.now(UTC) - timedelta(hours=24)
        if sum(1 for m in self._media.values() if m.created_at > day_ago) >= self.publish_limit:
            return graph_error(
                9,
                "Application request limit reached: the account reached its publishing limit",
                subcode=2207042,
            )
        return None


# -- Threads ------------------------------------------------------------------------------


@dataclass
class TokenInfo:
    issued_at: datetime
    expires_at: datetime
    valid: bool = True


class ThreadsFake(ContainerFake):
    """One Threads profile on graph.threads.net, with 60-day tokens that can be refreshed."""

    name = "threads"
    status_field = "status"
    text_field = "text"
    create_route = "POST /{user}/threads"
    publish_route = "POST /{user}/threads_publish"
    max_items = 20
    permalink_base = "https://www.threads.net/@staedtedreieck/post"
    metrics: ClassVar[set[str]] = {"views", "likes", "replies", "reposts", "quotes", "shares"}
    TEXT_LIMIT = 500
    MAX_LINKS = 5
    LIFETIME = timedelta(days=60)
    USER_FIELDS: ClassVar[set[str]] = names(
        "id username name threads_profile_picture_url threads_biography"
    )
    CONTAINER_FIELDS: ClassVar[set[str]] = {"id", "status", "error_message"}
    MEDIA_FIELDS: ClassVar[set[str]] = names(
        "id text timestamp permalink media_type alt_text link_attachment_url username shortcode"
    )
    token_param_routes: ClassVar[frozenset[str]] = frozenset({"GET /refresh_access_token"})
    endpoints: ClassVar[dict[str, Params]] = {
        "POST /{user}/threads": Params.of(
            required="media_type",
            optional="text image_url alt_text is_carousel_item children link_attachment "
            "reply_control topic_tag reply_to_id",
        ),
        "POST /{user}/threads_publish": Params.of(required="creation_id"),
        "GET /{user}/threads": Params.of(optional="fields limit since until before after"),
        "GET /{user}/threads_insights": Params.of(required="metric", optional="since until"),
        "GET /{node}/insights": Params.of(optional="metric"),
        "GET /refresh_access_token": Params.of(required="grant_type access_token"),
        "GET /debug_token": Params.of(required="input_token"),
        "GET /{node}/replies": Params.of(optional="fields reverse limit after before"),
        "GET /{node}": Params.of(optional="fields"),
        "DELETE /{node}": Params.of(),
    }

    def __init__(
        self,
        *,
        token: str = THREADS_TOKEN,
        user_id: str = "25000000000000001",
        username: str = "staedtedreieck",
        token_age: timedelta = timedelta(days=10),
        **kw: Any,
    ) -> None:
        super().__init__(token=token, user_id=user_id, username=username, **kw)
        issued = (datetime.now(UTC) - token_age).replace(microsecond=0)  # Meta keeps seconds
        self.tokens: dict[str, TokenInfo] = {token: TokenInfo(issued, issued + self.LIFETIME)}
        self._refreshes = itertools.count(1)
        self.route("GET", "/refresh_access_token", self._refresh)
        self.route("GET", "/{node}/replies", self._th_replies)
        self.route("GET", "/debug_token", self._debug_token)
        self.route("POST", "/{user}/threads", self._create)
        self.route("POST", "/{user}/threads_publish", self._publish)
        self.route("GET", "/{user}/threads", self._recent)
        self.route("GET", "/{user}/threads_insights", self._user_insights)
        self.route("GET", "/{node}/insights", self._insights)
        self.route("GET", "/{node}", self._get)
        self.route("DELETE", "/{node}", self._delete)

    # tokens

    def set_token_age(self, token: str, age: timedelta, *, lifetime: timedelta = LIFETIME) -> None:
        """Make ``token`` issued ``age`` ago, expiring ``lifetime`` after that."""
        issued = (datetime.now(UTC) - age).replace(microsecond=0)
        with self.lock:
            self.tokens[token] = TokenInfo(issued, issued + lifetime)

    def token_valid(self, token: str) -> bool:
        with self.lock:
            info = self.tokens.get(token)
            return info is not None and info.valid and info.expires_at > datetime.now(UTC)

    def revoke_all(self) -> None:
        with self.lock:
            for info in self.tokens.values():
                info.valid = False

    def check(
        self, request: FakeRequest, params: dict[str, str], files: dict[str, FormPart]
    ) -> list[str]:
        if request.route == "GET /refresh_access_token":
            grant = params.get("grant_type")
            return [] if grant == "th_refresh_token" else [f"grant_type {grant!r}"]
        if request.route == "GET /{user}/threads_insights":
            names = params.get("metric", "").split(",")
            known = {"views", "likes", "replies", "reposts", "quotes", "clicks", "followers_count"}
            return [f"unknown user metric {n!r}" for n in names if n not in known]
        if request.route == "GET /{user}/threads":
            return self.check_fields(params, self.MEDIA_FIELDS, "a Threads Media")
        return super().check(request, params, files)

    def _check_node_fields(self, node: str, params: dict[str, str]) -> list[str]:
        with self.lock:
            if node in (self.user_id, "me"):
                return self.check_fields(params, self.USER_FIELDS, "a Threads User")
            if node in self.containers:
                return self.check_fields(params, self.CONTAINER_FIELDS, "a Threads container")
            if node in self._media:
                return self.check_fields(params, self.MEDIA_FIELDS, "a Threads Media")
        return []

    def check_media_type(self, media_type: str, params: dict[str, str]) -> list[str]:
        errors = []
        if media_type not in ("TEXT", "IMAGE", "CAROUSEL"):
            errors.append(f"media_type {media_type!r}: crosspost sends TEXT, IMAGE, CAROUSEL")
        if media_type == "TEXT" and not params.get("text"):
            errors.append("a TEXT container needs text")
        link = params.get("link_attachment")
        if link is not None:
            if media_type != "TEXT":
                errors.append(f"link_attachment on a {media_type} container (text posts only)")
            if not is_https_url(link) and not link.startswith("http://"):
                errors.append(f"link_attachment {link!r} is not a URL")
            links = distinct_links(params.get("text", ""))
            if link not in links:
                links.append(link)
            if len(links) > self.MAX_LINKS:
                errors.append(f"THREADS_API__LINK_LIMIT_EXCEEDED: {len(links)} links (at most 5)")
        elif len(distinct_links(params.get("text", ""))) > self.MAX_LINKS:
            errors.append("THREADS_API__LINK_LIMIT_EXCEEDED: more than 5 links")
        return errors

    def check_text(self, text: str) -> list[str]:
        length = threads_length(text)
        if length > self.TEXT_LIMIT:
            return [f"text of {length} characters (at most {self.TEXT_LIMIT}, emoji as bytes)"]
        return []

    def before(self, request: FakeRequest) -> FakeResponse | None:
        answer = super().before(request)
        if answer is not None and request.route == "GET /refresh_access_token":
            token = self.params(request).get("access_token", "")
            info = self.tokens.get(token)
            if info is not None and info.expires_at <= datetime.now(UTC):
                return graph_error(190, "Error validating access token: Session has expired")
        return answer

    def _refresh(self, request: FakeRequest) -> FakeResponse:
        token = self.params(request)["access_token"]
        now = datetime.now(UTC).replace(microsecond=0)
        with self.lock:
            info = self.tokens[token]
            if now - info.issued_at < timedelta(hours=24):
                return graph_error(
                    100, "(#100) The token cannot be refreshed before it is 24 hours old"
                )
            fresh = f"{self.token}-refreshed-{next(self._refreshes)}"
            self.tokens[fresh] = TokenInfo(now, now + self.LIFETIME)
            self.token = fresh
        return json_response(
            {
                "access_token": fresh,
                "token_type": "bearer",
                "expires_in": int(self.LIFETIME.total_seconds()),
            }
        )

    def _debug_token(self, request: FakeRequest) -> FakeResponse:
        inspected = self.params(request)["input_token"]
        with self.lock:
            info = self.tokens.get(inspected)
            if info is None:
                return graph_error(190, "Invalid OAuth access token - Cannot parse access token")
            data = {
                "type": "USER",
                "application": "crosspost",
                "data_access_expires_at": int((info.issued_at + timedelta(days=90)).timestamp()),
                "expires_at": int(info.expires_at.timestamp()),
                "is_valid": info.valid and info.expires_at > datetime.now(UTC),
                "issued_at": int(info.issued_at.timestamp()),
                "scopes": ["threads_basic", "threads_content_publish", "threads_manage_insights"],
                "user_id": self.user_id,
            }
        return json_response({"data": data})

    def _user_insights(self, request: FakeRequest) -> FakeResponse:
        if (refused := self._own(request)) is not None:
            return refused
        names = self.params(request).get("metric", "").split(",")
        data = []
        for name in names:
            if name == "followers_count":
                data.append(
                    {
                        "name": "followers_count",
                        "period": "day",
                        "title": "followers_count",
                        "total_value": {"value": self.followers},
                        "id": f"{self.user_id}/insights/followers_count/day",
                    }
                )
        return json_response({"data": data})

    def error_detail(self) -> dict[str, str]:
        return {"error_message": "FAILED_DOWNLOADING_IMAGE"}

    def deleted_json(self, node: str) -> dict[str, Any]:
        return {"success": True, "deleted_id": node}


# -- harnesses for the contract suite ---------------------------------------------------------


class FacebookHarness(ServedAccount):
    platform = "facebook"
    create_route = "POST /{page}/feed"
    token_env = "CROSSPOST_TEST_FACEBOOK_TOKEN"
    supports_images = True
    recovers_unknown = True
    supports_delete = True

    def __init__(self) -> None:
        self.server = self.fake = FacebookFake()
        self.token = self.fake.token

    def account_keys(self) -> dict[str, Any]:
        return {"page_id": self.fake.page_id}

    def posts(self) -> list[OnPlatform]:
        return [
            OnPlatform(
                remote_id=p.id,
                text=p.message,
                alts=[self.fake.photos[i].alt or "" for i in p.photo_ids],
            )
            for p in self.fake.posts
        ]

    def revoke(self) -> None:
        self.fake.token = "revoked"


class _ContainerHarness(ServedAccount):
    #: Meta fetches the images from the website's public URLs (``media_urls``)
    fetches_public_media = True
    #: the platform publishes no text-only posts
    requires_media = False
    supports_images = True
    recovers_unknown = True
    supports_delete = True
    fake: ContainerFake
    server: FakeServer
    token: str
    token_env: str
    platform: str

    def posts(self) -> list[OnPlatform]:
        return [OnPlatform(remote_id=m.id, text=m.text, alts=list(m.alts)) for m in self.fake.media]


class InstagramHarness(_ContainerHarness):
    platform = "instagram"
    requires_media = True
    create_route = "POST /{user}/media_publish"
    token_env = "CROSSPOST_TEST_INSTAGRAM_TOKEN"

    def __init__(self) -> None:
        self.server = self.fake = InstagramFake()
        self.token = self.fake.token

    def account_keys(self) -> dict[str, Any]:
        return {"ig_user_id": self.fake.user_id}

    def revoke(self) -> None:
        self.fake.token = "revoked"


class ThreadsHarness(_ContainerHarness):
    platform = "threads"
    create_route = "POST /{user}/threads_publish"
    token_env = "CROSSPOST_TEST_THREADS_TOKEN"

    def __init__(self) -> None:
        self.server = self.threads = ThreadsFake()
        self.fake = self.threads
        self.token = self.fake.token

    def account_keys(self) -> dict[str, Any]:
        return {"user_id": self.fake.user_id}

    def revoke(self) -> None:
        self.threads.revoke_all()


register_server("facebook", FacebookHarness)
register_server("instagram", InstagramHarness)
register_server("threads", ThreadsHarness)


# -- running one alone ------------------------------------------------------------------------

_FAKES: dict[str, Callable[..., GraphFake]] = {
    "facebook": FacebookFake,
    "instagram": InstagramFake,
    "threads": ThreadsFake,
}


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--platform", choices=sorted(_FAKES), required=True)
    parser.add_argument("--token", help="the one valid access token")
    parser.add_argument("--processing-polls", type=int, default=0, help="IN_PROGRESS reads")


def _build(args: argparse.Namespace) -> GraphFake:
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "latency": args.latency,
        "verbose": args.verbose,
    }
    if args.token:
        options["token"] = args.token
    fake = _FAKES[args.platform](**options)
    if isinstance(fake, ContainerFake):
        fake.processing_polls = args.processing_polls
    return fake


def _describe(fake: FakeServer) -> dict[str, Any]:
    assert isinstance(fake, GraphFake)
    described: dict[str, Any] = {"platform": fake.name, "token": fake.token}
    if isinstance(fake, FacebookFake):
        described["page_id"] = fake.page_id
    elif isinstance(fake, ContainerFake):
        described["user_id"] = fake.user_id
    return described


__all__ = [
    "PUBLIC_MEDIA",
    "ContainerFake",
    "FacebookFake",
    "GraphFake",
    "InstagramFake",
    "ThreadsFake",
    "field_names",
    "graph_error",
    "graph_fault",
    "threads_length",
]

if __name__ == "__main__":
    raise SystemExit(main(_build, _add_arguments, describe=_describe))
