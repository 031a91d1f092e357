"""The two-stage fallback: "Did you mean ...?" in plain words, and a "no" that means no.

Rasa 3.6's own loop (``rasa/core/actions/two_stage_fallback.py``) takes only ``out_of_scope``
as the person's "no". A typed "no" is read as ``deny``, which ends the loop as a clarification:
the person's unclear message is replaced by "deny", and inside a form or an offer that
answers a question they were never asked (the plan's read-back, the identity check). So this
module overrides ``action_two_stage_fallback`` (a custom action of that name replaces Rasa's,
see ``action_for_name_or_text``) with the same loop, step for step, except that:

- a ``deny`` in answer to "did you mean ...?" is a "no", like the No button (``/out_of_scope``):
  the person is asked to say it another way; after the rephrase question a "no" is the
  person's message again, as in Rasa;
- an ``affirm`` in answer to "did you mean ...?" is a "yes" to what was asked, like the Yes
  button, not "yes" to whatever the conversation was at;
- the history that decides when to give up is this loop's own messages, not the last three of
  the conversation (a "no" before the unclear message is not a failed second question).

A rule cannot do this: Rasa's RulePolicy predicts an active loop before any rule unless the
loop rejected, and the two-stage loop never rejects; on the "no" it has already reverted the
unclear message by the time any rule could look.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ActiveLoop, EventType, UserUtteranceReverted
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


LOOP = "action_two_stage_fallback"
NLU_FALLBACK = "nlu_fallback"
#: Rasa's "no" to either question of the loop (the No button's payload).
OUT_OF_SCOPE = "out_of_scope"
#: A typed "no" / "yes": what they mean depends on the question just asked.
DENY = "deny"
AFFIRM = "affirm"


def proposed_intent(ranking: Sequence[dict[str, Any]]) -> str | None:
    """The intent "did you mean ...?" puts to the person for a message with this ranking."""
    for candidate in ranking:
        name = candidate.get("name")
        if name in MEANINGS:
            return str(name)
    return None


class ActionDefaultAskAffirmation(Action):
    """Asks whether the most likely meaning is right, with yes/no buttons."""

    def name(self) -> str:
        return "action_default_ask_affirmation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        language = who(tracker).language
        intent = proposed_intent(tracker.latest_message.get("intent_ranking") or [])
        if intent is None:
            dispatcher.utter_message(response="utter_ask_rephrase")
            return []
        meaning = MEANINGS[intent][1 if language == "es" else 0]
        question = (
            f"¿Quiere {meaning}?" if language == "es" else f"Sorry, just to check: do you want to {meaning}?"
        )
        yes, no = ("Sí", "No") if language == "es" else ("Yes", "No")
        dispatcher.utter_message(
            text=question,
            buttons=[{"title": yes, "payload": f"/{intent}"}, {"title": no, "payload": f"/{OUT_OF_SCOPE}"}],
        )
        return []


class ActionTwoStageFallback(Action):
    """Rasa's two-stage fallback loop, with a typed "no" or "yes" read as the buttons are.

    Unclear message -> "did you mean X?" (``action_default_ask_affirmation``). Then:
    yes (button ``/X`` or typed) -> the unclear message becomes X; no (button ``/out_of_scope``
    or typed) -> "could you say it another way?"; the rephrase understood -> it replaces the
    unclear message; not understood -> "did you mean ...?" about it; a second "no", or two
    unclear messages in a row -> ``utter_default`` (the offer of a person) and the unclear
    message is forgotten, as Rasa's ``action_default_fallback`` does.
    """

    def name(self) -> str:
        return LOOP

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        just_activated = (tracker.active_loop or {}).get("name") != LOOP
        # The messages of this loop; never empty in a real tracker (the loop starts on a message).
        history = _loop_history(tracker.events, just_activated) or [
            _Said(
                {
                    "event": "user",
                    "text": tracker.latest_message.get("text"),
                    "parse_data": tracker.latest_message,
                }
            )
        ]
        events: list[EventType] = [ActiveLoop(LOOP)] if just_activated else []
        if not _is_done(history):
            if just_activated or history[-1].intent == NLU_FALLBACK:
                events += await ActionDefaultAskAffirmation().run(dispatcher, tracker, domain)
            else:
                dispatcher.utter_message(response="utter_ask_rephrase")
            return events
        events.append(ActiveLoop(None))
        if _gives_up(history):
            # Rasa's action_default_fallback: the offer of a person, and the unclear message
            # reverted, as if it had never been sent.
            dispatcher.utter_message(response="utter_default")
            return [*events, UserUtteranceReverted()]
        return [*events, UserUtteranceReverted(), ActionExecuted("action_listen"), _clarification(history)]


class _Said:
    """One user message of the loop: its event (a dict, as the tracker sends it) and intent."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        parse_data = event.get("parse_data") or {}
        self.intent: str | None = (parse_data.get("intent") or {}).get("name")
        self.ranking: list[dict[str, Any]] = parse_data.get("intent_ranking") or []


def _loop_history(events: Sequence[dict[str, Any]], just_activated: bool) -> list[_Said]:
    """The user messages of this fallback loop, oldest first: the unclear message that started
    it (the last one before the loop's activation) and every message since."""
    said = [i for i, e in enumerate(events) if e.get("event") == "user"]
    if just_activated or not said:
        return [_Said(events[i]) for i in said[-1:]]
    activations = [
        i for i, e in enumerate(events) if e.get("event") == "active_loop" and e.get("name") == LOOP
    ]
    start = activations[-1] if activations else 0
    before = [i for i in said if i < start]
    first = before[-1] if before else start
    return [_Said(events[i]) for i in said if i >= first]


def _answer(history: Sequence[_Said], index: int) -> str | None:
    """What message ``index`` of the loop answered: ``"no"``, ``"yes"`` or ``None`` (neither).

    Only right after "did you mean ...?" (the message before it unclear) are a typed ``deny``
    and ``affirm`` answers; after "could you say it another way?" they are the rephrase.
    """
    if index <= 0:
        return None
    intent = history[index].intent
    if intent == OUT_OF_SCOPE:
        return "no"
    if history[index - 1].intent != NLU_FALLBACK:
        return None
    if intent == DENY:
        return "no"
    if intent == AFFIRM and proposed_intent(history[index - 1].ranking) is not None:
        return "yes"
    return None


def _is_done(history: Sequence[_Said]) -> bool:
    last = len(history) - 1
    clarified = history[last].intent != NLU_FALLBACK and _answer(history, last) != "no"
    return clarified or _gives_up(history)


def _gives_up(history: Sequence[_Said]) -> bool:
    last = len(history) - 1
    two_unclear_in_a_row = last >= 1 and history[last].intent == history[last - 1].intent == NLU_FALLBACK
    second_no = (
        last >= 3
        and _answer(history, last) == "no"
        and history[last - 1].intent == NLU_FALLBACK
        and _answer(history, last - 2) == "no"
    )
    return two_unclear_in_a_row or second_no


def _clarification(history: Sequence[_Said]) -> dict[str, Any]:
    """The person's last message, standing in for the unclear one (as in Rasa: a copy, fully
    confident). A typed yes stands for what was asked, as the Yes button does."""
    event = copy.deepcopy(history[-1].event)
    parse_data = event.setdefault("parse_data", {})
    if _answer(history, len(history) - 1) == "yes":
        intent = proposed_intent(history[-2].ranking)
        parse_data["intent"] = {"name": intent, "confidence": 1.0}
        parse_data["intent_ranking"] = [{"name": intent, "confidence": 1.0}]
        parse_data["entities"] = []
    else:
        parse_data.setdefault("intent", {})["confidence"] = 1.0
    event["timestamp"] = time.time()
    return event
