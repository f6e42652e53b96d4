"""Each account's request budget, shared by every daemon (issue 5).

``account_state.limit_remaining`` and ``limit_reset``: what the platform's last
answer said is left of the account's rate limit, and when its window refills.
The publisher writes them with each settlement; every claim takes at most
``limit_remaining`` minus the account's deliveries in flight (of all daemons), so
three daemons send an account no more requests than one would.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crosspost.store.schema import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account_state") as batch:
        batch.add_column(sa.Column("limit_remaining", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("limit_reset", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account_state") as batch:
        batch.drop_column("limit_reset")
        batch.drop_column("limit_remaining")
