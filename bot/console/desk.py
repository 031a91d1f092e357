"""What an agent does with a conversation (issue 16): take it over and hand it back, reply on the
person's own channel through the compliance gate, and act for the person (flags, preferences,
opt-outs, callbacks, notes). No Flask here: the console's pages (``bot.console.web``) call this.

**Replies and the compliance gate.** Every reply is decided by the gate *before* it is queued,
and the agent sees the verdict at once (``ReplyVerdict``): sent, deferred until a moment (shown in
the agents' zone and the person's), or blocked with the rule's reason. Nothing is dropped in
silence: a deferred reply waits in a Redis sorted set until ``release_deferred`` queues it (the
scheduler's tick), a blocked one is a ``reply_blocked`` line in the conversation's history.

Which rules apply depends on whether the person is in a conversation right now:

- the person wrote within the gate's reply window (``compliance.reply_window_minutes``): the
  reply is a reply (``Outgoing(proactive=False)``): it goes at any hour, like the bot's answers;
- otherwise the agent is the one starting contact, so it is asked as a proactive message of kind
  ``agent``: contact hours, the person's own contact window and the frequency caps apply (a reply
  at 03:00 to someone who wrote yesterday is deferred to the morning in their zone), and so do the
  pauses (``pause:dispute``, ``pause:attorney``... block it; the reason says which). The outbound
  worker asks the gate again with the same ``proactive`` flag right before sending, so both checks
  agree.

The gate does not stop replies to an opted-out address (its rule 2 leaves that to the caller: the
one confirmation of an opt-out is itself a reply), so the desk does: an address that opted out or
is unreachable blocks the reply here, with the reason.

**Rasa's history stays whole.** A claim is a ``pause`` event in Rasa's tracker, handing back or
closing a ``resume``, and every reply a ``bot`` event with the agent's id in its metadata. When
Rasa cannot be reached the change stands (the hand-off record is what silences the bot in the
worker) and the events wait in a Redis list, in order, until ``flush_tracker_events`` (the
scheduler's tick) delivers them.

**Audit.** Every action writes an entry to the audit stream (``console:<action>``: who, their role,
when, what), never the person's words nor a full address. Claims and the other hand-off changes
are audited by ``HandoffStore`` itself (kind ``handoff``).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import email.utils
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from email.header import decode_header, make_header
from email.message import Message
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

import redis

from bot.clock import Clock
from bot.compliance.gate import ComplianceGate, window_from_json
from bot.compliance.notices import notice
from bot.compliance.rules import CHANNELS, PAUSE_REASONS, Debtor, Outgoing, Verdict, candidate_zones
from bot.config import Config
from bot.console.errors import ConsoleError
from bot.console.handoff import AUDIT_MAXLEN, Actor, AlreadyClaimed, Handoff, HandoffStore, NotAllowed, State
from bot.console.plans import (
    PlanMaker,
    PlanOption,
    PlanResult,
    StoredPlan,
    plan_changed_text,
    plan_created_text,
    policy_for,
)
from bot.conversations.deliveries import DeliveryLog
from bot.conversations.history import ConversationHistory, HistoryEntry
from bot.conversations.identity import account_id_of
from bot.conversations.outbound import enqueue_outbound
from bot.email.dead_letters import DeadLetters
from bot.email.envelope import EmailEnvelope
from bot.outreach.payments import is_replaced
from bot.privacy import mask_email, mask_phone
from bot.store.accounts import Account, AccountStore
from bot.store.addresses import AddressBook, AddressStatus
from bot.store.connection import Keys
from bot.store.jobs import Jobs
from bot.store.queues import KeyedQueue
from bot.telegram.links import TelegramLinks
from channels.base import DeliveryReceipt, DeliveryStatus, InboundMessage, OutboundMessage
from channels.cleaning import clean_line, clean_text
from channels.email_parse import MalformedEmail, html_to_text, parse_email
from channels.sms_text import prefer_gsm
from channels.sms_text import segments as sms_segments
from dialogue.backend import BackendError
from dialogue.parsing import ContactWindow, parse_contact_window
from dialogue.plans import Frequency, Plan, PlanError, PlanOutsidePolicy, build_plan, plan_options
from dialogue.rasa_client import RasaError, RasaRejected

__all__ = [
    "FLAGS",
    "PREFERENCES",
    "ConversationView",
    "Desk",
    "DeskError",
    "DialogueEvents",
    "HistoryLine",
    "MailView",
    "ReplyVerdict",
    "dead_letters_done_key",
    "format_moment",
    "read_mail",
    "verified_key",
]

logger = logging.getLogger(__name__)

#: Flags an agent may set or clear: the gate's pauses, and a vulnerability note (no pause).
#: ``crisis`` is set only by the safety screen; a person may clear it.
FLAGS: tuple[str, ...] = (*PAUSE_REASONS, "vulnerable")
#: Flags that pause collection (``pause:<flag>`` in the account's state, read by the gate).
PAUSE_FLAGS = frozenset(PAUSE_REASONS)
#: Preferences an agent may change for the person (``pref:<name>`` in the account's state).
PREFERENCES = ("channel", "language", "contact_window")
#: The delivery error code of a deferred reply an agent cancelled (shown as ``cancelled``).
CANCELLED = "cancelled"
#: Callback formats (the dialogue's ``callback_format``).
CALLBACK_FORMATS = ("phone", "video")

#: The longest reply per channel (SMS: Twilio takes 1,600 characters, and a proactive text gets
#: the opt-out line added; Telegram: 4,096 per message).
MAX_REPLY = {"sms": 1_500, "telegram": 4_000, "email": 20_000}
MAX_NOTE = 4_000
MAX_DETAIL = 500
MAX_WHEN = 200
#: The most of a set-aside mail's text shown (and attached to a conversation).
MAIL_TEXT_MAX = 20_000
#: A plan request's key (from the form): a double click or a retried POST makes one plan.
_REQUEST_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
#: How long a plan request's result is kept (a retried POST gets it back, not a second plan).
PLAN_REQUEST_TTL = 7 * 24 * 3600
#: How long one request may take before another attempt with its key may go ahead.
PLAN_LOCK_SECONDS = 60
#: Plan ids (``RedisDialogueBackend.create_plan``: 16 hex digits; any short token is read).
_PLAN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Conversation ids are opaque and short (``acct-<id>``, ``acct-<id>~<hash>``, ``anon-<key>``).
_CONVERSATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:~@+-]{0,199}$")
_AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
#: Entries kept in each conversation's own audit index.
CONVERSATION_AUDIT_MAXLEN = 10_000
#: How many of the newest audit entries are searched for a conversation's hand-off changes.
#: (A supervisor's page. When ``HandoffStore`` also writes its entries to the conversation's own
#: audit index, ``conversation_audit_key``, no scan is needed and none is done.)
AUDIT_SCAN = 50_000
_AUDIT_CHUNK = 2_000

#: The verification question for each ``accounts.verification_field``, as the dialogue asks it
#: (``utter_ask_verification_answer`` in rasa_project/domain.yml).
VERIFICATION_QUESTIONS: Mapping[str, Mapping[str, str]] = {
    "date_of_birth": {
        "en": "Before we go on, I need to make sure I'm talking to the right person. "
        "Could you tell me your date of birth?",
        "es": "Antes de seguir, necesito asegurarme de que hablo con la persona correcta. "
        "¿Me podría decir su fecha de nacimiento?",
    },
    "postal_code": {
        "en": "Before we go on, I need to make sure I'm talking to the right person. "
        "Could you tell me your postal code?",
        "es": "Antes de seguir, necesito asegurarme de que hablo con la persona correcta. "
        "¿Me podría decir su código postal?",
    },
    "account_last4": {
        "en": "Before we go on, I need to make sure I'm talking to the right person. "
        "Could you tell me the last four digits of your account number?",
        "es": "Antes de seguir, necesito asegurarme de que hablo con la persona correcta. "
        "¿Me podría decir los últimos cuatro dígitos de su número de cuenta?",
    },
}


class DeskError(ConsoleError):
    """An agent's request cannot be done as asked (an unknown flag, an empty reply, no address to
    write to...); the message says why in words the agent can act on."""


class DialogueEvents(Protocol):
    """What the desk needs of the dialogue (``dialogue.rasa_client.RasaClient`` fits)."""

    def append_events(self, conversation_id: str, events: list[Mapping[str, Any]]) -> None: ...

    def tracker(self, conversation_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ReplyVerdict:
    """What became of an agent's reply, at once."""

    #: ``sent`` (queued now), ``deferred`` (held until ``until``) or ``blocked``.
    outcome: str
    rule: str
    reason: str
    outbox_id: str
    channel: str
    until: datetime | None = None
    #: ``deferred``: the moment in the agents' zone, e.g. "Mon 7 Dec 09:00 (America/New_York)".
    until_agent: str = ""
    #: ``deferred``: the same moment in the person's zone, when known.
    until_debtor: str = ""
    #: SMS segments of the text as it leaves (0 for other channels).
    segments: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome, "rule": self.rule, "reason": self.reason, "outbox_id": self.outbox_id,
            "channel": self.channel, "until": self.until.isoformat() if self.until else None,
            "until_agent": self.until_agent, "until_debtor": self.until_debtor, "segments": self.segments,
        }  # fmt: skip


@dataclass(frozen=True)
class HistoryLine:
    """One line of a conversation's history (``HistoryEntry``) with, for what was sent to the
    person, its delivery status: ``queued``, ``sent``, ``delivered``, ``undelivered``,
    ``failed``, ``withheld`` (``rule`` says by what) or ``deferred`` (until ``until``)."""

    id: str
    at: float
    direction: str
    kind: str
    channel: str = ""
    text: str = ""
    #: ``bot``, ``agent:<name>``, ``system``...
    by: str = ""
    ref: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)
    status: str = ""
    rule: str = ""
    #: Why it failed or was withheld, in words (the provider's or the gate's).
    error: str = ""
    until: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "at": self.at, "direction": self.direction, "kind": self.kind,
            "channel": self.channel, "text": self.text, "by": self.by, "ref": self.ref,
            "detail": dict(self.detail), "status": self.status, "rule": self.rule, "error": self.error,
            "until": self.until.isoformat() if self.until else None,
        }  # fmt: skip


@dataclass(frozen=True)
class ConversationView:
    """Everything the conversation page shows beside the history."""

    conversation_id: str
    handoff: Handoff
    account: Account | None
    #: The dialogue's ``verified`` slot; ``False`` when Rasa could not be asked (``verified_known``).
    verified: bool
    verified_known: bool
    #: Flags set on the account (``dispute``, ``vulnerable``...) -> ``{"at", "detail", "by"}``.
    flags: Mapping[str, Mapping[str, str]]
    #: Why it waits for a person: the hand-off's reasons, then the conversation's flags.
    reasons: tuple[str, ...]
    #: ``channel`` / ``language`` / ``contact_window`` (JSON as the dialogue stores it).
    preferences: Mapping[str, str]
    plans: tuple[Mapping[str, Any], ...]
    #: The channels a reply can go on -> the address, masked.
    channels: Mapping[str, str]
    #: Where a reply goes when the agent picks none (where the person last wrote, else their
    #: preferred channel, else the first one known); ``""`` when there is none.
    current_channel: str
    language: str
    #: Per channel: ``{"opted_out": bool, "wrong_party": bool, "unreachable": bool}``.
    address_status: Mapping[str, Mapping[str, bool]]
    #: When the person last wrote, and whether a reply now is inside the reply window (goes at
    #: any hour) or is contact the agent starts (contact hours apply).
    last_inbound_at: datetime | None = None
    in_reply_window: bool = False
    #: ``plans`` described, each with what became of it (active, or replaced by which and when).
    stored_plans: tuple[StoredPlan, ...] = ()


def verified_key(keys: Keys) -> str:
    """The last ``verified`` slot read per conversation (hash: conversation -> ``1``/``0``), so
    the inbox can show it without asking Rasa for every row."""
    return keys.console("verified")


def dead_letters_done_key(keys: Keys) -> str:
    """Dead letters an agent attached to a conversation (set of ``<channel>:<entry id>``): they
    leave the inbox."""
    return keys.console("deadletters", "done")


def format_moment(moment: datetime, zone: str) -> str:
    """``Mon 7 Dec 09:00 (America/New_York)``: a moment as people read it, in ``zone``."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%a} {local.day} {local:%b %H:%M} ({zone})"


def _text(value: str, what: str, limit: int, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise DeskError(f"{what} must be text")
    cleaned = value.replace("\r\n", "\n").strip()
    if required and not cleaned:
        raise DeskError(f"{what} is empty")
    if len(cleaned) > limit:
        raise DeskError(f"{what} is too long ({len(cleaned)} characters; at most {limit})")
    return cleaned


def _amount(value: str | Decimal) -> Decimal:
    """An amount the agent typed ("40", "40.50", "$1,040.50")."""
    if isinstance(value, Decimal):
        return value
    cleaned = re.sub(r"[\s,$€£]", "", str(value))
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise DeskError(f"the instalment: an amount such as 40.50, not {str(value)[:40]!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise DeskError("the instalment must be more than zero")
    return amount


def _mask(channel: str, address: str) -> str:
    if channel == "email":
        return mask_email(address)
    return mask_phone(address)


def _window_json(window: ContactWindow) -> str:
    """The window as the dialogue stores it (``dialogue.actions.preferences.window_json``)."""
    return json.dumps(
        {
            "after": window.after.isoformat() if window.after else None,
            "before": window.before.isoformat() if window.before else None,
            "excluded_weekdays": sorted(window.excluded_weekdays),
            "weekdays_only": window.weekdays_only,
        }
    )


# --- mail set aside -------------------------------------------------------------------------


@dataclass(frozen=True)
class MailView:
    """Mail set aside (a dead letter), readable by a person: plain text only (its HTML is never
    shown, only turned into text), every part from outside to be shown escaped."""

    sender: str
    sender_name: str
    subject: str
    #: The mail's own Message-ID and thread (to answer it in its thread once attached).
    message_id: str
    references: tuple[str, ...]
    text: str
    #: The mail could not be parsed as a whole: what is shown is the best that could be read.
    partial: bool

    def thread(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "subject": self.subject, "references": list(self.references)}


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    if value is None:
        return ""
    try:
        return clean_line(str(make_header(decode_header(str(value)))))
    except (ValueError, LookupError, UnicodeError, TypeError):
        return clean_line(str(value))


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


def read_mail(raw: bytes) -> MailView:
    """What a person can read of ``raw``: the project's parser when it copes, else the standard
    library's lenient one (the mail was set aside because the strict reading failed)."""
    try:
        parsed = parse_email(raw)
    except MalformedEmail:
        pass
    else:
        return MailView(
            sender=parsed.sender, sender_name=parsed.sender_name, subject=parsed.subject,
            message_id=parsed.message_id, references=tuple(parsed.references),
            text=(parsed.full_text or parsed.text)[:MAIL_TEXT_MAX], partial=False,
        )  # fmt: skip
    try:
        message = email.message_from_bytes(raw[:2_000_000], policy=email.policy.compat32)
        plain = html = ""
        for part in message.walk():
            kind = part.get_content_type()
            if kind == "text/plain" and not plain:
                plain = _part_text(part)
            elif kind == "text/html" and not html:
                html = _part_text(part)
        text = plain or (html_to_text(html) if html else "")
        sender_name, sender = email.utils.parseaddr(_header(message, "From"))
        references = tuple(_header(message, "References").split())
        return MailView(
            sender=clean_line(sender), sender_name=clean_line(sender_name),
            subject=_header(message, "Subject"), message_id=_header(message, "Message-ID"),
            references=references,
            text=clean_text(text or raw.decode("utf-8", "replace"))[:MAIL_TEXT_MAX], partial=True,
        )  # fmt: skip
    except Exception:  # adversarial mail has crashed the email package before
        text = clean_text(raw.decode("utf-8", "replace"))[:MAIL_TEXT_MAX]
        return MailView(sender="", sender_name="", subject="", message_id="", references=(), text=text,
                        partial=True)  # fmt: skip


@dataclass(frozen=True)
class _Facts:
    """What one reply needs to know about its conversation (read once)."""

    account: Account | None
    state: Mapping[str, str]
    language: str
    last_inbound_at: datetime | None


# Pop the head of the pending list only if it is still the entry that was delivered (another
# flush may have got there first).
#: How long a releaser holds a due deferred reply before another may take it (it died).
RELEASE_LEASE_SECONDS = 60.0

# A due deferred reply is leased (its score moved past the lease) by one releaser at a time.
_LEASE_DUE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""

_POP_IF_HEAD = """
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then
  redis.call('LPOP', KEYS[1])
  return 1
end
return 0
"""


class Desk:
    """The agent console's actions on conversations. Built once per process
    (``bot/runtime/services.py``); every method is safe to call from several threads."""

    def __init__(
        self,
        *,
        config: Config,
        redis: redis.Redis[bytes],
        keys: Keys,
        clock: Clock,
        accounts: AccountStore,
        addresses: AddressBook,
        gate: ComplianceGate,
        deliveries: DeliveryLog,
        history: ConversationHistory,
        handoff: HandoffStore,
        outbound: KeyedQueue,
        jobs: Jobs,
        rasa: DialogueEvents,
        dead_letters: DeadLetters,
        links: TelegramLinks | None = None,
        email: EmailEnvelope | None = None,
        plans: PlanMaker | None = None,
    ) -> None:
        self.config = config
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.accounts = accounts
        self.addresses = addresses
        self.gate = gate
        self.deliveries = deliveries
        #: The conversations' history (``history()`` is the method that reads it for the page).
        self.conversation_history = history
        self.handoff = handoff
        self.outbound = outbound
        self.jobs = jobs
        self.rasa = rasa
        self.dead_letters = dead_letters
        self.links = links
        #: Email replies are dressed (subject, thread, unsubscribe link) when this is given.
        self.email = email
        #: Stores plans (``RedisDialogueBackend``): without it no plan is set up from the console.
        self.plans = plans
        self._dedupe_ttl = int(config.dedupe.window_hours * 3600)
        self._pop_if_head = redis.register_script(_POP_IF_HEAD)
        self._lease_due = redis.register_script(_LEASE_DUE)

    # --- keys of the desk's own (under the product's prefix) ---------------------------------

    @property
    def deferred_key(self) -> str:
        """Deferred replies: outbox id -> when they may go (sorted set)."""
        return self.keys.console("deferred")

    @property
    def deferred_items_key(self) -> str:
        """Deferred replies: outbox id -> the message and who wrote it (hash)."""
        return self.keys.console("deferred", "items")

    @property
    def pending_events_key(self) -> str:
        """Rasa tracker events not yet delivered, oldest first (list of JSON)."""
        return self.keys.console("tracker", "pending")

    @property
    def verified_key(self) -> str:
        return verified_key(self.keys)

    @property
    def dead_letters_done_key(self) -> str:
        return dead_letters_done_key(self.keys)

    def email_thread_key(self, conversation_id: str) -> str:
        """How to answer, in its thread, mail set aside that an agent attached to this
        conversation (hash: ``source``, ``thread`` JSON: message_id, subject, references)."""
        return self.keys.console("thread", conversation_id)

    def conversation_audit_key(self, conversation_id: str) -> str:
        """The desk's audit entries about one conversation (stream), besides the global audit."""
        return self.keys.conversation_audit(conversation_id)

    # --- taking over and handing back ---------------------------------------------------------

    def claim(self, conversation_id: str, agent: Actor) -> Handoff:
        """The agent takes the conversation: the bot goes silent (in the worker at once, in Rasa
        by a ``pause`` event). ``AlreadyClaimed`` names who has it."""
        self._check(conversation_id)
        before = self.handoff.get(conversation_id)
        after = self.handoff.claim(conversation_id, agent.id, agent.role)
        if before.state is not State.AGENT or before.agent != agent.id:
            self.conversation_history.event(conversation_id, "claimed", by=self._by(agent))
            self._tell_rasa(conversation_id, [{"event": "pause"}])
        return after

    def hand_back(self, conversation_id: str, agent: Actor) -> Handoff:
        """Back to the bot: a ``resume`` event, and the bot tells the person (in their language)
        that they are back with the assistant."""
        self._check(conversation_id)
        after = self.handoff.hand_back(conversation_id, agent.id, agent.role)
        self.conversation_history.event(conversation_id, "handed_back", by=self._by(agent))
        self._tell_rasa(conversation_id, [{"event": "resume"}])
        facts = self._facts(conversation_id)
        try:
            self._send(
                conversation_id, notice("welcome_back", facts.language), None, facts,
                by="bot", kind="handback", verified=False, who=agent,
            )  # fmt: skip
        except DeskError as exc:
            # No address to write to: the hand-back stands; the history says why nothing went.
            self.conversation_history.event(
                conversation_id, "reply_blocked", by="bot", text=notice("welcome_back", facts.language),
                detail={"rule": "no_address", "reason": str(exc)},
            )  # fmt: skip
        return after

    def close(self, conversation_id: str, agent: Actor, outcome: str) -> Handoff:
        """Closed with an outcome (``plan_set_up``, ``paid``, ``debt_advice``, ``dispute_opened``,
        ``no_contact``, ``other``): back to the bot without a message."""
        self._check(conversation_id)
        after = self.handoff.close(conversation_id, agent.id, outcome, agent.role)
        # A closed conversation says nothing more later: its deferred replies are cancelled.
        cancelled = [m.outbox_id for m in self.deferred_replies(conversation_id)
                     if self.cancel_deferred(conversation_id, agent, m.outbox_id)]  # fmt: skip
        self.conversation_history.event(
            conversation_id, "closed", by=self._by(agent),
            detail={"outcome": str(outcome), **({"cancelled": len(cancelled)} if cancelled else {})},
        )  # fmt: skip
        self._tell_rasa(conversation_id, [{"event": "resume"}])
        return after

    def reassign(self, conversation_id: str, to_agent: str, by: Actor) -> Handoff:
        """A supervisor gives a claimed conversation to another agent."""
        self._check(conversation_id)
        if not isinstance(to_agent, str) or not _AGENT_ID.match(to_agent):
            raise DeskError("choose the agent to give the conversation to")
        after = self.handoff.reassign(conversation_id, to_agent, by.id, by.role)
        self.conversation_history.event(
            conversation_id, "reassigned", by=self._by(by), detail={"to": to_agent}
        )
        return after

    def watch(self, conversation_id: str, supervisor: Actor) -> Handoff:
        self._check(conversation_id)
        return self.handoff.watch(conversation_id, supervisor.id, supervisor.role)

    def unwatch(self, conversation_id: str, supervisor: Actor) -> Handoff:
        self._check(conversation_id)
        return self.handoff.unwatch(conversation_id, supervisor.id, supervisor.role)

    # --- replying -----------------------------------------------------------------------------

    def reply(
        self, conversation_id: str, agent: Actor, text: str, channel: str | None = None
    ) -> ReplyVerdict:
        """The agent's words to the person, through the compliance gate (see the module's
        docstring). Replying to a conversation nobody holds claims it first (the agent's words
        and the bot's must not cross); one another agent holds raises ``AlreadyClaimed``."""
        self._check(conversation_id)
        if channel is not None and channel not in CHANNELS:
            raise DeskError(f"unknown channel {channel!r} (choose one of {', '.join(CHANNELS)})")
        self._hold(conversation_id, agent)
        facts = self._facts(conversation_id)
        verified = self._verified(conversation_id)[0]
        verdict = self._send(
            conversation_id,
            text,
            channel,
            facts,
            by=self._by(agent),
            kind="agent",
            verified=verified,
            who=agent,
        )
        self._audit(
            agent, "reply", conversation_id, outcome=verdict.outcome, rule=verdict.rule,
            channel=verdict.channel, outbox_id=verdict.outbox_id, segments=str(verdict.segments),
        )  # fmt: skip
        self._touch(conversation_id, agent)
        return verdict

    def ask_verification(self, conversation_id: str, agent: Actor) -> ReplyVerdict:
        """The dialogue's verification question (for ``accounts.verification_field``), in the
        person's language, sent as the agent's reply."""
        self._check(conversation_id)
        language = self._facts(conversation_id).language
        questions = VERIFICATION_QUESTIONS[self.config.accounts.verification_field]
        return self.reply(conversation_id, agent, questions.get(language) or questions["en"])

    def check_verification(self, conversation_id: str, agent: Actor) -> bool:
        """The person's latest message, checked against the account exactly as the dialogue
        checks a verification answer (the agent never sees the date of birth or the postal
        code, and cannot mark someone verified on a hunch). Right: the dialogue's ``verified``
        slot is set, so the bot, back in charge, may speak of the debt. Wrong: nothing about the
        debt; the history and the audit say so."""
        self._check(conversation_id)
        account_id = account_id_of(conversation_id)
        account = self.accounts.get(account_id) if account_id else None
        if account is None:
            raise DeskError("this conversation has no account to verify against")
        if self.plans is None:
            raise DeskError("verification answers cannot be checked here")
        answer = self._last_inbound_text(conversation_id)
        if not answer:
            raise DeskError("the person has not written an answer yet: ask the verification question first")
        self._hold(conversation_id, agent)
        today = self.clock.now().astimezone(ZoneInfo(self._zone(account))).date()
        matched = self.plans.verify(account.account_id, answer, today=today)
        if matched:
            self.redis.hset(self.verified_key, conversation_id, "1")
            self.conversation_history.event(conversation_id, "verified", by=self._by(agent))
            self._tell_rasa(conversation_id, [{"event": "slot", "name": "verified", "value": True}])
        else:
            self.conversation_history.event(conversation_id, "verification_failed", by=self._by(agent),
                                            text="Their answer does not match the account")  # fmt: skip
        self._audit(agent, "verified" if matched else "verification_failed", conversation_id)
        self._touch(conversation_id, agent)
        return matched

    def _last_inbound_text(self, conversation_id: str) -> str:
        """What the person last wrote in this conversation (its history), or ``""``."""
        for _, fields in self.redis.xrevrange(self.keys.conversation_history(conversation_id), count=200):
            try:
                data = json.loads(fields[b"entry"])
            except (KeyError, ValueError):
                continue
            if data.get("direction") == "in":
                return str(data.get("text") or "")
        return ""

    def segments(self, text: str) -> int:
        """How many SMS segments ``text`` takes as the desk sends it."""
        return sms_segments(prefer_gsm(text))

    def release_idle(self) -> list[str]:
        """Claims nobody touched for ``console.claim_idle_minutes`` go back to the queue, and
        Rasa is told to ``resume``: a waiting conversation is one the bot still helps with, and a
        paused tracker would answer nothing."""
        released = self.handoff.release_idle(self.config.console.claim_idle_minutes)
        for conversation_id in released:
            self.conversation_history.event(conversation_id, "claim_released", by="system",
                                            text="Idle claim returned to the queue")  # fmt: skip
            self._tell_rasa(conversation_id, [{"event": "resume"}])
        return released

    def release_deferred(self) -> int:
        """Deferred replies whose time has come: the gate is asked again (things may have changed
        since) and they are queued, deferred again, or withheld with the rule. Returns how many
        were queued."""
        now = self.clock.timestamp()
        queued = 0
        for member in self.redis.zrangebyscore(self.deferred_key, "-inf", now):
            outbox_id = member.decode()
            # One releaser per reply: whoever leases it handles it. A lease, not a removal: a
            # releaser killed half-way leaves the reply due again after the lease, and queueing
            # it twice queues it once (the outbox id).
            if not self._lease_due(
                keys=[self.deferred_key], args=[outbox_id, now, now + RELEASE_LEASE_SECONDS]
            ):
                continue
            raw = self.redis.hget(self.deferred_items_key, outbox_id)
            if raw is None:
                self.redis.zrem(self.deferred_key, outbox_id)
                continue
            stored = json.loads(raw)
            message = OutboundMessage.from_json(stored["message"])
            if self._release(message, stored):
                queued += 1
        return queued

    # --- working the conversation -------------------------------------------------------------

    def add_note(self, conversation_id: str, agent: Actor, text: str) -> None:
        """An internal note: for agents, never sent."""
        self._check(conversation_id)
        note = _text(text, "the note", MAX_NOTE)
        self.conversation_history.event(conversation_id, "note", by=self._by(agent), text=note)
        self._audit(agent, "note", conversation_id)
        self._touch(conversation_id, agent)

    def set_flag(self, conversation_id: str, agent: Actor, flag: str, on: bool, detail: str = "") -> None:
        """Set or clear a flag on the person's account. The pauses (``dispute``, ``attorney``...)
        are ``pause:<flag>`` in the account's state, which the gate reads for every proactive
        message: they take effect at once. ``crisis`` is set only by the safety screen, and a
        person clearing it allows outreach again. ``vulnerable`` is a note for agents (no pause)."""
        self._check(conversation_id)
        if flag not in FLAGS:
            raise DeskError(f"unknown flag {flag!r} (one of {', '.join(FLAGS)})")
        if flag == "crisis" and on:
            raise DeskError("the crisis flag is set by the safety screen; an agent may only clear it")
        note = _text(detail, "the flag's detail", MAX_DETAIL, required=False)
        account = self._account(conversation_id)
        if account is None:
            raise DeskError("this conversation has no account: flags are kept on accounts")
        name = f"pause:{flag}" if flag in PAUSE_FLAGS else f"flag:{flag}"
        state_key = self.keys.account_state(account.account_id)
        if on:
            value = {"at": self.clock.now().isoformat(), "detail": note, "by": agent.id}
            self.redis.hset(state_key, name, json.dumps(value))
        else:
            self.redis.hdel(state_key, name)
        self.conversation_history.event(
            conversation_id, "flag_set" if on else "flag_cleared", by=self._by(agent),
            detail={"flag": flag, **({"detail": note} if note else {})},
        )  # fmt: skip
        self._audit(agent, "flag", conversation_id, flag=flag, on="1" if on else "0")
        self._touch(conversation_id, agent)

    def set_preference(self, conversation_id: str, agent: Actor, name: str, value: str) -> None:
        """``channel`` (one the person has an address on), ``language`` (one the product speaks) or
        ``contact_window`` (the person's words, "weekdays after 6pm", or the stored JSON; empty
        clears it)."""
        self._check(conversation_id)
        if name not in PREFERENCES:
            raise DeskError(f"unknown preference {name!r} (one of {', '.join(PREFERENCES)})")
        account = self._account(conversation_id)
        if account is None:
            raise DeskError("this conversation has no account: preferences are kept on accounts")
        value = _text(value, f"the {name.replace('_', ' ')}", 300, required=name != "contact_window")
        stored: str | None
        if name == "channel":
            if value not in CHANNELS:
                raise DeskError(f"unknown channel {value!r} (one of {', '.join(CHANNELS)})")
            if self._address(conversation_id, account, value) is None:
                raise DeskError(f"the person has no {value} address")
            stored = value
        elif name == "language":
            languages = [str(lang) for lang in self.config.accounts.languages]
            if value not in languages:
                raise DeskError(f"unknown language {value!r} (one of {', '.join(languages)})")
            stored = value
        else:
            stored = self._contact_window(value) if value else None
        state_key = self.keys.account_state(account.account_id)
        if stored is None:
            self.redis.hdel(state_key, f"pref:{name}")
        else:
            self.redis.hset(state_key, f"pref:{name}", stored)
        self.conversation_history.event(
            conversation_id,
            "preference_set",
            by=self._by(agent),
            detail={"name": name, "value": stored or ""},
        )
        self._audit(agent, "preference", conversation_id, name=name, value=stored or "")
        self._touch(conversation_id, agent)

    def opt_out(self, conversation_id: str, agent: Actor, channel: str, reason: str) -> None:
        """Opt the person's address on ``channel`` out (with the reason, required)."""
        self._opt(conversation_id, agent, channel, reason, out=True)

    def opt_in(self, conversation_id: str, agent: Actor, channel: str, reason: str) -> None:
        """The person asked to hear from us again on ``channel`` (with the reason, required)."""
        self._opt(conversation_id, agent, channel, reason, out=False)

    def record_callback(self, conversation_id: str, agent: Actor, when: str, how: str) -> None:
        """A callback or video call the person asked for, in the same list as the dialogue's."""
        self._check(conversation_id)
        words = _text(when, "when to call", MAX_WHEN)
        if how not in CALLBACK_FORMATS:
            raise DeskError(f"how to call must be one of {', '.join(CALLBACK_FORMATS)}")
        self.redis.xadd(
            self.keys.callbacks,
            {"conversation_id": conversation_id, "account_id": account_id_of(conversation_id) or "",
             "when": words, "how": how, "at": str(self.clock.timestamp()), "by": agent.id},
            maxlen=100_000, approximate=True,
        )  # fmt: skip
        self.conversation_history.event(
            conversation_id, "callback_recorded", by=self._by(agent), text=words, detail={"how": how}
        )
        self._audit(agent, "callback", conversation_id, how=how)
        self._touch(conversation_id, agent)

    # --- payment plans ----------------------------------------------------------------------

    def plan_options(self, conversation_id: str) -> list[PlanOption]:
        """The plans the policy offers this account today (in the person's zone), described in
        words: the same options the dialogue lists."""
        self._check(conversation_id)
        account, policy, today = self._plan_terms(conversation_id)
        try:
            options = plan_options(account.balance, account.currency, policy, today)
        except PlanError as exc:
            raise DeskError(f"no plan can be offered on this account: {exc}") from exc
        return [PlanOption.of(plan, account.country) for plan in options]

    def preview_plan(
        self, conversation_id: str, instalment: str | Decimal, frequency: str, first_due: str | date
    ) -> PlanOption:
        """The plan for these terms, read back (nothing is stored). Outside the policy: a
        ``DeskError`` saying which rule, in words."""
        self._check(conversation_id)
        account, _, _ = self._plan_terms(conversation_id)
        plan = self._build_plan(conversation_id, instalment, frequency, first_due)
        return PlanOption.of(plan, account.country)

    def active_plans(self, conversation_id: str) -> list[StoredPlan]:
        """The account's plans that are still the person's: not replaced by another (what
        reminders go by, ``bot.outreach.payments.is_replaced``), oldest first."""
        self._check(conversation_id)
        return [plan for plan in self._stored_plans(self._account(conversation_id)) if plan.active]

    def create_plan(
        self,
        conversation_id: str,
        agent: Actor,
        instalment: str | Decimal,
        frequency: str,
        first_due: str | date,
        *,
        confirmed: bool,
        request_key: str,
        replaces: str | None = None,
    ) -> PlanResult:
        """Set up the plan the person agreed to (``confirmed``: the agent ticked that they did),
        once per ``request_key`` (the form's: a double click or a retried POST gets the first
        result back, ``repeated``), then tell the person the plan and the payment link in their
        language through the agents' reply path (the gate decides; the verdict is in the
        result). Stored, announced (``plan.created``) and linked exactly as the bot does it.
        Nothing about the debt before verification.

        ``replaces``: a change of plan. The new plan replaces that one (one of the account's
        active plans, else ``DeskError``), which ends: ``replaced_by`` / ``replaced_at`` in its
        state, the creditor's ``plan.replaced``, no more reminders for it; the person is told the
        earlier plan ended. The writes go intent, act, result, so a crash between any two leaves
        the person exactly one plan to be reminded of, and the retry with the same
        ``request_key`` finishes the change (no second plan, no second message):

        1. the old plan's state records the change started (``replacing`` = the request's key,
           ``replacing_after`` = how many plans the account has), atomically, once: a second
           change of the same plan is refused while this one is fresh;
        2. the new plan is stored (once per request, as any plan): from here reminders skip the
           old plan (``is_replaced``: the account has more plans than when the change started);
        3. the old plan is marked replaced and ``plan.replaced`` announced (once);
        4. the person is told (a fixed outbox id), the history and audit written, and the
           request's result kept."""
        self._check(conversation_id)
        if not isinstance(request_key, str) or not _REQUEST_KEY.match(request_key):
            raise DeskError("this form is out of date: preview the plan again, then set it up")
        if replaces is not None and (not isinstance(replaces, str) or not _PLAN_ID.match(replaces)):
            raise DeskError("the plan to change is not one of this account's plans")
        marker = self.keys.console("plans", "request", request_key)
        done = self.redis.get(marker)
        if done is not None:
            return PlanResult.from_json(json.loads(done), repeated=True)
        if not confirmed:
            raise DeskError(
                "Tick \u201cthe person agreed to this schedule\u201d first: a plan is only set up with "
                "their agreement."
            )
        account, _, _ = self._plan_terms(conversation_id)
        if not self._is_verified(conversation_id):
            raise DeskError(
                "The person is not verified: nothing about the debt may be said yet. Ask the "
                "verification question first, check the answer, then mark them verified."
            )
        if replaces is not None:
            self._check_replaceable(account.account_id, replaces, request_key)
        plan = self._build_plan(conversation_id, instalment, frequency, first_due)
        facts = self._facts(conversation_id)
        addresses = self._addresses(conversation_id, account)
        channel = self._current_channel(conversation_id, facts.state, addresses)
        if not channel:
            raise DeskError("the person has no address to send the plan and its payment link to")
        # One attempt at a time per request; the steps below are idempotent (the backend's
        # once-marker, a fixed outbox id, a once history event), so a crashed attempt is
        # finished by the next one with the same key.
        lock = f"{marker}:lock"
        if not self.redis.set(lock, agent.id, nx=True, ex=PLAN_LOCK_SECONDS):
            raise DeskError(
                "This plan is being set up already (a second click?): reload the page in a moment."
            )
        try:
            self._hold(conversation_id, agent)
            assert self.plans is not None  # _plan_terms checked it
            if replaces is not None:
                self._start_replacing(account.account_id, replaces, request_key)
            created = self.plans.create_plan(
                account.account_id, conversation_id, plan, kind="plan", channel=channel,
                message_id=f"console:{request_key}",
            )  # fmt: skip
            if replaces is not None:
                try:
                    self.plans.replace_plan(replaces, created.plan_id, at=self.clock.now())
                except BackendError as exc:
                    raise DeskError(f"The plan could not be changed: {exc}") from exc
            words = plan_changed_text if replaces is not None else plan_created_text
            text = words(plan, created.payment_link, facts.language, channel, account.country)
            outbox_id = "agent:" + hashlib.sha256(f"plan:{request_key}".encode()).hexdigest()[:32]
            verdict = self._send(
                conversation_id, text, channel, facts, by=self._by(agent), kind="agent", verified=True,
                who=agent, outbox_id=outbox_id,
            )  # fmt: skip
            option = PlanOption.of(plan, account.country)
            self.conversation_history.event(
                conversation_id, "plan_created", by=self._by(agent), text=option.summary, once=request_key,
                detail={"plan_id": created.plan_id, "frequency": option.frequency,
                        "instalment": str(option.instalment), "first_due": option.first_due.isoformat(),
                        "count": option.count, "message": verdict.outcome,
                        **({"replaces": replaces} if replaces is not None else {})},
            )  # fmt: skip
            if replaces is not None:
                self.conversation_history.event(
                    conversation_id, "plan_replaced", by=self._by(agent), once=request_key,
                    text=f"Plan {replaces} ended: replaced by plan {created.plan_id}",
                    detail={"plan_id": replaces, "replaced_by": created.plan_id},
                )  # fmt: skip
            self._audit(
                agent, "plan", conversation_id, plan_id=created.plan_id, frequency=option.frequency,
                count=str(option.count), outcome=verdict.outcome, rule=verdict.rule,
                outbox_id=verdict.outbox_id,
            )  # fmt: skip
            if replaces is not None:
                self._audit(agent, "plan_replaced", conversation_id, plan_id=replaces,
                            replaced_by=created.plan_id)  # fmt: skip
            self._touch(conversation_id, agent)
            result = PlanResult(
                created.plan_id, created.payment_link, option, verdict.to_json(), replaced=replaces or ""
            )
            self.redis.set(marker, json.dumps(result.to_json()), ex=PLAN_REQUEST_TTL)
            return result
        finally:
            self.redis.delete(lock)

    def _plan_state_key(self, plan_id: str) -> str:
        """What became of a plan (``bot.outreach.payments``: paid, reminded, replaced...)."""
        return f"{self.keys.plan(plan_id)}:state"

    def _check_replaceable(self, account_id: str, plan_id: str, request_key: str) -> None:
        """``plan_id`` is one of the account's plans and still active, or this request's own
        change of it (a retry finishing what a crashed attempt started)."""
        plans_key = self.keys.account_plans(account_id)
        ids = [raw.decode() for raw in self.redis.lrange(plans_key, 0, -1)]
        if plan_id not in ids or not self.redis.exists(self.keys.plan(plan_id)):
            raise DeskError("The plan to change is not one of this account's plans: reload the page.")
        state = _decoded(self.redis.hgetall(self._plan_state_key(plan_id)))
        if state.get("replacing") == request_key:
            return
        if is_replaced(state, len(ids)):
            raise DeskError(
                "That plan was changed already (it has been replaced): reload the page to see the "
                "person's current plan."
            )

    def _start_replacing(self, account_id: str, plan_id: str, request_key: str) -> None:
        """Record, on the old plan, that this request is changing it (before the new plan is
        stored): once, atomically; a fresh change by another request is refused, a stale one
        (its new plan never stored) taken over."""
        state_key = self._plan_state_key(plan_id)
        plans_key = self.keys.account_plans(account_id)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(state_key, plans_key)
                    # Watched, the pipeline answers at once (typed as a pipeline).
                    state = _decoded(cast("dict[bytes, bytes]", pipe.hgetall(state_key)))
                    count = cast("int", pipe.llen(plans_key))
                    if state.get("replacing") == request_key:
                        pipe.unwatch()
                        return
                    if is_replaced(state, count):
                        raise DeskError(
                            "That plan was changed already (it has been replaced): reload the page "
                            "to see the person's current plan."
                        )
                    now = self.clock.timestamp()
                    try:
                        started = float(state.get("replacing_at", ""))
                    except ValueError:
                        started = None
                    if state.get("replacing") and started is not None and now - started < PLAN_LOCK_SECONDS:
                        raise DeskError(
                            "That plan is being changed right now (another agent, or another tab): "
                            "reload the page in a minute."
                        )
                    pipe.multi()
                    pipe.hset(state_key, mapping={
                        "replacing": request_key, "replacing_after": str(count), "replacing_at": repr(now),
                    })  # fmt: skip
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def _plan_terms(self, conversation_id: str) -> tuple[Account, Any, date]:
        """The account, its plan policy, and today in the person's zone."""
        account = self._account(conversation_id)
        if account is None:
            raise DeskError("this conversation has no account: plans are set up on accounts")
        if self.plans is None:
            raise DeskError("payment plans cannot be set up from the console here (no plan store)")
        policy = policy_for(self.plans.settings(), account.country)
        today = self.clock.now().astimezone(ZoneInfo(self._zone(account))).date()
        return account, policy, today

    def _build_plan(
        self, conversation_id: str, instalment: str | Decimal, frequency: str, first_due: str | date
    ) -> Plan:
        account, policy, today = self._plan_terms(conversation_id)
        amount = _amount(instalment)
        try:
            how_often = Frequency(str(frequency).strip().lower())
        except ValueError:
            raise DeskError(f"how often: one of {', '.join(f.value for f in policy.frequencies)}") from None
        if isinstance(first_due, date):
            day = first_due
        else:
            try:
                day = date.fromisoformat(str(first_due).strip())
            except ValueError:
                raise DeskError("the first payment date: a date such as 2026-03-16") from None
        try:
            return build_plan(account.balance, account.currency, amount, how_often, day, policy, today)
        except PlanOutsidePolicy as exc:
            raise DeskError(f"Outside the plan policy: {exc}.") from exc
        except PlanError as exc:
            raise DeskError(f"Not a plan: {exc}.") from exc

    def _is_verified(self, conversation_id: str) -> bool:
        """The dialogue's ``verified`` slot; while Rasa cannot be asked, the last one the console
        read or set."""
        verified, known = self._verified(conversation_id)
        if known:
            return verified
        return self.redis.hget(self.verified_key, conversation_id) == b"1"

    def _zone(self, account: Account) -> str:
        """The person's zone (the first the gate would use), else the agents'."""
        if account.timezone:
            return account.timezone
        debtor = Debtor(account_id=account.account_id, timezone=account.timezone, phone=account.phone,
                        postal_code=account.postal_code, country=account.country)  # fmt: skip
        zones = candidate_zones(debtor, self.gate.rules_for(account))
        return zones[0] if zones else self.config.console.zone

    def attach_dead_letter(
        self, dead_letter_id: str, account_id: str, agent: Actor, channel: str = "email"
    ) -> str:
        """Mail set aside (unreadable) belongs to ``account_id``'s conversation: its readable text
        goes into that conversation's history as what the person wrote (once), the sender's
        address becomes where an email reply goes if the account has none, and the thread is
        kept so the agent's answer is a reply in it; the conversation waits for a person (reason
        ``dead_letter``) and the letter leaves the inbox. Returns the conversation id."""
        if channel not in CHANNELS:
            raise DeskError(f"unknown channel {channel!r}")
        if not isinstance(dead_letter_id, str) or not re.match(r"^\d{1,20}-\d{1,20}$", dead_letter_id):
            raise DeskError("no such mail")
        account_id = account_id.strip() if isinstance(account_id, str) else ""
        account = self.accounts.get(account_id) if account_id and len(account_id) <= 100 else None
        if account is None:
            raise DeskError(f"no account {account_id[:100]!r}: check the account id")
        rows = self.redis.xrange(self.keys.dead_letters(channel), dead_letter_id, dead_letter_id)
        if not rows:
            raise DeskError("that mail is no longer kept")
        fields = {k.decode(): v for k, v in rows[0][1].items()}
        mail = read_mail(fields.get("raw", b""))
        conversation_id = f"acct-{account.account_id}"
        source = f"deadletter:{channel}:{dead_letter_id}"
        if channel == "email":
            self.redis.hset(self.email_thread_key(conversation_id),
                            mapping={"source": source, "thread": json.dumps(mail.thread())})  # fmt: skip
        self.conversation_history.inbound(
            conversation_id, source=source, channel=channel, text=mail.text or "(no readable text)",
            kind="dead_letter", address=mail.sender if "@" in mail.sender else "",
        )  # fmt: skip
        self.handoff.escalate(conversation_id, "dead_letter")
        self.redis.sadd(self.dead_letters_done_key, f"{channel}:{dead_letter_id}")
        self._audit(agent, "attach_dead_letter", conversation_id, dead_letter=f"{channel}:{dead_letter_id}")
        return conversation_id

    def read_dead_letter(
        self, channel: str, dead_letter_id: str, agent: Actor | None = None
    ) -> MailView | None:
        """A set-aside mail as a person may read it (``None``: not kept). Reading it is audited
        when ``agent`` is given."""
        if channel not in CHANNELS or not re.match(r"^\d{1,20}-\d{1,20}$", dead_letter_id or ""):
            return None
        rows = self.redis.xrange(self.keys.dead_letters(channel), dead_letter_id, dead_letter_id)
        if not rows:
            return None
        fields = {k.decode(): v for k, v in rows[0][1].items()}
        if agent is not None:
            self._audit(agent, "read_dead_letter", f"deadletter:{channel}:{dead_letter_id}")
        return read_mail(fields.get("raw", b""))

    def deferred_replies(self, conversation_id: str) -> list[OutboundMessage]:
        """The replies to this conversation that wait for their moment (the gate deferred them)."""
        found = []
        for _, raw in self.redis.hscan_iter(self.deferred_items_key, count=500):
            try:
                message = OutboundMessage.from_json(json.loads(raw)["message"])
            except (KeyError, ValueError, TypeError):
                continue
            if message.conversation_id == conversation_id:
                found.append(message)
        return sorted(found, key=lambda m: m.created_at)

    def cancel_deferred(self, conversation_id: str, agent: Actor, outbox_id: str) -> bool:
        """A deferred reply will not go after all: ``True`` when it was still waiting (one that
        went meanwhile cannot be called back)."""
        self._check(conversation_id)
        raw = self.redis.hget(self.deferred_items_key, outbox_id) if isinstance(outbox_id, str) else None
        if raw is None:
            return False
        message = OutboundMessage.from_json(json.loads(raw)["message"])
        if message.conversation_id != conversation_id:
            raise DeskError("that reply belongs to another conversation")
        # Whoever removes it from the set owns it: the releaser and a cancel never both act.
        if not self.redis.zrem(self.deferred_key, outbox_id):
            return False
        self.redis.hdel(self.deferred_items_key, outbox_id)
        self.deliveries.record(DeliveryReceipt(
            outbox_id=outbox_id, channel=message.channel, status=DeliveryStatus.FAILED,
            error_code=CANCELLED, error_message=f"cancelled by {agent.id} before it went",
        ))  # fmt: skip
        self.conversation_history.event(
            conversation_id, "reply_cancelled", by=self._by(agent), text=message.text,
            detail={"outbox_id": outbox_id, "channel": message.channel},
        )  # fmt: skip
        self._audit(agent, "cancel_deferred", conversation_id, outbox_id=outbox_id, channel=message.channel)
        self._touch(conversation_id, agent)
        return True

    def reveal_address(self, conversation_id: str, agent: Actor, channel: str) -> str:
        """The person's full address on ``channel`` (to call them back, say): the console shows
        addresses masked, and each reveal is audited."""
        self._check(conversation_id)
        if channel not in CHANNELS:
            raise DeskError(f"unknown channel {channel!r} (one of {', '.join(CHANNELS)})")
        address = self._address(conversation_id, self._account(conversation_id), channel)
        if not address:
            raise DeskError(f"the person has no {channel} address")
        self._audit(agent, "reveal_address", conversation_id, channel=channel)
        return address

    # --- reading ------------------------------------------------------------------------------

    def view(self, conversation_id: str) -> ConversationView:
        self._check(conversation_id)
        handoff = self.handoff.get(conversation_id)
        facts = self._facts(conversation_id)
        account, state = facts.account, facts.state
        verified, known = self._verified(conversation_id)
        flags: dict[str, dict[str, str]] = {}
        preferences: dict[str, str] = {}
        for name, raw in state.items():
            if name.startswith(("pause:", "flag:")):
                try:
                    data = json.loads(raw)
                except ValueError:
                    data = {}
                data = data if isinstance(data, dict) else {}
                flags[name.split(":", 1)[1]] = {k: str(data.get(k) or "") for k in ("at", "detail", "by")}
            elif name.startswith("pref:"):
                preferences[name.removeprefix("pref:")] = raw
        conversation_flags = self.redis.hgetall(self.keys.conversation_flags(conversation_id))
        reasons = dict.fromkeys(handoff.reasons)
        for reason in sorted(conversation_flags, key=lambda r: float(conversation_flags[r] or 0)):
            reasons.setdefault(reason.decode(), None)
        addresses = self._addresses(conversation_id, account)
        statuses = {
            channel: self._status_flags(self.addresses.status(channel, address))
            for channel, address in addresses.items()
        }
        window = self.gate.rules_for(account).reply_window
        last = facts.last_inbound_at
        return ConversationView(
            conversation_id=conversation_id,
            handoff=handoff,
            account=account,
            verified=verified,
            verified_known=known,
            flags=flags,
            reasons=tuple(reasons),
            preferences=preferences,
            plans=tuple(self._plans(account)),
            stored_plans=tuple(self._stored_plans(account)),
            channels={channel: _mask(channel, address) for channel, address in addresses.items()},
            current_channel=self._current_channel(conversation_id, state, addresses),
            language=facts.language,
            address_status=statuses,
            last_inbound_at=last,
            in_reply_window=last is not None and timedelta(0) <= self.clock.now() - last <= window,
        )

    def history(self, conversation_id: str, after: str = "") -> list[HistoryLine]:
        """The conversation's history (after the entry ``after``), each message sent to the
        person with its delivery status."""
        self._check(conversation_id)
        if after and not re.match(r"^\d{1,20}-\d{1,20}$", after):
            raise DeskError("after must be a history entry id")
        entries = self.conversation_history.read(conversation_id, after=after)
        outs = [e for e in entries if e.direction == "out" and e.ref]
        pipe = self.redis.pipeline(transaction=False)
        for entry in outs:
            pipe.hgetall(self.keys.delivery(entry.ref))
            pipe.zscore(self.deferred_key, entry.ref)
        fetched = pipe.execute() if outs else []
        known: dict[str, tuple[dict[bytes, bytes], float | None]] = {}
        for i, entry in enumerate(outs):
            known[entry.ref] = (fetched[2 * i], fetched[2 * i + 1])
        return [self._line(entry, known.get(entry.ref)) for entry in entries]

    def audit(self, conversation_id: str, limit: int = 500) -> list[dict[str, str]]:
        """The audit entries about this conversation, newest last: the desk's own (from the
        conversation's index) and the hand-off's changes (claims, escalations, hand-backs...,
        searched among the newest ``AUDIT_SCAN`` entries of the audit stream)."""
        self._check(conversation_id)
        limit = max(1, min(int(limit), 5_000))
        found: list[tuple[float, str, dict[str, str]]] = []
        for entry_id, fields in self.redis.xrevrange(
            self.conversation_audit_key(conversation_id), count=limit
        ):
            row = {k.decode(): v.decode() for k, v in fields.items()}
            found.append((float(row.get("at") or 0), entry_id.decode(), row))
        indexed = any(row.get("kind") == "handoff" for _, _, row in found)
        handoffs = 0
        last = "+"
        scanned = AUDIT_SCAN if indexed else 0
        while scanned < AUDIT_SCAN and handoffs < limit:
            rows = self.redis.xrevrange(self.keys.audit, last, "-", count=_AUDIT_CHUNK)
            if last != "+" and rows and rows[0][0].decode() == last:
                rows = rows[1:]
            if not rows:
                break
            for entry_id, fields in rows:
                if (
                    fields.get(b"kind") == b"handoff"
                    and fields.get(b"conversation_id") == conversation_id.encode()
                ):
                    row = {k.decode(): v.decode() for k, v in fields.items()}
                    found.append((float(row.get("at") or 0), entry_id.decode(), row))
                    handoffs += 1
            scanned += len(rows)
            last = rows[-1][0].decode()
        found.sort(key=lambda item: (item[0], item[1]))
        return [dict(row, id=entry_id) for _, entry_id, row in found[-limit:]]

    # --- Rasa's tracker ---------------------------------------------------------------------

    def flush_tracker_events(self) -> int:
        """Deliver the tracker events that waited for Rasa, oldest first; stops at the first that
        still cannot go. Returns how many were delivered."""
        delivered = 0
        while True:
            head = self.redis.lindex(self.pending_events_key, 0)
            if head is None:
                return delivered
            item = json.loads(head)
            try:
                self.rasa.append_events(item["conversation_id"], item["events"])
            except RasaRejected as exc:
                # Rasa refused the events themselves: retrying will not help.
                logger.error("conversation %s: Rasa refused tracker events (%s); dropped",
                             item["conversation_id"], exc)  # fmt: skip
            except (RasaError, OSError) as exc:
                logger.info("Rasa still unreachable (%s): %d tracker event batch(es) wait",
                            exc, self.redis.llen(self.pending_events_key))  # fmt: skip
                return delivered
            else:
                delivered += 1
            self._pop_if_head(keys=[self.pending_events_key], args=[head])

    def pending_tracker_events(self) -> int:
        """How many batches of tracker events wait for Rasa."""
        return int(self.redis.llen(self.pending_events_key))

    def _tell_rasa(self, conversation_id: str, events: list[Mapping[str, Any]]) -> None:
        """Add events to Rasa's tracker; when Rasa cannot take them, or earlier events still wait,
        they wait (in order) for ``flush_tracker_events``."""
        waiting = self.redis.llen(self.pending_events_key) > 0
        if not waiting:
            try:
                self.rasa.append_events(conversation_id, events)
                return
            except RasaRejected as exc:
                logger.error("conversation %s: Rasa refused tracker events (%s)", conversation_id, exc)
                return
            except (RasaError, OSError) as exc:
                logger.warning("conversation %s: Rasa unreachable (%s); the tracker events wait",
                               conversation_id, exc)  # fmt: skip
        payload = json.dumps({"conversation_id": conversation_id, "events": list(events),
                              "at": self.clock.timestamp()})  # fmt: skip
        self.redis.rpush(self.pending_events_key, payload)
        if waiting:
            # Behind earlier events: perhaps Rasa is back, and all of them go now.
            self.flush_tracker_events()

    def _verified(self, conversation_id: str) -> tuple[bool, bool]:
        """The dialogue's ``verified`` slot and whether it could be read (kept for the inbox)."""
        try:
            tracker = self.rasa.tracker(conversation_id)
        except (RasaError, OSError) as exc:
            logger.info("conversation %s: Rasa unreachable (%s); verified unknown", conversation_id, exc)
            return False, False
        slots = tracker.get("slots") if isinstance(tracker, Mapping) else None
        verified = bool(slots.get("verified")) if isinstance(slots, Mapping) else False
        self.redis.hset(self.verified_key, conversation_id, "1" if verified else "0")
        return verified, True

    # --- the reply path ---------------------------------------------------------------------

    def _send(
        self,
        conversation_id: str,
        text: str,
        channel: str | None,
        facts: _Facts,
        *,
        by: str,
        kind: str,
        verified: bool,
        who: Actor,
        outbox_id: str = "",
    ) -> ReplyVerdict:
        account = facts.account
        addresses = self._addresses(conversation_id, account)
        chosen = channel or self._current_channel(conversation_id, facts.state, addresses)
        if not chosen:
            raise DeskError("the person has no address to write to")
        address = addresses.get(chosen)
        if address is None:
            raise DeskError(f"the person has no {chosen} address")
        words = _text(text, "the reply", MAX_REPLY[chosen])
        if chosen == "sms":
            words = prefer_gsm(words)
        outbox_id = outbox_id or f"{'agent' if kind == 'agent' else kind}:{uuid.uuid4().hex}"
        now = self.clock.now()
        window = self.gate.rules_for(account).reply_window
        last = facts.last_inbound_at
        proactive = not (last is not None and timedelta(0) <= now - last <= window)

        def blocked(rule: str, reason: str) -> ReplyVerdict:
            self.conversation_history.event(
                conversation_id, "reply_blocked", by=by, text=words,
                detail={"rule": rule, "reason": reason, "channel": chosen, "outbox_id": outbox_id},
            )  # fmt: skip
            return ReplyVerdict("blocked", rule, reason, outbox_id, chosen)

        refusal = self._address_refusal(chosen, address)
        if refusal is not None:
            return blocked(*refusal)
        decision = self.gate.decide(
            account, chosen, address,
            Outgoing(channel=chosen, text=words, language=facts.language, proactive=proactive,
                     verified=verified, mini_miranda_said=True, kind=kind),
            now=now, outbox_id=outbox_id,
        )  # fmt: skip
        if decision.verdict is Verdict.BLOCK:
            return blocked(decision.rule, decision.reason)
        message = OutboundMessage(
            outbox_id=outbox_id, channel=chosen, recipient=address, text=decision.text,
            conversation_id=conversation_id, proactive=proactive, created_at=now.timestamp(),
            language=facts.language, kind=kind,
        )  # fmt: skip
        if chosen == "email" and self.email is not None:
            # In the person's own thread when they wrote by email ("Re: <their subject>",
            # In-Reply-To and References), as the bot's answers are.
            answering = self._email_thread(conversation_id)
            # Without their subject (not recorded), the usual subject, still in their thread.
            [message] = self.email.dress(
                [message], account_id=account.account_id if account else None, language=facts.language,
                answering=answering if answering is not None and answering.raw.get("subject") else None,
            )  # fmt: skip
            if answering is not None:
                references = tuple(answering.raw.get("references") or ())
                message = replace(message, in_reply_to=answering.external_id, references=references)
        count = self.segments(message.text) if chosen == "sms" else 0
        if decision.verdict is Verdict.DEFER and decision.until is not None:
            until = decision.until.astimezone(timezone.utc)
            self.conversation_history.outbound(
                conversation_id, outbox_id=outbox_id, channel=chosen, text=message.text, kind=kind, by=by,
                detail={"deferred_until": until.isoformat(), "rule": decision.rule},
            )  # fmt: skip
            stored = {"message": message.to_json(), "by": by, "agent": who.id, "kind": kind,
                      "verified": verified}  # fmt: skip
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(self.deferred_items_key, outbox_id, json.dumps(stored))
            pipe.zadd(self.deferred_key, {outbox_id: until.timestamp()})
            pipe.execute()
            zone = (
                (decision.zones[0] if decision.zones else "") or (account.timezone if account else "") or ""
            )
            return ReplyVerdict(
                "deferred", decision.rule, decision.reason, outbox_id, chosen, until=until,
                until_agent=format_moment(until, self.config.console.zone),
                until_debtor=format_moment(until, zone) if zone else "", segments=count,
            )  # fmt: skip
        self.conversation_history.outbound(
            conversation_id, outbox_id=outbox_id, channel=chosen, text=message.text, kind=kind, by=by
        )
        enqueue_outbound(self.outbound, self.jobs, self.keys, [message], self._dedupe_ttl)
        self._tell_rasa(conversation_id, [self._bot_event(message, by, who)])
        return ReplyVerdict("sent", decision.rule, decision.reason, outbox_id, chosen, segments=count)

    def _release(self, message: OutboundMessage, stored: Mapping[str, Any]) -> bool:
        """A deferred reply's time came: queue it (``True``), defer it again or withhold it."""
        outbox_id, conversation_id = message.outbox_id, message.conversation_id
        account_id = account_id_of(conversation_id)
        account = self.accounts.get(account_id) if account_id else None
        text = message.text
        refusal = self._address_refusal(message.channel, message.recipient)
        if refusal is None:
            decision = self.gate.decide(
                account, message.channel, message.recipient,
                Outgoing(channel=message.channel, text=message.text, language=message.language or "en",
                         proactive=message.proactive, verified=bool(stored.get("verified")),
                         mini_miranda_said=True, kind=message.kind),
                outbox_id=outbox_id,
            )  # fmt: skip
            if decision.verdict is Verdict.DEFER and decision.until is not None:
                self.redis.zadd(self.deferred_key, {outbox_id: decision.until.timestamp()})
                return False
            refusal = (decision.rule, decision.reason) if decision.verdict is Verdict.BLOCK else None
            text = decision.text or text
        if refusal is not None:
            rule, reason = refusal
            self.deliveries.record(DeliveryReceipt(
                outbox_id=outbox_id, channel=message.channel, status=DeliveryStatus.FAILED,
                error_code=f"compliance:{rule}", error_message=reason,
            ))  # fmt: skip
            self.conversation_history.event(
                conversation_id, "reply_blocked", by=str(stored.get("by") or "bot"),
                detail={"rule": rule, "reason": reason, "channel": message.channel, "outbox_id": outbox_id},
            )  # fmt: skip
            self._forget_deferred(outbox_id)
            return False
        ready = replace(message, text=text)
        enqueue_outbound(self.outbound, self.jobs, self.keys, [ready], self._dedupe_ttl)
        who = Actor.of(str(stored.get("agent") or "system"), "system")
        self._tell_rasa(conversation_id, [self._bot_event(ready, str(stored.get("by") or "bot"), who)])
        self._forget_deferred(outbox_id)  # last: a kill before this releases it again, once
        return True

    def _forget_deferred(self, outbox_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(self.deferred_key, outbox_id)
        pipe.hdel(self.deferred_items_key, outbox_id)
        pipe.execute()

    @staticmethod
    def _bot_event(message: OutboundMessage, by: str, who: Actor) -> dict[str, Any]:
        metadata: dict[str, Any] = {"outbox_id": message.outbox_id, "channel": message.channel}
        if by.startswith("agent:"):
            metadata["agent"] = who.id
        else:
            metadata["handback_by"] = who.id
        return {"event": "bot", "text": message.text, "metadata": metadata}

    def _address_refusal(self, channel: str, address: str) -> tuple[str, str] | None:
        """What the gate leaves to its callers for replies: an opted-out address gets nothing but
        its one confirmation (the worker sends that), an unreachable one cannot be reached."""
        status = self.addresses.status(channel, address)
        if status.opted_out_at is not None:
            return "opted_out", (
                f"The person opted out of {channel} messages on this address. Nothing more may be "
                "sent there unless they opt back in (record it with a reason), or choose another channel."
            )
        if status.unreachable_at is not None:
            return "unreachable", (
                f"The {channel} address is marked unreachable (messages to it failed). "
                "Choose another channel."
            )
        return None

    # --- reading the conversation's facts ---------------------------------------------------

    def _facts(self, conversation_id: str) -> _Facts:
        account = self._account(conversation_id)
        state: dict[str, str] = {}
        if account is not None:
            raw = self.redis.hgetall(self.keys.account_state(account.account_id))
            state = {k.decode(): v.decode() for k, v in raw.items()}
        default = str(self.config.accounts.default_language)
        language = state.get("pref:language") or (account.language if account else "") or default
        if language not in ("en", "es"):
            language = default
        moments = [float(state["last_inbound_at"])] if state.get("last_inbound_at") else []
        last_in = self._last_inbound(conversation_id)
        if last_in is not None:
            moments.append(last_in)
        last = datetime.fromtimestamp(max(moments), timezone.utc) if moments else None
        return _Facts(account=account, state=state, language=language, last_inbound_at=last)

    def _last_inbound(self, conversation_id: str) -> float | None:
        """When the person last wrote in this conversation (its history), if recently enough to
        be among the last entries."""
        rows = self.redis.xrevrange(self.keys.conversation_history(conversation_id), count=200)
        for _, fields in rows:
            try:
                data = json.loads(fields[b"entry"])
            except (KeyError, ValueError):
                continue
            if data.get("direction") == "in":
                return float(data.get("at") or 0) or None
        return None

    def _email_thread(self, conversation_id: str) -> InboundMessage | None:
        """The person's latest email in this conversation, as much of it as threading needs
        (Message-ID, subject, References): from its history entry's detail, or from what the
        desk kept when an agent attached mail set aside. ``None``: they never wrote by email."""
        rows = self.redis.xrevrange(self.keys.conversation_history(conversation_id), count=500)
        for _, fields in rows:
            try:
                data = json.loads(fields[b"entry"])
            except (KeyError, ValueError):
                continue
            if data.get("direction") != "in" or data.get("channel") != "email":
                continue
            message_id = str(data.get("ref") or "").removeprefix("deadletter:email:").removeprefix("email:")
            detail = data.get("detail") if isinstance(data.get("detail"), dict) else {}
            kept = {k.decode(): v.decode("utf-8", "replace") for k, v in
                    self.redis.hgetall(self.email_thread_key(conversation_id)).items()}  # fmt: skip
            if kept.get("source") == data.get("ref"):
                detail = {**json.loads(kept.get("thread") or "{}"), **detail}
                message_id = str(detail.get("message_id") or "")
            if not message_id.startswith("<"):
                return None  # no Message-ID to answer (a dead letter without one)
            references = [str(r) for r in detail.get("references") or () if isinstance(r, str)]
            return InboundMessage(
                channel="email", external_id=message_id, sender="", text="",
                raw={"subject": str(detail.get("subject") or ""), "references": references},
            )  # fmt: skip
        return None

    def _account(self, conversation_id: str) -> Account | None:
        account_id = account_id_of(conversation_id)
        return self.accounts.get(account_id) if account_id else None

    def _addresses(self, conversation_id: str, account: Account | None) -> dict[str, str]:
        """Where a reply can go, per enabled channel: the account's address, else where the
        person wrote from (an email thread from another address answers that address)."""
        _, contacts = self.conversation_history.contacts(conversation_id)
        enabled = {
            "sms": self.config.channels.sms.enabled,
            "telegram": self.config.channels.telegram.enabled,
            "email": self.config.channels.email.enabled,
        }
        found: dict[str, str] = {}
        for channel in CHANNELS:
            if not enabled.get(channel):
                continue
            address = self._address(conversation_id, account, channel, contacts)
            if address:
                found[channel] = address
        return found

    def _address(
        self,
        conversation_id: str,
        account: Account | None,
        channel: str,
        contacts: Mapping[str, str] | None = None,
    ) -> str | None:
        if contacts is None:
            _, contacts = self.conversation_history.contacts(conversation_id)
        if channel == "email" and "~" in conversation_id and contacts.get("email"):
            return contacts["email"]
        if account is not None:
            if channel == "sms" and account.phone:
                return account.phone
            if channel == "email" and account.email:
                return account.email
            if channel == "telegram" and self.links is not None:
                chat = self.links.chat_for(account.account_id)
                if chat:
                    return chat
        return contacts.get(channel) or None

    def _current_channel(
        self, conversation_id: str, state: Mapping[str, str], addresses: Mapping[str, str]
    ) -> str:
        last, _ = self.conversation_history.contacts(conversation_id)
        for candidate in (last, state.get("pref:channel", "")):
            if candidate and candidate in addresses:
                return candidate
        return next(iter(addresses), "")

    def _plans(self, account: Account | None) -> Iterable[Mapping[str, Any]]:
        if account is None:
            return []
        ids = self.redis.lrange(self.keys.account_plans(account.account_id), 0, -1)
        if not ids:
            return []
        raw = self.redis.mget([self.keys.plan(plan_id.decode()) for plan_id in ids])
        plans = []
        for item in raw:
            if item is None:
                continue
            try:
                plans.append(json.loads(item))
            except ValueError:
                continue
        return plans

    def _stored_plans(self, account: Account | None) -> list[StoredPlan]:
        """The account's plans, oldest first, each with its state (replaced or not)."""
        if account is None:
            return []
        ids = [raw.decode() for raw in self.redis.lrange(self.keys.account_plans(account.account_id), 0, -1)]
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for plan_id in ids:
            pipe.get(self.keys.plan(plan_id))
            pipe.hgetall(self._plan_state_key(plan_id))
        replies = pipe.execute()
        plans = []
        for n in range(len(ids)):
            raw, state_raw = replies[2 * n], replies[2 * n + 1]
            if raw is None:
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            state = _decoded(state_raw)
            record.setdefault("plan_id", ids[n])
            plans.append(StoredPlan.of(record, state, replaced=is_replaced(state, len(ids)),
                                       country=account.country))  # fmt: skip
        return plans

    @staticmethod
    def _status_flags(status: AddressStatus) -> dict[str, bool]:
        return {
            "opted_out": status.opted_out_at is not None,
            "wrong_party": status.wrong_party_at is not None,
            "unreachable": status.unreachable_at is not None,
        }

    def _line(
        self, entry: HistoryEntry, known: tuple[dict[bytes, bytes], float | None] | None
    ) -> HistoryLine:
        line = HistoryLine(
            id=entry.id, at=entry.at, direction=entry.direction, kind=entry.kind, channel=entry.channel,
            text=entry.text, by=entry.by, ref=entry.ref, detail=entry.detail,
        )  # fmt: skip
        if entry.direction != "out" or known is None:
            return line
        record, deferred = known
        fields = {k.decode(): v.decode() for k, v in record.items()}
        status, code = fields.get("status", ""), fields.get("error_code", "")
        if code.startswith("compliance:"):
            return replace(line, status="withheld", rule=code.removeprefix("compliance:"),
                           error=fields.get("error_message", ""))  # fmt: skip
        if code == CANCELLED:
            return replace(line, status="cancelled", error=fields.get("error_message", ""))
        if code == "withheld":
            reason = fields.get("error_message", "")
            return replace(
                line, status="withheld", rule=reason.removeprefix("address ").strip(), error=reason
            )
        if status:
            return replace(line, status=status, error=fields.get("error_message", "") if code else "")
        if deferred is not None:
            return replace(line, status="deferred", until=datetime.fromtimestamp(deferred, timezone.utc))
        return replace(line, status="queued")

    # --- small helpers ------------------------------------------------------------------------

    def _opt(self, conversation_id: str, agent: Actor, channel: str, reason: str, *, out: bool) -> None:
        self._check(conversation_id)
        if channel not in CHANNELS:
            raise DeskError(f"unknown channel {channel!r} (one of {', '.join(CHANNELS)})")
        why = _text(reason, "the reason", MAX_DETAIL)
        account = self._account(conversation_id)
        address = self._address(conversation_id, account, channel)
        if not address:
            raise DeskError(f"the person has no {channel} address")
        if out:
            self.addresses.opt_out(channel, address, account.account_id if account else None)
        else:
            self.addresses.opt_in(channel, address)
        masked = _mask(channel, address)
        self.conversation_history.event(
            conversation_id, "opted_out" if out else "opted_in", by=self._by(agent), text=why,
            detail={"channel": channel, "address": masked},
        )  # fmt: skip
        self._audit(agent, "opt_out" if out else "opt_in", conversation_id, channel=channel, address=masked,
                    reason=why)  # fmt: skip
        self._touch(conversation_id, agent)

    def _contact_window(self, value: str) -> str:
        """A contact window from the agent's words or the stored JSON, as the dialogue stores it."""
        window: ContactWindow | None
        if value.lstrip().startswith("{"):
            try:
                window = window_from_json(value)
            except (ValueError, TypeError, KeyError, AttributeError):
                raise DeskError("the contact window is not valid JSON of the stored kind") from None
        else:
            window = parse_contact_window(value)
        if window is None:
            raise DeskError(
                f'could not understand the contact window {value!r} (try words like "weekdays after 6pm")'
            )
        if window.after is not None and window.before is not None and window.after >= window.before:
            raise DeskError("the contact window must start before it ends")
        if window.excluded_weekdays >= frozenset(range(7)) or (
            window.weekdays_only and window.excluded_weekdays >= frozenset(range(5))
        ):
            raise DeskError("the contact window leaves no day at all")
        return _window_json(window)

    def _hold(self, conversation_id: str, agent: Actor) -> None:
        """The agent holds the conversation (claiming it if nobody does); another's claim raises
        ``AlreadyClaimed``."""
        current = self.handoff.get(conversation_id)
        if current.state is State.AGENT:
            if current.agent != agent.id:
                raise AlreadyClaimed(current.agent)
            return
        self.claim(conversation_id, agent)

    def _touch(self, conversation_id: str, agent: Actor) -> None:
        """The holding agent did something: the claim is not idle."""
        current = self.handoff.get(conversation_id)
        if current.state is State.AGENT and current.agent == agent.id:
            # Handed back or reassigned in between: nothing to keep alive.
            with contextlib.suppress(NotAllowed):
                self.handoff.touch(conversation_id, agent.id)

    def _audit(self, agent: Actor, action: str, conversation_id: str, **extra: str) -> None:
        entry = {
            "kind": f"console:{action}", "conversation_id": conversation_id, "by": agent.id,
            "role": agent.role.value, "at": repr(self.clock.timestamp()), **extra,
        }  # fmt: skip
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(self.keys.audit, entry, maxlen=AUDIT_MAXLEN, approximate=True)
        pipe.xadd(self.conversation_audit_key(conversation_id), entry,
                  maxlen=CONVERSATION_AUDIT_MAXLEN, approximate=True)  # fmt: skip
        pipe.execute()

    @staticmethod
    def _by(agent: Actor) -> str:
        return f"agent:{agent.id}"

    @staticmethod
    def _check(conversation_id: str) -> None:
        if not isinstance(conversation_id, str) or not _CONVERSATION_ID.match(conversation_id):
            raise DeskError("unknown conversation")


def _decoded(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {key.decode(): value.decode() for key, value in raw.items()}
