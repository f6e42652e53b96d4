"""The webhook adapter against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr
from tests.rawsettings import settings_from

from crosspost.adapters.base import Adapter, build_adapter
from crosspost.adapters.webhook import WebhookAdapter
from crosspost.config import Settings
from crosspost.exceptions import AuthError, PlatformError, Rejected, Transient
from crosspost.models import Media, PublishRequest, PublishResult

SECRET = "whsec-7f3a-not-for-logs"
TOKEN_ENV = "CROSSPOST_TEST_WEBHOOK_SECRET"
SITE = {"url": "https://www.zv-staedtedreieck.de", "name": "Zweckverband Städtedreieck"}
LINK = "https://www.zv-staedtedreieck.de/aktuelles/weihnachtsmarkt"


class Receiver(ThreadingHTTPServer):
    """A webhook receiver that records every request and answers from a script."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[Message, bytes]] = []
        self.answers: list[tuple[int, bytes]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/crosspost"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            self.server.received.append((self.headers, body))
            status, answer = self.server.answers.pop(0) if self.server.answers else (204, b"")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    # a short poll interval only makes shutdown() return sooner
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, SECRET)


def make_settings(url: str) -> Settings:
    return settings_from(
        site=SITE,
        accounts={"intranet": {"platform": "webhook", "url": url, "token_env": TOKEN_ENV}},
    )


def make_request(post_id: int = 42) -> PublishRequest:
    return PublishRequest(
        delivery_id=7,
        post_id=post_id,
        account="intranet",
        text=f"Der Weihnachtsmarkt öffnet am 1. Dezember.\n\n{LINK}",
        link=LINK,
        title="Weihnachtsmarkt im Städtedreieck",
        media=(Media(path=Path("/spool/markt.jpg"), alt="Beleuchtete Marktstände"),),
        idempotency_key="crosspost-7-2f9c1e",
        created_at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
    )


def publish(url: str, *requests: PublishRequest) -> list[PublishResult]:
    """Publish each request through a fresh adapter, closing it afterwards."""

    async def run() -> list[PublishResult]:
        adapter = build_adapter("intranet", make_settings(url))
        try:
            return [await adapter.publish(request) for request in requests]
        finally:
            await adapter.aclose()

    return asyncio.run(run())


def test_signature_is_hmac_of_the_exact_body(receiver: Receiver) -> None:
    """X-Crosspost-Signature is sha256=HMAC-SHA256(secret, received body bytes)."""
    publish(receiver.url, make_request())

    ((headers, body),) = receiver.received
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Crosspost-Signature"], expected)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Crosspost-Timestamp"].isdigit()


def test_body_carries_the_post_and_its_canonical_link(receiver: Receiver) -> None:
    """The JSON body names post, account, title, text, link, time and media with alt text."""
    publish(receiver.url, make_request())

    ((_, body),) = receiver.received
    assert json.loads(body) == {
        "id": "crosspost-7-2f9c1e",
        "post_id": 42,
        "account": "intranet",
        "title": "Weihnachtsmarkt im Städtedreieck",
        "text": f"Der Weihnachtsmarkt öffnet am 1. Dezember.\n\n{LINK}",
        "link": LINK,
        "created_at": "2026-11-20T09:30:00Z",
        "media": [{"alt": "Beleuchtete Marktstände", "filename": "markt.jpg"}],
    }


def test_resend_repeats_key_and_body(receiver: Receiver) -> None:
    """Sending a delivery again repeats its Idempotency-Key and the very same body bytes."""
    publish(receiver.url, make_request(), make_request())

    (first_headers, first_body), (second_headers, second_body) = receiver.received
    assert first_headers["Idempotency-Key"] == "crosspost-7-2f9c1e"
    assert second_headers["Idempotency-Key"] == "crosspost-7-2f9c1e"
    assert first_body == second_body
    assert WebhookAdapter.idempotent_resend
    assert not WebhookAdapter.can_reconcile


def test_remote_id_comes_from_the_answer(receiver: Receiver) -> None:
    """The receiver's JSON ``id`` and ``url`` become remote id and URL; else the key is the id."""
    receiver.answers = [
        (201, b'{"id": 981, "url": "https://intranet.example/news/981"}'),
        (200, b"ok"),
    ]
    answered, plain = publish(receiver.url, make_request(), make_request())
    assert answered == PublishResult("981", "https://intranet.example/news/981")
    assert plain == PublishResult("crosspost-7-2f9c1e", None)


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, Transient), (503, Transient), (401, AuthError), (403, AuthError), (400, Rejected)],
)
def test_failures_map_to_errors_without_the_secret(
    receiver: Receiver, status: int, error: type[PlatformError]
) -> None:
    """5xx is Transient, 401/403 AuthError, 400 Rejected; an echoed secret is not repeated."""
    answer = json.dumps({"error": f"signature mismatch, expected key {SECRET}"}).encode()
    receiver.answers = [(status, answer)]
    with pytest.raises(error) as caught:
        publish(receiver.url, make_request())
    assert caught.value.http_status == status
    assert "signature mismatch" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in caught.value.message


def test_an_unreachable_receiver_is_transient() -> None:
    """Connection refused means nothing was sent: Transient, and no secret in the message."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(Transient) as caught:
        publish(f"http://127.0.0.1:{port}/hook", make_request())
    assert SECRET not in str(caught.value)


def test_verify_sends_nothing(receiver: Receiver) -> None:
    """verify() checks the secret and names the receiver's host without posting."""
    adapter = build_adapter("intranet", make_settings(receiver.url))
    info = asyncio.run(adapter.verify())
    assert info.name == "127.0.0.1"
    assert receiver.received == []


def test_an_empty_secret_is_an_auth_error(receiver: Receiver) -> None:
    """Without a secret nothing can be signed: publish and verify raise AuthError, send nothing."""
    settings = make_settings(receiver.url)
    adapter: Adapter = WebhookAdapter(
        "intranet", settings.accounts["intranet"], settings, secret=SecretStr("")
    )
    with pytest.raises(AuthError):
        asyncio.run(adapter.verify())
    with pytest.raises(AuthError):
        asyncio.run(adapter.publish(make_request()))
    assert receiver.received == []
