"""The analytics store: product events, ingest cursors, Rasa's event-broker table.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa  # type: ignore[import-untyped]
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "product_events",
        # BIGINT on PostgreSQL; SQLite's rowid alias must be INTEGER.
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("required", sa.Boolean(create_constraint=False), nullable=False),
        sa.Column("conversation_id", sa.String(128)),
        sa.Column("account_id", sa.String(128)),
        sa.Column("channel", sa.String(32)),
        sa.Column("language", sa.String(8)),
        sa.Column("creditor", sa.String(128)),
        sa.Column("opener_variant", sa.String(64)),
        sa.Column("rule", sa.String(64)),
        sa.Column("reason", sa.String(255)),
        sa.Column("outcome", sa.String(64)),
        sa.Column("agent", sa.String(64)),
        sa.Column("message_kind", sa.String(32)),
        sa.Column("outbox_id", sa.String(128)),
        sa.Column("detail", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_product_events"),
        sa.UniqueConstraint("source", "source_id", name="uq_product_events_source_source_id"),
    )
    op.create_index("ix_product_events_kind_at", "product_events", ["kind", "at"])
    op.create_index("ix_product_events_conversation_id", "product_events", ["conversation_id"])
    op.create_index("ix_product_events_required_at", "product_events", ["required", "at"])
    op.create_table(
        "ingest_cursors",
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("last_id", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stream", name="pk_ingest_cursors"),
    )
    # Rasa's SQL event broker creates this table itself when it starts first: then keep it.
    if not sa.inspect(op.get_bind()).has_table("events"):
        op.create_table(
            "events",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("sender_id", sa.String(255)),
            sa.Column("data", sa.Text()),
            sa.PrimaryKeyConstraint("id", name="pk_events"),
        )


def downgrade() -> None:
    # Rasa's table stays: it may hold the broker's data from before this store.
    op.drop_table("ingest_cursors")
    op.drop_index("ix_product_events_required_at", "product_events")
    op.drop_index("ix_product_events_conversation_id", "product_events")
    op.drop_index("ix_product_events_kind_at", "product_events")
    op.drop_table("product_events")
