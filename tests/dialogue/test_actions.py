"""The custom actions, run against a recording backend: what they say and what they record."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from dialogue import backend as backend_module
from dialogue.actions.plans import (
    ActionAskPlanOffer,
    ActionCreatePlan,
    ActionPayInFull,
    ValidatePaymentPlanForm,
    chosen_option,
)
from dialogue.actions.preferences import (
    ActionChangeChannel,
    ActionChangeLanguage,
    ActionOptOut,
    ActionSetContactTime,
    ActionWrongPerson,
)
from dialogue.actions.session import ActionSessionStart
from dialogue.actions.support import ActionFlagHardship, ActionRecordDispute, ActionShareResources
from dialogue.actions.verification import ActionDisclose, ActionRememberRequest, ValidateVerifyForm
from dialogue.backend import AccountView, CreatedPlan, DialogueSettings, Resource

SETTINGS = DialogueSettings(
    company_name="Northwind Recoveries Ltd", company_display_name="Northwind", company_phone="+1 800 555 0199",
    company_website="https://n.example", company_verify_url="https://n.example/verify", company_licence="",
    verification_field="date_of_birth", verification_attempts=3,
    mini_miranda={"en": "This is a communication from a debt collector.", "es": "Esta es una comunicación de un cobrador de deudas."},
    resources={"en": (Resource("NFCC", "nfcc.org"),), "es": (Resource("NFCC en español", "nfcc.org/espanol"),)},
    min_instalment=Decimal(10), max_term_months=24, frequencies=("weekly", "fortnightly", "monthly"),
    first_payment_within_days=14, settlement_floor_percent=Decimal(70), settlement_offer_percent=Decimal(85),
)  # fmt: skip
ACCOUNT = AccountView("ACC-1", "Maria", Decimal("1250.50"), "USD", "Sunshine Bank", "es", "US")


@dataclass
class RecordingBackend:
    """Answers like the real one, and remembers every call."""

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    dob_answer: str = "12 de marzo de 1984"

    def settings(self) -> DialogueSettings:
        return SETTINGS

    def account(self, account_id: str) -> AccountView | None:
        return ACCOUNT if account_id == "ACC-1" else None

    def verify(self, account_id: str, answer: str, *, today: date) -> bool:
        return answer == self.dob_answer

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args))
            if name == "create_plan":
                return CreatedPlan(plan_id="p1", payment_link="https://pay.example/ACC-1/p1")
            return None

        return record

    def called(self, name: str) -> list[tuple[Any, ...]]:
        return [args for called, args in self.calls if called == name]


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> RecordingBackend:
    recording = RecordingBackend()
    monkeypatch.setattr(backend_module, "_backend", recording)
    return recording


def tracker(
    text: str = "", intent: str = "inform", language: str = "en", confidence: float = 0.95,
    ranking: list[dict[str, Any]] | None = None, **slots: Any,
) -> Tracker:  # fmt: skip
    values = {"account_id": "ACC-1", "channel": "sms", "language": language, **slots}
    latest = {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": [],
              "intent_ranking": ranking or [{"name": intent, "confidence": confidence}],
              "metadata": {"address": "+13055550191", "account_id": "ACC-1", "channel": "sms",
                           "external_id": "SM1"}}  # fmt: skip
    return Tracker("acct-ACC-1", values, latest, [], False, None, {}, "action_listen")


def run(
    action: Any, t: Tracker, domain: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, domain or {}))
    return dispatcher.messages, events


def validate(action: Any, method: str, value: Any, t: Tracker) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    result = asyncio.run(getattr(action, method)(value, dispatcher, t, {}))
    return dispatcher.messages, result


def slot_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def test_session_start_fills_identity_company_and_account_slots(store: RecordingBackend) -> None:
    t = tracker(session_started_metadata={"account_id": "ACC-1", "channel": "sms", "language": "es"})
    _, events = run(ActionSessionStart(), t, {"session_config": {"carry_over_slots_to_new_session": True}})
    slots = slot_events(events)
    assert slots["language"] == "es" and slots["account_known"] is True and slots["first_name"] == "Maria"
    assert slots["company_display_name"] == "Northwind" and slots["verification_field"] == "date_of_birth"
    assert events[0]["event"] == "session_started"
    assert (events[-1]["event"], events[-1]["name"]) == ("action", "action_listen")


def test_session_start_for_an_unknown_address_knows_no_account(store: RecordingBackend) -> None:
    t = Tracker(
        "anon-sms.1f2e", {"session_started_metadata": {"channel": "sms"}}, {}, [], False, None, {}, None
    )
    _, events = run(ActionSessionStart(), t, {})
    assert slot_events(events)["account_known"] is False


def test_a_debt_question_before_verification_is_remembered(store: RecordingBackend) -> None:
    _, events = run(ActionRememberRequest(), tracker("can i pay monthly", intent="request_payment_plan"))
    assert slot_events(events) == {"pending_request": "plan"}


def test_right_answer_verifies_and_keeps_no_personal_data_in_the_slot(store: RecordingBackend) -> None:
    messages, result = validate(
        ValidateVerifyForm(), "validate_verification_answer", "12 de marzo de 1984", tracker()
    )
    assert result == {"verification_answer": "confirmed", "verified": True, "verification_failures": 0}
    assert messages == []


def test_wrong_answers_retry_then_stop_and_flag_an_agent_without_disclosing(store: RecordingBackend) -> None:
    messages, result = validate(
        ValidateVerifyForm(), "validate_verification_answer", "1990", tracker(verification_failures=1)
    )
    assert result == {"verification_answer": None, "verification_failures": 2}
    assert messages[0]["response"] == "utter_verification_retry"
    messages, result = validate(
        ValidateVerifyForm(), "validate_verification_answer", "1991", tracker(verification_failures=2)
    )
    assert result["verified"] is False and result["verification_answer"] == "failed"
    assert messages == []
    assert store.called("flag_for_agent")[0][2] == "verification_failed"


def test_disclosure_says_the_statement_once_then_balance_and_choices(store: RecordingBackend) -> None:
    messages, events = run(ActionDisclose(), tracker(language="es", verified=True))
    assert messages[0]["text"] == "Esta es una comunicación de un cobrador de deudas."
    assert messages[1]["response"] == "utter_balance" and messages[1]["creditor"] == "Sunshine Bank"
    assert "1,250.50" in messages[1]["balance"]  # Spanish, US formatting (es_US)
    assert messages[2]["response"] == "utter_choices"
    assert slot_events(events) == {"disclosed": True, "pending_request": None}
    again, _ = run(ActionDisclose(), tracker(language="es", verified=True, disclosed=True))
    assert [m.get("response") for m in again] == ["utter_balance", "utter_choices"]


def test_disclosure_never_happens_unverified(store: RecordingBackend) -> None:
    messages, events = run(ActionDisclose(), tracker(verified=False))
    assert all(m.get("response") != "utter_balance" for m in messages) and events == []


def test_disclosure_skips_the_choices_when_the_person_already_asked_for_a_plan(
    store: RecordingBackend,
) -> None:
    messages, _ = run(ActionDisclose(), tracker(verified=True, disclosed=True, pending_request="plan"))
    assert [m.get("response") for m in messages] == ["utter_balance"]


def test_an_offer_that_fits_is_read_back(store: RecordingBackend) -> None:
    messages, result = validate(
        ValidatePaymentPlanForm(), "validate_plan_offer", "I can do 100 a month", tracker()
    )
    assert messages[0]["response"] == "utter_plan_readback"
    terms = json.loads(result["plan_offer"])
    assert terms["instalment"] == "100.00" and terms["frequency"] == "monthly"
    assert result["plan_alternatives"] is None
    assert (
        "12 payments of $100.00 every month" in result["plan_summary"] and "$50.50" in result["plan_summary"]
    )


def test_an_offer_below_policy_gets_numbered_alternatives_and_a_choice_picks_one(
    store: RecordingBackend,
) -> None:
    messages, result = validate(
        ValidatePaymentPlanForm(), "validate_plan_offer", "i can only do 5 a month", tracker()
    )
    assert result["plan_offer"] is None
    assert messages[0]["response"] == "utter_plan_alternatives"
    assert messages[0]["options"].startswith("1. ") and messages[0]["buttons"][0]["payload"] == "1"
    listed = result["plan_alternatives"]
    messages, result = validate(
        ValidatePaymentPlanForm(), "validate_plan_offer", "2", tracker(plan_alternatives=listed)
    )
    assert messages[0]["response"] == "utter_plan_readback"
    assert json.loads(result["plan_offer"]) == json.loads(listed)[1]


def test_an_offer_without_an_amount_is_asked_again(store: RecordingBackend) -> None:
    messages, result = validate(ValidatePaymentPlanForm(), "validate_plan_offer", "whatever works", tracker())
    assert result == {"plan_offer": None} and messages[0]["response"] == "utter_plan_not_understood"


def test_asking_for_options_lists_plans_that_fit(store: RecordingBackend) -> None:
    messages, events = run(ActionAskPlanOffer(), tracker())
    assert messages[0]["response"] == "utter_plan_options"
    assert len(json.loads(slot_events(events)["plan_alternatives"])) >= 2


def test_a_refused_read_back_is_changed_not_created(store: RecordingBackend) -> None:
    messages, result = validate(ValidatePaymentPlanForm(), "validate_plan_confirmed", False, tracker())
    assert result == {"plan_confirmed": None, "plan_offer": None, "plan_summary": None}
    assert messages[0]["response"] == "utter_plan_change"


def test_a_plan_is_created_only_after_an_explicit_yes(store: RecordingBackend) -> None:
    _, readback = validate(ValidatePaymentPlanForm(), "validate_plan_offer", "100 a month", tracker())
    run(ActionCreatePlan(), tracker(plan_offer=readback["plan_offer"], plan_confirmed=None))
    assert store.called("create_plan") == []
    messages, events = run(
        ActionCreatePlan(), tracker(plan_offer=readback["plan_offer"], plan_confirmed=True)
    )
    [(account_id, _, plan)] = store.called("create_plan")
    assert account_id == "ACC-1" and sum(i.amount for i in plan.instalments) == Decimal("1250.50")
    assert (
        messages[0]["response"] == "utter_plan_created"
        and messages[0]["link"] == "https://pay.example/ACC-1/p1"
    )
    assert slot_events(events)["plan_offer"] is None


def test_pay_in_full_sends_the_link_and_offers_a_settlement_once(store: RecordingBackend) -> None:
    messages, events = run(ActionPayInFull(), tracker())
    assert [m["response"] for m in messages] == ["utter_pay_in_full_link", "utter_settlement_offer"]
    assert "1,062.93" in messages[1]["settlement"]  # 85% of 1,250.50
    assert slot_events(events) == {"settlement_offered": True, "settlement_now": True}
    messages, events = run(ActionPayInFull(), tracker(settlement_offered=True))
    assert [m["response"] for m in messages] == ["utter_pay_in_full_link"]
    assert slot_events(events) == {"settlement_now": False}


def test_hardship_and_dispute_are_recorded_for_agents(store: RecordingBackend) -> None:
    run(ActionFlagHardship(), tracker("I lost my job", intent="hardship"))
    run(ActionRecordDispute(), tracker("not my debt", intent="dispute_debt"))
    assert [args[2] for args in store.called("flag_for_agent")] == ["hardship", "dispute"]
    assert store.called("pause_collection") == [("ACC-1", "dispute", "not my debt")]


def test_resources_come_from_configuration_in_the_conversation_language(store: RecordingBackend) -> None:
    messages, _ = run(ActionShareResources(), tracker(language="es"))
    assert messages[0]["resources"] == "- NFCC en español: nfcc.org/espanol"


def test_wrong_person_and_opt_out_are_recorded_for_the_address(store: RecordingBackend) -> None:
    messages, _ = run(ActionWrongPerson(), tracker("wrong number", intent="wrong_person"))
    assert [m["response"] for m in messages] == ["utter_wrong_person"]
    messages, _ = run(ActionOptOut(), tracker("stop texting me", intent="opt_out"))
    assert [m["response"] for m in messages] == ["utter_opt_out_confirmed"]
    # With the message that asked, so its reply is the one confirmation / closing message.
    assert store.called("mark_wrong_party") == [("ACC-1", "sms", "+13055550191", "SM1")]
    assert store.called("opt_out") == [("ACC-1", "sms", "+13055550191", "SM1")]


def test_an_unsure_wrong_person_is_asked_not_silenced(store: RecordingBackend) -> None:
    messages, events = run(
        ActionWrongPerson(), tracker("wrong number?", intent="wrong_person", confidence=0.2)
    )
    assert store.called("mark_wrong_party") == [] and messages == []
    assert slot_events(events) == {"wrong_person_asked": True}
    # "yes" to the question, or the button, is as clear as it gets.
    run(ActionWrongPerson(), tracker("yes", intent="affirm", confidence=0.3))
    run(ActionWrongPerson(), tracker("/wrong_person", intent="wrong_person", confidence=1.0))
    assert len(store.called("mark_wrong_party")) == 2


@pytest.mark.parametrize(
    ("text", "ranking"),
    [
        (
            "can you stop the late fees",
            [{"name": "opt_out", "confidence": 0.6}, {"name": "hardship", "confidence": 0.3}],
        ),
        (
            "please stop adding interest",
            [{"name": "opt_out", "confidence": 0.7}, {"name": "hardship", "confidence": 0.2}],
        ),
        (
            "stop texting me",
            [{"name": "opt_out", "confidence": 0.3}, {"name": "hardship", "confidence": 0.2}],
        ),
    ],
)
def test_stop_words_that_may_not_mean_stop_get_one_question_and_the_bot_carries_on(
    store: RecordingBackend, text: str, ranking: list[dict[str, Any]]
) -> None:
    messages, events = run(
        ActionOptOut(), tracker(text, intent="opt_out", confidence=ranking[0]["confidence"], ranking=ranking)
    )
    assert store.called("opt_out") == []
    assert [m["response"] for m in messages] == ["utter_ask_confirm_opt_out"]
    # The message goes back to the dialogue as its best other reading, metadata and all.
    assert [e["event"] for e in events] == ["rewind", "action", "user"]
    again = events[2]
    assert again["parse_data"]["intent"] == {"name": "hardship", "confidence": 1.0}
    assert again["text"] == text and again["metadata"]["external_id"] == "SM1"


def test_an_unsure_opt_out_with_nothing_else_to_go_on_only_asks(store: RecordingBackend) -> None:
    messages, events = run(ActionOptOut(), tracker("stop", intent="opt_out", confidence=0.3))
    assert [m["response"] for m in messages] == ["utter_ask_confirm_opt_out"] and events == []
    assert store.called("opt_out") == []


def test_a_crisis_seen_by_the_nlu_is_answered_escalated_and_marks_the_conversation(
    store: RecordingBackend,
) -> None:
    from dialogue.actions.care import ActionCrisis

    messages, events = run(ActionCrisis(), tracker("nobody would miss me", intent="crisis"))
    [(account, conversation)] = [args for args in store.called("raise_crisis")]
    assert (account, conversation) == ("ACC-1", "acct-ACC-1")
    assert slot_events(events)["vulnerable"] is True and len(messages) == 1


def test_a_crisis_the_worker_already_answered_only_marks_the_conversation(store: RecordingBackend) -> None:
    from dialogue.actions.care import ActionCrisis

    t = tracker("/crisis", intent="crisis")
    t.latest_message["metadata"]["screened"] = "crisis"
    messages, events = run(ActionCrisis(), t)
    assert messages == [] and store.called("raise_crisis") == []
    assert slot_events(events)["vulnerable"] is True


def test_distress_seen_by_the_screen_is_kept_for_the_replies(store: RecordingBackend) -> None:
    from dialogue.actions.language import ActionReadMessage

    t = tracker("this debt is killing me lol", intent="mood_good")
    t.latest_message["metadata"]["screen"] = {"concerns": [], "distress": True}
    _, events = run(ActionReadMessage(), t)
    assert slot_events(events) == {"distress": True}


def test_channel_change_is_stored_and_confirmed(store: RecordingBackend) -> None:
    messages, _ = run(ActionChangeChannel(), tracker("can you email me instead", intent="change_channel"))
    assert store.called("set_preference") == [("ACC-1", "channel", "email")]
    assert messages[0]["response"] == "utter_channel_changed"


def test_language_change_switches_the_slot(store: RecordingBackend) -> None:
    _, events = run(ActionChangeLanguage(), tracker("¿podemos hablar en español?", intent="change_language"))
    assert slot_events(events) == {"language": "es"}
    assert store.called("set_preference") == [("ACC-1", "language", "es")]


def test_contact_time_is_stored_and_read_back(store: RecordingBackend) -> None:
    messages, _ = run(
        ActionSetContactTime(), tracker("only after 6pm, not on sundays", intent="set_contact_time")
    )
    [(_, name, value)] = store.called("set_preference")
    assert name == "contact_window" and json.loads(value)["after"] == "18:00:00"
    assert messages[0]["window"] == "after 18:00, not on Sundays"


@pytest.mark.parametrize(("text", "count", "expected"), [("2", 3, 1), ("option 3", 3, 2), ("the first one", 3, 0),
                                                          ("la segunda", 3, 1), ("4", 3, None), ("50 a month", 3, None),
                                                          ("option two", 3, 1), ("one hundred a month", 3, None), ("2 a week", 3, None)])  # fmt: skip
def test_a_listed_option_is_picked_by_number_or_ordinal(text: str, count: int, expected: int | None) -> None:
    assert chosen_option(text, count) == expected


def test_a_channel_the_product_cannot_use_is_answered_honestly(store: RecordingBackend) -> None:
    messages, _ = run(
        ActionChangeChannel(), tracker("can we do this on whatsapp", intent="change_channel", language="es")
    )
    assert store.called("set_preference") == []
    assert (
        messages[0]["response"] == "utter_channel_not_available" and messages[0]["channel_name"] == "WhatsApp"
    )


def test_an_opener_without_metadata_finds_the_account_from_the_conversation_id(
    store: RecordingBackend,
) -> None:
    t = Tracker(
        "acct-ACC-1",
        {},
        {"text": "", "intent": {}, "entities": [], "metadata": {}},
        [],
        False,
        None,
        {},
        None,
    )
    _, events = run(ActionSessionStart(), t, {})
    slots = slot_events(events)
    assert (slots["account_known"], slots["first_name"], slots["language"]) == (True, "Maria", "es")


def test_a_message_clearly_in_the_other_language_switches_the_replies(store: RecordingBackend) -> None:
    from dialogue.actions.language import ActionReadMessage

    _, events = run(ActionReadMessage(), tracker("hola, cuánto debo?", intent="ask_balance", language="en"))
    assert slot_events(events) == {"language": "es"}
    _, events = run(ActionReadMessage(), tracker("ok", intent="affirm", language="en"))
    assert events == []


@pytest.mark.parametrize(
    ("conversation", "account"),
    [
        ("acct-ACC-1002", "ACC-1002"),
        ("acct-ACC-1002~3f2a9c1b0d4e", "ACC-1002"),
        ("anon-sms.abc", None),
        ("acct-", None),
    ],
)
def test_the_account_of_a_conversation_is_read_from_its_name(conversation: str, account: str | None) -> None:
    from bot.conversations.identity import account_id_of
    from dialogue.actions.session import account_id_from_conversation

    assert account_id_from_conversation(conversation) == account
    assert account_id_of(conversation) == account
