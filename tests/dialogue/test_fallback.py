"""The two-stage fallback: "did you mean ...?", and a "no" (the button or typed) that asks the
person to say it another way instead of putting "deny" in place of what they wrote."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from dialogue.actions.fallback import ActionDefaultAskAffirmation, ActionTwoStageFallback

LOOP = "action_two_stage_fallback"
#: How the classifier ranks an unclear message: a plan, perhaps, but not with confidence.
UNSURE_PLAN = [
    {"name": "nlu_fallback", "confidence": 0.9},
    {"name": "request_payment_plan", "confidence": 0.12},
    {"name": "ask_balance", "confidence": 0.11},
]
_ids = iter(range(1, 1000))


def said(text: str, intent: str, ranking: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A user event as Rasa sends it to the action server."""
    message_id = f"sms:SM{next(_ids)}"
    confidence = 1.0 if text.startswith("/") else 0.9
    parse_data = {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": [],
                  "intent_ranking": ranking or [{"name": intent, "confidence": confidence}],
                  "message_id": message_id, "metadata": {"channel": "sms"}}  # fmt: skip
    return {"event": "user", "timestamp": 1.0, "text": text, "parse_data": parse_data,
            "input_channel": "debtbot", "message_id": message_id, "metadata": {"channel": "sms"}}  # fmt: skip


def unclear(text: str = "wat abt the thing u sent cn i do it difrnt") -> dict[str, Any]:
    return said(text, "nlu_fallback", UNSURE_PLAN)


def action(name: str) -> dict[str, Any]:
    return {"event": "action", "timestamp": 1.0, "name": name}


def conversation(
    *messages: dict[str, Any], before: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The events Rasa sends while the loop answers the last of ``messages``: the first one
    started the loop, and the loop answered each one after it (before: what was said earlier)."""
    events = [*(before or []), action("action_listen")]
    for i, message in enumerate(messages):
        events.append(message)
        if i < len(messages) - 1:
            started = [{"event": "active_loop", "timestamp": 1.0, "name": LOOP}] if i == 0 else []
            events += [action(LOOP), *started, {"event": "bot", "timestamp": 1.0, "text": "..."}]
            events.append(action("action_listen"))
    return events


def tracker(events: list[dict[str, Any]], *, active: bool = True, language: str = "en") -> Tracker:
    latest = next(e for e in reversed(events) if e["event"] == "user")
    return Tracker(
        "acct-ACC-1", {"language": language, "account_id": "ACC-1", "channel": "sms"},
        {**latest["parse_data"]}, events, False, None, {"name": LOOP} if active else {}, "action_listen",
    )  # fmt: skip


def run(
    events: list[dict[str, Any]], *, active: bool = True, language: str = "en"
) -> tuple[list[Any], list[Any]]:
    dispatcher = CollectingDispatcher()
    result = asyncio.run(
        ActionTwoStageFallback().run(dispatcher, tracker(events, active=active, language=language), {})
    )
    return dispatcher.messages, result


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


def asks_to_rephrase(messages: list[dict[str, Any]], events: list[dict[str, Any]]) -> bool:
    """The bot asked to say it another way and the loop goes on (nothing reverted or ended)."""
    return [m.get("response") for m in messages] == ["utter_ask_rephrase"] and events == []


# --- "did you mean ...?" --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("language", "question", "yes"),
    [("en", "Sorry, just to check: do you want to set up a payment plan?", "Yes"),
     ("es", "¿Quiere hacer un plan de pagos?", "Sí")],
)  # fmt: skip
def test_the_no_button_is_rasas_no_in_both_languages(language: str, question: str, yes: str) -> None:
    dispatcher = CollectingDispatcher()
    asyncio.run(
        ActionDefaultAskAffirmation().run(dispatcher, tracker(conversation(unclear()), language=language), {})
    )
    [message] = dispatcher.messages
    assert message["text"] == question
    assert message["buttons"] == [
        {"title": yes, "payload": "/request_payment_plan"},
        {"title": "No", "payload": "/out_of_scope"},
    ]


def test_an_unclear_message_starts_the_loop_and_asks_did_you_mean() -> None:
    messages, events = run(conversation(unclear()), active=False)
    assert kinds(events) == ["active_loop"] and events[0]["name"] == LOOP
    assert messages[0]["buttons"][0]["payload"] == "/request_payment_plan"


# --- no: say it another way ----------------------------------------------------------------
@pytest.mark.parametrize(
    "no",
    [
        said("/out_of_scope", "out_of_scope"),
        said("no", "deny"),
        said("nope", "deny"),
        said("no es eso", "deny"),
    ],
    ids=["button", "no", "nope", "no es eso"],
)
def test_no_to_did_you_mean_asks_to_rephrase_and_never_stands_for_the_message(no: dict[str, Any]) -> None:
    messages, events = run(conversation(unclear(), no))
    assert asks_to_rephrase(messages, events)


@pytest.mark.parametrize(
    "no", [said("/out_of_scope", "out_of_scope"), said("no", "deny")], ids=["button", "typed"]
)
def test_the_rephrase_understood_stands_for_the_unclear_message(no: dict[str, Any]) -> None:
    rephrase = said("can i pay it off in bits", "request_payment_plan")
    messages, events = run(conversation(unclear(), no, rephrase))
    assert messages == []
    assert kinds(events) == ["active_loop", "rewind", "action", "user"]
    assert events[0]["name"] is None and events[2]["name"] == "action_listen"
    clarification = events[3]
    assert clarification["text"] == "can i pay it off in bits"
    assert clarification["parse_data"]["intent"] == {"name": "request_payment_plan", "confidence": 1.0}
    assert clarification["message_id"] == rephrase["message_id"]


def test_a_no_said_before_the_unclear_message_is_not_a_second_no() -> None:
    # "no" to something else, then an unclear message, then "no": ask to rephrase, don't give up.
    earlier = [action("action_listen"), said("no", "deny"), action("utter_no_rush")]
    messages, events = run(conversation(unclear(), said("no", "deny"), before=earlier))
    assert asks_to_rephrase(messages, events)


def test_after_the_rephrase_question_a_no_is_the_persons_answer_as_in_rasa() -> None:
    # "Could you say it another way?" - "no": that is what they say now, not a no to a guess.
    messages, events = run(conversation(unclear(), said("no", "deny"), said("no", "deny")))
    assert messages == [] and kinds(events) == ["active_loop", "rewind", "action", "user"]
    assert events[3]["parse_data"]["intent"]["name"] == "deny"


# --- yes: the guess stands for the message -------------------------------------------------
@pytest.mark.parametrize(
    "yes", [said("/request_payment_plan", "request_payment_plan"), said("yes", "affirm"), said("sí", "affirm")],
    ids=["button", "yes", "sí"],
)  # fmt: skip
def test_yes_to_did_you_mean_is_the_intent_asked_about(yes: dict[str, Any]) -> None:
    messages, events = run(conversation(unclear(), yes))
    assert messages == [] and kinds(events) == ["active_loop", "rewind", "action", "user"]
    clarification = events[3]
    assert clarification["parse_data"]["intent"] == {"name": "request_payment_plan", "confidence": 1.0}
    assert clarification["text"] == yes["text"] and clarification["message_id"] == yes["message_id"]


# --- what wins inside the loop -------------------------------------------------------------
@pytest.mark.parametrize(
    "other",
    [said("i cant go on anymore", "crisis"), said("please stop texting me", "opt_out"),
     said("can i talk to a person", "request_human")],
    ids=["crisis", "opt_out", "request_human"],
)  # fmt: skip
def test_anything_else_said_to_did_you_mean_is_answered_for_itself(other: dict[str, Any]) -> None:
    # The clarification stands for the unclear message, so the rules for it answer (crisis, opt-out).
    messages, events = run(conversation(unclear(), other))
    assert messages == [] and kinds(events) == ["active_loop", "rewind", "action", "user"]
    assert events[3]["parse_data"]["intent"]["name"] == other["parse_data"]["intent"]["name"]


# --- giving up -----------------------------------------------------------------------------
def test_the_rephrase_unclear_too_is_asked_about_once_more() -> None:
    messages, events = run(conversation(unclear(), said("no", "deny"), unclear("idk teh montly thng")))
    assert events == [] and messages[0]["text"].startswith("Sorry, just to check")


@pytest.mark.parametrize(
    "no", [said("/out_of_scope", "out_of_scope"), said("no", "deny")], ids=["button", "typed"]
)
def test_a_second_no_gives_up_with_the_offer_of_a_person_and_forgets_the_message(no: dict[str, Any]) -> None:
    messages, events = run(conversation(unclear(), said("no", "deny"), unclear("idk teh montly thng"), no))
    assert [m.get("response") for m in messages] == ["utter_default"]
    assert kinds(events) == ["active_loop", "rewind"] and events[0]["name"] is None


def test_two_unclear_messages_in_a_row_give_up() -> None:
    messages, events = run(conversation(unclear(), unclear("hmm ??")))
    assert [m.get("response") for m in messages] == ["utter_default"]
    assert kinds(events) == ["active_loop", "rewind"]


def test_without_the_message_in_the_events_the_latest_message_is_asked_about() -> None:
    latest = unclear()["parse_data"]
    t = Tracker("acct-ACC-1", {"language": "en"}, latest, [], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionTwoStageFallback().run(dispatcher, t, {}))
    assert kinds(events) == ["active_loop"] and dispatcher.messages[0]["text"].startswith(
        "Sorry, just to check"
    )
