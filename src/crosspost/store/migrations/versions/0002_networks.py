"""Adapter progress (record keys, containers), token expiry, metrics.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crosspost.store.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("progress", sa.JSON))
    with op.batch_alter_table("account_state") as batch:
        batch.add_column(sa.Column("token_expires_at", UTCDateTime()))
    op.create_table(
        "post_metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "delivery_id",
            sa.Integer,
            sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("collected_at", UTCDateTime(), nullable=False),
        sa.Column("likes", sa.Integer),
        sa.Column("reposts", sa.Integer),
        sa.Column("replies", sa.Integer),
        sa.Column("views", sa.Integer),
    )
    op.create_index("ix_post_metrics_delivery", "post_metrics", ["delivery_id", "collected_at"])
    op.create_table(
        "account_metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("collected_at", UTCDateTime(), nullable=False),
        sa.Column("followers", sa.Integer, nullable=False),
    )
    op.create_index("ix_account_metrics_account", "account_metrics", ["account", "collected_at"])


def downgrade() -> None:
    op.drop_table("account_metrics")
    op.drop_table("post_metrics")
    with op.batch_alter_table("account_state") as batch:
        batch.drop_column("token_expires_at")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("progress")
