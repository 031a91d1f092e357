"""The action server on the tests' clock: with ``DEBTBOT_TEST_CLOCK_FILE`` it reads the time the
tests set (so an escalation it makes is timed as the gateway and worker time everything else);
without it, the system clock; in production, never a test clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis

from bot.clock import CLOCK_FILE_ENV, FileClock, publish
from bot.errors import ConfigError
from bot.runtime.action_server import clock_for
from bot.runtime.services import build_services
from tests.conftest import ConfigFactory

MOMENT = datetime(2026, 12, 7, 20, 0, tzinfo=timezone.utc)


def test_the_action_server_follows_the_moment_the_tests_write(
    make_config: ConfigFactory, tmp_path: Path
) -> None:
    path = tmp_path / "now"
    clock = clock_for(make_config(), {CLOCK_FILE_ENV: str(path)})
    assert isinstance(clock, FileClock)
    publish(path, MOMENT)
    assert clock.now() == MOMENT and clock.is_set
    publish(path, MOMENT + timedelta(hours=15))  # the tests move their clock: it follows at once
    assert clock.now() == MOMENT + timedelta(hours=15)
    clock.advance(timedelta(minutes=1))  # and what it moves, every reader sees
    assert FileClock(path).now() == MOMENT + timedelta(hours=15, minutes=1)


def test_an_escalation_made_by_the_action_server_is_timed_by_the_tests_clock(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes], tmp_path: Path
) -> None:
    path = tmp_path / "now"
    publish(path, MOMENT)
    config = make_config()
    services = build_services(config, redis_client, clock_for(config, {CLOCK_FILE_ENV: str(path)}))
    services.escalate("acct-ACC-1005", "asked_for_person")
    assert services.handoff.waiting_since("acct-ACC-1005") == MOMENT


def test_without_the_setting_the_action_server_runs_on_the_system_clock(make_config: ConfigFactory) -> None:
    clock = clock_for(make_config(), {})
    before = datetime.now(timezone.utc)
    assert not clock.is_set and before <= clock.now() <= datetime.now(timezone.utc)


def test_before_the_tests_write_a_moment_the_file_clock_is_the_system_clock(tmp_path: Path) -> None:
    clock = FileClock(tmp_path / "not-yet")
    before = datetime.now(timezone.utc)
    assert not clock.is_set and before <= clock.now() <= datetime.now(timezone.utc)


def test_production_never_runs_on_a_test_clock(make_config: ConfigFactory, tmp_path: Path) -> None:
    config = make_config()
    production = config.copy(update={"environment": "production"})
    production._secrets, production._base_dir = config.secrets, config.base_dir
    with pytest.raises(ConfigError, match=CLOCK_FILE_ENV):
        clock_for(production, {CLOCK_FILE_ENV: str(tmp_path / "now")})
