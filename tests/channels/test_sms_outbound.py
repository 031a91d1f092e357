"""Sending SMS through Twilio's REST API (a stand-in checked against Twilio's OpenAPI file):
retries on 429/5xx/timeouts that never send twice, permanent errors recorded, pacing."""

from __future__ import annotations

import pytest
import redis

from bot.conversations.deliveries import DeliveryLog
from bot.conversations.outbound import OutboundHandler
from bot.conversations.rate_limits import RedisPacer
from bot.store.addresses import AddressBook
from bot.store.connection import Keys
from bot.store.queues import Entry, RetryLater
from channels.base import DeliveryFailed, DeliveryStatus, OutboundMessage, RateLimited
from channels.sms import SmsChannel
from tests.fakes.twilio_api import FakeTwilio

SID = "AC" + "7" * 32
FROM = "+15005550006"
JAMES = "+12025550143"


def _channel(twilio: FakeTwilio, client: redis.Redis[bytes] | None = None, *, rate: float = 1000.0,
             timeout: float = 5.0) -> SmsChannel:  # fmt: skip
    return SmsChannel(
        auth_token="token", account_sid=SID, from_number=FROM, api_base_url=twilio.base_url,
        status_callback_url="https://bot.example.com/webhooks/sms/status", timeout_seconds=timeout,
        pacer=RedisPacer(client, Keys("debtbot")) if client is not None else None, segments_per_second=rate,
    )  # fmt: skip


def _handler(channel: SmsChannel, client: redis.Redis[bytes]) -> tuple[OutboundHandler, DeliveryLog]:
    keys = Keys("debtbot")
    addresses = AddressBook(client, keys)
    deliveries = DeliveryLog(client, keys, addresses)
    return OutboundHandler(channels={"sms": channel}, addresses=addresses, deliveries=deliveries), deliveries


def _entry(text: str = "Hi James", outbox_id: str = "o1") -> Entry:
    message = OutboundMessage(outbox_id=outbox_id, channel="sms", recipient=JAMES, text=text)
    return Entry(key="sms.x", entry_id="1-0", payload=message.to_json())


def test_a_message_is_created_with_a_status_callback_carrying_our_outbox_id(fake_twilio: FakeTwilio) -> None:
    receipt = _channel(fake_twilio).send(
        OutboundMessage(outbox_id="o1", channel="sms", recipient=JAMES, text="Hi")
    )
    assert receipt.status is DeliveryStatus.QUEUED and receipt.external_id == fake_twilio.messages[0].sid
    [request] = fake_twilio.requests
    assert request.form["StatusCallback"] == ["https://bot.example.com/webhooks/sms/status?o=o1"]
    assert fake_twilio.invalid_requests == []


def test_a_messaging_service_sends_instead_of_a_number(fake_twilio: FakeTwilio) -> None:
    channel = SmsChannel(auth_token="token", account_sid=SID, messaging_service_sid="MG" + "1" * 32,
                         api_base_url=fake_twilio.base_url)  # fmt: skip
    channel.send(OutboundMessage(outbox_id="o1", channel="sms", recipient=JAMES, text="Hi"))
    [request] = fake_twilio.requests
    assert request.form["MessagingServiceSid"] == ["MG" + "1" * 32] and "From" not in request.form
    assert fake_twilio.invalid_requests == []


@pytest.mark.parametrize("status", [429, 500, 503])
def test_429_and_5xx_are_retried_and_the_message_goes_once(
    fake_twilio: FakeTwilio, redis_client: redis.Redis[bytes], status: int
) -> None:
    handler, deliveries = _handler(_channel(fake_twilio), redis_client)
    fake_twilio.fail_next(status, count=2)
    for _ in range(2):
        with pytest.raises(RetryLater):
            handler(_entry())
    handler(_entry())
    assert len(fake_twilio.messages) == 1
    record = deliveries.get("o1")
    assert record is not None and record.external_id == fake_twilio.messages[0].sid


def test_a_timeout_after_twilio_took_the_message_never_sends_it_twice(
    fake_twilio: FakeTwilio, redis_client: redis.Redis[bytes]
) -> None:
    handler, deliveries = _handler(_channel(fake_twilio, timeout=0.5), redis_client)
    fake_twilio.stall_next(1.5, then_create=True)
    with pytest.raises(RetryLater):
        handler(_entry("Your plan is set up."))
    handler(_entry("Your plan is set up."))  # the retry finds the message Twilio did create
    assert len(fake_twilio.messages) == 1
    record = deliveries.get("o1")
    assert record is not None and record.external_id == fake_twilio.messages[0].sid


def test_a_timeout_before_twilio_took_the_message_sends_it_on_retry(
    fake_twilio: FakeTwilio, redis_client: redis.Redis[bytes]
) -> None:
    handler, _ = _handler(_channel(fake_twilio, timeout=0.5), redis_client)
    fake_twilio.stall_next(1.5, then_create=False)
    with pytest.raises(RetryLater):
        handler(_entry())
    handler(_entry())
    assert len(fake_twilio.messages) == 1


def test_a_replayed_entry_already_sent_is_not_sent_again(
    fake_twilio: FakeTwilio, redis_client: redis.Redis[bytes]
) -> None:
    handler, _ = _handler(_channel(fake_twilio), redis_client)
    handler(_entry())
    handler(_entry())  # the worker crashed after sending, before moving on
    assert len(fake_twilio.messages) == 1


def test_a_permanent_error_is_recorded_and_not_retried(
    fake_twilio: FakeTwilio, redis_client: redis.Redis[bytes]
) -> None:
    handler, deliveries = _handler(_channel(fake_twilio), redis_client)
    fake_twilio.fail_next(400, code=21211, message="The 'To' number is not a valid phone number.")
    handler(_entry())  # no RetryLater: the queue moves on
    record = deliveries.get("o1")
    assert record is not None and record.status is DeliveryStatus.FAILED and record.error_code == "21211"
    assert fake_twilio.messages == []


def test_unsubscribed_recipient_error_opts_the_number_out(
    fake_twilio: FakeTwilio, redis_client: redis.Redis[bytes]
) -> None:
    handler, _ = _handler(_channel(fake_twilio), redis_client)
    fake_twilio.fail_next(400, code=21610, message="Attempt to send to unsubscribed recipient")
    handler(_entry())
    assert AddressBook(redis_client, Keys("debtbot")).status("sms", JAMES).silenced_because == "opted_out"


def test_the_sender_number_is_paced_in_segments_per_second(
    fake_twilio: FakeTwilio, redis_client: redis.Redis[bytes]
) -> None:
    channel = _channel(fake_twilio, redis_client, rate=1.0)
    two_segments = "a" * 200
    channel.send(OutboundMessage(outbox_id="o1", channel="sms", recipient=JAMES, text=two_segments))
    with pytest.raises(RateLimited) as waited:
        channel.send(OutboundMessage(outbox_id="o2", channel="sms", recipient=JAMES, text="next"))
    assert 1.5 < waited.value.retry_after <= 2.0
    assert len(fake_twilio.messages) == 1


def test_without_an_account_sid_sending_is_a_permanent_failure() -> None:
    with pytest.raises(DeliveryFailed) as failed:
        SmsChannel(auth_token="t").send(
            OutboundMessage(outbox_id="o", channel="sms", recipient=JAMES, text="x")
        )
    assert failed.value.permanent
