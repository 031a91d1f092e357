"""What happened to each outbound message, from our send and the provider's callbacks.

Callbacks arrive late, twice and out of order ("delivered" before "sent"), so a status only
ever moves forward: queued -> sent -> delivered | undelivered | failed. The first final status
wins. Records are kept 90 days.

Sending is bracketed so that a crash anywhere cannot make us send twice unknowingly: the
intent (:meth:`DeliveryLog.begin`: when, and the text as it leaves) is written before the
provider is called, the outcome right after. An intent without an outcome means an attempt
ended we know not how (a timeout, or the worker or Redis died between the provider's answer
and our record): the next attempt asks the provider first (``Channel.find_sent``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

import redis

from bot.store.addresses import AddressBook
from bot.store.connection import Keys
from channels.base import DeliveryReceipt, DeliveryStatus

logger = logging.getLogger(__name__)

RETENTION_SECONDS = 90 * 24 * 3600

#: How far along each status is; equal ranks are all final.
STATUS_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.UNDELIVERED: 2,
    DeliveryStatus.FAILED: 2,
}

#: Provider error codes meaning the person asked the provider to stop us (Twilio 21610:
#: "attempt to send to unsubscribed recipient").
OPTED_OUT_ERRORS = frozenset({"21610"})
#: The person blocked the bot (Telegram 403): unreachable at once.
BLOCKED_ERRORS = frozenset({"blocked"})
#: Provider error codes meaning the number cannot be reached (Twilio 30003 unreachable
#: handset, 30005 unknown or inactive number, 30006 landline or unreachable carrier).
UNREACHABLE_ERRORS = frozenset({"30003", "30005", "30006"})

# Compare and set in one step, so that two callbacks racing in two gateway threads cannot
# move a status backwards. ARGV: rank, ttl, then field/value pairs.
_RECORD = """
local current = tonumber(redis.call('HGET', KEYS[1], 'rank') or '-1')
local rank = tonumber(ARGV[1])
if rank < current or (rank == current and current == 2) then
  return 0
end
redis.call('HSET', KEYS[1], 'rank', ARGV[1], unpack(ARGV, 4))
-- The attempt has an outcome now: its intent (and the text it kept) is no longer needed.
redis.call('HDEL', KEYS[1], 'unsure_since', 'intent_text')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
-- Each outcome kept also goes to the deliveries stream (the analytics store reads it), in the
-- same step: never one without the other.
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000000', '*', 'outbox_id', ARGV[3], unpack(ARGV, 4))
return 1
"""


@dataclass(frozen=True)
class DeliveryRecord:
    status: DeliveryStatus | None
    external_id: str
    error_code: str
    channel: str
    #: When the first attempt whose outcome is not recorded began (the provider may or may
    #: not have the message): set before every call to the provider, cleared by its outcome.
    unsure_since: datetime | None = None
    #: The text that attempt sent (after the compliance gate), to recognise it at the provider.
    intent_text: str = ""


class DeliveryLog:
    """Records delivery statuses and acts on the ones that say something about the address."""

    def __init__(
        self, client: redis.Redis[bytes], keys: Keys, addresses: AddressBook, *, unreachable_after: int = 3
    ) -> None:
        self._redis = client
        self._keys = keys
        self._addresses = addresses
        self._unreachable_after = unreachable_after
        self._script = client.register_script(_RECORD)

    def get(self, outbox_id: str) -> DeliveryRecord | None:
        raw = {k.decode(): v.decode() for k, v in self._redis.hgetall(self._keys.delivery(outbox_id)).items()}
        if not raw:
            return None
        return DeliveryRecord(
            status=DeliveryStatus(raw["status"]) if raw.get("status") else None,
            external_id=raw.get("external_id", ""),
            error_code=raw.get("error_code", ""),
            channel=raw.get("channel", ""),
            unsure_since=datetime.fromisoformat(raw["unsure_since"]) if raw.get("unsure_since") else None,
            intent_text=raw.get("intent_text", ""),
        )

    def begin(self, outbox_id: str, channel: str, text: str) -> None:
        """Record the intent to send ``text`` now, before calling the provider.

        The time of the first unfinished attempt is kept (the provider is searched from
        there); the text is the latest attempt's. Both go when the outcome is recorded.
        """
        key = self._keys.delivery(outbox_id)
        pipe = self._redis.pipeline(transaction=True)
        # The provider's clock, not the product's (bot/clock.py may be set in tests and
        # simulations): this moment is compared with the provider's own timestamps.
        pipe.hsetnx(key, "unsure_since", datetime.now(timezone.utc).isoformat())
        pipe.hset(key, mapping={"channel": channel, "intent_text": text})
        pipe.expire(key, RETENTION_SECONDS)
        pipe.execute()

    def mark_unsure(self, outbox_id: str) -> None:
        """An attempt ended without an answer; keep the time of the first such attempt."""
        key = self._keys.delivery(outbox_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hsetnx(key, "unsure_since", datetime.now(timezone.utc).isoformat())
        pipe.expire(key, RETENTION_SECONDS)
        pipe.execute()

    def clear_unsure(self, outbox_id: str) -> None:
        """The attempt certainly did not reach the provider (refused, paced): nothing to look for."""
        self._redis.hdel(self._keys.delivery(outbox_id), "unsure_since", "intent_text")

    def record(self, receipt: DeliveryReceipt, *, conversation_id: str = "") -> bool:
        """Keep ``receipt`` unless a later status is already known; ``True`` when kept."""
        fields: list[str] = []
        for name, value in (
            ("channel", receipt.channel),
            ("status", receipt.status.value),
            ("external_id", receipt.external_id),
            ("error_code", receipt.error_code),
            ("error_message", receipt.error_message),
            ("conversation_id", conversation_id),
            ("at", receipt.at.isoformat()),
        ):
            if value:  # an empty value never wipes what an earlier record said
                fields += [name, value]
        kept = bool(
            self._script(
                keys=[self._keys.delivery(receipt.outbox_id), self._keys.deliveries],
                args=[STATUS_RANK[receipt.status], RETENTION_SECONDS, receipt.outbox_id, *fields],
            )
        )
        return kept

    def apply(self, receipt: DeliveryReceipt, recipient: str, *, conversation_id: str = "") -> bool:
        """Record a status (ours or a provider callback) and learn what it says about the address.

        Only a status that moves the record forward counts, so a repeated callback does not
        count the same failure twice.
        """
        kept = self.record(receipt, conversation_id=conversation_id)
        if not kept:
            return False
        code = receipt.error_code or ""
        channel, outbox_id = receipt.channel, receipt.outbox_id
        if code in OPTED_OUT_ERRORS:
            if self._addresses.opt_out(channel, recipient):
                logger.info("message %s: the recipient unsubscribed at the provider; opted out", outbox_id)
        elif code in BLOCKED_ERRORS:
            self._addresses.mark_unreachable(channel, recipient)
            logger.info("message %s: the person blocked the bot; chat marked unreachable", outbox_id)
        elif code in UNREACHABLE_ERRORS:
            if self._addresses.record_unreachable_failure(channel, recipient, self._unreachable_after):
                logger.info("message %s: error %s again; address marked unreachable", outbox_id, code)
        elif receipt.status is DeliveryStatus.DELIVERED:
            self._addresses.record_delivered(channel, recipient)
        return True
