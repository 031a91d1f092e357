"""The first stage of the two-stage fallback: "Did you mean ...?" in plain words."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from dialogue.actions.common import who

#: How each intent is put back to the person when the bot is unsure.
MEANINGS: dict[str, tuple[str, str]] = {
    "ask_balance": ("ask how much is owed", "saber cuánto debe"),
    "request_payment_plan": ("set up a payment plan", "hacer un plan de pagos"),
    "propose_payment": ("offer an amount you can pay", "ofrecer una cantidad que puede pagar"),
    "pay_in_full": ("pay everything at once", "pagarlo todo de una vez"),
    "already_paid": ("tell us you've already paid", "decirnos que ya pagó"),
    "hardship": (
        "tell us things are difficult right now",
        "contarnos que ahora mismo está pasando por un momento difícil",
    ),
    "dispute_debt": ("tell us this debt isn't right", "decirnos que esta deuda no es correcta"),
    "wrong_person": ("tell us we have the wrong person", "decirnos que no es la persona que buscamos"),
    "request_human": ("talk to a person", "hablar con una persona"),
    "request_callback": ("ask for a call", "pedir una llamada"),
    "opt_out": ("stop receiving messages", "dejar de recibir mensajes"),
    "change_channel": ("be contacted another way", "que le contactemos por otro medio"),
    "change_language": ("change language", "cambiar de idioma"),
    "set_contact_time": ("choose when we contact you", "elegir cuándo le contactamos"),
    "ask_resources": ("get help with money worries", "recibir ayuda con sus finanzas"),
    "ask_who_is_this": ("know who is writing", "saber quién le escribe"),
}


class ActionDefaultAskAffirmation(Action):
    """Asks whether the most likely meaning is right, with yes/no buttons."""

    def name(self) -> str:
        return "action_default_ask_affirmation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        language = who(tracker).language
        ranking = tracker.latest_message.get("intent_ranking") or []
        candidates = [r.get("name") for r in ranking if r.get("name") in MEANINGS]
        if not candidates:
            dispatcher.utter_message(response="utter_ask_rephrase")
            return []
        intent = str(candidates[0])
        meaning = MEANINGS[intent][1 if language == "es" else 0]
        question = (
            f"¿Quiere {meaning}?" if language == "es" else f"Sorry, just to check: do you want to {meaning}?"
        )
        yes, no = ("Sí", "No") if language == "es" else ("Yes", "No")
        dispatcher.utter_message(
            text=question,
            buttons=[{"title": yes, "payload": f"/{intent}"}, {"title": no, "payload": "/deny"}],
        )
        return []
