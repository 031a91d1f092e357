"""Session start: who this is, in which language, and what the company is called."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from dialogue.actions.common import LANGUAGES, backend
from dialogue.backend import DialogueSettings

#: Metadata keys the worker sends with every message, copied into slots of the same name.
METADATA_SLOTS = ("account_id", "channel", "language")
#: Slots that only make sense within one session: a new session starts without them.
SESSION_ONLY_SLOTS = ("verification_answer", "plan_offer", "plan_confirmed", "requested_slot")


def slots_from_metadata(metadata: dict[str, Any] | None) -> list[EventType]:
    """The ``SlotSet`` events for the metadata the worker sent; unknown languages are ignored."""
    events: list[EventType] = []
    for key in METADATA_SLOTS:
        value = (metadata or {}).get(key)
        if value in (None, ""):
            continue
        if key == "language" and value not in LANGUAGES:
            continue
        events.append(SlotSet(key, str(value)))
    return events


def account_id_from_conversation(conversation_id: str) -> str | None:
    """The account of a conversation named ``acct-<account id>``, or ``acct-<account id>~<address>``
    for a reply from another address (``bot.conversations.identity.conversation_id_for`` names them)."""
    if not conversation_id.startswith("acct-"):
        return None
    return conversation_id[len("acct-") :].split("~", 1)[0] or None


def company_slots(settings: DialogueSettings) -> list[EventType]:
    """Company details and the verification field, for the responses that mention them."""
    return [
        SlotSet("company_name", settings.company_name),
        SlotSet("company_display_name", settings.company_display_name),
        SlotSet("company_phone", settings.company_phone),
        SlotSet("company_verify_url", settings.company_verify_url),
        SlotSet("verification_field", settings.verification_field),
    ]


class ActionSessionStart(Action):
    """Starts a session, carries slots over, and fills identity and company slots."""

    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        metadata = tracker.get_slot("session_started_metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        events: list[EventType] = [SessionStarted()]
        # A custom session start must carry slots over itself (Rasa's default one does it).
        if domain.get("session_config", {}).get("carry_over_slots_to_new_session", True):
            events += [
                SlotSet(name, value)
                for name, value in tracker.current_slot_values().items()
                if name != "session_started_metadata" and name not in SESSION_ONLY_SLOTS and value is not None
            ]
        # Then the metadata of the message that opened the session wins.
        events += slots_from_metadata(metadata)
        store = backend()
        events += company_slots(store.settings())
        # An opener started by us (trigger_intent) carries no metadata: the conversation id
        # of a known account says who it is ("acct-<account id>").
        account_id = metadata.get("account_id") or account_id_from_conversation(tracker.sender_id)
        account = store.account(str(account_id)) if account_id else None
        events.append(SlotSet("account_known", account is not None))
        if account is not None:
            events.append(SlotSet("first_name", account.first_name))
            if not metadata.get("language"):
                events.append(SlotSet("language", account.language))
        events.append(ActionExecuted("action_listen"))
        return events
