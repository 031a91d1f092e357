"""Events for the creditor's system (``plan.created``...), posted signed and retried until accepted.

Each event is kept in an append-only stream and, when ``plans.webhook_url`` is set, queued for
delivery in order. A delivery is a JSON POST with three headers:

- ``X-Debtbot-Event-Id``: the event's id (the receiver ignores ids it has seen: replay-safe);
- ``X-Debtbot-Timestamp``: Unix time of this attempt;
- ``X-Debtbot-Signature``: ``sha256=`` + hex HMAC-SHA256 of ``"<timestamp>.<body>"`` with
  ``PLANS_WEBHOOK_SECRET`` (the receiver rejects timestamps more than 5 minutes old).

2xx is accepted. Timeouts, 408, 429 and 5xx are retried with backoff, forever; any other 4xx
means the receiver refuses the event itself: it goes to the dead letters for ops to look at.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import httpx
import redis

from bot.store.connection import Keys
from bot.store.jobs import Jobs
from bot.store.queues import Entry, GiveUp, KeyedQueue, RetryLater

WEBHOOKS = "webhooks"
#: One key: the creditor's system gets events in the order they happened.
_KEY = "creditor"
_RETRYABLE = {408, 425, 429}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for a body sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, *, now: float, tolerance: int = 300
) -> bool:
    """What a receiver does: check the signature and that the timestamp is recent."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


class CreditorEvents:
    """Records events and queues them for the creditor's webhook."""

    def __init__(
        self,
        client: redis.Redis[bytes],
        keys: Keys,
        queue: KeyedQueue,
        jobs: Jobs,
        *,
        webhook_url: str | None,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._queue = queue
        self._jobs = jobs
        self._webhook_url = webhook_url

    def announce(self, event_type: str, data: Mapping[str, Any]) -> str:
        """Record an event and queue its delivery; return its id."""
        event_id = f"evt_{uuid.uuid4().hex}"
        event = {
            "id": event_id,
            "type": event_type,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "data": dict(data),
        }
        body = json.dumps(event, sort_keys=True)
        self._redis.xadd(self._keys.events, {"id": event_id, "type": event_type, "body": body})
        if self._webhook_url:
            self._queue.append(
                _KEY, body, dedupe_key=self._keys.dedupe("event", event_id), dedupe_ttl_seconds=86400 * 30
            )
            self._jobs.schedule(WEBHOOKS, _KEY)
        return event_id


class WebhookSender:
    """The queue handler that posts one event to the creditor's system."""

    def __init__(
        self, url: str, secret: str, *, timeout: float = 10.0, client: httpx.Client | None = None
    ) -> None:
        self._url = url
        self._secret = secret
        self._client = client or httpx.Client(timeout=timeout)

    def __call__(self, entry: Entry) -> None:
        body = entry.payload.encode()
        event_id = json.loads(entry.payload)["id"]
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-Debtbot-Event-Id": event_id,
            "X-Debtbot-Timestamp": str(timestamp),
            "X-Debtbot-Signature": sign(self._secret, timestamp, body),
        }
        try:
            answer = self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RetryLater(f"creditor webhook unreachable: {type(exc).__name__}") from exc
        if 200 <= answer.status_code < 300:
            return
        if answer.status_code >= 500 or answer.status_code in _RETRYABLE:
            raise RetryLater(f"creditor webhook answered {answer.status_code}")
        raise GiveUp(f"creditor webhook refused event {event_id}: {answer.status_code} {answer.text[:200]}")
