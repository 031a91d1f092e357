"""The funnel, the opener wordings compared (A/B/n) and where the bot loses people: pure functions
over :class:`~bot.ops.analytics.facts.ConversationFacts` (one row per conversation), each table also
as CSV text.

**The funnel** (:func:`funnel`): contacted → replied → verified → plan offered → plan created →
first instalment paid, per any combination of dimensions (:data:`DIMENSIONS`: creditor, channel,
language, opener wording, ISO week of ``started_at`` in the zone given). A stage counts the
conversations that reached it *or any later one* (an agent may verify a person or set up a plan
from the console, which the dialogue's own events do not show), so no stage is bigger than the
one before it. Each stage has its rate of the stage before and of the first stage.

**Conversations the person started** (no ``contacted_at``: they wrote first, or came back on their
own) are never mixed into the opener funnel: they would raise its reply rate with people nobody
contacted. They are counted in rows of their own (``origin == "inbound"``), whose first stage is
*replied* (everyone in them wrote) and whose *contacted* stage is left out; the opener comparison
leaves them out altogether.

Beside the stages each row has: opted out; escalated and the reasons (each reason counted once per
conversation); the time to a plan (``plan_created_at`` minus ``contacted_at``, or ``started_at``
for an inbound conversation: median and 90th percentile); and the plans kept (a payment and no
missed instalment), broken (an instalment missed) and not yet either.

**Opener wordings** (:func:`compare_openers`): see its docstring for the statistics.

**Losses** (:func:`losses`): per dialogue step (``last_step``), the conversations that stopped
after it (no plan, no opt-out, no escalation, and quiet for a while), fell back, or escalated.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from itertools import combinations
from typing import Any, Literal

from bot.ops.analytics.facts import ConversationFacts

__all__ = [
    "DIMENSIONS",
    "METRICS",
    "STAGES",
    "Cell",
    "Comparison",
    "FunnelRow",
    "LossRow",
    "OpenerReport",
    "OpenerRow",
    "Rate",
    "Stage",
    "Verdict",
    "compare_openers",
    "csv_text",
    "funnel",
    "funnel_csv",
    "holm",
    "iso_week",
    "losses",
    "losses_csv",
    "openers_csv",
    "reasons_csv",
    "two_proportions",
    "wilson",
    "wording_of",
]

#: The funnel's stages in order, with the words the pages use.
STAGES: tuple[tuple[str, str], ...] = (
    ("contacted", "Contacted"),
    ("replied", "Replied"),
    ("verified", "Verified"),
    ("plan_offered", "Plan offered"),
    ("plan_created", "Plan created"),
    ("first_payment", "First instalment paid"),
)
_STAGE_NAMES = tuple(name for name, _ in STAGES)
#: The fact (a time) that shows each stage was reached.
_STAGE_FIELD = {
    "contacted": "contacted_at",
    "replied": "replied_at",
    "verified": "verified_at",
    "plan_offered": "plan_offered_at",
    "plan_created": "plan_created_at",
    "first_payment": "first_payment_at",
}

Dimension = Literal["creditor", "channel", "language", "opener", "week"]
#: What the funnel can be split by.
DIMENSIONS: tuple[Dimension, ...] = ("creditor", "channel", "language", "opener", "week")
#: Shown for a conversation whose dimension is not known (or, for ``opener``, that no opener began).
UNKNOWN = "(unknown)"
NO_OPENER = "(none)"

Origin = Literal["opener", "inbound"]

#: The opener comparison's outcomes (a funnel stage each), with the words the pages use.
METRICS: tuple[tuple[str, str], ...] = (
    ("replied", "replied"),
    ("verified", "verified"),
    ("plan_created", "plan created"),
)
#: How a verdict says a wording does better on each metric.
_MORE_OFTEN = {"replied": "a reply", "verified": "a verified person", "plan_created": "a plan"}


# --- small pieces -------------------------------------------------------------------------------


def wording_of(facts: ConversationFacts) -> str | None:
    """The opener wording as ``"<language>:<id>"`` (``"es:warm"``), or ``None`` when no opener
    began the conversation. The facts may keep it as stored on the account (``"es:warm"``) or the
    id alone (``"warm"``, with the conversation's language)."""
    variant = facts.opener_variant
    if not variant or facts.contacted_at is None:
        return None
    if ":" in variant:
        return variant
    return f"{facts.language or UNKNOWN}:{variant}"


def iso_week(moment: datetime, zone: tzinfo) -> str:
    """The ISO week ``moment`` falls in, in ``zone`` (``"2026-W10"``)."""
    year, week, _ = moment.astimezone(zone).isocalendar()
    return f"{year}-W{week:02d}"


def _reached(facts: ConversationFacts, stage: str) -> bool:
    """Reached ``stage`` or any later one (see the module's docstring)."""
    later = _STAGE_NAMES[_STAGE_NAMES.index(stage) :]
    if stage == "contacted":
        return facts.contacted_at is not None
    return any(getattr(facts, _STAGE_FIELD[name]) is not None for name in later if name != "contacted")


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _quantile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (numpy's default); ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# --- the funnel ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One stage of one funnel row: how many reached it, and the rates (``None``: nothing to divide by)."""

    name: str
    label: str
    count: int
    #: Of the stage before (the first stage: ``None``).
    of_previous: float | None
    #: Of the row's first stage (contacted; for inbound rows, replied).
    of_start: float | None


@dataclass(frozen=True)
class FunnelRow:
    """The funnel of one group of conversations."""

    origin: Origin
    #: The group's value per dimension asked for, in the order asked: ``(("creditor", "Acme"),)``.
    group: tuple[tuple[str, str], ...]
    conversations: int
    #: The stages that apply (an inbound row has no *contacted*).
    stages: tuple[Stage, ...]
    opted_out: int
    escalated: int
    #: Reasons and how many conversations escalated for each, most frequent first.
    escalation_reasons: tuple[tuple[str, int], ...]
    #: From the first contact (or the conversation's start) to the plan.
    time_to_plan_median: timedelta | None
    time_to_plan_p90: timedelta | None
    plans_kept: int
    plans_broken: int
    plans_pending: int

    def stage(self, name: str) -> Stage | None:
        """The stage called ``name``, if this row has it."""
        return next((stage for stage in self.stages if stage.name == name), None)

    @property
    def label(self) -> str:
        """How the row is named on the pages: its group's values, and who started it."""
        who = "started by us" if self.origin == "opener" else "started by the person"
        values = ", ".join(value for _, value in self.group)
        return f"{values} ({who})" if values else who.capitalize()


def _dimension_value(facts: ConversationFacts, dimension: str, zone: tzinfo) -> str:
    if dimension == "week":
        return iso_week(facts.started_at, zone)
    if dimension == "opener":
        return wording_of(facts) or NO_OPENER
    if dimension not in ("creditor", "channel", "language"):
        raise ValueError(f"cannot split the funnel by {dimension!r} (one of {', '.join(DIMENSIONS)})")
    value = getattr(facts, dimension)
    return str(value) if value else UNKNOWN


def funnel(facts: Iterable[ConversationFacts], by: Sequence[str] = (), *, zone: tzinfo) -> list[FunnelRow]:
    """One row per group of ``by``'s values (any of :data:`DIMENSIONS`, in any combination; none:
    the whole), conversations the product opened first and those the person started after them,
    groups in order of their values. ``zone`` decides the ISO week of ``started_at``."""
    unknown = [dimension for dimension in by if dimension not in DIMENSIONS]
    if unknown:
        raise ValueError(f"cannot split the funnel by {unknown[0]!r} (one of {', '.join(DIMENSIONS)})")
    groups: dict[tuple[int, tuple[str, ...]], list[ConversationFacts]] = defaultdict(list)
    for item in facts:
        origin = 0 if item.contacted_at is not None else 1
        groups[(origin, tuple(_dimension_value(item, d, zone) for d in by))].append(item)
    return [
        _row("opener" if origin == 0 else "inbound", tuple(zip(by, values, strict=True)), members)
        for (origin, values), members in sorted(groups.items())
    ]


def _row(origin: Origin, group: tuple[tuple[str, str], ...], members: list[ConversationFacts]) -> FunnelRow:
    names = _STAGE_NAMES if origin == "opener" else _STAGE_NAMES[1:]
    labels = dict(STAGES)
    # The first stage is everyone in the row: contacted (opener rows) or wrote (inbound rows).
    counts = [len(members)] + [sum(1 for item in members if _reached(item, name)) for name in names[1:]]
    stages = tuple(
        Stage(name=name, label=labels[name], count=count,
              of_previous=None if index == 0 else _ratio(count, counts[index - 1]),
              of_start=_ratio(count, counts[0]))
        for index, (name, count) in enumerate(zip(names, counts, strict=True))
    )  # fmt: skip
    reasons: Counter[str] = Counter()
    for item in members:
        if item.escalated_at is not None or item.escalation_reasons:
            reasons.update(set(item.escalation_reasons) or {UNKNOWN})
    waits = []
    for item in members:
        begun = item.contacted_at or item.started_at
        if item.plan_created_at is not None and item.plan_created_at >= begun:
            waits.append((item.plan_created_at - begun).total_seconds())
    planned = [item for item in members if _reached(item, "plan_created")]
    broken = sum(1 for item in planned if item.plan_missed_at is not None)
    kept = sum(1 for item in planned if item.plan_missed_at is None and item.first_payment_at is not None)
    median, p90 = _quantile(waits, 0.5), _quantile(waits, 0.9)
    return FunnelRow(
        origin=origin, group=group, conversations=len(members), stages=stages,
        opted_out=sum(1 for item in members if item.opted_out_at is not None),
        escalated=sum(1 for item in members if item.escalated_at is not None or item.escalation_reasons),
        escalation_reasons=tuple(sorted(reasons.items(), key=lambda pair: (-pair[1], pair[0]))),
        time_to_plan_median=None if median is None else timedelta(seconds=round(median)),
        time_to_plan_p90=None if p90 is None else timedelta(seconds=round(p90)),
        plans_kept=kept, plans_broken=broken, plans_pending=len(planned) - kept - broken,
    )  # fmt: skip


# --- statistics ---------------------------------------------------------------------------------


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% with the default ``z``); ``(0, 1)`` with no
    trials. Unlike the textbook ``p ± z·se`` it stays inside 0..1 and is honest for small counts
    and rates near 0 or 1. 8 of 10 gives (0.490, 0.943)."""
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, not {successes} of {trials}")
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    margin = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    return max(0.0, centre - margin), min(1.0, centre + margin)


def _stats() -> Any:
    """``scipy.stats``, imported when first needed (it takes most of a second to load)."""
    from scipy import stats  # type: ignore[import-untyped]  # scipy 1.10 ships no type hints

    return stats


#: Fisher's exact test instead of the z-test when an expected cell of the 2x2 table is under this.
FISHER_BELOW = 5


def two_proportions(a: int, n: int, b: int, m: int) -> tuple[float, str]:
    """Two-sided p-value that ``a``/``n`` and ``b``/``m`` come from the same rate, and the test
    used: the pooled two-proportion z-test, or Fisher's exact test when any expected cell of the
    2x2 table is under :data:`FISHER_BELOW` (the z-test's normal approximation fails there)."""
    stats = _stats()
    if n <= 0 or m <= 0:
        return 1.0, "none"
    total, hits = n + m, a + b
    expected = [n * hits / total, n * (total - hits) / total, m * hits / total, m * (total - hits) / total]
    if min(expected) < FISHER_BELOW:
        _, p_value = stats.fisher_exact([[a, n - a], [b, m - b]], alternative="two-sided")
        return float(p_value), "fisher"
    pooled = hits / total
    se = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    if se == 0:
        return 1.0, "z"
    z = (a / n - b / m) / se
    return float(2 * stats.norm.sf(abs(z))), "z"


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (in the order given): compare each with alpha to keep the
    chance of *any* false "better" across the whole family at alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _per_group_needed(p1: float, p2: float, alpha: float, power: float) -> int | None:
    """Conversations per wording for a two-sided z-test at ``alpha`` to see ``p1`` vs ``p2`` with
    ``power`` (the usual normal-approximation formula); ``None`` when they are equal."""
    stats = _stats()
    if p1 == p2:
        return None
    z_alpha = float(stats.norm.isf(alpha / 2))
    z_beta = float(stats.norm.isf(1 - power))
    mean = (p1 + p2) / 2
    root = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_beta * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(root * root / (p1 - p2) ** 2)


# --- openers (A/B/n) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """A proportion with its Wilson interval."""

    successes: int
    trials: int
    rate: float | None
    low: float
    high: float

    @classmethod
    def of(cls, successes: int, trials: int, z: float = 1.96) -> Rate:
        low, high = wilson(successes, trials, z)
        return cls(successes, trials, _ratio(successes, trials), low, high)


@dataclass(frozen=True)
class OpenerRow:
    """One wording's conversations (opened by it) and its rates."""

    wording: str
    language: str
    variant: str
    contacted: int
    #: Per metric of :data:`METRICS`: ``{"replied": Rate, ...}`` (a dict kept read-only by convention).
    rates: dict[str, Rate]


@dataclass(frozen=True)
class Comparison:
    """One wording against another on one metric (same language), ``better`` the higher rate."""

    metric: str
    language: str
    better: str
    worse: str
    better_rate: float
    worse_rate: float
    test: str
    p_value: float
    #: Holm-adjusted over every comparison of the metric.
    adjusted: float
    significant: bool


@dataclass(frozen=True)
class Verdict:
    """What the page says about one metric in one language."""

    metric: str
    language: str
    sentence: str
    #: The significant comparisons (empty: nothing called).
    called: tuple[Comparison, ...]
    #: Roughly how many more conversations (all wordings together) before a call could be made;
    #: ``None`` when one is made, or no difference is seen at all.
    more_needed: int | None


@dataclass(frozen=True)
class OpenerReport:
    """Every wording's rates, every comparison made, and a verdict per metric and language."""

    rows: tuple[OpenerRow, ...]
    comparisons: tuple[Comparison, ...]
    verdicts: tuple[Verdict, ...]
    alpha: float
    min_trials: int


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def compare_openers(
    facts: Iterable[ConversationFacts],
    *,
    alpha: float = 0.05,
    min_trials: int = 30,
    power: float = 0.8,
) -> OpenerReport:
    """The opener wordings compared (A/B/n), per language.

    Method:

    - Only conversations an opener began (``contacted_at`` and ``opener_variant`` set) count; a
      wording is ``"<language>:<id>"``. For each wording and metric (replied, verified, plan
      created: a stage reached, as in the funnel) the rate of contacted conversations and its Wilson
      95% interval (:func:`wilson`).
    - Wordings are compared only within one language (people in different languages differ in more
      than the wording), pair by pair, and only when both have at least ``min_trials`` contacted
      conversations (below that, rates swing too much to be worth a test).
    - Each pair is tested two-sided with the pooled two-proportion z-test, or Fisher's exact test
      when an expected cell is under 5 (:func:`two_proportions`).
    - The p-values of one metric (all its pairs, all languages) are one family, corrected with Holm's
      method (:func:`holm`): a wording is named better only when its adjusted p-value is under
      ``alpha``; so looking at many pairs does not make a lucky one look real.
    - Otherwise the verdict is "not enough evidence yet", with roughly how many more conversations
      would be needed: wordings under ``min_trials`` up to it; and for the pair with the largest
      difference seen, the per-wording size a two-sided z-test at ``alpha / comparisons`` (Holm's
      strictest step) needs to see that difference with ``power`` (80%), less what each has.
      When every wording does exactly as well, no size would tell them apart and none is given.
    """
    grouped: dict[str, list[ConversationFacts]] = defaultdict(list)
    for item in facts:
        wording = wording_of(item)
        if wording is not None:
            grouped[wording].append(item)
    rows = []
    for wording in sorted(grouped):
        members = grouped[wording]
        language, _, variant = wording.partition(":")
        rates = {metric: Rate.of(sum(1 for item in members if _reached(item, metric)), len(members))
                 for metric, _ in METRICS}  # fmt: skip
        rows.append(OpenerRow(wording, language, variant, len(members), rates))
    languages = sorted({row.language for row in rows})
    comparisons: list[Comparison] = []
    verdicts: list[Verdict] = []
    for metric, label in METRICS:
        pairs: list[tuple[str, OpenerRow, OpenerRow, float, str]] = []
        for language in languages:
            ready = [row for row in rows if row.language == language and row.contacted >= min_trials]
            for first, second in combinations(ready, 2):
                one, two = first.rates[metric], second.rates[metric]
                p_value, test = two_proportions(one.successes, one.trials, two.successes, two.trials)
                pairs.append((language, first, second, p_value, test))
        adjusted = holm([pair[3] for pair in pairs])
        made = []
        for (language, first, second, p_value, test), corrected in zip(pairs, adjusted, strict=True):
            hi, lo = sorted((first, second), key=lambda row: (row.rates[metric].rate or 0.0, row.wording),
                            reverse=True)  # fmt: skip
            hi_rate, lo_rate = hi.rates[metric].rate or 0.0, lo.rates[metric].rate or 0.0
            made.append(Comparison(
                metric=metric, language=language, better=hi.wording, worse=lo.wording, better_rate=hi_rate,
                worse_rate=lo_rate, test=test, p_value=p_value, adjusted=corrected,
                significant=corrected < alpha and hi_rate > lo_rate,
            ))  # fmt: skip
        comparisons.extend(made)
        for language in languages:
            mine = [row for row in rows if row.language == language]
            verdicts.append(
                _verdict(metric, label, language, mine, made, alpha, min_trials, power, max(1, len(pairs)))
            )
    order = [metric for metric, _ in METRICS]
    verdicts.sort(key=lambda verdict: (verdict.language, order.index(verdict.metric)))
    return OpenerReport(tuple(rows), tuple(comparisons), tuple(verdicts), alpha, min_trials)


def _verdict(
    metric: str, label: str, language: str, rows: list[OpenerRow], made: list[Comparison],
    alpha: float, min_trials: int, power: float, family: int,
) -> Verdict:  # fmt: skip
    if len(rows) < 2:
        only = rows[0].wording if rows else language
        sentence = f"{language}: only one wording ({only}) was sent; nothing to compare."
        return Verdict(metric, language, sentence, (), None)
    called = tuple(c for c in made if c.language == language and c.significant)
    if called:
        parts = [
            f"{c.better} gets {_MORE_OFTEN[metric]} more often than {c.worse} ({_percent(c.better_rate)} vs "
            f"{_percent(c.worse_rate)}; p = {c.adjusted:.3g} after Holm's correction)"
            for c in called
        ]
        return Verdict(metric, language, f"{language}, {label}: " + "; ".join(parts) + ".", called, None)
    short = [row for row in rows if row.contacted < min_trials]
    more = sum(min_trials - row.contacted for row in short)
    # The largest difference seen between two wordings: how big must each be to tell it is real.
    by_rate = sorted(rows, key=lambda row: row.rates[metric].rate or 0.0)
    low, high = by_rate[0], by_rate[-1]
    needed = _per_group_needed(high.rates[metric].rate or 0.0, low.rates[metric].rate or 0.0,
                               alpha / family, power)  # fmt: skip
    if needed is not None:
        more = max(more, sum(max(0, needed - row.contacted) for row in (low, high)))
    sentence = f"{language}, {label}: not enough evidence yet to name a better wording"
    if short:
        names = ", ".join(f"{row.wording} has {row.contacted}" for row in short)
        sentence += f" (each needs at least {min_trials} contacted conversations: {names})"
    if needed is None and not short:
        sentence += "; the wordings do equally well so far."
        return Verdict(metric, language, sentence, (), None)
    if more > 0:
        sentence += f"; roughly {more} more conversations would be needed."
    else:
        sentence += "."
    return Verdict(metric, language, sentence, (), more if more > 0 else None)


# --- where the bot loses people -----------------------------------------------------------------


@dataclass(frozen=True)
class LossRow:
    """What happened to the conversations whose last dialogue step was ``step``."""

    step: str
    conversations: int
    #: No plan, no opt-out, no escalation, and quiet for ``quiet``; its share of all stopped ones.
    stopped: int
    stopped_share: float | None
    #: Had at least one fallback; share of all that did.
    fell_back: int
    fell_back_share: float | None
    escalated: int
    escalated_share: float | None


#: The step shown for a conversation with no dialogue step at all.
NO_STEP = "(no step)"


def losses(
    facts: Iterable[ConversationFacts], *, now: datetime, quiet: timedelta = timedelta(days=2)
) -> list[LossRow]:
    """Per last dialogue step: how many conversations stopped after it, fell back, or escalated,
    and each count's share of all of its kind; the steps where most stop first (then most
    fallbacks, escalations). A conversation with a message in the last ``quiet`` is not counted as
    stopped yet (the person may still answer)."""
    per_step: dict[str, list[ConversationFacts]] = defaultdict(list)
    for item in facts:
        per_step[item.last_step or NO_STEP].append(item)

    def stopped(item: ConversationFacts) -> bool:
        return (
            not _reached(item, "plan_created") and item.opted_out_at is None and item.escalated_at is None
            and not item.escalation_reasons and item.last_at <= now - quiet
        )  # fmt: skip

    def escalated(item: ConversationFacts) -> bool:
        return item.escalated_at is not None or bool(item.escalation_reasons)

    counts = {
        step: (len(members), sum(map(stopped, members)), sum(1 for i in members if i.fallbacks > 0),
               sum(map(escalated, members)))
        for step, members in per_step.items()
    }  # fmt: skip
    totals = [sum(values[k] for values in counts.values()) for k in (1, 2, 3)]
    rows = [
        LossRow(step=step, conversations=n, stopped=s, stopped_share=_ratio(s, totals[0]), fell_back=f,
                fell_back_share=_ratio(f, totals[1]), escalated=e, escalated_share=_ratio(e, totals[2]))
        for step, (n, s, f, e) in counts.items()
    ]  # fmt: skip
    return sorted(rows, key=lambda row: (-row.stopped, -row.fell_back, -row.escalated, row.step))


# --- CSV ----------------------------------------------------------------------------------------

#: A cell starting with one of these is read as a formula by spreadsheets (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | float | None


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int):
        return str(value)
    # Names come from outside (a creditor's, a step's): never let a spreadsheet run one.
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """A table as CSV text with a header row; text cells that a spreadsheet would run as a formula
    (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) get a leading ``'``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_cell(name) for name in header])
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())


def funnel_csv(rows: Sequence[FunnelRow], by: Sequence[str] = ()) -> str:
    """The funnel table: a row per group, each stage's count and rates, and the rest."""
    header: list[str] = ["started_by", *by, "conversations"]
    for name, _ in STAGES:
        header += [name, f"{name}_of_previous", f"{name}_of_start"]
    header += ["opted_out", "escalated", "time_to_plan_median_seconds", "time_to_plan_p90_seconds",
               "plans_kept", "plans_broken", "plans_pending"]  # fmt: skip
    body = []
    for row in rows:
        line: list[Cell] = [row.origin, *(value for _, value in row.group), row.conversations]
        for name, _ in STAGES:
            stage = row.stage(name)
            line += [None, None, None] if stage is None else [stage.count, stage.of_previous, stage.of_start]
        line += [
            row.opted_out,
            row.escalated,
            _seconds(row.time_to_plan_median),
            _seconds(row.time_to_plan_p90),
        ]
        line += [row.plans_kept, row.plans_broken, row.plans_pending]
        body.append(line)
    return csv_text(header, body)


def reasons_csv(rows: Sequence[FunnelRow], by: Sequence[str] = ()) -> str:
    """Escalation reasons per group: one line per group and reason."""
    body: list[list[Cell]] = [
        [row.origin, *(value for _, value in row.group), reason, count]
        for row in rows
        for reason, count in row.escalation_reasons
    ]
    return csv_text(["started_by", *by, "reason", "conversations"], body)


def openers_csv(report: OpenerReport) -> str:
    """One line per wording: contacted, and per metric the count, rate and its 95% interval."""
    header = ["wording", "language", "variant", "contacted"]
    for metric, _ in METRICS:
        header += [metric, f"{metric}_rate", f"{metric}_low", f"{metric}_high"]
    body = []
    for row in report.rows:
        line: list[Cell] = [row.wording, row.language, row.variant, row.contacted]
        for metric, _ in METRICS:
            rate = row.rates[metric]
            line += [rate.successes, rate.rate, rate.low, rate.high]
        body.append(line)
    return csv_text(header, body)


def losses_csv(rows: Sequence[LossRow]) -> str:
    """Where the bot loses people: one line per dialogue step."""
    header = ["step", "conversations", "stopped", "stopped_share", "fell_back", "fell_back_share",
              "escalated", "escalated_share"]  # fmt: skip
    return csv_text(header, ([r.step, r.conversations, r.stopped, r.stopped_share, r.fell_back,
                              r.fell_back_share, r.escalated, r.escalated_share] for r in rows))  # fmt: skip
