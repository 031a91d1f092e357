"""Who a message is from and which conversation it belongs to (shared by both handlers)."""

from __future__ import annotations

import logging

from bot.email.threads import EmailThreads
from bot.store.accounts import Account, AccountStore
from bot.store.addresses import address_hash, address_key
from bot.telegram.links import TelegramLinks
from channels.base import (
    InboundMessage,
)

logger = logging.getLogger(__name__)


def conversation_id_for(account: Account | None, message: InboundMessage) -> str:
    """Rasa's sender id: one conversation per account across channels, else per address."""
    if account is not None:
        if message.channel == "email" and message.sender.lower() != (account.email or "").lower():
            # Found through the thread it answers, but from another address (a forward, a
            # work address): the same account, in a conversation of its own, so whoever
            # writes answers the verification question before hearing anything about the debt.
            return f"acct-{account.account_id}~{address_hash('email', message.sender)[:12]}"
        return f"acct-{account.account_id}"
    return f"anon-{address_key(message.channel, message.sender)}"


def account_id_of(conversation_id: str) -> str | None:
    """The account a conversation belongs to (``acct-<id>`` or ``acct-<id>~<address>``)."""
    if not conversation_id.startswith("acct-"):
        return None
    return conversation_id[len("acct-") :].split("~", 1)[0] or None


def identify(
    accounts: AccountStore,
    message: InboundMessage,
    links: TelegramLinks | None = None,
    threads: EmailThreads | None = None,
) -> Account | None:
    """Find the account an inbound message comes from: a linked Telegram chat, an email's
    thread (the mail it answers), then the address."""
    if message.channel == "email" and threads is not None:
        threaded = threads.account_for(message.raw.get("in_reply_to"), message.raw.get("references") or ())
        account = accounts.get(threaded) if threaded else None
        if account is not None:
            return account
    if message.channel == "telegram" and links is not None:
        linked = links.account_for(message.sender)
        if linked is not None:
            return accounts.get(linked)
    if message.channel == "sms":
        return accounts.find("phone", message.sender)
    if message.channel == "email":
        return accounts.find("email", message.sender)
    if message.channel == "telegram" and message.sender_handle:
        return accounts.find("telegram", message.sender_handle)
    return None
