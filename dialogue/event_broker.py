"""Rasa's conversation events into a Redis stream, for the analytics store to copy in batches.

Rasa 3.6's SQL event broker opens a session and commits one row per event, on the server's single
event loop: about a third of the Rasa server's CPU under load (docs/performance.md). This broker
appends each event to a Redis stream instead (the same Redis as the tracker store, so an event is
as durable as the tracker it belongs to), one pipelined round trip per tracker save when Rasa's
tracker store hands over the events together (:func:`install_batched_streaming`). The product's
analytics ingester (``bot/ops/analytics/ingest.py``) copies the stream into the ``events`` table
Rasa's SQL broker used to write, in order, moving its cursor in the same transaction, and trims
what it has stored.

Configured in ``endpoints.yml``::

    event_broker:
      type: dialogue.event_broker.RedisStreamEventBroker
      url: <host>
      port: <port>
      ...
      key_prefix: <the product's redis.key_prefix>

The stream is ``<key_prefix>:rasa_events`` (``bot.store.connection.Keys.rasa_events``). Entries:
``sender_id`` and ``data`` (the event's JSON, as Rasa's SQL broker stores it). A cap
(``max_length``, default 500,000, approximate) keeps Redis bounded if the ingester stops; what it
trims unread is reported by the ingester as a gap.
"""

from __future__ import annotations

import json
import logging
from asyncio import AbstractEventLoop
from collections.abc import Iterable, Mapping
from typing import Any

import redis
from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

STREAM = "rasa_events"
DEFAULT_MAX_LENGTH = 500_000


def stream_key(key_prefix: str) -> str:
    """The stream's key for a key prefix (the product's ``Keys`` builds the same name)."""
    return f"{key_prefix}:{STREAM}" if key_prefix else STREAM


def _flag(value: Any) -> bool:
    """endpoints.yml fills ``${...}`` with strings: "" and "0"/"false" are false."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no")
    return bool(value)


class RedisStreamEventBroker(EventBroker):
    """Appends each Rasa event to a capped Redis stream (see the module's docstring)."""

    def __init__(self, client: redis.Redis[bytes], key: str, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        if max_length < 1:
            raise ValueError("event_broker.max_length must be at least 1")
        self.client = client
        self.key = key
        self.max_length = max_length

    @classmethod
    async def from_endpoint_config(
        cls,
        broker_config: EndpointConfig,
        event_loop: AbstractEventLoop | None = None,
    ) -> RedisStreamEventBroker:
        """The broker from ``endpoints.yml`` (``url`` is the Redis host, as for the tracker store)."""
        kwargs = broker_config.kwargs
        client: redis.Redis[bytes] = redis.Redis(
            host=broker_config.url or "localhost",
            port=int(kwargs.get("port") or 6379),
            db=int(kwargs.get("db") or 0),
            username=kwargs.get("username") or None,
            password=kwargs.get("password") or None,
            ssl=_flag(kwargs.get("use_ssl")),
            ssl_ca_certs=kwargs.get("ssl_ca_certs") or None,
            socket_timeout=10,
            health_check_interval=30,
        )
        max_length = int(kwargs.get("max_length") or DEFAULT_MAX_LENGTH)
        return cls(client, stream_key(str(kwargs.get("key_prefix") or "")), max_length)

    @staticmethod
    def _fields(event: Mapping[str, Any]) -> dict[str, str]:
        return {"sender_id": str(event.get("sender_id") or ""), "data": json.dumps(event)}

    def publish(self, event: dict[str, Any]) -> None:
        """One event onto the stream (an error propagates: the turn fails and is retried, as
        with Rasa's own brokers)."""
        self.client.xadd(self.key, self._fields(event), maxlen=self.max_length, approximate=True)

    def publish_many(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Several events in one round trip, in order."""
        pipe = self.client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(self.key, self._fields(event), maxlen=self.max_length, approximate=True)
        pipe.execute()

    def is_ready(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    async def close(self) -> None:
        self.client.close()


def install_batched_streaming() -> None:
    """Rasa's tracker store publishes a save's new events one ``publish`` call at a time; with a
    broker that has ``publish_many`` they go in one call (one Redis round trip), in the same
    order and with the same bodies. Other brokers keep Rasa's loop. Idempotent."""
    from rasa.core.tracker_store import TrackerStore

    if getattr(TrackerStore, "_debtbot_batched_streaming", False):
        return
    stock = TrackerStore._stream_new_events

    async def _stream_new_events(self: Any, event_broker: Any, new_events: list[Any], sender_id: str) -> None:
        publish_many = getattr(event_broker, "publish_many", None)
        if publish_many is None:
            await stock(self, event_broker, new_events, sender_id)
            return
        publish_many([{"sender_id": sender_id, **event.as_dict()} for event in new_events])

    TrackerStore._stream_new_events = _stream_new_events
    TrackerStore._debtbot_batched_streaming = True
