"""``GET /healthz``: every dependency, as JSON; 503 when one is down.

Besides Redis, Rasa and the action server: the workers (each live worker's heartbeat and
whether every one of its threads is alive, as it publishes them) and the queues (how many
conversations wait and how long the oldest has waited, inbound and outbound; more than
``worker.max_wait_seconds`` fails the check). Each check is a bounded number of Redis reads,
whatever the backlog.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx
import redis
from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from bot.config import channel_modes
from bot.store.connection import StoreParts
from bot.store.intake import INBOUND, OUTBOUND
from bot.store.jobs import worker_states_key
from bot.store.queues import KeyedQueue


class HealthParts(StoreParts, Protocol):
    """What ``/healthz`` reads (the process's ``Services`` has it all)."""

    @property
    def inbound(self) -> KeyedQueue: ...

    @property
    def outbound(self) -> KeyedQueue: ...


#: At most this many workers are listed in the report.
MAX_WORKERS_LISTED = 50

Check = Callable[[], dict[str, Any]]


def newest_heartbeat_age(client: redis.Redis[bytes], key: str, now: float | None = None) -> float | None:
    """Seconds since the most recent worker heartbeat, or ``None`` if no worker ever beat."""
    newest = client.zrevrange(key, 0, 0, withscores=True)
    if not newest:
        return None
    return max(0.0, (now or time.time()) - float(newest[0][1]))


class HealthChecker:
    """Runs the checks; each answers ``{"ok": bool, ...}`` and never raises."""

    def __init__(self, services: HealthParts, timeout: float = 2.0) -> None:
        self._services = services
        self._timeout = timeout
        config = services.config
        self.checks: dict[str, Check] = {
            "redis": self._redis,
            "rasa": lambda: self._every(
                [f"{url}/status" for url in config.rasa.server_urls], {"token": config.secrets.rasa_token}
            ),
            "actions": lambda: self._every(
                list(dict.fromkeys(f"{s.actions_url}/health" for s in config.rasa.servers))
            ),
            "worker": self._worker,
            "queues": self._queues,
        }

    def run(self) -> dict[str, Any]:
        results = {}
        for name, check in self.checks.items():
            started = time.monotonic()
            try:
                result = check()
            except Exception as exc:  # a health check reports, it never fails the page
                result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            result["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
            results[name] = result
        healthy = all(r["ok"] for r in results.values())
        return {
            "status": "ok" if healthy else "down",
            "checks": results,
            "channels": channel_modes(self._services.config),
        }

    def _redis(self) -> dict[str, Any]:
        self._services.redis.ping()
        return {"ok": True}

    def _http(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            answer = httpx.get(url, params=params, timeout=self._timeout)
        except httpx.HTTPError as exc:
            return {"ok": False, "error": f"unreachable: {type(exc).__name__}"}
        return {"ok": answer.status_code == 200, "http_status": answer.status_code}

    def _every(self, urls: list[str], params: dict[str, str] | None = None) -> dict[str, Any]:
        """One server: its answer as before; several (``rasa.processes``): ok only when all are,
        with each one's answer."""
        answers = {url: self._http(url, params) for url in urls}
        if len(answers) == 1:
            return next(iter(answers.values()))
        return {"ok": all(a["ok"] for a in answers.values()), "servers": answers}

    def _worker(self) -> dict[str, Any]:
        client, keys = self._services.redis, self._services.keys
        limit = 3 * self._services.config.worker.heartbeat_seconds
        now = time.time()
        age = newest_heartbeat_age(client, keys.worker_heartbeats, now)
        if age is None:
            return {"ok": False, "error": "no worker has ever reported"}
        # Only workers alive by their heartbeat count; a stopped one is not a failure.
        live = client.zrevrangebyscore(
            keys.worker_heartbeats, "+inf", now - limit, start=0, num=MAX_WORKERS_LISTED, withscores=True
        )
        workers: dict[str, Any] = {}
        dead_threads = False
        if live:
            states = client.hmget(worker_states_key(keys), [member for member, _ in live])
            for (member, beat), raw in zip(live, states, strict=True):
                state = json.loads(raw) if raw else {}
                threads: dict[str, bool] = state.get("threads", {})
                dead = sorted(name for name, alive in threads.items() if not alive)
                dead_threads = dead_threads or bool(dead)
                workers[member.decode()] = {
                    "ok": not dead,
                    "heartbeat_age_s": round(max(0.0, now - float(beat)), 1),
                    "threads": threads,
                    "dead_threads": dead,
                    "thread_restarts": state.get("restarts", 0),
                }
        return {
            "ok": age <= limit and not dead_threads,
            "last_heartbeat_age_s": round(age, 1),
            "limit_s": limit,
            "workers": workers,
        }

    def _queues(self) -> dict[str, Any]:
        services = self._services
        limit = services.config.worker.max_wait_seconds
        seconds, micros = services.redis.time()  # stream ids are on Redis's clock too
        now = seconds + micros / 1e6
        report: dict[str, Any] = {"max_wait_s": limit}
        ok = True
        for name, queue in ((INBOUND, services.inbound), (OUTBOUND, services.outbound)):
            count, since = queue.oldest_waiting()
            oldest = None if since is None else round(max(0.0, now - since), 1)
            ok = ok and (oldest is None or oldest <= limit)
            report[name] = {"waiting_conversations": count, "oldest_wait_s": oldest}
        return {"ok": ok, **report}


def health_blueprint(checker: HealthChecker) -> Blueprint:
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    def healthz() -> ResponseReturnValue:
        report = checker.run()
        return jsonify(report), (200 if report["status"] == "ok" else 503)

    return bp
