"""Opt-out in words: only a clear request to stop contact silences someone; "stop the fees",
"cancelar la domiciliación" and the like are about something else, and unclear words are asked."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialogue.opt_out import CONFIDENT, TARGETS, OptOutDecision, Reading, decide, read_opt_out

CLEAR_EN = [
    "please stop texting me",
    "Stop texting me!!!",
    "STOP CONTACTING ME",
    "stop msging me pls",
    "leave me alone",
    "just leave me alone",
    "take me off your list",
    "take my number off your list",
    "remove me",
    "remove my number from your system",
    "unsubscribe me",
    "i want to unsuscribe",
    "opt me out",
    "do not contact me again",
    "don't text me anymore",
    "never message me again",
    "no more texts please",
    "i don't want any more messages from you",
    "I no longer wish to be contacted.",
    "I am asking you to cease all communication with me.",
    "stop calling and texting me",
    "stop calling me and texting me",
    "i want these texts to stop",
    "stop sending me this",
    "stop texting me about the fees",
    "enough, stop writing to me",
    "cut it out and stop contacting me",
    "stop it with the texts already",
    "i'm sick of these messages, stop",
    "lose my number",
    "go away",
]
CLEAR_ES = [
    "no me escriban más",
    "no me escriban mas",
    "NO ME ESCRIBAN MÁS!!",
    "dejen de llamarme y escribirme",
    "quiero darme de baja de estos mensajes",
    "darme de baja por favor",
    "ya no me manden mensajes",
    "déjenme en paz",
    "dejenme en paz",
    "déjenme de escribir",
    "quítenme de su lista",
    "bórrenme",
    "eliminen mi número de su base de datos",
    "no quiero recibir más mensajes",
    "no quiero recibir nada",
    "ya no quiero mensajes de ustedes",
    "no me llamen ni me escriban",
    "ya basta de mensajes",
    "paren de mandarme mensajes",
    "dejen de acosarme",
    "Les solicito que cesen toda comunicación conmigo.",
    "desuscríbanme por favor",
    "no me vuelvan a contactar",
    "ya no me escrivan",
    "kiero darme de baja",
]
ELSEWHERE_EN = [
    ("can you stop the late fees", "fees"),
    ("please stop adding interest", "interest"),
    ("stop charging me", "fees"),
    ("stop charging me interest", "interest"),
    ("remove the late fee", "fees"),
    ("i want the fees to stop", "fees"),
    ("cancel my direct debit", "direct_debit"),
    ("please stop taking money from my account", "direct_debit"),
    ("stop the autopay", "direct_debit"),
    ("stop the payments for now", "plan"),
    ("cancel the plan", "plan"),
    ("take me off the payment plan", "plan"),
    ("cancel the plan and confirm in writing", "plan"),
    ("stop sending me paper letters", "letters"),
    ("stop sending me letters, email is fine", "letters"),
    ("i need to stop getting into more debt", "debt"),
    ("stop calling me", "calls"),
    ("don't call me", "calls"),
    ("stop texting me before 9am", "hours"),
    ("please don't message me while i'm at work", "hours"),
    ("i want to opt out of the direct debit", "direct_debit"),
]
ELSEWHERE_ES = [
    ("para los intereses", "interest"),
    ("quiten los recargos", "fees"),
    ("dejar de cobrarme intereses", "interest"),
    ("dejen de cobrarme", "fees"),
    ("cancelar la domiciliación", "direct_debit"),
    ("paren el cargo automático", "direct_debit"),
    ("suspendan los pagos por ahora", "plan"),
    ("cancelen el convenio", "plan"),
    ("no me manden cartas", "letters"),
    ("cómo dejo de endeudarme", "debt"),
    ("pare de llamarme", "calls"),
    ("no me escriban cuando estoy trabajando", "hours"),
    ("no me manden mensajes en la mañana", "hours"),
    ("quítenme los intereses", "interest"),
]
UNSURE = [
    "stop",
    "STOP",
    "stop it",
    "please stop",
    "stop stop stop",
    "enough",
    "knock it off",
    "you're killing me, stop",
    "basta",
    "BASTA YA",
    "alto",
    "para ya",
    "paren ya",
    "baja",
]
NONE = [
    "hi, how much do i owe?",
    "i don't want to be alive anymore",
    "me quiero morir",
    "quiero quitarme la vida",
    "this debt is killing me",
    "me muero de la vergüenza",
    "can you take the payment from [card number removed] now?",
    "here is my card , take 50",
    "i can't stop crying",
    "no puedo parar de llorar",
    "no puedo dejar de pensar en esta deuda",
    "i quit my job",
    "my universal credit got stopped",
    "i cancelled that contract years ago",
    "estoy de baja por depresión",
    "me dieron de baja del trabajo",
    "quiero un plan para pagar",
    "para pagar necesito el enlace",
    "el interés es muy alto",
    "no me basta el dinero",
    "déjame pensarlo",
    "i just want this debt to go away",
    "take 50 off the balance",
    "i can pay at the end of the month",
    "no dejen de escribirme",
    "don't stop sending me reminders",
    "",
    "👍",
]


@pytest.mark.parametrize("text", CLEAR_EN + CLEAR_ES)
def test_a_clear_request_to_stop_contact_reads_clear(text: str) -> None:
    assert read_opt_out(text).reading is Reading.CLEAR


@pytest.mark.parametrize(("text", "target"), ELSEWHERE_EN + ELSEWHERE_ES)
def test_stop_words_aimed_at_something_else_name_what_should_stop(text: str, target: str) -> None:
    reading = read_opt_out(text)
    assert reading.reading is Reading.ELSEWHERE
    assert reading.target == target


@pytest.mark.parametrize("text", UNSURE)
def test_stop_words_that_name_nothing_are_unsure(text: str) -> None:
    assert read_opt_out(text).reading is Reading.UNSURE


@pytest.mark.parametrize("text", NONE)
def test_messages_without_a_request_to_stop_anything_read_none(text: str) -> None:
    assert read_opt_out(text).reading is Reading.NONE


def test_only_a_reading_elsewhere_carries_a_target_and_every_target_is_a_known_name() -> None:
    for text in CLEAR_EN + CLEAR_ES + UNSURE + NONE:
        assert read_opt_out(text).target is None
    for text, _ in ELSEWHERE_EN + ELSEWHERE_ES:
        assert read_opt_out(text).target in TARGETS


@pytest.mark.parametrize("text", ["please stop texting me", "no me escriban más"])
def test_a_confident_opt_out_that_reads_clear_opts_out(text: str) -> None:
    assert decide(text, "opt_out", 0.97) is OptOutDecision.OPT_OUT
    assert decide(text, "opt_out", CONFIDENT) is OptOutDecision.OPT_OUT


@pytest.mark.parametrize("text", ["please stop texting me", "no me escriban más"])
def test_a_clear_opt_out_below_the_confidence_floor_is_asked(text: str) -> None:
    assert decide(text, "opt_out", CONFIDENT - 0.01) is OptOutDecision.ASK


@pytest.mark.parametrize(
    "text",
    [
        "can you stop the late fees",
        "quiten los recargos",
        "stop",
        "basta",
        "me quiero morir",
        "stop calling me",
    ],
)
def test_the_classifier_saying_opt_out_without_clear_words_is_asked(text: str) -> None:
    assert decide(text, "opt_out", 0.99) is OptOutDecision.ASK


@pytest.mark.parametrize("intent", ["hardship", "crisis", "wrong_person", "nlu_fallback", None])
def test_any_other_intent_is_never_an_opt_out(intent: str | None) -> None:
    assert decide("please stop texting me", intent, 0.99) is OptOutDecision.NOT_OPT_OUT
    assert decide("cancelar la domiciliación", intent, 0.99) is OptOutDecision.NOT_OPT_OUT


def test_the_threshold_can_be_given() -> None:
    assert decide("stop texting me", "opt_out", 0.6, threshold=0.7) is OptOutDecision.ASK
    assert decide("stop texting me", "opt_out", 0.6, threshold=0.5) is OptOutDecision.OPT_OUT


def test_the_confidence_floor_sits_above_the_nlu_fallback_and_below_certainty() -> None:
    assert 0.15 < CONFIDENT < 1.0


# --- casing, accents and punctuation do not change the reading -----------------------------
_SENTENCES = CLEAR_EN + CLEAR_ES + [t for t, _ in ELSEWHERE_EN + ELSEWHERE_ES] + UNSURE + NONE
_SEPARATORS = [" ", ", ", ". ", "! ", "? ", " - ", "... ", " ¡", " ¿", "!! ", "; ", " / "]


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


@st.composite
def _respelled(draw: st.DrawFn) -> tuple[str, str]:
    """A sentence from the tables, and the same words cased, accented and punctuated otherwise."""
    sentence = draw(st.sampled_from(_SENTENCES))
    words = sentence.replace(",", " ").replace(".", " ").replace("!", " ").replace("?", " ").split()
    text = words[0] if words else ""
    for word in words[1:]:
        text += draw(st.sampled_from(_SEPARATORS)) + word
    text = draw(st.sampled_from(["", "¡", "¿", "...", '"', "("])) + text
    text += draw(st.sampled_from(["", "!", "?", ".", "!!!", "?!", ")", " :(", " 😡"]))
    if draw(st.booleans()):
        text = _strip_accents(text)
    if draw(st.booleans()):
        text = text.replace("'", "").replace("\u2019", "")
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    text = "".join(c.upper() if flip else c.lower() for c, flip in zip(text, flips, strict=True))
    return sentence, text


@given(_respelled())
def test_casing_accents_and_punctuation_do_not_change_the_reading(pair: tuple[str, str]) -> None:
    sentence, respelled = pair
    assert read_opt_out(respelled) == read_opt_out(sentence)


@given(st.text(max_size=200))
def test_any_text_gets_a_reading(text: str) -> None:
    reading = read_opt_out(text)
    assert reading.reading in Reading
    assert (reading.target is not None) == (reading.reading is Reading.ELSEWHERE)
