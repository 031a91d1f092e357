"""Replies have their own lane: with every dialogue thread stuck waiting on Rasa, a reply
still goes out at once. And an idle worker starts a new job within milliseconds (woken by
it, not at its next poll), yet stops promptly."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.config import Config, load_config
from bot.runtime.services import Services, build_services
from bot.runtime.worker import Worker
from bot.store.intake import INBOUND, OUTBOUND
from bot.store.queues import Entry
from tests.conftest import TEST_SECRETS, wait_for, write_config

IDLE_POLL_SECONDS = 5  # far longer than any wait these tests allow: only a wake-up is quick


def lanes_config(tmp_path: Path, url: str, **worker: Any) -> Config:
    settings = {"threads": 2, "outbound_threads": 1, "idle_poll_seconds": IDLE_POLL_SECONDS} | worker
    path = write_config(tmp_path, {"worker": settings})
    return load_config(path, {"REDIS_URL": url, **TEST_SECRETS})


class StuckRasa:
    """An inbound handler that blocks, as a drain waiting on a slow Rasa, until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.waiting: list[str] = []

    def __call__(self, entry: Entry) -> None:
        self.waiting.append(entry.payload)
        self.release.wait(30)


class Timed:
    """A handler that records when each entry started."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def __call__(self, entry: Entry) -> None:
        self.started[entry.payload] = time.monotonic()


def accept(services: Services, queue: str, key: str, payload: str) -> None:
    keyed = services.inbound if queue == INBOUND else services.outbound
    keyed.append(key, payload, dedupe_key=f"t:dd:{payload}", dedupe_ttl_seconds=60)
    services.jobs.schedule(queue, key)


@pytest.fixture
def worker(tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> Iterator[Worker]:
    running = Worker(build_services(lanes_config(tmp_path, redis_url)), worker_id="w-lanes", maintain=False)
    yield running
    running.stop(timeout=5)


def test_a_reply_goes_out_at_once_while_every_dialogue_thread_waits_on_rasa(worker: Worker) -> None:
    services = worker.services
    rasa, sends = StuckRasa(), Timed()
    services.jobs.handle(INBOUND, rasa)
    services.jobs.handle(OUTBOUND, sends)
    worker.start()
    try:
        for n in range(3):  # two threads stuck, one more conversation queued behind them
            accept(services, INBOUND, f"in{n}", f"hello{n}")
        wait_for(lambda: len(rasa.waiting) == 2, timeout=5, interval=0.01, what="both dialogue threads busy")
        sent_at = time.monotonic()
        accept(services, OUTBOUND, "sms:+15550001", "reply")
        wait_for(lambda: "reply" in sends.started, timeout=3, interval=0.005, what="the reply sent")
        assert sends.started["reply"] - sent_at < 0.5
        assert len(rasa.waiting) == 2  # the dialogue lane is still stuck
    finally:
        rasa.release.set()
    wait_for(lambda: len(rasa.waiting) == 3, timeout=5, what="the queued conversation")


def test_an_idle_worker_starts_a_new_job_within_milliseconds_not_at_its_next_poll(worker: Worker) -> None:
    services = worker.services
    handled = Timed()
    services.jobs.handle(INBOUND, handled)
    services.jobs.handle(OUTBOUND, handled)
    worker.start()
    time.sleep(0.3)  # idle: every consumer blocked on its wake-up list
    for n, queue in enumerate([INBOUND, OUTBOUND, INBOUND, OUTBOUND]):
        sent_at = time.monotonic()
        accept(services, queue, f"k{n}", f"m{n}")
        wait_for(lambda n=n: f"m{n}" in handled.started, timeout=3, interval=0.002, what=f"job {n}")
        assert handled.started[f"m{n}"] - sent_at < 0.5  # the idle poll is 5 s
        time.sleep(0.2)


def test_every_reply_thread_and_consumer_is_reported_and_restarted_when_dead(worker: Worker) -> None:
    worker.start()
    states = worker.thread_states()
    assert {"consumer:drain", "consumer:drain.DQ", "consumer:drain_outbound", "consumer:drain_outbound.DQ",
            "job-thread-1", "job-thread-2", "reply-thread-1"} <= set(states)  # fmt: skip
    assert "job-thread-3" not in states and "reply-thread-2" not in states
    reply_lane = worker._lanes["drain_outbound"][0]
    reply_lane.workers[0].stop()
    reply_lane.workers[0].join(5)
    assert worker.thread_states()["reply-thread-1"] is False
    assert worker.supervise() == ["reply-thread"]
    wait_for(lambda: all(worker.thread_states().values()), timeout=3, what="all alive")


def test_an_idle_worker_stops_promptly_although_it_polls_rarely(worker: Worker) -> None:
    worker.start()
    time.sleep(0.3)
    started = time.monotonic()
    worker.stop(timeout=5)
    assert time.monotonic() - started < 2.0
