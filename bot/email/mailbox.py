"""The IMAP mailbox, read by one worker at a time.

Every worker may run the poller thread, but only the holder of a Redis lease reads the
mailbox (two readers would hand over the same mail at once; the Message-ID de-duplication
would catch it, but not before both had fetched it). If the holder dies, its lease runs out
and another worker takes over within ``LEASE_SECONDS``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Protocol

import redis
from redis.exceptions import LockError

from bot.email.intake import EmailIntake
from bot.email.poller import EmailPoller
from bot.errors import BotError
from bot.store.connection import StoreParts


class MailboxParts(StoreParts, Protocol):
    """What the mailbox reader uses (the process's ``Services`` has it all)."""

    @property
    def email_intake(self) -> EmailIntake | None: ...


logger = logging.getLogger(__name__)

LEASE_SECONDS = 60


def mailbox_poller(services: MailboxParts) -> EmailPoller:
    """The poller for ``channels.email.imap``, handing mail to the email intake."""
    intake = services.email_intake
    secrets = services.config.secrets
    if intake is None or not services.config.channels.email.imap.enabled:
        raise BotError("the IMAP poller needs channels.email.enabled and channels.email.imap.enabled")

    def deliver(raw: bytes) -> None:
        intake.receive(raw)  # raises only when Redis is down: the mail stays for the next pass

    def too_large(headers: bytes, size: int) -> None:
        intake.too_large(headers, size)

    return EmailPoller(
        services.config.channels.email.imap,
        secrets.imap_username or "",
        secrets.imap_password or "",
        deliver,
        max_bytes=intake.channel.max_message_bytes,
        oversized=too_large,
    )


def run_mailbox(services: MailboxParts, stop: threading.Event) -> None:
    """Until ``stop``: hold the mailbox lease and poll, or wait for the holder to go."""
    poller = mailbox_poller(services)
    lease = services.redis.lock(services.keys.mailbox_lease, timeout=LEASE_SECONDS, thread_local=False)
    while not stop.is_set():
        try:
            acquired = lease.acquire(blocking=False)
        except redis.RedisError as exc:
            logger.warning("mailbox lease: Redis unreachable (%s); trying again", exc)
            acquired = False
        except Exception:  # this loop never ends but on stop
            logger.exception("mailbox lease: unexpected error; trying again")
            acquired = False
        if not acquired:
            stop.wait(LEASE_SECONDS / 3)
            continue
        logger.info("this worker reads the mailbox")
        holding = threading.Event()  # set when the lease is lost or we are stopping
        renewer = threading.Thread(
            target=_renew, args=(lease, stop, holding), name="mailbox-lease", daemon=True
        )
        renewer.start()
        try:
            poller.run(holding)
        except Exception:
            logger.exception("the mailbox poller stopped unexpectedly; starting it again")
            stop.wait(5)
        finally:
            holding.set()
            renewer.join()
            # It may have expired already, and someone else may hold it now.
            with contextlib.suppress(LockError, redis.RedisError):
                lease.release()


def _renew(lease: redis.lock.Lock, stop: threading.Event, holding: threading.Event) -> None:
    """Keep the lease while polling; end the poll (``holding``) on stop or when the lease is lost."""
    next_renewal = time.monotonic() + LEASE_SECONDS / 3
    while not holding.wait(0.5):
        if stop.is_set():
            break
        if time.monotonic() < next_renewal:
            continue
        try:
            lease.reacquire()
        except (LockError, redis.RedisError) as exc:
            logger.warning("mailbox lease lost (%s); stopping the poller here", exc)
            break
        next_renewal = time.monotonic() + LEASE_SECONDS / 3
    holding.set()
