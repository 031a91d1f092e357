"""/healthz reports each dependency and answers 503 when one is down."""

from __future__ import annotations

import time
from typing import Any

import redis

from bot.gateway.app import create_app
from bot.gateway.health import newest_heartbeat_age
from bot.runtime.services import Services, build_services
from bot.runtime.worker import Worker
from bot.store.jobs import publish_state
from tests.conftest import ConfigFactory, free_port, wait_for


def checks(services: Services) -> tuple[int, dict[str, Any]]:
    answer = create_app(services.config, services).test_client().get("/healthz")
    return answer.status_code, answer.get_json()["checks"]


def test_everything_down_but_redis_is_503_with_each_check(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    config = make_config(
        rasa={"url": f"http://127.0.0.1:{free_port()}", "actions_url": f"http://127.0.0.1:{free_port()}"}
    )
    client = create_app(config, build_services(config, redis_client)).test_client()
    answer = client.get("/healthz")
    report = answer.get_json()
    assert answer.status_code == 503 and report["status"] == "down"
    assert report["checks"]["redis"]["ok"] is True
    assert report["checks"]["rasa"]["ok"] is False and "unreachable" in report["checks"]["rasa"]["error"]
    assert report["checks"]["actions"]["ok"] is False
    assert report["checks"]["worker"] == {
        "ok": False,
        "error": "no worker has ever reported",
        "latency_ms": report["checks"]["worker"]["latency_ms"],
    }
    assert report["checks"]["queues"]["ok"] is True
    assert report["checks"]["queues"]["inbound"] == {"waiting_conversations": 0, "oldest_wait_s": None}
    assert report["channels"] == {"sms": "sandbox", "telegram": "sandbox", "email": "sandbox"}


def test_worker_check_follows_the_newest_heartbeat(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    config = make_config(worker={"heartbeat_seconds": 1})
    services = build_services(config, redis_client)
    redis_client.zadd(services.keys.worker_heartbeats, {"w1": time.time() - 100, "w2": time.time() - 1})
    age = newest_heartbeat_age(redis_client, services.keys.worker_heartbeats)
    assert age is not None and 0.5 < age < 5
    report = create_app(config, services).test_client().get("/healthz").get_json()
    assert report["checks"]["worker"]["ok"] is True
    redis_client.zadd(services.keys.worker_heartbeats, {"w2": time.time() - 10})
    report = create_app(config, services).test_client().get("/healthz").get_json()
    assert report["checks"]["worker"]["ok"] is False


def test_redis_down_is_reported_not_raised(make_config: ConfigFactory) -> None:
    config = make_config()
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    answer = create_app(config, build_services(config, dead)).test_client().get("/healthz")
    assert answer.status_code == 503
    assert answer.get_json()["checks"]["redis"]["ok"] is False


def test_a_message_waiting_longer_than_max_wait_fails_healthz(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    services = build_services(make_config(worker={"max_wait_seconds": 0.5}), redis_client)
    services.inbound.append("sms-a", "{}", dedupe_key="t:dd:1", dedupe_ttl_seconds=60)  # no worker drains it

    def failing() -> dict[str, Any]:
        status, report = checks(services)
        return report["queues"] if status == 503 and not report["queues"]["ok"] else {}

    queues = wait_for(failing, timeout=5, what="the queue check to fail")
    assert queues["inbound"]["waiting_conversations"] == 1 and queues["inbound"]["oldest_wait_s"] > 0.5
    assert queues["outbound"] == {"waiting_conversations": 0, "oldest_wait_s": None}
    services.inbound.drain("sms-a", lambda e: None)
    assert checks(services)[1]["queues"]["ok"] is True


def test_a_worker_with_a_dead_thread_fails_healthz_until_it_is_started_again(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    services = build_services(make_config(), redis_client)
    worker = Worker(services, worker_id="w1", maintain=False)  # the test beats and supervises
    worker.start()
    try:
        worker.beat()
        assert checks(services)[1]["worker"]["ok"] is True
        consumer = worker._dramatiq.consumers["drain.DQ"]
        consumer.stop()
        consumer.join(5)
        worker.beat()
        status, report = checks(services)
        assert status == 503 and report["worker"]["ok"] is False
        assert report["worker"]["workers"]["w1"]["dead_threads"] == ["consumer:drain.DQ"]
        assert worker.supervise() == ["consumer:drain.DQ"]
        worker.beat()
        report = checks(services)[1]["worker"]
        assert report["ok"] is True and report["workers"]["w1"]["thread_restarts"] == 1
    finally:
        worker.stop(timeout=5)


def test_only_live_workers_count_for_dead_threads(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    services = build_services(make_config(worker={"heartbeat_seconds": 1}), redis_client)
    now = time.time()
    publish_state(redis_client, services.keys, "gone", {"consumer:drain": False}, restarts=0, now=now - 60)
    publish_state(redis_client, services.keys, "here", {"consumer:drain": True}, restarts=0, now=now)
    report = checks(services)[1]["worker"]
    assert report["ok"] is True and list(report["workers"]) == ["here"]


def test_with_several_rasa_servers_each_is_checked_and_all_must_answer(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    rasa, actions = free_port(), free_port()
    config = make_config(rasa={"url": f"http://127.0.0.1:{rasa}", "actions_url": f"http://127.0.0.1:{actions}",
                               "processes": 2})  # fmt: skip
    _, report = checks(build_services(config, redis_client))
    assert report["rasa"]["ok"] is False and report["actions"]["ok"] is False
    assert sorted(report["rasa"]["servers"]) == [
        f"http://127.0.0.1:{rasa}/status", f"http://127.0.0.1:{rasa + 1}/status",
    ]  # fmt: skip
    assert len(report["actions"]["servers"]) == 2
