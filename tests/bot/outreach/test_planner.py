"""Outreach: who is due, on which channel, with which wording, and what the gate defers.
The gate itself is tested rule by rule in test_compliance.py; here it decides with the
facts the product keeps in Redis."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import redis

from bot.clock import Clock
from bot.compliance.rules import Decision
from bot.config import OpenerVariant
from bot.outreach.planner import OUTREACH, OutreachHandler, choose_variant, shard_of
from bot.runtime.services import Services, build_services
from bot.store.accounts import Account
from bot.store.opener_stats import RetiredOpeners
from bot.store.queues import Entry
from tests.conftest import ConfigFactory

NY = ZoneInfo("America/New_York")


class Sent:
    def __init__(self) -> None:
        self.openers: list[tuple[str, str, str, str]] = []

    def __call__(
        self, account: Account, channel: str, address: str, variant: OpenerVariant, decision: Decision
    ) -> None:
        self.openers.append((account.account_id, channel, variant.id, decision.text))


@pytest.fixture
def services(make_config: ConfigFactory, redis_client: redis.Redis) -> Services:
    # A set clock: no test here depends on when it runs.
    return build_services(make_config(), redis_client, Clock(datetime(2026, 11, 24, 10, 0, tzinfo=NY)))


def account(n: int, **fields: object) -> Account:
    values: dict[str, object] = dict(
        account_id=f"A{n}", first_name="James", balance=Decimal("389.99"), currency="USD", creditor="Capitol Mobile",
        language="en", phone=f"+1202555{n:04d}", email=f"a{n}@example.com", timezone="America/New_York",
    )  # fmt: skip
    values.update(fields)
    return Account(**values)  # type: ignore[arg-type]


def handler_at(services: Services, sent: Sent, local: datetime) -> OutreachHandler:
    """The product's outreach handler, with the product's clock set to ``local``."""
    services.clock.set(local)
    return services.outreach_handler(send=sent)


def decide(handler: OutreachHandler, account_id: str) -> None:
    handler(
        Entry(
            key="shard", entry_id="1-0", payload=json.dumps({"kind": "opener", "account_ids": [account_id]})
        )
    )


def test_a_run_queues_every_account_once_in_batches_across_shards(services: Services) -> None:
    for n in range(250):
        services.accounts.upsert(account(n))
    first = services.outreach.plan_run("run-1")
    again = services.outreach.plan_run("run-1")  # planning retried: nothing twice
    assert first.queued == 250
    queued = [
        account_id
        for key in services.outreach_queue.pending_keys()
        for entry in services.outreach_queue.unhandled(key, limit=1000)
        for account_id in json.loads(entry.payload)["account_ids"]
    ]
    assert sorted(queued) == sorted(f"A{n}" for n in range(250)) and again.queued == 250
    assert len(services.outreach_queue.pending_keys()) > 1  # spread over shards for many workers
    assert {shard_of(f"A{n}", services.config.outreach.shards) for n in range(250)} == set(
        services.outreach_queue.pending_keys()
    )


def test_a_due_account_gets_a_gentle_personal_opener_in_daytime_with_the_opt_out_line(
    services: Services,
) -> None:
    services.accounts.upsert(account(1))
    sent = Sent()
    decide(handler_at(services, sent, datetime(2026, 11, 24, 10, 0, tzinfo=NY)), "A1")
    [(account_id, channel, variant, text)] = sent.openers
    assert (account_id, channel) == ("A1", "sms")
    assert "James" in text and "Northwind" in text and "389" not in text
    assert text.endswith("Reply STOP to stop texts.")
    assert variant == choose_variant("A1", list(services.config.outreach.openers["en"])).id


def test_an_account_contacted_recently_or_with_a_plan_is_not_due(services: Services) -> None:
    services.accounts.upsert(account(1))
    services.accounts.upsert(account(2))
    services.redis.rpush(services.keys.account_plans("A2"), "p1")
    sent = Sent()
    handler = handler_at(services, sent, datetime(2026, 11, 24, 10, 0, tzinfo=NY))
    decide(handler, "A1")
    decide(handler, "A1")  # the same account again the same day
    decide(handler, "A2")
    assert [opener[0] for opener in sent.openers] == ["A1"]


def test_at_night_the_opener_is_deferred_to_eight_in_the_morning_and_released_then(
    services: Services,
) -> None:
    services.accounts.upsert(account(1))
    sent = Sent()
    decide(handler_at(services, sent, datetime(2026, 11, 24, 22, 30, tzinfo=NY)), "A1")
    assert sent.openers == []
    [(_, score)] = services.redis.zrange(services.keys.outreach_deferred, 0, -1, withscores=True)
    assert datetime.fromtimestamp(score, timezone.utc).astimezone(NY) == datetime(
        2026, 11, 25, 8, 0, tzinfo=NY
    )
    planner = services.outreach
    assert planner.release_due(datetime(2026, 11, 25, 7, 59, tzinfo=NY)) == 0
    assert planner.release_due(datetime(2026, 11, 25, 8, 0, tzinfo=NY)) == 1
    [key] = services.outreach_queue.pending_keys()
    [entry] = services.outreach_queue.unhandled(key)
    assert json.loads(entry.payload)["account_id"] == "A1"
    decide(handler_at(services, sent, datetime(2026, 11, 25, 8, 0, tzinfo=NY)), "A1")
    assert len(sent.openers) == 1


def test_the_preferred_channel_comes_first_and_a_barred_channel_is_skipped(services: Services) -> None:
    services.accounts.upsert(account(1))
    services.accounts.upsert(account(2))
    services.redis.hset(services.keys.account_state("A1"), "pref:channel", "email")
    services.addresses.opt_out("sms", "+12025550002")
    sent = Sent()
    handler = handler_at(services, sent, datetime(2026, 11, 24, 10, 0, tzinfo=NY))
    decide(handler, "A1")
    decide(handler, "A2")
    assert [(a, c) for a, c, _, _ in sent.openers] == [("A1", "email"), ("A2", "email")]


@pytest.mark.parametrize(
    "pause", ["dispute", "payment_claimed", "bankruptcy", "attorney", "deceased", "breathing_space"]
)
def test_a_paused_account_gets_nothing_and_the_audit_says_why(services: Services, pause: str) -> None:
    services.accounts.upsert(account(1))
    services.redis.hset(services.keys.account_state("A1"), f"pause:{pause}", "{}")
    sent = Sent()
    decide(handler_at(services, sent, datetime(2026, 11, 24, 10, 0, tzinfo=NY)), "A1")
    assert sent.openers == []
    [(_, fields)] = services.redis.xrange(services.keys.audit)
    assert fields[b"verdict"] == b"block" and fields[b"rule"] == f"pause:{pause}".encode()
    assert fields[b"account_id"] == b"A1" and fields[b"kind"] == b"opener"


def test_the_frequency_cap_counts_sends_from_every_worker(services: Services) -> None:
    services.accounts.upsert(account(1))
    now = datetime(2026, 11, 24, 10, 0, tzinfo=NY)
    for n in range(3):
        services.gate.record_proactive("A1", "email", f"o{n}", at=(now - timedelta(days=n + 1)).timestamp())
    services.redis.hset(services.keys.account_state("A1"), "last_opener_at", "0")
    sent = Sent()
    decide(handler_at(services, sent, now), "A1")
    assert sent.openers == []
    [(_, score)] = services.redis.zrange(services.keys.outreach_deferred, 0, -1, withscores=True)
    assert datetime.fromtimestamp(score, timezone.utc) >= now - timedelta(days=3) + timedelta(days=7)


def test_outcomes_are_counted_once_per_account_per_opener_wording(services: Services) -> None:
    stats = services.opener_stats
    stats.sent("A1", "en", "warm")
    stats.sent("A2", "en", "warm")
    for outcome in ("replied", "replied", "verified", "plan"):
        stats.record("A1", outcome)
    stats.record("A3", "replied")  # never sent an opener: not counted
    [warm] = [
        row for row in stats.table(services.config) if row["variant"] == "warm" and row["language"] == "en"
    ]
    assert (warm["sent"], warm["replied"], warm["verified"], warm["plan"]) == (2, 1, 1, 1)
    assert warm["plan_rate"] == 0.5


def test_the_worker_drains_outreach_queues(services: Services) -> None:
    services.accounts.upsert(account(1))
    sent = Sent()
    services.jobs.handle(OUTREACH, handler_at(services, sent, datetime(2026, 11, 24, 10, 0, tzinfo=NY)))
    services.outreach.plan_run("run-2")
    for key in services.outreach_queue.pending_keys():
        services.outreach_queue.drain(key, services.jobs._handlers[OUTREACH])
    assert [opener[0] for opener in sent.openers] == ["A1"]


def test_a_creditor_can_have_its_own_opener_wordings(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    own = {
        "en": [
            {"id": "mobile", "text": "Hi {first_name}, {company} here about your phone line. How are you?"}
        ]
    }
    services = build_services(
        make_config(outreach={"creditor_openers": {"Capitol Mobile": own}}), redis_client
    )
    services.accounts.upsert(account(1))
    services.accounts.upsert(account(2, creditor="Other Bank"))
    sent = Sent()
    handler = handler_at(services, sent, datetime(2026, 11, 24, 10, 0, tzinfo=NY))
    decide(handler, "A1")
    decide(handler, "A2")
    assert sent.openers[0][:3:2] == ("A1", "mobile")
    assert sent.openers[1][2] in {"warm", "plain"}
    assert "about your phone line" in sent.openers[0][3]


def test_a_batch_that_fails_half_way_never_sends_the_first_half_twice(services: Services) -> None:
    for n in (1, 2, 3):
        services.accounts.upsert(account(n))
    calls: list[str] = []

    def flaky(acct: Account, channel: str, address: str, variant: OpenerVariant, decision: Decision) -> None:
        calls.append(acct.account_id)
        if acct.account_id == "A2" and calls.count("A2") == 1:
            raise ConnectionError("Rasa went away")

    handler = handler_at(services, Sent(), datetime(2026, 11, 24, 10, 0, tzinfo=NY))
    handler.send_opener = flaky
    with pytest.raises(ConnectionError):
        handler.contact_many(["A1", "A2", "A3"])
    handler.contact_many(["A1", "A2", "A3"])  # the queue retries the task
    assert calls == ["A1", "A2", "A2", "A3"]
    assert len(services.redis.xrange(services.keys.audit)) == 4  # every decision, the failed one too


def test_one_clock_decides_the_gate_the_handler_the_audit_and_the_scheduler(services: Services) -> None:
    from bot.outreach.scheduler import tick

    services.accounts.upsert(account(1))
    night = datetime(2026, 11, 24, 22, 30, tzinfo=NY)
    services.clock.set(night)
    handler = services.outreach_handler(send=Sent())
    assert handler.clock is services.clock and services.gate.clock is services.clock
    handler.contact_many(["A1"])  # no time passed in: the product's clock says it is night
    [(_, score)] = services.redis.zrange(services.keys.outreach_deferred, 0, -1, withscores=True)
    assert datetime.fromtimestamp(score, timezone.utc) == datetime(2026, 11, 25, 8, 0, tzinfo=NY)
    [(_, audit)] = services.redis.xrange(services.keys.audit)
    assert float(audit[b"at"]) == night.timestamp() and audit[b"rule"] == b"quiet_hours"
    services.gate.record_inbound("A1")
    assert (
        float(services.redis.hget(services.keys.account_state("A1"), "last_inbound_at") or 0)
        == night.timestamp()
    )

    services.clock.set(datetime(2026, 11, 25, 7, 59, tzinfo=NY))
    assert tick(services) == (0, None)
    services.clock.advance(timedelta(minutes=1))
    assert tick(services) == (1, None)
    assert services.redis.zcard(services.keys.outreach_deferred) == 0
    [key] = services.outreach_queue.pending_keys()
    assert json.loads(services.outreach_queue.unhandled(key)[0].payload)["account_id"] == "A1"


# --- retired wordings (ops switch them off in the console) -------------------------------------


def test_a_retired_wording_is_no_longer_chosen_for_new_openers(services: Services) -> None:
    ids = [f"A{n}" for n in range(1, 21)]
    for n in range(1, 21):
        services.accounts.upsert(account(n))
    RetiredOpeners(services.redis, services.keys, services.clock).retire("en", "warm", "olga", "too chirpy")
    sent = Sent()
    handler_at(services, sent, datetime(2026, 11, 24, 10, 0, tzinfo=NY)).contact_many(ids)
    assert len(sent.openers) == 20
    assert {variant for _, _, variant, _ in sent.openers} == {"plain"}
    # Spanish wordings with the same id are not affected: a retirement names its language.
    assert choose_variant("A1", list(services.config.outreach.openers["es"])).id in {"warm", "plain"}


def test_with_every_wording_of_a_language_retired_outreach_keeps_using_them_all_and_warns_once(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(1, 11):
        services.accounts.upsert(account(n))
    retired = RetiredOpeners(services.redis, services.keys, services.clock)
    retired.retire("en", "warm", "olga", "x")
    retired.retire("en", "plain", "olga", "x")
    sent = Sent()
    with caplog.at_level(logging.WARNING, logger="bot.outreach.planner"):
        handler_at(services, sent, datetime(2026, 11, 24, 10, 0, tzinfo=NY)).contact_many(
            [f"A{n}" for n in range(1, 11)]
        )
    assert len(sent.openers) == 10  # nobody left uncontacted because of a switch
    assert {variant for _, _, variant, _ in sent.openers} == {"warm", "plain"}
    warnings = [r.getMessage() for r in caplog.records if "retired" in r.getMessage()]
    assert warnings == [
        "every en opener wording for Capitol Mobile is retired: using them all until one is restored"
    ]


def test_the_retired_wordings_are_read_once_per_batch(services: Services) -> None:
    class Counting(RetiredOpeners):
        reads = 0

        def retired(self) -> frozenset[str]:
            Counting.reads += 1
            return super().retired()

    for n in range(1, 6):
        services.accounts.upsert(account(n))
    sent = Sent()
    handler = handler_at(services, sent, datetime(2026, 11, 24, 10, 0, tzinfo=NY))
    handler.retired_openers = Counting(services.redis, services.keys, services.clock)
    handler.contact_many([f"A{n}" for n in range(1, 6)])
    assert len(sent.openers) == 5 and Counting.reads == 1
    handler.contact_many([f"A{n}" for n in range(1, 6)])  # nobody is due any more: nothing read
    assert Counting.reads == 1


def test_a_creditors_own_wording_can_be_retired_and_restored(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    own = {"en": [{"id": "mobile", "text": "Hi {first_name}, {company} here. How are you?"},
                  {"id": "line", "text": "Hello {first_name}, it's {company}. How are things?"}]}  # fmt: skip
    services = build_services(
        make_config(outreach={"creditor_openers": {"Capitol Mobile": own}}), redis_client
    )
    for n in range(1, 11):
        services.accounts.upsert(account(n))
    retired = RetiredOpeners(services.redis, services.keys, services.clock)
    retired.retire("en", "mobile", "olga", "x")
    sent = Sent()
    handler_at(services, sent, datetime(2026, 11, 24, 10, 0, tzinfo=NY)).contact_many(
        [f"A{n}" for n in range(1, 11)]
    )
    assert {variant for _, _, variant, _ in sent.openers} == {"line"}
    retired.restore("en", "mobile", "olga")
    for n in range(11, 31):
        services.accounts.upsert(account(n))
    later = Sent()
    handler_at(services, later, datetime(2026, 11, 24, 10, 0, tzinfo=NY)).contact_many(
        [f"A{n}" for n in range(11, 31)]
    )
    assert {variant for _, _, variant, _ in later.openers} == {"mobile", "line"}
