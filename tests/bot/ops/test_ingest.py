"""The ingester copies the product's Redis streams into SQL exactly once per entry, whatever
happens: written by the product's own code (the gate, the hand-off, the agents' queue, the
creditor events), read twice, killed before a commit, or fed entries it does not know."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import redis
import sqlalchemy as sa

from bot.clock import Clock
from bot.compliance.gate import ComplianceGate
from bot.compliance.rules import Decision, Verdict
from bot.config import Config
from bot.console.handoff import HandoffStore, Outcome
from bot.conversations.creditor_events import CreditorEvents
from bot.ops.analytics.ingest import Ingester
from bot.ops.analytics.schema import INGEST_CURSORS
from bot.ops.analytics.store import AnalyticsStore
from bot.store.addresses import AddressBook
from bot.store.agent_queue import AgentQueue
from bot.store.connection import Keys
from dialogue.event_broker import RedisStreamEventBroker, stream_key

#: The PostgreSQL server and ``analytics_database`` (SQLite and PostgreSQL, one test each).
pytest_plugins = ["tests.fakes.postgres"]

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
CONVERSATION = "acct-A1"


class Killed(Exception):
    """The process died here."""


@pytest.fixture
def keys() -> Keys:
    return Keys("test")


@pytest.fixture
def store(analytics_database: str) -> Iterator[AnalyticsStore]:
    store = AnalyticsStore(analytics_database, clock=Clock(T0))
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def ingester(redis_client: redis.Redis, keys: Keys, store: AnalyticsStore) -> Ingester:
    return Ingester(redis_client, keys, store)


def _product_events(client: redis.Redis, keys: Keys) -> None:
    """A day of one account, written by the product's own code: an opener sent, a reply deferred,
    a message withheld, a dispute escalated, claimed and closed, a plan created, an agent's opt-out."""
    clock = Clock(T0)
    client.hset(keys.account("A1"), mapping={"creditor": "Capitol Mobile", "language": "es"})
    client.hset(keys.account_state("A1"), "opener_variant", "es:warm")
    gate = ComplianceGate(Config(), client, keys, AddressBook(client, keys), clock=clock)
    gate.audit(Decision(Verdict.SEND, rule="ok", reason="allowed"), account_id="A1", channel="sms",
               kind="opener", outbox_id="out-1")  # fmt: skip
    gate.audit(Decision(Verdict.DEFER, rule="contact_hours", reason="outside 08:00-21:00",
                        until=T0 + timedelta(hours=9)),
               account_id="A1", channel="sms", kind="reminder", outbox_id="out-2")  # fmt: skip
    gate.audit(Decision(Verdict.BLOCK, rule="paused", reason="dispute"), account_id="A1", channel="email",
               kind="reply", outbox_id="out-3")  # fmt: skip
    handoff = HandoffStore(client, keys, clock)
    agents = AgentQueue(client, keys, clock=clock.timestamp, escalate=handoff.escalate)
    agents.flag(CONVERSATION, "dispute", account_id="A1", detail="sms: I never owed you a penny, Maria Lopez")
    clock.advance(timedelta(minutes=5))
    handoff.claim(CONVERSATION, "ana")
    handoff.touch(CONVERSATION, "ana")
    handoff.close(CONVERSATION, "ana", Outcome.DISPUTE_OPENED)
    CreditorEvents(client, keys, None, None, webhook_url=None).announce(  # type: ignore[arg-type]
        "plan.created",
        {"plan_id": "P1", "account_id": "A1", "conversation_id": CONVERSATION, "channel": "sms",
         "frequency": "monthly", "created_at": T0.isoformat(), "payment_link": "https://pay.example/A1/P1"},
    )  # fmt: skip
    client.xadd(keys.audit, {"kind": "console:opt_out", "conversation_id": CONVERSATION, "by": "ana",
                             "role": "agent", "at": repr(clock.timestamp()), "channel": "sms",
                             "address": "+1•••••0199"})  # fmt: skip


def test_each_kind_of_product_event_becomes_a_row_with_its_facts(
    redis_client: redis.Redis, keys: Keys, store: AnalyticsStore, ingester: Ingester
) -> None:
    _product_events(redis_client, keys)
    added = ingester.run_once()
    assert store.kinds() == {
        "sent": 1, "deferred": 1, "withheld": 1, "escalated": 1, "queued_for_agent": 1, "claimed": 1,
        "closed": 1, "plan_created": 1, "opted_out": 1,
    }  # fmt: skip
    assert added == 9
    (sent,) = store.events("sent")
    assert (sent.channel, sent.message_kind, sent.outbox_id, sent.account_id) == (
        "sms",
        "opener",
        "out-1",
        "A1",
    )
    assert (sent.creditor, sent.language, sent.opener_variant) == ("Capitol Mobile", "es", "warm")
    assert sent.at == T0 and sent.required
    (deferred,) = store.events("deferred")
    assert (deferred.rule, deferred.reason) == ("contact_hours", "outside 08:00-21:00")
    assert deferred.detail["until"] == (T0 + timedelta(hours=9)).isoformat()
    (withheld,) = store.events("withheld")
    assert (withheld.rule, withheld.reason, withheld.channel) == ("paused", "dispute", "email")
    (escalated,) = store.events("escalated")
    assert (escalated.reason, escalated.conversation_id, escalated.required) == (
        "dispute",
        CONVERSATION,
        True,
    )
    (closed,) = store.events("closed")
    assert (closed.outcome, closed.agent, closed.required) == ("dispute_opened", "ana", True)
    assert closed.at == T0 + timedelta(minutes=5)
    (plan,) = store.events("plan_created")
    assert (plan.account_id, plan.channel, plan.detail["plan_id"], plan.required) == ("A1", "sms", "P1", True)
    (opted,) = store.events("opted_out")
    assert (opted.agent, opted.channel, opted.required) == ("ana", "sms", True)
    (queued,) = store.events("queued_for_agent")
    assert not queued.required
    # What the person wrote and their address stay in the transcript and the console, not here.
    with store.engine.connect() as connection:
        everything = repr(connection.execute(sa.text("SELECT * FROM product_events")).all())
    assert "penny" not in everything and "Maria" not in everything and "0199" not in everything
    assert "pay.example" not in everything


def test_ingesting_again_stores_nothing_twice_even_without_cursors(
    redis_client: redis.Redis, keys: Keys, store: AnalyticsStore, ingester: Ingester
) -> None:
    _product_events(redis_client, keys)
    first = ingester.run_once(batch=3)
    assert first == store.count() == 9
    assert ingester.run_once() == 0
    with store.transaction() as connection:
        connection.execute(sa.delete(INGEST_CURSORS))
    assert ingester.run_once() == 0
    assert store.count() == 9
    # Only what is new is read next time.
    redis_client.xadd(keys.agent_queue, {"conversation_id": "acct-B2", "reason": "request_human",
                                         "at": repr(T0.timestamp())})  # fmt: skip
    assert ingester.run_once() == 1
    assert store.count(kind="escalated", conversation_id="acct-B2", required=False) == 1


def test_a_kill_between_reading_and_committing_loses_nothing_and_duplicates_nothing(
    redis_client: redis.Redis, keys: Keys, store: AnalyticsStore, ingester: Ingester,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _product_events(redis_client, keys)
    original = AnalyticsStore._set_cursor
    calls = {"n": 0}

    def die_on_the_second_batch(self: AnalyticsStore, connection: object, stream: str, last_id: str) -> None:
        original(self, connection, stream, last_id)  # rows and cursor written, not committed...
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed

    monkeypatch.setattr(AnalyticsStore, "_set_cursor", die_on_the_second_batch)
    with pytest.raises(Killed):
        ingester.run_once(batch=2)
    # The first batch is committed with its cursor; the second is not there at all.
    assert store.count() == 2
    first_two = redis_client.xrange(keys.audit, count=2)
    assert store.cursor("audit") == first_two[-1][0].decode()
    monkeypatch.undo()
    assert ingester.run_once(batch=2) == 7
    assert store.count() == 9
    assert ingester.run_once() == 0


def test_a_kill_before_the_first_commit_leaves_no_row_and_no_cursor(
    redis_client: redis.Redis, keys: Keys, store: AnalyticsStore, ingester: Ingester,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _product_events(redis_client, keys)
    original = AnalyticsStore._set_cursor

    def die(self: AnalyticsStore, connection: object, stream: str, last_id: str) -> None:
        original(self, connection, stream, last_id)
        raise Killed

    monkeypatch.setattr(AnalyticsStore, "_set_cursor", die)
    with pytest.raises(Killed):
        ingester.run_once()
    assert store.count() == 0 and store.cursor("audit") is None
    monkeypatch.undo()
    assert ingester.run_once() == 9


def test_unknown_entries_are_kept_as_other_and_unreadable_ones_skipped_with_a_log_line(
    redis_client: redis.Redis, keys: Keys, store: AnalyticsStore, ingester: Ingester,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    at = repr(T0.timestamp())
    redis_client.xadd(keys.audit, {"kind": "mystery", "at": at, "by": "cli"})
    redis_client.xadd(keys.audit, {"at": "yesterday", "verdict": "send"})
    redis_client.xadd(keys.audit, {"verdict": "maybe", "at": at, "account_id": "A1"})
    redis_client.xadd(keys.events, {"id": "evt_1", "type": "plan.created", "body": "{not json"})
    redis_client.xadd(keys.events, {"id": "evt_2", "type": "account.updated", "body": "{}"})
    redis_client.xadd(keys.console_events, {"conversation_id": "c", "event": "teleport", "at": at})
    redis_client.xadd(keys.console_events, {"conversation_id": "c", "event": "touch", "at": at})
    redis_client.xadd(keys.agent_queue, {"conversation_id": "c", "reason": "crisis", "at": at})
    with caplog.at_level(logging.WARNING, logger="bot.ops.analytics.ingest"):
        assert ingester.run_once() == 5
    assert store.kinds() == {"other": 4, "escalated": 1}
    details = sorted(str(sorted(row.detail.items())) for row in store.events("other"))
    assert any("mystery" in d for d in details) and any("teleport" in d for d in details)
    assert any("maybe" in d for d in details) and any("account.updated" in d for d in details)
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert (
        len(skipped) == 2 and any("not JSON" in m for m in skipped) and any("yesterday" in m for m in skipped)
    )
    # Read past them: the next run neither retries nor logs them again.
    caplog.clear()
    assert ingester.run_once() == 0
    assert not caplog.records


def test_delivery_outcomes_and_a_persons_own_opt_out_reach_the_store_without_addresses(
    redis_client: redis.Redis[bytes], keys: Keys, store: AnalyticsStore
) -> None:
    from bot.conversations.deliveries import DeliveryLog
    from bot.store.addresses import AddressBook
    from channels.base import DeliveryReceipt, DeliveryStatus

    addresses = AddressBook(redis_client, keys)
    log = DeliveryLog(redis_client, keys, addresses)
    log.record(
        DeliveryReceipt(outbox_id="o1", channel="sms", status=DeliveryStatus.SENT), conversation_id="acct-A1"
    )
    log.record(DeliveryReceipt(outbox_id="o1", channel="sms", status=DeliveryStatus.DELIVERED),
               conversation_id="acct-A1")  # fmt: skip
    log.record(DeliveryReceipt(outbox_id="o1", channel="sms", status=DeliveryStatus.SENT))  # stale: not kept
    log.record(DeliveryReceipt(outbox_id="o2", channel="sms", status=DeliveryStatus.FAILED,
                               error_code="compliance:quiet_hours", error_message="to +12025550143"))  # fmt: skip
    assert addresses.opt_out("sms", "+12025550143", "A1", by_message="sms:SM9")
    assert not addresses.opt_out("sms", "+12025550143", "A1", by_message="sms:SM9")  # once
    Ingester(redis_client, keys, store).run_once()
    assert [(r.kind, r.outbox_id) for r in store.events() if r.kind.startswith("delivery_")] == [
        ("delivery_sent", "o1"), ("delivery_delivered", "o1"), ("delivery_failed", "o2"),
    ]  # fmt: skip
    [failed] = store.events("delivery_failed")
    assert failed.rule == "quiet_hours"
    [opted] = store.events("opted_out")
    assert (opted.account_id, opted.channel, opted.required) == ("A1", "sms", True)
    stored = " ".join(str(r) for r in store.events())
    assert "2025550143" not in stored


def test_instalments_paid_and_missed_become_payment_rows_told_apart_by_their_type(
    redis_client: redis.Redis[bytes], keys: Keys, store: AnalyticsStore, ingester: Ingester
) -> None:
    at = repr(T0.timestamp())
    common = {"plan_id": "P1", "account_id": "A1", "conversation_id": CONVERSATION, "at": at}
    redis_client.xadd(keys.audit, {"kind": "instalment.paid", "due": "2026-04-01", "paid_on": "2026-04-02",
                                   **common})  # fmt: skip
    redis_client.xadd(keys.audit, {"kind": "instalment.missed", "due": "2026-05-01", **common})
    assert ingester.run_once() == 2
    assert store.kinds() == {"payment": 2}
    paid, missed = store.events("payment")
    assert paid.detail == {
        "type": "instalment.paid",
        "plan_id": "P1",
        "due": "2026-04-01",
        "paid_on": "2026-04-02",
    }
    assert missed.detail == {"type": "instalment.missed", "plan_id": "P1", "due": "2026-05-01"}
    assert all(
        (row.conversation_id, row.account_id, row.required, row.at) == (CONVERSATION, "A1", True, T0)
        for row in (paid, missed)
    )


def test_ops_switches_are_kept_as_their_own_kind_with_who_made_them(
    redis_client: redis.Redis[bytes], keys: Keys, store: AnalyticsStore, ingester: Ingester
) -> None:
    from bot.store.opener_stats import RetiredOpeners

    retired = RetiredOpeners(redis_client, keys, Clock(T0))
    retired.retire("es", "warm", "olga", "reads as pushy")
    retired.restore("es", "warm", "sue")
    ingester.run_once()
    first, second = store.events()
    assert (first.kind, first.agent, first.required) == ("ops:opener_retired", "olga", True)
    assert first.detail["wording"] == "es:warm" and first.detail["reason"] == "reads as pushy"
    assert (second.kind, second.agent) == ("ops:opener_restored", "sue")


def test_entries_trimmed_before_they_were_read_are_reported_once_and_the_rest_still_read(
    redis_client: redis.Redis[bytes], keys: Keys, store: AnalyticsStore, ingester: Ingester,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    at = repr(T0.timestamp())
    redis_client.xadd(keys.agent_queue, {"conversation_id": "c1", "reason": "request_human", "at": at})
    assert ingester.run_once() == 1
    # The ingester falls behind: three more, and the stream is trimmed to its last one unread.
    for n in (2, 3, 4):
        redis_client.xadd(keys.agent_queue, {"conversation_id": f"c{n}", "reason": "hardship", "at": at})
    redis_client.xtrim(keys.agent_queue, maxlen=1, approximate=False)
    with caplog.at_level(logging.WARNING, logger="bot.ops.analytics.ingest"):
        assert ingester.run_once() == 2  # the gap, and the entry still there
    [gap] = store.events("ingest_gap")
    assert gap.detail is not None and gap.detail["stream"] == "agent_queue" and gap.detail["exact"] is False
    assert store.count(kind="escalated", conversation_id="c4") == 1
    assert any("trimmed past what was read" in r.getMessage() for r in caplog.records)
    # Reported once: the next runs find nothing new, and no second gap for the same one.
    assert ingester.run_once() == 0
    assert store.count(kind="ingest_gap") == 1


def test_a_stream_read_to_its_end_and_then_trimmed_is_no_gap(
    redis_client: redis.Redis[bytes], keys: Keys, store: AnalyticsStore, ingester: Ingester
) -> None:
    at = repr(T0.timestamp())
    for n in (1, 2, 3):
        redis_client.xadd(keys.agent_queue, {"conversation_id": f"c{n}", "reason": "hardship", "at": at})
    assert ingester.run_once() == 3
    redis_client.xtrim(keys.agent_queue, maxlen=1, approximate=False)  # all of it was read first
    redis_client.xadd(keys.agent_queue, {"conversation_id": "c4", "reason": "hardship", "at": at})
    assert ingester.run_once() == 1
    assert store.count(kind="ingest_gap") == 0


def test_redis_7_names_the_newest_entry_it_removed_and_the_gap_is_exact(
    keys: Keys, store: AnalyticsStore
) -> None:
    class Redis7:
        """What XINFO STREAM says on Redis 7 after a trim past the reader (and XRANGE after it)."""

        def xinfo_stream(self, key: str) -> dict[str, object]:
            return {"max-deleted-entry-id": b"1700000000300-0", "first-entry": (b"1700000000400-0", {})}

        def xrange(self, *args: object, **kwargs: object) -> list[object]:
            return []

    store.add([], cursor=("agent_queue", "1700000000100-0"))
    ingester = Ingester(Redis7(), keys, store)  # type: ignore[arg-type]
    assert ingester.run_once() == 1
    [gap] = store.events("ingest_gap")
    assert gap.detail == {"stream": "agent_queue", "after": "1700000000100-0", "up_to": "1700000000300-0",
                          "exact": True}  # fmt: skip


# --- Rasa's own events (its event broker's stream) -----------------------------------------------


def _rasa_rows(store: AnalyticsStore) -> list[tuple[str, dict[str, object]]]:
    with store.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT sender_id, data FROM events ORDER BY id")).all()
    return [(sender, json.loads(data)) for sender, data in rows]


def _rasa_broker(client: redis.Redis, keys: Keys) -> RedisStreamEventBroker:
    broker = RedisStreamEventBroker(client, stream_key(keys.prefix))
    assert broker.key == keys.rasa_events  # the broker and the product name one stream
    return broker


def test_rasas_events_are_copied_in_order_into_its_events_table_and_the_stream_trimmed(
    redis_client: redis.Redis, keys: Keys, store: AnalyticsStore, ingester: Ingester
) -> None:
    broker = _rasa_broker(redis_client, keys)
    said = [{"sender_id": CONVERSATION, "event": "user", "text": f"message {n}", "timestamp": T0.timestamp() + n}
            for n in range(5)]  # fmt: skip
    broker.publish(said[0])
    broker.publish_many(said[1:])
    assert ingester.run_once(batch=2) == 5
    assert _rasa_rows(store) == [(CONVERSATION, event) for event in said]
    # Trimmed up to the last stored entry (kept, so an older Redis's gap check sees no loss).
    assert redis_client.xlen(keys.rasa_events) == 1
    broker.publish({"sender_id": "acct-B2", "event": "bot", "text": "hi", "timestamp": T0.timestamp()})
    assert ingester.run_once() == 1
    assert [sender for sender, _ in _rasa_rows(store)] == [CONVERSATION] * 5 + ["acct-B2"]
    assert store.count(kind="ingest_gap") == 0


def test_a_kill_between_storing_rasas_events_and_trimming_stores_nothing_twice(
    redis_client: redis.Redis, keys: Keys, store: AnalyticsStore, ingester: Ingester,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    broker = _rasa_broker(redis_client, keys)
    broker.publish_many(
        [{"sender_id": CONVERSATION, "event": "slot", "name": "verified", "value": n} for n in range(3)]
    )

    def die(*args: object, **kwargs: object) -> None:
        raise Killed

    monkeypatch.setattr(redis_client, "xtrim", die)
    with pytest.raises(Killed):
        ingester.run_once()
    monkeypatch.undo()
    assert len(_rasa_rows(store)) == 3  # committed before the kill
    assert ingester.run_once() == 0  # the cursor skips what is still on the stream
    assert [event["value"] for _, event in _rasa_rows(store)] == [0, 1, 2]


def test_rasas_events_trimmed_unread_are_reported_as_a_gap(
    redis_client: redis.Redis, keys: Keys, store: AnalyticsStore, ingester: Ingester
) -> None:
    broker = _rasa_broker(redis_client, keys)
    broker.publish({"sender_id": CONVERSATION, "event": "user", "text": "one"})
    assert ingester.run_once() == 1
    broker.publish_many([{"sender_id": CONVERSATION, "event": "user", "text": t} for t in ("two", "three")])
    redis_client.xtrim(keys.rasa_events, maxlen=1, approximate=False)  # "two" lost unread
    assert ingester.run_once() == 2  # the gap row and "three"
    assert [event["text"] for _, event in _rasa_rows(store)] == ["one", "three"]
    [gap] = store.events("ingest_gap")
    assert gap.detail["stream"] == "rasa_events"
