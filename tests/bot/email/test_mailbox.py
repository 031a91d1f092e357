"""The mailbox is read by one worker at a time, and what it reads takes the email path."""

from __future__ import annotations

import threading
from typing import Any

import redis

from bot.email.mailbox import run_mailbox
from bot.runtime.services import build_services
from bot.store.addresses import address_key
from tests.conftest import ConfigFactory, wait_for
from tests.fakes.dovecot import DovecotServer


def reply(number: int) -> bytes:
    return (
        "From: Ana <ana.lopez@example.com>\r\nTo: help@northwind.example.com\r\n"
        f"Subject: Re: hello\r\nMessage-ID: <m{number}@example.com>\r\n\r\nanswer {number}\r\n"
    ).encode()


def test_two_workers_share_the_mailbox_and_each_mail_is_queued_once(
    make_config: ConfigFactory, redis_client: redis.Redis, imap_server: DovecotServer
) -> None:
    imap: dict[str, Any] = {"enabled": True, "host": imap_server.host, "port": imap_server.port,
                            "security": "none", "poll_seconds": 1, "reconnect_min_seconds": 0.1}  # fmt: skip
    env = {"IMAP_USERNAME": imap_server.username, "IMAP_PASSWORD": imap_server.password}
    config = make_config(channels={"email": {"imap": imap}}, env=env)
    workers = [build_services(config, redis_client) for _ in range(2)]
    stop = threading.Event()
    threads = [threading.Thread(target=run_mailbox, args=(s, stop), daemon=True) for s in workers]
    for thread in threads:
        thread.start()
    try:
        imap_server.append_many([reply(n) for n in range(1, 6)])
        key = address_key("email", "ana.lopez@example.com")
        entries = wait_for(lambda: len(workers[0].inbound.unhandled(key)) >= 5 and workers[0].inbound.unhandled(key),
                           timeout=20, what="five mails queued")  # fmt: skip
        assert [e.payload.count("answer") for e in entries] == [1] * 5
        assert redis_client.get(workers[0].keys.mailbox_lease) is not None  # one holder
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    assert len(workers[0].inbound.unhandled(key)) == 5
