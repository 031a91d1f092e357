"""The Rasa action server with the product's backend installed: ``python -m bot.action_server``.

Same as ``python -m rasa_sdk --actions dialogue.actions``, except that the actions get the
Redis-backed ``DialogueBackend`` first (they may not import ``bot`` themselves), and the
server binds to the host of ``rasa.actions_url`` (loopback by default), not 0.0.0.0.
"""

from __future__ import annotations

import logging
import os
import sys
from urllib.parse import urlsplit

from bot.config import load_config
from bot.dialogue_backend import RedisDialogueBackend
from bot.errors import ConfigError
from bot.privacy import setup_logging
from bot.services import build_services
from dialogue.backend import set_backend


def main() -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    setup_logging(config.logging.level)
    services = build_services(config)
    set_backend(RedisDialogueBackend(config, services.redis, services.events))
    address = urlsplit(config.rasa.actions_url)
    # rasa_sdk reads its bind address from SANIC_HOST.
    os.environ["SANIC_HOST"] = address.hostname or "127.0.0.1"
    from rasa_sdk.endpoint import run

    logging.getLogger(__name__).info("action server on %s", config.rasa.actions_url)
    run("dialogue.actions", port=address.port or 5055, cors_origins=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
