"""Fixtures for the console's web tests: the gateway app on a real Redis, with a set clock, cheap
argon2, a real ``Desk`` on a stand-in for Rasa, and signed-in clients for an agent and a
supervisor. Fixture names start with ``web_`` (or name a signed-in client) so the domain tests beside them
keep their own ``clock``, ``desk``..."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
import redis
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient

from bot.clock import Clock
from bot.config import Config
from bot.console.agents import AgentDirectory, Role
from bot.console.canned import CannedReplies
from bot.console.desk import Desk
from bot.console.handoff import HandoffStore
from bot.console.inbox import Inbox
from bot.conversations.dialogue_backend import RedisDialogueBackend
from bot.conversations.history import ConversationHistory
from bot.gateway.app import create_app
from bot.runtime.services import Services, build_services
from bot.store.accounts import Account
from tests.conftest import ConfigFactory

#: Monday 2 March 2026, 10:00 in New York (the agents' zone): inside every window.
WEB_START = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
PUBLIC = "https://bot.example.com"
PASSWORD = "correct horse battery"
AGENT = "ana"
SUPERVISOR = "sue"


class FakeRasa:
    """Records tracker events; answers the ``verified`` slot as told."""

    def __init__(self) -> None:
        self.events: dict[str, list[Mapping[str, Any]]] = {}
        self.verified: dict[str, bool] = {}

    def append_events(self, conversation_id: str, events: list[Mapping[str, Any]]) -> None:
        self.events.setdefault(conversation_id, []).extend(events)

    def tracker(self, conversation_id: str) -> dict[str, Any]:
        return {"slots": {"verified": self.verified.get(conversation_id, False)}}


class ConsoleTestParts:
    """The process's ``Services`` with the console's parts beside them (what the lead wires in
    ``bot/runtime/services.py``)."""

    def __init__(self, services: Services, **console: Any) -> None:
        self._services = services
        self.__dict__.update(console)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._services, name)


@pytest.fixture
def web_clock() -> Clock:
    return Clock(WEB_START)


@pytest.fixture
def web_config(make_config: ConfigFactory) -> Config:
    return make_config(server={"public_url": PUBLIC})


@pytest.fixture
def web_rasa() -> FakeRasa:
    return FakeRasa()


@pytest.fixture
def web_parts(
    web_config: Config, redis_client: redis.Redis, web_clock: Clock, web_rasa: FakeRasa
) -> ConsoleTestParts:
    services = build_services(web_config, redis_client, clock=web_clock)
    handoff = HandoffStore(redis_client, services.keys, web_clock)
    history = ConversationHistory(redis_client, services.keys, web_clock.timestamp)
    desk = Desk(
        config=web_config,
        redis=redis_client,
        keys=services.keys,
        clock=web_clock,
        accounts=services.accounts,
        addresses=services.addresses,
        gate=services.gate,
        deliveries=services.deliveries,
        history=history,
        handoff=handoff,
        outbound=services.outbound,
        jobs=services.jobs,
        rasa=web_rasa,
        dead_letters=services.dead_letters,
        links=services.links,
        plans=RedisDialogueBackend(web_config, redis_client, services.events),
    )
    directory = AgentDirectory(
        redis_client, services.keys, web_clock, PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    directory.add(AGENT, Role.AGENT, PASSWORD)
    directory.add(SUPERVISOR, Role.SUPERVISOR, PASSWORD)
    inbox = Inbox(
        web_config,
        redis_client,
        services.keys,
        web_clock,
        services.accounts,
        handoff,
        history,
        services.dead_letters,
    )
    return ConsoleTestParts(
        services, desk=desk, inbox=inbox, canned=CannedReplies(redis_client, services.keys, web_clock), agent_directory=directory, handoff=handoff,
        history=history,
    )  # fmt: skip


@pytest.fixture
def web_app(web_config: Config, web_parts: ConsoleTestParts) -> Flask:
    app = create_app(web_config, web_parts)  # type: ignore[arg-type]  # Services grows these parts
    app.testing = True  # CSRF stays on (WTF_CSRF_ENABLED is left alone)
    return app


@pytest.fixture
def web_client(web_app: Flask) -> FlaskClient:
    return web_app.test_client()


_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def csrf_of(client: FlaskClient, path: str = "/console/sign-in") -> str:
    """The CSRF token of the client's session (from a page's ``<meta>``)."""
    page = client.get(path)
    match = _META.search(page.get_data(as_text=True))
    assert match, f"no csrf meta on {path}: {page.status_code}"
    return match.group(1)


def sign_in(client: FlaskClient, name: str, password: str = PASSWORD, **extra: str) -> Any:
    token = csrf_of(client)
    return client.post(
        "/console/sign-in", data={"name": name, "password": password, "csrf_token": token, **extra}
    )


def session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("debtbot_session")
    return cookie.value if cookie else ""


@pytest.fixture
def agent_client(web_app: Flask) -> FlaskClient:
    client = web_app.test_client()
    assert sign_in(client, AGENT).status_code == 302
    return client


@pytest.fixture
def supervisor_client(web_app: Flask) -> FlaskClient:
    client = web_app.test_client()
    assert sign_in(client, SUPERVISOR).status_code == 302
    return client


def add_account(parts: Any, account_id: str = "A1", first_name: str = "Maria", **extra: Any) -> Account:
    account = Account(
        account_id=account_id, first_name=first_name, balance=Decimal("120.50"), currency="USD",
        creditor="Acme", language="en", phone="+14155550123", timezone="America/New_York", **extra,
    )  # fmt: skip
    parts.accounts.upsert(account)
    return account
