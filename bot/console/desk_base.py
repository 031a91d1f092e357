"""The desk's common ground (``bot.console.desk`` assembles ``Desk`` from this and its siblings):
``DeskBase``, which holds what every part of the desk works with, and the helpers they share.

- the desk's collaborators (the stores, the gate, Rasa...) and its own Redis keys;
- taking a conversation over (``claim``, and ``_hold``, which every action on the person's behalf
  starts with), keeping a claim alive (``_touch``), the audit (``_audit``) and the checks of ids;
- the conversation's facts: its account and state, the person's language, zone, addresses and
  current channel, when they last wrote, whether they are verified, the account's plans;
- Rasa's tracker. **Rasa's history stays whole.** A claim is a ``pause`` event in Rasa's tracker,
  handing back or closing a ``resume``, and every reply a ``bot`` event with the agent's id in its
  metadata. When Rasa cannot be reached the change stands (the hand-off record is what silences
  the bot in the worker) and the events wait in a Redis list, in order, until
  ``flush_tracker_events`` (the scheduler's tick) delivers them.

**Audit.** Every action writes an entry to the audit stream (``console:<action>``: who, their role,
when, what), never the person's words nor a full address, and the same entry to the
conversation's own audit stream (``conversation_audit_key``). Claims and the other hand-off
changes are audited by ``HandoffStore`` itself (kind ``handoff``), in both streams too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis

from bot.clock import Clock
from bot.compliance.gate import ComplianceGate
from bot.compliance.rules import CHANNELS, Debtor, candidate_zones
from bot.config import Config
from bot.console.errors import ConsoleError
from bot.console.handoff import (
    AUDIT_MAXLEN,
    Actor,
    AlreadyClaimed,
    Handoff,
    HandoffStore,
    NotAllowed,
    State,
)
from bot.console.handoff import CONVERSATION_AUDIT_MAXLEN as CONVERSATION_AUDIT_MAXLEN  # re-exported
from bot.console.plans import PlanMaker, StoredPlan
from bot.conversations.deliveries import DeliveryLog
from bot.conversations.history import ConversationHistory
from bot.conversations.identity import account_id_of
from bot.email.dead_letters import DeadLetters
from bot.email.envelope import EmailEnvelope
from bot.outreach.payments import is_replaced
from bot.privacy import mask_email, mask_phone
from bot.store.accounts import Account, AccountStore
from bot.store.addresses import AddressBook
from bot.store.connection import Keys
from bot.store.jobs import Jobs
from bot.store.queues import KeyedQueue
from bot.telegram.links import TelegramLinks
from dialogue.rasa_client import RasaError, RasaRejected

# The desk's parts log as the one module they were split from.
logger = logging.getLogger("bot.console.desk")

#: Conversation ids are opaque and short (``acct-<id>``, ``acct-<id>~<hash>``, ``anon-<key>``).
_CONVERSATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:~@+-]{0,199}$")


class DeskError(ConsoleError):
    """An agent's request cannot be done as asked (an unknown flag, an empty reply, no address to
    write to...); the message says why in words the agent can act on."""


class DialogueEvents(Protocol):
    """What the desk needs of the dialogue (``dialogue.rasa_client.RasaClient`` fits)."""

    def append_events(self, conversation_id: str, events: list[Mapping[str, Any]]) -> None: ...

    def tracker(self, conversation_id: str) -> dict[str, Any]: ...


def dead_letters_done_key(keys: Keys) -> str:
    """Dead letters an agent attached to a conversation (set of ``<channel>:<entry id>``): they
    leave the inbox."""
    return keys.console("deadletters", "done")


def _text(value: str, what: str, limit: int, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise DeskError(f"{what} must be text")
    cleaned = value.replace("\r\n", "\n").strip()
    if required and not cleaned:
        raise DeskError(f"{what} is empty")
    if len(cleaned) > limit:
        raise DeskError(f"{what} is too long ({len(cleaned)} characters; at most {limit})")
    return cleaned


def _mask(channel: str, address: str) -> str:
    if channel == "email":
        return mask_email(address)
    return mask_phone(address)


def _decoded(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {key.decode(): value.decode() for key, value in raw.items()}


@dataclass(frozen=True)
class _Facts:
    """What one reply needs to know about its conversation (read once)."""

    account: Account | None
    state: Mapping[str, str]
    language: str
    last_inbound_at: datetime | None


# A due deferred reply is leased (its score moved past the lease) by one releaser at a time
# (``DeskReplies.release_deferred``).
_LEASE_DUE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""

# Pop the head of the pending list only if it is still the entry that was delivered (another
# flush may have got there first).
_POP_IF_HEAD = """
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then
  redis.call('LPOP', KEYS[1])
  return 1
end
return 0
"""


class DeskBase:
    """What every part of the desk works with (``Desk`` is the whole)."""

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

    # --- keys of the desk's own (under the product's prefix) --------------------------------------

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
        """Whether each conversation's person is verified (hash: conversation -> ``1``/``0``), so
        the inbox can show it without asking Rasa for every row."""
        return self.keys.console_verified

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

    # --- taking over ------------------------------------------------------------------------------

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

    # --- small helpers ----------------------------------------------------------------------------

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

    # --- Rasa's tracker ---------------------------------------------------------------------------

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

    def _is_verified(self, conversation_id: str) -> bool:
        """The dialogue's ``verified`` slot; while Rasa cannot be asked, the last one the console
        read or set."""
        verified, known = self._verified(conversation_id)
        if known:
            return verified
        return self.redis.hget(self.verified_key, conversation_id) == b"1"

    # --- reading the conversation's facts ---------------------------------------------------------

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
        entry = self.conversation_history.last_inbound(conversation_id)
        return (entry.at or None) if entry is not None else None

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

    def _zone(self, account: Account) -> str:
        """The person's zone (the first the gate would use), else the agents'."""
        if account.timezone:
            return account.timezone
        debtor = Debtor(account_id=account.account_id, timezone=account.timezone, phone=account.phone,
                        postal_code=account.postal_code, country=account.country)  # fmt: skip
        zones = candidate_zones(debtor, self.gate.rules_for(account))
        return zones[0] if zones else self.config.console.zone

    def _plan_state_key(self, plan_id: str) -> str:
        """What became of a plan (``bot.outreach.payments``: paid, reminded, replaced...)."""
        return f"{self.keys.plan(plan_id)}:state"

    def _person_zone(self, account: Account) -> ZoneInfo:
        """The person's zone (``_zone``), as a zone (the agents' when it is not one)."""
        try:
            return ZoneInfo(self._zone(account))
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo(self.config.console.zone)

    def _stored_plans(self, account: Account | None) -> list[StoredPlan]:
        """The account's plans, oldest first, each with its state (replaced or not) and its
        payments (paid when, missed, due, ended: ``bot.console.plans.plan_payments``)."""
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
        # Today where the person lives: what outreach counts a payment missed by.
        zone = self._person_zone(account)
        today = self.clock.now().astimezone(zone).date()
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
                                       country=account.country, today=today, zone=zone))  # fmt: skip
        return plans
