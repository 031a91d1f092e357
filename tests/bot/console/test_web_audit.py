"""A conversation's audit page (supervisors only): every hand-off change and every action an agent
took on it, with who, oldest first; an agent is refused."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from bot.console import desk_reading
from bot.console.web import CSP
from tests.bot.console.conftest import AGENT, ConsoleTestParts, add_account, csrf_of
from tests.bot.console.test_web import CID, escalated


def audit_rows(page: str) -> list[tuple[str, str]]:
    """(what, who) for each row of the audit table."""
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        rows.append((cells[1], cells[2]))
    return rows


def test_the_audit_page_lists_every_change_and_action_with_the_agent(
    agent_client: FlaskClient, supervisor_client: FlaskClient, web_parts: ConsoleTestParts, web_clock: Any
) -> None:
    add_account(web_parts)
    escalated(web_parts)
    token = csrf_of(agent_client, f"/console/c/{CID}")

    def post(action: str, **form: str) -> None:
        web_clock.advance(timedelta(seconds=1))
        answer = agent_client.post(f"/console/c/{CID}/{action}", data={"csrf_token": token, **form})
        assert answer.status_code == 302, action

    post("claim")
    post("reply", text="Hello Maria, this is Ana.")
    post("note", text="Sounded worried.")
    post("flag", flag="dispute", on="1", detail="says it is not theirs")
    post("hand-back")
    post("claim")
    post("close", outcome="dispute_opened")

    page = supervisor_client.get(f"/console/c/{CID}/audit").get_data(as_text=True)
    assert audit_rows(page) == [
        ("handoff: escalate", "system"),
        ("handoff: claim", AGENT),
        ("console:reply", AGENT),
        ("console:note", AGENT),
        ("console:flag", AGENT),
        ("handoff: hand_back", AGENT),
        ("handoff: claim", AGENT),
        ("handoff: close", AGENT),
    ]
    assert "outcome=dispute_opened" in page and "flag=dispute" in page
    # Neither the person's words nor the note are in the audit.
    assert "Hello Maria" not in page and "Sounded worried" not in page

    refused = agent_client.get(f"/console/c/{CID}/audit")
    assert refused.status_code == 403 and "Only a supervisor" in refused.get_data(as_text=True)
    assert refused.headers["Content-Security-Policy"] == CSP


def test_the_audit_page_reads_the_conversations_own_stream_not_the_busy_global_one(
    supervisor_client: FlaskClient, web_parts: ConsoleTestParts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(desk_reading, "AUDIT_SCAN", 100)  # far fewer than the entries below
    add_account(web_parts)
    escalated(web_parts)
    web_parts.handoff.claim(CID, AGENT)
    keys = web_parts.keys
    # The global audit stream's newest entries are all about other conversations.
    pipe = web_parts.redis.pipeline(transaction=False)
    for n in range(500):
        pipe.xadd(
            keys.audit, {"kind": "handoff", "conversation_id": f"acct-X{n}", "event": "claim", "by": "x"}
        )
    pipe.execute()
    page = supervisor_client.get(f"/console/c/{CID}/audit").get_data(as_text=True)
    assert audit_rows(page) == [("handoff: escalate", "system"), ("handoff: claim", AGENT)]
