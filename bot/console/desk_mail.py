"""Mail set aside (dead letters) in the console: ``MailView`` and ``read_mail`` (what a person can
read of a mail the strict parser refused), and ``DeskMail`` (part of ``bot.console.desk.Desk``):
reading a set-aside mail (audited) and attaching it to an account's conversation.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

from bot.compliance.rules import CHANNELS
from bot.console.desk_base import DeskBase, DeskError
from bot.console.handoff import Actor
from channels.cleaning import clean_line, clean_text
from channels.email_parse import MalformedEmail, html_to_text, parse_email

#: The most of a set-aside mail's text shown (and attached to a conversation).
MAIL_TEXT_MAX = 20_000


@dataclass(frozen=True)
class MailView:
    """Mail set aside (a dead letter), readable by a person: plain text only (its HTML is never
    shown, only turned into text), every part from outside to be shown escaped."""

    sender: str
    sender_name: str
    subject: str
    #: The mail's own Message-ID and thread (to answer it in its thread once attached).
    message_id: str
    references: tuple[str, ...]
    text: str
    #: The mail could not be parsed as a whole: what is shown is the best that could be read.
    partial: bool

    def thread(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "subject": self.subject, "references": list(self.references)}


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    if value is None:
        return ""
    try:
        return clean_line(str(make_header(decode_header(str(value)))))
    except (ValueError, LookupError, UnicodeError, TypeError):
        return clean_line(str(value))


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


def read_mail(raw: bytes) -> MailView:
    """What a person can read of ``raw``: the project's parser when it copes, else the standard
    library's lenient one (the mail was set aside because the strict reading failed)."""
    try:
        parsed = parse_email(raw)
    except MalformedEmail:
        pass
    else:
        return MailView(
            sender=parsed.sender, sender_name=parsed.sender_name, subject=parsed.subject,
            message_id=parsed.message_id, references=tuple(parsed.references),
            text=(parsed.full_text or parsed.text)[:MAIL_TEXT_MAX], partial=False,
        )  # fmt: skip
    try:
        message = email.message_from_bytes(raw[:2_000_000], policy=email.policy.compat32)
        plain = html = ""
        for part in message.walk():
            kind = part.get_content_type()
            if kind == "text/plain" and not plain:
                plain = _part_text(part)
            elif kind == "text/html" and not html:
                html = _part_text(part)
        text = plain or (html_to_text(html) if html else "")
        sender_name, sender = email.utils.parseaddr(_header(message, "From"))
        references = tuple(_header(message, "References").split())
        return MailView(
            sender=clean_line(sender), sender_name=clean_line(sender_name),
            subject=_header(message, "Subject"), message_id=_header(message, "Message-ID"),
            references=references,
            text=clean_text(text or raw.decode("utf-8", "replace"))[:MAIL_TEXT_MAX], partial=True,
        )  # fmt: skip
    except Exception:  # adversarial mail has crashed the email package before
        text = clean_text(raw.decode("utf-8", "replace"))[:MAIL_TEXT_MAX]
        return MailView(sender="", sender_name="", subject="", message_id="", references=(), text=text,
                        partial=True)  # fmt: skip


class DeskMail(DeskBase):
    """Mail set aside: read it, attach it to a conversation."""

    def attach_dead_letter(
        self, dead_letter_id: str, account_id: str, agent: Actor, channel: str = "email"
    ) -> str:
        """Mail set aside (unreadable) belongs to ``account_id``'s conversation: its readable text
        goes into that conversation's history as what the person wrote (once), the sender's
        address becomes where an email reply goes if the account has none, and the thread is
        kept so the agent's answer is a reply in it; the conversation waits for a person (reason
        ``dead_letter``) and the letter leaves the inbox. Returns the conversation id."""
        if channel not in CHANNELS:
            raise DeskError(f"unknown channel {channel!r}")
        if not isinstance(dead_letter_id, str) or not re.match(r"^\d{1,20}-\d{1,20}$", dead_letter_id):
            raise DeskError("no such mail")
        account_id = account_id.strip() if isinstance(account_id, str) else ""
        account = self.accounts.get(account_id) if account_id and len(account_id) <= 100 else None
        if account is None:
            raise DeskError(f"no account {account_id[:100]!r}: check the account id")
        rows = self.redis.xrange(self.keys.dead_letters(channel), dead_letter_id, dead_letter_id)
        if not rows:
            raise DeskError("that mail is no longer kept")
        fields = {k.decode(): v for k, v in rows[0][1].items()}
        mail = read_mail(fields.get("raw", b""))
        conversation_id = f"acct-{account.account_id}"
        source = f"deadletter:{channel}:{dead_letter_id}"
        if channel == "email":
            self.redis.hset(self.email_thread_key(conversation_id),
                            mapping={"source": source, "thread": json.dumps(mail.thread())})  # fmt: skip
        self.conversation_history.inbound(
            conversation_id, source=source, channel=channel, text=mail.text or "(no readable text)",
            kind="dead_letter", address=mail.sender if "@" in mail.sender else "",
        )  # fmt: skip
        self.handoff.escalate(conversation_id, "dead_letter")
        self.redis.sadd(self.dead_letters_done_key, f"{channel}:{dead_letter_id}")
        self._audit(agent, "attach_dead_letter", conversation_id, dead_letter=f"{channel}:{dead_letter_id}")
        return conversation_id

    def read_dead_letter(
        self, channel: str, dead_letter_id: str, agent: Actor | None = None
    ) -> MailView | None:
        """A set-aside mail as a person may read it (``None``: not kept). Reading it is audited
        when ``agent`` is given."""
        if channel not in CHANNELS or not re.match(r"^\d{1,20}-\d{1,20}$", dead_letter_id or ""):
            return None
        rows = self.redis.xrange(self.keys.dead_letters(channel), dead_letter_id, dead_letter_id)
        if not rows:
            return None
        fields = {k.decode(): v for k, v in rows[0][1].items()}
        if agent is not None:
            self._audit(agent, "read_dead_letter", f"deadletter:{channel}:{dead_letter_id}")
        return read_mail(fields.get("raw", b""))
