"""The right-party check before any mention of a debt, and the disclosure once it passed."""

from __future__ import annotations

from datetime import date
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from dialogue.actions.common import backend, who
from dialogue.plans import format_money

#: What someone asked for before verification, by intent: the dialogue carries on with it.
PENDING_FOR_INTENT = {
    "ask_balance": "balance",
    "request_payment_plan": "plan",
    "propose_payment": "plan",
    "pay_in_full": "pay_in_full",
}


class ActionRememberRequest(Action):
    """Notes what the person asked for, so the dialogue continues with it after verification."""

    def name(self) -> str:
        return "action_remember_request"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        return [SlotSet("pending_request", PENDING_FOR_INTENT.get(str(intent)))]


class ValidateVerifyForm(FormValidationAction):
    """Checks the answer against the account; after the configured number of misses, stops
    and hands the conversation to an agent without saying anything about a debt."""

    def name(self) -> str:
        return "validate_verify_form"

    async def validate_verification_answer(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        identity = who(tracker)
        store = backend()
        failures = int(tracker.get_slot("verification_failures") or 0)
        # The answer itself (a date of birth...) is personal: the slot only says how it went,
        # and so does what the product is told (the agents' history and inbox).
        if identity.account_id and store.verify(identity.account_id, str(slot_value), today=date.today()):
            store.record_verification(identity.account_id, identity.conversation_id, verified=True,
                                      message_id=identity.message_id)  # fmt: skip
            return {"verification_answer": "confirmed", "verified": True, "verification_failures": 0}
        failures += 1
        store.record_verification(identity.account_id, identity.conversation_id, verified=False,
                                  failures=failures, message_id=identity.message_id)  # fmt: skip
        if failures >= store.settings().verification_attempts:
            store.flag_for_agent(
                identity.account_id,
                identity.conversation_id,
                "verification_failed",
                f"{failures} wrong answers",
                message_id=identity.message_id,
            )
            return {"verification_answer": "failed", "verified": False, "verification_failures": failures}
        dispatcher.utter_message(response="utter_verification_retry")
        return {"verification_answer": None, "verification_failures": failures}


class ActionDisclose(Action):
    """After verification: the debt-collector statement once, then the balance and creditor in
    plain words, then the choices (unless the person already asked for something)."""

    def name(self) -> str:
        return "action_disclose"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if not tracker.get_slot("verified"):
            # Never reached through the rules; a guard in case a story goes astray.
            dispatcher.utter_message(response="utter_ask_verification_answer")
            return []
        identity = who(tracker)
        store = backend()
        account = store.account(identity.account_id) if identity.account_id else None
        if account is None:
            dispatcher.utter_message(response="utter_cannot_find_account")
            return []
        events: list[EventType] = []
        if not tracker.get_slot("disclosed"):
            dispatcher.utter_message(text=store.settings().mini_miranda[identity.language])
            events.append(SlotSet("disclosed", True))
        dispatcher.utter_message(
            response="utter_balance",
            creditor=account.creditor,
            balance=format_money(account.balance, account.currency, identity.language, account.country),
        )
        if tracker.get_slot("pending_request") in (None, "balance"):
            dispatcher.utter_message(response="utter_choices")
        events.append(SlotSet("pending_request", None))
        return events
