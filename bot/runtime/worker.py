"""The worker process: Dramatiq worker threads draining the queues, plus one maintenance
thread that keeps everything else going.

Two pools of job threads, one per lane (bot/store/jobs.py): ``worker.threads`` for the drains
that wait on Rasa (and outreach, webhooks), ``worker.outbound_threads`` for sending replies, so
a finished reply never queues behind dialogue work. Each pool is a Dramatiq worker of its own
on the same broker, with its own consumers; idle consumers wake as soon as a job is enqueued
and otherwise look at Redis every ``worker.idle_poll_seconds``.

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
from bot.store.jobs import DRAIN_QUEUE, REPLY_QUEUE, WakingRedisBroker, publish_state, worker_states_key

logger = logging.getLogger(__name__)

#: How often the maintenance thread looks at the threads and the overdue jobs (at most).
TICK_SECONDS = 1.0
#: How soon an idle job thread notices that the worker stops (ms; a wait on a local queue).
STOP_POLL_MS = 100
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
        broker = services.jobs.broker
        if isinstance(broker, WakingRedisBroker):
            # Idle consumers block on a wake-up list this long; job threads (which wait on
            # an in-process queue, no Redis) notice a stop within STOP_POLL_MS.
            broker.idle_timeout_ms = max(1, int(config.idle_poll_seconds * 1000))
        # Dramatiq warns when a second worker adds its middleware to the broker: intended here.
        _quiet_second_worker_warning(broker)
        #: One Dramatiq worker per lane: Dramatiq queue -> (its worker, thread name prefix).
        self._lanes: dict[str, tuple[dramatiq.Worker, str]] = {}
        for job_queue in sorted(services.jobs.job_queues):
            if job_queue == REPLY_QUEUE:
                threads, prefix = config.outbound_threads, "reply-thread"
            else:
                threads = config.threads
                prefix = "job-thread" if job_queue == DRAIN_QUEUE else f"{job_queue}-thread"
            lane = dramatiq.Worker(
                broker, queues={job_queue}, worker_threads=threads, worker_timeout=STOP_POLL_MS
            )
            self._lanes[job_queue] = (lane, prefix)
        #: The dialogue lane (what tests and older code call the worker's Dramatiq worker).
        self._dramatiq = self._lanes[DRAIN_QUEUE][0]
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
        for lane, _ in self._lanes.values():
            lane.start()
        for name, (make, _) in self._loops.items():
            thread = make()
            thread.start()
            self._loops[name] = (make, thread)
        if self._maintain_enabled:
            self._background.start()
        config = self.services.config.worker
        logger.info(
            "worker %s started (%d dialogue threads, %d reply threads)",
            self.worker_id, config.threads, config.outbound_threads,
        )  # fmt: skip

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._background.is_alive():
            self._background.join(timeout)
        for _, thread in self._loops.values():
            if thread is not None:
                thread.join(timeout)
        # Finishes the jobs in hand; queued ones stay in Redis for the next worker. Consumers
        # blocked on their wake-up lists are told to stop and woken, so that the lanes (stopped
        # side by side) need not wait for an idle poll to end.
        self._wake_consumers_to_stop()
        stoppers = [
            threading.Thread(target=lane.stop, kwargs={"timeout": int(timeout * 1000)}, daemon=True)
            for lane, _ in self._lanes.values()
        ]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join(timeout + 5)
        with contextlib.suppress(redis.RedisError):
            pipe = self.services.redis.pipeline(transaction=False)
            pipe.zrem(self.services.keys.worker_heartbeats, self.worker_id)
            pipe.hdel(worker_states_key(self.services.keys), self.worker_id)
            pipe.execute()
        self.services.jobs.broker.close()
        logger.info("worker %s stopped", self.worker_id)

    def _wake_consumers_to_stop(self) -> None:
        broker = self.services.jobs.broker
        for lane, _ in self._lanes.values():
            for name, consumer in lane.consumers.items():
                consumer.stop()  # Dramatiq's stop does it again; the thread exits at its next turn
                if isinstance(broker, WakingRedisBroker):
                    broker.wake(name)

    # the threads -----------------------------------------------------------------------
    def thread_states(self) -> dict[str, bool]:
        """Every thread this worker needs -> whether it is alive."""
        states: dict[str, bool] = {}
        for lane, _ in self._lanes.values():
            states |= {f"consumer:{name}": thread.is_alive() for name, thread in lane.consumers.items()}
        for lane, prefix in self._lanes.values():
            for index, thread in enumerate(lane.workers):
                states[f"{prefix}-{index + 1}"] = thread.is_alive()
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
        for lane, prefix in self._lanes.values():
            for name, consumer in list(lane.consumers.items()):
                if consumer.is_alive():
                    continue
                logger.error("Dramatiq consumer thread for %s died; starting a new one", name)
                self._recover_delayed(name)
                del lane.consumers[name]
                # Dramatiq's own way of adding a consumer (the one its middleware uses).
                lane._add_consumer(name, delay=name.endswith(".DQ"))
                restarted.append(f"consumer:{name}")
            dead_workers = [job_thread for job_thread in lane.workers if not job_thread.is_alive()]
            for job_thread in dead_workers:
                logger.error("a Dramatiq %s died; starting a new one", prefix)
                lane.workers.remove(job_thread)
                lane._add_worker()
                restarted.append(prefix)
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


class _SecondWorkerIsIntended(logging.Filter):
    """Drops Dramatiq's warning that a middleware type was added twice, for its worker
    middleware only (each lane's Dramatiq worker adds one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.getMessage().startswith("You're adding a middleware of the same type twice")
                    and "_WorkerMiddleware" in record.getMessage())  # fmt: skip


def _quiet_second_worker_warning(broker: dramatiq.Broker) -> None:
    broker_logger: logging.Logger = broker.logger
    if not any(isinstance(f, _SecondWorkerIsIntended) for f in broker_logger.filters):
        broker_logger.addFilter(_SecondWorkerIsIntended())


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
