"""Self-service payment plans, paying in full, and the one-off settlement offer."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from dialogue.actions.common import backend, who
from dialogue.backend import AccountView, DialogueSettings
from dialogue.parsing import parse_frequency, parse_money
from dialogue.plans import (
    FREQUENCY_WORDS,
    Frequency,
    Plan,
    PlanError,
    PlanPolicy,
    Settlement,
    build_plan,
    describe_plan,
    describe_schedule,
    evaluate_offer,
    format_date,
    format_money,
    plan_options,
    settlement_offer,
)

_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "1st": 1, "2nd": 2, "3rd": 3,
    "primero": 1, "primera": 1, "segundo": 2, "segunda": 2, "tercero": 3, "tercera": 3,
}  # fmt: skip
#: Plain number words count as a choice only in a short reply ("option two", "la dos").
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "uno": 1, "una": 1, "dos": 2, "tres": 3}


def policy_for(settings: DialogueSettings, account: AccountView) -> PlanPolicy:
    """The plan policy from configuration, with the account's country for its holidays."""
    return settings.plan_policy(account.country)


def plan_terms(plan: Plan) -> str:
    """What a chosen plan is rebuilt from (kept in a slot between turns)."""
    return json.dumps(
        {
            "instalment": str(plan.regular_amount),
            "frequency": plan.frequency.value,
            "first_due": plan.first_due.isoformat(),
        }
    )


def rebuild(terms: str, account: AccountView, policy: PlanPolicy, today: date) -> Plan:
    """The plan for stored terms (raises PlanError if it no longer fits, e.g. a day later)."""
    data = json.loads(terms)
    return build_plan(
        account.balance,
        account.currency,
        Decimal(data["instalment"]),
        Frequency(data["frequency"]),
        date.fromisoformat(data["first_due"]),
        policy,
        today,
    )


def option_line(number: int, plan: Plan, language: str, country: str | None) -> str:
    """One numbered choice: amount, how often, how many, and when it ends."""
    amount = format_money(plan.regular_amount, plan.currency, language, country)
    every = FREQUENCY_WORDS["es" if language == "es" else "en"][plan.frequency]
    end = format_date(plan.end_date, language)
    if language == "es":
        return f"{number}. {amount} {every}, {plan.count} pagos, el último el {end}"
    return f"{number}. {amount} {every}, {plan.count} payments, the last on {end}"


def chosen_option(text: str, count: int) -> int | None:
    """Which listed option a reply picks ("2", "option 2", "the second one"), 0-based.

    A reply with a frequency ("2 a week") or a longer amount is an offer, not a choice."""
    lowered = text.lower().strip()
    if parse_frequency(lowered) is not None:
        return None
    words = re.findall(r"\w+", lowered)
    numbers = re.findall(r"\d+", lowered)
    number: int | None = None
    if len(numbers) == 1 and len(numbers[0]) == 1 and len(words) <= 4:
        number = int(numbers[0])
    elif not numbers:
        number = next((_ORDINALS[w] for w in words if w in _ORDINALS), None)
        if number is None and len(words) <= 2:
            number = next((_NUMBER_WORDS[w] for w in words if w in _NUMBER_WORDS), None)
    if number is None or not 1 <= number <= count:
        return None
    return number - 1


def _options_message(
    dispatcher: CollectingDispatcher, response: str, plans: list[Plan], language: str, country: str | None
) -> str:
    lines = [option_line(n, plan, language, country) for n, plan in enumerate(plans, start=1)]
    dispatcher.utter_message(
        response=response,
        options="\n".join(lines),
        buttons=[{"title": str(n), "payload": str(n)} for n in range(1, len(plans) + 1)],
    )
    return json.dumps([json.loads(plan_terms(p)) for p in plans])


def _account(tracker: Tracker) -> AccountView | None:
    identity = who(tracker)
    return backend().account(identity.account_id) if identity.account_id else None


class ActionAskPlanOffer(Action):
    """Asks what the person can afford, with a few plans that fit to choose from."""

    def name(self) -> str:
        return "action_ask_plan_offer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if tracker.get_slot("plan_alternatives"):
            return []  # the alternatives to an offer were just listed: wait for the choice
        account = _account(tracker)
        if account is None:
            dispatcher.utter_message(response="utter_cannot_find_account")
            return []
        language, policy = who(tracker).language, policy_for(backend().settings(), account)
        options = plan_options(account.balance, account.currency, policy, date.today())
        if not options:
            dispatcher.utter_message(response="utter_ask_plan_offer")
            return []
        listed = _options_message(dispatcher, "utter_plan_options", options, language, account.country)
        return [SlotSet("plan_alternatives", listed)]


class ValidatePaymentPlanForm(FormValidationAction):
    """Turns what the person offers (or picks) into a plan inside policy, reads it back, and
    only lets the form finish on an explicit yes."""

    def name(self) -> str:
        return "validate_payment_plan_form"

    async def validate_plan_offer(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        account = _account(tracker)
        if account is None:
            dispatcher.utter_message(response="utter_cannot_find_account")
            return {"plan_offer": None}
        language = who(tracker).language
        policy = policy_for(backend().settings(), account)
        today = date.today()
        text = str(slot_value)
        listed = json.loads(tracker.get_slot("plan_alternatives") or "[]")
        choice = chosen_option(text, len(listed))
        plan: Plan | None = None
        if choice is not None:
            try:
                plan = rebuild(json.dumps(listed[choice]), account, policy, today)
            except PlanError:
                plan = None
        if plan is None:
            money = parse_money(text, default_currency=account.currency)
            if money is None:
                dispatcher.utter_message(response="utter_plan_not_understood")
                return {"plan_offer": None}
            cadence = parse_frequency(text)
            frequency = cadence.frequency if cadence else Frequency.MONTHLY
            try:
                result = evaluate_offer(
                    account.balance, account.currency, money.amount, frequency, policy, today
                )
            except PlanError:
                dispatcher.utter_message(response="utter_plan_not_understood")
                return {"plan_offer": None}
            if result.accepted is None:
                alternatives = list(result.alternatives)
                if not alternatives:
                    dispatcher.utter_message(response="utter_plan_not_understood")
                    return {"plan_offer": None}
                listed_now = _options_message(
                    dispatcher, "utter_plan_alternatives", alternatives, language, account.country
                )
                return {"plan_offer": None, "plan_alternatives": listed_now}
            plan = result.accepted
        summary = describe_plan(plan, language, account.country)
        # Email's wording also lists every payment; the short channels use the summary only.
        schedule = describe_schedule(plan, language, account.country)
        dispatcher.utter_message(response="utter_plan_readback", plan_summary=summary, plan_schedule=schedule)
        return {"plan_offer": plan_terms(plan), "plan_summary": summary, "plan_alternatives": None}

    async def validate_plan_confirmed(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if slot_value is True:
            return {"plan_confirmed": True}
        dispatcher.utter_message(response="utter_plan_change")
        return {"plan_confirmed": None, "plan_offer": None, "plan_summary": None}


class ActionCreatePlan(Action):
    """Creates the agreed plan: stored, a payment link, and plan.created for the creditor."""

    def name(self) -> str:
        return "action_create_plan"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reset: list[EventType] = [
            SlotSet("plan_offer", None), SlotSet("plan_confirmed", None),
            SlotSet("plan_summary", None), SlotSet("plan_alternatives", None),
        ]  # fmt: skip
        account = _account(tracker)
        terms = tracker.get_slot("plan_offer")
        if account is None or not terms or tracker.get_slot("plan_confirmed") is not True:
            dispatcher.utter_message(response="utter_plan_change")
            return reset
        store = backend()
        try:
            plan = rebuild(str(terms), account, policy_for(store.settings(), account), date.today())
        except PlanError:
            # Agreed yesterday, confirmed today: the first date left the window. Ask again.
            dispatcher.utter_message(response="utter_plan_change")
            return reset
        # Its reminders go where the person agreed it.
        # Once per message: a retried turn (or a replayed "yes") gets this same plan back.
        created = store.create_plan(
            account.account_id, tracker.sender_id, plan, channel=who(tracker).channel,
            message_id=who(tracker).message_id,
        )  # fmt: skip
        schedule = describe_schedule(plan, who(tracker).language, account.country)
        dispatcher.utter_message(
            response="utter_plan_created", link=created.payment_link, plan_schedule=schedule
        )
        return reset


class ActionPayInFull(Action):
    """The link to pay the whole balance and, once per conversation, a settlement offer
    within the floor (only where policy allows one)."""

    def name(self) -> str:
        return "action_pay_in_full"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        account = _account(tracker)
        if account is None:
            dispatcher.utter_message(response="utter_cannot_find_account")
            return [SlotSet("settlement_now", False)]
        identity = who(tracker)
        store = backend()
        balance = format_money(account.balance, account.currency, identity.language, account.country)
        full = Settlement(amount=account.balance, currency=account.currency, percent=Decimal(100))
        created = store.create_plan(
            account.account_id, tracker.sender_id, full, kind="full", channel=identity.channel,
            message_id=identity.message_id,
        )  # fmt: skip
        dispatcher.utter_message(
            response="utter_pay_in_full_link", balance=balance, link=created.payment_link
        )
        offer = settlement_offer(account.balance, account.currency, policy_for(store.settings(), account))
        if tracker.get_slot("settlement_offered") or offer is None or offer.amount >= account.balance:
            return [SlotSet("settlement_now", False)]
        dispatcher.utter_message(
            response="utter_settlement_offer",
            settlement=format_money(offer.amount, offer.currency, identity.language, account.country),
            balance=balance,
        )
        return [SlotSet("settlement_offered", True), SlotSet("settlement_now", True)]


class ActionAcceptSettlement(Action):
    """The settlement was accepted: a link for the settlement amount."""

    def name(self) -> str:
        return "action_accept_settlement"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        account = _account(tracker)
        if account is None:
            dispatcher.utter_message(response="utter_cannot_find_account")
            return []
        identity = who(tracker)
        store = backend()
        offer = settlement_offer(account.balance, account.currency, policy_for(store.settings(), account))
        if offer is None:
            dispatcher.utter_message(response="utter_settlement_declined")
            return []
        created = store.create_plan(
            account.account_id, tracker.sender_id, offer, kind="settlement", channel=identity.channel,
            message_id=identity.message_id,
        )  # fmt: skip
        dispatcher.utter_message(
            response="utter_settlement_created",
            settlement=format_money(offer.amount, offer.currency, identity.language, account.country),
            link=created.payment_link,
        )
        return []
