"""The dialogue's backend on real Redis: verification, records for agents, preferences, plans."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
import redis

from bot.conversations.dialogue_backend import RedisDialogueBackend
from bot.runtime.services import build_services
from bot.store.accounts import AccountStore
from bot.store.addresses import address_hash
from dialogue.backend import BackendError
from dialogue.plans import Settlement
from tests.conftest import ROOT, ConfigFactory

OPTIONS = {"languages": ["en", "es"], "default_language": "en", "verification_field": "date_of_birth"}


def backend_for(
    make_config: ConfigFactory, client: redis.Redis, field: str = "date_of_birth"
) -> RedisDialogueBackend:
    config = make_config(accounts={"verification_field": field})
    services = build_services(config, client)
    AccountStore(client, services.keys).import_csv(
        (ROOT / "examples" / "accounts.csv").read_text(), **OPTIONS
    )
    return RedisDialogueBackend(config, client, services.events)


@pytest.mark.parametrize(
    "answer", ["1984-03-12", "03/12/1984", "12 de marzo de 1984", "March 12, 1984", "12/03/1984"]
)
def test_date_of_birth_is_recognised_in_common_forms(
    make_config: ConfigFactory, redis_client: redis.Redis, answer: str
) -> None:
    backend = backend_for(make_config, redis_client)
    assert backend.verify("ACC-1001", answer, today=date(2026, 11, 24))


@pytest.mark.parametrize("answer", ["1984-03-13", "1985", "maria", ""])
def test_wrong_date_of_birth_is_refused(
    make_config: ConfigFactory, redis_client: redis.Redis, answer: str
) -> None:
    assert not backend_for(make_config, redis_client).verify("ACC-1001", answer, today=date(2026, 11, 24))


def test_postal_code_and_last_four_digits(make_config: ConfigFactory, redis_client: redis.Redis) -> None:
    postal = backend_for(make_config, redis_client, "postal_code")
    assert postal.verify("ACC-1009", "it's se1 7pb", today=date.today())
    assert not postal.verify("ACC-1009", "SE1 7PA", today=date.today())
    last4 = backend_for(make_config, redis_client, "account_last4")
    assert last4.verify("ACC-1001", "4821", today=date.today())
    assert not last4.verify("ACC-1001", "1234", today=date.today())


def test_account_view_uses_the_stored_language_preference(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    backend = backend_for(make_config, redis_client)
    assert backend.account("ACC-1002").language == "en"  # type: ignore[union-attr]
    backend.set_preference("ACC-1002", "language", "es")
    view = backend.account("ACC-1002")
    assert view is not None and view.language == "es" and view.balance == Decimal("389.99")
    with pytest.raises(BackendError):
        backend.set_preference("ACC-1002", "shoe_size", "9")


def test_flags_opt_outs_wrong_parties_and_pauses_are_recorded(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    backend = backend_for(make_config, redis_client)
    backend.flag_for_agent("ACC-1001", "acct-ACC-1001", "hardship", "lost my job")
    backend.opt_out("ACC-1001", "sms", "+13055550191")
    backend.mark_wrong_party("ACC-1002", "sms", "+12025550143")
    backend.pause_collection("ACC-1001", "dispute", "not mine")
    [(_, entry)] = redis_client.xrange("debtbot:agents:queue")
    assert entry[b"reason"] == b"hardship" and entry[b"conversation_id"] == b"acct-ACC-1001"
    assert redis_client.hexists(f"debtbot:address:{address_hash('sms', '+13055550191')}", "opted_out")
    assert redis_client.hexists(f"debtbot:address:{address_hash('sms', '+12025550143')}", "wrong_party")
    assert (
        json.loads(redis_client.hget("debtbot:account:ACC-1001:state", "pause:dispute"))["detail"]
        == "not mine"
    )  # type: ignore[arg-type]
    assert not any(b"+1305" in key for key in redis_client.keys("*"))  # no phone numbers in key names


def test_created_plan_is_stored_linked_and_announced(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    backend = backend_for(make_config, redis_client)
    created = backend.create_plan(
        "ACC-1001", "acct-ACC-1001", Settlement(Decimal("1062.93"), "USD", Decimal(85)), kind="settlement"
    )
    assert created.payment_link == f"https://pay.example.com/ACC-1001/{created.plan_id}"
    stored = json.loads(redis_client.get(f"debtbot:plan:{created.plan_id}"))  # type: ignore[arg-type]
    assert stored["kind"] == "settlement" and stored["total"] == "1062.93"
    assert redis_client.lrange("debtbot:account:ACC-1001:plans", 0, -1) == [created.plan_id.encode()]
    [(_, event)] = redis_client.xrange("debtbot:events")
    assert (
        event[b"type"] == b"plan.created" and json.loads(event[b"body"])["data"]["plan_id"] == created.plan_id
    )


def test_a_plan_is_made_once_per_agreeing_message_however_often_the_turn_runs(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    backend = backend_for(make_config, redis_client)
    plan = Settlement(Decimal("1062.93"), "USD", Decimal(85))
    first = backend.create_plan("ACC-1001", "acct-ACC-1001", plan, kind="settlement", message_id="sms:SM1")
    again = backend.create_plan("ACC-1001", "acct-ACC-1001", plan, kind="settlement", message_id="sms:SM1")
    assert again == first
    assert redis_client.lrange("debtbot:account:ACC-1001:plans", 0, -1) == [first.plan_id.encode()]
    assert len(redis_client.xrange("debtbot:events")) == 1
    # Another message agreeing again (a new "yes") is a new decision: a new plan.
    other = backend.create_plan("ACC-1001", "acct-ACC-1001", plan, kind="settlement", message_id="sms:SM2")
    assert other.plan_id != first.plan_id


def test_a_plan_whose_first_attempt_died_before_storing_it_is_stored_under_the_claimed_id(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    backend = backend_for(make_config, redis_client)
    # The first attempt claimed an id and died before the plan was stored.
    redis_client.set("debtbot:dedupe:plan:full:sms:SM1", "claimed0000000a")
    full = Settlement(Decimal("1250.50"), "USD", Decimal(100))
    created = backend.create_plan("ACC-1001", "acct-ACC-1001", full, kind="full", message_id="sms:SM1")
    assert created.plan_id == "claimed0000000a"
    assert redis_client.get("debtbot:plan:claimed0000000a") is not None


def test_a_flag_raised_by_a_retried_turn_reaches_the_agents_once(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    backend = backend_for(make_config, redis_client)
    for _ in range(2):
        backend.flag_for_agent("ACC-1001", "acct-ACC-1001", "dispute", "not mine", message_id="sms:SM1")
    assert len(redis_client.xrange("debtbot:agents:queue")) == 1
