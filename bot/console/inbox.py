"""The agents' inbox (issue 16): every conversation that needs a person, most urgent first, and
the callbacks people asked for.

What needs a person comes from the hand-off (``HandoffStore``): every flag for an agent
(``AgentQueue.flag``) escalates the conversation, so ``waiting()`` lists them all, with their
reasons; claimed conversations stay in the inbox (as their agent's work). Mail that could not be
read (dead letters) is a work item too, until an agent attaches it to an account.

**Order.** :func:`priority` ranks the reasons (a pure function, tested against every reason the
product can flag): 0 a sign of crisis; 1 other signs of vulnerability; 2 disputes and payment
claims; 3 hardship; 4 the person asked for a person, a callback or a video call; 5 the rest.
Within a level, the longest waiting first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import redis

from bot.clock import Clock
from bot.compliance.gate import rules_from_config
from bot.compliance.rules import CHANNELS, Debtor, candidate_zones
from bot.config import Config
from bot.console.desk import DeskError, dead_letters_done_key
from bot.console.handoff import HandoffStore, State
from bot.conversations.history import ConversationHistory
from bot.conversations.identity import account_id_of
from bot.email.dead_letters import DeadLetter, DeadLetters
from bot.privacy import mask_email, mask_phone
from bot.store.accounts import Account, AccountStore
from bot.store.connection import Keys
from dialogue.parsing import parse_date

__all__ = [
    "KINDS",
    "CallbackItem",
    "Inbox",
    "InboxFilter",
    "InboxItem",
    "parse_callback_time",
    "priority",
]

#: ``InboxItem.kind``: a conversation, mail that could not be read, or an email conversation
#: whose address reached its hourly reply cap (the bot stopped answering it).
KINDS = ("conversation", "dead_letter", "email_reply_cap")
EMAIL_REPLY_CAP = "email_reply_cap_reached"
DEAD_LETTER = "dead_letter"
UNKNOWN_SENDER = "Unknown sender"
SUMMARY_MAX = 140
#: The lowest priority (what is not named below).
REST = 5

#: Signs of crisis: the safety screen's ``crisis``, and its crisis concerns when flagged as signs.
_CRISIS = frozenset(
    {"crisis", "vulnerable:self_harm", "vulnerable:harm_to_others", "self_harm", "harm_to_others"}
)
#: Other signs of vulnerability (``vulnerable:<concern>`` from the inbound screen, or named alone).
_VULNERABLE = frozenset(
    {
        "vulnerable",
        "bereavement",
        "illness",
        "mental_health",
        "abuse",
        "addiction",
        "carer",
        "reading_difficulty",
    }
)
_DISPUTE = frozenset({"dispute", "disputed", "payment_claimed", "payment_claim"})
_HARDSHIP = frozenset({"hardship"})
_PERSON = frozenset(
    {"human", "asked_for_person", "agent_requested", "callback", "video_call", "video", "person_requested"}
)


def reason_priority(reason: str) -> int:
    """The level of one reason (0 most urgent, ``REST`` for the rest)."""
    if reason in _CRISIS:
        return 0
    if reason in _VULNERABLE or reason.startswith("vulnerable:"):
        return 1
    if reason in _DISPUTE:
        return 2
    if reason in _HARDSHIP:
        return 3
    if reason in _PERSON:
        return 4
    return REST


def priority(reasons: Iterable[str]) -> int:
    """The most urgent level among ``reasons`` (``REST`` when there are none)."""
    return min((reason_priority(reason) for reason in reasons), default=REST)


@dataclass(frozen=True)
class InboxFilter:
    """``mine``: claimed by the agent asking; ``unassigned``: nobody holds it; the others: equal
    to the item's (``reason`` also matches the family, ``vulnerable`` for ``vulnerable:illness``)."""

    mine: bool = False
    unassigned: bool = False
    reason: str = ""
    channel: str = ""
    language: str = ""
    creditor: str = ""
    #: Supervisors: only what this agent holds.
    claimed_by: str = ""

    def matches(self, item: InboxItem, agent: str) -> bool:
        if self.mine and not (item.state == State.AGENT.value and item.agent == agent):
            return False
        if self.claimed_by and item.agent != self.claimed_by:
            return False
        if self.unassigned and item.agent:
            return False
        if self.reason and not any(r == self.reason or r.startswith(f"{self.reason}:") for r in item.reasons):
            return False
        if self.channel and item.channel != self.channel:
            return False
        if self.language and item.language != self.language:
            return False
        return not (self.creditor and item.creditor != self.creditor)


@dataclass(frozen=True)
class InboxItem:
    """One row of the inbox. For a dead letter, ``conversation_id`` is
    ``deadletter:<channel>:<entry id>`` (``Inbox.dead_letter`` reads it)."""

    conversation_id: str
    #: ``waiting``, ``agent``, ``watching`` (``Handoff.shown``), or ``waiting`` for a dead letter.
    state: str
    agent: str
    reasons: tuple[str, ...]
    priority: int
    channel: str
    language: str
    creditor: str
    account_id: str
    display_name: str
    waiting_since: datetime
    waited_minutes: float
    #: Waiting (not yet claimed) for longer than ``console.target_minutes``.
    overdue: bool
    #: The dialogue's ``verified`` slot as last read by the console; ``None`` when never read.
    verified: bool | None
    #: The last thing the person wrote, on one line, at most 140 characters.
    summary: str
    kind: str
    #: Supervisors following it live.
    watchers: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id, "state": self.state, "agent": self.agent,
            "reasons": list(self.reasons), "priority": self.priority, "channel": self.channel,
            "language": self.language, "creditor": self.creditor, "account_id": self.account_id,
            "display_name": self.display_name, "waiting_since": self.waiting_since.isoformat(),
            "waited_minutes": round(self.waited_minutes, 1), "overdue": self.overdue,
            "verified": self.verified, "summary": self.summary, "kind": self.kind,
        }  # fmt: skip


@dataclass(frozen=True)
class CallbackItem:
    """A callback or video call someone asked for."""

    conversation_id: str
    account_id: str
    display_name: str
    #: The person's own words ("tomorrow after 5").
    when_raw: str
    #: What they mean, in their zone (aware), when it could be understood; else ``None``.
    when: datetime | None
    #: ``phone`` or ``video``.
    how: str
    #: The number (phone) or address (video: email when known) to use, masked; the desk's
    #: ``reveal_address`` on ``channel`` gives the full one (audited).
    contact: str
    asked_at: datetime
    #: The zone ``when`` was read in: the person's (``""`` when none is known).
    zone: str = ""
    #: An agent recorded it (their id), or ``""``: the dialogue did.
    by: str = ""
    #: The channel ``contact`` is the address on (``sms``: the phone number, ``email``), or ``""``.
    channel: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id, "account_id": self.account_id,
            "display_name": self.display_name, "when_raw": self.when_raw,
            "when": self.when.isoformat() if self.when else None, "how": self.how, "contact": self.contact,
            "asked_at": self.asked_at.isoformat(), "zone": self.zone, "by": self.by, "channel": self.channel,
        }  # fmt: skip


# --- understanding "when" -------------------------------------------------------------------

_CLOCK_MARKED = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*(a\.?\s?m\.?|p\.?\s?m\.?)(?![a-z])", re.IGNORECASE)
_CLOCK_COLON = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_CLOCK_AT = re.compile(
    r"\b(?:at|around|after|a las|a la|sobre las|despu[eé]s de las)\s+(\d{1,2})\b", re.IGNORECASE
)
_NOON = re.compile(r"\b(?:noon|midday|mediod[ií]a)\b", re.IGNORECASE)
_PERIODS = (
    (re.compile(r"\bmorning\b|\b(?:por|en|de) la ma[ñn]ana\b", re.IGNORECASE), time(10, 0)),
    (re.compile(r"\bafternoon\b|\b(?:por|en|de) la tarde\b|\besta tarde\b", re.IGNORECASE), time(15, 0)),
    (
        re.compile(r"\bevening\b|\btonight\b|\b(?:por|en|de) la noche\b|\besta noche\b", re.IGNORECASE),
        time(18, 0),
    ),
)


def _time_of_day(text: str) -> tuple[time | None, str]:
    """The time of day ``text`` names, and the text without it (for the date parser)."""
    match = _CLOCK_MARKED.search(text)
    if match:
        hour, minute = int(match.group(1)), int(match.group(2) or 0)
        pm = match.group(3).lower().startswith("p")
        if 1 <= hour <= 12 and minute < 60:
            hour = (hour % 12) + (12 if pm else 0)
            return time(hour, minute), text[: match.start()] + " " + text[match.end() :]
    for pattern in (_CLOCK_COLON, _CLOCK_AT):
        match = pattern.search(text)
        if match:
            hour = int(match.group(1))
            minute = int(match.group(2)) if pattern is _CLOCK_COLON else 0
            if hour <= 23 and minute < 60:
                # Nobody is called at 1-7 in the morning: "at 5" is 17:00 (as dialogue.parsing reads it).
                if 1 <= hour <= 7:
                    hour += 12
                return time(hour, minute), text[: match.start()] + " " + text[match.end() :]
    if _NOON.search(text):
        return time(12, 0), _NOON.sub(" ", text)
    for pattern, moment in _PERIODS:
        if pattern.search(text):
            return moment, pattern.sub(" ", text)
    return None, text


def parse_callback_time(
    raw: str, asked_at: datetime, zone: str, language: str = "en", *, day_start: time = time(9, 0)
) -> datetime | None:
    """When someone asked to be called ("tomorrow at 3pm", "el viernes por la tarde", "after
    6"), read in their zone ``zone`` from the moment they asked; ``None`` when neither a day nor
    a time can be told. A day without a time is at ``day_start``; a time without a day is the
    next such moment."""
    tz = ZoneInfo(zone)
    local = asked_at.astimezone(tz)
    clock, rest = _time_of_day(raw or "")
    day: date | None = None
    for lang in dict.fromkeys((language, "en", "es")):
        day = parse_date(rest, local.date(), lang)
        if day is not None:
            break
    if day is None and clock is None:
        return None
    if day is None:
        assert clock is not None
        moment = datetime.combine(local.date(), clock, tzinfo=tz)
        if moment <= local:
            moment = datetime.combine(local.date() + timedelta(days=1), clock, tzinfo=tz)
        return moment
    return datetime.combine(day, clock or day_start, tzinfo=tz)


def _one_line(text: str, limit: int = SUMMARY_MAX) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _decode(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode("utf-8", "replace") for k, v in raw.items()}


class Inbox:
    """Reads what waits for agents (nothing here changes it)."""

    def __init__(
        self,
        config: Config,
        redis: redis.Redis[bytes],
        keys: Keys,
        clock: Clock,
        accounts: AccountStore,
        handoff: HandoffStore,
        history: ConversationHistory,
        dead_letters: DeadLetters,
    ) -> None:
        self.config = config
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.accounts = accounts
        self.handoff = handoff
        self.history = history
        self.dead_letters = dead_letters
        self._rules = rules_from_config(config)

    # --- the inbox ----------------------------------------------------------------------------

    def items(
        self, agent: str, filters: InboxFilter | None = None, *, supervisor: bool = True
    ) -> list[InboxItem]:
        """Waiting and claimed conversations, and dead letters, most urgent first (then the
        longest waiting), that pass ``filters`` for ``agent``. An agent (``supervisor=False``)
        sees their own queue: what waits, and what they hold or watch, not the others' claims;
        a supervisor sees every queue."""
        filters = filters or InboxFilter()
        items = [*self._conversations(), *self._dead_letter_items()]
        items = [
            item for item in items
            if filters.matches(item, agent) and (supervisor or self._visible_to(item, agent))
        ]  # fmt: skip
        items.sort(key=lambda item: (item.priority, item.waiting_since, item.conversation_id))
        return items

    @staticmethod
    def _visible_to(item: InboxItem, agent: str) -> bool:
        return not item.agent or item.agent == agent or agent in item.watchers

    def facets(self, agent: str = "", *, supervisor: bool = True) -> dict[str, list[str]]:
        """The reasons, channels, languages, creditors (and, for supervisors, the agents holding
        conversations) present, for the filters' choices."""
        items = self.items(agent, supervisor=supervisor)
        return {
            "agents": sorted({item.agent for item in items if item.agent}) if supervisor else [],
            "reasons": sorted({reason for item in items for reason in item.reasons}),
            "channels": sorted({item.channel for item in items if item.channel}),
            "languages": sorted({item.language for item in items if item.language}),
            "creditors": sorted({item.creditor for item in items if item.creditor}),
        }

    def changes(self, after: str = "") -> tuple[str, list[dict[str, str]]]:
        """The console's events after the stream id ``after`` (``""`` or ``"$"``: none, only the
        current last id), for the live inbox; returns the id to ask after next time."""
        key = self.keys.console_events
        if not after or after == "$":
            last = self.redis.xrevrange(key, count=1)
            return (last[0][0].decode() if last else "0-0"), []
        if not re.match(r"^\d{1,20}-\d{1,20}$", after):
            raise DeskError("after must be an event id")
        rows = self.redis.xrange(key, f"({after}", "+", count=500)
        events = [{"id": entry_id.decode(), **_decode(fields)} for entry_id, fields in rows]
        return (events[-1]["id"] if events else after), events

    def dead_letter(self, channel: str, entry_id: str) -> DeadLetter | None:
        """One dead letter (to read it before attaching it to an account)."""
        if channel not in CHANNELS or not re.match(r"^\d{1,20}-\d{1,20}$", entry_id):
            return None
        rows = self.redis.xrange(self.keys.dead_letters(channel), entry_id, entry_id)
        if not rows:
            return None
        fields = {k.decode(): v for k, v in rows[0][1].items()}
        return DeadLetter(
            entry_id=entry_id, channel=channel, reason=fields.get("reason", b"").decode("utf-8", "replace"),
            detail=fields.get("detail", b"").decode("utf-8", "replace"),
            size=int(fields.get("size", b"0") or 0), truncated=fields.get("truncated") == b"1",
            raw=fields.get("raw", b""), at=float(fields.get("at", b"0") or 0),
        )  # fmt: skip

    def dead_letter_attached(self, channel: str, entry_id: str) -> bool:
        """An agent attached it to an account already (it left the inbox)."""
        return bool(self.redis.sismember(dead_letters_done_key(self.keys), f"{channel}:{entry_id}"))

    # --- callbacks ----------------------------------------------------------------------------

    def callbacks(self, limit: int = 500) -> list[CallbackItem]:
        """Callbacks and video calls asked for (the newest ``limit``), by when the person asked
        to be called; those whose time could not be understood last, oldest request first."""
        accounts: dict[str, Account | None] = {}
        found: list[CallbackItem] = []
        day_start = time.fromisoformat(self.config.console.hours.earliest)
        for _, fields in self.redis.xrevrange(self.keys.callbacks, count=limit):
            row = _decode(fields)
            conversation_id = row.get("conversation_id", "")
            account_id = row.get("account_id") or account_id_of(conversation_id) or ""
            if account_id not in accounts:
                accounts[account_id] = self.accounts.get(account_id) if account_id else None
            account = accounts[account_id]
            try:
                asked_at = datetime.fromtimestamp(float(row.get("at") or 0), timezone.utc)
            except ValueError:
                asked_at = datetime.fromtimestamp(0, timezone.utc)
            how = row.get("how") if row.get("how") in ("phone", "video") else "phone"
            zone = self._zone(account)
            language = self._language(account)
            when = None
            if zone:
                try:
                    when = parse_callback_time(
                        row.get("when", ""), asked_at, zone, language, day_start=day_start
                    )
                except ValueError:
                    when = None
            channel, contact = self._contact(conversation_id, account, str(how))
            found.append(CallbackItem(
                conversation_id=conversation_id, account_id=account_id,
                display_name=(account.first_name if account else "") or UNKNOWN_SENDER,
                when_raw=row.get("when", ""), when=when, how=str(how), contact=contact, asked_at=asked_at,
                zone=zone, by=row.get("by", ""), channel=channel,
            ))  # fmt: skip
        far = datetime.max.replace(tzinfo=timezone.utc)
        found.sort(
            key=lambda c: (c.when is None, c.when.astimezone(timezone.utc) if c.when else far, c.asked_at)
        )
        return found

    # --- assembling rows ----------------------------------------------------------------------

    def _conversations(self) -> list[InboxItem]:
        ids = list(dict.fromkeys([*self.handoff.waiting(), *self.handoff.claimed()]))
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for conversation_id in ids:
            pipe.hgetall(self.keys.conversation_flags(conversation_id))
            pipe.hgetall(self.keys.conversation_contacts(conversation_id))
            pipe.xrevrange(self.keys.conversation_history(conversation_id), count=50)
            pipe.hget(self.keys.console_verified, conversation_id)
            pipe.zscore(self.keys.console_waiting, conversation_id)
        fetched = pipe.execute()
        now = self.clock.now()
        target = timedelta(minutes=self.config.console.target_minutes)
        items = []
        for i, conversation_id in enumerate(ids):
            flags_raw, contacts_raw, history_rows, verified_raw, waiting_score = fetched[5 * i : 5 * i + 5]
            handoff = self.handoff.get(conversation_id)
            if handoff.state is State.BOT:
                continue  # handed back since the lists were read
            flags = {k.decode(): float(v or 0) for k, v in flags_raw.items()}
            reasons = handoff.reasons or tuple(sorted(flags, key=lambda r: flags[r]))
            account_id = account_id_of(conversation_id) or ""
            account = self.accounts.get(account_id) if account_id else None
            state = (
                _decode(self.redis.hgetall(self.keys.account_state(account_id)))
                if account is not None
                else {}
            )
            contacts = _decode(contacts_raw)
            last_text, last_channel = self._last_inbound(history_rows)
            if handoff.state is State.WAITING and waiting_score is not None:
                since = datetime.fromtimestamp(float(waiting_score), timezone.utc)
            else:
                flagged = [flags[r] for r in reasons if r in flags]
                since = (
                    datetime.fromtimestamp(min(flagged), timezone.utc)
                    if flagged
                    else handoff.claimed_at or handoff.since or now
                )
            waited = max(0.0, (now - since).total_seconds() / 60)
            items.append(InboxItem(
                conversation_id=conversation_id, state=handoff.shown, agent=handoff.agent, reasons=reasons,
                priority=priority(reasons),
                channel=contacts.get("_last") or last_channel or state.get("pref:channel", ""),
                language=self._language(account, state), creditor=account.creditor if account else "",
                account_id=account_id, display_name=(account.first_name if account else "") or UNKNOWN_SENDER,
                waiting_since=since, waited_minutes=waited,
                overdue=handoff.state is State.WAITING and now - since > target,
                verified=None if verified_raw is None else verified_raw == b"1",
                summary=_one_line(last_text),
                kind="email_reply_cap" if EMAIL_REPLY_CAP in reasons else "conversation",
                watchers=tuple(handoff.watchers),
            ))  # fmt: skip
        return items

    def _dead_letter_items(self) -> list[InboxItem]:
        done = {m.decode() for m in self.redis.smembers(dead_letters_done_key(self.keys))}
        now = self.clock.now()
        target = timedelta(minutes=self.config.console.target_minutes)
        items = []
        for channel in CHANNELS:
            for letter in self.dead_letters.list(channel):
                if f"{channel}:{letter.entry_id}" in done:
                    continue
                since = datetime.fromtimestamp(letter.at, timezone.utc)
                items.append(InboxItem(
                    conversation_id=f"deadletter:{channel}:{letter.entry_id}", state=State.WAITING.value,
                    agent="", reasons=(DEAD_LETTER,), priority=priority((DEAD_LETTER,)), channel=channel,
                    language="", creditor="", account_id="", display_name=UNKNOWN_SENDER,
                    waiting_since=since, waited_minutes=max(0.0, (now - since).total_seconds() / 60),
                    overdue=now - since > target, verified=None,
                    summary=_one_line(f"{letter.reason}: {letter.detail}".rstrip(": ")),
                    kind="dead_letter",
                ))  # fmt: skip
        return items

    @staticmethod
    def _last_inbound(rows: list[tuple[bytes, Mapping[bytes, bytes]]]) -> tuple[str, str]:
        for _, fields in rows:
            try:
                data = json.loads(fields[b"entry"])
            except (KeyError, ValueError):
                continue
            if data.get("direction") == "in":
                return str(data.get("text") or ""), str(data.get("channel") or "")
        return "", ""

    def _language(self, account: Account | None, state: Mapping[str, str] | None = None) -> str:
        if state is None and account is not None:
            state = {"pref:language": (self.redis.hget(self.keys.account_state(account.account_id),
                                                       "pref:language") or b"").decode()}  # fmt: skip
        language = (state or {}).get("pref:language") or (account.language if account else "")
        return language or str(self.config.accounts.default_language)

    def _zone(self, account: Account | None) -> str:
        """The person's zone (the first the gate would use), else the agents' zone."""
        if account is not None:
            rules = self._rules.get(account.creditor) or self._rules[None]
            zones = candidate_zones(
                Debtor(account_id=account.account_id, timezone=account.timezone, phone=account.phone,
                       postal_code=account.postal_code, country=account.country),
                rules,
            )  # fmt: skip
            if zones:
                return zones[0]
        return self.config.console.zone

    def _contact(self, conversation_id: str, account: Account | None, how: str) -> tuple[str, str]:
        """The channel whose address to use (``sms``: the phone number; ``email``: a video call's
        invitation, or when there is no number) and that address, masked; ``("", "")``: none."""
        _, contacts = self.history.contacts(conversation_id)
        phone = (account.phone if account else None) or contacts.get("sms")
        email = (account.email if account else None) or contacts.get("email")
        if "~" in conversation_id and contacts.get("email"):
            email = contacts["email"]  # an email thread from another address: as the desk answers it
        if how == "video" and email:
            return "email", mask_email(email)
        if phone:
            return "sms", mask_phone(phone)
        return ("email", mask_email(email)) if email else ("", "")
