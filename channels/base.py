"""The channel-neutral contract every adapter implements.

An adapter turns a provider's webhook request into an :class:`InboundMessage` (or ``None``
for events the product ignores), and turns an :class:`OutboundMessage` into a provider call,
answering with a :class:`DeliveryReceipt`. Adapters never import Flask or Redis code of ours:
the gateway hands them a neutral :class:`WebhookRequest`.
"""

from __future__ import annotations

import enum
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Protocol

from channels.cleaning import UnsafeJson, loads_json


class ChannelError(Exception):
    """Root of every error raised by a channel adapter."""


class ChannelAuthError(ChannelError):
    """A webhook request failed authentication (bad or missing signature / secret)."""


class MalformedRequest(ChannelError):
    """A webhook request was authentic but its body cannot be understood."""


class RateLimited(ChannelError):
    """The provider asked us to slow down; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeliveryFailed(ChannelError):
    """The provider refused a message.

    ``permanent`` failures (bad number, unsubscribed recipient) must not be retried;
    temporary ones (timeouts, 5xx) may be.
    """

    def __init__(
        self, message: str, *, permanent: bool, code: str | None = None, unsure: bool = False
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        #: The call timed out or the connection broke after the request left: the provider
        #: may have accepted the message, so check (``Channel.find_sent``) before resending.
        self.unsure = unsure


class Pacer(Protocol):
    """Shared send pacing: reserve ``cost`` units in each ``(bucket, units per second)``."""

    def reserve(self, buckets: Sequence[tuple[str, float]], cost: float) -> float:
        """0 when reserved (send now), else the seconds to wait before asking again."""
        ...


class UnsupportedCapability(ChannelError):
    """The channel cannot do what was asked (e.g. buttons on a channel without them)."""


class DeliveryStatus(str, enum.Enum):
    """Where an outbound message is in its life; ordered so a status never moves backwards."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"


@dataclass(frozen=True)
class WebhookRequest:
    """A provider's HTTP request, as the gateway received it.

    ``url`` is the *public* URL the provider called (``server.public_url`` + path + query),
    which is what providers sign, not the URL the WSGI server saw behind a proxy.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    form: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """Return a header case-insensitively, or ``None``."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    def json(self) -> Any:
        """Decode the body as JSON, raising :class:`MalformedRequest` when it is not, or when
        it is JSON we refuse to read (nested too deep, ``NaN``, numbers out of range).

        Strings come back as decoded: adapters clean them (``channels.cleaning``) before use.
        """
        try:
            return loads_json(self.body)
        except UnsafeJson as exc:
            raise MalformedRequest(str(exc)) from exc


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class InboundMessage:
    """One message a person sent us, on any channel.

    ``sender`` is the channel address the reply goes back to (E.164 phone number,
    Telegram chat id, email address). ``external_id`` is the provider's own id
    (Twilio ``MessageSid``, Telegram ``update_id``, email ``Message-ID``), used to
    de-duplicate retried webhooks. ``raw`` keeps the provider payload as received.
    """

    channel: str
    external_id: str
    sender: str
    text: str
    recipient: str = ""
    received_at: datetime = field(default_factory=utcnow)
    sender_handle: str | None = None
    thread_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    #: ``text``; ``choice`` (a button pressed: ``text`` is its data, never trusted);
    #: ``start`` (Telegram /start: ``text`` is the deep-link token, maybe empty);
    #: ``unsupported`` (a photo, sticker, voice note...: nothing we can read).
    kind: str = "text"

    def to_json(self) -> str:
        """Serialise for the durable inbound stream."""
        return json.dumps(
            {
                "channel": self.channel,
                "external_id": self.external_id,
                "sender": self.sender,
                "text": self.text,
                "recipient": self.recipient,
                "received_at": self.received_at.isoformat(),
                "sender_handle": self.sender_handle,
                "thread_id": self.thread_id,
                "raw": dict(self.raw),
                "kind": self.kind,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, data: str) -> InboundMessage:
        """Inverse of :meth:`to_json`."""
        obj = json.loads(data)
        obj["received_at"] = datetime.fromisoformat(obj["received_at"])
        return cls(**obj)

    def with_text(self, text: str) -> InboundMessage:
        """A copy with different text (e.g. after redaction)."""
        return replace(self, text=text)


@dataclass(frozen=True)
class Button:
    """A choice offered with a message: what the person sees and what it means."""

    title: str
    payload: str


@dataclass(frozen=True)
class OutboundMessage:
    """One message we want to send.

    ``outbox_id`` is our own id, stable across retries, so a retry after a timeout can be
    recognised (and, where the provider allows, never sent twice).
    """

    outbox_id: str
    channel: str
    recipient: str
    text: str
    buttons: tuple[Button, ...] = ()
    conversation_id: str = ""
    in_reply_to: str | None = None
    proactive: bool = False
    #: When the message was made (Unix time): a message made before its recipient opted out
    #: is not sent after it.
    created_at: float = field(default_factory=time.time)
    #: The conversation's language (``en``/``es``), for what a channel adds around the text.
    language: str = ""
    #: Why it is sent: ``reply``, ``opener``, ``reminder`` (for the compliance record).
    kind: str = "reply"
    #: The instruction to stop messages on this channel that the message must carry visibly
    #: (each channel places it in its own way); empty when none is required.
    opt_out_text: str = ""
    #: Email: the subject ("Re: ..." on replies), the thread's earlier Message-IDs for
    #: ``References``, and the one-click unsubscribe URL (RFC 8058).
    subject: str = ""
    references: tuple[str, ...] = ()
    unsubscribe_url: str = ""
    #: Which offer of choices ``buttons`` are (``bot.conversations.render.OfferedChoices``): a channel whose
    #: buttons come back to us (Telegram) sends it with them, so a press on an older message
    #: is told apart from one on the current offer. ``None``: no offer stands behind them.
    offer_id: str | None = None

    def to_json(self) -> str:
        """Serialise for the outbound queue."""
        return json.dumps(
            {
                "outbox_id": self.outbox_id,
                "channel": self.channel,
                "recipient": self.recipient,
                "text": self.text,
                "buttons": [{"title": b.title, "payload": b.payload} for b in self.buttons],
                "conversation_id": self.conversation_id,
                "in_reply_to": self.in_reply_to,
                "proactive": self.proactive,
                "created_at": self.created_at,
                "language": self.language,
                "kind": self.kind,
                "opt_out_text": self.opt_out_text,
                "subject": self.subject,
                "references": list(self.references),
                "unsubscribe_url": self.unsubscribe_url,
                "offer_id": self.offer_id,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, data: str) -> OutboundMessage:
        """Inverse of :meth:`to_json`."""
        obj = json.loads(data)
        obj["buttons"] = tuple(Button(**b) for b in obj.get("buttons", []))
        obj["references"] = tuple(obj.get("references", ()))
        obj.setdefault("created_at", 0.0)  # queued before the field existed: treat as old
        return cls(**obj)


@dataclass(frozen=True)
class DeliveryReceipt:
    """What the provider said about an outbound message."""

    outbox_id: str
    channel: str
    status: DeliveryStatus
    external_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    at: datetime = field(default_factory=utcnow)
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusCallback:
    """A provider telling us what became of a message we sent."""

    receipt: DeliveryReceipt
    recipient: str


@dataclass(frozen=True)
class WebhookAck:
    """The HTTP answer a provider expects once we have accepted its webhook."""

    body: str
    content_type: str = "application/json"
    status: int = 200


class Channel(ABC):
    """One messaging channel: authenticate and parse webhooks, send messages.

    ``live`` is ``False`` for a sandboxed channel, which keeps what it would send.
    """

    name: str
    live: bool = True

    @abstractmethod
    def authenticate(self, request: WebhookRequest) -> None:
        """Raise :class:`ChannelAuthError` unless the request really comes from the provider."""

    @abstractmethod
    def parse(self, request: WebhookRequest) -> InboundMessage | None:
        """Turn an authenticated request into a message, or ``None`` for events to ignore.

        Raises :class:`MalformedRequest` for a body that cannot be understood.
        """

    @abstractmethod
    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        """Send one message; raise :class:`RateLimited` or :class:`DeliveryFailed` on failure."""

    def ack(self) -> WebhookAck:
        """The body a provider expects in answer to an accepted webhook."""
        return WebhookAck(body='{"ok": true}')

    def parse_status(self, request: WebhookRequest) -> StatusCallback | None:
        """A delivery-status callback, for channels whose provider sends them."""
        raise UnsupportedCapability(f"{self.name} has no status callbacks")

    def acknowledge(self, message: InboundMessage, notice: str | None = None) -> None:
        """Tell the provider a button press was received (where it waits for that)."""
        return None

    def find_sent(self, message: OutboundMessage, since: datetime) -> DeliveryReceipt | None:
        """After an unsure failure: the provider's record of ``message`` if it did go out.

        The default says "not sent", right for channels whose sends cannot be half-done.
        """
        return None
