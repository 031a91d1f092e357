"""The SMS keywords carriers and regulators expect: STOP, START, HELP, in English and Spanish.

A keyword counts only when it is the whole text, in any case, with spaces, punctuation and
accents around it ignored ("Stop.", " STOP ", "sí"). "Stop texting me" is not a keyword: it
is words, and the dialogue understands them.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass


class KeywordKind(str, enum.Enum):
    STOP = "stop"
    START = "start"
    HELP = "help"


@dataclass(frozen=True)
class KeywordSet:
    """The configured words for each kind; ``spanish`` are the ones answered in Spanish."""

    stop: frozenset[str]
    start: frozenset[str]
    help: frozenset[str]
    spanish: frozenset[str] = frozenset()


@dataclass(frozen=True)
class KeywordMatch:
    kind: KeywordKind
    word: str
    #: "es" for a Spanish keyword, ``None`` when the word does not tell the language.
    language: str | None


def normalise(text: str) -> str:
    """Upper case, accents removed, everything but letters stripped from both ends."""
    folded = "".join(
        c for c in unicodedata.normalize("NFKD", text) if unicodedata.category(c) != "Mn"
    ).upper()
    start, end = 0, len(folded)
    while start < end and not folded[start].isalpha():
        start += 1
    while end > start and not folded[end - 1].isalpha():
        end -= 1
    return folded[start:end]


def match_keyword(text: str, keywords: KeywordSet) -> KeywordMatch | None:
    """The keyword ``text`` is, or ``None`` when it is anything else."""
    if len(text) > 40:  # a keyword is one short word; do not fold whole essays
        return None
    word = normalise(text)
    if not word or not word.isalpha():
        return None
    language = "es" if word in keywords.spanish else None
    for kind, words in (
        (KeywordKind.STOP, keywords.stop),
        (KeywordKind.START, keywords.start),
        (KeywordKind.HELP, keywords.help),
    ):
        if word in words:
            return KeywordMatch(kind=kind, word=word, language=language)
    return None
