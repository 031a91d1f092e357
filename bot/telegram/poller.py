"""Long polling for Telegram updates, for development without a public URL.

Updates take the webhook's path from the parse on: the same de-duplication, the same durable
stream, the same worker. The offset is kept in Redis so a restart neither loses nor repeats
updates (and a repeat would be de-duplicated anyway).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import redis

from bot.store.connection import Keys
from bot.store.intake import InboundIntake
from channels.base import ChannelError, MalformedRequest, RateLimited
from channels.telegram import TelegramChannel


class PollerParts(Protocol):
    """What the poller uses (the process's ``Services`` has it all)."""

    @property
    def redis(self) -> redis.Redis[bytes]: ...

    @property
    def keys(self) -> Keys: ...

    @property
    def intake(self) -> InboundIntake: ...


logger = logging.getLogger(__name__)

POLL_TIMEOUT_SECONDS = 25


def poll(
    services: PollerParts,
    channel: TelegramChannel,
    *,
    once: bool = False,
    echo: Callable[[str], None] = print,
) -> int:
    """Fetch and accept updates until interrupted (or one batch with ``once``); return how many."""
    channel.call(lambda bot: bot.delete_webhook())  # getUpdates is refused while a webhook is set
    offset_key = services.keys.telegram_poll_offset
    accepted = 0
    backoff = 1.0
    echo("polling Telegram for updates (Ctrl-C to stop)")
    while True:
        try:
            raw_offset = services.redis.get(offset_key)
            offset = int(raw_offset) if raw_offset else None
            updates = channel.get_updates(offset, timeout=1 if once else POLL_TIMEOUT_SECONDS)
            backoff = 1.0
            accepted += _accept_all(services, channel, updates, offset_key)
        except RateLimited as exc:
            time.sleep(exc.retry_after)
            continue
        except (ChannelError, redis.RedisError) as exc:
            # Telegram or Redis away: wait and ask again; updates stay with Telegram meanwhile.
            logger.warning("polling Telegram failed (%s); trying again in %.0f s", exc, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 60)
            continue
        if once:
            return accepted


def _accept_all(
    services: PollerParts, channel: TelegramChannel, updates: list[dict[str, Any]], offset_key: str
) -> int:
    """Store each update; one that cannot be understood is logged and passed over, so it never
    holds up the ones behind it (Telegram would give it back at the same offset forever)."""
    accepted = 0
    for update in updates:
        update_id = update.get("update_id") if isinstance(update, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
            logger.warning("Telegram gave an update without a valid update_id; passed over")
            continue
        try:
            message = channel.parse_update(update)
        except MalformedRequest as exc:
            logger.warning("Telegram update %d cannot be understood (%s); passed over", update_id, exc)
            message = None
        if message is not None and services.intake.accept(message):
            accepted += 1
        # Only move past an update once it is stored, so a crash here repeats, never loses.
        services.redis.set(offset_key, update_id + 1)
    return accepted
