"""*Save as test story*: tracker events become the test story ``rasa test`` expects, personal
details become consistent placeholders that keep their kind, and the file is written beside the
others without replacing one. (The e2e test, tests/e2e/test_export_story.py, runs ``rasa test``
on a real conversation's export.)"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.ops.stories import (
    FAKE_DATE_OF_BIRTH,
    StoryError,
    annotate,
    anonymise,
    conversation_slots,
    export_story,
    story_from_events,
    story_yaml,
)
from bot.store.accounts import Account, parse_row
from dialogue.parsing import parse_date, parse_money

PROJECT = Path(__file__).resolve().parents[3] / "rasa_project"
STEERING = {"account_known", "verified", "pending_request", "vulnerable"}

JAMES = {
    "account_id": "ACC-1002", "first_name": "James", "last_name": "Whitfield", "phone": "+12025550143",
    "email": "j.whitfield@example.net", "telegram": "jwhit_dc", "balance": "389.99", "currency": "USD",
    "date_of_birth": "1979-11-02", "postal_code": "20002", "account_last4": "7710",
}  # fmt: skip


# --- tracker events, as Rasa 3.6 serialises them ----------------------------------------------------


def session_start(**slots: Any) -> list[dict[str, Any]]:
    return [
        action("action_session_start"),
        {"event": "session_started"},
        *[slot(name, value) for name, value in slots.items()],
        action("action_listen"),
    ]


def action(name: str) -> dict[str, Any]:
    return {"event": "action", "name": name, "policy": "RulePolicy", "confidence": 1.0}


def slot(name: str, value: Any) -> dict[str, Any]:
    return {"event": "slot", "name": name, "value": value}


def loop(name: str | None) -> dict[str, Any]:
    return {"event": "active_loop", "name": name}


def bot(text: str) -> dict[str, Any]:
    return {"event": "bot", "text": text, "data": {}, "metadata": {"utter_action": "utter_x"}}


def user(text: str, intent: str, entities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "event": "user", "text": text, "input_channel": "debtbot", "message_id": "m1",
        "parse_data": {"text": text, "intent": {"name": intent, "confidence": 0.9},
                       "entities": entities or [], "intent_ranking": []},
    }  # fmt: skip


def entity(text: str, span: str, kind: str, value: Any = None) -> dict[str, Any]:
    start = text.index(span)
    found = {"entity": kind, "start": start, "end": start + len(span), "extractor": "CRFEntityExtractor"}
    return found | {"value": span if value is None else value}


def verification(answer: str = "2 November 1979") -> list[dict[str, Any]]:
    """hello, good thanks, the identity check (a form) answered with a date of birth."""
    return [
        user("hello", "greet"), slot("language", "en"), slot("distress", False),
        action("utter_greet"), bot("Hi James"), action("action_listen"),
        user("good thanks", "mood_good"),
        action("utter_mood_good"), bot("Glad to hear it."),
        action("verify_form"), loop("verify_form"), slot("requested_slot", "verification_answer"),
        bot("What is your date of birth?"), action("action_listen"),
        user(answer, "inform", [entity(answer, answer, "date")]), slot("verification_answer", answer),
        action("verify_form"), slot("verification_answer", "confirmed"), slot("verified", True),
        slot("requested_slot", None), loop(None),
        action("utter_verified"), bot("Thank you, that's confirmed."),
        action("action_disclose"), slot("disclosed", True), bot("You owe $389.99"), action("action_listen"),
    ]  # fmt: skip


VERIFIED_STEPS: list[dict[str, Any]] = [
    {"user": "hello", "intent": "greet"},
    {"action": "utter_greet"},
    {"user": "good thanks", "intent": "mood_good"},
    {"action": "utter_mood_good"},
    {"action": "verify_form"},
    {"active_loop": "verify_form"},
    {"user": "[2 November 1979](date)", "intent": "inform"},
    {"action": "verify_form"},
    {"slot_was_set": [{"verified": True}]},
    {"active_loop": None},
    {"action": "utter_verified"},
    {"action": "action_disclose"},
]


# --- story_from_events ---------------------------------------------------------------------------


def test_a_session_through_the_identity_form_becomes_the_steps_of_a_hand_written_story() -> None:
    events = session_start(account_known=True, first_name="James", language="en") + verification()

    story = story_from_events(events, name="verified", slots=STEERING)

    assert story == {
        "story": "verified",
        "steps": [{"slot_was_set": [{"account_known": True}]}, *VERIFIED_STEPS],
    }


def test_without_a_slot_list_every_slot_is_written() -> None:
    events = session_start(account_known=True, first_name="James") + verification()

    steps = story_from_events(events, name="all slots")["steps"]

    assert steps[0] == {"slot_was_set": [{"account_known": True}, {"first_name": "James"}]}
    assert {"slot_was_set": [{"verification_answer": "2 November 1979"}]} in steps
    assert {
        "slot_was_set": [{"verification_answer": "confirmed"}, {"verified": True}, {"requested_slot": None}]
    } in steps


def test_only_the_latest_session_is_kept_starting_from_the_slots_it_carried_over() -> None:
    first = session_start(account_known=True) + verification()
    second = [
        *session_start(account_known=True, verified=True, disclosed=True, pending_request=None),
        user("whats my balance", "ask_balance"), action("action_disclose"), action("action_listen"),
    ]  # fmt: skip

    story = story_from_events(first + second, name="second session", slots=STEERING)

    assert story["steps"] == [
        {"slot_was_set": [{"account_known": True}, {"verified": True}]},
        {"user": "whats my balance", "intent": "ask_balance"},
        {"action": "action_disclose"},
    ]


def test_a_later_session_without_a_message_leaves_the_one_before() -> None:
    events = session_start(account_known=True) + verification() + session_start(account_known=True)

    assert story_from_events(events, name="x", slots=STEERING)["steps"][1:] == VERIFIED_STEPS


def test_an_opener_sent_by_the_product_is_written_as_its_intent() -> None:
    opener = {
        "event": "user", "text": "EXTERNAL: EXTERNAL_opener", "metadata": {"is_external": True},
        "parse_data": {"intent": {"name": "EXTERNAL_opener"}, "entities": []},
    }  # fmt: skip
    events = [*session_start(account_known=True), opener, action("utter_opener"), action("action_listen")]

    steps = story_from_events(events, name="opener", slots=STEERING)["steps"]

    assert steps[1:] == [
        {"user": "/EXTERNAL_opener", "intent": "EXTERNAL_opener"},
        {"action": "utter_opener"},
    ]


def test_entities_are_annotated_inline_and_a_normalised_value_is_kept() -> None:
    text = "I can do fifty a month from 12 March"
    entities = [
        entity(text, "fifty", "amount", "50"),
        entity(text, "a month", "frequency"),
        entity(text, "a month", "frequency"),  # the same span twice (two extractors): once
        {"entity": "date", "value": "2024-03-12", "extractor": "DucklingEntityExtractor"},  # no position
    ]

    assert annotate(text, entities) == (
        'I can do [fifty]{"entity": "amount", "value": "50"} [a month](frequency) from 12 March'
    )


def test_form_rejections_are_left_to_rasa_test_and_rewinds_and_undos_are_applied() -> None:
    events = [
        *session_start(account_known=True),
        user("good thanks", "mood_good"), action("utter_mood_good"),
        action("verify_form"), loop("verify_form"), action("action_listen"),
        user("who is this?", "ask_who_is_this"),
        {"event": "action_execution_rejected", "name": "verify_form"},
        {"event": "loop_interrupted", "is_interrupted": True},
        action("utter_who_is_this"), action("verify_form"), loop("verify_form"), action("action_listen"),
        user("asdkjh", "nlu_fallback"), action("action_default_fallback"),
        {"event": "undo"}, {"event": "rewind"},
        user("2 November 1979", "inform"), action("verify_form"), {"event": "undo"}, action("verify_form"),
        {"event": "user_featurization", "use_text_for_featurization": False},
    ]  # fmt: skip

    steps = story_from_events(events, name="rejected", slots=STEERING)["steps"]

    assert steps[1:] == [
        {"user": "good thanks", "intent": "mood_good"}, {"action": "utter_mood_good"},
        {"action": "verify_form"}, {"active_loop": "verify_form"},
        {"user": "who is this?", "intent": "ask_who_is_this"},
        {"action": "utter_who_is_this"}, {"action": "verify_form"}, {"active_loop": "verify_form"},
        {"user": "2 November 1979", "intent": "inform"}, {"action": "verify_form"},
    ]  # fmt: skip


def test_an_agents_takeover_is_skipped_and_the_story_goes_on_with_the_bot_after_it() -> None:
    events = [
        *session_start(account_known=True),
        user("i want to speak to a human", "request_human"), action("action_handoff"),
        action("utter_handoff"), action("action_listen"),
        {"event": "pause"},
        user("hello? anyone", "greet"), bot("Hi, Dana here from the team."),
        user("i was born 2 November 1979", "inform"), slot("verified", True),
        bot("Thanks, you're verified. Back to the assistant now."),
        {"event": "resume"},
        user("whats my balance", "ask_balance"), action("action_disclose"), action("action_listen"),
    ]  # fmt: skip

    steps = story_from_events(events, name="takeover", slots=STEERING)["steps"]

    assert steps[1:] == [
        {"user": "i want to speak to a human", "intent": "request_human"},
        {"action": "action_handoff"}, {"action": "utter_handoff"},
        {"slot_was_set": [{"verified": True}]},  # the state the bot resumes in
        {"user": "whats my balance", "intent": "ask_balance"}, {"action": "action_disclose"},
    ]  # fmt: skip
    assert "Dana" not in str(steps) and "hello? anyone" not in str(steps)


def test_a_takeover_never_handed_back_ends_the_story_and_an_unanswered_message_is_dropped() -> None:
    events = [
        *session_start(account_known=True),
        user("hi", "greet"), action("utter_greet"), action("action_listen"),
        {"event": "pause"}, user("are you there", "greet"), bot("An agent writes"),
    ]  # fmt: skip
    assert story_from_events(events, name="paused", slots=STEERING)["steps"][1:] == [
        {"user": "hi", "intent": "greet"}, {"action": "utter_greet"},
    ]  # fmt: skip

    unanswered = [
        *session_start(account_known=True),
        user("hi", "greet"), action("utter_greet"), action("action_listen"), user("hello?", "greet"),
    ]  # fmt: skip
    assert story_from_events(unanswered, name="unanswered", slots=STEERING)["steps"][-1] == {
        "action": "utter_greet"
    }


def test_a_conversation_without_a_user_message_is_no_story() -> None:
    with pytest.raises(StoryError):
        story_from_events(session_start(account_known=True), name="empty")
    with pytest.raises(StoryError):
        story_from_events(
            [*session_start(account_known=True), {"event": "pause"}, user("hi", "greet")], name="paused"
        )


def test_the_slots_written_are_those_that_steer_the_dialogue() -> None:
    slots = conversation_slots(PROJECT / "domain.yml")

    assert {"account_known", "verified", "pending_request", "vulnerable", "wrong_person_asked"} <= slots
    assert not slots & {
        "language",
        "first_name",
        "verification_answer",
        "plan_offer",
        "account_id",
        "distress",
    }


# --- anonymise -----------------------------------------------------------------------------------


def _story(*texts: str, slots: list[dict[str, Any]] | None = None, name: str = "s") -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"slot_was_set": slots or [{"account_known": True}]}]
    for text in texts:
        steps += [{"user": text, "intent": "inform"}, {"action": "utter_x"}]
    return {"story": name, "steps": steps}


def _texts(story: dict[str, Any]) -> list[str]:
    return [step["user"] for step in story["steps"] if "user" in step]


def test_no_detail_of_the_account_is_left_in_the_story() -> None:
    story = _story(
        "hi its James Whitfield here", "JAMES WHITFIELD", "2 November 1979", "11/02/1979", "1979-11-02",
        "Nov 2nd, 1979", "2 de noviembre de 1979", "call me on (202) 555-0143 or +1 202 555 0143",
        "email j.whitfield@example.net", "i owe $389.99?", "is it 389", "my zip is 20002",
        "card ending 7710", "@jwhit_dc on telegram", "account ACC-1002", name="James at ACC-1002",
    )  # fmt: skip

    written = story_yaml(anonymise(story, JAMES))

    originals = ["James", "Whitfield", "1979", "November", "noviembre", "Nov ", "555-0143", "555 0143",
                 "2025550143", "whitfield@", "389", "20002", "7710", "jwhit", "ACC-1002"]  # fmt: skip
    assert [o for o in originals if o.lower() in written.lower()] == []


def test_the_same_value_gets_the_same_placeholder_everywhere_and_others_another() -> None:
    story = _story(
        "James here", "james again", "my brother is not James",
        "mail me at j.whitfield@example.net or at jw@work.example.org, j.whitfield@example.net",
        "+12025550143 or 202-555-0143, or my wife at +13125550178",
        slots=[{"account_known": True}, {"first_name": "James"}],
    )  # fmt: skip

    texts = _texts(anonymise(story, JAMES))

    assert texts[:3] == ["Alex here", "alex again", "my brother is not Alex"]
    assert texts[3] == "mail me at person1@example.com or at person2@example.com, person1@example.com"
    assert texts[4] == "+12025550100 or 202-555-0100, or my wife at +12025550101"
    assert anonymise(story, JAMES)["steps"][0]["slot_was_set"] == [
        {"account_known": True},
        {"first_name": "Alex"},
    ]


def test_a_date_stays_a_date_written_the_same_way_and_the_date_of_birth_is_the_fixed_one() -> None:
    written = ["2 November 1979", "11/02/1979", "1979-11-02", "Nov 2nd, 1979", "2 de noviembre de 1979"]
    texts = _texts(anonymise(_story(*written), JAMES))

    assert texts == ["14 July 1985", "07/14/1985", "1985-07-14", "Jul 14th, 1985", "14 de julio de 1985"]
    today = date(2025, 6, 1)
    for text in texts:
        language = "es" if "de julio" in text else "en"
        assert parse_date(text, today, language) == FAKE_DATE_OF_BIRTH  # the dialogue reads it the same
    spanish = _texts(anonymise(_story("02/11/1979"), JAMES))  # day first: still the date of birth
    assert spanish == ["14/07/1985"] and parse_date(spanish[0], today, "es") == FAKE_DATE_OF_BIRTH


def test_a_payment_date_keeps_its_year_and_an_older_date_that_may_be_a_birth_loses_it() -> None:
    texts = _texts(anonymise(_story("i'll pay on 15 March 2026", "01/01/1990", "3 March 1979"), JAMES))

    assert re.fullmatch(r"i'll pay on \d+ \w+ 2026", texts[0]) and "15 March" not in texts[0]
    assert re.fullmatch(r"\d\d/\d\d/1985", texts[1]) and texts[1] != "07/14/1985"  # not the fake birth
    assert "1979" not in texts[2] and parse_date(texts[2], date(2025, 1, 1)) is not None


def test_an_amount_stays_an_amount_in_the_same_format_and_currency() -> None:
    story = _story("I can do [50](amount) [a month](frequency)", "ok 50 then", "i owe $389.99?",
                   "20 quid a week", "1,250.50 USD", "option 2")  # fmt: skip

    texts = _texts(anonymise(story, JAMES))

    fifty = re.fullmatch(r"I can do \[(\d\d)\]\(amount\) \[a month\]\(frequency\)", texts[0])
    assert fifty and fifty.group(1) != "50" and texts[1] == f"ok {fifty.group(1)} then"
    balance = re.fullmatch(r"i owe \$(\d{3}\.\d\d)\?", texts[2])
    assert balance and balance.group(1) != "389.99"
    assert parse_money(texts[2].removeprefix("i owe "), "USD") is not None
    assert re.fullmatch(r"\d\d quid a week", texts[3]) and texts[3] != "20 quid a week"
    assert re.fullmatch(r"\d,\d{3}\.\d\d USD", texts[4]) and texts[4] != "1,250.50 USD"
    assert texts[5] == "option 2"  # a choice, not an amount


def test_entity_annotations_stay_around_the_placeholders() -> None:
    story = _story(
        "born [2 November 1979](date), James", '[fifty]{"entity": "amount", "value": "50"} a month',
        "its [$389.99](amount) right",
    )  # fmt: skip

    texts = _texts(anonymise(story, JAMES))

    assert texts[0] == "born [14 July 1985](date), Alex"
    assert texts[1] == '[fifty]{"entity": "amount", "value": "50"} a month'
    assert re.fullmatch(r"its \[\$\d{3}\.\d\d\]\(amount\) right", texts[2]) and "389" not in texts[2]


def test_without_an_account_details_are_still_found_by_their_shape() -> None:
    story = _story("I'm at maria.lopez@example.com, 305-555-0191, born 03/12/1984, I owe $1,250.50")

    [text] = _texts(anonymise(story, None))

    assert text.startswith("I'm at person1@example.com, 202-555-0100, born ")
    assert "maria" not in text and "0191" not in text and "1984" not in text and "1,250.50" not in text


# --- writing the file ----------------------------------------------------------------------------


class FakeAccounts:
    def get(self, account_id: str) -> Account | None:
        row = {**JAMES, "creditor": "Capitol Mobile", "language": "en"}
        return parse_row(row, languages=["en"], default_language="en", verification_field="date_of_birth")


class FakeRasa:
    def __init__(self, events: list[dict[str, Any]], slots: dict[str, Any]) -> None:
        self.answer = {"sender_id": "x", "events": events, "slots": slots}
        self.asked: list[str] = []

    def tracker(self, conversation_id: str) -> dict[str, Any]:
        self.asked.append(conversation_id)
        return self.answer


def test_export_writes_an_anonymised_story_rasa_reads_and_never_overwrites(tmp_path: Path) -> None:
    events = session_start(account_known=True, first_name="James", account_id="ACC-1002") + verification()
    rasa = FakeRasa(events, {"account_id": "ACC-1002", "first_name": "James"})
    out = tmp_path / "tests"
    conversation = "anon-sms-+12025550143"

    accounts: Any = FakeAccounts()
    first = export_story(rasa, conversation, accounts, out, domain=PROJECT / "domain.yml")
    second = export_story(rasa, conversation, accounts, out, domain=PROJECT / "domain.yml")
    named = export_story(rasa, conversation, None, out, name="Wrong DOB loop!", domain=PROJECT / "domain.yml")

    assert rasa.asked == [conversation] * 3
    assert first.name.startswith("test_conversation_") and second.name == first.name.replace(".yml", "_2.yml")
    assert named.name == "test_wrong_dob_loop.yml"
    text = first.read_text(encoding="utf-8")
    assert "2025550143" not in text and "James" not in text and "ACC-1002" not in text
    data = yaml.safe_load(text)
    assert data["version"] == "3.1"
    [story] = data["stories"]
    assert story["steps"][0] == {"slot_was_set": [{"account_known": True}]}
    assert {"user": "[2 November 1979](date)", "intent": "inform"} not in story["steps"]
    assert {"user": "[14 July 1985](date)", "intent": "inform"} in story["steps"]

    # Rasa's own reader takes it as a test story, the entity annotation read as one.
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader

    [step] = YAMLStoryReader(Domain.load(str(PROJECT / "domain.yml"))).read_from_file(
        first, skip_validation=True
    )
    said = [e for e in step.events if isinstance(e, UserUttered)]
    assert [e.intent_name for e in said] == ["greet", "mood_good", "inform"]
    assert said[2].text == "14 July 1985" and said[2].entities[0]["entity"] == "date"
    assert [e.action_name for e in step.events if isinstance(e, ActionExecuted)][-1] == "action_disclose"


def test_export_of_a_conversation_rasa_does_not_know_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoryError):
        export_story(FakeRasa([], {}), "acct-nobody", None, tmp_path)
    assert list(tmp_path.iterdir()) == []
