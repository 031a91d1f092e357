"""*Save as test story*: a real conversation becomes a Rasa test story (``rasa_project/tests/``),
with whatever identifies the person replaced by consistent placeholders, so a failure seen in
production becomes a regression test that ``rasa test`` runs.

Three steps, the first two pure:

:func:`story_from_events`
    Rasa tracker events -> one test story, in the format of ``rasa_project/tests/*.yml``:

    - Only the latest session with a user message is kept: a story cannot start a session, and
      ``action_session_start``, ``session_started`` and everything before them are not part of
      one. The slots the session start set (carried over or filled from the account) become the
      story's first ``slot_was_set`` step, as in the hand-written stories (``account_known:
      true``): ``rasa test`` does not run the session start.
    - ``user`` events: the text, with the entities the NLU found annotated inline
      (``[50](amount)``, or ``[fifty]{"entity": "amount", "value": "50"}`` when the value is not
      the text), and the intent. An opener sent by the product (``trigger_intent``) is written
      ``/EXTERNAL_opener`` as the hand-written stories do.
    - ``action`` events, except ``action_listen`` (implied by the next user step, and still
      checked by ``rasa test``) and ``action_session_start``. A form's rejection
      (``action_execution_rejected``, ``loop_interrupted``) is left out: ``rasa test`` replays it
      itself when the story goes on with another action.
    - ``slot`` events of the slots that steer the dialogue (``influence_conversation``; the
      ``slots`` argument, read from the domain by :func:`conversation_slots`): ``rasa test``
      predicts each action without running it, so what an action set must be written out.
      Slots that steer nothing (the verification answer, the offer's text, the language) are
      left out: they change no prediction and carry personal data.
    - ``active_loop`` events: ``active_loop: <form>`` and ``active_loop: null``.
    - ``bot`` events are left out (the action that uttered them is what is tested), and so are
      ``user_featurization`` and other bookkeeping. ``rewind``, ``undo`` and ``restart`` are
      applied as Rasa applies them (the reverted turns are not in the story).
    - An agent's takeover (``pause`` ... ``resume``): the agent's part is skipped and the story
      goes on with the bot after ``resume``. While paused Rasa predicts nothing, so the person's
      messages and the agent's words in between are not the bot's behaviour to test; slot and
      loop changes made meanwhile are kept (they are the state the bot resumes in). The states
      Rasa featurises hold only the latest user message before an action, so the skipped
      messages change no prediction after the hand-back. A takeover never handed back ends the
      story at ``pause``.
    - A last user message the bot never acted on (the person wrote, then an agent took over or
      the conversation stopped) is left out: there is nothing to check in it.

:func:`anonymise`
    Personal details -> placeholders, the same real value -> the same placeholder everywhere in
    the story (every user text, entity value, slot value and the story's name): the account's
    names -> ``Alex``, ``Sam``... (other names a person writes cannot be told from words and are
    not found); dates with a year -> fake dates written the same way (the date of birth ->
    :data:`FAKE_DATE_OF_BIRTH`; a date from 2010 on keeps its year with another day, so a
    payment date stays a payment date; an older one, maybe a birth, becomes a day of 1985);
    phone numbers -> ``+1 202 555 01xx`` in the same layout; emails -> ``person1@example.com``;
    amounts (with a currency, cents, or "a month") and the balance -> other amounts in the same
    format; postal code, card last four, Telegram handle and account id -> fakes of the same
    shape. A date stays a date and an amount an amount, so the intent
    and the entities stay the same.

:func:`export_story`
    Reads the tracker from Rasa, builds and anonymises the story and writes
    ``<out_dir>/test_<name>.yml`` (never over another file: ``test_<name>_2.yml``...). The lead's
    ``debtbot export-story CONVERSATION_ID`` calls it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml

if TYPE_CHECKING:
    from bot.store.accounts import AccountStore

__all__ = [
    "FAKE_DATE_OF_BIRTH",
    "StoryError",
    "TrackerSource",
    "annotate",
    "anonymise",
    "conversation_slots",
    "export_story",
    "story_from_events",
    "story_yaml",
]

#: The date of birth every exported story uses. Its day (14) cannot be a month, so "07/14/1985"
#: and "14/07/1985" each read one way only, as the real one did in its order.
FAKE_DATE_OF_BIRTH = date(1985, 7, 14)

DEFAULT_DOMAIN = Path(__file__).resolve().parents[2] / "rasa_project" / "domain.yml"

_FIRST_NAMES = ("Alex", "Sam", "Jordan", "Casey", "Robin", "Drew", "Jamie", "Morgan")
_LAST_NAMES = ("Reed", "Parker", "Quinn", "Hayes", "Ellis", "Brooks", "Lane", "Shaw")
#: (month, day) of the fake dates that are not the date of birth (in 1985 too, or in their
#: own year from _RECENT_YEAR on); days over 12 for the same reason.
_OTHER_DAYS = ((3, 21), (9, 17), (5, 26), (11, 13), (2, 19), (8, 23), (4, 28), (10, 15))
#: Dates from this year on are payment dates or recent events (no adult was born then): their
#: placeholders keep the year, so a date in the future stays in the future.
_RECENT_YEAR = 2010
_SKIPPED_ACTIONS = frozenset({"action_listen", "action_session_start"})
_EXTERNAL_PREFIX = "EXTERNAL: "


class StoryError(Exception):
    """The conversation cannot become a test story (no tracker, no user message)."""


class TrackerSource(Protocol):
    """What :func:`export_story` needs of Rasa (``dialogue.rasa_client.RasaClient``)."""

    def tracker(self, conversation_id: str) -> dict[str, Any]: ...


# --- events -> story ------------------------------------------------------------------------------


def story_from_events(
    events: list[dict[str, Any]], *, name: str, slots: Collection[str] | None = None
) -> dict[str, Any]:
    """One test story (``{"story": name, "steps": [...]}``) from a tracker's events.

    ``slots``: the slots written out (those that influence the conversation; see
    :func:`conversation_slots`); ``None`` writes every slot. Raises :class:`StoryError` when the
    events hold no user message.
    """
    session = _latest_session(_applied(events))
    keep: Callable[[str], bool] = (lambda _: True) if slots is None else (lambda slot: slot in slots)

    initial: dict[str, Any] = {}
    steps: list[dict[str, Any]] = []
    paused = False
    started = False  # the first user message seen
    for event in session:
        kind = event.get("event")
        if kind == "pause":
            paused = True
        elif kind == "resume":
            paused = False
        elif kind == "slot":
            slot, value = str(event.get("name")), event.get("value")
            if not keep(slot):
                continue
            if not started:
                initial[slot] = value
            elif steps and "slot_was_set" in steps[-1]:
                steps[-1]["slot_was_set"].append({slot: value})
            else:
                steps.append({"slot_was_set": [{slot: value}]})
        elif kind == "active_loop" and started:
            steps.append({"active_loop": event.get("name") or None})
        elif paused:
            continue  # the agent's part: the person's messages and the agent's words
        elif kind == "user":
            step = _user_step(event)
            if "intent" in step:  # a message without an intent steers nothing: not a turn
                steps.append(step)
                started = True
        elif kind == "action" and started:
            action = event.get("name")
            if action and action not in _SKIPPED_ACTIONS:
                steps.append({"action": str(action)})
    actions = [i for i, step in enumerate(steps) if "action" in step]
    last_action = actions[-1] if actions else -1
    if any("intent" in step for step in steps[last_action + 1 :]):
        del steps[last_action + 1 :]  # a message the bot never acted on
    if not any("intent" in step for step in steps):
        raise StoryError("the conversation has no user message the bot answered")
    first = {slot: value for slot, value in initial.items() if value is not None}
    head = [{"slot_was_set": [{slot: value} for slot, value in first.items()]}] if first else []
    return {"story": name, "steps": head + steps}


def _applied(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The events as Rasa applies them: ``restart`` starts afresh, ``undo`` takes back the last
    action, ``rewind`` the last user message and the ``action_listen`` before it."""
    applied: list[dict[str, Any]] = []

    def back_to(kind: str) -> None:
        while applied:
            if applied.pop().get("event") == kind:
                return

    for event in events:
        kind = event.get("event")
        if kind == "restart":
            applied = []
        elif kind == "undo":
            back_to("action")
        elif kind == "rewind":
            back_to("user")
            back_to("action")
        else:
            applied.append(dict(event))
    return applied


def _latest_session(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of the latest session that has a user message, without its start (the
    ``action_session_start`` and ``session_started`` events)."""
    sessions: list[list[dict[str, Any]]] = [[]]
    for event in events:
        kind = event.get("event")
        if kind == "action" and event.get("name") == "action_session_start":
            sessions.append([])
        elif kind == "session_started":
            if sessions[-1]:  # a session_started without its action: still a new session
                sessions.append([])
        else:
            sessions[-1].append(event)
    for events_of_session in sessions[::-1]:
        if any(e.get("event") == "user" for e in events_of_session):
            return events_of_session
    raise StoryError("the conversation has no user message")


def _user_step(event: Mapping[str, Any]) -> dict[str, Any]:
    parse: Mapping[str, Any] = event.get("parse_data") or {}
    intent_data = parse.get("intent") or event.get("intent") or {}
    intent = intent_data.get("name") if isinstance(intent_data, Mapping) else None
    text = event.get("text")
    metadata = event.get("metadata") or {}
    step: dict[str, Any] = {}
    if isinstance(text, str) and (text.startswith(_EXTERNAL_PREFIX) or metadata.get("is_external")):
        step["user"] = f"/{intent or text[len(_EXTERNAL_PREFIX) :]}"
    elif isinstance(text, str) and text:
        entities = parse.get("entities") or event.get("entities") or []
        step["user"] = annotate(text, entities)
    if intent:
        step["intent"] = str(intent)
    return step


def annotate(text: str, entities: Iterable[Mapping[str, Any]]) -> str:
    """``text`` with ``entities`` written inline as Rasa's training data writes them:
    ``[span](entity)``, or ``[span]{"entity": ..., "value": ...}`` when the value is not the span
    (or a role or group is set). Entities without positions, or overlapping an earlier one, are
    left out. Text starting with ``/`` (a button's payload) is kept as it is."""
    if text.startswith("/"):
        return text
    spans = sorted(
        (e for e in entities if isinstance(e.get("start"), int) and isinstance(e.get("end"), int)),
        key=lambda e: (e["start"], -e["end"]),
    )
    out: list[str] = []
    position = 0
    for entity in spans:
        start, end = entity["start"], entity["end"]
        if start < position or not 0 <= start < end <= len(text) or not entity.get("entity"):
            continue
        span = text[start:end]
        if "[" in span or "]" in span:
            continue
        attributes = {"entity": str(entity["entity"])}
        for key in ("role", "group"):
            if entity.get(key):
                attributes[key] = str(entity[key])
        value = entity.get("value")
        if value is not None and str(value) != span:
            attributes["value"] = value if isinstance(value, str) else json.dumps(value)
        if len(attributes) == 1:
            out.append(f"{text[position:start]}[{span}]({attributes['entity']})")
        else:
            out.append(f"{text[position:start]}[{span}]{json.dumps(attributes, ensure_ascii=False)}")
        position = end
    out.append(text[position:])
    return "".join(out)


# --- anonymising ----------------------------------------------------------------------------------

_MONTH_NAMES = {
    "en": ("january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
           "octubre", "noviembre", "diciembre"),
}  # fmt: skip
_MONTH_ABBREVIATIONS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
    "oct": 10, "nov": 11, "dec": 12, "ene": 1, "abr": 4, "ago": 8, "dic": 12, "setiembre": 9,
}  # fmt: skip
_MONTHS: dict[str, tuple[int, str]] = {
    **{n: (i + 1, lang) for lang, names in _MONTH_NAMES.items() for i, n in enumerate(names)},
    **{n: (m, "abbr") for n, m in _MONTH_ABBREVIATIONS.items()},
}
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")(\.?)"
_ORDINAL = r"(st|nd|rd|th|º|o)?"
_DAY_MONTH_YEAR = re.compile(
    rf"(?<![\w])(\d{{1,2}}){_ORDINAL}(\s*(?:of\s+|de\s+|-\s*)?){_MONTH}(,?\s*(?:de\s+|del\s+)?)(\d{{4}})(?!\w)",
    re.IGNORECASE,
)
_MONTH_DAY_YEAR = re.compile(
    rf"(?<![\w]){_MONTH}(\s*)(\d{{1,2}}){_ORDINAL}(,?\s*)(\d{{4}})(?!\w)", re.IGNORECASE
)
_YMD = re.compile(r"(?<![\w/.-])(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?![\w/]|[.-]\d)")
_NUMERIC_DATE = re.compile(r"(?<![\w/.-])(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?![\w/]|[.-]\d)")
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{8,15}|(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{3}\)|\d{3})[\s.-]?\d{3}[\s.-]?\d{4})(?!\w)"
)
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_AMOUNT = re.compile(
    # "$50", "US$ 1,250.50", "50 dollars", "389.99", "50 a month", "20 quid a week"
    rf"(?<![\w.,])(?:(?:us\$|\$|£|€)\s?({_NUMBER})|({_NUMBER})(?=\s*(?:usd|dollars?|bucks|quid|pounds?|"
    r"euros?|eur|pesos?|d[oó]lares|\$|€)(?!\w))|(\d+\.\d{2})"
    rf"|({_NUMBER})(?=\s+(?:a|an|per|every|each|al|a la|por|cada)\s+(?:\w+\s+)?"
    r"(?:weeks?|months?|fortnights?|semanas?|mes|meses|quincenas?)\b|\s*(?:weekly|monthly|/mo\b|/month|/week)))"
    r"(?![\w]|[.,]\d)",
    re.IGNORECASE,
)


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).lower()


def _same_case(original: str, fake: str) -> str:
    if original.isupper() and len(original) > 1:
        return fake.upper()
    if original.islower():
        return fake.lower()
    return fake


class _Placeholders:
    """Real value (normalised) -> placeholder, the same for every occurrence in one story.

    Amounts and dates are first only collected (``collecting``), over the whole story, so that
    no placeholder is chosen that equals a real value seen anywhere in it."""

    def __init__(self, account: Mapping[str, Any] | None) -> None:
        #: (pattern, placeholder, follow the case of what was written)
        self.words: list[tuple[re.Pattern[str], str, bool]] = []
        self.emails: dict[str, str] = {}
        self.phones: dict[str, int] = {}
        self.dates: dict[date, date] = {}
        self.amounts: dict[Decimal, Decimal] = {}
        self.real_dates: set[date] = set()
        self.real_amounts: set[Decimal] = set()
        self.collecting = False
        self.birth: date | None = None
        account = account or {}
        names: dict[str, str] = {}
        for key, pool in (("first_name", iter(_FIRST_NAMES)), ("last_name", iter(_LAST_NAMES))):
            for part in re.split(r"[\s-]+", str(account.get(key) or "")):
                if len(part) > 1 and part.lower() not in names:
                    names[part.lower()] = next(pool, "Kim")
        for real, fake in names.items():
            self._word(real, fake, follow_case=True)
        if account.get("email"):
            self.email(str(account["email"]))
        if account.get("phone"):
            self.phone_index(str(account["phone"]))
        birth = account.get("date_of_birth")
        if isinstance(birth, str):
            try:
                birth = date.fromisoformat(birth)
            except ValueError:
                birth = None
        if isinstance(birth, date):
            self.birth = birth
            self.dates[birth] = FAKE_DATE_OF_BIRTH
            self.real_dates.add(birth)
        self.balance = _decimal(account.get("balance"))
        if self.balance is not None:
            self.real_amounts.add(self.balance.normalize())
        for key, fake in (("postal_code", "90210"), ("account_last4", "0000")):
            value = str(account.get(key) or "")
            if value:
                self._word(value, _digits_like(value, fake), follow_case=False)
        if account.get("account_id"):
            self._word(str(account["account_id"]), "ACC-TEST", follow_case=False)
        handle = str(account.get("telegram") or "").lstrip("@")
        if handle:
            self._word(handle, "person_handle", follow_case=False)

    def _word(self, real: str, fake: str, *, follow_case: bool) -> None:
        variants = sorted({re.escape(real), re.escape(_fold(real))}, key=len, reverse=True)
        pattern = re.compile(r"(?<![\w])(?:" + "|".join(variants) + r")(?![\w])", re.IGNORECASE)
        self.words.append((pattern, fake, follow_case))

    def start(self) -> None:
        """From collecting to replacing: placeholders are chosen from now on."""
        self.collecting = False
        if self.balance is not None:
            self.amount(self.balance)

    def email(self, value: str) -> str:
        key = value.lower()
        if key not in self.emails:
            self.emails[key] = f"person{len(self.emails) + 1}@example.com"
        return self.emails[key]

    def phone_index(self, value: str) -> int:
        key = re.sub(r"\D", "", value)[-10:]
        if key not in self.phones:
            self.phones[key] = len(self.phones)
        return self.phones[key]

    def fake_date(self, real: date) -> date:
        if self.collecting:
            self.real_dates.add(real)
            return real
        if real not in self.dates:
            # A date from before _RECENT_YEAR may be someone's birth: its year goes too.
            year = real.year if real.year >= _RECENT_YEAR else 1985
            used = set(self.dates.values()) | self.real_dates
            for month, day in _OTHER_DAYS * 2:
                fake = date(year, month, day)
                if fake not in used:
                    break
                year += 1  # every day of the list taken in that year: the next year's
            self.dates[real] = fake
        return self.dates[real]

    def amount(self, real: Decimal) -> Decimal:
        key = real.normalize()
        if self.collecting:
            self.real_amounts.add(key)
            return real
        if key not in self.amounts:
            used = {fake.normalize() for fake in self.amounts.values()} | self.real_amounts
            self.amounts[key] = _fake_amount(real, used)
        return self.amounts[key]


def _decimal(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value).replace(",", ""))
    except InvalidOperation:
        return None


def _digits_like(value: str, fake: str) -> str:
    """``fake``'s digits in ``value``'s layout (``"20002"`` -> ``"90210"``, other lengths padded)."""
    pool = iter((fake * (len(value) // len(fake) + 1))[: len(value)])
    return "".join(next(pool) if c.isdigit() else c for c in value)


def _fake_amount(real: Decimal, used: set[Decimal]) -> Decimal:
    """Another amount of the same size (as many whole digits, cents if it had cents), none of
    ``used``."""
    whole = len(str(int(abs(real))))
    base = 10 ** (whole - 1) if whole > 1 else 1
    step = 0
    while True:
        step += 1
        if step > 30:  # every amount of that size taken: one more digit
            base, step = base * 10, 1
        fake = Decimal(base + (37 * step * max(base // 10, 1)) % (9 * base))
        if real != real.to_integral_value():
            fake += Decimal("0.45")
        if fake.normalize() not in used:
            return fake


def _format_amount(fake: Decimal, written: str) -> str:
    """``fake`` written like ``written``: its decimals, its thousands separator, its decimal mark."""
    comma_decimal = bool(re.fullmatch(r"\d+,\d{1,2}", written))
    decimals = len(re.split(r"[.,]", written)[-1]) if re.search(r"[.,]\d{1,2}$", written) else 0
    text = f"{fake:,.{decimals}f}" if "," in written and not comma_decimal else f"{fake:.{decimals}f}"
    return text.replace(".", ",") if comma_decimal else text


class _Anonymiser:
    """Finds personal details in a text and replaces them (found first, replaced after, so a
    placeholder is never read again as a detail)."""

    def __init__(self, placeholders: _Placeholders) -> None:
        self.p = placeholders

    def replacements(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, placeholder) for each detail in ``text``, in order, not overlapping."""
        found: list[tuple[int, int, str]] = []

        def free(start: int, end: int) -> bool:
            return all(end <= s or start >= e for s, e, _ in found)

        def add(start: int, end: int, new: str) -> None:
            if free(start, end) and text[start:end] != new:
                found.append((start, end, new))

        for m in _EMAIL.finditer(text):
            add(m.start(), m.end(), self.p.email(m.group(0)))
        for m in _PHONE.finditer(text):
            if 10 <= len(re.sub(r"\D", "", m.group(0))) <= 15 and free(m.start(), m.end()):
                add(m.start(), m.end(), _fake_phone(m.group(0), self.p.phone_index(m.group(0))))
        for finder in (self._named_dates, self._numeric_dates):
            for start, end, new in finder(text):
                add(start, end, new)
        for m in _AMOUNT.finditer(text):
            group = next(i for i in range(1, 5) if m.group(i) is not None)
            real = _decimal(m.group(group))
            if real is not None and free(m.start(group), m.end(group)):
                add(m.start(group), m.end(group), _format_amount(self.p.amount(real), m.group(group)))
        for start, end, new in self._known_amounts(text):
            add(start, end, new)
        for pattern, fake, follow_case in self.p.words:
            for m in pattern.finditer(text):
                add(m.start(), m.end(), _same_case(m.group(0), fake) if follow_case else fake)
        return sorted(found)

    def _named_dates(self, text: str) -> Iterable[tuple[int, int, str]]:
        for m in _DAY_MONTH_YEAR.finditer(text):
            day, ordinal, between, month, dot, before_year, year = m.groups()
            fake = self._fake_date(int(year), _MONTHS[month.lower()][0], int(day))
            if fake is not None:
                named = _month_like(month, fake.month) + dot
                new = f"{fake.day}{_ordinal(fake.day, ordinal)}{between}{named}{before_year}{fake.year}"
                yield m.start(), m.end(), new
        for m in _MONTH_DAY_YEAR.finditer(text):
            month, dot, between, day, ordinal, before_year, year = m.groups()
            fake = self._fake_date(int(year), _MONTHS[month.lower()][0], int(day))
            if fake is not None:
                named = _month_like(month, fake.month) + dot
                new = f"{named}{between}{fake.day}{_ordinal(fake.day, ordinal)}{before_year}{fake.year}"
                yield m.start(), m.end(), new

    def _numeric_dates(self, text: str) -> Iterable[tuple[int, int, str]]:
        for m in _YMD.finditer(text):
            year, mark, month, day = m.groups()
            fake = self._fake_date(int(year), int(month), int(day))
            if fake is not None:
                new = f"{fake.year}{mark}{_pad(fake.month, month)}{mark}{_pad(fake.day, day)}"
                yield m.start(), m.end(), new
        for m in _NUMERIC_DATE.finditer(text):
            first, mark, second, year = m.groups()
            full_year = int(year) if len(year) == 4 else (1900 if int(year) > 30 else 2000) + int(year)
            month_first = self._month_first(int(first), int(second), full_year)
            month, day = (int(first), int(second)) if month_first else (int(second), int(first))
            fake = self._fake_date(full_year, month, day)
            if fake is None:
                continue
            one, two = (fake.month, fake.day) if month_first else (fake.day, fake.month)
            fake_year = str(fake.year) if len(year) == 4 else f"{fake.year % 100:02d}"
            new = f"{_pad(one, first)}{mark}{_pad(two, second)}{mark}{fake_year}"
            yield m.start(), m.end(), new

    def _month_first(self, first: int, second: int, year: int) -> bool:
        """How "11/02/1979" is read: as the date of birth if one order gives it, else month first
        (the accounts are American) unless that cannot be a date."""
        birth = self.p.birth
        if birth is not None and year == birth.year:
            if (first, second) == (birth.month, birth.day):
                return True
            if (second, first) == (birth.month, birth.day):
                return False
        return first <= 12

    def _fake_date(self, year: int, month: int, day: int) -> date | None:
        try:
            real = date(year, month, day)
        except ValueError:
            return None
        return self.p.fake_date(real)

    def _known_amounts(self, text: str) -> Iterable[tuple[int, int, str]]:
        """Amounts seen elsewhere in the story (or the balance) written here as a bare number:
        "50" after "50 a month", "389.99"; and "389" for a balance of 389.99. Small whole
        numbers are left alone ("option 2")."""
        for m in re.finditer(rf"(?<![\w.,])({_NUMBER})(?![\w]|[.,]\d)", text):
            real = _decimal(m.group(1))
            if real is None or (real < 10 and real == real.to_integral_value()):
                continue
            if real.normalize() in self.p.real_amounts:
                yield m.start(), m.end(), _format_amount(self.p.amount(real), m.group(1))
            elif self.p.balance is not None and real == int(self.p.balance) and real >= 100:
                whole = Decimal(int(self.p.amount(self.p.balance)))
                yield m.start(), m.end(), _format_amount(whole, m.group(1))

    def text(self, text: str) -> str:
        out: list[str] = []
        position = 0
        for start, end, new in self.replacements(text):
            out.append(text[position:start] + new)
            position = end
        return "".join(out) + text[position:]

    def annotated(self, text: str) -> str:
        """A user step's text, its inline entity annotations kept around what they annotate."""
        if text.startswith("/"):
            return text
        plain, entities = _parse_annotations(text)
        changes = self.replacements(plain)
        shift: list[tuple[int, int, int, int]] = []  # (start, end) old -> (start, end) new
        out: list[str] = []
        position = delta = 0
        for start, end, new in changes:
            out.append(plain[position:start] + new)
            shift.append((start, end, start + delta, start + delta + len(new)))
            delta += len(new) - (end - start)
            position = end
        new_plain = "".join(out) + plain[position:]

        def moved(offset: int, *, is_end: bool) -> int:
            for old_start, old_end, new_start, new_end in shift:
                if old_start < offset < old_end:  # inside a replaced detail: around all of it
                    return new_end if is_end else new_start
            before = [(new_end - old_end) for _, old_end, _, new_end in shift if old_end <= offset]
            return offset + (before[-1] if before else 0)

        renamed = []
        for entity in entities:
            attributes = dict(entity["attributes"])
            if isinstance(attributes.get("value"), str):
                attributes["value"] = self.text(attributes["value"])
            start, end = moved(entity["start"], is_end=False), moved(entity["end"], is_end=True)
            renamed.append({"start": start, "end": end, "attributes": attributes})
        return _write_annotations(new_plain, renamed)


_ANNOTATION = re.compile(r"\[(?P<text>[^\]\[]+)\](?:\((?P<entity>[^)]+)\)|(?P<json>\{[^}]*\}))")


def _parse_annotations(text: str) -> tuple[str, list[dict[str, Any]]]:
    plain: list[str] = []
    entities: list[dict[str, Any]] = []
    position = length = 0
    for m in _ANNOTATION.finditer(text):
        if m.group("json"):
            try:
                attributes = json.loads(m.group("json"))
            except ValueError:
                continue
            if not isinstance(attributes, dict):
                continue
        else:
            attributes = {"entity": m.group("entity")}
        before = text[position : m.start()]
        plain.append(before)
        length += len(before)
        entities.append({"start": length, "end": length + len(m.group("text")), "attributes": attributes})
        plain.append(m.group("text"))
        length += len(m.group("text"))
        position = m.end()
    plain.append(text[position:])
    return "".join(plain), entities


def _write_annotations(plain: str, entities: list[dict[str, Any]]) -> str:
    out: list[str] = []
    position = 0
    for entity in entities:
        start, end, attributes = entity["start"], entity["end"], entity["attributes"]
        if start < position or end <= start:
            continue
        span = plain[start:end]
        if attributes.get("value") == span:
            attributes = {k: v for k, v in attributes.items() if k != "value"}
        if set(attributes) == {"entity"}:
            out.append(f"{plain[position:start]}[{span}]({attributes['entity']})")
        else:
            out.append(f"{plain[position:start]}[{span}]{json.dumps(attributes, ensure_ascii=False)}")
        position = end
    return "".join(out) + plain[position:]


def _pad(value: int, written: str) -> str:
    return f"{value:0{len(written)}d}" if written.startswith("0") or len(written) == 2 else str(value)


def _ordinal(day: int, written: str | None) -> str:
    if not written:
        return ""
    if written.lower() not in ("st", "nd", "rd", "th"):
        return written  # "1º", "1o": the same mark for any day
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return suffix.upper() if written.isupper() else suffix


def _month_like(written: str, month: int) -> str:
    """Month ``month`` named as ``written`` was: the same language, abbreviated or not, same case."""
    _, language = _MONTHS[written.lower()]
    if language == "abbr":
        spanish = written.lower() in ("ene", "abr", "ago", "dic", "setiembre")
        name = _MONTH_NAMES["es" if spanish else "en"][month - 1][:3]
    else:
        name = _MONTH_NAMES[language][month - 1]
    if written[:1].isupper() and not written.isupper():
        name = name.capitalize()
    return _same_case(written, name) if written.isupper() or written.islower() else name


def _fake_phone(written: str, index: int) -> str:
    """``+1 202 555 01xx`` (the range kept for fiction), in ``written``'s layout."""
    digits = sum(c.isdigit() for c in written)
    fake = f"1202555{1 + index // 100:02d}{index % 100:02d}"[-11:]
    fake = (fake if digits >= 11 else fake[-digits:]).rjust(digits, "5")
    pool = iter(fake)
    return "".join(next(pool) if c.isdigit() else c for c in written)


def anonymise(story: dict[str, Any], account: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of ``story`` with personal details replaced by consistent placeholders.

    ``account``: the account's known values (``first_name``, ``last_name``, ``date_of_birth``,
    ``phone``, ``email``, ``balance``, ``postal_code``, ``account_last4``, ``telegram``,
    ``account_id``), found wherever they appear; emails, phone numbers, dates with a year and
    amounts are also found by their shape.
    """
    placeholders = _Placeholders(account)
    anonymiser = _Anonymiser(placeholders)
    placeholders.collecting = True
    for text in _strings(story):
        plain, entities = _parse_annotations(text)
        for part in (plain, *(e["attributes"].get("value") for e in entities)):
            if isinstance(part, str):
                anonymiser.replacements(part)
    placeholders.start()

    def value(item: Any) -> Any:
        if isinstance(item, str):
            return anonymiser.text(item)
        if isinstance(item, list):
            return [value(x) for x in item]
        if isinstance(item, dict):
            return {k: value(v) for k, v in item.items()}
        return item

    steps: list[dict[str, Any]] = []
    for step in story.get("steps", []):
        new = dict(step)
        if isinstance(step.get("user"), str):
            new["user"] = anonymiser.annotated(step["user"])
        if "slot_was_set" in step:
            new["slot_was_set"] = value(step["slot_was_set"])
        steps.append(new)
    result = {k: v for k, v in story.items() if k != "steps"}
    if isinstance(result.get("story"), str):
        result["story"] = anonymiser.text(result["story"])
    result["steps"] = steps
    return result


def _strings(item: Any) -> Iterable[str]:
    if isinstance(item, str):
        yield item
    elif isinstance(item, list):
        for x in item:
            yield from _strings(x)
    elif isinstance(item, dict):
        for x in item.values():
            yield from _strings(x)


# --- writing --------------------------------------------------------------------------------------


def conversation_slots(domain: Path = DEFAULT_DOMAIN) -> set[str]:
    """The domain's slots that influence the conversation (Rasa's default: every type but ``any``)."""
    data = yaml.safe_load(domain.read_text(encoding="utf-8")) or {}
    slots: Mapping[str, Any] = data.get("slots") or {}
    return {
        name
        for name, spec in slots.items()
        if (spec or {}).get("influence_conversation", (spec or {}).get("type") != "any")
    }


def story_yaml(story: dict[str, Any]) -> str:
    """The test story file: the ``stories:`` list with one story, as ``rasa test`` reads it."""
    header = (
        "# A real conversation saved as a test story (debtbot export-story): personal details\n"
        "# are placeholders. Slots that actions set are written out, as rasa test runs no action.\n"
    )
    body = yaml.safe_dump(
        {"version": "3.1", "stories": [story]}, sort_keys=False, allow_unicode=True, width=1000
    )
    return header + body


def _account_dict(accounts: AccountStore | None, tracker: Mapping[str, Any]) -> dict[str, Any] | None:
    slots: Mapping[str, Any] = tracker.get("slots") or {}
    account_id = slots.get("account_id")
    if accounts is not None and account_id:
        account = accounts.get(str(account_id))
        if account is not None:
            return dataclasses.asdict(account)
    known = {key: slots[key] for key in ("first_name", "account_id") if slots.get(key)}
    return known or None


def _file_name(name: str) -> str:
    cleaned = re.sub(r"[^a-z0-9_-]+", "_", _fold(name)).strip("_-")
    return cleaned[:80] or "conversation"


def export_story(
    rasa: TrackerSource,
    conversation_id: str,
    accounts: AccountStore | None,
    out_dir: Path,
    *,
    name: str | None = None,
    domain: Path | None = None,
) -> Path:
    """Write the conversation ``conversation_id`` as an anonymised test story in
    ``out_dir/test_<name>.yml`` (``test_<name>_2.yml``... when taken) and return its path.

    ``name`` defaults to ``conversation_<hash of the id>`` (the id itself may hold an address);
    ``domain`` (for the slots written out) to ``out_dir/../domain.yml`` when there is one, else
    the product's. Raises :class:`StoryError` when there is nothing to export, and the Rasa
    client's errors when Rasa cannot be asked.
    """
    tracker = rasa.tracker(conversation_id)
    events = tracker.get("events") or []
    if not events:
        raise StoryError(f"Rasa has no events for conversation {conversation_id!r}")
    if name is None:
        name = "conversation_" + hashlib.sha256(conversation_id.encode()).hexdigest()[:10]
    if domain is None:
        beside = out_dir.parent / "domain.yml"
        domain = beside if beside.is_file() else DEFAULT_DOMAIN
    story = story_from_events(events, name=name, slots=conversation_slots(domain))
    story = anonymise(story, _account_dict(accounts, tracker))
    text = story_yaml(story)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"test_{_file_name(str(story['story']))}"
    number = 1
    while True:
        path = out_dir / (f"{stem}.yml" if number == 1 else f"{stem}_{number}.yml")
        try:
            with path.open("x", encoding="utf-8") as handle:
                handle.write(text)
        except FileExistsError:
            number += 1
            continue
        return path
