"""Replying to the person (``DeskReplies``, part of ``bot.console.desk.Desk``): the agent's reply
through the compliance gate, the replies the gate deferred (kept, released, cancelled), and the
verdict the agent sees (``ReplyVerdict``).

**Replies and the compliance gate.** Every reply is decided by the gate *before* it is queued,
and the agent sees the verdict at once (``ReplyVerdict``): sent, deferred until a moment (shown in
the agents' zone and the person's), or blocked with the rule's reason. Nothing is dropped in
silence: a deferred reply waits in a Redis sorted set until ``release_deferred`` queues it (the
scheduler's tick), a blocked one is a ``reply_blocked`` line in the conversation's history.

Which rules apply depends on whether the person is in a conversation right now:

- the person wrote within the gate's reply window (``compliance.reply_window_minutes``): the
  reply is a reply (``Outgoing(proactive=False)``): it goes at any hour, like the bot's answers;
- otherwise the agent is the one starting contact, so it is asked as a proactive message of kind
  ``agent``: contact hours, the person's own contact window and the frequency caps apply (a reply
  at 03:00 to someone who wrote yesterday is deferred to the morning in their zone), and so do the
  pauses (``pause:dispute``, ``pause:attorney``... block it; the reason says which). The outbound
  worker asks the gate again with the same ``proactive`` flag right before sending, so both checks
  agree.

The gate does not stop replies to an opted-out address (its rule 2 leaves that to the caller: the
one confirmation of an opt-out is itself a reply), so the desk does: an address that opted out or
is unreachable blocks the reply here, with the reason.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from bot.compliance.rules import CHANNELS, Outgoing, Verdict
from bot.console.desk_base import DeskBase, DeskError, _Facts, _text
from bot.console.handoff import Actor
from bot.conversations.identity import account_id_of
from bot.conversations.outbound import enqueue_outbound
from channels.base import DeliveryReceipt, DeliveryStatus, InboundMessage, OutboundMessage
from channels.sms_text import prefer_gsm
from channels.sms_text import segments as sms_segments

#: The delivery error code of a deferred reply an agent cancelled (shown as ``cancelled``).
CANCELLED = "cancelled"


#: The longest reply per channel (SMS: Twilio takes 1,600 characters, and a proactive text gets
#: the opt-out line added; Telegram: 4,096 per message).
MAX_REPLY = {"sms": 1_500, "telegram": 4_000, "email": 20_000}

#: How long a releaser holds a due deferred reply before another may take it (it died).
RELEASE_LEASE_SECONDS = 60.0


@dataclass(frozen=True)
class ReplyVerdict:
    """What became of an agent's reply, at once."""

    #: ``sent`` (queued now), ``deferred`` (held until ``until``) or ``blocked``.
    outcome: str
    rule: str
    reason: str
    outbox_id: str
    channel: str
    until: datetime | None = None
    #: ``deferred``: the moment in the agents' zone, e.g. "Mon 7 Dec 09:00 (America/New_York)".
    until_agent: str = ""
    #: ``deferred``: the same moment in the person's zone, when known.
    until_debtor: str = ""
    #: SMS segments of the text as it leaves (0 for other channels).
    segments: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome, "rule": self.rule, "reason": self.reason, "outbox_id": self.outbox_id,
            "channel": self.channel, "until": self.until.isoformat() if self.until else None,
            "until_agent": self.until_agent, "until_debtor": self.until_debtor, "segments": self.segments,
        }  # fmt: skip


def format_moment(moment: datetime, zone: str) -> str:
    """``Mon 7 Dec 09:00 (America/New_York)``: a moment as people read it, in ``zone``."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%a} {local.day} {local:%b %H:%M} ({zone})"


class DeskReplies(DeskBase):
    """Replying to the person, through the compliance gate."""

    def reply(
        self, conversation_id: str, agent: Actor, text: str, channel: str | None = None
    ) -> ReplyVerdict:
        """The agent's words to the person, through the compliance gate (see the module's
        docstring). Replying to a conversation nobody holds claims it first (the agent's words
        and the bot's must not cross); one another agent holds raises ``AlreadyClaimed``."""
        self._check(conversation_id)
        if channel is not None and channel not in CHANNELS:
            raise DeskError(f"unknown channel {channel!r} (choose one of {', '.join(CHANNELS)})")
        self._hold(conversation_id, agent)
        facts = self._facts(conversation_id)
        verified = self._verified(conversation_id)[0]
        verdict = self._send(
            conversation_id,
            text,
            channel,
            facts,
            by=self._by(agent),
            kind="agent",
            verified=verified,
            who=agent,
        )
        self._audit(
            agent, "reply", conversation_id, outcome=verdict.outcome, rule=verdict.rule,
            channel=verdict.channel, outbox_id=verdict.outbox_id, segments=str(verdict.segments),
        )  # fmt: skip
        self._touch(conversation_id, agent)
        return verdict

    def segments(self, text: str) -> int:
        """How many SMS segments ``text`` takes as the desk sends it."""
        return sms_segments(prefer_gsm(text))

    def release_deferred(self) -> int:
        """Deferred replies whose time has come: the gate is asked again (things may have changed
        since) and they are queued, deferred again, or withheld with the rule. Returns how many
        were queued."""
        now = self.clock.timestamp()
        queued = 0
        for member in self.redis.zrangebyscore(self.deferred_key, "-inf", now):
            outbox_id = member.decode()
            # One releaser per reply: whoever leases it handles it. A lease, not a removal: a
            # releaser killed half-way leaves the reply due again after the lease, and queueing
            # it twice queues it once (the outbox id).
            if not self._lease_due(
                keys=[self.deferred_key], args=[outbox_id, now, now + RELEASE_LEASE_SECONDS]
            ):
                continue
            raw = self.redis.hget(self.deferred_items_key, outbox_id)
            if raw is None:
                self.redis.zrem(self.deferred_key, outbox_id)
                continue
            stored = json.loads(raw)
            message = OutboundMessage.from_json(stored["message"])
            if self._release(message, stored):
                queued += 1
        return queued

    def deferred_replies(self, conversation_id: str) -> list[OutboundMessage]:
        """The replies to this conversation that wait for their moment (the gate deferred them)."""
        found = []
        for _, raw in self.redis.hscan_iter(self.deferred_items_key, count=500):
            try:
                message = OutboundMessage.from_json(json.loads(raw)["message"])
            except (KeyError, ValueError, TypeError):
                continue
            if message.conversation_id == conversation_id:
                found.append(message)
        return sorted(found, key=lambda m: m.created_at)

    def cancel_deferred(self, conversation_id: str, agent: Actor, outbox_id: str) -> bool:
        """A deferred reply will not go after all: ``True`` when it was still waiting (one that
        went meanwhile cannot be called back)."""
        self._check(conversation_id)
        raw = self.redis.hget(self.deferred_items_key, outbox_id) if isinstance(outbox_id, str) else None
        if raw is None:
            return False
        message = OutboundMessage.from_json(json.loads(raw)["message"])
        if message.conversation_id != conversation_id:
            raise DeskError("that reply belongs to another conversation")
        # Whoever removes it from the set owns it: the releaser and a cancel never both act.
        if not self.redis.zrem(self.deferred_key, outbox_id):
            return False
        self.redis.hdel(self.deferred_items_key, outbox_id)
        self.deliveries.record(DeliveryReceipt(
            outbox_id=outbox_id, channel=message.channel, status=DeliveryStatus.FAILED,
            error_code=CANCELLED, error_message=f"cancelled by {agent.id} before it went",
        ))  # fmt: skip
        self.conversation_history.event(
            conversation_id, "reply_cancelled", by=self._by(agent), text=message.text,
            detail={"outbox_id": outbox_id, "channel": message.channel},
        )  # fmt: skip
        self._audit(agent, "cancel_deferred", conversation_id, outbox_id=outbox_id, channel=message.channel)
        self._touch(conversation_id, agent)
        return True

    # --- the reply path ---------------------------------------------------------------------------

    def _send(
        self,
        conversation_id: str,
        text: str,
        channel: str | None,
        facts: _Facts,
        *,
        by: str,
        kind: str,
        verified: bool,
        who: Actor,
        outbox_id: str = "",
    ) -> ReplyVerdict:
        account = facts.account
        addresses = self._addresses(conversation_id, account)
        chosen = channel or self._current_channel(conversation_id, facts.state, addresses)
        if not chosen:
            raise DeskError("the person has no address to write to")
        address = addresses.get(chosen)
        if address is None:
            raise DeskError(f"the person has no {chosen} address")
        words = _text(text, "the reply", MAX_REPLY[chosen])
        if chosen == "sms":
            words = prefer_gsm(words)
        outbox_id = outbox_id or f"{'agent' if kind == 'agent' else kind}:{uuid.uuid4().hex}"
        now = self.clock.now()
        window = self.gate.rules_for(account).reply_window
        last = facts.last_inbound_at
        proactive = not (last is not None and timedelta(0) <= now - last <= window)

        def blocked(rule: str, reason: str) -> ReplyVerdict:
            self.conversation_history.event(
                conversation_id, "reply_blocked", by=by, text=words,
                detail={"rule": rule, "reason": reason, "channel": chosen, "outbox_id": outbox_id},
            )  # fmt: skip
            return ReplyVerdict("blocked", rule, reason, outbox_id, chosen)

        refusal = self._address_refusal(chosen, address)
        if refusal is not None:
            return blocked(*refusal)
        decision = self.gate.decide(
            account, chosen, address,
            Outgoing(channel=chosen, text=words, language=facts.language, proactive=proactive,
                     verified=verified, mini_miranda_said=True, kind=kind),
            now=now, outbox_id=outbox_id,
        )  # fmt: skip
        if decision.verdict is Verdict.BLOCK:
            return blocked(decision.rule, decision.reason)
        message = OutboundMessage(
            outbox_id=outbox_id, channel=chosen, recipient=address, text=decision.text,
            conversation_id=conversation_id, proactive=proactive, created_at=now.timestamp(),
            language=facts.language, kind=kind,
        )  # fmt: skip
        if chosen == "email" and self.email is not None:
            # In the person's own thread when they wrote by email ("Re: <their subject>",
            # In-Reply-To and References), as the bot's answers are.
            answering = self._email_thread(conversation_id)
            # Without their subject (not recorded), the usual subject, still in their thread.
            [message] = self.email.dress(
                [message], account_id=account.account_id if account else None, language=facts.language,
                answering=answering if answering is not None and answering.raw.get("subject") else None,
            )  # fmt: skip
            if answering is not None:
                references = tuple(answering.raw.get("references") or ())
                message = replace(message, in_reply_to=answering.external_id, references=references)
        count = self.segments(message.text) if chosen == "sms" else 0
        if decision.verdict is Verdict.DEFER and decision.until is not None:
            until = decision.until.astimezone(timezone.utc)
            self.conversation_history.outbound(
                conversation_id, outbox_id=outbox_id, channel=chosen, text=message.text, kind=kind, by=by,
                detail={"deferred_until": until.isoformat(), "rule": decision.rule},
            )  # fmt: skip
            stored = {"message": message.to_json(), "by": by, "agent": who.id, "kind": kind,
                      "verified": verified}  # fmt: skip
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(self.deferred_items_key, outbox_id, json.dumps(stored))
            pipe.zadd(self.deferred_key, {outbox_id: until.timestamp()})
            pipe.execute()
            zone = (
                (decision.zones[0] if decision.zones else "") or (account.timezone if account else "") or ""
            )
            return ReplyVerdict(
                "deferred", decision.rule, decision.reason, outbox_id, chosen, until=until,
                until_agent=format_moment(until, self.config.console.zone),
                until_debtor=format_moment(until, zone) if zone else "", segments=count,
            )  # fmt: skip
        self.conversation_history.outbound(
            conversation_id, outbox_id=outbox_id, channel=chosen, text=message.text, kind=kind, by=by
        )
        enqueue_outbound(self.outbound, self.jobs, self.keys, [message], self._dedupe_ttl)
        self._tell_rasa(conversation_id, [self._bot_event(message, by, who)])
        return ReplyVerdict("sent", decision.rule, decision.reason, outbox_id, chosen, segments=count)

    def _release(self, message: OutboundMessage, stored: Mapping[str, Any]) -> bool:
        """A deferred reply's time came: queue it (``True``), defer it again or withhold it."""
        outbox_id, conversation_id = message.outbox_id, message.conversation_id
        account_id = account_id_of(conversation_id)
        account = self.accounts.get(account_id) if account_id else None
        text = message.text
        refusal = self._address_refusal(message.channel, message.recipient)
        if refusal is None:
            decision = self.gate.decide(
                account, message.channel, message.recipient,
                Outgoing(channel=message.channel, text=message.text, language=message.language or "en",
                         proactive=message.proactive, verified=bool(stored.get("verified")),
                         mini_miranda_said=True, kind=message.kind),
                outbox_id=outbox_id,
            )  # fmt: skip
            if decision.verdict is Verdict.DEFER and decision.until is not None:
                self.redis.zadd(self.deferred_key, {outbox_id: decision.until.timestamp()})
                return False
            refusal = (decision.rule, decision.reason) if decision.verdict is Verdict.BLOCK else None
            text = decision.text or text
        if refusal is not None:
            rule, reason = refusal
            self.deliveries.record(DeliveryReceipt(
                outbox_id=outbox_id, channel=message.channel, status=DeliveryStatus.FAILED,
                error_code=f"compliance:{rule}", error_message=reason,
            ))  # fmt: skip
            self.conversation_history.event(
                conversation_id, "reply_blocked", by=str(stored.get("by") or "bot"),
                detail={"rule": rule, "reason": reason, "channel": message.channel, "outbox_id": outbox_id},
            )  # fmt: skip
            self._forget_deferred(outbox_id)
            return False
        ready = replace(message, text=text)
        enqueue_outbound(self.outbound, self.jobs, self.keys, [ready], self._dedupe_ttl)
        who = Actor.of(str(stored.get("agent") or "system"), "system")
        self._tell_rasa(conversation_id, [self._bot_event(ready, str(stored.get("by") or "bot"), who)])
        self._forget_deferred(outbox_id)  # last: a kill before this releases it again, once
        return True

    def _forget_deferred(self, outbox_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(self.deferred_key, outbox_id)
        pipe.hdel(self.deferred_items_key, outbox_id)
        pipe.execute()

    @staticmethod
    def _bot_event(message: OutboundMessage, by: str, who: Actor) -> dict[str, Any]:
        metadata: dict[str, Any] = {"outbox_id": message.outbox_id, "channel": message.channel}
        if by.startswith("agent:"):
            metadata["agent"] = who.id
        else:
            metadata["handback_by"] = who.id
        return {"event": "bot", "text": message.text, "metadata": metadata}

    def _address_refusal(self, channel: str, address: str) -> tuple[str, str] | None:
        """What the gate leaves to its callers for replies: an opted-out address gets nothing but
        its one confirmation (the worker sends that), an unreachable one cannot be reached."""
        status = self.addresses.status(channel, address)
        if status.opted_out_at is not None:
            return "opted_out", (
                f"The person opted out of {channel} messages on this address. Nothing more may be "
                "sent there unless they opt back in (record it with a reason), or choose another channel."
            )
        if status.unreachable_at is not None:
            return "unreachable", (
                f"The {channel} address is marked unreachable (messages to it failed). "
                "Choose another channel."
            )
        return None

    def _email_thread(self, conversation_id: str) -> InboundMessage | None:
        """The person's latest email in this conversation, as much of it as threading needs
        (Message-ID, subject, References): from its history entry's detail, or from what the
        desk kept when an agent attached mail set aside. ``None``: they never wrote by email."""
        entry = self.conversation_history.last_inbound(conversation_id, channel="email", scan=500)
        if entry is None:
            return None
        message_id = entry.ref.removeprefix("deadletter:email:").removeprefix("email:")
        detail: Mapping[str, Any] = entry.detail if isinstance(entry.detail, dict) else {}
        kept = {k.decode(): v.decode("utf-8", "replace") for k, v in
                self.redis.hgetall(self.email_thread_key(conversation_id)).items()}  # fmt: skip
        if kept.get("source") == entry.ref:
            detail = {**json.loads(kept.get("thread") or "{}"), **detail}
            message_id = str(detail.get("message_id") or "")
        if not message_id.startswith("<"):
            return None  # no Message-ID to answer (a dead letter without one)
        references = [str(r) for r in detail.get("references") or () if isinstance(r, str)]
        return InboundMessage(
            channel="email", external_id=message_id, sender="", text="",
            raw={"subject": str(detail.get("subject") or ""), "references": references},
        )  # fmt: skip
