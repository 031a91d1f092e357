"""Building the parts from the configuration, once per process, to pass them in explicitly."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from bot.care.crisis import CrisisDesk
from bot.clock import Clock
from bot.compliance.gate import ComplianceGate
from bot.compliance.keywords import SmsKeywords
from bot.compliance.rules import Decision
from bot.config import Config, OpenerVariant
from bot.console.agents import AgentDirectory
from bot.console.canned import CannedReplies
from bot.console.desk import Desk
from bot.console.handoff import HandoffStore
from bot.console.inbox import Inbox
from bot.conversations.creditor_events import WEBHOOKS, CreditorEvents, WebhookSender
from bot.conversations.deliveries import DeliveryLog
from bot.conversations.dialogue_backend import RedisDialogueBackend
from bot.conversations.history import ConversationHistory
from bot.conversations.inbound import InboundHandler, NotAnswered
from bot.conversations.outbound import OutboundHandler
from bot.conversations.rate_limits import RedisPacer, ReplyCap
from bot.conversations.render import OfferedChoices, RenderOptions
from bot.email.dead_letters import DeadLetters
from bot.email.envelope import EmailEnvelope
from bot.email.intake import EmailIntake
from bot.email.threads import EmailThreads
from bot.email.unsubscribe import UnsubscribeLinks
from bot.ops.analytics.conversations import summarise
from bot.ops.analytics.ingest import Ingester
from bot.ops.analytics.retention import run_retention
from bot.ops.analytics.store import AnalyticsStore, database_url
from bot.outreach.openers import send_opener, send_reminder
from bot.outreach.payments import PlanPayments
from bot.outreach.planner import OUTREACH, OpenerSender, OutreachHandler, OutreachPlanner, ReminderSender
from bot.store.accounts import Account, AccountStore
from bot.store.addresses import AddressBook
from bot.store.agent_queue import AgentQueue
from bot.store.connection import Keys, connect, redis_url
from bot.store.intake import INBOUND, OUTBOUND, InboundIntake
from bot.store.jobs import Jobs, make_broker
from bot.store.opener_stats import OpenerStats
from bot.store.queues import KeyedQueue
from bot.telegram.links import TelegramLinks
from channels.base import Channel, Pacer
from channels.email import EmailChannel, SmtpSettings
from channels.sandbox import SandboxChannel, SandboxOutbox
from channels.sms import SmsChannel
from channels.telegram import TelegramChannel
from dialogue.rasa_client import RasaClient
from dialogue.rasa_pool import RasaPool, RedisPins

logger = logging.getLogger(__name__)

#: How often retention runs (from the scheduler's tick).
RETENTION_EVERY_SECONDS = 24 * 3600


@dataclass
class Services:
    """Everything the gateway and the worker share."""

    config: Config
    redis: redis.Redis[bytes]
    keys: Keys
    accounts: AccountStore
    addresses: AddressBook
    deliveries: DeliveryLog
    keywords: SmsKeywords
    links: TelegramLinks
    channels: dict[str, Channel]
    outbox: SandboxOutbox
    inbound: KeyedQueue
    outbound: KeyedQueue
    webhooks: KeyedQueue
    jobs: Jobs
    intake: InboundIntake
    events: CreditorEvents
    dead_letters: DeadLetters
    email_threads: EmailThreads
    unsubscribe: UnsubscribeLinks
    outreach_queue: KeyedQueue
    gate: ComplianceGate
    #: The one clock every part that decides by the time reads (the system clock; tests set it).
    clock: Clock = field(default_factory=Clock)
    _rasa: RasaClient | None = field(default=None, repr=False)

    @property
    def rasa(self) -> RasaClient:
        """The Rasa client (created on first use: the gateway rarely needs it): with several Rasa
        servers, the pool that keeps each conversation on one (``dialogue.rasa_pool``)."""
        if self._rasa is None:
            self._rasa = build_rasa(self.config, self.redis)
        return self._rasa

    @property
    def email_channel(self) -> EmailChannel | None:
        """The email adapter (inside its sandbox when sandboxed), when email is enabled."""
        channel = self.channels.get("email")
        if isinstance(channel, SandboxChannel):
            channel = channel.provider
        return channel if isinstance(channel, EmailChannel) else None

    @property
    def email_intake(self) -> EmailIntake | None:
        """Raw mail in (webhook and poller), when email is enabled."""
        channel = self.email_channel
        if channel is None:
            return None
        return EmailIntake(
            channel=channel, intake=self.intake, dead_letters=self.dead_letters, keywords=self.keywords
        )

    def email_envelope(self) -> EmailEnvelope:
        """Subject, thread and opt-out parts for outgoing email."""
        email = self.config.channels.email
        company = self.config.company.display_name
        return EmailEnvelope(
            threads=self.email_threads,
            unsubscribe=self.unsubscribe,
            from_address=email.from_address,
            subjects={lang: subject.format(company=company) for lang, subject in email.subjects.items()},
        )

    @property
    def outreach(self) -> OutreachPlanner:
        """Plans outreach runs and releases what the gate deferred."""
        return OutreachPlanner(
            self.redis, self.keys, self.outreach_queue, self.jobs, self.config.outreach.shards, self.clock
        )

    @property
    def history(self) -> ConversationHistory:
        """Each conversation's history (what the console shows)."""
        return ConversationHistory(self.redis, self.keys, self.clock.timestamp)

    @property
    def handoff(self) -> HandoffStore:
        """Who answers each conversation: the bot or a person (the console's hand-off)."""
        return HandoffStore(self.redis, self.keys, self.clock)

    def escalate(self, conversation_id: str, reason: str) -> None:
        """A conversation needs a person: into the console's queue (``AgentQueue`` calls it)."""
        self.handoff.escalate(conversation_id, reason)

    @functools.cached_property
    def desk(self) -> Desk:
        """What agents do in the console: claim, reply through the gate, flags, hand back."""
        return Desk(
            config=self.config, redis=self.redis, keys=self.keys, clock=self.clock, accounts=self.accounts,
            addresses=self.addresses, gate=self.gate, deliveries=self.deliveries, history=self.history,
            handoff=self.handoff, outbound=self.outbound, jobs=self.jobs,
            # An agent's click waits on these calls: a short timeout, then the events wait
            # in order for the scheduler's tick (Desk.flush_tracker_events).
            rasa=build_rasa(self.config, self.redis, timeout=min(3.0, self.config.rasa.timeout_seconds)),
            dead_letters=self.dead_letters, links=self.links,
            email=self.email_envelope() if "email" in self.channels else None,
            # Plans set up by agents: stored, linked and announced as the bot's are.
            plans=RedisDialogueBackend(
                self.config, self.redis, self.events, escalate=self.escalate, clock=self.clock
            ),
        )  # fmt: skip

    @functools.cached_property
    def inbox(self) -> Inbox:
        """What waits for a person, in the order agents take it."""
        return Inbox(self.config, self.redis, self.keys, self.clock, self.accounts, self.handoff,
                     self.history, self.dead_letters)  # fmt: skip

    @functools.cached_property
    def canned(self) -> CannedReplies:
        return CannedReplies(self.redis, self.keys, self.clock, tuple(self.config.accounts.languages))

    @functools.cached_property
    def agent_directory(self) -> AgentDirectory:
        """The console's agent accounts."""
        return AgentDirectory(self.redis, self.keys, self.clock)

    def console_housekeeping(self, now: datetime) -> int:
        """Claims idle past ``console.claim_idle_minutes`` go back to the queue; agents' replies
        the gate deferred go at their moment; pause/resume/agent words Rasa missed reach it."""
        released = self.desk.release_idle()
        if released:
            logger.info("console: %d idle claim(s) back in the queue", len(released))
        sent = self.desk.release_deferred()
        if sent:
            logger.info("console: %d deferred agent repl(ies) queued", sent)
        self.desk.flush_tracker_events()
        return len(released) + sent

    @functools.cached_property
    def analytics(self) -> AnalyticsStore:
        """The analytics store (SQLite under var/, or PostgreSQL at DATABASE_URL), migrated."""
        store = AnalyticsStore(database_url(self.config), clock=self.clock)
        store.migrate()
        return store

    def ops_housekeeping(self, now: datetime) -> None:
        """Every tick: the product's events (gate decisions, escalations, claims, plans...) into
        the analytics store, then each conversation with new events summarised for the review and
        the funnel. Once a day: retention (old transcripts and trackers deleted, the records the
        law requires kept)."""
        Ingester(self.redis, self.keys, self.analytics).run_once()
        summarise(self.analytics, low_confidence=self.config.ops.low_confidence)
        last = self.redis.get(self.keys.retention_last_run)
        if last is not None and now.timestamp() - float(last) < RETENTION_EVERY_SECONDS:
            return
        retention = self.config.retention
        report = run_retention(self.analytics, self.redis, self.keys, now, retention.transcript_days,
                               retention.records_years)  # fmt: skip
        self.redis.set(self.keys.retention_last_run, repr(now.timestamp()))
        for line in report.lines():
            logger.info("retention: %s", line)

    @property
    def agents(self) -> AgentQueue:
        """Flags conversations for a person; each flag puts the conversation in the console's queue."""
        return AgentQueue(self.redis, self.keys, clock=self.clock.timestamp, escalate=self.escalate)

    @property
    def crisis(self) -> CrisisDesk:
        """The answer, escalation and pause for a sign of crisis (bot/care)."""
        return CrisisDesk(self.config.care, self.redis, self.keys, self.agents, clock=self.clock.timestamp)

    @property
    def opener_stats(self) -> OpenerStats:
        return OpenerStats(self.redis, self.keys)

    def outreach_handler(
        self, send: OpenerSender | None = None, remind: ReminderSender | None = None
    ) -> OutreachHandler:
        """Decides outreach tasks; ``send`` defaults to the real opener (Rasa, then the queue)."""
        stats = self.opener_stats

        def send_reminder_now(
            account: Account, channel: str, address: str, kind: str, decision: Decision
        ) -> None:
            send_reminder(self, account, channel, address, kind, decision)

        def send_opener_now(account: Account, channel: str, address: str, variant: OpenerVariant,
                            decision: Decision) -> None:  # fmt: skip
            send_opener(self, account.account_id, channel, address=address, text=decision.text, kind="opener")
            stats.sent(account.account_id, account.language, variant.id)

        return OutreachHandler(
            config=self.config, client=self.redis, keys=self.keys, accounts=self.accounts,
            addresses=self.addresses, gate=self.gate, planner=self.outreach,
            send_opener=send or send_opener_now,
            links_chat_for=self.links.chat_for, enabled_channels=frozenset(self.channels),
            payments=PlanPayments(self.redis, self.keys, self.clock),
            send_reminder=remind or send_reminder_now,
            clock=self.clock,
        )  # fmt: skip

    def inbound_handler(self, rasa: RasaClient | None = None) -> InboundHandler:
        """The worker's inbound path with all its parts (``rasa``: the configured server unless given)."""
        ttl = int(self.config.dedupe.window_hours * 3600)
        return InboundHandler(
            accounts=self.accounts,
            addresses=self.addresses,
            agents=self.agents,
            rasa=rasa or self.rasa,
            outbound=self.outbound,
            jobs=self.jobs,
            keys=self.keys,
            keywords=self.keywords,
            choices=OfferedChoices(self.redis, self.keys),
            render=RenderOptions(sms_max_segments=self.config.channels.sms.max_segments_per_message),
            links=self.links,
            channels=self.channels,
            default_language=self.config.accounts.default_language,
            dedupe_ttl_seconds=ttl,
            email=self.email_envelope(),
            deliveries=self.deliveries,
            reply_cap=ReplyCap(
                self.redis, self.keys, self.config.channels.email.replies_per_hour_per_address
            ),
            gate=self.gate,
            opener_stats=self.opener_stats,
            crisis=self.crisis,
            history=self.history,
            handoff=self.handoff,
            console=self.config.console,
            clock=self.clock.timestamp,
        )

    def install_handlers(self) -> None:
        """Make this process able to run drain jobs (worker processes only)."""
        self.jobs.handle(INBOUND, self.inbound_handler())
        self.jobs.handle(
            OUTBOUND,
            OutboundHandler(
                channels=self.channels, addresses=self.addresses, deliveries=self.deliveries,
                gate=self.gate, accounts=self.accounts,
            ),
        )  # fmt: skip
        self.jobs.handle(OUTREACH, self.outreach_handler())
        url, secret = self.config.plans.webhook_url, self.config.secrets.plans_webhook_secret
        if url and secret:
            self.jobs.handle(WEBHOOKS, WebhookSender(url, secret))


def build_rasa(config: Config, client: redis.Redis[bytes], *, timeout: float | None = None) -> RasaClient:
    """The client of the configured Rasa server, or with several (``rasa.processes``,
    ``rasa.urls``) the pool that pins each conversation to one of them, the pins in Redis so that
    every process (workers, the console's desk) agrees."""
    rasa = config.rasa
    seconds = rasa.timeout_seconds if timeout is None else timeout
    urls = rasa.server_urls
    if len(urls) == 1:
        return RasaClient(urls[0], config.secrets.rasa_token, timeout=seconds)
    pins = RedisPins(client, config.redis.key_prefix)
    return RasaPool(urls, config.secrets.rasa_token, seconds, pins=pins, repin_after=rasa.repin_after_seconds)


def build_channels(config: Config, outbox: SandboxOutbox, pacer: Pacer | None = None) -> dict[str, Channel]:
    """The enabled channels, live where credentials are set and sandboxed otherwise."""
    secrets = config.secrets
    channels: dict[str, Channel] = {}
    sms = config.channels.sms
    if sms.enabled:
        adapter: Channel = SmsChannel(
            auth_token=secrets.twilio_auth_token or "",
            account_sid=secrets.twilio_account_sid,
            from_number=sms.from_number,
            messaging_service_sid=sms.messaging_service_sid,
            api_base_url=sms.api_base_url,
            status_callback_url=f"{config.server.public_url}/webhooks/sms/status",
            timeout_seconds=sms.timeout_seconds,
            pacer=pacer,
            segments_per_second=sms.segments_per_second,
        )
        channels["sms"] = adapter if config.sms_live else SandboxChannel(adapter, outbox)
    telegram = config.channels.telegram
    if telegram.enabled:
        adapter = TelegramChannel(
            webhook_secret=secrets.telegram_webhook_secret or "",
            bot_token=secrets.telegram_bot_token,
            api_base_url=telegram.api_base_url,
            timeout_seconds=telegram.timeout_seconds,
            pacer=pacer,
            per_chat_per_second=telegram.messages_per_second_per_chat,
            per_bot_per_second=telegram.messages_per_second,
        )
        channels["telegram"] = adapter if config.telegram_live else SandboxChannel(adapter, outbox)
    email = config.channels.email
    if email.enabled:
        smtp = None
        if email.smtp.host is not None:
            smtp = SmtpSettings(
                host=email.smtp.host,
                port=email.smtp.port,
                security=email.smtp.security,
                timeout_seconds=email.smtp.timeout_seconds,
                username=secrets.smtp_username,
                password=secrets.smtp_password,
            )
        adapter = EmailChannel(
            webhook_secret=secrets.email_webhook_secret,
            from_address=email.from_address,
            smtp=smtp,
            max_message_bytes=email.max_message_bytes,
            company=config.company.display_name,
        )
        channels["email"] = adapter if config.email_live else SandboxChannel(adapter, outbox)
    return channels


def build_services(
    config: Config, client: redis.Redis[bytes] | None = None, clock: Clock | None = None
) -> Services:
    """Wire the parts for one process (``clock``: the system clock unless a test sets one)."""
    client = client or connect(config)
    clock = clock or Clock()
    keys = Keys(config.redis.key_prefix)
    worker = config.worker
    queue_options: dict[str, Any] = {
        "max_attempts": worker.max_attempts,
        "retry_min_seconds": worker.retry_min_seconds,
        "retry_max_seconds": worker.retry_max_seconds,
        # Short, and renewed while a drain works (however long Rasa takes): a drain that
        # died frees its conversation within this.
        "lease_seconds": worker.lease_seconds,
    }
    # An inbound message set aside unanswered goes to a person too (once), not only to the
    # dead letters.
    handoff = HandoffStore(client, keys, clock)
    not_answered = NotAnswered(
        accounts=AccountStore(client, keys),
        agents=AgentQueue(
            client, keys, clock=clock.timestamp, escalate=lambda cid, reason: handoff.escalate(cid, reason)
        ),
        links=TelegramLinks(client, keys, ttl_seconds=config.channels.telegram.link_ttl_hours * 3600),
        threads=EmailThreads(client, keys),
    )
    inbound = KeyedQueue(client, keys.queues, INBOUND, on_set_aside=not_answered, **queue_options)
    outbound = KeyedQueue(client, keys.queues, OUTBOUND, **queue_options)
    webhooks = KeyedQueue(client, keys.queues, WEBHOOKS, **queue_options)
    outreach = KeyedQueue(client, keys.queues, OUTREACH, **queue_options)
    jobs = Jobs(
        make_broker(redis_url(config), keys.jobs_namespace),
        {INBOUND: inbound, OUTBOUND: outbound, WEBHOOKS: webhooks, OUTREACH: outreach},
    )
    outbox = SandboxOutbox(client, keys.sandbox_outbox)
    # The wall clock, as the outbound messages' created_at it is compared with (withhold_if_silenced).
    addresses = AddressBook(client, keys)
    accounts = AccountStore(client, keys)
    return Services(
        config=config,
        redis=client,
        keys=keys,
        accounts=accounts,
        addresses=addresses,
        deliveries=DeliveryLog(
            client, keys, addresses, unreachable_after=config.channels.sms.unreachable_after_failures
        ),
        keywords=SmsKeywords(config, addresses, accounts),
        links=TelegramLinks(client, keys, ttl_seconds=config.channels.telegram.link_ttl_hours * 3600),
        channels=build_channels(config, outbox, RedisPacer(client, keys)),
        outbox=outbox,
        inbound=inbound,
        outbound=outbound,
        webhooks=webhooks,
        jobs=jobs,
        intake=InboundIntake(
            queue=inbound, jobs=jobs, keys=keys, dedupe_ttl_seconds=int(config.dedupe.window_hours * 3600)
        ),
        events=CreditorEvents(client, keys, webhooks, jobs, webhook_url=config.plans.webhook_url),
        dead_letters=DeadLetters(client, keys),
        email_threads=EmailThreads(client, keys),
        unsubscribe=UnsubscribeLinks(client, keys, config.secrets.secret_key, config.server.public_url),
        outreach_queue=outreach,
        gate=ComplianceGate(config, client, keys, addresses, clock),
        clock=clock,
    )
