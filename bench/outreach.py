"""Planning outreach over many accounts: accounts per second and peak memory.

100,000 generated accounts (spread over US, UK, Spanish and Mexican numbers and zones, some
with preferences, pauses, opt-outs) in a real Redis. Two phases, each timed and traced:

- plan: ``OutreachPlanner.plan_run`` pages through the accounts and queues one task each;
- decide: the workers' side, draining every outreach queue with the real handler (due?
  which channel? the compliance gate), the opener itself replaced by a counter (Rasa is not
  what is measured here).

The baseline, in the same run and on the same data, is the least any plan must do: read every
account once (SSCAN pages + pipelined HGETALL). Peak memory is Python's (tracemalloc) for the
phase, measured at 10,000 and at 100,000 accounts: the same peak means the run does not hold
the accounts in memory. Run: ``make bench`` (or ``python -m bench.outreach [accounts]``).
"""

from __future__ import annotations

import random
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import redis

from bench.redis_server import bench_config_file, temporary_redis
from bot.compliance.rules import Decision
from bot.config import OpenerVariant, load_config
from bot.runtime.services import Services, build_services
from bot.store.accounts import Account
from bot.store.addresses import address_hash

_PLACES = [
    ("+1212555{:04d}", "America/New_York", "10001", "US", "en"),
    ("+1213555{:04d}", None, "90012", "US", "es"),
    ("+1312555{:04d}", None, None, "US", "en"),
    ("+4479111{:05d}", "Europe/London", "SE1 7PB", "GB", "en"),
    ("+3461234{:04d}", None, "28013", "ES", "es"),
    ("+5255123{:04d}", "America/Mexico_City", "06700", "MX", "es"),
]


def generate(client: redis.Redis[bytes], services: Services, count: int, seed: int = 7) -> None:
    """``count`` accounts written straight to Redis (the import's checks are not measured)."""
    rng = random.Random(seed)  # noqa: S311 - made-up test data, not secrets
    keys = services.keys
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        phone, zone, postal, country, language = _PLACES[n % len(_PLACES)]
        account = Account(
            account_id=f"B{n:07d}", first_name=rng.choice(["Ana", "James", "Aisha", "Tom", "Lucía"]),
            balance=Decimal(rng.randint(50, 5000)), currency="USD", creditor="Bench Credit",
            language=language,
            phone=phone.format(n % 100000), email=f"b{n}@example.com" if n % 3 else None,
            timezone=zone, postal_code=postal, country=country,
        )  # fmt: skip
        pipe.hset(keys.account(account.account_id), mapping=account.to_redis())
        pipe.sadd(keys.account_ids, account.account_id)
        state = keys.account_state(account.account_id)
        if n % 10 == 0:
            pipe.hset(state, "pref:channel", "email")
        if n % 50 == 0:
            pipe.hset(state, "pause:dispute", "{}")
        if n % 40 == 0:
            pipe.hset(keys.address_status(address_hash("sms", account.phone or "")), "opted_out", "1")
        if n % 1000 == 999:
            pipe.execute()
    pipe.execute()


def _measured(work: Callable[[], object]) -> tuple[float, float]:
    """(seconds, peak MiB of Python allocations) for one call."""
    tracemalloc.start()
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20


def read_every_account(client: redis.Redis[bytes], services: Services) -> None:
    cursor = 0
    while True:
        cursor, ids = client.sscan(services.keys.account_ids, cursor, count=1000)
        pipe = client.pipeline(transaction=False)
        for account_id in ids:
            pipe.hgetall(services.keys.account(account_id.decode()))
        pipe.execute()
        if cursor == 0:
            return


def run(count: int) -> dict[str, float]:
    with temporary_redis() as (client, url, folder):
        config = load_config(bench_config_file(folder), {"REDIS_URL": url, "RASA_AUTH_TOKEN": "b",
                                                         "DEBTBOT_SECRET_KEY": "b"})  # fmt: skip
        services = build_services(config, client)
        generate(client, services, count)
        outcomes: Counter[str] = Counter()

        def opener(account: Account, channel: str, address: str, variant: OpenerVariant, d: Decision) -> None:
            outcomes[channel] += 1

        handler = services.outreach_handler(send=opener)
        queue = services.outreach_queue
        baseline_s, baseline_peak = _measured(lambda: read_every_account(client, services))
        plan_s, plan_peak = _measured(lambda: services.outreach.plan_run("bench"))

        def decide() -> None:
            for key in queue.pending_keys():
                queue.drain(key, handler)

        decide_s, decide_peak = _measured(decide)
        deferred = client.zcard(services.keys.outreach_deferred)
        assert not queue.pending_keys(), "every task decided"
        return {
            "count": count, "baseline_s": baseline_s, "baseline_peak": baseline_peak,
            "plan_s": plan_s, "plan_peak": plan_peak, "decide_s": decide_s, "decide_peak": decide_peak,
            "sent": sum(outcomes.values()), "deferred": deferred,
        }  # fmt: skip


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [10_000, 100_000]
    results = [run(n) for n in sizes]
    print("outreach planning (real Redis, one process; the opener itself replaced by a counter):")
    for r in results:
        n = r["count"]
        print(f"  {n:>7,} accounts: read-only baseline {n / r['baseline_s']:>8,.0f} accounts/s "
              f"(peak {r['baseline_peak']:.1f} MiB)")  # fmt: skip
        pad = " " * 18
        print(f"  {pad}plan (queue)     {n / r['plan_s']:>8,.0f} accounts/s (peak {r['plan_peak']:.1f} MiB), "
              f"{r['plan_s'] / r['baseline_s']:.1f}x the baseline's time")  # fmt: skip
        print(f"  {pad}decide (gate)    {n / r['decide_s']:>8,.0f} accounts/s "
              f"(peak {r['decide_peak']:.1f} MiB), "
              f"{r['decide_s'] / r['baseline_s']:.1f}x the baseline's time; "
              f"{r['sent']:,.0f} openers, {r['deferred']:,.0f} deferred")  # fmt: skip


if __name__ == "__main__":
    main()
