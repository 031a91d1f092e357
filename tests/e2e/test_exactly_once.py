"""Rasa handles each message once, on the real Rasa server and trained model: a retry with the
same message id (the worker died after Rasa answered) gets the earlier answers back, and the
dialogue does not hear the message twice."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import Product

pytestmark = pytest.mark.e2e


def test_a_message_rasa_already_handled_is_answered_again_from_the_tracker_not_handled_twice(
    product: Product,
) -> None:
    rasa, config = product.services.rasa, product.config
    conversation = "anon-sms.exactlyonce1"
    metadata = {"channel": "sms", "account_id": None, "language": "en", "external_id": "SMx1"}
    first = rasa.send_message(conversation, "hello", channel="sms", metadata=metadata, message_id="sms:SMx1")
    again = rasa.send_message(conversation, "hello", channel="sms", metadata=metadata, message_id="sms:SMx1")
    assert first and again == first

    tracker = httpx.get(
        f"{config.rasa.url}/conversations/{conversation}/tracker",
        params={"token": config.secrets.rasa_token}, timeout=30,
    ).json()  # fmt: skip
    users = [e for e in tracker["events"] if e["event"] == "user"]
    assert [u["message_id"] for u in users] == ["sms:SMx1"]

    # A new message (another id) with the same words is a new turn.
    other = rasa.send_message(conversation, "hello", channel="sms", metadata=metadata, message_id="sms:SMx2")
    assert other
    tracker = httpx.get(
        f"{config.rasa.url}/conversations/{conversation}/tracker",
        params={"token": config.secrets.rasa_token}, timeout=30,
    ).json()  # fmt: skip
    assert [e["message_id"] for e in tracker["events"] if e["event"] == "user"] == ["sms:SMx1", "sms:SMx2"]
