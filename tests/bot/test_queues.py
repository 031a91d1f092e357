"""Per-key queues: order, no loss while a dependency is down, no blocking by a bad entry."""

from __future__ import annotations

import threading

import pytest
import redis

from bot.queues import Entry, GiveUp, KeyedQueue, RetryLater


@pytest.fixture
def queue(redis_client: redis.Redis) -> KeyedQueue:
    return KeyedQueue(
        redis_client, "t:q", "inbound", max_attempts=3, retry_min_seconds=1, retry_max_seconds=8
    )


def add(queue: KeyedQueue, key: str, payload: str) -> str | None:
    return queue.append(key, payload, dedupe_key=f"t:dedupe:{payload}", dedupe_ttl_seconds=60)


def test_entries_of_one_key_are_handled_in_order(queue: KeyedQueue) -> None:
    for n in range(5):
        add(queue, "a", f"m{n}")
    seen: list[str] = []
    result = queue.drain("a", lambda e: seen.append(e.payload))
    assert seen == ["m0", "m1", "m2", "m3", "m4"]
    assert result.handled == 5 and result.retry_in is None
    assert queue.pending_keys() == []


def test_duplicate_dedupe_key_is_stored_once(queue: KeyedQueue) -> None:
    assert add(queue, "a", "same") is not None
    assert add(queue, "a", "same") is None
    assert len(queue.unhandled("a")) == 1


def test_retry_later_keeps_the_entry_and_everything_behind_it(queue: KeyedQueue) -> None:
    add(queue, "a", "first")
    add(queue, "a", "second")

    def down(entry: Entry) -> None:
        raise RetryLater("rasa down")

    first = queue.drain("a", down)
    second = queue.drain("a", down)
    assert (first.retry_in, second.retry_in) == (1.0, 2.0)  # doubling backoff
    assert [e.payload for e in queue.unhandled("a")] == ["first", "second"]
    assert queue.pending_keys() == ["a"]
    seen: list[str] = []
    assert queue.drain("a", lambda e: seen.append(e.payload)).handled == 2
    assert seen == ["first", "second"]


def test_backoff_is_capped(queue: KeyedQueue) -> None:
    assert [queue.backoff_seconds(n) for n in (1, 2, 3, 4, 5, 10)] == [1, 2, 4, 8, 8, 8]


def test_crashing_entry_is_set_aside_after_max_attempts_and_the_next_one_goes_on(queue: KeyedQueue) -> None:
    add(queue, "a", "poison")
    add(queue, "a", "good")
    seen: list[str] = []

    def handler(entry: Entry) -> None:
        if entry.payload == "poison":
            raise ValueError("cannot parse")
        seen.append(entry.payload)

    assert queue.drain("a", handler).retry_in is not None  # attempt 1
    assert queue.drain("a", handler).retry_in is not None  # attempt 2
    assert queue.drain("a", handler).handled == 1  # attempt 3: set aside, then "good"
    assert seen == ["good"]
    dead = queue.dead_letters()
    assert dead[0]["payload"] == "poison" and "failed 3 times: ValueError" in dead[0]["reason"]


def test_give_up_sets_aside_at_once(queue: KeyedQueue) -> None:
    add(queue, "a", "hopeless")

    def handler(entry: Entry) -> None:
        raise GiveUp("rejected")

    assert queue.drain("a", handler).handled == 0
    assert queue.unhandled("a") == []
    assert queue.dead_letters()[0]["reason"] == "gave up: rejected"


def test_keys_are_independent(queue: KeyedQueue) -> None:
    add(queue, "a", "a1")
    add(queue, "b", "b1")

    def handler(entry: Entry) -> None:
        if entry.key == "a":
            raise RetryLater("a's provider down")

    queue.drain("a", handler)
    assert queue.drain("b", handler).handled == 1
    assert queue.pending_keys() == ["a"]


def test_a_second_drain_of_the_same_key_is_told_it_is_busy(queue: KeyedQueue) -> None:
    add(queue, "a", "slow")
    inside, release = threading.Event(), threading.Event()

    def slow(entry: Entry) -> None:
        inside.set()
        release.wait(5)

    worker = threading.Thread(target=queue.drain, args=("a", slow))
    worker.start()
    inside.wait(5)
    assert queue.drain("a", lambda e: None).busy
    release.set()
    worker.join(5)
    assert queue.unhandled("a") == []


def test_schedule_marker_is_claimed_once(queue: KeyedQueue) -> None:
    assert queue.claim_schedule("a", 10)
    assert not queue.claim_schedule("a", 10)
    queue.release_schedule("a")
    assert queue.claim_schedule("a", 10)


def test_handled_entries_are_trimmed_and_the_queue_expires_when_idle(
    queue: KeyedQueue, redis_client: redis.Redis
) -> None:
    for n in range(3):
        add(queue, "a", f"m{n}")
    queue.drain("a", lambda e: None)
    assert redis_client.xlen(queue.stream_key("a")) == 1  # only the last handled entry is kept
    assert redis_client.ttl(queue.stream_key("a")) > 0
    add(queue, "a", "m3")  # new work makes it persistent again
    assert redis_client.ttl(queue.stream_key("a")) == -1


def test_consecutive_waits_are_counted_and_reset_by_success(queue: KeyedQueue) -> None:
    add(queue, "a", "m")

    def down(entry: Entry) -> None:
        raise RetryLater("down")

    queue.drain("a", down)
    queue.drain("a", down)
    assert queue.waiting_failures("a") == 2
    queue.drain("a", lambda e: None)
    assert queue.waiting_failures("a") == 0
