"""`debtbot retention run` and the worker's timed analytics work, through the real parts: the
product's events reach the analytics store; old transcripts go, the records stay."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import redis
from click.testing import CliRunner

from bot.cli import main
from bot.clock import Clock
from bot.ops.analytics.store import EventRow
from bot.outreach.scheduler import tick
from bot.runtime.services import build_services
from tests.conftest import TEST_SECRETS, ConfigFactory

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=timezone.utc)


def test_the_tick_brings_escalations_into_the_analytics_store_and_runs_retention_daily(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    clock = Clock(NOW)
    services = build_services(make_config(), redis_client, clock=clock)
    services.agents.flag("acct-A1", "dispute", account_id="A1", detail="sms: not mine", once="sms:SM1")
    tick(services)
    [row] = services.analytics.events("escalated")
    assert (row.conversation_id, row.reason) == ("acct-A1", "dispute")
    assert "not mine" not in str(row.detail)  # the person's words stay out of SQL
    ran_at = redis_client.get(services.keys.retention_last_run)
    assert ran_at is not None
    clock.advance(timedelta(hours=1))
    tick(services)
    assert redis_client.get(services.keys.retention_last_run) == ran_at  # once a day


def test_debtbot_retention_run_deletes_old_transcripts_and_keeps_records(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes], redis_url: str
) -> None:
    config = make_config(retention={"transcript_days": 30, "records_years": 7})
    services = build_services(config, redis_client)
    long_ago = datetime.now(timezone.utc) - timedelta(days=40)
    services.analytics.add([
        EventRow(source="test", source_id="1", at=long_ago, kind="sent", conversation_id="acct-A1"),
        EventRow(source="test", source_id="2", at=long_ago, kind="escalated", reason="dispute", required=True,
                 conversation_id="acct-A1"),
    ])  # fmt: skip
    ran = CliRunner().invoke(main, ["retention", "run", "--config", str(config.source)],
                             env={"REDIS_URL": redis_url, **TEST_SECRETS})  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert "event(s) brought into the analytics store" in ran.output
    assert services.analytics.count("sent") == 0  # the transcript's trace is gone
    assert services.analytics.count("escalated") == 1  # the dispute's record stays
    assert redis_client.get(services.keys.retention_last_run) is not None
