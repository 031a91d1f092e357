"""The embedded Redis asks for a password that every process of the product (and Rasa) has."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.config import Config, load_config
from bot.errors import ConfigError
from bot.runtime.launch import child_env, process_specs, redis_spec
from bot.runtime.supervisor import ManagedProcess
from bot.store.connection import (
    Keys,
    connect,
    embedded_redis_password,
    redis_address,
    redis_display_url,
    redis_url,
)
from tests.conftest import ROOT, TEST_SECRETS, free_port, wait_for, write_config


def embedded_config(folder: Path) -> Config:
    """A configuration with no REDIS_URL: the product runs its own Redis."""
    path = write_config(folder, {"redis": {"embedded_port": free_port(), "data_dir": str(folder / "redis")}})
    return load_config(path, TEST_SECRETS)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Config]:
    """The embedded Redis, started as ``debtbot run`` starts it."""
    config = embedded_config(tmp_path)
    process = ManagedProcess(redis_spec(config, child_env(config)), io.StringIO())
    process.start()
    try:
        spec = process.spec
        assert spec.ready is not None
        wait_for(spec.ready, timeout=30, what="embedded redis")
        yield config
    finally:
        process.stop()


def test_embedded_redis_refuses_a_client_without_the_password(embedded: Config) -> None:
    port = embedded.redis.embedded_port
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, password="not-the-password").ping()


def test_the_product_connects_to_the_embedded_redis_with_its_password(embedded: Config) -> None:
    client = connect(embedded)
    client.set("debtbot:probe", "1")
    assert client.get("debtbot:probe") == b"1"
    # Every child gets the same URL, the password with it.
    env = child_env(embedded)
    assert redis.Redis.from_url(env["REDIS_URL"]).ping()
    assert env["DEBTBOT_REDIS_PASSWORD"] == embedded_redis_password(embedded)


def _endpoints_as_rasa_reads_them(config: Config) -> Any:
    """rasa_project/endpoints.yml read by Rasa in the environment ``debtbot run`` gives it."""
    from rasa.core.utils import AvailableEndpoints

    saved = dict(os.environ)
    os.environ.update(child_env(config))
    try:
        return AvailableEndpoints.read_endpoints(str(ROOT / "rasa_project" / "endpoints.yml"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_rasa_tracker_and_lock_stores_connect_with_the_password(embedded: Config) -> None:
    from rasa.core.lock_store import LockStore
    from rasa.core.tracker_store import TrackerStore

    endpoints = _endpoints_as_rasa_reads_them(embedded)
    tracker_store = TrackerStore.create(endpoints.tracker_store)
    assert tracker_store.red.ping()
    lock_store = LockStore.create(endpoints.lock_store)
    assert lock_store.red.ping()
    assert endpoints.action is not None
    assert endpoints.action.headers == {"Authorization": f"Bearer {TEST_SECRETS['DEBTBOT_ACTIONS_TOKEN']}"}


def test_rasas_event_broker_writes_onto_the_products_stream_with_the_password(embedded: Config) -> None:
    import asyncio

    from rasa.core.brokers.broker import EventBroker

    endpoints = _endpoints_as_rasa_reads_them(embedded)
    broker = asyncio.run(EventBroker.create(endpoints.event_broker))
    assert broker is not None and broker.is_ready()
    broker.publish({"sender_id": "acct-A1", "event": "user", "text": "hello"})
    [(_, fields)] = connect(embedded).xrange(Keys(embedded.redis.key_prefix).rasa_events)
    assert fields[b"sender_id"] == b"acct-A1" and json.loads(fields[b"data"])["text"] == "hello"


def test_redis_password_is_made_once_private_and_reused(tmp_path: Path) -> None:
    config = embedded_config(tmp_path)
    first = embedded_redis_password(config)
    again = load_config(config.source, TEST_SECRETS)
    assert embedded_redis_password(again) == first and len(first) >= 32
    path = tmp_path / "var" / "redis-password"
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)  # loosened by hand: tightened again, the password kept
    assert embedded_redis_password(config) == first
    assert path.stat().st_mode & 0o777 == 0o600


def test_unusable_password_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    config = embedded_config(tmp_path)
    path = tmp_path / "var" / "redis-password"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('short "pw"\n')
    with pytest.raises(ConfigError, match="redis-password"):
        redis_url(config)


def test_no_secret_is_on_a_command_line(tmp_path: Path, trained_model: Path) -> None:
    config = embedded_config(tmp_path)
    specs = process_specs(config, trained_model)
    command_lines = " ".join(" ".join(spec.argv) for spec in specs)
    for secret in (*TEST_SECRETS.values(), embedded_redis_password(config)):
        assert secret not in command_lines
    [redis_process] = [spec for spec in specs if spec.name == "redis"]
    auth_file = Path(redis_process.argv[1])
    assert auth_file.read_text() == f"requirepass {embedded_redis_password(config)}\n"
    assert auth_file.stat().st_mode & 0o777 == 0o600


def test_external_redis_is_used_with_its_password_or_tls_as_given(tmp_path: Path) -> None:
    path = write_config(tmp_path, {})
    url = "rediss://app:s%40cret@redis.internal:6380/2"
    config = load_config(path, {**TEST_SECRETS, "REDIS_URL": url})
    assert redis_url(config) == url
    address = redis_address(config)
    assert (address.host, address.port, address.db) == ("redis.internal", 6380, 2)
    assert (address.username, address.password, address.tls) == ("app", "s@cret", True)
    env = child_env(config)
    assert (env["DEBTBOT_REDIS_SSL"], env["DEBTBOT_REDIS_PASSWORD"]) == ("1", "s@cret")
    assert not (tmp_path / "var" / "redis-password").exists()  # none made for an external one


def test_banner_url_never_shows_the_password() -> None:
    assert redis_display_url("redis://:hunter2@127.0.0.1:6390/0") == "redis://:***@127.0.0.1:6390/0"
    assert redis_display_url("rediss://u:p@h:1/0") == "rediss://u:***@h:1/0"
    assert redis_display_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
