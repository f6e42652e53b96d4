"""A signed JSON POST to a URL of the body's choosing (intranet, CMS, chat bridge).

The request::

    POST <url>
    Content-Type: application/json
    Idempotency-Key: <the delivery's idempotency key>
    X-Crosspost-Timestamp: <Unix seconds when this try was sent>
    X-Crosspost-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes, keyed with the secret>

    {"id": <idempotency key>, "post_id": 42, "account": "intranet", "title": "…",
     "text": "… https://www.zv-staedtedreieck.de/…", "link": "https://…",
     "created_at": "2026-12-01T08:00:00Z", "media": [{"alt": "…", "filename": "markt.jpg"}]}

Contract for receivers (docs/): verify the signature over the raw body before
parsing it, and deduplicate on ``Idempotency-Key`` (equal to the body's ``id``):
crosspost sends the same key, and byte-for-byte the same body, again whenever
it cannot tell whether a try arrived. That is why ``idempotent_resend`` holds.
A receiver may answer with JSON ``{"id": …, "url": …}``; the id becomes the
delivery's remote id (else the idempotency key), the url its remote URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from crosspost.adapters._http import HttpClient
from crosspost.adapters.base import Adapter
from crosspost.clock import Clock, system_clock
from crosspost.config import WebhookAccount
from crosspost.exceptions import AuthError
from crosspost.i18n import _
from crosspost.models import AccountInfo, PublishRequest, PublishResult

if TYPE_CHECKING:
    import httpx

SIGNATURE_HEADER = "X-Crosspost-Signature"
TIMESTAMP_HEADER = "X-Crosspost-Timestamp"


def payload(request: PublishRequest, site_url: str = "") -> bytes:
    """The body, serialized once: the signature covers exactly these bytes.

    ``link`` is the canonical link; a post without its own link carries ``site_url``."""
    document = {
        "id": request.idempotency_key,
        "post_id": request.post_id,
        "account": request.account,
        "title": request.title,
        "text": request.text,
        "link": request.link or site_url,
        "created_at": request.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "media": [{"alt": m.alt, "filename": m.path.name} for m in request.media],
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signature(secret: str, body: bytes) -> str:
    """The ``X-Crosspost-Signature`` value for ``body``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookAdapter(Adapter):
    platform: ClassVar[str] = "webhook"
    idempotent_resend: ClassVar[bool] = True
    can_reconcile: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = self.config
        if not isinstance(config, WebhookAccount):
            raise TypeError(f"WebhookAdapter needs a WebhookAccount, not {type(config).__name__}")
        self.url = config.url
        self.clock: Clock = system_clock
        parts = urlsplit(config.url)
        self._key = self._secret.get_secret_value() if self._secret is not None else ""
        self._http = HttpClient(
            f"{parts.scheme}://{parts.netloc}",
            transport=self._transport,
            timeout=self._timeout,
            secrets=[self._key],
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def publish(self, request: PublishRequest) -> PublishResult:
        self._require_secret()
        body = payload(request, self.settings.site.url)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": request.idempotency_key,
            TIMESTAMP_HEADER: str(int(self.clock.now().timestamp())),
            SIGNATURE_HEADER: signature(self._key, body),
        }
        response = await self._http.request("POST", self.url, content=body, headers=headers)
        answer = _json_object(response)
        remote_id = answer.get("id")
        if isinstance(remote_id, int) and not isinstance(remote_id, bool):
            remote_id = str(remote_id)
        remote_url = answer.get("url")
        return PublishResult(
            remote_id=remote_id
            if isinstance(remote_id, str) and remote_id
            else request.idempotency_key,
            remote_url=remote_url if isinstance(remote_url, str) and remote_url else None,
        )

    async def verify(self) -> AccountInfo:
        # Receivers need not answer anything but POST, and a test post would be
        # a post: checking the secret is all that can be done without sending.
        self._require_secret()
        return AccountInfo(name=urlsplit(self.url).hostname or self.url, url=self.url)

    def _require_secret(self) -> None:
        if not self._key:
            raise AuthError(
                _(
                    "accounts.{account}: the webhook secret is empty; set token_env or token_file"
                ).format(account=self.name),
                sent=False,
            )


ADAPTER = WebhookAdapter


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data: Any = response.json()
    except ValueError:  # not JSON, or not UTF-8: the receiver owes us nothing
        return {}
    return data if isinstance(data, dict) else {}
