"""Keeping personal data out of logs: masking helpers and a logging filter.

Log lines never carry a full phone number, email address, date of birth or card number.
The filter is a safety net under the rule that code logs ids, not addresses. It also escapes
control characters, so a provider id or a name carrying CR, LF, NUL or ESC cannot forge log
lines (log injection) or drive the terminal of whoever reads them.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Mapping
from typing import Any, TextIO

# E.164 numbers, and national numbers written with separators (415-555-0123).
_PHONE = re.compile(r"(?<![\w+])\+\d{7,15}\b|\b\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_DATE = re.compile(r"\b(19|20)\d{2}-\d{2}-\d{2}\b")
# 13-19 digits in one run, or in the groups cards are printed in (4-4-4-x, Amex 4-6-5),
# separated by spaces or dashes; not part of a longer id such as a stream id "…-0".
_CARD_CANDIDATE = re.compile(
    r"(?<![\d-])(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}|\d{4}([ -])\d{6}\2\d{5})(?!\d|-\d)"
)


#: What a card number is replaced with, in stored text and in what the bot sends. The worker
#: takes it out again before the dialogue reads a message, so it never steers the intent.
CARD_PLACEHOLDER = "[card number removed]"


def without_card_placeholders(text: str) -> str:
    """``text`` with the placeholders taken out (for the classifier: "[card number removed]"
    must not read like "remove my number")."""
    return " ".join(text.replace(CARD_PLACEHOLDER, " ").split())


def mask_phone(value: str) -> str:
    """``+14155550123`` -> ``+1******0123``-like: keeps the last 2 digits only."""
    digits = re.sub(r"\D", "", value)
    if len(digits) <= 2:
        return "*" * len(digits)
    return ("+" if value.strip().startswith("+") else "") + "*" * (len(digits) - 2) + digits[-2:]


def mask_email(value: str) -> str:
    """``maria.lopez@example.com`` -> ``m***@example.com``."""
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum card numbers carry."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def redact_card_numbers(text: str) -> str:
    """Replace Luhn-valid 13-19 digit runs (spaces or dashes allowed) with a placeholder."""

    def replace(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return CARD_PLACEHOLDER
        return match.group(0)

    return _CARD_CANDIDATE.sub(replace, text)


def redact_payload(value: Any) -> Any:
    """``value`` (a provider payload: dicts, lists, strings) with card numbers redacted in
    every string, so the raw payloads kept with messages carry none either."""
    if isinstance(value, str):
        return redact_card_numbers(value)
    if isinstance(value, Mapping):
        return {key: redact_payload(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_payload(item) for item in value]
    return value


def scrub(text: str) -> str:
    """Mask card numbers, phone numbers, emails and dates in free text (for logs)."""
    text = redact_card_numbers(text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _DATE.sub("****-**-**", text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


# Whatever can end a line or drive a terminal in a log: C0/C1 controls, DEL, Unicode line and
# paragraph separators, and lone surrogates (which some handlers cannot even encode).
_LOG_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape_controls(text: str) -> str:
    """``text`` with control characters written as escapes (``\\r``, ``\\n``, ``\\x00``,
    ``\\x1b``, ``\\u2028``...), so it can never split a log line or recolour a terminal."""
    return _LOG_UNSAFE.sub(_escape_char, text)


def format_exception_escaped(exc: BaseException) -> str:
    """A traceback as ``traceback.format_exception`` writes it (chained exceptions included),
    each exception's message escaped: the frames stay on their lines, but a message quoting
    outside input cannot add lines of its own."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        block = []
        if current.__traceback__ is not None:
            block.append("Traceback (most recent call last):\n")
            block.extend(traceback.format_tb(current.__traceback__))
        message = "".join(traceback.format_exception_only(type(current), current)).rstrip("\n")
        block.append(escape_controls(message) + "\n")
        parts[:0] = block
        if current.__cause__ is not None:
            parts.insert(0, "\nThe above exception was the direct cause of the following exception:\n\n")
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            parts.insert(0, "\nDuring handling of the above exception, another exception occurred:\n\n")
            current = current.__context__
        else:
            current = None
    return "".join(parts).rstrip("\n")


class RedactingFilter(logging.Filter):
    """Rewrites each record before any handler sees it: personal data masked (:func:`scrub`)
    and control characters escaped (:func:`escape_controls`), so one record is one line
    whatever its arguments carried. A traceback keeps its lines; the messages in it are
    escaped and masked too."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True  # arguments that do not fit the format: the handler reports it
        cleaned = escape_controls(scrub(message))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = scrub(format_exception_escaped(record.exc_info[1]))
        return True


def log_handler(stream: TextIO | None = None) -> logging.Handler:
    """The handler every process logs through (stderr unless ``stream``): one line per record,
    personal data masked, control characters escaped."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    return handler


def setup_logging(level: str) -> None:
    """Configure the root logger with masking on every handler."""
    handler = log_handler()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every URL at INFO, and Rasa's API takes its token in the query string.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
