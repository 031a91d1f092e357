"""Opening a conversation ourselves: the outreach opener, through Rasa's trigger_intent.

The opener greets the person by first name, says who is writing in neutral words, asks how
they are, and says nothing about a debt (the dialogue's ``utter_opener``). It is sent like any
reply: through the outbound queue of the chosen channel, in order, with retries.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from bot.compliance.notices import notice
from bot.compliance.rules import Decision
from bot.conversations.history import ConversationHistory
from bot.conversations.outbound import enqueue_outbound
from bot.conversations.render import PROACTIVE, render_replies
from bot.email.envelope import EmailEnvelope
from bot.errors import InvalidRequest, NotFound
from bot.store.accounts import Account, AccountStore
from bot.store.connection import StoreParts
from bot.store.jobs import Jobs
from bot.store.queues import KeyedQueue
from bot.telegram.links import TelegramLinks, deep_link
from channels.base import Channel, OutboundMessage
from dialogue.rasa_client import BotReply, RasaClient


class OpenerParts(StoreParts, Protocol):
    """What sending an opener or a reminder uses (the process's ``Services`` has it all)."""

    @property
    def history(self) -> ConversationHistory: ...

    @property
    def accounts(self) -> AccountStore: ...

    @property
    def channels(self) -> Mapping[str, Channel]: ...

    @property
    def links(self) -> TelegramLinks: ...

    @property
    def rasa(self) -> RasaClient: ...

    @property
    def outbound(self) -> KeyedQueue: ...

    @property
    def jobs(self) -> Jobs: ...

    def email_envelope(self) -> EmailEnvelope: ...


OPENER_INTENT = "EXTERNAL_opener"


def opener_address(services: OpenerParts, account_id: str, channel: str) -> str:
    """Where the opener goes on ``channel``; raises when the account cannot be reached there."""
    account = services.accounts.get(account_id)
    if account is None:
        raise NotFound(f"account {account_id} not found")
    if channel not in services.channels:
        raise InvalidRequest(
            f"channel: {channel!r} is not enabled (enabled: {', '.join(sorted(services.channels))})"
        )
    if channel == "sms" and account.phone:
        return account.phone
    if channel == "email" and account.email:
        return account.email
    if channel == "telegram":
        chat = services.links.chat_for(account_id)
        if chat:
            return chat
        raise InvalidRequest(
            f"account {account_id} has no Telegram chat yet (it is linked by the link in an opener)"
        )
    raise InvalidRequest(f"account {account_id} cannot be reached on {channel} yet")


def telegram_invitation(services: OpenerParts, account_id: str, channel: str) -> str | None:
    """An offer to move to Telegram, with a one-time link, when the bot has a username."""
    telegram = services.config.channels.telegram
    if channel == "telegram" or "telegram" not in services.channels or not telegram.bot_username:
        return None
    account = services.accounts.get(account_id)
    language = account.language if account else services.config.accounts.default_language
    token = services.links.issue(account_id)
    return notice("telegram_link", language).format(link=deep_link(telegram.bot_username, token))


def send_opener(
    services: OpenerParts,
    account_id: str,
    channel: str,
    *,
    address: str | None = None,
    text: str | None = None,
    kind: str = "opener",
) -> list[OutboundMessage]:
    """Start the conversation with ``account_id`` on ``channel``; return what was queued.

    ``text`` replaces the dialogue's own opener wording (an outreach variant); the dialogue
    is still told the conversation started, so it expects the answer to "how are you?".
    """
    address = address or opener_address(services, account_id, channel)
    conversation_id = f"acct-{account_id}"
    replies = services.rasa.trigger_intent(conversation_id, OPENER_INTENT, entities={"channel": channel})
    if text is not None:
        replies = [BotReply(text=text)]
    # Each opener is its own event: ids from the account and a nonce, not from a message (nor
    # from the clock, which a test may hold still).
    source = hashlib.sha256(f"opener:{account_id}:{channel}:{uuid.uuid4().hex}".encode()).hexdigest()
    link = telegram_invitation(services, account_id, channel)
    if link is not None:
        replies = [*replies, BotReply(text=link)]
    if channel == "sms" and len(replies) > 1 and not any(reply.buttons for reply in replies):
        # One text, so the opt-out line the gate adds to a proactive SMS comes once.
        replies = [BotReply(text="\n\n".join(reply.text for reply in replies if reply.text))]
    account = services.accounts.get(account_id)
    chosen = services.redis.hget(services.keys.account_state(account_id), "pref:language")
    language = (
        chosen.decode()
        if chosen
        else (account.language if account else services.config.accounts.default_language)
    )
    return queue_proactive(services, account_id, channel, address, replies, kind=kind, language=language,
                           source=source)  # fmt: skip


def send_reminder(
    services: OpenerParts, account: Account, channel: str, address: str, kind: str, decision: Decision
) -> list[OutboundMessage]:
    """Queue a plan reminder (or missed-payment message) as the compliance gate worded it."""
    source = hashlib.sha256(f"{kind}:{account.account_id}:{uuid.uuid4().hex}".encode()).hexdigest()
    return queue_proactive(services, account.account_id, channel, address, [BotReply(text=decision.text)],
                           kind=kind, language=account.language, source=source)  # fmt: skip


def queue_proactive(
    services: OpenerParts,
    account_id: str,
    channel: str,
    address: str,
    replies: list[BotReply],
    *,
    kind: str,
    language: str,
    source: str,
) -> list[OutboundMessage]:
    """Queue what the bot says first (an opener, a reminder): one unsplit text per reply,
    marked proactive for the gate, dressed for email; return what was queued."""
    rendered = render_replies(
        replies, channel=channel, recipient=address, conversation_id=f"acct-{account_id}", source=source,
        options=PROACTIVE,
    )  # fmt: skip
    messages = [replace(message, proactive=True, kind=kind, language=language) for message in rendered]
    if channel == "email":
        messages = services.email_envelope().dress(messages, account_id=account_id, language=language)
    ttl = int(services.config.dedupe.window_hours * 3600)
    enqueue_outbound(services.outbound, services.jobs, services.keys, messages, ttl, history=services.history)
    return messages
