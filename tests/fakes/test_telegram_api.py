"""The Telegram stand-in: it accepts what the Bot API description allows, refuses and records the
rest, answers like Telegram (as python-telegram-bot sees it), and injects Telegram's errors."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.fakes.telegram_api import spec_missing_reason

_MISSING = spec_missing_reason()
if _MISSING is not None:
    pytest.skip(_MISSING, allow_module_level=True)

import telegram  # noqa: E402
from telegram import (  # noqa: E402
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    ReplyKeyboardMarkup,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter  # noqa: E402

from tests.fakes.telegram_api import (  # noqa: E402
    BOT_USERNAME,
    TOKEN,
    EntityParseError,
    FakeTelegram,
    TelegramSpec,
    callback_update,
    edited_message_update,
    group_text_update,
    iter_buttons,
    parse_html,
    photo_update,
    sticker_update,
    text_update,
    voice_update,
)

JAMES = 412_345_678
T = TypeVar("T")


def _run(fake: FakeTelegram, action: Callable[[telegram.Bot], Awaitable[T]], token: str | None = None) -> T:
    """Run ``action`` with a real PTB bot pointed at the stand-in (initialising it calls getMe)."""

    async def main() -> T:
        async with telegram.Bot(token or fake.token, base_url=f"{fake.base_url}/bot") as bot:
            return await action(bot)

    return asyncio.run(main())


def _post(fake: FakeTelegram, method: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{fake.base_url}/bot{fake.token}/{method}", timeout=5, **kwargs)


def _keyboard(data: str = "pay:1") -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Pay now", callback_data=data)]])


def _ptb_text(error: BaseException) -> str:
    """PTB drops "Bad Request: " and capitalize()s the rest, so compare lower-cased."""
    return str(error).lower()


def _seconds(retry_after: int | timedelta) -> float:
    return retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)


# --- accepted ------------------------------------------------------------------------------


def test_get_me_answers_with_the_bot_user(fake_telegram: FakeTelegram) -> None:
    me = _run(fake_telegram, lambda bot: bot.get_me())
    assert me.is_bot and me.username == BOT_USERNAME and me.id == int(TOKEN.split(":")[0])
    assert [call.method for call in fake_telegram.calls] == ["getMe", "getMe"]  # initialize + ours
    assert fake_telegram.invalid_calls == []


def test_an_html_message_with_an_inline_keyboard_is_accepted_and_recorded(
    fake_telegram: FakeTelegram,
) -> None:
    text = "Hello <b>James</b>, you owe <i>€120.50</i> &amp; can pay 👉 <a href='https://pay.example/x?a=1&amp;b=2'>here</a>"
    message = _run(
        fake_telegram,
        lambda bot: bot.send_message(JAMES, text, parse_mode="HTML", reply_markup=_keyboard()),
    )
    assert fake_telegram.invalid_calls == []
    # Telegram answers with the text after entity parsing and its entities (UTF-16 offsets).
    assert message.text == "Hello James, you owe €120.50 & can pay 👉 here"
    assert [(e.type, e.offset, e.length) for e in message.entities] == [
        ("bold", 6, 5),
        ("italic", 21, 7),
        ("text_link", 42, 4),
    ]
    assert message.entities[2].url == "https://pay.example/x?a=1&b=2"
    assert message.chat.id == JAMES and message.chat.type == "private"
    assert message.from_user is not None and message.from_user.is_bot
    assert message.reply_markup == _keyboard()
    assert [button["callback_data"] for button in iter_buttons(fake_telegram.sent[0].reply_markup)] == [
        "pay:1"
    ]
    [sent] = fake_telegram.sent
    assert (sent.chat_id, sent.text, sent.parse_mode, sent.message_id) == (
        JAMES,
        text,
        "HTML",
        message.message_id,
    )
    assert sent.reply_markup == {"inline_keyboard": [[{"text": "Pay now", "callback_data": "pay:1"}]]}
    call = fake_telegram.calls[-1]
    assert call.method == "sendMessage" and call.status == 200
    assert call.params["chat_id"] == JAMES and isinstance(call.params["reply_markup"], dict)  # coerced


def test_message_ids_increase_and_results_match_the_specs_message_type(fake_telegram: FakeTelegram) -> None:
    spec = fake_telegram.spec
    answers = [
        _post(fake_telegram, "sendMessage", json={"chat_id": JAMES, "text": f"n{n}"}).json() for n in range(3)
    ]
    assert [answer["result"]["message_id"] for answer in answers] == [1, 2, 3]
    for answer in answers:
        assert answer["ok"] is True and spec.check_type("Message", answer["result"]) == []
    me = _post(fake_telegram, "getMe").json()["result"]
    assert spec.check_type("User", me) == []


def test_a_reply_keyboard_of_plain_strings_and_get_requests_are_accepted(fake_telegram: FakeTelegram) -> None:
    keyboard = ReplyKeyboardMarkup([["Yes", "No"]], one_time_keyboard=True)
    _run(fake_telegram, lambda bot: bot.send_message(JAMES, "Agree?", reply_markup=keyboard))
    answer = httpx.get(f"{fake_telegram.base_url}/bot{fake_telegram.token}/getMe", timeout=5)
    assert answer.status_code == 200 and fake_telegram.invalid_calls == []
    # Telegram takes a plain string for a simple reply button (PTB sends {"text": ...} objects).
    plain = {"keyboard": [["Yes", {"text": "No"}]], "one_time_keyboard": True}
    answer = _post(
        fake_telegram, "sendMessage", json={"chat_id": JAMES, "text": "Agree?", "reply_markup": plain}
    )
    assert answer.status_code == 200 and fake_telegram.invalid_calls == []
    assert fake_telegram.sent[1].reply_markup == plain
    # Message.reply_markup is an inline keyboard only, so a reply keyboard is not echoed.
    assert "reply_markup" not in answer.json()["result"]


def test_uploads_by_multipart_and_attach_references_are_accepted(fake_telegram: FakeTelegram) -> None:
    async def send(bot: telegram.Bot) -> tuple[telegram.Message, ...]:
        await bot.send_photo(
            JAMES, photo=b"\x89PNG\r\n\x1a\nfake", caption="<b>Invoice</b>", parse_mode="HTML"
        )
        return await bot.send_media_group(
            JAMES, media=[InputMediaPhoto(b"\x89PNG one"), InputMediaPhoto("https://cdn.example/two.jpg")]
        )

    messages = _run(fake_telegram, send)
    assert fake_telegram.invalid_calls == [] and len(messages) == 2
    photo_call = next(call for call in fake_telegram.calls if call.method == "sendPhoto")
    assert photo_call.status == 200 and photo_call.params["caption"] == "<b>Invoice</b>"
    assert photo_call.params["photo"].data == b"\x89PNG\r\n\x1a\nfake"


def test_callbacks_are_answered_and_keyboards_edited(fake_telegram: FakeTelegram) -> None:
    async def flow(bot: telegram.Bot) -> telegram.Message | bool:
        sent = await bot.send_message(JAMES, "Pay?", reply_markup=_keyboard())
        await bot.answer_callback_query("cbq-1", text="Thanks!")
        edited = await bot.edit_message_reply_markup(JAMES, sent.message_id, reply_markup=None)
        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await bot.edit_message_reply_markup(JAMES, sent.message_id, reply_markup=None)
        return edited

    edited = _run(fake_telegram, flow)
    assert isinstance(edited, telegram.Message) and edited.reply_markup is None and edited.edit_date
    [answered] = fake_telegram.answered_callbacks
    assert (answered.callback_query_id, answered.text, answered.show_alert) == ("cbq-1", "Thanks!", False)
    # Telegram refuses the second, unchanged edit; the call itself was well-formed.
    assert fake_telegram.invalid_calls == []
    edits = [call.status for call in fake_telegram.calls if call.method == "editMessageReplyMarkup"]
    assert edits == [200, 400]


# --- refused -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"chat_id": None, "text": "Hi"}, "'chat_id' is required"),
        ({"text": "x" * 4097}, "'text' must be 1-4096 characters after entities parsing, not 4097"),
        ({"text": "   "}, "'text' must be 1-4096 characters"),
        ({"text": "<b>unclosed", "parse_mode": "HTML"}, 'end tag corresponding to start tag "b"'),
        ({"text": "balance < 100", "parse_mode": "HTML"}, 'unescaped "<" at byte offset 8'),
        ({"text": "Tom & Jerry", "parse_mode": "HTML"}, 'unescaped "&" at byte offset 4'),
        ({"text": "<p>para</p>", "parse_mode": "HTML"}, 'unsupported start tag "p"'),
        ({"text": "Hi", "parse_mode": "html"}, "unsupported parse_mode 'html'"),
        (
            {"text": "Hi", "reply_markup": _keyboard("x" * 65)},
            "'reply_markup.inline_keyboard[0][0].callback_data' must be 1-64 bytes, not 65",
        ),
        (
            {"text": "Hi", "reply_markup": _keyboard("ü" * 33)},  # 66 bytes in 33 characters
            "callback_data' must be 1-64 bytes, not 66",
        ),
    ],
)
def test_a_message_telegram_would_refuse_raises_bad_request_and_is_recorded(
    fake_telegram: FakeTelegram, kwargs: dict[str, Any], expected: str
) -> None:
    arguments = {"chat_id": JAMES, **kwargs}
    with pytest.raises(BadRequest) as refused:
        _run(fake_telegram, lambda bot: bot.send_message(**arguments))
    assert expected.lower() in _ptb_text(refused.value)
    [invalid] = fake_telegram.invalid_calls
    assert invalid.method == "sendMessage" and invalid.status == 400
    assert any(expected in error for error in invalid.errors)
    assert fake_telegram.sent == []


def test_a_text_only_inline_button_and_unknown_fields_are_refused(fake_telegram: FakeTelegram) -> None:
    markup = {"inline_keyboard": [[{"text": "Pay"}]]}
    answer = _post(
        fake_telegram,
        "sendMessage",
        json={"chat_id": JAMES, "text": "Hi", "reply_markup": markup, "colour": "red"},
    )
    assert answer.status_code == 400
    body = answer.json()
    assert (
        body["ok"] is False and body["error_code"] == 400 and body["description"].startswith("Bad Request: ")
    )
    [invalid] = fake_telegram.invalid_calls
    assert "'colour' is not a field of sendMessage" in invalid.errors
    assert any("Exactly one of the fields other than text" in error for error in invalid.errors)


def test_json_bodies_are_typed_strictly_and_form_bodies_coerced(fake_telegram: FakeTelegram) -> None:
    strict = _post(
        fake_telegram, "sendMessage", json={"chat_id": JAMES, "text": "Hi", "disable_notification": "yes"}
    )
    assert strict.status_code == 400
    assert "'disable_notification' must be Boolean, not string" in fake_telegram.invalid_calls[0].errors
    form = _post(
        fake_telegram,
        "sendMessage",
        data={
            "chat_id": str(JAMES),
            "text": "Hi",
            "disable_notification": "true",
            "reply_markup": json.dumps(_keyboard().to_dict()),
        },
    )
    assert form.status_code == 200 and len(fake_telegram.invalid_calls) == 1
    assert fake_telegram.calls[-1].params["disable_notification"] is True
    broken = _post(
        fake_telegram, "sendMessage", data={"chat_id": str(JAMES), "text": "Hi", "reply_markup": "{not json"}
    )
    assert broken.status_code == 400
    assert (
        fake_telegram.invalid_calls[-1].errors[0].startswith("'reply_markup' must be InlineKeyboardMarkup or")
    )


def test_a_file_part_nobody_attaches_is_refused(fake_telegram: FakeTelegram) -> None:
    answer = _post(
        fake_telegram,
        "sendMessage",
        data={"chat_id": str(JAMES), "text": "Hi"},
        files={"stray": ("a.bin", b"\0")},
    )
    assert answer.status_code == 400
    assert fake_telegram.invalid_calls[0].errors == (
        "file part 'stray' is neither a parameter of sendMessage nor attached",
    )


def test_a_wrong_token_is_unauthorized(fake_telegram: FakeTelegram) -> None:
    with pytest.raises(InvalidToken):
        _run(fake_telegram, lambda bot: bot.get_me(), token="987654321:AAE_wrong-token-wrong-token-wrong0")
    [invalid] = fake_telegram.invalid_calls
    assert invalid.status == 401 and fake_telegram.calls == []
    raw = httpx.post(f"{fake_telegram.base_url}/bot1:nope/getMe", timeout=5).json()
    assert raw == {"ok": False, "error_code": 401, "description": "Unauthorized"}


def test_an_unknown_method_or_path_is_a_404_and_recorded(fake_telegram: FakeTelegram) -> None:
    answer = _post(fake_telegram, "sendTelepathicMessage", json={"chat_id": JAMES})
    assert answer.status_code == 404 and answer.json()["description"] == "Not Found"
    assert httpx.post(f"{fake_telegram.base_url}/api/getMe", timeout=5).status_code == 404
    assert [(call.method, call.status) for call in fake_telegram.invalid_calls] == [
        ("sendTelepathicMessage", 404),
        ("", 404),
    ]
    assert fake_telegram.invalid_calls[0].errors == ("unknown method 'sendTelepathicMessage'",)


# --- fault injection -----------------------------------------------------------------------


def test_a_flood_wait_raises_retry_after_then_recovers(fake_telegram: FakeTelegram) -> None:
    fake_telegram.fail_next(
        "sendMessage", error_code=429, description="Too Many Requests: retry after 7", retry_after=7
    )
    with pytest.raises(RetryAfter) as flood:
        _run(fake_telegram, lambda bot: bot.send_message(JAMES, "Hi"))
    assert _seconds(flood.value.retry_after) == 7
    answer = _post(fake_telegram, "sendMessage", json={"chat_id": JAMES, "text": "Hi"})
    assert answer.status_code == 200 and fake_telegram.invalid_calls == []
    assert [call.status for call in fake_telegram.calls if call.method == "sendMessage"] == [429, 200]


def test_the_flood_wait_body_has_telegrams_shape(fake_telegram: FakeTelegram) -> None:
    fake_telegram.fail_next(
        "sendMessage", error_code=429, description="Too Many Requests: retry after 3", retry_after=3
    )
    answer = _post(fake_telegram, "sendMessage", json={"chat_id": JAMES, "text": "Hi"})
    assert (answer.status_code, answer.json()) == (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 3",
            "parameters": {"retry_after": 3},
        },
    )


@pytest.mark.parametrize(
    ("code", "description", "error"),
    [
        (403, "Forbidden: bot was blocked by the user", Forbidden),
        (400, "Bad Request: chat not found", BadRequest),
        (500, "Internal Server Error", NetworkError),
        (502, "Bad Gateway", NetworkError),
    ],
)
def test_fail_next_raises_ptbs_matching_error_count_times(
    fake_telegram: FakeTelegram, code: int, description: str, error: type[Exception]
) -> None:
    fake_telegram.fail_next("sendMessage", error_code=code, description=description, count=2)

    async def three(bot: telegram.Bot) -> telegram.Message:
        for _ in range(2):
            with pytest.raises(error) as failed:
                await bot.send_message(JAMES, "Hi")
            assert type(failed.value) is error
            assert description.lower().removeprefix("bad request: ") in _ptb_text(failed.value)
        return await bot.send_message(JAMES, "Hi")

    assert _run(fake_telegram, three).text == "Hi"
    assert fake_telegram.invalid_calls == [] and len(fake_telegram.sent) == 1


def test_fail_next_needs_a_real_method(fake_telegram: FakeTelegram) -> None:
    with pytest.raises(ValueError, match="not a method"):
        fake_telegram.fail_next("sendSms", error_code=500, description="x")


# --- webhooks and updates ------------------------------------------------------------------


def test_set_webhook_is_remembered_with_its_secret(fake_telegram: FakeTelegram) -> None:
    async def hook(bot: telegram.Bot) -> telegram.WebhookInfo:
        await bot.set_webhook(
            "https://bot.example.com/webhooks/telegram",
            secret_token="s3cret_Token-1",
            allowed_updates=["message", "callback_query"],
            drop_pending_updates=True,
        )
        return await bot.get_webhook_info()

    info = _run(fake_telegram, hook)
    webhook = fake_telegram.webhook
    assert webhook is not None and webhook.url == "https://bot.example.com/webhooks/telegram"
    assert webhook.secret_token == "s3cret_Token-1" and webhook.drop_pending_updates is True
    assert webhook.allowed_updates == ("message", "callback_query")
    assert info.url == webhook.url and info.allowed_updates == ("message", "callback_query")
    assert fake_telegram.invalid_calls == [] and "s3cret" not in repr(webhook)
    with pytest.raises(Conflict):
        _run(fake_telegram, lambda bot: bot.get_updates())
    assert _run(fake_telegram, lambda bot: bot.delete_webhook()) is True and fake_telegram.webhook is None


@pytest.mark.parametrize(
    ("url", "secret", "expected"),
    [
        ("http://bot.example.com/hook", None, "An HTTPS URL must be provided"),
        ("https://bot.example.com:8080/hook", None, "ports 80, 88, 443 or 8443"),
        (
            "https://bot.example.com/hook",
            "has spaces",
            "'secret_token' may contain only A-Z, a-z, 0-9, _ and -",
        ),
        ("https://bot.example.com/hook", "x" * 257, "'secret_token' must be 1-256 characters, not 257"),
    ],
)
def test_a_webhook_telegram_would_refuse_is_refused(
    fake_telegram: FakeTelegram, url: str, secret: str | None, expected: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        _run(fake_telegram, lambda bot: bot.set_webhook(url, secret_token=secret))
    assert expected.lower() in _ptb_text(refused.value)
    assert fake_telegram.webhook is None and len(fake_telegram.invalid_calls) == 1


def test_get_updates_returns_queued_updates_and_honours_the_offset(fake_telegram: FakeTelegram) -> None:
    fake_telegram.queue_update(text_update(101, JAMES, "/start"))
    fake_telegram.queue_update(callback_update(102, JAMES, "pay:1", message_id=7))

    async def poll(bot: telegram.Bot) -> list[tuple[telegram.Update, ...]]:
        return [
            await bot.get_updates(),
            await bot.get_updates(),  # unconfirmed updates come again
            await bot.get_updates(offset=102),
            await bot.get_updates(offset=103),
        ]

    first, again, rest, empty = _run(fake_telegram, poll)
    assert [u.update_id for u in first] == [u.update_id for u in again] == [101, 102]
    assert first[0].message is not None and first[0].message.text == "/start"
    assert first[0].message.entities[0].type == "bot_command"
    assert first[1].callback_query is not None and first[1].callback_query.data == "pay:1"
    assert [u.update_id for u in rest] == [102] and empty == ()
    assert fake_telegram.pending_updates == [] and fake_telegram.invalid_calls == []


def test_a_long_poll_returns_as_soon_as_an_update_arrives(fake_telegram: FakeTelegram) -> None:
    timer = threading.Timer(0.3, fake_telegram.queue_update, [text_update(1, JAMES, "hello")])
    timer.start()
    started = time.monotonic()
    updates = _run(fake_telegram, lambda bot: bot.get_updates(timeout=30))
    timer.join()
    assert [u.update_id for u in updates] == [1] and time.monotonic() - started < 1.9


def test_queued_updates_must_be_valid_and_increasing(fake_telegram: FakeTelegram) -> None:
    fake_telegram.queue_update(text_update(5, JAMES, "hi"))
    with pytest.raises(ValueError, match="must increase"):
        fake_telegram.queue_update(text_update(5, JAMES, "again"))
    with pytest.raises(ValueError, match=r"'message\.chat' is required"):
        fake_telegram.queue_update({"update_id": 6, "message": {"message_id": 1, "date": 0}})


def test_dropping_pending_updates_forgets_them(fake_telegram: FakeTelegram) -> None:
    fake_telegram.queue_update(text_update(1, JAMES, "old"))
    assert _run(fake_telegram, lambda bot: bot.delete_webhook(drop_pending_updates=True)) is True
    assert fake_telegram.pending_updates == []


# --- update builders -----------------------------------------------------------------------

BUILDERS = {
    "text": lambda: text_update(1, JAMES, "I can pay on Friday", username="james", language_code="de"),
    "command": lambda: text_update(2, JAMES, "/start ref_42"),
    "callback": lambda: callback_update(3, JAMES, "plan:3", message_id=11),
    "photo": lambda: photo_update(4, JAMES, caption="receipt"),
    "sticker": lambda: sticker_update(5, JAMES),
    "voice": lambda: voice_update(6, JAMES),
    "group": lambda: group_text_update(7, -1001234567890, JAMES, "hi all"),
    "edited": lambda: edited_message_update(8, JAMES, "I can pay on Monday", message_id=1),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_update_builders_match_the_specs_update_type_and_parse_in_ptb(name: str) -> None:
    update = BUILDERS[name]()
    assert TelegramSpec.load().check_type("Update", update) == []
    parsed = telegram.Update.de_json(update, None)
    assert parsed.update_id == update["update_id"] and parsed.effective_chat is not None


def test_builders_shape_what_bots_look_at() -> None:
    command = telegram.Update.de_json(text_update(1, JAMES, "/pay@debtbot_test_bot now"), None)
    assert command.message is not None and command.message.entities[0].length == len("/pay@debtbot_test_bot")
    group = telegram.Update.de_json(group_text_update(2, -5, JAMES, "hi"), None)
    assert group.effective_chat is not None and group.effective_chat.type == "group"
    assert group.effective_user is not None and group.effective_user.id == JAMES
    edited = telegram.Update.de_json(edited_message_update(3, JAMES, "new", message_id=9), None)
    assert edited.edited_message is not None and edited.edited_message.message_id == 9
    with pytest.raises(ValueError, match="negative"):
        group_text_update(4, 5, JAMES, "not a group")


def test_check_type_names_what_is_wrong() -> None:
    spec = TelegramSpec.load()
    update = text_update(1, JAMES, "hi")
    del update["message"]["from"]["is_bot"]
    update["message"]["chat"]["type"] = 7
    assert spec.check_type("Update", update) == [
        "'message.from.is_bot' is required",
        "'message.chat.type' must be String, not integer",
    ]
    both = {**text_update(2, JAMES, "a"), "edited_message": text_update(2, JAMES, "b")["message"]}
    assert any("At most one of the optional fields" in error for error in spec.check_type("Update", both))
    assert spec.check_type("Nope", {}) == ["unknown type 'Nope' (not a type of Bot API 10.1)"]


# --- the spec and HTML on their own --------------------------------------------------------


def test_check_reports_every_problem_of_a_call() -> None:
    spec = TelegramSpec.load()
    assert spec.check("sendMessage", {"chat_id": "@debtbot_news", "text": "Hi"}) == []
    assert spec.check("SENDMESSAGE", {"chat_id": JAMES, "text": "Hi"}) == []  # Telegram ignores case
    assert spec.check("sendSms", {}) == ["unknown method 'sendSms' (not a method of Bot API 10.1)"]
    assert spec.check("editMessageText", {"text": "Hi"}) == [
        "'chat_id' is required when 'inline_message_id' is not given",
        "'message_id' is required when 'inline_message_id' is not given",
        "'inline_message_id' is required when 'chat_id' and 'message_id' are not given",
    ]
    errors = spec.check(
        "sendMediaGroup",
        {
            "chat_id": JAMES,
            "media": [{"type": "photo", "media": "attach://gone"}, {"type": "potato", "media": "x"}],
        },
    )
    assert "'media[1].type' must be 'photo' [read as Array of InputMediaPhoto]" in errors
    assert "'attach://gone' names no uploaded file part" in errors
    assert spec.check("setMyCommands", {"commands": [{"command": "Pay", "description": "Pay"}]}) == [
        "'commands[0].command' may contain only lowercase English letters, digits and underscores"
    ]
    assert spec.coerce(
        "sendMessage", {"chat_id": "-100123", "text": "42", "reply_markup": '{"force_reply": true}'}
    ) == {
        "chat_id": -100123,
        "text": "42",
        "reply_markup": {"force_reply": True},
    }


def test_html_parsing_follows_telegrams_rules() -> None:
    parsed = parse_html(
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k</strike><del>d</del>"
        '<span class="tg-spoiler">p</span><tg-spoiler>q</tg-spoiler><tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
        '<code>c</code><pre><code class="language-python">x = 1</code></pre><blockquote expandable>q</blockquote>'
        "&lt;&gt;&amp;&quot;&#8364;&#x1F600;"
    )
    assert parsed.text.endswith('x = 1q<>&"€😀')
    kinds = [entity["type"] for entity in parsed.entities]
    assert kinds == [
        "bold", "bold", "italic", "italic", "underline", "underline", "strikethrough", "strikethrough",
        "strikethrough", "spoiler", "spoiler", "custom_emoji", "code", "pre", "expandable_blockquote",
    ]  # fmt: skip
    assert {"type": "pre", "offset": 14, "length": 5, "language": "python"} in parsed.entities
    emoji = parse_html("😀 <b>x</b>")
    assert emoji.entities == ({"type": "bold", "offset": 3, "length": 1},)  # UTF-16 offsets
    for broken in ["<b>x</i>", "</b>", "<br>", "<span>x</span>", "<a>x</a>", "&nbsp;", "a > b", "&#xD800;"]:
        with pytest.raises(EntityParseError):
            parse_html(broken)


def test_reprs_leave_texts_ids_and_tokens_out(fake_telegram: FakeTelegram) -> None:
    _run(
        fake_telegram,
        lambda bot: bot.send_message(JAMES, "Your balance is €1,234.56", reply_markup=_keyboard()),
    )
    shown = repr(fake_telegram.all_calls) + repr(fake_telegram.sent)
    assert str(JAMES) not in shown and "balance" not in shown and fake_telegram.token not in shown


def test_the_spec_is_loaded_once_and_its_absence_is_explained(tmp_path: Path) -> None:
    assert TelegramSpec.load() is TelegramSpec.load()
    reason = spec_missing_reason(tmp_path / "telegram_bot_api.json")
    assert reason is not None and "not available" in reason and spec_missing_reason() is None
