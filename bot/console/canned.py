"""Canned replies (issue 16): short texts per language an agent inserts into a reply and edits
before sending. Supervisors write them; every agent reads them.

One Redis hash per language (``console:canned:<language>``: id -> JSON). The first read of a
language seeds a few kind defaults (a hello, asking how the person is, "I've set that up",
pointing to free debt advice, a goodbye), once: a supervisor who deletes them does not get them
back. Placeholders: ``{first_name}``, ``{company}``, ``{agent_name}``; any other is refused when a
reply is saved and when one is rendered.
"""

from __future__ import annotations

import json
import re
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from bot.clock import Clock
from bot.console.desk import DeskError
from bot.console.handoff import AUDIT_MAXLEN, Actor, NotAllowed, Role
from bot.store.accounts import Account
from bot.store.connection import Keys

__all__ = ["PLACEHOLDERS", "CannedReplies", "CannedReply", "placeholders_in"]

PLACEHOLDERS = frozenset({"first_name", "company", "agent_name"})
MAX_TITLE = 80
MAX_TEXT = 1_000
MAX_PER_LANGUAGE = 200
_ID = re.compile(r"^[a-z0-9_-]{1,40}$")

#: The defaults, per language: (id, title, text). Kind, plain, never a threat.
DEFAULTS: Mapping[str, tuple[tuple[str, str, str], ...]] = {
    "en": (
        ("hello", "Hello", "Hi {first_name}, this is {agent_name} from {company}. Thanks for your message; "
         "I'm here to help."),
        ("how_are_you", "How are you doing", "Before anything else, how are you doing? Take your time; "
         "there's no rush."),
        ("set_up", "I've set that up", "Thanks, {first_name}. I've set that up for you. If anything "
         "changes, just reply here and we'll look at it together."),
        ("debt_advice", "Free debt advice", "If it would help, you can talk to a free, independent debt "
         "advice service. They're confidential and on your side. Would you like me to share how to "
         "reach one?"),
        ("goodbye", "Goodbye", "Thanks for talking with me, {first_name}. If you need anything, just reply "
         "here. Take care."),
    ),
    "es": (
        ("hello", "Saludo", "Hola, {first_name}. Soy {agent_name}, de {company}. Gracias por su mensaje; "
         "estoy aquí para ayudarle."),
        ("how_are_you", "¿Cómo está?", "Antes que nada, ¿cómo está usted? Tómese su tiempo; no hay prisa."),
        ("set_up", "Ya está hecho", "Gracias, {first_name}. Ya lo he dejado preparado. Si algo cambia, "
         "responda aquí y lo vemos juntos."),
        ("debt_advice", "Asesoría gratuita", "Si le sirve, puede hablar con un servicio de asesoría de "
         "deudas gratuito e independiente. Es confidencial y está de su lado. ¿Quiere que le diga cómo "
         "contactar con uno?"),
        ("goodbye", "Despedida", "Gracias por hablar conmigo, {first_name}. Si necesita algo, responda aquí. "
         "Cuídese."),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class CannedReply:
    id: str
    language: str
    title: str
    text: str
    #: Who last saved it (``system`` for the defaults), and when (Unix seconds).
    updated_by: str
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "language": self.language, "title": self.title, "text": self.text,
                "updated_by": self.updated_by, "updated_at": self.updated_at}  # fmt: skip


def placeholders_in(text: str) -> list[str]:
    """The placeholders ``text`` uses; ``DeskError`` for one that is not allowed or not plain
    (``{}``, ``{0}``, ``{first_name!r}``, ``{company:>10}``, an unclosed brace)."""
    found = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        raise DeskError("a brace is not closed: write {{ or }} for a brace itself") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            allowed = ", ".join(f"{{{p}}}" for p in sorted(PLACEHOLDERS))
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise DeskError(f"unknown placeholder {shown} (allowed: {allowed})")
        found.append(name)
    return found


class _Values(dict[str, str]):
    """The placeholders' values; any other name is refused (never a ``KeyError`` page)."""

    def __missing__(self, key: str) -> str:
        raise DeskError(f"unknown placeholder {{{key}}}")


class CannedReplies:
    """Canned replies in Redis, per language."""

    def __init__(
        self,
        redis: redis.Redis[bytes],
        keys: Keys,
        clock: Clock,
        languages: tuple[str, ...] | list[str] = ("en", "es"),
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.languages = tuple(str(lang) for lang in languages)

    def key(self, language: str) -> str:
        return self.keys.console("canned", language)

    def list(self, language: str) -> list[CannedReply]:
        """The replies in ``language``, by title (seeded with the defaults on the first read)."""
        self._language(language)
        self._seed(language)
        raw = self.redis.hgetall(self.key(language))
        replies = [self._decode(language, k.decode(), v) for k, v in raw.items()]
        return sorted(replies, key=lambda r: (r.title.casefold(), r.id))

    def get(self, id: str, language: str) -> CannedReply | None:
        self._language(language)
        if not _ID.match(id or ""):
            return None
        self._seed(language)
        raw = self.redis.hget(self.key(language), id)
        return None if raw is None else self._decode(language, id, raw)

    def save(self, language: str, title: str, text: str, by: Actor, id: str = "") -> CannedReply:
        """Add a reply (no ``id``) or change one; supervisors only."""
        self._supervisor(by)
        self._language(language)
        title = " ".join((title or "").split())
        text = (text or "").replace("\r\n", "\n").strip()
        if not title or len(title) > MAX_TITLE:
            raise DeskError(f"a title of 1 to {MAX_TITLE} characters, please")
        if not text or len(text) > MAX_TEXT:
            raise DeskError(f"a text of 1 to {MAX_TEXT} characters, please")
        placeholders_in(text)
        self._seed(language)
        key = self.key(language)
        if id:
            if not _ID.match(id) or not self.redis.hexists(key, id):
                raise DeskError("that canned reply no longer exists")
        else:
            if self.redis.hlen(key) >= MAX_PER_LANGUAGE:
                raise DeskError(f"at most {MAX_PER_LANGUAGE} canned replies per language")
            id = uuid.uuid4().hex[:12]
        reply = CannedReply(id, language, title, text, by.id, self.clock.timestamp())
        self.redis.hset(key, id, json.dumps({"title": title, "text": text, "updated_by": by.id,
                                             "updated_at": reply.updated_at}))  # fmt: skip
        self._audit(by, "save", id, language)
        return reply

    def delete(self, id: str, language: str, by: Actor) -> None:
        """Remove a reply; supervisors only."""
        self._supervisor(by)
        self._language(language)
        if not _ID.match(id or "") or not self.redis.hdel(self.key(language), id):
            raise DeskError("that canned reply no longer exists")
        self._audit(by, "delete", id, language)

    def render(self, text: str, account: Account | None, agent_name: str, company: str) -> str:
        """``text`` with its placeholders filled in (``DeskError`` for an unknown one). Without
        an account, ``{first_name}`` is left out along with the space or comma before it."""
        placeholders_in(text)
        first_name = (account.first_name if account else "") or ""
        marker = "\x00first_name\x00"
        values = _Values(first_name=first_name or marker, company=company, agent_name=agent_name)
        rendered = text.format_map(values)
        if not first_name:
            # "Hi {first_name}, ..." -> "Hi, ..."; "Thanks, {first_name}." -> "Thanks."
            rendered = re.sub(r",?\s*\x00first_name\x00", "", rendered)
        return rendered

    # --- helpers ------------------------------------------------------------------------------

    def _seed(self, language: str) -> None:
        """The defaults, the first time a language is read (never again, even when emptied)."""
        marker = f"{self.key(language)}:seeded"
        if self.redis.exists(marker):
            return
        if not self.redis.set(marker, "1", nx=True):
            return
        now = self.clock.timestamp()
        defaults = DEFAULTS.get(language, DEFAULTS["en"])
        mapping = {
            id: json.dumps({"title": title, "text": text, "updated_by": "system", "updated_at": now})
            for id, title, text in defaults
        }
        # HSETNX each: a reply saved meanwhile under the same id is kept.
        pipe = self.redis.pipeline(transaction=False)
        for id, value in mapping.items():
            pipe.hsetnx(self.key(language), id, value)
        pipe.execute()

    def _language(self, language: str) -> None:
        if language not in self.languages:
            raise DeskError(f"unknown language {language!r} (one of {', '.join(self.languages)})")

    @staticmethod
    def _supervisor(by: Actor) -> None:
        if by.role is not Role.SUPERVISOR:
            raise NotAllowed("only a supervisor edits canned replies")

    @staticmethod
    def _decode(language: str, id: str, raw: bytes) -> CannedReply:
        data = json.loads(raw)
        return CannedReply(
            id=id, language=language, title=str(data.get("title", "")), text=str(data.get("text", "")),
            updated_by=str(data.get("updated_by", "")), updated_at=float(data.get("updated_at") or 0),
        )  # fmt: skip

    def _audit(self, by: Actor, action: str, id: str, language: str) -> None:
        self.redis.xadd(
            self.keys.audit,
            {"kind": f"console:canned_{action}", "canned_id": id, "language": language, "by": by.id,
             "role": by.role.value, "at": repr(self.clock.timestamp())},
            maxlen=AUDIT_MAXLEN, approximate=True,
        )  # fmt: skip
