"""Turning the bot's replies into channel messages, and numbered answers back into choices."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import redis

from bot.store.addresses import address_key
from bot.store.connection import Keys
from channels.base import Button, OutboundMessage
from channels.sms_text import choice_from_reply, fit_to_budget, plain, prefer_gsm, render_choices, split_text
from channels.telegram import read_button_data
from dialogue.language import detect_language
from dialogue.rasa_client import BotReply

#: Channels that show buttons themselves; elsewhere choices become numbered lines.
CHANNELS_WITH_BUTTONS = frozenset({"telegram"})

#: How long a numbered answer ("2") still refers to the choices we offered.
CHOICES_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class RenderOptions:
    """Per-channel limits from ``config.yaml``."""

    sms_max_segments: int = 4


#: Proactive texts are never split: the compliance gate adds the collector statement and the
#: opt-out line to each message it sees, so one message must be one text (10 segments: up to
#: 670 characters even in UCS-2, far beyond any opener or reminder).
PROACTIVE = RenderOptions(sms_max_segments=10)


def outbox_id(source: str, index: int) -> str:
    """A stable id for the ``index``-th message sent for ``source``: the same on every retry."""
    return hashlib.sha256(f"{source}#{index}".encode()).hexdigest()[:32]


#: Telegram's limit on one message's text.
TELEGRAM_MAX_TEXT = 4096


def split_to_length(text: str, limit: int) -> list[str]:
    """``text`` as pieces of at most ``limit`` characters, split where it reads best (the
    same rules as SMS segments: paragraph, line, sentence end, word; mid-word only if a
    word alone is too long)."""
    if len(text) <= limit:
        return [text]
    return split_text(text.strip(), limit, cost=len)


def _text_for(reply: BotReply, channel: str) -> str:
    if not reply.buttons or channel in CHANNELS_WITH_BUTTONS:
        return reply.text
    if all(title == str(n) for n, (title, _) in enumerate(reply.buttons, start=1)):
        return reply.text  # buttons "1", "2", ... for options the text already lists by number
    language = detect_language(reply.text) or "en"
    return render_choices(reply.text, [title for title, _ in reply.buttons], language)


def _one_email(replies: Sequence[BotReply]) -> list[BotReply]:
    """All of an answer in one email: several mails for one reply would read as spam. The
    choices (as numbered lines) close it, as they close the last reply that offered them."""
    texts = [_text_for(reply, "email") for reply in replies if reply.text or reply.buttons]
    if not texts:
        return []
    return [BotReply(text="\n\n".join(text.strip() for text in texts if text.strip()))]


def render_replies(
    replies: Sequence[BotReply],
    *,
    channel: str,
    recipient: str,
    conversation_id: str,
    source: str,
    in_reply_to: str | None = None,
    options: RenderOptions | None = None,
    offer_id: str | None = None,
) -> list[OutboundMessage]:
    """The messages to send for ``replies``, in order, with ids derived from ``source``.

    SMS gets plain text in the cheapest encoding, and a reply longer than the segment
    budget becomes several texts split at sentence boundaries. ``offer_id`` (from
    :meth:`OfferedChoices.remember`) goes with the last buttons, the choices it stands for.
    """
    options = options or RenderOptions()
    if channel == "email":
        replies = _one_email(replies)
    messages: list[OutboundMessage] = []
    for reply in replies:
        if not (reply.text or reply.buttons):
            continue
        buttons = tuple(Button(title=t, payload=p) for t, p in reply.buttons)
        text = _text_for(reply, channel)
        parts = [text]
        if channel == "sms":
            parts = fit_to_budget([prefer_gsm(plain(text))], options.sms_max_segments)
        elif channel == "telegram":
            parts = split_to_length(text, TELEGRAM_MAX_TEXT)
        for number, part in enumerate(parts, start=1):
            messages.append(
                OutboundMessage(
                    outbox_id=outbox_id(source, len(messages)),
                    channel=channel,
                    recipient=recipient,
                    text=part,
                    buttons=buttons if number == len(parts) else (),  # the choices close the reply
                    conversation_id=conversation_id,
                    in_reply_to=in_reply_to,
                )
            )
    with_buttons = [n for n, message in enumerate(messages) if message.buttons]
    if offer_id is not None and with_buttons:
        messages[with_buttons[-1]] = replace(messages[with_buttons[-1]], offer_id=offer_id)
    return messages


class OfferedChoices:
    """Remembers the choices last offered to an address: the payloads, so "2" can answer
    them, and the offer's id, which the buttons carry, so a press on an older keyboard is
    not taken for a press on the current one."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    def _key(self, channel: str, address: str) -> str:
        return self._keys.choices(address_key(channel, address))

    def remember(self, channel: str, address: str, replies: Sequence[BotReply]) -> str | None:
        """Make the last choices in ``replies`` the ones on offer, replacing any earlier offer
        (none at all when ``replies`` offer none); return the new offer's id, for
        :func:`render_replies`, or ``None``."""
        offered = [reply.buttons for reply in replies if reply.buttons]
        key = self._key(channel, address)
        if not offered:
            self._redis.delete(key)
            return None
        offer_id = secrets.token_urlsafe(6)  # 8 characters, 48 random bits
        payloads = [payload for _, payload in offered[-1]]
        self._redis.set(key, json.dumps({"id": offer_id, "payloads": payloads}), ex=CHOICES_TTL_SECONDS)
        return offer_id

    def _offered(self, channel: str, address: str) -> tuple[str | None, list[str]]:
        raw = self._redis.get(self._key(channel, address))
        stored: Any = json.loads(raw) if raw is not None else []
        if isinstance(stored, list):  # remembered before offers had ids: numbers still answer
            return None, [str(payload) for payload in stored]
        return str(stored["id"]), [str(payload) for payload in stored["payloads"]]

    def resolve(self, channel: str, address: str, text: str) -> str:
        """The payload of the chosen option when ``text`` is just its number, else ``text``."""
        _, payloads = self._offered(channel, address)
        index = choice_from_reply(text, len(payloads)) if payloads else None
        return payloads[index] if index is not None else text

    def pressed(self, channel: str, address: str, data: str) -> str | None:
        """The payload of the button whose raw ``callback_data`` is ``data``, when it belongs
        to the offer on this address now; ``None`` for a press on an older keyboard, data
        without an offer id, or a position or id that was never offered (stale or forged)."""
        press = read_button_data(data)
        if press is None:
            return None
        offer_id, payloads = self._offered(channel, address)
        if offer_id is None or press.offer_id != offer_id or press.index >= len(payloads):
            return None
        return payloads[press.index]
