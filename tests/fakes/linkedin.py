"""A stateful LinkedIn organization page that checks every request against the documented contract.

There is no machine-readable contract for LinkedIn's REST API, so the checks
follow LinkedIn's own documentation (learn.microsoft.com/linkedin: Posts API,
Images API, MultiImage API, little text format, Social Actions, Organization
Share Statistics, Network Sizes, Token Introspection, Rate Limits, Versioning):

* every ``/rest`` request needs ``LinkedIn-Version: YYYYMM`` and
  ``X-Restli-Protocol-Version: 2.0.0``; without them LinkedIn refuses with 400
  (``VERSION_MISSING``), a version it no longer serves gets 426
  (``NONEXISTENT_VERSION``), always in LinkedIn's envelope
  ``{"status", "serviceErrorCode", "code", "message"}``;
* URNs in paths and query strings must be percent-encoded (Rest.li 2.0): the
  fake looks at the raw request target, before any decoding;
* ``POST /rest/posts``: the organic organization post, field by field (no
  unknown fields, one kind of ``content``, images uploaded by this page,
  ``altText`` at most 4086 characters, commentary at most 3000 characters);
  the answer is a 201 with the post's URN in ``x-restli-id`` and no body;
* ``commentary`` is little text format: an unescaped reserved character
  (``\\ | { } @ [ ] ( ) < > # * _ ~``) is markup to LinkedIn, which still
  answers 201 but cuts the text there. The fake does the same *and* records a
  validation error, since crosspost never means to send markup;
* images: ``POST /rest/images?action=initializeUpload`` → ``uploadUrl`` on the
  fake (``/dms-uploads/…``) → ``PUT`` of the bytes (201);
* ``DELETE /rest/posts/{urn}``: 204, also for a post deleted before (LinkedIn
  documents deletion as idempotent); 404 for a URN it never had;
* the ``q=author`` finder needs ``X-RestLi-Method: FINDER``;
* rate limits: a daily quota reset at 00:00 UTC, exhausted with a bare 429 (no
  ``Retry-After``, no rate-limit headers); :func:`throttled` injects one;
* ``POST /oauth/v2/introspectToken`` (form: client id, secret, token) tells the
  token's ``expires_at``.

Run it alone: ``python -m tests.fakes.linkedin --port 0``.
"""

from __future__ import annotations

import argparse
import itertools
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tests.fakes.harness import OnPlatform, ServedAccount, register_server
from tests.fakes.server import (
    FakeRequest,
    FakeResponse,
    FakeServer,
    Fault,
    ValidationFailure,
    json_response,
    main,
    status,
)

if TYPE_CHECKING:
    from tests.fakes.server import _RequestHandler

DEFAULT_TOKEN = "fake-linkedin-token-6b2f"
ORGANIZATION_ID = "10234567"
CLIENT_ID = "86fakeclientid"
CLIENT_SECRET = "fake-client-secret-93ac"
RESERVED = "\\|{}@[]()<>#*_~"
COMMENTARY_MAX = 3000
ALT_TEXT_MAX = 4086
VERSION_RE = re.compile(r"[0-9]{6}")
POST_FIELDS = frozenset(
    {
        "author",
        "commentary",
        "visibility",
        "distribution",
        "content",
        "lifecycleState",
        "isReshareDisabledByAuthor",
        "contentLandingPage",
        "contentCallToActionLabel",
        "reshareContext",
        "adContext",
        "container",
    }
)
THROTTLE_BODY = {
    "status": 429,
    "serviceErrorCode": 101,
    "code": "TOO_MANY_REQUESTS",
    "message": (
        "Resource level throttle APPLICATION DAY limit for calls to this resource is reached."
    ),
}


def throttled() -> Fault:
    """LinkedIn's daily-quota answer: a bare 429 in its envelope, with no hint when to return."""
    return status(429, THROTTLE_BODY)


def error(
    status_code: int, code: str, message: str, service_code: int | None = None
) -> FakeResponse:
    """An answer in LinkedIn's error envelope."""
    body: dict[str, Any] = {"status": status_code, "code": code, "message": message}
    if service_code is not None:
        body["serviceErrorCode"] = service_code
    return json_response(body, status_code)


def read_little_text(text: str) -> tuple[str, list[str]]:
    """What LinkedIn shows for ``text`` in little text format, and why that is not ``text``.

    Escapes (a backslash before a reserved character) become the character. At
    the first unescaped reserved character LinkedIn's parser sees markup; the
    shown text ends there (the silent truncation LinkedIn is known for).
    """
    shown: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in RESERVED:
            shown.append(text[index + 1])
            index += 2
            continue
        if char in RESERVED:
            problem = (
                f"commentary: unescaped {char!r} at offset {index} is little-text markup; "
                "LinkedIn cuts the post there (escape it with a backslash)"
            )
            return "".join(shown), [problem]
        shown.append(char)
        index += 1
    return "".join(shown), []


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class FakeImage:
    urn: str
    owner: str
    upload_token: str
    data: bytes | None = None
    content_type: str | None = None

    @property
    def uploaded(self) -> bool:
        return self.data is not None


@dataclass
class FakePost:
    urn: str
    author: str
    commentary: str  # as stored (little text, cut where LinkedIn would cut it)
    text: str  # as shown on the page
    content: dict[str, Any] | None
    body: dict[str, Any]
    created_at: datetime
    deleted: bool = False
    likes: int = 0
    comments: int = 0
    impressions: int = 0
    reshares: int = 0

    @property
    def alts(self) -> list[str]:
        content = self.content or {}
        if "media" in content:
            return [content["media"].get("altText", "")]
        images = content.get("multiImage", {}).get("images", [])
        return [image.get("altText", "") for image in images]


@dataclass
class _Seen:
    """The raw request target of the request being handled (before percent-decoding)."""

    target: str = ""
    refusal: tuple[int, str, str] | None = None


class LinkedInFake(FakeServer):
    """One LinkedIn organization page, its admin's token and its app's client credentials."""

    name = "linkedin"

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        organization_id: str = ORGANIZATION_ID,
        oldest_version: str = "202401",
        daily_limit: int = 100_000,
        followers: int = 1234,
        token_expires_at: datetime | None = None,
        **server_options: Any,
    ) -> None:
        super().__init__(**server_options)
        #: the one valid access token; change it to revoke the credential
        self.token = token
        #: the token is known but past its 60 days (401 EXPIRED_ACCESS_TOKEN)
        self.token_expired = False
        self.token_expires_at = token_expires_at or datetime.now(UTC) + timedelta(days=45)
        self.client_id = CLIENT_ID
        self.client_secret = CLIENT_SECRET
        self.organization_id = organization_id
        self.organization = f"urn:li:organization:{organization_id}"
        #: versions older than this are sunset (426)
        self.oldest_version = oldest_version
        #: requests per UTC day before the bare 429
        self.daily_limit = daily_limit
        self.followers = followers
        #: False: the token lacks rw_organization_admin (share statistics answer 403)
        self.share_statistics = True
        #: where upload URLs point (None: this fake)
        self.upload_base: str | None = None
        self.images: dict[str, FakeImage] = {}
        self._posts: dict[str, FakePost] = {}
        self._share_ids = itertools.count(7_300_000_000_000_000_000)
        self._image_ids = itertools.count(1)
        self._day = datetime.now(UTC).date()
        self._day_used = 0
        self._seen = threading.local()
        self.route("POST", "/rest/posts", self._create_post)
        self.route("GET", "/rest/posts", self._find_posts)
        self.route("DELETE", "/rest/posts/{urn}", self._delete_post)
        self.route("POST", "/rest/images", self._initialize_upload)
        self.route("PUT", "/dms-uploads/{token}", self._upload)
        self.route("GET", "/rest/socialActions/{urn}", self._social_actions)
        self.route("GET", "/rest/socialActions/{urn}/comments", self._comments)
        self.route("POST", "/rest/socialActions/{urn}/comments", self._comment)
        #: comments on posts and on comments (the inbox), oldest first
        self.comments: list[dict[str, Any]] = []
        self._comment_ids = itertools.count(6_900_000_000_000_000_001)
        self.route(
            "GET", "/rest/organizationalEntityShareStatistics", self._share_statistics_answer
        )
        self.route("GET", "/rest/networkSizes/{urn}", self._network_size)
        self.route("GET", "/rest/organizations/{id}", self._organization)
        self.route("POST", "/oauth/v2/introspectToken", self._introspect)

    # what tests look at

    @property
    def posts(self) -> list[FakePost]:
        """The posts on the page now (deleted ones left out), oldest first."""
        with self.lock:
            return [p for p in self._posts.values() if not p.deleted]

    def post(self, urn: str) -> FakePost:
        with self.lock:
            return self._posts[urn]

    def snapshot(self) -> dict[str, Any]:
        return {
            "posts": [
                {"id": p.urn, "text": p.text, "commentary": p.commentary, "alts": p.alts}
                for p in self.posts
            ]
        }

    # the raw request target: FakeRequest holds the decoded path only

    def _dispatch(self, request: FakeRequest, conn: _RequestHandler) -> None:
        self._seen.value = _Seen(target=conn.path)
        try:
            super()._dispatch(request, conn)
        finally:
            self._seen.value = _Seen()

    def _current(self) -> _Seen:
        seen: _Seen | None = getattr(self._seen, "value", None)
        return seen if seen is not None else _Seen()

    # validation

    def validate(self, request: FakeRequest) -> list[str]:
        seen = self._current()
        problems: list[tuple[int, str, str]] = []
        if request.path.startswith("/rest/"):
            problems.extend(self._header_problems(request))
            problems.extend(self._encoding_problems(request, seen.target))
        check = {
            "POST /rest/posts": self._check_post,
            "GET /rest/posts": self._check_finder,
            "POST /rest/images": self._check_initialize,
            "PUT /dms-uploads/{token}": self._check_upload,
            "GET /rest/organizationalEntityShareStatistics": self._check_statistics,
            "GET /rest/networkSizes/{urn}": self._check_network_size,
            "POST /oauth/v2/introspectToken": self._check_introspect,
        }.get(request.route or "")
        if check is not None and not problems:
            problems.extend((422, "UNPROCESSABLE_ENTITY", p) for p in check(request))
        seen.refusal = problems[0] if problems else None
        return [p[2] for p in problems]

    def invalid(self, request: FakeRequest, errors: list[str]) -> FakeResponse:
        refusal = self._current().refusal
        if refusal is None:
            return error(404, "NOT_FOUND", "; ".join(errors))
        code, name, _message = refusal
        return error(code, name, "; ".join(errors))

    def _header_problems(self, request: FakeRequest) -> list[tuple[int, str, str]]:
        problems = []
        version = request.header("linkedin-version")
        if version is None:
            problems.append(
                (
                    400,
                    "VERSION_MISSING",
                    "A version must be present. Please specify a version by adding the "
                    "LinkedIn-Version header.",
                )
            )
        elif not VERSION_RE.fullmatch(version):
            problems.append((400, "INVALID_VERSION", f"Invalid version format {version!r}"))
        if request.header("x-restli-protocol-version") != "2.0.0":
            problems.append(
                (
                    400,
                    "ILLEGAL_ARGUMENT",
                    "X-Restli-Protocol-Version: 2.0.0 is required (Rest.li 2.0 syntax)",
                )
            )
        return problems

    def _encoding_problems(self, request: FakeRequest, target: str) -> list[tuple[int, str, str]]:
        raw_path, _sep, raw_query = target.partition("?")
        problems = []
        if "urn:li:" in raw_path:
            problems.append((400, "ILLEGAL_ARGUMENT", f"URN in the path not encoded: {raw_path}"))
        if "urn:li:" in raw_query:
            problems.append((400, "ILLEGAL_ARGUMENT", f"URN in the query not encoded: {raw_query}"))
        if "List%28" in raw_query or "%29" in raw_query:
            problems.append(
                (400, "ILLEGAL_ARGUMENT", "List(...) syntax must not be percent-encoded")
            )
        return problems

    def _check_post(self, request: FakeRequest) -> list[str]:
        if not request.content_type.startswith("application/json"):
            return [f"Content-Type must be application/json, not {request.content_type!r}"]
        body = request.json()
        if not isinstance(body, dict):
            return ["the body must be a JSON object"]
        problems = [f"/{name}: unknown field" for name in sorted(set(body) - POST_FIELDS)]
        if body.get("author") != self.organization:
            problems.append(f"/author: {body.get('author')!r} is not {self.organization}")
        commentary = body.get("commentary")
        if not isinstance(commentary, str):
            problems.append("/commentary: a string is required")
        else:
            shown, _problems = read_little_text(commentary)
            if utf16_length(shown) > COMMENTARY_MAX:
                problems.append(f"/commentary: longer than {COMMENTARY_MAX} characters")
        if body.get("visibility") != "PUBLIC":
            problems.append(f"/visibility: {body.get('visibility')!r}, expected PUBLIC")
        if body.get("lifecycleState") != "PUBLISHED":
            problems.append(f"/lifecycleState: {body.get('lifecycleState')!r}")
        if not isinstance(body.get("isReshareDisabledByAuthor"), bool):
            problems.append("/isReshareDisabledByAuthor: a boolean is required")
        distribution = body.get("distribution")
        if distribution != {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        }:
            problems.append(f"/distribution: {distribution!r} is not an organic main-feed post")
        if "content" in body:
            problems.extend(self._check_content(body["content"]))
        return problems

    def _check_content(self, content: Any) -> list[str]:
        if not isinstance(content, dict) or len(content) != 1:
            return ["/content: exactly one of article, media, multiImage"]
        [(kind, value)] = content.items()
        if not isinstance(value, dict):
            return [f"/content/{kind}: an object is required"]
        if kind == "article":
            problems = [
                f"/content/article/{k}: unknown field"
                for k in sorted(
                    set(value) - {"source", "title", "description", "thumbnail", "thumbnailAltText"}
                )
            ]
            source = value.get("source")
            parts = urllib.parse.urlsplit(source) if isinstance(source, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
                problems.append(f"/content/article/source: {source!r} is not a URL")
            if not isinstance(value.get("title"), str) or not value["title"]:
                problems.append("/content/article/title: a title is required")
            return problems
        if kind == "media":
            return self._check_image(value, "/content/media")
        if kind == "multiImage":
            images = value.get("images")
            if set(value) != {"images"} or not isinstance(images, list):
                return ["/content/multiImage: {images: [...]} is required"]
            if not 2 <= len(images) <= 20:
                return [f"/content/multiImage/images: {len(images)} images, 2 to 20 allowed"]
            return [
                p
                for n, image in enumerate(images)
                for p in self._check_image(image, f"/content/multiImage/images/{n}")
            ]
        return [f"/content/{kind}: not a content type crosspost publishes"]

    def _check_image(self, value: Any, where: str) -> list[str]:
        if not isinstance(value, dict):
            return [f"{where}: an object is required"]
        problems = [f"{where}/{k}: unknown field" for k in sorted(set(value) - {"id", "altText"})]
        alt = value.get("altText")
        if alt is not None and (not isinstance(alt, str) or len(alt) > ALT_TEXT_MAX):
            problems.append(f"{where}/altText: a string of at most {ALT_TEXT_MAX} characters")
        with self.lock:
            image = self.images.get(str(value.get("id")))
        if image is None:
            problems.append(f"{where}/id: {value.get('id')!r} is no image of this page")
        elif image.owner != self.organization:
            problems.append(f"{where}/id: the image belongs to {image.owner}")
        elif not image.uploaded:
            problems.append(f"{where}/id: {image.urn} was initialised but never uploaded")
        return problems

    def _check_finder(self, request: FakeRequest) -> list[str]:
        problems = []
        if request.header("x-restli-method") != "FINDER":
            problems.append("the q=author finder needs X-RestLi-Method: FINDER")
        if request.arg("q") != "author":
            problems.append(f"q={request.arg('q')!r}: only the author finder is served")
        if request.arg("author") != self.organization:
            problems.append(f"author={request.arg('author')!r} is not {self.organization}")
        count = request.arg("count", "10") or ""
        if not count.isdigit() or not 1 <= int(count) <= 100:
            problems.append(f"count={count!r}: 1 to 100")
        return problems

    def _check_initialize(self, request: FakeRequest) -> list[str]:
        if request.arg("action") != "initializeUpload":
            return [f"action={request.arg('action')!r}: only initializeUpload is served"]
        body = request.json() if request.body else None
        if body != {"initializeUploadRequest": {"owner": self.organization}}:
            return [f"body {body!r} is not {{initializeUploadRequest: {{owner: <page URN>}}}}"]
        return []

    def _check_upload(self, request: FakeRequest) -> list[str]:
        problems = []
        if not request.body:
            problems.append("the upload carries no bytes")
        if not request.content_type.startswith("image/"):
            problems.append(f"Content-Type {request.content_type!r} is not an image type")
        return problems

    def _check_statistics(self, request: FakeRequest) -> list[str]:
        problems = []
        if request.arg("q") != "organizationalEntity":
            problems.append(f"q={request.arg('q')!r}, expected organizationalEntity")
        if request.arg("organizationalEntity") != self.organization:
            problems.append(f"organizationalEntity is not {self.organization}")
        lists = [request.arg(k) for k in ("shares", "ugcPosts") if request.arg(k) is not None]
        if len(lists) != 1 or not re.fullmatch(
            r"List\(urn:li:(share|ugcPost):\d+\)", lists[0] or ""
        ):
            problems.append("exactly one of shares=List(<urn>) or ugcPosts=List(<urn>)")
        return problems

    def _check_network_size(self, request: FakeRequest) -> list[str]:
        if request.arg("edgeType") != "COMPANY_FOLLOWED_BY_MEMBER":
            return [f"edgeType={request.arg('edgeType')!r}, expected COMPANY_FOLLOWED_BY_MEMBER"]
        return []

    def _check_introspect(self, request: FakeRequest) -> list[str]:
        if not request.content_type.startswith("application/x-www-form-urlencoded"):
            return ["the introspection request must be application/x-www-form-urlencoded"]
        form = request.form()
        return [
            f"{name} is required"
            for name in ("client_id", "client_secret", "token")
            if name not in form
        ]

    # authentication, versions, quota

    def before(self, request: FakeRequest) -> FakeResponse | None:
        if request.route == "POST /oauth/v2/introspectToken":
            return None  # authenticated by the client credentials in the body
        if request.header("authorization") != f"Bearer {self.token}":
            return error(401, "INVALID_ACCESS_TOKEN", "Invalid access token", 65600)
        if self.token_expired:
            return error(
                401, "EXPIRED_ACCESS_TOKEN", "The token used in the request has expired", 65601
            )
        version = request.header("linkedin-version") or ""
        if request.path.startswith("/rest/") and version < self.oldest_version:
            return error(426, "NONEXISTENT_VERSION", f"Requested version {version} is not active")
        with self.lock:
            today = datetime.now(UTC).date()
            if today != self._day:
                self._day, self._day_used = today, 0
            self._day_used += 1
            if self._day_used > self.daily_limit:
                return json_response(THROTTLE_BODY, 429)
        return None

    # the API

    def _create_post(self, request: FakeRequest) -> FakeResponse:
        body = request.json()
        commentary = body["commentary"]
        shown, problems = read_little_text(commentary)
        with self.lock:
            if problems:
                self.validation_errors.append(
                    ValidationFailure(request.method, request.path, tuple(problems))
                )
            stored = _cut_like_linkedin(commentary)
            post = FakePost(
                urn=f"urn:li:share:{next(self._share_ids)}",
                author=body["author"],
                commentary=stored,
                text=shown,
                content=body.get("content"),
                body=body,
                created_at=datetime.now(UTC),
            )
            self._posts[post.urn] = post
        return FakeResponse(201, b"", {"x-restli-id": post.urn, "x-linkedin-id": post.urn})

    def _post_json(self, post: FakePost) -> dict[str, Any]:
        created = _millis(post.created_at)
        answer = {
            "id": post.urn,
            "author": post.author,
            "commentary": post.commentary,
            "visibility": "PUBLIC",
            "distribution": post.body.get("distribution"),
            "lifecycleState": "PUBLISHED",
            "lifecycleStateInfo": {"isEditedByAuthor": False},
            "isReshareDisabledByAuthor": post.body.get("isReshareDisabledByAuthor", False),
            "createdAt": created,
            "publishedAt": created,
            "lastModifiedAt": created,
        }
        if post.content is not None:
            answer["content"] = post.content
        return answer

    def _find_posts(self, request: FakeRequest) -> FakeResponse:
        count = int(request.arg("count", "10") or "10")
        start = int(request.arg("start", "0") or "0")
        with self.lock:
            newest = sorted(self.posts, key=lambda p: p.created_at, reverse=True)
            page = newest[start : start + count]
            return json_response(
                {
                    "paging": {"start": start, "count": count, "links": [], "total": len(newest)},
                    "elements": [self._post_json(p) for p in page],
                }
            )

    def _delete_post(self, request: FakeRequest) -> FakeResponse:
        with self.lock:
            post = self._posts.get(request.params["urn"])
            if post is None:
                return error(404, "NOT_FOUND", f"Post {request.params['urn']} does not exist")
            post.deleted = True  # deleting a deleted post answers 204 again (idempotent)
        return FakeResponse(204)

    def _initialize_upload(self, request: FakeRequest) -> FakeResponse:
        with self.lock:
            number = next(self._image_ids)
            image = FakeImage(
                urn=f"urn:li:image:C4E10AQFake{number:06d}",
                owner=self.organization,
                upload_token=f"up{number:06d}t{int(time.time())}",
            )
            self.images[image.urn] = image
        base = self.upload_base or self.url
        expires = _millis(datetime.now(UTC) + timedelta(hours=1))
        return json_response(
            {
                "value": {
                    "uploadUrlExpiresAt": expires,
                    "uploadUrl": f"{base}/dms-uploads/{image.upload_token}?ca=vector_feedshare",
                    "image": image.urn,
                }
            }
        )

    def _upload(self, request: FakeRequest) -> FakeResponse:
        with self.lock:
            found = [i for i in self.images.values() if i.upload_token == request.params["token"]]
            if not found:
                return error(404, "NOT_FOUND", "Unknown upload")
            found[0].data = request.body
            found[0].content_type = request.content_type
        return FakeResponse(201)

    def _find(self, urn: str) -> FakePost | None:
        post = self._posts.get(urn)
        return None if post is None or post.deleted else post

    def _social_actions(self, request: FakeRequest) -> FakeResponse:
        urn = request.params["urn"]
        with self.lock:
            post = self._find(urn)
            if post is None:
                return error(404, "NOT_FOUND", f"Entity {urn} not found")
            return json_response(
                {
                    "target": urn,
                    "likesSummary": {
                        "selectedLikes": [],
                        "aggregatedTotalLikes": post.likes,
                        "likedByCurrentUser": False,
                        "totalLikes": post.likes,
                    },
                    "commentsSummary": {
                        "selectedComments": [],
                        "totalFirstLevelComments": post.comments,
                        "aggregatedTotalComments": post.comments,
                    },
                }
            )

    # comments (the inbox)

    def add_comment(
        self, post_urn: str, text: str, *, actor: str = "urn:li:person:A1b2C3d4E5"
    ) -> str:
        """A member's comment on one of the organization's posts; its comment URN."""
        return self._store_comment(post_urn, post_urn, None, actor, text)

    def replies_to(self, comment_urn: str) -> list[dict[str, Any]]:
        """The organization's comments answering ``comment_urn``."""
        with self.lock:
            return [
                c
                for c in self.comments
                if c.get("parentComment") == comment_urn and c["actor"] == self.organization
            ]

    def _store_comment(
        self, target: str, post_urn: str, parent: str | None, actor: str, text: str
    ) -> str:
        with self.lock:
            comment_id = str(next(self._comment_ids))
            activity = post_urn.replace("urn:li:share:", "urn:li:activity:").replace(
                "urn:li:ugcPost:", "urn:li:activity:"
            )
            urn = f"urn:li:comment:({activity},{comment_id})"
            now = _millis(datetime.now(UTC))
            comment: dict[str, Any] = {
                "id": comment_id,
                "commentUrn": urn,
                "actor": actor,
                "object": post_urn,
                "message": {"text": text, "attributes": []},
                "created": {"actor": actor, "time": now},
                "lastModified": {"actor": actor, "time": now},
                "$URN": urn,
                "_target": target,
            }
            if parent is not None:
                comment["parentComment"] = parent
            self.comments.append(comment)
            return urn

    def _comments(self, request: FakeRequest) -> FakeResponse:
        target = request.params["urn"]
        start = int(request.arg("start") or 0)
        count = int(request.arg("count") or 10)
        with self.lock:
            if self._find(target) is None and not any(
                c["commentUrn"] == target for c in self.comments
            ):
                return error(404, "NOT_FOUND", f"Entity {target} not found")
            found = [
                {k: v for k, v in c.items() if not k.startswith("_")}
                for c in self.comments
                if c["_target"] == target
            ]
        page = found[start : start + count]
        return json_response(
            {
                "paging": {"start": start, "count": count, "total": len(found), "links": []},
                "elements": page,
            }
        )

    def _comment(self, request: FakeRequest) -> FakeResponse:
        target = request.params["urn"]
        body = request.json() or {}
        problems = []
        for key in ("actor", "object", "message"):
            if key not in body:
                problems.append(f"/{key} :: field is required but not found")
        if body.get("actor") not in (None, self.organization):
            problems.append(f"/actor :: not permitted to comment as {body.get('actor')}")
        text = (body.get("message") or {}).get("text")
        if "message" in body and not isinstance(text, str):
            problems.append("/message/text :: field is required but not found")
        with self.lock:
            parent = body.get("parentComment")
            if target.startswith("urn:li:comment:"):
                if parent != target:
                    problems.append("/parentComment :: must be the comment in the path")
                if not any(c["commentUrn"] == target for c in self.comments):
                    return error(404, "NOT_FOUND", f"Entity {target} not found")
            elif self._find(target) is None:
                return error(404, "NOT_FOUND", f"Entity {target} not found")
        if problems:
            return error(422, "UNPROCESSABLE_ENTITY", "; ".join(problems))
        assert isinstance(text, str)  # else a problem above: no message, or no text in it
        urn = self._store_comment(target, str(body["object"]), parent, self.organization, text)
        with self.lock:
            stored = {k: v for k, v in self.comments[-1].items() if not k.startswith("_")}
        return json_response(stored, 201, headers={"x-restli-id": urn})

    def _share_statistics_answer(self, request: FakeRequest) -> FakeResponse:
        if not self.share_statistics:
            return error(
                403,
                "ACCESS_DENIED",
                "Not enough permissions to access: "
                "organizationalEntityShareStatistics.FINDER-organizationalEntity",
                100,
            )
        kind = "share" if request.arg("shares") else "ugcPost"
        urn = (request.arg("shares") or request.arg("ugcPosts") or "")[len("List(") : -1]
        with self.lock:
            post = self._find(urn)
            elements = []
            if post is not None:
                elements.append(
                    {
                        "organizationalEntity": self.organization,
                        kind: urn,
                        "totalShareStatistics": {
                            "uniqueImpressionsCount": post.impressions,
                            "shareCount": post.reshares,
                            "engagement": 0.0,
                            "clickCount": 0,
                            "likeCount": post.likes,
                            "impressionCount": post.impressions,
                            "commentCount": post.comments,
                        },
                    }
                )
        return json_response(
            {"paging": {"start": 0, "count": 10, "links": []}, "elements": elements}
        )

    def _network_size(self, request: FakeRequest) -> FakeResponse:
        if request.params["urn"] != self.organization:
            return error(404, "NOT_FOUND", f"Organization {request.params['urn']} not found")
        return json_response({"firstDegreeSize": self.followers})

    def _organization(self, request: FakeRequest) -> FakeResponse:
        if request.params["id"] != self.organization_id:
            return error(404, "NOT_FOUND", f"Organization {request.params['id']} not found")
        return json_response(
            {
                "id": int(self.organization_id),
                "localizedName": "Zweckverband Städtedreieck",
                "vanityName": "zv-staedtedreieck",
                "localizedWebsite": "https://www.zv-staedtedreieck.de",
                "primaryOrganizationType": "GOVERNMENT",
            }
        )

    def _introspect(self, request: FakeRequest) -> FakeResponse:
        form = request.form()
        if (form["client_id"].text, form["client_secret"].text) != (
            self.client_id,
            self.client_secret,
        ):
            return json_response(
                {"error": "invalid_client", "error_description": "Client authentication failed"},
                401,
            )
        if form["token"].text != self.token:
            return json_response({"active": False, "status": "revoked"})
        if self.token_expired:
            return json_response({"active": False, "status": "expired"})
        issued = int((self.token_expires_at - timedelta(days=60)).timestamp())
        return json_response(
            {
                "active": True,
                "client_id": self.client_id,
                "authorized_at": issued,
                "created_at": issued,
                "status": "active",
                "expires_at": int(self.token_expires_at.timestamp()),
                "scope": "r_organization_social,rw_organization_admin,w_organization_social",
                "auth_type": "3L",
            }
        )


def _cut_like_linkedin(commentary: str) -> str:
    """The stored commentary: up to the first unescaped reserved character."""
    index = 0
    while index < len(commentary):
        char = commentary[index]
        if char == "\\" and index + 1 < len(commentary) and commentary[index + 1] in RESERVED:
            index += 2
        elif char in RESERVED:
            return commentary[:index]
        else:
            index += 1
    return commentary


# -- the contract suite's harness -----------------------------------------------------------


class LinkedInHarness(ServedAccount):
    platform = "linkedin"
    create_route = "POST /rest/posts"
    token_env = "CROSSPOST_TEST_LINKEDIN_TOKEN"
    supports_images = True
    recovers_unknown = True
    supports_delete = True

    def __init__(self) -> None:
        self.fake = LinkedInFake()
        self.server: FakeServer = self.fake
        self.token = self.fake.token

    def account_keys(self) -> dict[str, Any]:
        return {"organization": self.fake.organization, "version": "202501"}

    def posts(self) -> list[OnPlatform]:
        return [OnPlatform(remote_id=p.urn, text=p.text, alts=p.alts) for p in self.fake.posts]

    def revoke(self) -> None:
        self.fake.token = "revoked"


register_server("linkedin", LinkedInHarness)


# -- running it alone ----------------------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the one valid access token")
    parser.add_argument("--organization-id", default=ORGANIZATION_ID)
    parser.add_argument("--oldest-version", default="202401", help="older versions answer 426")
    parser.add_argument("--daily-limit", type=int, default=100_000, help="requests per UTC day")


def _build(args: argparse.Namespace) -> LinkedInFake:
    return LinkedInFake(
        host=args.host,
        port=args.port,
        latency=args.latency,
        verbose=args.verbose,
        token=args.token,
        organization_id=args.organization_id,
        oldest_version=args.oldest_version,
        daily_limit=args.daily_limit,
    )


def _describe_fake(fake: FakeServer) -> dict[str, Any]:
    assert isinstance(fake, LinkedInFake)
    return {"platform": "linkedin", "token": fake.token, "organization": fake.organization}


__all__ = ["LinkedInFake", "read_little_text", "throttled"]

if __name__ == "__main__":
    raise SystemExit(main(_build, _add_arguments, describe=_describe_fake))
