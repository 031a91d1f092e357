"""Data minimisation: what people wrote goes after ``retention.transcript_days``; the records the
law requires stay ``retention.records_years``, then go too.

:func:`run_retention` (``debtbot retention run``, and the worker's daily run) deletes:

- in SQL, ``product_events`` rows that are not records (``required`` false) older than the
  transcript cutoff, records older than the records cutoff, and Rasa's event-broker rows
  (``events``: every one of them is transcript or tracker data) older than the transcript cutoff;
  ``conversations`` rows (aggregates: times, counts, names, no text) whose last activity is older
  than the records cutoff, with their tags;
- in Redis, each conversation's history entries older than the transcript cutoff (``XTRIM MINID``;
  a history left empty goes with the addresses the person wrote from), and each Rasa tracker
  (``<prefix>:tracker:<conversation id>``, Rasa 3.6's ``RedisTrackerStore``) whose latest event
  is older than the transcript cutoff.

What stays: the records (opt-outs, disputes, plans, payments, the audit of the gate and of agents'
actions, in SQL and in the streams they came from), and everything newer than its cutoff. Running
it twice deletes nothing more the second time; a tracker Rasa writes while it is looked at is left.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, cast

import redis
import sqlalchemy as sa  # type: ignore[import-untyped]  # 1.4, pinned by Rasa: no stubs

from bot.ops.analytics.conversations import clamp_cursors
from bot.ops.analytics.schema import CONVERSATION_TAGS, CONVERSATIONS, PRODUCT_EVENTS, RASA_EVENTS
from bot.ops.analytics.store import AnalyticsStore
from bot.store.connection import Keys

__all__ = ["Report", "records_cutoff", "run_retention"]

logger = logging.getLogger(__name__)

#: Rasa 3.6's RedisTrackerStore: ``<key_prefix>:tracker:<sender id>`` (rasa.core.tracker_store,
#: DEFAULT_REDIS_TRACKER_STORE_KEY_PREFIX); endpoints.yml gives it our key prefix.
RASA_TRACKER_PREFIX = "tracker:"
#: Keys looked at per SCAN step, rows per SQL step.
_SCAN_COUNT = 500
_ROWS = 1000
#: Rasa's events are appended as they happen, so their ids follow time (roughly: several Rasa
#: servers write at once): the scan stops at the first row this much newer than the cutoff.
_RASA_ORDER_SLACK = timedelta(days=1)

# Trim one history; when nothing is left, the stream and the conversation's contacts go too.
_TRIM_HISTORY = """
local removed = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
if redis.call('XLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
end
return removed
"""


@dataclass(frozen=True)
class Report:
    """What one retention run deleted."""

    transcript_cutoff: datetime
    records_cutoff: datetime
    #: ``product_events`` rows: not records, older than the transcript cutoff / records older
    #: than the records cutoff.
    event_rows: int = 0
    record_rows: int = 0
    #: Rasa's event-broker rows.
    rasa_event_rows: int = 0
    #: ``conversations`` rows (the review's and the funnel's aggregates).
    conversation_rows: int = 0
    #: History entries removed, and how many conversations' histories lost some.
    history_entries: int = 0
    histories: int = 0
    trackers: int = 0

    def lines(self) -> list[str]:
        """The report in plain words (for the CLI and the log)."""
        return [
            f"transcripts before {self.transcript_cutoff:%Y-%m-%d %H:%M} UTC, records before "
            f"{self.records_cutoff:%Y-%m-%d %H:%M} UTC:",
            f"  analytics rows deleted: {self.event_rows} (records: {self.record_rows})",
            f"  Rasa event rows deleted: {self.rasa_event_rows}",
            f"  conversation summaries deleted: {self.conversation_rows}",
            f"  history entries deleted: {self.history_entries} in {self.histories} conversations",
            f"  Rasa trackers deleted: {self.trackers}",
        ]


def records_cutoff(now: datetime, years: int) -> datetime:
    """``now`` minus ``years`` calendar years (29 February becomes the 28th)."""
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


def run_retention(
    store: AnalyticsStore,
    client: redis.Redis[bytes],
    keys: Keys,
    now: datetime,
    transcript_days: int,
    records_years: int,
) -> Report:
    """Delete what is past its time (see the module's documentation); return what went."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if transcript_days < 1 or records_years < 1:
        raise ValueError("transcript_days and records_years must be at least 1")
    now = now.astimezone(timezone.utc)
    transcripts = now - timedelta(days=transcript_days)
    records = records_cutoff(now, records_years)
    event_rows, record_rows = _delete_rows(store, transcripts, records)
    rasa_rows = _delete_rasa_events(store, transcripts)
    conversation_rows = _delete_conversations(store, records)
    entries, histories = _trim_histories(client, keys, transcripts)
    trackers = _delete_trackers(client, keys, transcripts)
    report = Report(
        transcript_cutoff=transcripts, records_cutoff=records, event_rows=event_rows + record_rows,
        record_rows=record_rows, rasa_event_rows=rasa_rows, conversation_rows=conversation_rows,
        history_entries=entries, histories=histories, trackers=trackers,
    )  # fmt: skip
    logger.info("retention: %s", "; ".join(line.strip() for line in report.lines()))
    return report


def _delete_rows(store: AnalyticsStore, transcripts: datetime, records: datetime) -> tuple[int, int]:
    table = PRODUCT_EVENTS
    with store.transaction() as connection:
        ordinary = connection.execute(
            sa.delete(table).where(table.c.required == sa.false(), table.c.at < transcripts)
        ).rowcount
        required = connection.execute(
            sa.delete(table).where(table.c.required == sa.true(), table.c.at < records)
        ).rowcount
        clamp_cursors(connection, store.clock.now())
    return int(ordinary), int(required)


def _delete_conversations(store: AnalyticsStore, records: datetime) -> int:
    """The conversations' summaries keep no text, but say who was contacted and how it went: they
    go with the records, and their tags with them."""
    table = CONVERSATIONS
    old = sa.select(table.c.conversation_id).where(table.c.last_at < records)
    with store.transaction() as connection:
        # ON DELETE CASCADE would do it; explicit, so it holds whatever the connection's settings.
        connection.execute(sa.delete(CONVERSATION_TAGS).where(CONVERSATION_TAGS.c.conversation_id.in_(old)))
        return int(connection.execute(sa.delete(table).where(table.c.last_at < records)).rowcount)


def _delete_rasa_events(store: AnalyticsStore, cutoff: datetime) -> int:
    table = RASA_EVENTS
    limit = cutoff.timestamp()
    stop_at = (cutoff + _RASA_ORDER_SLACK).timestamp()
    deleted = 0
    last_id = 0
    while True:
        with store.transaction() as connection:
            rows = connection.execute(
                sa.select(table.c.id, table.c.data)
                .where(table.c.id > last_id)
                .order_by(table.c.id)
                .limit(_ROWS)
            ).all()
            if not rows:
                return deleted
            old, done = [], False
            for row_id, data in rows:
                stamp = _timestamp(data)
                if stamp is None:
                    continue
                if stamp < limit:
                    old.append(row_id)
                elif stamp >= stop_at:
                    done = True
                    break
            if old:
                deleted += int(connection.execute(sa.delete(table).where(table.c.id.in_(old))).rowcount)
                clamp_cursors(connection, store.clock.now())
            last_id = rows[-1][0]
        if done or len(rows) < _ROWS:
            return deleted


def _timestamp(data: Any) -> float | None:
    try:
        stamp = json.loads(data).get("timestamp")
        return float(stamp) if stamp is not None else None
    except (TypeError, ValueError, AttributeError):
        return None


def _trim_histories(client: redis.Redis[bytes], keys: Keys, cutoff: datetime) -> tuple[int, int]:
    """``XTRIM MINID`` on every conversation's history: entries before the cutoff (their ids are
    the milliseconds they were added at) go."""
    trim = client.register_script(_TRIM_HISTORY)
    min_id = f"{int(cutoff.timestamp() * 1000)}-0"
    pattern = keys.conversation_history("*")
    prefix, suffix = pattern.split("*", 1)
    entries = conversations = 0
    for raw in client.scan_iter(match=pattern, count=_SCAN_COUNT, _type="stream"):
        key = raw.decode()
        conversation_id = key[len(prefix) : len(key) - len(suffix)]
        removed = int(trim(keys=[key, keys.conversation_contacts(conversation_id)], args=[min_id]))
        if removed:
            entries += removed
            conversations += 1
    return entries, conversations


def _delete_trackers(client: redis.Redis[bytes], keys: Keys, cutoff: datetime) -> int:
    """Delete each Rasa tracker whose latest event is older than the cutoff; one that changes
    while it is read is in use, and stays."""
    limit = cutoff.timestamp()
    deleted = 0
    for raw in client.scan_iter(match=f"{keys.prefix}:{RASA_TRACKER_PREFIX}*", count=_SCAN_COUNT):
        with client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(raw)
                # After WATCH the pipeline answers at once (until MULTI).
                stored = cast("bytes | None", pipe.get(raw))
                latest = _latest_event(stored)
                if latest is None:
                    if stored is not None:
                        logger.warning("retention: tracker %s is not readable: left as it is", raw.decode())
                    pipe.unwatch()
                    continue
                if latest >= limit:
                    pipe.unwatch()
                    continue
                pipe.multi()
                pipe.delete(raw)
                pipe.execute()
                deleted += 1
            except redis.WatchError:
                continue  # Rasa wrote to it just now: in use
    return deleted


def _latest_event(stored: bytes | None) -> float | None:
    if stored is None:
        return None
    try:
        events = json.loads(stored).get("events") or []
        stamps = [float(event["timestamp"]) for event in events if event.get("timestamp") is not None]
    except (TypeError, ValueError, AttributeError, KeyError):
        return None
    return max(stamps) if stamps else None
