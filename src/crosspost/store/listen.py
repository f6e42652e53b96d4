"""Wake-ups from PostgreSQL: ``LISTEN`` on a dedicated autocommit connection.

Every transaction that makes a delivery claimable (enqueue, reschedule, retry,
a resumed account, a reaped lease) runs ``pg_notify`` on :data:`CHANNEL`;
PostgreSQL delivers the notification to every listener when that transaction
commits, and not at all if it rolls back. The daemon turns each one into a
look at the queue, so a post enqueued for "now" goes out at once without
polling the database several times a second.

The connection lives outside the pool: a pooled connection would be handed to
other work between notifications, and ``LISTEN`` belongs to the session. For
the same reason it cannot pass through PgBouncer in transaction pooling mode
(``docs/scaling.md``).
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg.conninfo import make_conninfo

from crosspost.exceptions import StoreError
from crosspost.i18n import _
from crosspost.store.engine import CHANNEL

#: libpq keepalives: a connection silently cut (a NAT, a failover) is noticed in about a minute
_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


class PgChangeFeed:
    """Calls ``on_change`` whenever another connection commits a change to the queue."""

    def __init__(self, conninfo: str, *, safe_url: str, application_name: str) -> None:
        self._conninfo = conninfo
        self._safe_url = safe_url
        self._application_name = application_name

    async def listen(self, on_change: Callable[[], None]) -> None:
        """Listen until cancelled; raise StoreError when the connection fails or is lost.

        ``on_change`` is also called once as soon as the listener is in place,
        since changes committed before (or while reconnecting) sent no
        notification to this connection.
        """
        try:
            conninfo = make_conninfo(
                self._conninfo, application_name=f"{self._application_name} listen", **_KEEPALIVES
            )
            conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(self._describe(exc)) from exc
        try:
            await conn.execute(f"LISTEN {CHANNEL}")
            on_change()
            async for _notification in conn.notifies():
                on_change()
        except psycopg.Error as exc:
            raise StoreError(self._describe(exc)) from exc
        finally:
            await conn.close()
        # notifies() ends only when the connection closes
        raise StoreError(self._describe(None))

    def _describe(self, exc: psycopg.Error | None) -> str:
        if exc is None:
            reason = _("the connection was closed")
        else:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        return _("listening on database {url}: {reason}").format(url=self._safe_url, reason=reason)
