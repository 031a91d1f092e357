"""The analytics store's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

- ``product_events``: one wide row per product event (a gate decision, an escalation, a claim,
  a close with its outcome, a plan...), ingested from the product's Redis streams; ``source`` and
  ``source_id`` (the stream and the entry's id) make each entry land once. ``required`` marks the
  records the law makes us keep (``retention.records_years``); every other row is kept only
  ``retention.transcript_days``.
- ``ingest_cursors``: per stream, the last entry read (moved in the same transaction as the rows).
- ``conversations``: one row per conversation (``bot.ops.analytics.facts.ConversationFacts``), built
  by ``bot.ops.analytics.conversations.summarise`` from the two event tables: times, counts and
  names, never what anybody wrote; plus whether ops reviewed it. ``conversation_tags``: ops' tags.
- ``rasa_events``: Rasa's SQL event broker's own table (named ``events`` by Rasa 3.6:
  ``rasa.core.brokers.sql``): created here so the migrations own the whole database and retention
  can trim it; Rasa's ``create_all`` finds it and leaves it alone. This is why ours is not called
  ``events``.

Times are UTC: :class:`UtcDateTime` stores them naive-UTC on SQLite (which has no time zones) and
as ``timestamptz`` on PostgreSQL, and always hands back aware datetimes.

The migrations (``migrations/versions``) create exactly these tables; a change here needs a new
migration (``tests/bot/ops/test_analytics.py`` compares them).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (  # type: ignore[import-untyped]
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect  # type: ignore[import-untyped]
from sqlalchemy.types import TypeDecorator  # type: ignore[import-untyped]

__all__ = [
    "CONVERSATIONS",
    "CONVERSATION_TAGS",
    "INGEST_CURSORS",
    "METADATA",
    "PRODUCT_EVENTS",
    "RASA_EVENTS",
    "UtcDateTime",
]

#: Constraint and index names fixed by convention, so migrations can name them.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
}


class UtcDateTime(TypeDecorator):  # type: ignore[misc]  # SQLAlchemy 1.4 is untyped
    """An aware UTC datetime on every database (naive datetimes are refused)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("analytics times must be timezone-aware")
        value = value.astimezone(timezone.utc)
        # SQLite keeps no zone: store naive UTC and put the zone back when reading.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)  # type: ignore[no-any-return]
        return value.astimezone(timezone.utc)  # type: ignore[no-any-return]


METADATA = MetaData(naming_convention=NAMING)

#: Short texts: ids, names, kinds (nothing a person wrote is stored here).
_SHORT = 128

PRODUCT_EVENTS = Table(
    "product_events",
    METADATA,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    #: The stream it came from (``audit``, ``console_events``, ``events``, ``agent_queue``) and the
    #: entry's id there: an entry read twice is stored once.
    Column("source", String(32), nullable=False),
    Column("source_id", String(64), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    #: What happened: sent, deferred, withheld, escalated, claimed, handed_back, closed, plan_created,
    #: opted_out... (``bot.ops.analytics.ingest.KINDS``), or ``other``.
    Column("kind", String(64), nullable=False),
    #: Kept for ``retention.records_years`` (the law's records) rather than ``transcript_days``.
    Column("required", Boolean(create_constraint=False), nullable=False, default=False),
    Column("conversation_id", String(_SHORT)),
    Column("account_id", String(_SHORT)),
    Column("channel", String(32)),
    Column("language", String(8)),
    Column("creditor", String(_SHORT)),
    Column("opener_variant", String(64)),
    #: The gate's rule (deferred, withheld) and its reason; an escalation's reason.
    Column("rule", String(64)),
    Column("reason", String(255)),
    #: How an agent closed the conversation.
    Column("outcome", String(64)),
    Column("agent", String(64)),
    #: The message the gate decided on (opener, reply...), and its outbox id.
    Column("message_kind", String(32)),
    Column("outbox_id", String(_SHORT)),
    #: Anything else of the entry worth keeping, as JSON text.
    Column("detail", Text),
    UniqueConstraint("source", "source_id"),
    Index(None, "kind", "at"),
    Index(None, "conversation_id"),
    Index(None, "required", "at"),
)

INGEST_CURSORS = Table(
    "ingest_cursors",
    METADATA,
    #: The stream's name without the key prefix (``audit``...).
    Column("stream", String(64), primary_key=True),
    #: The last entry id stored from it (read on from the next one).
    Column("last_id", String(64), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

#: Rasa's sender ids are up to 255 characters (``events.sender_id``).
_CONVERSATION_ID = 255

CONVERSATIONS = Table(
    "conversations",
    METADATA,
    Column("conversation_id", String(_CONVERSATION_ID), primary_key=True),
    Column("account_id", String(_SHORT)),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("last_at", UtcDateTime(), nullable=False),
    Column("channel", String(32)),
    Column("language", String(8)),
    Column("creditor", String(_SHORT)),
    Column("opener_variant", String(64)),
    Column("contacted_at", UtcDateTime()),
    Column("replied_at", UtcDateTime()),
    Column("verified_at", UtcDateTime()),
    Column("plan_offered_at", UtcDateTime()),
    Column("plan_created_at", UtcDateTime()),
    Column("first_payment_at", UtcDateTime()),
    Column("plan_missed_at", UtcDateTime()),
    Column("opted_out_at", UtcDateTime()),
    Column("escalated_at", UtcDateTime()),
    #: The escalations' reasons, a JSON list of short names.
    Column("escalation_reasons", Text),
    Column("outcome", String(64)),
    Column("user_turns", Integer, nullable=False),
    Column("fallbacks", Integer, nullable=False),
    Column("low_confidence", Integer, nullable=False),
    Column("last_step", String(_SHORT)),
    #: Set by ops in the review pages (``summarise`` leaves them as they are).
    Column("reviewed", Boolean(create_constraint=False), nullable=False, default=False),
    Column("reviewed_by", String(64)),
    Column("reviewed_at", UtcDateTime()),
    Index(None, "started_at"),
    Index(None, "last_at"),
)

CONVERSATION_TAGS = Table(
    "conversation_tags",
    METADATA,
    Column(
        "conversation_id",
        String(_CONVERSATION_ID),
        ForeignKey("conversations.conversation_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    #: 1-32 characters of ``[a-z0-9 _-]`` (``bot.ops.analytics.conversations.valid_tag``).
    Column("tag", String(32), primary_key=True),
    Column("tagged_by", String(64)),
    Column("tagged_at", UtcDateTime(), nullable=False),
    Index(None, "tag"),
)

#: Rasa 3.6's SQL event broker table, exactly as Rasa declares it (``SQLBrokerEvent``):
#: ``data`` is the event's JSON, with its ``timestamp`` (Unix seconds).
RASA_EVENTS = Table(
    "events",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255)),
    Column("data", Text),
)
