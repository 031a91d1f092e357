"""The outbound path (worker): queue replies in order, once; then, for each, ``OUTBOUND_STEPS``
in order until one stops: find the channel, skip what has an outcome, ask the provider after an
unsure attempt, the compliance gate, withhold from a silenced address, send (the channel paces
the sender), record.

``enqueue_outbound`` is also how outreach queues what the bot says first. The replies are
rendered for their channel before they are queued (``bot.conversations.render``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import TypeAlias

from bot.compliance.gate import ComplianceGate
from bot.compliance.rules import Outgoing, Verdict
from bot.conversations.deliveries import DeliveryLog, DeliveryRecord
from bot.conversations.history import ConversationHistory
from bot.conversations.identity import account_id_of
from bot.conversations.steps import Stop, bind, run
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
    queue: KeyedQueue,
    jobs: Jobs,
    keys: Keys,
    messages: list[OutboundMessage],
    dedupe_ttl_seconds: int,
    *,
    history: ConversationHistory | None = None,
    by: str = "bot",
) -> None:
    """Queue messages for sending, in order, once per ``outbox_id`` (a replayed entry adds nothing);
    each goes into its conversation's ``history`` first (``by``: ``bot`` or ``agent:<name>``)."""
    touched: dict[str, None] = {}  # ordered set
    for message in messages:
        if history is not None:
            history.outbound(
                message.conversation_id, outbox_id=message.outbox_id, channel=message.channel,
                text=message.text, kind=message.kind, by=by,
            )  # fmt: skip
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


@dataclass(frozen=True)
class Sending:
    """One queued message on its way out, and what the steps so far learnt about it."""

    message: OutboundMessage
    channel: Channel | None = None
    #: What an earlier attempt recorded (``skip_if_recorded`` reads it).
    known: DeliveryRecord | None = None
    #: The provider's answer (or our failure record), once sent.
    receipt: DeliveryReceipt | None = None


#: An outbound step's answer: ``Stop``, or what to pass on.
SendOutcome: TypeAlias = Sending | Stop
#: Records a message's outcome (``OutboundHandler._record``).
Recorder: TypeAlias = Callable[[OutboundMessage, DeliveryReceipt], None]


def find_channel(sending: Sending, *, channels: Mapping[str, Channel]) -> SendOutcome:
    """The message's channel; a channel that is not enabled sets the message aside (``GiveUp``)."""
    channel = channels.get(sending.message.channel)
    if channel is None:
        raise GiveUp(f"channel {sending.message.channel} is not enabled")
    return replace(sending, channel=channel)


def skip_if_recorded(sending: Sending, *, deliveries: DeliveryLog) -> SendOutcome:
    """Sent (or withheld, or refused) by an earlier attempt that died before the queue moved on:
    nothing more to do."""
    message = sending.message
    known = deliveries.get(message.outbox_id)
    if known is not None and known.status is not None:
        logger.info("message %s already %s%s", message.outbox_id, known.status.value,
                    f" as {known.external_id}" if known.external_id else "")  # fmt: skip
        return Stop(f"already {known.status.value}")
    return replace(sending, known=known)


def ask_provider_if_unsure(sending: Sending, *, record: Recorder) -> SendOutcome:
    """An earlier attempt began and its outcome was never recorded: it timed out, or the worker
    (or Redis) died between the provider's answer and our record. Ask the provider before
    sending again (``RetryLater`` when it cannot tell)."""
    message, known = sending.message, sending.known
    if known is None or known.unsure_since is None:
        return sending
    assert sending.channel is not None
    attempted = replace(message, text=known.intent_text or message.text)
    try:
        found = sending.channel.find_sent(attempted, known.unsure_since)
    except DeliveryFailed as exc:
        raise RetryLater(f"cannot tell whether message {message.outbox_id} went out: {exc}") from exc
    if found is None:
        return sending
    logger.info("message %s had gone out after all (%s)", message.outbox_id, found.external_id)
    record(message, found)
    return Stop("had gone out")


def pass_the_gate(
    sending: Sending, *, gate: ComplianceGate | None, accounts: AccountStore | None, record: Recorder
) -> SendOutcome:
    """The compliance gate, right before the message leaves (the hour may have changed since it
    was queued, a person may have flagged the account or claimed the conversation): the text as
    it must leave, or withheld (recorded, with the rule)."""
    if gate is None:
        return sending
    message = sending.message
    account_id = account_id_of(message.conversation_id)
    account = accounts.get(account_id) if accounts is not None and account_id else None
    decision = gate.decide(
        account, message.channel, message.recipient,
        Outgoing(
            channel=message.channel, text=message.text, language=message.language or "en",
            proactive=message.proactive, kind=message.kind,
            # The dialogue gives the statement itself after verification; reminders, sent
            # outside any conversation, carry it themselves.
            verified=message.kind in REMINDERS, mini_miranda_said=message.kind not in REMINDERS,
        ),
        # Whether an agent holds this conversation (then the bot starts nothing: a proactive
        # message queued before the claim is withheld here, at the last moment).
        outbox_id=message.outbox_id, conversation_id=message.conversation_id,
    )  # fmt: skip
    if decision.verdict is Verdict.SEND:
        return replace(sending, message=replace(message, text=decision.text))
    # A proactive message that must wait is not held in this address's queue (the
    # person's own conversation would wait behind it): outreach tries again later.
    logger.info("message %s withheld by the compliance gate: %s", message.outbox_id, decision.rule)
    record(message, DeliveryReceipt(
        outbox_id=message.outbox_id, channel=message.channel, status=DeliveryStatus.FAILED,
        error_code=f"compliance:{decision.rule}", error_message=decision.reason,
    ))  # fmt: skip
    return Stop(f"gate: {decision.rule}")


def withhold_if_silenced(sending: Sending, *, addresses: AddressBook, record: Recorder) -> SendOutcome:
    """What was made after an opt-out (its one confirmation, a HELP answer) still goes; replies
    queued before it and anything the bot starts itself never do."""
    message = sending.message
    status = addresses.status(message.channel, message.recipient)
    silenced, since = status.silenced_because, status.silenced_since
    if silenced is None or since is None or not (message.proactive or message.created_at < since):
        return sending
    logger.info("message %s withheld: address %s", message.outbox_id, silenced)
    record(message, DeliveryReceipt(
        outbox_id=message.outbox_id, channel=message.channel, status=DeliveryStatus.FAILED,
        error_code="withheld", error_message=f"address {silenced}",
    ))  # fmt: skip
    return Stop(f"address {silenced}")


def send(sending: Sending, *, deliveries: DeliveryLog) -> SendOutcome:
    """The provider, once: the intent is recorded first, so a crash from here until the outcome
    is recorded leaves a trace that makes the next attempt look before it sends. Rate-limited
    or a passing failure: ``RetryLater``; a permanent failure is the outcome."""
    message = sending.message
    assert sending.channel is not None
    deliveries.begin(message.outbox_id, message.channel, message.text)
    try:
        receipt = sending.channel.send(message)
    except RateLimited as exc:
        deliveries.clear_unsure(message.outbox_id)  # paced before any request left
        raise RetryLater(str(exc), delay=exc.retry_after) from exc
    except DeliveryFailed as exc:
        if not exc.unsure:
            # The provider said no (or was never reached): nothing of it to look for.
            deliveries.clear_unsure(message.outbox_id)
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
    return replace(sending, receipt=receipt)


def record_outcome(sending: Sending, *, record: Recorder) -> SendOutcome:
    """What happened to the message (clears the intent); a proactive one counts for the caps."""
    assert sending.receipt is not None
    record(sending.message, sending.receipt)
    return Stop(sending.receipt.status.value)


#: The outbound path, in order: the first step that stops ends it (docs/architecture.md).
OUTBOUND_STEPS: tuple[Callable[..., SendOutcome], ...] = (
    find_channel,
    skip_if_recorded,
    ask_provider_if_unsure,
    pass_the_gate,
    withhold_if_silenced,
    send,
    record_outcome,
)


@dataclass
class OutboundHandler:
    """Send one queued message, at most once, and record what happened to it:
    ``OUTBOUND_STEPS`` in order, until one stops. Each step gets the collaborators it names
    from these fields (and ``record``: :meth:`_record`), read at every message."""

    channels: Mapping[str, Channel]
    addresses: AddressBook
    deliveries: DeliveryLog
    gate: ComplianceGate | None = None
    accounts: AccountStore | None = None

    def __call__(self, entry: Entry) -> None:
        """Handle one queued message; ``RetryLater`` and ``GiveUp`` go to the queue."""
        run(self.steps(), Sending(OutboundMessage.from_json(entry.payload)))

    def steps(self) -> list[Callable[[Sending], SendOutcome]]:
        """``OUTBOUND_STEPS`` with their collaborators."""
        parts: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        parts["record"] = self._record
        return [bind(step, parts) for step in OUTBOUND_STEPS]

    def _record(self, message: OutboundMessage, receipt: DeliveryReceipt) -> None:
        """Record ``receipt`` as the message's outcome; a proactive message that was not refused
        counts towards the account's contact caps."""
        self.deliveries.apply(receipt, message.recipient, conversation_id=message.conversation_id)
        account_id = account_id_of(message.conversation_id)
        if (
            self.gate is not None
            and message.proactive
            and receipt.status is not DeliveryStatus.FAILED
            and account_id
        ):
            self.gate.record_proactive(account_id, message.channel, message.outbox_id)
