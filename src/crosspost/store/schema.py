"""The tables. Migrations in ``migrations/versions`` create exactly these.

Times are stored as naive UTC and handed out timezone-aware (:class:`UTCDateTime`),
so SQLite's text timestamps compare in order and PostgreSQL gets no surprises.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.types import TypeDecorator

#: the alembic revision this code expects; a test keeps it equal to the migrations' head
SCHEMA_REVISION = "0006"

PENDING_STATES = ("scheduled", "retrying", "unknown")


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQLite text from an aggregate
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


metadata = MetaData()

posts = Table(
    "posts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("link", Text, nullable=False),
    Column("category", String(64)),
    Column("publish_at", UTCDateTime()),
    Column("ambiguous_time", Boolean, nullable=False, server_default=false()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("source", Text),
    Column("media", JSON, nullable=False),
    Column("variants", JSON, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("post_id", Integer, ForeignKey("posts.id", ondelete="CASCADE"), nullable=False),
    Column("account", String(128), nullable=False),
    Column("platform", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("text", Text, nullable=False),
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("lease_until", UTCDateTime()),
    Column("worker", String(255)),
    Column("lease_token", Integer, nullable=False, server_default=text("0")),
    Column("uncertain", Boolean, nullable=False, server_default=false()),
    Column("remote_id", Text),
    Column("remote_url", Text),
    Column("error", Text),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("published_at", UTCDateTime()),
    Column("progress", JSON),
    UniqueConstraint("post_id", "account", name="uq_deliveries_post_account"),
)
# The claim query reads only pending rows in due order: a partial index keeps it
# independent of how many published rows pile up.
Index(
    "ix_deliveries_due",
    deliveries.c.due_at,
    sqlite_where=deliveries.c.state.in_(PENDING_STATES),
    postgresql_where=deliveries.c.state.in_(PENDING_STATES),
)
Index(
    "ix_deliveries_lease",
    deliveries.c.lease_until,
    sqlite_where=deliveries.c.state == "publishing",
    postgresql_where=deliveries.c.state == "publishing",
)
Index("ix_deliveries_post", deliveries.c.post_id)
Index("ix_deliveries_state", deliveries.c.state)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("post_id", Integer, nullable=False),
    Column("account", String(128), nullable=False),
    Column("number", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("outcome", String(16), nullable=False),
    Column("http_status", Integer),
    Column("message", Text),
    Column("duration_ms", Integer),
    Column("idempotency_key", String(64), nullable=False),
    Column("worker", String(255), nullable=False),
)
Index("ix_attempts_delivery", attempts.c.delivery_id)
Index("ix_attempts_post", attempts.c.post_id)
Index("ix_attempts_started", attempts.c.started_at)

account_state = Table(
    "account_state",
    metadata,
    Column("account", String(128), primary_key=True),
    Column("paused_reason", Text),
    Column("paused_at", UTCDateTime()),
    Column("blocked_until", UTCDateTime()),
    Column("text_limit", Integer),
    Column("token_expires_at", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
)

#: engagement of published posts, sampled over time (for the yearly evaluation)
post_metrics = Table(
    "post_metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("account", String(128), nullable=False),
    Column("collected_at", UTCDateTime(), nullable=False),
    Column("likes", Integer),
    Column("reposts", Integer),
    Column("replies", Integer),
    Column("views", Integer),
)
Index("ix_post_metrics_delivery", post_metrics.c.delivery_id, post_metrics.c.collected_at)

#: follower counts per account over time (aggregate numbers only, no names)
account_metrics = Table(
    "account_metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(128), nullable=False),
    Column("collected_at", UTCDateTime(), nullable=False),
    Column("followers", Integer, nullable=False),
)
Index("ix_account_metrics_account", account_metrics.c.account, account_metrics.c.collected_at)

daemons = Table(
    "daemons",
    metadata,
    Column("worker", String(255), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String(32), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
    Column("in_hand", Integer, nullable=False, server_default=text("0")),
)
