"""STOP, START and HELP by SMS: opted out at once, one confirmation, the right language."""

from __future__ import annotations

from decimal import Decimal

import redis

from bot.compliance.keywords import SmsKeywords
from bot.config import Config
from bot.store.accounts import Account, AccountStore
from bot.store.addresses import AddressBook
from bot.store.connection import Keys
from channels.base import InboundMessage
from channels.sms_keywords import KeywordKind
from tests.conftest import ConfigFactory

PHONE = "+12025550143"


def _sms(text: str, sid: str = "SM1") -> InboundMessage:
    return InboundMessage(channel="sms", external_id=sid, sender=PHONE, recipient="+15005550006", text=text)


def _keywords(config: Config, client: redis.Redis[bytes]) -> tuple[SmsKeywords, AddressBook]:
    addresses = AddressBook(client, Keys("debtbot"))
    return SmsKeywords(config, addresses), addresses


def test_stop_at_the_gateway_opts_out_and_the_worker_confirms_once(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    keywords, addresses = _keywords(make_config(), redis_client)
    keywords.on_receive(_sms("Stop."))
    assert addresses.status("sms", PHONE).silenced_because == "opted_out"
    first = keywords.handle(_sms("Stop."), None)
    assert first is not None and first.kind is KeywordKind.STOP
    assert len(first.replies) == 1 and "START" in first.replies[0]
    replayed = keywords.handle(_sms("Stop."), None)  # the same message handled again
    assert replayed is not None and replayed.replies == first.replies
    second = keywords.handle(_sms("STOP", sid="SM2"), None)  # a second STOP later
    assert second is not None and second.replies == ()


def test_stop_at_the_gateway_records_the_account_the_address_belongs_to_never_the_address(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    keys = Keys("debtbot")
    accounts = AccountStore(redis_client, keys)
    accounts.upsert(Account(account_id="A1", first_name="James", balance=Decimal("10"), currency="USD",
                            creditor="Acme", language="en", phone=PHONE, timezone="America/New_York"))  # fmt: skip
    keywords = SmsKeywords(make_config(), AddressBook(redis_client, keys), accounts)
    keywords.on_receive(_sms("STOP"))
    keywords.on_receive(_sms("STOP", sid="SM9"))  # the address was already out: one record
    records = [f for _, f in redis_client.xrange(keys.audit) if f[b"kind"] == b"opt_out"]
    assert [(r[b"account_id"], r[b"by_message"]) for r in records] == [(b"A1", b"SM1")]
    assert not any(PHONE.encode() in value for r in records for value in r.values())
    # An address of no account: opted out all the same, the record names no account.
    stranger = InboundMessage(
        channel="sms", external_id="SM3", sender="+12025550199", recipient="+1500", text="stop"
    )
    keywords.on_receive(stranger)
    assert AddressBook(redis_client, keys).status("sms", "+12025550199").silenced_because == "opted_out"


def test_spanish_stop_is_confirmed_in_spanish(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    keywords, _ = _keywords(make_config(), redis_client)
    outcome = keywords.handle(_sms("alto"), None)
    assert outcome is not None and outcome.replies[0].startswith("Northwind: no recibirá")


def test_start_only_counts_while_opted_out(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    keywords, addresses = _keywords(make_config(), redis_client)
    assert keywords.handle(_sms("yes"), None) is None  # an ordinary answer for the dialogue
    keywords.handle(_sms("STOP"), None)
    outcome = keywords.handle(_sms("yes", sid="SM2"), None)
    assert outcome is not None and outcome.kind is KeywordKind.START
    assert "Reply STOP" in outcome.replies[0]
    assert addresses.status("sms", PHONE).silenced_because is None


def test_help_names_the_company_the_phone_and_how_to_stop(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    config = make_config()
    keywords, _ = _keywords(config, redis_client)
    outcome = keywords.handle(_sms("HELP"), None)
    assert outcome is not None
    (text,) = outcome.replies
    assert config.company.display_name in text and config.company.phone in text and "STOP" in text


def test_the_account_language_answers_an_english_keyword(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    keywords, _ = _keywords(make_config(), redis_client)
    maria = Account(
        account_id="ACC-1",
        first_name="Maria",
        balance=Decimal("100"),
        currency="USD",
        creditor="X",
        language="es",
    )
    outcome = keywords.handle(_sms("HELP"), maria)
    assert outcome is not None and "Llame al" in outcome.replies[0]


def test_when_twilio_answers_keywords_we_only_record_them(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    keywords, addresses = _keywords(
        make_config(channels={"sms": {"keyword_replies_by_twilio": True}}), redis_client
    )
    outcome = keywords.handle(_sms("STOP"), None)
    assert outcome is not None and outcome.replies == ()
    assert addresses.status("sms", PHONE).silenced_because == "opted_out"


def test_keywords_are_sms_only(make_config: ConfigFactory, redis_client: redis.Redis[bytes]) -> None:
    keywords, _ = _keywords(make_config(), redis_client)
    message = InboundMessage(channel="telegram", external_id="1", sender="42", recipient="", text="STOP")
    assert keywords.handle(message, None) is None
