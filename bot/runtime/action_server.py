"""The Rasa action server with the product's backend installed: ``python -m bot.runtime.action_server``.

Same as ``python -m rasa_sdk --actions dialogue.actions``, except that:

- the actions get the Redis-backed ``DialogueBackend`` first (they may not import ``bot``
  themselves);
- every call but ``GET /health`` must carry ``Authorization: Bearer <DEBTBOT_ACTIONS_TOKEN>``
  (Rasa sends it, from ``rasa_project/endpoints.yml``); anything else gets 401. rasa-sdk 3.6 has
  no authentication of its own, and its ``/webhook`` runs any action on whatever tracker the
  caller makes up (``verified: true`` included);
- the server binds to the host of ``rasa.actions_url`` (loopback by default), not 0.0.0.0;
- in tests, with ``DEBTBOT_TEST_CLOCK_FILE`` set, it reads the time from that file (the tests' set
  clock, as the gateway and the worker have it), never in production.
"""

from __future__ import annotations

import hmac
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.clock import CLOCK_FILE_ENV, Clock, FileClock
from bot.config import Config, load_config
from bot.conversations.dialogue_backend import RedisDialogueBackend
from bot.errors import ConfigError
from bot.privacy import setup_logging
from bot.runtime.services import build_services
from dialogue.backend import set_backend

#: Paths answered without the token: the readiness check, which says nothing but "ok".
OPEN_PATHS = frozenset({"/health"})

log = logging.getLogger(__name__)


def require_token(app: Any, token: str) -> None:
    """Make the Sanic ``app`` refuse (401 JSON) every request to a path outside
    :data:`OPEN_PATHS` without ``Authorization: Bearer <token>``."""
    if not token:
        raise ConfigError(["DEBTBOT_ACTIONS_TOKEN: the action server must not run without a token"])
    from sanic import response

    expected = f"Bearer {token}".encode()

    async def check(request: Any) -> Any:
        if request.path in OPEN_PATHS:
            return None
        given = str(request.headers.get("authorization", "")).encode()
        # Constant time: how much of a guess matched must not show in the answer's timing.
        if hmac.compare_digest(given, expected):
            return None
        log.warning("action server: refused %s %r without a valid token", request.method, request.path)
        return response.json(
            {"error": "unauthorized: this server answers only the product's Rasa server"},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    app.register_middleware(check, "request")


def create_action_app(token: str, actions: str = "dialogue.actions") -> Any:
    """rasa-sdk's Sanic app for ``actions``, behind the token."""
    from rasa_sdk.endpoint import create_app

    app = create_app(actions, cors_origins=None)
    require_token(app, token)
    return app


def clock_for(config: Config, environ: Mapping[str, str]) -> Clock:
    """The system clock; in tests (``DEBTBOT_TEST_CLOCK_FILE``) the tests' set clock, so the
    escalations made here are timed as the gateway and the worker time everything else."""
    path = environ.get(CLOCK_FILE_ENV, "")
    if not path:
        return Clock()
    if config.production:
        raise ConfigError([f"{CLOCK_FILE_ENV}: a test clock is never used in production"])
    return FileClock(Path(path))


def main() -> int:
    try:
        config = load_config()
        token = config.secrets.actions_token
        if not token:
            raise ConfigError(["DEBTBOT_ACTIONS_TOKEN: the action server must not run without a token"])
        clock = clock_for(config, os.environ)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    setup_logging(config.logging.level)
    services = build_services(config, clock=clock)
    if isinstance(clock, FileClock):
        log.warning("action server: on the test clock in %s, not the system clock", clock)
    set_backend(
        RedisDialogueBackend(
            config, services.redis, services.events, escalate=services.escalate, clock=services.clock
        )
    )
    address = urlsplit(config.rasa.actions_url)
    host, port = address.hostname or "127.0.0.1", address.port or 5055

    from rasa_sdk import utils
    from rasa_sdk.plugin import plugin_manager

    # What rasa_sdk.endpoint.run does, with our app and our host.
    app = create_action_app(token)
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    log.info("action server on %s (token required)", config.rasa.actions_url)
    app.run(host, port, workers=utils.number_of_sanic_workers())
    return 0


if __name__ == "__main__":
    sys.exit(main())
