"""Our Rasa input channel and client: a failed custom action fails the turn (nothing of it
saved, the worker retries) instead of Rasa's "Bot will continue, but the actions events are
lost"; a message Rasa already handled is answered from the tracker, not handled again; a down
action server stops the message, without a health request before every message."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.processor import MessageProcessor
from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig

from dialogue import rasa_connector
from dialogue.rasa_client import RasaActionFailed, RasaClient, RasaUnavailable
from dialogue.rasa_connector import (
    HEALTH_INTERVAL,
    ActionsHealth,
    DebtbotInput,
    TrackerStoreFailed,
    TurnFailed,
    earlier_answers,
    install_turn_guard,
)
from tests.conftest import free_port


def test_earlier_answers_are_the_bot_messages_after_that_user_message() -> None:
    events = [
        UserUttered("hi", message_id="sms:SM1"),
        ActionExecuted("utter_greet"),
        BotUttered("Hello!"),
        UserUttered("100 a month", message_id="sms:SM2"),
        BotUttered(
            "So: $100 a month. Shall I set it up?", data={"buttons": [{"title": "Yes", "payload": "/affirm"}]}
        ),
        BotUttered("Reply yes or no."),
        ActionExecuted("action_listen"),
        UserUttered("yes", message_id="sms:SM3"),
        BotUttered("Done."),
    ]
    assert [a.text for a in earlier_answers(events, "sms:SM2") or []] == [
        "So: $100 a month. Shall I set it up?",
        "Reply yes or no.",
    ]
    assert earlier_answers(events, "sms:SM9") is None  # never handled: handle it now
    assert earlier_answers([UserUttered("psst", message_id="sms:SM4")], "sms:SM4") == []  # handled, silent


def _turn() -> Any:
    install_turn_guard()
    turn = rasa_connector._Turn()
    return turn, rasa_connector._TURN.set(turn)


def test_a_custom_action_that_fails_inside_a_turn_is_noted_and_the_turn_is_not_saved() -> None:
    dead_actions = EndpointConfig(url=f"http://127.0.0.1:{free_port()}/webhook")
    domain = Domain.empty()
    store = InMemoryTrackerStore(domain)
    processor = MessageProcessor.__new__(MessageProcessor)  # only save_tracker is exercised
    processor.tracker_store = store
    tracker = DialogueStateTracker("acct-1", [])

    async def scenario() -> None:
        turn, token = _turn()
        try:
            with pytest.raises(RasaException):
                await RemoteAction("validate_payment_plan_form", dead_actions).run(
                    None, None, tracker, domain
                )
            assert turn.failed == ["validate_payment_plan_form"]
            with pytest.raises(TurnFailed, match="validate_payment_plan_form"):
                await processor.save_tracker(tracker)
        finally:
            rasa_connector._TURN.reset(token)
        assert await store.retrieve("acct-1") is None  # the conversation is as it was
        await processor.save_tracker(tracker)  # outside our channel's turns: Rasa as usual
        assert await store.retrieve("acct-1") is not None

    asyncio.run(scenario())


def test_a_tracker_store_error_inside_a_turn_fails_it_instead_of_falling_back_to_memory() -> None:
    class Broken(InMemoryTrackerStore):
        async def save(self, tracker: DialogueStateTracker) -> None:
            raise ConnectionError("redis went away")

    store = FailSafeTrackerStore(Broken(Domain.empty()))

    async def scenario() -> None:
        _, token = _turn()
        try:
            with pytest.raises(TrackerStoreFailed):
                await store.save(DialogueStateTracker("acct-1", []))
        finally:
            rasa_connector._TURN.reset(token)

    asyncio.run(scenario())


def _client(status: int, body: Any, seen: list[dict[str, Any]]) -> RasaClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(status, json=body)

    return RasaClient("http://rasa.test", "t", transport=httpx.MockTransport(answer))


def test_the_client_sends_the_message_id_and_tells_an_action_failure_from_an_outage() -> None:
    seen: list[dict[str, Any]] = []
    _client(200, [], seen).send_message("acct-1", "hi", channel="sms", metadata={}, message_id="sms:SM1")
    assert seen[0]["message_id"] == "sms:SM1"
    with pytest.raises(RasaActionFailed) as failed:
        _client(500, {"error": "action_failed", "actions": ["action_create_plan"]}, []).send_message(
            "acct-1", "yes", channel="sms", metadata={}, message_id="sms:SM2"
        )
    assert failed.value.actions == ("action_create_plan",)
    with pytest.raises(RasaUnavailable):
        _client(503, {"error": "action server unavailable"}, []).send_message(
            "acct-1", "yes", channel="sms", metadata={}
        )


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Probe:
    """The action server's health endpoint: answers ``healthy``, counting the requests."""

    def __init__(self, healthy: bool = True) -> None:
        self.healthy = healthy
        self.asked = 0

    async def __call__(self, url: str) -> bool:
        self.asked += 1
        await asyncio.sleep(0.01)  # a request takes a while: concurrent messages overlap it
        return self.healthy


def _health(probe: _Probe, clock: _Clock) -> ActionsHealth:
    return ActionsHealth("http://actions.test", clock=clock, probe=probe)


async def _fail_a_custom_action() -> None:
    """A custom action whose server is gone, as Rasa runs it (through the turn guard)."""
    install_turn_guard()
    dead = EndpointConfig(url=f"http://127.0.0.1:{free_port()}/webhook")
    with pytest.raises(RasaException):
        await RemoteAction("action_create_plan", dead).run(
            None, None, DialogueStateTracker("acct-1", []), Domain.empty()
        )


def test_the_action_server_is_asked_at_most_once_per_interval_under_many_messages() -> None:
    probe, clock = _Probe(), _Clock()
    health = _health(probe, clock)

    async def scenario() -> None:
        assert all(await asyncio.gather(*(health.up() for _ in range(50))))  # concurrent: one request
        assert probe.asked == 1
        for _ in range(50):
            clock.now += HEALTH_INTERVAL / 100
            assert await health.up()
        assert probe.asked == 1
        clock.now = 1000.0 + HEALTH_INTERVAL  # the healthy answer (asked at 1000) is too old now
        assert await health.up()
        assert probe.asked == 2

    asyncio.run(scenario())


def test_an_unhealthy_answer_is_not_kept_each_message_asks_again() -> None:
    probe, clock = _Probe(healthy=False), _Clock()
    health = _health(probe, clock)

    async def scenario() -> None:
        assert not await health.up()
        assert not await health.up()
        assert probe.asked == 2
        probe.healthy = True
        assert await health.up()
        assert await health.up()
        assert probe.asked == 3

    asyncio.run(scenario())


def test_a_failed_custom_action_makes_the_next_message_ask_again() -> None:
    probe, clock = _Probe(), _Clock()
    health = _health(probe, clock)

    async def scenario() -> None:
        assert await health.up()
        await _fail_a_custom_action()
        assert await health.up()  # within the interval, but an action failed since
        assert probe.asked == 2
        assert await health.up()
        assert probe.asked == 2

    asyncio.run(scenario())


def test_without_an_action_server_url_nothing_is_asked() -> None:
    probe = _Probe(healthy=False)
    assert asyncio.run(ActionsHealth("", probe=probe).up())
    assert probe.asked == 0


def _answer(channel: DebtbotInput, on_new_message: Any) -> Any:
    """Our channel's answer to one message (what its webhook route runs)."""

    async def handle() -> Any:
        token = rasa_connector._TURN.set(rasa_connector._Turn())
        try:
            return await channel._handle(None, on_new_message, CollectingOutputChannel(),  # type: ignore[arg-type]
                                         "acct-1", "hi", None, "sms", {})  # fmt: skip
        finally:
            rasa_connector._TURN.reset(token)

    return asyncio.run(handle())


def test_a_down_action_server_stops_the_message_every_time() -> None:
    handled: list[UserMessage] = []

    async def on_new_message(message: UserMessage) -> None:
        handled.append(message)

    channel = DebtbotInput("t", actions_url=f"http://127.0.0.1:{free_port()}")  # nothing listens
    for _ in range(2):
        answer = _answer(channel, on_new_message)
        assert answer.status == 503
        assert json.loads(answer.body) == {"error": "action server unavailable"}
    assert handled == []


def test_an_action_server_dying_within_the_interval_still_gets_503_and_is_asked_at_once() -> None:
    probe, clock = _Probe(), _Clock()
    channel = DebtbotInput("t", health=_health(probe, clock))
    handled: list[str] = []

    async def answers(message: UserMessage) -> None:
        handled.append(message.text or "")
        await message.output_channel.send_text_message(message.sender_id, "Hello!")

    async def its_action_fails(message: UserMessage) -> None:
        probe.healthy = False  # the action server died after the last health answer
        await _fail_a_custom_action()
        turn = rasa_connector._TURN.get()
        assert turn is not None and turn.failed == ["action_create_plan"]
        raise TurnFailed(turn.failed)  # what the turn guard does right after the action

    assert _answer(channel, answers).status == 200
    assert probe.asked == 1
    assert _answer(channel, its_action_fails).status == 503  # trusted "up", then asked again
    assert probe.asked == 2
    assert _answer(channel, answers).status == 503  # still down: stopped before Rasa
    assert probe.asked == 3
    probe.healthy = True
    assert _answer(channel, answers).status == 200
    assert handled == ["hi", "hi"]


def test_an_action_failing_while_its_server_is_up_is_reported_as_action_failed() -> None:
    probe, clock = _Probe(), _Clock()
    channel = DebtbotInput("t", health=_health(probe, clock))

    async def its_action_fails(message: UserMessage) -> None:
        await _fail_a_custom_action()
        raise TurnFailed(["action_create_plan"])

    answer = _answer(channel, its_action_fails)
    assert answer.status == 500
    assert json.loads(answer.body) == {"error": "action_failed", "actions": ["action_create_plan"]}
    assert probe.asked == 2  # before the message, and again after the failure
