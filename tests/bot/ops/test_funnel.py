"""The funnel, the opener comparison and the losses, on hand-made conversations whose numbers are
known; the statistics against published values; the CSV's header and escaping; and the same funnel
read back from the analytics store on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.clock import Clock
from bot.ops.analytics.conversations import FactsQuery, load_facts, save_facts
from bot.ops.analytics.facts import ConversationFacts
from bot.ops.analytics.store import AnalyticsStore
from bot.ops.funnel import (
    FunnelRow,
    compare_openers,
    csv_text,
    funnel,
    funnel_csv,
    holm,
    iso_week,
    losses,
    losses_csv,
    openers_csv,
    reasons_csv,
    two_proportions,
    wilson,
    wording_of,
)

pytest_plugins = ["tests.fakes.postgres"]

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
NY = ZoneInfo("America/New_York")


def conversation(n: int, **fields: Any) -> ConversationFacts:
    """A conversation an opener began at ``T0`` (``contacted_at``) and that went no further."""
    values: dict[str, Any] = dict(
        conversation_id=f"acct-A{n}", account_id=f"A{n}", started_at=T0, last_at=T0, channel="sms",
        language="es", creditor="Capitol Mobile", opener_variant="warm", contacted_at=T0, replied_at=None,
        verified_at=None, plan_offered_at=None, plan_created_at=None, first_payment_at=None,
        plan_missed_at=None, opted_out_at=None, escalated_at=None, escalation_reasons=(), outcome=None,
        user_turns=0, fallbacks=0, low_confidence=0, last_step=None,
    )  # fmt: skip
    values.update(fields)
    return ConversationFacts(**values)


def reached(n: int, stage: str, **fields: Any) -> ConversationFacts:
    """A conversation that went as far as ``stage`` (every stage before it too), an hour apart."""
    order = ["replied_at", "verified_at", "plan_offered_at", "plan_created_at", "first_payment_at"]
    times = {name: T0 + timedelta(hours=i + 1) for i, name in enumerate(order[: order.index(stage) + 1])}
    times.update(fields)
    return conversation(n, **times)


def by_label(rows: list[FunnelRow]) -> dict[str, FunnelRow]:
    return {row.label: row for row in rows}


# --- the funnel ---------------------------------------------------------------------------------


def scripted() -> list[ConversationFacts]:
    """10 contacted: 6 replied, 4 verified, 3 offered, 2 plans, 1 paid; plus 2 the person started."""
    return [
        conversation(1), conversation(2), conversation(3, opted_out_at=T0 + timedelta(minutes=5)),
        conversation(4, escalated_at=T0, escalation_reasons=("hardship", "request_human")),
        reached(5, "replied_at"), reached(6, "replied_at", escalated_at=T0, escalation_reasons=("hardship",)),
        reached(7, "verified_at"), reached(8, "plan_offered_at"),
        reached(9, "plan_created_at", plan_missed_at=T0 + timedelta(days=30)),
        reached(10, "first_payment_at"),
        conversation(11, contacted_at=None, opener_variant=None, replied_at=T0),
        conversation(12, contacted_at=None, opener_variant=None, replied_at=T0, verified_at=T0,
                     plan_created_at=T0 + timedelta(hours=2)),
    ]  # fmt: skip


def test_each_stage_counts_the_conversations_that_reached_it_with_its_rates() -> None:
    rows = by_label(funnel(scripted(), zone=NY))
    opener = rows["Started by us"]
    assert [(s.name, s.count) for s in opener.stages] == [
        ("contacted", 10), ("replied", 6), ("verified", 4), ("plan_offered", 3), ("plan_created", 2),
        ("first_payment", 1),
    ]  # fmt: skip
    replied, verified = opener.stage("replied"), opener.stage("verified")
    assert replied is not None and verified is not None
    assert (replied.of_previous, replied.of_start) == (0.6, 0.6)
    assert verified.of_previous == pytest.approx(4 / 6) and verified.of_start == pytest.approx(0.4)
    assert opener.stage("contacted").of_previous is None  # type: ignore[union-attr]
    assert (opener.conversations, opener.opted_out, opener.escalated) == (10, 1, 2)
    assert opener.escalation_reasons == (("hardship", 2), ("request_human", 1))


def test_conversations_the_person_started_have_their_own_row_without_a_contacted_stage() -> None:
    rows = funnel(scripted(), zone=NY)
    assert [row.origin for row in rows] == ["opener", "inbound"]
    inbound = by_label(rows)["Started by the person"]
    assert inbound.stage("contacted") is None
    assert [(s.name, s.count) for s in inbound.stages][:2] == [("replied", 2), ("verified", 1)]
    assert inbound.stage("plan_created").of_start == 0.5  # type: ignore[union-attr]
    # Their time to a plan runs from their own first message.
    assert inbound.time_to_plan_median == timedelta(hours=2)


def test_a_later_stage_implies_the_earlier_ones() -> None:
    # A plan set up by an agent in the console: the dialogue never saw a verification.
    [row] = funnel([conversation(1, replied_at=T0, plan_created_at=T0 + timedelta(hours=1))], zone=NY)
    assert [s.count for s in row.stages] == [1, 1, 1, 1, 1, 0]


def test_time_to_plan_is_the_median_and_90th_percentile_from_the_first_contact() -> None:
    facts = [reached(n, "plan_created_at", plan_created_at=T0 + timedelta(hours=n)) for n in range(1, 11)]
    [row] = funnel(facts, zone=NY)
    assert row.time_to_plan_median == timedelta(hours=5, minutes=30)
    assert row.time_to_plan_p90 == timedelta(hours=9, minutes=6)
    assert funnel([conversation(1)], zone=NY)[0].time_to_plan_median is None


def test_plans_are_kept_broken_or_neither_yet() -> None:
    facts = [
        reached(1, "first_payment_at"),
        reached(2, "first_payment_at", plan_missed_at=T0 + timedelta(days=40)),
        reached(3, "plan_created_at", plan_missed_at=T0 + timedelta(days=30)),
        reached(4, "plan_created_at"),
        conversation(5),
    ]
    [row] = funnel(facts, zone=NY)
    assert (row.plans_kept, row.plans_broken, row.plans_pending) == (1, 2, 1)


def test_the_funnel_splits_by_any_combination_of_dimensions() -> None:
    facts = [
        conversation(1, creditor="Acme", channel="sms"),
        reached(2, "replied_at", creditor="Acme", channel="email"),
        reached(3, "replied_at", creditor="Bolt", channel="sms", opener_variant="es:plain"),
        conversation(4, creditor=None, channel="sms", language="en"),
    ]
    rows = funnel(facts, ["creditor", "channel"], zone=NY)
    assert [(row.group, row.conversations) for row in rows] == [
        ((("creditor", "(unknown)"), ("channel", "sms")), 1),
        ((("creditor", "Acme"), ("channel", "email")), 1),
        ((("creditor", "Acme"), ("channel", "sms")), 1),
        ((("creditor", "Bolt"), ("channel", "sms")), 1),
    ]
    openers = {dict(row.group)["opener"]: row.conversations for row in funnel(facts, ["opener"], zone=NY)}
    assert openers == {"es:warm": 2, "es:plain": 1, "en:warm": 1}
    with pytest.raises(ValueError, match="cannot split the funnel by 'colour'"):
        funnel(facts, ["colour"], zone=NY)


def test_weeks_are_iso_weeks_in_the_zone_given() -> None:
    # Monday 2 March 2026, 03:00 UTC is still Sunday 1 March in New York: ISO week 9 there.
    early = datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc)
    assert iso_week(early, timezone.utc) == "2026-W10"
    assert iso_week(early, NY) == "2026-W09"
    rows = funnel([conversation(1, started_at=early), conversation(2)], ["week"], zone=NY)
    assert [(dict(row.group)["week"], row.conversations) for row in rows] == [
        ("2026-W09", 1),
        ("2026-W10", 1),
    ]
    assert iso_week(datetime(2027, 1, 1, 12, tzinfo=timezone.utc), NY) == "2026-W53"


def test_the_wording_is_language_and_id_however_the_facts_keep_it() -> None:
    assert wording_of(conversation(1, opener_variant="warm", language="en")) == "en:warm"
    assert wording_of(conversation(1, opener_variant="es:plain", language="en")) == "es:plain"
    assert wording_of(conversation(1, opener_variant="warm", language=None)) == "(unknown):warm"
    assert wording_of(conversation(1, contacted_at=None)) is None
    assert wording_of(conversation(1, opener_variant=None)) is None


def test_no_conversations_no_rows() -> None:
    assert funnel([], ["creditor"], zone=NY) == []
    assert losses([], now=T0) == []
    assert compare_openers([]).rows == ()


# --- statistics ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [(8, 10, 0.4902, 0.9433), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (50, 100, 0.4038, 0.5962),
     (1, 1, 0.2065, 1.0)],
)  # fmt: skip
def test_wilson_intervals_match_published_values(
    successes: int, trials: int, low: float, high: float
) -> None:
    got = wilson(successes, trials)
    assert got == pytest.approx((low, high), abs=5e-4)


def test_wilson_with_no_trials_knows_nothing_and_refuses_impossible_counts() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(11, 10)


def test_two_proportions_uses_the_z_test_or_fishers_for_small_counts() -> None:
    p_value, test = two_proportions(30, 100, 10, 100)
    assert test == "z" and p_value == pytest.approx(0.000407, rel=1e-2)
    # Fisher's exact test, from a 2x2 table scipy's docs and R agree on: 1/10 vs 5/10 -> p = 0.1409.
    p_value, test = two_proportions(1, 10, 5, 10)
    assert test == "fisher" and p_value == pytest.approx(0.1409, abs=1e-3)
    assert two_proportions(0, 0, 3, 10) == (1.0, "none")


def test_holm_adjusts_step_down_and_keeps_the_order_given() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


# --- openers ------------------------------------------------------------------------------------


def arm(start: int, wording: str, contacted: int, **outcomes: int) -> list[ConversationFacts]:
    """``contacted`` conversations of ``wording``; the first ``outcomes[stage]`` reached that stage."""
    language, _, variant = wording.partition(":")
    facts = []
    for i in range(contacted):
        fields: dict[str, Any] = {"language": language, "opener_variant": variant}
        for stage, count in outcomes.items():
            if i < count:
                fields[f"{stage}_at"] = T0 + timedelta(hours=1)
        facts.append(conversation(start + i, **fields))
    return facts


def test_each_wording_has_its_rates_with_wilson_intervals() -> None:
    report = compare_openers(
        arm(0, "en:warm", 10, replied=8, verified=5, plan_created=2) + arm(100, "en:plain", 5)
    )
    rows = {row.wording: row for row in report.rows}
    warm = rows["en:warm"]
    assert (warm.language, warm.variant, warm.contacted) == ("en", "warm", 10)
    replied = warm.rates["replied"]
    assert (replied.successes, replied.trials, replied.rate) == (8, 10, 0.8)
    assert (replied.low, replied.high) == pytest.approx((0.490, 0.943), abs=1e-3)
    assert warm.rates["plan_created"].successes == 2
    assert rows["en:plain"].rates["replied"].rate == 0.0


def test_a_big_real_difference_is_called_better() -> None:
    report = compare_openers(
        arm(0, "es:warm", 200, replied=120, plan_created=40)
        + arm(1000, "es:plain", 200, replied=60, plan_created=38)
    )
    replied = next(v for v in report.verdicts if v.metric == "replied" and v.language == "es")
    assert replied.called and replied.called[0].better == "es:warm" and replied.called[0].worse == "es:plain"
    assert "es:warm gets a reply more often than es:plain (60.0% vs 30.0%" in replied.sentence
    assert replied.more_needed is None
    # 40 vs 38 plans of 200: no call, and an honest guess of how many more it would take.
    plans = next(v for v in report.verdicts if v.metric == "plan_created")
    assert not plans.called and "not enough evidence yet" in plans.sentence
    assert plans.more_needed is not None and plans.more_needed > 10_000
    assert f"roughly {plans.more_needed} more conversations" in plans.sentence


def test_a_small_sample_is_not_called_however_different_it_looks() -> None:
    report = compare_openers(arm(0, "en:warm", 12, replied=10) + arm(100, "en:plain", 12, replied=1))
    replied = next(v for v in report.verdicts if v.metric == "replied")
    assert not replied.called and not report.comparisons  # under the minimum: not even tested
    assert (
        "each needs at least 30 contacted conversations: en:plain has 12, en:warm has 12" in replied.sentence
    )
    assert replied.more_needed == 36
    # With a lower minimum the same counts are tested (and the difference is called); where a count
    # is too small for the normal approximation (no verification at all), Fisher's test is used.
    tested = compare_openers(arm(0, "en:warm", 12, replied=10) + arm(100, "en:plain", 12, replied=1),
                             min_trials=10)  # fmt: skip
    tests = {c.metric: c.test for c in tested.comparisons}
    assert tests == {"replied": "z", "verified": "fisher", "plan_created": "fisher"}
    assert next(v for v in tested.verdicts if v.metric == "replied").called


def test_holm_keeps_a_borderline_difference_from_being_called_among_many_comparisons() -> None:
    # 50/100 vs 36/100 has p ~ 0.047 alone: called with two wordings, not among four (six pairs).
    two = compare_openers(arm(0, "en:a", 100, replied=50) + arm(200, "en:b", 100, replied=36))
    [pair] = [c for c in two.comparisons if c.metric == "replied"]
    assert pair.p_value < 0.05 and pair.significant
    four = compare_openers(
        arm(0, "en:a", 100, replied=50) + arm(200, "en:b", 100, replied=36)
        + arm(400, "en:c", 100, replied=43) + arm(600, "en:d", 100, replied=44)
    )  # fmt: skip
    same = next(
        c for c in four.comparisons if c.metric == "replied" and {c.better, c.worse} == {"en:a", "en:b"}
    )
    assert same.p_value == pytest.approx(pair.p_value) and same.adjusted > 0.05 and not same.significant
    assert not next(v for v in four.verdicts if v.metric == "replied").called


def test_wordings_are_compared_only_within_a_language() -> None:
    report = compare_openers(arm(0, "en:warm", 100, replied=90) + arm(200, "es:warm", 100, replied=10))
    assert report.comparisons == ()
    assert all("only one wording" in v.sentence for v in report.verdicts)


def test_equal_wordings_say_so_rather_than_ask_for_more() -> None:
    report = compare_openers(arm(0, "en:a", 50, replied=20) + arm(100, "en:b", 50, replied=20))
    verdict = next(v for v in report.verdicts if v.metric == "replied")
    assert "do equally well so far" in verdict.sentence and verdict.more_needed is None


def test_conversations_the_person_started_are_left_out_of_the_opener_comparison() -> None:
    facts = [*arm(0, "en:a", 5), conversation(99, contacted_at=None, replied_at=T0)]
    assert [row.contacted for row in compare_openers(facts).rows] == [5]


# --- losses -------------------------------------------------------------------------------------


def test_losses_count_stops_fallbacks_and_escalations_per_last_step_most_stops_first() -> None:
    old = T0 - timedelta(days=5)
    facts = [
        conversation(1, last_step="utter_ask_dob", last_at=old),
        conversation(2, last_step="utter_ask_dob", last_at=old, fallbacks=2),
        conversation(3, last_step="utter_ask_dob", last_at=T0),  # still talking: not stopped yet
        conversation(4, last_step="payment_plan_form", last_at=old),
        reached(5, "plan_created_at", last_step="payment_plan_form", last_at=old),  # a plan: not lost
        conversation(6, last_step="payment_plan_form", last_at=old, escalated_at=old,
                     escalation_reasons=("hardship",), fallbacks=1),
        conversation(7, last_step="payment_plan_form", last_at=old, opted_out_at=old),
        conversation(8, last_step=None, last_at=old),
    ]  # fmt: skip
    rows = losses(facts, now=T0)
    assert [(r.step, r.conversations, r.stopped, r.fell_back, r.escalated) for r in rows] == [
        ("utter_ask_dob", 3, 2, 1, 0),
        ("payment_plan_form", 4, 1, 1, 1),
        ("(no step)", 1, 1, 0, 0),
    ]
    assert rows[0].stopped_share == 0.5 and rows[0].fell_back_share == 0.5
    assert rows[1].escalated_share == 1.0 and rows[2].escalated_share == 0.0


# --- CSV ----------------------------------------------------------------------------------------


def parsed(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_has_a_header_and_escapes_what_a_spreadsheet_would_run() -> None:
    text = csv_text(["name", "n", "rate", "none"], [["=HYPERLINK(\"x\")", 3, 0.5, None], ["+1", -2, 1.0, "@a"],
                                                     ["-x", 0, 0.25, "plain, with comma"]])  # fmt: skip
    assert parsed(text) == [
        ["name", "n", "rate", "none"],
        ['\'=HYPERLINK("x")', "3", "0.5000", ""],
        ["'+1", "-2", "1.0000", "'@a"],
        ["'-x", "0", "0.2500", "plain, with comma"],
    ]


def test_every_table_downloads_with_its_header() -> None:
    facts = [*scripted(), conversation(50, creditor="=cmd|' /C calc'!A0")]
    rows = funnel(facts, ["creditor"], zone=NY)
    table = parsed(funnel_csv(rows, ["creditor"]))
    assert table[0][:5] == ["started_by", "creditor", "conversations", "contacted", "contacted_of_previous"]
    assert table[1][:2] == ["opener", "'=cmd|' /C calc'!A0"]
    capitol = next(line for line in table if line[1] == "Capitol Mobile" and line[0] == "opener")
    assert capitol[table[0].index("replied")] == "6" and capitol[table[0].index("first_payment")] == "1"
    assert capitol[table[0].index("plans_kept")] == "1" and capitol[table[0].index("plans_broken")] == "1"
    inbound = next(line for line in table if line[0] == "inbound")
    assert inbound[table[0].index("contacted")] == ""
    assert parsed(reasons_csv(rows, ["creditor"]))[:3] == [
        ["started_by", "creditor", "reason", "conversations"],
        ["opener", "Capitol Mobile", "hardship", "2"],
        ["opener", "Capitol Mobile", "request_human", "1"],
    ]
    openers = parsed(openers_csv(compare_openers(arm(0, "en:warm", 10, replied=8))))
    assert openers[0][:6] == ["wording", "language", "variant", "contacted", "replied", "replied_rate"]
    assert openers[1][:8] == ["en:warm", "en", "warm", "10", "8", "0.8000", "0.4902", "0.9433"]
    lost = parsed(losses_csv(losses([conversation(1, last_step="-utter", last_at=T0 - timedelta(days=9))],
                                    now=T0)))  # fmt: skip
    assert lost == [
        ["step", "conversations", "stopped", "stopped_share", "fell_back", "fell_back_share", "escalated",
         "escalated_share"],
        ["'-utter", "1", "1", "1.0000", "0", "", "0", ""],
    ]  # fmt: skip


# --- from the store (SQLite and PostgreSQL) -----------------------------------------------------


@pytest.fixture
def store(analytics_database: str) -> Iterator[AnalyticsStore]:
    store = AnalyticsStore(analytics_database, clock=Clock(T0))
    store.migrate()
    yield store
    store.close()


def test_the_funnel_of_stored_conversations_equals_that_of_the_conversations(store: AnalyticsStore) -> None:
    facts = scripted()
    save_facts(store, facts)
    loaded = load_facts(store, FactsQuery(since=T0 - timedelta(days=1), limit=500))
    assert len(loaded) == len(facts)
    assert funnel(loaded, ["opener", "week"], zone=NY) == funnel(facts, ["opener", "week"], zone=NY)
    assert compare_openers(loaded) == compare_openers(facts)
