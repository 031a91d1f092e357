"""Hostile input to the provider webhooks, with valid signatures so it reaches the parsers.

Whatever arrives: never a 5xx; a 4xx always carries a JSON error; what is accepted is stored
cleaned (no lone surrogates, no control characters); and a good message sent right after is
still accepted and queued. The reported cases are among the examples.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.test import EnvironBuilder, TestResponse
from werkzeug.wrappers import Request

from bot.config import Config
from bot.conversations.inbound import address_key
from bot.privacy import log_handler
from bot.runtime.services import Services
from channels.base import InboundMessage
from channels.email import sign
from channels.telegram import SECRET_HEADER
from tests.bot.conftest import PUBLIC

#: Examples per property: enough to meet every kind of input below, quick on two cores.
EXAMPLES = 120
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # One app and one Redis for all examples, on purpose: a good message after bad ones must
    # still get through the same gateway.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Anything a stored message may not hold.
UNSTORABLE = re.compile("[\ud800-\udfff\x00-\x08\x0b-\x1f\x7f-\x9f]")

# --- nasty values ------------------------------------------------------------------------

HOSTILE_CHARS = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),  # lone surrogates
    st.characters(categories=["Cc", "Cf", "Zl", "Zp"]),  # NUL, ESC, CR, RLO, U+2028...
)
NASTY_SAMPLES = [
    "",
    " ",
    "\x00",
    "\r\n",
    "SM1\r\nINFO forged line\x00\x1b[2J",
    "\ud800",
    "\udcc3",
    "Ana L\udcc3pez",
    "\u202eevil",
    "\u2028",
    "=?UTF-8?Q?Ana_L=C3pez?=",
    "STOP",
    "4111 1111 1111 1111",
    "x" * 5000,
    "🙂" * 1000,
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "%00%0d%0a",
    "{{7*7}}",
]
NASTY_TEXT = st.one_of(
    st.text(HOSTILE_CHARS, max_size=60),
    st.sampled_from(NASTY_SAMPLES),
    st.integers(1, 20_000).map(lambda n: "é" * n),
)
HUGE_NUMBERS = st.sampled_from([10**20, 2**63, -(2**63), 2**64, -1, 10**300, 0])
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE_NUMBERS,
    st.floats(allow_nan=True, allow_infinity=True),
    NASTY_TEXT,
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(HOSTILE_CHARS, max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def deep(depth: int) -> str:
    return '{"update_id": 1, "message": ' + "[" * depth + "]" * depth + "}"


DEEP_JSON = st.integers(33, 200_000).map(deep)


def either(valid: Any) -> st.SearchStrategy[Any]:
    """The valid value most of the time, anything at all otherwise."""
    return st.one_of(st.just(valid), st.just(valid), JSON_VALUES)


# --- checks ------------------------------------------------------------------------------


def check_answer(answer: TestResponse) -> None:
    """Never a 5xx; a 4xx is JSON with an error."""
    assert answer.status_code < 500, answer.get_data(as_text=True)[:500]
    if answer.status_code >= 400:
        body = answer.get_json(silent=True)
        assert isinstance(body, dict) and body.get("error"), answer.get_data(as_text=True)[:500]


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def assert_everything_stored_is_clean(services: Services) -> list[InboundMessage]:
    messages = []
    for key in services.inbound.pending_keys():
        for entry in services.inbound.unhandled(key):
            for text in strings(json.loads(entry.payload)):
                assert not UNSTORABLE.search(text), repr(text[:200])
            messages.append(InboundMessage.from_json(entry.payload))
    return messages


def queued(services: Services, channel: str, sender: str) -> list[InboundMessage]:
    return [
        InboundMessage.from_json(e.payload) for e in services.inbound.unhandled(address_key(channel, sender))
    ]


# --- SMS ---------------------------------------------------------------------------------


def as_sent(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def as_received(body: str) -> dict[str, str]:
    """The form as the gateway reads it out of the body (werkzeug keeps bytes that are not
    UTF-8 percent-encoded): what Twilio signs is what it sends."""
    environ = EnvironBuilder(method="POST", data=body, content_type="application/x-www-form-urlencoded")
    return Request(environ.get_environ()).form.to_dict()


def post_signed_form(client: FlaskClient, config: Config, path: str, form: dict[str, str], query: str = ""):  # type: ignore[no-untyped-def]
    token = config.secrets.twilio_auth_token or ""
    body = urlencode({as_sent(k): as_sent(v) for k, v in form.items()})
    signature = RequestValidator(token).compute_signature(f"{PUBLIC}{path}{query}", as_received(body))
    return client.post(f"{path}{query}", data=body, content_type="application/x-www-form-urlencoded",
                       headers={"X-Twilio-Signature": signature})  # fmt: skip


def good_sms_after(client: FlaskClient, config: Config, services: Services) -> None:
    sid = "SM" + uuid.uuid4().hex
    form = {"MessageSid": sid, "From": "+14155550199", "To": "+15005550006", "Body": "I can pay 50 on Friday"}
    answer = post_signed_form(client, config, "/webhooks/sms", form)
    assert answer.status_code == 200
    assert [m.text for m in queued(services, "sms", "+14155550199") if m.external_id == sid] == [
        "I can pay 50 on Friday"
    ]


SMS_FORMS = st.fixed_dictionaries(
    {
        "MessageSid": either("SM" + "a" * 32),
        "From": either("+14155550123"),
        "To": either("+15005550006"),
        "Body": NASTY_TEXT,
    },
    optional={"NumMedia": NASTY_TEXT, "SmsSid": NASTY_TEXT, "X\x00\ud800": NASTY_TEXT},
).map(
    lambda form: {key: value if isinstance(value, str) else json.dumps(value) for key, value in form.items()}
)


@FUZZ
@given(form=SMS_FORMS)
@example(form={"MessageSid": "SM1\r\nINFO forged\x00\x1b[31m", "From": "+14155550123", "Body": "hi"})
@example(form={"MessageSid": "SM" + "a" * 32, "From": "+14155550123", "Body": "hi \ud800 \x00\x1b[2J"})
@example(form={"MessageSid": "SM" + "a" * 32, "From": "+1415\r\n5550123", "Body": "x" * 100_000})
@example(form={"MessageSid": "SM" + "a" * 32, "From": "\ud800", "Body": "STOP"})
def test_hostile_signed_sms_never_gets_a_5xx_and_a_good_one_still_gets_through(
    client: FlaskClient, config: Config, services: Services, redis_client: redis.Redis, form: dict[str, str]
) -> None:
    redis_client.flushdb()
    answer = post_signed_form(client, config, "/webhooks/sms", form)
    check_answer(answer)
    assert answer.status_code != 403  # signed: it reached the parser
    assert_everything_stored_is_clean(services)
    good_sms_after(client, config, services)


STATUS_FORMS = st.fixed_dictionaries(
    {
        "MessageSid": either("SM" + "b" * 32),
        "MessageStatus": either("failed"),
        "To": either("+14155550123"),
        "ErrorCode": either("30003"),
        "ErrorMessage": NASTY_TEXT,
    }
).map(
    lambda form: {key: value if isinstance(value, str) else json.dumps(value) for key, value in form.items()}
)


@FUZZ
@given(form=STATUS_FORMS, outbox_id=either("outbox-1").map(str))
@example(form={"MessageSid": "SM\r\n\x00\x1b", "MessageStatus": "failed", "To": "+1"}, outbox_id="o")
@example(form={"MessageSid": "SM" + "b" * 32, "MessageStatus": "failed", "To": "+1", "ErrorCode": "9" * 5000},
         outbox_id="outbox-1")  # fmt: skip
@example(
    form={"MessageSid": "SM" + "b" * 32, "MessageStatus": "sent", "To": "+1"}, outbox_id="\r\n\ud800" * 100
)
def test_hostile_signed_status_callbacks_never_get_a_5xx(
    client: FlaskClient,
    config: Config,
    services: Services,
    redis_client: redis.Redis,
    form: dict[str, str],
    outbox_id: str,
) -> None:
    redis_client.flushdb()
    answer = post_signed_form(
        client, config, "/webhooks/sms/status", form, query=f"?o={quote(as_sent(outbox_id))}"
    )
    check_answer(answer)
    assert answer.status_code != 403
    good = {"MessageSid": "SM" + "c" * 32, "MessageStatus": "delivered", "To": "+14155550123"}
    assert (
        post_signed_form(client, config, "/webhooks/sms/status", good, query="?o=outbox-2").status_code == 204
    )
    record = services.deliveries.get("outbox-2")
    assert record is not None and record.status is not None and record.status.value == "delivered"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--'),
        ("multipart/form-data; boundary=x", b"garbage"),
        ("multipart/form-data; boundary=" + "x" * 300, b"--" + b"x" * 300 + b"\r\n\r\n"),
        ("application/x-www-form-urlencoded; charset=bogus", b"a=%FF&b=\xff"),
        ("application/json", b"[[[["),
        ("text/plain", b"\x00"),
    ],
    ids=["multipart without boundary", "multipart garbage", "long boundary", "bogus charset", "json", "nul"],
)
def test_a_signed_sms_webhook_of_another_content_type_is_a_json_400(
    client: FlaskClient, config: Config, content_type: str, body: bytes
) -> None:
    # Signed over the URL alone: the form the gateway reads from these bodies is empty.
    signature = RequestValidator(config.secrets.twilio_auth_token or "").compute_signature(
        f"{PUBLIC}/webhooks/sms", {}
    )
    answer = client.post("/webhooks/sms", data=body, content_type=content_type,
                         headers={"X-Twilio-Signature": signature})  # fmt: skip
    assert answer.status_code == 400 and "missing form field" in answer.get_json()["error"]


# --- Telegram ----------------------------------------------------------------------------

TELEGRAM_USER = st.one_of(
    st.fixed_dictionaries(
        {"id": either(77), "is_bot": either(False), "first_name": either("Ana")},
        optional={"username": either("ana_ruiz"), "last_name": NASTY_TEXT},
    ),
    JSON_VALUES,
)
TELEGRAM_MESSAGE = st.fixed_dictionaries(
    {
        "message_id": either(1),
        "date": either(1700000000),
        "chat": st.one_of(
            st.fixed_dictionaries({"id": either(77), "type": either("private"), "first_name": either("Ana")}),
            JSON_VALUES,
        ),
        "from": TELEGRAM_USER,
        "text": st.one_of(NASTY_TEXT, JSON_VALUES),
    },
    optional={"entities": JSON_VALUES, "reply_to_message": JSON_VALUES, "caption": JSON_VALUES},
)
TELEGRAM_UPDATES = st.one_of(
    st.fixed_dictionaries({"update_id": either(9), "message": st.one_of(TELEGRAM_MESSAGE, JSON_VALUES)}),
    st.fixed_dictionaries(
        {
            "update_id": either(9),
            "callback_query": st.fixed_dictionaries(
                {
                    "id": either("q1"),
                    "from": TELEGRAM_USER,
                    "data": either("c1.abcdefgh"),
                    "message": TELEGRAM_MESSAGE,
                }
            ),
        }
    ),
    JSON_VALUES,
).map(lambda update: json.dumps(update))  # ensure_ascii: surrogates travel as "\ud800" escapes


def telegram_update(text: str = "hi", update_id: int = 9, **changes: Any) -> dict[str, Any]:
    message = {
        "message_id": 1,
        "date": 1700000000,
        "chat": {"id": 77, "type": "private", "first_name": "Ana"},
        "from": {"id": 77, "is_bot": False, "first_name": "Ana"},
        "text": text,
        **changes,
    }
    return {"update_id": update_id, "message": message}


def post_telegram(client: FlaskClient, config: Config, body: str | bytes) -> TestResponse:
    return client.post("/webhooks/telegram", data=body, content_type="application/json",
                       headers={SECRET_HEADER: config.secrets.telegram_webhook_secret})  # fmt: skip


@FUZZ
@given(body=st.one_of(TELEGRAM_UPDATES, DEEP_JSON, st.binary(max_size=200)))
@example(body=json.dumps(telegram_update("hola \ud800 \udcc3")))
@example(body=json.dumps(telegram_update(**{"from": {"id": 77, "is_bot": False, "first_name": "\udcc3na"}})))
@example(body=json.dumps(telegram_update(date=10**20)))
@example(body=json.dumps(telegram_update(date=-(10**20))))
@example(body=json.dumps(telegram_update(chat={"id": [1], "type": "private"})))
@example(body=json.dumps(telegram_update(update_id=10**20)))
@example(body='{"update_id": 1, "message": {"text": 1e999}}')
@example(body='{"update_id": ' + "9" * 5000 + "}")
@example(body=deep(100_000))
@example(body='{"update_id": 1, "message": ' + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "}")
def test_hostile_telegram_updates_never_get_a_5xx_and_a_good_one_still_gets_through(
    client: FlaskClient, config: Config, services: Services, redis_client: redis.Redis, body: str | bytes
) -> None:
    redis_client.flushdb()
    answer = post_telegram(client, config, body)
    check_answer(answer)
    assert_everything_stored_is_clean(services)
    good = telegram_update("I'm fine, thanks", update_id=10**6, chat={"id": 78, "type": "private"})
    assert post_telegram(client, config, json.dumps(good)).status_code == 200
    assert [m.text for m in queued(services, "telegram", "78")] == ["I'm fine, thanks"]


def test_a_lone_surrogate_in_a_telegram_text_and_name_is_stored_as_a_replacement_character(
    client: FlaskClient, config: Config, services: Services
) -> None:
    update = telegram_update("hola \ud800", **{"from": {"id": 77, "is_bot": False, "first_name": "\udcc3na"}})
    assert post_telegram(client, config, json.dumps(update)).status_code == 200
    [message] = queued(services, "telegram", "77")
    assert message.text == "hola \ufffd"
    assert message.raw["message"]["from"]["first_name"] == "\ufffdna"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (deep(100_000), "nested"),
        (json.dumps(telegram_update(date=10**20)), "date"),
        (json.dumps(telegram_update(update_id=-1)), "update_id"),
        (json.dumps(telegram_update(text={"a": 1})), "text"),
    ],
    ids=["deep", "date 10^20", "negative update_id", "text not a string"],
)
def test_hostile_telegram_updates_are_a_400_naming_the_problem(
    client: FlaskClient, config: Config, services: Services, body: str, fragment: str
) -> None:
    answer = post_telegram(client, config, body)
    assert answer.status_code == 400 and fragment in answer.get_json()["error"]
    assert services.inbound.pending_keys() == []


# --- email -------------------------------------------------------------------------------


def encoded_word(charset: str, encoding: str, data: bytes) -> str:
    if encoding == "B":
        return f"=?{charset}?B?{base64.b64encode(data).decode()}?="
    return f"=?{charset}?Q?{''.join(f'={byte:02X}' for byte in data)}?="


ENCODED_WORDS = st.builds(
    encoded_word,
    st.sampled_from(["UTF-8", "utf-8", "iso-8859-1", "x-unknown", "utf-7", "", "base64"]),
    st.sampled_from(["Q", "B"]),
    st.binary(max_size=20),
)
HEADER_VALUES = st.one_of(NASTY_TEXT, ENCODED_WORDS, st.tuples(NASTY_TEXT, ENCODED_WORDS).map(" ".join))
CONTENT_TYPES = st.sampled_from(
    [
        "text/plain; charset=utf-8",
        "text/plain; charset=x-bogus",
        "text/plain; charset=utf-16",
        "text/html; charset=iso-8859-1",
        "multipart/mixed",
        'multipart/mixed; boundary="b1"',
        "message/rfc822",
        "application/octet-stream",
        "text/plain; charset=\x00",
    ]
)
TRANSFER_ENCODINGS = st.sampled_from(["", "base64", "quoted-printable", "8bit", "x-uuencode", "bogus"])


def nested_multipart(depth: int) -> str:
    parts = "".join(f'Content-Type: multipart/mixed; boundary="n{i}"\r\n\r\n--n{i}\r\n' for i in range(depth))
    return (
        parts
        + "Content-Type: text/plain\r\n\r\nhello\r\n"
        + "".join(f"--n{i}--\r\n" for i in reversed(range(depth)))
    )


@st.composite
def hostile_mail(draw: st.DrawFn) -> bytes:
    display = draw(HEADER_VALUES)
    address = draw(st.one_of(st.just("ana.lopez@example.com"), NASTY_TEXT))
    headers = [
        f"From: {display} <{address}>",
        "To: help@northwind.example.com",
        f"Subject: {draw(HEADER_VALUES)}",
        f"Message-ID: {draw(st.one_of(st.just('<m1@example.com>'), NASTY_TEXT))}",
        f"Content-Type: {draw(CONTENT_TYPES)}",
    ]
    encoding = draw(TRANSFER_ENCODINGS)
    if encoding:
        headers.append(f"Content-Transfer-Encoding: {encoding}")
    if draw(st.booleans()):
        headers.append(f"In-Reply-To: {draw(NASTY_TEXT)}")
    body: bytes = draw(st.one_of(NASTY_TEXT.map(as_sent), st.binary(max_size=300)))
    if draw(st.integers(0, 9)) == 0:
        body = as_sent(nested_multipart(draw(st.integers(1, 150))))
    return as_sent("\r\n".join(headers)) + b"\r\n\r\n" + body


def post_mail(client: FlaskClient, config: Config, body: bytes) -> TestResponse:
    signature = sign(config.secrets.email_webhook_secret, body)
    return client.post("/webhooks/email", data=body, content_type="message/rfc822",
                       headers={"X-Debtbot-Signature": signature})  # fmt: skip


BROKEN_WORD_MAIL = (
    b"From: =?UTF-8?Q?Ana_L=C3pez?= <ana.lopez@example.com>\r\nTo: help@northwind.example.com\r\n"
    b"Subject: =?UTF-8?B?/w==?=\r\nMessage-ID: <broken-word@example.com>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nI'm fine, thanks.\r\n"
)


@FUZZ
@given(body=st.one_of(hostile_mail(), st.binary(max_size=300)))
@example(body=BROKEN_WORD_MAIL)
@example(body=BROKEN_WORD_MAIL.replace(b"<broken-word@example.com>", b"<" + b"x" * 5000 + b"@example.com>"))
@example(
    body=b"From: a@b.c\r\nMessage-ID: <\x1b\x00@x>\r\nContent-Type: text/plain\r\n\r\nhi \xed\xa0\x80 \x00\r\n"
)
@example(body=as_sent(nested_multipart(2000)))
def test_hostile_signed_mail_never_gets_a_5xx_and_a_good_one_still_gets_through(
    client: FlaskClient, config: Config, services: Services, redis_client: redis.Redis, body: bytes
) -> None:
    redis_client.flushdb()
    answer = post_mail(client, config, body)
    check_answer(answer)
    if answer.status_code == 200:
        assert answer.get_json()["status"] in ("accepted", "duplicate", "set_aside")
    assert_everything_stored_is_clean(services)
    good = (
        b"From: James <james@example.net>\r\nTo: help@northwind.example.com\r\nSubject: Re: Hello\r\n"
        b"Message-ID: <good-" + uuid.uuid4().hex.encode() + b"@example.net>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nI can pay on Friday.\r\n"
    )
    assert post_mail(client, config, good).get_json()["status"] == "accepted"
    assert [m.text for m in queued(services, "email", "james@example.net")] == ["I can pay on Friday."]


def test_a_broken_encoded_word_in_the_sender_name_is_accepted_and_queued_cleaned(
    client: FlaskClient, config: Config, services: Services
) -> None:
    answer = post_mail(client, config, BROKEN_WORD_MAIL)
    assert answer.status_code == 200 and answer.get_json()["status"] == "accepted"
    [message] = queued(services, "email", "ana.lopez@example.com")
    assert message.sender_handle == "Ana L\ufffdpez"
    assert message.text == "I'm fine, thanks." and message.raw["subject"] == "\ufffd"


# --- other paths -------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NASTY_TEXT, suffix=st.sampled_from(["", "/status"]))
@example(name="telegram", suffix="/status")
@example(name="email", suffix="/status")
@example(name="x\r\nforged\x00\x1b", suffix="")
def test_unknown_webhook_paths_are_a_json_4xx(client: FlaskClient, name: str, suffix: str) -> None:
    answer = client.post(f"/webhooks/{quote(as_sent(name), safe='')}{suffix}", data=b"{}")
    check_answer(answer)
    assert answer.status_code >= 300  # a redirect (merged slashes) or a refusal, never accepted


# --- logs --------------------------------------------------------------------------------

FORGED = "SM1\r\n2026-01-01 00:00:00,000 CRITICAL bot: forged\x00\x1b[2J"
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ")


@pytest.fixture
def product_log() -> Iterator[io.StringIO]:
    """What the product's own log handler writes, for the duration of a test."""
    stream = io.StringIO()
    handler = log_handler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_signed_message_sid_with_cr_lf_nul_esc_cannot_forge_log_lines(
    client: FlaskClient, config: Config, services: Services, product_log: io.StringIO
) -> None:
    form = {"MessageSid": FORGED, "From": "+14155550123", "To": "+15005550006", "Body": "hi"}
    answer = post_signed_form(client, config, "/webhooks/sms", form)
    assert answer.status_code == 400 and "MessageSid" in answer.get_json()["error"]
    status = {"MessageSid": FORGED, "MessageStatus": "failed", "To": "+14155550123"}
    assert post_signed_form(client, config, "/webhooks/sms/status", status, query="?o=o1").status_code == 400
    # The path is outside input too, and is logged raw by the refusal.
    client.post("/webhooks/" + quote(FORGED), data=b"{}")
    logged = product_log.getvalue()
    lines = logged.splitlines()
    assert len(lines) == 3 and all(LOG_LINE.match(line) for line in lines), logged
    assert not re.search("[\x00\x1b\r]", logged)
    assert "forged" in lines[2] and "\\r\\n" in lines[2] and "\\x00\\x1b" in lines[2]
    assert services.inbound.pending_keys() == []
