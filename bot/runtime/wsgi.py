"""The gateway's WSGI entry point for gunicorn: ``gunicorn bot.runtime.wsgi:app``.

Here, not in ``bot.gateway``, because this is where the gateway process builds its parts
(``build_services``) once; the gateway itself only receives them.
"""

from __future__ import annotations

import sys

from bot.config import load_config
from bot.errors import ConfigError
from bot.gateway.app import create_app
from bot.ops.web import ops_blueprint
from bot.privacy import setup_logging
from bot.runtime.services import build_services

try:
    _config = load_config()
except ConfigError as exc:
    print(f"configuration error:\n{exc}", file=sys.stderr)
    raise SystemExit(2) from None

setup_logging(_config.logging.level)
_services = build_services(_config)
app = create_app(_config, _services, blueprints=[ops_blueprint(_services)])
