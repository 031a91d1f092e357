"""Long polling for Telegram updates, for development without a public URL.

Updates take the webhook's path from the parse on: the same de-duplication, the same durable
stream, the same worker. The offset is kept in Redis so a restart neither loses nor repeats
updates (and a repeat would be de-duplicated anyway).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bot.services import Services
from channels.base import ChannelError, RateLimited
from channels.telegram import TelegramChannel

logger = logging.getLogger(__name__)

POLL_TIMEOUT_SECONDS = 25


def poll(
    services: Services, channel: TelegramChannel, *, once: bool = False, echo: Callable[[str], None] = print
) -> int:
    """Fetch and accept updates until interrupted (or one batch with ``once``); return how many."""
    channel.call(lambda bot: bot.delete_webhook())  # getUpdates is refused while a webhook is set
    offset_key = services.keys.telegram_poll_offset
    accepted = 0
    backoff = 1.0
    echo("polling Telegram for updates (Ctrl-C to stop)")
    while True:
        raw_offset = services.redis.get(offset_key)
        offset = int(raw_offset) if raw_offset else None
        try:
            updates = channel.get_updates(offset, timeout=1 if once else POLL_TIMEOUT_SECONDS)
            backoff = 1.0
        except RateLimited as exc:
            time.sleep(exc.retry_after)
            continue
        except ChannelError as exc:
            logger.warning("polling Telegram failed (%s); trying again in %.0f s", exc, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 60)
            continue
        for update in updates:
            message = channel.parse_update(update)
            if message is not None and services.intake.accept(message):
                accepted += 1
            # Only move past an update once it is stored, so a crash here repeats, never loses.
            services.redis.set(offset_key, int(update["update_id"]) + 1)
        if once:
            return accepted
