"""/healthz reports each dependency and answers 503 when one is down."""

from __future__ import annotations

import time

import redis

from bot.app import create_app
from bot.health import newest_heartbeat_age
from bot.services import build_services
from tests.conftest import ConfigFactory, free_port


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
