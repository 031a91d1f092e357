"""Tying a Telegram chat to an account with a one-time deep link.

An opener on SMS or email can carry ``https://t.me/<bot>?start=<token>``. Telegram sends
``/start <token>`` when the person opens it; the token then links that chat to the account.
Tokens are unguessable (192 random bits), expire, work once, and are stored only as a hash.
Linking says who the chat probably belongs to; the dialogue still asks the right-party
question before anything about a debt, since a link can be forwarded.
"""

from __future__ import annotations

import hashlib
import secrets

import redis

from bot.store.connection import Keys


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class TelegramLinks:
    """Deep-link tokens and the chat -> account links they make."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys, *, ttl_seconds: float) -> None:
        self._redis = client
        self._keys = keys
        self._ttl = int(ttl_seconds)

    def issue(self, account_id: str) -> str:
        """A new token for ``account_id``: 32 URL-safe characters (Telegram allows up to 64)."""
        token = secrets.token_urlsafe(24)
        self._redis.set(self._keys.telegram_token(_digest(token)), account_id, ex=self._ttl)
        return token

    def redeem(self, token: str, chat_id: str) -> str | None:
        """Link ``chat_id`` to the token's account; ``None`` for an unknown, used or expired token."""
        if not token or len(token) > 64:
            return None
        account_id = self._redis.getdel(self._keys.telegram_token(_digest(token)))
        if account_id is None:
            return None
        self.link(chat_id, account_id.decode())
        return account_id.decode()

    def link(self, chat_id: str, account_id: str) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._keys.telegram_chat(_digest(f"telegram:{chat_id}")), account_id)
        pipe.set(self._keys.telegram_account_chat(account_id), chat_id)
        pipe.execute()

    def account_for(self, chat_id: str) -> str | None:
        found = self._redis.get(self._keys.telegram_chat(_digest(f"telegram:{chat_id}")))
        return found.decode() if found else None

    def chat_for(self, account_id: str) -> str | None:
        """The chat linked to ``account_id`` most recently, for openers and reminders."""
        found = self._redis.get(self._keys.telegram_account_chat(account_id))
        return found.decode() if found else None


def deep_link(bot_username: str, token: str) -> str:
    return f"https://t.me/{bot_username}?start={token}"
