"""Cleaning what providers send: strings safe to store, JSON read with bounded depth."""

from __future__ import annotations

import contextlib
import json
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from channels.cleaning import (
    MAX_JSON_DEPTH,
    REPLACEMENT,
    UnsafeJson,
    clean_line,
    clean_payload,
    clean_text,
    json_too_deep,
    loads_json,
)

#: What must never be stored: a lone surrogate, or a control character but tab and line feed.
UNSTORABLE = re.compile("[\ud800-\udfff\x00-\x08\x0b-\x1f\x7f-\x9f]")

HOSTILE_CHARS = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),  # lone surrogates
    st.characters(categories=["Cc", "Cf", "Zl", "Zp"]),  # controls, format, line separators
)


def test_a_lone_surrogate_becomes_the_replacement_character() -> None:
    assert clean_text("Ana L\udcc3pez") == f"Ana L{REPLACEMENT}pez"
    assert clean_text("\ud800") == REPLACEMENT


def test_control_characters_are_removed_but_tab_and_line_feed_kept() -> None:
    assert clean_text("a\x00b\x1b[31mc\x7fd\x85e\tf\ng") == "ab[31mcde\tf\ng"


def test_carriage_returns_become_line_feeds() -> None:
    assert clean_text("one\r\ntwo\rthree") == "one\ntwo\nthree"


def test_a_one_line_value_has_no_line_breaks_or_tabs() -> None:
    assert clean_line("SM1\r\nFAKE\tLINE\u2028x") == "SM1 FAKE LINE x"


def test_ordinary_text_is_left_alone() -> None:
    text = "¿Puedo pagar 50 € el viernes? 👍🏽 ok"
    assert clean_text(text) is text and clean_line(text) is text


def test_every_string_of_a_payload_is_cleaned_keys_included() -> None:
    payload = {"te\x00xt": ["a\ud800", {"b": "c\x1b"}], "n": 10**20, "f": 1.5, "t": True, "z": None}
    assert clean_payload(payload) == {
        "text": [f"a{REPLACEMENT}", {"b": "c"}],
        "n": 10**20,
        "f": 1.5,
        "t": True,
        "z": None,
    }


@given(st.text(HOSTILE_CHARS, max_size=200))
@settings(max_examples=300, deadline=None)
def test_cleaned_text_can_always_be_stored_as_utf8(text: str) -> None:
    for cleaned in (clean_text(text), clean_line(text)):
        assert not UNSTORABLE.search(cleaned)
        cleaned.encode("utf-8")  # what Redis does; raises on a lone surrogate
    assert not re.search("[\n\t\u2028\u2029\u0085]", clean_line(text))


def test_json_deeper_than_the_limit_is_refused_before_parsing() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(UnsafeJson, match="nested"):
        loads_json(deep)
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert loads_json(at_limit) is not None


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"text": "[[[[{{{{" * 100 + '\\"]]]'})
    assert not json_too_deep(text)
    assert loads_json(text)["text"].startswith("[[[[")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"\xff\xfe{}", "UTF-8"),
        (b"{not json", "not valid JSON"),
        (b'{"date": NaN}', "NaN"),
        (b'{"date": Infinity}', "Infinity"),
        (b'{"date": 1e999}', "out of range"),
        (b'{"date": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_what_is_not_plain_json_is_refused_with_a_reason(body: bytes, fragment: str) -> None:
    with pytest.raises(UnsafeJson, match=fragment):
        loads_json(body)


def test_huge_integers_within_the_conversion_limit_are_read() -> None:
    assert loads_json(b'{"date": 100000000000000000000}') == {"date": 10**20}


@given(
    st.binary(max_size=300)
    | st.text(HOSTILE_CHARS, max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
@example(b"[" * 5000)
@example(b'{"a": ' * 2000)
@example(b'"\\ud800"')
@settings(max_examples=300, deadline=None)
def test_loads_json_only_ever_raises_unsafe_json(body: bytes) -> None:
    with contextlib.suppress(UnsafeJson):
        loads_json(body)
