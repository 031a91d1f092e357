"""The IMAP poller against a real dovecot: every reply is handed over once, however it arrives."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import imapclient
import pytest

from bot.config import ImapConfig
from bot.email.poller import EmailPoller, EmailPollerError
from tests.conftest import wait_for
from tests.fakes.dovecot import DovecotServer

KEYWORD = "$DebtbotProcessed"
SENDER = "maria.garcia@example.org"
POLLER_LOGGER = "bot.email.poller"


def message(number: int, body: str = "I can pay on Friday") -> bytes:
    """A reply as it sits in the mailbox (CRLF line ends, as IMAP stores them)."""
    return (
        f"From: Maria Garcia <{SENDER}>\r\n"
        "To: help@northwind.example.com\r\n"
        f"Subject: Re: your account {number}\r\n"
        f"Message-ID: <reply-{number}@example.org>\r\n"
        "Date: Mon, 24 Nov 2025 10:00:00 +0000\r\n"
        "\r\n"
        f"{body} ({number})\r\n"
    ).encode()


def number_of(raw: bytes) -> int:
    subject = next(line for line in raw.split(b"\r\n") if line.startswith(b"Subject:"))
    return int(subject.rsplit(b" ", 1)[1])


class Recorder:
    """A ``deliver`` that stores what it is given; ``fail_once`` makes chosen messages fail once."""

    def __init__(self, fail_once: set[int] | None = None) -> None:
        self.received: list[bytes] = []
        self.fail_once = set(fail_once or ())
        self.attempts: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, raw: bytes) -> None:
        number = number_of(raw)
        with self._lock:
            self.attempts.append(number)
            if number in self.fail_once:
                self.fail_once.discard(number)
                # A message that quotes an address: it must not reach the poller's log.
                raise ConnectionError(f"database down while storing mail from {SENDER}")
            self.received.append(raw)

    @property
    def numbers(self) -> list[int]:
        with self._lock:
            return [number_of(raw) for raw in self.received]


def settings_for(server: DovecotServer, **overrides: Any) -> ImapConfig:
    values: dict[str, Any] = {
        "enabled": True,
        "host": server.host,
        "port": server.port,
        "security": "none",
        "idle_seconds": 600,
        "poll_seconds": 1,
        "reconnect_min_seconds": 0.1,
        "reconnect_max_seconds": 0.4,
        "timeout_seconds": 5,
    }
    values.update(overrides)
    return ImapConfig(**values)


def poller_for(server: DovecotServer, deliver: Recorder, **overrides: Any) -> EmailPoller:
    return EmailPoller(settings_for(server, **overrides), server.username, server.password, deliver)


@contextmanager
def running(poller: EmailPoller) -> Iterator[threading.Event]:
    """``poller.run`` in a thread; stopped (and required to return promptly) at the end."""
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "run() did not return after stop was set"


def connections(caplog: pytest.LogCaptureFixture) -> int:
    return sum(record.getMessage().startswith("connected to IMAP") for record in caplog.records)


@pytest.fixture(autouse=True)
def _poller_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=POLLER_LOGGER)


# -- check_once -------------------------------------------------------------------------------


def test_a_message_is_handed_over_once_and_marked_processed(imap_server: DovecotServer) -> None:
    raw = message(1)
    uid = imap_server.append(raw)
    deliver = Recorder()
    poller = poller_for(imap_server, deliver)

    assert poller.check_once() == 1
    assert deliver.received == [raw]
    assert KEYWORD in imap_server.flags_of_all()[uid]
    assert poller.check_once() == 0
    assert deliver.received == [raw]


def test_a_new_poller_instance_does_not_hand_over_again(imap_server: DovecotServer) -> None:
    imap_server.append(message(1))
    first = Recorder()
    poller_for(imap_server, first).check_once()

    imap_server.append(message(2))
    second = Recorder()
    assert poller_for(imap_server, second).check_once() == 1  # a restarted product
    assert second.numbers == [2]


def test_the_seen_flag_a_reader_relies_on_is_left_alone(imap_server: DovecotServer) -> None:
    unread = imap_server.append(message(1))
    read = imap_server.append(message(2), flags=["\\Seen"])  # a person already opened it
    deliver = Recorder()

    assert poller_for(imap_server, deliver).check_once() == 2
    flags = imap_server.flags_of_all()
    assert flags[unread] == {KEYWORD}
    assert flags[read] == {KEYWORD, "\\Seen"}


def test_a_failing_delivery_does_not_block_the_rest_and_is_retried_next_pass(
    imap_server: DovecotServer,
) -> None:
    uids = imap_server.append_many([message(1), message(2), message(3)])
    deliver = Recorder(fail_once={2})
    poller = poller_for(imap_server, deliver)

    assert poller.check_once() == 2
    assert deliver.numbers == [1, 3]
    assert KEYWORD not in imap_server.flags_of_all()[uids[1]]

    assert poller.check_once() == 1
    assert deliver.numbers == [1, 3, 2]
    assert all(KEYWORD in flags for flags in imap_server.flags_of_all().values())


def test_a_large_backlog_is_handed_over_in_uid_order_a_batch_at_a_time(
    imap_server: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    imap_server.append_many([message(n) for n in range(1, 121)])
    fetched_sizes: list[int] = []
    real_fetch = imapclient.IMAPClient.fetch

    def counting_fetch(self: imapclient.IMAPClient, messages: Any, data: Any, modifiers: Any = None) -> Any:
        fetched_sizes.append(len(messages))
        return real_fetch(self, messages, data, modifiers)

    monkeypatch.setattr(imapclient.IMAPClient, "fetch", counting_fetch)
    deliver = Recorder()

    assert poller_for(imap_server, deliver).check_once() == 120
    assert deliver.numbers == list(range(1, 121))
    assert max(fetched_sizes) <= 50
    assert sum(fetched_sizes) == 120


def test_without_custom_keywords_messages_are_marked_seen_with_one_warning(
    imap_server: DovecotServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_select = imapclient.IMAPClient.select_folder

    def select_without_keywords(self: imapclient.IMAPClient, folder: str, readonly: bool = False) -> Any:
        # What a server that cannot store new keywords answers: PERMANENTFLAGS without \*.
        response = dict(real_select(self, folder, readonly))
        response[b"PERMANENTFLAGS"] = tuple(f for f in response[b"PERMANENTFLAGS"] if f != b"\\*")
        return response

    monkeypatch.setattr(imapclient.IMAPClient, "select_folder", select_without_keywords)
    uid = imap_server.append(message(1))
    deliver = Recorder()
    poller = poller_for(imap_server, deliver)

    assert poller.check_once() == 1
    assert imap_server.flags_of_all()[uid] == {"\\Seen"}
    imap_server.append(message(2))
    assert poller.check_once() == 1
    assert deliver.numbers == [1, 2]
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "\\Seen instead" in r.getMessage()
    ]
    assert len(warnings) == 1


def test_check_once_reports_an_unreachable_server_as_email_poller_error(imap_server: DovecotServer) -> None:
    imap_server.stop()
    with pytest.raises(EmailPollerError) as raised:
        poller_for(imap_server, Recorder()).check_once()
    assert isinstance(raised.value.__cause__, OSError)


def test_a_refused_login_is_an_email_poller_error_without_the_password(imap_server: DovecotServer) -> None:
    settings = settings_for(imap_server)
    poller = EmailPoller(settings, imap_server.username, "wrong-password-123", Recorder())
    with pytest.raises(EmailPollerError) as raised:
        poller.check_once()
    assert "wrong-password-123" not in str(raised.value)


def test_logs_name_messages_by_uid_only(imap_server: DovecotServer, caplog: pytest.LogCaptureFixture) -> None:
    imap_server.append_many([message(1, body="secret plan"), message(2)])
    poller_for(imap_server, Recorder(fail_once={1})).check_once()

    logged = "\n".join(record.getMessage() for record in caplog.records if record.name == POLLER_LOGGER)
    assert "UID 1" in logged  # the failure is reported ...
    for private in (SENDER, imap_server.username, imap_server.password, "secret plan", "your account"):
        assert private not in logged  # ... without addresses, credentials or content


# -- TLS --------------------------------------------------------------------------------------


def _tls_server(server: DovecotServer) -> DovecotServer:
    if server.cert_file is None:
        pytest.skip("openssl is not installed: no certificate for the TLS listeners")
    return server


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_mail_is_read_over_tls_with_a_verified_certificate(imap_server: DovecotServer, security: str) -> None:
    server = _tls_server(imap_server)
    server.append(message(1))
    port = server.ssl_port if security == "ssl" else server.port
    settings = settings_for(server, security=security, port=port)
    deliver = Recorder()

    poller = EmailPoller(
        settings, server.username, server.password, deliver, ssl_context=server.ssl_context()
    )
    assert poller.check_once() == 1


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_an_untrusted_certificate_is_refused(imap_server: DovecotServer, security: str) -> None:
    server = _tls_server(imap_server)
    port = server.ssl_port if security == "ssl" else server.port
    settings = settings_for(server, security=security, port=port)

    with pytest.raises(EmailPollerError) as raised:
        EmailPoller(settings, server.username, server.password, Recorder()).check_once()
    assert isinstance(raised.value.__cause__, ssl.SSLError)


# -- run --------------------------------------------------------------------------------------


def test_idle_hands_over_a_message_that_arrives_while_waiting(
    imap_server: DovecotServer, caplog: pytest.LogCaptureFixture
) -> None:
    imap_server.append(message(1))
    deliver = Recorder()
    # Polling an hour apart: only IDLE can bring the second message in within seconds.
    poller = poller_for(imap_server, deliver, poll_seconds=3600, idle_seconds=600)
    with running(poller):
        wait_for(lambda: deliver.numbers == [1], timeout=5, what="the backlog")
        time.sleep(0.2)  # the poller is now in IDLE
        imap_server.append(message(2))
        wait_for(lambda: deliver.numbers == [1, 2], timeout=3, what="the message that arrived during IDLE")
    assert connections(caplog) == 1
    assert "IMAP IDLE supported" in caplog.text


def test_without_idle_the_poller_finds_new_mail_by_polling(
    imap_server_without_idle: DovecotServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = imap_server_without_idle
    deliver = Recorder()
    with running(poller_for(server, deliver, poll_seconds=1)):
        wait_for(lambda: connections(caplog) == 1, timeout=5, what="the connection")
        server.append(message(1))
        wait_for(lambda: deliver.numbers == [1], timeout=4, what="the polled message")
    assert connections(caplog) == 1  # found by polling, not by reconnecting
    assert "IMAP IDLE not supported" in caplog.text


def test_a_failed_delivery_is_retried_while_running(imap_server: DovecotServer) -> None:
    imap_server.append(message(1))
    deliver = Recorder(fail_once={1})
    # IDLE is renewed only every 10 minutes: the retry comes after poll_seconds.
    with running(poller_for(imap_server, deliver, poll_seconds=1)):
        wait_for(lambda: deliver.numbers == [1], timeout=5, what="the retried message")
    assert deliver.attempts == [1, 1]


@pytest.mark.parametrize("graceful", [True, False], ids=["with-bye", "connection-just-ends"])
def test_the_poller_reconnects_after_the_server_restarts(
    imap_server: DovecotServer, caplog: pytest.LogCaptureFixture, graceful: bool
) -> None:
    imap_server.append(message(1))
    deliver = Recorder()
    with running(poller_for(imap_server, deliver, poll_seconds=3600)):
        wait_for(lambda: deliver.numbers == [1], timeout=5, what="the backlog")
        time.sleep(0.3)  # in IDLE now
        imap_server.restart(graceful=graceful)
        wait_for(lambda: connections(caplog) == 2, timeout=5, what="the reconnection")
        time.sleep(0.3)  # in IDLE again (mail that lands just before IDLE may wait for a renewal)
        imap_server.append(message(2))
        wait_for(lambda: deliver.numbers == [1, 2], timeout=3, what="the message after the restart")


def test_the_poller_backs_off_while_the_server_is_down_and_recovers(
    imap_server: DovecotServer, caplog: pytest.LogCaptureFixture
) -> None:
    imap_server.append(message(1))
    imap_server.stop()
    deliver = Recorder()
    with running(poller_for(imap_server, deliver)):
        wait_for(lambda: "reconnecting in" in caplog.text, timeout=5, what="a failed connection")
        time.sleep(1)
        failures = caplog.text.count("IMAP connection failed")
        # 0.1 s doubling to 0.4 s (plus jitter up to 0.1 s): a handful of attempts, not hundreds.
        assert 2 <= failures <= 8
        imap_server.start()
        wait_for(lambda: deliver.numbers == [1], timeout=3, what="the message once the server is back")


def test_a_working_connection_that_breaks_is_reestablished_without_the_old_backoff(
    imap_server: DovecotServer, caplog: pytest.LogCaptureFixture
) -> None:
    imap_server.stop()
    poller = poller_for(imap_server, Recorder(), reconnect_min_seconds=0.1, reconnect_max_seconds=10)
    with running(poller):
        # A long outage first: the waits grow 0.1, 0.2, 0.4, 0.8 s ...
        wait_for(lambda: caplog.text.count("IMAP connection failed") >= 4, timeout=5, what="an outage")
        imap_server.start()
        wait_for(lambda: connections(caplog) == 1, timeout=5, what="the connection")
        time.sleep(0.3)  # ... then the connection works for a while and breaks.
        imap_server.restart(graceful=False)
        broke = time.monotonic()
        wait_for(lambda: connections(caplog) == 2, timeout=5, what="the reconnection")
        # Not after the 3.2 s the outage's backoff had reached.
        assert time.monotonic() - broke < 1.5


def test_run_returns_promptly_once_stop_is_set(imap_server: DovecotServer) -> None:
    deliver = Recorder()
    poller = poller_for(imap_server, deliver)
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    thread.start()
    imap_server.append(message(1))
    wait_for(lambda: deliver.numbers == [1], timeout=5, what="the first message")

    started = time.monotonic()
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 2


def test_run_returns_promptly_during_a_long_backoff(
    imap_server: DovecotServer, caplog: pytest.LogCaptureFixture
) -> None:
    imap_server.stop()
    poller = poller_for(imap_server, Recorder(), reconnect_min_seconds=30, reconnect_max_seconds=60)
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    thread.start()
    wait_for(lambda: "reconnecting in" in caplog.text, timeout=5, what="the backoff")

    started = time.monotonic()
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 1


def test_a_message_over_the_size_limit_is_never_downloaded_whole(imap_server: DovecotServer) -> None:
    small = message(1)
    huge = message(2, body="x" * 200_000)
    imap_server.append_many([small, huge])
    deliver, oversized = Recorder(), []
    poller = EmailPoller(
        settings_for(imap_server), imap_server.username, imap_server.password, deliver,
        max_bytes=100_000, oversized=lambda headers, size: oversized.append((headers, size)),
    )  # fmt: skip
    assert poller.check_once() == 2
    assert deliver.numbers == [1]
    [(headers, size)] = oversized
    assert size > 200_000 and b"Message-ID: <reply-2@example.org>" in headers and b"xxxx" not in headers
    assert all(KEYWORD in flags for flags in imap_server.flags_of_all().values())


def test_mail_that_arrives_between_the_search_and_the_idle_is_handed_over_at_once(
    imap_server: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server announces it in the same packet as "+ idling", which imapclient reads whole: the
    # socket then shows nothing, and without a look into the read buffer it would wait 600 s.
    original = imapclient.IMAPClient.idle
    arrived: list[int] = []

    def idle_just_after_new_mail(self: imapclient.IMAPClient) -> None:
        if not arrived:
            arrived.append(imap_server.append(message(1)))
        original(self)

    monkeypatch.setattr(imapclient.IMAPClient, "idle", idle_just_after_new_mail)
    deliver = Recorder()
    with running(poller_for(imap_server, deliver, idle_seconds=600)):
        wait_for(
            lambda: deliver.numbers == [1], timeout=5, what="the mail, without waiting for the IDLE to end"
        )
