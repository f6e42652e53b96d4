"""Yearly evaluation (issue 7): metric samples at fixed ages.

* ``post_metrics.age_days``: the age (days after publication) a sample stands for;
  one sample per delivery and age, so an interrupted collection resumes where it
  stopped and a second collector cannot store a sample twice (NULL: an ad-hoc
  sample outside the fixed ages).
* ``account_metrics.day``: the local calendar day (``site.timezone``) of a follower
  count; one count per account and day.
* ``metrics_state``: per account, until when the platform asked the metrics
  collection to wait (rate limit) and the last run's error — kept apart from
  ``account_state`` so a metrics rate limit never holds up publishing.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crosspost.store.schema import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("post_metrics") as batch:
        batch.add_column(sa.Column("age_days", sa.Integer))
    op.create_index("uq_post_metrics_age", "post_metrics", ["delivery_id", "age_days"], unique=True)
    with op.batch_alter_table("account_metrics") as batch:
        batch.add_column(sa.Column("day", sa.String(10)))
    op.create_index("uq_account_metrics_day", "account_metrics", ["account", "day"], unique=True)
    op.create_table(
        "metrics_state",
        sa.Column("account", sa.String(128), primary_key=True),
        sa.Column("blocked_until", UTCDateTime()),
        sa.Column("last_run_at", UTCDateTime()),
        sa.Column("last_error", sa.Text),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("metrics_state")
    op.drop_index("uq_account_metrics_day", table_name="account_metrics")
    with op.batch_alter_table("account_metrics") as batch:
        batch.drop_column("day")
    op.drop_index("uq_post_metrics_age", table_name="post_metrics")
    with op.batch_alter_table("post_metrics") as batch:
        batch.drop_column("age_days")
