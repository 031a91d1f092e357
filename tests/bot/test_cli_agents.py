"""`debtbot agents add / list / disable`: passwords only at hidden prompts, links, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from bot.cli import main
from bot.clock import Clock
from bot.console.agents import AgentDirectory
from bot.store.connection import Keys
from tests.conftest import TEST_SECRETS, write_config

PASSWORD = "correct horse battery"


@pytest.fixture
def cli(tmp_path: Path, redis_url: str, redis_client: redis.Redis[bytes]):  # type: ignore[no-untyped-def]
    path = write_config(tmp_path, {})
    env = {"REDIS_URL": redis_url, **TEST_SECRETS}

    def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, [*args, "--config", str(path)], input=input, env=env)

    return invoke


def directory(redis_client: redis.Redis[bytes]) -> AgentDirectory:
    return AgentDirectory(redis_client, Keys("debtbot"), Clock())


def test_add_asks_for_the_password_twice_and_hides_it(cli, redis_client: redis.Redis[bytes]) -> None:  # type: ignore[no-untyped-def]
    result = cli("agents", "add", "maria", "--role", "supervisor", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output + result.stderr
    assert "agent maria added (supervisor)" in result.stdout
    assert PASSWORD not in result.stdout  # hidden input is not echoed
    agent = directory(redis_client).verify("maria", PASSWORD)
    assert agent is not None and agent.role.value == "supervisor"


def test_a_mistyped_confirmation_is_asked_again(cli, redis_client: redis.Redis[bytes]) -> None:  # type: ignore[no-untyped-def]
    result = cli("agents", "add", "maria", input=f"{PASSWORD}\nsomething else\n{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output + result.stderr
    assert directory(redis_client).verify("maria", PASSWORD) is not None


def test_link_prints_a_one_time_set_password_path(cli, redis_client: redis.Redis[bytes]) -> None:  # type: ignore[no-untyped-def]
    result = cli("agents", "add", "john", "--link")
    assert result.exit_code == 0, result.output + result.stderr
    assert "Password" not in result.stdout
    [line] = [line for line in result.stdout.splitlines() if "/console/set-password/" in line]
    assert "24 h" in line
    token = line.rsplit("/console/set-password/", 1)[1]
    agents = directory(redis_client)
    assert agents.get("john").password_set is False  # type: ignore[union-attr]
    agents.redeem_password_token(token, PASSWORD)
    assert agents.verify("john", PASSWORD) is not None


def test_errors_are_one_line_and_exit_1(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("agents", "add", "maria", input=f"{PASSWORD}\n{PASSWORD}\n").exit_code == 0
    for args, input, message in [
        (("agents", "add", "maria", "--link"), None, "already exists"),
        (("agents", "add", "x"), None, "2 to 32 characters"),
        (("agents", "add", "ana", "--role", "agent"), "short\nshort\n", "at least 12"),
        (("agents", "disable", "nobody"), None, "does not exist"),
    ]:
        result = cli(*args, input=input)
        assert result.exit_code == 1, (args, result.stdout, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert message in line


def test_list_shows_names_roles_and_states_but_no_hashes(cli, redis_client: redis.Redis[bytes]) -> None:  # type: ignore[no-untyped-def]
    cli("agents", "add", "maria", input=f"{PASSWORD}\n{PASSWORD}\n")
    cli("agents", "add", "john", "--role", "supervisor", "--link")
    assert cli("agents", "disable", "maria").exit_code == 0
    result = cli("agents", "list")
    assert result.exit_code == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines == [
        ["name", "role", "disabled", "password"],
        ["john", "supervisor", "no", "not", "set"],
        ["maria", "agent", "yes", "set"],
    ]
    assert "argon2" not in result.stdout
    assert directory(redis_client).verify("maria", PASSWORD) is None


@pytest.mark.parametrize("command", [[], ["add"], ["list"], ["disable"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(main, ["agents", *command, "--help"])
    assert result.exit_code == 0
    assert len(result.output.splitlines()) > 3
