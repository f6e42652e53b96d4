"""Posts, deliveries, attempts, account state and live daemons.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crosspost.store.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_PENDING = sa.text("state IN ('scheduled', 'retrying', 'unknown')")
_PUBLISHING = sa.text("state = 'publishing'")


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("link", sa.Text, nullable=False),
        sa.Column("category", sa.String(64)),
        sa.Column("publish_at", UTCDateTime()),
        sa.Column("ambiguous_time", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("media", sa.JSON, nullable=False),
        sa.Column("variants", sa.JSON, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "post_id", sa.Integer, sa.ForeignKey("posts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("lease_until", UTCDateTime()),
        sa.Column("worker", sa.String(255)),
        sa.Column("lease_token", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("uncertain", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("remote_id", sa.Text),
        sa.Column("remote_url", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime()),
        sa.UniqueConstraint("post_id", "account", name="uq_deliveries_post_account"),
    )
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["due_at"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )
    op.create_index(
        "ix_deliveries_lease",
        "deliveries",
        ["lease_until"],
        sqlite_where=_PUBLISHING,
        postgresql_where=_PUBLISHING,
    )
    op.create_index("ix_deliveries_post", "deliveries", ["post_id"])
    op.create_index("ix_deliveries_state", "deliveries", ["state"])
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "delivery_id",
            sa.Integer,
            sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("post_id", sa.Integer, nullable=False),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("message", sa.Text),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("worker", sa.String(255), nullable=False),
    )
    op.create_index("ix_attempts_delivery", "attempts", ["delivery_id"])
    op.create_index("ix_attempts_post", "attempts", ["post_id"])
    op.create_index("ix_attempts_started", "attempts", ["started_at"])
    op.create_table(
        "account_state",
        sa.Column("account", sa.String(128), primary_key=True),
        sa.Column("paused_reason", sa.Text),
        sa.Column("paused_at", UTCDateTime()),
        sa.Column("blocked_until", UTCDateTime()),
        sa.Column("text_limit", sa.Integer),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "daemons",
        sa.Column("worker", sa.String(255), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("in_hand", sa.Integer, nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    for table in ("daemons", "account_state", "attempts", "deliveries", "posts"):
        op.drop_table(table)
