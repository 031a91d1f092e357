"""Turning the bot's replies into channel messages."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from channels.base import Button, OutboundMessage
from dialogue.rasa_client import BotReply

#: Channels that show buttons themselves; elsewhere choices become numbered lines.
_CHANNELS_WITH_BUTTONS = frozenset({"telegram"})


def outbox_id(source: str, index: int) -> str:
    """A stable id for the ``index``-th reply to ``source``: the same on every retry."""
    return hashlib.sha256(f"{source}#{index}".encode()).hexdigest()[:32]


def render_replies(
    replies: Sequence[BotReply],
    *,
    channel: str,
    recipient: str,
    conversation_id: str,
    source: str,
    in_reply_to: str | None = None,
) -> list[OutboundMessage]:
    """One outbound message per reply, in order, with ids derived from ``source``."""
    messages = []
    for index, reply in enumerate(r for r in replies if r.text or r.buttons):
        buttons = tuple(Button(title=t, payload=p) for t, p in reply.buttons)
        text = reply.text
        if buttons and channel not in _CHANNELS_WITH_BUTTONS:
            choices = "\n".join(f"{n}. {b.title}" for n, b in enumerate(buttons, start=1))
            text = f"{text}\n{choices}" if text else choices
        messages.append(
            OutboundMessage(
                outbox_id=outbox_id(source, index),
                channel=channel,
                recipient=recipient,
                text=text,
                buttons=buttons,
                conversation_id=conversation_id,
                in_reply_to=in_reply_to,
            )
        )
    return messages
