"""The console's vulnerability flag is honoured at once: the dialogue is told (its ``vulnerable``
slot) and the gate holds openers and missed-payment messages until a person clears it; and
while an agent holds a conversation the bot starts nothing, though the agent writes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import redis

from bot.compliance.rules import Decision, Outgoing, Verdict
from tests.bot.console.test_desk import ANA, CID, PHONE, World, make_world
from tests.conftest import ConfigFactory


@pytest.fixture
def world(make_config: ConfigFactory, redis_client: redis.Redis[bytes]) -> Iterator[World]:
    yield make_world(make_config(server={"public_url": "https://bot.example.com"}), redis_client)


def proactive(world: World, kind: str) -> Decision:
    """What the gate says now to a message the bot starts (``kind``) for the account."""
    message = Outgoing(channel="sms", text="Hello", language="en", proactive=True, verified=kind != "opener",
                       kind=kind)  # fmt: skip
    return world.services.gate.decide(world.account, "sms", PHONE, message)


def slot_events(world: World) -> list[Mapping[str, Any]]:
    return [event for event in world.rasa.events.get(CID, []) if event.get("name") == "vulnerable"]


def test_flagging_a_person_vulnerable_tells_the_dialogue_and_holds_collection_at_once(world: World) -> None:
    assert proactive(world, "opener").verdict is Verdict.SEND
    world.desk.set_flag(CID, ANA, "vulnerable", True, "recently bereaved")
    assert slot_events(world) == [{"event": "slot", "name": "vulnerable", "value": True}]
    for kind in ("opener", "missed_payment"):
        held = proactive(world, kind)
        assert (held.verdict, held.rule) == (Verdict.BLOCK, "vulnerable"), kind
        assert "until an agent clears the flag" in held.reason
    # The reminder of the plan the person agreed to still goes.
    assert proactive(world, "reminder").verdict is Verdict.SEND
    assert "vulnerable" in world.desk.view(CID).flags
    world.desk.set_flag(CID, ANA, "vulnerable", False, "spoke with them; they are coping")
    assert slot_events(world)[-1] == {"event": "slot", "name": "vulnerable", "value": False}
    assert proactive(world, "opener").verdict is Verdict.SEND
    assert [e.kind for e in world.history.read(CID)] == ["flag_set", "flag_cleared"]


def test_the_dialogue_stays_vulnerable_while_a_crisis_or_the_flag_is_still_on(world: World) -> None:
    world.desk.set_flag(CID, ANA, "vulnerable", True, "caring for a parent")
    world.services.crisis.raise_crisis(
        conversation_id=CID, account_id="A1", detail="sms: ...", once="m1", source="nlu"
    )
    world.desk.set_flag(CID, ANA, "crisis", False, "spoke with them; they are safe")
    # The crisis is over, the vulnerability is not: the slot stays true, collection stays held.
    assert slot_events(world)[-1]["value"] is True
    assert proactive(world, "opener").rule == "vulnerable"
    world.desk.set_flag(CID, ANA, "vulnerable", False)
    assert slot_events(world)[-1]["value"] is False
    assert proactive(world, "opener").verdict is Verdict.SEND


def test_clearing_the_flag_while_a_crisis_is_still_open_keeps_the_dialogue_careful(world: World) -> None:
    world.desk.set_flag(CID, ANA, "vulnerable", True)
    world.services.crisis.raise_crisis(
        conversation_id=CID, account_id="A1", detail="sms: ...", once="m1", source="nlu"
    )
    world.desk.set_flag(CID, ANA, "vulnerable", False)
    assert slot_events(world)[-1]["value"] is True
    assert proactive(world, "opener").rule == "pause:crisis"


def test_other_flags_do_not_touch_the_dialogues_vulnerable_slot(world: World) -> None:
    world.desk.set_flag(CID, ANA, "dispute", True, "says it is not theirs")
    world.desk.set_flag(CID, ANA, "dispute", False)
    assert slot_events(world) == []


def test_with_rasa_down_the_slot_waits_and_reaches_the_dialogue_in_order(world: World) -> None:
    world.rasa.down = True
    world.desk.set_flag(CID, ANA, "vulnerable", True)
    # The gate does not wait for Rasa.
    assert proactive(world, "opener").rule == "vulnerable"
    assert world.desk.pending_tracker_events() == 1
    world.rasa.down = False
    assert world.desk.flush_tracker_events() == 1
    assert slot_events(world) == [{"event": "slot", "name": "vulnerable", "value": True}]


def test_while_an_agent_holds_the_conversation_the_bot_starts_nothing_but_the_agent_writes(
    world: World,
) -> None:
    world.desk.claim(CID, ANA)
    for kind in ("opener", "reminder", "missed_payment"):
        held = proactive(world, kind)
        assert (held.verdict, held.rule) == (Verdict.BLOCK, "with_agent"), kind
    verdict = world.desk.reply(CID, ANA, "Hi Maria, this is Ana from the team.")
    assert verdict.outcome == "sent"
    [queued] = world.queued()
    assert queued.kind == "agent" and queued.text.startswith("Hi Maria, this is Ana")
    world.desk.hand_back(CID, ANA)
    assert proactive(world, "reminder").verdict is Verdict.SEND
