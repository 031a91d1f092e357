"""Making what providers send safe to store: cleaned strings and bounded JSON.

Everything a webhook carries comes from outside, signed or not. Before it is stored (Redis
encodes to UTF-8, which a lone surrogate cannot be) or logged, every string goes through
:func:`clean_text` or :func:`clean_line`, and JSON is read with :func:`loads_json`, which
refuses nesting deep enough to exhaust the stack of whatever walks it later.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_JSON_DEPTH",
    "REPLACEMENT",
    "UnsafeJson",
    "clean_line",
    "clean_payload",
    "clean_text",
    "loads_json",
]

#: No provider nests its JSON this deep (a Telegram Update is about 6 levels); deeper is hostile.
MAX_JSON_DEPTH = 32

#: What a lone surrogate (half of a UTF-16 pair, from a broken encoded word or a JSON
#: ``"\ud800"`` escape) becomes: it cannot be encoded, so it cannot be stored as it is.
REPLACEMENT = "\ufffd"

_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 controls but tab and line feed, DEL, and the C1 controls: never meaningful in a message,
# and NUL or ESC break storage, terminals and logs.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# In one-line values (names, addresses, subjects) tabs and line breaks become spaces.
_LINE_BREAKS = re.compile("[\t\n\u0085\u2028\u2029]")
# A JSON string (escapes included), and the brackets left once strings are out of the way.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


class UnsafeJson(ValueError):
    """A body that is not JSON, or JSON we refuse to read (too deep, NaN, huge numbers)."""


def clean_text(value: str) -> str:
    """Text safe to store: lone surrogates become U+FFFD, ``\\r\\n`` and ``\\r`` become
    ``\\n``, other control characters but tab and line feed are removed."""
    if value.isprintable():
        return value  # the common case: nothing to do
    value = _SURROGATE.sub(REPLACEMENT, value)
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", value)


def clean_line(value: str) -> str:
    """A one-line value safe to store: as :func:`clean_text`, with tabs and line breaks as
    spaces, so a name or an address can never start a new line anywhere it is shown."""
    if value.isprintable():
        return value
    return _LINE_BREAKS.sub(" ", clean_text(value))


def clean_payload(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings, numbers) with every string, keys included,
    passed through :func:`clean_text`. Call it on values read with :func:`loads_json`, whose
    depth is bounded."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_text(str(key)): clean_payload(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_payload(item) for item in value]
    return value


def json_too_deep(text: str, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``text`` nests arrays/objects more than ``max_depth`` levels, judged on the raw
    text (strings skipped), so nothing recursive ever sees a hostile document."""
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def _finite(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):  # "1e999" reads as infinity, which is not JSON
        raise UnsafeJson(f"number out of range: {literal[:20]}")
    return number


def _no_constants(name: str) -> Any:
    raise UnsafeJson(f"{name} is not JSON")


def loads_json(data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode JSON from outside; raise :class:`UnsafeJson` for anything else.

    Refused: invalid UTF-8 or JSON, nesting deeper than ``max_depth``, ``NaN``/``Infinity``,
    numbers too big for a float, integers longer than Python converts (4300 digits). Strings
    are returned as decoded: clean them (:func:`clean_payload`) before storing them.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    except UnicodeDecodeError as exc:
        raise UnsafeJson(f"body is not valid JSON: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    if json_too_deep(text, max_depth):
        raise UnsafeJson(f"JSON nested more than {max_depth} levels deep")
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_no_constants)
    except UnsafeJson:
        raise
    except json.JSONDecodeError as exc:
        raise UnsafeJson(f"body is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})") from exc
    except (ValueError, RecursionError) as exc:
        # ValueError: an integer beyond Python's conversion limit. RecursionError cannot
        # happen after the depth check; kept so a parser change can never turn into a 500.
        raise UnsafeJson(f"body is not valid JSON: {type(exc).__name__}") from exc
