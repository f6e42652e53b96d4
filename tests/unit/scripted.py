"""A scripted in-memory adapter for publisher and daemon unit tests."""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

from tests.rawsettings import settings_from

from crosspost.adapters.base import Adapter
from crosspost.exceptions import PlatformError, UnknownOutcome
from crosspost.models import AccountInfo, PublishRequest, PublishResult

SETTINGS = settings_from(
    site={"url": "https://www.zv-staedtedreieck.de"},
    accounts={
        "a": {"platform": "console"},
        "b": {"platform": "console"},
    },
)


class ScriptedAdapter(Adapter):
    """Each publish call takes the next step: an error to raise, or None to succeed.

    ``landed`` holds what reached the "platform" — also for UnknownOutcome steps
    with ``land=True`` — so find_existing and duplicate counts can be checked.
    """

    platform: ClassVar[str] = "scripted"

    def __init__(
        self,
        name: str,
        steps: list[PlatformError | None] | None = None,
        *,
        idempotent: bool = False,
        reconcile: bool = False,
        land_unknown: bool = True,
    ) -> None:
        super().__init__(name, SETTINGS.accounts["a"], SETTINGS)
        self.steps: deque[PlatformError | None] = deque(steps or [])
        # Class constants of a real adapter; this double sets them per instance.
        self.idempotent_resend = idempotent  # type: ignore[misc]
        self.can_reconcile = reconcile  # type: ignore[misc]
        self.land_unknown = land_unknown
        self.calls: list[PublishRequest] = []
        self.lookups = 0
        self.landed: dict[str, PublishResult] = {}
        self.verified = 0
        self.verify_error: PlatformError | None = None

    async def publish(self, request: PublishRequest) -> PublishResult:
        self.calls.append(request)
        step = self.steps.popleft() if self.steps else None
        result = PublishResult(remote_id=f"r{request.delivery_id}", remote_url=None)
        if isinstance(step, UnknownOutcome) and self.land_unknown:
            self.landed[request.idempotency_key] = result
        if step is not None:
            raise step
        self.landed[request.idempotency_key] = result
        return result

    async def find_existing(self, request: PublishRequest) -> PublishResult | None:
        self.lookups += 1
        return self.landed.get(request.idempotency_key)

    async def verify(self) -> AccountInfo:
        self.verified += 1
        if self.verify_error is not None:
            raise self.verify_error
        return AccountInfo(name=self.name)

    def copies(self) -> int:
        return len(self.landed)


def options(**kwargs: Any) -> dict[str, Any]:
    return kwargs
