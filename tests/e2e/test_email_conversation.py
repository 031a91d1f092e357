"""Email with real servers: the product sends through a real SMTP server (aiosmtpd) and reads
replies from a real IMAP mailbox (dovecot), with the Rasa stack behind it.

From the opener to a created payment plan: James answers in his mail client's usual layout
(new words on top, our mail quoted below), partly with numbers for the numbered choices; his
out-of-office reply in between is not answered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.config import load_config
from bot.outreach.openers import send_opener
from tests.conftest import TEST_SECRETS, wait_for
from tests.e2e.conftest import Product, RasaStack, _running
from tests.fakes.smtp_server import ReceivedMail, SmtpServer

pytestmark = pytest.mark.e2e

JAMES = "j.whitfield@example.net"  # ACC-1002: born 1979-11-02, owes $389.99 to Capitol Mobile
BOT = "help@northwind.example.com"
WORK = "james.whitfield@work.example.org"


@pytest.fixture
def email_product(
    stack_config_path: Path,
    redis_url: str,
    rasa_stack: RasaStack,
    redis_client: redis.Redis,
    smtp_server: SmtpServer,
    imap_server: Any,
) -> Iterator[Product]:
    env = {
        "REDIS_URL": redis_url, **TEST_SECRETS,
        "DEBTBOT__CHANNELS__EMAIL__SMTP__HOST": smtp_server.host,
        "DEBTBOT__CHANNELS__EMAIL__SMTP__PORT": str(smtp_server.port),
        "DEBTBOT__CHANNELS__EMAIL__SMTP__SECURITY": "none",
        "DEBTBOT__CHANNELS__EMAIL__IMAP__ENABLED": "true",
        "DEBTBOT__CHANNELS__EMAIL__IMAP__HOST": imap_server.host,
        "DEBTBOT__CHANNELS__EMAIL__IMAP__PORT": str(imap_server.port),
        "DEBTBOT__CHANNELS__EMAIL__IMAP__SECURITY": "none",
        "DEBTBOT__CHANNELS__EMAIL__IMAP__IDLE_SECONDS": "30",
        "DEBTBOT__CHANNELS__EMAIL__IMAP__RECONNECT_MIN_SECONDS": "0.2",
        "IMAP_USERNAME": imap_server.username,
        "IMAP_PASSWORD": imap_server.password,
    }  # fmt: skip
    config = load_config(stack_config_path, env)
    assert config.email_live
    yield from _running(config, rasa_stack, redis_client, None)


def reply_to(
    mail: ReceivedMail, text: str, *, extra: dict[str, str] | None = None, sender: str = JAMES
) -> bytes:
    """James's answer as Gmail writes it: new words on top, our mail quoted below."""
    ours = mail.message
    body = ours.get_body(preferencelist=("plain",))
    assert body is not None
    quoted = "\n".join(f"> {line}" for line in body.get_content().splitlines())
    answer = EmailMessage()
    answer["From"] = f"James Whitfield <{sender}>"
    answer["To"] = BOT
    answer["Subject"] = f"Re: {ours['Subject']}".replace("Re: Re: ", "Re: ")
    answer["Message-ID"] = make_msgid(domain="mail.example.net")
    answer["In-Reply-To"] = ours["Message-ID"]
    answer["References"] = " ".join(filter(None, [ours.get("References"), ours["Message-ID"]]))
    for name, value in (extra or {}).items():
        answer[name] = value
    answer.set_content(f"{text}\n\nOn Tue, 24 Nov 2026 at 10:00, Northwind <{BOT}> wrote:\n{quoted}\n")
    return bytes(answer)


def say(product: Product, smtp: SmtpServer, imap: Any, text: str) -> list[ReceivedMail]:
    """James answers the latest mail; return the bot's new mails."""
    already = len(smtp.received)
    imap.append(reply_to(smtp.received[-1], text))
    wait_for(lambda: len(smtp.received) > already, timeout=60, what=f"an answer to {text!r}")
    services = product.services
    wait_for(lambda: not services.inbound.pending_keys() and not services.outbound.pending_keys(),
             timeout=60, what="every answer sent")  # fmt: skip
    return smtp.received[already:]


def plain(mail: ReceivedMail) -> str:
    part = mail.message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_an_email_conversation_from_the_opener_to_a_plan(
    email_product: Product, smtp_server: SmtpServer, imap_server: Any
) -> None:
    product = email_product
    send_opener(product.services, "ACC-1002", "email")
    [opener] = smtp_server.wait_for(1, timeout=60)
    assert opener.rcpt_tos == (JAMES,)
    assert opener.message["Subject"] == "A message from Northwind"
    assert opener.message["Auto-Submitted"] == "auto-generated"
    assert opener.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "James" in plain(opener) and "389" not in plain(opener)  # no figure before verification
    assert "reply STOP" in plain(opener)

    [answer] = say(product, smtp_server, imap_server, "Good thanks")
    assert answer.message["In-Reply-To"] and answer.message["Subject"] == "Re: A message from Northwind"
    assert answer.message["Auto-Submitted"] == "auto-replied"
    [answer] = say(product, smtp_server, imap_server, "2 November 1979")
    assert "1 Pay in full" in plain(answer) and "2 A payment plan" in plain(answer)

    # His out-of-office reply arrives in between: it is read and never answered.
    before = len(smtp_server.received)
    imap_server.append(reply_to(smtp_server.received[-1], "I am away until Monday.",
                                extra={"Auto-Submitted": "auto-replied"}))  # fmt: skip
    [answer] = say(product, smtp_server, imap_server, "2")  # "A payment plan", by its number
    assert len(smtp_server.received) == before + 1
    assert "Here are some plans that fit." in plain(answer)
    [answer] = say(product, smtp_server, imap_server, "I can do 50 a month")
    assert "7 payments of $50.00 every month" in plain(answer)
    # Email's longer wording: every payment with its date, as a table in the HTML part.
    assert "Each payment, with its date:" in plain(answer)
    html = answer.message.get_body(preferencelist=("html",))
    assert html is not None and html.get_content().count("<tr>") >= 8  # the headings and 7 payments
    [answer] = say(product, smtp_server, imap_server, "1")  # "Yes, set it up"
    assert "All set, thank you." in plain(answer) and "Your payments:" in plain(answer)
    assert product.services.redis.llen("debtbot:account:ACC-1002:plans") == 1

    # One thread all along: every answer refers back to the opener.
    for mail in smtp_server.received[1:]:
        assert opener.message["Message-ID"] in mail.message["References"]
    # The thread forwarded to another address: that address must verify before any figure.
    before = len(smtp_server.received)
    imap_server.append(reply_to(smtp_server.received[-1], "How much is left to pay?", sender=WORK))
    wait_for(lambda: len(smtp_server.received) > before, timeout=60, what="an answer to the other address")
    wait_for(lambda: not product.services.inbound.pending_keys() and not product.services.outbound.pending_keys(),
             timeout=60, what="every answer sent")  # fmt: skip
    for mail in smtp_server.received[before:]:
        assert mail.rcpt_tos == (WORK,)
        assert "$" not in plain(mail) and "389" not in plain(mail) and "payments" not in plain(mail)

    # Restarting the worker (and so the poller) answers nothing twice.
    count = len(smtp_server.received)
    product.stop_worker()
    product.start_worker()
    time.sleep(3)
    assert len(smtp_server.received) == count
