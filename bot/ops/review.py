"""One conversation, turn by turn, for the review page, and *Save as test story* from SQL.

:func:`conversation_turns` reads the conversation's Rasa events (``events``, in the order Rasa
wrote them) and its product rows (``product_events``) and interleaves them by time:

- each message the person wrote (``user``): the text, the intent and its confidence, the entities,
  whether it was under the review threshold or fell back, and the actions that ran after it (up to
  the next message; ``action_listen`` left out);
- the product's trigger (an opener through ``trigger_intent``), with the actions it started;
- what the bot said (``bot``);
- the gate's decisions on the product's messages (sent, deferred, withheld with the rule) and
  their delivery statuses;
- what happened to the conversation: verified, a plan offered and created, a payment, escalated,
  queued for an agent, claimed, handed back, closed with the outcome, opted out or in, paused
  and resumed (an agent's takeover).

What people wrote is shown to ops (they need it) and never logged. The metadata the worker sends
(the address among it) is not shown.

:class:`SqlTrackerSource` gives :func:`bot.ops.stories.export_story` a tracker built from the
``events`` rows, so a conversation can become a test story after Rasa's own tracker is gone.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.ops.analytics.conversations import (
    FALLBACK_ACTIONS,
    FALLBACK_INTENT,
    is_trigger,
    product_rows_of,
    rasa_events_of,
)
from bot.ops.analytics.store import AnalyticsStore
from bot.ops.stories import StoryError, export_story

if TYPE_CHECKING:
    from bot.store.accounts import AccountStore

__all__ = ["Entity", "SqlTrackerSource", "Turn", "conversation_turns", "save_test_story", "turns_from_events"]

#: Turn kinds.
USER, TRIGGER, BOT, GATE, DELIVERY, EVENT = "user", "trigger", "bot", "gate", "delivery", "event"

#: How the product's events read on the page.
_EVENT_LABELS = {
    "escalated": "Escalated",
    "queued_for_agent": "Queued for an agent",
    "claimed": "Claimed by an agent",
    "reassigned": "Reassigned",
    "claim_released": "Claim released",
    "handed_back": "Handed back to the bot",
    "closed": "Closed",
    "plan_created": "Plan created",
    "plan_replaced": "Plan replaced",
    "payment": "Payment",
    "opted_out": "Opted out",
    "opted_in": "Opted in",
}
_GATE = {"sent": "Sent", "deferred": "Deferred", "withheld": "Withheld"}
_NOT_SHOWN_ACTIONS = frozenset({"action_listen"})


@dataclass(frozen=True)
class Entity:
    """An entity the NLU found in a message."""

    entity: str
    value: str
    role: str | None = None


@dataclass(frozen=True)
class Turn:
    """One line of the conversation (``kind``: user, trigger, bot, gate, delivery, event).

    ``user``/``trigger``: ``text``, ``intent``, ``confidence``, ``entities``, ``low_confidence``,
    ``fallback``, ``actions`` (what ran after it). ``bot``: ``text``. ``gate``: ``label`` (Sent,
    Deferred, Withheld), ``rule``, ``detail`` (the reason), ``message_kind``. ``delivery``:
    ``label`` (the status), ``detail`` (the error code). ``event``: ``label``, ``detail`` (the
    reason, the outcome, the payment's type), ``agent``.
    """

    kind: str
    at: datetime | None
    text: str | None = None
    intent: str | None = None
    confidence: float | None = None
    entities: tuple[Entity, ...] = ()
    low_confidence: bool = False
    fallback: bool = False
    actions: tuple[str, ...] = ()
    label: str | None = None
    rule: str | None = None
    detail: str | None = None
    message_kind: str | None = None
    agent: str | None = None
    channel: str | None = None


def _stamp(event: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(event["timestamp"]), timezone.utc)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


def _utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return None


def _entities(event: Mapping[str, Any]) -> tuple[Entity, ...]:
    parse = event.get("parse_data") or {}
    raw = (parse.get("entities") if isinstance(parse, Mapping) else None) or event.get("entities") or []
    found = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, Mapping) and item.get("entity"):
            value = item.get("value")
            found.append(
                Entity(entity=str(item["entity"]), value="" if value is None else str(value),
                       role=str(item["role"]) if item.get("role") else None)
            )  # fmt: skip
    return tuple(found)


def _intent(event: Mapping[str, Any]) -> tuple[str | None, float | None]:
    parse = event.get("parse_data") or {}
    intent = (parse.get("intent") if isinstance(parse, Mapping) else None) or event.get("intent") or {}
    if not isinstance(intent, Mapping):
        return None, None
    try:
        confidence = float(intent["confidence"]) if intent.get("confidence") is not None else None
    except (TypeError, ValueError):
        confidence = None
    name = intent.get("name")
    return (str(name) if name else None), confidence


class _Message:
    """A user turn being built: the actions after it are added as they come."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.actions: list[str] = []

    def done(self) -> Turn:
        fallback = self.turn.fallback or any(action in FALLBACK_ACTIONS for action in self.actions)
        return dataclasses.replace(self.turn, actions=tuple(self.actions), fallback=fallback)


def _rasa_turns(events: Sequence[Mapping[str, Any]], low_confidence: float) -> list[Turn]:
    turns: list[Turn | _Message] = []
    current: _Message | None = None
    for event in events:
        kind = event.get("event")
        at = _stamp(event)
        if kind == "user":
            intent, confidence = _intent(event)
            trigger = is_trigger(event)
            text = event.get("text")
            turn = Turn(
                kind=TRIGGER if trigger else USER, at=at, text=str(text) if text is not None else None,
                intent=intent, confidence=confidence, entities=_entities(event),
                low_confidence=(not trigger and confidence is not None and confidence < low_confidence),
                fallback=intent == FALLBACK_INTENT,
            )  # fmt: skip
            current = _Message(turn)
            turns.append(current)
        elif kind == "action":
            name = str(event.get("name") or "")
            if current is not None and name and name not in _NOT_SHOWN_ACTIONS:
                current.actions.append(name)
        elif kind == "bot":
            text = event.get("text")
            if text:
                turns.append(Turn(kind=BOT, at=at, text=str(text)))
        elif kind == "slot" and event.get("name") == "verified" and event.get("value") is True:
            turns.append(Turn(kind=EVENT, at=at, label="Verified"))
        elif kind == "pause":
            turns.append(Turn(kind=EVENT, at=at, label="Bot paused (an agent has the conversation)"))
        elif kind == "resume":
            turns.append(Turn(kind=EVENT, at=at, label="Bot resumed"))
        elif kind == "restart":
            turns.append(Turn(kind=EVENT, at=at, label="Conversation restarted"))
    return [item.done() if isinstance(item, _Message) else item for item in turns]


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _product_turn(row: Mapping[str, Any]) -> Turn | None:
    kind = str(row.get("kind") or "")
    at = _utc(row.get("at"))
    channel = _text(row.get("channel"))
    if kind in _GATE:
        return Turn(kind=GATE, at=at, label=_GATE[kind], rule=_text(row.get("rule")),
                    detail=_text(row.get("reason")), message_kind=_text(row.get("message_kind")),
                    channel=channel)  # fmt: skip
    if kind.startswith("delivery_"):
        code = _text(_detail(row.get("detail")).get("error_code"))
        return Turn(kind=DELIVERY, at=at, label=kind.removeprefix("delivery_"), rule=_text(row.get("rule")),
                    detail=code, channel=channel)  # fmt: skip
    if kind in _EVENT_LABELS:
        detail = _text(row.get("outcome")) or _text(row.get("reason"))
        if kind == "payment":
            detail = _text(_detail(row.get("detail")).get("type"))
        return Turn(kind=EVENT, at=at, label=_EVENT_LABELS[kind], detail=detail,
                    agent=_text(row.get("agent")), channel=channel)  # fmt: skip
    if kind.startswith(("console:", "agent.")):
        return Turn(kind=EVENT, at=at, label=kind, agent=_text(row.get("agent")))
    return None  # "other": nothing to show


def _detail(detail: Any) -> Mapping[str, Any]:
    """A row's detail: JSON text in SQL, a mapping in an ``EventRow``."""
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            return {}
    return detail if isinstance(detail, Mapping) else {}


def turns_from_events(
    rasa_events: Sequence[Mapping[str, Any]],
    product_rows: Sequence[Mapping[str, Any]],
    *,
    low_confidence: float,
) -> list[Turn]:
    """The turns of one conversation (pure): Rasa's in the order Rasa wrote them, the product's
    put among them by time (at the same time, after Rasa's)."""
    rasa = _rasa_turns(rasa_events, low_confidence)
    product = sorted(
        (turn for turn in (_product_turn(row) for row in product_rows) if turn is not None),
        key=lambda turn: turn.at or datetime.min.replace(tzinfo=timezone.utc),
    )
    merged: list[Turn] = []
    waiting = list(product)
    for turn in rasa:
        while waiting and turn.at is not None and waiting[0].at is not None and waiting[0].at < turn.at:
            merged.append(waiting.pop(0))
        merged.append(turn)
    return merged + waiting


def conversation_turns(store: AnalyticsStore, conversation_id: str, *, low_confidence: float) -> list[Turn]:
    """The turns of ``conversation_id`` from the analytics store (empty: nothing stored for it)."""
    with store.engine.connect() as connection:
        events = rasa_events_of(connection, [conversation_id]).get(conversation_id, [])
        rows = product_rows_of(connection, [conversation_id]).get(conversation_id, [])
    return turns_from_events(events, rows, low_confidence=low_confidence)


class SqlTrackerSource:
    """A :class:`bot.ops.stories.TrackerSource` reading the ``events`` rows Rasa's SQL event broker
    wrote: the events in order and the slots they leave set (as Rasa's tracker JSON has them)."""

    def __init__(self, store: AnalyticsStore) -> None:
        self.store = store

    def tracker(self, conversation_id: str) -> dict[str, Any]:
        """``{"sender_id", "events", "slots"}``; no events: an empty list (export_story refuses it)."""
        with self.store.engine.connect() as connection:
            events = rasa_events_of(connection, [conversation_id]).get(conversation_id, [])
        slots: dict[str, Any] = {}
        for event in events:
            kind = event.get("event")
            if kind == "slot" and event.get("name"):
                slots[str(event["name"])] = event.get("value")
            elif kind == "restart":
                slots = {}
        return {"sender_id": conversation_id, "events": events, "slots": slots}


def save_test_story(
    store: AnalyticsStore, conversation_id: str, accounts: AccountStore | None, out_dir: Path
) -> Path:
    """Write the conversation as an anonymised Rasa test story under ``out_dir`` from its SQL
    events (:func:`bot.ops.stories.export_story`); raises :class:`~bot.ops.stories.StoryError`
    when it has nothing to test."""
    try:
        return export_story(SqlTrackerSource(store), conversation_id, accounts, out_dir)
    except StoryError:
        raise
    except (OSError, ValueError) as exc:
        # A folder that cannot be written, a domain that cannot be read: say so, not a 500.
        raise StoryError(f"the story could not be written: {exc}") from exc
