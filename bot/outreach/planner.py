"""Conversations the product starts: openers for the accounts due, and plan reminders.

A run is planned by paging through the accounts (``SSCAN``, a page at a time: a run over
millions of accounts never holds them in memory) and appending one task per account to the
``outreach`` queues, split into ``outreach.shards`` keys so every worker on every machine
takes a share. Each task is then decided on its own: is the account due, which channel,
what the compliance gate says. What the gate defers is kept in a sorted set and put back in
the queues at its moment (the scheduler's job), never dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis
from redis.client import Pipeline

from bot.clock import Clock
from bot.compliance.gate import ComplianceGate
from bot.compliance.rules import Decision, Outgoing, Verdict
from bot.config import Config, OpenerVariant
from bot.outreach.payments import Instalment, PlanPayments, reminder_text
from bot.store.accounts import Account, AccountStore
from bot.store.addresses import AddressBook
from bot.store.connection import Keys
from bot.store.jobs import Jobs
from bot.store.opener_stats import RetiredOpeners
from bot.store.queues import Entry, KeyedQueue

logger = logging.getLogger(__name__)

OUTREACH = "outreach"
#: Accounts read per SSCAN page while planning.
PAGE_SIZE = 1000
#: Accounts per queued task.
TASK_BATCH = 100
#: Rules whose block concerns one address only: the next channel may still be used.
_ADDRESS_RULES = frozenset({"opted_out", "wrong_party", "unreachable"})


def shard_of(account_id: str, shards: int) -> str:
    """The queue key an account's tasks go to (stable, evenly spread)."""
    digest = hashlib.sha256(account_id.encode()).digest()
    return f"shard-{int.from_bytes(digest[:4], 'big') % shards:04d}"


def choose_variant(account_id: str, variants: list[OpenerVariant]) -> OpenerVariant:
    """The wording an account gets: a stable, even split of accounts across the variants."""
    digest = hashlib.sha256(f"variant:{account_id}".encode()).digest()
    return variants[int.from_bytes(digest[:4], "big") % len(variants)]


@dataclass(frozen=True)
class RunReport:
    run_id: str
    queued: int
    seconds: float


class OutreachPlanner:
    """Turns "contact whoever is due" into queued tasks, a page of accounts at a time."""

    def __init__(
        self,
        client: redis.Redis[bytes],
        keys: Keys,
        queue: KeyedQueue,
        jobs: Jobs,
        shards: int,
        clock: Clock | None = None,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._queue = queue
        self._jobs = jobs
        self._shards = shards
        self._clock = clock or Clock()

    def _account_pages(self) -> Iterator[list[str]]:
        cursor = 0
        while True:
            cursor, members = self._redis.sscan(self._keys.account_ids, cursor, count=PAGE_SIZE)
            if members:
                yield [m.decode() for m in members]
            if cursor == 0:
                return

    def plan_run(self, run_id: str | None = None) -> RunReport:
        """Queue opener tasks for every account (decided later by the workers), a batch of
        accounts per task so the queues' own work is shared by many accounts."""
        run_id = run_id or uuid.uuid4().hex[:12]
        started = time.monotonic()
        queued = 0
        batches: dict[str, list[str]] = {}
        touched: set[str] = set()

        def flush(key: str) -> None:
            ids = batches.pop(key, [])
            if not ids:
                return
            task = json.dumps({"kind": "opener", "run_id": run_id, "account_ids": ids})
            # Once per batch per run, however often planning is retried (the pages and so the
            # batches come out the same while the accounts do not change).
            once = self._keys.dedupe("outreach", f"{run_id}:{hashlib.sha256(task.encode()).hexdigest()[:24]}")
            if self._queue.append(key, task, dedupe_key=once, dedupe_ttl_seconds=86400):
                touched.add(key)

        for page in self._account_pages():
            for account_id in page:
                key = shard_of(account_id, self._shards)
                batch = batches.setdefault(key, [])
                batch.append(account_id)
                queued += 1
                if len(batch) >= TASK_BATCH:
                    flush(key)
        for key in list(batches):
            flush(key)
        for key in sorted(touched):
            self._jobs.schedule(OUTREACH, key)
        seconds = time.monotonic() - started
        logger.info("outreach run %s: %d account(s) queued in %.1fs", run_id, queued, seconds)
        return RunReport(run_id=run_id, queued=queued, seconds=seconds)

    def defer(self, task: dict[str, str], until: datetime, pipe: Pipeline[bytes] | None = None) -> None:
        """Keep a task for its moment (in ``pipe`` when given)."""
        target = pipe if pipe is not None else self._redis
        target.zadd(self._keys.outreach_deferred, {json.dumps(task, sort_keys=True): until.timestamp()})

    def release_due(self, now: datetime | None = None, limit: int = PAGE_SIZE) -> int:
        """Put the deferred tasks whose moment has come (by the clock, or at ``now``) back in the queues."""
        now = now or self._clock.now()
        released = 0
        while True:
            rows = self._redis.zrangebyscore(
                self._keys.outreach_deferred, "-inf", now.timestamp(), start=0, num=limit
            )
            if not rows:
                return released
            touched: set[str] = set()
            for raw in rows:
                task = json.loads(raw)
                key = shard_of(task["account_id"], self._shards)
                marker = hashlib.sha256(raw).hexdigest()[:24]
                once = self._keys.dedupe("outreach", f"deferred:{marker}")
                self._queue.append(key, raw.decode(), dedupe_key=once, dedupe_ttl_seconds=3600)
                # Removed only once queued: a crash in between queues it twice at worst,
                # and the de-duplication above catches that.
                self._redis.zrem(self._keys.outreach_deferred, raw)
                touched.add(key)
                released += 1
            for key in sorted(touched):
                self._jobs.schedule(OUTREACH, key)


#: Wording (variant, text, language) of an account's opener.
_Wording = tuple[OpenerVariant, str, str]
#: An opener waiting for its gate decision: task, account, wording, the channels left to try,
#: the first channel and address, and the message as the gate sees it.
_Pending = tuple[dict[str, str], Account, _Wording, Iterator[tuple[str, str]], tuple[str, str], Outgoing]

#: Sends an opener: (account, channel, address, wording, the gate's decision) -> queued.
OpenerSender = Callable[[Account, str, str, OpenerVariant, Decision], None]
#: Sends a reminder: (account, channel, address, kind, the gate's decision) -> queued.
ReminderSender = Callable[[Account, str, str, str, Decision], None]


@dataclass
class OutreachHandler:
    """Decides one task: due? which channel? what does the gate say? then sends or defers."""

    config: Config
    client: redis.Redis[bytes]
    keys: Keys
    accounts: AccountStore
    addresses: AddressBook
    gate: ComplianceGate
    planner: OutreachPlanner
    send_opener: OpenerSender
    links_chat_for: Callable[[str], str | None]
    enabled_channels: frozenset[str]
    payments: PlanPayments
    send_reminder: ReminderSender
    #: What "now" is for every decision (``Services.clock``; the gate reads the same one).
    clock: Clock = dataclasses.field(default_factory=Clock)
    #: The wordings ops retired (``None``: read from ``client`` and ``keys``, where they live).
    retired_openers: RetiredOpeners | None = None

    def __call__(self, entry: Entry) -> None:
        task = json.loads(entry.payload)
        if task.get("kind") != "opener":
            return
        # A retried batch decides its accounts again: those already contacted are no longer due.
        self.contact_many(task.get("account_ids") or [task["account_id"]], task.get("run_id", ""))

    def _facts(
        self, account_ids: list[str]
    ) -> list[tuple[Account | None, list[bytes | None], int, bytes | None]]:
        """For each account: the account, its last opener and message times, its plan count and
        preferred channel; all in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for account_id in account_ids:
            state = self.keys.account_state(account_id)
            pipe.hgetall(self.keys.account(account_id))
            pipe.hmget(state, ["last_opener_at", "last_inbound_at"])
            pipe.llen(self.keys.account_plans(account_id))
            pipe.hget(state, "pref:channel")
            pipe.hget(state, "pref:language")
        replies = pipe.execute()
        facts = []
        for n in range(len(account_ids)):
            raw, times, plans, preferred, language = replies[5 * n : 5 * n + 5]
            account = Account.from_redis(raw) if raw else None
            if account is not None and language is not None:
                # The language the person chose in a conversation wins over the imported one.
                account = dataclasses.replace(account, language=language.decode())
            facts.append((account, times, int(plans), preferred))
        return facts

    def _due(self, times: list[bytes | None], plans: int, now: datetime) -> bool:
        every = timedelta(days=self.config.outreach.contact_every_days).total_seconds()
        if any(raw is not None and now.timestamp() - float(raw) < every for raw in times):
            return False
        return plans == 0

    def channels_for(
        self, account: Account, preferred: bytes | None = None, *, first: str = ""
    ) -> Iterator[tuple[str, str]]:
        """(channel, address) in the order to try: ``first`` (a plan's own channel), the
        preferred channel, then the configured order (lazily: a linked Telegram chat is only
        looked up when it is reached)."""
        wanted = [first, preferred.decode() if preferred is not None else ""]
        chosen = [c for c in wanted if c in ("sms", "email", "telegram")]
        order = list(dict.fromkeys([*chosen, *self.config.outreach.channel_order]))
        for channel in order:
            if channel not in self.enabled_channels:
                continue
            if channel == "sms":
                address = account.phone
            elif channel == "email":
                address = account.email
            else:
                address = self.links_chat_for(account.account_id)
            if address:
                yield channel, address

    def _retired(self) -> frozenset[str]:
        openers = self.retired_openers or RetiredOpeners(self.client, self.keys, self.clock)
        return openers.retired()

    def _wording(
        self,
        account: Account,
        retired: frozenset[str] = frozenset(),
        warned: set[tuple[str, str]] | None = None,
    ) -> tuple[OpenerVariant, str, str]:
        """The account's wording, chosen among those not ``retired`` (``"<language>:<id>"``). When
        every wording of its language is retired, among them all, with a warning once per batch
        (``warned``): a switch in the console must never stop people being contacted."""
        language = account.language if account.language in ("en", "es") else "en"
        variants = self.config.outreach.openers_for(account.creditor, language)
        in_use = [v for v in variants if f"{language}:{v.id}" not in retired]
        if not in_use:
            warned = set() if warned is None else warned
            if (account.creditor, language) not in warned:
                warned.add((account.creditor, language))
                logger.warning(
                    "every %s opener wording for %s is retired: using them all until one is restored",
                    language, account.creditor,
                )  # fmt: skip
            in_use = variants
        variant = choose_variant(account.account_id, in_use)
        text = variant.text.format(first_name=account.first_name, company=self.config.company.display_name)
        return variant, text, language

    def contact_many(self, account_ids: list[str], run_id: str = "") -> None:
        """Decide a batch: reads for all of it in one round trip, the gate's facts for each
        account's first channel in another, the audit and marks written in a third."""
        now = self.clock.now()
        pending: list[_Pending] = []
        retired: frozenset[str] | None = None  # read once a batch, when the first opener is due
        warned: set[tuple[str, str]] = set()
        for account_id, (account, times, plans, preferred) in zip(
            account_ids, self._facts(account_ids), strict=True
        ):
            task = {"kind": "opener", "run_id": run_id, "account_id": account_id}
            if account is None:
                continue
            if plans:
                self.reminder(task, account, preferred, now)
                continue
            if not self._due(times, plans, now):
                continue
            if retired is None:
                retired = self._retired()
            wording = self._wording(account, retired, warned)
            channels = self.channels_for(account, preferred)
            first = next(channels, None)
            if first is None:
                logger.info("account %s: no channel it can be reached on", account_id)
                continue
            message = Outgoing(
                channel=first[0], text=wording[1], language=wording[2], proactive=True, kind="opener"
            )
            pending.append((task, account, wording, channels, first, message))
        if not pending:
            return
        pipe = self.client.pipeline(transaction=False)
        for _, account, _, _, (channel, address), message in pending:
            self.gate.queue_facts(pipe, account, channel, address, message, now)
        fetched = pipe.execute()
        writes = self.client.pipeline(transaction=False)
        offset = 0
        try:
            for task, account, wording, channels, (channel, address), message in pending:
                count = self.gate.facts_count(account, message)
                decision = self.gate.decide_from(fetched[offset : offset + count], account, message, now)
                offset += count
                self.gate.audit(
                    decision, account_id=account.account_id, channel=channel, kind="opener", pipe=writes
                )
                if decision.verdict is Verdict.BLOCK and decision.rule in _ADDRESS_RULES:
                    self._opener_elsewhere(task, account, wording, channels, now, writes)
                else:
                    self._act(task, account, wording[0], channel, address, decision, now, writes)
        finally:
            # Whatever happened to the rest, what was sent is marked (a retry must not resend it).
            writes.execute()

    def _act(
        self, task: dict[str, str], account: Account, variant: OpenerVariant, channel: str, address: str,
        decision: Decision, now: datetime, writes: Pipeline[bytes],
    ) -> None:  # fmt: skip
        if decision.verdict is Verdict.SEND:
            self.send_opener(account, channel, address, variant, decision)
            writes.hset(self.keys.account_state(account.account_id), "last_opener_at", str(now.timestamp()))
        elif decision.verdict is Verdict.DEFER and decision.until is not None:
            self.planner.defer(task, decision.until, pipe=writes)
        # BLOCK for a pause, no usable time zone...: no channel would do; the audit says why.

    def _opener_elsewhere(
        self, task: dict[str, str], account: Account, wording: tuple[OpenerVariant, str, str],
        channels: Iterator[tuple[str, str]], now: datetime, writes: Pipeline[bytes],
    ) -> None:  # fmt: skip
        """The first channel's address is barred: try the others, one by one."""
        variant, text, language = wording
        for channel, address in channels:
            message = Outgoing(channel=channel, text=text, language=language, proactive=True, kind="opener")
            decision = self.gate.decide(account, channel, address, message, now=now)
            if decision.verdict is not Verdict.BLOCK or decision.rule not in _ADDRESS_RULES:
                self._act(task, account, variant, channel, address, decision, now, writes)
                return
        logger.info("account %s: no channel it can be reached on", account.account_id)

    def reminder(
        self, task: dict[str, str], account: Account, preferred: bytes | None, now: datetime
    ) -> None:
        """Before an instalment a reminder; after a missed one a kind offer to re-plan. Never
        within ``outreach.first_reminder_after_hours`` of the plan being agreed (the task waits
        in ``outreach:deferred`` until then), on the channel the plan was agreed on first."""
        try:
            zone = ZoneInfo(account.timezone) if account.timezone else timezone.utc
        except (ZoneInfoNotFoundError, ValueError):
            zone = timezone.utc
        today, days_before = now.astimezone(zone).date(), self.config.outreach.remind_days_before
        due = self.payments.due_message(account.account_id, today, days_before)
        if due is None:
            return
        blocked = self._remind(task, account, preferred, *due, now)
        if blocked == "vulnerable" and due[0] == "missed_payment":
            # A person flagged them vulnerable: the missed payment is not chased, but the reminder
            # of their next instalment, on the plan they agreed to, still goes
            # (``rules.VULNERABLE_STILL_GETS`` says why).
            upcoming = self.payments.due_message(account.account_id, today, days_before, chase_missed=False)
            if upcoming is not None:
                self._remind(task, account, preferred, *upcoming, now)

    def _remind(
        self, task: dict[str, str], account: Account, preferred: bytes | None, kind: str,
        instalment: Instalment, now: datetime,
    ) -> str | None:  # fmt: skip
        """Send, defer or hold one reminder (or missed-payment message); the rule when the gate
        blocked it on every channel it could go on."""
        if instalment.agreed_at is not None:
            quiet_until = instalment.agreed_at + timedelta(
                hours=self.config.outreach.first_reminder_after_hours
            )
            if now < quiet_until:
                # The confirmation just gave the date: look again once the quiet period is over
                # (the gate then still keeps contact hours).
                logger.info("account %s: plan %s agreed too recently for a %s", account.account_id,
                            instalment.plan_id, kind)  # fmt: skip
                self.planner.defer(task, quiet_until)
                return None
        language = account.language if account.language in ("en", "es") else "en"
        text = reminder_text(kind, instalment, account.first_name, language, account.country)
        rule: str | None = None
        for channel, address in self.channels_for(account, preferred, first=instalment.channel):
            decision = self.gate.decide(
                account, channel, address,
                Outgoing(channel=channel, text=text, language=language, proactive=True, verified=True,
                         kind=kind),
                now=now,
            )  # fmt: skip
            if decision.verdict is Verdict.SEND:
                if self.payments.mark(kind, instalment):  # once, whichever worker gets here first
                    self.send_reminder(account, channel, address, kind, decision)
                return None
            if decision.verdict is Verdict.DEFER and decision.until is not None:
                self.planner.defer(task, decision.until)
                return None
            rule = decision.rule
            if decision.rule not in _ADDRESS_RULES:
                # A pause, a vulnerable person, an agent holding the conversation...: no channel
                # would do; the audit says why, and the next run looks again.
                return rule
        return rule
