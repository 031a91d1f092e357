"""Rasa's events reach the product's Redis stream exactly as Rasa's own brokers would get them:
same bodies, same order, one round trip per tracker save."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from dialogue.event_broker import RedisStreamEventBroker, install_batched_streaming, stream_key


class Recording(EventBroker):  # type: ignore[misc]
    """A broker with only ``publish``: what Rasa's loop hands to any broker."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.bodies.append(event)


def _save_a_turn(broker: EventBroker) -> None:
    store = InMemoryTrackerStore(Domain.empty(), event_broker=broker)
    tracker = DialogueStateTracker("acct-A1", slots=[])
    for event in (UserUttered("hello", {"name": "greet", "confidence": 0.97}, message_id="sms:SM1"),
                  ActionExecuted("utter_greet"), BotUttered("Hi, how are you?"), SlotSet("verified", False)):  # fmt: skip
        event.timestamp = 1_700_000_000.0  # the same bodies for both brokers
        tracker.update(event)
    asyncio.run(store.save(tracker))


def _stream(client: redis.Redis, key: str) -> list[dict[str, Any]]:
    entries = client.xrange(key)
    assert all(fields[b"sender_id"] == b"acct-A1" for _, fields in entries)
    return [json.loads(fields[b"data"]) for _, fields in entries]


def test_a_saves_events_reach_the_stream_as_rasas_loop_hands_them_to_any_broker(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_batched_streaming()
    recording = Recording()
    _save_a_turn(recording)
    broker = RedisStreamEventBroker(redis_client, stream_key("test"))
    calls: list[str] = []
    monkeypatch.setattr(broker, "publish", lambda event: calls.append("publish"))
    _save_a_turn(broker)
    assert calls == []  # one publish_many, no per-event publish
    assert _stream(redis_client, "test:rasa_events") == recording.bodies
    assert [body["event"] for body in recording.bodies] == ["user", "action", "bot", "slot"]


def test_the_broker_is_built_from_its_endpoint_configuration(redis_url: str) -> None:
    address = redis.Redis.from_url(redis_url).connection_pool.connection_kwargs
    config = EndpointConfig(url=address["host"], type="dialogue.event_broker.RedisStreamEventBroker",
                            port=str(address["port"]), db="0", username="", password="", use_ssl="",
                            key_prefix="prefixed", max_length="10")  # fmt: skip
    broker = asyncio.run(EventBroker.create(config))
    assert isinstance(broker, RedisStreamEventBroker)
    assert broker.is_ready() and broker.key == "prefixed:rasa_events" and broker.max_length == 10
    for n in range(300):
        broker.publish({"sender_id": "acct-A1", "event": "user", "text": str(n)})
    assert broker.client.xlen(broker.key) < 300  # capped (approximately) while nobody reads it
    asyncio.run(broker.close())


def test_a_broker_without_redis_is_not_ready() -> None:
    broker = RedisStreamEventBroker(redis.Redis(port=1, socket_connect_timeout=0.2), "x:rasa_events")
    assert broker.is_ready() is False
    with pytest.raises(redis.ConnectionError):
        broker.publish({"sender_id": "acct-A1", "event": "user"})  # the turn fails and is retried
