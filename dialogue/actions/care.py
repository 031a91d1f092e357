"""A sign of crisis, seen by the NLU (the second net behind the worker's safety screen).

The same path as the screen's: the product escalates at the top priority, pauses collection
and answers with the crisis line of the person's country (all in the backend, shared with the
worker), and the conversation is marked vulnerable so no later bot message pushes for payment.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from dialogue.actions.common import backend, latest_text, who

#: Metadata the worker sets when its safety screen already answered and escalated.
SCREENED = "screened"


class ActionCrisis(Action):
    """Help and a person; nothing about a debt."""

    def name(self) -> str:
        return "action_crisis"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        metadata: dict[str, Any] = tracker.latest_message.get("metadata") or {}
        if metadata.get(SCREENED) != "crisis":
            identity = who(tracker)
            reply = backend().raise_crisis(
                identity.account_id,
                identity.conversation_id,
                channel=identity.channel,
                address=identity.address,
                language=identity.language,
                text=latest_text(tracker),
                message_id=str(metadata.get("external_id") or ""),
            )
            dispatcher.utter_message(text=reply)
        # Whatever was asked before (a plan, a payment) is dropped: a person takes it from here.
        return [
            SlotSet("vulnerable", True),
            SlotSet("pending_request", None),
            SlotSet("requested_slot", None),
        ]
