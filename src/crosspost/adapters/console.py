"""Prints what would be sent, for the demo and for trying a configuration out.

Nothing leaves the machine, so sending again is harmless (``idempotent_resend``)
and every delivery gets the remote id ``console-<delivery id>``.
"""

from __future__ import annotations

import sys
from typing import ClassVar

from crosspost.adapters.base import Adapter
from crosspost.i18n import _
from crosspost.models import AccountInfo, PublishRequest, PublishResult

SEPARATOR = "-" * 60


class ConsoleAdapter(Adapter):
    platform: ClassVar[str] = "console"
    idempotent_resend: ClassVar[bool] = True
    can_reconcile: ClassVar[bool] = False

    async def publish(self, request: PublishRequest) -> PublishResult:
        lines = [
            _("Account {account}: post {post_id} (delivery {delivery_id})").format(
                account=request.account,
                post_id=request.post_id,
                delivery_id=request.delivery_id,
            ),
            SEPARATOR,
            request.text,
        ]
        lines += [
            _("Image {filename}, alt text: {alt}").format(filename=media.path.name, alt=media.alt)
            for media in request.media
        ]
        lines.append("")
        self._print("\n".join(lines))
        return PublishResult(remote_id=f"console-{request.delivery_id}")

    async def delete(self, remote_id: str) -> None:
        self._print(
            _("Account {account}: would delete {remote_id}").format(
                account=self.name, remote_id=remote_id
            )
        )

    async def verify(self) -> AccountInfo:
        return AccountInfo(name=_("standard output"))

    def _print(self, text: str) -> None:
        # Looked up on every call, so redirected (and captured) stdout is honoured.
        print(text, file=sys.stdout, flush=True)


ADAPTER = ConsoleAdapter
