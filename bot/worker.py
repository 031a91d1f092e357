"""The worker process: Dramatiq worker threads draining the queues, plus the heartbeat and
the sweeper that reschedules any conversation whose messages still wait."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from types import FrameType

import dramatiq
import redis

from bot.config import Config
from bot.jobs import DRAIN_QUEUE
from bot.mailbox import run_mailbox
from bot.scheduler import run_scheduler
from bot.services import Services, build_services

logger = logging.getLogger(__name__)


class Worker:
    """One worker: start it, and stop it; usable in a process of its own or in tests."""

    def __init__(self, services: Services, worker_id: str | None = None) -> None:
        self.services = services
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        config = services.config.worker
        services.install_handlers()
        self._dramatiq = dramatiq.Worker(
            services.jobs.broker, queues={DRAIN_QUEUE}, worker_threads=config.threads, worker_timeout=200
        )
        self._stop = threading.Event()
        self._background = threading.Thread(target=self._maintain, name="heartbeat-sweeper", daemon=True)
        self._scheduler = threading.Thread(
            target=run_scheduler, args=(services, self._stop), name="scheduler", daemon=True
        )
        email = services.config.channels.email
        self._mailbox: threading.Thread | None = None
        if email.enabled and email.imap.enabled:
            self._mailbox = threading.Thread(
                target=run_mailbox, args=(services, self._stop), name="mailbox", daemon=True
            )

    def start(self) -> None:
        self._dramatiq.start()
        self._background.start()
        self._scheduler.start()
        if self._mailbox is not None:
            self._mailbox.start()
        logger.info("worker %s started (%d threads)", self.worker_id, self.services.config.worker.threads)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._background.join(timeout)
        self._scheduler.join(timeout)
        if self._mailbox is not None:
            self._mailbox.join(timeout)
        # Finishes the jobs in hand; queued ones stay in Redis for the next worker.
        self._dramatiq.stop(timeout=int(timeout * 1000))
        with contextlib.suppress(redis.RedisError):
            self.services.redis.zrem(self.services.keys.worker_heartbeats, self.worker_id)
        self.services.jobs.broker.close()
        logger.info("worker %s stopped", self.worker_id)

    def _maintain(self) -> None:
        config = self.services.config.worker
        next_sweep = 0.0
        while not self._stop.is_set():
            now = time.time()
            try:
                self.services.redis.zadd(self.services.keys.worker_heartbeats, {self.worker_id: now})
                # Forget workers that have been silent for a day.
                self.services.redis.zremrangebyscore(self.services.keys.worker_heartbeats, 0, now - 86400)
                if now >= next_sweep:
                    scheduled = self.services.jobs.sweep()
                    if scheduled:
                        logger.info("sweeper scheduled %d waiting conversation(s)", scheduled)
                    next_sweep = now + config.sweep_seconds
            except redis.RedisError as exc:
                logger.warning("heartbeat/sweep failed, Redis unreachable: %s", exc)
            self._stop.wait(min(config.heartbeat_seconds, config.sweep_seconds))


def run_worker(config: Config) -> None:
    """Run a worker until SIGTERM or SIGINT."""
    worker = Worker(build_services(config))
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.start()
    done.wait()
    worker.stop()
