"""A local stand-in of the Telegram Bot API that checks every call against the Bot API's own description.

``TelegramSpec`` validates a method call (or any object) against ``telegram_bot_api.json``: known
method, required and unknown fields, field types (recursively through the spec's ``types``), and
the limits the spec and Telegram's docs state (text lengths, ``callback_data`` bytes, parse modes,
Telegram's HTML subset). ``FakeTelegram`` serves ``/bot<token>/<method>`` on 127.0.0.1, answers
like Telegram, records every call and keeps the ones Telegram would refuse in ``invalid_calls``
(tests assert that stays empty). ``fail_next`` injects Telegram's errors; ``queue_update`` feeds
``getUpdates``; ``text_update`` and friends build incoming updates.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message as _MimeHeaders
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.http_stand_in import StandIn


def _repo_root() -> Path:
    """The folder holding pyproject.toml above this file."""
    here = Path(__file__).resolve()
    return next((parent for parent in here.parents if (parent / "pyproject.toml").is_file()), here.parents[2])


REPO_ROOT = _repo_root()
#: The Bot API description, shared read-only next to the repository (never copied into it).
SPEC_PATH = REPO_ROOT.parent / "shared" / "specs" / "telegram_bot_api.json"

#: The token ``FakeTelegram`` accepts by default (Telegram's shape: bot id, colon, 35 characters).
TOKEN = "123456789:AAE_fake-telegram-token-for-tests_0"
BOT_USERNAME = "debtbot_test_bot"
BOT_FIRST_NAME = "Debtbot Test"

PARSE_MODES = ("HTML", "MarkdownV2", "Markdown")
WEBHOOK_PORTS = (80, 88, 443, 8443)


def spec_missing_reason(path: Path = SPEC_PATH) -> str | None:
    """Why the stand-in cannot run (the spec file is absent), or ``None`` when it can."""
    if path.is_file():
        return None
    return f"the Telegram Bot API description is not available at {path} (the shared specs folder is absent)"


def bot_id(token: str = TOKEN) -> int:
    """The bot's user id: the digits before the token's colon."""
    return int(token.split(":", 1)[0])


def bot_user(token: str = TOKEN) -> dict[str, Any]:
    """The bot as a Telegram ``User`` (what ``getMe`` returns, without the capability flags)."""
    return {"id": bot_id(token), "is_bot": True, "first_name": BOT_FIRST_NAME, "username": BOT_USERNAME}


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


# --- Telegram's HTML ------------------------------------------------------------------------


class EntityParseError(ValueError):
    """Text that Telegram refuses with "can't parse entities"."""


@dataclass(frozen=True)
class ParsedText:
    """Text after entity parsing, and its entities (offsets in UTF-16 units, like Telegram's)."""

    text: str
    entities: tuple[dict[str, Any], ...]


_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8}));")
_NAMED_ENTITY = re.compile(r"&[A-Za-z][A-Za-z0-9]*;")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)"
    r"((?:\s+[A-Za-z_:][-A-Za-z0-9_:.]*(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?)*)\s*>"
)
_ATTRIBUTE = re.compile(r"([A-Za-z_:][-A-Za-z0-9_:.]*)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'=<>`]+)))?")
#: Telegram's HTML tags and the entity each makes.
HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "tg-emoji": "custom_emoji",
    "tg-time": "date_time",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}


def _decode_entities(text: str) -> str:
    """Attribute values: the entities Telegram knows decoded, anything else left as it is."""

    def one(match: re.Match[str]) -> str:
        named, decimal, hexadecimal = match.groups()
        if named:
            return _NAMED[named]
        number = int(decimal) if decimal else int(hexadecimal, 16)
        return chr(number) if 0 < number <= 0x10FFFF and not 0xD800 <= number <= 0xDFFF else match.group()

    return _ENTITY.sub(one, text)


@dataclass
class _Open:
    tag: str
    entity: dict[str, Any]
    start: int  # UTF-16 offset in the parsed text


def parse_html(text: str) -> ParsedText:
    """Parse Telegram-flavoured HTML; raise ``EntityParseError`` where Telegram would refuse it.

    Stricter than the server in one documented way: every ``<``, ``>`` and ``&`` that is not part
    of a tag or an entity must be escaped (``&lt; &gt; &amp;``), as Telegram's docs require.
    """
    out: list[str] = []
    length = 0  # UTF-16 units written so far
    stack: list[_Open] = []
    entities: list[dict[str, Any]] = []

    def where(index: int) -> str:
        return f"at byte offset {len(text[:index].encode('utf-8'))}"

    def emit(chunk: str) -> None:
        nonlocal length
        out.append(chunk)
        length += utf16_len(chunk)

    i = 0
    while i < len(text):
        char = text[i]
        if char == "&":
            match = _ENTITY.match(text, i)
            if match is None:
                named = _NAMED_ENTITY.match(text, i)
                if named:
                    raise EntityParseError(
                        f"unsupported HTML entity {named.group()!r} {where(i)} "
                        "(only &lt; &gt; &amp; &quot; and numeric entities)"
                    )
                raise EntityParseError(f'unescaped "&" {where(i)} (write &amp;)')
            decoded = _decode_entities(match.group())
            if decoded == match.group():
                raise EntityParseError(f"invalid numeric entity {where(i)}")
            emit(decoded)
            i = match.end()
            continue
        if char == ">":
            raise EntityParseError(f'unescaped ">" {where(i)} (write &gt;)')
        if char != "<":
            start = i
            while i < len(text) and text[i] not in "&<>":
                i += 1
            emit(text[start:i])
            continue
        tag = _TAG.match(text, i)
        if tag is None:
            raise EntityParseError(f'unescaped "<" {where(i)} (write &lt;)')
        closing, name, raw_attributes = tag.group(1), tag.group(2).lower(), tag.group(3)
        if closing:
            if raw_attributes.strip():
                raise EntityParseError(f'end tag "{name}" has attributes {where(i)}')
            if not stack:
                raise EntityParseError(f'unexpected end tag "{name}" {where(i)}')
            if stack[-1].tag != name:
                raise EntityParseError(
                    f'unmatched end tag {where(i)}, expected "</{stack[-1].tag}>", found "</{name}>"'
                )
            _close(stack.pop(), stack, entities, length)
        else:
            if name not in HTML_TAGS:
                raise EntityParseError(f'unsupported start tag "{name}" {where(i)}')
            attributes = {
                found.group(1).lower(): _decode_entities(next((v for v in found.groups()[1:] if v), ""))
                for found in _ATTRIBUTE.finditer(raw_attributes)
            }
            stack.append(_Open(name, _start_entity(name, attributes, where(i)), length))
        i = tag.end()
    if stack:
        raise EntityParseError(f'can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return ParsedText("".join(out), tuple(entities))


def _start_entity(tag: str, attributes: Mapping[str, str], where: str) -> dict[str, Any]:
    entity: dict[str, Any] = {"type": HTML_TAGS[tag]}
    if tag == "span" and attributes.get("class") != "tg-spoiler":
        raise EntityParseError(f'tag "span" must have class "tg-spoiler" {where}')
    if tag == "a":
        if not attributes.get("href"):
            raise EntityParseError(f'tag "a" needs an href {where}')
        entity["url"] = attributes["href"]
    if tag == "tg-emoji":
        if not attributes.get("emoji-id", "").isdigit():
            raise EntityParseError(f'tag "tg-emoji" needs a numeric emoji-id {where}')
        entity["custom_emoji_id"] = attributes["emoji-id"]
    if tag == "tg-time":
        if not re.fullmatch(r"-?\d+", attributes.get("unix", "")):
            raise EntityParseError(f'tag "tg-time" needs a numeric unix attribute {where}')
        entity["unix_time"] = int(attributes["unix"])
        if attributes.get("format"):
            entity["date_time_format"] = attributes["format"]
    if tag == "code" and attributes.get("class", "").startswith("language-"):
        entity["language"] = attributes["class"][len("language-") :]
    if tag == "blockquote" and "expandable" in attributes:
        entity["type"] = "expandable_blockquote"
    return entity


def _close(opened: _Open, stack: list[_Open], entities: list[dict[str, Any]], end: int) -> None:
    entity = opened.entity
    if opened.tag == "code":
        language = entity.pop("language", None)
        if language and stack and stack[-1].tag == "pre":
            stack[-1].entity["language"] = language  # <pre><code class="language-x"> is one pre entity
            return
    if end > opened.start:  # Telegram drops empty entities
        entities.append({**entity, "offset": opened.start, "length": end - opened.start})


# --- the spec -------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class UploadedFile:
    """A file part of a multipart request (an ``InputFile``)."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"UploadedFile(name={self.name!r}, content_type={self.content_type!r}, size={self.size})"


_PRIMITIVES = ("Integer", "Float", "String", "Boolean")
_CONSTANT = re.compile(r",\s*(?:always|must be)\s+\"?([a-z][a-z0-9_]*)\"?\s*$")
_LENGTH = re.compile(r"\b(\d+)-(\d+) (characters|bytes)\b", re.IGNORECASE)
_REQUIRED_UNLESS = re.compile(r"\bRequired if (\w+) (?:is not|isn't) specified", re.IGNORECASE)
_REQUIRED_UNLESS_BOTH = re.compile(r"\bRequired if (\w+) and (\w+) are not specified", re.IGNORECASE)
_REQUIRED_WITH = re.compile(r"\bRequired if (\w+) is specified", re.IGNORECASE)
_ONE_OF = re.compile(
    r"\b(exactly|at most) one of the (optional fields|fields other than (.+?)|fields (\w+(?: or \w+)+))"
    r"(?= must| can| will|\.)",
    re.IGNORECASE,
)
#: Character sets the spec's descriptions state ("1-256 characters. Only characters A-Z, ...").
_CHARSETS = {
    "only A-Z, a-z, 0-9, _ and -": (
        re.compile(r"\bonly (?:characters )?A-Z, a-z, 0-9, _ and -", re.I),
        re.compile(r"[A-Za-z0-9_-]*"),
    ),
    "only lowercase English letters, digits and underscores": (
        re.compile(r"\bonly lowercase English letters, digits and underscores", re.I),
        re.compile(r"[a-z0-9_]*"),
    ),
}
_TEXT_TARGETS = ("text", "caption", "message_text", "title")
_ATTACH = "attach://"


@dataclass(frozen=True)
class _Field:
    name: str
    types: tuple[str, ...]
    required: bool
    constant: str | None = None
    length: tuple[int, int, str] | None = None  # (min, max, "characters" | "bytes")
    after_entities: bool = False
    charset: tuple[str, re.Pattern[str]] | None = None
    required_unless: tuple[str, ...] = ()  # required when none of these is given
    required_with: str | None = None  # required when this one is given


@dataclass(frozen=True)
class _OneOf:
    exactly: bool
    group: frozenset[str]
    phrase: str


@dataclass(frozen=True)
class _Owner:
    """A method or an object type with fields, compiled for checking."""

    name: str
    fields: Mapping[str, _Field]
    one_of: tuple[_OneOf, ...]
    modes: Mapping[str, str]  # text field -> the parse-mode field that applies to it
    accepts_string: bool


def _compile_field(raw: Mapping[str, Any]) -> _Field:
    description = str(raw.get("description", ""))
    types = tuple(str(kind) for kind in raw["types"])
    constant = _CONSTANT.search(description) if types == ("String",) else None
    length = _LENGTH.search(description) if types == ("String",) else None
    charset = next(((words, rx) for words, (said, rx) in _CHARSETS.items() if said.search(description)), None)
    unless_both = _REQUIRED_UNLESS_BOTH.search(description)
    unless = _REQUIRED_UNLESS.search(description)
    with_ = _REQUIRED_WITH.search(description)
    return _Field(
        name=str(raw["name"]),
        types=types,
        required=bool(raw.get("required")),
        constant=constant.group(1) if constant else None,
        length=(int(length.group(1)), int(length.group(2)), length.group(3).lower()) if length else None,
        after_entities="after entit" in description,
        charset=charset,
        required_unless=unless_both.groups() if unless_both else unless.groups() if unless else (),
        required_with=with_.group(1) if with_ and not unless else None,
    )


def _one_of_rules(description: str, fields: Mapping[str, _Field]) -> tuple[_OneOf, ...]:
    rules = []
    for match in _ONE_OF.finditer(description):
        kind, which, others, listed = match.groups()
        if which.lower() == "optional fields":
            group = {name for name, spec in fields.items() if not spec.required}
        elif others:
            excluded = {name.strip() for name in re.split(r",\s*(?:and\s+)?|\s+and\s+", others)}
            group = set(fields) - excluded
        else:
            group = set(listed.split(" or "))
        rules.append(_OneOf(kind.lower() == "exactly", frozenset(group), match.group()))
    return tuple(rules)


def _text_modes(fields: Mapping[str, _Field]) -> dict[str, str]:
    modes: dict[str, str] = {}
    for name in fields:
        if not name.endswith("parse_mode"):
            continue
        prefix = name[: -len("parse_mode")]
        target = prefix[:-1] if prefix else next((t for t in _TEXT_TARGETS if t in fields), None)
        if target is not None and target in fields:
            modes[target] = name
    return modes


def _kind(value: object) -> str:
    """The JSON kind of ``value`` for error messages (never the value itself)."""
    if isinstance(value, UploadedFile):
        return "an uploaded file"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _label(path: str) -> str:
    return repr(path) if path else "the value"


def _attach_references(value: object) -> set[str]:
    """The part names ``attach://<name>`` strings anywhere in ``value`` point at."""
    if isinstance(value, str):
        return {value[len(_ATTACH) :]} if value.startswith(_ATTACH) else set()
    if isinstance(value, dict):
        return set().union(*(_attach_references(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_attach_references(item) for item in value))
    return set()


class TelegramSpec:
    """The Bot API description, able to say whether a call or an object is one Telegram accepts."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.version = str(document.get("version", "Bot API"))
        self._methods: dict[str, Mapping[str, Any]] = {
            name.lower(): definition for name, definition in document["methods"].items()
        }
        self._types: Mapping[str, Mapping[str, Any]] = document["types"]
        self._owners: dict[tuple[str, str], _Owner] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path = SPEC_PATH) -> TelegramSpec:
        """The spec at ``path``, parsed once per process."""
        key = path.resolve()
        with _LOAD_LOCK:
            if key not in _LOADED:
                _LOADED[key] = cls(json.loads(key.read_text(encoding="utf-8")))
            return _LOADED[key]

    # -- lookup ---------------------------------------------------------------------------

    def method(self, name: str) -> Mapping[str, Any] | None:
        """The method called ``name`` (case-insensitive, as Telegram treats method names)."""
        return self._methods.get(name.lower())

    def type(self, name: str) -> Mapping[str, Any] | None:
        """The object type called ``name``."""
        return self._types.get(name)

    def _owner(self, kind: str, name: str) -> _Owner:
        key = (kind, name)
        with self._lock:
            if key in self._owners:
                return self._owners[key]
        definition = self._methods[name.lower()] if kind == "method" else self._types[name]
        fields = {spec.name: spec for spec in map(_compile_field, definition.get("fields", []))}
        description = " ".join(definition.get("description", []))
        owner = _Owner(
            name=str(definition["name"]),
            fields=fields,
            one_of=_one_of_rules(description, fields),
            modes=_text_modes(fields),
            accepts_string="String can be used instead of this object" in description,
        )
        with self._lock:
            self._owners[key] = owner
        return owner

    # -- checking -------------------------------------------------------------------------

    def check(self, method_name: str, params: Mapping[str, Any]) -> list[str]:
        """Everything wrong with calling ``method_name`` with ``params`` (typed values; see ``coerce``)."""
        definition = self.method(method_name)
        if definition is None:
            return [f"unknown method {method_name!r} (not a method of {self.version})"]
        owner = self._owner("method", str(definition["name"]))
        attached = _attach_references(dict(params))
        errors: list[str] = []
        fields: dict[str, Any] = {}
        for name, value in params.items():
            if name not in owner.fields and isinstance(value, UploadedFile):
                if name not in attached:
                    errors.append(f"file part {name!r} is neither a parameter of {owner.name} nor attached")
            else:
                fields[name] = value
        errors += self._check_object(owner, fields, "")
        for name in sorted(attached):
            if not isinstance(params.get(name), UploadedFile):
                errors.append(f"'attach://{name}' names no uploaded file part")
        errors += self._server_rules(owner.name, params)
        return errors

    def check_type(self, type_name: str, value: Any) -> list[str]:
        """Everything wrong with ``value`` as an object of the spec's type ``type_name``."""
        if (
            type_name not in self._types
            and type_name not in _PRIMITIVES
            and not type_name.startswith("Array of ")
        ):
            return [f"unknown type {type_name!r} (not a type of {self.version})"]
        return self._check_one(type_name, value, "")

    def coerce(self, method_name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Form-encoded strings as the types the method declares (JSON-decoding objects and arrays).

        A value that does not parse stays a string, for ``check`` to report.
        """
        definition = self.method(method_name)
        if definition is None:
            return dict(params)
        owner = self._owner("method", str(definition["name"]))
        coerced = {}
        for name, value in params.items():
            spec = owner.fields.get(name)
            coerced[name] = self._from_form(spec.types, value) if spec and isinstance(value, str) else value
        return coerced

    def _from_form(self, types: Sequence[str], raw: str) -> Any:
        for kind in types:
            if kind == "Integer" and re.fullmatch(r"[+-]?\d+", raw.strip()):
                return int(raw)
            if kind == "Float" and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", raw.strip()):
                return float(raw)
            if kind == "Boolean" and raw.strip().lower() in ("true", "false", "1", "0"):
                return raw.strip().lower() in ("true", "1")
            if kind not in ("String", "InputFile", *_PRIMITIVES):
                try:
                    decoded = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(decoded, (dict, list)):
                    return decoded
        return raw

    def _check_value(self, types: Sequence[str], value: Any, path: str) -> list[str]:
        if len(types) == 1:
            return self._check_one(types[0], value, path)
        attempts: list[tuple[str, list[str]]] = []
        for kind in types:
            errors = self._check_one(kind, value, path)
            if not errors:
                return []
            attempts.append((kind, errors))
        if isinstance(value, dict):
            shaped = [(k, e) for k, e in attempts if k in self._types]
        elif isinstance(value, list):
            shaped = [(k, e) for k, e in attempts if k.startswith("Array of ")]
        else:
            shaped = []
        if not shaped:
            return [f"{_label(path)} must be {' or '.join(types)}, not {_kind(value)}"]
        fitting = [(k, e) for k, e in shaped if self._discriminator_fits(k, value)] or shaped
        kind, errors = min(fitting, key=lambda attempt: len(attempt[1]))
        return [f"{error} [read as {kind}]" for error in errors]

    def _discriminator_fits(self, kind: str, value: Any) -> bool:
        if kind not in self._types or not isinstance(value, dict) or "fields" not in self._types[kind]:
            return True
        owner = self._owner("type", kind)
        return all(
            value.get(spec.name) == spec.constant
            for spec in owner.fields.values()
            if spec.constant is not None and spec.name in value
        )

    def _check_one(self, kind: str, value: Any, path: str) -> list[str]:
        if kind.startswith("Array of "):
            if not isinstance(value, list):
                return [f"{_label(path)} must be {kind}, not {_kind(value)}"]
            item_kind = kind[len("Array of ") :]
            return [
                error
                for index, item in enumerate(value)
                for error in self._check_one(item_kind, item, f"{path}[{index}]")
            ]
        if kind in _PRIMITIVES or kind == "InputFile":
            fits = {
                "Integer": isinstance(value, int) and not isinstance(value, bool),
                "Float": isinstance(value, (int, float)) and not isinstance(value, bool),
                "String": isinstance(value, str),
                "Boolean": isinstance(value, bool),
                "InputFile": isinstance(value, UploadedFile)
                or (isinstance(value, str) and value.startswith(_ATTACH)),
            }[kind]
            return [] if fits else [f"{_label(path)} must be {kind}, not {_kind(value)}"]
        definition = self._types.get(kind)
        if definition is None:
            return [f"{_label(path)}: the spec declares the unknown type {kind!r}"]
        if "subtypes" in definition:
            return self._check_value([str(sub) for sub in definition["subtypes"]], value, path)
        owner = self._owner("type", kind)
        if owner.accepts_string and isinstance(value, str):
            return []
        if not isinstance(value, dict):
            return [f"{_label(path)} must be {kind}, not {_kind(value)}"]
        if "fields" not in definition:
            return []  # a placeholder such as CallbackGame
        return self._check_object(owner, value, path)

    def _check_object(self, owner: _Owner, value: Mapping[str, Any], path: str) -> list[str]:
        errors = [
            f"{_label(_join(path, name))} is required"
            for name, spec in owner.fields.items()
            if spec.required and name not in value
        ]
        typed: dict[str, Any] = {}
        for name, item in value.items():
            spec = owner.fields.get(name)
            where = _join(path, name)
            if spec is None:
                errors.append(f"{_label(where)} is not a field of {owner.name}")
                continue
            problems = self._check_value(spec.types, item, where)
            if not problems and spec.constant is not None and item != spec.constant:
                problems.append(f"{_label(where)} must be {spec.constant!r}")
            if (
                not problems
                and spec.charset
                and isinstance(item, str)
                and not spec.charset[1].fullmatch(item)
            ):
                problems.append(f"{_label(where)} may contain {spec.charset[0]}")
            errors += problems
            if not problems:
                typed[name] = item
        for spec in owner.fields.values():
            if spec.name in value:
                continue
            if spec.required_unless and not any(other in value for other in spec.required_unless):
                others = " and ".join(repr(other) for other in spec.required_unless)
                verb = "are" if len(spec.required_unless) > 1 else "is"
                errors.append(f"{_label(_join(path, spec.name))} is required when {others} {verb} not given")
            if spec.required_with and spec.required_with in value:
                errors.append(
                    f"{_label(_join(path, spec.name))} is required when {spec.required_with!r} is given"
                )
        for rule in owner.one_of:
            count = len(rule.group & set(value))
            if count > 1 or (rule.exactly and count == 0):
                verb = "must be used" if rule.exactly else "may be used"
                errors.append(f"{_label(path) if path else owner.name}: {rule.phrase} {verb}, not {count}")
        return errors + self._text_rules(owner, typed, path)

    def _text_rules(self, owner: _Owner, value: Mapping[str, Any], path: str) -> list[str]:
        """Parse modes, Telegram's HTML and the length limits the spec's descriptions state."""
        errors = []
        for name, mode in value.items():
            if name.endswith("parse_mode") and mode not in PARSE_MODES:
                errors.append(
                    f"unsupported parse_mode {str(mode)[:20]!r} in {_label(_join(path, name))} "
                    f"(one of {', '.join(PARSE_MODES)})"
                )
        parsed: dict[str, ParsedText | None] = {}
        for target, mode_field in owner.modes.items():
            text = value.get(target)
            if value.get(mode_field) == "HTML" and isinstance(text, str):
                try:
                    parsed[target] = parse_html(text)
                except EntityParseError as exc:
                    parsed[target] = None
                    errors.append(f"can't parse entities: {exc} (in {_label(_join(path, target))})")
        for name, text in value.items():
            spec = owner.fields[name]
            if spec.length is None or not isinstance(text, str):
                continue
            if spec.after_entities and name in parsed:
                after = parsed[name]
                if after is None:
                    continue
                text = after.text
            low, high, unit = spec.length
            size = len(text.encode("utf-8")) if unit == "bytes" else len(text)
            blank = spec.after_entities and low > 0 and not text.strip()
            if size < low or size > high or blank:
                errors.append(
                    f"{_label(_join(path, name))} must be {low}-{high} {unit}"
                    f"{' after entities parsing' if spec.after_entities else ''}, not {0 if blank else size}"
                )
        return errors

    @staticmethod
    def _server_rules(method: str, params: Mapping[str, Any]) -> list[str]:
        """Rules Telegram's docs state outside the field descriptions."""
        url = params.get("url")
        if method != "setWebhook" or not isinstance(url, str) or not url:
            return []
        try:
            parts = urlsplit(url)
            port = parts.port or 443
        except ValueError:
            return ["bad webhook: the URL does not parse"]
        if parts.scheme != "https" or not parts.hostname:
            return ["bad webhook: An HTTPS URL must be provided for webhook"]
        if port not in WEBHOOK_PORTS:
            return ["bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"]
        return []

    # -- examples -------------------------------------------------------------------------

    def example(self, kind: str, _depth: int = 0) -> Any:
        """A minimal value of ``kind`` that the spec accepts (required fields only)."""
        if kind.startswith("Array of "):
            return []
        simple = {"Integer": 0, "Float": 0.0, "String": "", "Boolean": True, "InputFile": ""}
        if kind in simple or _depth > 8:
            return simple.get(kind, {})
        if kind not in self._types:
            raise KeyError(kind)
        definition = self._types[kind]
        if "subtypes" in definition:
            return self.example(str(definition["subtypes"][0]), _depth + 1)
        owner = self._owner("type", kind)
        example: dict[str, Any] = {}
        for name, spec in owner.fields.items():
            if not spec.required:
                continue
            if spec.constant is not None:
                example[name] = spec.constant
            elif spec.length is not None and spec.types == ("String",):
                example[name] = "x" * spec.length[0]
            else:
                example[name] = self.example(spec.types[0], _depth + 1)
        return example


_LOADED: dict[Path, TelegramSpec] = {}
_LOAD_LOCK = threading.Lock()


# --- what the stand-in records --------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class RecordedCall:
    """One call the stand-in received: the method, its parameters (typed), the status and problems."""

    method: str
    params: dict[str, Any]
    status: int
    errors: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.errors

    def __repr__(self) -> str:
        # Field names only: values carry chat ids and message texts.
        return (
            f"RecordedCall({self.method} -> {self.status}, fields={sorted(self.params)}, "
            f"errors={list(self.errors)!r})"
        )


@dataclass(frozen=True, repr=False)
class SentMessage:
    """A message sent with ``sendMessage``; ``text`` is as sent (before entity parsing)."""

    chat_id: int | str
    text: str
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    message_id: int

    def __repr__(self) -> str:
        return (
            f"SentMessage(message_id={self.message_id}, parse_mode={self.parse_mode!r}, "
            f"text=<{len(self.text)} characters>, reply_markup={sorted(self.reply_markup or {})})"
        )


@dataclass(frozen=True, repr=False)
class AnsweredCallback:
    """An ``answerCallbackQuery`` call."""

    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None

    def __repr__(self) -> str:
        shown = "None" if self.text is None else f"<{len(self.text)} characters>"
        return f"AnsweredCallback(callback_query_id={self.callback_query_id!r}, text={shown})"


@dataclass(frozen=True, repr=False)
class WebhookConfig:
    """What the last ``setWebhook`` asked for."""

    url: str
    secret_token: str | None
    allowed_updates: tuple[str, ...] | None
    drop_pending_updates: bool
    max_connections: int | None = None

    def __repr__(self) -> str:
        secret = None if self.secret_token is None else "<set>"
        return (
            f"WebhookConfig(url={self.url!r}, secret_token={secret}, "
            f"allowed_updates={self.allowed_updates!r}, drop_pending_updates={self.drop_pending_updates})"
        )


@dataclass(frozen=True)
class _Fault:
    error_code: int
    description: str
    retry_after: int | None


@dataclass(frozen=True)
class _Reply:
    status: int
    body: dict[str, Any]


def _ok(result: Any) -> _Reply:
    return _Reply(200, {"ok": True, "result": result})


def _error(code: int, description: str, retry_after: int | None = None) -> _Reply:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return _Reply(code, body)


_DESCRIPTIONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


# --- reading requests -----------------------------------------------------------------------


def _parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, Any], list[str]]:
    """Fields (str) and files (``UploadedFile``) of a multipart/form-data body."""
    headers = _MimeHeaders()
    headers["Content-Type"] = content_type
    boundary = headers.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        return {}, ["the multipart body has no boundary"]
    values: dict[str, Any] = {}
    problems: list[str] = []
    sections = body.split(b"--" + boundary.encode("latin-1"))
    if len(sections) < 2 or not sections[-1].startswith(b"--"):
        return {}, ["the multipart body is not terminated"]
    for section in sections[1:-1]:
        head, separator, content = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            problems.append("a multipart part has no headers")
            continue
        part = _MimeHeaders()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, colon, header_value = line.partition(":")
            if colon:
                part[key.strip()] = header_value.strip()
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            problems.append("a multipart part has no name")
            continue
        data = content.removesuffix(b"\r\n")
        if name in values:
            problems.append(f"part {name!r} is given twice")
        filename = part.get_param("filename", header="content-disposition")
        if isinstance(filename, str) or part.get_content_type() not in ("text/plain",):
            values[name] = UploadedFile(
                name, filename if isinstance(filename, str) else None, part.get("Content-Type"), data
            )
        else:
            try:
                values[name] = data.decode(part.get_content_charset() or "utf-8")
            except (LookupError, UnicodeDecodeError):
                problems.append(f"part {name!r} is not valid text")
    return values, problems


def _pairs(text: str, problems: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        if name in values:
            problems.append(f"parameter {name!r} is given twice")
        values[name] = value
    return values


def read_request(
    query: str, content_type: str | None, body: bytes
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """A request's parameters: (typed from a JSON body, strings and files from query/form/multipart, problems)."""
    problems: list[str] = []
    raw = _pairs(query, problems) if query else {}
    typed: dict[str, Any] = {}
    media_type = (content_type or "").split(";")[0].strip().lower()
    if not body:
        return typed, raw, problems
    if media_type == "application/json":
        try:
            decoded = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return typed, raw, ["the JSON body does not parse"]
        if not isinstance(decoded, dict):
            return typed, raw, ["the JSON body is not an object"]
        typed = decoded
    elif media_type == "application/x-www-form-urlencoded":
        try:
            raw.update(_pairs(body.decode("utf-8"), problems))
        except UnicodeDecodeError:
            problems.append("the form body is not UTF-8")
    elif media_type == "multipart/form-data":
        values, more = _parse_multipart(body, content_type or "")
        raw.update(values)
        problems += more
    else:
        problems.append(f"unsupported content type {media_type or 'none'!r}")
    return typed, raw, problems


# --- the server -----------------------------------------------------------------------------


_BOT_PATH = re.compile(r"/bot([^/]*)/([^/]*)")


class FakeTelegram(StandIn):
    """The Bot API on 127.0.0.1, checking every call against ``telegram_bot_api.json``.

    Use ``telegram.Bot(fake.token, base_url=f"{fake.base_url}/bot")``. Invalid calls are answered
    400 (401 for a wrong token, 404 for an unknown method) and kept in ``invalid_calls``; valid
    ones are in ``calls``, also when answered with an error (``fail_next``, "message is not
    modified", getUpdates while a webhook is set).
    """

    name = "fake-telegram"
    poll_interval = 0.01

    def __init__(self, spec: TelegramSpec | None = None, *, token: str = TOKEN) -> None:
        super().__init__()
        self.spec = spec or TelegramSpec.load()
        self.token = token
        self._lock = threading.Lock()
        self._updates_arrived = threading.Condition(self._lock)
        self._calls: list[RecordedCall] = []
        self._sent: list[SentMessage] = []
        self._answered: list[AnsweredCallback] = []
        self._messages: dict[tuple[int | str, int], dict[str, Any]] = {}
        self._updates: deque[dict[str, Any]] = deque()
        self._last_update_id = 0
        self._next_message_id = 1
        self._webhook: WebhookConfig | None = None
        self._faults: dict[str, deque[_Fault]] = {}

    def _on_close(self) -> None:
        with self._updates_arrived:  # long polls end at once
            self._updates_arrived.notify_all()

    @property
    def bot_user(self) -> dict[str, Any]:
        """The bot as a ``User``."""
        return bot_user(self.token)

    # -- what happened --------------------------------------------------------------------

    @property
    def all_calls(self) -> list[RecordedCall]:
        """Every call, valid or not, in order."""
        with self._lock:
            return list(self._calls)

    @property
    def calls(self) -> list[RecordedCall]:
        """The valid calls (including those answered with an injected error)."""
        return [call for call in self.all_calls if call.valid]

    @property
    def invalid_calls(self) -> list[RecordedCall]:
        """The calls Telegram would refuse."""
        return [call for call in self.all_calls if not call.valid]

    @property
    def sent(self) -> list[SentMessage]:
        with self._lock:
            return list(self._sent)

    @property
    def answered_callbacks(self) -> list[AnsweredCallback]:
        with self._lock:
            return list(self._answered)

    @property
    def webhook(self) -> WebhookConfig | None:
        with self._lock:
            return self._webhook

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Queued updates not yet confirmed by a ``getUpdates`` offset."""
        with self._lock:
            return copy.deepcopy(list(self._updates))

    # -- driving it -----------------------------------------------------------------------

    def queue_update(self, update: Mapping[str, Any]) -> None:
        """Queue an incoming update for ``getUpdates`` (it must be a valid ``Update``)."""
        errors = self.spec.check_type("Update", dict(update))
        if errors:
            raise ValueError(f"not an Update of {self.spec.version}: {errors}")
        with self._updates_arrived:
            if update["update_id"] <= self._last_update_id:
                raise ValueError("update_id must increase from one queued update to the next")
            self._last_update_id = int(update["update_id"])
            self._updates.append(copy.deepcopy(dict(update)))
            self._updates_arrived.notify_all()

    def fail_next(
        self,
        method: str,
        *,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` valid calls of ``method`` with a Telegram error.

        E.g. ``fail_next("sendMessage", error_code=429, description="Too Many Requests: retry after 3",
        retry_after=3)`` or ``error_code=403, description="Forbidden: bot was blocked by the user"``.
        """
        definition = self.spec.method(method)
        if definition is None:
            raise ValueError(f"{method!r} is not a method of {self.spec.version}")
        with self._lock:
            queue = self._faults.setdefault(str(definition["name"]), deque())
            queue.extend([_Fault(error_code, description, retry_after)] * count)

    # -- serving --------------------------------------------------------------------------

    def _serve(self, http_method: str, target: str, headers: Mapping[str, str], body: bytes) -> _Reply:
        parts = urlsplit(target)
        method: str = ""
        params: dict[str, Any] = {}
        errors: list[str]
        reply, errors = _error(404, "Not Found"), ["the path is not /bot<token>/<method>"]
        found = _BOT_PATH.fullmatch(parts.path)
        try:
            if found is not None and http_method not in ("GET", "POST"):
                method, errors = found.group(2), [f"the Bot API takes GET or POST, not {http_method}"]
            elif found is not None:
                reply, errors, method, params = self._call(
                    found.group(1), found.group(2), parts.query, headers, body
                )
        except Exception as exc:  # a bug of the stand-in: make the test fail, loudly
            reply, errors = _error(500, f"Internal Server Error: FakeTelegram failed: {exc!r}"), [repr(exc)]
        with self._lock:
            self._calls.append(RecordedCall(method, params, reply.status, tuple(errors)))
        return reply

    def _call(
        self, token: str, name: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[_Reply, list[str], str, dict[str, Any]]:
        if token != self.token:
            return _error(401, "Unauthorized"), ["the bot token is not FakeTelegram's token"], name, {}
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
        typed, raw, problems = read_request(query, content_type, body)
        definition = self.spec.method(name)
        if definition is None:
            return _error(404, "Not Found"), [f"unknown method {name!r}"], name, {**raw, **typed}
        name = str(definition["name"])
        params = {**self.spec.coerce(name, raw), **typed}
        errors = problems + self.spec.check(name, params)
        if errors:
            return _error(400, "Bad Request: " + "; ".join(errors)), errors, name, params
        with self._lock:
            faults = self._faults.get(name)
            fault = faults.popleft() if faults else None
        if fault is not None:
            return _error(fault.error_code, fault.description, fault.retry_after), [], name, params
        reply, semantic = self._answer(name, params, definition)
        return reply, semantic, name, params

    def _answer(
        self, name: str, params: dict[str, Any], definition: Mapping[str, Any]
    ) -> tuple[_Reply, list[str]]:
        handlers = {
            "getMe": self._get_me,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message,
            "editMessageReplyMarkup": self._edit_message,
            "editMessageCaption": self._edit_message,
            "answerCallbackQuery": self._answer_callback,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._webhook_info,
            "getUpdates": self._get_updates,
        }
        handler = handlers.get(name)
        if handler is not None:
            return handler(name, params)
        returns = [str(kind) for kind in definition.get("returns", ["Boolean"])]
        chat_id = params.get("chat_id")
        if returns[0] == "Message" and chat_id is not None:
            caption = params.get("caption")
            content = self._rendered(caption, params.get("parse_mode"), "caption") if caption else {}
            with self._lock:
                return _ok(self._new_message(chat_id, content)), []
        if returns[0] == "Array of Message" and chat_id is not None:
            items = params.get("media") or params.get("message_ids") or []
            with self._lock:
                return _ok([self._new_message(chat_id, {}) for _ in items]), []
        if returns[0] == "Boolean":
            return _ok(True), []
        result = self.spec.example(returns[0])
        if isinstance(result, dict) and "id" in result and isinstance(chat_id, int):
            result.update(_chat(chat_id))  # getChat and the like describe the chat asked about
        return _ok(result), []

    def _new_message(self, chat_id: int | str, content: Mapping[str, Any]) -> dict[str, Any]:
        """A message from the bot, stored for later edits (call with the lock held)."""
        message_id = self._next_message_id
        self._next_message_id += 1
        message = {
            "message_id": message_id,
            "from": self.bot_user,
            "chat": _chat(chat_id),
            "date": int(time.time()),
            **content,
        }
        self._messages[(chat_id, message_id)] = message
        return copy.deepcopy(message)

    @staticmethod
    def _rendered(text: str, mode: Any, field_name: str = "text") -> dict[str, Any]:
        if mode == "HTML":
            parsed = parse_html(text)
            entities_key = "entities" if field_name == "text" else "caption_entities"
            return {
                field_name: parsed.text,
                **({entities_key: list(parsed.entities)} if parsed.entities else {}),
            }
        return {field_name: text}

    def _get_me(self, name: str, params: dict[str, Any]) -> tuple[_Reply, list[str]]:
        return _ok(
            {
                **self.bot_user,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
                "can_connect_to_business": False,
                "has_main_web_app": False,
            }
        ), []

    def _send_message(self, name: str, params: dict[str, Any]) -> tuple[_Reply, list[str]]:
        markup = params.get("reply_markup")
        content = self._rendered(params["text"], params.get("parse_mode"))
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            content["reply_markup"] = markup  # Message.reply_markup is an inline keyboard only
        with self._lock:
            message = self._new_message(params["chat_id"], content)
            self._sent.append(
                SentMessage(
                    chat_id=params["chat_id"],
                    text=params["text"],
                    parse_mode=params.get("parse_mode"),
                    reply_markup=markup if isinstance(markup, dict) else None,
                    message_id=message["message_id"],
                )
            )
        return _ok(message), []

    def _edit_message(self, name: str, params: dict[str, Any]) -> tuple[_Reply, list[str]]:
        if "inline_message_id" in params:
            return _ok(True), []
        key = (params["chat_id"], params["message_id"])
        update: dict[str, Any] = {}
        replaced: tuple[str, ...] = ()
        if name == "editMessageText":
            update = self._rendered(params.get("text", ""), params.get("parse_mode"))
            replaced = ("text", "entities")
        elif name == "editMessageCaption":
            update = self._rendered(params.get("caption", ""), params.get("parse_mode"), "caption")
            replaced = ("caption", "caption_entities")
        with self._lock:
            known = key in self._messages
            message = self._messages.setdefault(
                key,
                {
                    "message_id": key[1],
                    "from": self.bot_user,
                    "chat": _chat(key[0]),
                    "date": int(time.time()),
                },
            )
            before = copy.deepcopy(message)
            for key_name in ("edit_date", *replaced):
                message.pop(key_name, None)
            message.update(update)
            message.pop("reply_markup", None)  # an edit without reply_markup removes the keyboard
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            if known and {**message, "edit_date": None} == {**before, "edit_date": None}:
                message.update(before)
                problem = (
                    "message is not modified: specified new message content and reply markup are "
                    "exactly the same as a current content and reply markup of the message"
                )
                return _error(400, f"Bad Request: {problem}"), []  # well-formed: not an invalid call
            message["edit_date"] = int(time.time())
            return _ok(copy.deepcopy(message)), []

    def _answer_callback(self, name: str, params: dict[str, Any]) -> tuple[_Reply, list[str]]:
        with self._lock:
            self._answered.append(
                AnsweredCallback(
                    callback_query_id=params["callback_query_id"],
                    text=params.get("text"),
                    show_alert=bool(params.get("show_alert", False)),
                    url=params.get("url"),
                    cache_time=params.get("cache_time"),
                )
            )
        return _ok(True), []

    def _set_webhook(self, name: str, params: dict[str, Any]) -> tuple[_Reply, list[str]]:
        allowed = params.get("allowed_updates")
        with self._lock:
            if params.get("drop_pending_updates"):
                self._updates.clear()
            self._webhook = (
                WebhookConfig(
                    url=params["url"],
                    secret_token=params.get("secret_token"),
                    allowed_updates=tuple(allowed) if allowed is not None else None,
                    drop_pending_updates=bool(params.get("drop_pending_updates", False)),
                    max_connections=params.get("max_connections"),
                )
                if params["url"]
                else None
            )
        return _ok(True), []

    def _delete_webhook(self, name: str, params: dict[str, Any]) -> tuple[_Reply, list[str]]:
        with self._lock:
            if params.get("drop_pending_updates"):
                self._updates.clear()
            self._webhook = None
        return _ok(True), []

    def _webhook_info(self, name: str, params: dict[str, Any]) -> tuple[_Reply, list[str]]:
        with self._lock:
            hook, pending = self._webhook, len(self._updates)
        info: dict[str, Any] = {"url": "", "has_custom_certificate": False, "pending_update_count": pending}
        if hook is not None:
            info.update(url=hook.url, max_connections=hook.max_connections or 40)
            if hook.allowed_updates is not None:
                info["allowed_updates"] = list(hook.allowed_updates)
        return _ok(info), []

    def _get_updates(self, name: str, params: dict[str, Any]) -> tuple[_Reply, list[str]]:
        offset = int(params.get("offset", 0))
        limit = min(max(int(params.get("limit", 100)), 1), 100)
        allowed = params.get("allowed_updates") or None
        deadline = time.monotonic() + min(max(int(params.get("timeout", 0)), 0), 2)
        with self._updates_arrived:
            if self._webhook is not None:
                return _error(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                ), []
            while True:
                self._confirm(offset, allowed)
                remaining = deadline - time.monotonic()
                if self._updates or remaining <= 0 or self._closing.is_set():
                    break
                self._updates_arrived.wait(remaining)
            return _ok(copy.deepcopy(list(self._updates)[:limit])), []

    def _confirm(self, offset: int, allowed: Sequence[str] | None) -> None:
        """Forget confirmed updates (and those ``allowed_updates`` filters out); lock held."""
        if offset < 0:
            while len(self._updates) > -offset:
                self._updates.popleft()
        kept = [
            update
            for update in self._updates
            if update["update_id"] >= offset and (allowed is None or _update_kind(update) in allowed)
        ]
        self._updates = deque(kept)


def _update_kind(update: Mapping[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


def _chat(chat_id: int | str) -> dict[str, Any]:
    """The chat a bot message to ``chat_id`` lands in."""
    if isinstance(chat_id, str):
        return {
            "id": -1001000000001,
            "type": "channel",
            "title": "Test channel",
            "username": chat_id.lstrip("@"),
        }
    if chat_id > 0:
        return {"id": chat_id, "type": "private"}
    if chat_id <= -1_000_000_000_000:
        return {"id": chat_id, "type": "supergroup", "title": "Test supergroup"}
    return {"id": chat_id, "type": "group", "title": "Test group"}


# --- incoming updates -----------------------------------------------------------------------


def _person(user_id: int, first_name: str, username: str | None, language_code: str | None) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if username:
        user["username"] = username
    if language_code:
        user["language_code"] = language_code
    return user


def _private_chat(chat_id: int, first_name: str, username: str | None) -> dict[str, Any]:
    chat: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": first_name}
    if username:
        chat["username"] = username
    return chat


def _text_content(text: str) -> dict[str, Any]:
    """``text`` with the bot_command entity Telegram adds to a leading ``/command``."""
    content: dict[str, Any] = {"text": text}
    command = re.match(r"/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?", text)
    if command:
        content["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command.group())}]
    return content


def _from_user(
    update_id: int,
    chat_id: int,
    content: Mapping[str, Any],
    *,
    key: str = "message",
    username: str | None = None,
    first_name: str = "Test",
    language_code: str | None = None,
    message_id: int | None = None,
    date: int | None = None,
) -> dict[str, Any]:
    message = {
        "message_id": update_id if message_id is None else message_id,
        "from": _person(chat_id, first_name, username, language_code),
        "chat": _private_chat(chat_id, first_name, username),
        "date": int(time.time()) if date is None else date,
        **content,
    }
    return {"update_id": update_id, key: message}


def text_update(
    update_id: int,
    chat_id: int,
    text: str,
    *,
    username: str | None = None,
    first_name: str = "Test",
    language_code: str | None = None,
    message_id: int | None = None,
    date: int | None = None,
) -> dict[str, Any]:
    """A private text message from user ``chat_id`` (``/commands`` carry their entity)."""
    return _from_user(
        update_id, chat_id, _text_content(text), username=username, first_name=first_name,
        language_code=language_code, message_id=message_id, date=date,
    )  # fmt: skip


def edited_message_update(
    update_id: int,
    chat_id: int,
    text: str,
    message_id: int,
    *,
    username: str | None = None,
    first_name: str = "Test",
    date: int | None = None,
) -> dict[str, Any]:
    """The user edited their earlier text message ``message_id``."""
    now = int(time.time())
    return _from_user(
        update_id, chat_id, {**_text_content(text), "edit_date": now}, key="edited_message",
        username=username, first_name=first_name, message_id=message_id,
        date=now - 60 if date is None else date,
    )  # fmt: skip


def callback_update(
    update_id: int,
    chat_id: int,
    data: str,
    message_id: int,
    *,
    username: str | None = None,
    first_name: str = "Test",
    message_text: str = "Please choose:",
) -> dict[str, Any]:
    """The user pressed an inline button with ``data`` under the bot's message ``message_id``."""
    message = {
        "message_id": message_id,
        "from": bot_user(),
        "chat": _private_chat(chat_id, first_name, username),
        "date": int(time.time()) - 5,
        "text": message_text,
    }
    query = {
        "id": str(4_000_000_000_000_000_000 + update_id),
        "from": _person(chat_id, first_name, username, None),
        "message": message,
        "chat_instance": str(-abs(chat_id) * 7 - 1),
        "data": data,
    }
    return {"update_id": update_id, "callback_query": query}


def _file_ids(kind: str, update_id: int, suffix: str = "") -> dict[str, str]:
    return {
        "file_id": f"{kind}-file-{update_id}{suffix}",
        "file_unique_id": f"{kind[:3]}{update_id}{suffix}",
    }


def photo_update(
    update_id: int, chat_id: int, *, caption: str | None = None, first_name: str = "Test"
) -> dict[str, Any]:
    """The user sent a photo (two sizes, as Telegram sends them)."""
    sizes = [
        {**_file_ids("photo", update_id, "s"), "width": 90, "height": 67, "file_size": 1_412},
        {**_file_ids("photo", update_id, "x"), "width": 1280, "height": 960, "file_size": 98_765},
    ]
    content: dict[str, Any] = {"photo": sizes}
    if caption is not None:
        content["caption"] = caption
    return _from_user(update_id, chat_id, content, first_name=first_name)


def sticker_update(
    update_id: int, chat_id: int, *, emoji: str = "👍", first_name: str = "Test"
) -> dict[str, Any]:
    """The user sent a sticker."""
    sticker = {
        **_file_ids("sticker", update_id),
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": emoji,
        "set_name": "TestStickers",
        "file_size": 23_456,
    }
    return _from_user(update_id, chat_id, {"sticker": sticker}, first_name=first_name)


def voice_update(
    update_id: int, chat_id: int, *, duration: int = 3, first_name: str = "Test"
) -> dict[str, Any]:
    """The user sent a voice message."""
    voice = {
        **_file_ids("voice", update_id),
        "duration": duration,
        "mime_type": "audio/ogg",
        "file_size": 8_192,
    }
    return _from_user(update_id, chat_id, {"voice": voice}, first_name=first_name)


def group_text_update(
    update_id: int,
    chat_id: int,
    user_id: int,
    text: str,
    *,
    title: str = "Test group",
    username: str | None = None,
    first_name: str = "Test",
) -> dict[str, Any]:
    """A text message by ``user_id`` in the group ``chat_id`` (negative; -100... is a supergroup)."""
    if chat_id >= 0:
        raise ValueError("group chat ids are negative")
    kind = "supergroup" if chat_id <= -1_000_000_000_000 else "group"
    message = {
        "message_id": update_id,
        "from": _person(user_id, first_name, username, None),
        "chat": {"id": chat_id, "type": kind, "title": title},
        "date": int(time.time()),
        **_text_content(text),
    }
    return {"update_id": update_id, "message": message}


def iter_buttons(markup: Mapping[str, Any] | None) -> Iterator[dict[str, Any]]:
    """The buttons of an inline keyboard, row by row."""
    for row in (markup or {}).get("inline_keyboard", []):
        yield from row
