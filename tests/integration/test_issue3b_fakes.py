"""Issue 3: the Facebook, Instagram, Threads and LinkedIn fakes (and the webhook
receiver) are written from the documented contracts — so a request the real
platform would refuse is refused here too (in the platform's error envelope),
nothing is published, and the violation is recorded for the test to fail on
(``fake.validation_errors``).

Each case sends a raw, malformed request (httpx, no adapter) to a fresh fake.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from tests.fakes.linkedin import LinkedInFake
from tests.fakes.meta import FacebookFake, GraphFake, InstagramFake, ThreadsFake
from tests.fakes.webhook import WebhookFake

LINK = "https://www.zv-staedtedreieck.de/aktuelles/x"
IMAGE = "https://www.zv-staedtedreieck.de/social/media/1-1.png"


@pytest.fixture
def started() -> Iterator[Callable[[Any], Any]]:
    fakes: list[Any] = []

    def start(fake: Any) -> Any:
        fakes.append(fake.start())
        return fake

    yield start
    for fake in fakes:
        fake.stop()
        assert fake.server_errors == []


def graph(fake: GraphFake, method: str, path: str, **params: str) -> httpx.Response:
    """A Graph call with the fake's valid token in the Authorization header."""
    headers = {"Authorization": f"Bearer {fake.token}"}
    if method == "GET":
        return httpx.get(f"{fake.url}{path}", params=params, headers=headers)
    return httpx.request(method, f"{fake.url}{path}", data=params, headers=headers)


def refused(fake: Any, answer: httpx.Response, needle: str, *, code: int = 100) -> None:
    """A Graph error envelope with ``code``, and the violation recorded."""
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == code, error
    assert {"message", "type", "code", "fbtrace_id"} <= set(error)
    recorded = [str(v) for v in fake.validation_errors]
    assert any(needle in v for v in recorded), recorded
    fake.validation_errors.clear()


# -- Facebook ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({}, "needs message, link or attached_media"),
        ({"message": "Hallo", "link": "keine-adresse"}, "not an absolute URL"),
        ({"message": "Hallo", "caption_text": "x"}, "unknown parameter 'caption_text'"),
        ({"message": "x" * 63_207}, "longer than"),
    ],
)
def test_facebook_fake_refuses_a_malformed_page_post(
    started: Callable[[Any], Any], params: dict[str, str], needle: str
) -> None:
    fake: FacebookFake = started(FacebookFake())
    refused(fake, graph(fake, "POST", f"/{fake.page_id}/feed", **params), needle)
    assert fake.posts == []


def test_facebook_fake_refuses_a_photo_with_neither_source_nor_url(
    started: Callable[[Any], Any],
) -> None:
    fake: FacebookFake = started(FacebookFake())
    answer = graph(fake, "POST", f"/{fake.page_id}/photos", published="false", alt_text_custom="x")
    refused(fake, answer, "exactly one of source (file) and url")


def test_graph_fakes_refuse_a_bad_token_with_code_190(started: Callable[[Any], Any]) -> None:
    """An invalid token: OAuthException 190, as Meta answers it (an auth error, not a
    contract violation of the client)."""
    for fake in (started(FacebookFake()), started(InstagramFake()), started(ThreadsFake())):
        answer = httpx.get(f"{fake.url}/me", headers={"Authorization": "Bearer falsch"})
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == 190
        assert answer.json()["error"]["type"] == "OAuthException"


# -- Instagram -----------------------------------------------------------------------------


def test_instagram_fake_refuses_an_image_container_without_image_url(
    started: Callable[[Any], Any],
) -> None:
    fake: InstagramFake = started(InstagramFake())
    answer = graph(fake, "POST", f"/{fake.user_id}/media", caption="Nur Text")
    refused(fake, answer, "needs image_url")
    assert fake.containers == {}


def test_instagram_fake_refuses_publishing_without_a_container(
    started: Callable[[Any], Any],
) -> None:
    fake: InstagramFake = started(InstagramFake())
    refused(fake, graph(fake, "POST", f"/{fake.user_id}/media_publish"), "'creation_id'")
    assert fake.media == []


def test_instagram_fake_publishes_a_container_once_only(started: Callable[[Any], Any]) -> None:
    """Container states: a FINISHED container publishes; publishing it again is refused
    and makes no second post; its status_code then reads PUBLISHED."""
    fake: InstagramFake = started(InstagramFake())
    created = graph(fake, "POST", f"/{fake.user_id}/media", image_url=IMAGE, caption="Bild")
    container = created.json()["id"]
    first = graph(fake, "POST", f"/{fake.user_id}/media_publish", creation_id=container)
    assert first.status_code == 200, first.text
    again = graph(fake, "POST", f"/{fake.user_id}/media_publish", creation_id=container)
    assert again.status_code == 400
    assert len(fake.media) == 1
    fake.validation_errors.clear()
    status = graph(fake, "GET", f"/{container}", fields="status_code")
    assert status.json()["status_code"] == "PUBLISHED"


# -- Threads -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({}, "'media_type'"),
        ({"media_type": "TEXT"}, "a TEXT container needs text"),
        ({"media_type": "IMAGE", "text": "Bild"}, "needs image_url"),
        ({"media_type": "IMAGE", "image_url": IMAGE, "link_attachment": LINK}, "text posts only"),
        ({"media_type": "TEXT", "text": " ".join(f"https://e{i}.de" for i in range(6))}, "LINK"),
    ],
)
def test_threads_fake_refuses_a_malformed_container(
    started: Callable[[Any], Any], params: dict[str, str], needle: str
) -> None:
    fake: ThreadsFake = started(ThreadsFake())
    refused(fake, graph(fake, "POST", f"/{fake.user_id}/threads", **params), needle)
    assert fake.containers == {}


# -- LinkedIn ------------------------------------------------------------------------------


def _linkedin_post(fake: LinkedInFake, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{fake.url}/rest/posts",
        content=json.dumps(body),
        headers={
            "Authorization": f"Bearer {fake.token}",
            "LinkedIn-Version": "202501",
            "X-Restli-Protocol-Version": "2.0.0",
            "Content-Type": "application/json",
        },
    )


def _good_body(fake: LinkedInFake) -> dict[str, Any]:
    return {
        "author": fake.organization,
        "commentary": "Hallo",
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "content": {"article": {"source": LINK, "title": "Hallo"}},
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"author": "urn:li:organization:1"}, "/author"),
        ({"commentary": None}, "/commentary"),
        ({"visibility": "CONNECTIONS"}, "/visibility"),
        ({"lifecycleState": "DRAFT"}, "/lifecycleState"),
        ({"content": {"article": {"source": "kein-link", "title": "x"}}}, "/content/article"),
    ],
)
def test_linkedin_fake_refuses_a_malformed_post_body(
    started: Callable[[Any], Any], change: dict[str, Any], needle: str
) -> None:
    fake: LinkedInFake = started(LinkedInFake())
    assert _linkedin_post(fake, _good_body(fake)).status_code == 201  # the control
    answer = _linkedin_post(fake, _good_body(fake) | change)
    assert answer.status_code in (400, 422), answer.text
    assert set(answer.json()) >= {"status", "message"}
    assert len(fake.posts) == 1
    recorded = [str(v) for v in fake.validation_errors]
    assert any(needle in v for v in recorded), recorded
    fake.validation_errors.clear()


# -- webhook receiver ----------------------------------------------------------------------


def _signed_post(fake: WebhookFake, body: bytes, headers: dict[str, str]) -> httpx.Response:
    digest = hmac.new(fake.secret.encode(), body, hashlib.sha256).hexdigest()
    return httpx.post(
        fake.url + "/hooks/crosspost",
        content=body,
        headers={"X-Crosspost-Signature": f"sha256={digest}", **headers},
    )


def _webhook_body(key: str) -> bytes:
    return json.dumps(
        {"id": key, "post_id": 1, "account": "intranet", "title": "t", "text": f"x {LINK}",
         "link": LINK, "created_at": "2026-12-01T08:00:00Z", "media": []}
    ).encode()  # fmt: skip


def test_webhook_receiver_checks_signature_headers_and_deduplicates(
    started: Callable[[Any], Any],
) -> None:
    fake: WebhookFake = started(WebhookFake())
    good = {"Content-Type": "application/json", "X-Crosspost-Timestamp": "1700000000"}
    first = _signed_post(fake, _webhook_body("k1"), good | {"Idempotency-Key": "k1"})
    assert first.status_code == 201
    again = _signed_post(fake, _webhook_body("k1"), good | {"Idempotency-Key": "k1"})
    assert again.json() == first.json()
    assert len(fake.received) == 1  # the same key stores nothing again

    wrong_key = _signed_post(fake, _webhook_body("k2"), good | {"Idempotency-Key": "other"})
    assert wrong_key.status_code == 400
    no_time = _signed_post(fake, _webhook_body("k3"), {"Content-Type": "application/json"})
    assert no_time.status_code == 400
    recorded = [str(v) for v in fake.validation_errors]
    assert any("Idempotency-Key 'other'" in v for v in recorded), recorded
    assert any("X-Crosspost-Timestamp" in v for v in recorded), recorded
    fake.validation_errors.clear()

    unsigned = httpx.post(
        fake.url + "/hooks/crosspost",
        content=_webhook_body("k4"),
        headers=good | {"Idempotency-Key": "k4", "X-Crosspost-Signature": "sha256=00"},
    )
    assert unsigned.status_code == 401
    assert len(fake.received) == 1
