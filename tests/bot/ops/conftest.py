"""Fixtures for the ops pages' web tests: the console's app (``tests/bot/console/conftest.py``)
with the ops blueprint, an analytics store on SQLite in the test's folder, and signed-in clients
for an ``ops`` person (``ops_client``) and for an agent (who may not see the ops pages)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.clock import Clock
from bot.config import Config
from bot.console.agents import Role
from bot.gateway.app import create_app
from bot.ops.analytics.store import AnalyticsStore
from bot.ops.web import ops_blueprint
from tests.bot.console import conftest as console
from tests.bot.console.conftest import PASSWORD, PUBLIC, ConsoleTestParts, sign_in
from tests.conftest import ROOT, ConfigFactory

# The console's fixtures, found by name here too (``web_app`` is replaced below).
web_clock = console.web_clock
web_rasa = console.web_rasa
web_parts = console.web_parts
agent_client = console.agent_client
supervisor_client = console.supervisor_client

OPS = "olga"


@pytest.fixture
def web_config(make_config: ConfigFactory, tmp_path: Path) -> Config:
    """The console's configuration with a Rasa project of its own (a copy of the domain and the
    NLU data): what the ops pages write (test stories, labels) lands there, never in the repo's."""
    project = tmp_path / "rasa_project"
    shutil.copytree(ROOT / "rasa_project" / "data", project / "data")
    shutil.copy(ROOT / "rasa_project" / "domain.yml", project / "domain.yml")
    shutil.copy(ROOT / "rasa_project" / "config.yml", project / "config.yml")
    return make_config(server={"public_url": PUBLIC}, rasa={"project_dir": str(project)})


@pytest.fixture
def ops_store(tmp_path: Path, web_clock: Clock) -> Iterator[AnalyticsStore]:
    """A migrated analytics store (SQLite) on the web tests' clock."""
    store = AnalyticsStore(f"sqlite:///{tmp_path / 'analytics.db'}", clock=web_clock)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def ops_parts(web_parts: ConsoleTestParts, ops_store: AnalyticsStore) -> ConsoleTestParts:
    web_parts.analytics = ops_store  # type: ignore[attr-defined]
    web_parts.agent_directory.add(OPS, Role.OPS, PASSWORD)
    return web_parts


@pytest.fixture
def web_app(web_config: Config, ops_parts: ConsoleTestParts) -> Flask:
    """The gateway with the console and the ops pages (replaces the console's ``web_app``)."""
    app = create_app(web_config, ops_parts, blueprints=[ops_blueprint(ops_parts)])  # type: ignore[arg-type]
    app.testing = True  # CSRF stays on
    return app


@pytest.fixture
def ops_client(web_app: Flask) -> FlaskClient:
    client = web_app.test_client()
    assert sign_in(client, OPS).status_code == 302
    return client
