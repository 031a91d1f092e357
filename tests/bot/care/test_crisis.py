"""The crisis desk: the line for the person's country, the answer, the pause and the escalation."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import redis

from bot.care.crisis import CRISIS, CrisisDesk, country_of
from bot.config import CareConfig, Config
from bot.store.accounts import Account
from bot.store.agent_queue import AgentQueue
from bot.store.connection import Keys
from tests.conftest import ConfigFactory

DEBT_WORDS = ("debt", "owe", "balance", "payment", "deuda", "debe", "saldo", "pago", "$")


def _desk(config: Config, client: redis.Redis[bytes], clock: float = 1_800_000_000.0) -> CrisisDesk:
    keys = Keys(config.redis.key_prefix)
    return CrisisDesk(
        config.care, client, keys, AgentQueue(client, keys, clock=lambda: clock), clock=lambda: clock
    )


def _account(**changes: object) -> Account:
    fields: dict[str, object] = {
        "account_id": "ACC-1", "first_name": "Ana", "balance": Decimal("10"), "currency": "USD",
        "creditor": "C", "language": "en", "phone": "+12025550143",
    }  # fmt: skip
    fields.update(changes)
    return Account(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("country", "language", "expected"),
    [
        ("US", "en", "988"),
        ("US", "es", "988"),
        ("GB", "en", "116 123"),
        ("ES", "es", "024"),
        ("MX", "es", "800 911 2000"),
        ("FR", "en", "findahelpline.com"),
        (None, "es", "findahelpline.com"),
    ],
)
def test_the_answer_gives_the_crisis_line_of_the_persons_country(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes], country: str | None, language: str,
    expected: str,
) -> None:  # fmt: skip
    answer = _desk(make_config(), redis_client).reply(language, country)
    assert expected in answer
    assert ("Usted importa" in answer) == (language == "es")
    assert "You matter" in answer or "Usted importa" in answer
    assert not any(word in answer.lower() for word in DEBT_WORDS)


def test_the_country_comes_from_the_account_then_the_phone_it_wrote_from() -> None:
    assert country_of(_account(country="GB"), "sms", "+12025550143") == "GB"
    assert country_of(_account(country=None, phone="+34612345678"), "email", "ana@example.com") == "ES"
    assert country_of(None, "sms", "+525512345678") == "MX"
    assert country_of(None, "telegram", "12345") is None
    assert country_of(None, "sms", "not a number") is None


def test_a_crisis_pauses_collection_and_escalates_once_however_often_it_is_replayed(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    config = make_config()
    keys = Keys(config.redis.key_prefix)
    desk = _desk(config, redis_client)
    for _ in range(3):
        desk.raise_crisis(conversation_id="acct-ACC-1", account_id="ACC-1", detail="sms: i want to die",
                          once="sms:SM1", source="screen:self_harm.want_to_die")  # fmt: skip
    pause = redis_client.hget(keys.account_state("ACC-1"), f"pause:{CRISIS}")
    assert pause is not None and "a sign of crisis" in json.loads(pause)["detail"]
    entries = redis_client.xrange(keys.agent_queue)
    assert [(e[b"reason"], e[b"conversation_id"]) for _, e in entries] == [(b"crisis", b"acct-ACC-1")]
    assert redis_client.hexists(keys.conversation_flags("acct-ACC-1"), "crisis")
    # A later message is a new sign: the agents hear of it too.
    assert desk.raise_crisis(conversation_id="acct-ACC-1", account_id="ACC-1", detail="sms: still",
                             once="sms:SM2", source="nlu")  # fmt: skip
    assert len(redis_client.xrange(keys.agent_queue)) == 2


def test_the_history_says_collection_paused_when_the_pause_begins_and_each_escalation_once(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    config = make_config()
    keys = Keys(config.redis.key_prefix)
    desk = _desk(config, redis_client, clock=1_800_000_000.0)
    for _ in range(2):  # a replayed step
        desk.raise_crisis(conversation_id="acct-ACC-1", account_id="ACC-1", detail="sms: i want to die",
                          once="sms:SM1", source="screen:self_harm")  # fmt: skip
    desk.raise_crisis(conversation_id="acct-ACC-1", account_id="ACC-1", detail="sms: still", once="sms:SM2",
                      source="nlu")  # fmt: skip
    lines = [json.loads(f[b"entry"]) for _, f in redis_client.xrange(keys.conversation_history("acct-ACC-1"))]
    assert [(line["kind"], line["by"]) for line in lines] == [
        ("collection_paused", "system"), ("escalated", "system"), ("escalated", "system"),
    ]  # fmt: skip
    assert lines[0]["text"].startswith("a sign of crisis (screen:self_harm): no collection messages")
    assert lines[0]["at"] == 1_800_000_000.0 and lines[1]["text"] == "a sign of crisis"
    # Cleared by a person, then a new sign: the pause begins again, and says so.
    redis_client.hdel(keys.account_state("ACC-1"), f"pause:{CRISIS}")
    desk.raise_crisis(conversation_id="acct-ACC-1", account_id="ACC-1", detail="sms: again", once="sms:SM3",
                      source="nlu")  # fmt: skip
    kinds = [
        json.loads(f[b"entry"])["kind"]
        for _, f in redis_client.xrange(keys.conversation_history("acct-ACC-1"))
    ]
    assert kinds[3:] == ["collection_paused", "escalated"]


def test_an_unknown_address_in_crisis_is_escalated_without_a_pause(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    config = make_config()
    keys = Keys(config.redis.key_prefix)
    _desk(config, redis_client).raise_crisis(
        conversation_id="anon-sms.abc", account_id=None, detail="sms: me quiero morir", once="x", source="nlu"
    )
    [(_, entry)] = redis_client.xrange(keys.agent_queue)
    assert entry[b"reason"] == b"crisis" and entry[b"account_id"] == b""


def test_crisis_lines_need_a_default_and_iso_codes() -> None:
    with pytest.raises(ValueError, match="default"):
        CareConfig(crisis_lines={"US": {"en": "988", "es": "988"}})
    with pytest.raises(ValueError, match="two-letter"):
        CareConfig(crisis_lines={"usa": {"en": "988", "es": "988"}, "default": {"en": "x", "es": "y"}})
    with pytest.raises(ValueError, match="line"):
        CareConfig(crisis_reply={"en": "Sorry.", "es": "Lo siento: {line}."})
