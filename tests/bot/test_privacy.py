"""No full phone numbers, emails, dates of birth or card numbers in logs."""

from __future__ import annotations

import io
import logging

import pytest

from bot.privacy import (
    RedactingFilter,
    escape_controls,
    log_handler,
    luhn_valid,
    mask_email,
    mask_phone,
    redact_card_numbers,
    scrub,
)


def test_mask_phone_keeps_only_the_last_two_digits() -> None:
    assert mask_phone("+14155550123") == "+*********23"


def test_mask_email_keeps_first_letter_and_domain() -> None:
    assert mask_email("maria.lopez@example.com") == "m***@example.com"


@pytest.mark.parametrize(
    "number", ["4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"]
)
def test_luhn_valid_card_numbers_are_redacted(number: str) -> None:
    assert redact_card_numbers(f"my card is {number} ok") == "my card is [card number removed] ok"


def test_digit_runs_that_fail_luhn_are_kept() -> None:
    assert not luhn_valid("4111111111111112")
    assert redact_card_numbers("order 4111111111111112") == "order 4111111111111112"


def test_scrub_masks_every_kind_of_personal_data() -> None:
    text = scrub("from +14155550123 (415-555-0123) maria@example.com born 1984-03-12 card 4111111111111111")
    for secret in ("4155550123", "415-555-0123", "maria@", "1984-03-12", "4111111111111111"):
        assert secret not in text


def test_redacting_filter_rewrites_log_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.privacy")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="test.privacy"):
        logger.info("reply to %s", "+14155550123")
    assert "+14155550123" not in caplog.text
    assert "23" in caplog.text


def test_stream_ids_and_ports_are_not_mistaken_for_phone_numbers() -> None:
    assert scrub("entry 1795529999674-0 on port 6390") == "entry 1795529999674-0 on port 6390"


FORGED_SID = "SM1\r\n2026-01-01 00:00:00,000 CRITICAL bot: forged\x00\x1b[2J"


def test_escape_controls_writes_line_breaks_nul_and_esc_as_escapes() -> None:
    assert (
        escape_controls("a\r\nb\x00c\x1b[31md\te\u2028f\udcc3")
        == "a\\r\\nb\\x00c\\x1b[31md\\te\\u2028f\\udcc3"
    )
    assert escape_controls("¿Cómo está? 👍") == "¿Cómo está? 👍"


def test_a_message_sid_with_cr_lf_nul_esc_is_logged_on_one_escaped_line() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test.privacy.oneline")
    logger.addHandler(log_handler(stream))
    logger.propagate = False
    try:
        logger.warning("duplicate sms message %s ignored", FORGED_SID)
    finally:
        logger.handlers.clear()
        logger.propagate = True
    [line] = stream.getvalue().splitlines()
    assert line.endswith(
        "duplicate sms message SM1\\r\\n****-**-** 00:00:00,000 CRITICAL bot: forged\\x00\\x1b[2J ignored"
    )
    assert "\x00" not in line and "\x1b" not in line


def test_a_traceback_keeps_its_lines_but_the_messages_in_it_are_escaped() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test.privacy.traceback")
    logger.addHandler(log_handler(stream))
    logger.propagate = False
    try:
        try:
            try:
                raise KeyError(FORGED_SID)
            except KeyError as inner:
                raise ValueError(f"bad id {FORGED_SID}") from inner
        except ValueError:
            logger.exception("request failed")
    finally:
        logger.handlers.clear()
        logger.propagate = True
    logged = stream.getvalue()
    assert "\x00" not in logged and "\x1b" not in logged and "\r" not in logged
    lines = logged.splitlines()
    assert lines[0].endswith("request failed") and "Traceback (most recent call last):" in lines
    assert "The above exception was the direct cause of the following exception:" in lines
    # No line of the traceback starts with what the attacker wrote.
    assert not any(line.startswith("2026-01-01") for line in lines)
    assert lines[-1].startswith("ValueError: bad id SM1\\r\\n")
