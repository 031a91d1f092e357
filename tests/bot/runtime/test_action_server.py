"""The action server answers only the product's Rasa server: a forged call gets 401, no debt."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from bot.config import Config, load_config
from bot.runtime.launch import child_env
from bot.store.accounts import AccountStore
from bot.store.connection import Keys
from tests.conftest import ROOT, TEST_SECRETS, free_port, wait_for, write_config


@pytest.fixture(scope="module")
def action_server(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Config]:
    """``python -m bot.runtime.action_server`` as the supervisor starts it, on the test Redis."""
    folder = tmp_path_factory.mktemp("actions")
    path = write_config(folder, {"rasa": {"actions_url": f"http://127.0.0.1:{free_port()}"}})
    config = load_config(path, {"REDIS_URL": redis_url, **TEST_SECRETS})
    log = (folder / "actions.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "bot.runtime.action_server"], env=child_env(config), cwd=folder,
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: _health(config) or server.poll() is not None, timeout=90, what="action server")
        assert server.poll() is None, (folder / "actions.log").read_text()[-3000:]
        yield config
    finally:
        server.terminate()
        server.wait(20)
        log.close()


def _health(config: Config) -> bool:
    try:
        return httpx.get(f"{config.rasa.actions_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def forged_disclose() -> dict[str, Any]:
    """What a local process could post: action_disclose on a tracker that says "verified"."""
    slots = {"verified": True, "account_id": "ACC-1002", "channel": "sms", "language": "en"}
    return {
        "next_action": "action_disclose",
        "sender_id": "acct-ACC-1002",
        "version": "3.6.2",
        "domain": {},
        "tracker": {
            "sender_id": "acct-ACC-1002",
            "slots": slots,
            "latest_message": {"text": "hi", "intent": {}, "entities": [], "metadata": {}},
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
    }


@pytest.fixture
def accounts(action_server: Config, redis_client: redis.Redis) -> None:
    AccountStore(redis_client, Keys(action_server.redis.key_prefix)).import_csv(
        (ROOT / "examples" / "accounts.csv").read_text(),
        languages=["en", "es"], default_language="en", verification_field="date_of_birth",
    )  # fmt: skip


def _post(config: Config, headers: dict[str, str], params: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"{config.rasa.actions_url}/webhook",
        json=forged_disclose(),
        headers=headers,
        params=params,
        timeout=30,
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": TEST_SECRETS["DEBTBOT_ACTIONS_TOKEN"]},  # no "Bearer "
        {"Authorization": f"Bearer {TEST_SECRETS['DEBTBOT_ACTIONS_TOKEN']}x"},
        {"Authorization": f"Bearer {TEST_SECRETS['RASA_AUTH_TOKEN']}"},  # another secret
    ],
    ids=["none", "wrong", "basic", "no-scheme", "longer", "rasa-api-token"],
)
def test_forged_disclose_without_the_token_is_refused_and_says_nothing_of_the_debt(
    action_server: Config, accounts: None, headers: dict[str, str]
) -> None:
    answer = _post(action_server, headers)
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/json")
    assert "error" in answer.json()
    assert "Capitol Mobile" not in answer.text and "389" not in answer.text


def test_token_in_the_query_string_is_not_accepted(action_server: Config, accounts: None) -> None:
    # Rasa's `token:` setting sends ?token=...; we want the header only (URLs get logged).
    answer = _post(action_server, {}, params={"token": TEST_SECRETS["DEBTBOT_ACTIONS_TOKEN"]})
    assert answer.status_code == 401


def test_action_list_needs_the_token_and_health_does_not(action_server: Config) -> None:
    base = action_server.rasa.actions_url
    assert httpx.get(f"{base}/actions", timeout=10).status_code == 401
    assert httpx.get(f"{base}/health", timeout=10).json() == {"status": "ok"}


def test_rasa_with_the_token_runs_the_action(action_server: Config, accounts: None) -> None:
    answer = _post(action_server, {"Authorization": f"Bearer {action_server.secrets.actions_token}"})
    assert answer.status_code == 200, answer.text
    [balance] = [r for r in answer.json()["responses"] if r.get("response") == "utter_balance"]
    assert balance["creditor"] == "Capitol Mobile"


def test_action_server_will_not_start_without_a_token() -> None:
    from bot.errors import ConfigError
    from bot.runtime.action_server import require_token

    with pytest.raises(ConfigError, match="DEBTBOT_ACTIONS_TOKEN"):
        require_token(object(), "")
