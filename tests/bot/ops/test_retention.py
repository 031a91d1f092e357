"""Retention: transcripts and tracker data older than transcript_days are gone (SQL rows, Rasa's
event rows, conversation histories and Rasa trackers in Redis); the records the law requires stay
records_years, then go too. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import redis
import sqlalchemy as sa

from bot.clock import Clock
from bot.ops.analytics.conversations import FactsQuery, load_facts, load_one, save_facts, summarise
from bot.ops.analytics.facts import ConversationFacts
from bot.ops.analytics.retention import records_cutoff, run_retention
from bot.ops.analytics.schema import CONVERSATION_TAGS, RASA_EVENTS
from bot.ops.analytics.store import AnalyticsStore, EventRow
from bot.store.connection import Keys

#: The PostgreSQL server and ``analytics_database`` (SQLite and PostgreSQL, one test each).
pytest_plugins = ["tests.fakes.postgres"]

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
DAYS, YEARS = 90, 7
OLD = NOW - timedelta(days=DAYS + 1)
RECENT = NOW - timedelta(days=DAYS - 1)
ANCIENT = NOW - timedelta(days=365 * YEARS + 10)


@pytest.fixture
def keys() -> Keys:
    return Keys("test")


@pytest.fixture
def store(analytics_database: str) -> Iterator[AnalyticsStore]:
    store = AnalyticsStore(analytics_database, clock=Clock(NOW))
    store.migrate()
    yield store
    store.close()


def _row(n: int, kind: str, at: datetime, *, required: bool) -> EventRow:
    return EventRow(source="audit", source_id=f"{n}-0", at=at, kind=kind, required=required,
                    conversation_id=f"acct-{n}")  # fmt: skip


def _ms_id(at: datetime, seq: int = 0) -> str:
    return f"{int(at.timestamp() * 1000)}-{seq}"


def _history(client: redis.Redis, keys: Keys, conversation_id: str, *moments: datetime) -> None:
    for n, at in enumerate(moments):
        entry = {"at": at.timestamp(), "direction": "in", "kind": "text", "text": f"message {n}"}
        client.xadd(keys.conversation_history(conversation_id), {"entry": json.dumps(entry)}, id=_ms_id(at))
    client.hset(keys.conversation_contacts(conversation_id), mapping={"sms": "+15005550006", "_last": "sms"})


def _tracker(client: redis.Redis, keys: Keys, sender_id: str, *moments: datetime) -> str:
    key = f"{keys.prefix}:tracker:{sender_id}"
    events = [{"event": "user", "text": "hi", "timestamp": at.timestamp()} for at in moments]
    client.set(key, json.dumps({"name": sender_id, "events": events}))
    return key


def test_old_transcripts_go_and_required_records_stay_in_sql(store: AnalyticsStore, redis_client: redis.Redis,
                                                             keys: Keys) -> None:  # fmt: skip
    store.add([
        _row(1, "escalated", OLD, required=False),
        _row(2, "queued_for_agent", RECENT, required=False),
        _row(3, "plan_created", OLD, required=True),
        _row(4, "opted_out", OLD, required=True),
        _row(5, "sent", ANCIENT, required=True),
        _row(6, "escalated", ANCIENT, required=False),
    ])  # fmt: skip
    with store.transaction() as connection:
        connection.execute(sa.insert(RASA_EVENTS), [
            {"sender_id": "acct-1", "data": json.dumps({"event": "user", "text": "my DOB is 1 May 1980",
                                                       "timestamp": OLD.timestamp()})},
            {"sender_id": "acct-1", "data": json.dumps({"event": "bot", "timestamp": OLD.timestamp() + 1})},
            {"sender_id": "acct-2", "data": "not json"},
            {"sender_id": "acct-2", "data": json.dumps({"event": "user", "text": "hello",
                                                       "timestamp": RECENT.timestamp()})},
        ])  # fmt: skip

    report = run_retention(store, redis_client, keys, NOW, DAYS, YEARS)

    assert sorted(row.conversation_id for row in store.events()) == ["acct-2", "acct-3", "acct-4"]
    assert (report.event_rows, report.record_rows, report.rasa_event_rows) == (3, 1, 2)
    with store.engine.connect() as connection:
        left = connection.execute(sa.select(RASA_EVENTS.c.data).order_by(RASA_EVENTS.c.id)).scalars().all()
    assert left == [
        "not json",
        json.dumps({"event": "user", "text": "hello", "timestamp": RECENT.timestamp()}),
    ]
    again = run_retention(store, redis_client, keys, NOW, DAYS, YEARS)
    assert (again.event_rows, again.rasa_event_rows, again.history_entries, again.trackers) == (0, 0, 0, 0)


def test_old_history_entries_and_idle_trackers_go_from_redis(store: AnalyticsStore, redis_client: redis.Redis,
                                                            keys: Keys) -> None:  # fmt: skip
    _history(redis_client, keys, "acct-A1", OLD - timedelta(days=3), OLD, RECENT, NOW)
    _history(redis_client, keys, "anon-sms.abc", OLD)
    old_tracker = _tracker(redis_client, keys, "anon-sms.abc", OLD - timedelta(days=1), OLD)
    # A tracker whose conversation started long ago but goes on is in use: it stays whole.
    live_tracker = _tracker(redis_client, keys, "acct-A1", OLD - timedelta(days=30), RECENT)
    redis_client.set(f"{keys.prefix}:tracker:broken", b"\x00 not json")
    redis_client.set("other:tracker:acct-Z", json.dumps({"events": [{"timestamp": OLD.timestamp()}]}))
    redis_client.hset(keys.conversation_flags("acct-A1"), "dispute", str(OLD.timestamp()))

    report = run_retention(store, redis_client, keys, NOW, DAYS, YEARS)

    left = [json.loads(fields[b"entry"])["text"] for _, fields in
            redis_client.xrange(keys.conversation_history("acct-A1"))]  # fmt: skip
    assert left == ["message 2", "message 3"]
    assert redis_client.hgetall(keys.conversation_contacts("acct-A1"))  # still in conversation
    # Nothing left of the anonymous conversation: its history and its addresses are gone.
    assert not redis_client.exists(keys.conversation_history("anon-sms.abc"))
    assert not redis_client.exists(keys.conversation_contacts("anon-sms.abc"))
    assert not redis_client.exists(old_tracker)
    assert redis_client.exists(live_tracker)
    assert redis_client.exists(f"{keys.prefix}:tracker:broken")  # unreadable: left for a person
    assert redis_client.exists("other:tracker:acct-Z")  # another prefix: another product's
    assert redis_client.exists(keys.conversation_flags("acct-A1"))
    assert (report.history_entries, report.histories, report.trackers) == (3, 2, 1)


def test_a_tracker_saved_by_rasas_redis_tracker_store_is_deleted_once_idle(
    store: AnalyticsStore, redis_client: redis.Redis, keys: Keys
) -> None:
    from rasa.core.tracker_store import RedisTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    address = redis_client.connection_pool.connection_kwargs
    tracker_store = RedisTrackerStore(Domain.empty(), host=address["host"], port=address["port"],
                                      db=address.get("db", 0), key_prefix=keys.prefix)  # fmt: skip
    for sender, at in (("acct-old", OLD), ("acct-new", RECENT)):
        tracker = DialogueStateTracker.from_events(sender, [
            ActionExecuted("action_session_start", timestamp=at.timestamp() - 60),
            UserUttered("hello", timestamp=at.timestamp()),
        ])  # fmt: skip
        asyncio.run(tracker_store.save(tracker))
    assert sorted(k.decode() for k in redis_client.keys("*tracker*")) == [
        "test:tracker:acct-new", "test:tracker:acct-old"
    ]  # fmt: skip

    report = run_retention(store, redis_client, keys, NOW, DAYS, YEARS)

    assert report.trackers == 1
    assert asyncio.run(tracker_store.retrieve("acct-old")) is None
    kept = asyncio.run(tracker_store.retrieve("acct-new"))
    assert kept is not None and kept.latest_message.text == "hello"


def test_records_years_counts_calendar_years() -> None:
    assert records_cutoff(NOW, 7) == datetime(2019, 3, 2, 15, 0, tzinfo=timezone.utc)
    leap = datetime(2028, 2, 29, tzinfo=timezone.utc)
    assert records_cutoff(leap, 1) == datetime(2027, 2, 28, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        run_retention(None, None, Keys("t"), datetime(2026, 1, 1), DAYS, YEARS)  # type: ignore[arg-type]


def _summary(conversation_id: str, last_at: datetime, *tags: str) -> ConversationFacts:
    return ConversationFacts(
        conversation_id=conversation_id, account_id=None, started_at=last_at - timedelta(hours=1),
        last_at=last_at, channel="sms", language="en", creditor="acme", opener_variant=None,
        contacted_at=None, replied_at=None, verified_at=None, plan_offered_at=None, plan_created_at=None,
        first_payment_at=None, plan_missed_at=None, opted_out_at=None, escalated_at=None,
        escalation_reasons=(), outcome=None, user_turns=1, fallbacks=0, low_confidence=0, last_step=None,
        tags=tags,
    )  # fmt: skip


def test_conversation_summaries_stay_as_records_then_go_with_their_tags(
    store: AnalyticsStore, redis_client: redis.Redis, keys: Keys
) -> None:
    save_facts(store, [_summary("acct-old", OLD, "bug"), _summary("acct-ancient", ANCIENT, "bug", "tone")])
    report = run_retention(store, redis_client, keys, NOW, DAYS, YEARS)
    assert report.conversation_rows == 1
    assert [f.conversation_id for f in load_facts(store, FactsQuery())] == ["acct-old"]
    assert load_one(store, "acct-old").tags == ("bug",)  # type: ignore[union-attr]
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(CONVERSATION_TAGS)).scalar_one() == 1
    assert run_retention(store, redis_client, keys, NOW, DAYS, YEARS).conversation_rows == 0


def test_the_summary_misses_no_rasa_event_written_after_retention_emptied_the_table(
    store: AnalyticsStore, redis_client: redis.Redis, keys: Keys
) -> None:
    def rasa(sender: str, at: datetime, text: str) -> None:
        with store.transaction() as connection:
            event = {"event": "user", "text": text, "timestamp": at.timestamp(),
                     "parse_data": {"intent": {"name": "greet", "confidence": 0.9}}}  # fmt: skip
            connection.execute(sa.insert(RASA_EVENTS), [{"sender_id": sender, "data": json.dumps(event)}])

    for n in range(3):
        rasa("acct-1", OLD + timedelta(minutes=n), "hi")
    store.add([_row(7, "escalated", OLD, required=False)])
    assert summarise(store, low_confidence=0.6) == 2
    run_retention(store, redis_client, keys, NOW, DAYS, YEARS)  # every transcript row goes
    # SQLite hands the deleted ids out again: the summary must still see the new rows.
    rasa("acct-2", RECENT, "hello")
    store.add([_row(8, "escalated", RECENT, required=False)])
    assert summarise(store, low_confidence=0.6) == 2
    assert {f.conversation_id for f in load_facts(store, FactsQuery())} == {
        "acct-1",
        "acct-7",
        "acct-2",
        "acct-8",
    }
