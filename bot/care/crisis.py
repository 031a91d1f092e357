"""What the product does on a sign of crisis, wherever it was seen (the worker's safety screen
or the dialogue's ``crisis`` intent): one path.

1. Collection stops for the account (``pause:crisis`` on its state, which the compliance gate
   honours: no opener, no reminder) until a person clears it; the conversation's history says
   so when the pause begins (a ``collection_paused`` line, in the same script as the pause).
2. The conversation goes to the agents' queue at the top priority (reason ``crisis``), once
   per inbound message however often the step is replayed (with its ``escalated`` history line).
3. The answer: sorry, you matter, the crisis line of the person's country, a person will reach
   out. Nothing about a debt: it may reach someone who is not the account holder.

The pause is written before the escalation and both before the answer is queued, so a crash
at any point leaves the person protected; a replay repeats nothing but the (idempotent) writes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone

import phonenumbers
import redis

from bot.config import CareConfig
from bot.store.accounts import Account
from bot.store.agent_queue import AgentQueue
from bot.store.connection import Keys
from bot.store.history_entries import FieldWithLine, encode_event

logger = logging.getLogger(__name__)

#: The reason agents see, and the pause the compliance gate honours.
CRISIS = "crisis"


def country_of(account: Account | None, channel: str, address: str) -> str | None:
    """The person's country: the account's, else the one of the phone number they wrote from."""
    if account is not None and account.country:
        return account.country.upper()
    phone = account.phone if account is not None and account.phone else (address if channel == "sms" else "")
    if phone:
        try:
            region = phonenumbers.region_code_for_number(phonenumbers.parse(phone, None))
        except phonenumbers.NumberParseException:
            return None
        return str(region) if region and region != "ZZ" else None
    return None


class CrisisDesk:
    """The answer, the escalation and the pause for a sign of crisis."""

    def __init__(
        self,
        config: CareConfig,
        client: redis.Redis[bytes],
        keys: Keys,
        agents: AgentQueue,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._redis = client
        self._keys = keys
        self._agents = agents
        self._clock = clock
        self._pause = FieldWithLine(client)

    @property
    def follow_up_hours(self) -> float:
        """How long after a sign of crisis a silenced address still hears that a person has its words."""
        return self._config.follow_up_hours

    def line(self, country: str | None, language: str) -> str:
        """The crisis line for ``country`` (the default line when it has none), in ``language``."""
        lines = self._config.crisis_lines
        chosen = lines.get((country or "").upper()) or lines["default"]
        return chosen.es if language == "es" else chosen.en

    def reply(self, language: str, country: str | None) -> str:
        """What the person reads."""
        lang = "es" if language == "es" else "en"
        return self._config.crisis_reply[lang].format(line=self.line(country, lang))  # type: ignore[index]

    def raise_crisis(
        self, *, conversation_id: str, account_id: str | None, detail: str, once: str, source: str
    ) -> bool:
        """Pause collection and escalate; ``True`` when this call escalated (not a replay).

        ``detail`` is what the agent reads (the person's words), ``once`` the inbound message's
        provider id, ``source`` where the sign was seen (``screen:<patterns>`` or ``nlu``)."""
        if account_id:
            now = self._clock()
            at = datetime.fromtimestamp(now, timezone.utc).isoformat()
            why = f"a sign of crisis ({source})"
            line = encode_event(
                now,
                "collection_paused",
                text=f"{why}: no collection messages until a person clears it",
                detail={"reason": CRISIS},
            )
            # The pause and its history line together, when the pause begins: a later sign (or a
            # replay) neither moves the time it began nor adds a line.
            pause = json.dumps({"at": at, "detail": why})
            self._pause(
                self._keys.account_state(account_id), f"pause:{CRISIS}", pause,
                self._keys.conversation_history(conversation_id), line, overwrite=False,
            )  # fmt: skip
        added = self._agents.flag(
            conversation_id, CRISIS, account_id=account_id, detail=detail, once=once or ""
        )
        if added:
            logger.warning(
                "conversation %s: a sign of crisis (%s): escalated at the top priority%s",
                conversation_id, source, ", collection paused" if account_id else "",
            )  # fmt: skip
        return added
