"""What `make run` says about the console: its URL and how to create the first supervisor, always;
in development also an example supervisor's sign-in (made once, its password kept private and
reused), never in production."""

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
    supervisor, out = _supervisor()
    _banner(config, supervisor, 1.0, first)
    console = _console_lines(out.getvalue())
    assert console[0].endswith(
        f"console    {config.server.internal_url}/console/  "
        "(the first supervisor: debtbot agents add NAME --role supervisor)"
    )
    assert console[1].endswith(f"(sign in as {name} / {password}: an example supervisor, development only)")


def test_the_production_banner_says_how_to_make_the_first_supervisor_and_shows_no_sign_in(
    make_config: ConfigFactory,
) -> None:
    config = make_config()
    production = config.copy(update={"environment": "production"})
    production._secrets, production._base_dir = config.secrets, config.base_dir
    supervisor, out = _supervisor()
    # Even handed one by mistake, production never prints a sign-in.
    _banner(production, supervisor, 1.0, ("supervisor", "not-to-be-shown"))
    console = _console_lines(out.getvalue())
    assert console == [
        f"  console    {config.server.internal_url}/console/  "
        "(the first supervisor: debtbot agents add NAME --role supervisor)"
    ]
    assert "sign in as" not in out.getvalue() and "not-to-be-shown" not in out.getvalue()


def _console_lines(printed: str) -> list[str]:
    """The banner's console line and the line that follows it if it is the console's too."""
    lines = [line.split(" | ", 1)[-1] for line in printed.splitlines()]
    at = next(i for i, line in enumerate(lines) if line.lstrip().startswith("console "))
    follow = lines[at + 1 : at + 2]
    return lines[at : at + 1] + [line for line in follow if line.lstrip().startswith("(sign in as")]
