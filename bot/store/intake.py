"""The gateway's half of an inbound message: store it durably, once, and plan its handling.

Store-level because every way in uses it (the webhooks, the email intake, the Telegram poller)
and none of them may depend on the worker's handlers. ``INBOUND`` and ``OUTBOUND`` name the two
message queues (streams per sender / recipient, see ``bot.store.queues``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import redis

from bot.privacy import redact_card_numbers, redact_payload
from bot.store.addresses import address_key
from bot.store.connection import Keys
from bot.store.jobs import Jobs
from bot.store.queues import KeyedQueue
from channels.base import (
    InboundMessage,
)

logger = logging.getLogger(__name__)

INBOUND = "inbound"
OUTBOUND = "outbound"


@dataclass
class InboundIntake:
    """The gateway side: store an accepted message durably, once, and schedule its handling."""

    queue: KeyedQueue
    jobs: Jobs
    keys: Keys
    dedupe_ttl_seconds: int

    def accept(self, message: InboundMessage) -> bool:
        """Return ``False`` if the provider already delivered this message."""
        # Card numbers never reach storage, the dialogue or the logs.
        message = replace(message, text=redact_card_numbers(message.text), raw=redact_payload(message.raw))
        key = address_key(message.channel, message.sender)
        entry_id = self.queue.append(
            key,
            message.to_json(),
            dedupe_key=self.keys.dedupe(message.channel, message.external_id),
            dedupe_ttl_seconds=self.dedupe_ttl_seconds,
        )
        if entry_id is None:
            logger.info("duplicate %s message %s ignored", message.channel, message.external_id)
            return False
        try:
            self.jobs.schedule(INBOUND, key)
        except (redis.RedisError, OSError):
            # The message is stored; the worker's sweeper will schedule it.
            logger.warning("could not schedule %s now; the sweeper will", key, exc_info=True)
        return True
