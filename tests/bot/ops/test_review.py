"""One conversation turn by turn (Rasa's events with the product's interleaved by time) and *Save as
test story* from the SQL events, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from bot.clock import Clock
from bot.ops.analytics.schema import RASA_EVENTS
from bot.ops.analytics.store import AnalyticsStore, EventRow
from bot.ops.review import (
    SqlTrackerSource,
    conversation_turns,
    save_test_story,
    turns_from_events,
)
from bot.ops.stories import StoryError, story_from_events
from tests.bot.ops.test_stories import session_start, verification

#: The PostgreSQL server and ``analytics_database`` (SQLite and PostgreSQL, one test each).
pytest_plugins = ["tests.fakes.postgres"]

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
CID = "acct-A1"
LOW = 0.6


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def timed(minutes: float, event: Mapping[str, Any]) -> dict[str, Any]:
    return {**event, "timestamp": at(minutes).timestamp()}


def user(
    minutes: float, text: str, intent: str, confidence: float = 0.9, entities: Any = ()
) -> dict[str, Any]:
    return timed(minutes, {
        "event": "user", "text": text,
        "parse_data": {"intent": {"name": intent, "confidence": confidence}, "entities": list(entities)},
        "metadata": {"channel": "sms", "address": "+14155550123"},
    })  # fmt: skip


def action(minutes: float, name: str) -> dict[str, Any]:
    return timed(minutes, {"event": "action", "name": name})


def bot(minutes: float, text: str) -> dict[str, Any]:
    return timed(minutes, {"event": "bot", "text": text})


def row(minutes: float, kind: str, **values: Any) -> dict[str, Any]:
    return {"at": at(minutes), "kind": kind, **values}


def test_each_message_has_its_intent_confidence_entities_and_the_actions_after_it() -> None:
    amount = {"entity": "amount", "value": "50", "start": 4, "end": 6}
    turns = turns_from_events([
        timed(0, {"event": "user", "text": "EXTERNAL: EXTERNAL_opener", "metadata": {"is_external": True},
                  "parse_data": {"intent": {"name": "EXTERNAL_opener", "confidence": 1.0}}}),
        action(0, "utter_opener"), bot(0, "Hi Maria, this is Acme."), action(0, "action_listen"),
        user(5, "pay 50 a month", "propose_payment", 0.42, [amount]),
        action(5, "action_extract_slots"), action(5, "payment_plan_form"), bot(5, "Shall we set it up?"),
        action(5, "action_listen"),
        user(6, "asdf", "nlu_fallback", 0.1), action(6, "action_two_stage_fallback"),
        user(7, "yes", "affirm", 0.95), action(7, "action_default_fallback"),
    ], [], low_confidence=LOW)  # fmt: skip
    kinds = [turn.kind for turn in turns]
    assert kinds == ["trigger", "bot", "user", "bot", "user", "user"]
    opener, _, pay, said, nonsense, yes = turns
    assert opener.actions == ("utter_opener",) and not opener.low_confidence
    assert (pay.text, pay.intent, pay.confidence, pay.low_confidence) == (
        "pay 50 a month",
        "propose_payment",
        0.42,
        True,
    )
    assert [(e.entity, e.value) for e in pay.entities] == [("amount", "50")]
    assert pay.actions == ("action_extract_slots", "payment_plan_form")  # action_listen left out
    assert said.text == "Shall we set it up?" and said.at == at(5)
    assert nonsense.fallback and nonsense.low_confidence
    assert yes.fallback and not yes.low_confidence  # the bot fell back after it
    assert all(turn.text != "+14155550123" for turn in turns)


def test_the_products_events_are_put_among_the_messages_by_time() -> None:
    rasa = [user(1, "hi", "greet"), action(1, "utter_greet"), bot(1, "Hello"),
            timed(3, {"event": "slot", "name": "verified", "value": True}), user(10, "stop", "opt_out")]  # fmt: skip
    product = [
        row(12, "opted_out", channel="sms"),
        row(0, "sent", message_kind="opener", channel="sms"),
        row(2, "delivery_delivered", channel="sms"),
        row(2.5, "withheld", rule="quiet_hours", reason="21:00-08:00 local", message_kind="reminder"),
        row(4, "escalated", reason="hardship"),
        row(5, "claimed", agent="ana"),
        row(6, "closed", outcome="plan_set_up", agent="ana"),
        row(7, "payment", detail=json.dumps({"type": "instalment.paid"})),
        row(8, "delivery_failed", detail={"error_code": "30003"}),
        row(9, "other"),
    ]  # fmt: skip
    turns = turns_from_events(rasa, product, low_confidence=LOW)
    shown = [(turn.kind, turn.label or turn.text) for turn in turns]
    assert shown == [
        ("gate", "Sent"), ("user", "hi"), ("bot", "Hello"), ("delivery", "delivered"), ("gate", "Withheld"),
        ("event", "Verified"), ("event", "Escalated"), ("event", "Claimed by an agent"), ("event", "Closed"),
        ("event", "Payment"), ("delivery", "failed"), ("user", "stop"), ("event", "Opted out"),
    ]  # fmt: skip
    by_label = {turn.label: turn for turn in turns if turn.label}
    assert (by_label["Withheld"].rule, by_label["Withheld"].message_kind) == ("quiet_hours", "reminder")
    assert by_label["Escalated"].detail == "hardship"
    assert (by_label["Closed"].detail, by_label["Closed"].agent) == ("plan_set_up", "ana")
    assert by_label["Payment"].detail == "instalment.paid"
    assert by_label["failed"].detail == "30003"


def test_an_agents_takeover_shows_as_events() -> None:
    turns = turns_from_events(
        [timed(1, {"event": "pause"}), timed(2, {"event": "resume"})], [], low_confidence=LOW
    )
    assert [turn.label for turn in turns] == ["Bot paused (an agent has the conversation)", "Bot resumed"]


# --- from the store ------------------------------------------------------------------------------


@pytest.fixture
def store(analytics_database: str) -> Iterator[AnalyticsStore]:
    store = AnalyticsStore(analytics_database, clock=Clock(T0))
    store.migrate()
    yield store
    store.close()


def rasa_rows(store: AnalyticsStore, sender: str, events: list[Mapping[str, Any]]) -> None:
    with store.transaction() as connection:
        connection.execute(
            sa.insert(RASA_EVENTS), [{"sender_id": sender, "data": json.dumps(dict(e))} for e in events]
        )


def test_the_turns_come_from_both_tables_of_the_store(store: AnalyticsStore) -> None:
    rasa_rows(store, CID, [user(1, "hi", "greet"), action(1, "utter_greet"), bot(1, "Hello")])
    rasa_rows(store, "acct-B2", [user(1, "other", "greet")])
    store.add([
        EventRow(source="audit", source_id="1-0", at=at(0), kind="sent", account_id="A1", message_kind="opener"),
        EventRow(source="agent_queue", source_id="2-0", at=at(2), kind="escalated", conversation_id=CID,
                 reason="request_human"),
        EventRow(source="agent_queue", source_id="3-0", at=at(2), kind="escalated", conversation_id="acct-B2"),
    ])  # fmt: skip
    turns = conversation_turns(store, CID, low_confidence=LOW)
    assert [(t.kind, t.label or t.text) for t in turns] == [
        ("gate", "Sent"),
        ("user", "hi"),
        ("bot", "Hello"),
        ("event", "Escalated"),
    ]
    assert turns[1].actions == ("utter_greet",)
    assert conversation_turns(store, "acct-nobody", low_confidence=LOW) == []


def test_the_sql_tracker_has_the_events_in_order_and_the_slots_they_left(store: AnalyticsStore) -> None:
    events = session_start(account_known=True, first_name="James", account_id="ACC-1002") + verification()
    rasa_rows(store, CID, events)
    tracker = SqlTrackerSource(store).tracker(CID)
    assert tracker["events"] == events
    assert tracker["slots"]["verified"] is True and tracker["slots"]["account_id"] == "ACC-1002"
    assert SqlTrackerSource(store).tracker("acct-nobody") == {
        "sender_id": "acct-nobody",
        "events": [],
        "slots": {},
    }
    # The story from SQL is the story from Rasa's own tracker.
    assert story_from_events(tracker["events"], name="x") == story_from_events(events, name="x")


def test_save_as_test_story_writes_an_anonymised_story_from_sql(
    store: AnalyticsStore, tmp_path: Path
) -> None:
    events = session_start(account_known=True, first_name="James", account_id="ACC-1002") + verification()
    rasa_rows(store, CID, events)
    out = tmp_path / "rasa_project" / "tests"
    path = save_test_story(store, CID, None, out)
    assert path.parent == out and path.name.startswith("test_conversation_")
    text = path.read_text(encoding="utf-8")
    assert "James" not in text and "ACC-1002" not in text and "2 November 1979" not in text
    [story] = yaml.safe_load(text)["stories"]
    [answer] = [step for step in story["steps"] if step.get("intent") == "inform"]
    assert answer["user"].endswith(" 1985](date)")  # another date, written the same way
    with pytest.raises(StoryError):
        save_test_story(store, "acct-nobody", None, out)


def test_a_story_folder_that_cannot_be_written_is_a_story_error(
    store: AnalyticsStore, tmp_path: Path
) -> None:
    rasa_rows(store, CID, session_start() + verification())
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoryError, match="could not be written"):
        save_test_story(store, CID, None, blocker / "tests")
