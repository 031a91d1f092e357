"""The sandbox channel: the provider's webhook handling, a Redis outbox instead of sending."""

from __future__ import annotations

import redis

from channels.base import Button, DeliveryStatus, OutboundMessage
from channels.sandbox import SandboxChannel, SandboxOutbox
from channels.sms import SmsChannel


def message(outbox_id: str, recipient: str = "+14155550123", text: str = "hello") -> OutboundMessage:
    return OutboundMessage(outbox_id=outbox_id, channel="sms", recipient=recipient, text=text,
                           buttons=(Button("Yes", "/affirm"),), conversation_id="acct-1")  # fmt: skip


def test_sent_messages_land_in_the_outbox_in_order(redis_client: redis.Redis) -> None:
    channel = SandboxChannel(SmsChannel(auth_token="t"), SandboxOutbox(redis_client, "t:outbox"))
    assert not channel.live and channel.name == "sms"
    receipt = channel.send(message("1", text="first"))
    channel.send(message("2", text="second"))
    assert receipt.status is DeliveryStatus.DELIVERED and receipt.outbox_id == "1"
    entries = SandboxOutbox(redis_client, "t:outbox").read()
    assert [e.text for e in entries] == ["first", "second"]
    assert entries[0].buttons == [{"title": "Yes", "payload": "/affirm"}]


def test_a_retried_send_appears_once(redis_client: redis.Redis) -> None:
    outbox = SandboxOutbox(redis_client, "t:outbox")
    first = outbox.append(message("same"))
    again = outbox.append(message("same"))
    assert first == again
    assert len(outbox.read()) == 1


def test_outbox_can_be_read_per_recipient_and_after_an_entry(redis_client: redis.Redis) -> None:
    outbox = SandboxOutbox(redis_client, "t:outbox")
    a1 = outbox.append(message("a1", recipient="+1A"))
    outbox.append(message("b1", recipient="+1B"))
    outbox.append(message("a2", recipient="+1A"))
    assert [e.outbox_id for e in outbox.read(recipient="+1A")] == ["a1", "a2"]
    assert [e.outbox_id for e in outbox.read(after=a1)] == ["b1", "a2"]
