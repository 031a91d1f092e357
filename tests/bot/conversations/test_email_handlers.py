"""The worker side of email: threading, machine mail, the stop word, the reply cap, and what
every answer carries. The dialogue is a scripted stand-in here; tests/e2e talk to real Rasa."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
import redis

from bot.config import Config
from bot.conversations.identity import account_id_of
from bot.conversations.inbound import InboundHandler
from bot.conversations.outbound import OutboundHandler
from bot.conversations.rate_limits import ReplyCap
from bot.conversations.render import OfferedChoices, RenderOptions
from bot.runtime.services import Services, build_services
from bot.store.accounts import Account
from bot.store.addresses import address_key
from bot.store.agent_queue import AgentQueue
from bot.store.queues import Entry
from channels.base import DeliveryReceipt, DeliveryStatus, InboundMessage, OutboundMessage
from channels.email import EmailChannel, message_id_for
from dialogue.rasa_client import BotReply
from tests.conftest import ConfigFactory

ANA = "ana.lopez@example.com"
FROM = "Northwind <help@northwind.example.com>"


class ScriptedRasa:
    """Answers every message with the same replies and remembers who asked."""

    def __init__(self, replies: list[BotReply]) -> None:
        self.replies = replies
        self.calls: list[tuple[str, str]] = []
        self.metadata: list[dict[str, Any]] = []

    def send_message(
        self,
        conversation_id: str,
        text: str,
        *,
        channel: str,
        metadata: Mapping[str, Any],
        message_id: str | None = None,
    ) -> list[BotReply]:
        self.calls.append((conversation_id, text))
        self.metadata.append(dict(metadata))
        return list(self.replies)


@pytest.fixture
def config(make_config: ConfigFactory) -> Config:
    return make_config(channels={"email": {"replies_per_hour_per_address": 3}})


@pytest.fixture
def services(config: Config, redis_client: redis.Redis) -> Services:
    services = build_services(config, redis_client)
    services.accounts.upsert(
        Account(
            account_id="A1",
            first_name="Ana",
            balance=Decimal("400"),
            currency="USD",
            creditor="Acme",
            language="es",
            email=ANA,
        )
    )
    return services


def handler(services: Services, rasa: ScriptedRasa) -> InboundHandler:
    return InboundHandler(
        accounts=services.accounts, addresses=services.addresses, agents=AgentQueue(services.redis, services.keys),
        rasa=rasa, outbound=services.outbound, jobs=services.jobs, keys=services.keys,  # type: ignore[arg-type]
        keywords=services.keywords, choices=OfferedChoices(services.redis, services.keys), render=RenderOptions(),
        links=services.links, channels=services.channels, default_language="en", dedupe_ttl_seconds=60,
        email=services.email_envelope(), deliveries=services.deliveries,
        reply_cap=ReplyCap(services.redis, services.keys, services.config.channels.email.replies_per_hour_per_address),
    )  # fmt: skip


def parse(services: Services, raw: str) -> InboundMessage:
    channel = services.email_channel
    assert isinstance(channel, EmailChannel)
    return channel.parse_raw(raw.replace("\n", "\r\n").encode())


def person_mail(
    message_id: str, body: str, *, sender: str = ANA, in_reply_to: str = "", extra: str = ""
) -> str:
    threading = f"In-Reply-To: {in_reply_to}\nReferences: <root@x> {in_reply_to}\n" if in_reply_to else ""
    return (
        f"From: Ana <{sender}>\nTo: help@northwind.example.com\nSubject: Re: Un mensaje de Northwind\n"
        f"Message-ID: {message_id}\n{threading}{extra}Content-Type: text/plain; charset=utf-8\n\n{body}\n"
    )


def run(h: InboundHandler, message: InboundMessage) -> None:
    h(Entry(key="k", entry_id="1-0", payload=message.to_json()))


def sent_to(services: Services, address: str) -> list[OutboundMessage]:
    return [
        OutboundMessage.from_json(e.payload)
        for e in services.outbound.unhandled(address_key("email", address))
    ]


def test_an_answer_is_one_email_with_the_thread_subject_language_and_opt_out(services: Services) -> None:
    rasa = ScriptedRasa(
        [
            BotReply("Me alegra oírlo."),
            BotReply("¿Cómo prefiere pagar?", buttons=(("Semanal", "/weekly"), ("Mensual", "/monthly"))),
        ]
    )
    run(
        handler(services, rasa),
        parse(services, person_mail("<m1@example.com>", "Bien, gracias", in_reply_to="<prev@example.com>")),
    )
    [email] = sent_to(services, ANA)
    assert "Me alegra oírlo." in email.text and "¿Cómo prefiere pagar?" in email.text
    assert "1" in email.text and "Mensual" in email.text  # the choices as numbered lines
    assert email.subject == "Re: Un mensaje de Northwind"
    assert email.in_reply_to == "<m1@example.com>"
    assert email.references == ("<root@x>", "<prev@example.com>")
    assert email.language == "es" and "BAJA" in email.opt_out_text
    assert email.unsubscribe_url.startswith(services.config.server.public_url + "/unsubscribe/")
    assert rasa.calls == [("acct-A1", "Bien, gracias")]


def test_a_reply_to_our_mail_finds_its_conversation_even_from_another_address(services: Services) -> None:
    rasa = ScriptedRasa([BotReply("Gracias.")])
    h = handler(services, rasa)
    run(h, parse(services, person_mail("<m1@example.com>", "Hola")))
    [ours] = sent_to(services, ANA)
    our_id = message_id_for(ours.outbox_id, FROM)
    run(
        h,
        parse(
            services,
            person_mail("<m2@work.example>", "Sigo aquí", sender="a.lopez@work.example", in_reply_to=our_id),
        ),
    )
    conversation, text = rasa.calls[-1]
    # The same account, but a conversation of its own: the new address verifies first.
    assert conversation.startswith("acct-A1~") and text == "Sigo aquí"
    assert rasa.metadata[-1]["account_id"] == "A1"
    assert account_id_of(conversation) == "A1"


def test_a_mail_outside_any_thread_is_matched_by_its_sender(services: Services) -> None:
    rasa = ScriptedRasa([BotReply("Hola.")])
    run(handler(services, rasa), parse(services, person_mail("<m1@example.com>", "Hola")))
    run(
        handler(services, rasa), parse(services, person_mail("<m9@x>", "Hola", sender="stranger@example.org"))
    )
    assert next(conversation for conversation, _ in rasa.calls) == "acct-A1"
    assert rasa.calls[1][0].startswith("anon-email.")


@pytest.mark.parametrize(
    "extra",
    [
        "Auto-Submitted: auto-replied\n",
        "X-Autoreply: yes\n",
        "Precedence: bulk\n",
        "List-Id: <news.example.com>\n",
    ],
)
def test_automatic_mail_is_never_answered(services: Services, extra: str) -> None:
    rasa = ScriptedRasa([BotReply("Hola.")])
    run(
        handler(services, rasa),
        parse(services, person_mail("<auto@example.com>", "I am out of the office.", extra=extra)),
    )
    assert rasa.calls == [] and sent_to(services, ANA) == []


BOUNCE = """From: Mail Delivery System <MAILER-DAEMON@mx.example.com>
To: help@northwind.example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce1@mx.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; {recipient}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 No such user

--B
Content-Type: text/rfc822-headers

From: help@northwind.example.com
To: {recipient}
Message-ID: {original}
Subject: Un mensaje de Northwind

--B--
"""


def test_a_bounce_marks_the_address_undeliverable_and_the_mail_undelivered(services: Services) -> None:
    outbox_id = "0123456789abcdef0123456789abcdef"
    services.deliveries.apply(
        DeliveryReceipt(outbox_id=outbox_id, channel="email", status=DeliveryStatus.SENT), ANA
    )
    rasa = ScriptedRasa([BotReply("Hola.")])
    bounce = BOUNCE.format(recipient=ANA, original=message_id_for(outbox_id, FROM))
    run(handler(services, rasa), parse(services, bounce))
    assert services.addresses.status("email", ANA).unreachable_at is not None
    record = services.deliveries.get(outbox_id)
    assert (
        record is not None and record.status is DeliveryStatus.UNDELIVERED and record.error_code == "bounced"
    )
    assert rasa.calls == []


def test_stop_by_email_opts_out_with_one_confirmation_and_then_silence(services: Services) -> None:
    rasa = ScriptedRasa([BotReply("Hola.")])
    h = handler(services, rasa)
    run(h, parse(services, person_mail("<s1@example.com>", "STOP")))
    run(h, parse(services, person_mail("<s1@example.com>", "STOP")))  # the same mail handled again
    run(h, parse(services, person_mail("<s2@example.com>", "stop")))
    [confirmation] = sent_to(services, ANA)
    assert "no recibirá más correos" in confirmation.text
    assert services.addresses.status("email", ANA).opted_out_at is not None
    assert rasa.calls == []


def test_the_reply_cap_stops_a_mail_loop_and_calls_a_person(services: Services) -> None:
    rasa = ScriptedRasa([BotReply("Gracias.")])
    h = handler(services, rasa)
    for n in range(3):
        run(h, parse(services, person_mail(f"<loop{n}@example.com>", f"message {n}")))
    run(h, parse(services, person_mail("<loop1@example.com>", "message 1")))  # a replay takes no new place
    assert len(rasa.calls) == 4
    run(h, parse(services, person_mail("<loop3@example.com>", "message 3")))
    assert len(rasa.calls) == 4  # the fourth new mail in the hour is not answered
    flags = services.redis.hgetall(services.keys.conversation_flags("acct-A1"))
    assert b"email_reply_cap_reached" in flags


def test_the_outbound_step_sends_the_dressed_email(services: Services, smtp_server: Any) -> None:
    from channels.email import SmtpSettings

    channel = EmailChannel(webhook_secret="s", from_address=FROM, company="Northwind",
                           smtp=SmtpSettings(host=smtp_server.host, port=smtp_server.port, security="none"))  # fmt: skip
    rasa = ScriptedRasa([BotReply("Gracias, Ana.")])
    run(handler(services, rasa), parse(services, person_mail("<m1@example.com>", "Hola")))
    [queued] = services.outbound.unhandled(address_key("email", ANA))
    OutboundHandler(
        channels={"email": channel}, addresses=services.addresses, deliveries=services.deliveries
    )(queued)
    [mail] = smtp_server.wait_for(1)
    assert mail.message["In-Reply-To"] == "<m1@example.com>"
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    record = services.deliveries.get(OutboundMessage.from_json(queued.payload).outbox_id)
    assert record is not None and record.status is DeliveryStatus.SENT
