"""After a Sentinel failover the supervisor restarts the Rasa servers (only them) with the new
master's address; nothing happens while the master stays, or while no sentinel answers."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.runtime.redis_watch import RASA_SERVER_MODULE, MasterWatch, watch_redis_master
from bot.runtime.supervisor import ProcessSpec, Supervisor
from tests.conftest import ConfigFactory, wait_for

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]
OLD = ("10.0.0.1", 6379)
NEW = ("10.0.0.2", 6380)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    env = {"DEBTBOT_REDIS_HOST": OLD[0], "DEBTBOT_REDIS_PORT": str(OLD[1])}
    specs = [
        ProcessSpec("rasa1", [*SLEEP, RASA_SERVER_MODULE], dict(env), tmp_path, stop_timeout=2),
        ProcessSpec("rasa2", [*SLEEP, RASA_SERVER_MODULE], dict(env), tmp_path, stop_timeout=2),
        ProcessSpec("actions", [*SLEEP, "bot.runtime.action_server"], dict(env), tmp_path, stop_timeout=2),
    ]
    made = Supervisor(specs, out=io.StringIO())
    made.start()
    yield made
    made.stop()


def pids(supervisor: Supervisor) -> dict[str, int | None]:
    return supervisor.pids()


def said(supervisor: Supervisor) -> str:
    out = supervisor.out
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def test_the_rasa_servers_restart_with_the_new_master_and_nothing_else_does(supervisor: Supervisor) -> None:
    answers = [OLD, NEW, NEW]
    watch = MasterWatch(supervisor, lambda: answers.pop(0), OLD)
    before = pids(supervisor)
    watch.check()
    assert pids(supervisor) == before
    watch.check()
    after = pids(supervisor)
    assert after["rasa1"] != before["rasa1"] and after["rasa2"] != before["rasa2"]
    assert after["actions"] == before["actions"]
    for process in supervisor.processes:  # any later restart gets the new address too
        assert (process.spec.env["DEBTBOT_REDIS_HOST"], process.spec.env["DEBTBOT_REDIS_PORT"]) == (
            "10.0.0.2",
            "6380",
        )
        assert process.alive() and process.restarts == []
    assert "restarting rasa1: the Redis master moved from 10.0.0.1:6379 to 10.0.0.2:6380" in said(supervisor)
    watch.check()
    assert pids(supervisor) == after


def test_no_sentinel_answering_is_said_once_and_restarts_nothing(supervisor: Supervisor) -> None:
    def unreachable() -> tuple[str, int]:
        raise redis.ConnectionError("No master found for 'debtbot'")

    watch = MasterWatch(supervisor, unreachable, OLD)
    before = pids(supervisor)
    watch.check()
    watch.check()
    assert pids(supervisor) == before
    assert said(supervisor).count("no sentinel names the master now") == 1
    assert watch.current == OLD


def test_the_supervisor_runs_the_watch_every_few_seconds_and_survives_a_failing_one(
    supervisor: Supervisor,
) -> None:
    looks: list[int] = []

    def broken() -> None:
        raise RuntimeError("a bug")

    supervisor.every(0.1, lambda: looks.append(1))
    supervisor.every(0.1, broken)
    thread = threading.Thread(target=supervisor.watch, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(looks) >= 2, timeout=10, what="two looks")
    finally:
        supervisor.request_stop()
        thread.join(5)
    assert "failed: RuntimeError('a bug')" in said(supervisor)


def test_with_one_redis_server_there_is_nothing_to_watch(
    make_config: ConfigFactory, supervisor: Supervisor
) -> None:
    assert watch_redis_master(make_config(), supervisor) is None


def test_with_a_sentinel_url_the_watch_starts_from_the_address_the_processes_were_given(
    make_config: ConfigFactory, supervisor: Supervisor
) -> None:
    config = make_config(env={"REDIS_URL": "redis+sentinel://:pw@127.0.0.1:1/debtbot/0"})
    watch = watch_redis_master(config, supervisor, every=3600)
    assert watch is not None and watch.current == OLD
