"""Payment plans set up from the console (issue 16), with the bot's own rules: the same plan
engine (``dialogue.plans``), the same policy from configuration, the same store and
``plan.created`` creditor event (``RedisDialogueBackend.create_plan``), and the same words to the
person as the dialogue's ``utter_plan_created`` (rasa_project/domain.yml).

No Flask and no Redis here: the desk (``Desk.plan_options``, ``preview_plan``, ``create_plan``)
does the work; this module holds what it shares with the page.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from dialogue.backend import CreatedPlan, DialogueSettings
from dialogue.plans import (
    FREQUENCY_WORDS,
    Frequency,
    Instalment,
    Plan,
    PlanError,
    PlanPolicy,
    Settlement,
    describe_plan,
    describe_schedule,
    format_date,
    format_money,
)

__all__ = [
    "PlanMaker",
    "PlanOption",
    "PlanPayment",
    "PlanResult",
    "StoredPlan",
    "describe_option",
    "plan_changed_text",
    "plan_created_text",
    "plan_payments",
    "policy_for",
]


class PlanMaker(Protocol):
    """What the desk needs to store a plan (``RedisDialogueBackend`` fits): one plan per
    ``message_id``, a payment link, and the creditor's ``plan.created`` event."""

    def create_plan(
        self,
        account_id: str,
        conversation_id: str,
        plan: Plan | Settlement,
        *,
        kind: str = "plan",
        channel: str = "",
        message_id: str = "",
    ) -> CreatedPlan: ...

    def replace_plan(self, old_plan_id: str, new_plan_id: str, *, at: datetime) -> bool:
        """Mark the old plan replaced by the new one (``replaced_by``, ``replaced_at`` in
        ``plan:<old>:state``) and announce ``plan.replaced``; once (``False`` when it was already)."""
        ...

    def settings(self) -> DialogueSettings: ...

    def verify(self, account_id: str, answer: str, *, today: date) -> bool:
        """The dialogue's own check of a verification answer against the account."""
        ...


def policy_for(settings: DialogueSettings, country: str | None) -> PlanPolicy:
    """The plan policy the dialogue offers plans under (``DialogueSettings.plan_policy``)."""
    return settings.plan_policy(country)


def describe_option(plan: Plan, language: str = "en", country: str | None = None) -> str:
    """One option on a line, as the dialogue lists them: amount, how often, how many, the end."""
    amount = format_money(plan.regular_amount, plan.currency, language, country)
    every = FREQUENCY_WORDS["es" if language == "es" else "en"][plan.frequency]
    end = format_date(plan.end_date, language)
    if language == "es":
        return f"{amount} {every}, {plan.count} pagos, el último el {end}"
    return f"{amount} {every}, {plan.count} payments, the last on {end}"


@dataclass(frozen=True)
class PlanOption:
    """A plan the policy allows, described for the agent (in the agents' language, English)."""

    instalment: Decimal
    frequency: str
    first_due: date
    count: int
    end_date: date
    #: "$40.17 every month, 3 payments, the last on Thursday, 4 June 2026".
    line: str
    #: The whole plan in words (``describe_plan``), as it is read back.
    summary: str
    #: Every payment on its own line (``describe_schedule``).
    schedule: str

    @classmethod
    def of(cls, plan: Plan, country: str | None = None) -> PlanOption:
        return cls(
            instalment=plan.regular_amount, frequency=plan.frequency.value, first_due=plan.first_due,
            count=plan.count, end_date=plan.end_date, line=describe_option(plan, "en", country),
            summary=describe_plan(plan, "en", country), schedule=describe_schedule(plan, "en", country),
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "instalment": str(self.instalment), "frequency": self.frequency,
            "first_due": self.first_due.isoformat(), "count": self.count,
            "end_date": self.end_date.isoformat(), "line": self.line, "summary": self.summary,
            "schedule": self.schedule,
        }  # fmt: skip


@dataclass(frozen=True)
class PlanResult:
    """A plan the agent set up, and what became of the message telling the person."""

    plan_id: str
    payment_link: str
    option: PlanOption
    #: The message to the person (``ReplyVerdict.to_json()``): sent, deferred or blocked.
    verdict: Mapping[str, Any]
    #: The same request came again (a double click, a retried POST): nothing new was done.
    repeated: bool = False
    #: The plan this one replaced (a change of plan), or ``""``.
    replaced: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id, "payment_link": self.payment_link, "option": self.option.to_json(),
            "verdict": dict(self.verdict), "repeated": self.repeated, "replaced": self.replaced,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, repeated: bool = False) -> PlanResult:
        option = data["option"]
        return cls(
            plan_id=str(data["plan_id"]), payment_link=str(data["payment_link"]),
            option=PlanOption(
                instalment=Decimal(option["instalment"]), frequency=str(option["frequency"]),
                first_due=date.fromisoformat(option["first_due"]), count=int(option["count"]),
                end_date=date.fromisoformat(option["end_date"]), line=str(option["line"]),
                summary=str(option["summary"]), schedule=str(option["schedule"]),
            ),
            verdict=dict(data["verdict"]), repeated=repeated, replaced=str(data.get("replaced") or ""),
        )  # fmt: skip


#: ``PlanPayment.status``.
PAYMENT_STATUSES = ("paid", "missed", "due", "ended")


@dataclass(frozen=True)
class PlanPayment:
    """One instalment of a stored plan and what became of it, from ``plan:<id>:state`` as
    ``bot.outreach.payments`` keeps it (``paid:<due>`` the day the creditor says it was paid,
    ``missed:<due>`` the missed-payment message went, ``reminded:<due>`` the reminder went).

    ``status``: ``paid``; ``missed`` (its day passed, in the person's zone, and nothing was paid:
    what outreach counts as missed); ``due`` (still to come, or due today); ``ended`` (not paid,
    and the plan was replaced before its day: nothing is due under it any more)."""

    due: date
    amount: Decimal
    currency: str
    status: str
    #: The day it was paid (``paid`` only).
    paid_on: date | None = None
    #: The person was reminded before it / told it was missed.
    reminded: bool = False
    told_missed: bool = False
    down_payment: bool = False

    def money(self, country: str | None = None) -> str:
        return format_money(self.amount, self.currency, "en", country)


def plan_payments(
    record: Mapping[str, Any],
    state: Mapping[str, str],
    today: date,
    *,
    replaced: bool,
    zone: tzinfo | None = None,
) -> tuple[PlanPayment, ...]:
    """Every instalment of a stored plan (``plan:<id>``) with what became of it (``state``:
    ``plan:<id>:state``) as of ``today`` in the person's zone (``zone``); ``replaced``:
    ``bot.outreach.payments.is_replaced``. A plan without instalments (a settlement) has none."""
    ended_from = today
    if replaced and state.get("replaced_at"):
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(state["replaced_at"])
            if zone is not None and moment.tzinfo is not None:
                moment = moment.astimezone(zone)
            ended_from = min(today, moment.date())
    payments = []
    for item in record.get("instalments") or []:
        try:
            due, amount = date.fromisoformat(str(item["due"])), Decimal(str(item["amount"]))
        except (KeyError, TypeError, ValueError, InvalidOperation):
            continue
        paid_raw = state.get(f"paid:{due}", "")
        try:
            paid_on = date.fromisoformat(paid_raw) if paid_raw else None
        except ValueError:
            paid_on = None
        if paid_raw:
            status = "paid"
        elif due < ended_from:
            status = "missed"
        elif replaced:
            status = "ended"
        else:
            status = "due"
        payments.append(PlanPayment(
            due=due, amount=amount, currency=str(record.get("currency") or ""), status=status,
            paid_on=paid_on, reminded=f"reminded:{due}" in state, told_missed=f"missed:{due}" in state,
            down_payment=bool(item.get("down_payment")),
        ))  # fmt: skip
    return tuple(sorted(payments, key=lambda p: p.due))


@dataclass(frozen=True)
class StoredPlan:
    """A plan of the account as stored (``plan:<id>``) and what became of it (``plan:<id>:state``),
    described for the agent."""

    plan_id: str
    kind: str
    created_at: str
    payment_link: str
    #: The plan in words ("3 payments of $40.00 every month, from ..."), or ``""`` if unreadable.
    summary: str
    #: Every payment on its own line.
    schedule: str
    #: Still the person's plan: not replaced (``bot.outreach.payments.is_replaced``).
    active: bool = True
    #: The plan that replaced this one and when (ISO), or ``""`` (also while a change cut short
    #: after the new plan was stored waits for its retry: then ``active`` is already ``False``).
    replaced_by: str = ""
    replaced_at: str = ""
    #: Every instalment and what became of it (paid when, missed, due, ended), by due date.
    payments: tuple[PlanPayment, ...] = ()

    @classmethod
    def of(
        cls,
        record: Mapping[str, Any],
        state: Mapping[str, str],
        *,
        replaced: bool,
        country: str | None = None,
        today: date | None = None,
        zone: tzinfo | None = None,
    ) -> StoredPlan:
        """``replaced``: ``bot.outreach.payments.is_replaced`` for this plan (what reminders go by);
        ``today``: in the person's zone, ``zone`` (the payments are told only when it is given)."""
        plan = _plan_of(record)
        summary = schedule = ""
        if plan is not None:
            summary = describe_plan(plan, "en", country)
            schedule = describe_schedule(plan, "en", country)
        elif record.get("total"):
            kind = str(record.get("kind") or "plan").capitalize()
            summary = f"{kind} of {record['total']} {record.get('currency', '')}"
        return cls(
            plan_id=str(record.get("plan_id", "")), kind=str(record.get("kind") or "plan"),
            created_at=str(record.get("created_at") or ""),
            payment_link=str(record.get("payment_link") or ""),
            summary=summary.strip(), schedule=schedule, active=not replaced,
            replaced_by=state.get("replaced_by", ""), replaced_at=state.get("replaced_at", ""),
            payments=(
                plan_payments(record, state, today, replaced=replaced, zone=zone) if today is not None else ()
            ),
        )  # fmt: skip


def _plan_of(record: Mapping[str, Any]) -> Plan | None:
    """The stored plan as the plan engine's ``Plan`` (to read it back in words)."""
    try:
        instalments = tuple(
            Instalment(date.fromisoformat(i["due"]), Decimal(i["amount"]), bool(i.get("down_payment")))
            for i in record.get("instalments") or []
        )
        if not instalments:
            return None
        return Plan(sum((i.amount for i in instalments), Decimal(0)), str(record["currency"]),
                    Frequency(record["frequency"]), instalments)  # fmt: skip
    except (KeyError, TypeError, ValueError, InvalidOperation, PlanError):
        return None


#: ``utter_plan_created`` (rasa_project/domain.yml). The dialogue read the plan back before the
#: person agreed; from the console the person agreed with an agent, so the short channels also get
#: the plan in words (email gets every payment, as the dialogue's email wording does).
_CREATED = {
    "en": (
        "All set, thank you. Your plan is in place: {summary}\n\n"
        "You can make each payment here: {link}\n\n"
        "We'll send you a reminder a few days before each one."
    ),
    "es": (
        "Todo listo, gracias. Su plan está en marcha: {summary}\n\n"
        "Puede hacer cada pago aquí: {link}\n\n"
        "Le enviaremos un recordatorio unos días antes de cada pago."
    ),
}
_CREATED_EMAIL = {
    "en": (
        "All set, thank you. Your plan is in place and you can make each payment here: {link}\n\n"
        "Your payments:\n{schedule}\n\n"
        "We'll send you a reminder a few days before each one. If anything changes, just reply to "
        "this email and we'll find another way."
    ),
    "es": (
        "Todo listo, gracias. Su plan está en marcha y puede hacer cada pago aquí: {link}\n\n"
        "Sus pagos:\n{schedule}\n\n"
        "Le enviaremos un recordatorio unos días antes de cada pago. Si algo cambia, responda a este "
        "correo y buscaremos otra forma."
    ),
}


#: What a change of plan adds in front: the earlier plan has ended (no payments, no reminders).
_CHANGED = {
    "en": "Your payment plan has been changed: the earlier plan has ended, and nothing more is due under it.",
    "es": "Su plan de pagos ha cambiado: el plan anterior ha terminado y ya no hay nada pendiente en él.",
}


def plan_created_text(plan: Plan, link: str, language: str, channel: str, country: str | None = None) -> str:
    """What the person is told once the plan is set up, in their language, for ``channel``."""
    lang = "es" if language == "es" else "en"
    if channel == "email":
        return _CREATED_EMAIL[lang].format(link=link, schedule=describe_schedule(plan, lang, country))
    return _CREATED[lang].format(link=link, summary=describe_plan(plan, lang, country))


def plan_changed_text(plan: Plan, link: str, language: str, channel: str, country: str | None = None) -> str:
    """What the person is told once their plan is changed: the earlier plan has ended, then the new
    plan and its payment link, as ``plan_created_text``."""
    lang = "es" if language == "es" else "en"
    return f"{_CHANGED[lang]}\n\n{plan_created_text(plan, link, lang, channel, country)}"
