"""The person decides how we reach them: wrong person, opt-out, channel, language, hours."""

from __future__ import annotations

import time
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from dialogue.actions.common import LANGUAGES, backend, entity, latest_text, who
from dialogue.opt_out import CONFIDENT, OptOutDecision, decide
from dialogue.parsing import ContactWindow, parse_contact_window

#: Words for channels, in both languages, and the channel each means.
CHANNEL_WORDS = {
    "email": "email", "e-mail": "email", "mail": "email", "correo": "email", "correo electrónico": "email",
    "text": "sms", "texts": "sms", "sms": "sms", "message": "sms", "mensaje": "sms", "mensajes": "sms",
    "telegram": "telegram",
    "whatsapp": "whatsapp", "wasap": "whatsapp", "facebook": "facebook", "messenger": "facebook",
}  # fmt: skip
#: Channels the product can use; other wishes (e.g. WhatsApp) are answered honestly.
SUPPORTED_CHANNELS = ("sms", "email", "telegram")
#: How each channel is named to the person (English, Spanish).
CHANNEL_NAMES: dict[str, tuple[str, str]] = {
    "sms": ("text message", "mensaje de texto"),
    "email": ("email", "correo electrónico"),
    "telegram": ("Telegram", "Telegram"),
    "whatsapp": ("WhatsApp", "WhatsApp"),
    "facebook": ("Facebook Messenger", "Facebook Messenger"),
}
LANGUAGE_WORDS = {
    "english": "en", "inglés": "en", "ingles": "en",
    "spanish": "es", "español": "es", "espanol": "es", "castellano": "es",
}  # fmt: skip


def channel_from(text: str, hint: str | None) -> str | None:
    """The channel someone asks for, from the entity or the words of the message."""
    for candidate in (hint, text):
        lowered = (candidate or "").lower()
        for word, channel in sorted(CHANNEL_WORDS.items(), key=lambda item: -len(item[0])):
            if word in lowered:
                return channel
    return None


def language_from(text: str, hint: str | None) -> str | None:
    """The language someone asks for, from the entity or the words of the message."""
    for candidate in (hint, text):
        lowered = (candidate or "").lower()
        for word, language in LANGUAGE_WORDS.items():
            if word in lowered:
                return language
    return None


def _intent(tracker: Tracker) -> tuple[str | None, float]:
    intent = tracker.latest_message.get("intent") or {}
    return intent.get("name"), float(intent.get("confidence") or 0.0)


def _pressed(tracker: Tracker) -> bool:
    """The latest message is a button's payload ("/opt_out"), not words: as clear as it gets."""
    return latest_text(tracker).startswith("/")


def _message_id(tracker: Tracker) -> str:
    metadata: dict[str, Any] = tracker.latest_message.get("metadata") or {}
    return str(metadata.get("external_id") or "")


#: Intents that are never "what the person asked" to carry on with after a clarifying
#: question: the ones that silence someone, and the fallbacks.
_NOT_CARRIED_ON = frozenset({"opt_out", "wrong_person", "nlu_fallback", "out_of_scope", "crisis"})
#: Below this, the runner-up intent is a guess too weak to act on.
_CARRY_ON_CONFIDENCE = 0.1


def carry_on(tracker: Tracker) -> list[EventType]:
    """Hand the latest message back to the dialogue as its best other reading, so the bot goes
    on with what the person asked (Rasa's own two-stage fallback does the same: revert the
    message, listen, and utter it again with the chosen intent)."""
    message = tracker.latest_message
    ranking = [
        r for r in message.get("intent_ranking") or []
        if r.get("name") not in _NOT_CARRIED_ON and float(r.get("confidence") or 0.0) >= _CARRY_ON_CONFIDENCE
    ]  # fmt: skip
    if not ranking:
        return []
    chosen = {"name": ranking[0]["name"], "confidence": 1.0}
    parse_data = {**message, "intent": chosen, "intent_ranking": [chosen]}
    return [
        UserUtteranceReverted(),
        ActionExecuted("action_listen"),
        {
            "event": "user",
            "timestamp": time.time(),
            "text": message.get("text"),
            "parse_data": parse_data,
            "input_channel": tracker.get_latest_input_channel(),
            "metadata": message.get("metadata") or {},
        },
    ]


class ActionWrongPerson(Action):
    """Marks the address as not reaching the account holder: never contacted about it again.

    Silencing someone for good needs a confident reading: a button, a "yes" to the question,
    or a confident intent; otherwise one question, with the person's own answer to follow."""

    def name(self) -> str:
        return "action_wrong_person"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent, confidence = _intent(tracker)
        if not (_pressed(tracker) or intent == "affirm" or confidence >= CONFIDENT):
            return [SlotSet("wrong_person_asked", True)]  # the rules ask the question
        identity = who(tracker)
        backend().mark_wrong_party(
            identity.account_id, identity.channel, identity.address, _message_id(tracker)
        )
        # The one closing message: no name, no debt (the worker lets it through to a wrong party).
        dispatcher.utter_message(response="utter_wrong_person")
        return [SlotSet("verified", False), SlotSet("wrong_person_asked", False)]


class ActionOptOut(Action):
    """No more messages on this channel, with one confirmation, when the person clearly asks;
    otherwise one clarifying question and the bot carries on with what they asked."""

    def name(self) -> str:
        return "action_opt_out"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent, confidence = _intent(tracker)
        text = latest_text(tracker)
        decision = OptOutDecision.OPT_OUT if _pressed(tracker) else decide(text, intent, confidence)
        if decision is OptOutDecision.OPT_OUT:
            identity = who(tracker)
            backend().opt_out(identity.account_id, identity.channel, identity.address, _message_id(tracker))
            dispatcher.utter_message(response="utter_opt_out_confirmed")
            return []
        dispatcher.utter_message(response="utter_ask_confirm_opt_out")
        return carry_on(tracker)


class ActionChangeChannel(Action):
    """Stores the preferred channel and confirms it (or says honestly what is possible)."""

    def name(self) -> str:
        return "action_change_channel"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        identity = who(tracker)
        wanted = channel_from(latest_text(tracker), entity(tracker, "channel"))
        if wanted is None:
            dispatcher.utter_message(response="utter_ask_which_channel")
            return []
        if wanted not in SUPPORTED_CHANNELS:
            name = CHANNEL_NAMES[wanted][1 if identity.language == "es" else 0]
            dispatcher.utter_message(response="utter_channel_not_available", channel_name=name)
            return []
        if identity.account_id:
            backend().set_preference(identity.account_id, "channel", wanted)
        dispatcher.utter_message(
            response="utter_channel_changed",
            channel_name=CHANNEL_NAMES[wanted][1 if identity.language == "es" else 0],
        )
        return []


class ActionChangeLanguage(Action):
    """Switches the conversation's language and remembers it on the account; the rule's
    confirmation that follows is then already in the new language."""

    def name(self) -> str:
        return "action_change_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        identity = who(tracker)
        wanted = language_from(latest_text(tracker), entity(tracker, "language"))
        if wanted is None or wanted not in LANGUAGES:
            # "¿Habla español?" without a clear language word: switch to the other one.
            wanted = "es" if identity.language == "en" else "en"
        if identity.account_id:
            backend().set_preference(identity.account_id, "language", wanted)
        return [SlotSet("language", wanted)]


WEEKDAYS = {
    "en": ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays"),
    "es": (
        "los lunes",
        "los martes",
        "los miércoles",
        "los jueves",
        "los viernes",
        "los sábados",
        "los domingos",
    ),
}


def describe_window(window: ContactWindow, language: str) -> str:
    """A contact window in plain words, e.g. "after 18:00, not on Sundays"."""
    spanish = language == "es"
    parts = []
    if window.after and window.before:
        parts.append(f"entre las {window.after:%H:%M} y las {window.before:%H:%M}" if spanish
                     else f"between {window.after:%H:%M} and {window.before:%H:%M}")  # fmt: skip
    elif window.after:
        parts.append(f"después de las {window.after:%H:%M}" if spanish else f"after {window.after:%H:%M}")
    elif window.before:
        parts.append(f"antes de las {window.before:%H:%M}" if spanish else f"before {window.before:%H:%M}")
    if window.weekdays_only:
        parts.append("solo entre semana" if spanish else "on weekdays only")
    for day in sorted(window.excluded_weekdays):
        name = WEEKDAYS["es" if spanish else "en"][day]
        parts.append(f"{name} no" if spanish else f"not on {name}")
    return ", ".join(parts)


class ActionSetContactTime(Action):
    """Stores when the person prefers to be contacted, and confirms it in plain words."""

    def name(self) -> str:
        return "action_set_contact_time"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        identity = who(tracker)
        window = parse_contact_window(latest_text(tracker))
        if window is None:
            dispatcher.utter_message(response="utter_ask_contact_time")
            return []
        if identity.account_id:
            backend().set_preference(identity.account_id, "contact_window", window.to_json())
        dispatcher.utter_message(
            response="utter_contact_time_set", window=describe_window(window, identity.language)
        )
        return []
