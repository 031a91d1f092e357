"""The inbound path (worker): ``InboundHandler`` runs the steps of
``bot.conversations.inbound_steps`` (``STEPS``: identify the account, screen, answer keywords,
respect silenced addresses, read choices, ask the dialogue, queue the answer) in order until one
stops; ``NotAnswered`` tells a person about a message set aside unanswered.

The gateway's half (authenticate, parse, de-duplicate, append) is ``bot.store.intake`` and the
webhooks; the outbound half is ``bot.conversations.outbound``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

from bot.care.crisis import CrisisDesk
from bot.compliance.gate import ComplianceGate
from bot.compliance.keywords import SmsKeywords
from bot.config import ConsoleConfig
from bot.conversations.deliveries import DeliveryLog
from bot.conversations.history import ConversationHistory
from bot.conversations.identity import conversation_id_for, identify
from bot.conversations.inbound_steps import STEPS, Context, DialogueFailed, PersonDesk, Replier, Step
from bot.conversations.rate_limits import ReplyCap
from bot.conversations.render import OfferedChoices, RenderOptions
from bot.conversations.steps import bind, run
from bot.email.envelope import EmailEnvelope
from bot.email.threads import EmailThreads
from bot.store.accounts import AccountStore
from bot.store.addresses import AddressBook, address_key
from bot.store.agent_queue import AgentQueue
from bot.store.connection import Keys
from bot.store.jobs import Jobs
from bot.store.opener_stats import OpenerStats
from bot.store.queues import Entry, KeyedQueue
from bot.telegram.links import TelegramLinks
from channels.base import Channel, InboundMessage
from dialogue.rasa_client import RasaClient

# ``DialogueFailed`` and ``address_key`` were always importable from here.
__all__ = ["NOT_ANSWERED", "DialogueFailed", "InboundHandler", "NotAnswered", "address_key"]

logger = logging.getLogger(__name__)

#: The agents' queue reason for an accepted message the worker gave up answering.
NOT_ANSWERED = "not_answered"


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
    """The worker side of an inbound message: ``STEPS`` (``bot.conversations.inbound_steps``) in
    order, until one stops.

    Each step gets the collaborators it names from these fields (and ``say``, the
    :class:`Replier` built from them), read at every message."""

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
    history: ConversationHistory | None = None
    #: The agents' console's hand-off (``bot.console.handoff.HandoffStore``) and its settings.
    handoff: PersonDesk | None = None
    console: ConsoleConfig | None = None
    #: Unix seconds now (the product's clock).
    clock: Callable[[], float] = time.time

    def __call__(self, entry: Entry) -> None:
        """Handle one queued message; ``RetryLater``, ``DialogueFailed`` and ``GiveUp`` go to the queue."""
        run(self.steps(), Context.of(InboundMessage.from_json(entry.payload)))

    def steps(self) -> list[Step]:
        """``STEPS`` with their collaborators."""
        parts: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        parts["say"] = Replier(
            outbound=self.outbound, jobs=self.jobs, keys=self.keys, render=self.render,
            channels=self.channels, default_language=self.default_language,
            dedupe_ttl_seconds=self.dedupe_ttl_seconds, email=self.email, history=self.history,
        )  # fmt: skip
        return [bind(step, parts) for step in STEPS]
