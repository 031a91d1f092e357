"""The worker's outbound step: what a silenced address may still receive."""

from __future__ import annotations

import time

import redis

from bot.config import Config
from bot.pipeline import OutboundHandler
from bot.queues import Entry
from bot.services import build_services
from channels.base import OutboundMessage
from tests.conftest import ConfigFactory

PHONE = "+12025550143"


def _handler_and_services(config: Config, client: redis.Redis[bytes]):  # type: ignore[no-untyped-def]
    services = build_services(config, client)
    handler = OutboundHandler(
        channels=services.channels, addresses=services.addresses, deliveries=services.deliveries
    )
    return handler, services


def _entry(message: OutboundMessage) -> Entry:
    return Entry(key="sms.x", entry_id="1-0", payload=message.to_json())


def test_a_proactive_message_to_an_opted_out_address_is_withheld_and_recorded(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    handler, services = _handler_and_services(make_config(), redis_client)
    services.addresses.opt_out("sms", PHONE)
    handler(
        _entry(
            OutboundMessage(outbox_id="o1", channel="sms", recipient=PHONE, text="Hi James", proactive=True)
        )
    )
    assert services.outbox.read() == []
    record = redis_client.hgetall(services.keys.delivery("o1"))
    assert record[b"status"] == b"failed" and record[b"error_code"] == b"withheld"


def test_the_reply_that_confirms_an_opt_out_still_goes(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    handler, services = _handler_and_services(make_config(), redis_client)
    services.addresses.opt_out("sms", PHONE)
    handler(_entry(OutboundMessage(outbox_id="o2", channel="sms", recipient=PHONE, text="Understood.")))
    assert [m.text for m in services.outbox.read()] == ["Understood."]


def test_a_reply_queued_before_the_opt_out_is_not_sent_after_it(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    handler, services = _handler_and_services(make_config(), redis_client)
    queued = OutboundMessage(outbox_id="o3", channel="sms", recipient=PHONE, text="Here's the plan.")
    time.sleep(0.01)
    services.addresses.opt_out("sms", PHONE)  # STOP arrived while the reply waited its turn
    handler(_entry(queued))
    assert services.outbox.read() == []
    record = services.deliveries.get("o3")
    assert record is not None and record.error_code == "withheld"
