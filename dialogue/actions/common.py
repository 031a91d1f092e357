"""What every action shares: who the conversation is with, in which language, and the backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rasa_sdk import Tracker

from dialogue.backend import DialogueBackend, get_backend

LANGUAGES = ("en", "es")


@dataclass(frozen=True)
class Who:
    """The conversation's identity, from slots and the latest message's metadata."""

    conversation_id: str
    account_id: str | None
    channel: str
    address: str
    language: str
    #: The user message being answered (the worker's stable id, e.g. ``sms:<MessageSid>``):
    #: what the actions that record something key their idempotency on.
    message_id: str = ""


def who(tracker: Tracker) -> Who:
    """Identity of the conversation the tracker belongs to."""
    metadata: dict[str, Any] = tracker.latest_message.get("metadata") or {}
    language = tracker.get_slot("language")
    return Who(
        conversation_id=tracker.sender_id,
        account_id=tracker.get_slot("account_id") or metadata.get("account_id") or None,
        channel=str(tracker.get_slot("channel") or metadata.get("channel") or ""),
        address=str(metadata.get("address") or ""),
        language=language if language in LANGUAGES else "en",
        message_id=str(metadata.get("message_id") or tracker.latest_message.get("message_id") or ""),
    )


def backend() -> DialogueBackend:
    """The installed backend (see ``dialogue.backend``)."""
    return get_backend()


def latest_text(tracker: Tracker) -> str:
    """What the person wrote last."""
    return str(tracker.latest_message.get("text") or "")


def entity(tracker: Tracker, name: str) -> str | None:
    """The first value of an entity in the latest message, if any."""
    value = next(tracker.get_latest_entity_values(name), None)
    return str(value) if value is not None else None
