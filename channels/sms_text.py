"""Rendering bot replies as SMS: encodings, segments, plain text and numbered choices.

Pure functions, no I/O. An SMS is billed per segment, and the encoding decides how much
fits in one: GSM-7 (the GSM 03.38 default alphabet and its extension table) holds 160
septets in a single message and 153 per segment of a multipart one, UCS-2 holds 70 UTF-16
code units alone and 67 per segment. A single character outside GSM-7 (an emoji, "á",
a curly quote) turns the whole message into UCS-2, so typography is worth replacing when
that saves the message from UCS-2, and only then.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet, in table order (0x00-0x7F; 0x1B is the escape to the
# extension table, not a character). Note what is *not* here: á í ó ú ç ` and the
# lower-case Greek letters.
_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"  # 0x1B (escape) left out
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# The extension table: each is sent as escape + character, two septets.
_GSM_EXTENSION = "\f^{}\\[~]|€"

# The same tables as C-speed searches: messages are measured many times while splitting.
_NOT_GSM = re.compile("[^" + re.escape(_GSM_BASIC + _GSM_EXTENSION) + "]")
_DOUBLE = {
    "GSM-7": re.compile("[" + re.escape(_GSM_EXTENSION) + "]"),
    "UCS-2": re.compile("[\U00010000-\U0010ffff]"),  # outside the BMP: a surrogate pair
}

_SINGLE = {"GSM-7": 160, "UCS-2": 70}
# A multipart segment loses room to the user data header that numbers the parts.
_MULTIPART = {"GSM-7": 153, "UCS-2": 67}

# Typography with a GSM-7 equivalent. Every key is outside GSM-7 and every value inside
# it, so to_gsm is idempotent and works character by character.
_SUBSTITUTES: dict[str, str] = {
    # Curly and low single quotes, prime, single guillemets, acute accent, backtick.
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2039\u203a\u00b4`", "'"),
    # Double quotes and primes: “ ” „ ‟ ″, and the guillemets « » Spanish quotes with.
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
    # Hyphen, non-breaking hyphen, figure dash, en dash, em dash, horizontal bar, minus.
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
    # Bullets (round, triangular, white, hyphen, operator, square): "- item" as plain() writes.
    **dict.fromkeys("\u2022\u2023\u25e6\u2043\u2219\u25aa", "-"),
    "\u2026": "...",  # …
    # Tab and Unicode spaces, including the no-break spaces French and Spanish typography uses.
    **dict.fromkeys("\t\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a", " "),
    **dict.fromkeys("\u202f\u205f\u3000", " "),
    **dict.fromkeys("\u2028\u2029", "\n"),  # line and paragraph separators
    # Invisible characters: nothing to show, yet each alone would force UCS-2.
    **dict.fromkeys("\u00ad\u200b\u2060\ufeff", ""),
}

_TO_GSM = str.maketrans(_SUBSTITUTES)


@dataclass(frozen=True)
class SegmentInfo:
    """How ``text`` travels: its encoding, its segment count and its size in ``units``.

    ``units`` are septets for GSM-7 (an extension character is two) and UTF-16 code
    units for UCS-2 (a character outside the BMP, like most emoji, is two).
    """

    encoding: Encoding
    segments: int
    units: int


def encoding(text: str) -> Encoding:
    """GSM-7 when every character is in the GSM 03.38 alphabet or its extension, else UCS-2."""
    return "UCS-2" if _NOT_GSM.search(text) else "GSM-7"


def analyse(text: str) -> SegmentInfo:
    """The encoding, segment count and size of ``text`` as one SMS.

    The empty text counts as one segment: a message is at least one segment, whatever it
    holds. In a multipart message a character is never split between two segments (an
    escape and its extension character, or the two halves of a surrogate pair, travel
    together), so segments are counted by packing characters, not by dividing the total.
    """
    enc = encoding(text)
    double = _DOUBLE[enc]
    doubles = len(double.findall(text))
    units = len(text) + doubles
    room = _MULTIPART[enc]
    if units <= _SINGLE[enc]:
        count = 1
    elif not doubles:
        count = -(-units // room)
    else:
        count, used = 1, 0
        for ch in text:
            size = 2 if double.match(ch) else 1
            if used + size > room:
                count, used = count + 1, 0
            used += size
    return SegmentInfo(encoding=enc, segments=count, units=units)


def segments(text: str) -> int:
    """How many SMS segments ``text`` takes (the empty text takes one)."""
    return analyse(text).segments


def to_gsm(text: str) -> str:
    """``text`` with typographic characters replaced by their GSM-7 equivalents.

    Quotes, dashes, the ellipsis, bullets and Unicode spaces only: letters are never
    changed (transliterating "á" to "a" would change Spanish words), so the result may
    still need UCS-2.
    """
    return text.translate(_TO_GSM)


def prefer_gsm(text: str) -> str:
    """``to_gsm(text)`` when that makes the message GSM-7 at no more segments, else ``text``.

    When an emoji or a letter like "á" keeps the message in UCS-2 anyway, substituting
    saves nothing, so the original typography stays. The segment check matters for texts
    full of ellipses: "…" is one UCS-2 unit but three septets.
    """
    if encoding(text) == "GSM-7":
        return text
    candidate = to_gsm(text)
    if encoding(candidate) == "GSM-7" and segments(candidate) <= segments(text):
        return candidate
    return text


# ---------------------------------------------------------------------------------------
# Plain text


_LINK = re.compile(r"\[([^\]\n]*)\]\(\s*([^)\s]+)\s*\)")
# An address ends before trailing punctuation or Markdown markers: "see https://x.example."
_URL = re.compile(r"(?:https?://|www\.)[^\s<>]*[^\s<>.,;:!?*_'\")\]]")
# URLs are hidden behind these while emphasis is removed (private-use characters).
_HIDE_OPEN, _HIDE_CLOSE = "\ue000", "\ue001"
_HIDDEN = re.compile(f"{_HIDE_OPEN}([0-9]+){_HIDE_CLOSE}")
_HEADING = re.compile(r"^([ \t]*)#{1,6}[ \t]+", re.MULTILINE)
_BULLET = re.compile(r"^([ \t]*)[*+][ \t]+", re.MULTILINE)
# Emphasis needs a non-space just inside its markers, so "5 * 3 * 2" stays arithmetic;
# underscores also need a non-word character outside, so snake_case_names stay intact.
_EMPHASIS = (
    re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"),
    re.compile(r"(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)"),
    re.compile(r"\*(?=\S)(.+?)(?<=\S)\*"),
    re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"),
    re.compile(r"`([^`\n]+)`"),
)


def _link(match: re.Match[str]) -> str:
    title, url = match.group(1).strip(), match.group(2)
    # "[https://x.example](https://x.example)" says the address once.
    return url if not title or title == url else f"{title}: {url}"


def plain(text: str) -> str:
    """``text`` with the simple Markdown a dialogue may write turned into plain SMS text.

    ``**bold**``, ``__bold__``, ``*em*``, ``_em_`` and ```code``` lose their markers,
    ``[title](url)`` becomes "title: url", "# heading" loses its hashes, and bullets
    ("- ", "* ", "+ ") are all written "- ". Web addresses are left exactly as they are.
    """
    text = _LINK.sub(_link, text)
    text = _HEADING.sub(r"\1", text)
    text = _BULLET.sub(r"\1- ", text)
    # An underscore or asterisk inside a web address is part of it: hide the addresses
    # while emphasis is removed (emphasis may span one: "**pay at https://x.example**").
    urls: list[str] = []

    def hide(match: re.Match[str]) -> str:
        urls.append(match.group(0))
        return f"{_HIDE_OPEN}{len(urls) - 1}{_HIDE_CLOSE}"

    # (A text that already holds the markers, which no dialogue writes, is left unhidden.)
    hiding = _HIDE_OPEN not in text and _HIDE_CLOSE not in text
    if hiding:
        text = _URL.sub(hide, text)
    for pattern in _EMPHASIS:
        text = pattern.sub(r"\1", text)
    return _HIDDEN.sub(lambda match: urls[int(match.group(1))], text) if hiding else text


# ---------------------------------------------------------------------------------------
# Numbered choices

_CHOICE_PROMPT = {"en": "Reply with a number.", "es": "Responda con un número."}

# What may surround the number: "#2", "2.", "2)", the keycap "2️⃣". NFKC has already
# turned full-width and circled digits into ASCII ones.
_CHOICE = re.compile(r"#?\s*(\d{1,3})\s*(?:\ufe0f?\u20e3)?\s*[.)]?")
_KEYCAP_TEN = "\U0001f51f"


def render_choices(text: str, titles: Sequence[str], language: str) -> str:
    """``text`` followed by the ``titles`` as numbered lines and a prompt to reply with one.

    "Shall I set that up?\\n1 Yes\\n2 No\\nReply with a number." The prompt is Spanish for
    ``language`` "es" (or "es-MX" and the like) and English otherwise. Plain text, ready
    for SMS; without titles ``text`` comes back unchanged.
    """
    if not titles:
        return text
    base = language.split("-")[0].split("_")[0].lower()
    # A title is one line: a newline inside it would look like another option.
    lines = [f"{number} {' '.join(title.split())}" for number, title in enumerate(titles, start=1)]
    lines.append(_CHOICE_PROMPT.get(base, _CHOICE_PROMPT["en"]))
    head = text.rstrip()
    return "\n".join([head, *lines] if head else lines)


def choice_from_reply(reply: str, count: int) -> int | None:
    """The 0-based index chosen when ``reply`` is just a number from 1 to ``count``, else ``None``.

    Spaces, "#1", "1.", "1)", a full-width or circled 1 and the keycap "1️⃣" all choose the first
    option; "10 pounds", "2 weeks" or "1 2" are words, not a choice.
    """
    if count < 1 or len(reply) > 40:
        return None
    folded = unicodedata.normalize("NFKC", reply).strip().replace(_KEYCAP_TEN, "10")
    match = _CHOICE.fullmatch(folded)
    if match is None:
        return None
    number = int(match.group(1))
    return number - 1 if 1 <= number <= count else None


# ---------------------------------------------------------------------------------------
# Segment budget

# Where a long message may be split, and how bad each place is. The number of messages
# comes first; among the splits into as few messages, the one with the least total weight
# wins: paragraph breaks, then line breaks, then sentence ends, then spaces between words.
# A word is cut only when it alone is over the budget.
_PARAGRAPH, _LINE, _SENTENCE, _WORD, _CUT = 0, 1, 2, 10, 1000

_GAP = re.compile(r"\s+")
# A sentence ends in . ! ? or an ellipsis, perhaps followed by a closing quote or bracket.
_SENTENCE_END = re.compile("[.!?\u2026][\"'\u201d\u2019\u00bb)\\]]?\\Z")

_ZWJ = "\u200d"


def _cost(text: str) -> int:
    """Segments ``text`` will take once sent, that is after prefer_gsm."""
    return segments(prefer_gsm(text))


def _gap_weight(text: str, start: int, end: int) -> int:
    """How bad a split at the whitespace ``text[start:end]`` is."""
    newlines = text.count("\n", start, end)
    if newlines:
        return _PARAGRAPH if newlines > 1 else _LINE
    if _SENTENCE_END.search(text, max(0, start - 2), start):
        return _SENTENCE
    return _WORD


def _breakable(text: str, index: int) -> bool:
    """Whether a cut before ``text[index]`` keeps every character whole.

    Combining accents, variation selectors, skin tones, keycaps and the parts of a
    zero-width-joined emoji or of a flag stay with the character before them.
    """
    ch, before = text[index], text[index - 1]
    if unicodedata.category(ch) in ("Mn", "Me", "Mc"):
        return False
    if ch == _ZWJ or before == _ZWJ:
        return False
    code = ord(ch)
    if 0xFE00 <= code <= 0xFE0F or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:
        return False
    if 0x1F1E6 <= code <= 0x1F1FF:  # regional indicators pair up into flags
        run = 0
        while index - run - 1 >= 0 and 0x1F1E6 <= ord(text[index - run - 1]) <= 0x1F1FF:
            run += 1
        return run % 2 == 0
    return True


def _longest_fit(
    text: str, start: int, ends: Sequence[int], budget: int, cost: Callable[[str], int] = _cost
) -> int:
    """How many of ``ends`` (ascending) make a ``text[start:end]`` within ``budget``.

    A text never costs less for growing, so the ends that fit are a prefix of ``ends``:
    gallop to an end that does not fit, then search between, so that the texts measured
    stay near the length of a message however long ``text`` is.
    """
    low, step = 0, 1  # the first ``low`` ends are known to fit
    high = len(ends)  # and the ends from ``high`` on not to
    while low + step <= high:
        if cost(text[start : ends[low + step - 1]]) > budget:
            high = low + step - 1
            break
        low += step
        step *= 2
    while low < high:
        middle = (low + high + 1) // 2
        if cost(text[start : ends[middle - 1]]) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def _cut_word(word: str, budget: int, cost: Callable[[str], int] = _cost) -> list[int]:
    """Where to cut a ``word`` too long for one message: the longest pieces that fit."""
    cuts: list[int] = []
    start = 0
    while True:
        length = _longest_fit(word, start, range(start + 1, len(word) + 1), budget, cost)
        if start + length == len(word):
            return cuts
        cut = start + length
        # Back off to a place that keeps characters whole, unless the piece has none.
        while cut > start and not _breakable(word, cut):
            cut -= 1
        if cut == start:
            cut = start + max(length, 1)
        cuts.append(cut)
        start = cut


def split_text(text: str, budget: int, cost: Callable[[str], int] = _cost) -> list[str]:
    """``text`` (stripped, over ``budget``) as the fewest messages within it, split at the best places.

    ``cost`` measures a message: SMS segments by default; ``len`` for a character limit.
    """
    # Places to split: (where the next message resumes, where this one stops, weight),
    # from the start of the text to its end.
    places: list[tuple[int, int, int]] = [(0, 0, 0)]
    word_start = 0
    for gap in [*_GAP.finditer(text), None]:
        word_end = gap.start() if gap else len(text)
        if cost(text[word_start:word_end]) > budget:
            word = text[word_start:word_end]
            places.extend((word_start + cut, word_start + cut, _CUT) for cut in _cut_word(word, budget, cost))
        if gap:
            places.append((gap.end(), gap.start(), _gap_weight(text, gap.start(), gap.end())))
            word_start = gap.end()
    places.append((len(text), len(text), 0))

    # From the end back: the best (messages, weight) for the text from each place on, and
    # where its first message stops. Every single word or piece fits, so a next place
    # always does; ties go to the farthest, which fills the earlier messages.
    last = len(places) - 1
    best: list[tuple[int, int]] = [(0, 0)] * len(places)
    stop = [last] * len(places)
    for here in range(last - 1, -1, -1):
        resume = places[here][0]
        reach = here + _longest_fit(text, resume, [place[1] for place in places[here + 1 :]], budget, cost)
        options = range(max(reach, here + 1), here, -1)
        stop[here] = min(options, key=lambda there: (best[there][0] + 1, best[there][1] + places[there][2]))
        there = stop[here]
        best[here] = (best[there][0] + 1, best[there][1] + places[there][2])

    messages: list[str] = []
    here = 0
    while here < last:
        there = stop[here]
        messages.append(text[places[here][0] : places[there][1]])
        here = there
    return messages


def fit_to_budget(parts: Sequence[str], budget: int) -> list[str]:
    """The messages to send for ``parts``, each at most ``budget`` segments, after prefer_gsm.

    A part within budget is sent as it is. A longer one becomes as few messages as fit,
    in order, split where it reads best: at a paragraph or line break, else a sentence
    end, else between words; a word is cut (never inside a character) only when it alone
    is over the budget. The whitespace at each split is dropped and nothing else is. Each
    message gets its own prefer_gsm, so an emoji costs UCS-2 only to the message it is in.
    Short parts are deliberately not joined: the dialogue's message boundaries are kept.
    """
    if budget < 1:
        raise ValueError(f"a segment budget is at least 1, not {budget}")
    messages: list[str] = []
    for part in parts:
        if _cost(part) <= budget:
            messages.append(prefer_gsm(part))
            continue
        # A message of nothing but invisible characters would be an empty SMS: left out.
        messages.extend(sent for chunk in split_text(part.strip(), budget) if (sent := prefer_gsm(chunk)))
    return messages
