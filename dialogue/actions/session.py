"""Session start: carry the channel, account and language the worker sends into slots."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

#: Metadata keys the worker sends with every message, copied into slots of the same name.
METADATA_SLOTS = ("account_id", "channel", "language")
SUPPORTED_LANGUAGES = ("en", "es")


def slots_from_metadata(metadata: dict[str, Any] | None) -> list[EventType]:
    """The ``SlotSet`` events for the metadata the worker sent; unknown languages are ignored."""
    events: list[EventType] = []
    for key in METADATA_SLOTS:
        value = (metadata or {}).get(key)
        if value in (None, ""):
            continue
        if key == "language" and value not in SUPPORTED_LANGUAGES:
            continue
        events.append(SlotSet(key, str(value)))
    return events


class ActionSessionStart(Action):
    """Starts a session and fills the identity slots from the message metadata."""

    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        metadata = tracker.get_slot("session_started_metadata")
        events: list[EventType] = [SessionStarted()]
        # A custom session start must carry slots over itself (Rasa's default one does it).
        if domain.get("session_config", {}).get("carry_over_slots_to_new_session", True):
            events += [
                SlotSet(name, value)
                for name, value in tracker.current_slot_values().items()
                if name != "session_started_metadata" and value is not None
            ]
        # Then the metadata of the message that opened the session wins.
        events += slots_from_metadata(metadata if isinstance(metadata, dict) else None)
        events.append(ActionExecuted("action_listen"))
        return events
