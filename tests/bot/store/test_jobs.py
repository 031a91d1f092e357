"""Drain jobs: one plan per key, stale copies do nothing, lost jobs are sent again, and a
busy key is looked at again when its holder's lease would run out (not every half second)."""

from __future__ import annotations

import time

import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from dramatiq.message import Message

from bot.store.jobs import DRAIN_QUEUE, REPLY_QUEUE, Jobs
from bot.store.queues import Entry, KeyedQueue

Q = "inbound"


@pytest.fixture
def queue(redis_client: redis.Redis) -> KeyedQueue:
    return KeyedQueue(redis_client, "t:q", Q, lease_seconds=1)


@pytest.fixture
def broker() -> StubBroker:
    return StubBroker()


@pytest.fixture
def jobs(broker: StubBroker, queue: KeyedQueue) -> Jobs:
    engine = Jobs(broker, {Q: queue})
    return engine


def sent(broker: StubBroker, queue_name: str = "drain") -> list[Message[None]]:
    """Take the messages a stub queue holds."""
    messages = []
    while not broker.queues[queue_name].empty():
        messages.append(Message.decode(broker.queues[queue_name].get_nowait()))
    return messages


def run(jobs: Jobs, message: Message[None]) -> None:
    jobs._drain(*message.args)


def add(queue: KeyedQueue, key: str, payload: str) -> None:
    queue.append(key, payload, dedupe_key=f"t:dedupe:{payload}", dedupe_ttl_seconds=60)


def test_a_key_gets_one_job_while_one_is_planned(jobs: Jobs, broker: StubBroker) -> None:
    assert jobs.schedule(Q, "a")
    assert not jobs.schedule(Q, "a")
    assert len(sent(broker)) == 1


def test_a_job_whose_plan_was_replaced_does_nothing(
    jobs: Jobs, broker: StubBroker, queue: KeyedQueue
) -> None:
    seen: list[str] = []
    jobs.handle(Q, lambda e: seen.append(e.payload))
    add(queue, "a", "m1")
    jobs.schedule(Q, "a")
    jobs.schedule(Q, "a", force=True)
    old, new = sent(broker)
    run(jobs, old)
    assert seen == [] and queue.planned("a") is not None
    run(jobs, new)
    assert seen == ["m1"] and queue.planned("a") is None


def test_a_lost_job_is_sent_again_with_the_same_token_once_overdue(
    jobs: Jobs, broker: StubBroker, queue: KeyedQueue
) -> None:
    seen: list[str] = []
    jobs.handle(Q, lambda e: seen.append(e.payload))
    add(queue, "a", "m1")
    jobs.schedule(Q, "a")
    sent(broker)  # the job is lost (a consumer thread died with it)
    assert jobs.resend_overdue(grace_seconds=30) == 0  # not overdue yet
    token = queue.planned("a").token  # type: ignore[union-attr]
    queue.replan("a", token, due=time.time() - 10)
    assert jobs.resend_overdue(grace_seconds=5) == 1
    (again,) = sent(broker)
    assert again.args == (Q, "a", token)
    run(jobs, again)
    assert seen == ["m1"]


def test_a_busy_key_is_looked_at_again_when_the_holders_lease_would_end(
    jobs: Jobs, broker: StubBroker, queue: KeyedQueue, redis_client: redis.Redis
) -> None:
    jobs.handle(Q, lambda e: None)
    add(queue, "a", "m1")
    redis_client.set("t:q:inbound:a:lock", "another-drain", px=5000)
    jobs.schedule(Q, "a")
    (job,) = sent(broker)
    before = time.time()
    run(jobs, job)
    (retry,) = sent(broker, "drain.DQ")
    assert retry.args == job.args  # the same plan, later
    wait = retry.options["eta"] / 1000 - before
    assert 4.0 < wait < 6.0  # the lease's remainder, not half a second
    plan = queue.planned("a")
    assert plan is not None and plan.due >= before + 4.0


def test_a_job_that_must_wait_replans_its_key_with_the_backoff(
    jobs: Jobs, broker: StubBroker, queue: KeyedQueue
) -> None:
    from bot.store.queues import RetryLater

    def down(entry: Entry) -> None:
        raise RetryLater("rasa down", delay=7)

    jobs.handle(Q, down)
    add(queue, "a", "m1")
    jobs.schedule(Q, "a")
    (job,) = sent(broker)
    run(jobs, job)
    (retry,) = sent(broker, "drain.DQ")
    plan = queue.planned("a")
    assert plan is not None and retry.args == (Q, "a", plan.token) and plan.token != job.args[2]


# the reply lane ---------------------------------------------------------------------------


@pytest.fixture
def two_lanes(broker: StubBroker, redis_client: redis.Redis) -> tuple[Jobs, KeyedQueue, KeyedQueue]:
    inbound = KeyedQueue(redis_client, "t:q", "inbound", lease_seconds=1)
    outbound = KeyedQueue(redis_client, "t:q", "outbound", lease_seconds=1)
    return Jobs(broker, {"inbound": inbound, "outbound": outbound}), inbound, outbound


def test_reply_drains_go_to_their_own_job_queue_and_the_dialogue_ones_stay_on_drain(
    two_lanes: tuple[Jobs, KeyedQueue, KeyedQueue], broker: StubBroker
) -> None:
    jobs, _, _ = two_lanes
    jobs.schedule("inbound", "a")
    jobs.schedule("outbound", "sms:+1")
    assert [m.args[:2] for m in sent(broker, DRAIN_QUEUE)] == [("inbound", "a")]
    (reply,) = sent(broker, REPLY_QUEUE)
    assert reply.args[:2] == ("outbound", "sms:+1") and reply.actor_name == REPLY_QUEUE
    assert jobs.job_queues == {DRAIN_QUEUE, REPLY_QUEUE}


def test_a_reply_job_runs_the_reply_drain_with_the_same_plan_and_token_checks(
    two_lanes: tuple[Jobs, KeyedQueue, KeyedQueue], broker: StubBroker
) -> None:
    jobs, _, outbound = two_lanes
    seen: list[str] = []
    jobs.handle("outbound", lambda e: seen.append(e.payload))
    add(outbound, "sms:+1", "r1")
    jobs.schedule("outbound", "sms:+1")
    jobs.schedule("outbound", "sms:+1", force=True)
    old, new = sent(broker, REPLY_QUEUE)
    run(jobs, old)
    assert seen == []
    run(jobs, new)
    assert seen == ["r1"] and outbound.planned("sms:+1") is None


def test_an_overdue_reply_job_is_sent_again_on_the_reply_queue(
    two_lanes: tuple[Jobs, KeyedQueue, KeyedQueue], broker: StubBroker
) -> None:
    jobs, _, outbound = two_lanes
    add(outbound, "sms:+1", "r1")
    jobs.schedule("outbound", "sms:+1")
    sent(broker, REPLY_QUEUE)  # lost
    token = outbound.planned("sms:+1").token  # type: ignore[union-attr]
    outbound.replan("sms:+1", token, due=time.time() - 10)
    assert jobs.resend_overdue(grace_seconds=5) == 1
    assert sent(broker, DRAIN_QUEUE) == []
    (again,) = sent(broker, REPLY_QUEUE)
    assert again.args == ("outbound", "sms:+1", token)


def test_a_busy_reply_key_is_looked_at_again_on_the_reply_queue(
    two_lanes: tuple[Jobs, KeyedQueue, KeyedQueue], broker: StubBroker, redis_client: redis.Redis
) -> None:
    jobs, _, outbound = two_lanes
    jobs.handle("outbound", lambda e: None)
    add(outbound, "sms:+1", "r1")
    redis_client.set("t:q:outbound:sms:+1:lock", "another-drain", px=5000)
    jobs.schedule("outbound", "sms:+1")
    (job,) = sent(broker, REPLY_QUEUE)
    run(jobs, job)
    (retry,) = sent(broker, f"{REPLY_QUEUE}.DQ")
    assert retry.args == job.args and sent(broker, "drain.DQ") == []


def test_lanes_can_be_set_explicitly(broker: StubBroker, redis_client: redis.Redis) -> None:
    webhooks = KeyedQueue(redis_client, "t:q", "webhooks")
    outbound = KeyedQueue(redis_client, "t:q", "outbound")
    jobs = Jobs(broker, {"webhooks": webhooks, "outbound": outbound}, lanes={"webhooks": REPLY_QUEUE})
    assert jobs.lane("webhooks") == REPLY_QUEUE and jobs.lane("outbound") == DRAIN_QUEUE
