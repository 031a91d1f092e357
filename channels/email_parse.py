"""Parsing one incoming email (raw RFC 5322 bytes) into what the bot needs.

Pure functions, no I/O. The hard parts of email are all here: charsets, MIME trees, the
quoted history a reply drags along, robots (auto-replies, lists, bounces) that must never be
answered, and mail broken badly enough that a person has to look at it.

Decisions worth knowing about:

* **8-bit headers.** Raw UTF-8 in headers is decoded as UTF-8 (RFC 6532). Bytes that are not
  valid UTF-8 are decoded leniently as Windows-1252 (Latin-1 for its five undefined bytes):
  old clients that send raw 8-bit headers send them in the sender's legacy charset, which for
  our Spanish and English speakers is almost always Windows-1252/Latin-1, and a slightly wrong
  subject is better than a person's message going unread. The value is noted in ``defects``
  as ``NonUtf8HeaderDefect``; ``undecodable_headers`` is therefore never raised today.
* **Bounces without a DSN part** (qmail, older Exim) from MAILER-DAEMON/postmaster or a null
  return path are always ``automated``; their ``bounce`` is parsed heuristically only from
  formats that name the recipient unambiguously (Exim's ``X-Failed-Recipients`` header,
  qmail's ``<address>:`` lines), otherwise it is ``None``.
* **Reply stripping** uses rules of our own rather than ``mailparser_reply``: that library
  treats a line starting with ``- `` or ``Thanks,`` as the start of a signature and drops
  everything after it, which loses a debtor's words ("- 50 now / - 50 on Friday").
"""

from __future__ import annotations

import binascii
import codecs
import email
import email.errors
import email.utils
import hashlib
import quopri
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy
from email.headerregistry import Address, AddressHeader, BaseHeader
from email.message import EmailMessage, Message
from html.parser import HTMLParser

from inscriptis import get_text  # type: ignore[import-untyped]
from inscriptis.css_profiles import CSS_PROFILES  # type: ignore[import-untyped]
from inscriptis.html_properties import Display  # type: ignore[import-untyped]
from inscriptis.model.config import ParserConfig  # type: ignore[import-untyped]
from inscriptis.model.html_element import HtmlElement  # type: ignore[import-untyped]

from channels.base import MalformedRequest
from channels.cleaning import clean_line, clean_text

__all__ = [
    "MALFORMED_REASONS",
    "Bounce",
    "MalformedEmail",
    "NonUtf8HeaderDefect",
    "ParsedEmail",
    "automated_reason",
    "bounce_of",
    "html_to_text",
    "parse_email",
    "strip_reply",
]

MALFORMED_REASONS = ("too_large", "no_sender", "broken_mime", "undecodable_headers", "not_email")


class MalformedEmail(MalformedRequest):
    """Mail we cannot read safely; it goes to the dead letters for a person."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class NonUtf8HeaderDefect(email.errors.HeaderDefect):
    """A header carried raw 8-bit bytes that are not UTF-8; decoded as Windows-1252."""


@dataclass(frozen=True)
class Bounce:
    """A delivery failure (or delay) report for mail we sent."""

    recipients: tuple[str, ...]
    status: str
    permanent: bool
    original_message_id: str | None


@dataclass(frozen=True)
class ParsedEmail:
    """One incoming email, reduced to what the bot needs."""

    message_id: str
    sender: str
    sender_name: str
    to: tuple[str, ...]
    subject: str
    date: datetime | None
    in_reply_to: str | None
    references: tuple[str, ...]
    text: str
    full_text: str
    automated: str | None
    bounce: Bounce | None
    attachments: int
    defects: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]


_POLICY = policy.default

# The stdlib feed parser's own test for "this line is a header" (field name of printable
# ASCII without colon), plus the mbox "From " line it accepts first.
_HEADER_LINE = re.compile(rb"(?:From |[\x21-\x39\x3b-\x7e]+:)")
# At least one of these must be present for bytes to count as an email at all: a JSON body
# or a text file can look like "name: value" lines, but will not carry these.
_EMAIL_HEADERS = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "subject",
        "date",
        "message-id",
        "received",
        "return-path",
        "mime-version",
        "delivered-to",
        "in-reply-to",
        "references",
    }
)
_MAIL_SYSTEM_LOCALPARTS = frozenset({"mailer-daemon", "postmaster"})
_BULK_PRECEDENCE = frozenset({"bulk", "auto_reply", "list", "junk"})
# Postgres text and most logs reject NUL; other C0 controls are never meaningful in mail.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# C1 controls: text labelled ISO-8859-1 is nearly always Windows-1252 (Outlook's dashes and
# curly quotes), the way browsers read it too.
_C1 = re.compile(r"[\x80-\x9f]")
_MSG_ID = re.compile(r"<([^<>]*)>")
_MULTIPART_HEADER = re.compile(rb"^content-type:[ \t\r\n]*multipart/", re.IGNORECASE | re.MULTILINE)
_MAX_MULTIPARTS = 100
# RFC 5322 caps a line at 998 characters; real Message-IDs are well under 100.
_MAX_MESSAGE_ID = 250
_COMMENT = re.compile(r"\([^()]*\)")
_BRACKET = re.compile(r"[<>]")
_ENHANCED_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


# --- public API ---------------------------------------------------------------------------


def parse_email(raw: bytes, *, max_bytes: int = 10_000_000) -> ParsedEmail:
    """Parse one raw email; raise :class:`MalformedEmail` for mail we cannot read safely."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise MalformedEmail("not_email", f"Expected the raw bytes of an email, got {type(raw).__name__}.")
    raw = bytes(raw)
    # Before any parsing: the size limit exists to protect memory.
    if len(raw) > max_bytes:
        raise MalformedEmail(
            "too_large", f"The email is {len(raw):,} bytes, over the limit of {max_bytes:,} bytes."
        )
    try:
        return _parse(raw)
    except MalformedEmail:
        raise
    except RecursionError as exc:
        # The email package walks the MIME tree recursively, with no depth limit of its own.
        raise MalformedEmail("broken_mime", "The email's MIME parts are nested too deeply to read.") from exc
    except Exception as exc:
        # Last resort: the email package has crashed on adversarial input before; whatever it
        # is, a person must look at this mail.
        raise MalformedEmail(
            "broken_mime", f"The email could not be parsed ({type(exc).__name__}: {exc})."
        ) from exc


def strip_reply(text: str) -> str:
    """Return only the new words of a reply: no quoted history, signature or mobile sign-off.

    Top-posting is the norm: the words above the first quote header ("On ... wrote:",
    "El ... escribió:", an Outlook "From:/Sent:" block, "-----Original Message-----") or
    signature delimiter are the reply. When there are none, the person answered inline, below
    or between ``>``-quoted lines, and their unquoted lines are the reply. History that is not
    ``>``-quoted (Outlook) is never returned: it is our own earlier message.
    """
    lines = _normalise_newlines(text).split("\n")
    cut = _first_history_marker(lines)
    above = [line for line in lines[:cut] if not _is_quoted(line)]
    reply = _tidy(_drop_sign_offs(above))
    if reply:
        return reply
    return _tidy(_drop_sign_offs(_inline_reply(lines)))


def html_to_text(html: str) -> str:
    """Convert an HTML body to readable text: paragraphs and line breaks kept, no markup."""
    return _html_to_text(html, hide_quotes=False)


def automated_reason(message: EmailMessage) -> str | None:
    """Say which sign shows the mail was sent by a machine, or ``None`` if a person wrote it."""
    for value in _values(message, "Auto-Submitted"):
        # RFC 3834: "no" is the only value a person's mail may carry; parameters don't count.
        kind = _COMMENT.sub("", value).split(";", 1)[0].strip().lower()
        if kind != "no":
            return f"Auto-Submitted: {kind or '(empty)'}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"):
        if _values(message, name):
            return f"{name} header"
    for value in _values(message, "Precedence"):
        if value.strip().lower() in _BULK_PRECEDENCE:
            return f"Precedence: {value.strip().lower()}"
    # RFC 2369/2919 list headers: a person's own client never adds them.
    for name in ("List-Id", "List-Unsubscribe", "List-Post"):
        if _values(message, name):
            return f"{name} header"
    # Exim puts this on its bounces, including the ones without a DSN part.
    if _values(message, "X-Failed-Recipients"):
        return "X-Failed-Recipients header"
    if _content_type(message) == "multipart/report" and _report_type(message) == "delivery-status":
        return "delivery status report"
    for value in _values(message, "Return-Path"):
        if _is_null_path(value):
            return "null Return-Path"
    for name in ("From", "Return-Path", "Sender"):
        for address in _plain_addresses(message, name):
            if address.split("@", 1)[0].strip('"').lower() in _MAIL_SYSTEM_LOCALPARTS:
                return f"{name} is the mail system ({address})"
    if not _sender(message)[0]:
        return "empty sender"
    return None


def bounce_of(message: EmailMessage) -> Bounce | None:
    """Read a delivery status report (RFC 3464), or a well-known non-DSN bounce; else ``None``.

    A report that only says mail was delivered/relayed is not a bounce (``None``). When a
    report mixes permanent failures and delays, the bounce lists the permanent failures only:
    the delayed ones are still being retried and need nothing from us.
    """
    status_part = _delivery_status_part(message)
    if status_part is not None:
        return _dsn_bounce(message, status_part)
    if _from_mail_system(message):
        return _heuristic_bounce(message)
    return None


# --- parsing ------------------------------------------------------------------------------


def _parse(raw: bytes) -> ParsedEmail:
    body_bytes = raw.lstrip(b"\r\n")
    first_line = body_bytes.split(b"\n", 1)[0]
    if not body_bytes.strip() or not _HEADER_LINE.match(first_line):
        raise MalformedEmail("not_email", "The data does not start with email headers; it is not an email.")
    if len(_MULTIPART_HEADER.findall(body_bytes)) > _MAX_MULTIPARTS:
        # The email package walks nested parts recursively and slowly: thousands of levels
        # take seconds before they fail. No person's mail has this many multipart parts.
        raise MalformedEmail(
            "broken_mime",
            f"The email's MIME parts are nested too deeply or too many (over {_MAX_MULTIPARTS} multiparts).",
        )
    message = email.message_from_bytes(body_bytes, policy=_POLICY)
    names = {name.lower() for name in message}
    if not names & _EMAIL_HEADERS:
        raise MalformedEmail(
            "not_email", "The data has none of the headers every email carries (From, Date, Subject...)."
        )
    if _broken_multipart(message):
        raise MalformedEmail(
            "broken_mime",
            "The email says it is multipart but has no boundary, or its boundary never appears, "
            "so none of its parts can be read.",
        )
    nested_broken = _neutralise_nested_broken_multiparts(message)

    bounce = bounce_of(message)
    automated = automated_reason(message)
    sender, sender_name = _sender(message)
    if not sender and bounce is None and not _from_mail_system(message):
        raise MalformedEmail("no_sender", "The email has no From address we could read, so nobody to answer.")

    body = _find_body(message)
    if body is None and nested_broken:
        raise MalformedEmail(
            "broken_mime", "The email's text is inside a multipart part that cannot be read."
        )
    full_text, text = _body_texts(message, body)

    header_defects: list[str] = []
    headers = tuple((name, _decoded(name, value, header_defects)) for name, value in message.raw_items())
    return ParsedEmail(
        message_id=_message_id(message, raw),
        sender=sender,
        sender_name=sender_name,
        to=_recipients(message),
        subject=" ".join(_first_decoded(message, "Subject").split()),
        date=_date(message),
        in_reply_to=next(iter(_msg_ids(" ".join(_values(message, "In-Reply-To")))), None),
        references=_msg_ids(" ".join(_values(message, "References"))),
        text=text,
        full_text=full_text,
        automated=automated,
        bounce=bounce,
        attachments=_count_attachments(message, body),
        defects=_defect_names(message, header_defects),
        headers=headers,
    )


def _broken_multipart(message: Message) -> bool:
    # The email package leaves such a message's payload as one string: no part can be read.
    return message.get_content_maintype() == "multipart" and not message.is_multipart()


def _neutralise_nested_broken_multiparts(message: Message) -> bool:
    """Turn unreadable nested multiparts into opaque attachments; say whether there were any.

    ``get_body`` would iterate such a part's string payload character by character and crash;
    the rest of the mail (usually the text) is still worth reading.
    """
    broken = [part for part in message.walk() if part is not message and _broken_multipart(part)]
    for part in broken:
        del part["Content-Type"]
        part["Content-Type"] = "application/octet-stream"
    return bool(broken)


def _find_body(message: EmailMessage) -> Message | None:
    body = _safe_body(message, ("plain", "html"))
    if body is not None and body.get_content_subtype() == "plain" and not _part_text(body).strip():
        # Some clients send an empty text/plain alternative next to the real HTML body.
        html = _safe_body(message, ("html",))
        if html is not None:
            return html
    return body


def _body_texts(message: EmailMessage, body: Message | None) -> tuple[str, str]:
    """The whole readable text and the new words only."""
    if body is None:
        return "", ""
    content = _part_text(body)
    if body.get_content_subtype() != "html":
        full_text = _clean_text(content)
        return full_text, strip_reply(full_text)
    full_text = html_to_text(content)
    # Hiding <blockquote> first drops Apple Mail and Thunderbird history that carries no "> ".
    text = strip_reply(_html_to_text(content, hide_quotes=True)) or strip_reply(full_text)
    return full_text, text


def _part_text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None  # a transfer encoding the email package cannot undo: no readable text
    data = payload if isinstance(payload, bytes) else b""
    text = _windows_1252_c1(_decode_bytes(data, part.get_content_charset()))
    if part.get_content_subtype() == "plain" and str(part.get_param("format", "")).lower() == "flowed":
        text = _unflow(text, delsp=str(part.get_param("delsp", "")).lower() == "yes")
    return text


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset, falling back sensibly when the label is wrong."""
    declared = (charset or "").strip().strip('"').lower()
    candidates = [declared] if declared else []
    candidates.append("utf-8")
    if declared in ("", "us-ascii", "ascii", "utf-8", "utf8") or not _is_text_codec(declared):
        # The usual mislabel: Latin-1 text declared as ASCII/UTF-8, or no charset at all.
        candidates.append("cp1252")
    for name in candidates:
        if not _is_text_codec(name):
            continue
        try:
            return data.decode(name)
        except (UnicodeError, LookupError, ValueError):
            continue
    fallback = declared if _is_text_codec(declared) else "latin-1"
    try:
        return data.decode(fallback, errors="replace")
    except (UnicodeError, LookupError, ValueError):
        return data.decode("latin-1")


def _windows_1252_c1(text: str) -> str:
    """Read C1 control characters as the Windows-1252 characters they almost always are."""
    return _C1.sub(lambda match: bytes([ord(match.group())]).decode("cp1252", errors="ignore"), text)


def _is_text_codec(name: str) -> bool:
    if not name:
        return False
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return False
    # "base64", "zlib", "rot13"... are codecs too, but not text encodings.
    return bool(getattr(info, "_is_text_encoding", True))


def _unflow(text: str, *, delsp: bool) -> str:
    """Undo RFC 3676 format=flowed: a line ending in a space continues on the next line."""
    out: list[str] = []
    current: str | None = None
    current_depth = 0

    def flush() -> None:
        nonlocal current
        if current is not None:
            out.append(">" * current_depth + (" " if current_depth else "") + current)
            current = None

    for line in _normalise_newlines(text).split("\n"):
        content = line.lstrip(">")
        depth = len(line) - len(content)
        if content.startswith(" "):
            content = content[1:]  # space-stuffing
        if content == "-- ":
            # The signature separator is never flowed.
            flush()
            out.append(">" * depth + (" " if depth else "") + content)
            continue
        if current is not None and depth == current_depth:
            current += content
        else:
            flush()
            current, current_depth = content, depth
        if current.endswith(" "):
            if delsp:
                current = current[:-1]
            continue  # flowed: the next line continues this one
        flush()
    flush()
    return "\n".join(out)


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _clean_text(text: str) -> str:
    text = clean_text(_CONTROL.sub("", _normalise_newlines(text)))
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


# --- HTML ---------------------------------------------------------------------------------


def _inscriptis_config(*, hide_quotes: bool) -> object:
    css = CSS_PROFILES["strict"].copy()
    if hide_quotes:
        css["blockquote"] = HtmlElement(display=Display.none)
    return ParserConfig(css=css, display_links=False, display_images=False)


_HTML_CONFIG = _inscriptis_config(hide_quotes=False)
_HTML_CONFIG_NO_QUOTES = _inscriptis_config(hide_quotes=True)


# inscriptis' layout (tables especially) grows worse than linearly: a few MB of table-heavy
# HTML takes tens of seconds. No person writes that much; above this, strip tags instead.
_MAX_LAYOUT_HTML = 1_000_000


def _html_to_text(html: str, *, hide_quotes: bool) -> str:
    config = _HTML_CONFIG_NO_QUOTES if hide_quotes else _HTML_CONFIG
    try:
        if len(html) > _MAX_LAYOUT_HTML:
            raise ValueError("too big to lay out")
        text = str(get_text(html, config))
    except Exception:
        # lxml refuses some inputs (odd encodings, declarations); plain tag-stripping still
        # gives the person's words.
        text = _strip_tags(html)
    text = _CONTROL.sub("", _normalise_newlines(text)).replace("\xa0", " ")
    # Layout indentation from nested <div>s means nothing in a chat message.
    lines = [line.strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _TagStripper(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "title"})
    _BREAKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAKS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")  # keep table cells apart

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _strip_tags(html: str) -> str:
    stripper = _TagStripper()
    stripper.feed(html)
    stripper.close()
    return "".join(stripper.parts)


# --- reply stripping ----------------------------------------------------------------------

# Attribution lines, checked on up to three joined lines because clients wrap them at ~78
# characters. Gmail, Apple Mail and Outlook.com (en); Gmail and Apple Mail (es).
_ATTRIBUTION = re.compile(r"(?:On\s.{4,400}\swrote|El\s.{4,400}\sescribi[óo])\s?:")
_FROM_FIELD = re.compile(r"\*?(?:From|De)\s?\*?:\*?\s*\S", re.IGNORECASE)
_OTHER_FIELD = re.compile(
    r"\*?(?:Sent|Date|To|Cc|Subject|Enviado(?: el)?|Fecha|Para|Asunto)\s?\*?:", re.IGNORECASE
)
# Every client's attribution carries the time; requiring it keeps "On Friday ... wrote:" ours.
_TIME = re.compile(r"\d{1,2}[:.]\d{2}")
_OUTLOOK_RULE = re.compile(r"_{10,}")
_SEPARATOR = re.compile(
    r"-{2,}\s*(?:Original Message|Mensaje original|Forwarded message|Mensaje reenviado)\s*-{2,}"
    r"|(?:Begin forwarded message|Inicio del mensaje reenviado)\s?:",
    re.IGNORECASE,
)
_SIGNATURE = re.compile(r"--[ \t]*")
# Mobile sign-offs are recognised only as the last line of the reply, only when they name a
# device or mail app in a few words and no clause follows: "Sent from my phone" is a sign-off,
# "Sent from my mobile banking app, please confirm" is the person's words.
_DEVICE = (
    r"iPhone|iPad|Android|Samsung|Galaxy|BlackBerry|Huawei|Xiaomi|Redmi|Pixel|Motorola|Nokia|"
    r"OnePlus|mobile|m[óo]vil|phone|tel[ée]fono|smartphone|tablet|device|dispositivo|"
    r"Outlook|Yahoo|AOL|Gmail|Mail|Correo|Proton"
)
_SIGN_OFF = re.compile(
    r"(?:(?:Sent|Enviado)\s+(?:from|desde|via|con|with)\s+(?:my\s+|mi\s+|el\s+|la\s+)?"
    rf"(?=[^,;:.!?]*\b(?:{_DEVICE})\b)[^\s,;:.!?]+(?:\s+[^\s,;:.!?]+){{0,5}}"
    r"|(?:Get|Obtener|Descargar|Obtenga)\s+Outlook\s+(?:for|para)\s+(?:iOS|Android)"
    r")\.?\s*(?:<[^<>\s]*>)?",
    re.IGNORECASE,
)


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _attribution_length(lines: list[str], index: int) -> int:
    """How many lines the attribution starting at ``index`` spans; 0 if there is none."""
    first = lines[index].strip()
    if not first.startswith(("On ", "El ")) or _is_quoted(first):
        return 0
    joined = ""
    for span in range(1, 4):
        line = lines[index + span - 1].strip() if index + span - 1 < len(lines) else ""
        if not line or (span > 1 and _is_quoted(line)):
            return 0
        joined = f"{joined} {line}" if joined else line
        if _ATTRIBUTION.fullmatch(joined) and _TIME.search(joined):
            return span
        # A finished sentence is the person's own "On Friday I will pay.", not a wrapped header.
        if line.endswith((".", "!", "?")):
            return 0
    return 0


def _is_outlook_block(lines: list[str], index: int) -> bool:
    line = lines[index].strip()
    if _OUTLOOK_RULE.fullmatch(line):
        following = [candidate for candidate in lines[index + 1 : index + 4] if candidate.strip()]
        return bool(following) and _FROM_FIELD.match(following[0].strip()) is not None
    if not _FROM_FIELD.match(line):
        return False
    # One "From:" line is something a person may write; Outlook always adds Sent/To/Subject.
    return any(_OTHER_FIELD.match(candidate.strip()) for candidate in lines[index + 1 : index + 5])


def _first_history_marker(lines: list[str]) -> int:
    for index, line in enumerate(lines):
        if _is_quoted(line):
            continue
        if (
            _SIGNATURE.fullmatch(line)
            or _SEPARATOR.fullmatch(line.strip())
            or _is_outlook_block(lines, index)
            or _attribution_length(lines, index)
        ):
            return index
    return len(lines)


def _inline_reply(lines: list[str]) -> list[str]:
    """The unquoted lines of a reply written below or between ``>``-quoted lines."""
    kept: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if (
            _SIGNATURE.fullmatch(line)
            or _SEPARATOR.fullmatch(line.strip())
            or _is_outlook_block(lines, index)
        ):
            break
        span = _attribution_length(lines, index)
        if span:
            index += span
            following = next((candidate for candidate in lines[index:] if candidate.strip()), "")
            if not _is_quoted(following):
                break  # history without "> " marks: nothing below it is the person's
            continue
        if not _is_quoted(line):
            kept.append(line)
        index += 1
    return kept


def _drop_sign_offs(lines: list[str]) -> list[str]:
    lines = list(lines)
    while lines and (not lines[-1].strip() or _SIGN_OFF.fullmatch(lines[-1].strip())):
        lines.pop()
    return lines


def _tidy(lines: Iterable[str]) -> str:
    text = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- headers ------------------------------------------------------------------------------


def _undo_8bit(value: str) -> tuple[str, bool]:
    """Decode raw 8-bit header bytes (kept by the parser as surrogates); say if not UTF-8."""
    if not any("\udc80" <= char <= "\udcff" for char in value):
        return value, False
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), True
    except UnicodeDecodeError:
        return data.decode("latin-1"), True


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", "")


def _raw_values(message: Message, name: str) -> list[str]:
    lowered = name.lower()
    values: list[str] = []
    for key, value in message.raw_items():
        if key.lower() == lowered:
            values.append(_undo_8bit(_unfold(str(value)))[0])
    return values


def _values(message: Message, name: str) -> list[str]:
    """Every value of header ``name``, decoded (RFC 2047 and 8-bit), or [] when absent."""
    return [_decoded(name, value) for value in _raw_values(message, name)]


def _decoded(name: str, raw_value: str, defects: list[str] | None = None) -> str:
    value, lenient = _undo_8bit(_unfold(str(raw_value)))
    if lenient and defects is not None:
        defects.append(NonUtf8HeaderDefect.__name__)
    header = _header_object(name, value)
    if header is not None:
        if defects is not None:
            defects.extend(type(defect).__name__ for defect in header.defects)
        value = str(header)
    # A broken encoded word ("=?UTF-8?Q?L=C3pez?=") decodes to lone surrogates: U+FFFD.
    return clean_line(_HEADER_CONTROL.sub("", _windows_1252_c1(value))).strip()


def _header_object(name: str, value: str) -> BaseHeader | None:
    try:
        header = _POLICY.header_factory(name, value)
    except Exception:
        return None  # the header parser has choked on odd input before; keep the raw value
    return header if isinstance(header, BaseHeader) else None


def _first_decoded(message: Message, name: str) -> str:
    values = _values(message, name)
    return values[0] if values else ""


def _addresses(message: Message, name: str) -> list[tuple[str, str]]:
    """(display name, lowercased addr-spec) of every usable address in header ``name``."""
    found: list[tuple[str, str]] = []
    for value in _raw_values(message, name):
        header = _header_object(name, value)
        parsed: list[tuple[str, str]] = []
        if isinstance(header, AddressHeader):
            parsed = [(address.display_name, _addr_spec(address)) for address in header.addresses]
        if not any(spec for _, spec in parsed):
            # The stdlib's lenient older parser reads some addresses the strict one rejects.
            parsed = [(display, spec) for display, spec in email.utils.getaddresses([value])]
        for display, spec in parsed:
            spec = spec.strip().lower()
            local, at, domain = spec.rpartition("@")
            if at and local and domain and spec.isprintable() and " " not in spec:
                found.append((" ".join(clean_line(_HEADER_CONTROL.sub("", display)).split()), spec))
    return found


def _addr_spec(address: Address) -> str:
    try:
        return address.addr_spec
    except Exception:
        return ""


def _plain_addresses(message: Message, name: str) -> list[str]:
    """Addresses in a header, mail-system ones without a domain ("MAILER-DAEMON") included."""
    found = [spec for _, spec in _addresses(message, name)]
    for value in _raw_values(message, name):
        for token in re.findall(r"<([^<>@\s]+)>|^\s*([^<>@\s(]+)\s*(?:\(|$)", value):
            bare = (token[0] or token[1]).strip().lower()
            if bare:
                found.append(bare)
    return found


def _sender(message: Message) -> tuple[str, str]:
    # Only From: in debt collection, answering a Sender/Reply-To we cannot tie to the debtor
    # could disclose the debt to a third party.
    addresses = _addresses(message, "From")
    if not addresses:
        return "", ""
    display, spec = addresses[0]
    return spec, display


def _recipients(message: Message) -> tuple[str, ...]:
    specs = [spec for name in ("To", "Cc") for _, spec in _addresses(message, name)]
    return tuple(dict.fromkeys(specs))


def _is_null_path(value: str) -> bool:
    return re.fullmatch(r"\s*<\s*>\s*", value) is not None


def _from_mail_system(message: Message) -> bool:
    if any(_is_null_path(value) for value in _values(message, "Return-Path")):
        return True
    return any(
        address.split("@", 1)[0].strip('"').lower() in _MAIL_SYSTEM_LOCALPARTS
        for name in ("From", "Return-Path", "Sender")
        for address in _plain_addresses(message, name)
    )


def _msg_ids(value: str) -> tuple[str, ...]:
    """Message ids in a Message-ID/In-Reply-To/References value: "<...>" form, in order, once."""
    text = _HEADER_CONTROL.sub("", value)
    for _ in range(4):  # comments may nest; a bounded loop, since the header is untrusted
        uncommented = _COMMENT.sub(" ", text)
        if uncommented == text:
            break
        text = uncommented
    ids = ["".join(inner.split()) for inner in _MSG_ID.findall(text)]
    if not _MSG_ID.search(text):
        # No angle brackets at all: some clients write bare ids.
        ids = [token.strip("<>") for token in text.replace(",", " ").split() if "@" in token]
    # Ids never hold brackets or spaces; what does is a fragment of a broken header.
    return tuple(dict.fromkeys(f"<{inner}>" for inner in ids if inner and not _BRACKET.search(inner)))


def _message_id(message: Message, raw: bytes) -> str:
    for value in _raw_values(message, "Message-ID"):
        ids = _msg_ids(value)
        if ids:
            return _bounded_id(ids[0])
        bare = _BRACKET.sub("", "".join(_COMMENT.sub("", _HEADER_CONTROL.sub("", value)).split()))
        if bare:
            return _bounded_id(f"<{bare}>")
    # Stable, so a re-delivered copy of the same bytes de-duplicates.
    return f"<{hashlib.sha256(raw).hexdigest()[:32]}@debtbot.invalid>"


def _bounded_id(message_id: str) -> str:
    """The id as it is when it is a sane one; else a stable stand-in derived from it, so the
    de-duplication key stays short and printable whatever the header held."""
    if len(message_id) <= _MAX_MESSAGE_ID and message_id.isprintable():
        return message_id
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"<{digest}@debtbot.invalid>"


def _date(message: Message) -> datetime | None:
    for value in _raw_values(message, "Date"):
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            continue
        if parsed is None:
            continue
        # "-0000" (and a missing zone) means UTC per RFC 5322; aware datetimes compare safely.
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)
    return None


def _defect_names(message: Message, header_defects: list[str]) -> tuple[str, ...]:
    names: list[str] = []
    for part in message.walk():
        names.extend(type(defect).__name__ for defect in part.defects)
    names.extend(header_defects)
    return tuple(dict.fromkeys(names))


# --- MIME structure -----------------------------------------------------------------------


def _content_type(message: Message) -> str:
    return message.get_content_type().lower()


def _report_type(message: Message) -> str:
    value = message.get_param("report-type", "")
    return email.utils.collapse_rfc2231_value(value).strip().lower()


def _safe_body(message: EmailMessage, preference: tuple[str, ...]) -> Message | None:
    try:
        return message.get_body(preferencelist=preference)
    except Exception:
        # get_body walks the MIME tree trusting its shape; a broken tree reads as "no body".
        return None


def _children(part: Message) -> list[Message]:
    if not part.is_multipart():
        return []
    payload = part.get_payload()
    return [child for child in payload if isinstance(child, Message)] if isinstance(payload, list) else []


def _text_payload(part: Message) -> str:
    """A leaf part's payload as the parser kept it (still transfer-encoded), or ""."""
    if part.is_multipart():
        return ""
    try:
        # get_payload() re-decodes 8-bit payloads with the part's charset, which may be garbage.
        payload = part.get_payload()
    except Exception:
        return ""
    return payload if isinstance(payload, str) else ""


def _parents(message: Message) -> dict[int, Message]:
    parents: dict[int, Message] = {}
    stack = [message]
    while stack:
        part = stack.pop()
        for child in _children(part):
            parents[id(child)] = part
            stack.append(child)
    return parents


def _leaves(part: Message) -> Iterator[Message]:
    children = _children(part)
    if not children:
        yield part
    for child in children:
        yield from _leaves(child)


def _count_attachments(message: Message, body: Message | None) -> int:
    """Parts that are not the body text: files, inline images, attached or returned mails."""
    body_ids: set[int] = set()
    if body is not None:
        body_ids.add(id(body))
        # The other renderings of the body (the HTML next to the plain text) are not attachments.
        parents = _parents(message)
        parent = parents.get(id(body))
        while parent is not None:
            if parent.get_content_type() == "multipart/alternative":
                body_ids.update(
                    id(leaf)
                    for leaf in _leaves(parent)
                    if leaf.get_content_maintype() == "text"
                    and leaf.get_content_disposition() != "attachment"
                )
            parent = parents.get(id(parent))

    def count(part: Message, top: bool) -> int:
        if not top and part.get_content_maintype() == "message":
            return 1  # an attached or returned mail counts once, whatever it holds
        children = _children(part)
        if children:
            return sum(count(child, False) for child in children)
        if part.get_content_maintype() == "multipart":
            return 0
        return 0 if id(part) in body_ids else 1

    return count(message, True)


# --- bounces ------------------------------------------------------------------------------


def _delivery_status_part(message: Message) -> Message | None:
    if _content_type(message) != "multipart/report" or _report_type(message) != "delivery-status":
        return None
    for part in message.walk():
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            return part
    return None


def _dsn_fields(part: Message) -> list[dict[str, str]]:
    """The field groups of a message/delivery-status part (per-message first, then recipients)."""
    if part.is_multipart():
        # The email package splits the part into one header-only Message per group.
        chunks = []
        for block in _children(part):
            lines = [f"{name}: {_unfold(str(value))}" for name, value in block.raw_items()]
            rest = _text_payload(block)
            if rest.strip():
                lines.append(rest)
            chunks.append("\n".join(lines))
        text = "\n\n".join(chunks)
    else:
        text = _text_payload(part)
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding in ("base64", "quoted-printable"):
        text = _decode_transfer(text, encoding)
    groups: list[dict[str, str]] = []
    for chunk in re.split(r"\n\s*\n", _normalise_newlines(_undo_8bit(text)[0])):
        fields: dict[str, str] = {}
        last = ""
        for line in chunk.split("\n"):
            if line[:1] in (" ", "\t") and last:
                fields[last] += " " + line.strip()
            elif ":" in line:
                name, _, value = line.partition(":")
                last = name.strip().lower()
                fields[last] = value.strip()
        if fields:
            groups.append(fields)
    return groups


def _decode_transfer(text: str, encoding: str) -> str:
    data = text.encode("ascii", "surrogateescape")
    try:
        decoded = binascii.a2b_base64(data) if encoding == "base64" else quopri.decodestring(data)
    except (binascii.Error, ValueError):
        return text
    return _decode_bytes(decoded, "utf-8")


def _address_field(value: str) -> str:
    """``rfc822; <user@example.com>`` -> ``user@example.com``."""
    address = value.split(";", 1)[1] if ";" in value else value
    address = address.strip().strip("<>").strip().lower()
    return address if "@" in address else ""


def _status_code(*values: str) -> str:
    for value in values:
        match = _ENHANCED_STATUS.search(value)
        if match:
            return ".".join(match.groups())
    return ""


def _dsn_bounce(message: Message, status_part: Message) -> Bounce | None:
    groups = _dsn_fields(status_part)
    # Original-Message-ID belongs to the per-message group, but not every MTA puts it there.
    per_message = {name: value for fields in groups for name, value in fields.items()}
    permanent: list[tuple[str, str]] = []
    temporary: list[tuple[str, str]] = []
    succeeded = 0
    for fields in groups:
        recipient = _address_field(fields.get("final-recipient", "") or fields.get("original-recipient", ""))
        action = fields.get("action", "").split()[0].lower() if fields.get("action", "").split() else ""
        status = _status_code(fields.get("status", ""), fields.get("diagnostic-code", ""))
        if not recipient and not action and not status:
            continue
        if action in ("delivered", "relayed", "expanded"):
            succeeded += 1
            continue
        # The action is final: "failed" with a 4.x.x status (retries expired) is still final.
        if action == "failed" or (action != "delayed" and status.startswith("5")):
            permanent.append((recipient, status))
        else:
            temporary.append((recipient, status))
    chosen, is_permanent = (permanent, True) if permanent else (temporary, False)
    if not chosen:
        if succeeded:
            return None  # a success notification, not a bounce
        failed = tuple(_failed_recipients_header(message))
        return Bounce(failed, "", True, _original_message_id(message, per_message))
    recipients = tuple(dict.fromkeys(recipient for recipient, _ in chosen if recipient))
    status = next((code for _, code in chosen if code), "")
    return Bounce(recipients, status, is_permanent, _original_message_id(message, per_message))


def _original_message_id(message: Message, per_message: dict[str, str]) -> str | None:
    """The bounced message's Message-ID: from the returned headers, else the DSN's field."""
    # Only the report's own parts: a returned mail may itself carry attached mails.
    for part in _children(message):
        returned: Message | None = None
        content_type = part.get_content_type()
        if content_type in ("message/rfc822", "message/global"):
            children = _children(part)
            returned = children[0] if children else None
        elif content_type in ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers"):
            returned = email.message_from_string(_part_text(part), policy=_POLICY)
        if returned is not None:
            for value in _raw_values(returned, "Message-ID"):
                ids = _msg_ids(value)
                if ids:
                    return ids[0]
    for name in ("original-message-id", "x-original-message-id"):
        ids = _msg_ids(per_message.get(name, ""))
        if ids:
            return ids[0]
    return None


def _failed_recipients_header(message: Message) -> list[str]:
    found: list[str] = []
    for value in _values(message, "X-Failed-Recipients"):
        found.extend(spec for _, spec in email.utils.getaddresses([value]) if "@" in spec)
    return list(dict.fromkeys(spec.lower() for spec in found))


_QMAIL_RECIPIENT = re.compile(r"^<([^<>\s@]+@[^<>\s]+)>:\s*$", re.MULTILINE)
_RETURNED_MESSAGE_ID = re.compile(r"^Message-ID:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_DELAYED_WORDS = re.compile(
    r"\b(?:delayed|temporar(?:y|ily)|will (?:be )?retr(?:y|ied)|still trying|will continue|"
    r"not yet been delivered)\b",
    re.IGNORECASE,
)


def _heuristic_bounce(message: EmailMessage) -> Bounce | None:
    body = _safe_body(message, ("plain",))
    text = _normalise_newlines(_part_text(body)) if body is not None else ""
    recipients = _failed_recipients_header(message) or [
        address.lower() for address in _QMAIL_RECIPIENT.findall(text)
    ]
    if not recipients:
        return None  # free-text bounces in other formats: too easy to pick the wrong address
    status = _status_code(text)
    if status:
        permanent = status.startswith("5")
    else:
        permanent = "permanent" in text.lower() or not _DELAYED_WORDS.search(text)
    original = _original_message_id(message, {})
    if original is None:
        match = _RETURNED_MESSAGE_ID.search(text)
        original = match.group(1) if match else None
    return Bounce(tuple(dict.fromkeys(recipients)), status, permanent, original)
