"""The outbound path (worker): queue replies in order, once; then gate, send and record each.

``enqueue_outbound`` is also how outreach queues what the bot says first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

from bot.compliance.gate import ComplianceGate
from bot.compliance.rules import Outgoing, Verdict
from bot.conversations.deliveries import DeliveryLog
from bot.conversations.identity import account_id_of
from bot.store.accounts import AccountStore
from bot.store.addresses import AddressBook, address_key
from bot.store.connection import Keys
from bot.store.intake import OUTBOUND
from bot.store.jobs import Jobs
from bot.store.queues import Entry, GiveUp, KeyedQueue, RetryLater
from channels.base import (
    Channel,
    DeliveryFailed,
    DeliveryReceipt,
    DeliveryStatus,
    OutboundMessage,
    RateLimited,
)

logger = logging.getLogger(__name__)

#: Proactive kinds sent to a verified person outside any conversation: they carry the statement.
REMINDERS = frozenset({"reminder", "missed_payment"})


def enqueue_outbound(
    queue: KeyedQueue, jobs: Jobs, keys: Keys, messages: list[OutboundMessage], dedupe_ttl_seconds: int
) -> None:
    """Queue messages for sending, in order, once per ``outbox_id`` (a replayed entry adds nothing)."""
    touched: dict[str, None] = {}  # ordered set
    for message in messages:
        key = address_key(message.channel, message.recipient)
        queue.append(
            key,
            message.to_json(),
            dedupe_key=keys.dedupe("outbox", message.outbox_id),
            dedupe_ttl_seconds=dedupe_ttl_seconds,
        )
        touched[key] = None
    for key in touched:
        jobs.schedule(OUTBOUND, key)


@dataclass
class OutboundHandler:
    """Send one queued message, at most once, and record what happened to it."""

    channels: Mapping[str, Channel]
    addresses: AddressBook
    deliveries: DeliveryLog
    gate: ComplianceGate | None = None
    accounts: AccountStore | None = None

    def __call__(self, entry: Entry) -> None:
        message = OutboundMessage.from_json(entry.payload)
        channel = self.channels.get(message.channel)
        if channel is None:
            raise GiveUp(f"channel {message.channel} is not enabled")
        known = self.deliveries.get(message.outbox_id)
        if known is not None and known.status is not None:
            # Sent (or withheld, or refused) by an earlier attempt that died before the queue
            # moved on.
            logger.info("message %s already %s%s", message.outbox_id, known.status.value,
                        f" as {known.external_id}" if known.external_id else "")  # fmt: skip
            return
        if known is not None and known.unsure_since is not None:
            # An earlier attempt began and its outcome was never recorded: it timed out, or
            # the worker (or Redis) died between the provider's answer and our record. Ask
            # the provider before sending again.
            attempted = replace(message, text=known.intent_text or message.text)
            try:
                found = channel.find_sent(attempted, known.unsure_since)
            except DeliveryFailed as exc:
                raise RetryLater(f"cannot tell whether message {message.outbox_id} went out: {exc}") from exc
            if found is not None:
                logger.info("message %s had gone out after all (%s)", message.outbox_id, found.external_id)
                self._record(message, found)
                return
        if self.gate is not None:
            passed = self._through_gate(message)
            if passed is None:
                return
            message = passed
        status = self.addresses.status(message.channel, message.recipient)
        silenced, since = status.silenced_because, status.silenced_since
        if silenced is not None and since is not None and (message.proactive or message.created_at < since):
            # What was made after the opt-out (its one confirmation, a HELP answer) still
            # goes; replies queued before it and anything the bot starts itself never do.
            logger.info("message %s withheld: address %s", message.outbox_id, silenced)
            self._record(message, DeliveryReceipt(
                outbox_id=message.outbox_id, channel=message.channel, status=DeliveryStatus.FAILED,
                error_code="withheld", error_message=f"address {silenced}",
            ))  # fmt: skip
            return
        # The intent first: from here until the outcome is recorded, a crash leaves a trace
        # that makes the next attempt look before it sends.
        self.deliveries.begin(message.outbox_id, message.channel, message.text)
        try:
            receipt = channel.send(message)
        except RateLimited as exc:
            self.deliveries.clear_unsure(message.outbox_id)  # paced before any request left
            raise RetryLater(str(exc), delay=exc.retry_after) from exc
        except DeliveryFailed as exc:
            if not exc.unsure:
                # The provider said no (or was never reached): nothing of it to look for.
                self.deliveries.clear_unsure(message.outbox_id)
            if not exc.permanent:
                raise RetryLater(str(exc)) from exc
            receipt = DeliveryReceipt(
                outbox_id=message.outbox_id,
                channel=message.channel,
                status=DeliveryStatus.FAILED,
                error_code=exc.code,
                error_message=str(exc),
            )
            logger.warning("message %s could not be delivered: %s", message.outbox_id, exc)
        self._record(message, receipt)

    def _through_gate(self, message: OutboundMessage) -> OutboundMessage | None:
        """The compliance gate, right before the message leaves: the text as it must leave,
        or ``None`` when it must not leave now (recorded as withheld, with the rule)."""
        assert self.gate is not None
        account_id = account_id_of(message.conversation_id)
        account = self.accounts.get(account_id) if self.accounts is not None and account_id else None
        decision = self.gate.decide(
            account, message.channel, message.recipient,
            Outgoing(
                channel=message.channel, text=message.text, language=message.language or "en",
                proactive=message.proactive, kind=message.kind,
                # The dialogue gives the statement itself after verification; reminders, sent
                # outside any conversation, carry it themselves.
                verified=message.kind in REMINDERS, mini_miranda_said=message.kind not in REMINDERS,
            ),
            outbox_id=message.outbox_id,
        )  # fmt: skip
        if decision.verdict is Verdict.SEND:
            return replace(message, text=decision.text)
        # A proactive message that must wait is not held in this address's queue (the
        # person's own conversation would wait behind it): outreach tries again later.
        logger.info("message %s withheld by the compliance gate: %s", message.outbox_id, decision.rule)
        self._record(message, DeliveryReceipt(
            outbox_id=message.outbox_id, channel=message.channel, status=DeliveryStatus.FAILED,
            error_code=f"compliance:{decision.rule}", error_message=decision.reason,
        ))  # fmt: skip
        return None

    def _record(self, message: OutboundMessage, receipt: DeliveryReceipt) -> None:
        self.deliveries.apply(receipt, message.recipient, conversation_id=message.conversation_id)
        account_id = account_id_of(message.conversation_id)
        if (
            self.gate is not None
            and message.proactive
            and receipt.status is not DeliveryStatus.FAILED
            and account_id
        ):
            self.gate.record_proactive(account_id, message.channel, message.outbox_id)
