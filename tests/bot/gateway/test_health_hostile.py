"""/healthz takes no input; whatever a request carries, the answer is the health report."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.gateway.app import create_app
from bot.gateway.health import HealthChecker
from bot.runtime.services import build_services
from tests.bot.gateway.test_webhooks_hostile import NASTY_TEXT, check_answer
from tests.conftest import ConfigFactory


@pytest.fixture
def client(make_config: ConfigFactory, redis_client: redis.Redis) -> FlaskClient:
    config = make_config()
    services = build_services(config, redis_client)
    health = HealthChecker(services)
    ok: dict[str, Any] = {"ok": True}
    # Rasa and the worker are not running here; their checks are not what is under test.
    health.checks = {"redis": health.checks["redis"], "rasa": lambda: dict(ok), "worker": lambda: dict(ok)}
    return create_app(config, services, health=health).test_client()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=NASTY_TEXT, method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
@example(query="\ud800\r\n\x00", method="GET")
def test_hostile_health_requests_get_the_report_or_a_json_405(
    client: FlaskClient, query: str, method: str
) -> None:
    answer = client.open(
        f"/healthz?q={quote(query.encode('utf-8', 'surrogatepass'))}", method=method, data=b"[[[["
    )
    check_answer(answer)
    if method == "GET":
        assert answer.status_code == 200 and answer.get_json()["status"] == "ok"
    else:
        assert answer.status_code == 405
