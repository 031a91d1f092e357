"""Mail in the console: set-aside mail read safely and attached to an account, agents' email
replies in the person's own thread, and deferred replies cancelled (one by one, or all of them
when the conversation is closed)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import redis

from bot.console.desk import DeskError, read_mail
from tests.bot.console.test_desk import ANA, CID, EMAIL, World, make_world
from tests.conftest import ConfigFactory

MAIL = (
    b"From: Maria Lopez <maria.other@example.org>\r\n"
    b"To: help@collect.example.com\r\n"
    b"Subject: =?utf-8?q?Help_with_my_bill_=E2=80=94_<b>urgent</b>?=\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"References: <r0@collect.example.com>\r\n"
    b"Content-Type: multipart/alternative; boundary=BOUND\r\n"
    b"\r\n--BOUND\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b"<p>I lost my job <img src=x onerror=alert(1)></p><script>alert(2)</script>\r\n"
    b"--BOUND"  # never closed: broken MIME
)


@pytest.fixture
def world(make_config: ConfigFactory, redis_client: redis.Redis[bytes]) -> Iterator[World]:
    yield make_world(make_config(server={"public_url": "https://bot.example.com"}), redis_client)


def test_set_aside_mail_is_read_as_text_never_as_html() -> None:
    mail = read_mail(MAIL)
    assert (mail.sender, mail.sender_name) == ("maria.other@example.org", "Maria Lopez")
    assert mail.subject == "Help with my bill — <b>urgent</b>"
    assert (mail.message_id, mail.references) == ("<m1@example.org>", ("<r0@collect.example.com>",))
    assert "I lost my job" in mail.text
    assert "<img" not in mail.text and "<script>" not in mail.text and "<p>" not in mail.text
    garbage = read_mail(b"\xff\xfe\x00not a mail at all")
    assert garbage.partial and garbage.sender == "" and "not a mail at all" in garbage.text


def test_attached_mail_is_what_the_person_wrote_and_the_reply_answers_it_in_its_thread(world: World) -> None:
    world.desk.email = world.services.email_envelope()
    entry_id = world.services.dead_letters.add("email", "broken_mime", "unclosed multipart", MAIL)
    cid = world.desk.attach_dead_letter(entry_id, " A1 ", ANA)
    assert cid == CID
    [line] = world.history.read(CID)
    assert (line.direction, line.kind, line.channel) == ("in", "dead_letter", "email")
    assert "I lost my job" in line.text and "<script>" not in line.text
    assert world.handoff.get(CID).reasons == ("dead_letter",)
    # Answered by email: a reply in the person's thread, on the account's address.
    verdict = world.desk.reply(CID, ANA, "I'm sorry to hear that. Let's find a way.", channel="email")
    assert verdict.outcome == "sent"
    [message] = world.queued("email", EMAIL)
    assert message.subject == "Re: Help with my bill — <b>urgent</b>"
    assert message.in_reply_to == "<m1@example.org>"
    assert message.references == ("<r0@collect.example.com>",)
    with pytest.raises(DeskError, match="no account"):
        world.desk.attach_dead_letter(entry_id, "nobody", ANA)
    with pytest.raises(DeskError):
        world.desk.attach_dead_letter("not-an-id", "A1", ANA)


def test_the_sender_becomes_the_address_when_the_account_has_no_email(world: World) -> None:
    world.add_account("A2", email=None, phone="+12025550188")
    entry_id = world.services.dead_letters.add("email", "broken_mime", "unclosed multipart", MAIL)
    cid = world.desk.attach_dead_letter(entry_id, "A2", ANA)
    assert world.desk.reply(cid, ANA, "Thanks for writing.", channel="email").outcome == "sent"
    assert [m.recipient for m in world.queued("email", "maria.other@example.org")] == [
        "maria.other@example.org"
    ]


def test_an_email_reply_follows_the_persons_last_email(world: World) -> None:
    world.desk.email = world.services.email_envelope()
    world.history.inbound(CID, source="email:<first@example.org>", channel="email", text="hello")
    world.history.inbound(CID, source="sms:SM1", channel="sms", text="and by text")
    world.history.inbound(CID, source="email:<latest@example.org>", channel="email", text="again")
    world.desk.reply(CID, ANA, "Got it.", channel="email")
    [message] = world.queued("email", EMAIL)
    assert message.in_reply_to == "<latest@example.org>"
    # Their subject is not in the history: the usual subject, still in their thread.
    assert message.subject == world.services.email_envelope().subjects["en"]


def test_an_email_to_someone_who_never_wrote_by_email_starts_a_thread(world: World) -> None:
    world.desk.email = world.services.email_envelope()
    world.person_writes("hi")
    world.desk.reply(CID, ANA, "Hello by email", channel="email")
    [message] = world.queued("email", EMAIL)
    assert message.in_reply_to is None and not message.subject.startswith("Re:")


def at_3am_after_writing(world: World, *conversations: str) -> None:
    """The people wrote at 10:00; now it is 03:00 in New York: agents' replies are deferred."""
    for conversation_id in conversations:
        world.person_writes("hello", conversation_id=conversation_id)
    world.clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=timezone.utc))


def deferred(world: World, text: str, conversation_id: str = CID) -> str:
    verdict = world.desk.reply(conversation_id, ANA, text)
    assert verdict.outcome == "deferred"
    return verdict.outbox_id


def test_an_agent_cancels_a_deferred_reply_and_it_never_goes(world: World) -> None:
    world.add_account("A2", phone="+12025550188", email="luis@example.com")
    at_3am_after_writing(world, CID, "acct-A2")
    outbox_id = deferred(world, "Good morning")
    elsewhere = deferred(world, "Later", "acct-A2")
    assert [m.outbox_id for m in world.desk.deferred_replies(CID)] == [outbox_id]
    with pytest.raises(DeskError, match="another conversation"):
        world.desk.cancel_deferred(CID, ANA, elsewhere)
    assert world.desk.cancel_deferred(CID, ANA, outbox_id)
    assert not world.desk.cancel_deferred(CID, ANA, outbox_id)  # a second click: nothing to cancel
    assert world.desk.deferred_replies(CID) == []
    world.clock.advance(timedelta(hours=8))
    assert world.desk.release_deferred() == 1  # only the other conversation's
    assert world.queued() == []
    out = [line for line in world.desk.history(CID) if line.direction == "out"]
    assert [line.status for line in out] == ["cancelled"]
    assert world.history.read(CID)[-1].kind == "reply_cancelled"
    assert any(row["kind"] == "console:cancel_deferred" for row in world.console_audit())


def test_closing_a_conversation_cancels_its_deferred_replies(world: World) -> None:
    at_3am_after_writing(world, CID)
    deferred(world, "first")
    deferred(world, "second")
    world.desk.close(CID, ANA, "no_contact")
    assert world.desk.deferred_replies(CID) == []
    world.clock.advance(timedelta(hours=8))
    assert world.desk.release_deferred() == 0 and world.queued() == []
    closed = world.history.read(CID)[-1]
    assert closed.kind == "closed" and closed.detail == {"outcome": "no_contact", "cancelled": 2}
