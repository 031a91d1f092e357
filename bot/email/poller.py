"""Bring email replies in: watch an IMAP folder and hand every new message to the product once.

A message counts as handled once it carries the ``processed_keyword`` IMAP keyword, set only
after ``deliver`` returned; the search is for messages without it, so a restart never hands a
message over twice (and a crash between ``deliver`` and the flag is harmless: the product
de-duplicates by Message-ID). Messages are read with ``BODY.PEEK[]`` so the ``\\Seen`` flag a
human reader relies on stays as it was. Servers that refuse custom keywords get ``\\Seen``
instead, with a warning.

:meth:`EmailPoller.run` keeps one connection open and waits with IDLE (re-issued every
``idle_seconds``, well inside the 29 minutes after which servers may drop it), or polls every
``poll_seconds`` when the server has no IDLE; it reconnects with exponential backoff (tenacity)
after any connection or protocol error. Logs say what happened, never a password, an address or
message content: messages are named by UID only.
"""

from __future__ import annotations

import io
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import tenacity
from imapclient import IMAPClient  # type: ignore[import-untyped]
from imapclient.exceptions import IMAPClientError  # type: ignore[import-untyped]

from bot.config import ImapConfig

logger = logging.getLogger(__name__)

#: UIDs per FETCH: a large backlog is read a batch at a time, never all at once.
FETCH_BATCH = 50
#: How long one IDLE wait blocks before looking at the stop event again.
STOP_CHECK_SECONDS = 0.5
SEEN = b"\\Seen"
_ANY_KEYWORD = b"\\*"


class EmailPollerError(Exception):
    """The mailbox could not be read (connection, login, protocol); vendor errors are chained."""


class _ServerClosed(EmailPollerError):
    """The server ended the session with BYE during IDLE."""


def _response_buffered(client: _Imap) -> bool:
    """A server response already read into imaplib's buffer. imapclient's ``idle_check`` waits on
    the socket, but mail that arrived between our SEARCH and the IDLE is announced ("* 1 EXISTS")
    in the same packet as "+ idling", which ``idle()`` read whole: the socket then shows nothing
    and the mail would wait a whole IDLE period. The peek never waits for the network."""
    reader = getattr(getattr(client, "_imap", None), "file", None)
    if not isinstance(reader, io.BufferedReader):
        return False
    sock = client.socket()
    previous = sock.gettimeout()
    sock.settimeout(0)
    try:
        return bool(reader.peek(1))
    except (OSError, ValueError):  # nothing there (would block), or the connection is gone
        return False
    finally:
        sock.settimeout(previous)


class _SessionLost(Exception):
    """A connection that had been working broke: reconnect with a fresh backoff."""


#: What a connection can fail with: imaplib/IMAPClient errors (including aborts), socket and
#: TLS errors (OSError covers timeouts, refused connections and ssl.SSLError), and ours.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (IMAPClientError, OSError, EmailPollerError)


class _Imap(Protocol):
    """The part of ``imapclient.IMAPClient`` used here (imapclient ships no type information)."""

    def starttls(self, ssl_context: ssl.SSLContext | None = None) -> bytes: ...
    def login(self, username: str, password: str) -> bytes: ...
    def has_capability(self, capability: str) -> bool: ...
    def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, Any]: ...
    def search(self, criteria: Sequence[str | bytes]) -> list[int]: ...
    def fetch(self, messages: Sequence[int], data: Sequence[str]) -> dict[int, dict[bytes, Any]]: ...
    def add_flags(self, messages: Sequence[int], flags: Sequence[bytes], silent: bool = False) -> object: ...
    def noop(self) -> object: ...
    def idle(self) -> None: ...
    def idle_check(self, timeout: float | None = None) -> list[tuple[Any, ...]]: ...
    def idle_done(self) -> object: ...
    def socket(self) -> socket.socket: ...
    def logout(self) -> object: ...
    def shutdown(self) -> None: ...


@dataclass
class _Pass:
    delivered: int = 0
    failed: int = 0


def _describe(exc: BaseException) -> str:
    """An error for the log: its type and the server's or the socket's words, shortened."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


class EmailPoller:
    """Hands every new message in one IMAP folder to ``deliver`` once (see the module doc).

    "Once" is at least once: a crash between ``deliver`` and setting the keyword repeats that
    one message, which the product's Message-ID de-duplication absorbs.
    """

    def __init__(
        self,
        settings: ImapConfig,
        username: str,
        password: str,
        deliver: Callable[[bytes], None],
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_bytes: int | None = None,
        oversized: Callable[[bytes, int], None] | None = None,
    ) -> None:
        """``deliver(raw)`` returns once the message is stored (or set aside) and raises when it
        could not be stored for now; ``ssl_context`` defaults to a certificate-verifying one.
        Messages over ``max_bytes`` are never downloaded whole: ``oversized(headers, size)``
        gets their header block instead (and is held to the same contract as ``deliver``)."""
        if (max_bytes is None) != (oversized is None):
            raise ValueError("max_bytes and oversized go together")
        self._max_bytes = max_bytes
        self._oversized = oversized
        self._settings = settings
        self._username = username
        self._password = password
        self._deliver = deliver
        self._ssl_context = ssl_context
        self._keyword = settings.processed_keyword.encode("ascii")
        self._warned_no_keywords = False

    # -- public ------------------------------------------------------------------------------

    def check_once(self) -> int:
        """Connect, hand over every message not yet processed, log out; return how many were handed over.

        Raises :class:`EmailPollerError` when the mailbox cannot be read. A ``deliver`` that
        raises only leaves its message for the next check (it is logged, not raised).
        """
        try:
            client, marker = self._connect()
            try:
                return self._process(client, marker, None).delivered
            finally:
                self._close(client)
        except EmailPollerError:
            raise
        except (IMAPClientError, OSError) as exc:
            raise EmailPollerError(f"reading the IMAP mailbox failed: {_describe(exc)}") from exc

    def run(self, stop: threading.Event) -> None:
        """Hand over new mail as it arrives until ``stop`` is set; never raises for mailbox errors."""
        settings = self._settings
        logger.info("email poller starting for %s:%d (%s)", settings.host, settings.port, settings.security)
        while not stop.is_set():
            try:
                self._retrying(stop)(self._session, stop)
            except _SessionLost as lost:
                # It had been working: reconnect at once, then back off afresh if that fails.
                logger.warning("IMAP connection lost (%s); reconnecting", lost)
            except _CONNECTION_ERRORS:
                # tenacity gives up only once stop is set (the loop ends) and reraises the last error.
                pass
        logger.info("email poller stopped")

    # -- connection --------------------------------------------------------------------------

    def _retrying(self, stop: threading.Event) -> tenacity.Retrying:
        settings = self._settings

        def sleep(seconds: float) -> None:
            # Sleeping on the event makes a backoff end as soon as stop is set.
            stop.wait(seconds)

        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_CONNECTION_ERRORS),
            # reconnect_min doubling up to reconnect_max, plus jitter so that many pollers
            # (or restarts) do not hit a recovering server in step.
            wait=tenacity.wait_exponential(
                multiplier=settings.reconnect_min_seconds,
                min=settings.reconnect_min_seconds,
                max=settings.reconnect_max_seconds,
            )
            + tenacity.wait_random(0, settings.reconnect_min_seconds),
            stop=tenacity.stop_when_event_set(stop),
            sleep=sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )

    @staticmethod
    def _log_retry(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        logger.warning(
            "IMAP connection failed (%s); reconnecting in %.1f s", _describe(error) if error else "?", delay
        )

    def _open(self) -> _Imap:
        settings = self._settings
        implicit_tls = settings.security == "ssl"
        client = cast(
            _Imap,
            IMAPClient(
                settings.host,
                port=settings.port,
                ssl=implicit_tls,
                ssl_context=self._ssl_context if implicit_tls else None,
                timeout=settings.timeout_seconds,
            ),
        )
        if settings.security == "starttls":
            try:
                # Fails (CapabilityError) rather than going on in plain text without STARTTLS.
                client.starttls(self._ssl_context)
            except BaseException:
                self._close(client)
                raise
        return client

    def _connect(self) -> tuple[_Imap, bytes]:
        """A logged-in connection with the folder selected, and the flag that marks a message done."""
        client = self._open()
        try:
            client.login(self._username, self._password)
            selected = client.select_folder(self._settings.folder)
            if b"READ-WRITE" not in selected:
                raise EmailPollerError(
                    f"the IMAP folder {self._settings.folder!r} opened read-only: messages cannot be marked"
                )
            marker = self._marker(selected)
        except BaseException:
            self._close(client)
            raise
        logger.info(
            "connected to IMAP %s:%d (%s), folder %s",
            self._settings.host,
            self._settings.port,
            self._settings.security,
            self._settings.folder,
        )
        return client, marker

    def _marker(self, selected: dict[bytes, Any]) -> bytes:
        """The processed keyword, or ``\\Seen`` where the folder cannot store new keywords."""
        permanent = selected.get(b"PERMANENTFLAGS")
        if permanent is None:
            return self._keyword  # no PERMANENTFLAGS: every flag can be stored (RFC 3501 7.1)
        allowed = {bytes(flag).lower() for flag in permanent}
        if _ANY_KEYWORD in allowed or self._keyword.lower() in allowed:
            return self._keyword
        if not self._warned_no_keywords:
            self._warned_no_keywords = True
            logger.warning(
                "the IMAP server does not allow the keyword %s in folder %s: marking handled messages "
                "\\Seen instead, so a message a person has already read there will not be handed over",
                self._settings.processed_keyword,
                self._settings.folder,
            )
        return SEEN

    @staticmethod
    def _close(client: _Imap) -> None:
        try:
            client.logout()
        except Exception:  # the connection is being dropped either way
            try:
                client.shutdown()
            except Exception as exc:
                logger.debug("closing the IMAP connection: %s", _describe(exc))

    # -- handing messages over ---------------------------------------------------------------

    def _process(self, client: _Imap, marker: bytes, stop: threading.Event | None) -> _Pass:
        """Hand over every message without ``marker``, oldest UID first, ``FETCH_BATCH`` at a time.

        Searches again until nothing new turns up: mail that arrived during the pass was
        announced in the replies to its commands, and IDLE would not announce it again.
        """
        criteria: list[str | bytes] = ["UNSEEN"] if marker == SEEN else ["UNKEYWORD", marker]
        result = _Pass()
        attempted: set[int] = set()
        while True:
            uids = sorted(set(client.search(criteria)) - attempted)
            if not uids:
                break
            attempted.update(uids)
            for start in range(0, len(uids), FETCH_BATCH):
                if stop is not None and stop.is_set():
                    break
                self._hand_over(client, marker, uids[start : start + FETCH_BATCH], result, stop)
            if stop is not None and stop.is_set():
                break
        if attempted:
            logger.info(
                "%d new message(s): %d handed over, %d failed",
                len(attempted),
                result.delivered,
                result.failed,
            )
        return result

    def _hand_over(
        self, client: _Imap, marker: bytes, batch: list[int], result: _Pass, stop: threading.Event | None
    ) -> None:
        too_big: dict[int, int] = {}
        if self._max_bytes is not None:
            # Sizes first, so a huge message is never pulled into memory whole.
            sizes = client.fetch(batch, ["RFC822.SIZE"])
            too_big = {
                uid: int(data.get(b"RFC822.SIZE", 0))
                for uid, data in sizes.items()
                if int(data.get(b"RFC822.SIZE", 0)) > self._max_bytes
            }
        readable = [uid for uid in batch if uid not in too_big]
        # BODY.PEEK[] leaves \Seen alone (BODY[] would set it).
        fetched = client.fetch(readable, ["BODY.PEEK[]"]) if readable else {}
        headers = client.fetch(sorted(too_big), ["BODY.PEEK[HEADER]"]) if too_big else {}
        for uid in batch:
            if stop is not None and stop.is_set():
                return
            if uid in too_big:
                raw = headers.get(uid, {}).get(b"BODY[HEADER]")
            else:
                raw = fetched.get(uid, {}).get(b"BODY[]")
            if not isinstance(raw, bytes):
                logger.info("message UID %d was gone before it could be read", uid)
                continue
            try:
                if uid in too_big and self._oversized is not None:
                    self._oversized(raw, too_big[uid])
                else:
                    self._deliver(raw)
            except Exception as exc:
                # One message's failure must not block the rest. The type only: an error text
                # may quote the message or an address.
                result.failed += 1
                logger.warning(
                    "handing over message UID %d failed (%s); it stays unmarked and is tried again",
                    uid,
                    type(exc).__name__,
                )
                continue
            client.add_flags([uid], [marker], silent=True)
            result.delivered += 1

    # -- the long-running session ------------------------------------------------------------

    def _session(self, stop: threading.Event) -> None:
        """One connection: the backlog, then wait-and-process until stop or an error."""
        if stop.is_set():
            return
        settings = self._settings
        client, marker = self._connect()
        try:
            idle = client.has_capability("IDLE")
            if idle:
                logger.info(
                    "IMAP IDLE supported: waiting for new mail, renewed every %.0f s", settings.idle_seconds
                )
            else:
                logger.info(
                    "IMAP IDLE not supported: looking for new mail every %.0f s", settings.poll_seconds
                )
            last = self._process(client, marker, stop)
            working_since = time.monotonic()
            try:
                while not stop.is_set():
                    if idle:
                        wait = settings.idle_seconds
                        if last.failed:
                            # A message that could not be handed over is tried again soon.
                            wait = min(wait, settings.poll_seconds)
                        self._idle(client, stop, wait)
                    else:
                        stop.wait(settings.poll_seconds)
                        if stop.is_set():
                            break
                        client.noop()  # lets the server show messages that arrived meanwhile
                    if stop.is_set():
                        break
                    last = self._process(client, marker, stop)
            except _CONNECTION_ERRORS as exc:
                # A connection that served for a while gets a fresh backoff; one that breaks
                # straight away keeps backing off (no tight reconnect loop against a bad server).
                if time.monotonic() - working_since >= settings.reconnect_min_seconds:
                    raise _SessionLost(_describe(exc)) from exc
                raise
        finally:
            self._close(client)

    def _idle(self, client: _Imap, stop: threading.Event, seconds: float) -> None:
        """IDLE until new mail arrives, ``seconds`` pass or stop is set; then end IDLE."""
        client.idle()
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            timeout = min(STOP_CHECK_SECONDS, remaining)
            if _response_buffered(client):
                break  # idle_done() below reads it; then the search finds the new mail
            started = time.monotonic()
            responses = client.idle_check(timeout=timeout)
            if any(len(r) > 0 and r[0] == b"BYE" for r in responses):
                raise _ServerClosed("the IMAP server ended the session (BYE)")
            if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                break
            if not responses and time.monotonic() - started < timeout / 2:
                # imapclient reports a closed connection as "nothing yet", but returns at
                # once: end IDLE, and idle_done() below finds out whether the line is dead.
                break
        client.idle_done()
