"""The payment-plan engine: every plan it proposes is inside policy, on business days, to the cent."""

from __future__ import annotations

import calendar
import itertools
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogue.plans import (
    Frequency,
    InvalidAmount,
    InvalidPolicy,
    Plan,
    PlanError,
    PlanOutsidePolicy,
    PlanPolicy,
    PolicyReason,
    accept_settlement,
    build_plan,
    describe_plan,
    evaluate_offer,
    format_date,
    format_money,
    locale_for,
    plan_options,
    settlement_offer,
)

FAST = settings(max_examples=200, deadline=None)
CENT = Decimal("0.01")
ALL = (Frequency.WEEKLY, Frequency.FORTNIGHTLY, Frequency.MONTHLY)
TODAY = date(2026, 11, 24)  # a Tuesday
STANDARD = PlanPolicy(
    min_instalment=Decimal(10),
    max_term_months=24,
    frequencies=ALL,
    first_payment_within_days=14,
    settlement_floor_percent=Decimal(70),
    settlement_offer_percent=Decimal(85),
    country="US",
)


# --- an independent oracle -----------------------------------------------------------------


def months_later(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def assert_business_days(plan: Plan, country: str | None) -> None:
    public = holidays.country_holidays(country) if country else {}
    dues = [i.due for i in plan.instalments]
    for due in dues:
        assert due.weekday() < 5, f"{due} is a weekend"
        assert due not in public, f"{due} is a public holiday in {country}"
    assert all(a < b for a, b in itertools.pairwise(dues)), f"dates not strictly increasing: {dues}"


def assert_inside_policy(plan: Plan, balance: Decimal, policy: PlanPolicy, today: date) -> None:
    assert plan.total == balance == sum(i.amount for i in plan.instalments)
    assert all(i.amount > 0 for i in plan.instalments)
    assert plan.frequency in policy.frequencies
    assert today <= plan.first_due <= today + timedelta(days=policy.first_payment_within_days)
    assert plan.end_date <= months_later(plan.first_due, policy.max_term_months)
    regular = [i for i in plan.instalments if not i.is_down_payment]
    assert [i for i in plan.instalments if i.is_down_payment] in ([], [plan.instalments[0]])
    # Equal regular instalments at least the minimum; only the final one may be smaller.
    for instalment in regular[:-1]:
        assert instalment.amount == regular[0].amount
        assert instalment.amount >= policy.min_instalment
    assert regular[-1].amount <= regular[0].amount
    if plan.count == 1:
        assert plan.instalments[0].amount == balance
    required = (balance * policy.down_payment_percent / 100).quantize(CENT, rounding=ROUND_CEILING)
    assert plan.instalments[0].amount >= required, "the down payment was not honoured"
    assert_business_days(plan, policy.country)


# --- strategies (Decimal and dates only, never floats) --------------------------------------

balances = st.decimals(min_value=Decimal("1.00"), max_value=Decimal("25000.00"), places=2)
days = st.dates(min_value=date(2025, 1, 1), max_value=date(2030, 12, 31))
policies = st.builds(
    PlanPolicy,
    min_instalment=st.decimals(min_value=Decimal(1), max_value=Decimal(60), places=2),
    max_term_months=st.integers(min_value=1, max_value=36),
    frequencies=st.lists(st.sampled_from(ALL), min_size=1, max_size=3, unique=True).map(tuple),
    first_payment_within_days=st.integers(min_value=5, max_value=30),
    down_payment_percent=st.sampled_from([Decimal(0), Decimal(0), Decimal(10), Decimal("12.5")]),
    settlement_floor_percent=st.sampled_from([None, Decimal(50), Decimal(70)]),
    country=st.sampled_from([None, "US", "GB", "ES", "MX"]),
)


@st.composite
def fitting_requests(draw: st.DrawFn) -> tuple[Decimal, Decimal, Frequency, date, PlanPolicy, date]:
    """A balance, instalment, frequency and first due date that the policy allows."""
    policy = draw(policies)
    balance = draw(balances)
    today = draw(days)
    frequency = draw(st.sampled_from(policy.frequencies))
    # At most max_term - 1 regular instalments (one more with a down payment) always fit.
    count = draw(st.integers(min_value=1, max_value=max(1, policy.max_term_months - 1)))
    instalment = max(policy.min_instalment, (balance / count).quantize(CENT, rounding=ROUND_CEILING))
    # Leave room in the window for rolling past a weekend and holidays (at most four days).
    offset = draw(st.integers(min_value=0, max_value=policy.first_payment_within_days - 5))
    first_due = today + timedelta(days=offset)
    return balance, instalment, frequency, first_due, policy, today


# --- properties ----------------------------------------------------------------------------


@FAST
@given(fitting_requests())
def test_a_fitting_request_builds_a_plan_inside_policy_that_adds_up_to_the_cent(
    request: tuple[Decimal, Decimal, Frequency, date, PlanPolicy, date],
) -> None:
    balance, instalment, frequency, first_due, policy, today = request
    plan = build_plan(balance, "USD", instalment, frequency, first_due, policy, today)
    assert_inside_policy(plan, balance, policy, today)
    assert plan.regular_amount == min(
        instalment, balance - (plan.down_payment.amount if plan.down_payment else 0)
    )
    assert plan.first_due >= first_due  # rolled forward, never back


@FAST
@given(
    policies,
    balances,
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("30000.00"), places=2),
    st.sampled_from(ALL),
    st.integers(min_value=-3, max_value=40),
    days,
)
def test_build_plan_returns_a_plan_inside_policy_or_says_which_rule_it_breaks(
    policy: PlanPolicy, balance: Decimal, instalment: Decimal, frequency: Frequency, offset: int, today: date
) -> None:
    try:
        plan = build_plan(
            balance, "USD", instalment, frequency, today + timedelta(days=offset), policy, today
        )
    except PlanOutsidePolicy as exc:
        assert isinstance(exc.reason, PolicyReason)
        return
    assert_inside_policy(plan, balance, policy, today)


@FAST
@given(
    policies,
    balances,
    st.decimals(min_value=Decimal(0), max_value=Decimal("30000.00"), places=2),
    st.sampled_from(ALL),
    days,
)
def test_evaluate_offer_accepts_a_plan_or_offers_up_to_three_distinct_alternatives_inside_policy(
    policy: PlanPolicy, balance: Decimal, amount: Decimal, frequency: Frequency, today: date
) -> None:
    result = evaluate_offer(balance, "USD", amount, frequency, policy, today)
    if result.accepted is not None:
        assert result.reason is None and result.alternatives == ()
        assert result.accepted.frequency is frequency
        assert result.accepted.regular_amount in (amount, balance - result.accepted.instalments[0].amount)
        assert_inside_policy(result.accepted, balance, policy, today)
        return
    assert result.reason is not None
    assert 1 <= len(result.alternatives) <= 3, "an offer that does not fit must come with alternatives"
    assert len({p.instalments for p in result.alternatives}) == len(result.alternatives)
    for plan in result.alternatives:
        assert_inside_policy(plan, balance, policy, today)
    if amount >= balance:
        assert result.reason is PolicyReason.ABOVE_BALANCE
        assert [p.count for p in result.alternatives] == [1]
    elif frequency not in policy.frequencies:
        assert result.reason is PolicyReason.FREQUENCY_NOT_ALLOWED
    elif amount < policy.min_instalment:
        assert result.reason is PolicyReason.BELOW_MINIMUM


@FAST
@given(policies, balances, days)
def test_plan_options_are_distinct_plans_inside_policy_at_the_preferred_frequency(
    policy: PlanPolicy, balance: Decimal, today: date
) -> None:
    options = plan_options(balance, "USD", policy, today)
    assert 1 <= len(options) <= 3
    assert len({p.instalments for p in options}) == len(options)
    assert [p.count for p in options] == sorted(p.count for p in options)
    for plan in options:
        assert_inside_policy(plan, balance, policy, today)
        assert plan.frequency is policy.preferred_frequency
    if balance >= 2 * policy.min_instalment and policy.max_term_months >= 2:
        assert len(options) >= 2, "a person who asks for options gets a choice"


@FAST
@given(
    balances,
    st.decimals(min_value=Decimal(1), max_value=Decimal(100), places=1),
    st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=1),
)
def test_settlement_is_never_below_the_floor_and_is_accepted(
    balance: Decimal, floor: Decimal, extra: Decimal
) -> None:
    offer_percent = min(Decimal(100), floor + extra)
    policy = PlanPolicy(
        Decimal(10), 12, ALL, 14, settlement_floor_percent=floor, settlement_offer_percent=offer_percent
    )
    settlement = settlement_offer(balance, "USD", policy)
    assert settlement is not None
    assert settlement.amount >= balance * floor / 100
    assert settlement.amount <= balance
    assert settlement.amount == settlement.amount.quantize(CENT)
    assert settlement.percent == offer_percent
    assert accept_settlement(balance, settlement.amount, policy)
    just_below = (balance * floor / 100).quantize(CENT, rounding=ROUND_CEILING) - CENT
    assert not accept_settlement(balance, just_below, policy)


@FAST
@given(st.decimals(min_value=Decimal(0), max_value=Decimal("9999999.99"), places=2))
def test_format_money_uses_each_locales_separators_and_symbol_position(amount: Decimal) -> None:
    cents = amount.quantize(CENT)
    us = format_money(amount, "USD", "en", "US")
    assert us == f"${cents:,.2f}"
    spain = format_money(amount, "EUR", "es", "ES")
    assert spain.endswith("€") and not spain.startswith("€")
    number = spain[:-1].strip().replace("\xa0", "")
    assert number[-3] == ","  # decimal comma
    assert Decimal(number.replace(".", "").replace(",", ".")) == cents  # dots only group thousands
    uk = format_money(amount, "GBP", "en", "GB")
    assert uk == f"£{cents:,.2f}"


@FAST
@given(fitting_requests())
def test_describe_plan_mentions_count_amount_dates_and_total_in_the_right_language(
    request: tuple[Decimal, Decimal, Frequency, date, PlanPolicy, date],
) -> None:
    balance, instalment, frequency, first_due, policy, today = request
    plan = build_plan(balance, "USD", instalment, frequency, first_due, policy, today)
    regulars = [i for i in plan.instalments if not i.is_down_payment and i.amount == plan.regular_amount]
    english = describe_plan(plan, "en", "US")
    spanish = describe_plan(plan, "es", "ES")
    for text, language, country in ((english, "en", "US"), (spanish, "es", "ES")):
        assert format_money(plan.regular_amount, "USD", language, country) in text
        assert format_date(plan.first_due, language) in text
        assert format_date(plan.end_date, language) in text
        assert text.endswith(".") and not text[0].islower()
        if plan.count > 1:
            assert format_money(plan.total, "USD", language, country) in text
    if len(regulars) > 1:
        assert f"{len(regulars)} payments of " in english
        assert f"{len(regulars)} pagos de " in spanish
    if plan.count > 1:
        assert english.endswith(" in total.") and spanish.endswith(" en total.")
    assert "pago" not in english and "payment" not in spanish


# --- due dates -----------------------------------------------------------------------------


def test_monthly_dates_clamp_to_month_end_and_return_to_the_31st() -> None:
    policy = PlanPolicy(Decimal(10), 12, ALL, 14)
    plan = build_plan(
        Decimal(400), "USD", Decimal(100), Frequency.MONTHLY, date(2025, 1, 31), policy, date(2025, 1, 27)
    )
    assert [i.due for i in plan.instalments] == [
        date(2025, 1, 31),
        date(2025, 2, 28),
        date(2025, 3, 31),
        date(2025, 4, 30),
    ]


def test_a_due_date_on_a_us_holiday_moves_to_the_next_business_day() -> None:
    today = date(2026, 11, 20)
    plan = build_plan(
        Decimal(300), "USD", Decimal(100), Frequency.MONTHLY, date(2026, 11, 25), STANDARD, today
    )
    assert [i.due for i in plan.instalments] == [date(2026, 11, 25), date(2026, 12, 28), date(2027, 1, 25)]
    no_holidays = PlanPolicy(Decimal(10), 24, ALL, 14)
    plan = build_plan(
        Decimal(300), "USD", Decimal(100), Frequency.MONTHLY, date(2026, 11, 25), no_holidays, today
    )
    assert plan.instalments[1].due == date(2026, 12, 25)  # a Friday: only the holiday moved it


def test_a_due_date_on_a_weekend_moves_to_monday() -> None:
    policy = PlanPolicy(Decimal(10), 12, ALL, 14)
    plan = build_plan(Decimal(200), "USD", Decimal(100), Frequency.WEEKLY, date(2026, 11, 28), policy, TODAY)
    assert [i.due for i in plan.instalments] == [date(2026, 11, 30), date(2026, 12, 7)]


def test_fortnightly_dates_are_fourteen_days_apart() -> None:
    policy = PlanPolicy(Decimal(10), 12, ALL, 14)
    plan = build_plan(
        Decimal(300), "USD", Decimal(100), Frequency.FORTNIGHTLY, date(2026, 11, 25), policy, TODAY
    )
    assert [i.due for i in plan.instalments] == [date(2026, 11, 25), date(2026, 12, 9), date(2026, 12, 23)]


# --- amounts -------------------------------------------------------------------------------


def test_the_final_instalment_is_the_remainder_and_may_be_below_the_minimum() -> None:
    plan = build_plan(
        Decimal("612.34"), "USD", Decimal(50), Frequency.MONTHLY, date(2026, 12, 4), STANDARD, TODAY
    )
    assert [i.amount for i in plan.instalments] == [Decimal(50)] * 12 + [Decimal("12.34")]
    assert (plan.count, plan.regular_amount, plan.total) == (13, Decimal(50), Decimal("612.34"))
    assert plan.first_due == date(2026, 12, 4)


def test_a_down_payment_comes_first_on_the_first_due_date() -> None:
    policy = PlanPolicy(Decimal(10), 24, ALL, 14, down_payment_percent=Decimal(10))
    plan = build_plan(
        Decimal("1000.05"), "USD", Decimal(200), Frequency.MONTHLY, date(2026, 12, 1), policy, TODAY
    )
    down = plan.instalments[0]
    assert down.is_down_payment and plan.down_payment == down
    assert (down.due, down.amount) == (date(2026, 12, 1), Decimal("100.01"))  # 10 % rounded up
    assert [i.amount for i in plan.instalments[1:]] == [Decimal(200)] * 4 + [Decimal("100.04")]
    assert plan.instalments[1].due == date(2027, 1, 1)  # no country: New Year's Day is a business day
    assert plan.regular_amount == Decimal(200)


def test_paying_everything_at_once_is_a_single_payment_even_with_a_down_payment_policy() -> None:
    policy = PlanPolicy(Decimal(10), 24, ALL, 14, down_payment_percent=Decimal(25))
    plan = build_plan(Decimal(80), "USD", Decimal(80), Frequency.MONTHLY, date(2026, 12, 1), policy, TODAY)
    assert [(i.amount, i.is_down_payment) for i in plan.instalments] == [(Decimal(80), False)]


def test_a_balance_below_the_minimum_can_still_be_paid_in_one_go() -> None:
    plan = build_plan(Decimal(5), "USD", Decimal(5), Frequency.MONTHLY, date(2026, 12, 1), STANDARD, TODAY)
    assert plan.count == 1


def test_currencies_without_cents_get_whole_instalments() -> None:
    plan = build_plan(
        Decimal(10000), "JPY", Decimal(3000), Frequency.MONTHLY, date(2026, 12, 1), STANDARD, TODAY
    )
    assert [i.amount for i in plan.instalments] == [3000, 3000, 3000, 1000]
    with pytest.raises(InvalidAmount):
        build_plan(
            Decimal(10000), "JPY", Decimal("3000.50"), Frequency.MONTHLY, date(2026, 12, 1), STANDARD, TODAY
        )
    options = plan_options(Decimal(100000), "JPY", STANDARD, TODAY)
    assert all(i.amount == i.amount.to_integral_value() for p in options for i in p.instalments)


@pytest.mark.parametrize(
    ("balance", "currency", "instalment"),
    [
        (Decimal("10.001"), "USD", Decimal(5)),
        (Decimal(0), "USD", Decimal(5)),
        (Decimal(-5), "USD", Decimal(5)),
        (Decimal(100), "USD", Decimal(0)),
        (Decimal(100), "USD", Decimal("NaN")),
        (Decimal(100), "XYZ", Decimal(10)),
    ],
)
def test_impossible_amounts_and_unknown_currencies_are_refused(
    balance: Decimal, currency: str, instalment: Decimal
) -> None:
    with pytest.raises(InvalidAmount):
        build_plan(balance, currency, instalment, Frequency.MONTHLY, date(2026, 12, 1), STANDARD, TODAY)


# --- each reason ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instalment", "frequency", "first_due", "policy", "reason"),
    [
        (Decimal("9.99"), Frequency.MONTHLY, date(2026, 12, 1), STANDARD, PolicyReason.BELOW_MINIMUM),
        (Decimal(38), Frequency.MONTHLY, date(2026, 12, 1), STANDARD, PolicyReason.TERM_TOO_LONG),
        (
            Decimal(100),
            Frequency.WEEKLY,
            date(2026, 12, 1),
            PlanPolicy(Decimal(10), 24, (Frequency.MONTHLY,), 14),
            PolicyReason.FREQUENCY_NOT_ALLOWED,
        ),
        (
            Decimal(100),
            Frequency.MONTHLY,
            date(2026, 11, 23),
            STANDARD,
            PolicyReason.FIRST_DUE_OUTSIDE_WINDOW,
        ),
        (Decimal(100), Frequency.MONTHLY, date(2026, 12, 9), STANDARD, PolicyReason.FIRST_DUE_OUTSIDE_WINDOW),
    ],
)
def test_build_plan_names_the_rule_a_plan_breaks(
    instalment: Decimal, frequency: Frequency, first_due: date, policy: PlanPolicy, reason: PolicyReason
) -> None:
    with pytest.raises(PlanOutsidePolicy) as caught:
        build_plan(Decimal(1000), "USD", instalment, frequency, first_due, policy, TODAY)
    assert caught.value.reason is reason
    assert isinstance(caught.value, PlanError) and isinstance(caught.value, ValueError)


def test_the_window_is_checked_on_the_rolled_date() -> None:
    # Sat 5 Dec is inside a 11-day window, but it rolls to Mon 7 Dec, which is not.
    policy = PlanPolicy(Decimal(10), 24, ALL, 11)
    with pytest.raises(PlanOutsidePolicy) as caught:
        build_plan(Decimal(100), "USD", Decimal(50), Frequency.MONTHLY, date(2026, 12, 5), policy, TODAY)
    assert caught.value.reason is PolicyReason.FIRST_DUE_OUTSIDE_WINDOW


def test_the_term_is_exactly_max_term_months_from_the_first_payment() -> None:
    # Two months from 1 December: 1 December, 1 January and 1 February fit, a fourth does not.
    policy = PlanPolicy(Decimal(10), 2, ALL, 14)
    three = build_plan(Decimal(300), "USD", Decimal(100), Frequency.MONTHLY, date(2026, 12, 1), policy, TODAY)
    assert three.end_date == date(2027, 2, 1)
    with pytest.raises(PlanOutsidePolicy):
        build_plan(Decimal(400), "USD", Decimal(100), Frequency.MONTHLY, date(2026, 12, 1), policy, TODAY)


# --- offers --------------------------------------------------------------------------------


def test_an_offer_that_fits_is_accepted_from_the_first_business_day_after_today() -> None:
    result = evaluate_offer(Decimal(600), "USD", Decimal(50), Frequency.MONTHLY, STANDARD, date(2026, 11, 25))
    assert result.accepted is not None and result.reason is None
    assert result.accepted.first_due == date(2026, 11, 27)  # Thanksgiving (26th) skipped
    assert result.accepted.count == 12


def test_an_offer_over_too_long_a_term_gets_the_smallest_same_frequency_plan_that_fits() -> None:
    result = evaluate_offer(Decimal(5000), "USD", Decimal(50), Frequency.MONTHLY, STANDARD, TODAY)
    assert result.accepted is None and result.reason is PolicyReason.TERM_TOO_LONG
    monthly = [p for p in result.alternatives if p.frequency is Frequency.MONTHLY]
    assert [(p.regular_amount, p.count) for p in monthly] == [(Decimal("208.34"), 24)]
    weekly_fifty = [
        p for p in result.alternatives if p.frequency is Frequency.WEEKLY and p.regular_amount == 50
    ]
    assert weekly_fifty, "the same amount every week fits and is offered"


def test_an_offer_below_the_minimum_is_answered_with_plans_at_or_above_it() -> None:
    result = evaluate_offer(Decimal(100), "USD", Decimal(5), Frequency.MONTHLY, STANDARD, TODAY)
    assert result.reason is PolicyReason.BELOW_MINIMUM
    assert result.alternatives[0].frequency is Frequency.MONTHLY
    assert result.alternatives[0].regular_amount == Decimal(10)


def test_an_offer_at_a_frequency_not_allowed_is_converted_to_the_allowed_ones() -> None:
    policy = PlanPolicy(Decimal(10), 24, (Frequency.MONTHLY, Frequency.FORTNIGHTLY), 14)
    result = evaluate_offer(Decimal(2000), "USD", Decimal(60), Frequency.WEEKLY, policy, TODAY)
    assert result.reason is PolicyReason.FREQUENCY_NOT_ALLOWED
    assert {p.frequency for p in result.alternatives} == {Frequency.MONTHLY, Frequency.FORTNIGHTLY}
    # The closest are the same money per year: 60 x 52 = 260 x 12 = 120 x 26.
    assert {(p.frequency, p.regular_amount) for p in result.alternatives[:2]} == {
        (Frequency.MONTHLY, Decimal(260)),
        (Frequency.FORTNIGHTLY, Decimal(120)),
    }


def test_an_offer_of_the_whole_balance_is_paying_in_full() -> None:
    result = evaluate_offer(Decimal(300), "USD", Decimal(300), Frequency.MONTHLY, STANDARD, TODAY)
    assert result.reason is PolicyReason.ABOVE_BALANCE
    assert [[i.amount for i in p.instalments] for p in result.alternatives] == [[Decimal(300)]]


def test_a_first_due_date_outside_the_window_gets_the_same_offer_from_the_earliest_date() -> None:
    result = evaluate_offer(
        Decimal(600), "USD", Decimal(100), Frequency.MONTHLY, STANDARD, TODAY, first_due=date(2027, 1, 15)
    )
    assert result.reason is PolicyReason.FIRST_DUE_OUTSIDE_WINDOW
    best = result.alternatives[0]
    assert (best.regular_amount, best.frequency, best.first_due) == (
        Decimal(100),
        Frequency.MONTHLY,
        date(2026, 11, 25),
    )


def test_plan_options_go_from_short_to_the_longest_term() -> None:
    options = plan_options(Decimal(1200), "USD", STANDARD, TODAY)
    assert [(p.regular_amount, p.count) for p in options] == [
        (Decimal(200), 6),
        (Decimal(100), 12),
        (Decimal(50), 24),
    ]


def test_plan_options_for_a_small_balance_include_paying_in_full() -> None:
    options = plan_options(Decimal(30), "USD", STANDARD, TODAY)
    assert [p.count for p in options] == [1, 3]


# --- settlements ---------------------------------------------------------------------------


def test_settlement_offer_rounds_up_and_acceptance_follows_the_floor() -> None:
    settlement = settlement_offer(Decimal("100.01"), "USD", STANDARD)
    assert settlement is not None
    assert (settlement.amount, settlement.currency, settlement.percent) == (
        Decimal("85.01"),
        "USD",
        Decimal(85),
    )
    assert accept_settlement(Decimal(100), Decimal(70), STANDARD)
    assert not accept_settlement(Decimal(100), Decimal("69.99"), STANDARD)


def test_without_a_settlement_floor_there_is_no_offer_and_only_the_whole_balance_settles() -> None:
    policy = PlanPolicy(Decimal(10), 24, ALL, 14)
    assert settlement_offer(Decimal(100), "USD", policy) is None
    assert not accept_settlement(Decimal(100), Decimal(99), policy)
    assert accept_settlement(Decimal(100), Decimal(100), policy)


def test_the_settlement_offer_defaults_to_the_floor() -> None:
    policy = PlanPolicy(Decimal(10), 24, ALL, 14, settlement_floor_percent=Decimal(70))
    assert settlement_offer(Decimal(200), "USD", policy) == settlement_offer(
        Decimal(200), "USD", PlanPolicy(Decimal(10), 24, ALL, 14, Decimal(0), Decimal(70), Decimal(70))
    )


# --- policy validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"min_instalment": Decimal(-1)},
        {"frequencies": ()},
        {"frequencies": ("yearly",)},
        {"max_term_months": 0},
        {"first_payment_within_days": -1},
        {"down_payment_percent": Decimal(100)},
        {"settlement_floor_percent": Decimal(101)},
        {"settlement_floor_percent": Decimal(0)},
        {"settlement_floor_percent": Decimal(70), "settlement_offer_percent": Decimal(60)},
        {"settlement_offer_percent": Decimal(80)},
        {"country": "XX"},
        {"min_instalment": "10"},
    ],
)
def test_nonsense_policies_are_refused(changes: dict[str, object]) -> None:
    arguments: dict[str, object] = {
        "min_instalment": Decimal(10),
        "max_term_months": 24,
        "frequencies": ALL,
        "first_payment_within_days": 14,
        **changes,
    }
    with pytest.raises(InvalidPolicy):
        PlanPolicy(**arguments)  # type: ignore[arg-type]


def test_a_policy_from_configuration_values_is_normalised() -> None:
    policy = PlanPolicy(10, 24, ["weekly", "monthly"], 14, 0, 70, 85, "us")  # type: ignore[arg-type]
    assert policy.min_instalment == Decimal(10) and isinstance(policy.min_instalment, Decimal)
    assert policy.frequencies == (Frequency.WEEKLY, Frequency.MONTHLY)
    assert (policy.country, policy.preferred_frequency) == ("US", Frequency.MONTHLY)


# --- read-back -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "country", "locale"),
    [
        ("en", None, "en_US"),
        ("en", "GB", "en_GB"),
        ("en", "MX", "en_US"),
        ("es", None, "es_US"),
        ("es", "ES", "es_ES"),
        ("es", "MX", "es_MX"),
        ("es", "US", "es_US"),
        ("es-MX", None, "es_MX"),
        ("fr", None, "en_US"),
    ],
)
def test_the_locale_follows_language_and_country(language: str, country: str | None, locale: str) -> None:
    assert locale_for(language, country) == locale


def test_dates_read_back_in_full_in_each_language() -> None:
    assert format_date(date(2026, 12, 4), "en") == "Friday, 4 December 2026"
    assert format_date(date(2026, 12, 4), "es") == "viernes, 4 de diciembre de 2026"


def test_describe_plan_reads_back_a_plan_with_a_last_smaller_payment() -> None:
    plan = build_plan(
        Decimal("612.34"), "USD", Decimal(50), Frequency.MONTHLY, date(2026, 12, 4), STANDARD, TODAY
    )
    assert describe_plan(plan, "en") == (
        "12 payments of $50.00 every month, from Friday, 4 December 2026 to Thursday, 4 November 2027, "
        "plus a last payment of $12.34 on Monday, 6 December 2027; $612.34 in total."
    )
    spanish = describe_plan(plan, "es", "ES")
    assert spanish.startswith("12 pagos de 50,00")
    assert "cada mes, del viernes, 4 de diciembre de 2026 al jueves, 4 de noviembre de 2027" in spanish
    assert "y un último pago de 12,34" in spanish and spanish.endswith("en total.")


def test_describe_plan_uses_the_singular_for_one_payment() -> None:
    plan = build_plan(Decimal(80), "USD", Decimal(80), Frequency.MONTHLY, date(2026, 12, 4), STANDARD, TODAY)
    assert describe_plan(plan, "en") == "One payment of $80.00 on Friday, 4 December 2026."
    assert describe_plan(plan, "es", "MX") == "Un pago de USD80.00 el viernes, 4 de diciembre de 2026."


def test_describe_plan_mentions_the_down_payment_first() -> None:
    policy = PlanPolicy(Decimal(10), 24, ALL, 14, down_payment_percent=Decimal(20))
    plan = build_plan(Decimal(500), "USD", Decimal(200), Frequency.WEEKLY, date(2026, 12, 1), policy, TODAY)
    english = describe_plan(plan, "en")
    assert english.startswith(
        "A first payment of $100.00 on Tuesday, 1 December 2026, then 2 payments of $200.00"
    )
    assert "every week" in english
    spanish = describe_plan(plan, "es")
    assert spanish.startswith("Un primer pago de $100.00 el martes, 1 de diciembre de 2026, luego 2 pagos de")
    assert "cada semana" in spanish


def test_dates_rolled_together_by_a_long_holiday_stay_strictly_increasing() -> None:
    # Spring Festival 2026 in China: nothing is a business day from 14 to 23 February, so the
    # 16th and the 23rd would both roll to the 24th; the second goes to the next business day.
    policy = PlanPolicy(Decimal(10), 12, (Frequency.WEEKLY,), 14, country="CN")
    plan = build_plan(
        Decimal(400), "USD", Decimal(100), Frequency.WEEKLY, date(2026, 2, 9), policy, date(2026, 2, 5)
    )
    assert [i.due for i in plan.instalments] == [
        date(2026, 2, 9),
        date(2026, 2, 24),
        date(2026, 2, 25),
        date(2026, 3, 2),
    ]


def test_a_tiny_instalment_on_a_large_balance_is_refused_without_building_every_date() -> None:
    # With no minimum, 0.01 a week on a million would be 100 million dates: stop at the term.
    policy = PlanPolicy(Decimal(0), 24, ALL, 14)
    with pytest.raises(PlanOutsidePolicy) as caught:
        build_plan(Decimal("1000000.00"), "USD", CENT, Frequency.WEEKLY, date(2026, 12, 1), policy, TODAY)
    assert caught.value.reason is PolicyReason.TERM_TOO_LONG
    result = evaluate_offer(Decimal("1000000.00"), "USD", CENT, Frequency.WEEKLY, policy, TODAY)
    assert result.reason is PolicyReason.TERM_TOO_LONG and result.alternatives
