"""Which language a message is written in (English or Spanish), from its words alone.

Replies follow the account's language, unless a message is clearly in the other one: then
the conversation follows the person. Short or mixed messages ("ok", "4821", "no") decide
nothing. A word list is enough for two languages this far apart, and it never downloads a
model or guesses on a single word shared by both.
"""

from __future__ import annotations

import re
import unicodedata


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SPANISH = _words(
    """
    hola gracias quiero puedo pagar cuanto cuánto debo deuda mañana favor que qué de la el
    los las es está estoy esta este eso una y con para mi usted buenos buenas días dias
    tardes noches bien mal muy ya pero también cuando cuándo dónde donde cómo como porque
    tengo tiene hablar español espanol sí soy por al del se lo le nos su sus hay señor
    señora aquí aqui ahora ayuda necesito plata dinero
    """
)
_ENGLISH = _words(
    """
    the i you is are my to and can do what how please thanks thank hi hello yes it this that
    not good bad want have will would who why when where much owe pay paid your we they with
    for of im i'm dont don't cant can't doing fine well help call text email stop english
    """
)
_SPANISH_MARKS = re.compile(r"[ñ¿¡]")


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


def detect_language(text: str) -> str | None:
    """``"en"``, ``"es"``, or ``None`` when the message does not say clearly."""
    words = re.findall(r"[\w'\u2019]+", text.lower())
    spanish = sum(1 for w in words if w in _SPANISH or _fold(w) in _SPANISH)
    english = sum(1 for w in words if w in _ENGLISH)
    if _SPANISH_MARKS.search(text):
        spanish += 2
    if spanish >= 2 and spanish >= 2 * english + 1:
        return "es"
    if english >= 2 and english >= 2 * spanish + 1:
        return "en"
    return None
