"""The conversations read model: the facts of one conversation from its events (pure), the table
kept up to date by ``summarise`` (incremental, idempotent, safe to kill) on SQLite and PostgreSQL,
the filters of ``load_facts`` and ops' tags and reviewed marks."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from bot.clock import Clock
from bot.errors import InvalidRequest, NotFound
from bot.ops.analytics import conversations as model
from bot.ops.analytics.conversations import (
    FactsQuery,
    ReviewError,
    count_facts,
    facts_from_events,
    load_facts,
    load_one,
    mark_reviewed,
    save_facts,
    summarise,
    tag,
    untag,
)
from bot.ops.analytics.facts import ConversationFacts
from bot.ops.analytics.schema import RASA_EVENTS
from bot.ops.analytics.store import AnalyticsError, AnalyticsStore, EventRow

#: The PostgreSQL server and ``analytics_database`` (SQLite and PostgreSQL, one test each).
pytest_plugins = ["tests.fakes.postgres"]

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
CID = "acct-A1"
LOW = 0.6


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def stamp(minutes: float) -> float:
    return at(minutes).timestamp()


# --- small event builders (Rasa 3.6's event JSON) ------------------------------------------------


def user(minutes: float, text: str, intent: str, confidence: float = 0.9, **metadata: Any) -> dict[str, Any]:
    return {
        "event": "user", "timestamp": stamp(minutes), "text": text,
        "parse_data": {"intent": {"name": intent, "confidence": confidence}, "entities": [],
                       "intent_ranking": [{"name": intent, "confidence": confidence}]},
        "metadata": metadata,
    }  # fmt: skip


def trigger(minutes: float, intent: str = "EXTERNAL_opener") -> dict[str, Any]:
    return {
        "event": "user", "timestamp": stamp(minutes), "text": f"EXTERNAL: {intent}",
        "parse_data": {"intent": {"name": intent, "confidence": 1.0}, "entities": []},
        "metadata": {"is_external": True},
    }  # fmt: skip


def action(minutes: float, name: str) -> dict[str, Any]:
    return {"event": "action", "timestamp": stamp(minutes), "name": name}


def slot(minutes: float, name: str, value: Any) -> dict[str, Any]:
    return {"event": "slot", "timestamp": stamp(minutes), "name": name, "value": value}


def loop(minutes: float, name: str | None) -> dict[str, Any]:
    return {"event": "active_loop", "timestamp": stamp(minutes), "name": name}


def bot(minutes: float, text: str) -> dict[str, Any]:
    return {"event": "bot", "timestamp": stamp(minutes), "text": text}


_ids = iter(range(1, 10**9))


def row(minutes: float, kind: str, **values: Any) -> EventRow:
    return EventRow(source="test", source_id=str(next(_ids)), at=at(minutes), kind=kind, **values)


def opener(minutes: float = 0, **values: Any) -> EventRow:
    fields = {"account_id": "A1", "channel": "sms", "language": "en", "creditor": "acme",
              "opener_variant": "en:warm", "message_kind": "opener", **values}  # fmt: skip
    return row(minutes, "sent", **fields)


def facts(events: list[Mapping[str, Any]], rows: list[Any] = (), cid: str = CID) -> ConversationFacts:  # type: ignore[assignment]
    result = facts_from_events(cid, events, list(rows), low_confidence=LOW)
    assert result is not None
    return result


# --- facts_from_events ---------------------------------------------------------------------------


def test_nothing_at_all_is_no_conversation() -> None:
    assert facts_from_events(CID, [], [], low_confidence=LOW) is None
    assert facts_from_events(CID, [{"event": "user", "text": "no time"}], [], low_confidence=LOW) is None


def test_an_opened_conversation_is_contacted_by_the_opener_and_replied_to_by_the_person() -> None:
    events = [trigger(0), action(0, "utter_opener"), bot(0, "Hi, it's Acme"), action(0, "action_listen"),
              user(5, "who is this", "ask_who_is_this", channel="sms", language="en")]  # fmt: skip
    result = facts(events, [opener(0.5)])
    assert result.contacted_at == at(0.5)
    assert result.opener_variant == "en:warm"  # as stored
    assert result.replied_at == at(5)
    assert result.user_turns == 1  # the trigger is not the person
    assert (result.channel, result.language, result.creditor, result.account_id) == (
        "sms",
        "en",
        "acme",
        "A1",
    )
    assert result.started_at == at(0) and result.last_at == at(5)


def test_the_product_trigger_is_recognised_by_its_text_metadata_or_intent() -> None:
    by_metadata = {**user(1, "/EXTERNAL_reminder", "EXTERNAL_reminder"), "metadata": {"is_external": True}}
    by_intent = user(2, "/EXTERNAL_reminder", "EXTERNAL_reminder")
    by_text = {**user(3, "EXTERNAL: EXTERNAL_x", "whatever")}
    result = facts([by_metadata, by_intent, by_text])
    assert result.user_turns == 0 and result.replied_at is None
    assert all(model.is_trigger(event) for event in (by_metadata, by_intent, by_text))
    assert not model.is_trigger(user(4, "hello", "greet"))


def test_a_message_before_the_opener_is_not_a_reply_to_it() -> None:
    events = [user(0, "hi", "greet"), trigger(10), user(20, "ok", "affirm")]
    assert facts(events, [opener(10)]).replied_at == at(20)
    assert facts(events[:2], [opener(10)]).replied_at is None
    # Without an opener the first message is the reply.
    assert facts(events).replied_at == at(0) and facts(events).contacted_at is None


def test_only_an_opener_sent_counts_as_contact() -> None:
    rows = [opener(0, message_kind="reply"), row(1, "withheld", account_id="A1", message_kind="opener",
                                                rule="quiet_hours")]  # fmt: skip
    result = facts([], rows)
    assert result.contacted_at is None and result.opener_variant is None


def test_verification_plan_offer_plan_and_payments_each_first_time() -> None:
    events = [user(1, "hi", "greet"), slot(2, "verified", False), slot(3, "verified", True),
              slot(9, "verified", True), action(4, "payment_plan_form"), loop(4, "payment_plan_form"),
              action(5, "action_ask_plan_offer")]  # fmt: skip
    rows = [row(6, "plan_created", account_id="A1"), row(7, "plan_created", account_id="A1"),
            row(8, "payment", account_id="A1", detail={"type": "instalment.missed"}),
            row(9, "payment", account_id="A1", detail=json.dumps({"type": "instalment.paid"})),
            row(10, "payment", account_id="A1", detail={"type": "payment.received"})]  # fmt: skip
    result = facts(events, rows)
    assert result.verified_at == at(3)
    assert result.plan_offered_at == at(4)
    assert result.plan_created_at == at(6)
    assert result.plan_missed_at == at(8)
    assert result.first_payment_at == at(9)


def test_the_plan_offer_is_seen_from_the_offer_action_or_the_form_alone() -> None:
    assert facts([user(1, "x", "greet"), action(2, "action_ask_plan_offer")]).plan_offered_at == at(2)
    assert facts([user(1, "x", "greet"), loop(3, "payment_plan_form")]).plan_offered_at == at(3)
    assert facts([user(1, "x", "greet"), loop(3, "verify_form")]).plan_offered_at is None


def test_opt_out_escalations_and_the_last_outcome() -> None:
    rows = [row(1, "escalated", reason="hardship"), row(2, "escalated", reason="request_human"),
            row(3, "escalated", reason="hardship"), row(4, "closed", outcome="plan_agreed"),
            row(5, "closed", outcome="no_contact"), row(6, "opted_out", channel="sms")]  # fmt: skip
    result = facts([], rows)
    assert result.escalated_at == at(1)
    assert result.escalation_reasons == ("hardship", "request_human")
    assert result.outcome == "no_contact"
    assert result.opted_out_at == at(6)


def test_fallbacks_are_counted_once_per_message_and_low_confidence_excludes_triggers() -> None:
    events = [
        trigger(0),  # confidence 1.0, and not the person anyway
        user(1, "asdf", "nlu_fallback", 0.1), action(1, "action_two_stage_fallback"),
        action(1, "action_default_fallback"),  # the same message: one fallback
        user(2, "hmm", "greet", 0.59), action(2, "utter_default"),
        user(3, "pay 50", "propose_payment", 0.95), action(3, "utter_ok"),
        user(4, "ok", "affirm", 0.6),  # at the threshold: not low
    ]  # fmt: skip
    result = facts(events)
    assert result.user_turns == 4
    assert result.fallbacks == 2
    assert result.low_confidence == 2


def test_the_last_step_is_the_last_dialogue_action_or_the_open_form() -> None:
    events = [user(1, "hi", "greet"), action(1, "utter_greet"), action(1, "action_listen"),
              user(2, "dob", "inform"), action(2, "action_extract_slots"), action(2, "validate_verify_form"),
              action(2, "action_disclose"), action(2, "action_listen")]  # fmt: skip
    assert facts(events).last_step == "action_disclose"
    in_form = [*events, user(3, "plan", "request_payment_plan"), action(3, "payment_plan_form"),
               loop(3, "payment_plan_form"), action(3, "action_listen")]  # fmt: skip
    assert facts(in_form).last_step == "payment_plan_form"
    closed_form = [*in_form, user(4, "yes", "affirm"), action(4, "payment_plan_form"), loop(4, None),
                   action(4, "action_create_plan"), action(4, "action_listen")]  # fmt: skip
    assert facts(closed_form).last_step == "action_create_plan"


def test_channel_language_and_creditor_fall_back_to_the_messages_metadata() -> None:
    events = [user(1, "hola", "greet", channel="telegram", language="es", account_id="B2")]
    result = facts(events, cid="acct-B2")
    assert (result.channel, result.language, result.creditor) == ("telegram", "es", None)
    assert result.account_id == "B2"
    # A product row wins over the metadata; the opener's row over the others.
    rows = [row(0, "escalated", channel="email", language="en", creditor="acme"), opener(2, channel="sms")]
    result = facts(events, rows, cid="acct-B2")
    assert (result.channel, result.language, result.creditor) == ("sms", "en", "acme")


def test_an_anonymous_conversation_has_no_account() -> None:
    assert facts([user(1, "hi", "greet")], cid="anon-sms-abc").account_id is None


# --- the table -----------------------------------------------------------------------------------


@pytest.fixture
def store(analytics_database: str) -> Iterator[AnalyticsStore]:
    store = AnalyticsStore(analytics_database, clock=Clock(T0))
    store.migrate()
    yield store
    store.close()


def sample(cid: str, minutes: float = 0, **changes: Any) -> ConversationFacts:
    base = ConversationFacts(
        conversation_id=cid, account_id=cid.removeprefix("acct-"), started_at=at(minutes),
        last_at=at(minutes + 5), channel="sms", language="en", creditor="acme", opener_variant="en:warm",
        contacted_at=at(minutes), replied_at=None, verified_at=None, plan_offered_at=None,
        plan_created_at=None, first_payment_at=None, plan_missed_at=None, opted_out_at=None,
        escalated_at=None, escalation_reasons=(), outcome=None, user_turns=1, fallbacks=0,
        low_confidence=0, last_step="utter_greet",
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def test_saved_facts_come_back_equal_newest_first(store: AnalyticsStore) -> None:
    full = sample(
        "acct-A1", 0, replied_at=at(1), verified_at=at(2), plan_offered_at=at(3), plan_created_at=at(4),
        first_payment_at=at(5), plan_missed_at=at(6), opted_out_at=at(7), escalated_at=at(8),
        escalation_reasons=("hardship", "dispute"), outcome="plan_agreed", tags=("bug", "tone"),
        reviewed=True, reviewed_by="olga", reviewed_at=at(9),
    )  # fmt: skip
    bare = sample("anon-x", 10, account_id=None, channel=None, language=None, creditor=None,
                  opener_variant=None, contacted_at=None, last_step=None)  # fmt: skip
    assert save_facts(store, [full, bare]) == 2
    assert load_facts(store, FactsQuery()) == [bare, full]
    assert load_one(store, "acct-A1") == full and load_one(store, "nope") is None
    # Saving again replaces, tags included.
    save_facts(store, [dataclasses.replace(full, tags=("bug",), outcome="no_contact")])
    assert load_one(store, "acct-A1") == dataclasses.replace(full, tags=("bug",), outcome="no_contact")
    assert count_facts(store, FactsQuery()) == 2


def test_every_filter_narrows_the_list_in_sql(store: AnalyticsStore) -> None:
    save_facts(store, [
        sample("c1", 0, channel="sms", language="en", creditor="acme", opener_variant="en:warm"),
        sample("c2", 60, channel="email", language="es", creditor="globex", opener_variant="es:short",
               outcome="plan_agreed", escalated_at=at(61), escalation_reasons=("hardship",)),
        sample("c3", 120, opted_out_at=at(121), fallbacks=2, user_turns=5, tags=("bug",)),
        sample("c4", 180, low_confidence=1, user_turns=3, reviewed=True, reviewed_by="olga",
               reviewed_at=at(200), tags=("bug", "tone")),
    ])  # fmt: skip

    def ids(**filters: Any) -> list[str]:
        query = FactsQuery(**filters)
        found = [f.conversation_id for f in load_facts(store, query)]
        assert count_facts(store, dataclasses.replace(query, limit=MAXL, offset=0)) == len(
            [f for f in load_facts(store, dataclasses.replace(query, limit=MAXL, offset=0))]
        )
        return found

    MAXL = model.MAX_LIMIT
    assert ids() == ["c4", "c3", "c2", "c1"]
    assert ids(since=at(60), until=at(180)) == ["c3", "c2"]
    assert ids(channel="email") == ["c2"]
    assert ids(language="es") == ["c2"]
    assert ids(creditor="globex") == ["c2"]
    assert ids(opener_variant="en:warm") == ["c4", "c3", "c1"]
    assert ids(outcome="plan_agreed") == ["c2"]
    assert ids(escalated=True) == ["c2"] and ids(escalated=False) == ["c4", "c3", "c1"]
    assert ids(opted_out=True) == ["c3"]
    assert ids(had_fallback=True) == ["c3"] and "c3" not in ids(had_fallback=False)
    assert ids(low_confidence=True) == ["c4"]
    assert ids(min_turns=3) == ["c4", "c3"] and ids(max_turns=3) == ["c4", "c2", "c1"]
    assert ids(min_turns=3, max_turns=4) == ["c4"]
    assert ids(tag="bug") == ["c4", "c3"] and ids(tag="tone") == ["c4"] and ids(tag="none") == []
    assert ids(reviewed=True) == ["c4"] and ids(reviewed=False) == ["c3", "c2", "c1"]
    assert ids(limit=2) == ["c4", "c3"] and ids(limit=2, offset=2) == ["c2", "c1"]
    assert ids(channel="sms", tag="bug", reviewed=False) == ["c3"]
    assert count_facts(store, FactsQuery(tag="bug", limit=1)) == 2


def test_a_bad_query_is_refused_as_a_bad_request() -> None:
    for bad in ({"limit": 0}, {"offset": -1}, {"min_turns": -1}, {"since": datetime(2026, 1, 1)}):
        with pytest.raises(ReviewError):
            FactsQuery(**bad)
    assert issubclass(ReviewError, InvalidRequest) and issubclass(ReviewError, AnalyticsError)


def test_tags_are_validated_added_once_and_removed(store: AnalyticsStore) -> None:
    save_facts(store, [sample("c1")])
    assert tag(store, "c1", "Needs Work", "olga", at(10)) is True
    assert tag(store, "c1", "needs work", "olga", at(11)) is False
    assert load_one(store, "c1").tags == ("needs work",)  # type: ignore[union-attr]
    for bad in ("", " ", "x" * 33, "no!", "ünï", "a;drop"):
        with pytest.raises(ReviewError):
            tag(store, "c1", bad, "olga", at(12))
    with pytest.raises(NotFound):
        tag(store, "nope", "bug", "olga", at(12))
    assert untag(store, "c1", "needs work", "olga", at(13)) is True
    assert untag(store, "c1", "needs work", "olga", at(13)) is False
    assert load_one(store, "c1").tags == ()  # type: ignore[union-attr]


def test_marking_reviewed_records_who_and_when_and_can_be_undone(store: AnalyticsStore) -> None:
    save_facts(store, [sample("c1")])
    mark_reviewed(store, "c1", "olga", at(30))
    stored = load_one(store, "c1")
    assert stored is not None and (stored.reviewed, stored.reviewed_by, stored.reviewed_at) == (
        True,
        "olga",
        at(30),
    )
    mark_reviewed(store, "c1", "olga", at(31), reviewed=False)
    stored = load_one(store, "c1")
    assert stored is not None and (stored.reviewed, stored.reviewed_by, stored.reviewed_at) == (
        False,
        None,
        None,
    )
    with pytest.raises(NotFound):
        mark_reviewed(store, "nope", "olga", at(30))


# --- summarise -----------------------------------------------------------------------------------


def rasa(store: AnalyticsStore, sender: str, *events: Mapping[str, Any]) -> None:
    with store.transaction() as connection:
        connection.execute(
            sa.insert(RASA_EVENTS), [{"sender_id": sender, "data": json.dumps(dict(e))} for e in events]
        )


def test_summarise_builds_each_conversation_from_both_tables(store: AnalyticsStore) -> None:
    rasa(
        store,
        CID,
        trigger(0),
        action(0, "utter_opener"),
        user(5, "hi", "greet", 0.3),
        action(5, "utter_greet"),
    )
    rasa(store, "acct-B2", user(7, "hola", "greet", channel="telegram", language="es"))
    # The gate's row names only the account: it belongs to acct-A1.
    store.add([opener(0.5), row(6, "escalated", conversation_id=CID, reason="hardship")])
    assert summarise(store, low_confidence=LOW) == 2
    (b2, a1) = load_facts(store, FactsQuery())
    assert a1 == facts(
        [trigger(0), action(0, "utter_opener"), user(5, "hi", "greet", 0.3), action(5, "utter_greet")],
        [opener(0.5), row(6, "escalated", conversation_id=CID, reason="hardship")],
    )
    assert (a1.contacted_at, a1.replied_at, a1.escalated_at, a1.low_confidence) == (at(0.5), at(5), at(6), 1)
    assert (b2.conversation_id, b2.channel, b2.language) == ("acct-B2", "telegram", "es")


def test_summarise_is_incremental_and_idempotent_and_keeps_ops_marks(store: AnalyticsStore) -> None:
    rasa(store, CID, user(1, "hi", "greet"))
    rasa(store, "acct-B2", user(2, "hi", "greet"))
    assert summarise(store, low_confidence=LOW) == 2
    assert summarise(store, low_confidence=LOW) == 0  # nothing new: nothing written
    tag(store, CID, "bug", "olga", at(3))
    mark_reviewed(store, CID, "olga", at(3))
    rasa(store, CID, user(10, "pay 50", "propose_payment"), action(10, "payment_plan_form"))
    store.add([row(11, "plan_created", account_id="A1")])
    assert summarise(store, low_confidence=LOW) == 1  # only the one that changed
    a1 = load_one(store, CID)
    assert a1 is not None
    assert (a1.user_turns, a1.plan_offered_at, a1.plan_created_at) == (2, at(10), at(11))
    assert (a1.tags, a1.reviewed, a1.reviewed_by) == (("bug",), True, "olga")
    assert store.cursor(model.SUMMARY_EVENTS_CURSOR) is not None
    assert store.cursor(model.SUMMARY_PRODUCT_CURSOR) is not None


def test_summarise_works_in_bounded_batches(store: AnalyticsStore) -> None:
    for n in range(7):
        rasa(store, f"acct-N{n}", user(n, "hi", "greet"), action(n, "utter_greet"))
    # 14 rows in 5 batches; a conversation whose rows two batches hold is counted once.
    assert summarise(store, low_confidence=LOW, batch=3) == 7
    assert count_facts(store, FactsQuery()) == 7
    assert {f.user_turns for f in load_facts(store, FactsQuery())} == {1}


def test_a_kill_in_the_middle_loses_nothing_and_repeats_nothing(
    store: AnalyticsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(4):
        rasa(store, f"acct-N{n}", user(n, "hi", "greet"))
    real = model._recompute
    calls = {"n": 0}

    def dies_on_the_second_batch(*args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        written = real(*args, **kwargs)
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed before the batch's commit
        return written  # type: ignore[no-any-return]

    monkeypatch.setattr(model, "_recompute", dies_on_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        summarise(store, low_confidence=LOW, batch=2)
    assert {f.conversation_id for f in load_facts(store, FactsQuery())} == {"acct-N0", "acct-N1"}
    monkeypatch.setattr(model, "_recompute", real)
    assert summarise(store, low_confidence=LOW, batch=2) == 2  # the second batch again, once
    assert count_facts(store, FactsQuery()) == 4
    assert summarise(store, low_confidence=LOW) == 0


def test_a_recount_after_retention_does_not_forget_what_the_row_knew(store: AnalyticsStore) -> None:
    rasa(store, CID, user(1, "hi", "greet"), slot(2, "verified", True), user(3, "ok", "affirm"))
    summarise(store, low_confidence=LOW)
    with store.transaction() as connection:  # the transcript rows go (retention)
        connection.execute(sa.delete(RASA_EVENTS))
    rasa(store, CID, user(60, "again", "greet"))
    summarise(store, low_confidence=LOW)
    a1 = load_one(store, CID)
    assert a1 is not None
    assert (a1.started_at, a1.last_at, a1.verified_at, a1.replied_at) == (at(1), at(60), at(2), at(1))
    assert a1.user_turns == 2  # the larger count: a lower bound, never less than before


def test_unreadable_rasa_rows_are_skipped(store: AnalyticsStore) -> None:
    with store.transaction() as connection:
        connection.execute(sa.insert(RASA_EVENTS), [{"sender_id": CID, "data": "not json"},
                                                     {"sender_id": CID, "data": None}])  # fmt: skip
    rasa(store, CID, user(1, "hi", "greet"))
    assert summarise(store, low_confidence=LOW) == 1
    assert load_one(store, CID).user_turns == 1  # type: ignore[union-attr]
