"""The funnel pages as ops use them: the numbers in the tables are those of the stored
conversations, every table downloads as CSV (escaped), the charts are SVG images of the same query,
bad parameters are a 400 naming them, and retiring a wording (a form with CSRF and a reason) makes
outreach stop choosing it."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from bot.ops.analytics.conversations import save_facts
from bot.ops.analytics.store import AnalyticsStore
from bot.store.opener_stats import RetiredOpeners
from tests.bot.console.conftest import ConsoleTestParts, csrf_of
from tests.bot.ops.test_funnel import T0, arm, conversation, scripted
from tests.bot.outreach.test_planner import Sent, account

#: The web clock is Monday 2 March 2026, 15:00 UTC (10:00 in New York, the console's zone).
RANGE = "since=2026-03-02&until=2026-03-02"


def cell(body: str, cell_id: str) -> str:
    """A table cell's text (tags dropped, spaces collapsed)."""
    match = re.search(rf'<td id="{re.escape(cell_id)}"[^>]*>(.*?)</td>', body, re.S)
    assert match, f"no cell {cell_id}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture
def stored(ops_store: AnalyticsStore) -> AnalyticsStore:
    save_facts(ops_store, scripted())
    return ops_store


def test_the_funnel_table_shows_the_stored_conversations_numbers(
    ops_client: FlaskClient, stored: object
) -> None:
    page = ops_client.get(f"/console/ops/funnel?{RANGE}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    # Row 1: started by us (10 contacted, 6 replied...); row 2: started by the person.
    assert [cell(body, f"funnel-1-{stage}").split()[0] for stage in
            ("contacted", "replied", "verified", "plan_offered", "plan_created", "first_payment")] == [
        "10", "6", "4", "3", "2", "1",
    ]  # fmt: skip
    assert cell(body, "funnel-1-replied") == "6 60.0% of previous, 60.0% of first"
    assert cell(body, "funnel-1-opted-out") == "1" and cell(body, "funnel-1-escalated") == "2"
    assert cell(body, "funnel-2-contacted") == "does not apply" and cell(body, "funnel-2-replied") == "2"
    assert (cell(body, "plans-1-kept"), cell(body, "plans-1-broken"), cell(body, "plans-1-pending")) == (
        "1",
        "1",
        "0",
    )
    assert cell(body, "plans-2-median") == "2 h 0 min"
    assert "<td>hardship</td><td>2</td>" in body
    assert "Conversations that started from 2 Mar 2026 to 2 Mar 2026" in body and ": 12." in body


def test_the_default_range_is_the_28_days_before_today(
    ops_client: FlaskClient, ops_store: AnalyticsStore
) -> None:
    save_facts(ops_store, [
        conversation(1, started_at=T0 - timedelta(days=1)),  # yesterday: in
        conversation(2, started_at=T0 - timedelta(days=28)),  # 28 days ago: in
        conversation(3, started_at=T0 - timedelta(days=29)),  # too old
        conversation(4),  # today: not a whole day yet
    ])  # fmt: skip
    body = ops_client.get("/console/ops/funnel").get_data(as_text=True)
    assert 'name="since" value="2026-02-02"' in body and 'name="until" value="2026-03-01"' in body
    assert cell(body, "funnel-1-contacted") == "2"


def test_the_funnel_splits_by_the_dimensions_asked_for(
    ops_client: FlaskClient, ops_store: AnalyticsStore
) -> None:
    save_facts(ops_store, [conversation(1, creditor="Acme"), conversation(2, creditor="Acme", channel="email"),
                           conversation(3, creditor="Bolt")])  # fmt: skip
    body = ops_client.get(f"/console/ops/funnel?{RANGE}&by=creditor&by=channel").get_data(as_text=True)
    assert re.findall(r'<tr class="funnel-row"[^>]*>\s*<th scope="row">([^<]*)</th>', body) == [
        "Acme, email (started by us)", "Acme, sms (started by us)", "Bolt, sms (started by us)",
    ]  # fmt: skip
    assert (
        ops_client.get(f"/console/ops/funnel?{RANGE}&creditor=Bolt")
        .get_data(as_text=True)
        .count('class="funnel-row"')
        == 1
    )


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("since=yesterday", "since must be a date"),
        ("until=2026-02-30", "until is not a date"),
        ("since=2026-03-02&until=2026-03-01", "since must be on or before until"),
        ("since=2020-01-01&until=2026-03-01", "at most"),
        ("by=colour", "by must be among"),
        ("channel=fax", "channel must be one of"),
        ("language=fr", "language must be one of"),
        ("table=everything", "table must be one of"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(ops_client: FlaskClient, query: str, named: str) -> None:
    path = "/console/ops/funnel.csv" if query.startswith("table") else "/console/ops/funnel"
    answer = ops_client.get(f"{path}?{query}")
    assert answer.status_code == 400 and named in answer.get_data(as_text=True)


def test_every_funnel_table_downloads_as_csv_with_its_header_and_escaped_names(
    ops_client: FlaskClient, ops_store: AnalyticsStore
) -> None:
    save_facts(ops_store, [*scripted(), conversation(99, creditor="=HYPERLINK(\"http://evil\")",
                                                    escalated_at=T0, escalation_reasons=("dispute",))])  # fmt: skip
    answer = ops_client.get(f"/console/ops/funnel.csv?{RANGE}&by=creditor")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    table = rows_of(answer.get_data(as_text=True))
    assert table[0][:4] == ["started_by", "creditor", "conversations", "contacted"]
    evil = next(line for line in table if "HYPERLINK" in line[1])
    assert evil[1] == '\'=HYPERLINK("http://evil")'
    capitol = next(line for line in table if line[:2] == ["opener", "Capitol Mobile"])
    assert capitol[table[0].index("replied")] == "6"
    for name, header in (("plans", ["started_by", "creditor", "plans_created"]),
                         ("reasons", ["started_by", "creditor", "reason", "conversations"]),
                         ("weeks", ["week", "group", "contacted", "plans_created", "plan_rate"])):  # fmt: skip
        download = ops_client.get(f"/console/ops/funnel.csv?{RANGE}&by=creditor&table={name}")
        assert (
            download.status_code == 200
            and rows_of(download.get_data(as_text=True))[0][: len(header)] == header
        )
    reasons = rows_of(
        ops_client.get(f"/console/ops/funnel.csv?{RANGE}&by=creditor&table=reasons").get_data(as_text=True)
    )
    assert ["opener", '\'=HYPERLINK("http://evil")', "dispute", "1"] in reasons


def test_the_charts_are_svg_images_of_the_pages_own_query(ops_client: FlaskClient, stored: object) -> None:
    body = ops_client.get(f"/console/ops/funnel?{RANGE}&by=opener").get_data(as_text=True)
    sources = re.findall(r'<img id="(\w+-chart)" src="([^"]+)"[^>]* alt="([^"]+)"', body)
    assert [name for name, _, _ in sources] == ["funnel-chart", "weekly-chart"]
    for _, source, alt in sources:
        url = urlsplit(source.replace("&amp;", "&"))
        assert parse_qs(url.query) == {"since": ["2026-03-02"], "until": ["2026-03-02"], "by": ["opener"]}
        chart = ops_client.get(f"{url.path}?{url.query}")
        assert chart.status_code == 200 and chart.mimetype == "image/svg+xml"
        assert chart.data.startswith(b"<?xml") and b"<title" in chart.data and alt
    funnel_svg = ops_client.get(f"/console/ops/funnel/chart.svg?{RANGE}&by=opener").get_data(as_text=True)
    assert "es:warm (started by us): Contacted 10, Replied 6 (60.0%)" in funnel_svg


def test_the_openers_page_shows_rates_intervals_and_the_verdict(
    ops_client: FlaskClient, ops_store: AnalyticsStore
) -> None:
    save_facts(ops_store, arm(0, "en:warm", 100, replied=60) + arm(200, "en:plain", 100, replied=30))
    body = ops_client.get(f"/console/ops/openers?{RANGE}").get_data(as_text=True)
    assert cell(body, "contacted-en-warm") == "100"
    assert cell(body, "replied-en-warm") == "60 (60.0%) 50.2% to 69.1%"
    assert "en:warm gets a reply more often than en:plain (60.0% vs 30.0%" in body
    assert "not enough evidence yet" in body  # no plans at all: nothing to call on plans
    assert cell(body, "status-es-warm") == "In use" and cell(body, "contacted-es-warm") == "0"
    chart = ops_client.get(f"/console/ops/openers/chart.svg?{RANGE}")
    assert chart.mimetype == "image/svg+xml" and b"en:warm, 100 contacted" in chart.data
    table = rows_of(ops_client.get(f"/console/ops/openers.csv?{RANGE}").get_data(as_text=True))
    assert table[0][:4] == ["wording", "language", "variant", "contacted"]
    assert table[1][:6] == ["en:plain", "en", "plain", "100", "30", "0.3000"]


def test_retiring_a_wording_needs_csrf_and_a_reason_and_then_outreach_skips_it(
    ops_client: FlaskClient, ops_parts: ConsoleTestParts
) -> None:
    form = {"language": "en", "variant": "warm", "reason": "too chirpy"}
    refused = ops_client.post("/console/ops/openers/retire", data=form)
    assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True)
    retired = RetiredOpeners(ops_parts.redis, ops_parts.keys, ops_parts.clock)
    assert retired.retired() == frozenset()
    token = csrf_of(ops_client, "/console/ops/openers")
    no_reason = ops_client.post(
        "/console/ops/openers/retire", data={**form, "reason": " ", "csrf_token": token}
    )
    assert no_reason.status_code == 302 and retired.retired() == frozenset()
    assert "Say why en:warm is retired" in ops_client.get("/console/ops/openers").get_data(as_text=True)
    done = ops_client.post("/console/ops/openers/retire",
                           data={**form, "csrf_token": token, "next": f"/console/ops/openers?{RANGE}"})  # fmt: skip
    assert done.status_code == 302 and done.headers["Location"] == f"/console/ops/openers?{RANGE}"
    assert retired.retired() == {"en:warm"}
    page = ops_client.get("/console/ops/openers").get_data(as_text=True)
    assert "en:warm is retired: new openers use the other en wordings." in page
    assert cell(page, "status-en-warm").startswith("Retired by olga, 2 Mar 2026 10:00: too chirpy")
    # Outreach now gives every English account the other wording.
    for n in range(1, 11):
        ops_parts.accounts.upsert(account(n))
    sent = Sent()
    ops_parts.outreach_handler(send=sent).contact_many([f"A{n}" for n in range(1, 11)])
    assert len(sent.openers) == 10 and {variant for _, _, variant, _ in sent.openers} == {"plain"}
    # Restored, it is in use again; both changes are in the audit under the ops person's name.
    restored = ops_client.post("/console/ops/openers/restore", data={"language": "en", "variant": "warm",
                                                                     "csrf_token": token})  # fmt: skip
    assert restored.status_code == 302 and retired.retired() == frozenset()
    kinds = [(f[b"kind"], f[b"by"]) for _, f in ops_parts.redis.xrange(ops_parts.keys.audit)
             if f.get(b"kind", b"").startswith(b"ops:")]  # fmt: skip
    assert kinds == [(b"ops:opener_retired", b"olga"), (b"ops:opener_restored", b"olga")]


def test_only_configured_wordings_can_be_retired(ops_client: FlaskClient) -> None:
    token = csrf_of(ops_client, "/console/ops/openers")
    answer = ops_client.post("/console/ops/openers/retire",
                             data={"language": "en", "variant": "nope", "reason": "x", "csrf_token": token})  # fmt: skip
    assert answer.status_code == 404


def test_retiring_the_last_wording_of_a_language_says_outreach_keeps_using_them_all(
    ops_client: FlaskClient,
) -> None:
    token = csrf_of(ops_client, "/console/ops/openers")
    for variant in ("warm", "plain"):
        ops_client.post("/console/ops/openers/retire",
                        data={"language": "es", "variant": variant, "reason": "x", "csrf_token": token})  # fmt: skip
    page = ops_client.get("/console/ops/openers").get_data(as_text=True)
    assert "Every es wording is retired now, so outreach keeps using them all" in page


def test_the_losses_page_lists_the_steps_where_conversations_stop(
    ops_client: FlaskClient, ops_store: AnalyticsStore
) -> None:
    old = datetime(2026, 2, 20, 15, 0, tzinfo=T0.tzinfo)
    save_facts(ops_store, [
        conversation(1, started_at=old, last_at=old, last_step="utter_ask_dob"),
        conversation(2, started_at=old, last_at=old, last_step="utter_ask_dob", fallbacks=1),
        conversation(3, started_at=old, last_at=old, last_step="payment_plan_form", escalated_at=old,
                     escalation_reasons=("hardship",)),
        conversation(4, started_at=old, last_at=old, last_step="=cmd"),
    ])  # fmt: skip
    body = ops_client.get("/console/ops/losses").get_data(as_text=True)
    assert re.findall(r'data-step="([^"]+)"', body) == ["utter_ask_dob", "=cmd", "payment_plan_form"]
    assert cell(body, "loss-1-stopped") == "2 (66.7%)" and cell(body, "loss-1-fell-back") == "1 (100.0%)"
    assert cell(body, "loss-3-escalated") == "1 (100.0%)"
    table = rows_of(ops_client.get("/console/ops/losses.csv").get_data(as_text=True))
    assert table[0][:3] == ["step", "conversations", "stopped"] and table[2][0] == "'=cmd"


def test_agents_cannot_see_the_funnel(agent_client: FlaskClient) -> None:
    assert agent_client.get("/console/ops/funnel").status_code == 403
    assert agent_client.get("/console/ops/funnel.csv").status_code == 403


def test_supervisors_can_retire_wordings(supervisor_client: FlaskClient, ops_parts: ConsoleTestParts) -> None:
    token = csrf_of(supervisor_client, "/console/ops/openers")
    supervisor_client.post("/console/ops/openers/retire",
                           data={"language": "en", "variant": "plain", "reason": "x", "csrf_token": token})  # fmt: skip
    assert RetiredOpeners(ops_parts.redis, ops_parts.keys).retirements()["en:plain"].by == "sue"
