"""Replies follow a message that is clearly in the other language; unclear ones decide nothing."""

from __future__ import annotations

import pytest

from dialogue.language import detect_language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("hola, cuánto debo?", "es"),
        ("¿podemos hablar en español?", "es"),
        ("no puedo pagar ahora mismo, me quede sin trabajo", "es"),
        ("buenas tardes, quiero pagar todo", "es"),
        ("hi, how much do I owe?", "en"),
        ("I can't pay this month, I lost my job", "en"),
        ("please stop texting me", "en"),
        ("can you email me instead", "en"),
    ],
)
def test_clear_messages_are_recognised(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize("text", ["ok", "no", "4821", "12/03/1984", "👍", "", "si ok", "hola ok thanks bye"])
def test_short_or_mixed_messages_decide_nothing(text: str) -> None:
    assert detect_language(text) is None
