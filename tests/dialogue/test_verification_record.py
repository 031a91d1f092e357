"""What the verification and call-back actions tell the product (the agents' history and inbox):
each answer to the check, right or wrong, and a call back asked for, once per message."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker

from dialogue import backend as backend_module
from dialogue.actions.support import ActionRecordCallback
from dialogue.actions.verification import ValidateVerifyForm
from tests.dialogue.test_actions import RecordingBackend, run, tracker, validate


class KeywordRecordingBackend(RecordingBackend):
    """The actions' recording backend, keeping each call's keyword arguments too."""

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, (args, kwargs)))
            return None

        return record


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> KeywordRecordingBackend:
    recording = KeywordRecordingBackend()
    monkeypatch.setattr(backend_module, "_backend", recording)
    return recording


def answered(**slots: Any) -> Tracker:
    """A tracker whose latest message is ``sms:SM7`` (what a retried turn has again)."""
    t = tracker(**slots)
    t.latest_message["message_id"] = "sms:SM7"
    return t


def test_a_right_answer_tells_the_product_the_conversation_is_verified(
    backend: KeywordRecordingBackend,
) -> None:
    _, result = validate(
        ValidateVerifyForm(), "validate_verification_answer", "12 de marzo de 1984", answered()
    )
    assert result["verified"] is True
    assert backend.called("record_verification") == [
        (("ACC-1", "acct-ACC-1"), {"verified": True, "message_id": "sms:SM7"}),
    ]


def test_each_wrong_answer_is_told_with_how_many_in_a_row(backend: KeywordRecordingBackend) -> None:
    validate(ValidateVerifyForm(), "validate_verification_answer", "1990", answered(verification_failures=0))
    _, result = validate(
        ValidateVerifyForm(), "validate_verification_answer", "1991", answered(verification_failures=2)
    )
    assert result["verification_answer"] == "failed"
    assert [kwargs for _, kwargs in backend.called("record_verification")] == [
        {"verified": False, "failures": 1, "message_id": "sms:SM7"},
        {"verified": False, "failures": 3, "message_id": "sms:SM7"},
    ]
    assert [args[2] for args, _ in backend.called("flag_for_agent")] == ["verification_failed"]


def test_a_call_back_is_recorded_once_per_asking_message(backend: KeywordRecordingBackend) -> None:
    run(ActionRecordCallback(), answered(callback_time="tomorrow at 5pm", callback_format="video"))
    [(args, kwargs)] = backend.called("record_callback")
    assert args == ("ACC-1", "acct-ACC-1", "tomorrow at 5pm", "video") and kwargs == {"message_id": "sms:SM7"}
