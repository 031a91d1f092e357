"""The channel-neutral messages survive the trip through Redis unchanged."""

from __future__ import annotations

import dataclasses

import pytest

from channels.base import Button, InboundMessage, OutboundMessage, WebhookRequest


def test_inbound_message_round_trips_through_json() -> None:
    message = InboundMessage(
        channel="sms", external_id="SM1", sender="+1", text="¿hola? 👋", raw={"Body": "x"}
    )
    assert InboundMessage.from_json(message.to_json()) == message


def test_outbound_message_round_trips_through_json() -> None:
    message = OutboundMessage(
        "id1", "telegram", "42", "Pick one", (Button("A", "/a"), Button("B", "/b")), "c1"
    )
    assert OutboundMessage.from_json(message.to_json()) == message


def test_messages_are_immutable() -> None:
    message = InboundMessage(channel="sms", external_id="SM1", sender="+1", text="x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.text = "y"  # type: ignore[misc]


def test_header_lookup_ignores_case() -> None:
    request = WebhookRequest("POST", "u", {"X-Twilio-Signature": "abc"}, b"")
    assert request.header("x-twilio-signature") == "abc"
    assert request.header("missing") is None
