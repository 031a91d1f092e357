"""The conversation follows the language a person clearly writes in."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from dialogue.actions.common import latest_text
from dialogue.language import detect_language


class ActionSetLanguage(Action):
    """The ``language`` slot's mapping: run by Rasa after every message.

    The account's language holds until a message is clearly in the other language; an
    explicit request ("¿podemos hablar en español?") is handled by action_change_language,
    which also stores it on the account.
    """

    def name(self) -> str:
        return "action_set_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if (tracker.latest_message.get("intent") or {}).get("name") == "change_language":
            return []
        detected = detect_language(latest_text(tracker))
        if detected is None or detected == tracker.get_slot("language"):
            return []
        return [SlotSet("language", detected)]
