"""How posts, deliveries and attempts look: JSON records (never translated) and
lines for people (translated)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from crosspost.i18n import _
from crosspost.models import Attempt, Delivery, DeliveryState, StoredPost, post_state

_SYMBOL = {
    DeliveryState.SCHEDULED: "…",
    DeliveryState.PUBLISHING: "→",
    DeliveryState.PUBLISHED: "✓",
    DeliveryState.RETRYING: "↻",
    DeliveryState.FAILED: "✗",
    DeliveryState.UNKNOWN: "?",
    DeliveryState.CANCELLED: "-",
    DeliveryState.RETRACTED: "⌫",
    DeliveryState.DRAFT: "✎",
    DeliveryState.REJECTED: "⊘",
}


def iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def local(when: datetime | None, zone: ZoneInfo) -> str:
    if when is None:
        return "-"
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def state_label(state: str) -> str:
    """A state name for people (the JSON keeps the English identifier)."""
    labels = {
        "scheduled": _("scheduled"),
        "publishing": _("publishing"),
        "published": _("published"),
        "retrying": _("retrying"),
        "failed": _("failed"),
        "unknown": _("unknown"),
        "cancelled": _("cancelled"),
        "retracted": _("retracted"),
        "draft": _("draft"),
        "rejected": _("rejected"),
        "expired": _("expired unapproved"),
        "partly_failed": _("partly failed"),
        "partly_published": _("partly published"),
        "mixed": _("mixed"),
        "empty": _("no deliveries"),
    }
    return labels.get(state, state)


def delivery_json(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "account": d.account,
        "platform": d.platform,
        "state": d.state.value,
        "due_at": iso(d.due_at),
        "remote_id": d.remote_id,
        "remote_url": d.remote_url,
        "error": d.error,
        "attempts": d.attempts,
        "published_at": iso(d.published_at),
        "uncertain": d.uncertain,
    }


def post_json(post: StoredPost, deliveries: list[Delivery]) -> dict[str, Any]:
    return {
        "id": post.id,
        "title": post.title,
        "category": post.category,
        "link": post.link,
        "publish_at": iso(post.publish_at),
        "state": post_state([d.state for d in deliveries]),
        "created_at": iso(post.created_at),
        "created_by": post.created_by,
        "source": post.source,
        "deliveries": [delivery_json(d) for d in deliveries],
    }


def attempt_json(a: Attempt) -> dict[str, Any]:
    return {
        "id": a.id,
        "time": iso(a.started_at),
        "finished_at": iso(a.finished_at),
        "post": a.post_id,
        "delivery": a.delivery_id,
        "account": a.account,
        "attempt": a.number,
        "outcome": a.outcome.value,
        "http_status": a.http_status,
        "error": a.message if a.outcome.value not in ("published", "found") else None,
        "duration_ms": a.duration_ms,
        "worker": a.worker,
    }


def outcome_label(outcome: str) -> str:
    """An attempt's outcome for people (the JSON keeps the English identifier)."""
    labels = {
        "pending": _("pending"),
        "published": _("published"),
        "found": _("found"),
        "transient": _("temporary error"),
        "rate_limited": _("rate limited"),
        "auth": _("credentials refused"),
        "rejected": _("rejected"),
        "unknown": _("unknown"),
        "crashed": _("crashed"),
        "released": _("released"),
    }
    return labels.get(outcome, outcome)


def table(rows: Sequence[tuple[str, ...]], *, right: tuple[int, ...] = ()) -> list[str]:
    """Columns as wide as their widest cell (German labels are longer than English)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def delivery_summary(deliveries: list[Delivery]) -> str:
    return ", ".join(f"{d.account} {_SYMBOL[d.state]}" for d in deliveries)


def attempt_line(a: Attempt, zone: ZoneInfo) -> str:
    when = a.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    status = str(a.http_status) if a.http_status else "-"
    text = (
        f"{when}  {_('post')} {a.post_id:<5} {a.account:<14} "
        f"#{a.number:<2} {outcome_label(a.outcome.value):<20} {status:>3}"
    )
    if a.message and a.outcome.value not in ("published", "found"):
        text += f"  {a.message}"
    return text


def truncate(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
