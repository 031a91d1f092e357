"""The worker's outbound step: what a silenced address may still receive."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest
import redis

from bot.config import Config
from bot.conversations.inbound import DialogueFailed, InboundHandler, NotAnswered
from bot.conversations.outbound import OutboundHandler
from bot.runtime.services import Services, build_services
from bot.store.addresses import address_key
from bot.store.agent_queue import AgentQueue
from bot.store.queues import Entry, RetryLater
from channels.base import InboundMessage, OutboundMessage
from dialogue.rasa_client import RasaClient
from tests.conftest import ConfigFactory, free_port

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


def _inbound_handler(services: Services) -> InboundHandler:
    from bot.conversations.render import OfferedChoices, RenderOptions
    from bot.store.agent_queue import AgentQueue

    return InboundHandler(
        accounts=services.accounts, addresses=services.addresses, agents=AgentQueue(services.redis, services.keys),
        rasa=RasaClient(f"http://127.0.0.1:{free_port()}", "t", timeout=1), outbound=services.outbound,
        jobs=services.jobs, keys=services.keys, keywords=services.keywords,
        choices=OfferedChoices(services.redis, services.keys), render=RenderOptions(), links=services.links,
        channels=services.channels, default_language="en", dedupe_ttl_seconds=60,
    )  # fmt: skip


def _inbound(message: InboundMessage) -> Entry:
    return Entry(key="k", entry_id="1-0", payload=message.to_json())


def test_writing_from_an_unreachable_chat_makes_it_reachable_again(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    services = build_services(make_config(), redis_client)
    services.addresses.mark_unreachable("telegram", "42")
    message = InboundMessage(channel="telegram", external_id="7", sender="42", text="hi")
    with pytest.raises(RetryLater):  # no Rasa here: the message waits, but the mark is gone
        _inbound_handler(services)(_inbound(message))
    assert services.addresses.status("telegram", "42").unreachable_at is None


def test_a_photo_gets_a_kind_text_only_answer_without_the_dialogue(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    services = build_services(make_config(), redis_client)
    message = InboundMessage(channel="telegram", external_id="8", sender="42", text="", kind="unsupported")
    _inbound_handler(services)(_inbound(message))  # no Rasa needed, so no RetryLater
    [queued] = services.outbound.unhandled(address_key("telegram", "42"))
    assert "I can only read text here" in OutboundMessage.from_json(queued.payload).text


def test_a_button_never_offered_is_ignored_without_the_dialogue(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    services = build_services(make_config(), redis_client)
    message = InboundMessage(channel="telegram", external_id="9", sender="42", text="c1", kind="choice")
    _inbound_handler(services)(_inbound(message))
    assert services.outbound.unhandled(address_key("telegram", "42")) == []


def _zone_where_it_is(hour: int) -> str:
    """An Etc/GMT zone whose local time is now within the hour ``hour`` (or the next)."""
    from datetime import datetime, timezone

    utc_hour = datetime.now(timezone.utc).hour
    for offset in range(-12, 15):
        if (utc_hour + offset) % 24 == hour:
            return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"
    raise AssertionError("unreachable")


def _gated(config: Config, client: redis.Redis[bytes], zone: str):  # type: ignore[no-untyped-def]
    from decimal import Decimal

    from bot.store.accounts import Account

    services = build_services(config, client)
    services.accounts.upsert(Account(account_id="G1", first_name="James", balance=Decimal(10), currency="USD",
                                     creditor="Acme", language="en", phone=PHONE, timezone=zone))  # fmt: skip
    handler = OutboundHandler(channels=services.channels, addresses=services.addresses,
                              deliveries=services.deliveries, gate=services.gate, accounts=services.accounts)  # fmt: skip
    return handler, services


def test_the_gate_withholds_a_proactive_text_at_night_in_the_debtors_zone(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    handler, services = _gated(make_config(), redis_client, _zone_where_it_is(3))
    handler(_entry(OutboundMessage(outbox_id="n1", channel="sms", recipient=PHONE, text="Hi James",
                                   conversation_id="acct-G1", proactive=True, kind="opener")))  # fmt: skip
    assert services.outbox.read() == []
    record = services.deliveries.get("n1")
    assert record is not None and record.error_code == "compliance:quiet_hours"
    [(_, audit)] = redis_client.xrange(services.keys.audit)
    assert audit[b"rule"] == b"quiet_hours" and audit[b"outbox_id"] == b"n1"


def test_a_reply_goes_at_night_with_card_numbers_removed(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    handler, services = _gated(make_config(), redis_client, _zone_where_it_is(3))
    handler(_entry(OutboundMessage(outbox_id="n2", channel="sms", recipient=PHONE, conversation_id="acct-G1",
                                   text="You wrote 4111 1111 1111 1111; please never send card numbers here.")))  # fmt: skip
    [sent] = services.outbox.read()
    assert "4111" not in sent.text and "never send card numbers" in sent.text


def test_a_proactive_text_in_daytime_carries_the_opt_out_line_and_counts_towards_the_cap(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    handler, services = _gated(make_config(), redis_client, _zone_where_it_is(12))
    handler(_entry(OutboundMessage(outbox_id="d1", channel="sms", recipient=PHONE, text="Hi James, how are you?",
                                   conversation_id="acct-G1", proactive=True, kind="opener")))  # fmt: skip
    [sent] = services.outbox.read()
    assert sent.text == "Hi James, how are you?\nReply STOP to stop texts."
    assert redis_client.zcard(services.keys.contact_log("G1")) == 1


def _rasa_answering(status: int, body: Any, seen: list[dict[str, Any]]) -> RasaClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(status, json=body)

    return RasaClient("http://rasa.test", "t", transport=httpx.MockTransport(answer))


def test_the_dialogue_hears_each_message_under_its_provider_id(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    services = build_services(make_config(), redis_client)
    seen: list[dict[str, Any]] = []
    handler = replace(_inbound_handler(services), rasa=_rasa_answering(200, [{"text": "Hello!"}], seen))
    handler(_inbound(InboundMessage(channel="telegram", external_id="11", sender="42", text="hi")))
    assert seen[0]["message_id"] == "telegram:11" and seen[0]["metadata"]["message_id"] == "telegram:11"


def test_an_action_failure_is_a_counted_failure_not_an_answer(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    services = build_services(make_config(), redis_client)
    failing = _rasa_answering(500, {"error": "action_failed", "actions": ["validate_payment_plan_form"]}, [])
    handler = replace(_inbound_handler(services), rasa=failing)
    with pytest.raises(DialogueFailed, match="validate_payment_plan_form"):
        handler(
            _inbound(InboundMessage(channel="telegram", external_id="12", sender="42", text="100 a month"))
        )
    assert services.outbound.unhandled(address_key("telegram", "42")) == []  # no "answer" of nothing


def test_a_message_the_dialogue_keeps_failing_on_goes_to_the_dead_letters_and_to_an_agent_once(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    services = build_services(make_config(worker={"max_attempts": 3}), redis_client)
    failing = _rasa_answering(500, {"error": "action_failed", "actions": ["action_create_plan"]}, [])
    handler = replace(_inbound_handler(services), rasa=failing)
    message = InboundMessage(channel="telegram", external_id="13", sender="42", text="yes")
    assert services.intake.accept(message)
    key = address_key("telegram", "42")
    results = [services.inbound.drain(key, handler) for _ in range(3)]
    assert [r.set_aside for r in results] == [0, 0, 1]
    [dead] = services.inbound.dead_letters()
    assert "action_create_plan" in dead["reason"]
    [(_, flagged)] = redis_client.xrange(services.keys.agent_queue)
    assert flagged[b"reason"] == b"not_answered" and flagged[b"conversation_id"].startswith(b"anon-telegram")
    assert b"action_create_plan" in flagged[b"detail"]
    # Set aside again after a crash before the queue moved on: the agents hear of it once.
    NotAnswered(services.accounts, AgentQueue(redis_client, services.keys))(
        Entry(key=key, entry_id=dead["entry_id"], payload=dead["payload"]), dead["reason"]
    )
    assert len(redis_client.xrange(services.keys.agent_queue)) == 1
