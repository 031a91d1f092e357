"""Hostile input to the one-click unsubscribe endpoint: never a 5xx, a 4xx is a JSON error,
and a real link still works afterwards."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.runtime.services import Services
from tests.bot.conftest import PUBLIC
from tests.bot.gateway.test_webhooks_hostile import NASTY_TEXT, check_answer

ANA = "ana.lopez@example.com"


def as_path(token: str) -> str:
    return "/unsubscribe/" + quote(token.encode("utf-8", "surrogatepass"), safe="")


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(token=NASTY_TEXT, method=st.sampled_from(["GET", "POST"]), field=NASTY_TEXT)
@example(token="x" * 10_000, method="POST", field="One-Click")
@example(token="\ud800\r\n\x00\x1b", method="POST", field="\ud800")
@example(token="../../healthz", method="GET", field="")
def test_hostile_unsubscribe_requests_never_get_a_5xx_and_a_real_link_still_works(
    client: FlaskClient, services: Services, redis_client: redis.Redis, token: str, method: str, field: str
) -> None:
    redis_client.flushdb()
    path = services.unsubscribe.url("email", ANA, "A1", "en").removeprefix(PUBLIC)
    form = urlencode({"List-Unsubscribe": field.encode("utf-8", "surrogatepass")})
    answer = client.open(
        as_path(token), method=method, data=form, content_type="application/x-www-form-urlencoded"
    )
    check_answer(answer)
    assert services.addresses.status("email", ANA).opted_out_at is None  # an unknown token does nothing
    assert client.get(path).status_code == 200
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert services.addresses.status("email", ANA).opted_out_at is not None
