"""The dialogue's backend on Redis: accounts, verification, flags, preferences, plans.

The action server installs it (``bot.runtime.action_server``); the actions only see the interface
in ``dialogue.backend``. Everything an action records lands here, where agents, outreach
and the compliance gate read it; and each fact an agent should know of (verified, a wrong
answer, a plan set up, an opt-out, a wrong party, collection paused, a call back asked for, an
escalation) also becomes a line of the conversation's history (``ConversationHistory``), once
per message however often the turn is retried.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

import redis

from bot.care.crisis import CrisisDesk, country_of
from bot.clock import Clock
from bot.compliance.rules import PAUSE_REASONS
from bot.config import Config
from bot.conversations.creditor_events import CreditorEvents
from bot.conversations.history import ConversationHistory
from bot.conversations.identity import conversation_id_for
from bot.store.accounts import AccountStore
from bot.store.addresses import AddressBook
from bot.store.agent_queue import AgentQueue, reason_in_words
from bot.store.connection import Keys
from bot.store.history_entries import MAX_ENTRIES, FieldWithLine, encode_event
from bot.store.opener_stats import OpenerStats
from channels.base import InboundMessage
from dialogue.backend import AccountView, BackendError, CreatedPlan, DialogueSettings, Resource
from dialogue.parsing import parse_birth_date
from dialogue.plans import Plan, Settlement, describe_plan, format_money

#: How long a plan stays tied to the message that agreed it (retries come within minutes).
PLAN_ONCE_TTL_SECONDS = 7 * 24 * 3600
#: How long a call back stays tied to the message that asked for it.
CALLBACK_ONCE_TTL_SECONDS = 7 * 24 * 3600
#: The ``message_id`` of a plan an agent sets up in the console (``bot.console.desk_plans``):
#: the console writes that plan's history line itself, with the agent's name.
CONSOLE_MESSAGE_PREFIX = "console:"
#: Who the dialogue's history lines are by.
BY = "bot"

# A call back once per asking message (when there is one), with its history line.
_CALLBACK = """
if ARGV[1] ~= '' then
  if redis.call('SET', ARGV[1], '1', 'NX', 'EX', ARGV[2]) == false then return 0 end
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', '100000', '*', 'conversation_id', ARGV[3],
           'account_id', ARGV[4], 'when', ARGV[5], 'how', ARGV[6], 'at', ARGV[7])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*', 'entry', ARGV[9])
return 1
"""


def settings_from_config(config: Config) -> DialogueSettings:
    """What the dialogue reads from ``config.yaml``."""
    plans = config.plans
    settlement = plans.settlement
    return DialogueSettings(
        company_name=config.company.name,
        company_display_name=config.company.display_name,
        company_phone=config.company.phone,
        company_website=config.company.website,
        company_verify_url=config.company.verify_url,
        company_licence=config.company.licence,
        verification_field=config.accounts.verification_field,
        verification_attempts=config.compliance.verification_attempts,
        mini_miranda={language: text for language, text in config.compliance.mini_miranda.items()},
        resources={
            "en": tuple(Resource(r.name, r.contact) for r in config.resources.en),
            "es": tuple(Resource(r.name, r.contact) for r in config.resources.es),
        },
        min_instalment=plans.min_instalment,
        max_term_months=plans.max_term_months,
        frequencies=tuple(plans.frequencies),
        first_payment_within_days=plans.first_payment_within_days,
        down_payment_percent=plans.down_payment_percent,
        settlement_floor_percent=settlement.floor_percent if settlement.enabled else None,
        settlement_offer_percent=settlement.offer_percent if settlement.enabled else None,
    )


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


class RedisDialogueBackend:
    """:class:`dialogue.backend.DialogueBackend` on the product's Redis."""

    def __init__(
        self,
        config: Config,
        client: redis.Redis[bytes],
        events: CreditorEvents,
        escalate: Callable[[str, str], object] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        self._redis = client
        self._keys = Keys(config.redis.key_prefix)
        # ``clock``: the process's one clock (``Services.clock``); the system clock without one.
        self._clock = clock if clock is not None else Clock()
        now = self._clock.timestamp
        self._accounts = AccountStore(client, self._keys)
        self._addresses = AddressBook(client, self._keys)  # wall clock: see AddressBook
        self._history = ConversationHistory(client, self._keys, now)
        # ``escalate``: the console's hand-off (the runtime passes it in; see AgentQueue).
        self._agents = AgentQueue(client, self._keys, clock=now, escalate=escalate)
        self._crisis = CrisisDesk(config.care, client, self._keys, self._agents, clock=now)
        self._settings = settings_from_config(config)
        self._events = events
        self._pause = FieldWithLine(client)
        self._callback = client.register_script(_CALLBACK)

    def settings(self) -> DialogueSettings:
        return self._settings

    def account(self, account_id: str) -> AccountView | None:
        try:
            account = self._accounts.get(account_id)
        except redis.RedisError as exc:
            raise BackendError(f"accounts unavailable: {exc}") from exc
        if account is None:
            return None
        language = self._redis.hget(self._keys.account_state(account_id), "pref:language")
        return AccountView(
            account_id=account.account_id,
            first_name=account.first_name,
            balance=account.balance,
            currency=account.currency,
            creditor=account.creditor,
            language=language.decode() if language else account.language,
            country=account.country,
        )

    def verify(self, account_id: str, answer: str, *, today: date) -> bool:
        verified = self._verify(account_id, answer)
        if verified:
            OpenerStats(self._redis, self._keys).record(account_id, "verified")
        return verified

    def record_verification(
        self,
        account_id: str | None,
        conversation_id: str,
        *,
        verified: bool,
        failures: int = 0,
        message_id: str = "",
    ) -> None:
        """A right answer: the console's ``verified`` (the hash the inbox reads, conversation ->
        ``1``) and a ``verified`` history line; a wrong one: ``0`` there and a
        ``verification_failed`` line saying how many in a row. Both in one transaction, the line
        once per ``message_id``."""
        if not conversation_id:
            return
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._keys.console_verified, conversation_id, "1" if verified else "0")
        if verified:
            self._history.event(conversation_id, "verified", by=BY, once=message_id, pipe=pipe,
                                text="answered the verification check correctly")  # fmt: skip
        else:
            attempts = self._settings.verification_attempts
            self._history.event(
                conversation_id, "verification_failed", by=BY, once=message_id, pipe=pipe,
                text=f"wrong answer to the verification check ({failures} of {attempts})",
                detail={"failures": failures, "attempts": attempts},
            )  # fmt: skip
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise BackendError(f"could not record the verification: {exc}") from exc

    def _verify(self, account_id: str, answer: str) -> bool:
        account = self._accounts.get(account_id)
        if account is None:
            return False
        field = self._settings.verification_field
        if field == "date_of_birth":
            if account.date_of_birth is None:
                return False
            return any(parse_birth_date(answer, lang) == account.date_of_birth for lang in ("en", "es"))
        if field == "postal_code":
            expected = re.sub(r"\s", "", (account.postal_code or "").upper())
            return bool(expected) and expected in re.sub(r"\s", "", answer.upper())
        expected = account.account_last4 or ""
        return (
            bool(expected) and _digits(answer)[-4:] == expected and len(_digits(answer)) in (4, len(expected))
        )

    def flag_for_agent(
        self,
        account_id: str | None,
        conversation_id: str,
        reason: str,
        detail: str = "",
        *,
        message_id: str = "",
    ) -> None:
        self._agents.flag(conversation_id, reason, account_id=account_id, detail=detail, once=message_id)

    def mark_wrong_party(
        self, account_id: str | None, channel: str, address: str, message_id: str = ""
    ) -> None:
        self._addresses.mark_wrong_party(channel, address, account_id, by_message=message_id)
        # After the mark: a kill in between leaves the line to the retried turn (once per message).
        # The dialogue unsets its ``verified`` slot here: so does the console's copy of it.
        conversation_id = self._conversation_of(account_id, channel, address, message_id)
        if not conversation_id:
            return
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._keys.console_verified, conversation_id, "0")
        self._history.event(
            conversation_id, "wrong_party", by=BY, once=message_id, pipe=pipe, detail={"channel": channel},
            text=f"said this {channel} address does not reach the person we want: nothing more is sent to it",
        )  # fmt: skip
        pipe.execute()

    def opt_out(self, account_id: str | None, channel: str, address: str, message_id: str = "") -> None:
        self._addresses.opt_out(channel, address, account_id, by_message=message_id)
        self._history.event(
            self._conversation_of(account_id, channel, address, message_id), "opted_out", by=BY,
            text=f"asked for no more messages by {channel}", detail={"channel": channel}, once=message_id,
        )  # fmt: skip

    def _conversation_of(self, account_id: str | None, channel: str, address: str, message_id: str) -> str:
        """The conversation a message from ``address`` on ``channel`` belongs to (as the worker
        names it; the methods above are not given it)."""
        if not address and not account_id:
            return ""
        account = self._accounts.get(account_id) if account_id else None
        message = InboundMessage(channel=channel, external_id=message_id, sender=address, text="",
                                 received_at=self._clock.now())  # fmt: skip
        return conversation_id_for(account, message)

    def set_preference(self, account_id: str, name: str, value: str) -> None:
        if name not in ("channel", "language", "contact_window"):
            raise BackendError(f"unknown preference {name!r}")
        self._redis.hset(self._keys.account_state(account_id), f"pref:{name}", value)

    def pause_collection(self, account_id: str, reason: str, detail: str = "") -> None:
        """The pause, and (when it begins) a ``collection_paused`` line in the account's
        conversation (``acct-<id>``), in one script."""
        if reason not in PAUSE_REASONS:
            raise BackendError(f"unknown pause reason {reason!r}")
        now = self._clock.now()
        line = encode_event(
            now.timestamp(), "collection_paused", by=BY,
            text=f"{reason_in_words(reason)}: no collection messages until a person clears it",
            detail={"reason": reason, "detail": detail[:500]},
        )  # fmt: skip
        try:
            # The line only when the pause begins (a retried turn, or a second dispute while
            # collection is paused already, adds none); the pause's time and detail are the latest.
            self._pause(
                self._keys.account_state(account_id), f"pause:{reason}",
                json.dumps({"at": now.isoformat(), "detail": detail[:500]}),
                self._keys.conversation_history(f"acct-{account_id}"), line, overwrite=True,
            )  # fmt: skip
        except redis.RedisError as exc:
            raise BackendError(f"could not pause collection: {exc}") from exc

    def raise_crisis(
        self,
        account_id: str | None,
        conversation_id: str,
        *,
        channel: str,
        address: str,
        language: str,
        text: str,
        message_id: str = "",
    ) -> str:
        try:
            account = self._accounts.get(account_id) if account_id else None
            self._crisis.raise_crisis(
                conversation_id=conversation_id, account_id=account_id, detail=f"{channel}: {text}",
                once=message_id, source="nlu",
            )  # fmt: skip
        except redis.RedisError as exc:
            raise BackendError(f"could not escalate: {exc}") from exc
        return self._crisis.reply(language, country_of(account, channel, address))

    def record_callback(
        self, account_id: str | None, conversation_id: str, when: str, how: str, *, message_id: str = ""
    ) -> None:
        """Into the callbacks list (``callbacks``) with a ``callback_requested`` history line, in
        one script; once per ``message_id`` when given."""
        now = self._clock.timestamp()
        marker = self._keys.dedupe("callback", f"{conversation_id}:{message_id}") if message_id else ""
        line = encode_event(now, "callback_requested", by=BY, text=f"{how}: {when[:200]}" if when else how,
                            detail={"how": how, "when": when[:200]})  # fmt: skip
        try:
            self._callback(
                keys=[self._keys.callbacks, self._keys.conversation_history(conversation_id)],
                args=[marker, CALLBACK_ONCE_TTL_SECONDS, conversation_id, account_id or "", when[:200], how,
                      str(now), MAX_ENTRIES, line],
            )  # fmt: skip
        except redis.RedisError as exc:
            raise BackendError(f"could not record the call back: {exc}") from exc

    def create_plan(
        self,
        account_id: str,
        conversation_id: str,
        plan: Plan | Settlement,
        *,
        kind: str = "plan",
        channel: str = "",
        message_id: str = "",
    ) -> CreatedPlan:
        plan_id = uuid.uuid4().hex[:16]
        if message_id:
            # One plan per agreeing message: the first attempt claims the plan id; a retried
            # turn (an action after this one failed, Rasa handling the message again) finds
            # it, and gets the stored plan back or, if that attempt died before storing it,
            # stores it under the same id.
            once = self._keys.dedupe("plan", f"{kind}:{message_id}")
            try:
                self._redis.set(once, plan_id, nx=True, ex=PLAN_ONCE_TTL_SECONDS)
                claimed = self._redis.get(once)
                stored = self._redis.get(self._keys.plan(claimed.decode())) if claimed else None
            except redis.RedisError as exc:
                raise BackendError(f"plans unavailable: {exc}") from exc
            if claimed:
                plan_id = claimed.decode()
            if stored is not None:
                record = json.loads(stored)
                return CreatedPlan(plan_id=plan_id, payment_link=str(record["payment_link"]))
        if isinstance(plan, Plan):
            amount, currency = plan.instalments[0].amount, plan.currency
            data = {
                "kind": kind,
                "currency": plan.currency,
                "balance": str(plan.balance),
                "total": str(plan.total),
                "frequency": plan.frequency.value,
                "instalments": [
                    {"due": i.due.isoformat(), "amount": str(i.amount), "down_payment": i.is_down_payment}
                    for i in plan.instalments
                ],
            }
        else:
            amount, currency = plan.amount, plan.currency
            data = {
                "kind": kind,
                "currency": plan.currency,
                "total": str(plan.amount),
                "percent": str(plan.percent),
            }
        link = self._config.plans.payment_link_template.format(
            account_id=account_id, plan_id=plan_id, amount=_plain(amount), currency=currency
        )
        record = {
            **data,
            "plan_id": plan_id,
            "account_id": account_id,
            "conversation_id": conversation_id,
            "channel": channel,
            "payment_link": link,
            "created_at": self._clock.now().isoformat(),
        }
        # Announced before it is stored: a crash in between announces it again on the retry
        # (under the same plan id, which the creditor can de-duplicate on) rather than never.
        self._events.announce("plan.created", record)
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._keys.plan(plan_id), json.dumps(record))
        pipe.rpush(self._keys.account_plans(account_id), plan_id)
        if not message_id.startswith(CONSOLE_MESSAGE_PREFIX):
            # With the plan, so the line is there exactly when the plan is (the retry above
            # returns a stored plan without writing again). Amounts, never the link's secrets.
            self._history.event(
                conversation_id, "plan_created", by=BY, text=self._plan_words(plan, kind, account_id),
                detail={"plan_id": plan_id, "kind": kind, "channel": channel, "total": data["total"],
                        "currency": currency},
                once=plan_id, pipe=pipe,
            )  # fmt: skip
        pipe.execute()
        OpenerStats(self._redis, self._keys).record(account_id, "plan")
        return CreatedPlan(plan_id=plan_id, payment_link=link)

    def _plan_words(self, plan: Plan | Settlement, kind: str, account_id: str) -> str:
        """The plan in plain words for the agents (``describe_plan``, as the console's own)."""
        country = _country(self._accounts, account_id)
        if isinstance(plan, Plan):
            return describe_plan(plan, "en", country)
        money = format_money(plan.amount, plan.currency, "en", country)
        if kind == "full":
            return f"pay in full: one payment of {money}"
        return f"settlement: one payment of {money} ({plan.percent}% of the balance)"

    def replace_plan(self, old_plan_id: str, new_plan_id: str, *, at: datetime) -> bool:
        """Mark ``old_plan_id`` replaced by ``new_plan_id`` (a plan of the same account, stored
        already): ``replaced_by`` and ``replaced_at`` in ``plan:<old>:state`` (reminders skip it from
        then on), and the creditor's ``plan.replaced`` event. Once: marked by this plan already, it
        does nothing and returns ``False``; marked by another, ``BackendError``."""
        state_key = f"{self._keys.plan(old_plan_id)}:state"
        try:
            old_raw, new_raw = self._redis.mget([self._keys.plan(old_plan_id), self._keys.plan(new_plan_id)])
            current = self._redis.hget(state_key, "replaced_by")
        except redis.RedisError as exc:
            raise BackendError(f"plans unavailable: {exc}") from exc
        if old_raw is None or new_raw is None or old_plan_id == new_plan_id:
            raise BackendError(f"cannot replace plan {old_plan_id!r} with {new_plan_id!r}: no such plan")
        account_id = str(json.loads(old_raw).get("account_id", ""))
        if str(json.loads(new_raw).get("account_id", "")) != account_id:
            raise BackendError("a plan is replaced only by another plan of the same account")
        if current is not None:
            if current.decode() == new_plan_id:
                return False
            raise BackendError(f"plan {old_plan_id} was replaced by {current.decode()} already")
        # Announced before it is marked, as plan.created is: a crash in between announces it again
        # on the retry (the same plan ids, which the creditor can de-duplicate on) rather than never.
        self._events.announce(
            "plan.replaced",
            {"plan_id": old_plan_id, "replaced_by": new_plan_id, "account_id": account_id,
             "at": at.isoformat()},
        )  # fmt: skip
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.hsetnx(state_key, "replaced_by", new_plan_id)
            pipe.hsetnx(state_key, "replaced_at", at.isoformat())
            pipe.hget(state_key, "replaced_by")
            _, _, marked = pipe.execute()
        except redis.RedisError as exc:
            raise BackendError(f"plans unavailable: {exc}") from exc
        if marked is None or marked.decode() != new_plan_id:
            raise BackendError(f"plan {old_plan_id} was replaced by another plan in the meantime")
        return True


def _country(accounts: AccountStore, account_id: str) -> str | None:
    try:
        account = accounts.get(account_id)
    except redis.RedisError:
        return None  # the words only: the plan itself does not wait on this
    return account.country if account is not None else None


def _plain(amount: Decimal) -> str:
    return format(amount, "f")
