"""A stateful Mastodon instance that checks every request against the API contract.

Serves what crosspost uses: ``GET /api/v2/instance``, ``GET
/api/v1/accounts/verify_credentials``, ``POST /api/v1/statuses`` (with
``Idempotency-Key``), ``GET|DELETE /api/v1/statuses/:id``, ``GET
/api/v1/accounts/:id/statuses``, ``POST /api/v2/media`` and ``GET
/api/v1/media/:id`` (206 while processing). Bearer token, ``X-RateLimit-*``
headers (reset in ISO 8601), the length rule (grapheme clusters, every URL 23)
and the HTML rendering of statuses behave as on a real instance.

Every request is validated against ``mastodon-openapi.json`` with openapi-core.
The file is read once per process and patched in memory where it is wrong or
where openapi-core cannot read it (the file itself is never changed):

* the ``Idempotency-Key`` header is declared ``object``: it is a string;
* ``createStatus``'s body is ``oneOf`` text/media/poll, but text *with* media
  matches two branches, which the real server accepts: ``anyOf``;
* multipart ``type: string, format: binary`` fields become OAS 3.1 raw binary
  (``{}``), which openapi-core accepts as bytes;
* the OAuth2 scheme, which openapi-core cannot check, becomes HTTP bearer.

Run it alone: ``python -m tests.fakes.mastodon --port 0 --max-characters 500``.
"""

from __future__ import annotations

import argparse
import copy
import html
import itertools
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import regex  # type: ignore[import-untyped, unused-ignore]

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

SPEC_NAME = "mastodon-openapi.json"
URL_RE = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)\]'}]")
HASHTAG_RE = re.compile(r"(?<![\w/#])#(\w+)")
DEFAULT_TOKEN = "fake-mastodon-token"


def _parse_spec(data: dict[str, Any]) -> OpenAPI:
    from openapi_core import Config, OpenAPI

    _patch_spec(data)
    return OpenAPI.from_dict(data, config=Config(spec_validator_cls=None))


#: the patched contract, parsed once per process
mastodon_spec = ContractFile(SPEC_NAME, _parse_spec)


def _patch_spec(data: dict[str, Any]) -> None:
    for operations in data["paths"].values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == "Idempotency-Key":
                    parameter["schema"]["type"] = "string"
            for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
                schema = content.get("schema", {})
                if media_type.startswith("multipart/"):
                    for name, prop in schema.get("properties", {}).items():
                        if prop.get("format") == "binary":
                            schema["properties"][name] = {
                                "description": prop.get("description", "")
                            }
    # Mastodon (Rails) takes arrays as types[]=mention; the contract names the parameter "types".
    notifications = data["paths"]["/api/v1/notifications"]["get"]["parameters"]
    for parameter in list(notifications):
        if parameter.get("name") in ("types", "exclude_types"):
            notifications.append({**parameter, "name": parameter["name"] + "[]"})
    body = data["paths"]["/api/v1/statuses"]["post"]["requestBody"]["content"]["application/json"]
    body["schema"] = {"anyOf": body["schema"]["oneOf"]}
    data["components"]["securitySchemes"]["OAuth2"] = {"type": "http", "scheme": "bearer"}


def mastodon_length(text: str, reserved_per_url: int = 23) -> int:
    """Mastodon's count: grapheme clusters, every URL as ``reserved_per_url``."""
    countable = URL_RE.sub("x" * reserved_per_url, text)
    return len(regex.findall(r"\X", countable))


def render_html(text: str, base_url: str) -> str:
    """Plain text as Mastodon renders it: paragraphs, ``<br />``, shortened links, hashtags."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()) if p]
    return "".join(
        f"<p>{_render_inline(p, base_url).replace(chr(10), '<br />')}</p>" for p in paragraphs
    )


def _render_inline(text: str, base_url: str) -> str:
    out: list[str] = []
    position = 0
    tokens = sorted(
        [(m.start(), m.end(), "url", m.group(0)) for m in URL_RE.finditer(text)]
        + [(m.start(), m.end(), "tag", m.group(1)) for m in HASHTAG_RE.finditer(text)]
    )
    for start, end, kind, value in tokens:
        if start < position:
            continue  # a hashtag inside a URL
        out.append(html.escape(text[position:start], quote=False))
        if kind == "url":
            scheme, _, rest = value.partition("://")
            shown, hidden = rest[:30], rest[30:]
            out.append(
                f'<a href="{html.escape(value)}" target="_blank" rel="nofollow noopener" '
                f'translate="no"><span class="invisible">{scheme}://</span>'
                f'<span class="{"ellipsis" if hidden else ""}">{html.escape(shown)}</span>'
                f'<span class="invisible">{html.escape(hidden)}</span></a>'
            )
        else:
            out.append(
                f'<a href="{base_url}/tags/{value.lower()}" class="mention hashtag" '
                f'rel="tag">#<span>{html.escape(value)}</span></a>'
            )
        position = end
    out.append(html.escape(text[position:], quote=False))
    return "".join(out)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class FakeMedia:
    id: str
    description: str | None
    filename: str | None
    content_type: str
    size: int
    polls_left: int  # GET /api/v1/media/:id answers 206 this many more times
    status_id: str | None = None


@dataclass
class FakeStatus:
    id: str
    text: str
    visibility: str
    language: str | None
    media_ids: list[str]
    created_at: datetime
    idempotency_key: str | None = None
    deleted: bool = False
    spoiler_text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class MastodonFake(FakeServer):
    """One Mastodon instance with one account (``@staedtedreieck``)."""

    name = "mastodon"

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        max_characters: int = 500,
        media_polls: int = 2,
        username: str = "staedtedreieck",
        rate_limit: int = 300,
        rate_window: float = 300.0,
        idempotency_ttl: float = 3600.0,
        check_responses: bool = True,
        validate_requests: bool = True,
        **server_options: Any,
    ) -> None:
        super().__init__(**server_options)
        self.spec = mastodon_spec()
        #: check the fake's own answers against the contract too (off for benchmarks)
        self.check_responses = check_responses
        #: check every request against the contract (off only for load tests: ~3 ms each)
        self.validate_requests = validate_requests
        #: the one valid access token; change it to revoke the credential
        self.token = token
        self.max_characters = max_characters
        #: how many times GET /api/v1/media/:id answers 206 before 200 (0: upload answers 200)
        self.media_polls = media_polls
        self.username = username
        #: what verify_credentials reports (tests of the metrics collection set it)
        self.followers_count = 0
        self.account_id = "109300000000000001"
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.idempotency_ttl = idempotency_ttl
        self.media: dict[str, FakeMedia] = {}
        self._statuses: dict[str, FakeStatus] = {}
        self._idempotency: dict[str, tuple[str, float]] = {}
        self._ids = itertools.count(109_400_000_000_000_000)
        self._window_start = time.time()
        self._window_used = 0
        self.route("GET", "/api/v2/instance", self._instance)
        self.route("GET", "/api/v1/accounts/verify_credentials", self._verify_credentials)
        self.route("POST", "/api/v1/statuses", self._create_status)
        self.route("GET", "/api/v1/statuses/{id}", self._get_status)
        self.route("DELETE", "/api/v1/statuses/{id}", self._delete_status)
        self.route("GET", "/api/v1/accounts/{id}/statuses", self._account_statuses)
        self.route("POST", "/api/v2/media", self._upload_media)
        self.route("GET", "/api/v1/media/{id}", self._get_media)
        self.route("GET", "/api/v1/notifications", self._notifications)
        #: mentions of the account by others (the inbox), oldest first
        self._notes: list[dict[str, Any]] = []
        self._note_ids = itertools.count(1000)

    # what tests look at

    @property
    def statuses(self) -> list[FakeStatus]:
        """The statuses on the account now (deleted ones left out), oldest first."""
        with self.lock:
            return [s for s in self._statuses.values() if not s.deleted]

    def statuses_containing(self, text: str) -> list[FakeStatus]:
        return [s for s in self.statuses if text in s.text]

    def snapshot(self) -> dict[str, Any]:
        return {
            "statuses": [
                {"id": s.id, "text": s.text, "media_ids": s.media_ids, "visibility": s.visibility}
                for s in self.statuses
            ],
            "media": {
                m.id: {"description": m.description, "status_id": m.status_id}
                for m in self.media.values()
            },
        }

    # validation, authentication, rate limits

    def validate(self, request: FakeRequest) -> list[str]:
        if not self.validate_requests:
            return []
        from openapi_core.templating.paths.exceptions import PathNotFound

        try:
            self.spec.validate_request(_OpenAPIRequest(request))
        except PathNotFound:
            return [f"the Mastodon API has no {request.method} {request.path}"]
        except Exception as exc:  # noqa: BLE001 - openapi-core raises many kinds (even AssertionError)
            return [_describe(exc)]
        return []

    def check_response(self, request: FakeRequest, response: FakeResponse) -> list[str]:
        if not self.check_responses:
            return []
        try:
            self.spec.validate_response(_OpenAPIRequest(request), _OpenAPIResponse(response))
        except Exception as exc:  # noqa: BLE001 - see validate()
            return [_describe(exc)]
        return []

    def invalid(self, request: FakeRequest, errors: list[str]) -> FakeResponse:
        if all(e.startswith("SecurityValidationError") for e in errors):
            return self._unauthorized()
        return json_response({"error": "Validation failed: " + "; ".join(errors)}, 422)

    def before(self, request: FakeRequest) -> FakeResponse | None:
        public = request.route == "GET /api/v2/instance"
        if not public and request.header("authorization") != f"Bearer {self.token}":
            return self._unauthorized()
        with self.lock:
            now = time.time()
            if now >= self._window_start + self.rate_window:
                self._window_start, self._window_used = now, 0
            self._window_used += 1
            if self._window_used > self.rate_limit:
                return json_response({"error": "Too many requests"}, 429)
        return None

    def decorate(self, request: FakeRequest, response: FakeResponse) -> None:
        with self.lock:
            remaining = max(0, self.rate_limit - self._window_used)
            reset = datetime.fromtimestamp(self._window_start + self.rate_window, UTC)
        response.headers["X-RateLimit-Limit"] = str(self.rate_limit)
        response.headers["X-RateLimit-Remaining"] = str(remaining)
        response.headers["X-RateLimit-Reset"] = _iso(reset)

    def _unauthorized(self) -> FakeResponse:
        return json_response({"error": "The access token is invalid"}, 401)

    # the API

    def _instance(self, request: FakeRequest) -> FakeResponse:
        example = self.spec.spec / "components" / "examples" / "Instance200Example" / "value"
        instance: dict[str, Any] = copy.deepcopy(example.read_value())
        instance.update(domain=f"{self.host}:{self.port}", title="Fake Mastodon", languages=["de"])
        instance["configuration"]["statuses"].update(
            max_characters=self.max_characters, characters_reserved_per_url=23
        )
        return json_response(instance)

    def _account_json(self) -> dict[str, Any]:
        return {
            "id": self.account_id,
            "username": self.username,
            "acct": self.username,
            "display_name": "Zweckverband Städtedreieck",
            "url": f"{self.url}/@{self.username}",
            "uri": f"{self.url}/users/{self.username}",
            "created_at": "2024-01-01T00:00:00.000Z",
            "locked": False,
            "bot": False,
            "group": False,
            "note": "",
            "avatar": f"{self.url}/avatars/original/missing.png",
            "avatar_static": f"{self.url}/avatars/original/missing.png",
            "header": f"{self.url}/headers/original/missing.png",
            "header_static": f"{self.url}/headers/original/missing.png",
            "indexable": True,
            "emojis": [],
            "fields": [],
            "followers_count": self.followers_count,
            "following_count": 0,
            "statuses_count": len(self.statuses),
        }

    def _verify_credentials(self, request: FakeRequest) -> FakeResponse:
        source = {
            "privacy": "public",
            "sensitive": False,
            "language": "de",
            "note": "",
            "fields": [],
            "follow_requests_count": 0,
            "indexable": True,
        }
        role = {"id": "-99", "name": "", "color": "", "permissions": "0", "highlighted": False}
        return json_response({**self._account_json(), "source": source, "role": role})

    def _status_json(self, status: FakeStatus) -> dict[str, Any]:
        return {
            "id": status.id,
            "created_at": _iso(status.created_at),
            "in_reply_to_id": status.extra.get("in_reply_to_id"),
            "in_reply_to_account_id": None,
            "sensitive": False,
            "spoiler_text": status.spoiler_text,
            "visibility": status.visibility,
            "language": status.language,
            "uri": f"{self.url}/users/{self.username}/statuses/{status.id}",
            "url": f"{self.url}/@{self.username}/{status.id}",
            # counts a test sets in status.extra (the evaluation's metrics)
            "replies_count": status.extra.get("replies_count", 0),
            "reblogs_count": status.extra.get("reblogs_count", 0),
            "favourites_count": status.extra.get("favourites_count", 0),
            "edited_at": None,
            "content": render_html(status.text, self.url),
            "reblog": None,
            "application": {"name": "crosspost", "website": None},
            "account": self._account_json(),
            "media_attachments": [self._media_json(self.media[m]) for m in status.media_ids],
            "mentions": [],
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
        }

    def _create_status(self, request: FakeRequest) -> FakeResponse:
        body = request.json() or {}
        key = request.header("idempotency-key")
        with self.lock:
            if key is not None:
                known = self._idempotency.get(key)
                if known is not None and time.time() - known[1] < self.idempotency_ttl:
                    return json_response(self._status_json(self._statuses[known[0]]))
            text = body.get("status") or ""
            media_ids = [str(m) for m in body.get("media_ids") or []]
            error = self._check_status(text, body.get("spoiler_text") or "", media_ids)
            if error:
                return json_response({"error": error}, 422)
            status = FakeStatus(
                id=str(next(self._ids)),
                text=text,
                visibility=body.get("visibility") or "public",
                language=body.get("language"),
                media_ids=media_ids,
                created_at=datetime.now(UTC),
                idempotency_key=key,
                spoiler_text=body.get("spoiler_text") or "",
            )
            if body.get("in_reply_to_id") is not None:
                replied = str(body["in_reply_to_id"])
                if replied not in self._statuses and replied not in self._foreign:
                    return json_response({"error": "Record not found"}, 404)
                status.extra["in_reply_to_id"] = replied
            self._statuses[status.id] = status
            for media_id in media_ids:
                self.media[media_id].status_id = status.id
            if key is not None:
                self._idempotency[key] = (status.id, time.time())
            return json_response(self._status_json(status))

    def _check_status(self, text: str, spoiler: str, media_ids: list[str]) -> str | None:
        if not text.strip() and not media_ids:
            return "Validation failed: Text can't be blank"
        if mastodon_length(spoiler + text) > self.max_characters:
            return f"Validation failed: Text character limit of {self.max_characters} exceeded"
        if len(media_ids) > 4:
            return "Validation failed: Cannot attach more than 4 files"
        missing = [m for m in media_ids if m not in self.media or self.media[m].status_id]
        if missing:
            return f"Validation failed: Media attachments not found: {', '.join(missing)}"
        if any(self.media[m].polls_left > 0 for m in media_ids):
            return "Cannot attach files that have not finished processing. Try again in a moment!"
        return None

    def _find(self, status_id: str) -> FakeStatus | None:
        status = self._statuses.get(status_id)
        return None if status is None or status.deleted else status

    def _get_status(self, request: FakeRequest) -> FakeResponse:
        with self.lock:
            status = self._find(request.params["id"])
            if status is None:
                return json_response({"error": "Record not found"}, 404)
            return json_response(self._status_json(status))

    def _delete_status(self, request: FakeRequest) -> FakeResponse:
        with self.lock:
            status = self._find(request.params["id"])
            if status is None:
                return json_response({"error": "Record not found"}, 404)
            status.deleted = True
            return json_response({**self._status_json(status), "text": status.text})

    def _account_statuses(self, request: FakeRequest) -> FakeResponse:
        if request.params["id"] != self.account_id:
            return json_response({"error": "Record not found"}, 404)
        limit = min(40, max(1, int(request.arg("limit") or 20)))
        max_id, since_id = request.arg("max_id"), request.arg("since_id")
        with self.lock:
            found = [
                s
                for s in reversed(self.statuses)
                if (max_id is None or int(s.id) < int(max_id))
                and (since_id is None or int(s.id) > int(since_id))
            ]
            return json_response([self._status_json(s) for s in found[:limit]])

    # the inbox: statuses of other people that mention the account

    @property
    def _foreign(self) -> dict[str, dict[str, Any]]:
        return {n["status"]["id"]: n["status"] for n in self._notes}

    def mention(
        self,
        text: str,
        *,
        acct: str = "buerger@example.social",
        in_reply_to: str | None = None,
        visibility: str = "public",
        at: datetime | None = None,
    ) -> str:
        """Someone else's status mentioning the account (written ``at``); its id."""
        with self.lock:
            status_id = str(next(self._ids))
            now = at or datetime.now(UTC)
            username = acct.split("@", 1)[0]
            account = {
                **self._account_json(),
                "id": str(200000 + len(self._notes)),
                "username": username,
                "acct": acct,
                "display_name": "",
                "url": f"https://{acct.split('@', 1)[-1]}/@{username}",
                "followers_count": 0,
                "statuses_count": 1,
            }
            status = {
                **self._status_json(FakeStatus(status_id, text, visibility, "de", [], now)),
                "in_reply_to_id": in_reply_to,
                "in_reply_to_account_id": self.account_id if in_reply_to else None,
                "account": account,
                "url": f"{account['url']}/{status_id}",
                "uri": f"{account['url']}/statuses/{status_id}",
            }
            self._notes.append(
                {
                    "id": str(next(self._note_ids)),
                    "type": "mention",
                    "group_key": f"ungrouped-{status_id}",
                    "created_at": _iso(now),
                    "account": account,
                    "status": status,
                }
            )
            return status_id

    def replies_to(self, status_id: str) -> list[FakeStatus]:
        """The account's statuses in reply to ``status_id``."""
        return [s for s in self.statuses if s.extra.get("in_reply_to_id") == status_id]

    def _notifications(self, request: FakeRequest) -> FakeResponse:
        types = request.query.get("types[]", []) + request.query.get("types", [])
        limit = min(80, max(1, int(request.arg("limit") or 40)))
        min_id, since_id, max_id = (
            request.arg("min_id"),
            request.arg("since_id"),
            request.arg("max_id"),
        )
        with self.lock:
            found = [
                n
                for n in self._notes
                if (not types or n["type"] in types)
                and (min_id is None or int(n["id"]) > int(min_id))
                and (since_id is None or int(n["id"]) > int(since_id))
                and (max_id is None or int(n["id"]) < int(max_id))
            ]
            # min_id pages forward from the cursor; otherwise the newest come first
            page = found[:limit] if min_id is not None else found[-limit:]
            return json_response(list(reversed(copy.deepcopy(page))))

    def _media_json(self, media: FakeMedia) -> dict[str, Any]:
        ready = media.polls_left == 0
        url = f"{self.url}/system/media_attachments/files/{media.id}/original/{media.filename}"
        return {
            "id": media.id,
            "type": "image",
            "url": url if ready else None,
            "preview_url": url if ready else None,
            "remote_url": None,
            "meta": {},
            "description": media.description,
            "blurhash": None,
        }

    def _upload_media(self, request: FakeRequest) -> FakeResponse:
        form = request.form()
        upload = form["file"]
        description = form["description"].text if "description" in form else None
        content_type = upload.content_type or "application/octet-stream"
        if not content_type.startswith("image/"):
            return json_response({"error": "Validation failed: File content type is invalid"}, 422)
        if description is not None and len(description) > 1500:
            error = "Validation failed: Description is too long (maximum is 1500 characters)"
            return json_response({"error": error}, 422)
        with self.lock:
            media = FakeMedia(
                id=str(next(self._ids)),
                description=description,
                filename=upload.filename,
                content_type=content_type,
                size=len(upload.data),
                polls_left=self.media_polls,
            )
            self.media[media.id] = media
            return json_response(self._media_json(media), 202 if media.polls_left else 200)

    def _get_media(self, request: FakeRequest) -> FakeResponse:
        with self.lock:
            media = self.media.get(request.params["id"])
            if media is None:
                return json_response({"error": "Record not found"}, 404)
            if media.polls_left > 0:
                media.polls_left -= 1
                return json_response(self._media_json(media), 206)
            return json_response(self._media_json(media))


@dataclass
class _OpenAPIRequest:
    """A recorded request as openapi-core's ``Request`` protocol wants it."""

    request: FakeRequest
    host_url: str = "https://mastodon.example"  # matches the contract's https://{hostname}

    def __post_init__(self) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        query = [(k, v) for k, values in self.request.query.items() for v in values]
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query), header=Headers(list(self.request.headers.items()))
        )

    @property
    def path(self) -> str:
        return self.request.path

    @property
    def method(self) -> str:
        return self.request.method.lower()

    @property
    def body(self) -> bytes:
        return self.request.body

    @property
    def content_type(self) -> str:
        return self.request.content_type.lower() or "application/octet-stream"


@dataclass
class _OpenAPIResponse:
    """The fake's answer as openapi-core's ``Response`` protocol wants it."""

    response: FakeResponse

    @property
    def status_code(self) -> int:
        return self.response.status

    @property
    def content_type(self) -> str:
        return self.response.headers.get("Content-Type", "application/json").split(";")[0]

    @property
    def headers(self) -> dict[str, str]:
        return self.response.headers

    @property
    def data(self) -> bytes:
        return self.response.body


def _leaves(error: Any) -> list[Any]:
    if not error.context:
        return [error]
    return [leaf for sub in error.context for leaf in _leaves(sub)]


def _describe(exc: Exception) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__
    for error in getattr(cause, "schema_errors", ()) or ():
        for leaf in _leaves(error):  # anyOf/oneOf: what each branch found wrong
            where = "/".join(str(p) for p in leaf.absolute_path) or "(body)"
            if f"{where}: {leaf.message}" not in parts:
                parts.append(f"{where}: {leaf.message}")
    if cause is not None and not getattr(cause, "schema_errors", None):
        parts.append(str(cause))
    return " | ".join(parts)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the one valid access token")
    parser.add_argument("--max-characters", type=int, default=500)
    parser.add_argument("--media-polls", type=int, default=2, help="206 answers before 200")
    parser.add_argument("--rate-limit", type=int, default=300, help="requests per window")
    parser.add_argument("--rate-window", type=float, default=300.0, help="seconds")
    parser.add_argument(
        "--check-responses",
        action="store_true",
        help="also check the fake's own answers against the contract (slower)",
    )
    parser.add_argument(
        "--no-validate",
        dest="validate_requests",
        action="store_false",
        help="do not check requests against the contract (load tests only: saves ~3 ms each)",
    )


def _build(args: argparse.Namespace) -> MastodonFake:
    skip = None if spec_path(SPEC_NAME) else f"{SPEC_NAME} not found"
    if skip:
        raise SystemExit(f"tests.fakes.mastodon: {skip}; set CROSSPOST_TEST_SPECS")
    return MastodonFake(
        host=args.host,
        port=args.port,
        latency=args.latency,
        verbose=args.verbose,
        token=args.token,
        max_characters=args.max_characters,
        media_polls=args.media_polls,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        check_responses=args.check_responses,
        validate_requests=args.validate_requests,
    )


def _describe_fake(fake: FakeServer) -> dict[str, Any]:
    assert isinstance(fake, MastodonFake)
    return {"platform": "mastodon", "token": fake.token, "account_id": fake.account_id}


__all__ = ["MastodonFake", "mastodon_length", "render_html", "skip_without_spec"]

if __name__ == "__main__":
    raise SystemExit(main(_build, _add_arguments, describe=_describe_fake))
