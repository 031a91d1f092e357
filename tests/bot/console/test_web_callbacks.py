"""The callbacks list and the numbers to call: each callback at the time asked for in the agents'
zone and in the person's, with their own words (escaped) and phone or video; the number or
address masked until the agent asks to see it (a POST with the CSRF token), which the audit
records with the agent's name, on the list and on the conversation page."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask.testing import FlaskClient

from bot.console.handoff import Actor
from bot.store.accounts import Account
from tests.bot.console.conftest import AGENT, ConsoleTestParts, add_account, csrf_of
from tests.bot.console.test_web import CID, XSS, escalated

ANA = Actor.of(AGENT, "agent")
LUIS = "acct-A2"
LUIS_PHONE = "+13105550177"
LUIS_EMAIL = "luis.ortega@example.com"


def add_luis(parts: ConsoleTestParts) -> Account:
    """A person in Los Angeles (the agents are in New York)."""
    account = Account(
        account_id="A2", first_name="Luis", balance=Decimal("80.00"), currency="USD", creditor="Acme",
        language="en", phone=LUIS_PHONE, email=LUIS_EMAIL, timezone="America/Los_Angeles",
    )  # fmt: skip
    parts.accounts.upsert(account)
    return account


def rows(page: str) -> dict[str, str]:
    """Each callback row's HTML, by its conversation."""
    return {
        match.group(1): match.group(0)
        for match in re.finditer(r'<tr class="callback" data-conversation="([^"]+)".*?</tr>', page, re.S)
    }


def cell(row: str, name: str) -> str:
    match = re.search(rf'<td class="{name}">(.*?)</td>', row, re.S)
    assert match, name
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def reveal_audit(parts: ConsoleTestParts) -> list[dict[str, str]]:
    entries = [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in parts.redis.xrange(parts.keys.audit)
    ]
    return [entry for entry in entries if entry.get("kind") == "console:reveal_address"]


def test_the_callbacks_list_shows_the_time_in_both_zones_their_words_and_how(
    agent_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    add_account(web_parts)  # Maria, New York
    add_luis(web_parts)
    web_parts.desk.record_callback(LUIS, ANA, "tomorrow at 3pm", "video")
    web_parts.desk.record_callback(CID, ANA, "whenever suits", "phone")
    page = agent_client.get("/console/callbacks").get_data(as_text=True)
    assert "in the agents' zone (America/New_York) and in theirs" in page
    luis, maria = rows(page)[LUIS], rows(page)[CID]
    # 15:00 on Tuesday in Los Angeles is 18:00 in New York.
    assert cell(luis, "when") == "Tue 3 Mar 18:00"
    assert '<time datetime="2026-03-03T15:00:00-08:00">' in luis
    assert cell(luis, "when-theirs") == "Tue 3 Mar 15:00 (America/Los_Angeles)"
    assert cell(luis, "words") == "tomorrow at 3pm"
    assert cell(luis, "how") == "Video call" and 'data-how="video"' in luis
    # A video call goes to the email address; masked until asked for.
    assert "l***@example.com" in cell(luis, "contact") and LUIS_EMAIL not in page
    assert "Show the address" in luis and 'name="channel" value="email"' in luis
    # Words that say no time are kept as said; a phone callback shows the number, masked.
    assert cell(maria, "when") == "not understood" and cell(maria, "when-theirs") == "not understood"
    assert cell(maria, "words") == "whenever suits" and cell(maria, "how") == "Phone call"
    assert "+*********23" in cell(maria, "contact") and "+14155550123" not in page
    assert "Show the number" in maria and 'name="channel" value="sms"' in maria
    assert list(rows(page)) == [LUIS, CID]  # by the time asked for; not understood last


def test_revealing_a_callbacks_number_shows_it_to_that_agent_once_and_audits_it(
    agent_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    add_account(web_parts)
    add_luis(web_parts)
    web_parts.desk.record_callback(CID, ANA, "tomorrow at 3pm", "phone")
    web_parts.desk.record_callback(LUIS, ANA, "friday morning", "video")
    form = {"conversation_id": CID, "channel": "sms"}
    assert agent_client.post("/console/callbacks/reveal", data=form).status_code == 400  # no CSRF token
    assert reveal_audit(web_parts) == []

    token = csrf_of(agent_client, "/console/callbacks")
    shown = agent_client.post("/console/callbacks/reveal", data={**form, "csrf_token": token})
    assert shown.status_code == 200
    page = shown.get_data(as_text=True)
    assert cell(rows(page)[CID], "contact") == "+14155550123"
    assert LUIS_EMAIL not in page and "l***@example.com" in page  # only the one asked for
    assert "showing it is recorded in the audit" in page
    [entry] = reveal_audit(web_parts)
    assert (entry["by"], entry["role"], entry["conversation_id"], entry["channel"]) == (
        AGENT, "agent", CID, "sms"
    )  # fmt: skip
    assert "4155550123" not in str(reveal_audit(web_parts))
    # Not kept: the list is masked again on the next look.
    assert "+14155550123" not in agent_client.get("/console/callbacks").get_data(as_text=True)

    video = agent_client.post(
        "/console/callbacks/reveal", data={"conversation_id": LUIS, "channel": "email", "csrf_token": token}
    ).get_data(as_text=True)
    assert cell(rows(video)[LUIS], "contact") == LUIS_EMAIL
    assert [e["channel"] for e in reveal_audit(web_parts)] == ["sms", "email"]

    # No such address: said so, nothing revealed or audited.
    web_parts.accounts.upsert(Account(account_id="A3", first_name="Ana", balance=Decimal("9.00"), currency="USD",
                                      creditor="Acme", language="en", phone="+14155550999"))  # fmt: skip
    refused = agent_client.post(
        "/console/callbacks/reveal", data={"conversation_id": "acct-A3", "channel": "email", "csrf_token": token},
        follow_redirects=True,
    ).get_data(as_text=True)  # fmt: skip
    assert "the person has no email address" in refused and len(reveal_audit(web_parts)) == 2


def test_the_persons_words_are_escaped_on_the_callbacks_list(
    agent_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    add_account(web_parts, first_name=XSS[1])
    web_parts.desk.record_callback(CID, ANA, f"tomorrow {XSS[0]} at 3pm", "phone")
    page = agent_client.get("/console/callbacks").get_data(as_text=True)
    for payload in XSS:
        assert payload not in page
    assert "tomorrow &lt;script&gt;alert(1)&lt;/script&gt; at 3pm" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_conversation_page_reveals_an_address_for_the_agent_and_audits_it(
    agent_client: FlaskClient, web_parts: ConsoleTestParts
) -> None:
    add_account(web_parts)
    escalated(web_parts)
    page = agent_client.get(f"/console/c/{CID}").get_data(as_text=True)
    assert "+14155550123" not in page and "+*********23" in page
    assert 'id="reveal-sms"' in page
    token = csrf_of(agent_client, f"/console/c/{CID}")
    assert agent_client.post(f"/console/c/{CID}/reveal", data={"channel": "sms"}).status_code == 400
    shown = agent_client.post(f"/console/c/{CID}/reveal", data={"channel": "sms", "csrf_token": token})
    assert shown.status_code == 200
    address = re.search(r'<p class="address" id="address-sms">.*?</p>', shown.get_data(as_text=True), re.S)
    assert address and "+14155550123" in address.group(0)
    [entry] = reveal_audit(web_parts)
    assert (entry["by"], entry["channel"], entry["conversation_id"]) == (AGENT, "sms", CID)
    assert "+14155550123" not in agent_client.get(f"/console/c/{CID}").get_data(as_text=True)
    bad: Any = agent_client.post(f"/console/c/{CID}/reveal", data={"channel": "fax", "csrf_token": token})
    assert bad.status_code == 400 and len(reveal_audit(web_parts)) == 1
