"""POST /webhooks/email (raw mail, HMAC-signed) and the one-click unsubscribe endpoint."""

from __future__ import annotations

import redis
from flask.testing import FlaskClient

from bot.config import Config
from bot.gateway.app import create_app
from bot.runtime.services import Services, build_services
from bot.store.addresses import address_key
from channels.base import InboundMessage
from channels.email import sign
from tests.bot.conftest import PUBLIC
from tests.conftest import ConfigFactory

ANA = "ana.lopez@example.com"


def mail(message_id: str = "<r1@example.com>", body: str = "I'm fine, thanks.", extra: str = "") -> bytes:
    return (
        f"From: Ana Lopez <{ANA}>\r\nTo: help@northwind.example.com\r\nSubject: Re: Hello\r\n"
        f"Message-ID: {message_id}\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def post_mail(client: FlaskClient, config: Config, body: bytes, *, secret: str | None = None,
              content_type: str = "message/rfc822"):  # type: ignore[no-untyped-def]  # fmt: skip
    signature = sign(secret or config.secrets.email_webhook_secret, body)
    return client.post("/webhooks/email", data=body, content_type=content_type,
                       headers={"X-Debtbot-Signature": signature})  # fmt: skip


def queued(services: Services, sender: str = ANA) -> list[InboundMessage]:
    return [
        InboundMessage.from_json(e.payload) for e in services.inbound.unhandled(address_key("email", sender))
    ]


def test_a_signed_raw_mail_is_queued_once_with_only_the_new_words(
    client: FlaskClient, config: Config, services: Services
) -> None:
    body = mail(
        body="Yes, 2 please.\r\n\r\nOn Mon, 23 Nov 2026 at 10:00, Northwind <help@northwind.example.com> wrote:\r\n> Which suits you?\r\n"
    )
    first = post_mail(client, config, body)
    again = post_mail(client, config, body)
    assert first.status_code == 200 and first.get_json() == {
        "ok": True,
        "status": "accepted",
        "message_id": "<r1@example.com>",
    }
    assert again.get_json()["status"] == "duplicate"
    [message] = queued(services)
    assert message.channel == "email" and message.text == "Yes, 2 please."


def test_a_mail_signed_with_another_secret_is_403_and_nothing_is_queued(
    client: FlaskClient, config: Config, services: Services
) -> None:
    response = post_mail(client, config, mail(), secret="not-the-secret")
    assert response.status_code == 403 and "error" in response.get_json()
    assert queued(services) == []


def test_a_body_that_is_not_a_raw_message_is_a_400_naming_the_content_type(
    client: FlaskClient, config: Config
) -> None:
    response = post_mail(client, config, b'{"from": "x"}', content_type="application/json")
    assert response.status_code == 400
    assert "message/rfc822" in response.get_json()["error"]


def test_unreadable_mail_is_set_aside_for_an_agent_not_dropped(
    client: FlaskClient, config: Config, services: Services
) -> None:
    body = b"To: help@northwind.example.com\r\nSubject: no sender\r\nMessage-ID: <x@y>\r\n\r\nhello\r\n"
    response = post_mail(client, config, body)
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["ok"] is False and answer["status"] == "set_aside" and answer["reason"] == "no_sender"
    [letter] = services.dead_letters.list("email")
    assert letter.entry_id == answer["dead_letter"] and letter.raw == body and letter.reason == "no_sender"


def test_a_mail_over_the_size_cap_is_refused_with_413(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    config = make_config(channels={"email": {"max_message_bytes": 20_000}})
    client = create_app(config, build_services(config, redis_client)).test_client()
    response = post_mail(client, config, mail(body="x" * 30_000))
    assert response.status_code == 413 and "error" in response.get_json()


def test_a_mail_bigger_than_other_webhooks_but_within_the_email_cap_is_accepted(
    client: FlaskClient, config: Config, services: Services
) -> None:
    attachment = "A" * 1_500_000  # more than the 1 MB every other webhook may send
    body = (
        f"From: {ANA}\r\nTo: help@northwind.example.com\r\nSubject: statement\r\nMessage-ID: <big@x>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n"
        "Content-Type: text/plain\r\n\r\nHere is my bank statement.\r\n--b1\r\n"
        "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{attachment}\r\n--b1--\r\n"
    ).encode()
    response = post_mail(client, config, body)
    assert response.get_json()["status"] == "accepted"
    [message] = queued(services)
    assert message.text == "Here is my bank statement." and message.raw["attachments"] == 1


def test_an_auto_reply_is_queued_marked_automatic(
    client: FlaskClient, config: Config, services: Services
) -> None:
    post_mail(client, config, mail(body="I am out of the office.", extra="Auto-Submitted: auto-replied\r\n"))
    [message] = queued(services)
    assert message.kind == "automated"


def test_card_numbers_in_a_mail_are_redacted_before_it_is_stored(
    client: FlaskClient, config: Config, services: Services
) -> None:
    post_mail(client, config, mail(body="My card is 4111 1111 1111 1111, take it."))
    [message] = queued(services)
    assert "4111" not in message.to_json() and "[card number removed]" in message.text


def test_the_unsubscribe_link_shows_a_page_on_get_and_unsubscribes_only_on_post(
    client: FlaskClient, services: Services
) -> None:
    url = services.unsubscribe.url("email", ANA, "A1", "es")
    path = url.removeprefix(PUBLIC)
    page = client.get(path)
    assert page.status_code == 200 and "<form" in page.get_data(as_text=True)
    assert 'lang="es"' in page.get_data(as_text=True)
    assert services.addresses.status("email", ANA).opted_out_at is None  # a prefetch changes nothing
    done = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    status = services.addresses.status("email", ANA)
    assert status.opted_out_at is not None and status.account_id == "A1"


def test_an_unknown_unsubscribe_token_is_404_json(client: FlaskClient) -> None:
    response = client.post("/unsubscribe/not-a-token", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 404 and "error" in response.get_json()


def test_the_unsubscribe_url_is_stable_per_address(services: Services) -> None:
    assert services.unsubscribe.url("email", ANA, "A1", "en") == services.unsubscribe.url(
        "email", ANA, "A1", "en"
    )
    assert services.unsubscribe.url("email", ANA, "A1", "en") != services.unsubscribe.url(
        "email", "b@x.org", None, "en"
    )


def test_card_numbers_in_mail_set_aside_are_redacted_too(
    client: FlaskClient, config: Config, services: Services
) -> None:
    body = b"To: help@northwind.example.com\r\nMessage-ID: <c@y>\r\n\r\ncard 4111111111111111\r\n"
    post_mail(client, config, body)
    [letter] = services.dead_letters.list("email")
    assert b"4111111111111111" not in letter.raw and b"[card number removed]" in letter.raw


def test_stop_by_email_opts_the_address_out_at_the_gateway(
    client: FlaskClient, config: Config, services: Services
) -> None:
    post_mail(
        client,
        config,
        mail(
            body="STOP\r\n\r\nOn Mon, 23 Nov 2026 at 10:00, Northwind <help@northwind.example.com> wrote:\r\n> Hi"
        ),
    )
    assert services.addresses.status("email", ANA).opted_out_at is not None  # before any worker ran
    post_mail(
        client, config, mail(message_id="<r2@example.com>", body="help")
    )  # HELP is for the dialogue by email
    assert len(queued(services)) == 2
