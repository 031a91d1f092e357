"""`debtbot email poll --once` and `debtbot email dead-letters`."""

from __future__ import annotations

from pathlib import Path

import redis
from click.testing import CliRunner

from bot.cli import main
from bot.runtime.services import build_services
from bot.store.addresses import address_key
from tests.conftest import TEST_SECRETS, write_config
from tests.fakes.dovecot import DovecotServer


def test_poll_once_queues_the_mailbox_and_sets_aside_what_cannot_be_read(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis, imap_server: DovecotServer
) -> None:
    imap = {"enabled": True, "host": imap_server.host, "port": imap_server.port, "security": "none"}
    path = write_config(tmp_path, {"channels": {"email": {"imap": imap}}})
    env = {"REDIS_URL": redis_url, **TEST_SECRETS, "IMAP_USERNAME": imap_server.username,
           "IMAP_PASSWORD": imap_server.password}  # fmt: skip
    imap_server.append(b"From: ana@example.com\r\nMessage-ID: <ok@x>\r\nSubject: hi\r\n\r\nhello\r\n")
    imap_server.append(b"Subject: no sender at all\r\nMessage-ID: <bad@x>\r\n\r\nhello\r\n")

    result = CliRunner().invoke(main, ["email", "poll", "--once", "--config", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert "2 message(s) handed over" in result.output
    services = build_services(build_config(path, env), redis_client)
    assert len(services.inbound.unhandled(address_key("email", "ana@example.com"))) == 1

    listed = CliRunner().invoke(main, ["email", "dead-letters", "--config", str(path)], env=env)
    assert listed.exit_code == 0 and "no_sender" in listed.output


def test_poll_without_imap_settings_says_what_to_set(tmp_path: Path, redis_url: str) -> None:
    path = write_config(tmp_path, {})
    result = CliRunner().invoke(main, ["email", "poll", "--once", "--config", str(path)],
                                env={"REDIS_URL": redis_url, **TEST_SECRETS})  # fmt: skip
    assert result.exit_code == 2 and "channels.email.imap.enabled" in result.output


def build_config(path: Path, env: dict[str, str]):  # type: ignore[no-untyped-def]
    from bot.config import load_config

    return load_config(path, env)
