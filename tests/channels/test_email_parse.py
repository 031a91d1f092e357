"""Email parsing: fields, charsets, HTML, reply stripping, robots, bounces, malformed mail, fuzzing."""

from __future__ import annotations

import base64
import email
import email.message
import re
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import channels.email_parse as email_parse
from channels.base import MalformedRequest
from channels.email_parse import (
    Bounce,
    MalformedEmail,
    ParsedEmail,
    automated_reason,
    bounce_of,
    html_to_text,
    parse_email,
    strip_reply,
)

SAMPLES = Path(__file__).parent / "email_samples"

HEADERS = (
    "From: Ana Lopez <Ana.Lopez@Example.NET>\n"
    "To: Northwind <help@northwind.example>\n"
    "Subject: Re: Your balance\n"
    "Date: Mon, 23 Nov 2026 11:15:27 +0100\n"
    "Message-ID: <reply-1@example.net>\n"
)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def mail(
    body: str = "I will pay on Friday.",
    *,
    extra: str = "",
    headers: str = HEADERS,
    content_type: str = "text/plain; charset=utf-8",
) -> bytes:
    """A small person-written mail; ``extra`` adds header lines."""
    head = headers + extra + f"MIME-Version: 1.0\nContent-Type: {content_type}\n"
    return (head + "\n" + body).encode("utf-8")


def as_message(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def malformed(raw: bytes, **kwargs: int) -> MalformedEmail:
    with pytest.raises(MalformedEmail) as caught:
        parse_email(raw, **kwargs)
    return caught.value


# --- the fields of an ordinary mail -------------------------------------------------------


def test_an_ordinary_reply_yields_every_field() -> None:
    parsed = parse_email(sample("gmail_reply.eml"))

    assert isinstance(parsed, ParsedEmail)
    assert parsed.message_id == "<CAF3k2=pQ9xYz0Q-Lw4b7hRr5uV8Tn1oKj2mN3bVc4xZ5aS6dF7g@mail.gmail.com>"
    assert parsed.sender == "ana.lopez@example.net"
    assert parsed.sender_name == "Ana Lopez"
    assert parsed.to == ("help@northwind.example",)
    assert parsed.subject == "Re: Your balance"
    assert parsed.date == datetime(2026, 11, 23, 10, 15, 27, tzinfo=timezone.utc)
    assert parsed.in_reply_to == "<reminder-2001@northwind.example>"
    assert parsed.references == ("<reminder-2001@northwind.example>",)
    assert parsed.text == "2\n\nI can pay 50 € now and the rest on Friday."
    assert parsed.full_text.startswith("2\n\nI can pay 50 € now")
    assert "> Your balance is 120.00 EUR." in parsed.full_text
    assert parsed.automated is None
    assert parsed.bounce is None
    assert parsed.attachments == 0  # the HTML alternative is the same body, not an attachment
    assert parsed.defects == ()


def test_the_result_is_frozen() -> None:
    parsed = parse_email(mail())
    with pytest.raises(AttributeError):
        parsed.text = "changed"  # type: ignore[misc]


def test_cc_addresses_join_to_lowercased_and_once() -> None:
    raw = mail(
        headers=(
            "From: Ana <ana@example.net>\n"
            "To: Northwind <Help@Northwind.Example>, undisclosed-recipients:;\n"
            'Cc: "Marta P." <Marta@Example.ORG>, help@northwind.example\n'
            "Subject: x\nMessage-ID: <a@b>\n"
        )
    )
    assert parse_email(raw).to == ("help@northwind.example", "marta@example.org")


def test_every_header_is_kept_decoded_and_in_order() -> None:
    parsed = parse_email(sample("outlook_reply_es.eml"))
    names = [name for name, _ in parsed.headers]

    assert names[:3] == ["Received", "From", "To"]
    assert ("From", "José Pérez <jose.perez@outlook.example>") in parsed.headers
    assert ("Subject", "RE: Recordatorio de pago \u2013 factura nº 1042") in parsed.headers
    assert all("\n" not in value for _, value in parsed.headers)


def test_encoded_subject_and_sender_name_are_decoded_and_whitespace_collapsed() -> None:
    raw = mail(
        headers=(
            "From: =?UTF-8?B?TWFyw61hIEfDs21leg==?= <maria@example.com>\n"
            "To: help@northwind.example\n"
            "Subject: =?iso-8859-1?Q?Pagar=E9_ma=F1ana?=\n"
            "   =?utf-8?q?=E2=80=94_seguro?=    sin   falta\n"
            "Message-ID: <a@b>\n"
        )
    )
    parsed = parse_email(raw)
    assert parsed.sender_name == "María Gómez"
    assert parsed.subject == "Pagaré mañana— seguro sin falta"


def test_iso_8859_1_labelled_dashes_read_as_windows_1252() -> None:
    parsed = parse_email(sample("outlook_reply_es.eml"))
    assert parsed.subject == "RE: Recordatorio de pago \u2013 factura nº 1042"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mon, 23 Nov 2026 11:15:27 +0100", datetime(2026, 11, 23, 10, 15, 27, tzinfo=timezone.utc)),
        # "-0000" means UTC with no local zone known: aware, in UTC.
        ("23 Nov 2026 10:05:00 -0000", datetime(2026, 11, 23, 10, 5, tzinfo=timezone.utc)),
        ("Mon, 23 Nov 2026 01:02:03 -0800 (PST)", datetime(2026, 11, 23, 9, 2, 3, tzinfo=timezone.utc)),
    ],
)
def test_dates_are_parsed_timezone_aware(value: str, expected: datetime) -> None:
    headers = HEADERS.replace("Date: Mon, 23 Nov 2026 11:15:27 +0100", f"Date: {value}")
    date = parse_email(mail(headers=headers)).date
    assert date == expected
    assert date is not None and date.utcoffset() is not None


@pytest.mark.parametrize("value", ["yesterday afternoon", "Mon, 99 Foo 20260 99:99:99 +9999", ""])
def test_an_unreadable_date_is_none(value: str) -> None:
    headers = HEADERS.replace("Date: Mon, 23 Nov 2026 11:15:27 +0100", f"Date: {value}")
    assert parse_email(mail(headers=headers)).date is None


def test_a_mail_without_date_has_none() -> None:
    headers = HEADERS.replace("Date: Mon, 23 Nov 2026 11:15:27 +0100\n", "")
    assert parse_email(mail(headers=headers)).date is None


# --- message ids --------------------------------------------------------------------------


def test_a_missing_message_id_is_made_stable_from_the_raw_bytes() -> None:
    raw = mail(headers=HEADERS.replace("Message-ID: <reply-1@example.net>\n", ""))
    first = parse_email(raw).message_id

    assert re.fullmatch(r"<[0-9a-f]{32}@debtbot\.invalid>", first)
    assert parse_email(raw).message_id == first  # a re-delivered copy de-duplicates
    assert parse_email(raw + b"\nP.S. one more thing").message_id != first


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc.123@example.net", "<abc.123@example.net>"),
        ("  <abc.123@example.net>  ", "<abc.123@example.net>"),
        ("<abc.123@example.net> (sent by a cheap client)", "<abc.123@example.net>"),
        ("<abc.123@\n example.net>", "<abc.123@example.net>"),
        ("\n <folded.id@outlook.example>", "<folded.id@outlook.example>"),
    ],
)
def test_message_ids_are_normalised_to_angle_bracket_form(value: str, expected: str) -> None:
    headers = HEADERS.replace("Message-ID: <reply-1@example.net>", f"Message-ID: {value}")
    assert parse_email(mail(headers=headers)).message_id == expected


def test_references_are_unfolded_uncommented_ordered_and_deduplicated() -> None:
    extra = (
        "References: <first@northwind.example> (the reminder)\n"
        " <second@example.net>\n"
        "\t<first@northwind.example> <third@northwind.example>\n"
    )
    assert parse_email(mail(extra=extra)).references == (
        "<first@northwind.example>",
        "<second@example.net>",
        "<third@northwind.example>",
    )


def test_in_reply_to_takes_the_message_id_out_of_old_style_text() -> None:
    extra = 'In-Reply-To: Your message of "Mon, 23 Nov 2026" <reminder-9@northwind.example>\n'
    assert parse_email(mail(extra=extra)).in_reply_to == "<reminder-9@northwind.example>"


def test_a_mail_without_threading_headers_has_none() -> None:
    parsed = parse_email(mail())
    assert parsed.in_reply_to is None
    assert parsed.references == ()


# --- body text: charsets, encodings, HTML -------------------------------------------------


def charset_mail(charset: str, encoding: str, body: bytes) -> bytes:
    head = HEADERS + (
        f"MIME-Version: 1.0\nContent-Type: text/plain; charset={charset}\n"
        f"Content-Transfer-Encoding: {encoding}\n\n"
    )
    return head.encode("ascii") + body


@pytest.mark.parametrize(
    ("charset", "encoding", "body", "expected"),
    [
        ("iso-8859-1", "quoted-printable", b"Pagar=E9 ma=F1ana", "Pagaré mañana"),
        ("windows-1252", "8bit", b"\x93sin falta\x94, 50 \x80", "“sin falta”, 50 €"),
        ("iso-8859-1", "8bit", b"factura \x96 n\xba 1042", "factura \u2013 nº 1042"),
        ("iso-2022-jp", "base64", base64.b64encode("お支払いします".encode("iso-2022-jp")), "お支払いします"),
        ("utf-8", "base64", base64.b64encode("Pagaré 50 € 👍".encode()), "Pagaré 50 € 👍"),
        ("utf-8", "quoted-printable", b"Pagar=C3=A9 el vier=\nnes", "Pagaré el viernes"),
        # Wrong or unknown labels fall back without crashing.
        ("x-unknown-charset", "8bit", "Pagaré".encode(), "Pagaré"),
        ("x-unknown-charset", "8bit", "Pagaré".encode("latin-1"), "Pagaré"),
        ("us-ascii", "8bit", "Pagaré".encode(), "Pagaré"),
        ("utf-8", "8bit", "Pagaré".encode("latin-1"), "Pagaré"),
        ("base64", "8bit", "Pagaré".encode(), "Pagaré"),  # a codec, but not a text encoding
    ],
)
def test_body_charsets_and_transfer_encodings_are_decoded(
    charset: str, encoding: str, body: bytes, expected: str
) -> None:
    parsed = parse_email(charset_mail(charset, encoding, body))
    assert parsed.full_text == expected
    assert parsed.text == expected


def test_line_endings_are_normalised_and_text_trimmed() -> None:
    # CRLF throughout, and one bare CR (old Mac) in the body.
    raw = mail("\n\nFirst line   \nSecond line\rThird line\n\n").replace(b"\n", b"\r\n")
    parsed = parse_email(raw)
    assert parsed.full_text == "First line\nSecond line\nThird line"
    assert parsed.sender == "ana.lopez@example.net"


def test_control_characters_are_removed_from_text_and_headers() -> None:
    raw = mail("I will\x00 pay\x07.", headers=HEADERS.replace("Re: Your balance", "Re: Your\x00 balance"))
    parsed = parse_email(raw)
    assert parsed.text == "I will pay."
    assert parsed.subject == "Re: Your balance"


def test_format_flowed_lines_are_joined_before_reading() -> None:
    parsed = parse_email(sample("iphone_reply.eml"))
    assert parsed.text == (
        "I lost my job last month, so I can only pay a small amount each week until "
        "I find something new. Can we agree on 20 a week?"
    )


def test_format_flowed_without_delsp_keeps_the_space() -> None:
    raw = mail(
        "Can we agree on \n20 a week?\n\nThanks",
        content_type="text/plain; charset=utf-8; format=flowed",
    )
    assert parse_email(raw).text == "Can we agree on 20 a week?\n\nThanks"


def test_plain_text_is_preferred_over_html() -> None:
    msg = EmailMessage()
    msg["From"] = "ana@example.net"
    msg["Subject"] = "x"
    msg.set_content("plain words")
    msg.add_alternative("<p>html words</p>", subtype="html")
    assert parse_email(msg.as_bytes()).full_text == "plain words"


def test_an_empty_plain_alternative_falls_back_to_the_html_body() -> None:
    msg = EmailMessage()
    msg["From"] = "ana@example.net"
    msg["Subject"] = "x"
    msg.set_content("   \n")
    msg.add_alternative("<p>I paid <b>today</b>.</p>", subtype="html")
    assert parse_email(msg.as_bytes()).text == "I paid today."


def test_an_html_only_mail_becomes_readable_text() -> None:
    html = (
        "<html><head><style>p { color: red }</style><title>Re</title>"
        "<script>var tracking = 1;</script></head><body>"
        "<p>Hola,</p><p>Pagaré el viernes.<br>Gracias.</p>"
        "<ul><li>50 EUR</li></ul><p>Total&nbsp;&euro;&nbsp;50</p></body></html>"
    )
    parsed = parse_email(mail(html, content_type="text/html; charset=utf-8"))
    assert parsed.full_text == "Hola,\n\nPagaré el viernes.\nGracias.\n\n* 50 EUR\n\nTotal € 50"
    assert parsed.text == parsed.full_text


def test_html_to_text_keeps_paragraphs_and_line_breaks() -> None:
    assert html_to_text("<p>Hola</p><p>Line one<br>Line two</p><div>Div</div>") == (
        "Hola\n\nLine one\nLine two\n\nDiv"
    )


def test_html_to_text_drops_scripts_styles_and_markup() -> None:
    text = html_to_text(
        "<style>.x{color:red}</style><script>alert('x')</script>"
        '<p class="x">Pay <a href="https://pay.example/abc">here</a> &amp; now</p>'
    )
    assert text == "Pay here & now"


@pytest.mark.parametrize("html", ["", "   ", "<!-- only a comment -->", "<html>", "<p>" * 3000])
def test_html_to_text_of_empty_or_odd_html_is_empty_not_an_error(html: str) -> None:
    assert html_to_text(html) == ""


def test_html_to_text_falls_back_to_tag_stripping_when_the_converter_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object) -> str:
        raise ValueError("lxml refused it")

    monkeypatch.setattr(email_parse, "get_text", broken)
    assert html_to_text("<p>Pay</p><script>x()</script><p>now<br>please</p>") == "Pay\n\nnow\nplease"


def test_huge_html_is_reduced_by_tag_stripping_not_laid_out(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_lay_out(*args: object) -> str:
        raise AssertionError("laid out a huge HTML body")

    monkeypatch.setattr(email_parse, "get_text", must_not_lay_out)
    monkeypatch.setattr(email_parse, "_MAX_LAYOUT_HTML", 100)
    html = "<table><tr><td>Pay</td></tr></table>" + "<p>now</p>" * 20
    assert html_to_text(html).split("\n\n")[:2] == ["Pay", "now"]


# --- attachments --------------------------------------------------------------------------


def test_a_file_attachment_is_counted() -> None:
    parsed = parse_email(sample("outlook_reply_es.eml"))
    assert parsed.attachments == 1
    assert parsed.text.startswith("Buenos días,")


def test_inline_images_and_attached_mails_count_but_body_alternatives_do_not() -> None:
    msg = EmailMessage()
    msg["From"] = "ana@example.net"
    msg["Subject"] = "receipt"
    msg.set_content("See the receipt.")
    msg.add_alternative('<p>See the receipt.</p><img src="cid:logo">', subtype="html")
    html_part = msg.get_payload()[1]  # type: ignore[index]
    html_part.add_related(b"\x89PNG fake", maintype="image", subtype="png", cid="<logo>")
    forwarded = EmailMessage()
    forwarded["From"] = "bank@example.com"
    forwarded["Subject"] = "Transfer"
    forwarded.set_content("Transfer done")
    forwarded.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="t.pdf")
    msg.add_attachment(forwarded)

    parsed = parse_email(msg.as_bytes())
    # The logo, and the forwarded mail once (not its own text and PDF).
    assert parsed.attachments == 2
    assert parsed.text == "See the receipt."


def test_a_big_attachment_is_counted_without_being_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    msg = EmailMessage()
    msg["From"] = "ana@example.net"
    msg["Subject"] = "statement"
    msg.set_content("Statement attached.")
    msg.add_attachment(b"\x00" * 3_000_000, maintype="application", subtype="pdf", filename="s.pdf")
    raw = msg.as_bytes()

    decoded: list[str] = []
    original = email.message.Message.get_payload

    def spy(self: email.message.Message, i: int | None = None, decode: bool = False) -> object:
        if decode:
            decoded.append(self.get_content_type())
        return original(self, i, decode)  # type: ignore[call-overload]

    monkeypatch.setattr(email.message.Message, "get_payload", spy)
    parsed = parse_email(raw, max_bytes=len(raw))

    assert parsed.attachments == 1
    assert parsed.text == "Statement attached."
    assert "application/pdf" not in decoded


# --- reply stripping ----------------------------------------------------------------------

QUOTE = "> Hello Ana,\n>\n> Your balance is 120.00 EUR. Reply 1 to pay now, 2 to set up a plan.\n"


def test_gmail_english_quote_header_is_stripped() -> None:
    text = f"Yes, I can pay 50 on Friday.\n\nOn Mon, 23 Nov 2026 at 10:00, Northwind <help@northwind.example> wrote:\n\n{QUOTE}"
    assert strip_reply(text) == "Yes, I can pay 50 on Friday."


@pytest.mark.parametrize(
    "header",
    [
        "On Mon, 23 Nov 2026 at 10:00, Northwind Collections <help@northwind.example>\nwrote:",
        "On Mon, 23 Nov 2026 at 10:00, Northwind Collections Customer Care <\nhelp@northwind.example> wrote:",
        "On Mon, 23 Nov 2026 at 10:00,\nNorthwind Collections Customer Care\n<help@northwind.example> wrote:",
    ],
)
def test_gmail_english_quote_header_wrapped_over_lines_is_stripped(header: str) -> None:
    text = f"Plan 2 please.\n\n{header}\n\n{QUOTE}"
    assert strip_reply(text) == "Plan 2 please."


def test_gmail_spanish_quote_header_is_stripped() -> None:
    text = (
        "Sí, pagaré el viernes.\n\n"
        "El lun, 23 nov 2026 a las 10:00, Northwind (<help@northwind.example>) escribió:\n\n"
        "> Hola Ana,\n> Su saldo es de 120,00 EUR.\n"
    )
    assert strip_reply(text) == "Sí, pagaré el viernes."


def test_apple_mail_spanish_quote_header_is_stripped() -> None:
    text = "Vale.\n\nEl 23 nov 2026, a las 10:00, Northwind <help@northwind.example> escribió:\n\n> Hola\n"
    assert strip_reply(text) == "Vale."


def test_outlook_desktop_block_and_unquoted_history_are_stripped() -> None:
    text = (
        "I'll call you tomorrow.\n\n"
        "________________________________\n"
        "From: Northwind <help@northwind.example>\n"
        "Sent: Monday, November 23, 2026 10:00 AM\n"
        "To: Ana Lopez <ana.lopez@example.net>\n"
        "Subject: Your balance\n\n"
        "Hello Ana,\n\nYour balance is 120.00 EUR. Reply 1 to pay now, 2 to set up a plan.\n"
    )
    assert strip_reply(text) == "I'll call you tomorrow."


def test_outlook_spanish_block_is_stripped() -> None:
    text = (
        "Pagaré el miércoles.\n\n"
        "________________________________\n"
        "De: Northwind <help@northwind.example>\n"
        "Enviado: lunes, 23 de noviembre de 2026 10:00\n"
        "Para: José Pérez <jose.perez@outlook.example>\n"
        "Asunto: Recordatorio de pago\n\n"
        "Responda 1 para pagar ahora.\n"
    )
    assert strip_reply(text) == "Pagaré el miércoles."


def test_outlook_block_without_the_underscore_rule_is_stripped() -> None:
    text = (
        "Please call me.\n\n"
        "From: Northwind <help@northwind.example>\n"
        "Sent: Monday, November 23, 2026 10:00 AM\n"
        "To: Ana Lopez\n"
        "Subject: Your balance\n\n"
        "Reply 1 to pay now.\n"
    )
    assert strip_reply(text) == "Please call me."


@pytest.mark.parametrize(
    "separator",
    [
        "-----Original Message-----",
        "-----Mensaje original-----",
        "-------- Original message --------",
        "---------- Forwarded message ---------",
        "Begin forwarded message:",
    ],
)
def test_original_message_separators_are_stripped(separator: str) -> None:
    text = (
        f"Please stop emailing me at work.\n\n{separator}\n"
        "From: Northwind [mailto:help@northwind.example]\nSubject: Your balance\n\nReply 1 to pay now.\n"
    )
    assert strip_reply(text) == "Please stop emailing me at work."


def test_iphone_quote_header_and_sign_off_are_stripped() -> None:
    text = (
        "OK, plan 2 please.\n\nSent from my iPhone\n\n"
        "> On 23 Nov 2026, at 10:00, Northwind <help@northwind.example> wrote:\n>\n" + QUOTE
    )
    assert strip_reply(text) == "OK, plan 2 please."


def test_apple_mail_unquoted_quote_header_is_stripped() -> None:
    text = f"OK.\n\nOn 23 Nov 2026, at 10:00, Northwind <help@northwind.example> wrote:\n\n{QUOTE}"
    assert strip_reply(text) == "OK."


def test_plain_quoted_lines_are_dropped() -> None:
    assert strip_reply("Yes\n> Do you agree to pay 50 EUR?\n>\n") == "Yes"


def test_a_signature_after_the_delimiter_is_stripped() -> None:
    text = "I paid yesterday.\n\n-- \nAna Lopez\nAcme Ltd. | +34 600 000 000\n"
    assert strip_reply(text) == "I paid yesterday."


def test_a_signature_delimiter_without_its_trailing_space_is_stripped() -> None:
    assert strip_reply("I paid yesterday.\n--\nAna") == "I paid yesterday."


@pytest.mark.parametrize(
    "sign_off",
    [
        "Sent from my iPhone",
        "Sent from my Android",
        "Sent from my Samsung Galaxy smartphone.",
        "Get Outlook for iOS",
        "Get Outlook for Android",
        "Get Outlook for iOS<https://aka.ms/o0ukef>",
        "Enviado desde mi iPhone",
        "Enviado desde mi teléfono Huawei",
        "Obtener Outlook para Android",
        "Sent from Yahoo Mail for iPhone",
    ],
)
def test_mobile_sign_offs_are_stripped(sign_off: str) -> None:
    assert strip_reply(f"Pagaré el viernes.\nGracias\n\n{sign_off}\n") == "Pagaré el viernes.\nGracias"


@pytest.mark.parametrize(
    "text",
    [
        "Sent from my bank account yesterday, 50 EUR.\nPlease check it.",
        "I paid.\nSent from my mobile banking app, please confirm.",
        "I paid.\nSent with the transfer form as you asked",
    ],
)
def test_a_sentence_that_starts_like_a_sign_off_is_kept(text: str) -> None:
    assert strip_reply(text) == text


def test_a_reply_that_is_only_a_number_survives() -> None:
    text = f"2\n\nOn Mon, 23 Nov 2026 at 10:00, Northwind <help@northwind.example> wrote:\n{QUOTE}"
    assert strip_reply(text) == "2"


def test_a_multi_line_answer_survives_intact() -> None:
    answer = "I can pay:\n- 50 now\n- 50 on Friday\n\nThanks, and please call me after 5.\nBest regards,\nAna"
    text = f"{answer}\n\nOn Mon, 23 Nov 2026 at 10:00, Northwind <help@northwind.example> wrote:\n{QUOTE}"
    assert strip_reply(text) == answer


def test_the_persons_own_sentence_starting_with_on_is_not_a_quote_header() -> None:
    text = (
        "On Friday I will pay the rest.\nAs my lawyer wrote:\nI owe nothing else.\n\n"
        f"On Mon, 23 Nov 2026 at 10:00, Northwind <help@northwind.example> wrote:\n{QUOTE}"
    )
    assert strip_reply(text) == "On Friday I will pay the rest.\nAs my lawyer wrote:\nI owe nothing else."


def test_an_inline_reply_below_the_quote_keeps_the_unquoted_lines() -> None:
    text = (
        "On Mon, 23 Nov 2026 at 10:00, Northwind <help@northwind.example> wrote:\n"
        "> Which plan do you want? Reply 1 or 2.\n\n2\n\n> When can you start?\n\nNext Monday.\n"
    )
    assert strip_reply(text) == "2\n\nNext Monday."


def test_an_inline_reply_without_a_quote_header_keeps_the_unquoted_lines() -> None:
    assert strip_reply("> Which plan?\n2\n> When?\nMonday\n\n-- \nAna") == "2\nMonday"


def test_words_written_only_inside_the_quote_leave_nothing() -> None:
    text = "On Mon, 23 Nov 2026 at 10:00, Northwind <help@northwind.example> wrote:\n> Reply 1 or 2.\n> 2\n"
    assert strip_reply(text) == ""


def test_unquoted_history_below_an_empty_outlook_reply_is_never_returned() -> None:
    text = (
        "\n________________________________\nFrom: Northwind <help@northwind.example>\n"
        "Sent: Monday, November 23, 2026 10:00 AM\nSubject: Your balance\n\nReply 1 to pay now.\n"
    )
    assert strip_reply(text) == ""


def test_a_sign_off_alone_leaves_nothing() -> None:
    assert strip_reply("Sent from my iPhone\n\n> quoted") == ""


def test_strip_reply_accepts_crlf_text() -> None:
    text = "Yes\r\n\r\nOn Mon, 23 Nov 2026 at 10:00, Northwind <help@northwind.example> wrote:\r\n> Hi\r\n"
    assert strip_reply(text) == "Yes"


def test_a_spanish_outlook_reply_reaches_the_dialogue_without_its_history() -> None:
    parsed = parse_email(sample("outlook_reply_es.eml"))
    assert parsed.text == (
        "Buenos días,\n\nAdjunto el justificante. Pagaré el resto el miércoles “sin falta”.\n\nUn saludo,\nJosé"
    )
    assert "Responda 1" in parsed.full_text


def test_a_gmail_html_only_reply_is_stripped() -> None:
    html = (
        '<div dir="ltr">2</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        "On Mon, 23 Nov 2026 at 10:00, Northwind &lt;help@northwind.example&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote">Reply 1 to pay now, 2 to set up a plan.</blockquote></div>'
    )
    parsed = parse_email(mail(html, content_type="text/html; charset=utf-8"))
    assert parsed.text == "2"
    assert "Reply 1 to pay now" in parsed.full_text


def test_an_apple_mail_html_reply_with_cited_blockquote_is_stripped() -> None:
    html = (
        '<html><body dir="auto">Plan 2 please.<br><br><div dir="ltr">Sent from my iPhone</div>'
        '<div dir="ltr"><br><blockquote type="cite">On 23 Nov 2026, at 10:00, Northwind '
        "&lt;help@northwind.example&gt; wrote:<br><br></blockquote></div>"
        '<blockquote type="cite"><div dir="ltr">Hello Luis, reply 1 to pay now.</div></blockquote>'
        "</body></html>"
    )
    assert parse_email(mail(html, content_type="text/html; charset=utf-8")).text == "Plan 2 please."


def test_an_outlook_html_reply_is_stripped() -> None:
    html = (
        "<div>I'll pay on Friday.</div><hr>"
        '<div id="divRplyFwdMsg"><b>From:</b> Northwind &lt;help@northwind.example&gt;<br>'
        "<b>Sent:</b> Monday, November 23, 2026 10:00 AM<br><b>To:</b> Ana<br>"
        "<b>Subject:</b> Your balance</div><div>Reply 1 to pay now.</div>"
    )
    assert parse_email(mail(html, content_type="text/html; charset=utf-8")).text == "I'll pay on Friday."


def test_an_html_reply_written_inside_a_blockquote_still_yields_words() -> None:
    html = "<blockquote>I will pay on Friday.</blockquote>"
    assert parse_email(mail(html, content_type="text/html; charset=utf-8")).text == "I will pay on Friday."


# --- automated mail -----------------------------------------------------------------------

PERSON = "From: Ana Lopez <ana@example.net>\nTo: help@northwind.example\nSubject: Re: x\nMessage-ID: <p@x>\n"


@pytest.mark.parametrize(
    ("sign", "reason_mentions"),
    [
        ("Auto-Submitted: auto-replied\n", "Auto-Submitted"),
        ("Auto-Submitted: auto-generated\n", "Auto-Submitted"),
        ('Auto-Submitted: Auto-Notified; owner-email="ops@example.net"\n', "auto-notified"),
        ("X-Autoreply: yes\n", "X-Autoreply"),
        ("X-Autorespond: Out of office\n", "X-Autorespond"),
        ("Precedence: bulk\n", "bulk"),
        ("Precedence: auto_reply\n", "auto_reply"),
        ("Precedence: list\n", "list"),
        ("Precedence: JUNK\n", "junk"),
        ("X-Auto-Response-Suppress: All\n", "X-Auto-Response-Suppress"),
        ("X-Auto-Response-Suppress: DR, RN, NRN, OOF, AutoReply\n", "X-Auto-Response-Suppress"),
        ("List-Id: Northwind customers <customers.northwind.example>\n", "List-Id"),
        ("List-Unsubscribe: <mailto:leave@lists.example.com>\n", "List-Unsubscribe"),
        ("Return-Path: <>\n", "null Return-Path"),
        ("Return-Path: <MAILER-DAEMON@mx.example.com>\n", "mail system"),
        ("Sender: Postmaster@mx.example.com\n", "mail system"),
        ("X-Failed-Recipients: ana@example.net\n", "X-Failed-Recipients"),
    ],
)
def test_each_sign_of_automated_mail_is_detected(sign: str, reason_mentions: str) -> None:
    parsed = parse_email(mail(extra=sign, headers=PERSON))
    assert parsed.automated is not None
    assert reason_mentions.lower() in parsed.automated.lower()


@pytest.mark.parametrize(
    "sender",
    [
        "MAILER-DAEMON@mx.example.com",
        "Mail Delivery System <mailer-daemon@relay.example.org>",
        "postmaster@example.net",
        "PostMaster <POSTMASTER@Example.Net>",
    ],
)
def test_mail_from_the_mail_system_is_automated(sender: str) -> None:
    parsed = parse_email(mail(headers=PERSON.replace("Ana Lopez <ana@example.net>", sender)))
    assert parsed.automated is not None
    assert "mail system" in parsed.automated


def test_a_mailer_daemon_without_a_domain_is_automated_with_no_sender() -> None:
    parsed = parse_email(mail(headers=PERSON.replace("Ana Lopez <ana@example.net>", "MAILER-DAEMON")))
    assert parsed.sender == ""
    assert parsed.automated == "From is the mail system (mailer-daemon)"


def test_a_delivery_status_report_is_automated_by_its_content_type() -> None:
    raw = mail(
        "--b\nContent-Type: text/plain\n\nNot delivered.\n--b--\n",
        headers="From: relay@example.net\nSubject: Report\nMessage-ID: <r@x>\n",
        content_type="multipart/report; report-type=delivery-status; boundary=b",
    )
    assert parse_email(raw).automated == "delivery status report"


def test_an_empty_sender_is_automated() -> None:
    message = as_message(b"From: <>\nSubject: x\n\nbody")
    assert automated_reason(message) == "empty sender"


@pytest.mark.parametrize(
    "extra",
    [
        "",
        "Auto-Submitted: no\n",
        "Auto-Submitted: No (sent by a person)\n",
        "Precedence: normal\n",
        "Precedence: first-class\n",
        "X-Mailer: iPhone Mail (22B91)\n",
    ],
)
def test_person_mail_is_not_flagged_as_automated(extra: str) -> None:
    assert parse_email(mail(extra=extra, headers=PERSON)).automated is None


def test_an_address_that_merely_contains_postmaster_is_a_person() -> None:
    headers = PERSON.replace("ana@example.net", "postmaster.ana@example.net")
    assert parse_email(mail(headers=headers)).automated is None


# --- bounces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "postfix_dsn.eml",
            Bounce(("ana.lopez@example.net",), "5.1.1", True, "<reminder-1001@northwind.example>"),
        ),
        ("exim_dsn.eml", Bounce(("pedro@example.org",), "5.0.0", True, "<reminder-1002@northwind.example>")),
        (
            "gmail_dsn.eml",
            Bounce(("maria.g@example.com",), "5.1.1", True, "<reminder-1003@northwind.example>"),
        ),
        (
            "exchange_dsn.eml",
            Bounce(("luis@contoso.example",), "5.1.10", True, "<reminder-1004@northwind.example>"),
        ),
        (
            "postfix_delayed.eml",
            Bounce(("jorge@example.com",), "4.4.1", False, "<reminder-1005@northwind.example>"),
        ),
    ],
)
def test_delivery_status_reports_are_read(name: str, expected: Bounce) -> None:
    parsed = parse_email(sample(name))
    assert parsed.bounce == expected
    assert parsed.automated is not None


def test_a_dsn_from_the_null_sender_without_from_parses_with_an_empty_sender() -> None:
    raw = sample("postfix_dsn.eml").replace(
        b"From: MAILER-DAEMON@mail.northwind.example (Mail Delivery System)\n", b""
    )
    parsed = parse_email(raw)
    assert parsed.sender == ""
    assert parsed.bounce is not None
    assert parsed.bounce.recipients == ("ana.lopez@example.net",)


DSN_TEMPLATE = """\
Return-Path: <>
From: MAILER-DAEMON@mail.northwind.example
To: help@northwind.example
Subject: Delivery report
Message-ID: <dsn@mail.northwind.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="RPT"

--RPT
Content-Type: text/plain

Report.

--RPT
Content-Type: message/delivery-status
{encoding}
{status}
--RPT--
"""


def dsn(status: str, encoding: str = "") -> bytes:
    return DSN_TEMPLATE.format(status=status, encoding=encoding).encode()


def test_the_original_message_id_field_is_used_when_no_headers_are_returned() -> None:
    raw = dsn(
        "\nReporting-MTA: dns; mail.northwind.example\nOriginal-Message-ID: <reminder-77@northwind.example>\n\n"
        "Final-Recipient: rfc822; nadia@example.com\nAction: failed\nStatus: 5.7.1\n"
    )
    assert parse_email(raw).bounce == Bounce(
        ("nadia@example.com",), "5.7.1", True, "<reminder-77@northwind.example>"
    )


def test_a_base64_encoded_delivery_status_part_is_read() -> None:
    fields = (
        "Reporting-MTA: dns; mx.example.com\n\n"
        "Final-Recipient: rfc822; <Pablo@Example.com>\nAction: failed\nStatus: 5.2.2 (mailbox full)\n"
    )
    raw = dsn("\n" + base64.b64encode(fields.encode()).decode() + "\n", "Content-Transfer-Encoding: base64")
    assert parse_email(raw).bounce == Bounce(("pablo@example.com",), "5.2.2", True, None)


def test_a_report_of_several_recipients_lists_the_permanent_failures() -> None:
    raw = dsn(
        "\nReporting-MTA: dns; mx\n\n"
        "Final-Recipient: rfc822; a@example.com\nAction: failed\nStatus: 5.1.1\n\n"
        "Final-Recipient: rfc822; b@example.com\nAction: delayed\nStatus: 4.4.1\n\n"
        "Final-Recipient: rfc822; c@example.com\nAction: failed\nStatus: 5.1.2\n"
    )
    assert parse_email(raw).bounce == Bounce(("a@example.com", "c@example.com"), "5.1.1", True, None)


def test_a_failed_action_with_a_temporary_status_is_final() -> None:
    raw = dsn(
        "\nReporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; a@example.com\nAction: failed\nStatus: 4.4.7\n"
    )
    bounce = parse_email(raw).bounce
    assert bounce is not None
    assert bounce.permanent is True
    assert bounce.status == "4.4.7"


def test_the_status_falls_back_to_the_diagnostic_code() -> None:
    raw = dsn(
        "\nReporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; a@example.com\nAction: failed\n"
        "Diagnostic-Code: smtp; 550-5.1.1 No such user\n"
    )
    bounce = parse_email(raw).bounce
    assert bounce is not None and bounce.status == "5.1.1"


def test_a_success_notification_is_not_a_bounce() -> None:
    raw = dsn(
        "\nReporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; a@example.com\nAction: delivered\nStatus: 2.0.0\n"
    )
    parsed = parse_email(raw)
    assert parsed.bounce is None
    assert parsed.automated is not None


def test_a_qmail_bounce_without_dsn_is_read_heuristically() -> None:
    parsed = parse_email(sample("qmail_bounce.eml"))
    assert parsed.automated == "null Return-Path"
    assert parsed.bounce == Bounce(
        ("sofia@example.info",), "5.1.1", True, "<reminder-1006@northwind.example>"
    )


def test_an_exim_bounce_without_dsn_is_read_from_x_failed_recipients() -> None:
    parsed = parse_email(sample("exim_plain_bounce.eml"))
    assert parsed.automated is not None
    assert parsed.bounce == Bounce(("tomas@example.org",), "", True, "<reminder-1007@northwind.example>")


def test_a_free_text_bounce_without_named_recipients_is_automated_but_has_no_bounce() -> None:
    raw = mail(
        "Your message could not be delivered. Please contact the administrator.",
        headers="From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.com>\nSubject: Returned mail\nMessage-ID: <m@x>\n",
    )
    parsed = parse_email(raw)
    assert parsed.automated is not None
    assert parsed.bounce is None


def test_a_non_dsn_delay_warning_is_not_permanent() -> None:
    raw = mail(
        "A message that you sent has not yet been delivered to one or more of its recipients.\n"
        "Delivery attempts will continue to be made for 4 days.\n\n<pia@example.com>:\nConnection timed out\n",
        headers="From: MAILER-DAEMON@mx.example.com\nSubject: Warning: message delayed\nMessage-ID: <w@x>\n",
    )
    assert parse_email(raw).bounce == Bounce(("pia@example.com",), "", False, None)


def test_person_mail_with_address_lines_is_not_a_bounce() -> None:
    raw = mail("Please write to my new address:\n<ana.new@example.net>:\nthanks", headers=PERSON)
    assert parse_email(raw).bounce is None


def test_bounce_of_and_automated_reason_work_on_a_parsed_message() -> None:
    message = as_message(sample("exim_dsn.eml"))
    assert bounce_of(message) == Bounce(
        ("pedro@example.org",), "5.0.0", True, "<reminder-1002@northwind.example>"
    )
    assert automated_reason(message) == "Auto-Submitted: auto-replied"


# --- 8-bit headers ------------------------------------------------------------------------


def test_raw_utf8_headers_are_decoded() -> None:
    raw = (
        "From: José Pérez <jose@example.es>\nTo: help@northwind.example\n"
        "Subject: Pagaré mañana\nMessage-ID: <u@x>\n\nHola"
    ).encode()
    parsed = parse_email(raw)
    assert parsed.sender_name == "José Pérez"
    assert parsed.subject == "Pagaré mañana"
    assert "NonUtf8HeaderDefect" not in parsed.defects


def test_raw_latin1_headers_are_decoded_leniently_and_noted() -> None:
    raw = (
        "From: José Pérez <jose@example.es>\nTo: help@northwind.example\n"
        "Subject: Pagaré mañana \u2013 ya\nMessage-ID: <l@x>\n\nHola"
    ).encode("cp1252")
    parsed = parse_email(raw)
    assert parsed.sender == "jose@example.es"
    assert parsed.sender_name == "José Pérez"
    assert parsed.subject == "Pagaré mañana \u2013 ya"
    assert "NonUtf8HeaderDefect" in parsed.defects


# --- malformed mail -----------------------------------------------------------------------


def test_malformed_email_is_a_malformed_request_with_a_reason_and_a_sentence() -> None:
    error = malformed(b"")
    assert isinstance(error, MalformedRequest)
    assert error.reason == "not_email"
    assert str(error).endswith(".")
    assert str(error)[0].isupper()


def test_mail_over_the_size_limit_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed a mail over the limit")

    monkeypatch.setattr(email, "message_from_bytes", must_not_parse)
    error = malformed(mail(), max_bytes=100)
    assert error.reason == "too_large"
    assert "100" in str(error)


def test_mail_exactly_at_the_size_limit_is_parsed() -> None:
    raw = mail()
    assert parse_email(raw, max_bytes=len(raw)).text == "I will pay on Friday."


@pytest.mark.parametrize(
    "from_line",
    [
        "",
        "From: Ana Lopez\n",
        "From: undisclosed-recipients:;\n",
        "From: <>\n",
        "From: ana at example dot net\n",
    ],
)
def test_mail_without_a_usable_sender_is_refused(from_line: str) -> None:
    headers = from_line + "To: help@northwind.example\nSubject: Re: x\nMessage-ID: <n@x>\n"
    assert malformed(mail(headers=headers)).reason == "no_sender"


def test_a_multipart_without_a_boundary_is_broken_mime() -> None:
    error = malformed(mail("I will pay.", content_type="multipart/mixed"))
    assert error.reason == "broken_mime"
    assert "boundary" in str(error)


def test_a_multipart_whose_boundary_never_appears_is_broken_mime() -> None:
    body = "--other\nContent-Type: text/plain\n\nI will pay.\n--other--\n"
    assert malformed(mail(body, content_type='multipart/mixed; boundary="never"')).reason == "broken_mime"


def test_a_mail_with_minor_defects_still_parses_and_lists_them() -> None:
    body = "preamble\n--b1\nContent-Type: text/plain; charset=utf-8\n\nI will pay on Friday.\n"  # no closing line
    parsed = parse_email(mail(body, content_type="multipart/mixed; boundary=b1"))
    assert parsed.text == "I will pay on Friday."
    assert "CloseBoundaryNotFoundDefect" in parsed.defects


def test_a_broken_nested_multipart_does_not_hide_the_text_beside_it() -> None:
    body = (
        "--outer\nContent-Type: text/plain; charset=utf-8\n\nI will pay on Friday.\n"
        "--outer\nContent-Type: multipart/mixed\n\nno boundary here\n--outer--\n"
    )
    parsed = parse_email(mail(body, content_type="multipart/mixed; boundary=outer"))
    assert parsed.text == "I will pay on Friday."
    assert "NoBoundaryInMultipartDefect" in parsed.defects
    assert parsed.attachments == 1


def test_text_only_inside_a_broken_nested_multipart_is_broken_mime() -> None:
    body = "--outer\nContent-Type: multipart/alternative\n\nI will pay.\n--outer--\n"
    assert malformed(mail(body, content_type="multipart/mixed; boundary=outer")).reason == "broken_mime"


def test_a_missing_header_separator_is_a_defect_not_a_failure() -> None:
    raw = b"From: ana@example.net\nSubject: x\nI will pay on Friday.\n"
    parsed = parse_email(raw)
    assert parsed.text == "I will pay on Friday."
    assert "MissingHeaderBodySeparatorDefect" in parsed.defects


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   \r\n\r\n  ",
        bytes(range(256)) * 4,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01",
        b'{"from": "ana@example.net", "text": "I will pay"}',
        b'{\n  "from": "ana@example.net"\n}',
        b"I will pay on Friday, promise.\nAna",
        b"<!DOCTYPE html><html><body><p>Hello</p></body></html>",
        b"name: value\nother: thing\n\nbody",
    ],
)
def test_data_that_is_not_an_email_is_refused(raw: bytes) -> None:
    assert malformed(raw).reason == "not_email"


def test_leading_blank_lines_and_an_mbox_from_line_are_tolerated() -> None:
    raw = b"\r\n\nFrom ana@example.net Mon Nov 23 10:00:00 2026\n" + mail()
    assert parse_email(raw).sender == "ana.lopez@example.net"


# --- fuzzing ------------------------------------------------------------------------------


def assert_parses_or_refuses(raw: bytes) -> None:
    try:
        result = parse_email(raw, max_bytes=20_000)
    except MalformedEmail as error:
        assert error.reason in email_parse.MALFORMED_REASONS
        return
    assert isinstance(result, ParsedEmail)
    assert re.fullmatch(r"<[^<>\s]+>", result.message_id)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2_000))
def test_arbitrary_bytes_either_parse_or_raise_malformed_email(raw: bytes) -> None:
    assert_parses_or_refuses(raw)


FUZZ_SEEDS = [
    sample("gmail_reply.eml"),
    sample("postfix_dsn.eml"),
    sample("outlook_reply_es.eml"),
    sample("iphone_reply.eml"),
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(FUZZ_SEEDS),
    st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]),
            st.floats(min_value=0, max_value=1, allow_nan=False),
            st.binary(min_size=1, max_size=12)
            | st.sampled_from(
                [b"\n", b"\r\n", b"--", b"boundary=", b":", b"=?utf-8?B?", b"<", b">", b"\x00"]
            ),
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_mutations_of_valid_mail_either_parse_or_raise_malformed_email(
    seed: bytes, mutations: list[tuple[str, float, bytes]]
) -> None:
    raw = bytearray(seed)
    for op, where, chunk in mutations:
        at = int(where * len(raw))
        if op == "flip" and raw:
            raw[min(at, len(raw) - 1)] ^= chunk[0] or 1
        elif op == "insert":
            raw[at:at] = chunk
        elif op == "delete":
            del raw[at : at + len(chunk) * 4]
        elif op == "truncate":
            del raw[at:]
        elif op == "splice":
            raw[at : at + len(chunk)] = chunk
    assert_parses_or_refuses(bytes(raw))


def test_deeply_nested_multiparts_are_refused_not_crashed() -> None:
    depth = 1_000  # beyond the interpreter's recursion limit
    opening = "".join(f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n" for i in range(depth))
    body = opening + f"--b{depth}\nContent-Type: text/plain\n\nI will pay.\n"
    error = malformed(mail(body, content_type="multipart/mixed; boundary=b0"))
    assert error.reason == "broken_mime"
    assert "nested too deeply" in str(error)


def test_moderately_nested_multiparts_are_read() -> None:
    depth = 30
    opening = "".join(f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n" for i in range(depth))
    body = opening + f"--b{depth}\nContent-Type: text/plain\n\nI will pay.\n"
    assert parse_email(mail(body, content_type="multipart/mixed; boundary=b0")).text == "I will pay."


def test_a_mail_of_many_received_headers_parses_quickly() -> None:
    extra = "".join(
        f"Received: from relay{i}.example.net by relay{i + 1}.example.net; Mon, 23 Nov 2026 10:00:{i % 60:02d} +0000\n"
        for i in range(300)
    )
    start = datetime.now()
    parsed = parse_email(mail(extra=extra))
    assert datetime.now() - start < timedelta(seconds=2)
    assert sum(1 for name, _ in parsed.headers if name == "Received") == 300
