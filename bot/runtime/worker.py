"""The worker process: Dramatiq worker threads draining the queues, plus one maintenance
thread that keeps everything else going.

The maintenance thread, about once a second: publishes the heartbeat and the state of
every thread of this worker (``/healthz`` reads them); restarts any thread that died (a
Dramatiq consumer thread dies for good on some Redis connection errors, and with it every
delayed retry of this worker); sends again drain jobs that are overdue; and, every
``worker.sweep_seconds``, plans conversations whose messages wait with no drain planned.
Every loop here survives Redis going away: it logs, waits and tries again, never exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from bot.config import Config
from bot.email.mailbox import run_mailbox
from bot.outreach.scheduler import run_scheduler
from bot.runtime.services import Services, build_services
from bot.store.jobs import DRAIN_QUEUE, publish_state, worker_states_key

logger = logging.getLogger(__name__)

#: How often the maintenance thread looks at the threads and the overdue jobs (at most).
TICK_SECONDS = 1.0
#: Workers silent this long are forgotten (heartbeat and thread states).
FORGET_AFTER_SECONDS = 86400


class Worker:
    """One worker: start it, and stop it; usable in a process of its own or in tests.

    ``maintain=False`` leaves out the maintenance thread (tests call :meth:`beat`,
    :meth:`supervise` and :meth:`sweep` themselves).
    """

    def __init__(self, services: Services, worker_id: str | None = None, *, maintain: bool = True) -> None:
        self.services = services
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        config = services.config.worker
        services.install_handlers()
        self._dramatiq = dramatiq.Worker(
            services.jobs.broker, queues={DRAIN_QUEUE}, worker_threads=config.threads, worker_timeout=200
        )
        self._stop = threading.Event()
        self._maintain_enabled = maintain
        self._background = threading.Thread(target=self._maintain, name="heartbeat-sweeper", daemon=True)
        #: Our own loop threads: name -> (how to start one, the current thread).
        self._loops: dict[str, tuple[Callable[[], threading.Thread], threading.Thread | None]] = {
            "scheduler": (lambda: self._thread("scheduler", run_scheduler), None)
        }
        email = services.config.channels.email
        if email.enabled and email.imap.enabled:
            self._loops["mailbox"] = (lambda: self._thread("mailbox", run_mailbox), None)
        self.restarts = 0
        self._next_sweep = 0.0

    def _thread(self, name: str, target: Callable[[Services, threading.Event], None]) -> threading.Thread:
        return threading.Thread(target=target, args=(self.services, self._stop), name=name, daemon=True)

    def start(self) -> None:
        self._dramatiq.start()
        for name, (make, _) in self._loops.items():
            thread = make()
            thread.start()
            self._loops[name] = (make, thread)
        if self._maintain_enabled:
            self._background.start()
        logger.info("worker %s started (%d threads)", self.worker_id, self.services.config.worker.threads)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._background.is_alive():
            self._background.join(timeout)
        for _, thread in self._loops.values():
            if thread is not None:
                thread.join(timeout)
        # Finishes the jobs in hand; queued ones stay in Redis for the next worker.
        self._dramatiq.stop(timeout=int(timeout * 1000))
        with contextlib.suppress(redis.RedisError):
            pipe = self.services.redis.pipeline(transaction=False)
            pipe.zrem(self.services.keys.worker_heartbeats, self.worker_id)
            pipe.hdel(worker_states_key(self.services.keys), self.worker_id)
            pipe.execute()
        self.services.jobs.broker.close()
        logger.info("worker %s stopped", self.worker_id)

    # the threads -----------------------------------------------------------------------
    def thread_states(self) -> dict[str, bool]:
        """Every thread this worker needs -> whether it is alive."""
        states = {f"consumer:{name}": thread.is_alive() for name, thread in self._dramatiq.consumers.items()}
        workers = self._dramatiq.workers
        for index, thread in enumerate(workers):
            states[f"job-thread-{index + 1}"] = thread.is_alive()
        for name, (_, loop_thread) in self._loops.items():
            states[name] = loop_thread is not None and loop_thread.is_alive()
        if self._maintain_enabled:
            states["heartbeat-sweeper"] = self._background.is_alive()
        return states

    def supervise(self) -> list[str]:
        """Start again every thread of this worker that died; return their names."""
        if self._stop.is_set():
            return []
        restarted: list[str] = []
        for name, consumer in list(self._dramatiq.consumers.items()):
            if consumer.is_alive():
                continue
            logger.error("Dramatiq consumer thread for %s died; starting a new one", name)
            self._recover_delayed(name)
            del self._dramatiq.consumers[name]
            # Dramatiq's own way of adding a consumer (the one its middleware uses).
            self._dramatiq._add_consumer(name, delay=name.endswith(".DQ"))
            restarted.append(f"consumer:{name}")
        dead_workers = [job_thread for job_thread in self._dramatiq.workers if not job_thread.is_alive()]
        for job_thread in dead_workers:
            logger.error("a Dramatiq job thread died; starting a new one")
            self._dramatiq.workers.remove(job_thread)
            self._dramatiq._add_worker()
            restarted.append("job-thread")
        for name, (make, loop_thread) in list(self._loops.items()):
            if loop_thread is not None and not loop_thread.is_alive():
                logger.error("the %s thread died; starting it again", name)
                thread = make()
                thread.start()
                self._loops[name] = (make, thread)
                restarted.append(name)
        self.restarts += len(restarted)
        return restarted

    def _recover_delayed(self, queue_name: str) -> None:
        """Put back on their queue the messages a dead consumer had fetched but not handed
        on (for the delay queue: every delayed job it was holding in memory). They sit in
        this broker's "acks" set, which Dramatiq only recovers once the whole process is
        gone; the sweeper would resend the drains anyway, this just keeps their timing."""
        broker = self.services.jobs.broker
        if not isinstance(broker, RedisBroker) or not queue_name.endswith(".DQ"):
            return
        acks = f"{broker.namespace}:__acks__.{broker.broker_id}.{queue_name}"
        try:
            ids = [i.decode() for i in broker.client.smembers(acks)]
            if ids:
                broker.do_requeue(queue_name, *ids)
                logger.info("requeued %d delayed job(s) held by the dead consumer", len(ids))
        except redis.RedisError as exc:
            logger.warning("could not requeue the dead consumer's delayed jobs (%s); the sweeper will", exc)

    # maintenance -----------------------------------------------------------------------
    def beat(self, now: float | None = None) -> None:
        """Publish this worker's heartbeat and thread states; forget long-silent workers."""
        now = now or time.time()
        client, keys = self.services.redis, self.services.keys
        publish_state(client, keys, self.worker_id, self.thread_states(), restarts=self.restarts, now=now)
        silent = client.zrangebyscore(keys.worker_heartbeats, 0, now - FORGET_AFTER_SECONDS)
        if silent:
            pipe = client.pipeline(transaction=False)
            pipe.zrem(keys.worker_heartbeats, *silent)
            pipe.hdel(worker_states_key(keys), *silent)
            pipe.execute()

    def sweep(self, now: float | None = None) -> None:
        """Send overdue drain jobs again; every ``sweep_seconds``, plan forgotten keys."""
        config = self.services.config.worker
        now = now or time.time()
        resent = self.services.jobs.resend_overdue(config.overdue_seconds)
        if resent:
            logger.info("sweeper sent %d overdue drain job(s) again", resent)
        if now >= self._next_sweep:
            scheduled = self.services.jobs.sweep()
            if scheduled:
                logger.info("sweeper scheduled %d waiting conversation(s)", scheduled)
            self._next_sweep = now + config.sweep_seconds

    def _maintain(self) -> None:
        config = self.services.config.worker
        tick = min(TICK_SECONDS, config.heartbeat_seconds, config.sweep_seconds, config.overdue_seconds / 2)
        next_beat = 0.0
        while not self._stop.is_set():
            # Each step on its own: Redis being away must not stop the thread supervision.
            with _logged("thread supervision"):
                self.supervise()
            if time.monotonic() >= next_beat:
                with _logged("heartbeat"):
                    self.beat()
                    next_beat = time.monotonic() + config.heartbeat_seconds
            with _logged("sweep"):
                self.sweep()
            self._stop.wait(tick)


@contextlib.contextmanager
def _logged(what: str) -> Any:
    """Log and swallow a failure of one maintenance step (the loop goes on)."""
    try:
        yield
    except redis.RedisError as exc:
        logger.warning("%s failed, Redis unreachable: %s", what, exc)
    except Exception:
        logger.exception("%s failed", what)


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
