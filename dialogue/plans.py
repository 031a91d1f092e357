"""Payment plans: build, check, choose and read back instalment plans inside the creditor's policy.

Everything here is pure: the policy comes from configuration, ``today`` is always a parameter,
and money is :class:`~decimal.Decimal` at the currency's precision (2 places for USD, 0 for JPY,
as Babel knows them). A plan's dates are business dates: a due date on a weekend or on a public
holiday of ``policy.country`` moves to the next business day.

Rules worth knowing (the tests pin every one of them):

* Regular instalments are equal; only the final one may be smaller (the remainder), so the
  instalments add up to the balance to the cent. An instalment of at least the (remaining)
  balance is a single payment, which is never "below the minimum".
* A required down payment is ``down_payment_percent`` of the balance rounded *up* to the
  currency's precision; it is the first instalment, on ``first_due``, and the regular
  instalments follow one period later. A single payment of the whole balance covers it.
* Dates come from the requested first due date (the anchor): every 7 or 14 days, or the same
  day of the month, clamped to the month's end but back to the anchor's day when a month has
  it (Jan 31, Feb 28, Mar 31). Each is then rolled forward to a business day, and never onto
  or before the previous due date, so dates always strictly increase.
* The window and the term are checked on the rolled dates the person will see: the first due
  date must lie in ``[today, today + first_payment_within_days]`` and the last one on or before
  the first plus ``max_term_months`` (clamped to the month's end).
* When an offer breaks several rules, the reason reported is the first of: above balance,
  frequency not allowed, below minimum, first date outside the window, term too long.
"""

from __future__ import annotations

import calendar
import enum
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation

import holidays
from babel.dates import format_date as babel_format_date
from babel.numbers import format_currency, get_currency_precision, is_currency

__all__ = [
    "Frequency",
    "Instalment",
    "InvalidAmount",
    "InvalidPolicy",
    "OfferResult",
    "Plan",
    "PlanError",
    "PlanOutsidePolicy",
    "PlanPolicy",
    "PolicyReason",
    "Settlement",
    "accept_settlement",
    "add_months",
    "build_plan",
    "describe_plan",
    "evaluate_offer",
    "format_date",
    "format_money",
    "locale_for",
    "plan_options",
    "settlement_offer",
]


class PlanError(ValueError):
    """Root of every error this module raises."""


class InvalidPolicy(PlanError):
    """The plan policy from configuration makes no sense; the message says which field."""


class InvalidAmount(PlanError):
    """A balance or instalment is not a positive amount of the currency (or the currency is unknown)."""


class PolicyReason(str, enum.Enum):
    """Why a plan or an offer does not fit the policy (machine-readable, for the dialogue)."""

    BELOW_MINIMUM = "below_minimum"
    TERM_TOO_LONG = "term_too_long"
    FREQUENCY_NOT_ALLOWED = "frequency_not_allowed"
    FIRST_DUE_OUTSIDE_WINDOW = "first_due_outside_window"
    ABOVE_BALANCE = "above_balance"


class PlanOutsidePolicy(PlanError):
    """A requested plan breaks the policy; ``reason`` says which rule."""

    def __init__(self, reason: PolicyReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Frequency(str, enum.Enum):
    """How often instalments fall due."""

    WEEKLY = "weekly"
    FORTNIGHTLY = "fortnightly"
    MONTHLY = "monthly"


#: Instalments per year, to compare offers made at different frequencies.
_PER_YEAR = {Frequency.WEEKLY: 52, Frequency.FORTNIGHTLY: 26, Frequency.MONTHLY: 12}
#: The longest term a policy may set: beyond this a "plan" is a typo in the configuration.
_MAX_TERM_LIMIT = 600


def _to_decimal(name: str, value: object) -> Decimal:
    # Configuration hands us ints; floats are refused outright (money is never float).
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise InvalidPolicy(f"{name} must be a Decimal or an int, got {type(value).__name__}")
    result = Decimal(value)
    if not result.is_finite():
        raise InvalidPolicy(f"{name} must be a finite number, got {value}")
    return result


@dataclass(frozen=True)
class PlanPolicy:
    """The creditor's rules for payment plans and settlements (from configuration)."""

    min_instalment: Decimal
    max_term_months: int
    frequencies: tuple[Frequency, ...]
    first_payment_within_days: int
    down_payment_percent: Decimal = Decimal(0)
    settlement_floor_percent: Decimal | None = None
    settlement_offer_percent: Decimal | None = None
    country: str | None = None

    def __post_init__(self) -> None:
        # Coerce what YAML gives (ints, lists, strings) so the rest of the module can trust types.
        set_ = object.__setattr__
        set_(self, "min_instalment", _to_decimal("min_instalment", self.min_instalment))
        set_(self, "down_payment_percent", _to_decimal("down_payment_percent", self.down_payment_percent))
        if self.min_instalment < 0:
            raise InvalidPolicy(f"min_instalment must not be negative, got {self.min_instalment}")
        if isinstance(self.max_term_months, bool) or not isinstance(self.max_term_months, int):
            raise InvalidPolicy("max_term_months must be an int")
        if not 1 <= self.max_term_months <= _MAX_TERM_LIMIT:
            raise InvalidPolicy(f"max_term_months must be 1-{_MAX_TERM_LIMIT}, got {self.max_term_months}")
        if isinstance(self.first_payment_within_days, bool) or not isinstance(
            self.first_payment_within_days, int
        ):
            raise InvalidPolicy("first_payment_within_days must be an int")
        if self.first_payment_within_days < 0:
            raise InvalidPolicy(
                f"first_payment_within_days must not be negative, got {self.first_payment_within_days}"
            )
        try:
            frequencies = tuple(dict.fromkeys(Frequency(f) for f in self.frequencies))
        except (TypeError, ValueError) as exc:
            raise InvalidPolicy(f"frequencies: {exc}") from exc
        if not frequencies:
            raise InvalidPolicy("frequencies must name at least one of weekly, fortnightly, monthly")
        set_(self, "frequencies", frequencies)
        if not 0 <= self.down_payment_percent < 100:
            raise InvalidPolicy(
                f"down_payment_percent must be 0 or more and below 100, got {self.down_payment_percent}"
            )
        self._check_settlement()
        if self.country is not None:
            country = str(self.country).upper()
            if country not in holidays.list_supported_countries():
                raise InvalidPolicy(f"country {self.country!r} has no public-holiday calendar")
            set_(self, "country", country)

    def _check_settlement(self) -> None:
        floor, offer = self.settlement_floor_percent, self.settlement_offer_percent
        if floor is None:
            if offer is not None:
                raise InvalidPolicy("settlement_offer_percent needs settlement_floor_percent")
            return
        floor = _to_decimal("settlement_floor_percent", floor)
        object.__setattr__(self, "settlement_floor_percent", floor)
        if not 0 < floor <= 100:
            raise InvalidPolicy(f"settlement_floor_percent must be above 0 and at most 100, got {floor}")
        if offer is not None:
            offer = _to_decimal("settlement_offer_percent", offer)
            object.__setattr__(self, "settlement_offer_percent", offer)
            if not floor <= offer <= 100:
                raise InvalidPolicy(
                    f"settlement_offer_percent must be between the floor ({floor}) and 100, got {offer}"
                )

    @property
    def preferred_frequency(self) -> Frequency:
        """Monthly when allowed, else the least frequent allowed (fewest payments to remember)."""
        return max(self.frequencies, key=lambda f: -_PER_YEAR[f])


@dataclass(frozen=True)
class Instalment:
    """One payment of a plan."""

    due: date
    amount: Decimal
    is_down_payment: bool = False


@dataclass(frozen=True)
class Plan:
    """A payment plan: the instalments add up to ``balance`` exactly."""

    balance: Decimal
    currency: str
    frequency: Frequency
    instalments: tuple[Instalment, ...]

    def __post_init__(self) -> None:
        if not self.instalments:
            raise PlanError("a plan has at least one instalment")
        if self.total != self.balance:
            raise PlanError(f"instalments add up to {self.total}, not the balance {self.balance}")

    @property
    def down_payment(self) -> Instalment | None:
        """The down payment, when the plan has one."""
        first = self.instalments[0]
        return first if first.is_down_payment else None

    @property
    def regular_amount(self) -> Decimal:
        """The amount of the regular instalments (the first one after any down payment)."""
        regular = [i for i in self.instalments if not i.is_down_payment]
        return regular[0].amount if regular else self.instalments[0].amount

    @property
    def count(self) -> int:
        """How many payments in all, down payment and final remainder included."""
        return len(self.instalments)

    @property
    def first_due(self) -> date:
        """The first payment's date."""
        return self.instalments[0].due

    @property
    def end_date(self) -> date:
        """The last payment's date."""
        return self.instalments[-1].due

    @property
    def total(self) -> Decimal:
        """The sum of all instalments (always the balance)."""
        return sum((i.amount for i in self.instalments), Decimal(0))


@dataclass(frozen=True)
class OfferResult:
    """What became of a debtor's offer: ``accepted``, or why not and the nearest plans that fit."""

    accepted: Plan | None
    alternatives: tuple[Plan, ...] = ()
    reason: PolicyReason | None = None


@dataclass(frozen=True)
class Settlement:
    """A one-off settlement offer: pay ``amount`` (``percent`` of the balance) and the debt is closed."""

    amount: Decimal
    currency: str
    percent: Decimal


# --- money and dates -----------------------------------------------------------------------


def _quantum(currency: str) -> Decimal:
    if not isinstance(currency, str) or not is_currency(currency):
        raise InvalidAmount(f"unknown currency {currency!r}")
    return Decimal(1).scaleb(-get_currency_precision(currency))


def _check_amount(name: str, amount: Decimal, quantum: Decimal) -> None:
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvalidAmount(f"{name} must be a finite Decimal, got {amount!r}")
    if amount <= 0:
        raise InvalidAmount(f"{name} must be positive, got {amount}")
    try:
        exact = amount == amount.quantize(quantum)
    except InvalidOperation:
        exact = False
    if not exact:
        raise InvalidAmount(f"{name} {amount} has more decimals than the currency allows")


def _ceil(amount: Decimal, quantum: Decimal) -> Decimal:
    return amount.quantize(quantum, rounding=ROUND_CEILING)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the end of a shorter month."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _nominal_due(anchor: date, frequency: Frequency, k: int) -> date:
    if frequency is Frequency.WEEKLY:
        return anchor + timedelta(days=7 * k)
    if frequency is Frequency.FORTNIGHTLY:
        return anchor + timedelta(days=14 * k)
    # Always from the anchor, never from the previous date, so Jan 31 -> Feb 28 -> Mar 31.
    return add_months(anchor, k)


class _Calendar:
    """Business days for one country (weekends only without one)."""

    def __init__(self, country: str | None) -> None:
        self._holidays = holidays.country_holidays(country) if country else None

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < 5 and (self._holidays is None or day not in self._holidays)

    def roll(self, day: date) -> date:
        while not self.is_business_day(day):
            day += timedelta(days=1)
        return day

    def due_dates(self, anchor: date, frequency: Frequency) -> Iterator[date]:
        """The endless business-day schedule from ``anchor``, strictly increasing."""
        previous: date | None = None
        k = 0
        while True:
            nominal = _nominal_due(anchor, frequency, k)
            # A long holiday run could roll two dates together: never on or before the previous one.
            if previous is not None:
                nominal = max(nominal, previous + timedelta(days=1))
            previous = self.roll(nominal)
            yield previous
            k += 1


@dataclass(frozen=True)
class _Terms:
    """One account's balance under one policy on one day: where plans are built and checked."""

    balance: Decimal
    currency: str
    quantum: Decimal
    policy: PlanPolicy
    today: date
    cal: _Calendar

    @classmethod
    def of(cls, balance: Decimal, currency: str, policy: PlanPolicy, today: date) -> _Terms:
        quantum = _quantum(currency)
        _check_amount("balance", balance, quantum)
        return cls(balance, currency, quantum, policy, today, _Calendar(policy.country))

    @property
    def down(self) -> Decimal:
        # Rounded up: "at least N percent" must still hold after rounding.
        return _ceil(self.balance * self.policy.down_payment_percent / 100, self.quantum)

    @property
    def window_end(self) -> date:
        return self.today + timedelta(days=self.policy.first_payment_within_days)

    def in_window(self, first_due: date) -> bool:
        return self.today <= self.cal.roll(first_due) <= self.window_end

    def earliest_first_due(self) -> date | None:
        """The first business day from tomorrow inside the window (today if it is the only one)."""
        for offset in range(1, self.policy.first_payment_within_days + 1):
            day = self.today + timedelta(days=offset)
            if self.cal.is_business_day(day):
                return day
        return self.today if self.cal.is_business_day(self.today) else None

    def limit(self, first_due: date) -> date:
        return add_months(self.cal.roll(first_due), self.policy.max_term_months)

    def build(self, instalment: Decimal, frequency: Frequency, first_due: date) -> Plan:
        """The plan, or :class:`PlanOutsidePolicy` naming the first rule it breaks."""
        policy = self.policy
        if frequency not in policy.frequencies:
            raise PlanOutsidePolicy(
                PolicyReason.FREQUENCY_NOT_ALLOWED, f"{frequency.value} payments are not offered"
            )
        down = Decimal(0)
        if instalment >= self.balance:
            # One payment of everything: it covers any down payment too.
            regular, count, rest = self.balance, 1, Decimal(0)
        else:
            down = self.down
            remaining = self.balance - down
            if instalment < policy.min_instalment and instalment < remaining:
                raise PlanOutsidePolicy(
                    PolicyReason.BELOW_MINIMUM,
                    f"an instalment of {instalment} is below the minimum of {policy.min_instalment}",
                )
            regular = min(instalment, remaining)
            quotient, rest = divmod(remaining, regular)
            count = int(quotient)
        first = self.cal.roll(first_due)
        if not self.today <= first <= self.window_end:
            raise PlanOutsidePolicy(
                PolicyReason.FIRST_DUE_OUTSIDE_WINDOW,
                f"the first payment must be due between {self.today} and {self.window_end}, not {first}",
            )
        amounts = [down] if down else []
        total_count = len(amounts) + count + (1 if rest else 0)
        limit = self.limit(first_due)
        # Stop at the limit: a tiny instalment on a large balance must not build a million dates.
        within = itertools.takewhile(lambda d: d <= limit, self.cal.due_dates(first_due, frequency))
        dates = list(itertools.islice(within, total_count))
        if len(dates) < total_count:
            raise PlanOutsidePolicy(
                PolicyReason.TERM_TOO_LONG,
                f"{total_count} {frequency.value} payments would end after {limit}",
            )
        amounts += [regular] * count + ([rest] if rest else [])
        instalments = tuple(
            Instalment(due, amount.quantize(self.quantum), is_down_payment=bool(down) and i == 0)
            for i, (due, amount) in enumerate(zip(dates, amounts, strict=True))
        )
        return Plan(self.balance, self.currency, frequency, instalments)

    def slots(self, frequency: Frequency, first_due: date) -> int:
        """How many payments at ``frequency`` fit in the term from ``first_due``."""
        limit = self.limit(first_due)
        return sum(
            1 for _ in itertools.takewhile(lambda d: d <= limit, self.cal.due_dates(first_due, frequency))
        )

    def smallest_fitting(self, frequency: Frequency, first_due: date) -> Decimal:
        """The smallest allowed instalment at ``frequency`` that ends within the term."""
        down = self.down
        regular_slots = self.slots(frequency, first_due) - (1 if down else 0)
        if regular_slots <= 0:
            return self.balance  # only a single payment fits
        minimum = _ceil(self.policy.min_instalment, self.quantum)
        return max(minimum, _ceil((self.balance - down) / regular_slots, self.quantum))

    def attempt(self, instalment: Decimal, frequency: Frequency, first_due: date) -> Plan | None:
        try:
            return self.build(instalment, frequency, first_due)
        except PlanOutsidePolicy:
            return None


# --- the engine ----------------------------------------------------------------------------


def build_plan(
    balance: Decimal,
    currency: str,
    instalment: Decimal,
    frequency: Frequency,
    first_due: date,
    policy: PlanPolicy,
    today: date,
) -> Plan:
    """Equal instalments of ``instalment`` (the last one the remainder), checked against ``policy``.

    Raises :class:`PlanOutsidePolicy` when the plan breaks a rule and :class:`InvalidAmount`
    for a non-positive amount, more decimals than the currency has, or an unknown currency.
    """
    terms = _Terms.of(balance, currency, policy, today)
    _check_amount("instalment", instalment, terms.quantum)
    return terms.build(instalment, Frequency(frequency), first_due)


def _yearly(plan: Plan) -> Decimal:
    return plan.regular_amount * _PER_YEAR[plan.frequency]


def evaluate_offer(
    balance: Decimal,
    currency: str,
    amount: Decimal,
    frequency: Frequency,
    policy: PlanPolicy,
    today: date,
    first_due: date | None = None,
) -> OfferResult:
    """Accept the debtor's offer as a plan, or say why not and propose up to three nearest plans.

    The offer is rounded half-up to the currency's precision. ``first_due`` defaults to the
    earliest business day from tomorrow inside the window; when the one given is outside it,
    the alternatives start on that default. An offer of the whole balance or more is not a
    plan (``ABOVE_BALANCE``): its only alternative is a single payment of the balance.
    Alternatives are ordered by how close their yearly amount is to the offer's.
    """
    frequency = Frequency(frequency)
    terms = _Terms.of(balance, currency, policy, today)
    default_start = terms.earliest_first_due()
    start = first_due if first_due is not None else default_start
    if start is None:
        # No business day in the window at all: nothing can be offered.
        return OfferResult(None, (), PolicyReason.FIRST_DUE_OUTSIDE_WINDOW)
    try:
        offer = amount.quantize(terms.quantum, rounding=ROUND_HALF_UP)
    except (AttributeError, InvalidOperation):
        offer = Decimal(0)
    reason: PolicyReason
    if offer >= balance:
        reason = PolicyReason.ABOVE_BALANCE
    elif offer <= 0:
        allowed = frequency in policy.frequencies
        reason = PolicyReason.BELOW_MINIMUM if allowed else PolicyReason.FREQUENCY_NOT_ALLOWED
    else:
        try:
            return OfferResult(accepted=terms.build(offer, frequency, start))
        except PlanOutsidePolicy as exc:
            reason = exc.reason
    if not terms.in_window(start):
        start = default_start
    if start is None:
        return OfferResult(None, (), reason)
    return OfferResult(None, _alternatives(terms, offer, frequency, start, reason), reason)


def _alternatives(
    terms: _Terms, offer: Decimal, frequency: Frequency, start: date, reason: PolicyReason
) -> tuple[Plan, ...]:
    policy = terms.policy
    preferred = policy.preferred_frequency
    if reason is PolicyReason.ABOVE_BALANCE:
        single = frequency if frequency in policy.frequencies else preferred
        return (terms.build(terms.balance, single, start),)
    found: dict[tuple[Instalment, ...], Plan] = {}

    def add(plan: Plan | None) -> None:
        if plan is not None and len(found) < 3:
            found.setdefault(plan.instalments, plan)

    # The three kinds a person most easily understands, in this order ...
    if frequency in policy.frequencies:
        add(terms.attempt(max(offer, terms.smallest_fitting(frequency, start)), frequency, start))
    more_often = sorted(
        (f for f in policy.frequencies if _PER_YEAR[f] > _PER_YEAR[frequency]), key=lambda f: _PER_YEAR[f]
    )
    for other in more_often:
        same_amount = terms.attempt(offer, other, start)
        if same_amount is not None:
            add(same_amount)
            break
    add(terms.attempt(terms.smallest_fitting(preferred, start), preferred, start))
    # ... then the same money per year at the other frequencies, to make up three.
    for other in policy.frequencies:
        equivalent = _ceil(offer * _PER_YEAR[frequency] / _PER_YEAR[other], terms.quantum)
        add(terms.attempt(max(equivalent, terms.smallest_fitting(other, start)), other, start))
    if not found:
        add(terms.attempt(terms.balance, preferred, start))
    target = offer * _PER_YEAR[frequency]
    return tuple(
        sorted(
            found.values(), key=lambda p: (abs(_yearly(p) - target), p.frequency is not frequency, p.count)
        )
    )


def plan_options(balance: Decimal, currency: str, policy: PlanPolicy, today: date) -> list[Plan]:
    """Up to three distinct plans at the preferred frequency, shortest first.

    About a quarter of the longest term, half of it, and the longest term (smallest
    instalments); when the balance is too small for that many to differ, a single payment of
    the balance is added, so there are two options whenever two distinct plans exist.
    """
    terms = _Terms.of(balance, currency, policy, today)
    start = terms.earliest_first_due()
    if start is None:
        return []
    frequency = policy.preferred_frequency
    down = terms.down
    slots = terms.slots(frequency, start) - (1 if down else 0)
    plans: dict[tuple[Instalment, ...], Plan] = {}
    if slots > 0:
        minimum = _ceil(policy.min_instalment, terms.quantum)
        for count in sorted({-(-slots // 4), -(-slots // 2), slots}):
            amount = max(minimum, _ceil((balance - down) / count, terms.quantum))
            plan = terms.attempt(amount, frequency, start)
            if plan is not None:
                plans.setdefault(plan.instalments, plan)
    if len(plans) < 2:
        single = terms.build(balance, frequency, start)
        plans.setdefault(single.instalments, single)
    return sorted(plans.values(), key=lambda p: (p.count, p.end_date))


def settlement_offer(balance: Decimal, currency: str, policy: PlanPolicy) -> Settlement | None:
    """The one-off settlement to offer (``None`` when the policy has none).

    The amount is rounded *up* to the currency's precision, so it is never below the floor.
    """
    floor = policy.settlement_floor_percent
    if floor is None:
        return None
    quantum = _quantum(currency)
    _check_amount("balance", balance, quantum)
    percent = policy.settlement_offer_percent if policy.settlement_offer_percent is not None else floor
    return Settlement(_ceil(balance * percent / 100, quantum), currency, percent)


def accept_settlement(balance: Decimal, amount: Decimal, policy: PlanPolicy) -> bool:
    """Whether a one-off ``amount`` settles ``balance``: at least the floor percentage of it.

    Without a settlement floor only the whole balance is enough.
    """
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        return False
    floor = policy.settlement_floor_percent
    return amount >= (balance if floor is None else balance * floor / 100)


# --- read-back ---------------------------------------------------------------------------

_LOCALES = {
    "en": {"US": "en_US", "GB": "en_GB", "UK": "en_GB"},
    "es": {"ES": "es_ES", "MX": "es_MX", "US": "es_US"},
}
_DEFAULT_LOCALES = {"en": "en_US", "es": "es_US"}
#: "every week" and so on, per language: the plan read back in plain words.
FREQUENCY_WORDS = {
    "en": {
        Frequency.WEEKLY: "every week",
        Frequency.FORTNIGHTLY: "every two weeks",
        Frequency.MONTHLY: "every month",
    },
    "es": {
        Frequency.WEEKLY: "cada semana",
        Frequency.FORTNIGHTLY: "cada dos semanas",
        Frequency.MONTHLY: "cada mes",
    },
}


def _language(language: str) -> str:
    # Anything that is not Spanish is read back in English, the bot's other language.
    return "es" if language.lower().startswith("es") else "en"


def locale_for(language: str, country: str | None = None) -> str:
    """The Babel locale for a language and country: en_US, en_GB, es_ES, es_MX or es_US.

    A region in the language tag ("es-MX") counts when ``country`` is not given; an unknown
    country falls back to en_US / es_US.
    """
    lang = _language(language)
    region = country or language.replace("-", "_").partition("_")[2]
    return _LOCALES[lang].get(region.upper(), _DEFAULT_LOCALES[lang])


def format_money(amount: Decimal, currency: str, language: str, country: str | None = None) -> str:
    """An amount as people of that language and country write it ("$1,250.50", "1250,50 €")."""
    return format_currency(amount, currency, locale=locale_for(language, country))


def format_date(day: date, language: str) -> str:
    """A long, unambiguous date: "Friday, 4 December 2026" / "viernes, 4 de diciembre de 2026"."""
    if _language(language) == "es":
        return babel_format_date(day, "EEEE, d 'de' MMMM 'de' y", locale="es_ES")
    # Day before month reads the same to US and UK readers once the month is a word.
    return babel_format_date(day, "EEEE, d MMMM y", locale="en_US")


def describe_plan(plan: Plan, language: str, country: str | None = None) -> str:
    """The plan in plain words, for the person to confirm before it is set up."""
    lang = _language(language)
    es = lang == "es"

    def money(amount: Decimal) -> str:
        return format_money(amount, plan.currency, lang, country)

    def when(day: date) -> str:
        return format_date(day, lang)

    down = plan.down_payment
    rest = [i for i in plan.instalments if not i.is_down_payment]
    final: Instalment | None = None
    if len(rest) >= 2 and rest[-1].amount != rest[0].amount:
        rest, final = rest[:-1], rest[-1]
    if len(rest) == 1:
        regular = (
            f"un pago de {money(rest[0].amount)} el {when(rest[0].due)}"
            if es
            else f"one payment of {money(rest[0].amount)} on {when(rest[0].due)}"
        )
    else:
        first, last = when(rest[0].due), when(rest[-1].due)
        every = FREQUENCY_WORDS[lang][plan.frequency]
        regular = (
            f"{len(rest)} pagos de {money(rest[0].amount)} {every}, del {first} al {last}"
            if es
            else f"{len(rest)} payments of {money(rest[0].amount)} {every}, from {first} to {last}"
        )
    parts = [regular]
    if down is not None:
        opening = (
            f"un primer pago de {money(down.amount)} el {when(down.due)}"
            if es
            else f"a first payment of {money(down.amount)} on {when(down.due)}"
        )
        parts = [opening, ("luego " if es else "then ") + regular]
    if final is not None:
        parts.append(
            f"y un último pago de {money(final.amount)} el {when(final.due)}"
            if es
            else f"plus a last payment of {money(final.amount)} on {when(final.due)}"
        )
    text = ", ".join(parts)
    if plan.count > 1:
        text += f"; {money(plan.total)} en total" if es else f"; {money(plan.total)} in total"
    return text[0].upper() + text[1:] + "."


def describe_schedule(plan: Plan, language: str, country: str | None = None) -> str:
    """Every payment on its own line, for channels with room for detail (email):
    "- Friday, 4 December 2026: $50.00". Bullets, not numbers: numbers answer choices."""
    lang = _language(language)
    lines = []
    for instalment in plan.instalments:
        amount = format_money(instalment.amount, plan.currency, lang, country)
        note = ""
        if instalment.is_down_payment:
            note = " (pago inicial)" if lang == "es" else " (down payment)"
        lines.append(f"- {format_date(instalment.due, lang)}: {amount}{note}")
    return "\n".join(lines)
