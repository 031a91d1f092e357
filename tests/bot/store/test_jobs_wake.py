"""Idle job consumers wake when a job arrives instead of polling: the broker leaves a wake-up
token with each job, an idle consumer blocks on it, a delay-queue consumer wakes when its
earliest job is due, and a full one when a job thread makes room."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import dramatiq
import pytest
import redis
from dramatiq.broker import MessageProxy
from dramatiq.message import Message

from bot.store.jobs import WAKE_TOKENS, WakingConsumer, WakingRedisBroker, make_broker

IDLE_MS = 5000  # far longer than any wait these tests allow: only a wake-up can be quick


@pytest.fixture
def broker(redis_url: str, redis_client: redis.Redis) -> Iterator[WakingRedisBroker]:
    engine = make_broker(redis_url, "t:jobs")
    yield engine
    engine.close()


def job(broker: WakingRedisBroker, queue: str = "q", **options: object) -> Message[None]:
    broker.declare_queue(queue)
    return Message(queue_name=queue, actor_name="a", args=(), kwargs={}, options=dict(options))


def consumer(broker: WakingRedisBroker, queue: str, prefetch: int = 4) -> WakingConsumer:
    made = broker.consume(queue, prefetch=prefetch, timeout=IDLE_MS)
    assert isinstance(made, WakingConsumer)
    return made


def next_job(consumer: WakingConsumer, within: float) -> tuple[MessageProxy | None, float]:
    """Turn the consumer as Dramatiq's consumer thread does until it hands out a job."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        message = next(consumer)
        if message is not None:
            return message, time.monotonic() - started
    return None, time.monotonic() - started


def later(seconds: float, action: object) -> threading.Thread:
    thread = threading.Timer(seconds, action)  # type: ignore[arg-type]
    thread.start()
    return thread


def test_each_job_leaves_a_wake_up_token_and_the_list_stays_small(
    broker: WakingRedisBroker, redis_client: redis.Redis
) -> None:
    for _ in range(WAKE_TOKENS + 10):
        broker.enqueue(job(broker))
    key = broker.wake_key("q")
    assert redis_client.llen(key) == WAKE_TOKENS
    assert 0 < redis_client.pttl(key) <= 60_000


def test_an_idle_consumer_takes_a_new_job_within_milliseconds_not_at_its_next_poll(
    broker: WakingRedisBroker,
) -> None:
    waiting = consumer(broker, "q")
    enqueued_at: list[float] = []

    def send() -> None:
        enqueued_at.append(time.monotonic())
        broker.enqueue(job(broker))

    later(0.3, send)
    message, _ = next_job(waiting, within=3)
    assert message is not None
    assert time.monotonic() - enqueued_at[0] < 0.5  # the idle timeout is 5 s


def test_a_wake_up_with_nothing_to_fetch_is_harmless(
    broker: WakingRedisBroker, redis_client: redis.Redis
) -> None:
    waiting = consumer(broker, "q")
    redis_client.lpush(broker.wake_key("q"), 1)  # a stale token (its job went elsewhere)
    assert next(waiting) is None
    broker.enqueue(job(broker))
    message, _ = next_job(waiting, within=1)
    assert message is not None


def test_a_delayed_job_is_handed_on_when_due_not_at_the_next_poll(broker: WakingRedisBroker) -> None:
    broker.declare_queue("q")
    broker.enqueue(job(broker), delay=400)
    delayed = consumer(broker, "q.DQ", prefetch=100)
    message, _ = next_job(delayed, within=1)
    assert message is not None and "eta" in message.options
    due = message.options["eta"] / 1000
    turns = 0
    while time.time() < due:  # Dramatiq's consumer thread turns it and moves due jobs on
        assert next(delayed) is None
        turns += 1
    assert time.time() - due < 0.1  # handed on when due, not up to an idle poll (5 s) later
    assert turns <= 3  # it waited, it did not spin


def test_a_full_consumer_fetches_again_as_soon_as_a_job_is_acknowledged(broker: WakingRedisBroker) -> None:
    for _ in range(2):
        broker.enqueue(job(broker))
    full = consumer(broker, "q", prefetch=1)
    first, _ = next_job(full, within=1)
    assert first is not None
    later(0.2, lambda: full.ack(first))
    second, took = next_job(full, within=3)
    assert second is not None and took < 1.0


def test_requeued_jobs_wake_a_consumer(broker: WakingRedisBroker) -> None:
    broker.enqueue(job(broker))
    holder = consumer(broker, "q")
    held, _ = next_job(holder, within=1)
    assert held is not None
    other = consumer(broker, "q")
    assert next(other) is None  # consumes the enqueue's stale token
    later(0.3, lambda: holder.requeue([held]))
    again, took = next_job(other, within=3)
    assert again is not None and took < 1.5


def test_a_dramatiq_worker_on_this_broker_runs_a_job_at_once_when_idle(broker: WakingRedisBroker) -> None:
    started: list[float] = []
    actor: dramatiq.Actor[[float], None] = dramatiq.Actor(
        lambda sent_at: started.append(time.monotonic() - sent_at),
        broker=broker, actor_name="timed", queue_name="timed", priority=0, options={"max_retries": 0},
    )  # fmt: skip
    broker.idle_timeout_ms = IDLE_MS  # its consumers poll every 5 s when nobody wakes them
    worker = dramatiq.Worker(broker, queues={"timed"}, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        time.sleep(0.3)  # idle: its consumers are blocked on their wake-up lists
        for _ in range(3):
            actor.send(time.monotonic())
            deadline = time.monotonic() + 3
            while len(started) < 1 and time.monotonic() < deadline:
                time.sleep(0.005)
            assert started and started.pop() < 0.5  # not 1-2 s
            time.sleep(0.1)
    finally:
        for name, thread in worker.consumers.items():  # as our worker stops: told, then woken
            thread.stop()
            broker.wake(name)
        worker.stop(timeout=5000)


def test_a_redis_that_takes_only_whole_seconds_gets_waits_rounded_up(
    broker: WakingRedisBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WakingConsumer, "_whole_seconds", False)
    timeouts: list[float] = []

    def old_blpop(keys: list[str], timeout: float = 0) -> None:
        timeouts.append(timeout)
        if not float(timeout).is_integer():
            raise redis.ResponseError("timeout is not an integer or out of range")

    monkeypatch.setattr(broker.client, "blpop", old_blpop)
    idle = broker.consume("q", prefetch=1, timeout=1500)
    assert next(idle) is None and next(idle) is None
    assert timeouts == [1.5, 2]
