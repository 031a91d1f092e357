"""Behind a reverse proxy (``server.trusted_proxies``): the client's address is the one the proxy
saw (``X-Forwarded-For``), so the console's per-address sign-in throttle holds back the guesser
and not everyone behind the same proxy; with no trusted proxy the header is ignored."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.config import Config
from bot.gateway.app import create_app
from tests.bot.console.conftest import (  # noqa: F401  (the console's fixtures, used below)
    AGENT,
    PASSWORD,
    PUBLIC,
    ConsoleTestParts,
    sign_in,
    web_clock,
    web_parts,
    web_rasa,
)
from tests.conftest import ConfigFactory

#: What the proxy sees (the client), and the proxy's own address (what the socket says).
GUESSER = "203.0.113.7"
AGENT_AT_HOME = "198.51.100.23"
PROXY = "10.0.0.2"


@pytest.fixture(params=[1], ids=["one proxy"])
def proxies(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def web_config(make_config: ConfigFactory, proxies: int) -> Config:
    return make_config(server={"public_url": PUBLIC, "trusted_proxies": proxies})


@pytest.fixture
def app(web_config: Config, web_parts: ConsoleTestParts) -> Flask:  # noqa: F811
    app = create_app(web_config, web_parts)
    app.testing = True
    return app


def through_the_proxy(app: Flask, client_address: str) -> FlaskClient:
    """A browser at ``client_address`` behind the proxy: the socket's peer is the proxy, which
    appends the address it saw to X-Forwarded-For (after whatever the client sent itself)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = PROXY
    client.environ_base["HTTP_X_FORWARDED_FOR"] = client_address
    client.environ_base["HTTP_X_FORWARDED_PROTO"] = "https"
    # On https Flask-WTF also wants the browser's Referer to name this host (the proxy passes
    # the Host header on, as it must).
    client.environ_base["HTTP_REFERER"] = "https://localhost/console/sign-in"
    return client


def guess_five_times(client: FlaskClient) -> None:
    # Five names, so only the address's count reaches the limit (not any one name's).
    for n in range(5):
        assert sign_in(client, f"guess{n}", "wrong password!!").status_code == 401


def test_behind_one_proxy_the_guesser_is_throttled_and_an_agent_elsewhere_signs_in(app: Flask) -> None:
    guesser = through_the_proxy(app, GUESSER)
    guess_five_times(guesser)
    assert sign_in(guesser, AGENT, PASSWORD).status_code == 429  # the sixth, even with the right one
    assert sign_in(through_the_proxy(app, AGENT_AT_HOME), AGENT, PASSWORD).status_code == 302


def test_a_client_cannot_choose_its_address_by_sending_the_header_itself(app: Flask) -> None:
    guesser = through_the_proxy(app, GUESSER)
    for n in range(5):
        # The client claims another address each time; the proxy appends the real one.
        guesser.environ_base["HTTP_X_FORWARDED_FOR"] = f"192.0.2.{n}, {GUESSER}"
        assert sign_in(guesser, f"guess{n}", "wrong password!!").status_code == 401
    guesser.environ_base["HTTP_X_FORWARDED_FOR"] = f"192.0.2.99, {GUESSER}"
    assert sign_in(guesser, AGENT, PASSWORD).status_code == 429


@pytest.mark.parametrize("proxies", [0], ids=["no proxy"], indirect=True)
def test_with_no_trusted_proxy_the_forwarded_header_is_ignored(app: Flask) -> None:
    guess_five_times(through_the_proxy(app, GUESSER))
    # Everyone arrives from the proxy's address, whatever the header says: all held back.
    assert sign_in(through_the_proxy(app, AGENT_AT_HOME), AGENT, PASSWORD).status_code == 429


@pytest.mark.parametrize("proxies", [0, 1], ids=["no proxy", "one proxy"], indirect=True)
def test_the_client_address_and_scheme_the_app_sees(app: Flask, proxies: int) -> None:
    seen: dict[str, str] = {}

    @app.get("/__whoami")
    def whoami() -> str:
        from flask import request

        seen.update(address=request.remote_addr or "", scheme=request.scheme)
        return "ok"

    assert through_the_proxy(app, GUESSER).get("/__whoami").status_code == 200
    assert seen == (
        {"address": GUESSER, "scheme": "https"} if proxies else {"address": PROXY, "scheme": "http"}
    )
