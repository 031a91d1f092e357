"""The job engine (Dramatiq on the product's Redis) and the one job the queues need: drain.

A drain job handles the waiting entries of one queue key in order. At most one drain per
key is planned at a time: the plan (``:scheduled``) carries a random token that the job
carries too, and the time the job should start. Correctness does not rest on Dramatiq
delivering every job: if a job is lost (its consumer thread died, Redis restarted, the
worker was killed), the plan stays in Redis, and the worker's sweeper sends the same job
again once it is overdue (:meth:`Jobs.resend_overdue`). Copies of a job are harmless: a job
whose token is no longer the key's plan does nothing.

Two lanes: replies (the ``outbound`` queue) are drained by jobs on their own Dramatiq queue,
:data:`REPLY_QUEUE`, which the worker consumes with threads of their own, so a finished reply
never waits behind jobs that wait on Rasa (:data:`DRAIN_QUEUE`).

Waking on arrival: Dramatiq's Redis consumer polls an empty queue, every 100-200 ms as the
worker was set up before. :class:`WakingRedisBroker` pushes a token to a small wake-up list
(``<namespace>:__wake__.<queue>``) with every job it enqueues, and an idle consumer blocks on
that list (BLPOP) instead of sleeping, so a new job starts within a few milliseconds while an
idle worker asks Redis only once per ``worker.idle_poll_seconds`` per queue. The tokens are
only hints: a lost one costs at most that poll interval, never a job.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications, TimeLimit

from bot.store.connection import Keys, redis_client
from bot.store.queues import Handler, KeyedQueue

logger = logging.getLogger(__name__)

DRAIN_QUEUE = "drain"
#: The Dramatiq queue of the reply lane (drains of the keyed queues in :data:`REPLY_LANE`).
REPLY_QUEUE = "drain_outbound"
#: Keyed queues whose drains go to :data:`REPLY_QUEUE` unless :class:`Jobs` is told otherwise.
REPLY_LANE = frozenset({"outbound"})
#: At most this many wake-up tokens wait in a queue's wake-up list (one per idle consumer is
#: enough; more only cost an empty fetch each).
WAKE_TOKENS = 16
#: A wake-up list nobody reads goes away after this (ms).
WAKE_TTL_MS = 60_000
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


def make_broker(redis_url: str, namespace: str) -> WakingRedisBroker:
    """A Dramatiq Redis broker under our key prefix, whose idle consumers wake on arrival.

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
    # Through the one URL-to-client function, so a Sentinel URL works here too; no socket timeout
    # (as before: the consumers block on Redis for their idle timeout).
    client = redis_client(redis_url)
    return WakingRedisBroker(client=client, namespace=namespace, middleware=middleware)  # type: ignore[no-untyped-call]


class WakingRedisBroker(RedisBroker):
    """Dramatiq's Redis broker, plus a wake-up token for every job it puts on a queue.

    Its consumers wait for a token (BLPOP, at most their idle timeout: :attr:`idle_timeout_ms`,
    else the Dramatiq worker's ``worker_timeout``) instead of sleeping between polls. Jobs
    enqueued by an older broker without tokens are still found, at the next poll.
    """

    #: When set, how long an idle consumer waits for a wake-up (ms), instead of the Dramatiq
    #: worker's ``worker_timeout`` (which then only says how soon its job threads notice a stop).
    idle_timeout_ms: int | None = None

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> WakingConsumer:
        return WakingConsumer(self, queue_name, prefetch, self.idle_timeout_ms or timeout)

    def wake_key(self, queue_name: str) -> str:
        """The wake-up list of a Dramatiq queue (``drain``, ``drain.DQ``, ...)."""
        return f"{self.namespace}:__wake__.{queue_name}"

    def wake(self, queue_name: str) -> None:
        """Tell one idle consumer of ``queue_name`` to look now. Never raises: the job is
        already stored, and a missed wake-up only waits for the next poll."""
        key = self.wake_key(queue_name)
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.lpush(key, 1)
            pipe.ltrim(key, 0, WAKE_TOKENS - 1)
            pipe.pexpire(key, WAKE_TTL_MS)
            pipe.execute()
        except redis.RedisError as exc:
            logger.debug("could not wake the consumers of %s: %s", queue_name, exc)

    def do_enqueue(self, queue_name: str, *args: Any) -> Any:
        result = self._dispatch("enqueue")(queue_name, *args)  # type: ignore[no-untyped-call]
        self.wake(queue_name)
        return result

    def do_requeue(self, queue_name: str, *args: Any) -> Any:
        result = self._dispatch("requeue")(queue_name, *args)  # type: ignore[no-untyped-call]
        self.wake(queue_name)
        return result


class WakingConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer, waiting for a wake-up token rather than sleeping when idle.

    Idle, it blocks on its queue's wake-up list for at most ``timeout`` ms. A consumer of a
    delay queue waits at most until the earliest job it holds is due, so delayed jobs start on
    time (Dramatiq moves them after each turn of this iterator). A consumer already holding as
    many jobs as it may prefetch waits, without Redis, until a job thread acknowledges one.
    """

    #: Set once a Redis older than 6 refused a fractional BLPOP timeout.
    _whole_seconds = False

    def __init__(self, broker: WakingRedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)  # type: ignore[no-untyped-call]
        self._wake_key = broker.wake_key(queue_name)
        self._room = threading.Event()
        self._is_delay_queue = queue_name.endswith(".DQ")
        #: Delayed jobs handed out and not yet acknowledged: message id -> eta (ms), and a heap.
        self._etas: dict[str, int] = {}
        self._eta_heap: list[tuple[int, str]] = []

    def ack(self, message: MessageProxy) -> None:
        try:
            super().ack(message)  # type: ignore[no-untyped-call]
        finally:
            self._settled(message.message_id)

    def nack(self, message: MessageProxy) -> None:
        try:
            super().nack(message)  # type: ignore[no-untyped-call]
        finally:
            self._settled(message.message_id)

    def requeue(self, messages: Any) -> None:
        messages = list(messages)
        super().requeue(messages)  # type: ignore[no-untyped-call]
        for message in messages:
            self._etas.pop(message.message_id, None)

    def _settled(self, message_id: str) -> None:
        self._etas.pop(message_id, None)
        self._room.set()

    def __next__(self) -> MessageProxy | None:
        try:
            while True:
                if self.message_cache:
                    data = self.message_cache.pop(0)
                    if data is None:  # as Dramatiq's own consumer does (its issue #266)
                        logger.warning("found a None message in the cache of queue %s", self.queue_name)
                        continue
                    message = Message.decode(data)
                    self.queued_message_ids.add(message.message_id)
                    eta = message.options.get("eta")
                    if self._is_delay_queue and isinstance(eta, int | float):
                        self._etas[message.message_id] = int(eta)
                        heapq.heappush(self._eta_heap, (int(eta), message.message_id))
                    return MessageProxy(message)
                self._room.clear()
                if self.outstanding_message_count < self.prefetch:
                    self.message_cache = self.broker.do_fetch(
                        self.queue_name, self.prefetch - self.outstanding_message_count
                    )
                    if self.message_cache:
                        continue
                    self._wait_for_work()
                else:
                    # Full: a job thread's acknowledgement makes room (no Redis involved).
                    self._room.wait(self._wait_seconds())
                return None
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]

    def _wait_seconds(self) -> float:
        """The idle timeout, or less: until the earliest delayed job held here is due."""
        wait = float(self.timeout) / 1000
        while self._eta_heap and self._eta_heap[0][1] not in self._etas:
            heapq.heappop(self._eta_heap)  # settled already
        if self._eta_heap:
            due_in = self._eta_heap[0][0] / 1000 - time.time()
            wait = min(wait, max(due_in, 0.001))
        return wait

    def _wait_for_work(self) -> None:
        wait = self._wait_seconds()
        if wait < 0.01:
            time.sleep(wait)
            return
        # BLPOP's timeout: seconds, fractions allowed from Redis 6 (before: whole seconds,
        # rounded up; a delayed job then starts up to a second late). The token only wakes us.
        timeout: float = math.ceil(wait) if WakingConsumer._whole_seconds else round(wait, 3)
        try:
            self.broker.client.blpop([self._wake_key], timeout=timeout)
        except redis.TimeoutError:
            pass  # a socket timeout shorter than the wait (set in REDIS_URL): just look again
        except redis.ResponseError as exc:
            if WakingConsumer._whole_seconds or "timeout" not in str(exc).lower():
                raise
            logger.info("this Redis takes whole seconds in BLPOP (%s); rounding waits up", exc)
            WakingConsumer._whole_seconds = True


class Jobs:
    """Plans, sends and runs drain jobs for a set of named queues."""

    def __init__(
        self,
        broker: dramatiq.Broker,
        queues: Mapping[str, KeyedQueue],
        *,
        lanes: Mapping[str, str] | None = None,
    ) -> None:
        """``lanes``: keyed queue name -> the Dramatiq queue its drain jobs go to; by default
        the queues in :data:`REPLY_LANE` go to :data:`REPLY_QUEUE`, the rest to
        :data:`DRAIN_QUEUE`."""
        self.broker = broker
        self.queues = dict(queues)
        self._handlers: dict[str, Handler] = {}
        if lanes is None:
            lanes = {name: REPLY_QUEUE for name in self.queues if name in REPLY_LANE}
        self._lanes = {name: lanes.get(name, DRAIN_QUEUE) for name in self.queues}
        self._actors: dict[str, dramatiq.Actor[..., None]] = {}
        # Always both lanes: a worker consumes both whatever queues this process knows.
        for job_queue in sorted({DRAIN_QUEUE, REPLY_QUEUE, *self._lanes.values()}):
            self._actors[job_queue] = dramatiq.Actor(
                self._drain,
                broker=broker,
                # "drain" for the first lane (the name jobs already queued carry).
                actor_name="drain" if job_queue == DRAIN_QUEUE else job_queue,
                queue_name=job_queue,
                priority=0,
                options={"max_retries": 0},
            )

    @property
    def job_queues(self) -> frozenset[str]:
        """The Dramatiq queues drain jobs go to (a worker consumes all of them)."""
        return frozenset(self._actors)

    def lane(self, queue_name: str) -> str:
        """The Dramatiq queue that drain jobs of keyed queue ``queue_name`` go to."""
        return self._lanes.get(queue_name, DRAIN_QUEUE)

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
        actor = self._actors[self.lane(queue_name)]
        actor.send_with_options(args=(queue_name, key, token), delay=int(delay * 1000) or None)

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
