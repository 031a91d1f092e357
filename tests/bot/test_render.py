"""Replies as channel messages: numbered choices for SMS, segment budget, stable ids;
a number in answer picks the choice it names."""

from __future__ import annotations

import redis

from bot.render import OfferedChoices, RenderOptions, render_replies, split_to_length
from bot.store import Keys
from channels.sms_text import segments
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


def test_a_button_press_is_resolved_only_for_a_button_on_offer(redis_client: redis.Redis[bytes]) -> None:
    choices = OfferedChoices(redis_client, Keys("debtbot"))
    choices.remember("telegram", "42", [CONFIRM])
    assert choices.pressed("telegram", "42", 1) == "/deny"
    assert choices.pressed("telegram", "42", 2) is None
    assert choices.pressed("telegram", "42", None) is None
    assert choices.pressed("telegram", "43", 0) is None  # another chat
