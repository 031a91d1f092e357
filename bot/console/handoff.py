"""Who answers a conversation: the bot, or a person (issue 16, the agent console).

A conversation is in one of three states, kept in Redis (``conversation:<id>:handoff``):

- ``bot``: the bot answers;
- ``waiting``: escalated (a crisis, a dispute, "I want a person", ...); the bot still helps, but
  the person has been told a person will answer;
- ``agent``: claimed by one agent; the bot is silent (``is_silenced_for_bot``).

**Watching is not a state; it is a set of watchers beside the state.** The issue lists
"watching" with the states, but a supervisor following a conversation live must not change who
answers it: watching a ``bot`` conversation must not silence the bot, and watching an ``agent``
one must not take it from its agent. Were it a state, watching would overwrite ``agent`` (and
lose who holds the claim) or ``waiting`` (and drop it from the queue), and a second supervisor
could not watch at once. So ``Handoff.watchers`` is a set of supervisor ids, changed by
``watch`` / ``unwatch`` in every state and never by the other events, and ``Handoff.shown``
gives the label the console shows: ``watching`` for a conversation the bot still handles
(``bot`` or ``waiting``) while someone watches it, else the state.

``transition`` is the whole table, pure: it takes the current ``Handoff``, an ``Event``, who
does it (``Actor``: an id and a role, ``agent`` / ``supervisor`` / ``system``) and the moment,
and returns the next ``Handoff`` or raises ``NotAllowed`` (``AlreadyClaimed`` naming the holder
when another agent has it). ``HandoffStore`` is its Redis side: each change reads the record
under ``WATCH``, applies ``transition`` and writes the record, the indexes, the console's event
stream, the audit stream and the outcome counts in one ``MULTI``; a concurrent change makes the
``EXEC`` fail and the change is tried again on what is there now. So two agents claiming at once
both run the table on ``waiting``, one ``EXEC`` wins, and the other, retried, sees ``agent``
and gets ``AlreadyClaimed(by=<the winner>)``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Protocol, cast

import redis

from bot.console.errors import ConsoleError
from bot.store.connection import Keys

__all__ = [
    "CONVERSATION_AUDIT_MAXLEN",
    "SYSTEM",
    "Actor",
    "AlreadyClaimed",
    "ConsoleError",
    "Event",
    "Handoff",
    "HandoffStore",
    "NotAllowed",
    "Outcome",
    "Role",
    "State",
    "indexed_from_key",
    "transition",
]

#: The audit stream's cap (the same as the compliance gate's, ``bot.compliance.gate``).
AUDIT_MAXLEN = 1_000_000
#: The console's event stream's cap.
EVENTS_MAXLEN = 100_000
#: Entries kept in each conversation's own audit stream (``Keys.conversation_audit``).
CONVERSATION_AUDIT_MAXLEN = 10_000
#: The reason an idle claim adds when it goes back to the queue.
IDLE_REASON = "claim_idle"
#: How long "told when a person answers" is remembered for one wait.
PROMISE_TTL_SECONDS = 30 * 24 * 3600
#: How many times a change is tried again when another change got in between.
MAX_ATTEMPTS = 50


class NotAllowed(ConsoleError):
    """This move is not allowed from the conversation's state, or not by this person."""


class AlreadyClaimed(NotAllowed):
    """Another agent holds the conversation; ``by`` is who."""

    def __init__(self, by: str, message: str = "") -> None:
        self.by = by
        super().__init__(message or f"the conversation is already claimed by {by}")


class State(enum.Enum):
    BOT = "bot"
    WAITING = "waiting"
    AGENT = "agent"


class Event(enum.Enum):
    ESCALATE = "escalate"
    CLAIM = "claim"
    REASSIGN = "reassign"
    TOUCH = "touch"
    RELEASE_IDLE = "release_idle"
    HAND_BACK = "hand_back"
    CLOSE = "close"
    WATCH = "watch"
    UNWATCH = "unwatch"


class Outcome(enum.Enum):
    """How an agent closed a conversation; ops count them (``console:outcomes``)."""

    PLAN_SET_UP = "plan_set_up"
    PAID = "paid"
    DEBT_ADVICE = "debt_advice"
    DISPUTE_OPENED = "dispute_opened"
    NO_CONTACT = "no_contact"
    OTHER = "other"


class Role(enum.Enum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    #: The product itself: the inbound path escalating, the idle-claim sweeper.
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who makes a change: an agent's id (as the console's agents module names them) and role."""

    id: str
    role: Role

    @classmethod
    def of(cls, id: str, role: str | Role) -> Actor:
        """From a role's name (``"agent"``, ``"supervisor"``, ``"system"``)."""
        try:
            return cls(id, role if isinstance(role, Role) else Role(role))
        except ValueError:
            raise NotAllowed(f"unknown role {role!r}") from None


SYSTEM = Actor("system", Role.SYSTEM)


@dataclass(frozen=True)
class Handoff:
    """One conversation's hand-off record. A conversation never escalated is the default."""

    state: State = State.BOT
    #: The agent holding the claim (``agent`` state only), else ``""``.
    agent: str = ""
    claimed_at: datetime | None = None
    last_activity_at: datetime | None = None
    #: Why it was escalated (``crisis``, ``dispute``, ...), oldest first, each once; cleared when
    #: an agent hands it back or closes it.
    reasons: tuple[str, ...] = ()
    #: The outcome of the last close (kept after it, until the next close).
    outcome: Outcome | None = None
    #: Supervisors following the conversation live (see the module's docstring).
    watchers: frozenset[str] = field(default_factory=frozenset)
    #: When the state last changed.
    since: datetime | None = None

    @property
    def shown(self) -> str:
        """The label the console shows: the state, or ``watching`` while the bot still handles
        the conversation and a supervisor follows it."""
        if self.watchers and self.state is not State.AGENT:
            return "watching"
        return self.state.value


def transition(
    current: Handoff,
    event: Event,
    actor: Actor,
    now: datetime,
    *,
    reason: str = "",
    to_agent: str = "",
    outcome: Outcome | None = None,
    idle_limit: timedelta | None = None,
) -> Handoff:
    """The next record after ``event`` by ``actor`` at ``now``, or ``NotAllowed``.

    ``reason`` goes with ``escalate``, ``to_agent`` with ``reassign``, ``outcome`` with
    ``close``, ``idle_limit`` with ``release_idle`` (the claim must have been idle that long).
    """
    state = current.state
    holder = current.agent

    def refuse(why: str) -> NotAllowed:
        return NotAllowed(f"{event.value} by {actor.role.value} {actor.id!r} in state {state.value}: {why}")

    def held_by_someone_else() -> AlreadyClaimed:
        return AlreadyClaimed(holder, f"{event.value}: the conversation is claimed by {holder}")

    if event is Event.WATCH:
        if actor.role is not Role.SUPERVISOR:
            raise refuse("only a supervisor watches")
        return replace(current, watchers=current.watchers | {actor.id})
    if event is Event.UNWATCH:
        # Idempotent: closing the console's tab twice is no error.
        return replace(current, watchers=current.watchers - {actor.id})

    if event is Event.ESCALATE:
        if not reason:
            raise refuse("an escalation needs a reason")
        reasons = current.reasons if reason in current.reasons else (*current.reasons, reason)
        if state is State.BOT:
            return replace(current, state=State.WAITING, reasons=reasons, since=now)
        # Waiting or claimed: the new reason is noted; who answers does not change.
        return replace(current, reasons=reasons)

    if event is Event.CLAIM:
        if actor.role not in (Role.AGENT, Role.SUPERVISOR):
            raise refuse("only a person claims")
        if state is State.AGENT:
            if holder == actor.id:
                return current  # a double click
            raise held_by_someone_else()
        return replace(
            current, state=State.AGENT, agent=actor.id, claimed_at=now, last_activity_at=now, since=now
        )

    if state is not State.AGENT:
        raise refuse("the conversation is not claimed")

    if event is Event.REASSIGN:
        if actor.role is not Role.SUPERVISOR:
            raise refuse("only a supervisor reassigns")
        if not to_agent:
            raise refuse("reassign to whom?")
        if to_agent == holder:
            return current
        return replace(current, agent=to_agent, claimed_at=now, last_activity_at=now, since=now)

    if event is Event.TOUCH:
        if actor.id != holder:
            raise held_by_someone_else()
        return replace(current, last_activity_at=now)

    if event is Event.RELEASE_IDLE:
        if actor.role is not Role.SYSTEM:
            raise refuse("idle claims are released by the product")
        if idle_limit is None:
            raise refuse("release after how long?")
        last = current.last_activity_at or current.claimed_at
        if last is not None and now - last < idle_limit:
            raise refuse(f"the claim was active {now - last} ago, less than {idle_limit}")
        # Back in the queue, saying why (a person was told someone would answer).
        reasons = current.reasons if IDLE_REASON in current.reasons else (*current.reasons, IDLE_REASON)
        return replace(
            current,
            state=State.WAITING,
            agent="",
            claimed_at=None,
            last_activity_at=None,
            reasons=reasons,
            since=now,
        )

    if event in (Event.HAND_BACK, Event.CLOSE):
        if actor.id != holder and actor.role is not Role.SUPERVISOR:
            raise held_by_someone_else()
        if event is Event.CLOSE and outcome is None:
            raise refuse("closing needs an outcome")
        return replace(
            current,
            state=State.BOT,
            agent="",
            claimed_at=None,
            last_activity_at=None,
            reasons=(),
            outcome=outcome if event is Event.CLOSE else current.outcome,
            since=now,
        )

    raise refuse("unknown event")  # pragma: no cover (every Event is handled above)


# --- Redis ---------------------------------------------------------------------------------------


def indexed_from_key(keys: Keys) -> str:
    """See ``HandoffStore``: where, in ``audit``, hand-off entries start to be in their
    conversation's own stream too."""
    return keys.console("audit", "indexed_from")


class _Clock(Protocol):
    def now(self) -> datetime: ...


def _ts(moment: datetime | None) -> str:
    return "" if moment is None else repr(moment.timestamp())


def _moment(raw: str) -> datetime | None:
    return datetime.fromtimestamp(float(raw), timezone.utc) if raw else None


def _encode(handoff: Handoff) -> dict[str | bytes, bytes | float | int | str]:
    return {
        "state": handoff.state.value,
        "agent": handoff.agent,
        "claimed_at": _ts(handoff.claimed_at),
        "last_activity_at": _ts(handoff.last_activity_at),
        "reasons": json.dumps(list(handoff.reasons)),
        "outcome": handoff.outcome.value if handoff.outcome else "",
        "watchers": json.dumps(sorted(handoff.watchers)),
        "since": _ts(handoff.since),
    }


def _decode(raw: dict[bytes, bytes]) -> Handoff:
    if not raw:
        return Handoff()
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    return Handoff(
        state=State(fields.get("state") or "bot"),
        agent=fields.get("agent", ""),
        claimed_at=_moment(fields.get("claimed_at", "")),
        last_activity_at=_moment(fields.get("last_activity_at", "")),
        reasons=tuple(json.loads(fields.get("reasons") or "[]")),
        outcome=Outcome(fields["outcome"]) if fields.get("outcome") else None,
        watchers=frozenset(json.loads(fields.get("watchers") or "[]")),
        since=_moment(fields.get("since", "")),
    )


class HandoffStore:
    """The hand-off records in Redis, changed only through ``transition``.

    Keys: ``conversation:<id>:handoff`` (the record, a hash), ``console:waiting`` (sorted set:
    conversation → when it started waiting), ``console:claimed`` (sorted set: conversation →
    its claim's last activity, so idle claims are one range query), ``console:events`` (stream:
    every change, for the live inbox), ``console:outcomes`` (hash: outcome → closes), and an entry
    per change with the person who made it in ``audit`` and, in the same ``MULTI``, in the
    conversation's own audit stream (``conversation:<id>:audit``, what its audit page reads).

    ``console:audit:indexed_from`` is the id, in ``audit``, of the first hand-off entry also
    written to the conversation's stream (set once): entries before it are only in ``audit``
    (written before the conversation streams had them; ``DeskReading.audit`` looks there once).
    """

    def __init__(self, client: redis.Redis[bytes], keys: Keys, clock: _Clock) -> None:
        self._redis = client
        self._keys = keys
        self._clock = clock
        #: ``indexed_from_key`` is known to be set (checked once per process).
        self._indexed = False

    @property
    def indexed_from_key(self) -> str:
        """The id, in ``audit``, of the first hand-off entry also in its conversation's stream."""
        return indexed_from_key(self._keys)

    # reading

    def get(self, conversation_id: str) -> Handoff:
        return _decode(self._redis.hgetall(self._keys.handoff(conversation_id)))

    def is_silenced_for_bot(self, conversation_id: str) -> bool:
        """``True`` only while an agent holds the conversation (what the inbound step asks)."""
        return self._redis.hget(self._keys.handoff(conversation_id), "state") == State.AGENT.value.encode()

    def waiting(self) -> list[str]:
        """Conversations waiting for a person, longest waiting first."""
        return [m.decode() for m in self._redis.zrange(self._keys.console_waiting, 0, -1)]

    def waiting_since(self, conversation_id: str) -> datetime | None:
        """When the conversation started waiting for a person (``None``: it is not waiting)."""
        score = self._redis.zscore(self._keys.console_waiting, conversation_id)
        return None if score is None else datetime.fromtimestamp(score, timezone.utc)

    def first_promise(self, conversation_id: str) -> datetime | None:
        """When the conversation is waiting and the person has not yet been told, in this wait,
        when a person will answer: the moment it started waiting (and it is marked told, so the
        next call says ``None``). ``None`` otherwise."""
        since = self.waiting_since(conversation_id)
        if since is None:
            return None
        marker = self._keys.dedupe("console-promised", f"{conversation_id}:{since.timestamp()!r}")
        return since if self._redis.set(marker, "1", nx=True, ex=PROMISE_TTL_SECONDS) else None

    def claimed(self) -> list[str]:
        """Claimed conversations, least recently active first."""
        return [m.decode() for m in self._redis.zrange(self._keys.console_claimed, 0, -1)]

    def outcome_counts(self) -> dict[Outcome, int]:
        raw = self._redis.hgetall(self._keys.console_outcomes)
        return {Outcome(k.decode()): int(v) for k, v in raw.items()}

    # changing

    def escalate(self, conversation_id: str, reason: str, actor: Actor = SYSTEM) -> Handoff:
        return self._change(conversation_id, Event.ESCALATE, actor, reason=reason)

    def claim(self, conversation_id: str, agent: str, role: str | Role = Role.AGENT) -> Handoff:
        """Atomic: of two agents claiming at once, one wins; the other gets ``AlreadyClaimed``
        naming the winner."""
        return self._change(conversation_id, Event.CLAIM, Actor.of(agent, role))

    def reassign(self, conversation_id: str, to_agent: str, by: str, role: str | Role) -> Handoff:
        """A supervisor (``role``) gives a claimed conversation to ``to_agent``."""
        return self._change(conversation_id, Event.REASSIGN, Actor.of(by, role), to_agent=to_agent)

    def touch(self, conversation_id: str, agent: str) -> Handoff:
        """The holding agent did something: the claim is not idle."""
        return self._change(conversation_id, Event.TOUCH, Actor.of(agent, Role.AGENT), audit=False)

    def hand_back(self, conversation_id: str, agent: str, role: str | Role = Role.AGENT) -> Handoff:
        return self._change(conversation_id, Event.HAND_BACK, Actor.of(agent, role))

    def close(
        self, conversation_id: str, agent: str, outcome: Outcome | str, role: str | Role = Role.AGENT
    ) -> Handoff:
        try:
            chosen = outcome if isinstance(outcome, Outcome) else Outcome(outcome)
        except ValueError:
            raise NotAllowed(f"unknown outcome {outcome!r}") from None
        return self._change(conversation_id, Event.CLOSE, Actor.of(agent, role), outcome=chosen)

    def watch(self, conversation_id: str, supervisor: str, role: str | Role = Role.SUPERVISOR) -> Handoff:
        return self._change(conversation_id, Event.WATCH, Actor.of(supervisor, role))

    def unwatch(self, conversation_id: str, supervisor: str, role: str | Role = Role.SUPERVISOR) -> Handoff:
        return self._change(conversation_id, Event.UNWATCH, Actor.of(supervisor, role))

    def release_idle(self, idle_minutes: float) -> list[str]:
        """Claims idle for ``idle_minutes`` (``console.claim_idle_minutes``) go back to
        ``waiting``; returns those conversations. A claim touched meanwhile stays."""
        limit = timedelta(minutes=idle_minutes)
        cutoff = (self._clock.now() - limit).timestamp()
        released = []
        for member in self._redis.zrangebyscore(self._keys.console_claimed, "-inf", cutoff):
            conversation_id = member.decode()
            try:
                self._change(conversation_id, Event.RELEASE_IDLE, SYSTEM, idle_limit=limit)
            except NotAllowed:
                continue  # touched, handed back or closed since the range was read
            released.append(conversation_id)
        return released

    def _change(
        self,
        conversation_id: str,
        event: Event,
        actor: Actor,
        *,
        reason: str = "",
        to_agent: str = "",
        outcome: Outcome | None = None,
        idle_limit: timedelta | None = None,
        audit: bool = True,
    ) -> Handoff:
        key = self._keys.handoff(conversation_id)
        for _ in range(MAX_ATTEMPTS):
            with self._redis.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key)
                    # Under WATCH the pipeline runs commands at once (redis-py types them as queued).
                    current = _decode(cast("dict[bytes, bytes]", pipe.hgetall(key)))
                    now = self._clock.now()
                    after = transition(
                        current, event, actor, now,
                        reason=reason, to_agent=to_agent, outcome=outcome, idle_limit=idle_limit,
                    )  # fmt: skip
                    if after == current:
                        pipe.unwatch()
                        return current
                    pipe.multi()
                    self._write(pipe, conversation_id, event, actor, now, after, reason, audit)
                    written = pipe.execute()
                    if audit and not self._indexed:
                        # Once: where the conversations' streams start to hold hand-off entries.
                        # (Cut short here, the next change sets it a little later: the few
                        # entries between are in both places, and the audit page shows each once.)
                        self._redis.set(self.indexed_from_key, written[-1], nx=True)
                        self._indexed = True
                    return after
                except redis.WatchError:
                    continue
        raise ConsoleError(f"{event.value} on {conversation_id}: too many concurrent changes, try again")

    def _write(
        self,
        pipe: redis.client.Pipeline[bytes],
        conversation_id: str,
        event: Event,
        actor: Actor,
        now: datetime,
        after: Handoff,
        reason: str,
        audit: bool,
    ) -> None:
        keys = self._keys
        pipe.hset(keys.handoff(conversation_id), mapping=_encode(after))
        if after.state is State.WAITING:
            pipe.zadd(keys.console_waiting, {conversation_id: now.timestamp()}, nx=True)
        else:
            pipe.zrem(keys.console_waiting, conversation_id)
        if after.state is State.AGENT and after.last_activity_at is not None:
            pipe.zadd(keys.console_claimed, {conversation_id: after.last_activity_at.timestamp()})
        else:
            pipe.zrem(keys.console_claimed, conversation_id)
        if event is Event.CLOSE and after.outcome is not None:
            pipe.hincrby(keys.console_outcomes, after.outcome.value, 1)
        change = {
            "conversation_id": conversation_id,
            "event": event.value,
            "state": after.state.value,
            "shown": after.shown,
            "agent": after.agent,
            "by": actor.id,
            "role": actor.role.value,
            "at": repr(now.timestamp()),
            "outcome": after.outcome.value if event is Event.CLOSE and after.outcome else "",
            "reason": reason,
        }
        pipe.xadd(keys.console_events, change, maxlen=EVENTS_MAXLEN, approximate=True)
        if audit:
            entry = {"kind": "handoff", **change}
            pipe.xadd(keys.conversation_audit(conversation_id), entry,
                      maxlen=CONVERSATION_AUDIT_MAXLEN, approximate=True)  # fmt: skip
            # Last: its id (``execute()``'s last result) is what ``indexed_from_key`` keeps.
            pipe.xadd(keys.audit, entry, maxlen=AUDIT_MAXLEN, approximate=True)
