"""How soon an idle worker starts a job: enqueue -> the job's first line, at light load.

Two set-ups in one process on one throw-away Redis, the same jobs for both:

- ``polling``: Dramatiq's own Redis broker with the worker as it was set up before (its
  consumers poll an empty queue with a growing back-off of up to ``worker_timeout``, 200 ms);
- ``waking``: ours (bot/store/jobs.py): each job leaves a wake-up token that an idle consumer
  blocks on; without one it looks at Redis every ``worker.idle_poll_seconds`` (1 s);
- ``drain``: ours again, through the product's whole path (append an entry, plan its drain,
  the drain's checks) to the handler's first line.

Jobs are sent one at a time with random gaps (light load: the worker is idle when each
arrives). Also measured: what an idle worker costs Redis (commands per second, for the
dialogue and reply lanes' four consumers). Run: ``python -m bench.job_latency [--jobs 200]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from bench.redis_server import temporary_redis
from bot.store.jobs import DRAIN_QUEUE, REPLY_QUEUE, Jobs, WakingRedisBroker, make_broker
from bot.store.queues import KeyedQueue

IDLE_SECONDS = 5.0


def _lanes(broker: dramatiq.Broker, worker_timeout: int) -> list[dramatiq.Worker]:
    """Both lanes' Dramatiq workers, as bot/runtime/worker.py runs them."""
    return [
        dramatiq.Worker(broker, queues={DRAIN_QUEUE}, worker_threads=4, worker_timeout=worker_timeout),
        dramatiq.Worker(broker, queues={REPLY_QUEUE}, worker_threads=2, worker_timeout=worker_timeout),
    ]


Sender = Callable[[int], None]


def _actor_sender(name: str, broker: dramatiq.Broker, job: Callable[[int], None]) -> Sender:
    """Jobs straight onto both lanes' Dramatiq queues, in turn."""
    actors = [
        dramatiq.Actor(job, broker=broker, actor_name=f"{name}-{queue}", queue_name=queue, priority=0,
                       options={"max_retries": 0})
        for queue in (DRAIN_QUEUE, REPLY_QUEUE)
    ]  # fmt: skip

    def send(n: int) -> None:
        actors[n % 2].send(n)

    return send


def _drain_sender(broker: dramatiq.Broker, client: redis.Redis[bytes], job: Callable[[int], None]) -> Sender:
    """The product's path: append an entry to a keyed queue and plan its drain (as the gateway
    and the inbound handler do); timed to the handler's first line (after the plan's token
    check, the lease and the read of the entry)."""
    queues = {name: KeyedQueue(client, "bench:q", name) for name in ("inbound", "outbound")}
    jobs = Jobs(broker, queues)
    for name in queues:
        jobs.handle(name, lambda entry: job(int(entry.payload)))

    def send(n: int) -> None:
        name = ("inbound", "outbound")[n % 2]
        queues[name].append(f"k{n}", str(n), dedupe_key=f"bench:dd:{n}", dedupe_ttl_seconds=60)
        jobs.schedule(name, f"k{n}")

    return send


def _run(
    name: str,
    broker: dramatiq.Broker,
    worker_timeout: int,
    client: redis.Redis[bytes],
    jobs: int,
    gap: float,
    path: str = "actor",
) -> dict[str, Any]:
    started: dict[int, float] = {}
    done = threading.Event()

    def job(n: int) -> None:
        started[n] = time.perf_counter()
        done.set()

    send = _drain_sender(broker, client, job) if path == "drain" else _actor_sender(name, broker, job)
    lanes = _lanes(broker, worker_timeout)
    for lane in lanes:
        lane.start()
    time.sleep(1.0)
    commands = _idle_commands(client, IDLE_SECONDS)
    latencies: list[float] = []
    rng = random.Random(18)  # noqa: S311 (gaps, not secrets)
    for n in range(jobs):
        time.sleep(rng.uniform(gap / 2, gap * 1.5))
        done.clear()
        sent = time.perf_counter()
        send(n)
        if not done.wait(10):
            raise RuntimeError(f"{name}: job {n} did not start within 10 s")
        latencies.append(started[n] - sent)
    for lane in lanes:
        for queue_name, consumer in lane.consumers.items():
            consumer.stop()
            if isinstance(broker, WakingRedisBroker):
                broker.wake(queue_name)
    for lane in lanes:
        lane.stop(timeout=5000)
    ordered = sorted(latencies)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(len(ordered) * 0.95) - 1] * 1000,
        "max_ms": ordered[-1] * 1000,
        **commands,
    }


def _idle_commands(client: redis.Redis[bytes], seconds: float) -> dict[str, float]:
    """Commands per second Redis served while the worker idled (our two INFO calls excluded)."""

    def stats() -> tuple[int, dict[str, int]]:
        total = int(client.info("stats")["total_commands_processed"])
        per = {k: int(v["calls"]) for k, v in client.info("commandstats").items()}
        return total, per

    total_before, per_before = stats()
    time.sleep(seconds)
    total_after, per_after = stats()
    changed = {
        k.removeprefix("cmdstat_"): (per_after[k] - per_before.get(k, 0)) / seconds
        for k in per_after
        if per_after[k] != per_before.get(k, 0) and k != "cmdstat_info"
    }
    return {"idle_commands_per_s": (total_after - total_before - 2) / seconds} | {
        f"idle_{k}_per_s": round(v, 1) for k, v in sorted(changed.items())
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.25, help="mean seconds between two jobs")
    args = parser.parse_args()
    logging.getLogger("dramatiq").setLevel(logging.ERROR)  # two Dramatiq workers on one broker: intended
    with temporary_redis() as (client, url, _):
        setups: list[tuple[str, Callable[[], dramatiq.Broker], int, str]] = [
            ("polling", lambda: RedisBroker(url=url, namespace="bench-poll"), 200, "actor"),  # type: ignore[no-untyped-call]
            ("waking", lambda: _waking(url, "bench-wake"), 100, "actor"),
            ("drain", lambda: _waking(url, "bench-drain"), 100, "drain"),
        ]
        results = {}
        for name, make, worker_timeout, path in setups:
            broker = make()
            results[name] = _run(name, broker, worker_timeout, client, args.jobs, args.gap, path)
            broker.close()
    gap_ms = args.gap * 1000
    print(f"enqueue -> job start, {args.jobs} jobs one at a time, mean gap {gap_ms:.0f} ms, same process:")
    for name, result in results.items():
        print(f"  {name:8} p50 {result['p50_ms']:7.2f} ms  p95 {result['p95_ms']:7.2f} ms  "
              f"max {result['max_ms']:7.2f} ms")  # fmt: skip
    before, after = results["polling"], results["waking"]
    print(f"  ratio    p50 {before['p50_ms'] / after['p50_ms']:.0f}x faster, "
          f"p95 {before['p95_ms'] / after['p95_ms']:.0f}x faster")  # fmt: skip
    print("  (drain: the product's path, entry appended and drain planned -> the handler's first line)")
    print(f"idle Redis load, one worker (4 consumers), over {IDLE_SECONDS:.0f} s:")
    for name, result in results.items():
        if name == "drain":
            continue
        detail = ", ".join(f"{k[5:-6]} {v}" for k, v in result.items() if k.startswith("idle_") and
                           k != "idle_commands_per_s")  # fmt: skip
        print(f"  {name:8} {result['idle_commands_per_s']:6.1f} commands/s ({detail})")
    print(f"(load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cores)")


def _waking(url: str, namespace: str) -> WakingRedisBroker:
    broker = make_broker(url, namespace)
    broker.idle_timeout_ms = 1000  # worker.idle_poll_seconds
    return broker


if __name__ == "__main__":
    main()
