"""The claim's per-account index (issue 6).

``ix_deliveries_account_due`` on ``(account, due_at, id)`` over the pending
deliveries: each account's share of a claim is one range of it, in claim order.
With ``ix_deliveries_due`` (``due_at`` alone) the claim read, for every account,
the pending rows of all accounts up to its due time and sorted those of one
instant by ``id``. PostgreSQL, 5 000 deliveries due at one instant, 20 accounts
(bench/README.md): the claim's statement 6.7 ms in the server without this index,
3.0 ms with it. ``ix_deliveries_due`` stays for
the queries that ask when the next delivery of any account falls due.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_PENDING = sa.text("state IN ('scheduled', 'retrying', 'unknown')")


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_account_due",
        "deliveries",
        ["account", "due_at", "id"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_account_due", table_name="deliveries")
