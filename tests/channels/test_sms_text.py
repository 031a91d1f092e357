"""SMS text: GSM-7/UCS-2 segments, GSM substitution, plain text, numbered choices, segment budgets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.sms_text import (
    SegmentInfo,
    analyse,
    choice_from_reply,
    encoding,
    fit_to_budget,
    plain,
    prefer_gsm,
    render_choices,
    segments,
    to_gsm,
)

EMOJI = "\U0001f600"  # 😀: outside the BMP, two UTF-16 code units
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "\f^{}\\[~]|€"
CURLY = "\u2019"  # right single quotation mark, the curly apostrophe


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# --- encoding and segments -------------------------------------------------------------


def test_the_gsm_basic_table_has_127_characters_and_each_is_one_septet() -> None:
    assert len(set(GSM_BASIC)) == 127  # 128 codes, less the escape to the extension table
    assert analyse(GSM_BASIC) == SegmentInfo(encoding="GSM-7", segments=1, units=127)


@pytest.mark.parametrize("char", list(GSM_EXTENSION))
def test_an_extension_character_is_gsm_and_counts_two_septets(char: str) -> None:
    assert analyse(char) == SegmentInfo(encoding="GSM-7", segments=1, units=2)


@pytest.mark.parametrize(
    "char", ["á", "í", "ó", "ú", "ç", "`", "ê", "õ", CURLY, "\u2014", "\u00a0", "\t", EMOJI]
)
def test_a_character_outside_the_gsm_alphabet_forces_ucs2(char: str) -> None:
    assert encoding("Hello " + char) == "UCS-2"


def test_the_spanish_letters_gsm_has_keep_a_message_gsm() -> None:
    assert encoding("¿¡ñÑéèùìòÇØøÅåÄÖÜäöüàÉßÆæ") == "GSM-7"


def test_spanish_with_acute_o_and_a_needs_ucs2() -> None:
    assert encoding("¿Cómo está?") == "UCS-2"


def test_spanish_with_only_e_acute_and_inverted_question_mark_stays_gsm() -> None:
    assert encoding("¿Qué tal?") == "GSM-7"


def test_an_empty_text_is_one_segment() -> None:
    assert analyse("") == SegmentInfo(encoding="GSM-7", segments=1, units=0)


def test_160_gsm_characters_fit_one_segment() -> None:
    assert segments("a" * 160) == 1


def test_161_gsm_characters_take_two_segments() -> None:
    assert segments("a" * 161) == 2


def test_306_gsm_characters_fill_exactly_two_segments_of_153() -> None:
    assert segments("a" * 306) == 2


def test_307_gsm_characters_take_three_segments() -> None:
    assert segments("a" * 307) == 3


def test_the_euro_sign_counts_two_septets() -> None:
    # 159 + 2 = 161 septets: over the single-message limit.
    assert analyse("a" * 159 + "€") == SegmentInfo(encoding="GSM-7", segments=2, units=161)
    assert segments("a" * 158 + "€") == 1


def test_an_extension_character_is_not_split_across_segments() -> None:
    # 306 septets would fit two segments if divided, but the escape and the "€" after 152
    # septets cannot straddle the boundary: the "€" starts the second segment, and the
    # last "a" spills into a third.
    text = "a" * 152 + "€" + "a" * 152
    assert analyse(text) == SegmentInfo(encoding="GSM-7", segments=3, units=306)


def test_an_emoji_in_70_utf16_units_is_one_segment() -> None:
    # Lengths here are UTF-16 code units, not Python characters: the emoji is two units.
    text = "a" * 68 + EMOJI
    assert utf16_units(text) == 70
    assert analyse(text) == SegmentInfo(encoding="UCS-2", segments=1, units=70)


def test_an_emoji_in_71_utf16_units_takes_two_segments() -> None:
    text = "a" * 69 + EMOJI
    assert utf16_units(text) == 71
    assert analyse(text) == SegmentInfo(encoding="UCS-2", segments=2, units=71)


def test_134_ucs2_units_fill_exactly_two_segments_of_67() -> None:
    text = "á" * 134
    assert analyse(text) == SegmentInfo(encoding="UCS-2", segments=2, units=134)


def test_135_ucs2_units_take_three_segments() -> None:
    assert segments("á" * 135) == 3


def test_a_surrogate_pair_is_not_split_across_segments() -> None:
    # 134 units would fit two segments if divided, but the emoji at units 67-68 moves whole
    # into the second segment, and the last "a" spills into a third.
    text = "a" * 66 + EMOJI + "a" * 66
    assert analyse(text) == SegmentInfo(encoding="UCS-2", segments=3, units=134)


# --- GSM substitution --------------------------------------------------------------------


def test_typography_becomes_its_gsm_equivalent() -> None:
    text = "\u2018a\u2019 \u201cb\u201d c\u2013d\u2014e f\u2026 g\u00a0h \u2022 i \u00abj\u00bb \u2039k\u203a"
    assert to_gsm(text) == "'a' \"b\" c-d-e f... g h - i \"j\" 'k'"
    assert encoding(to_gsm(text)) == "GSM-7"


def test_to_gsm_never_changes_letters() -> None:
    assert to_gsm("¿Cómo está? Información útil") == "¿Cómo está? Información útil"


def test_an_80_character_message_with_one_curly_quote_is_saved_from_ucs2() -> None:
    text = ("We" + CURLY + "ll call you back tomorrow about the plan we agreed. Thank you!").ljust(80, "!")
    assert len(text) == 80
    assert analyse(text) == SegmentInfo(encoding="UCS-2", segments=2, units=80)
    assert analyse(prefer_gsm(text)) == SegmentInfo(encoding="GSM-7", segments=1, units=80)
    assert prefer_gsm(text) == text.replace(CURLY, "'")


def test_prefer_gsm_keeps_the_typography_when_an_emoji_keeps_ucs2_anyway() -> None:
    text = "Thanks \u2014 we" + CURLY + "ll be in touch " + EMOJI
    assert prefer_gsm(text) == text


def test_prefer_gsm_keeps_spanish_accents_and_their_typography() -> None:
    text = "\u00abGracias\u00bb \u2014 \u00bfC\u00f3mo est\u00e1?"
    assert prefer_gsm(text) == text


def test_prefer_gsm_keeps_ellipses_that_would_cost_more_septets_than_units() -> None:
    text = "\u2026" * 70  # one UCS-2 segment; as "..." it would be 210 septets, two segments
    assert prefer_gsm(text) == text


def test_prefer_gsm_leaves_gsm_text_alone() -> None:
    assert prefer_gsm("Hello {name}, that's €20.") == "Hello {name}, that's €20."


# --- plain text ------------------------------------------------------------------------------


def test_plain_removes_bold_and_emphasis() -> None:
    assert plain("**Pay** __today__, *please*, _if you can_, `now`") == "Pay today, please, if you can, now"


def test_plain_writes_a_link_as_title_and_address() -> None:
    assert plain("Pay at [our site](https://pay.example/a_b).") == "Pay at our site: https://pay.example/a_b."


def test_plain_writes_a_link_titled_with_its_address_once() -> None:
    assert plain("[https://pay.example](https://pay.example)") == "https://pay.example"


def test_plain_keeps_bullets_as_hyphens() -> None:
    assert plain("Options:\n- weekly\n* monthly\n+ yearly") == "Options:\n- weekly\n- monthly\n- yearly"


def test_plain_leaves_underscores_in_words_and_addresses_and_lone_asterisks() -> None:
    text = "Ref snake_case_ref, see https://x.example/_a_/*b* and 5 * 3 * 2"
    assert plain(text) == text


def test_plain_removes_emphasis_around_an_address() -> None:
    assert plain("**Pay at https://x.example/a_b_c**") == "Pay at https://x.example/a_b_c"


def test_plain_drops_heading_hashes_but_not_a_number_sign() -> None:
    assert plain("# Your plan\n#1 is weekly") == "Your plan\n#1 is weekly"


# --- numbered choices --------------------------------------------------------------------


def test_choices_become_numbered_lines_and_an_english_prompt() -> None:
    rendered = render_choices("Shall I set that up for you?", ["Yes, set it up", "No, change it"], "en")
    assert rendered == "Shall I set that up for you?\n1 Yes, set it up\n2 No, change it\nReply with a number."


def test_spanish_choices_get_a_spanish_prompt() -> None:
    rendered = render_choices("¿Lo preparo?", ["Sí", "No"], "es")
    assert rendered == "¿Lo preparo?\n1 Sí\n2 No\nResponda con un número."


def test_a_regional_spanish_language_tag_gets_the_spanish_prompt() -> None:
    assert render_choices("¿Lo preparo?", ["Sí"], "es-MX").endswith("Responda con un número.")


def test_a_title_with_a_newline_stays_on_one_line() -> None:
    assert (
        render_choices("Pick", ["Pay\nnow", "Later"], "en")
        == "Pick\n1 Pay now\n2 Later\nReply with a number."
    )


def test_without_titles_the_text_is_unchanged() -> None:
    assert render_choices("Thanks.", [], "en") == "Thanks."


@pytest.mark.parametrize(
    ("reply", "index"),
    [("1", 0), (" 2 ", 1), ("2.", 1), ("2)", 1), ("#1", 0), ("# 3", 2), ("\uff12", 1), ("\uff03\uff11", 0),
     ("1\ufe0f\u20e3", 0), ("3\u20e3", 2), ("\u2460", 0), ("\n3\n", 2), ("01", 0)],
)  # fmt: skip
def test_a_reply_that_is_just_a_number_chooses_that_option(reply: str, index: int) -> None:
    assert choice_from_reply(reply, 3) == index


def test_the_keycap_ten_chooses_the_tenth_option() -> None:
    assert choice_from_reply("\U0001f51f", 10) == 9


@pytest.mark.parametrize(
    "reply",
    ["10 pounds", "2 weeks", "1 2", "0", "4", "-1", "1.5", "one", "", "  ", "option 1", "1!", "12345"],
)
def test_a_reply_that_is_not_just_an_offered_number_chooses_nothing(reply: str) -> None:
    assert choice_from_reply(reply, 3) is None


def test_no_offered_choices_means_no_choice() -> None:
    assert choice_from_reply("1", 0) is None


# --- segment budget ----------------------------------------------------------------------


def test_messages_within_budget_are_kept_and_never_joined() -> None:
    assert fit_to_budget(["Hi.", "Your balance is 20.", "Bye."], 3) == ["Hi.", "Your balance is 20.", "Bye."]


def test_a_message_within_budget_is_sent_in_gsm_when_that_saves_ucs2() -> None:
    assert fit_to_budget(["It" + CURLY + "s done."], 1) == ["It's done."]


def test_a_long_message_is_split_at_sentence_ends() -> None:
    sentence = "This sentence is exactly fifty characters long ok."  # 50 septets
    text = " ".join([sentence] * 8)  # 407 septets: three segments
    parts = fit_to_budget([text], 1)
    assert parts == [" ".join([sentence] * 3), " ".join([sentence] * 3), " ".join([sentence] * 2)]


def test_a_line_break_is_a_better_split_than_a_sentence_end() -> None:
    first = "Your plan is ready."
    second = " ".join(["Payment number one is due soon."] * 5)  # 159 septets
    parts = fit_to_budget([first + "\n" + second], 1)
    assert parts == [first, second]


def test_a_paragraph_break_is_a_better_split_than_a_line_break() -> None:
    text = "Line one.\nLine two.\n\n" + "x" * 140 + "\nEnd."
    assert fit_to_budget([text], 1) == ["Line one.\nLine two.", "x" * 140 + "\nEnd."]


def test_a_short_sentence_before_a_long_one_does_not_cost_an_extra_message() -> None:
    # Splitting after "Hi." would leave 299 septets, two more messages; cutting the long
    # sentence between words needs two messages in all.
    text = "Hi. " + " ".join(["word"] * 60)
    parts = fit_to_budget([text], 1)
    assert len(parts) == 2
    assert " ".join(parts) == text


def test_a_sentence_too_long_for_the_budget_is_split_between_words() -> None:
    text = " ".join(["word"] * 100)  # 499 septets, no sentence end
    parts = fit_to_budget([text], 1)
    assert all(segments(part) == 1 for part in parts)
    assert " ".join(parts) == text
    assert all(not part.startswith(" ") and not part.endswith(" ") for part in parts)


def test_a_word_too_long_for_the_budget_is_cut_as_a_last_resort() -> None:
    assert fit_to_budget(["x" * 400], 1) == ["x" * 160, "x" * 160, "x" * 80]


def test_a_hard_split_never_separates_a_skin_tone_or_halves_a_flag() -> None:
    thumbs = "\U0001f44d\U0001f3fd"  # 👍🏽: four UTF-16 units
    flag = "\U0001f1ea\U0001f1f8"  # 🇪🇸
    for cluster in (thumbs, flag):
        parts = fit_to_budget([cluster * 40], 1)
        assert "".join(parts) == cluster * 40
        assert all(part == cluster * (len(part) // 2) for part in parts)


def test_each_split_message_gets_its_own_gsm_substitution() -> None:
    first = " ".join(["We" + CURLY + "ll call you."] * 10)  # 159 characters
    last = "Thanks" + CURLY + " " + EMOJI  # keeps this message, and only this one, in UCS-2
    parts = fit_to_budget([first + "\n" + last], 2)
    assert parts == [to_gsm(first), last]


def test_a_budget_below_one_segment_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        fit_to_budget(["Hi"], 0)


# --- properties --------------------------------------------------------------------------

GSM_CHARS = st.sampled_from(GSM_BASIC + GSM_EXTENSION)
# Everything that matters to the encoding: GSM letters and extension characters, letters
# outside GSM, typography to_gsm replaces (including the three-septet ellipsis), emoji,
# flags, skin tones, invisible characters and all sorts of spaces.
MIXED = st.sampled_from(
    [
        *"aZ9 .,!?€{^\nñé¿áóúç",
        *["\u2019", "\u201c", "\u2014", "\u2026", "\u00a0", "\t", "\u200b", "\u2028", "\u00ab", "\u2022"],
        *[EMOJI, "\U0001f1ea", "\U0001f1f8", "\U0001f3fd", "\u200d", "\ufe0f", "\u0301"],
    ]
)
SEPARATORS = st.sampled_from(
    [" ", "  ", "\n", ". ", "! ", "? ", ".\n", ", ", " \u2014 ", "\u2026 ", ".\u00a0"]
)


def sentences(word_size: int, min_word: int = 1, min_words: int = 10) -> st.SearchStrategy[str]:
    """Texts of words and separators, long enough to need splitting at small budgets."""
    words = st.text(MIXED.filter(lambda c: not c.isspace()), min_size=min_word, max_size=word_size)
    return st.lists(st.tuples(words, SEPARATORS), min_size=min_words, max_size=150).map(
        lambda pairs: "".join(word + separator for word, separator in pairs)
    )


def folded(text: str) -> str:
    """``text`` as fit_to_budget may send it: GSM-substituted, whitespace normalised."""
    return " ".join(to_gsm(text).split())


@given(st.text(MIXED), st.text(GSM_CHARS, min_size=1))
def test_appending_gsm_characters_never_reduces_the_segments(text: str, suffix: str) -> None:
    assert segments(text + suffix) >= segments(text)


@given(st.text(MIXED, max_size=400))
def test_prefer_gsm_never_increases_the_segments(text: str) -> None:
    preferred = prefer_gsm(text)
    assert segments(preferred) <= segments(text)
    assert preferred == text or encoding(preferred) == "GSM-7"


@settings(max_examples=200, deadline=None)
@given(sentences(word_size=20), st.integers(min_value=1, max_value=4))
def test_split_messages_say_the_whole_text_in_order_within_budget(text: str, budget: int) -> None:
    # Words of at most 20 characters always fit one segment, so no word is ever cut and
    # the parts joined with a space are the text, up to whitespace and GSM substitution.
    parts = fit_to_budget([text], budget)
    assert all(segments(part) <= budget for part in parts)
    assert folded(" ".join(parts)) == folded(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(sentences(word_size=400), st.text()), max_size=3),
    st.integers(min_value=1, max_value=3),
)
def test_no_character_is_lost_or_reordered_even_when_words_are_cut(parts: list[str], budget: int) -> None:
    sent = fit_to_budget(parts, budget)
    assert all(segments(message) <= budget for message in sent)
    assert "".join(folded("".join(sent)).split()) == "".join(folded("".join(parts)).split())
