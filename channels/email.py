"""Email: raw RFC 5322 messages in (a signed webhook, or the IMAP poller), SMTP out.

Inbound mail is parsed by :mod:`channels.email_parse`; this module turns the result into an
:class:`InboundMessage` and builds what goes out: ``multipart/alternative`` (plain text and a
simple accessible HTML part), threading headers so mail clients keep one conversation, the
RFC 3834 ``Auto-Submitted`` mark, and the RFC 8058 one-click unsubscribe headers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Literal

import jinja2
from markupsafe import Markup, escape

from channels.base import (
    Channel,
    ChannelAuthError,
    DeliveryFailed,
    DeliveryReceipt,
    DeliveryStatus,
    InboundMessage,
    MalformedRequest,
    OutboundMessage,
    WebhookRequest,
    utcnow,
)
from channels.cleaning import clean_line, clean_payload, clean_text
from channels.email_parse import ParsedEmail, parse_email

#: The header carrying ``sha256=<hex HMAC of the body>`` on ``POST /webhooks/email``.
SIGNATURE_HEADER = "X-Debtbot-Signature"

#: Subject prefixes mail clients add on replies and forwards (English, Spanish, German...).
_REPLY_PREFIX = re.compile(r"^\s*((re|fw|fwd|rv|aw|res|sv)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s<>\"')\]]+")
_NUMBERED = re.compile(r"^\s*(\d{1,2})[.)]?\s+(\S.*)$")
_BULLET = re.compile(r"^\s*[-•*]\s+")
#: "<a date>: <an amount>", maybe with a note: a row of a payment schedule.
_SCHEDULE_ROW = re.compile(r"^(.*\d{4}):\s+(\S*\d[\d.,\s]*\S*(?:\s*\(.+\))?)$")
#: Column headings of a schedule table, per language.
_SCHEDULE_HEADINGS = {"en": ("Date", "Amount"), "es": ("Fecha", "Importe")}

#: The link text of the unsubscribe link in the HTML part.
_UNSUBSCRIBE_LABEL = {"en": "Unsubscribe", "es": "Darse de baja"}

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach the outgoing mail server."""

    host: str
    port: int = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    timeout_seconds: float = 30
    username: str | None = None
    password: str | None = None
    ssl_context: ssl.SSLContext | None = None


def sign(secret: str, body: bytes) -> str:
    """The value of :data:`SIGNATURE_HEADER` for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def reply_subject(subject: str) -> str:
    """``Re: <subject>`` once, whatever prefixes the person's client already stacked up."""
    core = _REPLY_PREFIX.sub("", subject or "").strip()
    return f"Re: {core}" if core else "Re:"


def message_id_for(outbox_id: str, from_address: str) -> str:
    """Our Message-ID for an outbox message: the same on every retry, so a resend after a
    timeout is recognisably the same mail (receivers drop duplicates by Message-ID)."""
    domain = parseaddr(from_address)[1].rpartition("@")[2] or "debtbot.invalid"
    return f"<{outbox_id}@{domain}>"


def outbox_id_from(message_id: str) -> str | None:
    """The outbox id inside one of our Message-IDs (``<outbox_id@domain>``), else ``None``."""
    local = message_id.strip().strip("<>").partition("@")[0]
    return local if re.fullmatch(r"[0-9a-f]{32}", local) else None


def inbound_message(parsed: ParsedEmail) -> InboundMessage:
    """The channel-neutral message for a parsed email."""
    kind = "text"
    if parsed.automated is not None or parsed.bounce is not None:
        kind = "automated"
    elif not parsed.text.strip():
        kind = "unsupported"  # only attachments, or nothing new: nothing we can read
    raw: dict[str, Any] = {
        "message_id": parsed.message_id,
        "subject": parsed.subject,
        "in_reply_to": parsed.in_reply_to,
        "references": list(parsed.references),
        "attachments": parsed.attachments,
        "defects": list(parsed.defects),
        "headers": [list(pair) for pair in parsed.headers],
    }
    if parsed.automated is not None:
        raw["automated"] = parsed.automated
    if parsed.bounce is not None:
        raw["bounce"] = {
            "recipients": list(parsed.bounce.recipients),
            "status": parsed.bounce.status,
            "permanent": parsed.bounce.permanent,
            "original_message_id": parsed.bounce.original_message_id,
        }
    # The parser already cleans what it decodes; this is the last word on everything stored.
    thread_id = parsed.references[0] if parsed.references else parsed.in_reply_to
    return InboundMessage(
        channel="email",
        external_id=clean_line(parsed.message_id),
        # A bounce has no sender to answer; it still needs an address to be queued under.
        sender=clean_line(parsed.sender) or "mailer-daemon",
        text=clean_text(parsed.text),
        recipient=clean_line(parsed.to[0]) if parsed.to else "",
        received_at=parsed.date or utcnow(),
        sender_handle=clean_line(parsed.sender_name) or None,
        thread_id=clean_line(thread_id) if thread_id else None,
        raw=clean_payload(raw),
        kind=kind,
    )


def _paragraphs(text: str) -> list[dict[str, Any]]:
    """Blocks for the HTML template: runs of two or more numbered lines ("1 Pay in full",
    "2. Monthly") become a list, bullet lines ("- ...") a bulleted list, the rest paragraphs
    whose line breaks are kept."""
    blocks: list[dict[str, Any]] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        lines = [line for line in chunk.splitlines() if line.strip()]
        run: list[str] = []
        run_kind = ""
        for line in [*lines, ""]:
            kind = "ol" if _NUMBERED.match(line) else "ul" if _BULLET.match(line) else "p"
            if run and (kind != run_kind or not line):
                blocks.append(_block(run_kind, run))
                run = []
            run_kind = kind
            if line:
                run.append(line)
    return blocks


def _block(kind: str, lines: list[str]) -> dict[str, Any]:
    items = [_BULLET.sub("", line) for line in lines]
    rows = [_SCHEDULE_ROW.match(item) for item in items]
    if kind == "ul" and len(items) > 1 and all(rows):
        # A payment schedule ("- Friday, 4 December 2026: $50.00"): a table reads best.
        return {"kind": "table", "rows": [(_linked(m.group(1)), _linked(m.group(2))) for m in rows if m]}
    if kind == "ol" and len(lines) > 1:
        return {"kind": "ol", "items": [_linked(_NUMBERED.sub(r"\2", line)) for line in lines]}
    if kind == "ul":
        return {"kind": "ul", "items": [_linked(_BULLET.sub("", line)) for line in lines]}
    return {"kind": "p", "lines": [_linked(line) for line in lines]}


def _linked(line: str) -> Markup:
    """``line`` escaped, with its web addresses as links."""
    out: list[str] = []
    last = 0
    for match in _URL.finditer(line):
        out.append(str(escape(line[last : match.start()])))
        url = escape(match.group(0))
        out.append(f'<a href="{url}">{url}</a>')
        last = match.end()
    out.append(str(escape(line[last:])))
    return Markup("".join(out))  # noqa: S704 - every piece above is escaped


class EmailChannel(Channel):
    """Email in and out."""

    name = "email"

    def __init__(
        self,
        *,
        webhook_secret: str,
        from_address: str,
        smtp: SmtpSettings | None,
        max_message_bytes: int = 10_000_000,
        company: str = "",
    ) -> None:
        if not webhook_secret:
            raise ValueError("the email channel needs a webhook secret (EMAIL_WEBHOOK_SECRET)")
        self._secret = webhook_secret
        self.from_address = from_address
        self._smtp = smtp
        self.max_message_bytes = max_message_bytes
        self._company = company

    # --- inbound -------------------------------------------------------------------------

    def authenticate(self, request: WebhookRequest) -> None:
        given = request.header(SIGNATURE_HEADER) or ""
        if not hmac.compare_digest(given.encode(), sign(self._secret, request.body).encode()):
            raise ChannelAuthError(f"missing or wrong {SIGNATURE_HEADER} (HMAC-SHA256 of the body)")

    def parse(self, request: WebhookRequest) -> InboundMessage | None:
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "message/rfc822":
            raise MalformedRequest(f"Content-Type must be message/rfc822 (got {content_type or 'none'!r})")
        return self.parse_raw(request.body)

    def parse_raw(self, raw: bytes) -> InboundMessage:
        """Parse one raw message; raises ``MalformedEmail`` for mail that cannot be read."""
        return inbound_message(parse_email(raw, max_bytes=self.max_message_bytes))

    # --- outbound ------------------------------------------------------------------------

    def compose(self, message: OutboundMessage) -> EmailMessage:
        """The email for ``message``: both parts, threading and opt-out headers."""
        mail = EmailMessage()
        mail["From"] = self.from_address
        mail["To"] = message.recipient
        mail["Subject"] = message.subject or self._company or "A message"
        mail["Date"] = format_datetime(utcnow())
        mail["Message-ID"] = message_id_for(message.outbox_id, self.from_address)
        if message.in_reply_to:
            mail["In-Reply-To"] = message.in_reply_to
            references = [*message.references]
            if message.in_reply_to not in references:
                references.append(message.in_reply_to)
            # Long threads: keep the first and the latest ids (RFC 5322 allows trimming).
            if len(references) > 20:
                references = [references[0], *references[-19:]]
            mail["References"] = " ".join(references)
        # RFC 3834: a machine wrote this, so auto-responders must not answer it...
        mail["Auto-Submitted"] = "auto-replied" if message.in_reply_to else "auto-generated"
        # ...and Exchange/Outlook out-of-office replies are suppressed outright.
        mail["X-Auto-Response-Suppress"] = "All"
        if message.unsubscribe_url:
            mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        context = {
            "text": message.text.strip(),
            "blocks": _paragraphs(message.text),
            # Shown once: the compliance gate may already have put the line in the text.
            "opt_out_text": "" if message.opt_out_text in message.text else message.opt_out_text,
            "unsubscribe_url": message.unsubscribe_url,
            "language": message.language or "en",
            "subject": str(mail["Subject"]),
            "company": self._company,
            "unsubscribe_label": _UNSUBSCRIBE_LABEL.get(message.language, _UNSUBSCRIBE_LABEL["en"]),
            "headings": _SCHEDULE_HEADINGS.get(message.language, _SCHEDULE_HEADINGS["en"]),
        }
        mail.set_content(_TEMPLATES.get_template("email.txt").render(context), subtype="plain", cte="8bit")
        mail.add_alternative(_TEMPLATES.get_template("email.html").render(context), subtype="html")
        if message.language:  # after the body: setting content clears Content-* headers
            mail["Content-Language"] = message.language
        return mail

    def find_sent(self, message: OutboundMessage, since: datetime) -> DeliveryReceipt | None:
        """SMTP cannot tell: a submission server keeps no record we can ask. After an attempt
        whose outcome we did not record we send again, with the same ``Message-ID``
        (:func:`message_id_for`): receiving mail systems and clients (Gmail among them) drop a
        second copy with a Message-ID they already hold, so the person normally sees one."""
        return None

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        if self._smtp is None:
            raise DeliveryFailed("no SMTP server configured (channels.email.smtp.host)", permanent=False)
        mail = self.compose(message)
        envelope_from = parseaddr(self.from_address)[1]
        try:
            with self._connect(self._smtp) as smtp:
                refused = smtp.send_message(mail, from_addr=envelope_from, to_addrs=[message.recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()), (550, b"refused"))
            raise self._failure(code, reason, "recipient refused") from exc
        except smtplib.SMTPAuthenticationError as exc:
            # Our credentials, not the message: keep it and retry (an operator must fix this).
            raise DeliveryFailed(f"SMTP login refused ({exc.smtp_code})", permanent=False) from exc
        except smtplib.SMTPResponseException as exc:
            raise self._failure(exc.smtp_code, exc.smtp_error, "refused") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"SMTP server unreachable: {type(exc).__name__}", permanent=False) from exc
        if refused:
            code, reason = next(iter(refused.values()))
            raise self._failure(code, reason, "recipient refused")
        return DeliveryReceipt(
            outbox_id=message.outbox_id,
            channel=self.name,
            status=DeliveryStatus.SENT,
            external_id=str(mail["Message-ID"]),
        )

    @staticmethod
    def _connect(settings: SmtpSettings) -> smtplib.SMTP:
        context = settings.ssl_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if settings.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout_seconds, context=context
            )
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
            if settings.security == "starttls":
                try:
                    smtp.starttls(context=context)
                except BaseException:
                    smtp.close()
                    raise
        if settings.username and settings.password:
            try:
                smtp.login(settings.username, settings.password)
            except BaseException:
                smtp.close()
                raise
        return smtp

    @staticmethod
    def _failure(code: int, reason: bytes | str, what: str) -> DeliveryFailed:
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        # 4xx: try again later (greylisting, a full mailbox, a busy server); 5xx: never.
        return DeliveryFailed(
            f"SMTP {what}: {code} {text}".strip(), permanent=500 <= code < 600, code=f"smtp_{code}"
        )
