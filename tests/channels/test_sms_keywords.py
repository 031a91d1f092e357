"""STOP/START/HELP recognition: whole-message keywords only, any case, punctuation ignored."""

from __future__ import annotations

import pytest

from channels.sms_keywords import KeywordKind, KeywordSet, match_keyword

WORDS = KeywordSet(
    stop=frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "REVOKE", "OPTOUT", "ALTO", "PARAR",
                    "BAJA"}),
    start=frozenset({"START", "UNSTOP", "YES", "ALTA", "SI"}),
    help=frozenset({"HELP", "INFO", "AYUDA"}),
    spanish=frozenset({"ALTO", "PARAR", "BAJA", "ALTA", "SI", "AYUDA"}),
)  # fmt: skip


@pytest.mark.parametrize(
    "text",
    ["STOP", "stop", "Stop.", "  STOP  ", "stop!!", "*STOP*", "StopAll", "unsubscribe", "End", "QUIT", "cancel",
     "revoke", "OPTOUT", "\"stop\"", "stop 🙏"],
)  # fmt: skip
def test_every_stop_word_in_any_case_with_punctuation_is_stop(text: str) -> None:
    found = match_keyword(text, WORDS)
    assert found is not None and found.kind is KeywordKind.STOP


@pytest.mark.parametrize("text", ["ALTO", "alto.", "Parar", "baja"])
def test_spanish_stop_words_are_stop_in_spanish(text: str) -> None:
    found = match_keyword(text, WORDS)
    assert found is not None and found.kind is KeywordKind.STOP and found.language == "es"


@pytest.mark.parametrize(("text", "kind"), [("START", KeywordKind.START), ("unstop", KeywordKind.START),
                                            ("Sí", KeywordKind.START), ("help", KeywordKind.HELP),
                                            ("INFO?", KeywordKind.HELP), ("Ayuda", KeywordKind.HELP)])  # fmt: skip
def test_start_and_help_words(text: str, kind: KeywordKind) -> None:
    found = match_keyword(text, WORDS)
    assert found is not None and found.kind is kind


@pytest.mark.parametrize(
    "text", ["please stop texting me", "stop it", "don't stop", "stopped", "help me please", "", "   ", "4821",
             "STOP " * 20],
)  # fmt: skip
def test_words_around_a_keyword_make_it_ordinary_text(text: str) -> None:
    assert match_keyword(text, WORDS) is None


def test_an_english_keyword_does_not_decide_the_language() -> None:
    found = match_keyword("STOP", WORDS)
    assert found is not None and found.language is None
