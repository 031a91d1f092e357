"""Signing in to the console: sessions (cookie flags, rotation, sign-out, idle expiry, disabled
agents), the sign-in throttle on an injected clock, the audit, set-password links."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from bot.clock import Clock
from bot.config import Config
from bot.gateway.app import create_app
from tests.bot.console.conftest import (
    AGENT,
    PASSWORD,
    ConsoleTestParts,
    csrf_of,
    session_cookie,
    sign_in,
)
from tests.conftest import ConfigFactory


def audit_kinds(client: redis.Redis[bytes]) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in client.xrange("debtbot:audit")
        if fields.get(b"kind", b"").startswith(b"console:sign")
    ]


def test_sign_in_with_the_right_password_opens_the_inbox(web_client: FlaskClient) -> None:
    answer = sign_in(web_client, AGENT)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/console/"
    assert web_client.get("/console/").status_code == 200


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_site(web_client: FlaskClient) -> None:
    assert sign_in(web_client, AGENT, next="/console/callbacks").headers["Location"] == "/console/callbacks"
    other = web_client.application.test_client()
    assert sign_in(other, AGENT, next="https://evil.example/x").headers["Location"] == "/console/"
    third = web_client.application.test_client()
    assert sign_in(third, AGENT, next="//evil.example/x").headers["Location"] == "/console/"


def test_a_wrong_password_is_refused_and_audited_without_the_password(
    web_client: FlaskClient, redis_client: redis.Redis[bytes]
) -> None:
    answer = sign_in(web_client, AGENT, "not the password at all")
    assert answer.status_code == 401
    assert "do not match" in answer.get_data(as_text=True)
    assert web_client.get("/console/").status_code == 302
    [entry] = audit_kinds(redis_client)
    assert entry["kind"] == "console:sign_in_failed"
    assert entry["agent"] == AGENT
    assert entry["ip"] and "127.0.0.1" not in entry["ip"]
    assert not any("not the password" in value for value in entry.values())


def test_a_successful_sign_in_is_audited(web_client: FlaskClient, redis_client: redis.Redis[bytes]) -> None:
    sign_in(web_client, AGENT)
    [entry] = audit_kinds(redis_client)
    assert entry["kind"] == "console:sign_in"
    assert entry["agent"] == AGENT
    assert entry["role"] == "agent"


def test_the_sixth_wrong_password_within_the_window_waits_even_when_right(
    web_client: FlaskClient, web_clock: Clock, redis_client: redis.Redis[bytes]
) -> None:
    for _ in range(5):
        assert sign_in(web_client, AGENT, "wrong password!!").status_code == 401
        web_clock.advance(timedelta(minutes=1))
    throttled = sign_in(web_client, AGENT, PASSWORD)
    assert throttled.status_code == 429
    assert "Too many failed sign-ins" in throttled.get_data(as_text=True)
    # The first failure (at 0) leaves the 15-minute window 10 minutes from now (at 5).
    assert int(throttled.headers["Retry-After"]) == 10 * 60
    assert web_client.get("/console/").status_code == 302
    assert audit_kinds(redis_client)[-1]["kind"] == "console:sign_in_throttled"
    # Once the window has passed, the right password works again.
    web_clock.advance(timedelta(minutes=10, seconds=1))
    assert sign_in(web_client, AGENT, PASSWORD).status_code == 302


def test_the_throttle_counts_per_address_across_names(web_client: FlaskClient) -> None:
    for name in ("x1", "x2", "x3", "x4", "x5"):
        sign_in(web_client, name, "wrong password!!")
    assert sign_in(web_client, AGENT, PASSWORD).status_code == 429


def test_the_throttle_counts_per_name_across_addresses(web_app: Flask) -> None:
    for n in range(5):
        client = web_app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"10.0.0.{n + 1}"
        sign_in(client, AGENT, "wrong password!!")
    other = web_app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.0.0.99"
    assert sign_in(other, AGENT, PASSWORD).status_code == 429
    # Another agent from that address is not held back.
    assert sign_in(web_app.test_client(), "sue", PASSWORD).status_code == 302


def cookie_header(answer: Any) -> str:
    [header] = [h for h in answer.headers.getlist("Set-Cookie") if h.startswith("debtbot_session=")]
    return header


def test_the_session_cookie_is_httponly_lax_and_secure_on_https(web_client: FlaskClient) -> None:
    header = cookie_header(sign_in(web_client, AGENT)).lower()
    assert "httponly" in header
    assert "samesite=lax" in header
    assert "secure" in header


def test_the_session_cookie_is_not_secure_on_plain_http(make_config: ConfigFactory, web_parts: Any) -> None:
    config: Config = make_config(server={"public_url": "http://127.0.0.1:8000"})
    app = create_app(config, ConsoleTestParts(web_parts, config=config))  # type: ignore[arg-type]
    header = cookie_header(sign_in(app.test_client(), AGENT)).lower()
    assert "httponly" in header and "samesite=lax" in header
    assert "secure" not in header


def test_the_session_rotates_at_sign_in(web_client: FlaskClient) -> None:
    csrf_of(web_client)
    before = session_cookie(web_client)
    assert before
    sign_in(web_client, AGENT)
    after = session_cookie(web_client)
    assert after and after != before
    # A cookie captured before sign-in is not signed in.
    stale = web_client.application.test_client()
    stale.set_cookie("debtbot_session", before)
    assert stale.get("/console/").status_code == 302


def test_sign_out_ends_the_session_on_the_server(web_client: FlaskClient) -> None:
    sign_in(web_client, AGENT)
    stolen = session_cookie(web_client)
    token = csrf_of(web_client, "/console/")
    assert web_client.post("/console/sign-out", data={"csrf_token": token}).status_code == 302
    assert web_client.get("/console/").status_code == 302
    # Replaying the cookie from before the sign-out does not bring the session back.
    replay = web_client.application.test_client()
    replay.set_cookie("debtbot_session", stolen)
    assert replay.get("/console/").status_code == 302


def test_sign_out_needs_the_csrf_token(agent_client: FlaskClient) -> None:
    assert agent_client.post("/console/sign-out").status_code == 400
    assert agent_client.get("/console/").status_code == 200


def test_an_idle_session_expires(agent_client: FlaskClient, web_clock: Clock) -> None:
    web_clock.advance(timedelta(minutes=29))
    assert agent_client.get("/console/").status_code == 200
    web_clock.advance(timedelta(minutes=29))  # active 29 minutes ago: still in
    assert agent_client.get("/console/").status_code == 200
    web_clock.advance(timedelta(minutes=31))
    answer = agent_client.get("/console/")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/console/sign-in")


def test_background_polls_do_not_keep_an_idle_session_alive(
    agent_client: FlaskClient, web_clock: Clock
) -> None:
    for _ in range(4):
        web_clock.advance(timedelta(minutes=10))
        answer = agent_client.get("/console/api/inbox", headers={"X-Console-Poll": "1"})
    assert answer.status_code == 401  # 40 minutes without the agent doing anything


def test_a_disabled_agents_session_stops(agent_client: FlaskClient, web_parts: ConsoleTestParts) -> None:
    web_parts.agent_directory.disable(AGENT)
    assert agent_client.get("/console/").status_code == 302
    assert agent_client.get("/console/api/inbox").status_code == 401


def test_a_supervisor_disabling_an_agent_ends_their_sessions(
    agent_client: FlaskClient, supervisor_client: FlaskClient
) -> None:
    token = csrf_of(supervisor_client, "/console/agents")
    assert (
        supervisor_client.post(f"/console/agents/{AGENT}/disable", data={"csrf_token": token}).status_code
        == 302
    )
    assert agent_client.get("/console/").status_code == 302


def test_a_set_password_link_sets_the_password_once(
    web_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    token = web_parts.agent_directory.issue_password_token(AGENT)
    path = f"/console/set-password/{token}"
    assert web_client.get(path).status_code == 200
    csrf = csrf_of(web_client, path)
    new = "a brand new password"
    differ = web_client.post(path, data={"csrf_token": csrf, "password": new, "password_again": "other"})
    assert differ.status_code == 400 and "differ" in differ.get_data(as_text=True)
    done = web_client.post(path, data={"csrf_token": csrf, "password": new, "password_again": new})
    assert done.status_code == 200 and "Your password is set" in done.get_data(as_text=True)
    again = web_client.post(path, data={"csrf_token": csrf, "password": new, "password_again": new})
    assert again.status_code == 400 and "unknown, used or expired" in again.get_data(as_text=True)
    assert sign_in(web_client.application.test_client(), AGENT, new).status_code == 302
    assert sign_in(web_client.application.test_client(), AGENT, PASSWORD).status_code == 401


def test_the_set_password_path_is_the_one_the_cli_prints() -> None:
    import inspect

    from bot import cli

    assert "/console/set-password/{token}" in inspect.getsource(cli)


@pytest.mark.parametrize("path", ["/console/sign-in", "/console/set-password/abc"])
def test_public_pages_carry_the_security_headers(web_client: FlaskClient, path: str) -> None:
    answer = web_client.get(path)
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
