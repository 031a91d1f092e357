"""The conversations read model: one row of :class:`ConversationFacts` per conversation, built from
Rasa's events (``events``) and the product's (``product_events``), for the review pages and the
funnel.

How the facts are read (:func:`facts_from_events`, pure):

- A conversation is Rasa's sender id. Product rows belong to it by their ``conversation_id``; a row
  with none (the gate's decisions name only the account) belongs to the account's own conversation
  ``acct-<account id>`` (``bot.conversations.identity``).
- ``started_at`` / ``last_at``: the first and last time of any of its rows.
- ``contacted_at``: the first product ``sent`` row whose ``message_kind`` is ``opener``;
  ``opener_variant`` is that row's, kept as stored. No opener sent: both ``None``.
- ``replied_at``: the first Rasa ``user`` event that is the person's, not the product's trigger
  (``trigger_intent``: text ``EXTERNAL: ...``, metadata ``is_external``, or an ``EXTERNAL_`` intent),
  at or after ``contacted_at`` when the product opened, else the first at all. ``user_turns``
  counts the person's messages.
- ``verified_at``: the first ``slot`` event ``verified`` set true.
- ``plan_offered_at``: the first run of the plan form or its offer (action ``payment_plan_form`` or
  ``action_ask_plan_offer``, or ``active_loop`` ``payment_plan_form``).
- ``plan_created_at``: the first product ``plan_created`` row.
- ``first_payment_at`` / ``plan_missed_at``: the first product ``payment`` row whose detail type
  (``payment.*`` / ``instalment.*``) says ``missed`` (or ``failed``) is a missed instalment; any
  other is a payment.
- ``opted_out_at``: the first product ``opted_out`` row. ``escalated_at``: the first ``escalated``
  row; ``escalation_reasons``: their reasons, each once, in order. ``outcome``: the last
  ``closed`` row's outcome.
- ``fallbacks``: the person's messages the bot fell back on: intent ``nlu_fallback``, or one of
  ``action_default_fallback``, ``action_two_stage_fallback``, ``utter_default`` ran before the next
  message. ``low_confidence``: the person's messages whose intent's confidence is under the
  threshold (``config.ops.low_confidence``).
- ``last_step``: the active form when the events end inside one, else the last action that is a
  dialogue step (not ``action_listen``, the session start, slot extraction or a form's validation).
- ``channel``, ``language``, ``creditor``: the opener's row, else the first product row that has
  one, else the metadata the worker sends with each message (``channel``, ``language``).

:func:`summarise` keeps the ``conversations`` table up to date incrementally: it reads the rows
added since its cursors (``ingest_cursors`` ``summary:events`` and ``summary:product_events``),
recomputes each conversation they touch from all its rows and upserts it, moving the cursors in the
same transaction (a kill loses nothing and repeats nothing). Ops' tags and the reviewed mark are
never touched by it. Retention deletes old transcript rows while a conversation's row stays: a
recomputation never forgets what the stored row knew (first times keep the earliest, counts the
largest, reasons accumulate).

Reading: :func:`load_facts` / :func:`count_facts` with a :class:`FactsQuery` (every filter in SQL),
:func:`load_one`. Ops' marks: :func:`tag`, :func:`untag`, :func:`mark_reviewed`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa  # type: ignore[import-untyped]  # 1.4, pinned by Rasa: no stubs
from sqlalchemy.dialects import postgresql, sqlite  # type: ignore[import-untyped]
from sqlalchemy.engine import Connection  # type: ignore[import-untyped]

from bot.conversations.identity import account_id_of
from bot.errors import InvalidRequest, NotFound
from bot.ops.analytics.facts import ConversationFacts
from bot.ops.analytics.schema import (
    CONVERSATION_TAGS,
    CONVERSATIONS,
    INGEST_CURSORS,
    PRODUCT_EVENTS,
    RASA_EVENTS,
)
from bot.ops.analytics.store import AnalyticsError, AnalyticsStore

__all__ = [
    "BOOKKEEPING_ACTIONS",
    "FALLBACK_ACTIONS",
    "FALLBACK_INTENT",
    "PLAN_OFFER_STEPS",
    "FactsQuery",
    "ReviewError",
    "clamp_cursors",
    "count_facts",
    "distinct_values",
    "facts_from_events",
    "is_step",
    "is_trigger",
    "load_facts",
    "load_one",
    "mark_reviewed",
    "product_rows_of",
    "rasa_events_of",
    "save_facts",
    "summarise",
    "tag",
    "untag",
    "valid_tag",
]

#: Rasa's ``trigger_intent`` writes the product's intent as this text (rasa.core.constants
#: EXTERNAL_MESSAGE_PREFIX) with ``is_external`` in the metadata; our openers' intents start
#: with ``EXTERNAL_`` (``bot.outreach.openers.OPENER_INTENT``).
EXTERNAL_PREFIX = "EXTERNAL: "
EXTERNAL_INTENT_PREFIX = "EXTERNAL_"
FALLBACK_INTENT = "nlu_fallback"
#: Actions that mean the bot did not understand (rasa_project/config.yml and rules.yml).
FALLBACK_ACTIONS = frozenset({"action_default_fallback", "action_two_stage_fallback", "utter_default"})
#: The plan form, and the action that asks its offer (rasa_project/domain.yml).
PLAN_FORM = "payment_plan_form"
PLAN_OFFER_STEPS = frozenset({PLAN_FORM, "action_ask_plan_offer"})
#: Actions that are Rasa's housekeeping rather than a dialogue step.
BOOKKEEPING_ACTIONS = frozenset(
    {"action_listen", "action_session_start", "action_extract_slots", "action_read_message",
     "action_unlikely_intent", "action_back"}
)  # fmt: skip
#: Payment types that are a missed instalment (a plan broken), not a payment.
_MISSED_WORDS = ("missed", "failed")

SUMMARY_EVENTS_CURSOR = "summary:events"
SUMMARY_PRODUCT_CURSOR = "summary:product_events"
#: New rows read per transaction (of each table), conversations per ``IN (...)``.
DEFAULT_BATCH = 500
_IN_CHUNK = 200
MAX_LIMIT = 500

_TAG = re.compile(r"^[a-z0-9 _-]{1,32}$")


class ReviewError(InvalidRequest, AnalyticsError):  # InvalidRequest first: a 400, not a 503
    """A review action or filter that cannot be done as asked (a bad tag, a bad filter): a 400."""


def valid_tag(value: str) -> str:
    """``value`` as a tag (trimmed, lower-cased) or :class:`ReviewError` naming the rule."""
    cleaned = value.strip().lower()
    if not _TAG.match(cleaned) or not cleaned.strip(" _-"):
        raise ReviewError("a tag is 1 to 32 characters: letters a-z, digits, spaces, '_' and '-'")
    return cleaned


# --- the facts of one conversation (pure) --------------------------------------------------------


def _field(row: Any, name: str) -> Any:
    if isinstance(row, Mapping):
        return row.get(name)
    return getattr(row, name, None)


def _detail(row: Any) -> Mapping[str, Any]:
    detail = _field(row, "detail")
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            return {}
    return detail if isinstance(detail, Mapping) else {}


def _utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return None


def _stamp(event: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(event["timestamp"]), timezone.utc)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


def _intent(event: Mapping[str, Any]) -> tuple[str | None, float | None]:
    parse = event.get("parse_data") or {}
    intent = (parse.get("intent") if isinstance(parse, Mapping) else None) or event.get("intent") or {}
    if not isinstance(intent, Mapping):
        return None, None
    name = intent.get("name")
    try:
        confidence = float(intent["confidence"]) if intent.get("confidence") is not None else None
    except (TypeError, ValueError):
        confidence = None
    return (str(name) if name else None), confidence


def is_trigger(event: Mapping[str, Any]) -> bool:
    """A ``user`` event the product put there (``trigger_intent``: an opener), not the person."""
    text = event.get("text")
    metadata = event.get("metadata") or {}
    if isinstance(text, str) and text.startswith(EXTERNAL_PREFIX):
        return True
    if isinstance(metadata, Mapping) and metadata.get("is_external"):
        return True
    name, _ = _intent(event)
    return bool(name and name.startswith(EXTERNAL_INTENT_PREFIX))


def is_step(action: str) -> bool:
    """An action that is a dialogue step (not Rasa's housekeeping, not a form's validation)."""
    return action not in BOOKKEEPING_ACTIONS and not action.startswith("validate_")


def _is_missed(row: Any) -> bool:
    kind = str(_detail(row).get("type") or "").lower()
    return any(word in kind for word in _MISSED_WORDS)


def _first(values: Iterable[datetime | None]) -> datetime | None:
    found = [value for value in values if value is not None]
    return min(found) if found else None


def facts_from_events(
    conversation_id: str,
    rasa_events: Sequence[Mapping[str, Any]],
    product_rows: Sequence[Any],
    *,
    low_confidence: float,
) -> ConversationFacts | None:
    """The facts of one conversation from its Rasa events (in the order Rasa wrote them) and its
    product rows (mappings or :class:`~bot.ops.analytics.store.EventRow`); ``None`` when neither
    has anything with a time. The rules are the module's documentation."""
    timed = sorted(
        ((at, index, row) for index, row in enumerate(product_rows) if (at := _utc(_field(row, "at")))),
        key=lambda item: (item[0], item[1]),
    )
    rows = [row for _, _, row in timed]
    times: list[datetime] = [at for at, _, _ in timed]

    def rows_of(kind: str) -> list[Any]:
        return [row for row in rows if _field(row, "kind") == kind]

    openers = [row for row in rows_of("sent") if _field(row, "message_kind") == "opener"]
    opener = openers[0] if openers else None
    contacted_at = _utc(_field(opener, "at")) if opener is not None else None

    user_times: list[datetime] = []
    metadata_values: dict[str, str] = {}
    verified_at = plan_offered_at = None
    user_turns = fallbacks = low = 0
    turn_fell_back = False
    active_form: str | None = None
    last_action: str | None = None
    for event in rasa_events:
        at = _stamp(event)
        if at is not None:
            times.append(at)
        kind = event.get("event")
        if kind == "user":
            if is_trigger(event):
                continue
            user_turns += 1
            turn_fell_back = False
            if at is not None:
                user_times.append(at)
            name, confidence = _intent(event)
            if name == FALLBACK_INTENT:
                fallbacks += 1
                turn_fell_back = True
            if confidence is not None and confidence < low_confidence:
                low += 1
            metadata = event.get("metadata") or {}
            if isinstance(metadata, Mapping):
                for key in ("channel", "language", "creditor", "account_id"):
                    if metadata.get(key) and key not in metadata_values:
                        metadata_values[key] = str(metadata[key])
        elif kind == "action":
            name = str(event.get("name") or "")
            if name in FALLBACK_ACTIONS and user_turns and not turn_fell_back:
                fallbacks += 1
                turn_fell_back = True
            if name in PLAN_OFFER_STEPS and plan_offered_at is None:
                plan_offered_at = at
            if name and is_step(name):
                last_action = name
        elif kind == "active_loop":
            name = event.get("name")
            active_form = str(name) if name else None
            if name == PLAN_FORM and plan_offered_at is None:
                plan_offered_at = at
        elif kind == "slot" and event.get("name") == "verified" and event.get("value") is True:
            if verified_at is None:
                verified_at = at
        elif kind in ("restart", "session_started"):
            active_form = None
    if not times:
        return None

    replied_at = next((at for at in user_times if contacted_at is None or at >= contacted_at), None)
    payments = rows_of("payment")
    closed = [row for row in rows_of("closed") if _field(row, "outcome")]
    escalations = rows_of("escalated")
    reasons: list[str] = []
    for row in escalations:
        reason = _field(row, "reason")
        if reason and str(reason) not in reasons:
            reasons.append(str(reason))

    def described(name: str) -> str | None:
        if opener is not None and _field(opener, name):
            return str(_field(opener, name))
        for row in rows:
            if _field(row, name):
                return str(_field(row, name))
        return metadata_values.get(name)

    account_id = described("account_id") or account_id_of(conversation_id)
    return ConversationFacts(
        conversation_id=conversation_id,
        account_id=account_id,
        started_at=min(times),
        last_at=max(times),
        channel=described("channel"),
        language=described("language"),
        creditor=described("creditor"),
        opener_variant=str(_field(opener, "opener_variant"))
        if opener and _field(opener, "opener_variant")
        else None,
        contacted_at=contacted_at,
        replied_at=replied_at,
        verified_at=verified_at,
        plan_offered_at=plan_offered_at,
        plan_created_at=_first(_utc(_field(row, "at")) for row in rows_of("plan_created")),
        first_payment_at=_first(_utc(_field(row, "at")) for row in payments if not _is_missed(row)),
        plan_missed_at=_first(_utc(_field(row, "at")) for row in payments if _is_missed(row)),
        opted_out_at=_first(_utc(_field(row, "at")) for row in rows_of("opted_out")),
        escalated_at=_first(_utc(_field(row, "at")) for row in escalations),
        escalation_reasons=tuple(reasons),
        outcome=str(_field(closed[-1], "outcome")) if closed else None,
        user_turns=user_turns,
        fallbacks=fallbacks,
        low_confidence=low,
        last_step=active_form or last_action,
    )


_FIRST_TIMES = (
    "contacted_at", "replied_at", "verified_at", "plan_offered_at", "plan_created_at",
    "first_payment_at", "plan_missed_at", "opted_out_at", "escalated_at",
)  # fmt: skip
_COUNTS = ("user_turns", "fallbacks", "low_confidence")
_NAMES = ("account_id", "channel", "language", "creditor", "opener_variant", "outcome", "last_step")


def _merged(stored: ConversationFacts | None, new: ConversationFacts) -> ConversationFacts:
    """``new`` without forgetting what ``stored`` knew (its rows may have gone with retention)."""
    if stored is None:
        return new
    changes: dict[str, Any] = {
        "started_at": min(stored.started_at, new.started_at),
        "last_at": max(stored.last_at, new.last_at),
        "escalation_reasons": tuple(dict.fromkeys(stored.escalation_reasons + new.escalation_reasons)),
    }
    for name in _FIRST_TIMES:
        changes[name] = _first((getattr(stored, name), getattr(new, name)))
    for name in _COUNTS:
        changes[name] = max(getattr(stored, name), getattr(new, name))
    for name in _NAMES:
        changes[name] = getattr(new, name) if getattr(new, name) is not None else getattr(stored, name)
    changes["tags"], changes["reviewed"] = stored.tags, stored.reviewed
    changes["reviewed_by"], changes["reviewed_at"] = stored.reviewed_by, stored.reviewed_at
    return dataclasses.replace(new, **changes)


# --- rows <-> facts --------------------------------------------------------------------------------

#: The columns :func:`summarise` writes (ops' marks are not among them).
_FACT_COLUMNS = tuple(
    column.name
    for column in CONVERSATIONS.columns
    if column.name not in ("conversation_id", "reviewed", "reviewed_by", "reviewed_at")
)


def _values(facts: ConversationFacts) -> dict[str, Any]:
    values: dict[str, Any] = {"conversation_id": facts.conversation_id}
    for name in _FACT_COLUMNS:
        value = getattr(facts, name)
        if name == "escalation_reasons":
            value = json.dumps(list(value)) if value else None
        elif isinstance(value, str):
            length = getattr(CONVERSATIONS.c[name].type, "length", None)
            value = value[:length] if length else value
        values[name] = value
    values["reviewed"] = facts.reviewed
    values["reviewed_by"] = facts.reviewed_by
    values["reviewed_at"] = facts.reviewed_at
    return values


def _facts(row: Mapping[str, Any], tags: Sequence[str] = ()) -> ConversationFacts:
    values = {name: row[name] for name in _FACT_COLUMNS}
    raw = row["escalation_reasons"]
    try:
        reasons = json.loads(raw) if raw else []
    except ValueError:
        reasons = []
    values["escalation_reasons"] = tuple(str(reason) for reason in reasons)
    return ConversationFacts(
        conversation_id=row["conversation_id"], **values, tags=tuple(tags), reviewed=bool(row["reviewed"]),
        reviewed_by=row["reviewed_by"], reviewed_at=row["reviewed_at"],
    )  # fmt: skip


def _dialect(connection: Connection) -> Any:
    name = connection.dialect.name
    if name == "postgresql":
        return postgresql
    if name == "sqlite":
        return sqlite
    raise AnalyticsError(f"the analytics store runs on SQLite or PostgreSQL, not {name}")


def _upsert(connection: Connection, values: list[dict[str, Any]], columns: Sequence[str]) -> None:
    if not values:
        return
    insert = _dialect(connection).insert(CONVERSATIONS)
    statement = insert.on_conflict_do_update(
        index_elements=["conversation_id"], set_={name: insert.excluded[name] for name in columns}
    )
    connection.execute(statement, values)


def _tags_of(connection: Connection, ids: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        query = (
            sa.select(CONVERSATION_TAGS.c.conversation_id, CONVERSATION_TAGS.c.tag)
            .where(CONVERSATION_TAGS.c.conversation_id.in_(chunk))
            .order_by(CONVERSATION_TAGS.c.tag)
        )
        for conversation_id, name in connection.execute(query):
            found.setdefault(conversation_id, []).append(name)
    return found


def _stored(connection: Connection, ids: Sequence[str]) -> dict[str, ConversationFacts]:
    stored: dict[str, ConversationFacts] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        query = sa.select(CONVERSATIONS).where(CONVERSATIONS.c.conversation_id.in_(chunk))
        for row in connection.execute(query).mappings():
            stored[row["conversation_id"]] = _facts(row)
    return stored


def save_facts(store: AnalyticsStore, facts: Iterable[ConversationFacts]) -> int:
    """Store ``facts`` as they are, tags and reviewed mark included (a conversation stored before
    is replaced); return how many. For tests and imports: :func:`summarise` builds them from events."""
    values: dict[str, dict[str, Any]] = {}
    tags: dict[str, tuple[str, ...]] = {}
    for item in facts:
        values[item.conversation_id] = _values(item)
        tags[item.conversation_id] = tuple(dict.fromkeys(valid_tag(name) for name in item.tags))
    if not values:
        return 0
    now = store.clock.now()
    ids = list(values)
    with store.transaction() as connection:
        _upsert(connection, list(values.values()), [*_FACT_COLUMNS, "reviewed", "reviewed_by", "reviewed_at"])
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            connection.execute(
                sa.delete(CONVERSATION_TAGS).where(CONVERSATION_TAGS.c.conversation_id.in_(chunk))
            )
        rows = [
            {"conversation_id": cid, "tag": name, "tagged_by": None, "tagged_at": now}
            for cid, names in tags.items()
            for name in names
        ]
        if rows:
            connection.execute(sa.insert(CONVERSATION_TAGS), rows)
    return len(values)


# --- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactsQuery:
    """Which conversations to list: every filter given must hold (``None``: any). ``since`` and
    ``until`` bound ``started_at`` (``since <= started_at < until``); newest first."""

    since: datetime | None = None
    until: datetime | None = None
    channel: str | None = None
    language: str | None = None
    creditor: str | None = None
    opener_variant: str | None = None
    outcome: str | None = None
    escalated: bool | None = None
    opted_out: bool | None = None
    had_fallback: bool | None = None
    low_confidence: bool | None = None
    min_turns: int | None = None
    max_turns: int | None = None
    tag: str | None = None
    reviewed: bool | None = None
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ReviewError(f"{name} must be a time with its zone")
        for name in ("min_turns", "max_turns"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ReviewError(f"{name} cannot be negative")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ReviewError(f"limit must be between 1 and {MAX_LIMIT}")
        if self.offset < 0:
            raise ReviewError("offset cannot be negative")


def _where(query: FactsQuery) -> list[Any]:
    table = CONVERSATIONS
    where: list[Any] = []
    if query.since is not None:
        where.append(table.c.started_at >= query.since)
    if query.until is not None:
        where.append(table.c.started_at < query.until)
    for name in ("channel", "language", "creditor", "opener_variant", "outcome"):
        value = getattr(query, name)
        if value is not None:
            where.append(table.c[name] == value)
    for name, column in (("escalated", table.c.escalated_at), ("opted_out", table.c.opted_out_at)):
        value = getattr(query, name)
        if value is not None:
            where.append(column.isnot(None) if value else column.is_(None))
    for name, column in (("had_fallback", table.c.fallbacks), ("low_confidence", table.c.low_confidence)):
        value = getattr(query, name)
        if value is not None:
            where.append(column > 0 if value else column == 0)
    if query.min_turns is not None:
        where.append(table.c.user_turns >= query.min_turns)
    if query.max_turns is not None:
        where.append(table.c.user_turns <= query.max_turns)
    if query.tag is not None:
        tags = CONVERSATION_TAGS
        where.append(
            sa.exists().where(tags.c.conversation_id == table.c.conversation_id, tags.c.tag == query.tag)
        )
    if query.reviewed is not None:
        where.append(table.c.reviewed == (sa.true() if query.reviewed else sa.false()))
    return where


def load_facts(store: AnalyticsStore, query: FactsQuery) -> list[ConversationFacts]:
    """The conversations ``query`` selects, newest first, one page (``limit``, ``offset``)."""
    table = CONVERSATIONS
    select = (
        sa.select(table)
        .where(*_where(query))
        .order_by(table.c.started_at.desc(), table.c.conversation_id.desc())
        .limit(query.limit)
        .offset(query.offset)
    )
    with store.engine.connect() as connection:
        rows = connection.execute(select).mappings().all()
        tags = _tags_of(connection, [row["conversation_id"] for row in rows])
    return [_facts(row, tags.get(row["conversation_id"], ())) for row in rows]


def count_facts(store: AnalyticsStore, query: FactsQuery) -> int:
    """How many conversations ``query`` selects (every page)."""
    select = sa.select(sa.func.count()).select_from(CONVERSATIONS).where(*_where(query))
    with store.engine.connect() as connection:
        return int(connection.execute(select).scalar_one())


def load_one(store: AnalyticsStore, conversation_id: str) -> ConversationFacts | None:
    """One conversation's facts (``None``: not summarised yet, or gone)."""
    with store.engine.connect() as connection:
        row = (
            connection.execute(
                sa.select(CONVERSATIONS).where(CONVERSATIONS.c.conversation_id == conversation_id)
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        tags = _tags_of(connection, [conversation_id]).get(conversation_id, [])
    return _facts(row, tags)


def distinct_values(store: AnalyticsStore, column: str) -> list[str]:
    """The values ``column`` (channel, language, creditor, opener_variant, outcome) takes, sorted:
    the choices of the review page's filters."""
    if column not in ("channel", "language", "creditor", "opener_variant", "outcome", "tag"):
        raise ReviewError(f"no filter choices for {column!r}")
    if column == "tag":
        select = sa.select(CONVERSATION_TAGS.c.tag).distinct().order_by(CONVERSATION_TAGS.c.tag)
    else:
        col = CONVERSATIONS.c[column]
        select = sa.select(col).where(col.isnot(None)).distinct().order_by(col)
    with store.engine.connect() as connection:
        return [str(value) for (value,) in connection.execute(select)]


# --- ops' marks ------------------------------------------------------------------------------------


def _require(connection: Connection, conversation_id: str) -> None:
    select = sa.select(CONVERSATIONS.c.conversation_id).where(
        CONVERSATIONS.c.conversation_id == conversation_id
    )
    if connection.execute(select).first() is None:
        raise NotFound("no such conversation")


def tag(store: AnalyticsStore, conversation_id: str, name: str, by: str, now: datetime) -> bool:
    """Tag the conversation ``name`` (validated: :func:`valid_tag`); ``False`` when it already was.
    Raises :class:`~bot.errors.NotFound` for a conversation not in the table."""
    name = valid_tag(name)
    with store.transaction() as connection:
        _require(connection, conversation_id)
        insert = (
            _dialect(connection)
            .insert(CONVERSATION_TAGS)
            .values(conversation_id=conversation_id, tag=name, tagged_by=by[:64], tagged_at=now)
        )
        added = connection.execute(insert.on_conflict_do_nothing(index_elements=["conversation_id", "tag"]))
        return bool(added.rowcount)


def untag(store: AnalyticsStore, conversation_id: str, name: str, by: str, now: datetime) -> bool:
    """Take the tag ``name`` off the conversation; ``False`` when it did not have it. ``by`` and
    ``now`` are for the signature's symmetry with :func:`tag` (removing leaves no trace)."""
    del by, now
    name = valid_tag(name)
    with store.transaction() as connection:
        _require(connection, conversation_id)
        removed = connection.execute(
            sa.delete(CONVERSATION_TAGS).where(
                CONVERSATION_TAGS.c.conversation_id == conversation_id, CONVERSATION_TAGS.c.tag == name
            )
        )
        return bool(removed.rowcount)


def mark_reviewed(
    store: AnalyticsStore, conversation_id: str, by: str, now: datetime, reviewed: bool = True
) -> None:
    """Mark the conversation reviewed by ``by`` at ``now`` (or not reviewed: ``reviewed=False``)."""
    with store.transaction() as connection:
        _require(connection, conversation_id)
        connection.execute(
            sa.update(CONVERSATIONS)
            .where(CONVERSATIONS.c.conversation_id == conversation_id)
            .values(
                reviewed=reviewed,
                reviewed_by=by[:64] if reviewed else None,
                reviewed_at=now if reviewed else None,
            )
        )


# --- keeping the table up to date ----------------------------------------------------------------


def _cursor(connection: Connection, name: str) -> int:
    select = sa.select(INGEST_CURSORS.c.last_id).where(INGEST_CURSORS.c.stream == name)
    value = connection.execute(select).scalar_one_or_none()
    try:
        return int(value) if value is not None else 0
    except ValueError:
        raise AnalyticsError(f"the cursor {name} is not a row id: {value!r}") from None


def _set_cursor(connection: Connection, name: str, last_id: int, now: datetime) -> None:
    insert = (
        _dialect(connection).insert(INGEST_CURSORS).values(stream=name, last_id=str(last_id), updated_at=now)
    )
    connection.execute(
        insert.on_conflict_do_update(
            index_elements=["stream"],
            set_={"last_id": insert.excluded.last_id, "updated_at": insert.excluded.updated_at},
        )
    )


_SUMMARY_CURSORS = ((SUMMARY_EVENTS_CURSOR, RASA_EVENTS), (SUMMARY_PRODUCT_CURSOR, PRODUCT_EVENTS))


def clamp_cursors(connection: Connection, now: datetime) -> None:
    """After rows were deleted (retention), put each summary cursor back to its table's highest
    id when it is past it. SQLite hands the highest id deleted out again (the tables have no
    ``AUTOINCREMENT``): run in the deleting transaction, this keeps the rows written next after
    the cursor. On PostgreSQL ids are never reused and this changes nothing that matters."""
    for name, table in _SUMMARY_CURSORS:
        cursor = _cursor(connection, name)
        if not cursor:
            continue
        highest = _highest(connection, table)
        if highest < cursor:
            _set_cursor(connection, name, highest, now)


def _conversation_of(conversation_id: str | None, account_id: str | None) -> str | None:
    if conversation_id:
        return conversation_id
    return f"acct-{account_id}" if account_id else None


def rasa_events_of(connection: Connection, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Each conversation's Rasa events (decoded, in the order Rasa wrote them); unreadable rows skipped."""
    found: dict[str, list[dict[str, Any]]] = {}
    table = RASA_EVENTS
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        select = (
            sa.select(table.c.sender_id, table.c.data)
            .where(table.c.sender_id.in_(chunk))
            .order_by(table.c.id)
        )
        for sender_id, data in connection.execute(select):
            try:
                event = json.loads(data) if data else None
            except ValueError:
                continue
            if isinstance(event, dict):
                found.setdefault(sender_id, []).append(event)
    return found


def product_rows_of(connection: Connection, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Each conversation's product rows (a row without a conversation goes to its account's own
    conversation ``acct-<account id>``), oldest first."""
    found: dict[str, list[dict[str, Any]]] = {}
    table = PRODUCT_EVENTS
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        accounts = [a for a in (account_id_of(c) for c in chunk if "~" not in c) if a]
        condition = table.c.conversation_id.in_(chunk)
        if accounts:
            condition = sa.or_(
                condition, sa.and_(table.c.conversation_id.is_(None), table.c.account_id.in_(accounts))
            )
        select = sa.select(table).where(condition).order_by(table.c.at, table.c.id)
        for row in connection.execute(select).mappings():
            owner = _conversation_of(row["conversation_id"], row["account_id"])
            if owner is not None and owner in chunk:
                found.setdefault(owner, []).append(dict(row))
    return found


def summarise(store: AnalyticsStore, *, low_confidence: float, batch: int = DEFAULT_BATCH) -> int:
    """Bring the ``conversations`` table up to date with the rows added since the last run (up to
    ``batch`` new rows of each table per transaction, cursors moved in it); return how many
    conversations were written (each once, however many batches touched it)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    written: set[str] = set()
    while True:
        with store.transaction() as connection:
            events_from = _cursor(connection, SUMMARY_EVENTS_CURSOR)
            product_from = _cursor(connection, SUMMARY_PRODUCT_CURSOR)
            # Rows deleted from the top by hand (retention clamps the cursors itself): ids below
            # the cursor may be new ones, so read every row again (recomputing is idempotent).
            if events_from and _highest(connection, RASA_EVENTS) < events_from:
                events_from = 0
            if product_from and _highest(connection, PRODUCT_EVENTS) < product_from:
                product_from = 0
            new_events = connection.execute(
                sa.select(RASA_EVENTS.c.id, RASA_EVENTS.c.sender_id)
                .where(RASA_EVENTS.c.id > events_from)
                .order_by(RASA_EVENTS.c.id)
                .limit(batch)
            ).all()
            new_rows = connection.execute(
                sa.select(PRODUCT_EVENTS.c.id, PRODUCT_EVENTS.c.conversation_id, PRODUCT_EVENTS.c.account_id)
                .where(PRODUCT_EVENTS.c.id > product_from)
                .order_by(PRODUCT_EVENTS.c.id)
                .limit(batch)
            ).all()
            if not new_events and not new_rows:
                return len(written)
            touched = {sender for _, sender in new_events if sender}
            touched |= {c for _, cid, aid in new_rows if (c := _conversation_of(cid, aid))}
            written.update(_recompute(connection, sorted(touched), low_confidence))
            now = store.clock.now()
            if new_events:
                _set_cursor(connection, SUMMARY_EVENTS_CURSOR, int(new_events[-1][0]), now)
            if new_rows:
                _set_cursor(connection, SUMMARY_PRODUCT_CURSOR, int(new_rows[-1][0]), now)
        if len(new_events) < batch and len(new_rows) < batch:
            return len(written)


def _highest(connection: Connection, table: sa.Table) -> int:
    return int(connection.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0)


def _recompute(connection: Connection, ids: list[str], low_confidence: float) -> list[str]:
    """Recompute and upsert the conversations ``ids``; return those written."""
    events = rasa_events_of(connection, ids)
    rows = product_rows_of(connection, ids)
    stored = _stored(connection, ids)
    values = []
    for conversation_id in ids:
        facts = facts_from_events(
            conversation_id, events.get(conversation_id, []), rows.get(conversation_id, []),
            low_confidence=low_confidence,
        )  # fmt: skip
        if facts is None:
            continue
        values.append(_values(_merged(stored.get(conversation_id), facts)))
    _upsert(connection, values, _FACT_COLUMNS)
    return [value["conversation_id"] for value in values]
