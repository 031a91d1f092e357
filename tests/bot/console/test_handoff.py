"""The hand-off state machine: the pure table, and its Redis side (atomic claims, idle release,
outcomes, the audit)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from bot.clock import Clock
from bot.console.handoff import (
    IDLE_REASON,
    SYSTEM,
    Actor,
    AlreadyClaimed,
    ConsoleError,
    Event,
    Handoff,
    HandoffStore,
    NotAllowed,
    Outcome,
    Role,
    State,
    transition,
)
from bot.errors import BotError
from bot.store.connection import Keys

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
LATER = T0 + timedelta(minutes=5)
IDLE = timedelta(minutes=30)

ANA = Actor("ana", Role.AGENT)
BEN = Actor("ben", Role.AGENT)
SUE = Actor("sue", Role.SUPERVISOR)

IN_STATE = {
    State.BOT: Handoff(),
    State.WAITING: Handoff(state=State.WAITING, reasons=("dispute",), since=T0),
    State.AGENT: Handoff(
        state=State.AGENT, agent="ana", claimed_at=T0, last_activity_at=T0, reasons=("dispute",), since=T0
    ),
}

#: Each event done by the actor who would normally do it, at LATER: the state after, or the error.
NATURAL = {
    Event.ESCALATE: SYSTEM,
    Event.CLAIM: BEN,
    Event.REASSIGN: SUE,
    Event.TOUCH: ANA,
    Event.RELEASE_IDLE: SYSTEM,
    Event.HAND_BACK: ANA,
    Event.CLOSE: ANA,
    Event.WATCH: SUE,
    Event.UNWATCH: SUE,
}
TABLE: dict[tuple[State, Event], State | type[ConsoleError]] = {
    (State.BOT, Event.ESCALATE): State.WAITING,
    (State.BOT, Event.CLAIM): State.AGENT,
    (State.BOT, Event.REASSIGN): NotAllowed,
    (State.BOT, Event.TOUCH): NotAllowed,
    (State.BOT, Event.RELEASE_IDLE): NotAllowed,
    (State.BOT, Event.HAND_BACK): NotAllowed,
    (State.BOT, Event.CLOSE): NotAllowed,
    (State.BOT, Event.WATCH): State.BOT,
    (State.BOT, Event.UNWATCH): State.BOT,
    (State.WAITING, Event.ESCALATE): State.WAITING,
    (State.WAITING, Event.CLAIM): State.AGENT,
    (State.WAITING, Event.REASSIGN): NotAllowed,
    (State.WAITING, Event.TOUCH): NotAllowed,
    (State.WAITING, Event.RELEASE_IDLE): NotAllowed,
    (State.WAITING, Event.HAND_BACK): NotAllowed,
    (State.WAITING, Event.CLOSE): NotAllowed,
    (State.WAITING, Event.WATCH): State.WAITING,
    (State.WAITING, Event.UNWATCH): State.WAITING,
    (State.AGENT, Event.ESCALATE): State.AGENT,
    (State.AGENT, Event.CLAIM): AlreadyClaimed,
    (State.AGENT, Event.REASSIGN): State.AGENT,
    (State.AGENT, Event.TOUCH): State.AGENT,
    (State.AGENT, Event.RELEASE_IDLE): NotAllowed,  # active 5 minutes ago: not idle
    (State.AGENT, Event.HAND_BACK): State.BOT,
    (State.AGENT, Event.CLOSE): State.BOT,
    (State.AGENT, Event.WATCH): State.AGENT,
    (State.AGENT, Event.UNWATCH): State.AGENT,
}
ARGS = {"reason": "hardship", "to_agent": "cai", "outcome": Outcome.PAID, "idle_limit": IDLE}


def test_the_table_covers_every_state_and_event() -> None:
    assert set(TABLE) == {(s, e) for s in State for e in Event}


@pytest.mark.parametrize(("state", "event"), list(TABLE))
def test_transition_table(state: State, event: Event) -> None:
    expected = TABLE[state, event]
    if isinstance(expected, State):
        after = transition(IN_STATE[state], event, NATURAL[event], LATER, **ARGS)  # type: ignore[arg-type]
        assert after.state is expected
        assert (after.agent != "") == (expected is State.AGENT)
        assert (after.claimed_at is not None) == (expected is State.AGENT)
    else:
        with pytest.raises(expected) as raised:
            transition(IN_STATE[state], event, NATURAL[event], LATER, **ARGS)  # type: ignore[arg-type]
        assert isinstance(raised.value, BotError)
        assert event.value in str(raised.value)


def test_what_each_allowed_move_records() -> None:
    bot, waiting, agent = IN_STATE[State.BOT], IN_STATE[State.WAITING], IN_STATE[State.AGENT]
    escalated = transition(bot, Event.ESCALATE, SYSTEM, LATER, reason="crisis")
    assert escalated.reasons == ("crisis",) and escalated.since == LATER
    assert transition(escalated, Event.ESCALATE, SYSTEM, LATER, reason="crisis") == escalated
    assert transition(waiting, Event.ESCALATE, SYSTEM, LATER, reason="crisis").reasons == (
        "dispute",
        "crisis",
    )
    # A new reason while claimed: noted, the agent keeps it.
    noted = transition(agent, Event.ESCALATE, SYSTEM, LATER, reason="vulnerable:illness")
    assert noted.agent == "ana" and noted.reasons == ("dispute", "vulnerable:illness")

    claimed = transition(waiting, Event.CLAIM, BEN, LATER)
    assert (claimed.agent, claimed.claimed_at, claimed.last_activity_at) == ("ben", LATER, LATER)
    assert claimed.reasons == ("dispute",)

    moved = transition(agent, Event.REASSIGN, SUE, LATER, to_agent="cai")
    assert (moved.agent, moved.claimed_at) == ("cai", LATER)
    assert transition(agent, Event.TOUCH, ANA, LATER).last_activity_at == LATER

    back = transition(agent, Event.HAND_BACK, ANA, LATER)
    assert back == Handoff(state=State.BOT, since=LATER)
    closed = transition(agent, Event.CLOSE, ANA, LATER, outcome=Outcome.DEBT_ADVICE)
    assert closed.state is State.BOT and closed.outcome is Outcome.DEBT_ADVICE and closed.reasons == ()

    idle = transition(agent, Event.RELEASE_IDLE, SYSTEM, T0 + IDLE, idle_limit=IDLE)
    assert idle.state is State.WAITING and idle.agent == "" and idle.reasons == ("dispute", IDLE_REASON)


def test_who_may_do_what() -> None:
    agent = IN_STATE[State.AGENT]
    with pytest.raises(AlreadyClaimed) as raised:
        transition(agent, Event.CLAIM, SUE, LATER)
    assert raised.value.by == "ana"
    assert transition(agent, Event.CLAIM, ANA, LATER) is agent  # a double click
    for not_a_supervisor in (ANA, BEN, SYSTEM):
        with pytest.raises(NotAllowed, match="only a supervisor reassigns"):
            transition(agent, Event.REASSIGN, not_a_supervisor, LATER, to_agent="cai")
    with pytest.raises(NotAllowed, match="to whom"):
        transition(agent, Event.REASSIGN, SUE, LATER)
    for event in (Event.TOUCH, Event.HAND_BACK, Event.CLOSE):
        with pytest.raises(AlreadyClaimed):
            transition(agent, event, BEN, LATER, outcome=Outcome.OTHER)
    # A supervisor may hand back or close someone else's claim.
    assert transition(agent, Event.HAND_BACK, SUE, LATER).state is State.BOT
    with pytest.raises(NotAllowed, match="outcome"):
        transition(agent, Event.CLOSE, ANA, LATER)
    with pytest.raises(NotAllowed, match="product"):
        transition(agent, Event.RELEASE_IDLE, SUE, T0 + IDLE, idle_limit=IDLE)
    with pytest.raises(NotAllowed, match="how long"):
        transition(agent, Event.RELEASE_IDLE, SYSTEM, T0 + IDLE)
    with pytest.raises(NotAllowed, match="only a supervisor watches"):
        transition(agent, Event.WATCH, BEN, LATER)
    with pytest.raises(NotAllowed, match="only a person claims"):
        transition(IN_STATE[State.WAITING], Event.CLAIM, SYSTEM, LATER)
    with pytest.raises(NotAllowed, match="reason"):
        transition(IN_STATE[State.BOT], Event.ESCALATE, SYSTEM, LATER)
    with pytest.raises(NotAllowed, match="unknown role"):
        Actor.of("x", "janitor")


def test_watching_changes_nothing_but_the_watchers() -> None:
    for state, handoff in IN_STATE.items():
        watched = transition(handoff, Event.WATCH, SUE, LATER)
        assert watched == Handoff(**{**handoff.__dict__, "watchers": frozenset({"sue"})})
        assert watched.state is state
        assert watched.shown == ("agent" if state is State.AGENT else "watching")
        assert transition(watched, Event.UNWATCH, SUE, LATER) == handoff
        assert transition(handoff, Event.UNWATCH, SUE, LATER) == handoff  # idempotent


ACTORS = st.sampled_from([ANA, BEN, SUE, SYSTEM])
STEPS = st.lists(
    st.tuples(
        st.sampled_from(list(Event)), ACTORS, st.integers(0, 90), st.sampled_from(["crisis", "dispute"])
    ),
    max_size=30,
)


@given(STEPS)
def test_any_sequence_keeps_the_record_consistent(steps: list[tuple[Event, Actor, int, str]]) -> None:
    handoff, now = Handoff(), T0
    for event, actor, minutes, reason in steps:
        now += timedelta(minutes=minutes)
        try:
            handoff = transition(
                handoff,
                event,
                actor,
                now,
                reason=reason,
                to_agent="cai",
                outcome=Outcome.OTHER,
                idle_limit=IDLE,
            )
        except NotAllowed:
            continue
        claimed = handoff.state is State.AGENT
        assert (handoff.agent != "") == claimed
        assert (handoff.claimed_at is not None) == claimed == (handoff.last_activity_at is not None)
        assert handoff.state is not State.BOT or handoff.reasons == ()
        assert handoff.state is not State.WAITING or handoff.reasons != ()
        assert handoff.watchers <= {"sue"}
        assert len(set(handoff.reasons)) == len(handoff.reasons)


# --- Redis ---------------------------------------------------------------------------------------

CONV = "acct-ACC-1002"


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def store(redis_client: redis.Redis[bytes], clock: Clock) -> HandoffStore:
    return HandoffStore(redis_client, Keys("debtbot"), clock)


def _stream(client: redis.Redis[bytes], key: str) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in client.xrange(key)]


def test_a_conversation_never_escalated_is_the_bots(store: HandoffStore) -> None:
    assert store.get(CONV) == Handoff()
    assert not store.is_silenced_for_bot(CONV)


def test_escalate_claim_hand_back_round_trip(store: HandoffStore, clock: Clock) -> None:
    assert store.escalate(CONV, "dispute").state is State.WAITING
    assert store.get(CONV).reasons == ("dispute",)
    assert store.waiting() == [CONV] and not store.is_silenced_for_bot(CONV)

    clock.advance(timedelta(minutes=2))
    claimed = store.claim(CONV, "ana")
    assert store.get(CONV) == claimed
    assert (claimed.agent, claimed.claimed_at) == ("ana", T0 + timedelta(minutes=2))
    assert store.is_silenced_for_bot(CONV)
    assert store.waiting() == [] and store.claimed() == [CONV]

    back = store.hand_back(CONV, "ana")
    assert store.get(CONV) == back and back.state is State.BOT
    assert not store.is_silenced_for_bot(CONV)
    assert store.claimed() == []


def test_only_the_agent_state_silences_the_bot(store: HandoffStore) -> None:
    store.watch(CONV, "sue")
    assert store.get(CONV).shown == "watching" and not store.is_silenced_for_bot(CONV)
    store.escalate(CONV, "human_requested")
    assert not store.is_silenced_for_bot(CONV)
    store.claim(CONV, "ana")
    assert store.is_silenced_for_bot(CONV)
    assert store.get(CONV).watchers == {"sue"}


def test_two_agents_claiming_at_once_one_wins_the_other_is_told_who(
    redis_client: redis.Redis[bytes], clock: Clock
) -> None:
    pool = redis_client.connection_pool
    for round_ in range(40):
        conv = f"acct-RACE-{round_}"
        HandoffStore(redis_client, Keys("debtbot"), clock).escalate(conv, "dispute")
        barrier = threading.Barrier(2)
        results: dict[str, str] = {}

        def claim(
            agent: str,
            conv: str = conv,
            barrier: threading.Barrier = barrier,
            results: dict[str, str] = results,
        ) -> None:
            mine = HandoffStore(redis.Redis(connection_pool=pool), Keys("debtbot"), clock)
            barrier.wait()
            try:
                mine.claim(conv, agent)
                results[agent] = "won"
            except AlreadyClaimed as lost:
                results[agent] = f"lost to {lost.by}"

        threads = [threading.Thread(target=claim, args=(agent,)) for agent in ("ana", "ben")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [agent for agent, result in results.items() if result == "won"]
        assert len(winners) == 1, results
        loser = ({"ana", "ben"} - set(winners)).pop()
        assert results[loser] == f"lost to {winners[0]}"
        assert HandoffStore(redis_client, Keys("debtbot"), clock).get(conv).agent == winners[0]
        claims = [e for e in _stream(redis_client, "debtbot:console:events") if e["conversation_id"] == conv]
        assert [e["event"] for e in claims] == ["escalate", "claim"]


def test_only_a_supervisor_reassigns(store: HandoffStore) -> None:
    store.escalate(CONV, "hardship")
    store.claim(CONV, "ana")
    with pytest.raises(NotAllowed):
        store.reassign(CONV, "ben", by="ben", role="agent")
    assert store.get(CONV).agent == "ana"
    assert store.reassign(CONV, "ben", by="sue", role="supervisor").agent == "ben"
    with pytest.raises(AlreadyClaimed) as raised:
        store.touch(CONV, "ana")
    assert raised.value.by == "ben"


def test_an_idle_claim_returns_to_the_queue(store: HandoffStore, clock: Clock) -> None:
    for conv in ("acct-1", "acct-2", "acct-3"):
        store.escalate(conv, "callback")
        store.claim(conv, "ana")
    clock.advance(timedelta(minutes=20))
    store.touch("acct-2", "ana")
    store.hand_back("acct-3", "ana")
    clock.advance(timedelta(minutes=10))
    assert store.release_idle(30) == ["acct-1"]
    assert store.get("acct-1").state is State.WAITING
    assert store.get("acct-1").reasons == ("callback", IDLE_REASON)
    assert store.get("acct-2").agent == "ana"
    assert store.waiting() == ["acct-1"] and store.claimed() == ["acct-2"]
    assert store.release_idle(30) == []
    clock.advance(timedelta(minutes=20))
    assert store.release_idle(30) == ["acct-2"]
    assert store.claimed() == []


def test_close_records_and_counts_the_outcome(store: HandoffStore) -> None:
    for conv, outcome in (("acct-1", "paid"), ("acct-2", Outcome.PAID), ("acct-3", "debt_advice")):
        store.escalate(conv, "hardship")
        store.claim(conv, "ana")
        closed = store.close(conv, "ana", outcome)
        assert closed.state is State.BOT and store.get(conv).outcome is Outcome(outcome)
    assert store.outcome_counts() == {Outcome.PAID: 2, Outcome.DEBT_ADVICE: 1}
    with pytest.raises(NotAllowed, match="unknown outcome"):
        store.close("acct-1", "ana", "won the lottery")
    with pytest.raises(NotAllowed):
        store.close("acct-1", "ana", "paid")  # no longer claimed


def test_every_change_goes_to_the_console_stream_and_the_audit(
    store: HandoffStore, redis_client: redis.Redis[bytes], clock: Clock
) -> None:
    store.escalate(CONV, "crisis")
    store.claim(CONV, "ana")
    clock.advance(timedelta(minutes=1))
    store.touch(CONV, "ana")
    store.reassign(CONV, "ben", by="sue", role="supervisor")
    store.close(CONV, "ben", "no_contact")
    store.escalate(CONV, "crisis")
    store.escalate(CONV, "crisis")  # nothing changes: nothing recorded
    with pytest.raises(NotAllowed):
        store.hand_back(CONV, "ben")  # refused: nothing recorded

    events = _stream(redis_client, "debtbot:console:events")
    assert [(e["event"], e["state"], e["agent"], e["by"]) for e in events] == [
        ("escalate", "waiting", "", "system"),
        ("claim", "agent", "ana", "ana"),
        ("touch", "agent", "ana", "ana"),
        ("reassign", "agent", "ben", "sue"),
        ("close", "bot", "", "ben"),
        ("escalate", "waiting", "", "system"),
    ]
    assert events[4]["outcome"] == "no_contact" and events[0]["reason"] == "crisis"
    assert float(events[0]["at"]) == T0.timestamp()

    audit = _stream(redis_client, "debtbot:audit")
    assert all(a["kind"] == "handoff" and a["conversation_id"] == CONV for a in audit)
    # Agent activity (touch) is not a hand-off decision: the console stream has it, the audit not.
    assert [(a["event"], a["by"], a["role"]) for a in audit] == [
        ("escalate", "system", "system"),
        ("claim", "ana", "agent"),
        ("reassign", "sue", "supervisor"),
        ("close", "ben", "agent"),
        ("escalate", "system", "system"),
    ]


def test_key_names_carry_only_the_opaque_conversation_id(
    store: HandoffStore, redis_client: redis.Redis[bytes]
) -> None:
    store.escalate(CONV, "dispute")
    store.claim(CONV, "ana")
    store.close(CONV, "ana", "other")
    assert sorted(k.decode() for k in redis_client.keys("*")) == [
        "debtbot:audit",
        "debtbot:console:audit:indexed_from",
        "debtbot:console:events",
        "debtbot:console:outcomes",
        f"debtbot:conversation:{CONV}:audit",
        f"debtbot:conversation:{CONV}:handoff",
    ]


def test_every_audited_change_is_also_in_the_conversations_own_audit_stream(
    store: HandoffStore, redis_client: redis.Redis[bytes], clock: Clock
) -> None:
    store.escalate(CONV, "dispute")
    store.claim(CONV, "ana")
    clock.advance(timedelta(minutes=1))
    store.touch(CONV, "ana")  # not audited: in neither
    store.escalate("acct-other", "human")  # another conversation's: not in this one's
    store.hand_back(CONV, "ana")
    store.claim(CONV, "ben")
    store.close(CONV, "ben", "paid")

    own = _stream(redis_client, f"debtbot:conversation:{CONV}:audit")
    everything = _stream(redis_client, "debtbot:audit")
    assert own == [entry for entry in everything if entry["conversation_id"] == CONV]
    assert [(e["kind"], e["event"], e["by"]) for e in own] == [
        ("handoff", "escalate", "system"),
        ("handoff", "claim", "ana"),
        ("handoff", "hand_back", "ana"),
        ("handoff", "claim", "ben"),
        ("handoff", "close", "ben"),
    ]
    other = _stream(redis_client, "debtbot:conversation:acct-other:audit")
    assert [(e["event"], e["conversation_id"]) for e in other] == [("escalate", "acct-other")]
    # Where the conversations' streams start to hold hand-off entries: the first one, in ``audit``.
    first_id = redis_client.xrange("debtbot:audit", count=1)[0][0]
    assert redis_client.get("debtbot:console:audit:indexed_from") == first_id


def test_a_change_that_lost_a_race_is_in_neither_audit_stream(
    store: HandoffStore, redis_client: redis.Redis[bytes]
) -> None:
    store.escalate(CONV, "dispute")
    store.claim(CONV, "ana")
    with pytest.raises(AlreadyClaimed):
        store.claim(CONV, "ben")
    own = _stream(redis_client, f"debtbot:conversation:{CONV}:audit")
    assert [(e["event"], e["by"]) for e in own] == [("escalate", "system"), ("claim", "ana")]
    assert len(_stream(redis_client, "debtbot:audit")) == 2


def test_a_waiting_person_is_promised_a_person_once_per_wait(redis_client: redis.Redis[bytes]) -> None:
    start = datetime(2026, 12, 7, 15, 0, tzinfo=timezone.utc)
    clock = Clock(start)
    store = HandoffStore(redis_client, Keys("test-promise"), clock)
    assert store.waiting_since("acct-1") is None and store.first_promise("acct-1") is None
    store.escalate("acct-1", "human")
    assert store.waiting_since("acct-1") == start
    assert store.first_promise("acct-1") == start
    assert store.first_promise("acct-1") is None  # told already
    store.claim("acct-1", "ana")
    store.hand_back("acct-1", "ana")
    clock.advance(timedelta(hours=1))
    store.escalate("acct-1", "dispute")  # a new wait: told again
    assert store.first_promise("acct-1") == start + timedelta(hours=1)
