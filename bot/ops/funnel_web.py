"""The funnel pages of the ops console: the funnel, the opener wordings (A/B/n) and where the bot
loses people, each with its charts (SVG drawn on the server), the numbers in tables beside them and
CSV downloads.

- ``GET /console/ops/funnel?since=&until=&by=&creditor=&channel=&language=``: the funnel per group
  (``by``: creditor, channel, language, opener, week; repeated or comma-separated for a
  combination), time to a plan, plans kept and broken, escalations and why, the plan rate by week.
  Its charts: ``/funnel/chart.svg`` and ``/funnel/weekly.svg``; its tables:
  ``/funnel.csv?table=stages|plans|reasons|weeks`` (the same query).
- ``GET /console/ops/openers``: every wording's rates with 95% intervals and the verdicts;
  ``/openers/chart.svg``, ``/openers.csv``; ``POST /openers/retire`` and ``/openers/restore``.
- ``GET /console/ops/losses``: the dialogue steps after which conversations stop, fall back or
  escalate; ``/losses.csv``.

Dates are whole days in ``config.console.zone``, both ends included; by default the 28 days before
today (the clock's). A bad value is a 400 naming the parameter. The numbers come from the
conversations' facts (``bot.ops.analytics.conversations``), read a page at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, flash, redirect, render_template, request
from flask.typing import ResponseReturnValue

from bot.config import Config
from bot.console.web import safe_next
from bot.errors import InvalidRequest, NotFound
from bot.ops.analytics.conversations import MAX_LIMIT, FactsQuery, distinct_values, load_facts
from bot.ops.analytics.facts import ConversationFacts
from bot.ops.funnel import (
    DIMENSIONS,
    METRICS,
    STAGES,
    Cell,
    FunnelRow,
    compare_openers,
    csv_text,
    funnel,
    funnel_csv,
    losses,
    losses_csv,
    openers_csv,
    reasons_csv,
)
from bot.ops.web_common import ops_user
from bot.store.opener_stats import RetiredOpeners

if TYPE_CHECKING:
    from bot.ops.analytics.store import AnalyticsStore
    from bot.ops.web_common import OpsParts

__all__ = ["FunnelQuery", "load_all", "parse_query", "register"]

#: The default range: this many whole days before today.
DEFAULT_DAYS = 28
#: The longest range a page reads (the facts are read into memory).
MAX_DAYS = 3 * 366
#: At most this many conversations are read for one page (the page says when it stopped there).
MAX_CONVERSATIONS = 200_000
#: How long a conversation must be quiet before it counts as stopped (the losses page).
QUIET = timedelta(days=2)
CHANNELS = ("sms", "telegram", "email")
LANGUAGES = ("en", "es")
_CREDITOR = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DIMENSION_LABELS = {"creditor": "Creditor", "channel": "Channel", "language": "Language",
                     "opener": "Opener wording", "week": "Week"}  # fmt: skip


@dataclass(frozen=True)
class FunnelQuery:
    """What a funnel page shows: days ``since`` to ``until`` (both included, in the console's zone),
    the split (``by``) and the filters."""

    since: date
    until: date
    by: tuple[str, ...] = ()
    creditor: str | None = None
    channel: str | None = None
    language: str | None = None

    def args(self, **changes: object) -> dict[str, object]:
        """The query string's values (for links to the charts, the CSV and other pages)."""
        query = replace(self, **changes) if changes else self  # type: ignore[arg-type]
        values: dict[str, object] = {"since": query.since.isoformat(), "until": query.until.isoformat()}
        if query.by:
            values["by"] = ",".join(query.by)
        for name in ("creditor", "channel", "language"):
            value = getattr(query, name)
            if value:
                values[name] = value
        return values

    def string(self, **changes: object) -> str:
        """The query string (``since=...&until=...``)."""
        return urlencode(self.args(**changes))

    def facts_query(self, zone: ZoneInfo, offset: int = 0) -> FactsQuery:
        """The conversations that started in the range (midnight to midnight in ``zone``)."""
        return FactsQuery(
            since=datetime.combine(self.since, time(), zone),
            until=datetime.combine(self.until + timedelta(days=1), time(), zone),
            creditor=self.creditor, channel=self.channel, language=self.language,
            limit=MAX_LIMIT, offset=offset,
        )  # fmt: skip


def _day(args: Mapping[str, str], name: str, default: date) -> date:
    raw = (args.get(name) or "").strip()
    if not raw:
        return default
    if not _DATE.match(raw):
        raise InvalidRequest(f"{name} must be a date like 2026-03-01, not {raw[:20]!r}")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(f"{name} is not a date: {raw[:20]!r}") from None


def _choice(args: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    if raw not in allowed:
        raise InvalidRequest(f"{name} must be one of {', '.join(allowed)}")
    return raw


def parse_query(args: Mapping[str, str], by_values: list[str], today: date) -> FunnelQuery:
    """The page's query from its parameters (``by_values``: every ``by`` given); a bad one raises
    ``InvalidRequest`` naming it. No dates: the :data:`DEFAULT_DAYS` days before ``today``."""
    until = _day(args, "until", today - timedelta(days=1))
    since = _day(args, "since", until - timedelta(days=DEFAULT_DAYS - 1))
    if since > until:
        raise InvalidRequest("since must be on or before until")
    if (until - since).days >= MAX_DAYS:
        raise InvalidRequest(f"since to until may span at most {MAX_DAYS} days")
    by: list[str] = []
    for value in by_values:
        for name in (part.strip() for part in value.split(",")):
            if not name:
                continue
            if name not in DIMENSIONS:
                raise InvalidRequest(f"by must be among {', '.join(DIMENSIONS)}, not {name[:20]!r}")
            if name not in by:
                by.append(name)
    creditor = (args.get("creditor") or "").strip() or None
    if creditor is not None and not _CREDITOR.match(creditor):
        raise InvalidRequest("creditor must be a creditor's name (at most 128 characters)")
    return FunnelQuery(
        since=since, until=until, by=tuple(by), creditor=creditor,
        channel=_choice(args, "channel", CHANNELS), language=_choice(args, "language", LANGUAGES),
    )  # fmt: skip


def load_all(
    store: AnalyticsStore, query: FunnelQuery, zone: ZoneInfo
) -> tuple[list[ConversationFacts], bool]:
    """Every conversation of the range (a page at a time), and whether :data:`MAX_CONVERSATIONS`
    cut it short."""
    found: list[ConversationFacts] = []
    while len(found) < MAX_CONVERSATIONS:
        page = load_facts(store, query.facts_query(zone, offset=len(found)))
        found.extend(page)
        if len(page) < MAX_LIMIT:
            return found, False
    return found[:MAX_CONVERSATIONS], True


# --- what the templates show -------------------------------------------------------------------


def percent(value: float | None) -> str:
    """``0.4567`` as ``45.7%``; nothing to divide by as ``n/a``."""
    return "n/a" if value is None else f"{value * 100:.1f}%"


def duration(value: timedelta | None) -> str:
    """A wait in days, hours and minutes (``1 d 3 h``, ``2 h 5 min``, ``12 min``)."""
    if value is None:
        return "n/a"
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def _configured_wordings(config: Config) -> list[tuple[str, str]]:
    """Every (language, id) in the configuration (the general wordings and each creditor's)."""
    tables = [config.outreach.openers, *config.outreach.creditor_openers.values()]
    return sorted({(str(language), v.id) for table in tables for language, vs in table.items() for v in vs})


def _weekly_rows(facts: list[ConversationFacts], query: FunnelQuery, zone: ZoneInfo) -> list[FunnelRow]:
    by = [dimension for dimension in query.by if dimension != "week"] + ["week"]
    return [row for row in funnel(facts, by, zone=zone) if row.origin == "opener"]


def _csv(text: str, name: str) -> Response:
    response = Response(text, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _svg(data: bytes) -> Response:
    return Response(data, mimetype="image/svg+xml")


def _charts() -> ModuleType:
    """``bot.ops.charts``, imported on the first chart: matplotlib takes a while to load, and most
    processes that build the console never draw one."""
    from bot.ops import charts

    return charts


# --- the views ----------------------------------------------------------------------------------


def register(bp: Blueprint, parts: OpsParts) -> None:
    """Add the funnel, openers and losses views to the ops blueprint."""

    def zone() -> ZoneInfo:
        return ZoneInfo(parts.config.console.zone)

    def query() -> FunnelQuery:
        today = parts.clock.now().astimezone(zone()).date()
        return parse_query(request.args, request.args.getlist("by"), today)

    def facts_of(wanted: FunnelQuery) -> tuple[list[ConversationFacts], bool]:
        return load_all(parts.analytics, wanted, zone())

    def retired_openers() -> RetiredOpeners:
        return RetiredOpeners(parts.redis, parts.keys, parts.clock)

    def choices() -> dict[str, list[str]]:
        return {"creditors": distinct_values(parts.analytics, "creditor"), "channels": list(CHANNELS),
                "languages": list(LANGUAGES)}  # fmt: skip

    def page(template: str, wanted: FunnelQuery, **context: object) -> str:
        return render_template(
            template, q=wanted, percent=percent, duration=duration, dimensions=DIMENSIONS,
            dimension_labels=_DIMENSION_LABELS, stages=STAGES, metrics=METRICS,
            zone=parts.config.console.zone, choices=choices(), **context,
        )  # fmt: skip

    @bp.route("/funnel")
    def funnel_page() -> ResponseReturnValue:
        wanted = query()
        facts, cut = facts_of(wanted)
        rows = funnel(facts, wanted.by, zone=zone())
        return page("ops/funnel.html", wanted, rows=rows, weekly=_weekly_rows(facts, wanted, zone()),
                    conversations=len(facts), cut=cut)  # fmt: skip

    @bp.route("/funnel/chart.svg")
    def funnel_chart() -> ResponseReturnValue:
        wanted = query()
        facts, _ = facts_of(wanted)
        return _svg(
            _charts().funnel_chart(funnel(facts, wanted.by, zone=zone()), title=_title("Funnel", wanted))
        )

    @bp.route("/funnel/weekly.svg")
    def funnel_weekly_chart() -> ResponseReturnValue:
        wanted = query()
        facts, _ = facts_of(wanted)
        return _svg(_charts().weekly_chart(_weekly_rows(facts, wanted, zone()),
                                        title=_title("Plan rate by week", wanted)))  # fmt: skip

    @bp.route("/funnel.csv")
    def funnel_download() -> ResponseReturnValue:
        wanted = query()
        table = request.args.get("table", "stages")
        writers: dict[str, Callable[[list[ConversationFacts]], str]] = {
            "stages": lambda facts: funnel_csv(funnel(facts, wanted.by, zone=zone()), wanted.by),
            "plans": lambda facts: _plans_csv(funnel(facts, wanted.by, zone=zone()), wanted.by),
            "reasons": lambda facts: reasons_csv(funnel(facts, wanted.by, zone=zone()), wanted.by),
            "weeks": lambda facts: _weeks_csv(_weekly_rows(facts, wanted, zone())),
        }
        if table not in writers:
            raise InvalidRequest(f"table must be one of {', '.join(writers)}")
        facts, _ = facts_of(wanted)
        return _csv(writers[table](facts), f"funnel-{table}-{wanted.since}-{wanted.until}.csv")

    @bp.route("/openers")
    def openers_page() -> ResponseReturnValue:
        wanted = replace(query(), by=())
        facts, cut = facts_of(wanted)
        report = compare_openers(facts)
        retirements = retired_openers().retirements()
        configured = _configured_wordings(parts.config)
        by_wording = {row.wording: row for row in report.rows}
        wordings = sorted({*by_wording, *(f"{language}:{variant}" for language, variant in configured)})
        return page("ops/openers.html", wanted, report=report, rows=by_wording, wordings=wordings,
                    configured={f"{language}:{variant}" for language, variant in configured},
                    retirements=retirements, conversations=len(facts), cut=cut,
                    zone_info=zone())  # fmt: skip

    @bp.route("/openers/chart.svg")
    def openers_chart() -> ResponseReturnValue:
        wanted = replace(query(), by=())
        facts, _ = facts_of(wanted)
        return _svg(_charts().opener_chart(compare_openers(facts), title=_title("Opener wordings", wanted)))

    @bp.route("/openers.csv")
    def openers_download() -> ResponseReturnValue:
        wanted = replace(query(), by=())
        facts, _ = facts_of(wanted)
        return _csv(openers_csv(compare_openers(facts)), f"openers-{wanted.since}-{wanted.until}.csv")

    def wording_of_form() -> tuple[str, str]:
        language = (request.form.get("language") or "").strip()
        variant = (request.form.get("variant") or "").strip()
        if (language, variant) not in _configured_wordings(parts.config):
            raise NotFound(f"no opener wording {language[:8]}:{variant[:32]} in the configuration")
        return language, variant

    def back() -> ResponseReturnValue:
        return redirect(safe_next(request.form.get("next") or "/console/ops/openers"))

    @bp.route("/openers/retire", methods=["POST"])
    def openers_retire() -> ResponseReturnValue:
        language, variant = wording_of_form()
        reason = " ".join((request.form.get("reason") or "").split())
        if not reason:
            flash(f"Say why {language}:{variant} is retired: the reason is kept in the audit.", "error")
            return back()
        openers = retired_openers()
        if openers.retire(language, variant, ops_user().name, reason):
            retired = openers.retired()
            left = [wording for wording in _configured_wordings(parts.config)
                    if wording[0] == language and f"{wording[0]}:{wording[1]}" not in retired]  # fmt: skip
            message = f"{language}:{variant} is retired: new openers use the other {language} wordings."
            if not left:
                message = (f"{language}:{variant} is retired. Every {language} wording is retired now, so "
                           "outreach keeps using them all until one is restored.")  # fmt: skip
            flash(message, "ok")
        else:
            flash(f"{language}:{variant} was already retired.", "ok")
        return back()

    @bp.route("/openers/restore", methods=["POST"])
    def openers_restore() -> ResponseReturnValue:
        language, variant = wording_of_form()
        reason = request.form.get("reason") or ""
        if retired_openers().restore(language, variant, ops_user().name, reason):
            flash(f"{language}:{variant} is back in use for new openers.", "ok")
        else:
            flash(f"{language}:{variant} was not retired.", "ok")
        return back()

    @bp.route("/losses")
    def losses_page() -> ResponseReturnValue:
        wanted = replace(query(), by=())
        facts, cut = facts_of(wanted)
        rows = losses(facts, now=parts.clock.now(), quiet=QUIET)
        return page("ops/losses.html", wanted, rows=rows, conversations=len(facts), cut=cut,
                    quiet_days=QUIET.days)  # fmt: skip

    @bp.route("/losses.csv")
    def losses_download() -> ResponseReturnValue:
        wanted = replace(query(), by=())
        facts, _ = facts_of(wanted)
        rows = losses(facts, now=parts.clock.now(), quiet=QUIET)
        return _csv(losses_csv(rows), f"losses-{wanted.since}-{wanted.until}.csv")


def _title(what: str, query: FunnelQuery) -> str:
    split = f" by {', '.join(query.by)}" if query.by else ""
    return f"{what}{split}, {query.since.isoformat()} to {query.until.isoformat()}"


def _plans_csv(rows: list[FunnelRow], by: tuple[str, ...]) -> str:
    body = [
        [row.origin, *(value for _, value in row.group), _count(row, "plan_created"),
         _seconds(row.time_to_plan_median), _seconds(row.time_to_plan_p90), row.plans_kept, row.plans_broken,
         row.plans_pending]
        for row in rows
    ]  # fmt: skip
    header = ["started_by", *by, "plans_created", "time_to_plan_median_seconds", "time_to_plan_p90_seconds",
              "plans_kept", "plans_broken", "plans_pending"]  # fmt: skip
    return csv_text(header, body)


def _weeks_csv(rows: list[FunnelRow]) -> str:
    body: list[list[Cell]] = []
    for row in rows:
        group = dict(row.group)
        others = ", ".join(value for key, value in row.group if key != "week")
        planned = row.stage("plan_created")
        body.append([group["week"], others, _count(row, "contacted"), _count(row, "plan_created"),
                     planned.of_start if planned else None])  # fmt: skip
    return csv_text(["week", "group", "contacted", "plans_created", "plan_rate"], body)


def _count(row: FunnelRow, stage: str) -> int:
    found = row.stage(stage)
    return found.count if found is not None else 0


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())
