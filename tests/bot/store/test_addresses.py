"""Address records: opted out, wrong party, unreachable; hashed keys."""

from __future__ import annotations

import redis

from bot.store.addresses import AddressBook, address_hash
from bot.store.connection import Keys

PHONE = "+12025550143"


def test_a_fresh_address_may_be_contacted(redis_client: redis.Redis[bytes]) -> None:
    status = AddressBook(redis_client, Keys("debtbot")).status("sms", PHONE)
    assert status.silenced_because is None
    assert status.opted_out_at is None


def test_opting_out_silences_the_address_on_that_channel_only(redis_client: redis.Redis[bytes]) -> None:
    book = AddressBook(redis_client, Keys("debtbot"))
    book.opt_out("sms", PHONE, "ACC-1002")
    assert book.status("sms", PHONE).silenced_because == "opted_out"
    assert book.status("sms", PHONE).account_id == "ACC-1002"
    assert book.status("telegram", PHONE).silenced_because is None


def test_opting_back_in_lifts_an_opt_out_but_not_a_wrong_party_mark(redis_client: redis.Redis[bytes]) -> None:
    book = AddressBook(redis_client, Keys("debtbot"))
    book.opt_out("sms", PHONE)
    book.opt_in("sms", PHONE)
    assert book.status("sms", PHONE).silenced_because is None
    book.mark_wrong_party("sms", PHONE)
    book.opt_in("sms", PHONE)
    assert book.status("sms", PHONE).silenced_because == "wrong_party"


def test_unreachable_is_recorded_without_silencing(redis_client: redis.Redis[bytes]) -> None:
    book = AddressBook(redis_client, Keys("debtbot"))
    book.mark_unreachable("sms", PHONE)
    assert book.status("sms", PHONE).unreachable_at is not None
    assert book.status("sms", PHONE).silenced_because is None


def test_keys_carry_no_address(redis_client: redis.Redis[bytes]) -> None:
    AddressBook(redis_client, Keys("debtbot")).opt_out("email", "Ana.Lopez@example.com")
    keys = sorted(k.decode() for k in redis_client.keys("*"))
    assert keys == [f"debtbot:address:{address_hash('email', 'ana.lopez@example.com')}", "debtbot:audit"]
    assert all("example" not in k for k in keys)
    # The opt-out's audit record names the channel and the message that asked, never the address.
    [(_, record)] = redis_client.xrange("debtbot:audit")
    assert record[b"kind"] == b"opt_out" and b"example" not in b"".join(record.values())


def test_records_are_stamped_by_the_clock_the_book_is_given(
    redis_client: redis.Redis[bytes],
) -> None:
    moment = 1_767_225_600.0  # 2026-01-01 00:00 UTC, whatever the machine's time
    book = AddressBook(redis_client, Keys("test"), clock=lambda: moment)
    book.opt_out("sms", "+14155550100", "A1", by_message="sms:SM1")
    book.mark_wrong_party("email", "x@example.com", "A1", by_message="email:m1")
    book.mark_unreachable("sms", "+14155550101")
    assert book.status("sms", "+14155550100").opted_out_at == moment
    assert book.status("email", "x@example.com").wrong_party_at == moment
    assert book.status("sms", "+14155550101").unreachable_at == moment
