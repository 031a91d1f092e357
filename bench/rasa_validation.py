"""What validating one action-server response costs in the Rasa server: Rasa 3.6's stock
``RemoteAction._validate_action_result`` (``jsonschema.validate``: the schema checked and a
validator built at every call) against ours (``dialogue.rasa_server``: built once), on the same
response in the same process, so the ratio holds whatever the machine.
Run: ``python -m bench.rasa_validation``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from rasa.core.actions.action import RemoteAction
from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from dialogue.rasa_server import install_fast_action_validation


def realistic_response() -> dict[str, Any]:
    """What our action server answers at a session start followed by a plan read-back."""
    dispatcher = CollectingDispatcher()
    dispatcher.utter_message(response="utter_plan_readback", plan_summary="$100 a month",
                             plan_schedule="monthly from 1 May")  # fmt: skip
    buttons = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
    dispatcher.utter_message(text="Reply yes or no.", buttons=buttons)
    events = [
        SessionStarted(),
        SlotSet("channel", "sms"),
        SlotSet("account_id", "A-1042"),
        SlotSet("language", "en"),
        SlotSet("plan_alternatives", [{"amount": 100, "every": "month"}, {"amount": 50, "every": "week"}]),
        SlotSet("requested_slot", None),
        ActionExecuted("action_listen"),
    ]
    return {"events": events, "responses": dispatcher.messages}


def per_call_ms(validate: Callable[[RemoteAction, Any], bool], response: Any, calls: int) -> list[float]:
    action = RemoteAction("action_create_plan", None)
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        validate(action, response)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    install_fast_action_validation()
    patched = RemoteAction._validate_action_result
    stock = patched.__wrapped__
    response = realistic_response()
    patched(RemoteAction("warm_up", None), response)
    stock(RemoteAction("warm_up", None), response)
    theirs = per_call_ms(stock, response, 60)
    ours = per_call_ms(patched, response, 2000)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"action-response validation, {len(response['events'])} events, "
          f"{len(response['responses'])} responses (load average {load})")  # fmt: skip
    for name, samples in (("stock Rasa 3.6", theirs), ("compiled once", ours)):
        print(f"  {name:<15} median {statistics.median(samples):8.3f} ms   min {min(samples):8.3f} ms"
              f"   ({len(samples)} calls)")  # fmt: skip
    print(f"  ratio           median {statistics.median(theirs) / statistics.median(ours):6.1f}x"
          f"   min {min(theirs) / min(ours):6.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
