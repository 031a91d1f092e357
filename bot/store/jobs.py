"""The job engine (Dramatiq on the product's Redis) and the one job the queues need: drain.

A drain job handles the waiting entries of one queue key in order. At most one drain per
key is planned at a time: the plan (``:scheduled``) carries a random token that the job
carries too, and the time the job should start. Correctness does not rest on Dramatiq
delivering every job: if a job is lost (its consumer thread died, Redis restarted, the
worker was killed), the plan stays in Redis, and the worker's sweeper sends the same job
again once it is overdue (:meth:`Jobs.resend_overdue`). Copies of a job are harmless: a job
whose token is no longer the key's plan does nothing.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Mapping

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications, TimeLimit

from bot.store.connection import Keys
from bot.store.queues import Handler, KeyedQueue

logger = logging.getLogger(__name__)

DRAIN_QUEUE = "drain"
#: A plan is forgotten this long after its planned start (a safety net: the sweeper and the
#: jobs themselves clear plans long before).
PLAN_TTL_SECONDS = 3600.0
#: The longest the sweeper waits between two resends of the same overdue job.
MAX_RESEND_SECONDS = 60.0
#: A busy key is looked at again this long after the holder's lease would run out.
BUSY_MARGIN_SECONDS = 0.2


def worker_states_key(keys: Keys) -> str:
    """Hash worker id -> JSON of its threads' states, published with its heartbeat."""
    return f"{keys.worker_heartbeats}:threads"


def publish_state(
    client: redis.Redis[bytes],
    keys: Keys,
    worker_id: str,
    threads: dict[str, bool],
    restarts: int,
    now: float,
) -> None:
    """Record ``worker_id``'s heartbeat and its threads (name -> alive) in one round trip."""
    state = json.dumps({"at": now, "threads": threads, "restarts": restarts}, sort_keys=True)
    pipe = client.pipeline(transaction=False)
    pipe.zadd(keys.worker_heartbeats, {worker_id: now})
    pipe.hset(worker_states_key(keys), worker_id, state)
    pipe.execute()


def make_broker(redis_url: str, namespace: str) -> RedisBroker:
    """A Dramatiq Redis broker under our key prefix.

    Dramatiq's own retries are off for drain jobs (the queues keep their entries and
    retry themselves); the rest of its default middleware stays.
    """
    middleware = [
        AgeLimit(),
        TimeLimit(time_limit=15 * 60 * 1000),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=0),
    ]
    return RedisBroker(url=redis_url, namespace=namespace, middleware=middleware)  # type: ignore[no-untyped-call]


class Jobs:
    """Plans, sends and runs drain jobs for a set of named queues."""

    def __init__(self, broker: dramatiq.Broker, queues: Mapping[str, KeyedQueue]) -> None:
        self.broker = broker
        self.queues = dict(queues)
        self._handlers: dict[str, Handler] = {}
        self._drain_actor: dramatiq.Actor[..., None] = dramatiq.Actor(
            self._drain,
            broker=broker,
            actor_name="drain",
            queue_name=DRAIN_QUEUE,
            priority=0,
            options={"max_retries": 0},
        )

    def handle(self, queue_name: str, handler: Handler) -> None:
        """Register what handles entries of ``queue_name`` (only in worker processes)."""
        self._handlers[queue_name] = handler

    def schedule(self, queue_name: str, key: str, *, delay: float = 0.0, force: bool = False) -> bool:
        """Plan and send a drain of ``key`` in ``delay`` seconds unless one is already planned
        (``force``: replace it; the old plan's job then does nothing)."""
        queue = self.queues[queue_name]
        token = secrets.token_hex(8)
        if not queue.plan(key, token, time.time() + delay, delay + PLAN_TTL_SECONDS, replace=force):
            return False
        self._send(queue_name, key, token, delay)
        return True

    def sweep(self) -> int:
        """Plan every key that has waiting entries and no planned drain; return how many."""
        scheduled = 0
        for name, queue in self.queues.items():
            for key in queue.pending_keys():
                if self.schedule(name, key):
                    # A key nobody planned may have entries from before the waiting index.
                    queue.note_waiting(key)
                    scheduled += 1
        return scheduled

    def resend_overdue(self, grace_seconds: float) -> int:
        """Send again every drain job that has not started ``grace_seconds`` after its planned
        time while no drain holds its key (lost with a dead consumer thread, a Redis restart
        or a killed worker); return how many."""
        sent = 0
        now = time.time()
        for name, queue in self.queues.items():
            for key, token in queue.take_overdue(now, grace_seconds, MAX_RESEND_SECONDS):
                logger.info("drain of %s:%s is overdue; sending it again", name, key)
                self._send(name, key, token, 0.0)
                sent += 1
        return sent

    def _send(self, queue_name: str, key: str, token: str, delay: float) -> None:
        self._drain_actor.send_with_options(args=(queue_name, key, token), delay=int(delay * 1000) or None)

    def _drain(self, queue_name: str, key: str, token: str | None = None) -> None:
        queue = self.queues[queue_name]
        handler = self._handlers.get(queue_name)
        if handler is None:
            logger.error("no handler for queue %s in this process", queue_name)
            return
        # ``token`` is None only for jobs queued before plans had tokens: they just run.
        if token is not None:
            plan = queue.planned(key)
            if plan is None or plan.token != token:
                logger.debug("drain %s of %s:%s is no longer the plan; nothing to do", token, queue_name, key)
                return
        result = queue.drain(key, handler)
        if result.lost:
            return  # whoever holds the key now (or the sweeper) carries on
        if result.busy:
            # Look again when the holder's lease would run out: a live holder renews it and
            # re-plans the key itself when done; a dead one's lease expires and we take over.
            delay = queue.lease_remaining(key) + BUSY_MARGIN_SECONDS
            if token is None:
                self.schedule(queue_name, key, delay=delay, force=True)
            elif queue.replan(key, token, time.time() + delay):
                self._send(queue_name, key, token, delay)
        elif result.retry_in is not None:
            self.schedule(queue_name, key, delay=result.retry_in, force=True)
        else:
            queue.release_schedule(key, token)
            # An entry appended after our last read could not plan a drain while ours stood.
            if queue.unhandled(key, limit=1):
                self.schedule(queue_name, key)
