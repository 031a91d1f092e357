"""`debtbot outreach run` queues a run; `debtbot outreach stats` shows the wordings' results."""

from __future__ import annotations

from pathlib import Path

import redis
from click.testing import CliRunner

from bot.cli import main
from bot.config import load_config
from bot.runtime.services import build_services
from tests.conftest import ROOT, TEST_SECRETS, write_config


def test_a_run_is_queued_and_the_stats_list_every_wording(tmp_path: Path, redis_url: str,
                                                          redis_client: redis.Redis) -> None:  # fmt: skip
    path = write_config(tmp_path, {})
    env = {"REDIS_URL": redis_url, **TEST_SECRETS}
    services = build_services(load_config(path, env), redis_client)
    services.accounts.import_csv((ROOT / "examples" / "accounts.csv").read_text(), languages=["en", "es"],
                                 default_language="en", verification_field="date_of_birth")  # fmt: skip
    services.opener_stats.sent("ACC-1002", "en", "warm")

    result = CliRunner().invoke(main, ["outreach", "run", "--config", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert "12 account(s) queued" in result.output
    assert services.outreach_queue.pending_keys()

    stats = CliRunner().invoke(main, ["outreach", "stats", "--config", str(path)], env=env)
    assert stats.exit_code == 0
    lines = stats.output.splitlines()
    assert lines[0].split() == ["language", "variant", "sent", "replied", "verified", "plan", "plan", "rate"]
    assert any(line.split()[:3] == ["en", "warm", "1"] for line in lines)
    assert sum(1 for line in lines[1:] if line.strip()) == 4  # two wordings in each language
