"""Conversations: one row of facts per conversation for review and the funnel, and ops' tags.

Revision ID: 0002
Revises: 0001
Create Date: 2026-03-02
"""

from __future__ import annotations

import sqlalchemy as sa  # type: ignore[import-untyped]
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    op.create_table(
        "conversations",
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("account_id", sa.String(128)),
        sa.Column("started_at", when, nullable=False),
        sa.Column("last_at", when, nullable=False),
        sa.Column("channel", sa.String(32)),
        sa.Column("language", sa.String(8)),
        sa.Column("creditor", sa.String(128)),
        sa.Column("opener_variant", sa.String(64)),
        sa.Column("contacted_at", when),
        sa.Column("replied_at", when),
        sa.Column("verified_at", when),
        sa.Column("plan_offered_at", when),
        sa.Column("plan_created_at", when),
        sa.Column("first_payment_at", when),
        sa.Column("plan_missed_at", when),
        sa.Column("opted_out_at", when),
        sa.Column("escalated_at", when),
        sa.Column("escalation_reasons", sa.Text()),
        sa.Column("outcome", sa.String(64)),
        sa.Column("user_turns", sa.Integer(), nullable=False),
        sa.Column("fallbacks", sa.Integer(), nullable=False),
        sa.Column("low_confidence", sa.Integer(), nullable=False),
        sa.Column("last_step", sa.String(128)),
        sa.Column("reviewed", sa.Boolean(create_constraint=False), nullable=False),
        sa.Column("reviewed_by", sa.String(64)),
        sa.Column("reviewed_at", when),
        sa.PrimaryKeyConstraint("conversation_id", name="pk_conversations"),
    )
    op.create_index("ix_conversations_started_at", "conversations", ["started_at"])
    op.create_index("ix_conversations_last_at", "conversations", ["last_at"])
    op.create_table(
        "conversation_tags",
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("tag", sa.String(32), nullable=False),
        sa.Column("tagged_by", sa.String(64)),
        sa.Column("tagged_at", when, nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "tag", name="pk_conversation_tags"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.conversation_id"],
            name="fk_conversation_tags_conversation_id_conversations",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_conversation_tags_tag", "conversation_tags", ["tag"])


def downgrade() -> None:
    op.drop_index("ix_conversation_tags_tag", "conversation_tags")
    op.drop_table("conversation_tags")
    op.drop_index("ix_conversations_last_at", "conversations")
    op.drop_index("ix_conversations_started_at", "conversations")
    op.drop_table("conversations")
