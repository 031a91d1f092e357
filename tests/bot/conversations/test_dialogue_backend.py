"""The dialogue's backend on real Redis: verification, records for agents, preferences, plans."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
import redis

from bot.clock import Clock
from bot.conversations.dialogue_backend import RedisDialogueBackend
from bot.runtime.services import build_services
from bot.store.accounts import AccountStore
from bot.store.addresses import address_hash, address_key
from bot.store.connection import Keys
from dialogue.backend import BackendError
from dialogue.plans import Frequency, Instalment, Plan, Settlement
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


# --- what the dialogue records becomes the conversation's history, once per message ---------

#: Tuesday 24 November 2026, 15:00 UTC: the backend's clock, never the wall clock.
AT = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)


def clocked_backend(make_config: ConfigFactory, client: redis.Redis) -> tuple[RedisDialogueBackend, Keys]:
    config = make_config(accounts={"verification_field": "date_of_birth"})
    services = build_services(config, client, Clock(AT))
    AccountStore(client, services.keys).import_csv(
        (ROOT / "examples" / "accounts.csv").read_text(), **OPTIONS
    )
    return RedisDialogueBackend(config, client, services.events, clock=Clock(AT)), services.keys


def lines(client: redis.Redis, keys: Keys, conversation_id: str = "acct-ACC-1001") -> list[dict[str, Any]]:
    return [
        json.loads(fields[b"entry"])
        for _, fields in client.xrange(keys.conversation_history(conversation_id))
    ]


def test_the_dialogues_verification_tells_the_inbox_and_the_history_once_per_answer(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    backend, keys = clocked_backend(make_config, redis_client)
    for _ in range(2):  # a retried turn
        backend.record_verification(
            "ACC-1001", "acct-ACC-1001", verified=False, failures=1, message_id="sms:SM1"
        )
    assert redis_client.hget(keys.console("verified"), "acct-ACC-1001") == b"0"
    backend.record_verification("ACC-1001", "acct-ACC-1001", verified=True, message_id="sms:SM2")
    backend.record_verification("ACC-1001", "acct-ACC-1001", verified=True, message_id="sms:SM2")
    # The hash the console's inbox reads (``verified_key``), at once.
    assert redis_client.hget(keys.console("verified"), "acct-ACC-1001") == b"1"
    assert [(line["kind"], line["by"], line["text"], line["at"]) for line in lines(redis_client, keys)] == [
        ("verification_failed", "bot", "wrong answer to the verification check (1 of 3)", AT.timestamp()),
        ("verified", "bot", "answered the verification check correctly", AT.timestamp()),
    ]
    assert "1984" not in json.dumps(lines(redis_client, keys))  # the answer itself is never kept


def test_a_plan_the_bot_sets_up_is_a_history_line_with_its_terms_once_and_not_for_the_consoles(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    backend, keys = clocked_backend(make_config, redis_client)
    plan = Plan(
        Decimal("150.00"), "USD", Frequency.MONTHLY,
        tuple(Instalment(date(2026, 12, day), Decimal("50.00")) for day in (1, 2, 3)),
    )  # fmt: skip
    first = backend.create_plan("ACC-1001", "acct-ACC-1001", plan, channel="sms", message_id="sms:SM1")
    again = backend.create_plan("ACC-1001", "acct-ACC-1001", plan, channel="sms", message_id="sms:SM1")
    assert again == first
    [line] = lines(redis_client, keys)
    assert (line["kind"], line["by"], line["at"]) == ("plan_created", "bot", AT.timestamp())
    assert line["text"].startswith("3 payments of $50.00") and line["detail"]["plan_id"] == first.plan_id
    assert first.payment_link not in json.dumps(line)
    stored = json.loads(redis_client.get(keys.plan(first.plan_id)))  # type: ignore[arg-type]
    assert stored["created_at"] == AT.isoformat()
    settled = backend.create_plan(
        "ACC-1001", "acct-ACC-1001", Settlement(Decimal("1062.93"), "USD", Decimal(85)), kind="settlement",
        message_id="sms:SM2",
    )  # fmt: skip
    assert (
        lines(redis_client, keys)[-1]["text"] == "settlement: one payment of $1,062.93 (85% of the balance)"
    )
    assert lines(redis_client, keys)[-1]["detail"]["plan_id"] == settled.plan_id
    # An agent's plan: the console writes its own line, with the agent's name.
    backend.create_plan("ACC-1001", "acct-ACC-1001", plan, channel="sms", message_id="console:req-1")
    assert len(lines(redis_client, keys)) == 2


def test_opt_outs_and_wrong_parties_are_history_lines_of_the_conversation_they_came_from(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    backend, keys = clocked_backend(make_config, redis_client)
    for _ in range(2):
        backend.opt_out("ACC-1001", "sms", "+13055550191", "sms:SM1")
    backend.mark_wrong_party(None, "sms", "+12025550100", "sms:SM2")
    backend.opt_out("ACC-1001", "email", "someone.else@example.com", "email:<m1@x>")
    [opted] = lines(redis_client, keys)
    assert (opted["kind"], opted["by"], opted["text"]) == (
        "opted_out",
        "bot",
        "asked for no more messages by sms",
    )
    anonymous = f"anon-{address_key('sms', '+12025550100')}"
    [wrong] = lines(redis_client, keys, anonymous)
    assert wrong["kind"] == "wrong_party" and "does not reach the person we want" in wrong["text"]
    assert redis_client.hget(keys.console("verified"), anonymous) == b"0"  # as the dialogue's slot
    # From another address of the account's: that address's own conversation, as the worker names it.
    other = f"acct-ACC-1001~{address_hash('email', 'someone.else@example.com')[:12]}"
    assert [line["kind"] for line in lines(redis_client, keys, other)] == ["opted_out"]
    assert "+1305" not in json.dumps(lines(redis_client, keys))  # no addresses in the lines


def test_a_pause_is_a_history_line_when_it_begins_and_stamped_by_the_clock(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    backend, keys = clocked_backend(make_config, redis_client)
    backend.pause_collection("ACC-1001", "dispute", "not mine")
    backend.pause_collection("ACC-1001", "dispute", "not mine")  # a retried turn
    backend.pause_collection("ACC-1001", "dispute", "I never had this card")  # while paused already
    [line] = lines(redis_client, keys)
    assert (line["kind"], line["by"], line["at"]) == ("collection_paused", "bot", AT.timestamp())
    assert line["text"] == "disputes the debt: no collection messages until a person clears it"
    state = json.loads(redis_client.hget(keys.account_state("ACC-1001"), "pause:dispute"))  # type: ignore[arg-type]
    assert state == {"at": AT.isoformat(), "detail": "I never had this card"}
    backend.pause_collection("ACC-1001", "payment_claimed", "paid on Monday")
    assert lines(redis_client, keys)[-1]["text"].startswith("says they have paid")


def test_a_call_back_is_recorded_once_per_message_on_the_clock_with_its_history_line(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    backend, keys = clocked_backend(make_config, redis_client)
    for _ in range(2):  # a retried turn
        backend.record_callback("ACC-1001", "acct-ACC-1001", "tomorrow at 5pm", "video", message_id="sms:SM1")
    [(_, entry)] = redis_client.xrange(keys.callbacks)
    assert entry[b"at"] == str(AT.timestamp()).encode() and entry[b"how"] == b"video"
    [line] = lines(redis_client, keys)
    assert (line["kind"], line["text"], line["at"]) == (
        "callback_requested",
        "video: tomorrow at 5pm",
        AT.timestamp(),
    )
    backend.record_callback("ACC-1001", "acct-ACC-1001", "friday", "phone", message_id="sms:SM2")
    assert len(redis_client.xrange(keys.callbacks)) == 2
