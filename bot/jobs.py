"""The job engine (Dramatiq on the product's Redis) and the one job the queues need: drain.

A drain job handles the waiting entries of one queue key in order. At most one drain job
per key is queued at a time (a marker with a TTL); if a job is ever lost, the marker
expires and the worker's sweeper schedules the key again, so no entry is stranded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications, TimeLimit

from bot.queues import Handler, KeyedQueue

logger = logging.getLogger(__name__)

DRAIN_QUEUE = "drain"
#: How long a "drain job queued" marker lives beyond the job's planned start.
SCHEDULE_GRACE_SECONDS = 60.0
#: Delay before retrying a key whose lock is held by another drain.
BUSY_RETRY_SECONDS = 0.5


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
    """Schedules and runs drain jobs for a set of named queues."""

    def __init__(self, broker: RedisBroker, queues: Mapping[str, KeyedQueue]) -> None:
        self.broker = broker
        self.queues = dict(queues)
        self._handlers: dict[str, Handler] = {}
        self._drain_actor: dramatiq.Actor[[str, str], None] = dramatiq.Actor(
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
        """Queue a drain of ``key`` unless one is already queued (or ``force``)."""
        queue = self.queues[queue_name]
        ttl = delay + SCHEDULE_GRACE_SECONDS
        if force:
            queue.refresh_schedule(key, ttl)
        elif not queue.claim_schedule(key, ttl):
            return False
        self._drain_actor.send_with_options(args=(queue_name, key), delay=int(delay * 1000) or None)
        return True

    def sweep(self) -> int:
        """Schedule every key that has waiting entries and no queued drain; return how many."""
        scheduled = 0
        for name, queue in self.queues.items():
            for key in queue.pending_keys():
                if self.schedule(name, key):
                    scheduled += 1
        return scheduled

    def _drain(self, queue_name: str, key: str) -> None:
        queue = self.queues[queue_name]
        handler = self._handlers.get(queue_name)
        if handler is None:
            logger.error("no handler for queue %s in this process", queue_name)
            return
        result = queue.drain(key, handler)
        if result.busy:
            self.schedule(queue_name, key, delay=BUSY_RETRY_SECONDS, force=True)
        elif result.retry_in is not None:
            self.schedule(queue_name, key, delay=result.retry_in, force=True)
        else:
            queue.release_schedule(key)
            # An entry appended after our last read could not claim the marker we held.
            if queue.unhandled(key, limit=1):
                self.schedule(queue_name, key)
