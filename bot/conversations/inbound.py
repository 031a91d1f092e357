"""The inbound path (worker): identify the account, screen, answer keywords, ask the dialogue,
render and queue the answer.

The gateway's half (authenticate, parse, de-duplicate, append) is ``bot.store.intake`` and the
webhooks; the outbound half is ``bot.conversations.outbound``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from bot.care.crisis import CrisisDesk, country_of
from bot.care.screen import Screening, screen
from bot.compliance.gate import ComplianceGate
from bot.compliance.keywords import SmsKeywords
from bot.compliance.notices import notice
from bot.conversations.deliveries import DeliveryLog
from bot.conversations.identity import conversation_id_for, identify
from bot.conversations.outbound import enqueue_outbound
from bot.conversations.rate_limits import ReplyCap
from bot.conversations.render import OfferedChoices, RenderOptions, render_replies
from bot.email.envelope import EmailEnvelope
from bot.email.threads import EmailThreads
from bot.errors import BotError
from bot.privacy import CARD_PLACEHOLDER, without_card_placeholders
from bot.store.accounts import Account, AccountStore
from bot.store.addresses import AddressBook, address_key
from bot.store.agent_queue import AgentQueue
from bot.store.connection import Keys
from bot.store.jobs import Jobs
from bot.store.opener_stats import OpenerStats
from bot.store.queues import Entry, GiveUp, KeyedQueue, RetryLater
from bot.telegram.links import TelegramLinks
from channels.base import (
    Channel,
    ChannelError,
    DeliveryReceipt,
    DeliveryStatus,
    InboundMessage,
)
from channels.email import outbox_id_from
from dialogue.rasa_client import BotReply, RasaActionFailed, RasaClient, RasaRejected, RasaUnavailable

logger = logging.getLogger(__name__)

#: The agents' queue reason for an accepted message the worker gave up answering.
NOT_ANSWERED = "not_answered"


class DialogueFailed(BotError):
    """The dialogue failed on this message with everything up (a custom action crashed).

    Not a :class:`RetryLater`: the queue counts these, and after ``worker.max_attempts`` sets
    the message aside and a person is told (:class:`NotAnswered`)."""


@dataclass
class NotAnswered:
    """Tells a person about an accepted message the worker set aside unanswered (the dialogue
    kept failing, or refused it): the agents' queue gets the conversation with the reason,
    once per message however often the set-aside is replayed. ``KeyedQueue``'s
    ``on_set_aside`` for the inbound queue."""

    accounts: AccountStore
    agents: AgentQueue
    links: TelegramLinks | None = None
    threads: EmailThreads | None = None

    def __call__(self, entry: Entry, reason: str) -> None:
        try:
            message = InboundMessage.from_json(entry.payload)
        except (ValueError, KeyError, TypeError):
            # Unreadable: the dead letter has it; the person behind it still deserves a look.
            self.agents.flag(
                f"queue:inbound:{entry.key}", NOT_ANSWERED, detail=f"{reason} (unreadable entry)",
                once=f"entry:{entry.key}:{entry.entry_id}",
            )  # fmt: skip
            return
        account = identify(self.accounts, message, self.links, self.threads)
        conversation_id = conversation_id_for(account, message)
        self.agents.flag(
            conversation_id,
            NOT_ANSWERED,
            account_id=account.account_id if account else None,
            # The reason first: the detail is cut at 500 characters.
            detail=f"{reason[:200]} | {message.channel}: {message.text}",
            once=f"{message.channel}:{message.external_id}",
        )
        logger.error(
            "conversation %s: %s message %s set aside unanswered; flagged for an agent",
            conversation_id, message.channel, message.external_id,
        )  # fmt: skip


@dataclass
class InboundHandler:
    """The worker side of an inbound message."""

    accounts: AccountStore
    addresses: AddressBook
    agents: AgentQueue
    rasa: RasaClient
    outbound: KeyedQueue
    jobs: Jobs
    keys: Keys
    keywords: SmsKeywords
    choices: OfferedChoices
    render: RenderOptions
    links: TelegramLinks
    channels: Mapping[str, Channel]
    default_language: str
    dedupe_ttl_seconds: int
    email: EmailEnvelope | None = None
    deliveries: DeliveryLog | None = None
    reply_cap: ReplyCap | None = None
    gate: ComplianceGate | None = None
    opener_stats: OpenerStats | None = None
    crisis: CrisisDesk | None = None
    #: Unix seconds now (the product's clock).
    clock: Callable[[], float] = time.time

    def __call__(self, entry: Entry) -> None:
        message = InboundMessage.from_json(entry.payload)
        if message.kind == "start" and message.text:
            linked = self.links.redeem(message.text, message.sender)
            logger.info(
                "telegram message %s: /start link %s", message.external_id, "used" if linked else "unknown"
            )
        if message.kind == "automated":
            self._machine_mail(message)
            return
        account = identify(self.accounts, message, self.links, self.email.threads if self.email else None)
        conversation_id = conversation_id_for(account, message)
        source = f"{message.channel}:{message.external_id}"
        language = account.language if account else self.default_language
        if account is not None:
            # The person wrote: replies may go at any hour for a while, and their opener worked.
            if self.gate is not None:
                self.gate.record_inbound(account.account_id)
            if self.opener_stats is not None:
                self.opener_stats.record(account.account_id, "replied")
        # The safety screen comes before everything else, in every state (before verification,
        # inside a form, opted out, wrong party): a sign of crisis gets help and a person.
        screening = screen(message.text) if message.kind == "text" else Screening()
        if screening.crisis and self.crisis is not None:
            self._crisis(message, account, conversation_id, source, screening.language or language, screening)
            return
        keyword = self.keywords.handle(message, account)
        if keyword is not None:
            replies = [BotReply(text=text) for text in keyword.replies]
            self._send(
                replies,
                message,
                conversation_id,
                source,
                what=f"keyword {keyword.kind.value}",
                account=account,
                language=language,
            )
            return
        status = self.addresses.status(message.channel, message.sender)
        if status.unreachable_at is not None:  # they wrote from it, so it works again
            self.addresses.clear_unreachable(message.channel, message.sender)
        silenced = status.silenced_because
        if silenced is not None:
            self._acknowledge(message)
            # The person asked us to stop here (or is not the person we want): the bot stays
            # silent on this address, and a person reads what they wrote and decides.
            self.agents.flag(
                conversation_id,
                f"wrote_after_{silenced}",
                account_id=account.account_id if account else None,
                detail=f"{message.channel}: {message.text}",
                once=source,
            )
            if self.crisis is not None and status.care_until is not None and self.clock() < status.care_until:
                # Shortly after a sign of crisis, silence would be the worst answer: a short
                # word that a person has their messages, with the crisis line (nothing else).
                country = country_of(account, message.channel, message.sender)
                follow_up = notice("care_follow_up", language).format(
                    line=self.crisis.line(country, language)
                )
                self._send(
                    [BotReply(text=follow_up)], message, conversation_id, source, what="care follow-up",
                    account=account, language=language, kind="crisis",
                )  # fmt: skip
                return
            logger.info(
                "conversation %s: %s message %s not answered (address %s); flagged for an agent",
                conversation_id, message.channel, message.external_id, silenced,
            )  # fmt: skip
            return
        if screening.vulnerable:
            # The gentle path is the dialogue's; a person always hears of it, with the reason.
            for concern in sorted(screening.concerns, key=lambda c: c.value):
                self.agents.flag(
                    conversation_id,
                    f"vulnerable:{concern.value}",
                    account_id=account.account_id if account else None,
                    detail=f"{message.channel}: {message.text}",
                    once=source,
                )
        metadata = {
            "channel": message.channel,
            "account_id": account.account_id if account else None,
            "language": language,
            "external_id": message.external_id,
            # The actions need the address to honour "wrong number" and "stop" for it.
            "address": message.sender,
            # What the safety screen saw: the actions keep the reasons (a callback asked for by
            # someone who cannot read well) and never answer distress cheerfully.
            "screen": {
                "concerns": sorted(c.value for c in screening.concerns),
                "distress": screening.distress,
            },
        }
        if message.kind == "unsupported":
            self._send([BotReply(text=notice("text_only", language))], message, conversation_id, source,
                       what="not text", account=account, language=language)  # fmt: skip
            return
        if message.kind == "choice":
            # The button's data is a position and an offer id: what it means is what we offered,
            # and only on the keyboard offered last.
            payload = self.choices.pressed(message.channel, message.sender, message.text)
            self._acknowledge(message, None if payload else notice("choice_expired", language))
            if payload is None:
                logger.info("conversation %s: a stale or unknown button pressed; ignored", conversation_id)
                return
            text = payload
        elif message.kind == "start":
            text = "/greet"  # opening the chat is a hello; a deep link was redeemed above
        else:
            # "2" answers the second of the numbered choices we last offered on this address.
            text = self.choices.resolve(message.channel, message.sender, message.text)
            if CARD_PLACEHOLDER in text:
                # A typed card number (already removed at the gateway): say why it was deleted,
                # then go on with what they asked, without the placeholder steering the intent.
                self._send(
                    [BotReply(text=notice("card_number", language))], message, conversation_id,
                    f"{source}:card", what="card number", account=account, language=language,
                )  # fmt: skip
                text = without_card_placeholders(text)
                if not text:
                    return
        if (
            message.channel == "email"
            and self.reply_cap is not None
            and not self.reply_cap.take(address_key(message.channel, message.sender), message.external_id)
        ):
            # Far more mail than a person writes: perhaps a machine answering us. Stop
            # answering this address for now and let a person look.
            self.agents.flag(
                conversation_id,
                "email_reply_cap_reached",
                account_id=account.account_id if account else None,
                detail=f"email: {message.text}",
            )
            logger.warning(
                "conversation %s: email %s not answered: the address reached its hourly reply cap",
                conversation_id, message.external_id,
            )  # fmt: skip
            return
        try:
            # The message id makes Rasa handle it once: a replay (we died before the queue
            # moved on) gets the same answers back, which queue nothing new (stable outbox ids).
            replies = self.rasa.send_message(
                conversation_id, text, channel=message.channel, metadata=metadata, message_id=source
            )
        except RasaUnavailable as exc:
            raise RetryLater(str(exc)) from exc
        except RasaActionFailed as exc:
            raise DialogueFailed(f"conversation {conversation_id}: {exc}") from exc
        except RasaRejected as exc:
            raise GiveUp(str(exc)) from exc
        offer_id = self.choices.remember(message.channel, message.sender, replies)
        # "Wrong number" marks the address in the dialogue; its answer is the one closing
        # message such an address still gets (no name, no debt).
        status = self.addresses.status(message.channel, message.sender)
        closing = status.wrong_party_by == message.external_id
        self._send(
            replies, message, conversation_id, source, what="dialogue", account=account,
            language=language, kind="closing" if closing else "reply", offer_id=offer_id,
        )  # fmt: skip

    def _crisis(
        self,
        message: InboundMessage,
        account: Account | None,
        conversation_id: str,
        source: str,
        language: str,
        screening: Screening,
    ) -> None:
        """Help and a person: pause and escalate (once), answer with the crisis line of the
        person's country, whatever the address's state, then tell the dialogue."""
        assert self.crisis is not None
        self.crisis.raise_crisis(
            conversation_id=conversation_id,
            account_id=account.account_id if account else None,
            detail=f"{message.channel}: {message.text}",
            once=source,
            source="screen:" + ",".join(screening.matched),
        )
        reply = self.crisis.reply(language, country_of(account, message.channel, message.sender))
        # For a while, even an address that asked for silence hears that a person has its words.
        self.addresses.open_care_window(
            message.channel, message.sender, self.clock() + self.crisis.follow_up_hours * 3600
        )
        # Buttons offered earlier are no longer on offer: "1" must not pick a plan now.
        self.choices.remember(message.channel, message.sender, [])
        self._send([BotReply(text=reply)], message, conversation_id, source, what="crisis", account=account,
                   language=language, kind="crisis")  # fmt: skip
        if self.addresses.status(message.channel, message.sender).silenced_because is not None:
            return  # the dialogue does not hear from an address it may not answer
        metadata = {
            "channel": message.channel,
            "account_id": account.account_id if account else None,
            "language": language,
            "external_id": message.external_id,
            "address": message.sender,
            # action_crisis: already answered and escalated; only mark the conversation.
            "screened": "crisis",
        }
        try:
            said = self.rasa.send_message(
                conversation_id, "/crisis", channel=message.channel, metadata=metadata, message_id=source
            )
        except RasaUnavailable as exc:
            # The person has their answer; the dialogue is told when Rasa is back.
            raise RetryLater(str(exc)) from exc
        except RasaActionFailed as exc:
            raise DialogueFailed(f"conversation {conversation_id}: {exc}") from exc
        except RasaRejected as exc:
            raise GiveUp(str(exc)) from exc
        if said:
            logger.warning("conversation %s: the dialogue added %d message(s) to a crisis answer; not sent",
                           conversation_id, len(said))  # fmt: skip

    def _machine_mail(self, message: InboundMessage) -> None:
        """An auto-reply or a bounce: never answered. A bounce marks the address undeliverable
        and the bounced message as failed."""
        bounce = message.raw.get("bounce")
        if not isinstance(bounce, dict):
            logger.info("email %s is an automatic reply (%s): not answered",
                        message.external_id, message.raw.get("automated"))  # fmt: skip
            return
        if not bounce.get("permanent"):
            logger.info("email %s: a delivery is delayed (%s); nothing to do yet", message.external_id,
                        bounce.get("status"))  # fmt: skip
            return
        original = bounce.get("original_message_id")
        outbox_id = outbox_id_from(str(original)) if original else None
        for recipient in bounce.get("recipients") or ():
            self.addresses.mark_unreachable("email", str(recipient))
            if outbox_id and self.deliveries is not None:
                self.deliveries.apply(
                    DeliveryReceipt(
                        outbox_id=outbox_id, channel="email", status=DeliveryStatus.UNDELIVERED,
                        error_code="bounced", error_message=f"bounced ({bounce.get('status') or '?'})",
                    ),
                    str(recipient),
                )  # fmt: skip
        logger.info("email %s: a bounce (%s) for %d address(es), marked undeliverable%s",
                    message.external_id, bounce.get("status"), len(bounce.get("recipients") or ()),
                    f"; message {outbox_id} undelivered" if outbox_id else "")  # fmt: skip

    def _acknowledge(self, message: InboundMessage, notice_text: str | None = None) -> None:
        channel = self.channels.get(message.channel)
        if channel is None or message.kind != "choice":
            return
        try:
            channel.acknowledge(message, notice_text)
        except ChannelError as exc:  # the spinner stops by itself; the reply still goes
            logger.warning("could not answer button press %s: %s", message.external_id, exc)

    def _send(
        self,
        replies: Sequence[BotReply],
        message: InboundMessage,
        conversation_id: str,
        source: str,
        what: str,
        account: Account | None = None,
        language: str = "",
        kind: str = "reply",
        offer_id: str | None = None,
    ) -> None:
        outgoing = render_replies(
            replies,
            channel=message.channel,
            recipient=message.sender,
            conversation_id=conversation_id,
            source=source,
            in_reply_to=message.external_id,
            options=self.render,
            offer_id=offer_id,
        )
        if kind != "reply":
            outgoing = [replace(out, kind=kind) for out in outgoing]
        if message.channel == "email" and self.email is not None:
            outgoing = self.email.dress(
                outgoing,
                account_id=account.account_id if account else None,
                language=language or self.default_language,
                answering=message,
            )
        logger.info(
            "conversation %s: %s message %s answered (%s) with %d message(s)",
            conversation_id, message.channel, message.external_id, what, len(outgoing),
        )  # fmt: skip
        enqueue_outbound(self.outbound, self.jobs, self.keys, outgoing, self.dedupe_ttl_seconds)
