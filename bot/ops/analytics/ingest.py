"""Copies the product's own events from its Redis streams into the analytics store.

Five streams, each read from its cursor (kept in SQL, moved in the same transaction as the rows
it covers: a kill between reading and committing loses nothing and stores nothing twice):

- ``audit`` (``keys.audit``): every compliance-gate decision (``sent``, ``deferred``, ``withheld``
  with the rule and reason), the agents' console actions (``console:*``; ``console:opt_out`` is an
  ``opted_out``), agent accounts (``agent.*``), ops' switches (``ops:*``: an opener wording retired
  or restored), opt-outs (``opt_out``) and instalments paid or missed (``instalment.paid`` /
  ``instalment.missed``: both ``payment`` rows, ``detail["type"]`` telling which). All of it is the
  audit: kept ``retention.records_years``. Its ``handoff`` entries repeat ``console_events`` and are
  not stored twice.
- ``console_events`` (``keys.console_events``): hand-off changes: ``queued_for_agent``,
  ``claimed``, ``reassigned``, ``claim_released``, ``handed_back``, ``closed`` (with the outcome).
- ``events`` (``keys.events``): the creditor events: ``plan_created``, ``plan_replaced``,
  ``payment`` (``payment.*`` / ``instalment.*``, when the product announces them).
- ``deliveries`` (``keys.deliveries``): each delivery outcome kept (``delivery_sent``,
  ``delivery_delivered``, ``delivery_failed``, ``delivery_undelivered``; a gate's withholding
  carries its rule), with the provider's error code and never its message.
- ``agent_queue`` (``keys.agent_queue``): ``escalated``, with the reason (never the person's words
  the entry carries: they belong to the transcript, not the analytics).

Rasa's own conversation events come by a sixth stream (``keys.rasa_events``, written by Rasa's
event broker ``dialogue/event_broker.py``): they are copied as they are into Rasa's ``events``
table (what Rasa's SQL event broker used to write), in order, with the cursor in the same
transaction, and the stream is trimmed up to what is stored.

A stream trimmed past what was read (the ingester down longer than the stream's MAXLEN covers)
is reported: a warning and one ``ingest_gap`` row, so the numbers say they miss something.

Rows with an account get its creditor, language and opener wording from Redis. An entry of a kind
not known here is kept as ``other`` (its own kind in ``detail``); an entry that cannot be read (no
time, a broken body) is skipped with a log line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import redis

from bot.compliance.rules import PAUSE_REASONS
from bot.ops.analytics.store import AnalyticsStore, EventRow
from bot.store.connection import Keys
from channels.base import DeliveryStatus

__all__ = ["KINDS", "REQUIRED_KINDS", "STREAMS", "Ingester", "MalformedEntry", "map_entry"]

logger = logging.getLogger(__name__)

#: The gate's verdicts as event kinds.
_VERDICTS = {"send": "sent", "defer": "deferred", "block": "withheld"}
#: Hand-off changes as event kinds; the rest (touch, watch, unwatch) are not analytics.
_HANDOFF = {
    "escalate": "queued_for_agent",
    "claim": "claimed",
    "reassign": "reassigned",
    "release_idle": "claim_released",
    "hand_back": "handed_back",
    "close": "closed",
}
_HANDOFF_IGNORED = frozenset({"touch", "watch", "unwatch"})
#: Hand-off changes that are an agent's action (the audit of agents' actions: kept for years).
_AGENT_ACTIONS = frozenset({"claimed", "reassigned", "handed_back", "closed"})
_CREDITOR_EVENTS = {"plan.created": "plan_created", "plan.replaced": "plan_replaced"}
#: Escalation reasons that are legal records (a dispute, a claimed payment, a pause the law
#: orders: bot.compliance.rules.PAUSE_REASONS without the crisis).
RECORD_REASONS = frozenset(PAUSE_REASONS) - {"crisis"}

#: Delivery outcomes (``channels.base.DeliveryStatus`` values), as ``delivery_<status>`` kinds.
DELIVERY_STATUSES = frozenset(status.value for status in DeliveryStatus)

#: Every kind this module writes (``console:*``, ``agent.*`` and ``ops:*`` audit kinds are kept as they are).
KINDS = frozenset(
    {*_VERDICTS.values(), *_HANDOFF.values(), *_CREDITOR_EVENTS.values(), "payment", "escalated",
     "opted_out", "opted_in", "other", "ingest_gap", *(f"delivery_{status}" for status in DELIVERY_STATUSES)}
)  # fmt: skip
#: Kinds kept ``retention.records_years`` wherever they come from (every audit entry is too).
REQUIRED_KINDS = frozenset(
    {"opted_out", "opted_in", "plan_created", "plan_replaced", "payment", *_AGENT_ACTIONS}
)


@dataclass(frozen=True)
class Stream:
    """One stream the ingester reads: its name in SQL and how to find its key."""

    name: str
    key: Callable[[Keys], str]


#: The cursor's name for Rasa's own events (``keys.rasa_events``; see :meth:`Ingester.ingest_rasa`).
RASA_STREAM = "rasa_events"

STREAMS: tuple[Stream, ...] = (
    Stream("audit", lambda keys: keys.audit),
    Stream("console_events", lambda keys: keys.console_events),
    Stream("events", lambda keys: keys.events),
    Stream("agent_queue", lambda keys: keys.agent_queue),
    Stream("deliveries", lambda keys: keys.deliveries),
)


class MalformedEntry(ValueError):
    """A stream entry that cannot be read as an event (skipped, with a log line)."""


def map_entry(stream: str, entry_id: str, fields: Mapping[str, str]) -> EventRow | None:
    """The row for one stream entry; ``None`` for an entry that is not analytics (a touch, the
    audit's copy of a hand-off change). Raises :class:`MalformedEntry` for an unreadable one."""
    if stream == "audit":
        return _audit(entry_id, fields)
    if stream == "console_events":
        return _handoff(entry_id, fields)
    if stream == "events":
        return _creditor_event(entry_id, fields)
    if stream == "agent_queue":
        return _escalation(entry_id, fields)
    if stream == "deliveries":
        return _delivery(entry_id, fields)
    raise MalformedEntry(f"unknown stream {stream!r}")


def _audit(entry_id: str, fields: Mapping[str, str]) -> EventRow | None:
    kind = fields.get("kind", "")
    at = _at(fields, entry_id)
    base = EventRow(source="audit", source_id=entry_id, at=at, kind="other", required=True,
                    account_id=fields.get("account_id"), channel=fields.get("channel"),
                    conversation_id=fields.get("conversation_id"))  # fmt: skip
    if "verdict" in fields:
        verdict = _VERDICTS.get(fields["verdict"])
        detail = _some(fields, "until", "added", "zones")
        if verdict is None:
            return replace(base, detail={"verdict": fields["verdict"], **detail})
        return replace(base, kind=verdict, rule=fields.get("rule"), reason=fields.get("reason"),
                       message_kind=kind or None, outbox_id=fields.get("outbox_id"),
                       detail=detail)  # fmt: skip
    if kind == "handoff":
        return None  # the same change as in console_events
    agent = fields.get("by") or fields.get("agent") or fields.get("actor")
    if kind in ("console:opt_out", "console:opt_in", "opt_out", "opt_in"):
        # An agent's (console:...) or the person's own; the address stays out (masked or not).
        opted = "opted_out" if kind.endswith("opt_out") else "opted_in"
        return replace(base, kind=opted, agent=agent if kind.startswith("console:") else None,
                       reason=fields.get("reason"), detail=_some(fields, "by_message", "role"))  # fmt: skip
    if kind in _INSTALMENTS:
        # One kind for both (as the creditor's own payment.* / instalment.* events): the type says
        # paid or missed, and the conversation's facts read a missed one as a broken plan.
        return replace(
            base, kind="payment", detail={"type": kind, **_some(fields, "plan_id", "due", "paid_on")}
        )
    if kind.startswith(("console:", "agent.", "ops:")):
        detail = {k: v for k, v in fields.items() if k not in _AUDIT_COLUMNS and k not in _NEVER_STORED}
        return replace(base, kind=kind, agent=agent, detail=detail)
    return replace(base, detail={"kind": kind, **_some(fields, "by", "role")})


#: Instalments marked paid or missed (``bot.outreach.payments``).
_INSTALMENTS = frozenset({"instalment.paid", "instalment.missed"})
#: Audit fields that have columns of their own.
_AUDIT_COLUMNS = frozenset({"kind", "at", "account_id", "channel", "conversation_id", "by", "agent"})
#: Never copied into SQL: addresses (masked or hashed), free text.
_NEVER_STORED = frozenset({"address", "ip", "text", "note", "body", "detail"})


def _handoff(entry_id: str, fields: Mapping[str, str]) -> EventRow | None:
    event = fields.get("event", "")
    if event in _HANDOFF_IGNORED:
        return None
    at = _at(fields, entry_id)
    kind = _HANDOFF.get(event)
    row = EventRow(
        source="console_events", source_id=entry_id, at=at, kind=kind or "other",
        required=kind in _AGENT_ACTIONS, conversation_id=fields.get("conversation_id"),
        agent=_actor(fields) or fields.get("agent") or None, outcome=fields.get("outcome") or None,
        reason=fields.get("reason") or None, detail=_some(fields, "by", "role", "state"),
    )  # fmt: skip
    if kind is None:
        return replace(row, detail={"event": event, **row.detail})
    return row


def _actor(fields: Mapping[str, str]) -> str | None:
    """The agent who made a hand-off change (``by``), unless the product made it itself."""
    by = fields.get("by", "")
    return by if by and fields.get("role") in ("agent", "supervisor") else None


def _creditor_event(entry_id: str, fields: Mapping[str, str]) -> EventRow:
    event_type = fields.get("type", "")
    try:
        body = json.loads(fields.get("body") or "{}")
    except ValueError:
        raise MalformedEntry("the event's body is not JSON") from None
    if not isinstance(body, dict):
        raise MalformedEntry("the event's body is not an object")
    raw_data = body.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    at = _iso(body.get("created_at")) or _id_time(entry_id)
    if event_type in _CREDITOR_EVENTS:
        kind = _CREDITOR_EVENTS[event_type]
    elif event_type.startswith(("payment.", "instalment.")):
        kind = "payment"
    else:
        kind = "other"
    kept = {k: v for k, v in data.items() if k not in ("payment_link", "account_id", "conversation_id",
                                                       "channel", "created_at")}  # fmt: skip
    return EventRow(
        source="events", source_id=entry_id, at=at, kind=kind, required=kind != "other",
        account_id=_text(data.get("account_id")), conversation_id=_text(data.get("conversation_id")),
        channel=_text(data.get("channel")),
        detail={"type": event_type, "event_id": fields.get("id", ""), **kept},
    )  # fmt: skip


def _delivery(entry_id: str, fields: Mapping[str, str]) -> EventRow:
    """A delivery outcome (``delivery_sent``, ``delivery_delivered``, ``delivery_failed``...): the
    provider's error code, never its message (it may quote the address)."""
    status = fields.get("status", "")
    if status not in DELIVERY_STATUSES:
        raise MalformedEntry(f"unknown delivery status {status[:40]!r}")
    raw = fields.get("at", "")
    try:
        at = datetime.fromisoformat(raw).astimezone(timezone.utc) if raw else _id_time(entry_id)
    except ValueError:
        raise MalformedEntry(f"'at' is not a time: {raw[:40]!r}") from None
    code = fields.get("error_code") or ""
    return EventRow(
        source="deliveries", source_id=entry_id, at=at, kind=f"delivery_{status}",
        conversation_id=fields.get("conversation_id") or None, channel=fields.get("channel") or None,
        outbox_id=fields.get("outbox_id") or None,
        rule=code.removeprefix("compliance:") if code.startswith("compliance:") else None,
        detail={"error_code": code} if code else {},
    )  # fmt: skip


def _escalation(entry_id: str, fields: Mapping[str, str]) -> EventRow:
    reason = fields.get("reason", "")
    return EventRow(
        source="agent_queue", source_id=entry_id, at=_at(fields, entry_id), kind="escalated",
        required=reason in RECORD_REASONS, conversation_id=fields.get("conversation_id") or None,
        account_id=fields.get("account_id") or None, reason=reason or None,
    )  # fmt: skip


def _at(fields: Mapping[str, str], entry_id: str) -> datetime:
    raw = fields.get("at")
    if raw is None or raw == "":
        return _id_time(entry_id)
    try:
        seconds = float(raw)
    except ValueError:
        raise MalformedEntry(f"'at' is not a time: {raw[:40]!r}") from None
    if not 0 < seconds < 32503680000:  # after 1970, before 3000
        raise MalformedEntry(f"'at' is out of range: {raw[:40]!r}")
    return datetime.fromtimestamp(seconds, timezone.utc)


def _id_time(entry_id: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(entry_id.split("-", 1)[0]) / 1000, timezone.utc)
    except ValueError:
        raise MalformedEntry(f"not a stream id: {entry_id!r}") from None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedEntry(f"not an ISO time: {value[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _some(fields: Mapping[str, str], *names: str) -> dict[str, str]:
    return {name: fields[name] for name in names if fields.get(name)}


def _decode(fields: Mapping[bytes, bytes]) -> dict[str, str]:
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in fields.items()}


def _parts(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


def _after(one: str, other: str) -> bool:
    """Stream entry id ``one`` comes after ``other``."""
    return _parts(one) > _parts(other)


def _next(entry_id: str) -> str:
    """The smallest id after ``entry_id``: the first entry a reader from there has not seen."""
    milliseconds, sequence = _parts(entry_id)
    return f"{milliseconds}-{sequence + 1}"


class Ingester:
    """Reads each stream on from its cursor and stores the rows (``run_once``: until caught up)."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys, store: AnalyticsStore) -> None:
        self.redis = client
        self.keys = keys
        self.store = store

    def run_once(self, batch: int = 1000) -> int:
        """Ingest everything new on every stream, ``batch`` entries per transaction; return how
        many rows were added."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        return sum(self.ingest(stream, batch) for stream in STREAMS) + self.ingest_rasa(batch)

    def ingest_rasa(self, batch: int = 1000) -> int:
        """Rasa's events from their stream into the ``events`` table until caught up; the
        stream is trimmed up to the last stored entry (after the commit: a kill in between only leaves
        entries the cursor already skips). Return how many were stored."""
        key = self.keys.rasa_events
        added = 0
        cursor = self.store.cursor(RASA_STREAM)
        if cursor:
            added += self._gap(RASA_STREAM, key, cursor)
        while True:
            entries = self.redis.xrange(key, f"({cursor}" if cursor else "-", "+", count=batch)
            if not entries:
                return added
            events = []
            for raw_id, raw_fields in entries:
                fields = _decode(raw_fields)
                if "data" not in fields:
                    logger.warning("analytics: rasa_events entry %s skipped: no data", raw_id.decode())
                    continue
                events.append((fields.get("sender_id", "")[:255], fields["data"]))
            cursor = entries[-1][0].decode()
            added += self.store.add_rasa_events(events, cursor=(RASA_STREAM, cursor))
            # Up to the last stored entry, which stays: the gap check before Redis 7 (the first
            # entry past the cursor means trimmed unread) must not take our own trim for a loss.
            self.redis.xtrim(key, minid=cursor, approximate=False)
            if len(entries) < batch:
                return added

    def ingest(self, stream: Stream, batch: int = 1000) -> int:
        """Ingest one stream until caught up; return how many rows were added."""
        key = stream.key(self.keys)
        added = 0
        cursor = self.store.cursor(stream.name)
        if cursor:
            added += self._gap(stream.name, key, cursor)
        while True:
            start = f"({cursor}" if cursor else "-"
            entries = self.redis.xrange(key, start, "+", count=batch)
            if not entries:
                return added
            rows = self._rows(stream.name, entries)
            cursor = entries[-1][0].decode()
            added += self.store.add(self._enriched(rows), cursor=(stream.name, cursor))
            if len(entries) < batch:
                return added

    def _gap(self, stream: str, key: str, cursor: str) -> int:
        """Entries trimmed from the stream before they were read (the ingester fell behind the
        stream's MAXLEN, or someone trimmed it): a warning and one ``ingest_gap`` row per gap, so
        the numbers ops read say they are missing something. Redis 7 names the newest entry ever
        removed (exact); before 7, a first entry past the cursor means the trimming reached the
        unread part (entries may have been lost)."""
        try:
            info = self.redis.xinfo_stream(key)
        except redis.ResponseError:
            return 0  # no stream (yet, or deleted whole): nothing to compare
        removed = info.get("max-deleted-entry-id")
        if isinstance(removed, bytes):
            newest_lost, exact = removed.decode(), True
            if newest_lost in ("0-0", "") or not _after(newest_lost, cursor):
                return 0
        else:
            first = info.get("first-entry")
            if not first or not _after(first[0].decode(), _next(cursor)):
                return 0
            newest_lost, exact = first[0].decode(), False
        logger.warning(
            "analytics: the %s stream was trimmed past what was read (after %s, up to %s): %s",
            stream, cursor, newest_lost, "entries were lost" if exact else "entries may have been lost",
        )  # fmt: skip
        row = EventRow(
            source="ingest", source_id=f"{stream}:{newest_lost}", at=_id_time(newest_lost), kind="ingest_gap",
            detail={"stream": stream, "after": cursor, "up_to": newest_lost, "exact": exact},
        )  # fmt: skip
        return self.store.add([row])

    def _rows(self, stream: str, entries: Sequence[tuple[bytes, Mapping[bytes, bytes]]]) -> list[EventRow]:
        rows = []
        for raw_id, raw_fields in entries:
            entry_id = raw_id.decode()
            try:
                row = map_entry(stream, entry_id, _decode(raw_fields))
            except MalformedEntry as exc:
                logger.warning("analytics: %s entry %s skipped: %s", stream, entry_id, exc)
                continue
            if row is not None:
                rows.append(row)
        return rows

    def _enriched(self, rows: list[EventRow]) -> list[EventRow]:
        """Each row with an account gets the account's creditor, language and opener wording."""
        accounts = sorted({row.account_id for row in rows if row.account_id})
        if not accounts:
            return rows
        pipe = self.redis.pipeline(transaction=False)
        for account_id in accounts:
            pipe.hmget(self.keys.account(account_id), ["creditor", "language"])
            pipe.hget(self.keys.account_state(account_id), "opener_variant")
        replies = pipe.execute()
        facts: dict[str, dict[str, Any]] = {}
        for index, account_id in enumerate(accounts):
            creditor, language = (v.decode() if v else None for v in replies[2 * index])
            variant = replies[2 * index + 1]
            wording = variant.decode().split(":", 1)[-1] if variant else None
            facts[account_id] = {"creditor": creditor, "language": language, "opener_variant": wording}
        return [
            replace(row, **{k: v for k, v in facts[row.account_id].items() if getattr(row, k) is None})
            if row.account_id
            else row
            for row in rows
        ]
