"""The scheduler's tick does the console's timed work through the real parts: a claim nobody
touched goes back to the queue; one touched stays."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import redis

from bot.clock import Clock
from bot.console.handoff import State
from bot.outreach.scheduler import tick
from bot.runtime.services import build_services
from tests.conftest import ConfigFactory

START = datetime(2026, 12, 7, 15, 0, tzinfo=timezone.utc)


def test_a_tick_returns_idle_claims_to_the_queue(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    clock = Clock(START)
    services = build_services(make_config(console={"claim_idle_minutes": 20}), redis_client, clock=clock)
    handoff = services.handoff
    for conversation in ("acct-idle", "acct-busy"):
        handoff.escalate(conversation, "asked_for_person")
        handoff.claim(conversation, "ana")
    clock.advance(timedelta(minutes=15))
    handoff.touch("acct-busy", "ana")
    clock.advance(timedelta(minutes=6))  # 21 minutes since the claims, 6 since the touch
    tick(services)
    assert handoff.get("acct-idle").state is State.WAITING
    assert "claim_idle" in handoff.get("acct-idle").reasons
    assert handoff.get("acct-busy").state is State.AGENT
    # Rasa hears "resume" for the released one (here unreachable: the event waits, in order).
    pending = [json.loads(raw) for raw in redis_client.lrange(services.desk.pending_events_key, 0, -1)]
    assert [(p["conversation_id"], p["events"]) for p in pending] == [("acct-idle", [{"event": "resume"}])]
