"""The review pages of the ops console (``/console/ops/review``).

- ``GET /review``: the conversations (``bot.ops.analytics.conversations``), filtered by plain GET
  parameters (dates in ``console.zone``, channel, language, creditor, opener wording, outcome,
  escalated, opted out, had a fallback, low confidence, length, tag, reviewed), newest first, a
  page at a time. A filter that cannot be read is a 400 naming it.
- ``GET /review/<id>``: one conversation turn by turn (``bot.ops.review``), its facts, its tags.
- ``POST /review/<id>/tags`` (add), ``/tags/remove``, ``/reviewed`` (``reviewed=yes|no``),
  ``/story`` (*Save as test story*: ``rasa_project/tests/`` under the configuration's folder);
  each redirects back with a message.

The pages show what people wrote (ops need it to judge the bot); nothing of it is logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bot.console.handoff import Outcome
from bot.errors import NotFound
from bot.ops.analytics.conversations import (
    FactsQuery,
    ReviewError,
    count_facts,
    distinct_values,
    load_facts,
    load_one,
    mark_reviewed,
    tag,
    untag,
    valid_tag,
)
from bot.ops.analytics.facts import ConversationFacts
from bot.ops.review import conversation_turns, save_test_story
from bot.ops.stories import StoryError
from bot.ops.web_common import ops_user

if TYPE_CHECKING:
    from bot.ops.web_common import OpsParts

__all__ = ["ending", "parse_filters", "register"]

logger = logging.getLogger(__name__)

#: Conversations per page.
PAGE_SIZE = 50
#: As the agents' console accepts them (``bot.console.web``): Rasa sender ids we make.
CONVERSATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:~@+-]{0,199}$")
CHANNELS = ("sms", "telegram", "email")
LANGUAGES = ("en", "es")
OUTCOMES = tuple(outcome.value for outcome in Outcome)
#: Creditor names and opener wordings in a filter: what the product stores.
_NAME = re.compile(r"^[\w .:&'@+-]{1,128}$")
_YES = {"yes": True, "no": False}
MAX_TURNS = 100_000
#: Where *Save as test story* writes, under the configuration's folder.


def _conversation(conversation_id: str) -> str:
    if not CONVERSATION_ID.match(conversation_id):
        raise NotFound("no such conversation")
    return conversation_id


def _date(args: Mapping[str, str], name: str, label: str) -> date | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ReviewError(f"{label}: {raw[:20]!r} is not a date (YYYY-MM-DD)") from None


def _choice(args: Mapping[str, str], name: str, label: str, allowed: tuple[str, ...]) -> str | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    if raw not in allowed:
        raise ReviewError(f"{label}: {raw[:40]!r} is not one of {', '.join(allowed)}")
    return raw


def _name(args: Mapping[str, str], name: str, label: str) -> str | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    if not _NAME.match(raw):
        raise ReviewError(f"{label}: {raw[:40]!r} is not a name this filter knows")
    return raw


def _yes_no(args: Mapping[str, str], name: str, label: str) -> bool | None:
    raw = (args.get(name) or "").strip().lower()
    if not raw:
        return None
    if raw not in _YES:
        raise ReviewError(f"{label}: say yes or no, not {raw[:20]!r}")
    return _YES[raw]


def _number(args: Mapping[str, str], name: str, label: str, *, least: int, most: int) -> int | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not least <= int(raw) <= most:
        raise ReviewError(f"{label}: {raw[:20]!r} is not a whole number from {least} to {most}")
    return int(raw)


def parse_filters(args: Mapping[str, str], zone: ZoneInfo) -> tuple[FactsQuery, int]:
    """The query the review list's GET parameters ask for, and the page (from 1). Dates are whole
    days in ``zone``, both ends included. Raises :class:`ReviewError` naming the filter."""
    start = _date(args, "from", "From")
    end = _date(args, "to", "To")
    if start and end and start > end:
        raise ReviewError("From: the first day is after the last (To)")
    min_turns = _number(args, "min_turns", "Messages from", least=0, most=MAX_TURNS)
    max_turns = _number(args, "max_turns", "Messages to", least=0, most=MAX_TURNS)
    if min_turns is not None and max_turns is not None and min_turns > max_turns:
        raise ReviewError("Messages from: more than Messages to")
    raw_tag = (args.get("tag") or "").strip()
    try:
        chosen_tag = valid_tag(raw_tag) if raw_tag else None
    except ReviewError as exc:
        raise ReviewError(f"Tag: {exc}") from None
    page = _number(args, "page", "Page", least=1, most=1_000_000) or 1
    query = FactsQuery(
        since=datetime.combine(start, time.min, tzinfo=zone) if start else None,
        until=datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone) if end else None,
        channel=_choice(args, "channel", "Channel", CHANNELS),
        language=_choice(args, "language", "Language", LANGUAGES),
        creditor=_name(args, "creditor", "Creditor"),
        opener_variant=_name(args, "opener", "Opener wording"),
        outcome=_choice(args, "outcome", "Outcome", OUTCOMES),
        escalated=_yes_no(args, "escalated", "Escalated"),
        opted_out=_yes_no(args, "opted_out", "Opted out"),
        had_fallback=_yes_no(args, "fallback", "Had a fallback"),
        low_confidence=_yes_no(args, "low_confidence", "Low confidence"),
        min_turns=min_turns,
        max_turns=max_turns,
        tag=chosen_tag,
        reviewed=_yes_no(args, "reviewed", "Reviewed"),
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    return query, page


#: The list's GET parameters (kept in the pagination links).
FILTERS = (
    "from", "to", "channel", "language", "creditor", "opener", "outcome", "escalated", "opted_out",
    "fallback", "low_confidence", "min_turns", "max_turns", "tag", "reviewed",
)  # fmt: skip


def ending(facts: ConversationFacts) -> str:
    """How the conversation ended, in a few words (closed, escalated and why, opted out, a plan)."""
    ends = []
    if facts.outcome:
        ends.append("closed: " + facts.outcome.replace("_", " "))
    if facts.escalated_at:
        reasons = ", ".join(reason.replace("_", " ") for reason in facts.escalation_reasons)
        ends.append(f"escalated ({reasons})" if reasons else "escalated")
    if facts.opted_out_at:
        ends.append("opted out")
    if facts.plan_created_at:
        ends.append("plan created")
    return "; ".join(ends)


def register(bp: Blueprint, parts: OpsParts) -> None:
    """Add the review views to the ops blueprint."""
    config = parts.config
    zone = ZoneInfo(config.console.zone)
    threshold = config.ops.low_confidence

    def render(template: str, **context: Any) -> str:
        # The console's context processor (``me``, ``zone``) serves only its own blueprint.
        return render_template(template, me=ops_user(), zone=config.console.zone, **context)

    def when(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""

    @bp.get("/review")
    def review_list() -> ResponseReturnValue:
        store = parts.analytics
        query, page = parse_filters(request.args, zone)
        conversations = load_facts(store, query)
        total = count_facts(store, query)
        current = {name: request.args.get(name, "").strip() for name in FILTERS}
        kept = {name: value for name, value in current.items() if value}

        def page_url(number: int) -> str:
            return url_for("ops.review_list") + "?" + urlencode({**kept, "page": number})

        choices = {
            "creditors": distinct_values(store, "creditor"),
            "openers": distinct_values(store, "opener_variant"),
            "tags": distinct_values(store, "tag"),
        }
        return render(
            "ops/review_list.html", conversations=conversations, total=total, page=page,
            pages=max(1, -(-total // PAGE_SIZE)), page_url=page_url, filters=current, choices=choices,
            channels=CHANNELS, languages=LANGUAGES, outcomes=OUTCOMES, when=when, threshold=threshold,
            ending=ending,
        )  # fmt: skip

    @bp.get("/review/<conversation_id>")
    def review_conversation(conversation_id: str) -> ResponseReturnValue:
        conversation_id = _conversation(conversation_id)
        store = parts.analytics
        facts = load_one(store, conversation_id)
        turns = conversation_turns(store, conversation_id, low_confidence=threshold)
        if facts is None and not turns:
            raise NotFound("no such conversation")
        return render(
            "ops/review_conversation.html", cid=conversation_id, facts=facts, turns=turns, when=when,
            threshold=threshold, ending=ending,
        )  # fmt: skip

    def back(conversation_id: str) -> ResponseReturnValue:
        return redirect(url_for("ops.review_conversation", conversation_id=conversation_id))

    @bp.post("/review/<conversation_id>/tags")
    def review_tag(conversation_id: str) -> ResponseReturnValue:
        conversation_id = _conversation(conversation_id)
        try:
            added = tag(parts.analytics, conversation_id, request.form.get("tag", ""), ops_user().name,
                        parts.clock.now())  # fmt: skip
        except ReviewError as exc:
            flash(f"Tag not added: {exc}", "error")
            return back(conversation_id)
        name = valid_tag(request.form.get("tag", ""))
        flash(f"Tagged {name!r}." if added else f"It was already tagged {name!r}.", "ok")
        return back(conversation_id)

    @bp.post("/review/<conversation_id>/tags/remove")
    def review_untag(conversation_id: str) -> ResponseReturnValue:
        conversation_id = _conversation(conversation_id)
        try:
            removed = untag(parts.analytics, conversation_id, request.form.get("tag", ""), ops_user().name,
                            parts.clock.now())  # fmt: skip
        except ReviewError as exc:
            flash(f"Tag not removed: {exc}", "error")
            return back(conversation_id)
        flash("Tag removed." if removed else "It did not have that tag.", "ok")
        return back(conversation_id)

    @bp.post("/review/<conversation_id>/reviewed")
    def review_mark(conversation_id: str) -> ResponseReturnValue:
        conversation_id = _conversation(conversation_id)
        choice = request.form.get("reviewed", "yes")
        if choice not in _YES:
            raise ReviewError("reviewed: say yes or no")
        mark_reviewed(
            parts.analytics, conversation_id, ops_user().name, parts.clock.now(), reviewed=_YES[choice]
        )
        flash("Marked reviewed." if _YES[choice] else "Marked not reviewed.", "ok")
        return back(conversation_id)

    @bp.post("/review/<conversation_id>/story")
    def review_story(conversation_id: str) -> ResponseReturnValue:
        conversation_id = _conversation(conversation_id)
        accounts: Any = getattr(parts, "accounts", None)
        try:
            # The configured Rasa project's tests/, where `debtbot test` and `rasa test` find it.
            path = save_test_story(
                parts.analytics, conversation_id, accounts, config.path(config.rasa.project_dir) / "tests"
            )
        except StoryError as exc:
            flash(f"No test story saved: {exc}", "error")
            return back(conversation_id)
        shown = path.relative_to(config.base_dir) if path.is_relative_to(config.base_dir) else path
        logger.info(
            "ops: %s saved conversation %s as the test story %s", ops_user().name, conversation_id, shown
        )
        flash(f"Saved as the test story {shown}. Run rasa test (debtbot test) to check it.", "ok")
        return back(conversation_id)
