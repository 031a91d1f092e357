"""Telegram through the Bot API: secret-token webhooks in, python-telegram-bot's ``Bot`` out."""

from __future__ import annotations

import asyncio
import hmac
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from channels.base import (
    Channel,
    ChannelAuthError,
    DeliveryFailed,
    DeliveryReceipt,
    DeliveryStatus,
    InboundMessage,
    MalformedRequest,
    OutboundMessage,
    RateLimited,
    WebhookRequest,
)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name

T = TypeVar("T")


class _EventLoopThread:
    """One long-lived asyncio loop per process: PTB is asyncio-only, and a loop per request
    would throw away its connection pool every time."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)


class TelegramChannel(Channel):
    """The Telegram adapter; ``bot_token`` is only needed to send."""

    name = "telegram"

    def __init__(
        self,
        *,
        webhook_secret: str,
        bot_token: str | None = None,
        api_base_url: str = "https://api.telegram.org",
        timeout_seconds: float = 10.0,
    ) -> None:
        self._secret = webhook_secret.encode()
        self._bot_token = bot_token
        self._api_base_url = api_base_url.rstrip("/")
        self._timeout = timeout_seconds
        self._bot: Bot | None = None
        self._loop: _EventLoopThread | None = None
        self._lock = threading.Lock()

    def authenticate(self, request: WebhookRequest) -> None:
        given = request.header(SECRET_HEADER)
        if not given:
            raise ChannelAuthError(f"missing {SECRET_HEADER} header")
        # Constant-time comparison: the secret must not leak through response timing.
        if not hmac.compare_digest(given.encode(), self._secret):
            raise ChannelAuthError(f"{SECRET_HEADER} does not match")

    def parse(self, request: WebhookRequest) -> InboundMessage | None:
        data = request.json()
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise MalformedRequest("a Telegram Update needs an integer update_id")
        try:
            update = Update.de_json(data, None)
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedRequest(f"not a Telegram Update: {exc}") from exc
        if update is None:
            return None
        external_id = str(update.update_id)
        if update.callback_query is not None:
            query = update.callback_query
            chat = query.message.chat if query.message is not None else None
            if chat is None or chat.type != "private":
                return None
            return InboundMessage(
                channel=self.name,
                external_id=external_id,
                sender=str(chat.id),
                text=query.data or "",
                sender_handle=query.from_user.username,
                raw=data,
            )
        message = update.message
        if message is None or message.chat.type != "private":
            return None
        return InboundMessage(
            channel=self.name,
            external_id=external_id,
            sender=str(message.chat.id),
            text=message.text or "",
            sender_handle=message.from_user.username if message.from_user else None,
            raw=data,
        )

    def _runtime(self) -> tuple[Bot, _EventLoopThread]:
        with self._lock:
            if self._bot is None or self._loop is None:
                if not self._bot_token:
                    raise DeliveryFailed("TELEGRAM_BOT_TOKEN is not set", permanent=True)
                self._loop = _EventLoopThread()
                self._bot = Bot(self._bot_token, base_url=f"{self._api_base_url}/bot")
            return self._bot, self._loop

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        bot, loop = self._runtime()
        markup = None
        if message.buttons:
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(b.title, callback_data=b.payload[:64])] for b in message.buttons]
            )
        try:
            sent = loop.run(
                bot.send_message(chat_id=message.recipient, text=message.text, reply_markup=markup),
                timeout=self._timeout,
            )
        except RetryAfter as exc:
            retry = exc.retry_after
            seconds = retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry)
            raise RateLimited("Telegram flood control", retry_after=seconds) from exc
        except Forbidden as exc:
            raise DeliveryFailed(f"the user blocked the bot: {exc}", permanent=True) from exc
        except BadRequest as exc:
            raise DeliveryFailed(f"Telegram refused the message: {exc}", permanent=True) from exc
        except (NetworkError, TelegramError, TimeoutError) as exc:
            raise DeliveryFailed(f"Telegram unreachable: {exc}", permanent=False) from exc
        return DeliveryReceipt(
            outbox_id=message.outbox_id,
            channel=self.name,
            status=DeliveryStatus.SENT,
            external_id=str(sent.message_id),
        )
