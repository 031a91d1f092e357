"""The NLU inbox: what people wrote that the bot did not understand, grouped, and labelled into
the review file (Rasa NLU data that ``debtbot validate`` checks before it is trained).

:func:`misunderstood`
    Reads Rasa's own event log (the SQL event broker's ``events`` table, ``RASA_EVENTS``) in
    batches ordered by id, following each conversation, and returns the person's messages that
    the bot did not understand. A message counts for one or more reasons (:data:`REASONS`):

    ``fallback``
        Its intent is ``nlu_fallback`` (the FallbackClassifier was not sure enough: the
        two-stage fallback asked "did you mean...?").
    ``low_confidence``
        The confidence of its best intent (the best one other than ``nlu_fallback``) is under
        ``low_confidence`` (``ops.low_confidence``): the bot answered, but unsure.
    ``corrected``
        The bot's prediction was later shown to be wrong, by the dialogue of this project
        (``rasa_project``: the two-stage fallback, whose first stage is
        ``dialogue/actions/fallback.py`` "Sorry, just to check: do you want to ...?" with the
        buttons ``/<intent>`` and ``/deny``):

        - the bot asked "did you mean ...?" about the message (``action_two_stage_fallback`` or
          ``action_default_ask_affirmation``) and the person said no (their next message's
          intent is ``deny`` or ``out_of_scope``, typed or the button); or
        - the bot's next action after the message was a fallback although the NLU had
          accepted its intent (``action_default_fallback``, ``utter_default``, or a rephrase:
          the RulePolicy's core fallback), i.e. the dialogue could not go on from what the NLU
          made of it.

        When the person then confirms a meaning (the ``/<intent>`` button or a typed "yes" to
        the question, or a rephrasing the bot understood), that intent is kept as
        :attr:`Misread.meant`: the label ops most likely want.

    Not counted: the product's own trigger intents (``EXTERNAL: ...`` texts, ``is_external``
    metadata, ``EXTERNAL_*`` intents), buttons' payloads and the product's ``/intent``
    messages (``/crisis``), empty texts, and messages written while an agent had taken the
    conversation over (``pause`` ... ``resume``: the bot was not answering them). A row whose
    JSON cannot be read is skipped. With ``since``, the scan starts near the first event of
    that time (a binary search over ids, with an hour's slack for clocks that disagree), so a
    page for the last days does not read the whole table.

:func:`group`
    Groups similar messages: TF-IDF over character n-grams within words (``char_wb``, 2-4
    characters: robust to typos, SMS spelling and both languages) of each distinct scrubbed
    text (accents folded, digits as ``0``), cosine similarity, and complete-linkage clustering
    cut at ``1 - threshold``: any two distinct texts of a group are at least ``threshold``
    similar. Inputs are put in a canonical order first, so the same messages always make the
    same groups, in the same order (biggest first).

:func:`scrub`
    What identifies a person, replaced before anything is shown or written to training data,
    by fictional values of the same shape (as the shipped NLU data and
    :func:`bot.ops.stories.anonymise` do, so an example still reads like what people write and
    an annotated ``[date](date)`` stays a date): emails -> ``person1@example.com``; phone
    numbers -> ``555-01xx`` numbers (the fiction range) in the same layout; dates with a year
    before 2010 (a birth date; later ones are payment dates and stay) -> 14 July 1985
    (:data:`bot.ops.stories.FAKE_DATE_OF_BIRTH`) written the same way; runs of six or more
    digits (card, account numbers) -> other digits; Telegram handles -> ``@person_handle``.
    Amounts stay: they identify nobody and they carry the intent ("I can pay 50 a month").
    Names cannot be told from words: the page shows the text that will be written, for ops to
    edit. ``scrub`` is idempotent: a scrubbed text is its own scrub, which is how ``debtbot
    validate`` finds an example whose scrubbing was left undone.

:func:`label`
    Appends an example under an intent to the review file (Rasa 3.x YAML, one block per
    intent), under a lock and atomically; refuses duplicates and conflicts (:class:`LabelRefused`).

:class:`InboxState`
    Which messages ops have handled (labelled or dismissed), in Redis, by a hash of the scrubbed
    text (never the text itself), so the inbox hides them.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import heapq
import json
import math
import os
import re
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa  # type: ignore[import-untyped]  # 1.4, pinned by Rasa: no stubs
import yaml

from bot.errors import InvalidRequest
from bot.ops.analytics.schema import RASA_EVENTS
from bot.ops.stories import FAKE_DATE_OF_BIRTH, annotate
from dialogue.language import detect_language

if TYPE_CHECKING:
    import redis

    from bot.ops.analytics.store import AnalyticsStore
    from bot.store.connection import Keys

__all__ = [
    "CORRECTED",
    "FALLBACK",
    "LOW_CONFIDENCE",
    "REASONS",
    "Detail",
    "Done",
    "Group",
    "InboxState",
    "LabelRefused",
    "LabelResult",
    "Misread",
    "find_details",
    "group",
    "label",
    "misunderstood",
    "normalise_example",
    "read_examples",
    "scrub",
    "text_key",
    "valid_intent_name",
]

FALLBACK = "fallback"
LOW_CONFIDENCE = "low_confidence"
CORRECTED = "corrected"
#: Why a message is in the inbox, in the order the page lists them.
REASONS = (FALLBACK, LOW_CONFIDENCE, CORRECTED)

NLU_FALLBACK = "nlu_fallback"
#: The dialogue's fallbacks: the two-stage fallback and its stages, the core fallback.
_FALLBACK_ACTIONS = frozenset(
    {
        "action_two_stage_fallback",
        "action_default_ask_affirmation",
        "action_default_ask_rephrase",
        "action_default_fallback",
        "utter_ask_rephrase",
        "utter_default",
    }
)
#: The actions that ask the person about their last message ("did you mean ...?", "say it
#: another way"): their next message answers the question.
_ASKING_ACTIONS = frozenset({"action_two_stage_fallback", "action_default_ask_affirmation",
                             "action_default_ask_rephrase", "utter_ask_rephrase"})  # fmt: skip
_DENIALS = frozenset({"deny", "out_of_scope"})
_AFFIRM = "affirm"
_EXTERNAL_PREFIX = "EXTERNAL: "

#: Rows read per statement.
BATCH = 1000
#: How far before ``since`` the scan starts (Rasa servers' clocks and the ids' order may disagree).
_SINCE_SLACK = timedelta(hours=1)


# --- texts ------------------------------------------------------------------------------------------

_ENTITY = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")


def _strip_entities(text: str) -> str:
    return _ENTITY.sub(r"\1", text)


def normalise_example(text: str) -> str:
    """Entity annotations reduced to their text, lower case, white space collapsed: how two
    examples are compared (here, and by ``debtbot validate``)."""
    return " ".join(_strip_entities(text).casefold().split())


def text_key(text: str) -> str:
    """The id of a message's text in the inbox's state: the SHA-256 of its scrubbed, normalised
    form (no text is kept; the same words give the same key whatever their case or entities)."""
    return hashlib.sha256(normalise_example(scrub(text)).encode("utf-8")).hexdigest()


# --- scrubbing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Detail:
    """Something in a text that identifies a person: its kind, where, and what replaces it."""

    kind: str
    start: int
    end: int
    replacement: str


EMAIL = "email"
PHONE = "phone number"
BIRTH_DATE = "date of birth"
LONG_NUMBER = "card or account number"
HANDLE = "Telegram handle"

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_FICTIONAL_EMAIL = re.compile(r"@example\.(?:com|org|net)$", re.IGNORECASE)
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{8,15}|(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{3}\)|\d{3})[\s.-]?\d{3}[\s.-]?\d{4})(?!\w)"
)
#: 555-0100 to 555-0199: the numbers kept for fiction (they ring nobody).
_FICTIONAL_PHONE = re.compile(r"55501\d\d$")
_HANDLE = re.compile(r"(?<![\w@.])@([A-Za-z][A-Za-z0-9_]{4,31})(?!\w)")
_FAKE_HANDLE = "person_handle"
_LONG_NUMBER = re.compile(r"(?<![\w$£€.,-])(?:\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}|\d{6,})(?![\w]|[.,]\d)")
_FAKE_DIGITS = "1234567890"
#: Dates from this year on are payment dates or recent events (no adult was born then): kept.
_RECENT_YEAR = 2010


def _month_names() -> dict[str, tuple[int, str]]:
    """Month name -> (number, ``en``/``es``/``abbr``)."""
    names: dict[str, tuple[int, str]] = {}
    for language, words in (
        ("en", "january february march april may june july august september october november december"),
        ("es", "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"),
    ):
        for number, name in enumerate(words.split(), start=1):
            names.setdefault(name, (number, language))
    abbreviations = (
        "jan 1 feb 2 mar 3 apr 4 jun 6 jul 7 aug 8 sep 9 sept 9 oct 10 nov 11 dec 12 ene 1 abr 4 ago 8 dic 12"
    )
    pairs = [*abbreviations.split(), "setiembre", "9"]
    names.update({name: (int(number), "abbr") for name, number in zip(pairs[::2], pairs[1::2], strict=True)})
    return names


_MONTHS = _month_names()
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")(\.?)"
_ORDINAL = r"(st|nd|rd|th|º|o)?"
_DAY_MONTH_YEAR = re.compile(
    rf"(?<!\w)(\d{{1,2}}){_ORDINAL}(\s*(?:of\s+|de\s+|-\s*)?){_MONTH}(,?\s*(?:de\s+|del\s+)?)(\d{{4}})(?!\w)",
    re.IGNORECASE,
)
_MONTH_DAY_YEAR = re.compile(
    rf"(?<!\w){_MONTH}(\s*)(\d{{1,2}}){_ORDINAL}(,?\s*)(\d{{4}})(?!\w)", re.IGNORECASE
)
_YMD = re.compile(r"(?<![\w/.-])(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?![\w/]|[.-]\d)")
_NUMERIC_DATE = re.compile(r"(?<![\w/.-])(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?![\w/]|[.-]\d)")


def _pad(value: int, written: str) -> str:
    return f"{value:02d}" if written.startswith("0") or len(written) == 2 else str(value)


def _birth_year(year: int) -> bool:
    return year < _RECENT_YEAR


def _like(fake: str, written: str) -> str:
    if written.isupper() and len(written) > 1:
        return fake.upper()
    if written[:1].isupper():
        return fake.capitalize()
    return fake


def _month_like(written: str) -> str:
    month = FAKE_DATE_OF_BIRTH.month
    _, language = _MONTHS[written.lower()]
    if language == "abbr":
        spanish = written.lower() in ("ene", "abr", "ago", "dic", "setiembre")
        name = ("julio" if spanish else "july")[:3]
    else:
        name = "julio" if language == "es" else "july"
    assert month == 7  # the names above are July's
    return _like(name, written)


def _date_details(text: str) -> Iterator[Detail]:
    fake = FAKE_DATE_OF_BIRTH
    for m in _DAY_MONTH_YEAR.finditer(text):
        day, ordinal, between, month, dot, before_year, year = m.groups()
        if _valid(int(year), _MONTHS[month.lower()][0], int(day)) and _birth_year(int(year)):
            new = f"{fake.day}{ordinal or ''}{between}{_month_like(month)}{dot}{before_year}{fake.year}"
            yield Detail(BIRTH_DATE, m.start(), m.end(), new)
    for m in _MONTH_DAY_YEAR.finditer(text):
        month, dot, between, day, ordinal, before_year, year = m.groups()
        if _valid(int(year), _MONTHS[month.lower()][0], int(day)) and _birth_year(int(year)):
            new = f"{_month_like(month)}{dot}{between}{fake.day}{ordinal or ''}{before_year}{fake.year}"
            yield Detail(BIRTH_DATE, m.start(), m.end(), new)
    for m in _YMD.finditer(text):
        year, mark, month, day = m.groups()
        if _valid(int(year), int(month), int(day)) and _birth_year(int(year)):
            new = f"{fake.year}{mark}{_pad(fake.month, month)}{mark}{_pad(fake.day, day)}"
            yield Detail(BIRTH_DATE, m.start(), m.end(), new)
    for m in _NUMERIC_DATE.finditer(text):
        first, mark, second, year = m.groups()
        full_year = int(year) if len(year) == 4 else (1900 if int(year) > 30 else 2000) + int(year)
        # Day first only when the first number cannot be a month (the accounts are American).
        day_first = int(first) > 12
        month, day = (int(second), int(first)) if day_first else (int(first), int(second))
        if not (_valid(full_year, month, day) and _birth_year(full_year)):
            continue
        one, two = (fake.day, fake.month) if day_first else (fake.month, fake.day)
        fake_year = str(fake.year) if len(year) == 4 else f"{fake.year % 100:02d}"
        new = f"{_pad(one, first)}{mark}{_pad(two, second)}{mark}{fake_year}"
        yield Detail(BIRTH_DATE, m.start(), m.end(), new)


def _valid(year: int, month: int, day: int) -> bool:
    try:
        datetime(year, month, day)
    except ValueError:
        return False
    return True


def _fake_phone(written: str, index: int) -> str:
    digits = sum(c.isdigit() for c in written)
    fake = ("1" * digits + f"20255501{index % 100:02d}")[-digits:]
    pool = iter(fake)
    return "".join(next(pool) if c.isdigit() else c for c in written)


def find_details(text: str) -> list[Detail]:
    """What in ``text`` identifies a person and is not yet a fictional value, in order, not
    overlapping (the first kind found wins: emails, phone numbers, dates, long numbers,
    handles). Empty for a scrubbed text."""
    found: list[Detail] = []
    taken: list[tuple[int, int]] = []  # fictional values too: no other kind is read inside them

    def add(detail: Detail) -> None:
        if all(detail.end <= start or detail.start >= end for start, end in taken):
            taken.append((detail.start, detail.end))
            if detail.replacement != text[detail.start : detail.end]:
                found.append(detail)

    emails = 0
    for m in _EMAIL.finditer(text):
        if _FICTIONAL_EMAIL.search(m.group(0)):
            add(Detail(EMAIL, m.start(), m.end(), m.group(0)))
        else:
            emails += 1
            add(Detail(EMAIL, m.start(), m.end(), f"person{emails}@example.com"))
    phones = 0
    for m in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if not 10 <= len(digits) <= 15:
            continue
        if _FICTIONAL_PHONE.search(digits):
            add(Detail(PHONE, m.start(), m.end(), m.group(0)))
        else:
            add(Detail(PHONE, m.start(), m.end(), _fake_phone(m.group(0), phones)))
            phones += 1
    for detail in _date_details(text):
        add(detail)
    for m in _LONG_NUMBER.finditer(text):
        pool = iter(_FAKE_DIGITS * (len(m.group(0)) // len(_FAKE_DIGITS) + 1))
        add(
            Detail(
                LONG_NUMBER, m.start(), m.end(), "".join(next(pool) if c.isdigit() else c for c in m.group(0))
            )
        )
    for m in _HANDLE.finditer(text):
        add(
            Detail(
                HANDLE,
                m.start(),
                m.end(),
                m.group(0) if m.group(1).lower() == _FAKE_HANDLE else "@" + _FAKE_HANDLE,
            )
        )
    return sorted(found, key=lambda d: d.start)


def scrub(text: str) -> str:
    """``text`` with what identifies a person replaced by fictional values of the same shape
    (see the module's docstring); amounts and everything else stay. Idempotent."""
    out: list[str] = []
    position = 0
    for detail in find_details(text):
        out.append(text[position : detail.start] + detail.replacement)
        position = detail.end
    return "".join(out) + text[position:]


# --- reading Rasa's events -------------------------------------------------------------------------


@dataclass
class Misread:
    """One message the bot did not understand (see :func:`misunderstood` for ``reasons``)."""

    event_id: int
    conversation_id: str
    #: What the person wrote, as written: never shown or stored by the inbox (``scrubbed`` is).
    text: str
    #: ``text`` scrubbed (:func:`scrub`): what the page shows.
    scrubbed: str
    #: The scrubbed text with the entities the bot found written inline (``[50](amount)``): the
    #: example the page offers to write.
    annotated: str
    at: datetime
    channel: str | None
    language: str | None
    #: The bot's best guess (the best intent other than ``nlu_fallback``) and its confidence.
    intent: str | None
    confidence: float | None
    reasons: set[str] = field(default_factory=set)
    #: The intent the person then confirmed ("yes" to "did you mean ...?", or a rephrasing the
    #: bot understood), if any.
    meant: str | None = None

    @functools.cached_property
    def key(self) -> str:
        """The text's id in :class:`InboxState`."""
        return text_key(self.scrubbed)

    @property
    def fell_back(self) -> bool:
        return FALLBACK in self.reasons


@dataclass
class _Conversation:
    paused: bool = False
    #: The last message, until the bot's next action is seen.
    pending: Misread | None = None
    #: The message the bot asked about; the person's next message answers.
    asking: Misread | None = None
    #: The intent the question offered (its first button, ``/<intent>``).
    offered: str | None = None
    #: The last message's intent as the NLU decided it (``nlu_fallback`` included).
    nlu_intent: str | None = None
    #: The message the person just said no about.
    denied: Misread | None = None


class _Collector:
    """Follows the conversations event by event and keeps the newest ``limit`` misreads."""

    def __init__(
        self, *, low_confidence: float, since: datetime | None, limit: int, exclude: Container[str]
    ) -> None:
        self.low_confidence = low_confidence
        self.since = since
        self.limit = limit
        self.exclude = exclude
        self.conversations: dict[str, _Conversation] = {}
        self.kept: list[tuple[int, int, Misread]] = []  # heap of (event id, tie, misread)
        self.in_heap: set[int] = set()

    def keep(self, misread: Misread) -> None:
        if not misread.reasons or misread.event_id in self.in_heap:
            return
        if self.since is not None and misread.at < self.since:
            return
        if misread.key in self.exclude:
            return
        heapq.heappush(self.kept, (misread.event_id, id(misread), misread))
        self.in_heap.add(misread.event_id)
        if len(self.kept) > self.limit:
            heapq.heappop(self.kept)

    def event(self, sender: str, data: Mapping[str, Any], event_id: int) -> None:
        kind = data.get("event")
        state = self.conversations.setdefault(sender, _Conversation())
        if kind in ("restart", "session_started"):
            self.conversations[sender] = _Conversation(paused=state.paused)
        elif kind == "pause":
            self.conversations[sender] = _Conversation(paused=True)
        elif kind == "resume":
            state.paused = False
        elif kind == "user":
            self.user(state, sender, data, event_id)
        elif kind == "action":
            self.action(state, str(data.get("name") or ""))
        elif kind == "bot" and state.asking is not None and state.offered is None:
            state.offered = _offered_intent(data)

    def user(self, state: _Conversation, sender: str, data: Mapping[str, Any], event_id: int) -> None:
        if state.paused:
            return
        intent, confidence, nlu_intent = _intent(data)
        asked, state.asking, state.denied = state.asking, None, None
        if asked is not None and self.answer(asked, state.offered, intent, confidence, nlu_intent):
            state.denied = asked  # if the bot now asks them to say it another way, that answers too
        state.offered = None
        state.pending = None
        message = self.message(sender, data, event_id, intent, confidence, nlu_intent)
        if message is None:
            return
        state.pending, state.nlu_intent = message, nlu_intent
        self.keep(message)

    def answer(
        self, asked: Misread, offered: str | None, intent: str | None, confidence: float | None,
        nlu_intent: str | None,
    ) -> bool:  # fmt: skip
        """The person's reply to "did you mean ...?" / "say it another way" (``True``: a no)."""
        if nlu_intent in _DENIALS:
            asked.reasons.add(CORRECTED)
            self.keep(asked)
            return True
        if nlu_intent == _AFFIRM:
            asked.meant = offered or asked.meant  # "yes" to "say it another way" says nothing
        elif intent and nlu_intent != NLU_FALLBACK and (confidence or 0) >= self.low_confidence:
            asked.meant = intent  # the button ``/<intent>``, or a rephrasing understood
        return False

    def action(self, state: _Conversation, name: str) -> None:
        if name == "action_listen" or not name:
            return
        denied, state.denied = state.denied, None
        if denied is not None and name in _ASKING_ACTIONS:
            state.asking, state.offered = denied, None
        message, state.pending = state.pending, None
        if message is None:
            return
        if name in _FALLBACK_ACTIONS:
            if state.nlu_intent != NLU_FALLBACK:
                # The NLU accepted the intent, yet the dialogue could not go on from it.
                message.reasons.add(CORRECTED)
                self.keep(message)
            if name in _ASKING_ACTIONS:
                state.asking, state.offered = message, None

    def message(
        self, sender: str, data: Mapping[str, Any], event_id: int, intent: str | None,
        confidence: float | None, nlu_intent: str | None,
    ) -> Misread | None:  # fmt: skip
        """The typed message, with the reasons known so far (``None``: not a typed message)."""
        text = data.get("text")
        metadata = _mapping(data.get("metadata"))
        if not isinstance(text, str) or not text.strip():
            return None
        text = text.strip()
        if text.startswith(("/", _EXTERNAL_PREFIX)) or metadata.get("is_external"):
            return None
        if (nlu_intent or "").startswith("EXTERNAL_"):
            return None
        at = _time(data.get("timestamp"))
        if at is None:
            return None
        reasons = set()
        if nlu_intent == NLU_FALLBACK:
            reasons.add(FALLBACK)
        if confidence is None or confidence < self.low_confidence:
            reasons.add(LOW_CONFIDENCE)
        parse = _mapping(data.get("parse_data"))
        entities = _list(parse.get("entities"))
        try:
            annotated = annotate(text, [e for e in entities if isinstance(e, Mapping)])
        except (TypeError, ValueError):
            annotated = text
        channel = metadata.get("channel") or data.get("input_channel")
        language = detect_language(text) or metadata.get("language")
        return Misread(
            event_id=event_id,
            conversation_id=sender,
            text=text,
            scrubbed=scrub(text),
            annotated=scrub(annotated),
            at=at,
            channel=str(channel) if channel else None,
            language=str(language) if language else None,
            intent=intent,
            confidence=confidence,
            reasons=reasons,
        )

    def result(self) -> list[Misread]:
        return [m for _, _, m in sorted(self.kept, reverse=True)]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _time(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    try:
        return datetime.fromtimestamp(value, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _confidence(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _intent(data: Mapping[str, Any]) -> tuple[str | None, float | None, str | None]:
    """(the best intent other than ``nlu_fallback``, its confidence, the NLU's intent)."""
    parse = _mapping(data.get("parse_data"))
    top = _mapping(parse.get("intent"))
    name = top.get("name")
    nlu_intent = str(name) if name else None
    if nlu_intent and nlu_intent != NLU_FALLBACK:
        return nlu_intent, _confidence(top.get("confidence")), nlu_intent
    ranking = _list(parse.get("intent_ranking"))
    for item in ranking:
        if isinstance(item, Mapping) and item.get("name") and item.get("name") != NLU_FALLBACK:
            return str(item["name"]), _confidence(item.get("confidence")), nlu_intent
    return None, None, nlu_intent


def _offered_intent(data: Mapping[str, Any]) -> str | None:
    """The intent a "did you mean ...?" offers: its first button's ``/<intent>`` payload."""
    extra = _mapping(data.get("data"))
    buttons = _list(extra.get("buttons"))
    for button in buttons:
        payload = button.get("payload") if isinstance(button, Mapping) else None
        if isinstance(payload, str) and payload.startswith("/"):
            name = re.match(r"/(\w+)", payload)
            if name and name.group(1) not in _DENIALS:
                return name.group(1)
    return None


def _decoded(raw: Any) -> Mapping[str, Any] | None:
    if not isinstance(raw, str | bytes):
        return None
    try:
        data = json.loads(raw)
    except (ValueError, TypeError, RecursionError):
        return None
    return data if isinstance(data, Mapping) else None


def _rows(store: AnalyticsStore, after: int, batch: int) -> Iterator[tuple[int, str, Any]]:
    table = RASA_EVENTS
    while True:
        query = (
            sa.select(table.c.id, table.c.sender_id, table.c.data)
            .where(table.c.id > after)
            .order_by(table.c.id)
            .limit(batch)
        )
        with store.engine.connect() as connection:
            rows = connection.execute(query).all()
        for row in rows:
            yield int(row[0]), str(row[1] or ""), row[2]
        if len(rows) < batch:
            return
        after = int(rows[-1][0])


def _start_after(store: AnalyticsStore, since: datetime) -> int:
    """An id to read on from: just before the first event of ``since`` (less the slack), found by
    a binary search over ids (Rasa's servers write events in about time order)."""
    table = RASA_EVENTS
    target = (since - _SINCE_SLACK).timestamp()
    with store.engine.connect() as connection:
        low, high = connection.execute(sa.select(sa.func.min(table.c.id), sa.func.max(table.c.id))).one()
        if low is None:
            return 0
        low, high = int(low), int(high)
        while low < high:
            middle = (low + high) // 2
            query = (
                sa.select(table.c.id, table.c.data).where(table.c.id >= middle).order_by(table.c.id).limit(20)
            )
            moment: tuple[int, float] | None = None
            for row_id, raw in connection.execute(query).all():
                data = _decoded(raw)
                stamp = _time((data or {}).get("timestamp"))
                if stamp is not None:
                    moment = (int(row_id), stamp.timestamp())
                    break
            if moment is not None and moment[1] < target:
                low = moment[0] + 1
            else:
                high = middle  # earlier, or nothing readable there: read more rather than less
    return low - 1


def misunderstood(
    store: AnalyticsStore,
    *,
    low_confidence: float,
    since: datetime | None = None,
    limit: int = 2000,
    exclude: Container[str] = (),
    batch: int = BATCH,
) -> list[Misread]:
    """The newest ``limit`` messages (from ``since`` on) the bot did not understand, newest first
    (see the module's docstring for what counts); ``exclude``: text keys to leave out (those ops
    handled), so they take no room under ``limit``."""
    collector = _Collector(low_confidence=low_confidence, since=since, limit=max(limit, 0), exclude=exclude)
    if limit <= 0:
        return []
    after = _start_after(store, since) if since is not None else 0
    for event_id, sender, raw in _rows(store, after, batch):
        data = _decoded(raw)
        if data is None:
            continue  # a broken row is skipped, never a failed page
        try:
            collector.event(sender, data, event_id)
        except (TypeError, ValueError, AttributeError):
            continue
    return collector.result()


# --- grouping -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """Similar messages: how many, one that stands for them, the newest examples."""

    #: The representative's text key: a stable id for the group.
    key: str
    count: int
    representative: str
    #: Newest first, one per distinct text, up to ``examples``.
    examples: tuple[Misread, ...]
    #: Every distinct text's key (dismissing the group marks them all).
    keys: tuple[str, ...]
    languages: tuple[str, ...]
    #: The intents the bot guessed, with counts, most frequent first.
    intents: tuple[tuple[str, int], ...]
    reasons: tuple[tuple[str, int], ...]
    #: The intent people most often confirmed, if any did.
    meant: str | None
    first_seen: datetime
    last_seen: datetime


def _shape(text: str) -> str:
    """What grouping compares: entities' text only, accents and punctuation out, lower case,
    digits as 0 (a text of symbols only, say emoji, stays as it is)."""
    plain = _strip_entities(text).casefold()
    folded = "".join(c for c in unicodedata.normalize("NFKD", plain) if not unicodedata.combining(c))
    words = " ".join(re.sub(r"[^\w\s]+", " ", re.sub(r"\d+", "0", folded)).split())
    return words or " ".join(plain.split())


def _clusters(shapes: Sequence[str], threshold: float) -> tuple[list[int], Any]:
    """A cluster label per text and the similarity matrix (``None`` for one text)."""
    if len(shapes) < 2:
        return [0] * len(shapes), None
    # Imported here: ``debtbot validate`` imports this module and needs none of them.
    import numpy as np
    from scipy.cluster.hierarchy import fcluster, linkage  # type: ignore[import-untyped]
    from scipy.spatial.distance import squareform  # type: ignore[import-untyped]
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    try:
        matrix = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True).fit_transform(
            shapes
        )
    except ValueError:  # no n-gram at all
        return list(range(len(shapes))), None
    similarity = cosine_similarity(matrix)
    distance = np.clip(1.0 - (similarity + similarity.T) / 2.0, 0.0, 1.0)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="complete")
    labels = fcluster(tree, t=max(0.0, 1.0 - threshold) + 1e-9, criterion="distance")
    return [int(label) for label in labels], similarity


def group(misreads: Iterable[Misread], *, threshold: float = 0.5, examples: int = 5) -> list[Group]:
    """``misreads`` grouped by similarity (any two distinct texts of a group at least
    ``threshold`` similar), biggest group first; deterministic."""
    by_key: dict[str, list[Misread]] = {}
    for misread in misreads:
        by_key.setdefault(misread.key, []).append(misread)
    if not by_key:
        return []
    for members in by_key.values():
        members.sort(key=lambda m: (m.at, m.event_id), reverse=True)
    keys = sorted(by_key, key=lambda k: (_shape(by_key[k][0].scrubbed), k))
    shapes = [_shape(by_key[k][0].scrubbed) for k in keys]
    labels, similarity = _clusters(shapes, threshold)
    clusters: dict[int, list[int]] = {}
    for index, cluster in enumerate(labels):
        clusters.setdefault(cluster, []).append(index)
    groups = [_group([keys[i] for i in indexes], indexes, by_key, similarity, examples)
              for indexes in clusters.values()]  # fmt: skip
    groups.sort(key=lambda g: (-g.count, -g.last_seen.timestamp(), g.representative, g.key))
    return groups


def _group(
    keys: list[str], indexes: list[int], by_key: Mapping[str, list[Misread]], similarity: Any, examples: int
) -> Group:
    counts = [len(by_key[k]) for k in keys]
    if similarity is not None and len(indexes) > 1:
        # The medoid: the text most like the others, each counted as often as it was written.
        scores = [
            sum(c * float(similarity[i, j]) for j, c in zip(indexes, counts, strict=True)) for i in indexes
        ]
    else:
        scores = [0.0] * len(indexes)
    best = min(range(len(keys)), key=lambda n: (-round(scores[n], 9), -counts[n], n))
    members = [m for k in keys for m in by_key[k]]
    newest = sorted((by_key[k][0] for k in keys), key=lambda m: (m.at, m.event_id), reverse=True)
    intents = Counter(m.intent or "(none)" for m in members)
    reasons = Counter(r for m in members for r in m.reasons)
    meant = Counter(m.meant for m in members if m.meant)
    return Group(
        key=keys[best],
        count=len(members),
        representative=by_key[keys[best]][0].scrubbed,
        examples=tuple(newest[:examples]),
        keys=tuple(keys),
        languages=tuple(sorted({m.language for m in members if m.language})),
        intents=tuple(sorted(intents.items(), key=lambda item: (-item[1], item[0]))),
        reasons=tuple((r, reasons[r]) for r in REASONS if reasons[r]),
        meant=min(meant.items(), key=lambda item: (-item[1], item[0]))[0] if meant else None,
        first_seen=min(m.at for m in members),
        last_seen=max(m.at for m in members),
    )


# --- the done state -----------------------------------------------------------------------------------

LABELLED = "labelled"
DISMISSED = "dismissed"


@dataclass(frozen=True)
class Done:
    """What ops did with a text: labelled it (under ``intent``) or dismissed it."""

    action: str
    intent: str | None
    by: str
    at: datetime

    def to_json(self) -> str:
        return json.dumps(
            {"action": self.action, "intent": self.intent, "by": self.by, "at": self.at.isoformat()}
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Done | None:
        data = _decoded(raw)
        if data is None:
            return None
        try:
            return cls(str(data["action"]), data.get("intent"), str(data.get("by") or ""),
                       datetime.fromisoformat(str(data["at"])))  # fmt: skip
        except (KeyError, ValueError):
            return None


class InboxState:
    """The texts ops have handled: a Redis hash, text key (:func:`text_key`) -> :class:`Done`
    (no text in it, so it may be kept as long as the inbox needs)."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys) -> None:
        self.client = client
        self.key = keys.console("ops", "nlu_done")

    def done(self, text_keys: Iterable[str]) -> dict[str, Done]:
        """Which of ``text_keys`` were handled, and how."""
        wanted = list(dict.fromkeys(text_keys))
        found: dict[str, Done] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for text_key_, raw in zip(chunk, self.client.hmget(self.key, chunk), strict=True):
                done = Done.from_json(raw) if raw is not None else None
                if done is not None:
                    found[text_key_] = done
        return found

    def handled(self) -> set[str]:
        """Every text key ops handled (the hash's fields only: 64 bytes each)."""
        return {k.decode() if isinstance(k, bytes) else str(k) for k in self.client.hkeys(self.key)}

    def mark(self, text_keys: Iterable[str], done: Done) -> int:
        """Mark ``text_keys`` handled; return how many."""
        mapping: dict[str | bytes, str] = {k: done.to_json() for k in dict.fromkeys(text_keys) if k}
        if mapping:
            self.client.hset(self.key, mapping=mapping)
        return len(mapping)


# --- labelling ----------------------------------------------------------------------------------------

_INTENT_NAME = re.compile(r"[a-z][a-z0-9_]{1,63}")
#: Intents that are no label: Rasa's fallback, and the product's triggers.
_RESERVED = frozenset({NLU_FALLBACK})
#: Characters YAML cannot hold in a block (PyYAML's ``NON_PRINTABLE``).
_NON_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ANNOTATION = re.compile(r"\[(?P<text>[^\]\[]+)\](?:\((?P<entity>[^)]*)\)|(?P<json>\{[^}]*\}))")
_PROVENANCE = re.compile(r"^# added by (?P<by>\S+) at (?P<at>\S+): (?P<text>.*)$")
_HEADER = (
    "# Examples labelled in the ops console's NLU inbox (bot/ops/nlu_inbox.py). Run `debtbot validate`,\n"
    "# then train. Written again on each label: keep hand edits to examples (comments other than\n"
    "# the 'added by' lines are not kept).\n"
)
MAX_EXAMPLE = 500


class LabelRefused(InvalidRequest):
    """The example cannot be added: empty, a duplicate, a conflict, a bad intent name."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class LabelResult:
    """What :func:`label` wrote."""

    path: Path
    #: The example as written (scrubbed, on one line).
    text: str
    intent: str
    #: The intent is not in the domain: it must be added there before training.
    new_intent: bool
    #: The review file did not exist before.
    created: bool


def valid_intent_name(name: str) -> bool:
    """A name a new intent may have: ``[a-z][a-z0-9_]{1,63}``."""
    return bool(_INTENT_NAME.fullmatch(name)) and name not in _RESERVED


def _parse_examples(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [line.strip()[1:].strip() for line in raw.splitlines() if line.strip().startswith("-")]
    if isinstance(raw, list):
        return [str(i.get("text", "")) if isinstance(i, Mapping) else str(i) for i in raw]
    return []


def read_examples(path: Path) -> list[tuple[str, str]]:
    """(intent, example) of an NLU YAML file, in order (nothing for a missing or unreadable file)."""
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return []
    found: list[tuple[str, str]] = []
    blocks = (content.get("nlu") or []) if isinstance(content, Mapping) else []
    for block in blocks if isinstance(blocks, list) else []:
        if isinstance(block, Mapping) and isinstance(block.get("intent"), str):
            found += [(block["intent"], text) for text in _parse_examples(block.get("examples")) if text]
    return found


@dataclass
class _ReviewFile:
    """The review file's intent blocks (in order), other NLU items, and who added what."""

    blocks: dict[str, list[str]] = field(default_factory=dict)
    others: list[Any] = field(default_factory=list)
    provenance: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> _ReviewFile:
        review = cls()
        if not path.exists():
            return review
        try:
            raw = path.read_text(encoding="utf-8")
            content = yaml.safe_load(raw)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            message = f"{path.name} cannot be read ({exc}): fix it or move it away, then label again."
            raise LabelRefused(message, "unreadable") from None
        if content is None:
            content = {}
        if not isinstance(content, Mapping) or not isinstance(content.get("nlu") or [], list):
            raise LabelRefused(f"{path.name} is not Rasa NLU data (no 'nlu:' list): fix it or move it away.",
                               "unreadable")  # fmt: skip
        for item in content.get("nlu") or []:
            if (
                isinstance(item, Mapping)
                and isinstance(item.get("intent"), str)
                and set(item) <= {"intent", "examples"}
            ):
                review.blocks.setdefault(item["intent"], []).extend(
                    t for t in _parse_examples(item.get("examples")) if t
                )
            else:
                review.others.append(item)
        pending: list[tuple[str, str]] = []
        for line in raw.splitlines():
            found = _PROVENANCE.match(line)
            if found:
                pending.append((f"{found['by']} at {found['at']}", found["text"]))
                continue
            intent = re.match(r"^- intent: *(\S+)", line)
            if intent:
                name = intent.group(1).strip("'\"")
                for who, text in pending:
                    review.provenance[name, normalise_example(text)] = who
            pending = []
        return review

    def render(self) -> str:
        lines = [_HEADER, 'version: "3.1"\n', "nlu:\n"]
        for intent, examples in self.blocks.items():
            for text in examples:
                who = self.provenance.get((intent, normalise_example(text)))
                if who:
                    lines.append(f"# added by {who}: {text}\n")
            lines.append(f"- intent: {intent}\n  examples: |\n")
            lines += [f"    - {text}\n" for text in examples]
        if self.others:
            lines.append(yaml.safe_dump(self.others, allow_unicode=True, sort_keys=False, width=1000))
        return "".join(lines)


def _one_line(text: str) -> str:
    return " ".join(_NON_PRINTABLE.sub(" ", text).split())


def _check_annotations(text: str, known_entities: set[str] | None) -> None:
    for m in _ANNOTATION.finditer(text):
        if m.group("json"):
            try:
                attributes = json.loads(m.group("json"))
            except ValueError:
                attributes = None
            entity = attributes.get("entity") if isinstance(attributes, dict) else None
        else:
            entity = m.group("entity")
        if not isinstance(entity, str) or not re.fullmatch(r"[A-Za-z_][\w-]*", entity):
            message = f"'{m.group(0)}' is not an entity annotation Rasa reads: write [text](entity)."
            raise LabelRefused(message, "annotation")
        if known_entities is not None and entity not in known_entities:
            known = ", ".join(sorted(known_entities))
            raise LabelRefused(f"'{entity}' is not an entity of the domain ({known}).", "annotation")
    if "[" in _ANNOTATION.sub("", text) or "]" in _ANNOTATION.sub("", text):
        message = "Square brackets mark entities in Rasa's data ([text](entity)): take out the others."
        raise LabelRefused(message, "annotation")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside ``path`` (``.<name>.lock``), across threads and processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f".{path.name}.lock"
    with open(lock, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_atomically(path: Path, content: str) -> None:
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o777)
        else:
            os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _where(path: Path, review_file: Path) -> str:
    return path.name if path.parent == review_file.parent else str(path)


def label(
    review_file: Path,
    text: str,
    intent: str,
    *,
    by: str,
    now: datetime,
    known_intents: set[str],
    nlu_files: Sequence[Path] | None = None,
    known_entities: set[str] | None = None,
) -> LabelResult:
    """Append ``text`` (scrubbed, on one line) as an example of ``intent`` to ``review_file``
    (created if missing; one block per intent), under a lock and atomically.

    ``nlu_files``: the other NLU data it must not repeat or contradict (default: the other YAML
    files beside the review file). Raises :class:`LabelRefused` for an empty text, a text already
    there under ``intent`` (a duplicate) or under another intent (a conflict, named), an intent
    that is neither in ``known_intents`` nor a valid new name, or entity annotations Rasa would
    not read (or of entities not in ``known_entities``, when given).
    """
    example = _one_line(scrub(_one_line(text)))
    intent = intent.strip()
    if not _strip_entities(example).strip():
        raise LabelRefused("The text is empty: there is nothing to add.", "empty")
    if len(example) > MAX_EXAMPLE:
        raise LabelRefused(f"The text is longer than {MAX_EXAMPLE} characters: shorten it.", "too_long")
    if intent.startswith("EXTERNAL_"):
        raise LabelRefused(
            f"{intent} is sent by the product itself, never typed: choose another intent.", "intent"
        )
    new_intent = intent not in known_intents
    if new_intent and not valid_intent_name(intent):
        raise LabelRefused(
            f"'{intent}' is not an intent of the domain, nor a valid new name (a lower-case letter, then "
            "lower-case letters, digits or _, up to 64 characters).",
            "intent",
        )
    _check_annotations(example, known_entities)
    wanted = normalise_example(example)
    others = [p for p in nlu_files] if nlu_files is not None else _siblings(review_file)
    with _locked(review_file):
        created = not review_file.exists()
        review = _ReviewFile.read(review_file)
        existing = [(review_file, i, t) for i, texts in review.blocks.items() for t in texts]
        for path in others:
            if path.resolve() != review_file.resolve():
                existing += [(path, i, t) for i, t in read_examples(path)]
        for path, other_intent, other in existing:
            if normalise_example(other) != wanted:
                continue
            where = _where(path, review_file)
            if other_intent == intent:
                raise LabelRefused(f"'{example}' is already an example of {intent} in {where}.", "duplicate")
            raise LabelRefused(
                f"'{example}' is already an example of {other_intent} in {where}: one text cannot teach two "
                f"intents. Label it {other_intent}, or change that example first.",
                "conflict",
            )
        review.blocks.setdefault(intent, []).append(example)
        when = now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        who = re.sub(r"\s+", "_", by.strip()) or "unknown"
        review.provenance[intent, wanted] = f"{who} at {when}"
        _write_atomically(review_file, review.render())
    return LabelResult(review_file, example, intent, new_intent, created)


def _siblings(review_file: Path) -> list[Path]:
    folder = review_file.parent
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml") and p.name != review_file.name)
