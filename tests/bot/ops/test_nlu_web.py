"""The NLU inbox page: groups of what the bot did not understand, biggest first; labelling a message
through the form writes it (scrubbed) to the review file and hides it; dismissing hides a group;
agents may not use it."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from bot.config import Config
from bot.ops.analytics.store import AnalyticsStore
from bot.ops.nlu_inbox import read_examples, text_key
from tests.bot.console.conftest import WEB_START, csrf_of
from tests.bot.ops.test_nlu_inbox import Events

PAGE = "/console/ops/nlu"


@pytest.fixture
def inbox(ops_store: AnalyticsStore) -> Events:
    """Three people asking what they owe in their words, two Spanish speakers asking for a person,
    one message the bot understood; a day before the web tests' clock."""
    events = Events(ops_store, start=WEB_START - timedelta(days=1))
    for n, text in enumerate(["how much do I owe u", "how much do i owe you??", "how much do I owe ya"]):
        events.fallback(f"acct-A{n}", text, "ask_balance", 0.2)
        events.ask(f"acct-A{n}", "ask_balance")
    events.user("acct-B1", "quiero hablar con una persona por favor", "request_human", 0.31,
                metadata={"language": "es", "channel": "telegram"})  # fmt: skip
    events.action("acct-B1", "action_handoff")
    events.user("acct-B2", "quiero hablar con una persona, mi correo es maria@gmail.com", "request_human", 0.33,
                metadata={"language": "es"})  # fmt: skip
    events.action("acct-B2", "action_handoff")
    events.user("acct-C", "hello", "greet", 0.99)
    events.action("acct-C", "utter_greet")
    return events


def review_file(config: Config) -> Path:
    return config.base_dir / "rasa_project" / "data" / "nlu" / "review.yml"


def rows(page: str) -> list[str]:
    return re.findall(r'<td class="summary">([^<]*)</td>', page)


def groups_on(page: str) -> list[str]:
    return re.findall(r'<h2 id="group-\d+-heading">“([^”]*)”', page)


def test_the_page_shows_groups_biggest_first_scrubbed_with_the_domains_intents(
    ops_client: FlaskClient, inbox: Events
) -> None:
    page = ops_client.get(PAGE)

    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert groups_on(body)[0].startswith("how much do I owe") and len(groups_on(body)) == 2
    assert 'data-count="3"' in body and 'data-count="2"' in body
    assert "maria@gmail.com" not in body and "mi correo es person1@example.com" in body
    assert "hello" not in groups_on(body)  # understood
    assert '<option value="ask_balance">ask_balance</option>' in body
    assert "EXTERNAL_opener" not in body
    assert 'name="csrf_token"' in body and body.count('class="nlu-label"') == 5
    assert "5 message(s) in 2 group(s)" in body


def test_filters_narrow_by_language_and_reason_and_since(ops_client: FlaskClient, inbox: Events) -> None:
    spanish = ops_client.get(PAGE, query_string={"language": "es"}).get_data(as_text=True)
    fell_back = ops_client.get(PAGE, query_string={"reason": "fallback"}).get_data(as_text=True)
    later = ops_client.get(PAGE, query_string={"since": WEB_START.date().isoformat()}).get_data(as_text=True)

    assert [g[:6] for g in groups_on(spanish)] == ["quiero"]
    assert [g[:3] for g in groups_on(fell_back)] == ["how"]
    assert groups_on(later) == [] and "Nothing to review" in later
    assert ops_client.get(PAGE, query_string={"since": "yesterday"}).status_code == 400


def test_labelling_through_the_form_writes_the_review_file_and_hides_the_message(
    ops_client: FlaskClient, inbox: Events, web_config: Config
) -> None:
    token = csrf_of(ops_client, PAGE)
    text = "quiero hablar con una persona, mi correo es person1@example.com"

    answer = ops_client.post(
        f"{PAGE}/label",
        data={"csrf_token": token, "text": text, "intent": "request_human", "new_intent": "",
              "key": text_key(text), "back": f"{PAGE}?language=es"},
    )  # fmt: skip

    assert answer.status_code == 302 and answer.headers["Location"] == f"{PAGE}?language=es"
    assert read_examples(review_file(web_config)) == [("request_human", text)]
    page = ops_client.get(answer.headers["Location"]).get_data(as_text=True)
    assert (
        f"Added &#39;{text}&#39; to request_human in rasa_project/data/nlu/review.yml; run debtbot validate, "
        "then train." in page
    )
    assert rows(page) == ["quiero hablar con una persona por favor"]  # the labelled one is hidden


def test_a_new_intent_is_written_and_the_flash_says_to_add_it_to_the_domain(
    ops_client: FlaskClient, inbox: Events, web_config: Config
) -> None:
    token = csrf_of(ops_client, PAGE)

    answer = ops_client.post(f"{PAGE}/label", data={"csrf_token": token, "text": "how much do I owe u",
                                                     "intent": "ask_balance", "new_intent": "ask_total"})  # fmt: skip

    assert answer.status_code == 302
    assert read_examples(review_file(web_config)) == [("ask_total", "how much do I owe u")]
    assert "ask_total is a new intent: add it to domain.yml" in ops_client.get(PAGE).get_data(as_text=True)


def test_a_duplicate_of_the_shipped_data_is_refused_with_the_reason(
    ops_client: FlaskClient, inbox: Events, web_config: Config
) -> None:
    token = csrf_of(ops_client, PAGE)

    answer = ops_client.post(f"{PAGE}/label",
                             data={"csrf_token": token, "text": "How much do I owe", "intent": "hardship"})  # fmt: skip

    assert answer.status_code == 302
    page = ops_client.get(PAGE).get_data(as_text=True)
    assert "Not added:" in page and "already an example of ask_balance in" in page and "en.yml" in page
    assert not review_file(web_config).exists()
    no_intent = ops_client.post(f"{PAGE}/label", data={"csrf_token": token, "text": "how much do I owe u"})
    assert no_intent.status_code == 302
    assert "Choose an intent" in ops_client.get(PAGE).get_data(as_text=True)


def test_dismissing_a_group_hides_all_its_messages(ops_client: FlaskClient, inbox: Events) -> None:
    body = ops_client.get(PAGE).get_data(as_text=True)
    dismiss = body.split('class="nlu-dismiss"')[1].split("</form>")[0]
    keys = re.findall(r'name="key" value="([0-9a-f]{64})"', dismiss)
    token = csrf_of(ops_client, PAGE)

    answer = ops_client.post(f"{PAGE}/dismiss", data={"csrf_token": token, "key": keys, "back": PAGE})

    assert answer.status_code == 302 and len(keys) == 3
    page = ops_client.get(PAGE).get_data(as_text=True)
    assert [g[:6] for g in groups_on(page)] == ["quiero"]
    assert "Dismissed 3 message text(s)" in page and "(3 text(s) so far) is not shown" in page


def test_forms_need_the_csrf_token_and_well_formed_keys(ops_client: FlaskClient, inbox: Events) -> None:
    assert ops_client.post(f"{PAGE}/dismiss", data={"key": "a" * 64}).status_code == 400
    token = csrf_of(ops_client, PAGE)
    assert (
        ops_client.post(f"{PAGE}/dismiss", data={"csrf_token": token, "key": "not-a-key"}).status_code == 400
    )


def test_agents_may_not_see_or_label(agent_client: FlaskClient, inbox: Events, web_config: Config) -> None:
    assert agent_client.get(PAGE).status_code == 403
    token = csrf_of(agent_client, "/console/")
    answer = agent_client.post(f"{PAGE}/label", data={"csrf_token": token, "text": "hi", "intent": "greet"})
    assert answer.status_code == 403 and not review_file(web_config).exists()


def test_supervisors_use_the_inbox_too(supervisor_client: FlaskClient, inbox: Events) -> None:
    assert supervisor_client.get(PAGE).status_code == 200
