"""A channel for laptops and demos: real webhooks in, a Redis outbox instead of a provider out.

When a provider has no credentials the product still works end to end. Inbound requests are
authenticated and parsed by the provider's own adapter (configured with a development secret,
which is what the simulator signs with), and what would have been sent is appended to a Redis
stream that ``/simulator/outbox`` reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from channels.base import (
    Channel,
    ChannelError,
    DeliveryReceipt,
    DeliveryStatus,
    InboundMessage,
    OutboundMessage,
    StatusCallback,
    WebhookAck,
    WebhookRequest,
    utcnow,
)

#: The outbox keeps the newest entries only; it is a development aid, not an archive.
OUTBOX_MAXLEN = 10_000
#: How long a sent outbox id is remembered, so a retried send is not shown twice.
SEEN_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class OutboxEntry:
    """One message the sandbox 'sent'."""

    entry_id: str
    outbox_id: str
    channel: str
    recipient: str
    text: str
    buttons: list[dict[str, str]]
    conversation_id: str
    sent_at: datetime
    #: The offer the buttons belong to (Telegram's ``callback_data`` carries it), if any.
    offer_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "entry_id": self.entry_id,
            "outbox_id": self.outbox_id,
            "channel": self.channel,
            "recipient": self.recipient,
            "text": self.text,
            "buttons": self.buttons,
            "conversation_id": self.conversation_id,
            "sent_at": self.sent_at.isoformat(),
            "offer_id": self.offer_id,
        }


class SandboxOutbox:
    """The Redis stream where sandboxed channels put what they would have sent."""

    def __init__(self, client: redis.Redis[bytes], key: str) -> None:
        self._redis = client
        self._key = key
        self._seen_prefix = f"{key}:sent:"

    def append(self, message: OutboundMessage) -> str:
        """Record a message once per ``outbox_id``; return the outbox stream entry id."""
        # A retried send of the same outbox id must not show up twice, like a real provider
        # given an idempotency key.
        seen_key = self._seen_prefix + message.outbox_id
        existing = self._redis.get(seen_key)
        if existing is not None:
            return existing.decode() if isinstance(existing, bytes) else str(existing)
        entry_id = self._redis.xadd(
            self._key,
            {
                "outbox_id": message.outbox_id,
                "channel": message.channel,
                "recipient": message.recipient,
                "text": message.text,
                "buttons": json.dumps([{"title": b.title, "payload": b.payload} for b in message.buttons]),
                "conversation_id": message.conversation_id,
                "sent_at": utcnow().isoformat(),
                "offer_id": message.offer_id or "",
            },
            maxlen=OUTBOX_MAXLEN,
            approximate=True,
        )
        entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        self._redis.set(seen_key, entry, ex=SEEN_TTL_SECONDS)
        return entry

    def read(
        self,
        *,
        channel: str | None = None,
        recipient: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[OutboxEntry]:
        """Entries in sending order, optionally for one channel/recipient, newer than ``after``."""
        start = f"({after}" if after else "-"
        rows = self._redis.xrange(self._key, min=start, max="+", count=OUTBOX_MAXLEN)
        entries: list[OutboxEntry] = []
        for raw_id, raw_fields in rows:
            fields = {_text(k): _text(v) for k, v in raw_fields.items()}
            if channel and fields["channel"] != channel:
                continue
            if recipient and fields["recipient"] != recipient:
                continue
            entries.append(
                OutboxEntry(
                    entry_id=_text(raw_id),
                    outbox_id=fields["outbox_id"],
                    channel=fields["channel"],
                    recipient=fields["recipient"],
                    text=fields["text"],
                    buttons=json.loads(fields["buttons"]),
                    conversation_id=fields["conversation_id"],
                    sent_at=datetime.fromisoformat(fields["sent_at"]),
                    offer_id=fields.get("offer_id") or None,
                )
            )
        return entries[-limit:]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class SandboxChannel(Channel):
    """Wraps a provider adapter: its webhook handling, the outbox instead of its sending."""

    live = False

    def __init__(self, provider: Channel, outbox: SandboxOutbox) -> None:
        self.name = provider.name
        self._provider = provider
        self._outbox = outbox

    @property
    def provider(self) -> Channel:
        """The wrapped adapter (used by the simulator to sign requests the same way)."""
        return self._provider

    def authenticate(self, request: WebhookRequest) -> None:
        self._provider.authenticate(request)

    def parse(self, request: WebhookRequest) -> InboundMessage | None:
        return self._provider.parse(request)

    def ack(self) -> WebhookAck:
        return self._provider.ack()

    def parse_status(self, request: WebhookRequest) -> StatusCallback | None:
        return self._provider.parse_status(request)

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        try:
            entry_id = self._outbox.append(message)
        except redis.RedisError as exc:
            raise ChannelError(f"sandbox outbox unavailable: {exc}") from exc
        return DeliveryReceipt(
            outbox_id=message.outbox_id,
            channel=self.name,
            status=DeliveryStatus.DELIVERED,
            external_id=f"sandbox-{entry_id}",
        )
