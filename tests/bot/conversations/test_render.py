"""Replies as channel messages: numbered choices for SMS, segment budget, stable ids;
a number in answer picks the choice it names."""

from __future__ import annotations

import json
import re

import redis

from bot.conversations.render import OfferedChoices, RenderOptions, render_replies, split_to_length
from bot.store.addresses import address_key
from bot.store.connection import Keys
from channels.base import OutboundMessage
from channels.sms_text import segments
from channels.telegram import button_data
from dialogue.rasa_client import BotReply

JAMES = "+12025550143"
CONFIRM = BotReply(
    text="Shall I set that up for you?", buttons=(("Yes, set it up", "/affirm"), ("No, change it", "/deny"))
)


def _render(replies: list[BotReply], channel: str = "sms", budget: int = 4) -> list[str]:
    messages = render_replies(replies, channel=channel, recipient=JAMES, conversation_id="acct-1", source="sms:SM1",
                              options=RenderOptions(sms_max_segments=budget))  # fmt: skip
    return [m.text for m in messages]


def test_sms_buttons_become_numbered_choices() -> None:
    [text] = _render([CONFIRM])
    assert text.splitlines()[1:3] == ["1 Yes, set it up", "2 No, change it"]


def test_telegram_keeps_the_buttons_and_the_text_alone() -> None:
    messages = render_replies(
        [CONFIRM], channel="telegram", recipient="42", conversation_id="c", source="t:1"
    )
    assert messages[0].text == CONFIRM.text and len(messages[0].buttons) == 2


def test_curly_quotes_are_straightened_when_that_saves_the_whole_message() -> None:
    [text] = _render([BotReply(text="That\u2019s all set \u2014 thank you.")])
    assert text == "That's all set - thank you."


def test_a_long_reply_becomes_several_texts_within_the_budget_in_order() -> None:
    sentences = [f"This is sentence number {n} of a long explanation." for n in range(30)]
    texts = _render([BotReply(text=" ".join(sentences))], budget=2)
    assert len(texts) > 1 and all(segments(t) <= 2 for t in texts)
    assert " ".join(texts).split() == " ".join(sentences).split()


def test_outbox_ids_are_stable_and_distinct() -> None:
    first = render_replies([CONFIRM, BotReply(text="Bye")], channel="sms", recipient=JAMES, conversation_id="c",
                           source="sms:SM1")  # fmt: skip
    again = render_replies([CONFIRM, BotReply(text="Bye")], channel="sms", recipient=JAMES, conversation_id="c",
                           source="sms:SM1")  # fmt: skip
    assert [m.outbox_id for m in first] == [m.outbox_id for m in again]
    assert len({m.outbox_id for m in first}) == 2


def test_a_number_answers_the_choices_last_offered(redis_client: redis.Redis[bytes]) -> None:
    choices = OfferedChoices(redis_client, Keys("debtbot"))
    choices.remember("sms", JAMES, [BotReply(text="Here's the plan."), CONFIRM])
    assert choices.resolve("sms", JAMES, "1") == "/affirm"
    assert choices.resolve("sms", JAMES, " 2. ") == "/deny"
    assert choices.resolve("sms", JAMES, "3") == "3"  # no third choice: ordinary text
    assert choices.resolve("sms", JAMES, "50 a month") == "50 a month"


def test_choices_are_forgotten_when_the_next_reply_offers_none(redis_client: redis.Redis[bytes]) -> None:
    choices = OfferedChoices(redis_client, Keys("debtbot"))
    choices.remember("sms", JAMES, [CONFIRM])
    choices.remember("sms", JAMES, [BotReply(text="How much could you manage?")])
    assert choices.resolve("sms", JAMES, "2") == "2"


def test_number_buttons_for_options_the_text_already_lists_add_nothing() -> None:
    options = BotReply(
        text="Reply with a number:\n1. $20 a week\n2. $40 a fortnight", buttons=(("1", "1"), ("2", "2"))
    )
    assert _render([options]) == [options.text]


def test_telegram_text_over_4096_characters_is_split_at_sentences_with_buttons_on_the_last() -> None:
    sentence = "We can set up a plan that works for you. "
    long = BotReply(text=sentence * 150, buttons=(("Yes", "/affirm"),))
    messages = render_replies([long], channel="telegram", recipient="42", conversation_id="c", source="t:1")
    assert len(messages) == 2 and all(len(m.text) <= 4096 for m in messages)
    assert all(m.text.endswith("for you.") for m in messages)
    assert messages[0].buttons == () and len(messages[1].buttons) == 1
    assert " ".join(m.text for m in messages).split() == long.text.split()


def test_split_to_length_cuts_a_single_huge_word_hard() -> None:
    assert split_to_length("x" * 10, 4) == ["xxxx", "xxxx", "xx"]


PAY = BotReply(
    text="How would you like to go on?",
    buttons=(("Pay in full", "/pay_in_full"), ("A payment plan", "/plan")),
)
PLANS = BotReply(text="Here are some plans that fit:\n1. $20 a week\n2. $40 a fortnight",
                 buttons=(("1", "1"), ("2", "2")))  # fmt: skip


def test_a_press_on_the_current_keyboard_gives_its_payload(redis_client: redis.Redis[bytes]) -> None:
    choices = OfferedChoices(redis_client, Keys("debtbot"))
    offer = choices.remember("telegram", "42", [CONFIRM])
    assert offer is not None
    assert choices.pressed("telegram", "42", button_data(0, offer)) == "/affirm"
    assert choices.pressed("telegram", "42", button_data(1, offer)) == "/deny"


def test_a_press_on_an_older_keyboard_after_a_newer_offer_is_refused(
    redis_client: redis.Redis[bytes],
) -> None:
    choices = OfferedChoices(redis_client, Keys("debtbot"))
    older = choices.remember("telegram", "42", [PAY])
    newer = choices.remember("telegram", "42", [PLANS])
    assert older is not None and newer is not None and older != newer
    # "Pay in full" was position 1 of the older keyboard: it must not pick plan 1 of the newer.
    assert choices.pressed("telegram", "42", button_data(0, older)) is None
    assert choices.pressed("telegram", "42", button_data(0, newer)) == "1"


def test_a_keyboard_is_stale_once_an_answer_offers_no_choices(redis_client: redis.Redis[bytes]) -> None:
    choices = OfferedChoices(redis_client, Keys("debtbot"))
    offer = choices.remember("telegram", "42", [CONFIRM])
    assert choices.remember("telegram", "42", [BotReply(text="All set, thank you.")]) is None
    assert offer is not None and choices.pressed("telegram", "42", button_data(0, offer)) is None


def test_a_forged_id_an_out_of_range_position_or_data_without_an_id_is_refused(
    redis_client: redis.Redis[bytes],
) -> None:
    choices = OfferedChoices(redis_client, Keys("debtbot"))
    offer = choices.remember("telegram", "42", [CONFIRM])
    assert offer is not None
    forged = ("A" if offer[0] != "A" else "B") + offer[1:]
    for data in [button_data(0, forged), button_data(2, offer), "c1", "c2", "/affirm", f"c0.{offer}", "",
                 f"c1.{offer}.x", f"c1.{offer}\n"]:  # fmt: skip
        assert choices.pressed("telegram", "42", data) is None, data
    assert choices.pressed("telegram", "43", button_data(0, offer)) is None  # another chat


def test_each_offer_has_a_short_url_safe_id_of_its_own(redis_client: redis.Redis[bytes]) -> None:
    choices = OfferedChoices(redis_client, Keys("debtbot"))
    ids = {choices.remember("telegram", "42", [CONFIRM]) for _ in range(50)}
    assert len(ids) == 50
    assert all(offer is not None and re.fullmatch(r"[A-Za-z0-9_-]{8}", offer) for offer in ids)


def test_choices_remembered_before_offers_had_ids_still_answer_numbers_but_not_presses(
    redis_client: redis.Redis[bytes],
) -> None:
    keys = Keys("debtbot")
    redis_client.set(keys.choices(address_key("telegram", "42")), json.dumps(["/affirm", "/deny"]))
    choices = OfferedChoices(redis_client, keys)
    assert choices.resolve("telegram", "42", "2") == "/deny"
    assert choices.pressed("telegram", "42", "c1") is None


def test_the_offer_id_goes_with_the_last_buttons_only() -> None:
    messages = render_replies([PAY, BotReply(text="Or:"), CONFIRM, BotReply(text="Take your time.")],
                              channel="telegram", recipient="42", conversation_id="c", source="t:1",
                              offer_id="k3J9xQab")  # fmt: skip
    assert [(m.text, m.offer_id) for m in messages] == [
        (PAY.text, None), ("Or:", None), (CONFIRM.text, "k3J9xQab"), ("Take your time.", None),
    ]  # fmt: skip
    again = OutboundMessage.from_json(messages[2].to_json())
    assert again.offer_id == "k3J9xQab"  # through the outbound queue
