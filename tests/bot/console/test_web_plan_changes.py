"""The plan panel when the person has a plan: it lists their current plan with its schedule, and
the form changes it (the earlier plan ends, the page says so), once per form, without JavaScript."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from tests.bot.console.conftest import ConsoleTestParts, add_account
from tests.bot.console.test_web import CID, escalated
from tests.bot.console.test_web_work import PREVIEW, hidden, plans_of, post_plan

CHANGE = PREVIEW.replace("instalment=40", "instalment=60").replace("2026-03-16", "2026-03-10")


def post_change(client: FlaskClient, page: str, **extra: str) -> Any:
    return post_plan(
        client, page, instalment="60", first_due="2026-03-10", replaces=hidden(page, "replaces"), **extra
    )


def labelled(page: str) -> None:
    """Every visible control of the plan panel has a label (or its text, for buttons)."""
    panel = page[page.index('id="plan"') : page.index('id="note-heading"')]
    for match in re.finditer(r"<(input|select|textarea)\b([^>]*)>", panel):
        attributes = match.group(2)
        if 'type="hidden"' in attributes:
            continue
        control = re.search(r'id="([^"]+)"', attributes)
        assert control and f'for="{control.group(1)}"' in panel, match.group(0)


def test_the_panel_lists_the_current_plan_and_the_form_changes_it(
    agent_client: FlaskClient, web_parts: ConsoleTestParts, web_rasa: Any
) -> None:
    add_account(web_parts)
    escalated(web_parts)
    web_rasa.verified[CID] = True
    page = agent_client.get(PREVIEW).get_data(as_text=True)
    assert 'id="plan-none"' in page and 'name="replaces"' not in page
    assert ">Set up the plan</button>" in page
    post_plan(agent_client, page, confirmed="1")
    [old] = [p.decode() for p in plans_of(web_parts)]

    page = agent_client.get(CHANGE).get_data(as_text=True)
    current = page[page.index('id="plan-current"') : page.index("</ul>", page.index('id="plan-current"'))]
    assert f'data-plan="{old}"' in current and "3 payments of $40.00 every month" in current
    assert "- Monday, 16 March 2026: $40.00" in current  # its schedule
    assert hidden(page, "replaces") == old
    assert '<button type="submit" id="plan-create">Change the plan</button>' in page
    assert "it replaces their current plan, which then ends" in page
    labelled(page)

    done = post_change(agent_client, page, confirmed="1").get_data(as_text=True)
    assert f"Plan changed: the earlier plan ({old}) has ended. New plan: 2 payments of $60.00" in done
    assert "Payment link and schedule to the person: Sent" in done
    [_, new] = [p.decode() for p in plans_of(web_parts)]
    current = done[done.index('id="plan-current"') : done.index("</ul>", done.index('id="plan-current"'))]
    assert f'data-plan="{new}"' in current and f'data-plan="{old}"' not in current
    assert f"ended, replaced by {new}" in done  # the account column keeps the old one, ended

    again = post_change(agent_client, page, confirmed="1").get_data(as_text=True)
    assert "This change was already made (the form was sent twice)" in again
    assert len(plans_of(web_parts)) == 2
    history = agent_client.get(f"/console/api/c/{CID}/history").get_json()["lines"]
    assert [line["kind"] for line in history].count("plan_replaced") == 1

    # The old form, sent again as a new one (a stale tab), cannot change the ended plan.
    stale = page.replace(hidden(page, "request_key"), "req-stale-tab-00001")
    refused = post_change(agent_client, stale, confirmed="1").get_data(as_text=True)
    assert "That plan was changed already" in refused and len(plans_of(web_parts)) == 2
