"""The audit log: who did what to which post, and when.

Rows are written by :mod:`crosspost.store.workflow` inside the transaction of
the change they record (:func:`write_audit` takes the caller's connection) and
are never updated or deleted by crosspost; ``crosspost audit`` reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select

from crosspost.store.schema import audit_log, posts


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    post_id: int | None
    series_id: int | None
    detail: Mapping[Any, Any]


def write_audit(
    conn: Connection,
    *,
    at: datetime,
    actor: str,
    action: str,
    post_id: int | None = None,
    series_id: int | None = None,
    detail: Mapping[Any, Any] | None = None,
) -> None:
    """One audit row, in the caller's transaction."""
    conn.execute(
        insert(audit_log).values(
            at=at,
            actor=actor,
            action=action,
            post_id=post_id,
            series_id=series_id,
            detail=dict(detail or {}),
        )
    )


def read_audit(
    conn: Connection, *, post_id: int | None = None, limit: int = 100_000
) -> list[AuditEntry]:
    """Entries oldest first; with ``post_id``, the post's and its series' own."""
    query = select(audit_log).order_by(audit_log.c.id).limit(limit)
    if post_id is not None:
        series_of = select(posts.c.series_id).where(posts.c.id == post_id).scalar_subquery()
        query = query.where(
            or_(
                audit_log.c.post_id == post_id,
                and_(
                    audit_log.c.post_id.is_(None),
                    audit_log.c.series_id.is_not(None),
                    audit_log.c.series_id == series_of,
                ),
            )
        )
    return [
        AuditEntry(
            id=r["id"],
            at=r["at"],
            actor=r["actor"],
            action=r["action"],
            post_id=r["post_id"],
            series_id=r["series_id"],
            detail=dict(r["detail"] or {}),
        )
        for r in conn.execute(query).mappings()
    ]
