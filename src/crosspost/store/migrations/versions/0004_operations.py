"""Operations (issue 10): alert bookkeeping.

* ``alert_events``: every event the alerts found (a failed or unknown delivery, a
  paused account, an expiring token, a late delivery), unique per kind, account
  and ref, so several daemons finding the same event store it once; which mail
  (immediate, digest) told of it.
* ``alert_sends``: when the last mail per kind and account went out, so that at
  most one goes out per throttle window across restarts and daemons.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crosspost.store.schema import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("ref", sa.String(128), nullable=False),
        sa.Column("delivery_id", sa.Integer),
        sa.Column("post_id", sa.Integer),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("detected_at", UTCDateTime(), nullable=False),
        sa.Column("mailed_at", UTCDateTime()),
        sa.Column("digested_at", UTCDateTime()),
        sa.UniqueConstraint("kind", "account", "ref", name="uq_alert_events_ref"),
    )
    op.create_index("ix_alert_events_detected", "alert_events", ["detected_at"])
    op.create_table(
        "alert_sends",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("account", sa.String(128), primary_key=True),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("alert_sends")
    op.drop_index("ix_alert_events_detected", table_name="alert_events")
    op.drop_table("alert_events")
