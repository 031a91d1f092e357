"""Delivery statuses only move forward; provider errors teach us about the address."""

from __future__ import annotations

import redis

from bot.conversations.deliveries import DeliveryLog
from bot.store.addresses import AddressBook
from bot.store.connection import Keys
from channels.base import DeliveryReceipt, DeliveryStatus

PHONE = "+12025550143"


def _log(client: redis.Redis[bytes], unreachable_after: int = 3) -> tuple[DeliveryLog, AddressBook]:
    keys = Keys("debtbot")
    addresses = AddressBook(client, keys)
    return DeliveryLog(client, keys, addresses, unreachable_after=unreachable_after), addresses


def _receipt(status: DeliveryStatus, outbox_id: str = "o1", code: str | None = None) -> DeliveryReceipt:
    return DeliveryReceipt(
        outbox_id=outbox_id, channel="sms", status=status, external_id="SM1", error_code=code
    )


def test_a_late_sent_callback_never_overwrites_delivered(redis_client: redis.Redis[bytes]) -> None:
    log, _ = _log(redis_client)
    for status in (
        DeliveryStatus.QUEUED,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.SENT,
        DeliveryStatus.QUEUED,
    ):
        log.apply(_receipt(status), PHONE)
    record = log.get("o1")
    assert record is not None and record.status is DeliveryStatus.DELIVERED


def test_statuses_in_order_are_each_recorded(redis_client: redis.Redis[bytes]) -> None:
    log, _ = _log(redis_client)
    seen = []
    for status in (DeliveryStatus.QUEUED, DeliveryStatus.SENT, DeliveryStatus.UNDELIVERED):
        log.apply(_receipt(status), PHONE)
        record = log.get("o1")
        assert record is not None
        seen.append(record.status)
    assert seen == [DeliveryStatus.QUEUED, DeliveryStatus.SENT, DeliveryStatus.UNDELIVERED]


def test_the_first_final_status_wins(redis_client: redis.Redis[bytes]) -> None:
    log, _ = _log(redis_client)
    assert log.apply(_receipt(DeliveryStatus.FAILED, code="30007"), PHONE)
    assert not log.apply(_receipt(DeliveryStatus.DELIVERED), PHONE)
    record = log.get("o1")
    assert record is not None and record.status is DeliveryStatus.FAILED and record.error_code == "30007"


def test_error_21610_opts_the_number_out(redis_client: redis.Redis[bytes]) -> None:
    log, addresses = _log(redis_client)
    log.apply(_receipt(DeliveryStatus.FAILED, code="21610"), PHONE)
    assert addresses.status("sms", PHONE).silenced_because == "opted_out"


def test_unreachable_after_the_configured_number_of_failures(redis_client: redis.Redis[bytes]) -> None:
    log, addresses = _log(redis_client, unreachable_after=3)
    for n, code in enumerate(["30003", "30005"]):
        log.apply(_receipt(DeliveryStatus.UNDELIVERED, outbox_id=f"o{n}", code=code), PHONE)
    assert addresses.status("sms", PHONE).unreachable_at is None
    log.apply(_receipt(DeliveryStatus.UNDELIVERED, outbox_id="o9", code="30006"), PHONE)
    assert addresses.status("sms", PHONE).unreachable_at is not None


def test_a_repeated_callback_counts_one_failure(redis_client: redis.Redis[bytes]) -> None:
    log, addresses = _log(redis_client, unreachable_after=2)
    for _ in range(3):
        log.apply(_receipt(DeliveryStatus.UNDELIVERED, code="30003"), PHONE)
    assert addresses.status("sms", PHONE).failures == 1
    assert addresses.status("sms", PHONE).unreachable_at is None


def test_a_delivery_resets_the_failures_in_a_row(redis_client: redis.Redis[bytes]) -> None:
    log, addresses = _log(redis_client, unreachable_after=2)
    log.apply(_receipt(DeliveryStatus.UNDELIVERED, outbox_id="a", code="30003"), PHONE)
    log.apply(_receipt(DeliveryStatus.DELIVERED, outbox_id="b"), PHONE)
    log.apply(_receipt(DeliveryStatus.UNDELIVERED, outbox_id="c", code="30003"), PHONE)
    assert addresses.status("sms", PHONE).unreachable_at is None


def test_an_unsure_attempt_keeps_its_first_time(redis_client: redis.Redis[bytes]) -> None:
    log, _ = _log(redis_client)
    log.mark_unsure("o1")
    first = log.get("o1")
    log.mark_unsure("o1")
    again = log.get("o1")
    assert first is not None and again is not None
    assert first.unsure_since is not None and again.unsure_since == first.unsure_since
    assert first.status is None
