"""deploy/: the container image and the compose file, read as files (no Docker engine here): each
service runs a real ``debtbot run`` invocation, gets an environment that makes a valid production
configuration naming exactly the compose's Rasa servers, and no secret is written inline."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask

from bot import cli
from bot.config import Config, load_config
from bot.gateway.health import health_blueprint
from bot.runtime import launch
from bot.runtime.launch import role_health
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
#: What the env files (deploy/*.env, copied from the examples) would hold: made-up values.
FAKE_SECRETS = {
    "REDIS_URL": "redis://:redis-password@redis:6379/0",
    "DATABASE_URL": "postgresql://debtbot:pg-password@postgres:5432/debtbot",
    "RASA_AUTH_TOKEN": "rasa-token",
    "DEBTBOT_SECRET_KEY": "secret-key",
    "DEBTBOT_ACTIONS_TOKEN": "actions-token",
    "EMAIL_WEBHOOK_SECRET": "email-secret",
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "twilio-token",
    "TELEGRAM_BOT_TOKEN": "123:telegram-token",
    "TELEGRAM_WEBHOOK_SECRET": "telegram-secret",
}
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|_KEY|_SID)$|^(REDIS|DATABASE)_URL$")


def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` with nothing set in the shell: the default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def debtbot_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if s.get("image", "").startswith("debtbot")}


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    return {key: interpolate(str(value)) for key, value in service.get("environment", {}).items()}


def dockerfile() -> dict[str, str]:
    """Each instruction's last occurrence (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            instruction, _, rest = line.strip().partition(" ")
            found[instruction.upper()] = (
                rest if instruction.upper() != "RUN" else found.get("RUN", "") + "\n" + rest
            )
    return found


def parse_run(args: list[str]) -> dict[str, Any]:
    """``debtbot ARGS`` parsed by the real command line (unknown options and roles fail)."""
    assert args[0] in cli.main.commands, args
    context = cli.main.commands[args[0]].make_context(args[0], list(args[1:]))
    return dict(context.params)


def service_config(service: Mapping[str, Any]) -> Config:
    return load_config(ROOT / "config.yaml", {**environment(service), **FAKE_SECRETS})


def test_the_topology_is_one_redis_gateways_behind_a_balancer_workers_and_listed_rasa_servers() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", "postgres", "gateway", "worker", "rasa1", "rasa2", "lb"}
    assert services["gateway"]["deploy"]["replicas"] >= 2 and services["worker"]["deploy"]["replicas"] >= 2
    # Rasa servers are listed, never scaled anonymously (each conversation is pinned by URL).
    assert all("deploy" not in services[name] for name in ("rasa1", "rasa2"))
    assert set(debtbot_services()) == {"gateway", "worker", "rasa1", "rasa2"}


def test_every_command_and_health_check_is_a_real_debtbot_run_of_the_services_role() -> None:
    entrypoint = yaml.safe_load(dockerfile()["ENTRYPOINT"])
    assert entrypoint == ["debtbot"]
    expected = {"gateway": ("gateway", None), "worker": ("worker", None),
                "rasa1": ("dialogue", 1), "rasa2": ("dialogue", 2)}  # fmt: skip
    for name, service in debtbot_services().items():
        params = parse_run(service["command"])
        assert (params["role"], params["server"], params["health"]) == (*expected[name], False), name
        check = service["healthcheck"]["test"]
        assert check[:2] == ["CMD", "debtbot"], name
        assert parse_run(check[2:]) == {**params, "health": True}, name


def test_the_images_default_command_and_health_check_are_the_gateways() -> None:
    found = dockerfile()
    command = parse_run(yaml.safe_load(found["CMD"]))
    check = found["HEALTHCHECK"].split(" CMD ", 1)[1]
    assert command["role"] == "gateway"
    assert parse_run(yaml.safe_load(check)[1:]) == {**command, "health": True}
    # ...whose endpoint the gateway serves.
    app = Flask(__name__)
    app.register_blueprint(health_blueprint(None))  # type: ignore[arg-type]
    assert "/healthz" in {rule.rule for rule in app.url_map.iter_rules()}


def test_the_image_is_locked_non_root_and_has_its_model() -> None:
    found = dockerfile()
    assert found["FROM"] == "python:3.10-slim-bookworm"
    assert "uv sync --frozen --no-dev" in found["RUN"]
    assert "debtbot train" in found["RUN"]
    assert found["USER"] not in ("root", "0")
    assert (ROOT / "deploy" / "Dockerfile.dockerignore").exists()


def test_each_service_gets_a_valid_production_configuration_naming_the_compose_rasa_servers() -> None:
    services = compose()["services"]
    rasa_services = sorted(name for name in debtbot_services() if name.startswith("rasa"))
    for name, service in debtbot_services().items():
        config = service_config(service)
        assert config.production and not config.simulator.enabled, name
        assert config.secrets.redis_url == FAKE_SECRETS["REDIS_URL"]
        assert config.rasa.urls == [f"http://{rasa}:5005" for rasa in rasa_services], name
        assert config.rasa.actions_urls == [f"http://{rasa}:5055" for rasa in rasa_services], name
        assert config.server.port == 8000 and config.server.trusted_proxies == 1
    for rasa in rasa_services:
        # The n-th server of the list is the service that runs --server n, on the ports it exposes.
        server = parse_run(services[rasa]["command"])["server"]
        config = service_config(services[rasa])
        assert config.rasa.urls[server - 1] == f"http://{rasa}:5005"
        assert {"5005", "5055"} <= set(services[rasa]["expose"])
    nginx = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    assert "http://gateway:8000" in nginx and "8000" in compose()["services"]["gateway"]["expose"]


def test_a_dialogue_containers_health_check_asks_its_own_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr(launch, "_http_ok", lambda url, params=None: bool(asked.append(url)) or True)
    config = service_config(compose()["services"]["rasa2"])
    assert role_health(config, "dialogue", 2) == []
    assert sorted(asked) == ["http://rasa2:5005/status", "http://rasa2:5055/health"]


def test_no_secret_is_written_inline_and_every_one_comes_from_an_env_file() -> None:
    data = compose()
    for name, service in data["services"].items():
        for key, value in environment(service).items():
            assert not SECRET_NAME.search(key), f"{name}: {key} is a secret: put it in an env file"
            assert not re.search(r"://[^/\s]*:[^/\s]*@", value), f"{name}: {key} holds credentials"
    for name, service in debtbot_services().items():
        assert service["env_file"] == ["debtbot.env"], name
    # What the example env files name: every secret a container needs, no value filled in.
    example = _env_file(DEPLOY / "debtbot.env.example")
    assert set(FAKE_SECRETS) <= set(example)
    assert all(
        value in ("", "redis://:CHANGE-ME@redis:6379/0") or "CHANGE-ME" in value for value in example.values()
    )


def test_redis_has_a_password_from_its_env_file_and_its_append_only_file_on() -> None:
    redis = compose()["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    assert redis["env_file"] == ["redis.env"] and "REDIS_PASSWORD" in _env_file(DEPLOY / "redis.env.example")
    command = " ".join(redis["command"])
    assert "requirepass" in command and "$$REDIS_PASSWORD" in command
    assert "--appendonly yes" in command
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    # ...and every debtbot container's REDIS_URL carries one.
    assert re.match(r"redis://:[^@]+@redis:6379/", _env_file(DEPLOY / "debtbot.env.example")["REDIS_URL"])


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if "=" in line
             and not line.lstrip().startswith("#"))  # fmt: skip
    return {key.strip(): value.strip() for key, value in pairs}


def test_the_readme_says_how_to_build_start_and_scale() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "docker compose up --build" in readme and "--scale worker=4" in readme
    assert "--role dialogue --server" in readme and "pinned" in readme
