"""Our Rasa input channel and client: a failed custom action fails the turn (nothing of it
saved, the worker retries) instead of Rasa's "Bot will continue, but the actions events are
lost"; a message Rasa already handled is answered from the tracker, not handled again."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from rasa.core.actions.action import RemoteAction
from rasa.core.processor import MessageProcessor
from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig

from dialogue import rasa_connector
from dialogue.rasa_client import RasaActionFailed, RasaClient, RasaUnavailable
from dialogue.rasa_connector import TrackerStoreFailed, TurnFailed, earlier_answers, install_turn_guard
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
