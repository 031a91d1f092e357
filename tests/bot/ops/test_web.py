"""Who may use the ops pages: the ``ops`` role and supervisors; agents and strangers may not, and
ops people do not work debtors' conversations."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.bot.ops.conftest import OPS, sign_in


def test_an_ops_person_signs_in_to_the_ops_pages_not_the_inbox(web_app: Flask) -> None:
    client = web_app.test_client()
    answer = sign_in(client, OPS)
    assert answer.status_code == 302
    landing = client.get(answer.headers["Location"])
    assert landing.status_code == 302 and landing.headers["Location"] == "/console/ops/"
    page = client.get("/console/ops/")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Conversation review" in body and 'href="/console/ops/nlu"' in body
    # The security headers of every console page apply here too.
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_ops_people_cannot_open_or_answer_debtors_conversations(ops_client: FlaskClient) -> None:
    assert ops_client.get("/console/c/acct-A1").headers["Location"] == "/console/ops/"
    answer = ops_client.get("/console/api/inbox")
    assert answer.status_code == 403 and answer.get_json()["status"] == 403


def test_supervisors_see_the_ops_pages_and_agents_do_not(
    supervisor_client: FlaskClient, agent_client: FlaskClient
) -> None:
    assert supervisor_client.get("/console/ops/").status_code == 200
    assert 'href="/console/ops/review"' in supervisor_client.get("/console/").get_data(as_text=True)
    refused = agent_client.get("/console/ops/")
    assert refused.status_code == 403 and "Only ops people" in refused.get_data(as_text=True)
    assert 'href="/console/ops/review"' not in agent_client.get("/console/").get_data(as_text=True)


def test_nothing_under_ops_answers_without_sign_in(web_app: Flask) -> None:
    client = web_app.test_client()
    page = client.get("/console/ops/?section=review")
    assert page.status_code == 302 and "/console/sign-in?next=" in page.headers["Location"]
    api = client.get("/console/ops/", headers={"Accept": "application/json"})
    assert api.status_code == 401 and api.get_json()["error"] == "sign in first"


def test_every_ops_page_shows_who_is_signed_in_and_the_way_out(ops_client: FlaskClient) -> None:
    body = ops_client.get("/console/ops/").get_data(as_text=True)
    assert "olga (ops)" in body and 'id="sign-out"' in body


def test_the_analytics_database_down_is_a_503_not_a_500(ops_parts: object, ops_client: FlaskClient) -> None:
    from bot.ops.analytics.store import AnalyticsStore

    ops_parts.analytics = AnalyticsStore("sqlite:////nonexistent/folder/analytics.db")  # type: ignore[attr-defined]
    answer = ops_client.get("/console/ops/review")
    assert answer.status_code == 503
