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
SCHEMA_REVISION = "0008"

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
# Each account's share of a claim is one range of this index, in claim order
# (due_at, id): the claim reads the rows it takes and no other account's, however
# many deliveries wait and however many fell due at the same instant.
Index(
    "ix_deliveries_account_due",
    deliveries.c.account,
    deliveries.c.due_at,
    deliveries.c.id,
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
    #: the request budget the platform's last answer stated (0008): requests left in
    #: the window and when it refills; every daemon's claims are capped by it
    Column("limit_remaining", Integer),
    Column("limit_reset", UTCDateTime()),
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
    #: the fixed age (days after publication) this sample stands for; NULL: ad hoc (0006)
    Column("age_days", Integer),
)
Index("ix_post_metrics_delivery", post_metrics.c.delivery_id, post_metrics.c.collected_at)
Index("uq_post_metrics_age", post_metrics.c.delivery_id, post_metrics.c.age_days, unique=True)

#: follower counts per account over time (aggregate numbers only, no names)
account_metrics = Table(
    "account_metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(128), nullable=False),
    Column("collected_at", UTCDateTime(), nullable=False),
    Column("followers", Integer, nullable=False),
    #: the local day (site.timezone, YYYY-MM-DD) of the count: one per account and day (0006)
    Column("day", String(10)),
)
Index("ix_account_metrics_account", account_metrics.c.account, account_metrics.c.collected_at)
Index("uq_account_metrics_day", account_metrics.c.account, account_metrics.c.day, unique=True)

#: the metrics collection's own rate-limit memory per account (0006), apart from
#: account_state so that it never holds up publishing
metrics_state = Table(
    "metrics_state",
    metadata,
    Column("account", String(128), primary_key=True),
    Column("blocked_until", UTCDateTime()),
    Column("last_run_at", UTCDateTime()),
    Column("last_error", Text),
    Column("updated_at", UTCDateTime(), nullable=False),
)

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

# -- editorial workflow (issue 8; migration 0003) ---------------------------------------
#: a post of a recurring series is one occurrence (``occurrence_at`` is its nominal
#: instant, before any spread or quiet hours); a post that needs approval records who
#: gave it
posts.append_column(Column("series_id", Integer))
posts.append_column(Column("occurrence_at", UTCDateTime()))
posts.append_column(Column("approval_required", Boolean, nullable=False, server_default=false()))
posts.append_column(Column("approved_by", String(128)))
posts.append_column(Column("approved_at", UTCDateTime()))
#: the duplicate guard's keys: SHA-256 of the link (None for the site's own address,
#: which many posts share) and of the text; indexed, so the guard costs one lookup
posts.append_column(Column("link_digest", String(64)))
posts.append_column(Column("text_digest", String(64)))
Index("ix_posts_link_digest", posts.c.link_digest)
Index("ix_posts_text_digest", posts.c.text_digest)
#: two daemons materialising the same occurrence: the second insert fails, nothing doubles
Index("uq_posts_occurrence", posts.c.series_id, posts.c.occurrence_at, unique=True)

#: recurring posts: the rule, and the post (already rendered per account) each
#: occurrence repeats
series = Table(
    "series",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    #: RFC 5545 RRULE, without DTSTART
    Column("rule", Text, nullable=False),
    #: the first wall time (naive, in ``timezone``) the rule counts from
    Column("dtstart", String(32), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("link", Text, nullable=False),
    #: the link as the duplicate guard sees it (None: the site's own address)
    Column("dedup_link", Text),
    Column("category", String(64)),
    Column("media", JSON, nullable=False),
    Column("variants", JSON, nullable=False),
    #: [{"account", "platform", "text"}]: what every occurrence sends
    Column("rendered", JSON, nullable=False),
    Column("source", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("approval_required", Boolean, nullable=False, server_default=false()),
    Column("approved_by", String(128)),
    Column("approved_at", UTCDateTime()),
    #: the nominal instant of the last occurrence materialised (None: none yet)
    Column("materialised_until", UTCDateTime()),
    Column("cancelled_at", UTCDateTime()),
    Column("cancelled_by", String(128)),
)

#: who did what to which post, when; written in the transaction of the change itself,
#: never changed afterwards (there is no command that edits it)
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("post_id", Integer),
    Column("series_id", Integer),
    Column("detail", JSON, nullable=False),
)
Index("ix_audit_log_post", audit_log.c.post_id, audit_log.c.id)

# -- the interaction inbox (issue 9; migration 0005) -------------------------------------------
#: replies, mentions and comments fetched from the platforms: only what answering needs
#: (handle, text, link, time) plus the platform's ids to reply to; deleted
#: ``privacy.retention_days`` after ``done_at`` (docs/privacy.md)
interactions = Table(
    "interactions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(128), nullable=False),
    Column("platform", String(32), nullable=False),
    #: the platform's id of the reply/mention/comment
    Column("remote_id", String(512), nullable=False),
    Column("kind", String(16), nullable=False),
    #: our delivery it answers, when the platform says which post it refers to
    Column("delivery_id", Integer, ForeignKey("deliveries.id", ondelete="SET NULL")),
    Column("handle", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("url", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("fetched_at", UTCDateTime(), nullable=False),
    #: technical ids the platform needs to reply (no personal data beyond the handle)
    Column("reply_ref", JSON, nullable=False),
    Column("state", String(8), nullable=False),
    Column("first_response_at", UTCDateTime()),
    Column("replied_at", UTCDateTime()),
    Column("reply_remote_id", Text),
    Column("reply_url", Text),
    Column("forwarded_to", String(128)),
    Column("forwarded_at", UTCDateTime()),
    Column("done_at", UTCDateTime()),
    UniqueConstraint("account", "remote_id", name="uq_interactions_account_remote"),
)
Index("ix_interactions_state", interactions.c.state, interactions.c.created_at)
Index("ix_interactions_done", interactions.c.done_at)

#: where each account's interaction sync stands (resumable) and who holds it
inbox_cursors = Table(
    "inbox_cursors",
    metadata,
    Column("account", String(128), primary_key=True),
    Column("cursor", Text),
    Column("synced_at", UTCDateTime()),
    Column("blocked_until", UTCDateTime()),
    Column("error", Text),
    Column("lease_until", UTCDateTime()),
    Column("worker", String(255)),
)

#: response times without any personal data: kept for the yearly report after the
#: interaction itself is purged
inbox_responses = Table(
    "inbox_responses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account", String(128), nullable=False),
    Column("platform", String(32), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("responded_at", UTCDateTime(), nullable=False),
    #: "reply" or "done"
    Column("how", String(8), nullable=False),
)
Index("ix_inbox_responses_received", inbox_responses.c.received_at)

# -- operations (issue 10; migration 0004) ---------------------------------------------------
#: what the alerts found: one row per event (a failed delivery, a pause, …), found once
#: whichever daemon looks first; ``mailed_at``/``digested_at`` say which mail told of it
alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    #: failed, unknown, paused, token_expiry, late
    Column("kind", String(16), nullable=False),
    #: the account ("" for none)
    Column("account", String(128), nullable=False),
    #: what makes the event itself unique, e.g. "<delivery>:<attempts>"
    Column("ref", String(128), nullable=False),
    Column("delivery_id", Integer),
    Column("post_id", Integer),
    Column("detail", Text, nullable=False),
    Column("detected_at", UTCDateTime(), nullable=False),
    Column("mailed_at", UTCDateTime()),
    Column("digested_at", UTCDateTime()),
    UniqueConstraint("kind", "account", "ref", name="uq_alert_events_ref"),
)
Index("ix_alert_events_detected", alert_events.c.detected_at)

#: when the last mail of each (kind, account) went out: at most one per throttle window,
#: across restarts and across daemons (a conditional UPDATE claims the next one)
alert_sends = Table(
    "alert_sends",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("account", String(128), primary_key=True),
    Column("sent_at", UTCDateTime(), nullable=False),
)
