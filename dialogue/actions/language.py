"""What every message tells before the dialogue acts on it: its language, and whether the
worker's safety screen saw distress in it."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from dialogue.actions.common import latest_text
from dialogue.language import detect_language


def screened_distress(tracker: Tracker) -> bool:
    """The worker's safety screen saw distress in the latest message ("this debt is killing me")."""
    metadata: dict[str, Any] = tracker.latest_message.get("metadata") or {}
    screen = metadata.get("screen")
    return bool(isinstance(screen, dict) and screen.get("distress"))


class ActionReadMessage(Action):
    """The ``language`` and ``distress`` slots' mapping: run by Rasa after every message.

    The account's language holds until a message is clearly in the other language; an
    explicit request ("¿podemos hablar en español?") is handled by action_change_language,
    which also stores it on the account. ``distress`` follows each message, so an idiom of
    distress read as "fine" is never answered cheerfully.
    """

    def name(self) -> str:
        return "action_read_message"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        events: list[EventType] = []
        distress = screened_distress(tracker)
        if distress != bool(tracker.get_slot("distress")):
            events.append(SlotSet("distress", distress))
        if (tracker.latest_message.get("intent") or {}).get("name") == "change_language":
            return events
        detected = detect_language(latest_text(tracker))
        if detected is not None and detected != tracker.get_slot("language"):
            events.append(SlotSet("language", detected))
        return events
