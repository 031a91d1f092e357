"""The NLU inbox pages of the ops console (``/console/ops/nlu``): what people wrote that the bot did
not understand, grouped by similarity (``bot.ops.nlu_inbox``), with a form to label a message with
the right intent (or a new one) into the review file, and one to dismiss a group.

- ``GET /console/ops/nlu``: the groups, biggest first; filters (GET, no script needed): since (a
  date, by default 30 days back), language, reason. Only scrubbed texts are shown: what the page
  offers to write is exactly what would be written, and ops can edit it (a name the scrubber
  cannot know, an entity the bot marked wrongly) before labelling.
- ``POST /console/ops/nlu/label``: appends the example to ``ops.review_file`` and hides the message;
  a duplicate or a conflict is refused with the reason (a flash message), nothing written.
- ``POST /console/ops/nlu/dismiss``: hides a group's messages (not worth labelling).

The intents offered are the domain's (``rasa.project_dir``/domain.yml, read again only when it
changes); without a project there (tests, a bare configuration folder) the shipped one is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import yaml
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bot.config import Config
from bot.errors import InvalidRequest
from bot.ops import nlu_inbox
from bot.ops.nlu_inbox import REASONS, Done, Group, InboxState, LabelRefused, Misread
from bot.ops.stories import DEFAULT_DOMAIN
from bot.ops.web_common import ops_user

if TYPE_CHECKING:
    from bot.ops.web_common import OpsParts

__all__ = ["project_dir", "register"]

#: The newest messages read per page (the grouping compares every pair of distinct texts).
LIMIT = 2000
#: How alike two texts of a group are at least (cosine similarity of character n-grams).
THRESHOLD = 0.5
#: Examples shown per group.
EXAMPLES = 5
#: Groups shown per page (the biggest).
MAX_GROUPS = 100
#: The default of the "since" filter.
DEFAULT_DAYS = 30
REASON_NAMES = {
    nlu_inbox.FALLBACK: "fallback",
    nlu_inbox.LOW_CONFIDENCE: "low confidence",
    nlu_inbox.CORRECTED: "corrected",
}
LANGUAGES = {"en": "English", "es": "Spanish"}
_KEY = re.compile(r"[0-9a-f]{64}")
_MAX_KEYS = 5000


def project_dir(config: Config) -> Path:
    """The Rasa project the intents come from: ``rasa.project_dir``, else the shipped one."""
    candidate = config.path(config.rasa.project_dir)
    return candidate if (candidate / "domain.yml").is_file() else DEFAULT_DOMAIN.parent


@dataclass(frozen=True)
class _Domain:
    intents: tuple[str, ...]
    entities: frozenset[str]


class _DomainReader:
    """The domain's intents and entities, read again only when domain.yml changes."""

    def __init__(self) -> None:
        self._seen: tuple[Path, int] | None = None
        self._domain = _Domain((), frozenset())

    def __call__(self, path: Path) -> _Domain:
        try:
            stamp = (path, path.stat().st_mtime_ns)
        except OSError:
            return _Domain((), frozenset())
        if stamp != self._seen:
            content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            intents = [next(iter(i)) if isinstance(i, dict) else str(i) for i in content.get("intents") or []]
            entities = [
                next(iter(e)) if isinstance(e, dict) else str(e) for e in content.get("entities") or []
            ]
            self._domain = _Domain(tuple(str(i) for i in intents), frozenset(str(e) for e in entities))
            self._seen = stamp
        return self._domain


def _since(value: str | None, zone: ZoneInfo, today: date) -> tuple[date, datetime]:
    if value:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise InvalidRequest("since: a date like 2026-03-01") from None
    else:
        day = today - timedelta(days=DEFAULT_DAYS)
    return day, datetime.combine(day, time(0), zone).astimezone(timezone.utc)


def _confidence(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _example_row(misread: Misread, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "key": misread.key,
        "time": misread.at.astimezone(zone).strftime("%a %-d %b %Y %H:%M"),
        "channel": misread.channel or "",
        "language": LANGUAGES.get(misread.language or "", misread.language or ""),
        "intent": misread.intent or "(none)",
        "confidence": _confidence(misread.confidence),
        "reasons": ", ".join(REASON_NAMES[r] for r in REASONS if r in misread.reasons),
        "text": misread.scrubbed,
        "annotated": misread.annotated,
        "meant": misread.meant,
    }


def _group_view(group: Group, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "key": group.key,
        "count": group.count,
        "representative": group.representative,
        "examples": [_example_row(m, zone) for m in group.examples],
        "text_keys": group.keys,
        "languages": ", ".join(LANGUAGES.get(lang, lang) for lang in group.languages) or "not known",
        "intents": ", ".join(f"{name} ({n})" for name, n in group.intents),
        "reasons": ", ".join(f"{REASON_NAMES[r]} ({n})" for r, n in group.reasons),
        "meant": group.meant,
        "first_seen": group.first_seen.astimezone(zone).strftime("%a %-d %b %Y %H:%M"),
        "last_seen": group.last_seen.astimezone(zone).strftime("%a %-d %b %Y %H:%M"),
    }


def _back() -> str:
    target = request.form.get("back") or ""
    if (
        target.startswith("/console/ops/nlu")
        and not target.startswith("/console/ops/nlu/")
        and "\\" not in target
    ):
        return target
    return url_for("ops.nlu")


def _keys(values: list[str]) -> list[str]:
    keys = [v for v in (value.strip() for value in values) if v]
    if len(keys) > _MAX_KEYS or not all(_KEY.fullmatch(k) for k in keys):
        raise InvalidRequest("key: not a message of the inbox")
    return keys


def register(bp: Blueprint, parts: OpsParts) -> None:
    """Add the NLU inbox's views to the ops blueprint."""
    config = parts.config
    zone = ZoneInfo(config.console.zone)
    review_file = config.path(config.ops.review_file)
    domain = _DomainReader()

    def state() -> InboxState:
        return InboxState(parts.redis, parts.keys)

    def nlu_files(project: Path) -> list[Path]:
        folders = {project / "data" / "nlu", review_file.parent}
        found = {p for folder in folders if folder.is_dir() for p in folder.iterdir()}
        return sorted(
            p for p in found if p.suffix in (".yml", ".yaml") and p.resolve() != review_file.resolve()
        )

    @bp.route("/nlu")
    def nlu() -> ResponseReturnValue:
        now = parts.clock.now()
        since_day, since = _since(request.args.get("since"), zone, now.astimezone(zone).date())
        language = request.args.get("language") or ""
        reason = request.args.get("reason") or ""
        if language not in ("", *LANGUAGES):
            raise InvalidRequest("language: choose one of the options")
        if reason not in ("", *REASONS):
            raise InvalidRequest("reason: choose one of the options")
        handled = state().handled()
        misreads = nlu_inbox.misunderstood(
            parts.analytics,
            low_confidence=config.ops.low_confidence,
            since=since,
            limit=LIMIT,
            exclude=handled,
        )
        shown = [
            m
            for m in misreads
            if (not language or m.language == language) and (not reason or reason in m.reasons)
        ]
        groups = nlu_inbox.group(shown, threshold=THRESHOLD, examples=EXAMPLES)
        project = project_dir(config)
        intents = sorted(i for i in domain(project / "domain.yml").intents if not i.startswith("EXTERNAL_"))
        return render_template(
            "ops/nlu_inbox.html",
            me=ops_user(),
            zone=config.console.zone,
            groups=[_group_view(g, zone) for g in groups[:MAX_GROUPS]],
            more_groups=max(0, len(groups) - MAX_GROUPS),
            messages_shown=len(shown),
            handled=len(handled),
            intents=intents,
            since=since_day.isoformat(),
            language=language,
            reason=reason,
            languages=LANGUAGES,
            reasons=[(r, REASON_NAMES[r]) for r in REASONS],
            low_confidence=config.ops.low_confidence,
            review_file=config.ops.review_file,
            back=request.full_path if request.query_string else request.path,
        )

    @bp.route("/nlu/label", methods=["POST"])
    def nlu_label() -> ResponseReturnValue:
        text = request.form.get("text") or ""
        if len(text) > 2 * nlu_inbox.MAX_EXAMPLE:
            raise InvalidRequest(f"text: at most {nlu_inbox.MAX_EXAMPLE} characters")
        chosen = (request.form.get("new_intent") or "").strip() or (request.form.get("intent") or "").strip()
        keys = _keys(request.form.getlist("key"))
        if not chosen:
            flash("Choose an intent, or type the name of a new one.", "error")
            return redirect(_back())
        project = project_dir(config)
        known = domain(project / "domain.yml")
        me = ops_user()
        now = parts.clock.now()
        try:
            result = nlu_inbox.label(
                review_file,
                text,
                chosen,
                by=me.name,
                now=now,
                known_intents=set(known.intents),
                nlu_files=nlu_files(project),
                known_entities=set(known.entities) or None,
            )
        except LabelRefused as exc:
            flash(f"Not added: {exc}", "error")
            return redirect(_back())
        done = Done(nlu_inbox.LABELLED, result.intent, me.name, now)
        state().mark([*keys, nlu_inbox.text_key(result.text)], done)
        message = (
            f"Added '{result.text}' to {result.intent} in {config.ops.review_file}; "
            "run debtbot validate, then train."
        )
        if result.new_intent:
            message += (
                f" {result.intent} is a new intent: add it to domain.yml's intents and give it "
                "responses/rules before training."
            )
        flash(message, "ok")
        return redirect(_back())

    @bp.route("/nlu/dismiss", methods=["POST"])
    def nlu_dismiss() -> ResponseReturnValue:
        keys = _keys(request.form.getlist("key"))
        if not keys:
            raise InvalidRequest("key: no message to dismiss")
        marked = state().mark(keys, Done(nlu_inbox.DISMISSED, None, ops_user().name, parts.clock.now()))
        flash(f"Dismissed {marked} message text(s): the inbox no longer shows them.", "ok")
        return redirect(_back())
