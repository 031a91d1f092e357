"""The console's work pages: the payment-plan panel (options, preview, confirmation, one plan per
form), mail set aside (read safely, attached, answered), each role's inbox, and HTML error pages
for the agents' browsers (JSON for their scripts)."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from bot.console.web import SECURITY_HEADERS
from tests.bot.console.conftest import AGENT, ConsoleTestParts, add_account, csrf_of
from tests.bot.console.test_web import CID, XSS, escalated

PREVIEW = f"/console/c/{CID}?preview=1&instalment=40&frequency=monthly&first_due=2026-03-16"


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, name
    return match.group(1)


def plans_of(parts: ConsoleTestParts, account_id: str = "A1") -> list[bytes]:
    return list(parts.redis.lrange(parts.keys.account_plans(account_id), 0, -1))


def post_plan(client: FlaskClient, page: str, **extra: str) -> Any:
    data = {
        "csrf_token": hidden(page, "csrf_token"), "instalment": "40", "frequency": "monthly",
        "first_due": "2026-03-16", "request_key": hidden(page, "request_key"), **extra,
    }  # fmt: skip
    return client.post(f"/console/c/{CID}/plan", data=data, follow_redirects=True)


def test_the_plan_panel_offers_the_options_and_reads_a_plan_back(
    agent_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    add_account(web_parts)
    escalated(web_parts)
    page = agent_client.get(f"/console/c/{CID}").get_data(as_text=True)
    assert 'id="plan-heading">Payment plan<' in page
    options = web_parts.desk.plan_options(CID)
    assert options and all(option.line in page for option in options)
    assert 'id="plan-use-1"' in page and 'id="plan-create"' not in page  # no preview yet
    preview = agent_client.get(PREVIEW).get_data(as_text=True)
    assert "3 payments of $40.00 every month, from Monday, 16 March 2026" in preview
    assert "- Monday, 16 March 2026: $40.00" in preview
    assert 'id="plan-confirmed"' in preview and 'id="plan-create"' in preview
    outside = agent_client.get(PREVIEW.replace("instalment=40", "instalment=5")).get_data(as_text=True)
    assert "Outside the plan policy" in outside and 'id="plan-create"' not in outside


def test_setting_up_a_plan_from_the_page_needs_agreement_and_verification_then_makes_one(
    agent_client: FlaskClient, web_parts: ConsoleTestParts, web_rasa: Any
) -> None:
    add_account(web_parts)
    escalated(web_parts)
    page = agent_client.get(PREVIEW).get_data(as_text=True)
    unconfirmed = post_plan(agent_client, page).get_data(as_text=True)
    assert "the person agreed to this schedule" in unconfirmed and plans_of(web_parts) == []
    assert 'value="40"' in unconfirmed  # the agent's terms are kept
    not_verified = post_plan(agent_client, page, confirmed="1").get_data(as_text=True)
    assert "Ask the verification question first" in not_verified and plans_of(web_parts) == []
    web_rasa.verified[CID] = True
    done = post_plan(agent_client, page, confirmed="1").get_data(as_text=True)
    assert "Plan set up: 3 payments of $40.00 every month" in done
    assert "Payment link and schedule to the person: Sent" in done
    again = post_plan(agent_client, page, confirmed="1").get_data(as_text=True)
    assert "already set up (the form was sent twice)" in again
    assert len(plans_of(web_parts)) == 1
    history = agent_client.get(f"/console/api/c/{CID}/history").get_json()["lines"]
    assert [line["kind"] for line in history].count("plan_created") == 1


def mail_page(client: FlaskClient, entry_id: str) -> str:
    answer = client.get(f"/console/dead-letters/email/{entry_id}")
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


RAW = (
    b"From: Maria <maria.other@example.org>\r\nSubject: " + XSS[0].encode() + b"\r\n"
    b"Message-ID: <m1@example.org>\r\nContent-Type: text/html\r\n\r\n"
    b"<p>I lost my job</p>" + XSS[1].encode()
)


def test_mail_set_aside_opens_from_the_inbox_and_shows_safely(
    agent_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    entry_id = web_parts.dead_letters.add("email", "broken_mime", "bad MIME", RAW)
    items = agent_client.get("/console/api/inbox").get_json()["items"]
    [item] = [i for i in items if i["kind"] == "dead_letter"]
    assert item["url"] == f"/console/dead-letters/email/{entry_id}"
    page = mail_page(agent_client, entry_id)
    for payload in XSS:
        assert payload not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "I lost my job" in page
    assert "maria.other@example.org" not in page and "m***@example.org" in page
    token = csrf_of(agent_client, "/console/")
    revealed = agent_client.post(
        f"/console/dead-letters/email/{entry_id}/reveal", data={"csrf_token": token}
    ).get_data(as_text=True)
    assert "maria.other@example.org" in revealed
    audit = [f[b"kind"] for _, f in web_parts.redis.xrange(web_parts.keys.audit)]
    assert b"console:read_dead_letter" in audit


def test_attaching_mail_to_an_account_opens_its_conversation_to_answer_it(
    agent_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    add_account(web_parts, email="maria@example.com")
    entry_id = web_parts.dead_letters.add("email", "broken_mime", "bad MIME", RAW)
    token = csrf_of(agent_client, "/console/")
    wrong = agent_client.post(
        f"/console/dead-letters/email/{entry_id}/attach", data={"csrf_token": token, "account_id": "NOPE"}
    )
    assert wrong.status_code == 400 and "no account" in wrong.get_data(as_text=True)
    attached = agent_client.post(
        f"/console/dead-letters/email/{entry_id}/attach", data={"csrf_token": token, "account_id": "A1"}
    )
    assert attached.status_code == 302 and attached.headers["Location"].endswith(f"/console/c/{CID}")
    page = agent_client.get(f"/console/c/{CID}").get_data(as_text=True)
    assert "I lost my job" in page and '<option value="email"' in page
    kinds = [i["kind"] for i in agent_client.get("/console/api/inbox").get_json()["items"]]
    assert "dead_letter" not in kinds and "conversation" in kinds
    reply = agent_client.post(
        f"/console/api/c/{CID}/reply", json={"text": "We can help.", "channel": "email"},
        headers={"X-CSRFToken": token},
    )  # fmt: skip
    assert reply.get_json()["outcome"] == "sent"


def test_an_email_reply_cap_item_opens_and_can_be_answered(
    agent_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    add_account(web_parts, email="maria@example.com")
    web_parts.history.inbound(CID, source="email:<x@example.org>", channel="email", text="again and again")
    web_parts.handoff.escalate(CID, "email_reply_cap_reached")
    [item] = agent_client.get("/console/api/inbox").get_json()["items"]
    assert item["kind"] == "email_reply_cap" and item["url"] == f"/console/c/{CID}"
    assert "again and again" in agent_client.get(item["url"]).get_data(as_text=True)
    token = csrf_of(agent_client, "/console/")
    reply = agent_client.post(
        f"/console/api/c/{CID}/reply", json={"text": "A person is looking at this.", "channel": "email"},
        headers={"X-CSRFToken": token},
    )  # fmt: skip
    assert reply.get_json()["outcome"] == "sent"


def test_an_agent_sees_their_queue_and_a_supervisor_every_queue(
    agent_client: FlaskClient, supervisor_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    escalated(web_parts, "acct-B1", "human")
    escalated(web_parts, "acct-C1", "dispute")
    escalated(web_parts, "acct-D1", "dispute")
    web_parts.handoff.claim("acct-C1", "ben")
    web_parts.handoff.claim("acct-D1", AGENT)
    mine = [i["conversation_id"] for i in agent_client.get("/console/api/inbox").get_json()["items"]]
    assert sorted(mine) == ["acct-B1", "acct-D1"]
    everyone = [i["conversation_id"] for i in supervisor_client.get("/console/api/inbox").get_json()["items"]]
    assert sorted(everyone) == ["acct-B1", "acct-C1", "acct-D1"]
    bens = supervisor_client.get("/console/api/inbox?claimed_by=ben").get_json()["items"]
    assert [i["conversation_id"] for i in bens] == ["acct-C1"]
    assert 'id="filter-claimed_by"' in supervisor_client.get("/console/").get_data(as_text=True)
    assert 'id="filter-claimed_by"' not in agent_client.get("/console/").get_data(as_text=True)
    # An agent cannot widen their view with the supervisors' filter.
    assert agent_client.get("/console/api/inbox?claimed_by=ben").get_json()["items"] != bens


def test_a_failing_page_is_a_page_and_a_failing_script_request_json(
    agent_client: FlaskClient, supervisor_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    for path in ("/console/c/acct-NOBODY", "/console/dead-letters/email/1-0", "/console/c/bad%20id"):
        answer = agent_client.get(path)
        assert answer.status_code == 404, path
        assert answer.mimetype == "text/html", path
        page = answer.get_data(as_text=True)
        assert 'id="back-to-inbox"' in page and "<h1>Not found</h1>" in page
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers[name] == value
    script = agent_client.get("/console/api/c/bad%20id/state")
    assert script.status_code == 404 and script.get_json()["status"] == 404
    # A move the state does not allow, from a form: back on the page, with the reason as a message.
    escalated(web_parts)
    web_parts.handoff.claim(CID, "ben")
    token = csrf_of(agent_client, "/console/")
    conflict = agent_client.post(f"/console/c/{CID}/hand-back", data={"csrf_token": token})
    assert conflict.status_code == 302
    assert 'class="message error"' in agent_client.get(conflict.headers["Location"]).get_data(as_text=True)
    bad = agent_client.post(f"/console/c/{CID}/plan", data={"csrf_token": token, "instalment": "x" * 50})
    assert bad.status_code == 400 and bad.mimetype == "text/html"
    assert 'id="back-to-inbox"' in bad.get_data(as_text=True)
    no_token = agent_client.post(f"/console/c/{CID}/note", data={"text": "hi"})
    assert no_token.status_code == 400 and "CSRF" in no_token.get_data(as_text=True)
    json_no_token = agent_client.post(f"/console/api/c/{CID}/reply", json={"text": "hi"})
    assert json_no_token.status_code == 400 and json_no_token.get_json()["status"] == 400
