"""Per-key queues: order, no loss while a dependency is down, no blocking by a bad entry."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from bot.store.queues import Entry, GiveUp, KeyedQueue, Plan, RetryLater
from tests.conftest import wait_for


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


def test_a_key_has_one_planned_drain_and_only_its_own_job_releases_it(queue: KeyedQueue) -> None:
    assert queue.plan("a", "t1", due=1000.0, ttl_seconds=60)
    assert not queue.plan("a", "t2", due=1000.0, ttl_seconds=60)
    assert queue.planned("a") == Plan(token="t1", due=1000.0, resends=0)
    assert not queue.release_schedule("a", "t2")  # a stale job cannot drop the current plan
    assert queue.release_schedule("a", "t1")
    assert queue.planned("a") is None
    assert queue.plan("a", "t3", due=1000.0, ttl_seconds=60)
    assert queue.plan("a", "t4", due=2000.0, ttl_seconds=60, replace=True)
    assert queue.planned("a") == Plan(token="t4", due=2000.0, resends=0)


def test_an_overdue_plan_is_sent_again_with_its_token_and_resends_back_off(queue: KeyedQueue) -> None:
    queue.plan("a", "t1", due=1000.0, ttl_seconds=3600)
    queue.plan("b", "t2", due=1009.0, ttl_seconds=3600)
    assert queue.take_overdue(now=1003.0, grace_seconds=2) == [("a", "t1")]
    assert queue.take_overdue(now=1003.0, grace_seconds=2) == []  # just sent again
    # The next resend of the same plan waits twice the grace, then four times.
    assert queue.take_overdue(now=1006.9, grace_seconds=2) == []
    assert queue.take_overdue(now=1007.1, grace_seconds=2) == [("a", "t1")]
    assert queue.take_overdue(now=1014.9, grace_seconds=2) == [("b", "t2")]
    assert queue.take_overdue(now=1015.2, grace_seconds=2) == [("a", "t1")]
    assert queue.planned("a") is not None and queue.planned("a").resends == 3  # type: ignore[union-attr]


def test_an_overdue_plan_whose_key_a_drain_holds_is_left_to_that_drain(
    queue: KeyedQueue, redis_client: redis.Redis
) -> None:
    queue.plan("a", "t1", due=1000.0, ttl_seconds=3600)
    redis_client.set("t:q:inbound:a:lock", "someone", px=5000)
    assert queue.take_overdue(now=1010.0, grace_seconds=2) == []
    redis_client.delete("t:q:inbound:a:lock")
    assert queue.take_overdue(now=1011.0, grace_seconds=2) == []  # looked at again after the grace
    assert queue.take_overdue(now=1012.5, grace_seconds=2) == [("a", "t1")]


def test_a_lease_abandoned_by_a_dead_drain_frees_the_key_within_the_lease(
    redis_client: redis.Redis,
) -> None:
    queue = KeyedQueue(redis_client, "t:q", "inbound", lease_seconds=0.5)
    add(queue, "a", "m1")
    redis_client.set("t:q:inbound:a:lock", "token-of-a-killed-drain", px=500)  # and never renewed
    assert queue.drain("a", lambda e: None).busy
    assert 0 < queue.lease_remaining("a") <= 0.5
    seen: list[str] = []
    wait_for(lambda: not queue.drain("a", lambda e: seen.append(e.payload)).busy, timeout=3, what="takeover")
    assert seen == ["m1"]


def test_a_live_drain_keeps_its_lease_while_a_handler_outlasts_it(redis_client: redis.Redis) -> None:
    queue = KeyedQueue(redis_client, "t:q", "inbound", lease_seconds=0.5)
    add(queue, "a", "slow")
    add(queue, "a", "next")
    inside, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def slow(entry: Entry) -> None:
        if entry.payload == "slow":
            inside.set()
            release.wait(5)
        seen.append(entry.payload)

    worker = threading.Thread(target=queue.drain, args=("a", slow))
    worker.start()
    inside.wait(5)
    time.sleep(1.5)  # three leases long: renewed all along
    assert queue.drain("a", lambda e: seen.append("intruder")).busy
    release.set()
    worker.join(5)
    assert seen == ["slow", "next"]


def test_a_drain_that_lost_its_lease_stops_and_does_not_advance(
    queue: KeyedQueue, redis_client: redis.Redis
) -> None:
    add(queue, "a", "m1")
    add(queue, "a", "m2")
    seen: list[str] = []

    def handler(entry: Entry) -> None:
        seen.append(entry.payload)
        # Meanwhile (a pause longer than the lease) another drain took the key over.
        redis_client.set("t:q:inbound:a:lock", "the-new-owner")

    result = queue.drain("a", handler)
    assert result.lost and result.handled == 0
    assert seen == ["m1"]  # stopped before the next entry
    assert [e.payload for e in queue.unhandled("a")] == ["m1", "m2"]  # the cursor did not move
    assert redis_client.get("t:q:inbound:a:lock") == b"the-new-owner"  # and it left the new lease alone


def test_the_oldest_waiting_entry_is_indexed_until_handled(
    queue: KeyedQueue, redis_client: redis.Redis
) -> None:
    assert queue.oldest_waiting() == (0, None)
    first = add(queue, "a", "a1")
    add(queue, "b", "b1")
    second = add(queue, "a", "a2")
    assert first is not None and second is not None
    count, since = queue.oldest_waiting()
    assert count == 2 and since == int(first.split("-")[0]) / 1000

    handled_one: list[str] = []

    def one_then_wait(entry: Entry) -> None:
        if handled_one:
            raise RetryLater("later")
        handled_one.append(entry.payload)

    queue.drain("a", one_then_wait)
    assert redis_client.zscore(queue.waiting_index, "a") == int(second.split("-")[0])
    queue.drain("a", lambda e: None)
    queue.drain("b", lambda e: None)
    assert queue.oldest_waiting() == (0, None)


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
