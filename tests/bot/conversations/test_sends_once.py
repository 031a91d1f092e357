"""Sending exactly once as far as the providers allow: the intent is recorded before the
provider is called, and an attempt that died without recording its outcome (not only one that
timed out) makes the next attempt ask the provider before sending again."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from bot.conversations.deliveries import DeliveryLog
from bot.conversations.outbound import OutboundHandler
from bot.store.addresses import AddressBook
from bot.store.connection import Keys
from bot.store.queues import Entry
from channels.base import DeliveryReceipt, DeliveryStatus, OutboundMessage
from channels.sms import SmsChannel
from tests.fakes.twilio_api import FakeTwilio

SID = "AC" + "7" * 32
FROM = "+15005550006"
JAMES = "+12025550143"


class Killed(BaseException):
    """The worker process dying (SIGKILL, OOM): nothing after this line runs, no handler catches it."""


def _process(twilio: FakeTwilio, client: redis.Redis[bytes]) -> tuple[OutboundHandler, DeliveryLog]:
    """A fresh worker process: its own channel and delivery log, the same Redis and Twilio."""
    keys = Keys("debtbot")
    addresses = AddressBook(client, keys)
    deliveries = DeliveryLog(client, keys, addresses)
    channel = SmsChannel(auth_token="token", account_sid=SID, from_number=FROM, api_base_url=twilio.base_url)
    return OutboundHandler(channels={"sms": channel}, addresses=addresses, deliveries=deliveries), deliveries


def _entry(text: str, outbox_id: str = "o1") -> Entry:
    message = OutboundMessage(outbox_id=outbox_id, channel="sms", recipient=JAMES, text=text)
    return Entry(key="sms.x", entry_id="1-0", payload=message.to_json())


def test_a_worker_killed_between_twilios_201_and_the_record_does_not_send_twice(
    fake_twilio: FakeTwilio, redis_client: redis.Redis[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = _process(fake_twilio, redis_client)

    def die(message: OutboundMessage, receipt: DeliveryReceipt) -> None:
        assert receipt.external_id  # Twilio answered 201 with the message's sid...
        raise Killed()  # ...and the process died before recording it

    monkeypatch.setattr(first, "_record", die)
    with pytest.raises(Killed):
        first(_entry("Your plan is set up."))
    assert len(fake_twilio.messages) == 1

    retry, deliveries = _process(fake_twilio, redis_client)  # the entry was not handled: again
    retry(_entry("Your plan is set up."))

    assert len(fake_twilio.messages) == 1  # asked Twilio first, found it, did not resend
    record = deliveries.get("o1")
    assert record is not None and record.external_id == fake_twilio.messages[0].sid
    assert record.unsure_since is None and record.intent_text == ""  # settled, the text dropped
    assert fake_twilio.invalid_requests == []
    assert [r.operation_id for r in fake_twilio.requests] == ["CreateMessage", "ListMessage"]


def test_a_worker_killed_before_the_request_left_sends_on_retry(
    fake_twilio: FakeTwilio, redis_client: redis.Redis[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = _process(fake_twilio, redis_client)
    channel = first.channels["sms"]

    def die(message: OutboundMessage) -> Any:
        raise Killed()

    monkeypatch.setattr(channel, "send", die)
    with pytest.raises(Killed):
        first(_entry("Hi James"))

    retry, deliveries = _process(fake_twilio, redis_client)
    retry(_entry("Hi James"))

    assert [m.body for m in fake_twilio.messages] == ["Hi James"]
    record = deliveries.get("o1")
    assert record is not None and record.status is DeliveryStatus.QUEUED
    assert fake_twilio.invalid_requests == []


def test_the_retry_looks_for_the_text_as_it_left_not_as_it_was_queued(
    fake_twilio: FakeTwilio, redis_client: redis.Redis[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gate rewrote the text (an opt-out line, a card number removed); the attempt's text is
    # what Twilio holds.
    first, deliveries = _process(fake_twilio, redis_client)
    deliveries.begin("o1", "sms", "Hi James. Reply STOP to opt out.")
    first.channels["sms"].send(
        OutboundMessage(
            outbox_id="o1", channel="sms", recipient=JAMES, text="Hi James. Reply STOP to opt out."
        )
    )
    retry, _ = _process(fake_twilio, redis_client)
    retry(_entry("Hi James"))
    assert len(fake_twilio.messages) == 1


def test_a_message_refused_by_the_provider_is_not_looked_for_on_retry(
    fake_twilio: FakeTwilio, redis_client: redis.Redis[bytes]
) -> None:
    handler, deliveries = _process(fake_twilio, redis_client)
    fake_twilio.fail_next(503)
    with pytest.raises(Exception, match="Twilio"):
        handler(_entry("Hi James"))
    record = deliveries.get("o1")
    assert record is None or record.unsure_since is None  # a 503 means Twilio did not take it
    handler(_entry("Hi James"))
    assert [r.operation_id for r in fake_twilio.requests] == ["CreateMessage", "CreateMessage"]
    assert len(fake_twilio.messages) == 1


def test_a_message_already_recorded_is_not_sent_again_even_when_withheld(
    fake_twilio: FakeTwilio, redis_client: redis.Redis[bytes]
) -> None:
    handler, deliveries = _process(fake_twilio, redis_client)
    deliveries.record(
        DeliveryReceipt(outbox_id="o1", channel="sms", status=DeliveryStatus.FAILED, error_code="withheld")
    )
    handler(_entry("Hi James"))  # replayed after a crash between the record and the queue moving on
    assert fake_twilio.requests == []
