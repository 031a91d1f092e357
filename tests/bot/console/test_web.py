"""The console's pages and their scripts' JSON: nothing without sign-in, CSRF, roles, security
headers, escaping of outside text, the reply verdict, the live inbox's order."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.console.web import CSP, SECURITY_HEADERS
from channels.sms_text import segments
from tests.bot.console.conftest import (
    AGENT,
    ConsoleTestParts,
    add_account,
    csrf_of,
)

CID = "acct-A1"
XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]
#: Routes that answer without sign-in.
PUBLIC = ("/console/sign-in", "/console/static", "/console/set-password")
XHR = {"X-Requested-With": "fetch", "Accept": "application/json"}


def escalated(parts: ConsoleTestParts, cid: str = CID, reason: str = "human", text: str = "hello") -> None:
    parts.history.inbound(cid, source=f"sms:{cid}:{text[:10]}", channel="sms", text=text)
    parts.handoff.escalate(cid, reason)


def console_rules(app: Flask) -> list[tuple[str, str]]:
    """Every console rule but the public ones, with its arguments filled in, and its method."""
    rules = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/console") or rule.rule.startswith(PUBLIC):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "ana" if m.group(1) == "name" else CID, rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            rules.append((method, path))
    return rules


def test_there_are_console_routes_to_check(web_app: Flask) -> None:
    paths = {path for _, path in console_rules(web_app)}
    assert {"/console/", f"/console/c/{CID}", "/console/api/inbox", f"/console/api/c/{CID}/reply"} <= paths


def test_every_console_route_sends_a_signed_out_page_to_sign_in(web_app: Flask) -> None:
    client = web_app.test_client()
    token = csrf_of(client)
    for method, path in console_rules(web_app):
        answer = client.open(path, method=method, data={"csrf_token": token}, headers={"Accept": "text/html"})
        if path.startswith("/console/api/"):
            assert answer.status_code == 401, (method, path)
            continue
        assert answer.status_code == 302, (method, path, answer.status_code)
        assert answer.headers["Location"].startswith("/console/sign-in?next="), (method, path)


def test_every_console_route_answers_a_signed_out_script_with_401_json(web_app: Flask) -> None:
    client = web_app.test_client()
    token = csrf_of(client)
    for method, path in console_rules(web_app):
        answer = client.open(path, method=method, headers={**XHR, "X-CSRFToken": token})
        assert answer.status_code == 401, (method, path)
        assert answer.get_json()["error"], (method, path)
        assert answer.headers["Content-Security-Policy"] == CSP


def test_the_redirect_keeps_where_the_agent_was_going(web_client: FlaskClient) -> None:
    answer = web_client.get(f"/console/c/{CID}")
    assert answer.headers["Location"] == f"/console/sign-in?next=/console/c/{CID}"


def test_a_post_without_the_csrf_token_is_refused(
    agent_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    escalated(web_parts)
    assert agent_client.post(f"/console/c/{CID}/claim").status_code == 400
    assert agent_client.post(f"/console/api/c/{CID}/reply", json={"text": "hi"}).status_code == 400
    assert web_parts.handoff.get(CID).state.value == "waiting"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/console/canned"),
        ("POST", "/console/canned"),
        ("POST", "/console/canned/delete"),
        ("GET", "/console/agents"),
        ("POST", "/console/agents/sue/disable"),
        ("POST", "/console/agents/sue/link"),
        ("GET", f"/console/c/{CID}/audit"),
        ("POST", f"/console/c/{CID}/reassign"),
        ("POST", f"/console/c/{CID}/watch"),
    ],
)
def test_an_agent_cannot_use_a_supervisors_pages(agent_client: FlaskClient, method: str, path: str) -> None:
    token = csrf_of(agent_client, "/console/")
    page = agent_client.open(path, method=method, data={"csrf_token": token, "to_agent": AGENT})
    assert page.status_code == 403
    assert "Only a supervisor" in page.get_data(as_text=True)
    assert page.headers["Content-Security-Policy"] == CSP
    script = agent_client.open(path, method=method, headers={**XHR, "X-CSRFToken": token})
    assert script.status_code == 403
    assert script.get_json()["error"]


def test_a_supervisor_opens_the_supervisors_pages(
    supervisor_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    escalated(web_parts)
    for path in ("/console/canned", "/console/agents", f"/console/c/{CID}/audit"):
        assert supervisor_client.get(path).status_code == 200, path


def test_security_headers_on_every_console_page_and_error(
    agent_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    escalated(web_parts)
    answers = [
        agent_client.get("/console/"),
        agent_client.get("/console/callbacks"),
        agent_client.get(f"/console/c/{CID}"),
        agent_client.get("/console/api/inbox"),
        agent_client.get("/console/no-such-page"),
        agent_client.get("/console/canned"),  # 403
        agent_client.get("/console/api/c/bad id!/history"),  # 404
        agent_client.post(f"/console/c/{CID}/claim"),  # 400: no CSRF token
        agent_client.get("/console/static/console.css"),
    ]
    for answer in answers:
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (answer.request.path, answer.status_code, name)
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP


def test_pages_have_no_inline_script_or_style(
    supervisor_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    escalated(web_parts)
    add_account(web_parts)
    for path in ("/console/", "/console/callbacks", f"/console/c/{CID}", "/console/canned", "/console/agents",
                 f"/console/c/{CID}/audit", "/console/sign-in"):  # fmt: skip
        html = supervisor_client.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert "<style" not in html and " style=" not in html, path
        assert not re.search(r"\son[a-z]+=", html), path


def test_outside_text_is_escaped_in_the_inbox_and_the_conversation(
    agent_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    add_account(web_parts, first_name=XSS[1])
    escalated(web_parts, text=f"help {XSS[0]} {XSS[1]}")
    web_parts.dead_letters.add("email", "unreadable", f"Subject: {XSS[0]}", b"raw mail")
    web_parts.history.inbound(CID, source="email:1", channel="email", text=f"Subject: {XSS[1]}\n\nbody")
    for path in ("/console/", f"/console/c/{CID}"):
        html = agent_client.get(path).get_data(as_text=True)
        for payload in XSS:
            assert payload not in html, path
        assert "&lt;img src=x onerror=alert(1)&gt;" in html, path
    inbox = agent_client.get("/console/").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in inbox  # the dead letter's subject
    # The scripts get the text as JSON data, which they only ever put in with textContent.
    items = agent_client.get("/console/api/inbox").get_json()["items"]
    assert any(XSS[1] in item["display_name"] for item in items)
    for name in ("inbox.js", "conversation.js"):
        script = (Path(__file__).parents[3] / "bot/console/static" / name).read_text()
        assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script


def test_the_inbox_json_is_in_the_inboxs_order(
    agent_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    escalated(web_parts, "acct-B1", "human")
    escalated(web_parts, "acct-C1", "crisis")
    escalated(web_parts, "acct-D1", "dispute")
    expected = [item.conversation_id for item in web_parts.inbox.items(AGENT)]
    got = [item["conversation_id"] for item in agent_client.get("/console/api/inbox").get_json()["items"]]
    assert got == expected
    assert got[0] == "acct-C1"
    page = agent_client.get("/console/").get_data(as_text=True)
    rows = re.findall(r'<tr class="inbox-item[^"]*"\s+data-conversation="([^"]+)"', page)
    assert rows == expected


def test_the_inbox_filters_are_passed_on(agent_client: FlaskClient, web_parts: ConsoleTestParts) -> None:
    escalated(web_parts, "acct-B1", "human")
    escalated(web_parts, "acct-C1", "crisis")
    got = agent_client.get("/console/api/inbox?reason=crisis").get_json()["items"]
    assert [item["conversation_id"] for item in got] == ["acct-C1"]
    page = agent_client.get("/console/?reason=crisis").get_data(as_text=True)
    assert 'data-conversation="acct-B1"' not in page


def claim(client: FlaskClient) -> Any:
    token = csrf_of(client, "/console/")
    return client.post(f"/console/c/{CID}/claim", data={"csrf_token": token}, follow_redirects=True)


def test_claim_from_the_page_and_a_second_claim_is_told_who_has_it(
    agent_client: FlaskClient, supervisor_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    add_account(web_parts)
    escalated(web_parts)
    page = claim(agent_client).get_data(as_text=True)
    assert "You have this conversation now" in page
    assert 'id="state-label">agent: ana<' in page
    assert web_parts.handoff.get(CID).agent == AGENT
    other = claim(supervisor_client).get_data(as_text=True)
    assert "ana has already claimed this conversation" in other
    state = agent_client.get(f"/console/api/c/{CID}/state").get_json()
    assert state["state"] == "agent" and state["mine"] is True


def test_the_reply_endpoint_answers_with_the_verdict(
    agent_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    add_account(web_parts)
    escalated(web_parts)
    claim(agent_client)
    token = csrf_of(agent_client, "/console/")
    answer = agent_client.post(
        f"/console/api/c/{CID}/reply", json={"text": "Hello Maria, I'm here.", "channel": "sms"},
        headers={"X-CSRFToken": token},
    )  # fmt: skip
    assert answer.status_code == 200
    verdict = answer.get_json()
    assert verdict["outcome"] == "sent"
    assert verdict["message"] == "Sent"
    assert verdict["channel"] == "sms" and verdict["outbox_id"]
    history = agent_client.get(f"/console/api/c/{CID}/history").get_json()["lines"]
    [out] = [line for line in history if line["direction"] == "out"]
    assert out["text"] == "Hello Maria, I'm here." and out["who"] == AGENT
    after = agent_client.get(f"/console/api/c/{CID}/history?after={history[-1]['id']}").get_json()["lines"]
    assert after == []


def test_a_reply_with_bad_input_is_a_json_error(
    agent_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    escalated(web_parts)
    token = csrf_of(agent_client, "/console/")
    for body in ({"text": ""}, {"text": "hi", "channel": "fax"}, {"text": "x" * 5000}, ["not", "an object"]):
        answer = agent_client.post(f"/console/api/c/{CID}/reply", json=body, headers={"X-CSRFToken": token})
        assert answer.status_code == 400, body
        assert answer.get_json()["error"]


def test_a_note_from_the_form_shows_in_the_history(
    agent_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    add_account(web_parts)
    escalated(web_parts)
    token = csrf_of(agent_client, "/console/")
    page = agent_client.post(f"/console/c/{CID}/note", data={"csrf_token": token, "text": "Called back, no answer"},
                             follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "Note added." in page
    assert "Called back, no answer" in page


def test_the_not_verified_banner_shows_until_verified(
    agent_client: FlaskClient, web_parts: ConsoleTestParts, web_rasa: Any
) -> None:
    add_account(web_parts)
    escalated(web_parts)
    page = agent_client.get(f"/console/c/{CID}").get_data(as_text=True)
    assert re.search(r'<div id="not-verified"[^>]*role="alert">', page)
    assert "Not verified: say nothing about the debt." in page
    web_rasa.verified[CID] = True
    page = agent_client.get(f"/console/c/{CID}").get_data(as_text=True)
    assert re.search(r'<div id="not-verified"[^>]*hidden>', page)


def test_the_segment_endpoint_counts_like_the_sms_channel(agent_client: FlaskClient) -> None:
    for text in ("hello", "x" * 161, "ñandú " * 20):
        answer = agent_client.get("/console/api/segments", query_string={"text": text}).get_json()
        assert answer["segments"] >= segments(text) - 1  # the desk may swap typography for GSM-7


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_pages_segment_counter_agrees_with_python() -> None:
    script = (Path(__file__).parents[3] / "bot/console/static/conversation.js").read_text()
    start = script.index("  var GSM_BASIC")
    end = script.index("  window.consoleSmsSegments")
    samples = ["", "hello", "x" * 160, "x" * 161, "€" * 80, "€" * 81, "á" * 70, "á" * 71, "😀" * 35, "😀" * 36,
               "[" * 76 + "a", "café ☕ " * 30]  # fmt: skip
    program = (
        script[start:end] + f"console.log(JSON.stringify({json.dumps(samples)}.map(function (t) "
        "{ return smsSegments(t).segments; })));"
    )
    out = subprocess.run(
        ["node", "-e", program], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert json.loads(out) == [segments(text) for text in samples]


def test_canned_replies_are_offered_rendered_and_supervisors_edit_them(
    agent_client: FlaskClient, supervisor_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    add_account(web_parts, first_name=XSS[0])
    escalated(web_parts)
    token = csrf_of(supervisor_client, "/console/canned")
    saved = supervisor_client.post(
        "/console/canned", data={"csrf_token": token, "language": "en", "title": "Check in",
                                 "text": "Hi {first_name}, it's {agent_name}."},
        follow_redirects=True,
    )  # fmt: skip
    assert saved.status_code == 200 and "Check in" in saved.get_data(as_text=True)
    bad = supervisor_client.post(
        "/console/canned",
        data={"csrf_token": token, "language": "en", "title": "Bad", "text": "Hi {balance}"},
    )
    assert bad.status_code == 400
    page = agent_client.get(f"/console/c/{CID}").get_data(as_text=True)
    # The rendered text (the name from the CSV escaped) is in the option for the script to insert.
    assert 'data-text="Hi &lt;script&gt;alert(1)&lt;/script&gt;, it&#39;s ana."' in page
    assert XSS[0] not in page
