"""``GET /healthz``: every dependency, as JSON; 503 when one is down."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import redis
from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from bot.services import Services, channel_modes

Check = Callable[[], dict[str, Any]]


def newest_heartbeat_age(client: redis.Redis[bytes], key: str, now: float | None = None) -> float | None:
    """Seconds since the most recent worker heartbeat, or ``None`` if no worker ever beat."""
    newest = client.zrevrange(key, 0, 0, withscores=True)
    if not newest:
        return None
    return max(0.0, (now or time.time()) - float(newest[0][1]))


class HealthChecker:
    """Runs the checks; each answers ``{"ok": bool, ...}`` and never raises."""

    def __init__(self, services: Services, timeout: float = 2.0) -> None:
        self._services = services
        self._timeout = timeout
        config = services.config
        self.checks: dict[str, Check] = {
            "redis": self._redis,
            "rasa": lambda: self._http(
                f"{config.rasa.url}/status", params={"token": config.secrets.rasa_token}
            ),
            "actions": lambda: self._http(f"{config.rasa.actions_url}/health"),
            "worker": self._worker,
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

    def _worker(self) -> dict[str, Any]:
        limit = 3 * self._services.config.worker.heartbeat_seconds
        age = newest_heartbeat_age(self._services.redis, self._services.keys.worker_heartbeats)
        if age is None:
            return {"ok": False, "error": "no worker has ever reported"}
        return {"ok": age <= limit, "last_heartbeat_age_s": round(age, 1), "limit_s": limit}


def health_blueprint(checker: HealthChecker) -> Blueprint:
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    def healthz() -> ResponseReturnValue:
        report = checker.run()
        return jsonify(report), (200 if report["status"] == "ok" else 503)

    return bp
