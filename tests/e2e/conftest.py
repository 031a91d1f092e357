"""A real Rasa server and action server on the test Redis, started once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Config, load_config
from bot.launch import actions_ready, actions_spec, child_env, rasa_ready, rasa_spec
from bot.supervisor import ManagedProcess
from tests.conftest import TEST_SECRETS, free_port, wait_for, write_config


class RasaStack:
    """The Rasa server and action server as the supervisor starts them; each can be stopped."""

    def __init__(self, config: Config, model: Path, log: Path) -> None:
        self.config = config
        self._log = log.open("a", encoding="utf-8")
        env = child_env(config)
        self.rasa = ManagedProcess(rasa_spec(config, env, model), self._log)
        self.actions = ManagedProcess(actions_spec(config, env), self._log)

    def start_rasa(self) -> None:
        self.rasa.start()
        wait_for(lambda: rasa_ready(self.config), timeout=240, interval=0.5, what="Rasa server")

    def stop_rasa(self) -> None:
        self.rasa.stop()

    def start(self) -> None:
        self.actions.start()
        self.start_rasa()
        wait_for(lambda: actions_ready(self.config), timeout=60, interval=0.3, what="action server")

    def stop(self) -> None:
        self.rasa.stop()
        self.actions.stop()
        self._log.close()


@pytest.fixture(scope="session")
def stack_config(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Config:
    folder = tmp_path_factory.mktemp("stack")
    path = write_config(
        folder,
        {
            "rasa": {
                "url": f"http://127.0.0.1:{free_port()}",
                "actions_url": f"http://127.0.0.1:{free_port()}",
            },
            "server": {"public_url": "https://bot.example.com"},
        },
    )
    return load_config(path, {"REDIS_URL": redis_url, **TEST_SECRETS})


@pytest.fixture(scope="session")
def rasa_stack(
    stack_config: Config, trained_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RasaStack]:
    log = tmp_path_factory.mktemp("logs") / "rasa.log"
    stack = RasaStack(stack_config, trained_model, log)
    try:
        stack.start()
    except AssertionError:
        stack.stop()
        raise AssertionError("Rasa did not start; its output:\n" + log.read_text()[-5000:]) from None
    yield stack
    stack.stop()
