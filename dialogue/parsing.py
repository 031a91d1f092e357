"""Reading what people write: amounts of money, how often they pay, dates, and when to contact them.

English and Spanish, case-insensitive, accents optional ("dolares", "despues"). Every function
answers ``None`` for text it cannot read with confidence instead of raising; the dialogue then
asks again, and reads back what it understood for the person to confirm.

Rules for the ambiguous cases (the tests pin each one):

Money
  * One separator followed by exactly three digits groups thousands ("1,250" and "1.250" are
    1250: nobody writes money with three decimals); one or two digits after it are decimals
    ("12,50", "12.5"). With both separators the last one is the decimal mark ("1.250,50").
  * "$" is US dollars unless ``default_currency`` is another dollar-sign currency (MXN, CAD,
    ...), whatever the language of the text: an account in pesos means "$50" is 50 pesos. The
    words "dollars", "dólares", "bucks" are always USD (a Mexican saying "dólares" means USD).
    "pesos" is MXN unless ``default_currency`` is another peso.
  * With several amounts, the first one attached to a currency wins, else the first plain one.
    Plain numbers that are dates, times, years, counts ("12 payments", "2 weeks"), percentages,
    phone, account or reference numbers are not money; a currency always makes a number money.
  * Spanish "un"/"una" and English "a"/"an" are a number only before hundred/thousand/mil.

Contact windows
  * An hour without am/pm or a part of the day (de la tarde, in the morning) from 1 to 7 is
    afternoon or evening (13:00-19:00): calls at 1-7 in the morning are not allowed anyway, so
    "after 6" and "después de las 6" mean 18:00. 8 to 12 are taken as written (08:00-12:00),
    13-23 as a 24-hour clock. A range whose end comes before its start moves the end to the
    afternoon ("between 6 and 9" is 18:00-21:00).
  * "Mornings" are before 12:00; "afternoons" 12:00-17:00; Spanish "tardes" 12:00-20:00;
    "evenings", "nights", "noches" after 18:00.
  * Work ("not at work", "during work hours", "after work", "fuera del horario de trabajo")
    becomes "after 17:00": a contact window cannot say "not 09:00-17:00", and reading any
    mention of work hours as a restriction is the compliant side (never call people at work).
  * A weekday with a negation near it ("not on Sundays", "los domingos no") is excluded;
    "only on Fridays" / "solo los viernes" excludes every other day; a weekday mentioned
    without either is ignored. "Not on weekends" is ``weekdays_only``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from dialogue.plans import Frequency, add_months

__all__ = [
    "Cadence",
    "ContactWindow",
    "Money",
    "parse_birth_date",
    "parse_contact_window",
    "parse_date",
    "parse_frequency",
    "parse_money",
]

#: Longer messages are cut: nobody states an amount or a date after this many characters.
_MAX_TEXT = 2000


@dataclass(frozen=True)
class Money:
    """An amount someone wrote; ``currency`` is ``None`` when neither the text nor a default says."""

    amount: Decimal
    currency: str | None


@dataclass(frozen=True)
class Cadence:
    """How often someone wants to pay, and on which weekday (Monday=0) when they said one."""

    frequency: Frequency
    weekday: int | None = None


@dataclass(frozen=True)
class ContactWindow:
    """When someone agrees to be contacted: local times and weekdays."""

    after: time | None = None
    before: time | None = None
    excluded_weekdays: frozenset[int] = field(default_factory=frozenset)
    weekdays_only: bool = False

    def allows(self, moment: datetime) -> bool:
        """Whether a (local) moment is inside the window."""
        day = moment.weekday()
        if day in self.excluded_weekdays or (self.weekdays_only and day >= 5):
            return False
        clock = moment.time().replace(tzinfo=None)
        if self.after is not None and clock < self.after:
            return False
        return self.before is None or clock < self.before

    def to_json(self) -> str:
        """The window as stored on the account (``pref:contact_window``; the compliance gate
        reads it back with ``bot.compliance.gate.window_from_json``)."""
        return json.dumps(
            {
                "after": self.after.isoformat() if self.after else None,
                "before": self.before.isoformat() if self.before else None,
                "excluded_weekdays": sorted(self.excluded_weekdays),
                "weekdays_only": self.weekdays_only,
            }
        )


def _fold(text: object) -> str | None:
    """Lower case, accents and extra spaces removed; ``None`` for what is not text."""
    if not isinstance(text, str):
        return None
    decomposed = unicodedata.normalize("NFKD", text[:_MAX_TEXT])
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    plain = plain.replace("\u2019", "'").replace("\u2013", "-").replace("\u2014", "-").lower()
    return re.sub(r"\s+", " ", plain).strip()


# --- numbers written in words --------------------------------------------------------------

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9,
    "cero": 0, "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7, "ocho": 8,
    "nueve": 9,
}  # fmt: skip
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
    "diez": 10, "once": 11, "doce": 12, "trece": 13, "catorce": 14, "quince": 15, "dieciseis": 16,
    "diecisiete": 17, "dieciocho": 18, "diecinueve": 19, "veintiuno": 21, "veintiun": 21, "veintiuna": 21,
    "veintidos": 22, "veintitres": 23, "veinticuatro": 24, "veinticinco": 25, "veintiseis": 26,
    "veintisiete": 27, "veintiocho": 28, "veintinueve": 29,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
    "veinte": 20, "treinta": 30, "cuarenta": 40, "cincuenta": 50, "sesenta": 60, "setenta": 70,
    "ochenta": 80, "noventa": 90,
}  # fmt: skip
_HUNDREDS = {
    "cien": 100, "ciento": 100, "doscientos": 200, "doscientas": 200, "trescientos": 300, "trescientas": 300,
    "cuatrocientos": 400, "cuatrocientas": 400, "quinientos": 500, "quinientas": 500, "seiscientos": 600,
    "seiscientas": 600, "setecientos": 700, "setecientas": 700, "ochocientos": 800, "ochocientas": 800,
    "novecientos": 900, "novecientas": 900,
}  # fmt: skip
_SCALES = {"thousand": 1000, "grand": 1000, "mil": 1000, "million": 10**6, "millon": 10**6, "millones": 10**6}
_ARTICLES = {"a", "an", "un", "una"}
#: What may follow each kind of number word ("twenty five", "doscientos cincuenta", ...).
_FOLLOWS: dict[str | None, frozenset[str]] = {
    None: frozenset({"unit", "teen", "tens", "hundreds", "hundred"}),
    "unit": frozenset({"hundred", "scale"}),
    "teen": frozenset({"hundred", "scale"}),
    "tens": frozenset({"unit", "scale"}),
    "hundreds": frozenset({"unit", "teen", "tens", "scale"}),
    "hundred": frozenset({"unit", "teen", "tens", "scale"}),
    "scale": frozenset({"unit", "teen", "tens", "hundreds"}),
}
#: English "once" is a frequency, not eleven, before these words ("once a month").
_NOT_ELEVEN_BEFORE = {"a", "an", "per", "every", "more", "again", "in"}


def _kind(word: str) -> tuple[str, int] | None:
    for kind, table in (("unit", _UNITS), ("teen", _TEENS), ("tens", _TENS), ("hundreds", _HUNDREDS)):
        if word in table:
            return kind, table[word]
    if word == "hundred":
        return "hundred", 100
    if word in _SCALES:
        return "scale", _SCALES[word]
    return None


@dataclass(frozen=True)
class _Token:
    text: str
    start: int
    end: int
    joined: bool  # only spaces or a hyphen between this word and the next


def _tokens(text: str) -> list[_Token]:
    found = list(re.finditer(r"[a-z]+", text))
    tokens = []
    for i, match in enumerate(found):
        nxt = found[i + 1].start() if i + 1 < len(found) else None
        joined = nxt is not None and re.fullmatch(r"[\s-]*", text[match.end() : nxt]) is not None
        tokens.append(_Token(match.group(), match.start(), match.end(), joined))
    return tokens


def _word_number(tokens: list[_Token], i: int) -> tuple[int, int] | None:
    """The number written in words from token ``i``: (value, index after its last word)."""
    total = current = 0
    last: str | None = None
    last_scale: int | None = None
    j, end = i, i

    def after(k: int) -> str | None:
        return tokens[k + 1].text if k + 1 < len(tokens) and tokens[k].joined else None

    while j < len(tokens) and (j == i or tokens[j - 1].joined):
        word = tokens[j].text
        if word in _ARTICLES:
            # "a hundred", "un millón", "treinta y un": a one only next to a multiplier or after "y".
            if (last is None and after(j) in ("hundred", "thousand", "mil", "million", "millon")) or (
                last == "y" and word in ("un", "una")
            ):
                kind, value = "unit", 1
            else:
                break
        elif word in ("and", "y") and last is not None:
            nxt = after(j)
            classified_next = _kind(nxt) if nxt else None
            nxt_kind = classified_next[0] if classified_next else None
            if word == "and" and last in ("hundred", "scale") and nxt_kind in ("unit", "teen", "tens"):
                j += 1
                continue
            if word == "y" and last == "tens" and (nxt_kind == "unit" or nxt in ("un", "una")):
                j += 1
                last = "y"
                continue
            break
        else:
            classified = _kind(word)
            if classified is None:
                break
            kind, value = classified
            if word == "once" and after(j) in _NOT_ELEVEN_BEFORE:
                break
        if last == "y":
            allowed = kind == "unit"
        elif kind == "scale" and last is None:
            allowed = word == "mil"  # "mil" alone is a thousand; "thousand" alone is not a number
        else:
            allowed = kind in _FOLLOWS[last]
        if not allowed:
            break
        if kind == "hundred":
            current = (current or 1) * 100
        elif kind == "scale":
            if last_scale is not None and value >= last_scale:
                break
            total, current, last_scale = total + (current or 1) * value, 0, value
        else:
            current += value
        last = kind
        j += 1
        end = j
    if end == i:
        return None
    return total + current, end


def _small_number(text: str) -> int | None:
    """A whole number in digits or words ("2", "two", "dos", "a"), for counts of days or hours."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if text in _ARTICLES:
        return 1
    tokens = _tokens(text)
    parsed = _word_number(tokens, 0) if tokens else None
    return parsed[0] if parsed and parsed[1] == len(tokens) else None


_NUMBER_WORDS = sorted(
    [*_UNITS, *_TEENS, *_TENS, *_HUNDREDS, "hundred", "thousand", "mil", "a", "an", "un", "una"],
    key=len,
    reverse=True,
)
#: A count in digits or (up to three) number words: "2", "two", "twenty one", "a".
_COUNT = r"(\d{1,3}|(?:(?:" + "|".join(_NUMBER_WORDS) + r")[\s-]*){1,3})"


# --- months and weekdays -------------------------------------------------------------------

_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5,
    "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
    "enero": 1, "ene": 1, "febrero": 2, "marzo": 3, "abril": 4, "abr": 4, "mayo": 5, "junio": 6, "julio": 7,
    "agosto": 8, "ago": 8, "septiembre": 9, "setiembre": 9, "set": 9, "octubre": 10, "noviembre": 11,
    "diciembre": 12, "dic": 12,
}  # fmt: skip
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAYS = {
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6,
    "lunes": 0, "martes": 1, "miercoles": 2, "jueves": 3, "viernes": 4, "sabado": 5, "domingo": 6,
}  # fmt: skip
_SHORT_WEEKDAYS = {
    "mon": 0,
    "tue": 1,
    "tues": 1,
    "wed": 2,
    "thu": 3,
    "thur": 3,
    "thurs": 3,
    "fri": 4,
    "sat": 5,
    "sun": 6,
}
#: A weekday name, full (singular or plural) in either language.
_WEEKDAY = r"\b(" + "|".join(_WEEKDAYS) + r")s?\b"
#: Also the short English forms, where a frequency or a date is expected anyway.
_ANY_WEEKDAY = r"\b(" + "|".join(sorted([*_WEEKDAYS, *_SHORT_WEEKDAYS], key=len, reverse=True)) + r")s?\b"


def _weekday(name: str) -> int:
    name = name.rstrip(".")
    return _WEEKDAYS.get(name, _SHORT_WEEKDAYS.get(name, _WEEKDAYS.get(name.rstrip("s"), 0)))


# --- money ---------------------------------------------------------------------------------

_DOLLAR_SIGN_CURRENCIES = frozenset({"USD", "MXN", "CAD", "AUD", "NZD", "ARS", "CLP", "COP", "SGD", "HKD"})
_PESO_CURRENCIES = frozenset({"MXN", "ARS", "CLP", "COP", "CUP", "DOP", "PHP", "UYU"})
_CURRENCY_NAMES = {
    "usd": "USD", "us$": "USD", "dollar": "USD", "dollars": "USD", "dolar": "USD", "dolares": "USD",
    "buck": "USD", "bucks": "USD", "dlls": "USD", "dls": "USD",
    "gbp": "GBP", "£": "GBP", "pound": "GBP", "pounds": "GBP", "quid": "GBP", "libra": "GBP", "libras": "GBP",
    "eur": "EUR", "€": "EUR", "euro": "EUR", "euros": "EUR",
    "mxn": "MXN", "mx$": "MXN",
}  # fmt: skip
_CENTS = ("cent", "cents", "centavo", "centavos", "centimo", "centimos", "pence", "penny", "pennies")
_CURRENCY_AFTER = re.compile(
    r"\s*(?:de\s+(?=[a-z]))?"  # "un millón de pesos"
    r"(us\$|mx\$|\$|£|€|usd|gbp|eur|mxn|dollars?|dolares|dolar|dlls|dls|bucks?|quid|pounds?|libras?|euros?"
    r"|pesos?|cents?|centavos?|centimos?|pence|penny|pennies)(?![a-z])"
)
_CURRENCY_BEFORE = re.compile(r"(us\$|mx\$|\$|£|€|\b(?:usd|gbp|eur|mxn))\s*$")
#: Dates, times, ordinals and phone numbers: removed before looking for amounts.
_NOT_MONEY = re.compile(
    r"\b\d{4}-\d{1,2}-\d{1,2}\b"
    r"|\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b"
    r"|\b\d{4}/\d{1,2}/\d{1,2}\b"
    r"|\b\d{1,2}/\d{1,2}\b(?!/)"
    r"|\b\d{1,2}:\d{2}(?:\s*(?:a\.?m\.?|p\.?m\.?|h|hrs)\b)?"
    r"|\b\d{1,2}\s*(?:a\.?m\.?|p\.?m\.?)(?![a-z])"
    r"|\b\d{1,2}\s*(?:hrs|hs|h)\b"
    r"|\b\d{1,2}(?:st|nd|rd|th|ro|do|er|to|vo|mo|no|o)\b"
    r"|\+\d[\d\s().-]{6,}\d"
    r"|\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b"
    r"|\b\d{3}-\d{4}\b"
)
_NUMBER = re.compile(
    r"(?<![\w.,])(\d+(?:[.,]\d+)*)(?:(k)\b|\s*(grand|mil|thousand|millones|millon|million)\b)?"
)
_UNIT_AFTER = re.compile(
    r"\s*-?\s*(?:days?|weeks?|wks?|months?|mos?|years?|yrs?|hours?|hrs?|minutes?|mins?|dias?|semanas?|mes|meses"
    r"|anos?|horas?|minutos?|quincenas?|payments?|instal+ments?|pagos?|cuotas?|plazos?|times|veces|%|percent"
    r"|por ?ciento)\b|\s*%"
)
_MONTH_AFTER = re.compile(r"\s*(?:of\s+|de\s+)?" + _MONTH + r"(?![a-z])")
_MONTH_BEFORE = re.compile(r"\b" + _MONTH + r"\s*,?\s*(?:de\s+|del\s+)?$")
_DAY_BEFORE = re.compile(r"\b(?:the|el|dia|los dias|on)\s*$")
_TIME_BEFORE = re.compile(
    r"\b(?:at|a las?|las|around|sobre las|hacia las|till|until|before|after|antes de las?|despues de las?"
    r"|desde las?|hasta las?)\s*$"
)
_YEAR_BEFORE = re.compile(r"\b(?:in|since|from|until|till|year|born|en|desde|hasta|ano)\s*$")
_ID_BEFORE = re.compile(r"(?:#|\bno\.|\bnumber|\bnumero|\bnum\.?|\bref\.?|\bid|\baccount|\bcuenta)\s*:?\s*$")
_NOT_ONE_AFTER = {"no", "any", "some", "every", "this", "that", "the", "which", "each", "someone"}


def _read_number(raw: str) -> Decimal | None:
    """Digits with thousands separators and a decimal mark, in either convention."""
    marks = [c for c in raw if c in ".,"]
    if not marks:
        return Decimal(raw)
    last = max(raw.rfind("."), raw.rfind(","))
    head, tail = raw[:last], raw[last + 1 :]
    if len(set(marks)) == 2:
        decimal_mark = raw[last]
        thousands = "," if decimal_mark == "." else "."
        if decimal_mark in head or len(tail) > 2:
            return None
        groups = head.split(thousands)
    elif len(marks) > 1:
        groups, tail = raw.split(marks[0]), ""
    elif len(tail) == 3:
        groups, tail = [head, tail], ""
    elif len(tail) <= 2:
        groups = [head]
    else:
        return None
    if not 1 <= len(groups[0]) <= (3 if len(groups) > 1 else 30) or any(len(g) != 3 for g in groups[1:]):
        return None
    return Decimal("".join(groups) + ("." + tail if tail else ""))


@dataclass(frozen=True)
class _Candidate:
    value: Decimal
    start: int
    end: int
    currency: str | None
    attached: bool  # a currency symbol, code or word is next to it
    cents: bool
    unit_end: int  # end of the currency word after it, when there is one
    plain_digits: int  # digits of a number written without separators (phone or id detection)
    single_word: str | None


def _currency_of(name: str, default: str | None) -> str | None:
    if name == "$":
        return default if default in _DOLLAR_SIGN_CURRENCIES else "USD"
    if name in ("peso", "pesos"):
        return default if default in _PESO_CURRENCIES else "MXN"
    if name in ("pence", "penny", "pennies"):
        return "GBP"
    if name in _CENTS:
        return default
    return _CURRENCY_NAMES.get(name)


def _candidate(
    text: str, value: Decimal, start: int, end: int, default: str | None, digits: int, word: str | None
) -> _Candidate:
    currency: str | None = None
    attached, cents, unit_end = False, False, end
    following = _CURRENCY_AFTER.match(text, end)
    preceding = _CURRENCY_BEFORE.search(text, 0, start)
    if following is not None:
        name = following.group(1)
        attached, cents, unit_end = True, name in _CENTS, following.end()
        currency = _currency_of(name, default)
    if preceding is not None and not cents:
        attached, currency = True, _currency_of(preceding.group(1).strip(), default)
    return _Candidate(value, start, end, currency, attached, cents, unit_end, digits, word)


def _is_not_money(text: str, c: _Candidate) -> bool:
    """Whether an amount with no currency next to it is really a date, time, count or number."""
    before, value = text[max(0, c.start - 40) : c.start], c.value
    if _UNIT_AFTER.match(text, c.end):
        return True
    if value <= 31 and (_MONTH_AFTER.match(text, c.end) or _DAY_BEFORE.search(before)):
        return True
    if _MONTH_BEFORE.search(before):
        return True
    if value <= 24 and _TIME_BEFORE.search(before):
        return True
    if 1900 <= value <= 2100 and value == value.to_integral_value() and _YEAR_BEFORE.search(before):
        return True
    if c.plain_digits >= 7 or _ID_BEFORE.search(before):
        return True
    words = before.split()
    return c.single_word == "one" and bool(words) and words[-1] in _NOT_ONE_AFTER


def _candidates(text: str, default: str | None) -> list[_Candidate]:
    found: list[_Candidate] = []
    for match in _NUMBER.finditer(text):
        value = _read_number(match.group(1))
        if value is None:
            continue
        if match.group(2) or match.group(3):
            value *= (
                1000 if (match.group(2) or match.group(3)) in ("k", "grand", "mil", "thousand") else 10**6
            )
        digits = len(match.group(1)) if match.group(1).isdigit() else 0
        found.append(_candidate(text, value, match.start(), match.end(), default, digits, None))
    taken = [(c.start, c.end) for c in found]
    tokens = _tokens(text)
    i = 0
    while i < len(tokens):
        if any(s <= tokens[i].start < e for s, e in taken):
            i += 1
            continue
        parsed = _word_number(tokens, i)
        if parsed is None:
            i += 1
            continue
        value_int, j = parsed
        start, end = tokens[i].start, tokens[j - 1].end
        word = tokens[i].text if j == i + 1 else None
        found.append(_candidate(text, Decimal(value_int), start, end, default, 0, word))
        i = j
    return sorted(found, key=lambda c: c.start)


def parse_money(text: str, default_currency: str | None = None) -> Money | None:
    """The amount of money in ``text`` ("$1,250.50", "fifty bucks", "cien euros"), or ``None``.

    The currency is the one written next to the amount, else ``default_currency``.
    """
    folded = _fold(text)
    if not folded:
        return None
    # Codes glued to digits ("usd300") are split off; dates, times and phones are blanked out.
    folded = re.sub(r"\b(usd|gbp|eur|mxn)(?=\d)", r"\1 ", folded)
    folded = _NOT_MONEY.sub(lambda m: " " * len(m.group()), folded)
    try:
        candidates = _candidates(folded, default_currency)
    except (InvalidOperation, ValueError):
        return None
    for i, c in enumerate(candidates):
        if not c.attached:
            continue
        if c.cents:
            return Money(c.value / 100, c.currency or default_currency)
        amount = c.value
        # "twenty dollars and fifty cents", "veinte pesos con cincuenta centavos"
        nxt = candidates[i + 1] if i + 1 < len(candidates) else None
        if (
            nxt is not None
            and nxt.cents
            and re.fullmatch(r"\s*(?:,|and|y|con)?\s*", folded[c.unit_end : nxt.start])
        ):
            amount += nxt.value / 100
        return Money(amount, c.currency or default_currency)
    for c in candidates:
        if not _is_not_money(folded, c):
            return Money(c.value, default_currency)
    return None


# --- frequency -----------------------------------------------------------------------------

_FORTNIGHTLY_ON = re.compile(
    rf"\bevery (?:other|second|2nd) {_ANY_WEEKDAY}"
    rf"|{_ANY_WEEKDAY} every (?:other|second|two|2) weeks?"
    rf"|\bevery (?:two|2) {_ANY_WEEKDAY}"
    rf"|\bun {_WEEKDAY} si,? (?:y )?(?:otro|uno) no"
    rf"|\bcada (?:dos|2|otro) {_WEEKDAY}"
    rf"|{_WEEKDAY} (?:de )?por medio"
)
_FORTNIGHTLY = re.compile(
    r"\bfortnight(?:ly)?\b|\bbi-?weekly\b|\b(?:every|each) (?:other|second|2nd|two|2) weeks?\b"
    r"|\bevery (?:14|fourteen) days\b|\b(?:twice|two times) a month\b|\bquincenal(?:mente)?\b"
    r"|\b(?:cada|por|a la|una vez a la) quincena\b|\bcada (?:dos|2) semanas\b"
    r"|\bcada (?:14|15|catorce|quince) dias\b"
    r"|\bcada otra semana\b|\b(?:dos|2) veces (?:al|por) mes\b|\bsemana (?:de )?por medio\b"
)
_WEEKLY_ON = re.compile(
    rf"\b(?:every|each|cada|todos los) {_ANY_WEEKDAY}"
    rf"|\bon (?:{'|'.join(_WEEKDAYS)})s\b"
    rf"|\b(?:{'|'.join(_WEEKDAYS)})s\b(?! ?(?:no|not)\b)"
    rf"|\blos {_WEEKDAY}"
)
_WEEKLY = re.compile(
    r"\bweekly\b|(?<!\bin )(?<!\bwithin )\ba week\b|\b(?:per|each|every|once a) week\b|/ ?(?:wk|w|week)\b"
    r"|\bp/?w\b|\bsemanal(?:mente)?\b|\ba la semana\b|\b(?:por|cada|x) semana\b|\btodas las semanas\b"
)
_MONTHLY = re.compile(
    r"\bmonthly\b|(?<!\bin )(?<!\bwithin )\ba month\b|\b(?:per|each|every|once a) month\b|/ ?mo(?:nth)?\b"
    r"|\bpcm\b|\bmensual(?:mente)?\b|\b(?:al|por|cada|x) mes\b|\btodos los meses\b"
)


def parse_frequency(text: str) -> Cadence | None:
    """How often someone offers to pay ("a month", "every other Friday", "cada quincena"), or ``None``."""
    folded = _fold(text)
    if not folded:
        return None
    day = re.search(_WEEKDAY, folded)
    weekday = _weekday(day.group(1)) if day else None
    on = _FORTNIGHTLY_ON.search(folded)
    if on is not None:
        name = next(g for g in on.groups() if g)
        return Cadence(Frequency.FORTNIGHTLY, _weekday(name))
    if _FORTNIGHTLY.search(folded):
        return Cadence(Frequency.FORTNIGHTLY, weekday)
    on = _WEEKLY_ON.search(folded)
    if on is not None:
        name = next((g for g in on.groups() if g), on.group().split()[-1])
        return Cadence(Frequency.WEEKLY, _weekday(name))
    if _WEEKLY.search(folded):
        return Cadence(Frequency.WEEKLY, weekday)
    if _MONTHLY.search(folded):
        return Cadence(Frequency.MONTHLY, None)
    return None


# --- dates ---------------------------------------------------------------------------------

_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_YMD = re.compile(r"\b(\d{4})[/.](\d{1,2})[/.](\d{1,2})\b")
_NUMERIC = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})\b")
_NUMERIC_NO_YEAR = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?![/\d])")
_ORDINAL = r"(?:st|nd|rd|th|o)?"
_DAY_MONTH = re.compile(
    rf"\b(\d{{1,2}}){_ORDINAL}\s*(?:of\s+|de\s+|-\s*)?{_MONTH}(?:,?\s*(?:de\s+|del\s+)?(\d{{4}}|\d{{2}}))?\b"
)
_MONTH_DAY = re.compile(rf"\b{_MONTH}\s*(\d{{1,2}}){_ORDINAL}(?:,?\s*(\d{{4}}|\d{{2}}))?\b")
_IN_PERIOD = re.compile(
    rf"\b(?:in|within|en|dentro de)\s+{_COUNT}\s*"
    r"(days?|weeks?|months?|fortnights?|dias?|semanas?|mes|meses|quincenas?)\b"
    rf"|\b{_COUNT}\s*(days?|weeks?|months?)\s+from\s+(?:now|today)\b"
)
_DAY_OF_MONTH = re.compile(
    r"\b(?:on\s+)?the\s+(\d{1,2})(?:st|nd|rd|th)?\b|\b(\d{1,2})(?:st|nd|rd|th)\b|\bel\s+(?:dia\s+)?(\d{1,2})\b"
    r"|\bdia\s+(\d{1,2})\b"
)
_PERIOD_DAYS = {"day": 1, "dia": 1, "week": 7, "semana": 7, "fortnight": 14, "quincena": 15}


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _next_month_day(month: int, day: int, start: date) -> date | None:
    """The first ``month``/``day`` on or after ``start`` (Feb 29 waits for a leap year)."""
    for year in range(start.year, start.year + 9):
        candidate = _valid(year, month, day)
        if candidate is not None and candidate >= start:
            return candidate
    return None


def _day_month(first: int, second: int, language: str) -> tuple[int, int] | None:
    """(month, day) for "12/04": month first in English, day first in Spanish.

    When that reading is impossible and the other one is not ("13/04" in English), the other.
    """
    month, day = (second, first) if language.startswith("es") else (first, second)
    if 1 <= month <= 12 and 1 <= day <= 31:
        return month, day
    if 1 <= day <= 12 and 1 <= month <= 31:
        return day, month
    return None


def _full_year(year: str, pivot: int) -> int:
    if len(year) == 4:
        return int(year)
    return 1900 + int(year) if int(year) > pivot else 2000 + int(year)


def _named(folded: str) -> tuple[int, int, str | None] | None:
    """(month, day, year as written) for a date with its month in words."""
    match = _DAY_MONTH.search(folded)
    if match:
        return _MONTHS[match.group(2)], int(match.group(1)), match.group(3)
    match = _MONTH_DAY.search(folded)
    if match:
        return _MONTHS[match.group(1)], int(match.group(2)), match.group(3)
    return None


def _with_year(folded: str, language: str, pivot: int) -> tuple[bool, date | None]:
    """(whether a full date is written, that date or ``None`` when it is impossible)."""
    for pattern in (_ISO, _YMD):
        match = pattern.search(folded)
        if match:
            return True, _valid(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    match = _NUMERIC.search(folded)
    if match:
        order = _day_month(int(match.group(1)), int(match.group(2)), language)
        return True, _valid(_full_year(match.group(3), pivot), *order) if order else None
    named = _named(folded)
    if named is not None and named[2] is not None:
        return True, _valid(_full_year(named[2], pivot), named[0], named[1])
    return False, None


def parse_date(text: str, today: date, language: str = "en") -> date | None:
    """The payment date someone means ("tomorrow", "next friday", "el 15 de marzo"), or ``None``.

    Weekdays ("friday", "next friday", "el próximo viernes") are the next one after today; a
    day of the month ("the 15th", "el 15") the next one from tomorrow, skipping months without
    it; a day and month without a year the next one from today. A date with its year is
    returned as written, even in the past: the plan's window is checked by the caller.
    """
    folded = _fold(text)
    if not folded or not isinstance(today, date):
        return None
    # Two-digit years of payment dates are this century (pivot 99).
    found, written = _with_year(folded, language, 99)
    if found:
        return written
    named = _named(folded)
    if named is not None:
        return _next_month_day(named[0], named[1], today)
    match = _NUMERIC_NO_YEAR.search(folded)
    if match:
        order = _day_month(int(match.group(1)), int(match.group(2)), language)
        return _next_month_day(*order, today) if order else None
    if re.search(r"\bpasado (?:manana|mnn)\b|\bday after tomorrow\b", folded):
        return today + timedelta(days=2)
    match = _IN_PERIOD.search(folded)
    if match:
        count_text, unit = (
            (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        )
        count = _small_number(count_text)
        if count is None or count > 366:
            return None
        unit = unit.rstrip("s")
        if unit in ("month", "mes", "mese"):
            return add_months(today, count)
        return today + timedelta(days=count * _PERIOD_DAYS[unit])
    if re.search(r"\b(?:today|tonight|hoy|esta noche|esta tarde)\b", folded):
        return today
    # "mañana" is tomorrow, but "la mañana" is the morning.
    if re.search(r"\b(?:tomorrow|tmrw|tmr)\b|(?<!\bla )(?<!\blas )\bmanana\b", folded):
        return today + timedelta(days=1)
    match = _DAY_OF_MONTH.search(folded)
    if match:
        day = int(next(g for g in match.groups() if g))
        start = today + timedelta(days=1)
        for months in range(13):
            candidate = _valid(add_months(start, months).year, add_months(start, months).month, day)
            if candidate is not None and candidate >= start:
                return candidate
        return None
    match = re.search(_ANY_WEEKDAY, folded)
    if match:
        ahead = (_weekday(match.group(1)) - today.weekday() - 1) % 7 + 1
        return today + timedelta(days=ahead)
    return None


def parse_birth_date(text: str, language: str = "en", *, today: date | None = None) -> date | None:
    """A date of birth ("1984-03-12", "03/12/1984", "12 de marzo de 1984"), or ``None``.

    Numeric dates are month first in English and day first in Spanish. A two-digit year is
    19xx when it is above the current two-digit year (``today``), else 20xx; without
    ``today`` the pivot is 30. Impossible dates, years before 1900 and, with ``today``,
    dates in the future are ``None``.
    """
    folded = _fold(text)
    if not folded:
        return None
    pivot = today.year % 100 if today is not None else 30
    _, found = _with_year(folded, language, pivot)
    if found is None or found.year < 1900 or (today is not None and found > today):
        return None
    return found


# --- contact windows -----------------------------------------------------------------------

_HOUR_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "una": 1, "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5,
    "seis": 6, "siete": 7, "ocho": 8, "nueve": 9, "diez": 10, "once": 11, "doce": 12,
    "noon": 12, "midday": 12, "mediodia": 12,
}  # fmt: skip
_MORNING = ("manana", "morning")
_LATER = ("tarde", "noche", "afternoon", "evening", "night")
_H = (
    r"(\d{1,2}|"
    + "|".join(sorted(_HOUR_WORDS, key=len, reverse=True))
    + r")(?::(\d{2}))?(?:\s*(a\.?\s?m\b\.?|p\.?\s?m\b\.?|h\b|hrs\b|horas\b))?(?:\s*o'?clock)?"
    r"(?:\s+(?:de la|en la|por la|in the|at)\s+(manana|tarde|noche|morning|afternoon|evening|night))?"
)
_RANGE = re.compile(
    rf"\b(?:between|from|entre(?: las?)?|de(?: las?)?|desde(?: las?)?)\s+{_H}\s*"
    rf"(?:and|to|till|until|-|y(?: las?)?|a(?: las?)?|hasta(?: las?)?)\s+{_H}"
    rf"|(?<![\d:])\b(\d{{1,2}})(?::(\d{{2}}))?\s*(a\.?m\.?|p\.?m\.?)?\s*(?:-|to|till)\s*{_H}"
)
_AFTER = re.compile(
    rf"\b(?:after|from|past|not before|no antes de(?: las?)?|despues de(?: las?)?|a partir de(?: las?)?"
    rf"|desde(?: las?)?|pasadas las)\s+{_H}"
)
_BEFORE = re.compile(
    rf"(?<!\bnot )(?<!\bno )\b(?:before|until|till|up to|not after|antes de(?: las?)?|hasta(?: las?)?"
    rf"|no despues de(?: las?)?)\s+{_H}"
)
_GREETINGS = re.compile(
    r"\b(?:good (?:morning|afternoon|evening|night)|buen(?:os|as) (?:dias|tardes|noches))\b"
)
_ANYTIME = re.compile(
    r"\b(?:any ?time|whenever|any day|cuando sea|a cualquier hora|cualquier (?:dia|momento))\b"
)
_WORK = re.compile(
    r"\b(?:at work|after work|work(?:ing)? hours|business hours|office hours|while (?:i'?m )?working"
    r"|despues del trabajo|en el trabajo|horario (?:de trabajo|laboral|de oficina)|mientras trabajo"
    r"|salgo del trabajo|saliendo del trabajo)\b"
)
_PERIODS: tuple[tuple[re.Pattern[str], time | None, time | None], ...] = (
    (re.compile(r"\b(?:por|en) las? mananas?\b|\blas mananas\b|\bmornings?\b"), None, time(12)),
    (re.compile(r"\b(?:por|en) las? tardes?\b|\blas tardes\b|\btardes\b"), time(12), time(20)),
    (re.compile(r"\bafternoons?\b"), time(12), time(17)),
    (
        re.compile(r"\b(?:por|en) las? noches?\b|\blas noches\b|\bevenings?\b|\bnights?\b|\btonight\b"),
        time(18),
        None,
    ),
)
_WEEKDAYS_ONLY = re.compile(
    r"\bweekdays?\b|\bmon(?:day)?\s*(?:-|to|through|thru)\s*fri(?:day)?\b|\bentre semana\b"
    r"|\bde lunes a viernes\b|\bdias (?:laborables|habiles|de semana)\b|\b(?:business|working) days\b"
)
_WEEKENDS = re.compile(r"\bweekends?\b|\bfines? de semana\b")
_NEGATION_BEFORE = re.compile(
    r"\b(?:not|no|never|nunca|except|excepto|menos|salvo|don'?t|do not|can'?t|cannot|avoid|excluding"
    r"|sin|ni)\b"
)
_NEGATION_AFTER = re.compile(r"\s*(?:(?:are|is)\s+)?(?:no|not|bad|out|busy|never|nunca|tampoco|mal)\b")
_ONLY_BEFORE = re.compile(r"\b(?:only|just|solo|solamente|unicamente)\b")


def _clock(hour_text: str, minutes: str | None, marker: str | None, period: str | None) -> time | None:
    hour = int(hour_text) if hour_text.isdigit() else _HOUR_WORDS.get(hour_text)
    minute = int(minutes) if minutes else 0
    if hour is None or minute > 59:
        return None
    marker = (marker or "").replace(".", "").replace(" ", "")
    if marker == "am" or period in _MORNING:
        if not 1 <= hour <= 12:
            return None
        hour = 0 if hour == 12 else hour
    elif marker == "pm" or period in _LATER:
        if not 1 <= hour <= 12:
            return None
        hour = hour if hour == 12 else hour + 12
    elif marker in ("h", "hrs", "horas") or hour == 0 or hour >= 13:
        pass
    elif 1 <= hour <= 7:
        hour += 12  # see the module notes: nobody may be called at 1-7 in the morning
    return time(hour, minute) if hour <= 23 else None


def _later(first: time | None, second: time | None) -> time | None:
    if first is None or second is None:
        return first or second
    return max(first, second)


def _earlier(first: time | None, second: time | None) -> time | None:
    if first is None or second is None:
        return first or second
    return min(first, second)


def _to_afternoon(moment: time) -> time | None:
    return moment.replace(hour=moment.hour + 12) if moment.hour < 12 else None


def _clause(text: str, start: int, end: int) -> tuple[str, str]:
    """The words of the same clause just before and just after ``text[start:end]``."""
    before = re.split(r"[,.;:!?]| but | pero ", text[max(0, start - 40) : start])[-1]
    after = re.split(r"[,.;:!?]", text[end : end + 25])[0]
    return before, after


def _blank(text: str, match: re.Match[str]) -> str:
    # Same length, so later matches keep their positions.
    return text[: match.start()] + " " * (match.end() - match.start()) + text[match.end() :]


def parse_contact_window(text: str) -> ContactWindow | None:
    """When someone agrees to be contacted ("only after 6pm", "los domingos no"), or ``None``."""
    folded = _fold(text)
    if not folded:
        return None
    folded = _GREETINGS.sub(" ", folded)
    after: time | None = None
    before: time | None = None
    understood = False

    for match in list(_RANGE.finditer(folded)):
        g = match.groups()
        start = _clock(g[0], g[1], g[2], g[3]) if g[0] else _clock(g[8], g[9], g[10], None)
        end = _clock(g[4], g[5], g[6], g[7]) if g[0] else _clock(g[11], g[12], g[13], g[14])
        if start is None or end is None:
            continue
        if end <= start:
            end = _to_afternoon(end) or end
        after, before, understood = _later(after, start), _earlier(before, end), True
        folded = _blank(folded, match)
    for match in list(_AFTER.finditer(folded)):
        moment = _clock(*match.groups())
        if moment is not None:
            after, understood = _later(after, moment), True
            folded = _blank(folded, match)
    for match in list(_BEFORE.finditer(folded)):
        moment = _clock(*match.groups())
        if moment is not None:
            before, understood = _earlier(before, moment), True
            folded = _blank(folded, match)
    if _WORK.search(folded):
        after, understood = _later(after, time(17)), True
    for pattern, since, until in _PERIODS:
        if pattern.search(folded):
            after, before, understood = _later(after, since), _earlier(before, until), True
    excluded: set[int] = set()
    weekdays_only = False
    for match in _WEEKDAYS_ONLY.finditer(folded):
        previous, _ = _clause(folded, match.start(), match.end())
        if _NEGATION_BEFORE.search(previous):
            excluded |= {0, 1, 2, 3, 4}
        else:
            weekdays_only = True
        understood = True
    for match in _WEEKENDS.finditer(folded):
        previous, following = _clause(folded, match.start(), match.end())
        if _NEGATION_BEFORE.search(previous) or _NEGATION_AFTER.match(following):
            weekdays_only = True
        elif _ONLY_BEFORE.search(previous):
            excluded |= {0, 1, 2, 3, 4}
        understood = True
    only: set[int] = set()
    for match in re.finditer(_WEEKDAY, folded):
        day = _weekday(match.group(1))
        previous, following = _clause(folded, match.start(), match.end())
        if _NEGATION_BEFORE.search(previous) or _NEGATION_AFTER.match(following):
            excluded.add(day)
            understood = True
        elif _ONLY_BEFORE.search(previous):
            only.add(day)
            understood = True
    if only:
        excluded |= set(range(7)) - only
    if _ANYTIME.search(folded):
        understood = True
    if not understood:
        return None
    if after is not None and before is not None and before <= after:
        before = _to_afternoon(before)
        if before is None or before <= after:
            return None  # an empty window: better to ask again
    days_left = set(range(5) if weekdays_only else range(7)) - excluded
    if not days_left:
        return None
    return ContactWindow(after, before, frozenset(excluded), weekdays_only)
