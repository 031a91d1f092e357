"""``debtbot run --role gateway|worker|dialogue [--server N]``: what each role starts, and what it
refuses (no Rasa or Redis is started here)."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from bot import cli
from bot.config import load_config
from bot.errors import ConfigError
from bot.runtime import launch, run
from bot.runtime.launch import ROLES, check_role, role_busy_ports, role_health, role_specs
from bot.runtime.supervisor import SupervisorError
from bot.store.connection import Keys
from bot.store.jobs import publish_state
from tests.conftest import TEST_SECRETS, ConfigFactory, write_config

#: Every interface: what a container's servers listen on.
EVERY = "0.0.0.0"  # noqa: S104

#: Two Rasa servers run elsewhere (containers), each with its own action server.
SERVERS = {
    "urls": ["http://rasa1:5005", "http://rasa2:6005"],
    "actions_urls": ["http://rasa1:5055", "http://rasa2:6055"],
}


def _arg(argv: Sequence[str], flag: str) -> str:
    args = list(argv)
    return args[args.index(flag) + 1]


def test_the_gateway_role_starts_only_the_gateway_on_its_address(make_config: ConfigFactory) -> None:
    config = make_config(server={"host": EVERY, "port": 8123}, rasa=SERVERS)
    [gateway] = role_specs(config, None, "gateway")
    assert gateway.name == "gateway"
    assert _arg(gateway.argv, "--bind") == f"{EVERY}:8123"


def test_the_worker_role_starts_worker_processes_and_nothing_else(make_config: ConfigFactory) -> None:
    config = make_config(worker={"processes": 3}, rasa=SERVERS)
    specs = role_specs(config, None, "worker")
    assert [spec.name for spec in specs] == ["worker1", "worker2", "worker3"]
    assert all(list(spec.argv[-2:]) == ["bot.cli", "worker"] for spec in specs)


def test_the_dialogue_role_starts_the_chosen_server_and_its_own_action_server_on_the_bind_host(
    make_config: ConfigFactory, tmp_path: Path
) -> None:
    config = make_config(rasa={**SERVERS, "bind_host": EVERY})
    rasa, actions = role_specs(config, tmp_path / "model.tar.gz", "dialogue", 2)
    assert (rasa.name, actions.name) == ("rasa2", "actions2")
    # Rasa listens on every interface, on the port of its URL, and calls its own action server.
    assert (_arg(rasa.argv, "--interface"), _arg(rasa.argv, "--port")) == (EVERY, "6005")
    assert rasa.env["DEBTBOT_ACTIONS_URL"] == "http://rasa2:6055"
    # The action server's own configuration puts it on the bind host and its URL's port.
    child = load_config(
        config.source, {**TEST_SECRETS, **{k: v for k, v in actions.env.items() if k.startswith("DEBTBOT__")}}
    )
    assert child.rasa.actions_url == "http://0.0.0.0:6055"


def test_without_a_bind_host_the_servers_listen_on_the_host_of_their_url(
    make_config: ConfigFactory, tmp_path: Path
) -> None:
    config = make_config(rasa={"urls": ["http://127.0.0.1:7005"], "actions_urls": ["http://127.0.0.1:7055"]})
    rasa, actions = role_specs(config, tmp_path / "model.tar.gz", "dialogue")
    assert (rasa.name, _arg(rasa.argv, "--interface"), _arg(rasa.argv, "--port")) == (
        "rasa",
        "127.0.0.1",
        "7005",
    )
    assert actions.env["DEBTBOT__RASA__ACTIONS_URL"] == "http://127.0.0.1:7055"


def test_every_role_but_all_needs_an_external_redis(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, {"rasa": SERVERS}), TEST_SECRETS)
    for role in ("gateway", "worker", "dialogue"):
        with pytest.raises(ConfigError) as caught:
            check_role(config, role, 1 if role == "dialogue" else None)
        assert caught.value.problems[0].startswith(f"REDIS_URL: required with --role {role}")
    check_role(config, "all")  # starts its embedded Redis, as before


@pytest.mark.parametrize(
    ("role", "server", "settings", "words"),
    [
        ("dialogue", None, SERVERS, "--server: which of the 2 Rasa servers of rasa.urls"),
        ("dialogue", 3, SERVERS, "--server 3: rasa.urls has 2 server(s): give 1 to 2"),
        ("dialogue", 1, {"urls": SERVERS["urls"]}, "rasa.actions_urls: --role dialogue starts"),
        ("worker", 1, SERVERS, "--server: only with --role dialogue (not worker)"),
        ("all", 1, SERVERS, "--server: only with --role dialogue (not all)"),
        ("bogus", None, SERVERS, "--role bogus: one of all, gateway, worker, dialogue"),
    ],
)
def test_a_wrong_role_or_server_is_named(
    make_config: ConfigFactory, role: str, server: int | None, settings: dict[str, object], words: str
) -> None:
    config = make_config(rasa=settings)
    with pytest.raises(ConfigError) as caught:
        check_role(config, role, server)
    assert words in str(caught.value)


def test_the_dialogue_role_runs_one_of_rasa_processes_too(make_config: ConfigFactory, tmp_path: Path) -> None:
    config = make_config(rasa={"processes": 2})
    rasa, actions = role_specs(config, tmp_path / "model.tar.gz", "dialogue", 2)
    assert _arg(rasa.argv, "--port") == "5006"
    assert actions.env["DEBTBOT__RASA__ACTIONS_URL"] == "http://127.0.0.1:5056"


@pytest.mark.parametrize("value", ["rasa1", "0.0.0.0:5005", "*"])
def test_a_bind_host_must_be_an_address(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"rasa\.bind_host: must be an IP address"):
        load_config(write_config(tmp_path, {"rasa": {"bind_host": value}}), TEST_SECRETS)


def test_production_refuses_servers_on_every_interface_without_an_actions_token(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"environment": "production", "simulator": {"enabled": False},
                                   "channels": {"sms": {"enabled": False}, "telegram": {"enabled": False},
                                                "email": {"enabled": False}},
                                   "rasa": {"bind_host": EVERY}})  # fmt: skip
    env = {key: value for key, value in TEST_SECRETS.items() if key != "DEBTBOT_ACTIONS_TOKEN"}
    with pytest.raises(
        ConfigError, match=r"the action server on 0\.0\.0\.0 is reachable from other machines"
    ):
        load_config(path, env)
    assert load_config(path, TEST_SECRETS).rasa.bind_host == EVERY


def test_a_role_checks_only_its_own_ports(
    make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(rasa={**SERVERS, "bind_host": EVERY})
    monkeypatch.setattr(launch, "port_in_use", lambda host, port: True)
    assert role_busy_ports(config, "dialogue", 2) == [
        "rasa.urls (server 2): port 6005 is already in use",
        "rasa.actions_urls (server 2): port 6055 is already in use",
    ]
    assert [line.split(":")[0] for line in role_busy_ports(config, "gateway")] == ["server.port"]
    assert role_busy_ports(config, "worker") == []


def test_the_dialogue_role_never_trains(make_config: ConfigFactory, tmp_path: Path) -> None:
    config = make_config(rasa={**SERVERS, "models_dir": str(tmp_path / "no-models")})
    with pytest.raises(SupervisorError, match=r"no trained model .* run `debtbot train` first"):
        run.trained_model(config)
    assert not (tmp_path / "no-models").exists()


def test_role_all_is_debtbot_run_as_before(
    make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config()
    monkeypatch.setattr(run, "run_all", lambda given: 7 if given is config else 0)
    assert run.run_role(config, "all") == 7


# Health checks (the containers')


def test_a_worker_is_healthy_while_this_hosts_workers_beat(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    config = make_config(worker={"processes": 2})
    keys = Keys(config.redis.key_prefix)
    now = time.time()
    here = socket.gethostname()
    publish_state(redis_client, keys, f"{here}:1", {}, restarts=0, now=now)
    publish_state(redis_client, keys, "elsewhere:1", {}, restarts=0, now=now)
    [problem] = role_health(config, "worker", now=now)
    assert problem.startswith(f"worker: 1 of 2 worker(s) on {here} beat")
    publish_state(redis_client, keys, f"{here}:2", {}, restarts=0, now=now)
    assert role_health(config, "worker", now=now) == []
    late = now + 3 * config.worker.heartbeat_seconds + 1
    assert role_health(config, "worker", now=late)


def test_a_dialogue_container_is_healthy_when_its_rasa_and_action_server_answer(
    make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(rasa=SERVERS)
    answering = {"http://rasa2:6005/status", "http://rasa2:6055/health"}
    monkeypatch.setattr(launch, "_http_ok", lambda url, params=None: url in answering)
    assert role_health(config, "dialogue", 2) == []
    assert role_health(config, "dialogue", 1) == [
        "dialogue: Rasa server 1 (http://rasa1:5005) or its action server does not answer"
    ]


def test_a_gateway_is_healthy_when_it_answers_at_all(
    make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(rasa=SERVERS)
    monkeypatch.setattr(launch, "_gateway_answers", lambda base: False)
    assert role_health(config, "gateway") == [
        f"gateway: {config.server.internal_url}/healthz does not answer"
    ]
    monkeypatch.setattr(launch, "_gateway_answers", lambda base: True)
    assert role_health(config, "gateway") == []


# The command line


def test_the_cli_offers_every_role() -> None:
    assert cli.RUN_ROLES == ROLES


def test_the_cli_names_redis_url_and_starts_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, {"rasa": SERVERS})
    monkeypatch.setattr(run, "run_role", lambda *args: pytest.fail("started"))
    for key in ("REDIS_URL", "DEBTBOT_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    result = CliRunner().invoke(
        cli.main, ["run", "--config", str(path), "--role", "dialogue", "--server", "2"], env=TEST_SECRETS
    )
    assert result.exit_code == 2
    assert "REDIS_URL: required with --role dialogue" in result.output


def test_the_cli_refuses_an_unknown_role_and_a_server_below_one() -> None:
    assert CliRunner().invoke(cli.main, ["run", "--role", "rasa"]).exit_code == 2
    assert CliRunner().invoke(cli.main, ["run", "--role", "dialogue", "--server", "0"]).exit_code == 2


def test_the_health_flag_reports_and_starts_nothing(
    make_config: ConfigFactory, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(rasa=SERVERS)
    monkeypatch.setattr(run, "run_role", lambda *args: pytest.fail("started"))
    monkeypatch.setattr(launch, "_http_ok", lambda url, params=None: "rasa1" in url)
    args = ["run", "--config", str(config.source), "--role", "dialogue", "--health", "--server"]
    env = {**TEST_SECRETS, "REDIS_URL": redis_url}
    assert CliRunner().invoke(cli.main, [*args, "1"], env=env).exit_code == 0
    sick = CliRunner().invoke(cli.main, [*args, "2"], env=env)
    assert sick.exit_code == 1 and "Rasa server 2" in sick.output
