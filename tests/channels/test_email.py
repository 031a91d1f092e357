"""The email adapter against a real SMTP server (aiosmtpd): what leaves, and how failures read."""

from __future__ import annotations

import ssl

import pytest

from channels.base import (
    ChannelAuthError,
    DeliveryFailed,
    DeliveryStatus,
    MalformedRequest,
    OutboundMessage,
    WebhookRequest,
)
from channels.email import EmailChannel, SmtpSettings, message_id_for, outbox_id_from, reply_subject, sign
from tests.fakes.smtp_server import PASSWORD, USERNAME, SmtpServer

FROM = "Northwind <help@northwind.example.com>"
SECRET = "email-webhook-secret"


def channel_for(server: SmtpServer, **smtp: object) -> EmailChannel:
    settings = SmtpSettings(host=server.host, port=server.port, security="none", timeout_seconds=5)
    if smtp:
        settings = SmtpSettings(**{**settings.__dict__, **smtp})  # type: ignore[arg-type]
    return EmailChannel(webhook_secret=SECRET, from_address=FROM, smtp=settings, company="Northwind")


def reply(**fields: object) -> OutboundMessage:
    base: dict[str, object] = {
        "outbox_id": "0123456789abcdef0123456789abcdef",
        "channel": "email",
        "recipient": "ana.lopez@example.com",
        "text": "Thanks, Ana. Which suits you?\n\n1. Weekly\n2. Monthly\n\nYour link: https://pay.example.com/A1/p1?x=1&y=2",
        "conversation_id": "acct-A1",
        "in_reply_to": "<CAF=abc@mail.gmail.com>",
        "references": ("<first@northwind.example.com>",),
        "subject": "Re: A message from Northwind",
        "language": "en",
        "opt_out_text": "You can stop these emails at any time: reply STOP, or use the unsubscribe link.",
        "unsubscribe_url": "https://bot.example.com/unsubscribe/tok123",
    }
    base.update(fields)
    return OutboundMessage(**base)  # type: ignore[arg-type]


def test_a_reply_arrives_with_both_parts_threading_and_opt_out_headers(smtp_server: SmtpServer) -> None:
    receipt = channel_for(smtp_server).send(reply())

    (mail,) = smtp_server.wait_for(1)
    message = mail.message
    assert mail.mail_from == "help@northwind.example.com"
    assert mail.rcpt_tos == ("ana.lopez@example.com",)
    assert message["Message-ID"] == "<0123456789abcdef0123456789abcdef@northwind.example.com>"
    assert receipt.external_id == message["Message-ID"] and receipt.status is DeliveryStatus.SENT
    assert message["In-Reply-To"] == "<CAF=abc@mail.gmail.com>"
    assert message["References"].split() == ["<first@northwind.example.com>", "<CAF=abc@mail.gmail.com>"]
    assert message["Subject"] == "Re: A message from Northwind"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["List-Unsubscribe"] == "<https://bot.example.com/unsubscribe/tok123>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    text, markup = plain.get_content(), html.get_content()
    assert "Which suits you?" in text and "2. Monthly" in text
    assert "reply STOP" in text and "https://bot.example.com/unsubscribe/tok123" in text
    # The HTML part: the choices as a list, the link clickable and escaped, the opt-out visible.
    assert '<html lang="en">' in markup
    assert "<li" in markup and "Monthly</li>" in markup
    assert '<a href="https://pay.example.com/A1/p1?x=1&amp;y=2">' in markup
    assert "reply STOP" in markup and 'href="https://bot.example.com/unsubscribe/tok123"' in markup


def test_a_message_the_bot_starts_is_marked_auto_generated_without_thread_headers(
    smtp_server: SmtpServer,
) -> None:
    channel_for(smtp_server).send(
        reply(
            in_reply_to=None, references=(), subject="A message from Northwind", text="Hi Ana, how are you?"
        )
    )
    message = smtp_server.wait_for(1)[0].message
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["In-Reply-To"] is None and message["References"] is None
    assert message["Subject"] == "A message from Northwind"


def test_html_in_the_text_is_escaped_not_rendered(smtp_server: SmtpServer) -> None:
    channel_for(smtp_server).send(reply(text='Hello <script>alert("x")</script> & bye'))
    html = smtp_server.wait_for(1)[0].message.get_body(preferencelist=("html",))
    assert html is not None
    markup = html.get_content()
    assert "<script>" not in markup and "&lt;script&gt;" in markup and "&amp; bye" in markup


def test_non_ascii_text_and_subject_survive(smtp_server: SmtpServer) -> None:
    channel_for(smtp_server).send(
        reply(
            text="¿Cómo está, Ana? Podemos hablar cuando quiera.",
            subject="Re: Un mensaje de Northwind — señal",
            language="es",
            opt_out_text="Puede dejar de recibir estos correos cuando quiera.",
        )
    )
    message = smtp_server.wait_for(1)[0].message
    assert message["Subject"] == "Re: Un mensaje de Northwind — señal"
    assert message["Content-Language"] == "es"
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None and "¿Cómo está, Ana?" in plain.get_content()
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "Darse de baja" in html.get_content()


def test_a_retried_send_keeps_the_same_message_id(smtp_server: SmtpServer) -> None:
    channel = channel_for(smtp_server)
    channel.send(reply())
    channel.send(reply())
    first, second = smtp_server.wait_for(2)
    assert first.message["Message-ID"] == second.message["Message-ID"]


def test_a_temporary_smtp_refusal_is_retryable(smtp_server: SmtpServer) -> None:
    smtp_server.fail_next("DATA", "451 4.7.1 Greylisted, try again later")
    with pytest.raises(DeliveryFailed) as failure:
        channel_for(smtp_server).send(reply())
    assert failure.value.permanent is False and failure.value.code == "smtp_451"


def test_a_permanent_smtp_refusal_is_not_retried(smtp_server: SmtpServer) -> None:
    smtp_server.fail_next("RCPT", "550 5.1.1 No such user here")
    with pytest.raises(DeliveryFailed) as failure:
        channel_for(smtp_server).send(reply())
    assert failure.value.permanent is True and failure.value.code == "smtp_550"
    assert "No such user" in str(failure.value)


def test_a_temporary_recipient_refusal_is_retryable(smtp_server: SmtpServer) -> None:
    smtp_server.fail_next("RCPT", "452 4.2.2 Mailbox full")
    with pytest.raises(DeliveryFailed) as failure:
        channel_for(smtp_server).send(reply())
    assert failure.value.permanent is False


def test_an_unreachable_server_is_a_temporary_failure() -> None:
    settings = SmtpSettings(host="127.0.0.1", port=1, security="none", timeout_seconds=2)
    channel = EmailChannel(webhook_secret=SECRET, from_address=FROM, smtp=settings)
    with pytest.raises(DeliveryFailed) as failure:
        channel.send(reply())
    assert failure.value.permanent is False


def test_starttls_and_login_are_used_when_configured(
    smtp_tls_server: tuple[SmtpServer, ssl.SSLContext],
) -> None:
    server, context = smtp_tls_server
    channel = channel_for(
        server, security="starttls", username=USERNAME, password=PASSWORD, ssl_context=context
    )
    channel.send(reply())
    (mail,) = server.wait_for(1)
    assert mail.tls is True and mail.authenticated_as == USERNAME


def test_a_wrong_smtp_password_keeps_the_message_for_a_retry(
    smtp_tls_server: tuple[SmtpServer, ssl.SSLContext],
) -> None:
    server, context = smtp_tls_server
    channel = channel_for(
        server, security="starttls", username=USERNAME, password="wrong", ssl_context=context
    )
    with pytest.raises(DeliveryFailed) as failure:
        channel.send(reply())
    assert failure.value.permanent is False
    assert server.received == []


def test_an_untrusted_certificate_is_refused(smtp_tls_server: tuple[SmtpServer, ssl.SSLContext]) -> None:
    server, _ = smtp_tls_server
    channel = channel_for(server, security="starttls", username=USERNAME, password=PASSWORD)
    with pytest.raises(DeliveryFailed):
        channel.send(reply())
    assert server.received == []


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("A message from Northwind", "Re: A message from Northwind"),
        ("Re: A message from Northwind", "Re: A message from Northwind"),
        ("RE: Re: FW: plan", "Re: plan"),
        ("RV: Un mensaje", "Re: Un mensaje"),
        ("Aw: Hallo", "Re: Hallo"),
        ("", "Re:"),
    ],
)
def test_reply_subjects_carry_one_re(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


def test_our_message_ids_lead_back_to_the_outbox_id() -> None:
    message_id = message_id_for("0123456789abcdef0123456789abcdef", FROM)
    assert outbox_id_from(message_id) == "0123456789abcdef0123456789abcdef"
    assert outbox_id_from("<CAF=abc@mail.gmail.com>") is None


RAW = (
    b"From: Ana Lopez <Ana.Lopez@example.com>\r\nTo: help@northwind.example.com\r\n"
    b"Subject: Re: A message from Northwind\r\nMessage-ID: <r1@example.com>\r\n"
    b"In-Reply-To: <0123456789abcdef0123456789abcdef@northwind.example.com>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nI'm fine, thanks.\r\n"
)


def webhook(body: bytes, signature: str | None, content_type: str = "message/rfc822") -> WebhookRequest:
    headers = {"Content-Type": content_type}
    if signature is not None:
        headers["X-Debtbot-Signature"] = signature
    return WebhookRequest(
        method="POST", url="https://bot.example.com/webhooks/email", headers=headers, body=body
    )


def test_a_webhook_signed_with_the_secret_is_accepted_and_parsed() -> None:
    channel = EmailChannel(webhook_secret=SECRET, from_address=FROM, smtp=None)
    request = webhook(RAW, sign(SECRET, RAW))
    channel.authenticate(request)
    message = channel.parse(request)
    assert message is not None
    assert message.sender == "ana.lopez@example.com"
    assert message.external_id == "<r1@example.com>"
    assert message.text == "I'm fine, thanks."
    assert message.raw["in_reply_to"] == "<0123456789abcdef0123456789abcdef@northwind.example.com>"


@pytest.mark.parametrize("signature", [None, "", "sha256=00", sign("another-secret", RAW)])
def test_an_unsigned_or_forged_webhook_is_refused(signature: str | None) -> None:
    channel = EmailChannel(webhook_secret=SECRET, from_address=FROM, smtp=None)
    with pytest.raises(ChannelAuthError):
        channel.authenticate(webhook(RAW, signature))


def test_a_signature_over_another_body_is_refused() -> None:
    channel = EmailChannel(webhook_secret=SECRET, from_address=FROM, smtp=None)
    with pytest.raises(ChannelAuthError):
        channel.authenticate(webhook(RAW + b"tampered", sign(SECRET, RAW)))


def test_a_webhook_body_that_is_not_a_message_is_refused() -> None:
    channel = EmailChannel(webhook_secret=SECRET, from_address=FROM, smtp=None)
    with pytest.raises(MalformedRequest):
        channel.parse(
            webhook(b'{"text": "hi"}', sign(SECRET, b'{"text": "hi"}'), content_type="application/json")
        )


def test_the_plain_part_is_not_html_escaped(smtp_server: SmtpServer) -> None:
    channel_for(smtp_server).send(reply(text='That\'s 5 < 6 & "fine".'))
    plain = smtp_server.wait_for(1)[0].message.get_body(preferencelist=("plain",))
    assert plain is not None and 'That\'s 5 < 6 & "fine".' in plain.get_content()


def test_implicit_tls_is_used_when_configured(
    smtp_implicit_tls_server: tuple[SmtpServer, ssl.SSLContext],
) -> None:
    server, context = smtp_implicit_tls_server
    channel_for(server, security="ssl", ssl_context=context).send(reply())
    (mail,) = server.wait_for(1)
    assert mail.tls is True


def test_a_payment_schedule_becomes_a_table_with_headings_in_the_language(smtp_server: SmtpServer) -> None:
    text = "Cada pago, con su fecha:\n- viernes, 4 de diciembre de 2026: 50,00 US$\n- lunes, 4 de enero de 2027: 50,00 US$"
    channel_for(smtp_server).send(reply(text=text, language="es"))
    html = smtp_server.wait_for(1)[0].message.get_body(preferencelist=("html",))
    assert html is not None
    markup = html.get_content()
    assert '<th scope="col"' in markup and "Fecha" in markup and "Importe" in markup
    assert markup.count("<tr>") == 3 and "lunes, 4 de enero de 2027</td>" in markup
