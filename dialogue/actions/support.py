"""Hardship, money help, disputes, payment claims, people and callbacks.

The actions record what happened (for the agents and to pause collection); what the person
reads is in the domain's responses, said by the rules, so ops can tune the wording."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from dialogue.actions.common import backend, latest_text, who


class ActionFlagHardship(Action):
    """Flags the conversation for an agent with the person's own words as the reason."""

    def name(self) -> str:
        return "action_flag_hardship"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        identity = who(tracker)
        backend().flag_for_agent(
            identity.account_id,
            identity.conversation_id,
            "hardship",
            latest_text(tracker),
            message_id=identity.message_id,
        )
        return []


class ActionShareResources(Action):
    """Free, independent money help from the configuration, in the conversation's language."""

    def name(self) -> str:
        return "action_share_resources"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        identity = who(tracker)
        resources = backend().settings().resources.get(identity.language, ())
        listing = "\n".join(f"- {r.name}: {r.contact}" for r in resources)
        dispatcher.utter_message(response="utter_resources", resources=listing)
        return []


class ActionRecordDispute(Action):
    """Records the dispute, pauses collection and flags an agent."""

    def name(self) -> str:
        return "action_record_dispute"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        identity = who(tracker)
        store = backend()
        # Once per message: a retried turn (an action after this one failed) pauses nothing
        # new (the pause is a flag) and puts the dispute in the agents' queue only once.
        if identity.account_id:
            store.pause_collection(identity.account_id, "dispute", latest_text(tracker))
        store.flag_for_agent(identity.account_id, identity.conversation_id, "dispute", latest_text(tracker),
                             message_id=identity.message_id)  # fmt: skip
        return []


class ActionHandoff(Action):
    """Escalates the conversation to the agents' queue."""

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        identity = who(tracker)
        backend().flag_for_agent(
            identity.account_id,
            identity.conversation_id,
            "asked_for_person",
            latest_text(tracker),
            message_id=identity.message_id,
        )
        return []


class ValidateAlreadyPaidForm(FormValidationAction):
    """Keeps what the person says about their payment; card numbers never get this far."""

    def name(self) -> str:
        return "validate_already_paid_form"

    async def validate_paid_date(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return {"paid_date": str(slot_value).strip()[:200] or None}

    async def validate_paid_method(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return {"paid_method": str(slot_value).strip()[:200] or None}


class ActionRecordPaymentClaim(Action):
    """Records the claim and stops collection messages until an agent has checked it."""

    def name(self) -> str:
        return "action_record_payment_claim"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        identity = who(tracker)
        store = backend()
        detail = f"paid: {tracker.get_slot('paid_date')}; method: {tracker.get_slot('paid_method')}"
        if identity.account_id:
            store.pause_collection(identity.account_id, "payment_claimed", detail)
        store.flag_for_agent(identity.account_id, identity.conversation_id, "payment_claimed", detail,
                             message_id=identity.message_id)  # fmt: skip
        return []


class ValidateCallbackForm(FormValidationAction):
    """A preferred time (understood as a date when possible) and phone or video."""

    def name(self) -> str:
        return "validate_callback_form"

    async def validate_callback_time(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(slot_value).strip()
        return {"callback_time": text[:200] or None}

    async def validate_callback_format(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = str(slot_value).lower()
        if "video" in text:
            return {"callback_format": "video"}
        if any(word in text for word in ("phone", "call", "llamada", "teléfono", "telefono", "ring")):
            return {"callback_format": "phone"}
        dispatcher.utter_message(response="utter_ask_callback_format")
        return {"callback_format": None}


class ActionRecordCallback(Action):
    """Records the callback request for agents and escalates."""

    def name(self) -> str:
        return "action_record_callback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        identity = who(tracker)
        when = str(tracker.get_slot("callback_time") or "")
        how = str(tracker.get_slot("callback_format") or "phone")
        # Why a call helps ("I can't read very well") travels with the request to the agent.
        reasons = screened_concerns(tracker)
        detail = f"{how}: {when}" + (f" (signs: {', '.join(reasons)})" if reasons else "")
        store = backend()
        store.record_callback(identity.account_id, identity.conversation_id, when, how,
                              message_id=identity.message_id)  # fmt: skip
        store.flag_for_agent(identity.account_id, identity.conversation_id, "callback", detail,
                             message_id=identity.message_id)  # fmt: skip
        return []


def screened_concerns(tracker: Tracker, last_messages: int = 6) -> list[str]:
    """The signs of vulnerability the worker's safety screen saw in the person's recent
    messages (``metadata.screen.concerns``), oldest first, each once."""
    seen: dict[str, None] = {}
    users = [e for e in tracker.events if e.get("event") == "user"][-last_messages:]
    for event in users:
        screen = (event.get("metadata") or {}).get("screen")
        if isinstance(screen, dict):
            for concern in screen.get("concerns") or ():
                seen[str(concern)] = None
    return list(seen)
