"""The inbound path as its steps: ``STEPS``, in order, each a small function of the message and
what is known of it so far (a :class:`Context`) that either stops (answered, or nothing to
answer) or passes the context on, perhaps with more in it.

A step's collaborators are keyword-only parameters named after ``InboundHandler``'s fields (and
``say``, the :class:`Replier`); the handler passes each step the ones it names, so a step is
tested alone by calling it with fakes. A new inbound rule is one new function here, its place in
``STEPS`` and its test (``tests/bot/conversations/test_inbound_steps.py``); docs/architecture.md
lists the order, and a test keeps the two the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Protocol, TypeAlias

from bot.care.crisis import CrisisDesk, country_of
from bot.care.screen import Screening, screen
from bot.compliance.gate import ComplianceGate
from bot.compliance.keywords import SmsKeywords
from bot.compliance.notices import notice
from bot.config import ConsoleConfig
from bot.conversations.agent_hours import promise
from bot.conversations.deliveries import DeliveryLog
from bot.conversations.history import ConversationHistory
from bot.conversations.identity import conversation_id_for, identify
from bot.conversations.outbound import enqueue_outbound
from bot.conversations.rate_limits import ReplyCap
from bot.conversations.render import OfferedChoices, RenderOptions, render_replies
from bot.conversations.steps import Stop
from bot.email.envelope import EmailEnvelope
from bot.errors import BotError
from bot.privacy import CARD_PLACEHOLDER, without_card_placeholders
from bot.store.accounts import Account, AccountStore
from bot.store.addresses import AddressBook, address_key
from bot.store.agent_queue import AgentQueue
from bot.store.connection import Keys
from bot.store.jobs import Jobs
from bot.store.opener_stats import OpenerStats
from bot.store.queues import GiveUp, KeyedQueue, RetryLater
from bot.telegram.links import TelegramLinks
from channels.base import Channel, ChannelError, DeliveryReceipt, DeliveryStatus, InboundMessage
from channels.email import outbox_id_from
from channels.sms_keywords import KeywordKind
from dialogue.rasa_client import BotReply, RasaActionFailed, RasaClient, RasaRejected, RasaUnavailable

# The inbound path's log lines keep the name they always had (log filters and tests use it).
logger = logging.getLogger("bot.conversations.inbound")


class DialogueFailed(BotError):
    """The dialogue failed on this message with everything up (a custom action crashed).

    Not a :class:`RetryLater`: the queue counts these, and after ``worker.max_attempts`` sets
    the message aside and a person is told (``NotAnswered``)."""


class PersonDesk(Protocol):
    """What the inbound path asks the agents' console (``bot.console.handoff.HandoffStore``
    fits; the console stands on this package, so it is named here by what it does)."""

    def is_silenced_for_bot(self, conversation_id: str) -> bool:
        """An agent holds the conversation: the bot says nothing."""
        ...

    def first_promise(self, conversation_id: str) -> datetime | None:
        """It waits for a person and the person has not been told when, in this wait."""
        ...


# --------------------------------------------------------------------------------------------
# What a step gets and gives
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """One inbound message and what the steps so far learnt about it."""

    message: InboundMessage
    #: ``<channel>:<provider id>``: the message's id towards Rasa, the agents' queue and the outbox.
    source: str
    account: Account | None = None
    #: ``acct-<id>`` or ``anon-<channel>.<hash>`` (``identify_account`` sets it).
    conversation_id: str = ""
    #: The language to answer in (the account's, else the default).
    language: str = ""
    #: What the safety screen saw (nothing until ``safety_screen``).
    screening: Screening = field(default_factory=Screening)
    #: What the dialogue is to hear: the text, a button's payload, a numbered choice's payload.
    text: str = ""
    #: The dialogue's answers, once asked, with the offer id of their buttons.
    replies: tuple[BotReply, ...] = ()
    offer_id: str | None = None
    #: The answer is the one closing message a "wrong number" address still gets.
    closing: bool = False

    @classmethod
    def of(cls, message: InboundMessage) -> Context:
        """The context before any step."""
        return cls(message=message, source=f"{message.channel}:{message.external_id}", text=message.text)

    @property
    def account_id(self) -> str | None:
        return self.account.account_id if self.account else None


#: A step's answer: ``Stop``, or the context to pass on.
Outcome: TypeAlias = Context | Stop
#: A step with its collaborators bound: what the handler runs.
Step: TypeAlias = Callable[[Context], Outcome]


@dataclass
class Replier:
    """Renders answers for the message's channel (email: one dressed email) and queues them,
    once per outbox id; answers a button press (stops Telegram's spinner)."""

    outbound: KeyedQueue
    jobs: Jobs
    keys: Keys
    render: RenderOptions
    channels: Mapping[str, Channel]
    default_language: str
    dedupe_ttl_seconds: int
    email: EmailEnvelope | None = None
    history: ConversationHistory | None = None

    def send(
        self,
        context: Context,
        replies: Sequence[BotReply],
        what: str,
        *,
        kind: str = "reply",
        source: str | None = None,
        offer_id: str | None = None,
    ) -> None:
        """Queue ``replies`` to the sender; ``source`` (default the message's) makes the outbox ids."""
        message = context.message
        outgoing = render_replies(
            replies,
            channel=message.channel,
            recipient=message.sender,
            conversation_id=context.conversation_id,
            source=source or context.source,
            in_reply_to=message.external_id,
            options=self.render,
            offer_id=offer_id,
        )
        if kind != "reply":
            outgoing = [replace(out, kind=kind) for out in outgoing]
        if message.channel == "email" and self.email is not None:
            outgoing = self.email.dress(
                outgoing,
                account_id=context.account_id,
                language=context.language or self.default_language,
                answering=message,
            )
        logger.info(
            "conversation %s: %s message %s answered (%s) with %d message(s)",
            context.conversation_id, message.channel, message.external_id, what, len(outgoing),
        )  # fmt: skip
        enqueue_outbound(self.outbound, self.jobs, self.keys, outgoing, self.dedupe_ttl_seconds,
                         history=self.history)  # fmt: skip

    def acknowledge(self, message: InboundMessage, notice_text: str | None = None) -> None:
        """Answer a button press (with a short notice, if any); nothing for other messages."""
        channel = self.channels.get(message.channel)
        if channel is None or message.kind != "choice":
            return
        try:
            channel.acknowledge(message, notice_text)
        except ChannelError as exc:  # the spinner stops by itself; the reply still goes
            logger.warning("could not answer button press %s: %s", message.external_id, exc)


# --------------------------------------------------------------------------------------------
# The steps, in the order of STEPS
# --------------------------------------------------------------------------------------------


def redeem_deep_link(context: Context, *, links: TelegramLinks) -> Outcome:
    """A Telegram ``/start <token>`` links the chat to the token's account (before identifying)."""
    message = context.message
    if message.kind == "start" and message.text:
        linked = links.redeem(message.text, message.sender)
        logger.info(
            "telegram message %s: /start link %s", message.external_id, "used" if linked else "unknown"
        )
    return context


def skip_machine_mail(context: Context, *, addresses: AddressBook, deliveries: DeliveryLog | None) -> Outcome:
    """An auto-reply or a bounce: never answered. A bounce marks the address undeliverable
    and the bounced message as failed."""
    message = context.message
    if message.kind != "automated":
        return context
    bounce = message.raw.get("bounce")
    if not isinstance(bounce, dict):
        logger.info("email %s is an automatic reply (%s): not answered",
                    message.external_id, message.raw.get("automated"))  # fmt: skip
        return Stop("automatic reply")
    if not bounce.get("permanent"):
        logger.info("email %s: a delivery is delayed (%s); nothing to do yet", message.external_id,
                    bounce.get("status"))  # fmt: skip
        return Stop("delayed delivery")
    original = bounce.get("original_message_id")
    outbox_id = outbox_id_from(str(original)) if original else None
    for recipient in bounce.get("recipients") or ():
        addresses.mark_unreachable("email", str(recipient))
        if outbox_id and deliveries is not None:
            deliveries.apply(
                DeliveryReceipt(
                    outbox_id=outbox_id, channel="email", status=DeliveryStatus.UNDELIVERED,
                    error_code="bounced", error_message=f"bounced ({bounce.get('status') or '?'})",
                ),
                str(recipient),
            )  # fmt: skip
    logger.info("email %s: a bounce (%s) for %d address(es), marked undeliverable%s",
                message.external_id, bounce.get("status"), len(bounce.get("recipients") or ()),
                f"; message {outbox_id} undelivered" if outbox_id else "")  # fmt: skip
    return Stop("bounce")


def identify_account(
    context: Context,
    *,
    accounts: AccountStore,
    links: TelegramLinks,
    email: EmailEnvelope | None,
    default_language: str,
    gate: ComplianceGate | None,
    opener_stats: OpenerStats | None,
) -> Outcome:
    """The account (phone, email thread or address, linked Telegram chat), the conversation and
    the language; a known person wrote, so replies may go at any hour and their opener worked."""
    message = context.message
    account = identify(accounts, message, links, email.threads if email else None)
    if account is not None:
        if gate is not None:
            gate.record_inbound(account.account_id)
        if opener_stats is not None:
            opener_stats.record(account.account_id, "replied")
    return replace(
        context,
        account=account,
        conversation_id=conversation_id_for(account, message),
        language=account.language if account else default_language,
    )


def record_message(context: Context, *, history: ConversationHistory | None) -> Outcome:
    """What the person wrote goes into the conversation's history (once per message), which
    the agents' console shows."""
    message = context.message
    if history is not None:
        # An email's subject and thread: an agent's answer goes in the person's own thread.
        thread = (
            {"subject": str(message.raw.get("subject") or "")[:300],
             "references": [str(r) for r in message.raw.get("references") or ()][-20:]}
            if message.channel == "email" else None
        )  # fmt: skip
        history.inbound(
            context.conversation_id, source=context.source, channel=message.channel, text=message.text,
            kind=message.kind, address=message.sender, detail=thread,
        )  # fmt: skip
    return context


def safety_screen(
    context: Context,
    *,
    crisis: CrisisDesk | None,
    addresses: AddressBook,
    choices: OfferedChoices,
    rasa: RasaClient,
    say: Replier,
    clock: Callable[[], float],
) -> Outcome:
    """Every text, in every state (before verification, inside a form, opted out, wrong party),
    before anything answers it: a sign of crisis gets help and a person, and stops here; what
    else the screen saw passes on."""
    message = context.message
    screening = screen(message.text) if message.kind == "text" else Screening()
    context = replace(context, screening=screening)
    if not screening.crisis or crisis is None:
        return context
    # The crisis answer is in the language the person wrote in.
    context = replace(context, language=screening.language or context.language)
    crisis.raise_crisis(
        conversation_id=context.conversation_id,
        account_id=context.account_id,
        detail=f"{message.channel}: {message.text}",
        once=context.source,
        source="screen:" + ",".join(screening.matched),
    )
    reply = crisis.reply(context.language, country_of(context.account, message.channel, message.sender))
    # For a while, even an address that asked for silence hears that a person has its words.
    addresses.open_care_window(message.channel, message.sender, clock() + crisis.follow_up_hours * 3600)
    # Buttons offered earlier are no longer on offer: "1" must not pick a plan now.
    choices.remember(message.channel, message.sender, [])
    say.send(context, [BotReply(text=reply)], "crisis", kind="crisis")
    if addresses.status(message.channel, message.sender).silenced_because is not None:
        return Stop("crisis")  # the dialogue does not hear from an address it may not answer
    metadata = {
        "channel": message.channel,
        "account_id": context.account_id,
        "language": context.language,
        "external_id": message.external_id,
        "address": message.sender,
        # action_crisis: already answered and escalated; only mark the conversation.
        "screened": "crisis",
    }
    # RetryLater when Rasa is down: the person has their answer (queued once, by outbox id);
    # the dialogue is told when Rasa is back.
    said = _tell_the_dialogue(rasa, context, "/crisis", metadata)
    if said:
        logger.warning("conversation %s: the dialogue added %d message(s) to a crisis answer; not sent",
                       context.conversation_id, len(said))  # fmt: skip
    return Stop("crisis")


def answer_keyword(
    context: Context, *, keywords: SmsKeywords, say: Replier, history: ConversationHistory | None = None
) -> Outcome:
    """STOP / START / HELP (and STOP by email): acted on and answered from config, never by the
    dialogue. An opt-out (or back in) is a line of the conversation's history, once per message."""
    keyword = keywords.handle(context.message, context.account)
    if keyword is None:
        return context
    if history is not None and keyword.kind in (KeywordKind.STOP, KeywordKind.START):
        channel = context.message.channel
        stop = keyword.kind is KeywordKind.STOP
        history.event(
            context.conversation_id, "opted_out" if stop else "opted_in", once=context.source,
            text=f"{keyword.kind.value.upper()} by {channel}: "
                 + ("no more messages on this channel" if stop else "messages on this channel again"),
            detail={"channel": channel, "keyword": keyword.kind.value},
        )  # fmt: skip
    say.send(context, [BotReply(text=text) for text in keyword.replies], f"keyword {keyword.kind.value}")
    return Stop(f"keyword {keyword.kind.value}")


def respect_silence(
    context: Context,
    *,
    addresses: AddressBook,
    agents: AgentQueue,
    crisis: CrisisDesk | None,
    say: Replier,
    clock: Callable[[], float],
) -> Outcome:
    """An address that opted out or is not the person we want gets no answer, and a person reads
    what it wrote (inside the care window after a crisis: a short "a person has your message").
    Writing from an unreachable address makes it reachable again."""
    message = context.message
    status = addresses.status(message.channel, message.sender)
    if status.unreachable_at is not None:  # they wrote from it, so it works again
        addresses.clear_unreachable(message.channel, message.sender)
    silenced = status.silenced_because
    if silenced is None:
        return context
    say.acknowledge(message)
    # The person asked us to stop here (or is not the person we want): the bot stays
    # silent on this address, and a person reads what they wrote and decides.
    agents.flag(
        context.conversation_id,
        f"wrote_after_{silenced}",
        account_id=context.account_id,
        detail=f"{message.channel}: {message.text}",
        once=context.source,
    )
    if crisis is not None and status.care_until is not None and clock() < status.care_until:
        # Shortly after a sign of crisis, silence would be the worst answer: a short
        # word that a person has their messages, with the crisis line (nothing else).
        country = country_of(context.account, message.channel, message.sender)
        follow_up = notice("care_follow_up", context.language).format(
            line=crisis.line(country, context.language)
        )
        say.send(context, [BotReply(text=follow_up)], "care follow-up", kind="crisis")
        return Stop("care follow-up")
    logger.info(
        "conversation %s: %s message %s not answered (address %s); flagged for an agent",
        context.conversation_id, message.channel, message.external_id, silenced,
    )  # fmt: skip
    return Stop(f"address {silenced}")


def flag_vulnerability(context: Context, *, agents: AgentQueue) -> Outcome:
    """Signs of vulnerability: the gentle path is the dialogue's; a person always hears of it,
    with the reason (once per message)."""
    message = context.message
    if not context.screening.vulnerable:
        return context
    for concern in sorted(context.screening.concerns, key=lambda c: c.value):
        agents.flag(
            context.conversation_id,
            f"vulnerable:{concern.value}",
            account_id=context.account_id,
            detail=f"{message.channel}: {message.text}",
            once=context.source,
        )
    return context


def defer_to_agent(context: Context, *, handoff: PersonDesk | None, say: Replier) -> Outcome:
    """An agent holds the conversation: the bot is silent; the agent sees the message in the
    console (it is in the history). The safety screen, STOP and silenced addresses came first."""
    if (
        handoff is None
        or not context.conversation_id
        or not handoff.is_silenced_for_bot(context.conversation_id)
    ):
        return context
    say.acknowledge(context.message)  # a button pressed: stop its spinner
    logger.info("conversation %s: %s message %s is for the agent holding it; the bot is silent",
                context.conversation_id, context.message.channel, context.message.external_id)  # fmt: skip
    return Stop("with an agent")


def reject_unsupported(context: Context, *, say: Replier) -> Outcome:
    """A photo, a sticker, a voice note: a kind "text only" answer, without the dialogue."""
    if context.message.kind != "unsupported":
        return context
    say.send(context, [BotReply(text=notice("text_only", context.language))], "not text")
    return Stop("not text")


def read_button_press(context: Context, *, choices: OfferedChoices, say: Replier) -> Outcome:
    """A Telegram button's data is a position and an offer id: what it means is what we
    offered, and only on the keyboard offered last; any other press is ignored."""
    message = context.message
    if message.kind != "choice":
        return context
    payload = choices.pressed(message.channel, message.sender, message.text)
    say.acknowledge(message, None if payload else notice("choice_expired", context.language))
    if payload is None:
        logger.info("conversation %s: a stale or unknown button pressed; ignored", context.conversation_id)
        return Stop("stale button")
    return replace(context, text=payload)


def greet_on_start(context: Context) -> Outcome:
    """Opening the Telegram chat is a hello (a deep link was redeemed first)."""
    if context.message.kind != "start":
        return context
    return replace(context, text="/greet")


def read_numbered_answer(context: Context, *, choices: OfferedChoices) -> Outcome:
    """ "2" answers the second of the numbered choices we last offered on this address."""
    message = context.message
    if _not_typed(message):
        return context
    return replace(context, text=choices.resolve(message.channel, message.sender, message.text))


def strip_card_number(context: Context, *, say: Replier) -> Outcome:
    """A typed card number (already removed at the gateway): say why it was deleted, then go on
    with what they asked, without the placeholder steering the intent (stop if nothing is left)."""
    if _not_typed(context.message) or CARD_PLACEHOLDER not in context.text:
        return context
    say.send(context, [BotReply(text=notice("card_number", context.language))], "card number",
             source=f"{context.source}:card")  # fmt: skip
    text = without_card_placeholders(context.text)
    if not text:
        return Stop("only a card number")
    return replace(context, text=text)


def cap_email_replies(context: Context, *, reply_cap: ReplyCap | None, agents: AgentQueue) -> Outcome:
    """Far more mail than a person writes: perhaps a machine answering us. Stop answering this
    address for now and let a person look."""
    message = context.message
    if (
        message.channel != "email"
        or reply_cap is None
        or reply_cap.take(address_key(message.channel, message.sender), message.external_id)
    ):
        return context
    agents.flag(
        context.conversation_id,
        "email_reply_cap_reached",
        account_id=context.account_id,
        detail=f"email: {message.text}",
    )
    logger.warning(
        "conversation %s: email %s not answered: the address reached its hourly reply cap",
        context.conversation_id, message.external_id,
    )  # fmt: skip
    return Stop("email reply cap")


def ask_the_dialogue(
    context: Context, *, rasa: RasaClient, choices: OfferedChoices, addresses: AddressBook
) -> Outcome:
    """Rasa, once per message id: a replay (we died before the queue moved on) gets the same
    answers back, which queue nothing new (stable outbox ids). Raises ``RetryLater`` (Rasa or
    the action server down), ``DialogueFailed`` (an action failed) or ``GiveUp`` (refused)."""
    message = context.message
    replies = _tell_the_dialogue(rasa, context, context.text, dialogue_metadata(context))
    offer_id = choices.remember(message.channel, message.sender, replies)
    # "Wrong number" marks the address in the dialogue; its answer is the one closing
    # message such an address still gets (no name, no debt).
    status = addresses.status(message.channel, message.sender)
    return replace(
        context,
        replies=tuple(replies),
        offer_id=offer_id,
        closing=status.wrong_party_by == message.external_id,
    )


def promise_a_person(
    context: Context, *, handoff: PersonDesk | None, console: ConsoleConfig | None, clock: Callable[[], float]
) -> Outcome:
    """Escalated (now or earlier) and not yet told: the person hears roughly when a colleague
    will answer, in their own time (once per wait)."""
    if handoff is None or console is None or context.closing or not context.conversation_id:
        return context
    if handoff.first_promise(context.conversation_id) is None:
        return context
    hours = console.hours
    words = promise(
        datetime.fromtimestamp(clock(), timezone.utc), earliest=hours.earliest, latest=hours.latest,
        days=hours.days, agent_zone=console.zone,
        debtor_zone=context.account.timezone if context.account else None, language=context.language,
    )  # fmt: skip
    replies = list(context.replies)
    if replies and not replies[-1].buttons:
        # One message, not two: on SMS a second message is a second text.
        replies[-1] = replace(replies[-1], text=f"{replies[-1].text}\n\n{words}".strip())
    else:
        replies.append(BotReply(text=words))
    return replace(context, replies=tuple(replies))


def send_replies(context: Context, *, say: Replier) -> Outcome:
    """The dialogue's answers, rendered for the channel and queued."""
    say.send(context, context.replies, "dialogue", kind="closing" if context.closing else "reply",
             offer_id=context.offer_id)  # fmt: skip
    return Stop("answered")


#: The inbound path, in order: the first step that stops ends it. docs/architecture.md ("The
#: inbound path") lists the same names; tests/bot/conversations/test_inbound_steps.py checks it.
STEPS: tuple[Callable[..., Outcome], ...] = (
    redeem_deep_link,
    skip_machine_mail,
    identify_account,
    record_message,
    safety_screen,
    answer_keyword,
    respect_silence,
    flag_vulnerability,
    defer_to_agent,
    reject_unsupported,
    read_button_press,
    greet_on_start,
    read_numbered_answer,
    strip_card_number,
    cap_email_replies,
    ask_the_dialogue,
    promise_a_person,
    send_replies,
)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def dialogue_metadata(context: Context) -> dict[str, Any]:
    """What Rasa gets with the message (``action_session_start`` copies it into slots)."""
    message = context.message
    return {
        "channel": message.channel,
        "account_id": context.account_id,
        "language": context.language,
        "external_id": message.external_id,
        # The actions need the address to honour "wrong number" and "stop" for it.
        "address": message.sender,
        # What the safety screen saw: the actions keep the reasons (a callback asked for by
        # someone who cannot read well) and never answer distress cheerfully.
        "screen": {
            "concerns": sorted(c.value for c in context.screening.concerns),
            "distress": context.screening.distress,
        },
    }


def _tell_the_dialogue(
    rasa: RasaClient, context: Context, text: str, metadata: dict[str, Any]
) -> list[BotReply]:
    """Rasa's answers to ``text``, with its failures as the queue's: wait, count, or give up."""
    try:
        return rasa.send_message(
            context.conversation_id, text, channel=context.message.channel, metadata=metadata,
            message_id=context.source,
        )  # fmt: skip
    except RasaUnavailable as exc:
        raise RetryLater(str(exc)) from exc
    except RasaActionFailed as exc:
        raise DialogueFailed(f"conversation {context.conversation_id}: {exc}") from exc
    except RasaRejected as exc:
        raise GiveUp(str(exc)) from exc


def _not_typed(message: InboundMessage) -> bool:
    # A button's payload and /greet are ours: no numbered answer or card number in them.
    return message.kind in ("choice", "start")
