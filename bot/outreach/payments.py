"""Plan payments as the creditor reports them, and the reminders built on them.

The creditor's system knows what was paid; ``debtbot payments import`` loads its CSV
(``plan_id,due_date,paid_on``), one row per instalment paid. An instalment whose date has
passed without a payment is *missed*: outreach then sends one kind message offering to
re-plan, and before each instalment a reminder. Each instalment carries its plan's channel
(where the person agreed it: reminders go there first) and when the plan was agreed (no
reminder comes right after: the confirmation gave the date).

An instalment first marked paid (the import) or missed (its missed-payment message went) is also
an entry in the audit stream, in the same step as the mark (``instalment.paid`` /
``instalment.missed``: the plan, account and conversation, the due date; never an amount): the
analytics read plans kept and broken from them, and payments are records the law keeps.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import redis

from bot.clock import Clock
from bot.compliance.gate import AUDIT_MAXLEN
from bot.errors import InvalidRequest
from bot.store.connection import Keys
from dialogue.plans import format_date, format_money

#: Kept per instalment on ``plan:<id>:state``: ``paid:<due>``, ``reminded:<due>``, ``missed:<due>``.
_REQUIRED = ("plan_id", "due_date", "paid_on")

# The mark and its audit entry in one step, the entry only when the mark is new (an import run
# twice, two workers marking the same miss: one entry). ARGV: field, value, maxlen, entry...
_MARK_PAID = """
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
return 1
"""
_MARK_ONCE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
if #ARGV > 3 then redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4)) end
return 1
"""

_TEXTS = {
    "reminder": {
        "en": (
            "Hi {first_name}, a friendly reminder: your payment of {amount} is due on {date}. "
            "You can pay here: {link}\nIf anything has changed, just reply and we'll work it out together."
        ),
        "es": (
            "Hola, {first_name}: le recordamos que su pago de {amount} vence el {date}. "
            "Puede pagar aquí: {link}\nSi algo ha cambiado, respóndanos y lo resolvemos juntos."
        ),
    },
    "missed_payment": {
        "en": (
            "Hi {first_name}, we noticed the payment of {amount} due on {date} hasn't come through. "
            "That happens, and it's OK. Is everything all right? If the plan no longer fits, reply and "
            "we'll set up a new one that works for you."
        ),
        "es": (
            "Hola, {first_name}: vemos que el pago de {amount} del {date} no ha llegado. Puede pasar, "
            "no se preocupe. ¿Está todo bien? Si el plan ya no le viene bien, respóndanos y "
            "preparamos uno nuevo que se ajuste a usted."
        ),
    },
}


@dataclass(frozen=True)
class Instalment:
    plan_id: str
    due: date
    amount: Decimal
    currency: str
    link: str
    #: Where the person agreed the plan (``sms``, ``telegram``, ``email``; empty when unknown).
    channel: str = ""
    #: When the plan was agreed (aware; ``None`` for plans stored without the time).
    agreed_at: datetime | None = None
    #: The plan's account and the conversation it was agreed in (empty when unknown).
    account_id: str = ""
    conversation_id: str = ""


def _agreed_at(raw: object) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def is_replaced(state: Mapping[str, str], plans: int) -> bool:
    """Whether a plan was replaced by another (changed from the console: ``Desk.create_plan(...,
    replaces=)``), from its ``plan:<id>:state`` and how many plans its account has now. No reminder
    and no missed-payment message goes for a replaced plan's instalments.

    Replaced: ``replaced_by`` is set (the change is done), or the change was started
    (``replacing_after``: how many plans the account had then) and the new plan is stored already
    (the account has more plans now) but the old one was not marked yet (the change was cut short
    between the two writes; the retry marks it). Between starting a change and storing the new plan
    the old one is still the person's plan. So at every moment exactly one of the two is reminded.
    """
    if state.get("replaced_by"):
        return True
    after = state.get("replacing_after", "")
    return after.isdigit() and plans > int(after)


@dataclass(frozen=True)
class ImportReport:
    recorded: int
    errors: list[str]


class PlanPayments:
    """Plans of an account, what was paid, and which reminders went."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys, clock: Clock | None = None) -> None:
        self._redis = client
        self._keys = keys
        self._clock = clock or Clock()
        self._mark_paid = client.register_script(_MARK_PAID)
        self._mark_once = client.register_script(_MARK_ONCE)

    def _state(self, plan_id: str) -> str:
        return f"{self._keys.plan(plan_id)}:state"

    def instalments(self, account_id: str) -> list[tuple[Instalment, dict[str, str]]]:
        """Every instalment of the account's plans, with its plan's state (replaced plans left
        out: ``is_replaced``)."""
        out = []
        plan_ids = self._redis.lrange(self._keys.account_plans(account_id), 0, -1)
        for raw_id in plan_ids:
            plan_id = raw_id.decode()
            raw = self._redis.get(self._keys.plan(plan_id))
            if raw is None:
                continue
            plan = json.loads(raw)
            state = {k.decode(): v.decode() for k, v in self._redis.hgetall(self._state(plan_id)).items()}
            if is_replaced(state, len(plan_ids)):
                continue
            channel, agreed_at = str(plan.get("channel") or ""), _agreed_at(plan.get("created_at"))
            for item in plan.get("instalments") or []:
                instalment = Instalment(
                    plan_id=plan_id, due=date.fromisoformat(item["due"]), amount=Decimal(item["amount"]),
                    currency=plan["currency"], link=plan.get("payment_link", ""), channel=channel,
                    agreed_at=agreed_at, account_id=str(plan.get("account_id") or account_id),
                    conversation_id=str(plan.get("conversation_id") or ""),
                )  # fmt: skip
                out.append((instalment, state))
        return out

    def due_message(
        self, account_id: str, today: date, days_before: int, *, chase_missed: bool = True
    ) -> tuple[str, Instalment] | None:
        """What the account should hear now: a missed payment first, else an upcoming one
        (``chase_missed=False``: only an upcoming one, for a person flagged vulnerable)."""
        items = self.instalments(account_id)
        missed = [
            i for i, state in items
            if i.due < today and f"paid:{i.due}" not in state and f"missed:{i.due}" not in state
        ]  # fmt: skip
        if missed and chase_missed:
            return "missed_payment", max(missed, key=lambda i: i.due)  # the latest only, once
        upcoming = [
            i for i, state in items
            if today <= i.due <= date.fromordinal(today.toordinal() + days_before)
            and f"reminded:{i.due}" not in state and f"paid:{i.due}" not in state
        ]  # fmt: skip
        return ("reminder", min(upcoming, key=lambda i: i.due)) if upcoming else None

    def _entry(self, kind: str, plan_id: str, due: date, account_id: str, conversation_id: str,
               **extra: str) -> list[str]:  # fmt: skip
        """The audit entry's arguments for the scripts (maxlen, then field, value...)."""
        fields = {"kind": kind, "plan_id": plan_id, "account_id": account_id,
                  "conversation_id": conversation_id, "due": due.isoformat(), **extra,
                  "at": repr(self._clock.timestamp())}  # fmt: skip
        return [str(AUDIT_MAXLEN), *(item for pair in fields.items() if pair[1] for item in pair)]

    def mark(self, kind: str, instalment: Instalment) -> bool:
        """Remember the message went (``True`` the first time only); a missed payment's mark is
        also the audit's ``instalment.missed`` entry, written with it."""
        missed = kind == "missed_payment"
        field = f"{'missed' if missed else 'reminded'}:{instalment.due}"
        entry = (
            self._entry("instalment.missed", instalment.plan_id, instalment.due, instalment.account_id,
                        instalment.conversation_id)
            if missed else []
        )  # fmt: skip
        keys = [self._state(instalment.plan_id), self._keys.audit]
        return bool(self._mark_once(keys=keys, args=[field, "1", *entry]))

    def import_csv(self, text: str) -> ImportReport:
        """Record paid instalments; each bad row is named by its line and skipped."""
        reader = csv.DictReader(io.StringIO(text))
        missing = [name for name in _REQUIRED if name not in (reader.fieldnames or [])]
        if missing:
            raise InvalidRequest(
                f"line 1: missing column(s) {', '.join(missing)} (need {', '.join(_REQUIRED)})"
            )
        recorded, errors = 0, []
        for row in reader:
            line = reader.line_num
            try:
                due, paid_on = (
                    date.fromisoformat(row["due_date"].strip()),
                    date.fromisoformat(row["paid_on"].strip()),
                )
            except ValueError:
                errors.append(f"line {line}: due_date and paid_on must be dates like 2026-12-04")
                continue
            plan_id = row["plan_id"].strip()
            raw = self._redis.get(self._keys.plan(plan_id))
            if raw is None:
                errors.append(f"line {line}: no plan {plan_id!r}")
                continue
            plan = json.loads(raw)
            dues = {item["due"] for item in plan.get("instalments") or []}
            if due.isoformat() not in dues:
                errors.append(f"line {line}: plan {plan_id} has no instalment due {due}")
                continue
            account_id, conversation_id = (
                str(plan.get("account_id") or ""),
                str(plan.get("conversation_id") or ""),
            )
            entry = self._entry("instalment.paid", plan_id, due, account_id, conversation_id,
                                paid_on=paid_on.isoformat())  # fmt: skip
            # Recorded again (a second import), the date is corrected and no second entry written.
            self._mark_paid(keys=[self._state(plan_id), self._keys.audit],
                            args=[f"paid:{due}", paid_on.isoformat(), *entry])  # fmt: skip
            recorded += 1
        return ImportReport(recorded, errors)


def reminder_text(
    kind: str, instalment: Instalment, first_name: str, language: str, country: str | None
) -> str:
    """The reminder or missed-payment message, in the plan's language."""
    lang = "es" if language == "es" else "en"
    return _TEXTS[kind][lang].format(
        first_name=first_name, amount=format_money(instalment.amount, instalment.currency, lang, country),
        date=format_date(instalment.due, lang), link=instalment.link,
    )  # fmt: skip
