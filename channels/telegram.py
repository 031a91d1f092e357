"""Telegram through the Bot API: secret-token webhooks in, python-telegram-bot's ``Bot`` out."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import re
import threading
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.warnings import PTBUserWarning

from channels.base import (
    Channel,
    ChannelAuthError,
    DeliveryFailed,
    DeliveryReceipt,
    DeliveryStatus,
    InboundMessage,
    MalformedRequest,
    OutboundMessage,
    Pacer,
    RateLimited,
    WebhookRequest,
)
from channels.cleaning import clean_line, clean_payload

# get_updates asks for raw JSON on purpose (see TelegramChannel.get_updates); PTB would rather
# we used its parsing method.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
#: Our error code for "the user blocked the bot" (Telegram's 403 Forbidden).
BLOCKED = "blocked"

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


#: Telegram's limit on one message's text (after entity parsing).
MAX_TEXT = 4096


#: An offer id as ``bot.conversations.render.OfferedChoices`` makes them (8 url-safe characters); a little
#: slack either way, never a ``.``, so ``c<position>.<offer id>`` stays within 64 bytes.
OFFER_ID = re.compile(r"[A-Za-z0-9_-]{6,16}")
_BUTTON_DATA = re.compile(rf"c([1-9][0-9]?)\.({OFFER_ID.pattern})")


@dataclass(frozen=True)
class ButtonPress:
    """What a button's ``callback_data`` says: its position (0-based) in the offer it belongs to."""

    index: int
    offer_id: str


def button_data(index: int, offer_id: str | None) -> str:
    """The ``callback_data`` of the ``index``-th button (0-based) of offer ``offer_id``, e.g.
    ``c2.k3J9xQab``: a position and an opaque id, never a payload, so nothing the server acts
    on comes from the client, and a press on an older keyboard is told from one on the
    current. Without an offer, the position alone, which is never acted on."""
    if offer_id is None:
        return f"c{index + 1}"
    if not OFFER_ID.fullmatch(offer_id):
        raise ValueError(f"not an offer id: {offer_id!r}")
    return f"c{index + 1}.{offer_id}"


def read_button_data(data: str) -> ButtonPress | None:
    """Inverse of :func:`button_data`; ``None`` for data without an offer id or that we never
    send (the client can put anything there)."""
    match = _BUTTON_DATA.fullmatch(data) if isinstance(data, str) else None
    return ButtonPress(int(match[1]) - 1, match[2]) if match else None


#: Telegram's ids have at most 52 significant bits (its documentation says so); 2^53 leaves a
#: little slack. A negative chat id is a group or channel.
_MAX_ID = 2**53
#: Every date in the Bot API is Unix time; anything past 2106 (32 bits) is not a real date, and
#: a huge one overflows ``datetime`` inside PTB.
_MAX_DATE = 2**32 - 1


def _is_int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _handle(username: object) -> str | None:
    """A Telegram username as we keep it: one line, no spaces; otherwise none."""
    if not isinstance(username, str) or not username:
        return None
    handle = clean_line(username).strip()
    return handle[:64] if handle and " " not in handle else None


def _check_message(where: str, message: object) -> None:
    if not isinstance(message, dict):
        raise MalformedRequest(f"{where}: a Message is an object")
    chat = message.get("chat")
    if not isinstance(chat, dict) or not _is_int(chat.get("id"), -_MAX_ID, _MAX_ID):
        raise MalformedRequest(f"{where}.chat: needs an integer id")
    if not isinstance(chat.get("type"), str):
        raise MalformedRequest(f"{where}.chat.type: a string")
    # Service messages in inaccessible chats carry date 0; everything else a real time.
    if "date" in message and not _is_int(message["date"], 0, _MAX_DATE):
        raise MalformedRequest(f"{where}.date: Unix time in seconds (0 to {_MAX_DATE})")
    for name in ("text", "caption"):
        if message.get(name) is not None and not isinstance(message[name], str):
            raise MalformedRequest(f"{where}.{name}: a string")
    _check_user(f"{where}.from", message.get("from"))


def _check_user(where: str, user: object) -> None:
    if user is None:
        return
    if not isinstance(user, dict) or not _is_int(user.get("id"), -_MAX_ID, _MAX_ID):
        raise MalformedRequest(f"{where}: a User with an integer id")
    for name in ("first_name", "last_name", "username"):
        if user.get(name) is not None and not isinstance(user[name], str):
            raise MalformedRequest(f"{where}.{name}: a string")


def _check_update(data: dict[str, Any]) -> None:
    """The parts of an Update we read have the Bot API's types and ranges.

    PTB's ``de_json`` takes the Bot API on trust; we check what we use ourselves, so a forged
    update is a clear 400 rather than an exception deep inside PTB or a strange value stored.
    """
    if not _is_int(data.get("update_id"), 0, _MAX_ID):
        raise MalformedRequest("update_id: a non-negative integer")
    for name in ("message", "edited_message", "channel_post", "edited_channel_post"):
        if data.get(name) is not None:
            _check_message(name, data[name])
    query = data.get("callback_query")
    if query is not None:
        if not isinstance(query, dict) or not isinstance(query.get("id"), str):
            raise MalformedRequest("callback_query: needs a string id")
        _check_user("callback_query.from", query.get("from"))
        if query.get("data") is not None and not isinstance(query["data"], str):
            raise MalformedRequest("callback_query.data: a string")
        if query.get("message") is not None:
            _check_message("callback_query.message", query["message"])


class TelegramChannel(Channel):
    """The Telegram adapter; ``bot_token`` is only needed to send.

    Texts go out in HTML parse mode with every fragment escaped; choices as an inline
    keyboard whose buttons carry only their position and the offer's id. Sending is paced
    per chat and per bot.
    """

    name = "telegram"

    def __init__(
        self,
        *,
        webhook_secret: str,
        bot_token: str | None = None,
        api_base_url: str = "https://api.telegram.org",
        timeout_seconds: float = 10.0,
        pacer: Pacer | None = None,
        per_chat_per_second: float = 1.0,
        per_bot_per_second: float = 30.0,
    ) -> None:
        self._secret = webhook_secret.encode()
        self._bot_token = bot_token
        self._api_base_url = api_base_url.rstrip("/")
        self._timeout = timeout_seconds
        self._pacer = pacer
        self._per_chat = per_chat_per_second
        self._per_bot = per_bot_per_second
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
        if not isinstance(data, dict) or not _is_int(data.get("update_id"), 0, _MAX_ID):
            raise MalformedRequest("a Telegram Update needs a non-negative integer update_id")
        return self.parse_update(data)

    def parse_update(self, data: dict[str, Any]) -> InboundMessage | None:
        """An Update as our message; ``None`` for what we ignore (groups, edits, joins...)."""
        data = clean_payload(data)  # lone surrogates, control characters: before anything reads it
        _check_update(data)
        try:
            update = Update.de_json(data, None)
        except Exception as exc:
            # PTB trusts the Bot API and does not validate: hostile input surfaces as whatever
            # its constructors raise (KeyError, TypeError, OverflowError in a date...).
            raise MalformedRequest(f"not a Telegram Update: {type(exc).__name__}") from exc
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
                text=(query.data or "")[:64],
                sender_handle=_handle(query.from_user.username),
                raw=data,
                kind="choice",
            )
        message = update.message
        if message is None or message.chat.type != "private":
            return None
        handle = _handle(message.from_user.username) if message.from_user else None
        text = message.text
        kind = "text"
        if text is None:
            kind, text = "unsupported", ""
        elif text == "/start" or text.startswith("/start "):
            kind, text = "start", text[len("/start") :].strip()
        return InboundMessage(
            channel=self.name,
            external_id=external_id,
            sender=str(message.chat.id),
            text=text,
            sender_handle=handle,
            raw=data,
            kind=kind,
        )

    def _runtime(self) -> tuple[Bot, _EventLoopThread]:
        with self._lock:
            if self._bot is None or self._loop is None:
                if not self._bot_token:
                    raise DeliveryFailed("TELEGRAM_BOT_TOKEN is not set", permanent=True)
                self._loop = _EventLoopThread()
                self._bot = Bot(self._bot_token, base_url=f"{self._api_base_url}/bot")
            return self._bot, self._loop

    def call(self, make: Callable[[Bot], Coroutine[Any, Any, T]]) -> T:
        """Run one Bot API call on this process's event loop, with Telegram's errors as ours."""
        bot, loop = self._runtime()
        try:
            return loop.run(make(bot), timeout=self._timeout + 5)
        except RetryAfter as exc:
            retry = exc.retry_after
            seconds = retry.total_seconds() if isinstance(retry, timedelta) else float(retry)
            raise RateLimited("Telegram flood control", retry_after=seconds) from exc
        except Forbidden as exc:
            raise DeliveryFailed(f"the user blocked the bot: {exc}", permanent=True, code=BLOCKED) from exc
        except BadRequest as exc:
            raise DeliveryFailed(
                f"Telegram refused the call: {exc}", permanent=True, code="bad_request"
            ) from exc
        except TimedOut as exc:
            raise DeliveryFailed(f"no answer from Telegram: {exc}", permanent=False, unsure=True) from exc
        except (NetworkError, TelegramError, TimeoutError) as exc:
            raise DeliveryFailed(f"Telegram unreachable: {exc}", permanent=False) from exc

    def _pace(self, chat_id: str) -> None:
        if self._pacer is None:
            return
        chat_bucket = "tg:chat:" + hashlib.sha256(chat_id.encode()).hexdigest()[:24]
        wait = self._pacer.reserve([(chat_bucket, self._per_chat), ("tg:bot", self._per_bot)], cost=1)
        if wait > 0:
            raise RateLimited("Telegram pace (per chat / per bot)", retry_after=wait)

    def find_sent(self, message: OutboundMessage, since: datetime) -> DeliveryReceipt | None:
        """Telegram cannot tell: the Bot API has no list of what a bot sent and no idempotency
        key. After an attempt whose outcome we did not record we send again (at least once):
        most such attempts never reached Telegram (the intent is recorded before the call), a
        repeated reply in a chat is a small harm, and an answer that never comes is not."""
        return None

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        self._runtime()  # fails fast, before pacing, without a token
        self._pace(message.recipient)
        markup = None
        if message.buttons:
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(b.title[:64], callback_data=button_data(n, message.offer_id))]
                 for n, b in enumerate(message.buttons)]
            )  # fmt: skip
        text = html.escape(message.text[:MAX_TEXT], quote=False)
        sent = self.call(
            lambda bot: bot.send_message(
                chat_id=message.recipient, text=text, parse_mode=ParseMode.HTML, reply_markup=markup
            )
        )
        return DeliveryReceipt(
            outbox_id=message.outbox_id,
            channel=self.name,
            status=DeliveryStatus.SENT,
            external_id=str(sent.message_id),
        )

    def acknowledge(self, message: InboundMessage, notice: str | None = None) -> None:
        """Answer a button press (Telegram shows a spinner until we do)."""
        query = message.raw.get("callback_query") if message.kind == "choice" else None
        if not isinstance(query, dict) or not query.get("id"):
            return
        self.call(lambda bot: bot.answer_callback_query(str(query["id"]), text=notice))

    def set_webhook(self, url: str, secret: str) -> bool:
        return bool(
            self.call(
                lambda bot: bot.set_webhook(
                    url=url, secret_token=secret, allowed_updates=["message", "callback_query"]
                )
            )
        )

    def get_updates(self, offset: int | None, timeout: int) -> list[dict[str, Any]]:
        """Long-poll for updates (development without a public URL), as Telegram's raw JSON:
        PTB's ``get_updates`` parses the whole batch and one hostile update would fail them
        all; each is parsed (and, if need be, passed over) by :meth:`parse_update` instead."""
        arguments: dict[str, Any] = {"timeout": timeout, "allowed_updates": ["message", "callback_query"]}
        if offset is not None:
            arguments["offset"] = offset
        updates = self.call(
            lambda bot: bot.do_api_request("getUpdates", api_kwargs=arguments, read_timeout=timeout + 10)
        )
        return [u for u in updates if isinstance(u, dict)] if isinstance(updates, list) else []
