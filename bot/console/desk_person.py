"""Acting for the person (``DeskPerson``, part of ``bot.console.desk.Desk``): verification (the
dialogue's question, the answer checked against the account), internal notes, flags (the gate's
pauses), preferences, opt-out and opt-in, callbacks, and revealing an address (audited).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from bot.compliance.gate import VULNERABLE_FLAG, window_from_json
from bot.compliance.rules import CHANNELS, PAUSE_REASONS
from bot.console.desk_base import DeskError, _mask, _text
from bot.console.desk_replies import DeskReplies, ReplyVerdict
from bot.console.handoff import Actor
from bot.conversations.identity import account_id_of
from dialogue.parsing import ContactWindow, parse_contact_window

#: Flags an agent may set or clear: the gate's pauses, and ``vulnerable`` (``flag:vulnerable``:
#: the gate holds openers and missed-payment messages, the dialogue's ``vulnerable`` slot is set).
#: ``crisis`` is set only by the safety screen; a person may clear it.
FLAGS: tuple[str, ...] = (*PAUSE_REASONS, "vulnerable")
#: Flags that make the person vulnerable in the dialogue's eyes (its ``vulnerable`` slot, which
#: the crisis path sets too: rasa_project/domain.yml, data/rules.yml): the slot is true while
#: either is on the account.
DIALOGUE_VULNERABLE = {"vulnerable": VULNERABLE_FLAG, "crisis": "pause:crisis"}
#: Flags that pause collection (``pause:<flag>`` in the account's state, read by the gate).
PAUSE_FLAGS = frozenset(PAUSE_REASONS)
#: Preferences an agent may change for the person (``pref:<name>`` in the account's state).
PREFERENCES = ("channel", "language", "contact_window")
#: Callback formats (the dialogue's ``callback_format``).
CALLBACK_FORMATS = ("phone", "video")

MAX_NOTE = 4_000
MAX_DETAIL = 500
MAX_WHEN = 200

#: The verification question for each ``accounts.verification_field``, as the dialogue asks it
#: (``utter_ask_verification_answer`` in rasa_project/domain.yml).
VERIFICATION_QUESTIONS: Mapping[str, Mapping[str, str]] = {
    "date_of_birth": {
        "en": "Before we go on, I need to make sure I'm talking to the right person. "
        "Could you tell me your date of birth?",
        "es": "Antes de seguir, necesito asegurarme de que hablo con la persona correcta. "
        "¿Me podría decir su fecha de nacimiento?",
    },
    "postal_code": {
        "en": "Before we go on, I need to make sure I'm talking to the right person. "
        "Could you tell me your postal code?",
        "es": "Antes de seguir, necesito asegurarme de que hablo con la persona correcta. "
        "¿Me podría decir su código postal?",
    },
    "account_last4": {
        "en": "Before we go on, I need to make sure I'm talking to the right person. "
        "Could you tell me the last four digits of your account number?",
        "es": "Antes de seguir, necesito asegurarme de que hablo con la persona correcta. "
        "¿Me podría decir los últimos cuatro dígitos de su número de cuenta?",
    },
}


class DeskPerson(DeskReplies):
    """What an agent does for the person besides replying."""

    def ask_verification(self, conversation_id: str, agent: Actor) -> ReplyVerdict:
        """The dialogue's verification question (for ``accounts.verification_field``), in the
        person's language, sent as the agent's reply."""
        self._check(conversation_id)
        language = self._facts(conversation_id).language
        questions = VERIFICATION_QUESTIONS[self.config.accounts.verification_field]
        return self.reply(conversation_id, agent, questions.get(language) or questions["en"])

    def check_verification(self, conversation_id: str, agent: Actor) -> bool:
        """The person's latest message, checked against the account exactly as the dialogue
        checks a verification answer (the agent never sees the date of birth or the postal
        code, and cannot mark someone verified on a hunch). Right: the dialogue's ``verified``
        slot is set, so the bot, back in charge, may speak of the debt. Wrong: nothing about the
        debt; the history and the audit say so."""
        self._check(conversation_id)
        account_id = account_id_of(conversation_id)
        account = self.accounts.get(account_id) if account_id else None
        if account is None:
            raise DeskError("this conversation has no account to verify against")
        if self.plans is None:
            raise DeskError("verification answers cannot be checked here")
        answer = self._last_inbound_text(conversation_id)
        if not answer:
            raise DeskError("the person has not written an answer yet: ask the verification question first")
        self._hold(conversation_id, agent)
        today = self.clock.now().astimezone(ZoneInfo(self._zone(account))).date()
        matched = self.plans.verify(account.account_id, answer, today=today)
        if matched:
            self.redis.hset(self.verified_key, conversation_id, "1")
            self.conversation_history.event(conversation_id, "verified", by=self._by(agent))
            self._tell_rasa(conversation_id, [{"event": "slot", "name": "verified", "value": True}])
        else:
            self.conversation_history.event(conversation_id, "verification_failed", by=self._by(agent),
                                            text="Their answer does not match the account")  # fmt: skip
        self._audit(agent, "verified" if matched else "verification_failed", conversation_id)
        self._touch(conversation_id, agent)
        return matched

    def _last_inbound_text(self, conversation_id: str) -> str:
        """What the person last wrote in this conversation (its history), or ``""``."""
        entry = self.conversation_history.last_inbound(conversation_id)
        return entry.text if entry is not None else ""

    # --- working the conversation -----------------------------------------------------------------

    def add_note(self, conversation_id: str, agent: Actor, text: str) -> None:
        """An internal note: for agents, never sent."""
        self._check(conversation_id)
        note = _text(text, "the note", MAX_NOTE)
        self.conversation_history.event(conversation_id, "note", by=self._by(agent), text=note)
        self._audit(agent, "note", conversation_id)
        self._touch(conversation_id, agent)

    def set_flag(self, conversation_id: str, agent: Actor, flag: str, on: bool, detail: str = "") -> None:
        """Set or clear a flag on the person's account. The pauses (``dispute``, ``attorney``...)
        are ``pause:<flag>`` in the account's state, which the gate reads for every proactive
        message: they take effect at once. ``crisis`` is set only by the safety screen, and a
        person clearing it allows outreach again. ``vulnerable`` (``flag:vulnerable``) takes
        effect at once too: the gate sends no openers or missed-payment messages (reminders of
        the person's own plan still go: ``rules.VULNERABLE_STILL_GETS``), and the dialogue's
        ``vulnerable`` slot is set, so the bot pushes no choices or payment and hands questions
        about paying to a person. Clearing ``vulnerable`` or ``crisis`` sets the slot false
        unless the other is still on the account."""
        self._check(conversation_id)
        if flag not in FLAGS:
            raise DeskError(f"unknown flag {flag!r} (one of {', '.join(FLAGS)})")
        if flag == "crisis" and on:
            raise DeskError("the crisis flag is set by the safety screen; an agent may only clear it")
        note = _text(detail, "the flag's detail", MAX_DETAIL, required=False)
        account = self._account(conversation_id)
        if account is None:
            raise DeskError("this conversation has no account: flags are kept on accounts")
        name = f"pause:{flag}" if flag in PAUSE_FLAGS else f"flag:{flag}"
        state_key = self.keys.account_state(account.account_id)
        # The flag, and what the dialogue is to believe after it, read in the same MULTI.
        pipe = self.redis.pipeline(transaction=True)
        if on:
            value = {"at": self.clock.now().isoformat(), "detail": note, "by": agent.id}
            pipe.hset(state_key, name, json.dumps(value))
        else:
            pipe.hdel(state_key, name)
        pipe.hmget(state_key, list(DIALOGUE_VULNERABLE.values()))
        *_, after = pipe.execute()
        if flag in DIALOGUE_VULNERABLE:
            # The account's state is written first (the gate honours it at once); should Rasa be
            # down, the event waits in order for ``flush_tracker_events``.
            vulnerable = any(field is not None for field in after)
            self._tell_rasa(conversation_id, [{"event": "slot", "name": "vulnerable", "value": vulnerable}])
        self.conversation_history.event(
            conversation_id, "flag_set" if on else "flag_cleared", by=self._by(agent),
            detail={"flag": flag, **({"detail": note} if note else {})},
        )  # fmt: skip
        self._audit(agent, "flag", conversation_id, flag=flag, on="1" if on else "0")
        self._touch(conversation_id, agent)

    def set_preference(self, conversation_id: str, agent: Actor, name: str, value: str) -> None:
        """``channel`` (one the person has an address on), ``language`` (one the product speaks) or
        ``contact_window`` (the person's words, "weekdays after 6pm", or the stored JSON; empty
        clears it)."""
        self._check(conversation_id)
        if name not in PREFERENCES:
            raise DeskError(f"unknown preference {name!r} (one of {', '.join(PREFERENCES)})")
        account = self._account(conversation_id)
        if account is None:
            raise DeskError("this conversation has no account: preferences are kept on accounts")
        value = _text(value, f"the {name.replace('_', ' ')}", 300, required=name != "contact_window")
        stored: str | None
        if name == "channel":
            if value not in CHANNELS:
                raise DeskError(f"unknown channel {value!r} (one of {', '.join(CHANNELS)})")
            if self._address(conversation_id, account, value) is None:
                raise DeskError(f"the person has no {value} address")
            stored = value
        elif name == "language":
            languages = [str(lang) for lang in self.config.accounts.languages]
            if value not in languages:
                raise DeskError(f"unknown language {value!r} (one of {', '.join(languages)})")
            stored = value
        else:
            stored = self._contact_window(value) if value else None
        state_key = self.keys.account_state(account.account_id)
        if stored is None:
            self.redis.hdel(state_key, f"pref:{name}")
        else:
            self.redis.hset(state_key, f"pref:{name}", stored)
        self.conversation_history.event(
            conversation_id,
            "preference_set",
            by=self._by(agent),
            detail={"name": name, "value": stored or ""},
        )
        self._audit(agent, "preference", conversation_id, name=name, value=stored or "")
        self._touch(conversation_id, agent)

    def opt_out(self, conversation_id: str, agent: Actor, channel: str, reason: str) -> None:
        """Opt the person's address on ``channel`` out (with the reason, required)."""
        self._opt(conversation_id, agent, channel, reason, out=True)

    def opt_in(self, conversation_id: str, agent: Actor, channel: str, reason: str) -> None:
        """The person asked to hear from us again on ``channel`` (with the reason, required)."""
        self._opt(conversation_id, agent, channel, reason, out=False)

    def record_callback(self, conversation_id: str, agent: Actor, when: str, how: str) -> None:
        """A callback or video call the person asked for, in the same list as the dialogue's."""
        self._check(conversation_id)
        words = _text(when, "when to call", MAX_WHEN)
        if how not in CALLBACK_FORMATS:
            raise DeskError(f"how to call must be one of {', '.join(CALLBACK_FORMATS)}")
        self.redis.xadd(
            self.keys.callbacks,
            {"conversation_id": conversation_id, "account_id": account_id_of(conversation_id) or "",
             "when": words, "how": how, "at": str(self.clock.timestamp()), "by": agent.id},
            maxlen=100_000, approximate=True,
        )  # fmt: skip
        self.conversation_history.event(
            conversation_id, "callback_recorded", by=self._by(agent), text=words, detail={"how": how}
        )
        self._audit(agent, "callback", conversation_id, how=how)
        self._touch(conversation_id, agent)

    def reveal_address(self, conversation_id: str, agent: Actor, channel: str) -> str:
        """The person's full address on ``channel`` (to call them back, say): the console shows
        addresses masked, and each reveal is audited."""
        self._check(conversation_id)
        if channel not in CHANNELS:
            raise DeskError(f"unknown channel {channel!r} (one of {', '.join(CHANNELS)})")
        address = self._address(conversation_id, self._account(conversation_id), channel)
        if not address:
            raise DeskError(f"the person has no {channel} address")
        self._audit(agent, "reveal_address", conversation_id, channel=channel)
        return address

    def _opt(self, conversation_id: str, agent: Actor, channel: str, reason: str, *, out: bool) -> None:
        self._check(conversation_id)
        if channel not in CHANNELS:
            raise DeskError(f"unknown channel {channel!r} (one of {', '.join(CHANNELS)})")
        why = _text(reason, "the reason", MAX_DETAIL)
        account = self._account(conversation_id)
        address = self._address(conversation_id, account, channel)
        if not address:
            raise DeskError(f"the person has no {channel} address")
        if out:
            self.addresses.opt_out(channel, address, account.account_id if account else None)
        else:
            self.addresses.opt_in(channel, address)
        masked = _mask(channel, address)
        self.conversation_history.event(
            conversation_id, "opted_out" if out else "opted_in", by=self._by(agent), text=why,
            detail={"channel": channel, "address": masked},
        )  # fmt: skip
        self._audit(agent, "opt_out" if out else "opt_in", conversation_id, channel=channel, address=masked,
                    reason=why)  # fmt: skip
        self._touch(conversation_id, agent)

    def _contact_window(self, value: str) -> str:
        """A contact window from the agent's words or the stored JSON, as the dialogue stores it."""
        window: ContactWindow | None
        if value.lstrip().startswith("{"):
            try:
                window = window_from_json(value)
            except (ValueError, TypeError, KeyError, AttributeError):
                raise DeskError("the contact window is not valid JSON of the stored kind") from None
        else:
            window = parse_contact_window(value)
        if window is None:
            raise DeskError(
                f'could not understand the contact window {value!r} (try words like "weekdays after 6pm")'
            )
        if window.after is not None and window.before is not None and window.after >= window.before:
            raise DeskError("the contact window must start before it ends")
        if window.excluded_weekdays >= frozenset(range(7)) or (
            window.weekdays_only and window.excluded_weekdays >= frozenset(range(5))
        ):
            raise DeskError("the contact window leaves no day at all")
        return window.to_json()
