"""The compliance gate with the product's facts: what :func:`bot.compliance.rules.check` needs is
read from Redis here, every decision goes to the audit stream, and proactive sends and the
person's own messages are counted for the frequency caps and the reply window.

One place: the outbound step asks it before every send, and outreach asks it before starting
a conversation (to choose the channel and to schedule what must wait). So the facts that hold
back what the bot starts on its own are read here, in the same round trip as the rest: the
account's pauses and its ``flag:vulnerable`` (the console's flags), and, for a proactive message,
whether an agent holds the conversation (its hand-off record's ``state``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from datetime import time as dtime
from typing import Any

import redis
from redis.client import Pipeline

from bot.clock import Clock
from bot.compliance.notices import notice
from bot.compliance.rules import AddressState, ContactRules, Debtor, Decision, FrequencyCap, Outgoing, check
from bot.config import Config, ContactHoursConfig, FrequencyCapConfig
from bot.store.accounts import Account
from bot.store.addresses import AddressBook
from bot.store.connection import Keys
from dialogue.parsing import ContactWindow

logger = logging.getLogger(__name__)

#: The hand-off state in which an agent holds a conversation (``bot.console.handoff.State.AGENT``;
#: the console stands on this package, so the gate reads the record's ``state`` field itself).
HELD_BY_AGENT = b"agent"
#: The account's flag a person sets in the console when the person is vulnerable (``flag:<name>``
#: in the account's state; ``bot.console.desk_person``).
VULNERABLE_FLAG = "flag:vulnerable"

#: Proactive sends older than this are forgotten (longer than any cap window may be).
CONTACT_HISTORY_SECONDS = 366 * 24 * 3600
AUDIT_MAXLEN = 1_000_000


def _hours(value: str) -> dtime:
    return dtime.fromisoformat(value)


def _caps(caps: list[FrequencyCapConfig]) -> tuple[FrequencyCap, ...]:
    return tuple(FrequencyCap(c.max_messages, timedelta(days=c.window_days), c.channel) for c in caps)


def rules_from_config(config: Config) -> dict[str | None, ContactRules]:
    """The rules per creditor name (``None``: everyone else), from ``compliance``."""
    compliance = config.compliance
    base_hours: ContactHoursConfig = compliance.contact_hours

    def build(hours: ContactHoursConfig, caps: list[FrequencyCapConfig], zone: str | None) -> ContactRules:
        return ContactRules(
            earliest=_hours(hours.earliest),
            latest=_hours(hours.latest),
            reply_window=timedelta(minutes=compliance.reply_window_minutes),
            caps=_caps(caps),
            opt_out_text={
                **{("sms", str(lang)): text for lang, text in compliance.sms_opt_out.items()},
                # Email's line also sits in the footer; the channel shows it once.
                **{("email", lang): notice("email_opt_out", lang) for lang in ("en", "es")},
            },
            mini_miranda={str(lang): text for lang, text in compliance.mini_miranda.items()},
            default_zone=zone,
        )

    rules: dict[str | None, ContactRules] = {
        None: build(base_hours, compliance.frequency_caps, compliance.default_timezone)
    }
    for creditor, override in compliance.creditors.items():
        rules[creditor] = build(
            override.contact_hours or base_hours,
            override.frequency_caps if override.frequency_caps is not None else compliance.frequency_caps,
            override.default_timezone or compliance.default_timezone,
        )
    return rules


def window_from_json(raw: str | None) -> ContactWindow | None:
    """The person's preferred window as the dialogue stored it (``pref:contact_window``)."""
    if not raw:
        return None
    data = json.loads(raw)
    return ContactWindow(
        after=dtime.fromisoformat(data["after"]) if data.get("after") else None,
        before=dtime.fromisoformat(data["before"]) if data.get("before") else None,
        excluded_weekdays=frozenset(int(d) for d in data.get("excluded_weekdays") or ()),
        weekdays_only=bool(data.get("weekdays_only")),
    )


class ComplianceGate:
    """Reads the facts, decides, records."""

    def __init__(
        self,
        config: Config,
        client: redis.Redis[bytes],
        keys: Keys,
        addresses: AddressBook,
        clock: Clock | None = None,
    ) -> None:
        self._rules = rules_from_config(config)
        self._redis = client
        self._keys = keys
        self._addresses = addresses
        #: What "now" is for every decision, the audit and the counts (``Services.clock``).
        self.clock = clock or Clock()

    def rules_for(self, account: Account | None) -> ContactRules:
        if account is not None and account.creditor in self._rules:
            return self._rules[account.creditor]
        return self._rules[None]

    def debtor(
        self, account: Account, fields: dict[bytes, bytes] | None = None, *, with_agent: bool = False
    ) -> Debtor:
        """The gate's view of an account: its zone hints, preferences, pauses, the vulnerability
        flag, last message (``fields``: the account's state hash when the caller already read it;
        ``with_agent``: an agent holds its conversation)."""
        if fields is None:
            fields = self._redis.hgetall(self._keys.account_state(account.account_id))
        state = {k.decode(): v.decode() for k, v in fields.items()}
        last_inbound = state.get("last_inbound_at")
        return Debtor(
            account_id=account.account_id,
            timezone=account.timezone,
            phone=account.phone,
            postal_code=account.postal_code,
            country=account.country,
            contact_window=window_from_json(state.get("pref:contact_window")),
            pauses=frozenset(name.removeprefix("pause:") for name in state if name.startswith("pause:")),
            last_inbound_at=datetime.fromtimestamp(float(last_inbound), timezone.utc)
            if last_inbound
            else None,
            vulnerable=VULNERABLE_FLAG in state,
            with_agent=with_agent,
        )

    @staticmethod
    def _by_channel(rows: list[tuple[bytes, float]]) -> dict[str, list[datetime]]:
        out: dict[str, list[datetime]] = {}
        for member, score in rows:
            channel = member.decode().split(":", 1)[0]
            out.setdefault(channel, []).append(datetime.fromtimestamp(score, timezone.utc))
        return out

    def queue_facts(
        self,
        pipe: Pipeline[bytes],
        account: Account | None,
        channel: str,
        address: str,
        message: Outgoing,
        now: datetime,
        *,
        conversation_id: str = "",
    ) -> None:
        """Add the reads :meth:`decide_from` needs to ``pipe`` (so many decisions share a round
        trip). ``conversation_id``: the conversation the message belongs to (default: the
        account's own, ``acct-<id>``, where outreach writes), whose hand-off says whether an
        agent holds it."""
        pipe.hgetall(self._addresses.key_for(channel, address))
        if account is not None:
            pipe.hgetall(self._keys.account_state(account.account_id))
            if message.proactive:
                since = now.timestamp() - CONTACT_HISTORY_SECONDS
                pipe.zrangebyscore(self._keys.contact_log(account.account_id), since, "+inf", withscores=True)
                # Every proactive message passes here (outreach's decision and the outbound step's):
                # while an agent holds the conversation the bot starts nothing (rule ``with_agent``).
                held = conversation_id or f"acct-{account.account_id}"
                pipe.hget(self._keys.handoff(held), "state")

    @staticmethod
    def facts_count(account: Account | None, message: Outgoing) -> int:
        """How many replies :meth:`queue_facts` adds to a pipeline."""
        return 1 if account is None else (4 if message.proactive else 2)

    def decide_from(
        self, fetched: Sequence[Any], account: Account | None, message: Outgoing, now: datetime
    ) -> Decision:
        """The decision on facts read by :meth:`queue_facts` (nothing written)."""
        status = self._addresses.status_from(fetched[0])
        state = AddressState(
            opted_out=status.opted_out_at is not None,
            wrong_party=status.wrong_party_at is not None,
            unreachable=status.unreachable_at is not None,
        )
        with_agent = len(fetched) > 3 and fetched[3] == HELD_BY_AGENT
        debtor = (
            self.debtor(account, fetched[1], with_agent=with_agent)
            if account is not None
            else Debtor(account_id="")
        )
        recent: Mapping[str, list[datetime]] = self._by_channel(fetched[2]) if len(fetched) > 2 else {}
        return check(debtor, state, message, now, self.rules_for(account), recent_proactive=recent)

    def decide(
        self,
        account: Account | None,
        channel: str,
        address: str,
        message: Outgoing,
        *,
        now: datetime | None = None,
        outbox_id: str = "",
        conversation_id: str = "",
    ) -> Decision:
        """Ask the gate (its facts in one round trip) and write the answer to the audit stream
        (``conversation_id``: as for :meth:`queue_facts`)."""
        now = now or self.clock.now()
        pipe = self._redis.pipeline(transaction=False)
        self.queue_facts(pipe, account, channel, address, message, now, conversation_id=conversation_id)
        decision = self.decide_from(pipe.execute(), account, message, now)
        self.audit(
            decision,
            account_id=account.account_id if account else "",
            channel=channel,
            kind=message.kind,
            outbox_id=outbox_id,
        )
        return decision

    def audit(
        self,
        decision: Decision,
        *,
        account_id: str,
        channel: str,
        kind: str,
        outbox_id: str = "",
        pipe: Pipeline[bytes] | None = None,
    ) -> None:
        """Append one decision to the audit stream (append-only; ops read it); into ``pipe``
        when given, so a batch of decisions is written in one round trip."""
        (pipe if pipe is not None else self._redis).xadd(
            self._keys.audit,
            {
                "at": str(self.clock.timestamp()),
                "verdict": decision.verdict.value,
                "rule": decision.rule,
                "reason": decision.reason,
                "account_id": account_id,
                "channel": channel,
                "kind": kind,
                "outbox_id": outbox_id,
                "until": decision.until.isoformat() if decision.until else "",
                "added": ",".join(decision.added),
                "zones": ",".join(decision.zones),
            },
            maxlen=AUDIT_MAXLEN,
            approximate=True,
        )

    def record_proactive(
        self, account_id: str, channel: str, outbox_id: str, at: float | None = None
    ) -> None:
        """A proactive message went out: it counts towards the caps (every worker sees it)."""
        key = self._keys.contact_log(account_id)
        now = at or self.clock.timestamp()
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(key, {f"{channel}:{outbox_id}": now})
        pipe.zremrangebyscore(key, "-inf", now - CONTACT_HISTORY_SECONDS)
        pipe.expire(key, CONTACT_HISTORY_SECONDS)
        pipe.execute()

    def record_inbound(self, account_id: str, at: float | None = None) -> None:
        """The person wrote: replies within the reply window may go at any hour."""
        self._redis.hset(
            self._keys.account_state(account_id), "last_inbound_at", str(at or self.clock.timestamp())
        )
