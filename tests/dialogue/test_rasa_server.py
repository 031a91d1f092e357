"""The Rasa server we start validates action-server responses with a schema compiled once, and
accepts and rejects exactly what Rasa 3.6's own validation does, with the same error."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from jsonschema import ValidationError  # type: ignore[import-untyped]
from rasa.core.actions.action import RemoteAction

from dialogue import event_broker
from dialogue.rasa_server import install_fast_action_validation, install_fast_event_lookup

Validate = Callable[[RemoteAction, Any], bool]


def _validators() -> tuple[Validate, Validate]:
    """(Rasa's stock function, ours), both taking (action, response)."""
    install_fast_action_validation()
    patched = RemoteAction._validate_action_result
    return patched.__wrapped__, patched


def _action() -> RemoteAction:
    return RemoteAction("action_create_plan", None)


def _sdk_response() -> dict[str, Any]:
    """What our action server answers for a typical turn (rasa-sdk's format)."""
    utterance: dict[str, Any] = {"text": None, "buttons": [], "elements": [], "custom": {}, "template": "utter_plan_readback",
                 "response": "utter_plan_readback", "image": None, "attachment": None,
                 "plan_summary": "$100 a month", "plan_schedule": "from 1 May"}  # fmt: skip
    return {
        "events": [
            {"event": "session_started", "timestamp": None},
            {"event": "slot", "timestamp": None, "name": "account_id", "value": "A-1"},
            {"event": "slot", "timestamp": 1714000000.5, "name": "plan_alternatives", "value": [1, 2]},
            {
                "event": "action",
                "timestamp": None,
                "name": "action_listen",
                "policy": None,
                "confidence": None,
                "action_text": None,
                "hide_rule_turn": False,
            },
            {"event": "followup", "timestamp": None, "name": "utter_ask_plan_offer"},
            {"event": "active_loop", "timestamp": None, "name": None},
            {
                "event": "user",
                "text": "100 a month",
                "input_channel": "sms",
                "message_id": "sms:SM1",
                "parse_data": {
                    "intent": {"name": "offer", "confidence": 0.9},
                    "entities": [{"entity": "amount", "value": 100, "start": 0, "end": 3}],
                },
            },
            {"event": "bot", "text": "Hello", "data": {}, "metadata": {"k": 1}},
        ],
        "responses": [
            utterance,
            {"text": "Reply yes or no.", "buttons": [{"title": "Yes", "payload": "/affirm"}]},
        ],
    }


VALID: list[Any] = [
    _sdk_response(),
    {"events": [], "responses": []},
    {},  # nothing required at the top
    {"events": [{"event": "slot", "name": "x", "value": None}], "other": 1},
    {"events": [{"event": "reset_slots"}, {"event": "restart", "timestamp": 3}]},
]

INVALID: dict[str, Any] = {
    "a list, not an object": [{"event": "slot", "name": "x", "value": 1}],
    "a string": "oops",
    "nothing": None,
    "events not a list": {"events": {"event": "restart"}},
    "responses not a list": {"responses": {"text": "hi"}},
    "a response not an object": {"responses": ["hi"]},
    "an unknown event": {"events": [{"event": "teleport"}]},
    "an event without its name": {"events": [{"name": "x", "value": 1}]},
    "an event name not a string": {"events": [{"event": 7}]},
    "a slot without value": {"events": [{"event": "slot", "name": "x"}]},
    "a slot name not a string": {"events": [{"event": "slot", "name": 1, "value": 1}]},
    "a timestamp as text": {"events": [{"event": "restart", "timestamp": "now"}]},
    "metadata not an object": {"events": [{"event": "bot", "metadata": [1]}]},
    "a confidence as text": {"events": [{"event": "action", "name": "a", "confidence": "high"}]},
    "entities not a list": {"events": [{"event": "entities", "entities": "amount"}]},
    "an entity without value": {"events": [{"event": "user", "parse_data": {"entities": [{"entity": "x"}]}}]},
    "one bad event among good ones": {
        "events": [*_sdk_response()["events"], {"event": "slot", "name": "x"}],
        "responses": _sdk_response()["responses"],
    },
}


@pytest.mark.parametrize("response", VALID)
def test_responses_rasa_accepts_are_accepted(response: Any) -> None:
    stock, patched = _validators()
    assert stock(_action(), response) is True
    assert patched(_action(), response) is True


@pytest.mark.parametrize("response", INVALID.values(), ids=INVALID.keys())
def test_responses_rasa_rejects_are_rejected_with_the_same_error(response: Any) -> None:
    stock, patched = _validators()
    with pytest.raises(ValidationError) as theirs:
        stock(_action(), response)
    with pytest.raises(ValidationError) as ours:
        patched(_action(), response)
    assert str(ours.value) == str(theirs.value)
    assert ours.value.message == theirs.value.message
    assert ours.value.message.endswith("make sure your response from the Action endpoint is valid. "
                                       "For more information about the format visit "
                                       "https://rasa.com/docs/rasa/custom-actions")  # fmt: skip
    assert (list(ours.value.path), ours.value.validator) == (list(theirs.value.path), theirs.value.validator)


def test_the_same_response_is_rejected_every_time_with_one_suffix() -> None:
    _, patched = _validators()
    messages = []
    for _ in range(3):
        with pytest.raises(ValidationError) as error:
            patched(_action(), {"events": [{"event": "teleport"}]})
        messages.append(error.value.message)
    assert len(set(messages)) == 1
    assert messages[0].count("Failed to validate Action server response") == 1


def test_a_subclass_with_its_own_schema_is_validated_against_it() -> None:
    class Strict(RemoteAction):
        @staticmethod
        def action_response_format_spec() -> dict[str, Any]:
            return {"type": "object", "required": ["events"]}

    _, patched = _validators()
    assert patched(_action(), {}) is True
    with pytest.raises(ValidationError, match="'events' is a required property"):
        patched(Strict("action_x", None), {})


def test_installing_twice_changes_nothing() -> None:
    install_fast_action_validation()
    first = RemoteAction._validate_action_result
    install_fast_action_validation()
    assert RemoteAction._validate_action_result is first
    assert first.__wrapped__.__module__ == "rasa.core.actions.action"


def test_the_compiled_validator_is_much_faster_than_rasas() -> None:
    """Loose on purpose (a shared 2-core machine): the measured ratio is about 25x;
    ``python -m bench.rasa_validation`` prints the numbers."""
    stock, patched = _validators()
    response = _sdk_response()

    def best_of(validate: Validate, calls: int) -> float:
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            validate(_action(), response)
            times.append(time.perf_counter() - started)
        return min(times)

    patched(_action(), response)  # compiled once, before timing
    assert best_of(patched, 20) * 5 < best_of(stock, 5)


def test_the_rasa_server_we_start_has_the_compiled_validation_installed_before_rasa_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import rasa.api
    import rasa.utils.common
    import rasa.utils.log_utils

    from dialogue import rasa_server

    order: list[str] = []
    monkeypatch.setattr(rasa_server, "install_fast_action_validation", lambda: order.append("validation"))
    monkeypatch.setattr(rasa_server, "install_fast_event_lookup", lambda: order.append("lookup"))
    monkeypatch.setattr(event_broker, "install_batched_streaming", lambda: order.append("streaming"))
    monkeypatch.setattr(rasa.api, "run", lambda **kwargs: order.append("rasa"))
    monkeypatch.setattr(rasa.utils.common, "configure_logging_and_warnings", lambda *a, **k: None)
    monkeypatch.setattr(rasa.utils.log_utils, "configure_structlog", lambda *a, **k: None)
    monkeypatch.setenv("RASA_AUTH_TOKEN", "t")
    argv = ["--model", "m.tar.gz", "--endpoints", "e.yml", "--credentials", "c.yml"]
    assert rasa_server.main(argv) == 0
    assert order == ["validation", "lookup", "streaming", "rasa"]


# --- events found by name from a table ------------------------------------------------------------


def _event_names() -> list[str]:
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    return sorted({cls.type_name for cls in all_subclasses(Event)})


def test_every_event_name_resolves_to_the_class_rasa_finds() -> None:
    from rasa.shared.core.events import Event

    install_fast_event_lookup()
    stock = Event.resolve_by_type.__wrapped__
    names = _event_names()
    assert len(names) > 20 and "user" in names and "slot" in names
    for name in names:
        assert Event.resolve_by_type(name) is stock(name)


def test_unknown_event_names_answer_as_rasa_does() -> None:
    from rasa.shared.core.events import Event, UserUttered

    install_fast_event_lookup()
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no_such_event", UserUttered) is UserUttered
    with pytest.raises(ValueError, match="Unknown event name 'no_such_event'"):
        Event.resolve_by_type("no_such_event")


def test_an_event_class_defined_later_is_found() -> None:
    from rasa.shared.core.events import Event, SlotSet

    install_fast_event_lookup()
    Event.resolve_by_type("slot")  # the table is built

    class _LateEvent(SlotSet):
        type_name = "debtbot_late_test_event"

    assert Event.resolve_by_type("debtbot_late_test_event") is _LateEvent


def test_a_tracker_round_trip_reads_the_same_events() -> None:
    from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SlotSet, UserUttered

    install_fast_event_lookup()
    events = [UserUttered("hi", {"name": "greet", "confidence": 0.9}), ActionExecuted("utter_greet"),
              BotUttered("Hello"), SlotSet("verified", True)]  # fmt: skip
    assert [Event.from_parameters(e.as_dict()) for e in events] == events


def test_the_fast_lookup_is_much_faster_than_rasas() -> None:
    from rasa.shared.core.events import Event

    install_fast_event_lookup()
    stock = Event.resolve_by_type.__wrapped__

    def best_of(function: Callable[[str], object], rounds: int) -> float:
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(50):
                function("slot")
            best = min(best, time.perf_counter() - started)
        return best

    assert best_of(Event.resolve_by_type, 5) * 10 < best_of(stock, 5)
