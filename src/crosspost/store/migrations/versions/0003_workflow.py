"""Editorial workflow (issue 8): approval, audit log, recurring series, duplicate guard.

* ``posts``: ``series_id`` and ``occurrence_at`` (one post per occurrence of a
  series, unique), ``approval_required``, ``approved_by``, ``approved_at``, and
  the duplicate guard's indexed ``link_digest`` and ``text_digest``;
* ``series``: the rule and the rendered post every occurrence repeats;
* ``audit_log``: who did what to which post, written with the change itself.

Drafts are deliveries in the state ``draft``, which the claim's partial index
(``ix_deliveries_due``) does not cover: no index changes.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crosspost.store.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("series_id", sa.Integer))
        batch.add_column(sa.Column("occurrence_at", UTCDateTime()))
        batch.add_column(
            sa.Column("approval_required", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("approved_by", sa.String(128)))
        batch.add_column(sa.Column("approved_at", UTCDateTime()))
        batch.add_column(sa.Column("link_digest", sa.String(64)))
        batch.add_column(sa.Column("text_digest", sa.String(64)))
    op.create_index("uq_posts_occurrence", "posts", ["series_id", "occurrence_at"], unique=True)
    op.create_index("ix_posts_link_digest", "posts", ["link_digest"])
    op.create_index("ix_posts_text_digest", "posts", ["text_digest"])
    op.create_table(
        "series",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("dtstart", sa.String(32), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("link", sa.Text, nullable=False),
        sa.Column("dedup_link", sa.Text),
        sa.Column("category", sa.String(64)),
        sa.Column("media", sa.JSON, nullable=False),
        sa.Column("variants", sa.JSON, nullable=False),
        sa.Column("rendered", sa.JSON, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("approval_required", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("approved_by", sa.String(128)),
        sa.Column("approved_at", UTCDateTime()),
        sa.Column("materialised_until", UTCDateTime()),
        sa.Column("cancelled_at", UTCDateTime()),
        sa.Column("cancelled_by", sa.String(128)),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("post_id", sa.Integer),
        sa.Column("series_id", sa.Integer),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_audit_log_post", "audit_log", ["post_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_post", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("series")
    for index in ("ix_posts_text_digest", "ix_posts_link_digest", "uq_posts_occurrence"):
        op.drop_index(index, table_name="posts")
    with op.batch_alter_table("posts") as batch:
        for name in ("text_digest", "link_digest", "approved_at", "approved_by",
                     "approval_required", "occurrence_at", "series_id"):  # fmt: skip
            batch.drop_column(name)
