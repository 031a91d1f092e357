"""Scheduled work in the worker: outreach runs every ``outreach.every_minutes`` (when
``outreach.schedule`` is on) and, always, the release of deferred outreach at its moment and
the agents' console's timed work.

Every worker runs the loop; a short Redis lease per tick makes sure one of them does the
work, and the time of the last run is kept in Redis so the interval holds across workers
and restarts.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import datetime
from typing import Protocol

import redis
from redis.exceptions import LockError

from bot.clock import Clock
from bot.outreach.planner import OutreachPlanner
from bot.store.connection import StoreParts


class SchedulerParts(StoreParts, Protocol):
    """What the scheduler uses (the process's ``Services`` has it all)."""

    @property
    def clock(self) -> Clock: ...

    @property
    def outreach(self) -> OutreachPlanner: ...

    def console_housekeeping(self, now: datetime) -> int:
        """The agents' console's timed work (idle claims back to the queue, agents' replies
        deferred by the gate sent at their moment, Rasa history caught up); how much it did."""
        ...

    def ops_housekeeping(self, now: datetime) -> None:
        """The analytics store's timed work (events into SQL, the daily retention run)."""
        ...


logger = logging.getLogger(__name__)

#: How often a worker looks for work (deferred messages go out within this much of their moment).
TICK_SECONDS = 15.0


def tick(services: SchedulerParts, now: datetime | None = None) -> tuple[int, str | None]:
    """One round at ``now`` (default: ``services.clock``): release what is due, plan a run if
    one is due; (released, run id or None)."""
    now = now or services.clock.now()
    lease = services.redis.lock(services.keys.outreach_lease, timeout=120, blocking=False, thread_local=False)
    if not lease.acquire(blocking=False):
        return 0, None
    try:
        planner = services.outreach
        released = planner.release_due(now)
        # Their own failures must not stop outreach (logged; tried again at the next tick).
        try:
            released += services.console_housekeeping(now)
        except Exception:
            logger.exception("scheduler: the console's timed work failed; trying again")
        try:
            services.ops_housekeeping(now)
        except Exception:
            logger.exception("scheduler: the analytics store's timed work failed; trying again")
        run_id = None
        outreach = services.config.outreach
        if outreach.schedule:
            last = services.redis.get(services.keys.outreach_last_run)
            if last is None or now.timestamp() - float(last) >= outreach.every_minutes * 60:
                services.redis.set(services.keys.outreach_last_run, str(now.timestamp()))
                run_id = planner.plan_run().run_id
        return released, run_id
    finally:
        with contextlib.suppress(LockError, redis.RedisError):
            lease.release()


def run_scheduler(services: SchedulerParts, stop: threading.Event) -> None:
    """Until ``stop``: a tick every :data:`TICK_SECONDS`."""
    while not stop.is_set():
        try:
            released, run_id = tick(services)
            if released or run_id:
                logger.info("scheduler: %d deferred message(s) released%s", released,
                            f", outreach run {run_id} planned" if run_id else "")  # fmt: skip
        except redis.RedisError as exc:
            logger.warning("scheduler: Redis unreachable (%s); trying again", exc)
        except Exception:
            logger.exception("scheduler: a tick failed; trying again")
        stop.wait(TICK_SECONDS)
