"""The review pages: the list and its filters (a bad one is a 400 naming it), one conversation turn
by turn, tags and the reviewed mark (CSRF-protected, persisted) and *Save as test story*."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
import yaml
from flask.testing import FlaskClient

from bot.config import Config
from bot.ops.analytics.conversations import load_one, save_facts
from bot.ops.analytics.facts import ConversationFacts
from bot.ops.analytics.schema import RASA_EVENTS
from bot.ops.analytics.store import AnalyticsStore, EventRow
from bot.ops.review_web import PAGE_SIZE
from tests.bot.console.conftest import add_account, csrf_of
from tests.bot.ops.test_stories import PROJECT, session_start, verification

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)  # the web tests' clock
REVIEW = "/console/ops/review"


def facts(cid: str, started: datetime, **changes: Any) -> ConversationFacts:
    base = ConversationFacts(
        conversation_id=cid, account_id=None, started_at=started, last_at=started + timedelta(minutes=5),
        channel="sms", language="en", creditor="Acme", opener_variant="warm", contacted_at=started,
        replied_at=None, verified_at=None, plan_offered_at=None, plan_created_at=None, first_payment_at=None,
        plan_missed_at=None, opted_out_at=None, escalated_at=None, escalation_reasons=(), outcome=None,
        user_turns=2, fallbacks=0, low_confidence=0, last_step="utter_greet",
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def listed(client: FlaskClient, query: str = "") -> list[str]:
    page = client.get(f"{REVIEW}{'?' + query if query else ''}")
    assert page.status_code == 200, page.get_data(as_text=True)
    return re.findall(r'data-conversation="([^"]+)"', page.get_data(as_text=True))


def rasa_rows(store: AnalyticsStore, sender: str, events: list[Mapping[str, Any]]) -> None:
    with store.transaction() as connection:
        connection.execute(
            sa.insert(RASA_EVENTS), [{"sender_id": sender, "data": json.dumps(dict(e))} for e in events]
        )


def test_the_list_shows_conversations_newest_first_and_each_filter_narrows_it(
    ops_client: FlaskClient, ops_store: AnalyticsStore
) -> None:
    save_facts(ops_store, [
        # 22:00 on Sunday 1 March in New York (the console's zone), 03:00 on the 2nd in UTC.
        facts("c-sunday", datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc)),
        facts("c-email", T0 - timedelta(hours=3), channel="email", language="es", creditor="Globex",
              opener_variant="plain", escalated_at=T0, escalation_reasons=("hardship",), outcome="paid"),
        facts("c-fell", T0 - timedelta(hours=2), fallbacks=1, low_confidence=2, user_turns=9,
              opted_out_at=T0, tags=("bug",)),
        facts("c-done", T0 - timedelta(hours=1), reviewed=True, reviewed_by="olga", reviewed_at=T0),
    ])  # fmt: skip
    assert listed(ops_client) == ["c-done", "c-fell", "c-email", "c-sunday"]
    assert listed(ops_client, "from=2026-03-01&to=2026-03-01") == ["c-sunday"]
    assert listed(ops_client, "from=2026-03-02") == ["c-done", "c-fell", "c-email"]
    assert listed(ops_client, "channel=email") == ["c-email"]
    assert listed(ops_client, "language=es") == ["c-email"]
    assert listed(ops_client, "creditor=Globex") == ["c-email"]
    assert listed(ops_client, "opener=plain") == ["c-email"]
    assert listed(ops_client, "outcome=paid") == ["c-email"]
    assert listed(ops_client, "escalated=yes") == ["c-email"]
    assert listed(ops_client, "opted_out=yes") == ["c-fell"]
    assert listed(ops_client, "fallback=yes") == ["c-fell"]
    assert listed(ops_client, "low_confidence=no") == ["c-done", "c-email", "c-sunday"]
    assert listed(ops_client, "min_turns=3") == ["c-fell"] and listed(ops_client, "max_turns=2") == [
        "c-done", "c-email", "c-sunday"]  # fmt: skip
    assert listed(ops_client, "tag=bug") == ["c-fell"]
    assert listed(ops_client, "reviewed=yes") == ["c-done"]
    assert listed(ops_client, "channel=sms&reviewed=no") == ["c-fell", "c-sunday"]
    body = ops_client.get(f"{REVIEW}?channel=email").get_data(as_text=True)
    assert "1 conversation," in body and "escalated (hardship)" in body and "closed: paid" in body
    # The filter form keeps what was chosen.
    assert re.search(r'<option value="email" selected>', body)


def test_the_list_goes_page_by_page_keeping_the_filters(
    ops_client: FlaskClient, ops_store: AnalyticsStore
) -> None:
    save_facts(ops_store, [facts(f"c{n:03}", T0 - timedelta(minutes=n)) for n in range(PAGE_SIZE + 3)])
    first = ops_client.get(f"{REVIEW}?channel=sms").get_data(as_text=True)
    assert len(re.findall(r'data-conversation="', first)) == PAGE_SIZE
    older = re.search(r'<a href="([^"]+)" id="older"', first)
    assert older and "channel=sms" in older.group(1) and "page=2" in older.group(1)
    assert listed(ops_client, older.group(1).split("?", 1)[1].replace("&amp;", "&")) == [
        f"c{n:03}" for n in range(PAGE_SIZE, PAGE_SIZE + 3)
    ]


def test_a_filter_that_cannot_be_read_is_a_400_naming_it(ops_client: FlaskClient) -> None:
    for query, named in (("channel=fax", "Channel"), ("from=yesterday", "From"), ("to=2026-13-01", "To"),
                         ("from=2026-03-05&to=2026-03-01", "From"), ("escalated=maybe", "Escalated"),
                         ("min_turns=-1", "Messages from"), ("max_turns=lots", "Messages to"),
                         ("tag=no%21", "Tag"), ("page=0", "Page"), ("creditor=%3Cb%3E", "Creditor"),
                         ("outcome=won", "Outcome")):  # fmt: skip
        answer = ops_client.get(f"{REVIEW}?{query}")
        assert answer.status_code == 400, query
        assert named in answer.get_data(as_text=True), query
    api = ops_client.get(f"{REVIEW}?language=fr", headers={"Accept": "application/json"})
    assert api.status_code == 400 and "Language" in api.get_json()["error"]


def test_the_conversation_page_shows_each_message_with_intent_confidence_and_the_action_after_it(
    ops_client: FlaskClient, ops_store: AnalyticsStore
) -> None:
    def at(minutes: int) -> float:
        return (T0 + timedelta(minutes=minutes)).timestamp()

    rasa_rows(ops_store, "acct-A1", [
        {"event": "user", "timestamp": at(1), "text": "<b>pay</b> 50", "metadata": {"address": "+14155550123"},
         "parse_data": {"intent": {"name": "propose_payment", "confidence": 0.42},
                        "entities": [{"entity": "amount", "value": "50", "start": 13, "end": 15}]}},
        {"event": "action", "timestamp": at(1), "name": "payment_plan_form"},
        {"event": "bot", "timestamp": at(1), "text": "Shall we set that up?"},
        {"event": "user", "timestamp": at(2), "text": "yes", "parse_data": {"intent": {"name": "affirm", "confidence": 0.97}}},
        {"event": "action", "timestamp": at(2), "name": "action_create_plan"},
    ])  # fmt: skip
    ops_store.add([
        EventRow(source="audit", source_id="1-0", at=T0 + timedelta(minutes=1, seconds=5), kind="withheld",
                 account_id="A1", rule="quiet_hours", message_kind="reply"),
        EventRow(source="deliveries", source_id="2-0", at=T0 + timedelta(minutes=1, seconds=6),
                 kind="delivery_delivered", conversation_id="acct-A1"),
    ])  # fmt: skip
    save_facts(ops_store, [facts("acct-A1", T0, user_turns=2, low_confidence=1, tags=("tone",))])
    page = ops_client.get(f"{REVIEW}/acct-A1")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "propose_payment" in body and "0.42" in body and "low confidence</strong>" in body
    assert "payment_plan_form" in body and "action_create_plan" in body and "0.97" in body
    assert "Shall we set that up?" in body
    assert "amount = 50" in body
    assert "Withheld" in body and "quiet_hours" in body and "delivered" in body
    assert "&lt;b&gt;pay&lt;/b&gt; 50" in body and "<b>pay</b>" not in body  # shown as data
    assert "+14155550123" not in body  # the metadata's address is not shown
    assert "tone" in body and 'id="story-form"' in body
    assert "<script>" not in body and "style=" not in body  # the CSP allows neither
    # The console's header (who is signed in, the ops links) and the times' zone.
    assert 'id="signed-in-as">olga (ops)' in body and "Times in America/New_York" in body
    assert "2026-03-02 10:01" in body  # 15:01 UTC in New York


def test_an_unknown_or_malformed_conversation_is_a_404(ops_client: FlaskClient) -> None:
    assert ops_client.get(f"{REVIEW}/acct-nobody").status_code == 404
    assert ops_client.get(f"{REVIEW}/-bad%20id").status_code == 404


def test_tags_and_the_reviewed_mark_need_csrf_and_persist(
    ops_client: FlaskClient, ops_store: AnalyticsStore
) -> None:
    save_facts(ops_store, [facts("acct-A1", T0)])
    refused = ops_client.post(f"{REVIEW}/acct-A1/tags", data={"tag": "bug"})
    assert refused.status_code == 400 and load_one(ops_store, "acct-A1").tags == ()  # type: ignore[union-attr]

    token = csrf_of(ops_client, f"{REVIEW}/acct-A1")
    added = ops_client.post(f"{REVIEW}/acct-A1/tags", data={"tag": "Wrong Intent", "csrf_token": token})
    assert added.status_code == 302 and added.headers["Location"] == f"{REVIEW}/acct-A1"
    assert load_one(ops_store, "acct-A1").tags == ("wrong intent",)  # type: ignore[union-attr]
    page = ops_client.get(added.headers["Location"]).get_data(as_text=True)
    assert "Tagged &#39;wrong intent&#39;." in page
    assert listed(ops_client, "tag=wrong+intent") == ["acct-A1"]

    bad = ops_client.post(f"{REVIEW}/acct-A1/tags", data={"tag": "<script>", "csrf_token": token})
    assert bad.status_code == 302
    assert "Tag not added" in ops_client.get(bad.headers["Location"]).get_data(as_text=True)

    ops_client.post(f"{REVIEW}/acct-A1/tags/remove", data={"tag": "wrong intent", "csrf_token": token})
    assert load_one(ops_store, "acct-A1").tags == ()  # type: ignore[union-attr]

    assert ops_client.post(f"{REVIEW}/acct-A1/reviewed", data={"reviewed": "yes"}).status_code == 400
    marked = ops_client.post(f"{REVIEW}/acct-A1/reviewed", data={"reviewed": "yes", "csrf_token": token})
    assert marked.status_code == 302
    stored = load_one(ops_store, "acct-A1")
    assert stored is not None and (stored.reviewed, stored.reviewed_by, stored.reviewed_at) == (
        True,
        "olga",
        T0,
    )
    assert "yes, by olga" in ops_client.get(f"{REVIEW}/acct-A1").get_data(as_text=True)
    ops_client.post(f"{REVIEW}/acct-A1/reviewed", data={"reviewed": "no", "csrf_token": token})
    assert load_one(ops_store, "acct-A1").reviewed is False  # type: ignore[union-attr]
    # Tagging a conversation that is not summarised is a 404, not a 500.
    assert (
        ops_client.post(f"{REVIEW}/acct-zz/tags", data={"tag": "bug", "csrf_token": token}).status_code == 404
    )


def test_save_as_test_story_writes_an_anonymised_story_rasa_can_read(
    ops_client: FlaskClient, ops_store: AnalyticsStore, ops_parts: Any, web_config: Config
) -> None:
    add_account(ops_parts, "A1", first_name="James")
    events = session_start(account_known=True, first_name="James", account_id="A1") + verification()
    rasa_rows(ops_store, "acct-A1", events)
    token = csrf_of(ops_client, f"{REVIEW}/acct-A1")
    assert ops_client.post(f"{REVIEW}/acct-A1/story").status_code == 400  # no CSRF token
    answer = ops_client.post(f"{REVIEW}/acct-A1/story", data={"csrf_token": token})
    assert answer.status_code == 302
    written = sorted((web_config.path(web_config.rasa.project_dir) / "tests").glob("test_*.yml"))
    assert len(written) == 1
    page = ops_client.get(answer.headers["Location"]).get_data(as_text=True)
    assert f"rasa_project/tests/{written[0].name}" in page
    text = written[0].read_text(encoding="utf-8")
    assert "James" not in text and "acct-A1" not in text  # the account's name and the id are not in it
    [story] = yaml.safe_load(text)["stories"]
    assert {"action": "action_disclose"} in story["steps"]

    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader

    [step] = YAMLStoryReader(Domain.load(str(PROJECT / "domain.yml"))).read_from_file(
        written[0], skip_validation=True
    )
    assert [e.intent_name for e in step.events if isinstance(e, UserUttered)] == [
        "greet",
        "mood_good",
        "inform",
    ]


def test_a_conversation_with_nothing_to_test_is_a_message_not_a_500(
    ops_client: FlaskClient, ops_store: AnalyticsStore, web_config: Config
) -> None:
    save_facts(ops_store, [facts("acct-A1", T0)])  # summarised, but its Rasa events are gone
    token = csrf_of(ops_client, f"{REVIEW}/acct-A1")
    answer = ops_client.post(f"{REVIEW}/acct-A1/story", data={"csrf_token": token})
    assert answer.status_code == 302
    assert "No test story saved" in ops_client.get(answer.headers["Location"]).get_data(as_text=True)
    assert not (web_config.path(web_config.rasa.project_dir) / "tests").exists()


def test_agents_cannot_see_the_review(agent_client: FlaskClient) -> None:
    assert agent_client.get(REVIEW).status_code == 403
    assert agent_client.get(f"{REVIEW}/acct-A1").status_code == 403
