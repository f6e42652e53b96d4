"""A webhook receiver as ``docs/platforms.md`` ("Webhook") asks receivers to be: it
verifies ``X-Crosspost-Signature`` (HMAC-SHA256 of the exact body with the shared
secret) before reading the body, and deduplicates on ``Idempotency-Key``.

Contract checked on every request (a violation is recorded and answered 400):
``Content-Type: application/json``, ``Idempotency-Key`` equal to the body's ``id``,
``X-Crosspost-Timestamp`` in Unix seconds, and the body's fields (``id``,
``post_id``, ``account``, ``title``, ``text``, ``link``, ``created_at``, ``media``
with ``alt`` and ``filename`` each). A wrong signature is what a receiver answers
with 401 — the secret was changed there (``revoke``) — and is no client error.

A new key answers 201 ``{"id", "url"}``; the same key again answers the first answer
and stores nothing (as the receivers' contract demands).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.harness import OnPlatform, ServedAccount, register_server
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer, json_response

PATH = "/hooks/crosspost"
DEFAULT_SECRET = "whsec-contract-7f3a"
FIELDS = {"id", "post_id", "account", "title", "text", "link", "created_at", "media"}


@dataclass
class Received:
    id: str
    key: str
    text: str
    link: str
    alts: list[str] = field(default_factory=list)


class WebhookFake(FakeServer):
    name = "webhook"

    def __init__(self, *, secret: str = DEFAULT_SECRET, **kw: Any) -> None:
        super().__init__(**kw)
        self.secret = secret
        self.received: list[Received] = []
        self._answers: dict[str, dict[str, str]] = {}
        self._ids = itertools.count(1)
        self.route("POST", PATH, self._receive)

    def _signed(self, request: FakeRequest) -> bool:
        expected = (
            "sha256=" + hmac.new(self.secret.encode(), request.body, hashlib.sha256).hexdigest()
        )
        return hmac.compare_digest(expected, request.header("x-crosspost-signature") or "")

    def before(self, request: FakeRequest) -> FakeResponse | None:
        if request.route == f"POST {PATH}" and not self._signed(request):
            return json_response({"error": "bad signature"}, 401)
        return None

    def validate(self, request: FakeRequest) -> list[str]:
        if request.route != f"POST {PATH}":
            return []
        errors: list[str] = []
        if request.content_type.split(";")[0].strip() != "application/json":
            errors.append(f"Content-Type {request.content_type!r}, expected application/json")
        if not (request.header("x-crosspost-timestamp") or "").isdigit():
            errors.append("X-Crosspost-Timestamp is not Unix seconds")
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            return [*errors, f"the body is no JSON: {exc}"]
        if not isinstance(body, dict):
            return [*errors, "the body is no JSON object"]
        if missing := FIELDS - body.keys():
            errors.append(f"missing fields {sorted(missing)}")
        key = request.header("idempotency-key")
        if not key or key != body.get("id"):
            errors.append(f"Idempotency-Key {key!r} is not the body's id {body.get('id')!r}")
        for item in body.get("media") or []:
            if not isinstance(item, dict) or not {"alt", "filename"} <= item.keys():
                errors.append(f"media entry {item!r} lacks alt or filename")
        return errors

    def invalid(self, request: FakeRequest, errors: list[str]) -> FakeResponse:
        return json_response({"error": "; ".join(errors)}, 400)

    def _receive(self, request: FakeRequest) -> FakeResponse:
        body = json.loads(request.body)
        key = str(body["id"])
        with self.lock:
            if key in self._answers:
                return json_response(self._answers[key], 200)  # seen: nothing stored again
            number = str(next(self._ids))
            answer = {"id": number, "url": f"https://intranet.example/posts/{number}"}
            self._answers[key] = answer
            self.received.append(
                Received(
                    number,
                    key,
                    str(body["text"]),
                    str(body["link"]),
                    [str(m["alt"]) for m in body.get("media") or []],
                )
            )
        return json_response(answer, 201)


# -- the contract suite's harness -----------------------------------------------------------


class WebhookHarness(ServedAccount):
    platform = "webhook"
    create_route = f"POST {PATH}"
    token_env = "CROSSPOST_TEST_WEBHOOK_SECRET"
    supports_images = True  # the alt text travels in the body's media entries
    recovers_unknown = True  # the same key again; the receiver deduplicates
    supports_delete = False  # a webhook cannot take a post back

    def __init__(self) -> None:
        self.fake = WebhookFake()
        self.server: FakeServer = self.fake
        self.token = self.fake.secret

    def account(self) -> dict[str, Any]:
        return {"platform": "webhook", "url": self.fake.url + PATH, "token_env": self.token_env}

    def posts(self) -> list[OnPlatform]:
        return [OnPlatform(remote_id=r.id, text=r.text, alts=r.alts) for r in self.fake.received]

    def revoke(self) -> None:
        self.fake.secret = "changed-at-the-receiver"


register_server("webhook", WebhookHarness)
