"""The gateway's WSGI entry point for gunicorn: ``gunicorn bot.wsgi:app``."""

from __future__ import annotations

import sys

from bot.app import create_app
from bot.config import load_config
from bot.errors import ConfigError
from bot.privacy import setup_logging

try:
    _config = load_config()
except ConfigError as exc:
    print(f"configuration error:\n{exc}", file=sys.stderr)
    raise SystemExit(2) from None

setup_logging(_config.logging.level)
app = create_app(_config)
