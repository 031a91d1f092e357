"""plan.created events reach the creditor's system signed, in order, retried until accepted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from bot.conversations.creditor_events import WEBHOOKS, WebhookSender, sign, verify
from bot.runtime.services import Services, build_services
from bot.runtime.worker import Worker
from bot.store.queues import Entry
from tests.conftest import ConfigFactory, free_port, wait_for

SECRET = "whsec-test"


@dataclass
class Receiver:
    """A creditor endpoint that answers the scripted statuses, then 200, and checks signatures."""

    statuses: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        valid = verify(SECRET, request.headers.get("X-Debtbot-Timestamp", ""), body,
                       request.headers.get("X-Debtbot-Signature", ""), now=time.time())  # fmt: skip
        self.received.append(
            {"body": json.loads(body), "valid": valid, "id": request.headers.get("X-Debtbot-Event-Id")}
        )
        status = self.statuses.pop(0) if self.statuses else 200
        return Response("{}", status=status)(environ, start_response)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    app = Receiver()
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{port}/hooks/debtbot"
    server.shutdown()


def test_signature_round_trip_and_replay_window() -> None:
    body = b'{"id": "evt_1"}'
    signature = sign(SECRET, 1_700_000_000, body)
    assert verify(SECRET, "1700000000", body, signature, now=1_700_000_100)
    assert not verify(SECRET, "1700000000", body, signature, now=1_700_000_400)  # too old: a replay
    assert not verify(SECRET, "1700000000", body + b" ", signature, now=1_700_000_100)  # tampered
    assert not verify("other", "1700000000", body, signature, now=1_700_000_100)


def test_sender_classifies_answers(receiver: tuple[Receiver, str]) -> None:
    from bot.store.queues import GiveUp, RetryLater

    app, url = receiver
    entry = Entry("creditor", "1-0", json.dumps({"id": "evt_x", "type": "plan.created", "data": {}}))
    sender = WebhookSender(url, SECRET)
    for status, expected in ((503, RetryLater), (429, RetryLater), (400, GiveUp)):
        app.statuses = [status]
        with pytest.raises(expected):
            sender(entry)
    app.statuses = []
    sender(entry)
    assert all(r["valid"] for r in app.received) and app.received[-1]["id"] == "evt_x"
    with pytest.raises(RetryLater, match="unreachable"):
        WebhookSender(f"http://127.0.0.1:{free_port()}/x", SECRET)(entry)


def test_events_are_delivered_in_order_and_retried_until_accepted(
    make_config: ConfigFactory, redis_client: redis.Redis, receiver: tuple[Receiver, str]
) -> None:
    app, url = receiver
    app.statuses = [500, 502]  # the creditor's system is down for the first two attempts
    config = make_config(plans={"webhook_url": url}, env={"PLANS_WEBHOOK_SECRET": SECRET})
    services: Services = build_services(config, redis_client)
    first = services.events.announce("plan.created", {"plan_id": "p1"})
    second = services.events.announce("plan.created", {"plan_id": "p2"})
    worker = Worker(build_services(config))
    worker.start()
    try:
        wait_for(
            lambda: len([r for r in app.received if r["id"] == second]) >= 1, timeout=30, what="both events"
        )
    finally:
        worker.stop()
    ids = [r["id"] for r in app.received]
    assert ids == [first, first, first, second]  # retried, never skipped, order kept
    assert all(r["valid"] for r in app.received)
    assert app.received[-1]["body"]["data"] == {"plan_id": "p2"}
    assert services.webhooks.pending_keys() == []
    assert services.redis.xlen(services.keys.events) == 2
    assert WEBHOOKS in services.jobs.queues


def test_without_a_webhook_url_events_are_only_kept(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    services = build_services(make_config(), redis_client)
    services.events.announce("plan.created", {"plan_id": "p1"})
    assert services.redis.xlen(services.keys.events) == 1
    assert services.webhooks.pending_keys() == []
