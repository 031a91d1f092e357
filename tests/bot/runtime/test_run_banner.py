"""What `make run` says about the console: an example supervisor in development (made once, its
password kept private and reused), never in production, where it says how to make the first."""

from __future__ import annotations

import io

import redis

from bot.clock import Clock
from bot.console.agents import AgentDirectory, Role
from bot.runtime.run import EXAMPLE_SUPERVISOR_FILE, _banner, _example_supervisor
from bot.runtime.supervisor import Supervisor
from bot.store.connection import Keys
from tests.conftest import ConfigFactory


def _supervisor() -> tuple[Supervisor, io.StringIO]:
    out = io.StringIO()
    supervisor = Supervisor([])
    supervisor.out = out
    return supervisor, out


def test_production_never_makes_an_example_supervisor(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    config = make_config()
    production = config.copy(update={"environment": "production"})
    production._secrets, production._base_dir = config.secrets, config.base_dir
    assert production.production
    supervisor, _ = _supervisor()
    assert _example_supervisor(production, supervisor) is None
    assert not production.path(EXAMPLE_SUPERVISOR_FILE).exists()
    assert AgentDirectory(redis_client, Keys(config.redis.key_prefix), Clock()).list() == []


def test_development_makes_one_example_supervisor_who_can_sign_in(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes], redis_url: str
) -> None:
    config = make_config()
    supervisor, out = _supervisor()
    first = _example_supervisor(config, supervisor)
    assert first is not None
    name, password = first
    again = _example_supervisor(config, supervisor)
    assert again == first  # the same sign-in on the next start
    saved = config.path(EXAMPLE_SUPERVISOR_FILE)
    assert saved.stat().st_mode & 0o777 == 0o600
    directory = AgentDirectory(redis.Redis.from_url(redis_url), Keys(config.redis.key_prefix), Clock())
    agent = directory.verify(name, password)
    assert agent is not None and agent.role is Role.SUPERVISOR
    _banner(config, supervisor, 1.0, first)
    assert (
        f"console    {config.server.internal_url}/console/  (sign in as {name} / {password}" in out.getvalue()
    )


def test_without_an_example_the_banner_says_how_to_make_the_first_supervisor(
    make_config: ConfigFactory,
) -> None:
    supervisor, out = _supervisor()
    _banner(make_config(), supervisor, 1.0, None)
    assert "(the first supervisor: debtbot agents add NAME --role supervisor)" in out.getvalue()
    assert "sign in as" not in out.getvalue()
