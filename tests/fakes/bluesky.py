"""A REAL Bluesky PDS on 127.0.0.1, and a fault-injecting proxy in front of it.

Bluesky's reference server runs here as it runs on the network: ``tests/pds/serve.js``
starts ``@atproto/dev-env``'s ``TestNetworkNoAppView`` (a PDS on SQLite and an
in-memory PLC directory), creates the account ``staedtedreieck.test`` with an app
password and prints one JSON line. The PDS validates every record against the
lexicons, so a post with an over-long text or a malformed facet is refused as it
would be on bsky.social. One PDS serves the whole test session
(:func:`shared_pds`; installed by ``tests/pds/setup.sh`` on first use, stopped at
exit).

Tests never talk to it directly: :class:`BlueskyProxy` is a
:class:`~tests.fakes.server.FakeServer` whose routes forward every request to the
PDS, so the usual request log and fault injection (``status``, ``rate_limit``,
``delay``, ``lose_response`` — the PDS processed it, the answer is lost — and
``reset``) work on route keys such as ``"POST /xrpc/com.atproto.repo.createRecord"``.
Its validation adds what the PDS does not check but the network needs: a link
facet's bytes spell exactly its URI, every URL in the text is a link, images carry
alt text, uploads stay within 1 000 000 bytes.

The contract-suite harness (``@register("bluesky")``) gives each test its own app
password (``revoke()`` revokes it) and shows only the posts made since it started.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import hmac
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from tests.fakes.harness import Harness, OnPlatform, ServedAccount, register
from tests.fakes.server import (
    FakeRequest,
    FakeResponse,
    FakeServer,
    json_response,
    skip_or_fail,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
PDS_DIR = REPO_ROOT / "tests" / "pds"
START_TIMEOUT = 120.0
SETUP_TIMEOUT = 900.0

POST = "app.bsky.feed.post"
CREATE_SESSION = "POST /xrpc/com.atproto.server.createSession"
REFRESH_SESSION = "POST /xrpc/com.atproto.server.refreshSession"
GET_SESSION = "GET /xrpc/com.atproto.server.getSession"
CREATE_RECORD = "POST /xrpc/com.atproto.repo.createRecord"
GET_RECORD = "GET /xrpc/com.atproto.repo.getRecord"
LIST_RECORDS = "GET /xrpc/com.atproto.repo.listRecords"
DELETE_RECORD = "POST /xrpc/com.atproto.repo.deleteRecord"
UPLOAD_BLOB = "POST /xrpc/com.atproto.repo.uploadBlob"
GET_POSTS = "GET /xrpc/app.bsky.feed.getPosts"
GET_PROFILE = "GET /xrpc/app.bsky.actor.getProfile"
LIST_NOTIFICATIONS = "GET /xrpc/app.bsky.notification.listNotifications"
#: methods that need no access token
_PUBLIC = frozenset(
    {
        CREATE_SESSION,
        GET_RECORD,
        LIST_RECORDS,
        "GET /xrpc/com.atproto.server.describeServer",
        "GET /xrpc/com.atproto.identity.resolveHandle",
    }
)
_TID = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
_URL = re.compile(r"https?://[^\s<>\"]+")
_FORWARD_REQUEST_HEADERS = ("authorization", "content-type", "accept", "atproto-proxy")
_FORWARD_RESPONSE_HEADERS = (
    "content-type",
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-policy",
    "www-authenticate",
)


class PdsUnavailable(RuntimeError):
    """The PDS could not be installed or started (the message says why)."""


# --- the PDS process ----------------------------------------------------------------------------


def install() -> Path:
    """Run ``tests/pds/setup.sh`` (instant once cached) and return the install folder."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise PdsUnavailable("node and npm are needed for the Bluesky PDS (apt-get install npm)")
    done = subprocess.run(
        ["bash", str(PDS_DIR / "setup.sh")],
        capture_output=True,
        text=True,
        timeout=SETUP_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise PdsUnavailable(f"tests/pds/setup.sh failed ({done.returncode}):\n{done.stderr}")
    return Path(done.stdout.strip().splitlines()[-1])


@dataclass
class Pds:
    """A running PDS with one account."""

    url: str  # http://127.0.0.1:<port>
    did: str
    handle: str
    password: str  # the account password: manages app passwords
    app_password: str  # the app password serve.js created
    jwt_secret: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _admin_token: str | None = None

    # direct XRPC calls (not through a proxy, not in any request log)

    def call(
        self,
        method: str,
        nsid: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        token: str | None = None,
    ) -> tuple[int, Any]:
        split = urllib.parse.urlsplit(self.url)
        connection = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, 30)
        try:
            path = f"/xrpc/{nsid}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
            headers = {"Accept": "application/json"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            connection.request(method, path, body=data, headers=headers)
            answer = connection.getresponse()
            raw = answer.read()
        finally:
            connection.close()
        return answer.status, json.loads(raw) if raw else None

    def admin_token(self) -> str:
        """An access token of the account's own (full) password session."""
        if self._admin_token is None:
            status, body = self.call(
                "POST",
                "com.atproto.server.createSession",
                body={"identifier": self.handle, "password": self.password},
            )
            assert status == 200, body
            self._admin_token = body["accessJwt"]
        return self._admin_token

    def create_app_password(self, name: str) -> str:
        status, body = self.call(
            "POST",
            "com.atproto.server.createAppPassword",
            body={"name": name},
            token=self.admin_token(),
        )
        assert status == 200, body
        return str(body["password"])

    def revoke_app_password(self, name: str) -> None:
        status, body = self.call(
            "POST",
            "com.atproto.server.revokeAppPassword",
            body={"name": name},
            token=self.admin_token(),
        )
        assert status == 200, body

    def records(self, collection: str = POST) -> list[dict[str, Any]]:
        """Every record of ``collection`` in the repository, newest first."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"repo": self.did, "collection": collection, "limit": "100"}
            if cursor:
                params["cursor"] = cursor
            status, body = self.call("GET", "com.atproto.repo.listRecords", params=params)
            assert status == 200, body
            found.extend(body["records"])
            cursor = body.get("cursor")
            if not cursor or not body["records"]:
                return found

    def record(self, rkey: str, collection: str = POST) -> dict[str, Any] | None:
        """``getRecord`` (None when there is no such record)."""
        status, body = self.call(
            "GET",
            "com.atproto.repo.getRecord",
            params={"repo": self.did, "collection": collection, "rkey": rkey},
        )
        if status == 400 and body.get("error") == "RecordNotFound":
            return None
        assert status == 200, body
        return dict(body)

    def citizen(self, handle: str = "buerger-in.test") -> Citizen:
        """Another account on this PDS (created on first use): it replies and mentions."""
        known = _citizens.get((self.url, handle))
        if known is not None:
            return known
        password = f"{handle}-password"
        status, body = self.call(
            "POST",
            "com.atproto.server.createAccount",
            body={"handle": handle, "email": f"{handle}@example.test", "password": password},
        )
        assert status == 200, body
        found = Citizen(self, body["did"], handle, body["accessJwt"])
        _citizens[(self.url, handle)] = found
        return found

    def expired_copy(self, access_jwt: str) -> str:
        """The same access token, expired an hour ago, signed with the PDS's own key."""

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        head, payload, _ = access_jwt.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        now = int(time.time())
        claims.update(iat=now - 7200, exp=now - 3600)
        signed = f"{head}.{b64(json.dumps(claims).encode())}"
        mac = hmac.new(self.jwt_secret.encode(), signed.encode(), hashlib.sha256).digest()
        return f"{signed}.{b64(mac)}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        with contextlib.suppress(OSError):
            self.log_path.unlink()


@dataclass
class Citizen:
    """A second account on the PDS, writing real records the PDS validates."""

    pds: Pds
    did: str
    handle: str
    token: str

    def post(
        self,
        text: str,
        *,
        reply_to: dict[str, str] | None = None,
        root: dict[str, str] | None = None,
        mention: bool = False,
    ) -> dict[str, str]:
        """Create a post (a reply to ``reply_to`` {uri, cid}; mentioning the account's
        handle with a facet); its {uri, cid}."""
        record: dict[str, Any] = {
            "$type": POST,
            "text": text,
            "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "langs": ["de"],
        }
        if reply_to is not None:
            record["reply"] = {"root": root or reply_to, "parent": reply_to}
        if mention:
            name = f"@{self.pds.handle}"
            raw = text.encode()
            start = raw.find(name.encode())
            assert start >= 0, f"{name} is not in the text"
            record["facets"] = [
                {
                    "index": {"byteStart": start, "byteEnd": start + len(name.encode())},
                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": self.pds.did}],
                }
            ]
        status, body = self.pds.call(
            "POST",
            "com.atproto.repo.createRecord",
            body={"repo": self.did, "collection": POST, "record": record},
            token=self.token,
        )
        assert status == 200, body
        return {"uri": body["uri"], "cid": body["cid"]}


_citizens: dict[tuple[str, str], Citizen] = {}


def start_pds(folder: Path | None = None) -> Pds:
    """Install if needed, start ``serve.js`` on free ports and wait for its JSON line."""
    folder = folder or install()
    handle, name = tempfile.mkstemp(prefix="crosspost-pds-", suffix=".log")
    os.close(handle)
    log = Path(name)
    env = {**os.environ, "NODE_PATH": str(folder / "node_modules"), "NODE_ENV": "test"}
    with log.open("wb") as errors:
        process = subprocess.Popen(
            ["node", str(PDS_DIR / "serve.js")],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    assert process.stdout is not None
    line = _first_line(process.stdout, START_TIMEOUT)
    if not line:
        with contextlib.suppress(OSError):
            process.kill()
        process.wait(timeout=10)
        errors_seen = log.read_text(errors="replace")[-3000:]
        log.unlink()
        raise PdsUnavailable(
            f"serve.js printed nothing within {START_TIMEOUT:.0f} s:\n{errors_seen}"
        )
    info = json.loads(line)
    # Keep reading stdout so that the PDS never blocks on a full pipe.
    threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
    port = urllib.parse.urlsplit(info["url"]).port
    return Pds(
        url=f"http://127.0.0.1:{port}",
        did=info["did"],
        handle=info["handle"],
        password=info["password"],
        app_password=info["app_password"],
        jwt_secret=info["jwt_secret"],
        process=process,
        log_path=log,
    )


def _first_line(stream: IO[bytes], timeout: float) -> str:
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0].decode().strip() if result else ""


def _drain(stream: IO[bytes]) -> None:
    with contextlib.suppress(OSError, ValueError):
        while stream.read(65536):
            pass


_shared: Pds | None = None
_shared_error: PdsUnavailable | None = None
_shared_lock = threading.Lock()


def shared_pds() -> Pds:
    """The one PDS of this test process, started on first use and stopped at exit."""
    global _shared, _shared_error
    with _shared_lock:
        if _shared_error is not None:
            raise _shared_error
        if _shared is None or _shared.process.poll() is not None:
            try:
                _shared = start_pds()
            except PdsUnavailable as exc:
                _shared_error = exc
                raise
            atexit.register(_shared.stop)
        return _shared


def pds_or_skip() -> Pds:
    """:func:`shared_pds`, or skip the test where Node is not installed at all (fail it
    under ``CROSSPOST_TEST_REQUIRE_PLATFORMS``, as ``.ci/run`` sets)."""
    try:
        return shared_pds()
    except PdsUnavailable as exc:
        if shutil.which("node") is None:
            skip_or_fail(str(exc))
        raise


# --- the proxy ----------------------------------------------------------------------------------


class BlueskyProxy(FakeServer):
    """Forwards every request to the PDS: request log, faults and extra validation."""

    name = "bluesky"

    def __init__(self, pds: Pds, **server_options: Any) -> None:
        super().__init__(**server_options)
        self.pds = pds
        #: what the PDS answered, in order: (route, status, JSON body or None)
        self.answers: list[tuple[str | None, int, Any]] = []
        for route in (
            CREATE_SESSION,
            REFRESH_SESSION,
            GET_SESSION,
            CREATE_RECORD,
            GET_RECORD,
            LIST_RECORDS,
            DELETE_RECORD,
            UPLOAD_BLOB,
            GET_POSTS,
            GET_PROFILE,
        ):
            method, path = route.split(" ", 1)
            self.route(method, path, self._forward)
        method, path = LIST_NOTIFICATIONS.split(" ", 1)
        self.route(method, path, self._notifications)
        self.route("GET", "/xrpc/{nsid}", self._forward)
        self.route("POST", "/xrpc/{nsid}", self._forward)
        #: repositories whose posts the stand-in AppView turns into notifications
        self.watched: dict[str, str] = {}

    def watch(self, citizen: Citizen) -> Citizen:
        """Let ``citizen``'s posts reach the account's notifications."""
        with self.lock:
            self.watched[citizen.did] = citizen.handle
        return citizen

    def _notifications(self, request: FakeRequest) -> FakeResponse:
        """The AppView's ``listNotifications``, which a bare PDS lacks, built from the watched
        repositories' real records: replies to, quotes of and mentions of the account."""
        token = (request.header("authorization") or "").removeprefix("Bearer ").strip()
        status, session = self.pds.call("GET", "com.atproto.server.getSession", token=token)
        if status != 200:
            return json_response(session or {"error": "AuthRequired"}, status)
        limit = int(request.arg("limit") or 50)
        start = int(request.arg("cursor") or 0)
        ours = f"at://{self.pds.did}/"
        found: list[dict[str, Any]] = []
        with self.lock:
            watched = dict(self.watched)
        for did, handle in watched.items():
            status, body = self.pds.call(
                "GET",
                "com.atproto.repo.listRecords",
                params={"repo": did, "collection": POST, "limit": "100"},
            )
            assert status == 200, body
            for item in body["records"]:
                value = item["value"]
                parent = (value.get("reply") or {}).get("parent", {}).get("uri", "")
                quoted = ((value.get("embed") or {}).get("record") or {}).get("uri", "")
                mentions = [
                    feature.get("did")
                    for facet in value.get("facets") or []
                    for feature in facet.get("features") or []
                    if feature.get("$type") == "app.bsky.richtext.facet#mention"
                ]
                if parent.startswith(ours):
                    reason, subject = "reply", parent
                elif quoted.startswith(ours):
                    reason, subject = "quote", quoted
                elif self.pds.did in mentions:
                    reason, subject = "mention", None
                else:
                    continue
                note: dict[str, Any] = {
                    "uri": item["uri"],
                    "cid": item["cid"],
                    "author": {"did": did, "handle": handle},
                    "reason": reason,
                    "record": value,
                    "isRead": False,
                    "indexedAt": value["createdAt"],
                    "labels": [],
                }
                if subject:
                    note["reasonSubject"] = subject
                found.append(note)
        found.sort(key=lambda n: n["indexedAt"], reverse=True)
        page = found[start : start + limit]
        answer: dict[str, Any] = {"notifications": page}
        if start + limit < len(found):
            answer["cursor"] = str(start + limit)
        return json_response(answer)

    def count(self, route: str) -> int:
        """How many requests reached ``route`` (answered or not)."""
        return len(self.requests_to(route))

    def _forward(self, request: FakeRequest) -> FakeResponse:
        split = urllib.parse.urlsplit(self.pds.url)
        path = urllib.parse.quote(request.path)
        if request.query:
            path += "?" + urllib.parse.urlencode(request.query, doseq=True)
        headers = {
            name: value
            for name, value in request.headers.items()
            if name in _FORWARD_REQUEST_HEADERS
        }
        connection = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, 60)
        try:
            connection.request(request.method, path, body=request.body or None, headers=headers)
            answer = connection.getresponse()
            body = answer.read()
            forwarded = {
                name: value
                for name, value in answer.getheaders()
                if name.lower() in _FORWARD_RESPONSE_HEADERS
            }
        finally:
            connection.close()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        with self.lock:
            self.answers.append((request.route, answer.status, parsed))
        return FakeResponse(answer.status, body, forwarded)

    def answers_to(self, route: str) -> list[tuple[int, Any]]:
        """The PDS's answers (status, JSON) to ``route``, also those the client never got."""
        with self.lock:
            return [(status, body) for r, status, body in self.answers if r == route]

    def invalid(self, request: FakeRequest, errors: list[str]) -> FakeResponse:
        return json_response({"error": "InvalidRequest", "message": "; ".join(errors)}, 400)

    def validate(self, request: FakeRequest) -> list[str]:
        errors: list[str] = []
        route = f"{request.method} {request.path}"
        auth = request.header("authorization") or ""
        if route not in _PUBLIC and not auth.startswith("Bearer "):
            errors.append("the request carries no Bearer token")
        if route == CREATE_SESSION:
            body = _json_body(request, errors)
            for key in ("identifier", "password"):
                if not isinstance(body.get(key), str) or not body.get(key):
                    errors.append(f"createSession needs {key}")
        elif route == CREATE_RECORD:
            body = _json_body(request, errors)
            errors.extend(check_create_record(body))
        elif route == DELETE_RECORD:
            body = _json_body(request, errors)
            for key in ("repo", "collection", "rkey"):
                if not isinstance(body.get(key), str):
                    errors.append(f"deleteRecord needs {key}")
        elif route == LIST_NOTIFICATIONS:
            limit = request.arg("limit") or "50"
            if not limit.isdigit() or not 1 <= int(limit) <= 100:
                errors.append(f"listNotifications limit {limit!r} is not 1 to 100")
        elif route == UPLOAD_BLOB:
            if not request.content_type.startswith("image/"):
                errors.append(f"uploadBlob of {request.content_type!r}, not an image type")
            if not request.body:
                errors.append("uploadBlob without data")
            if len(request.body) > 1_000_000:
                errors.append(f"uploadBlob of {len(request.body)} bytes, over 1000000")
        return errors


def _json_body(request: FakeRequest, errors: list[str]) -> dict[str, Any]:
    if not request.content_type.startswith("application/json"):
        errors.append(f"the body is {request.content_type!r}, not application/json")
    try:
        body = request.json()
    except ValueError:
        errors.append("the body is not JSON")
        return {}
    if not isinstance(body, dict):
        errors.append("the body is not a JSON object")
        return {}
    return body


def check_create_record(body: dict[str, Any]) -> list[str]:
    """What the network needs of a post beyond the lexicon (the PDS checks that)."""
    errors: list[str] = []
    rkey = body.get("rkey")
    if not isinstance(rkey, str) or not _TID.fullmatch(rkey):
        errors.append(f"createRecord needs a client-chosen TID rkey, got {rkey!r}")
    if body.get("collection") != POST:
        errors.append(f"collection {body.get('collection')!r} is not {POST}")
    record = body.get("record")
    if not isinstance(record, dict):
        return [*errors, "createRecord without a record"]
    text = record.get("text")
    if not isinstance(text, str):
        return [*errors, "the post has no text"]
    created = record.get("createdAt")
    try:
        moment = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            errors.append(f"createdAt {created!r} has no time zone")
    except ValueError:
        errors.append(f"createdAt {created!r} is not a datetime")
    raw = text.encode("utf-8")
    linked: list[tuple[int, int]] = []
    for facet in record.get("facets") or []:
        index = facet.get("index") or {}
        start, end = index.get("byteStart"), index.get("byteEnd")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(raw)):
            errors.append(f"facet index {index} is outside the text's {len(raw)} bytes")
            continue
        try:
            covered = raw[start:end].decode("utf-8")
        except UnicodeDecodeError:
            errors.append(f"facet {start}..{end} cuts a UTF-8 character")
            continue
        for feature in facet.get("features") or []:
            kind = feature.get("$type")
            if kind == "app.bsky.richtext.facet#link":
                linked.append((start, end))
                if covered != feature.get("uri"):
                    errors.append(f"link facet covers {covered!r}, not {feature.get('uri')!r}")
            elif kind == "app.bsky.richtext.facet#tag" and covered != f"#{feature.get('tag')}":
                errors.append(f"tag facet covers {covered!r}, not #{feature.get('tag')}")
    for match in _URL.finditer(text):
        at = len(text[: match.start()].encode("utf-8"))
        if not any(start == at for start, _ in linked):
            errors.append(f"the URL {match.group(0)!r} has no link facet (it would not link)")
    embed = record.get("embed") or {}
    if embed.get("$type") == "app.bsky.embed.images":
        images = embed.get("images") or []
        if not 1 <= len(images) <= 4:
            errors.append(f"{len(images)} images: Bluesky takes 1 to 4")
        for image in images:
            if not str(image.get("alt") or "").strip():
                errors.append("an image without alt text")
            ratio = image.get("aspectRatio")
            if ratio is not None and min(ratio.get("width", 0), ratio.get("height", 0)) < 1:
                errors.append(f"aspectRatio {ratio} is not positive")
    elif embed.get("$type") == "app.bsky.embed.external":
        uri = (embed.get("external") or {}).get("uri")
        if not isinstance(uri, str) or uri not in text:
            errors.append(f"the link card {uri!r} is not a link of the text")
    return errors


# --- the contract-suite harness -----------------------------------------------------------------

_app_passwords = itertools.count(1)


class BlueskyHarness(ServedAccount):
    platform = "bluesky"
    create_route = CREATE_RECORD
    token_env = "CROSSPOST_TEST_BLUESKY_APP_PASSWORD"
    supports_images = True
    recovers_unknown = True
    supports_delete = True

    def __init__(self, pds: Pds) -> None:
        self.pds = pds
        self.server: FakeServer = BlueskyProxy(pds)
        self.proxy = self.server
        self.app_password_name = f"contract-{os.getpid()}-{next(_app_passwords)}"
        self.token = pds.create_app_password(self.app_password_name)
        self._before = {record["uri"] for record in pds.records()}
        self.revoked = False

    def account_keys(self) -> dict[str, Any]:
        return {"handle": self.pds.handle}

    def posts(self) -> list[OnPlatform]:
        return [
            OnPlatform(remote_id=r["uri"], text=r["value"].get("text", ""), alts=_alts(r["value"]))
            for r in reversed(self.pds.records())
            if r["uri"] not in self._before
        ]

    def revoke(self) -> None:
        self.pds.revoke_app_password(self.app_password_name)
        self.revoked = True


def _alts(record: dict[str, Any]) -> list[str]:
    embed = record.get("embed") or {}
    if embed.get("$type") == "app.bsky.embed.recordWithMedia":
        embed = embed.get("media") or {}
    return [str(image.get("alt", "")) for image in embed.get("images") or []]


@register("bluesky")
@contextlib.contextmanager
def bluesky_harness() -> Iterator[Harness]:
    harness = BlueskyHarness(pds_or_skip())
    try:
        with harness.server:
            yield harness
    finally:
        if not harness.revoked:
            harness.revoke()
