"""Interaction inbox (issue 9): interactions, sync cursors, anonymous response times.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crosspost.store.schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "interactions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("remote_id", sa.String(512), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id", ondelete="SET NULL")),
        sa.Column("handle", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("fetched_at", UTCDateTime(), nullable=False),
        sa.Column("reply_ref", sa.JSON, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("first_response_at", UTCDateTime()),
        sa.Column("replied_at", UTCDateTime()),
        sa.Column("reply_remote_id", sa.Text),
        sa.Column("reply_url", sa.Text),
        sa.Column("forwarded_to", sa.String(128)),
        sa.Column("forwarded_at", UTCDateTime()),
        sa.Column("done_at", UTCDateTime()),
        sa.UniqueConstraint("account", "remote_id", name="uq_interactions_account_remote"),
    )
    op.create_index("ix_interactions_state", "interactions", ["state", "created_at"])
    op.create_index("ix_interactions_done", "interactions", ["done_at"])
    op.create_table(
        "inbox_cursors",
        sa.Column("account", sa.String(128), primary_key=True),
        sa.Column("cursor", sa.Text),
        sa.Column("synced_at", UTCDateTime()),
        sa.Column("blocked_until", UTCDateTime()),
        sa.Column("error", sa.Text),
        sa.Column("lease_until", UTCDateTime()),
        sa.Column("worker", sa.String(255)),
    )
    op.create_table(
        "inbox_responses",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("responded_at", UTCDateTime(), nullable=False),
        sa.Column("how", sa.String(8), nullable=False),
    )
    op.create_index("ix_inbox_responses_received", "inbox_responses", ["received_at"])


def downgrade() -> None:
    op.drop_table("inbox_responses")
    op.drop_table("inbox_cursors")
    op.drop_table("interactions")
