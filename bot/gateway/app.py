"""The gateway: ``create_app(config)`` builds the Flask app with its blueprints."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import redis
import sqlalchemy.exc  # type: ignore[import-untyped]  # 1.4, pinned by Rasa: no stubs
from flask import Blueprint, Flask, jsonify, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.config import Config
from bot.console.agents import AgentError
from bot.console.auth import PermissionDenied
from bot.console.desk import DeskError
from bot.console.handoff import NotAllowed
from bot.console.web import ConsoleParts, console_blueprint, error_page
from bot.email.unsubscribe import UnsubscribeLinks
from bot.errors import InvalidRequest, NotFound, Unavailable
from bot.gateway.health import HealthChecker, HealthParts, health_blueprint
from bot.gateway.simulator import HttpWebhookPoster, SimulatorParts, WebhookPoster, simulator_blueprint
from bot.gateway.unsubscribe import unsubscribe_blueprint
from bot.gateway.webhooks import WebhookParts, webhooks_blueprint
from bot.store.addresses import AddressBook
from channels.base import ChannelAuthError, MalformedRequest, UnsupportedCapability

logger = logging.getLogger(__name__)


class GatewayParts(WebhookParts, HealthParts, SimulatorParts, ConsoleParts, Protocol):
    """Everything the gateway's blueprints use. The process builds it once
    (``bot.runtime.services.Services`` has all of it) and passes it in."""

    @property
    def unsubscribe(self) -> UnsubscribeLinks: ...
    @property
    def addresses(self) -> AddressBook: ...


#: Webhook bodies above this are refused (413); no provider sends more for a text message.
MAX_BODY_BYTES = 1024 * 1024

#: The one place where errors become HTTP statuses.
STATUS_FOR_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (ChannelAuthError, 403),
    (MalformedRequest, 400),
    (InvalidRequest, 400),
    (NotFound, 404),
    (UnsupportedCapability, 422),
    # The agents' console: a move the conversation's state does not allow (AlreadyClaimed is
    # one: someone else has it), bad input from an agent, a supervisor's action by an agent.
    (NotAllowed, 409),
    (DeskError, 400),
    (AgentError, 400),
    (PermissionDenied, 403),
    # Redis down: the provider must retry later; nothing was accepted.
    (redis.RedisError, 503),
    # The analytics database down or not migrated (the ops pages): try again later.
    (Unavailable, 503),
    (sqlalchemy.exc.OperationalError, 503),
)


def create_app(
    config: Config,
    services: GatewayParts,
    *,
    poster: WebhookPoster | None = None,
    health: HealthChecker | None = None,
    blueprints: Sequence[Blueprint] = (),
) -> Flask:
    """Build the gateway from the process's parts (``poster`` and ``health``: built when not given;
    ``blueprints``: more pages built by the layers above, such as the ops console)."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=config.secrets.secret_key,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        WTF_CSRF_TIME_LIMIT=None,
        JSON_SORT_KEYS=False,
    )
    csrf = CSRFProtect(app)
    webhooks = webhooks_blueprint(services)
    csrf.exempt(webhooks)  # providers authenticate with signatures, not browser sessions
    app.register_blueprint(webhooks)
    unsubscribe = unsubscribe_blueprint(
        services.unsubscribe, services.addresses, config.company.display_name, config.company.phone
    )
    # Mail clients' one-click POSTs carry no session (RFC 8058); the token is the authority.
    csrf.exempt(unsubscribe)
    app.register_blueprint(unsubscribe)
    health = health or HealthChecker(services)
    health_bp = health_blueprint(health)
    csrf.exempt(health_bp)
    app.register_blueprint(health_bp)
    if config.simulator.enabled and not config.production:
        app.register_blueprint(
            simulator_blueprint(services, poster or HttpWebhookPoster(config.server.internal_url))
        )
    # The agents' console: signed-in pages and their scripts' JSON; CSRF applies to all of it.
    app.register_blueprint(console_blueprint(services))
    for blueprint in blueprints:
        app.register_blueprint(blueprint)  # CSRF applies: they are signed-in pages
    _register_error_handlers(app)
    proxies = config.server.trusted_proxies
    if proxies:
        # Behind ``proxies`` reverse proxies (TLS ends there): the client is the address that
        # many hops back in X-Forwarded-For (the console's sign-in throttle counts per client),
        # the scheme X-Forwarded-Proto's. Without them the headers are ignored: anyone could
        # send them.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    return app


def _error(status: int, message: str, **extra: Any) -> ResponseReturnValue:
    if status < 500:
        # Refusals are worth a line (a provider misconfigured, someone probing); the path and
        # the message can carry outside input, which the log filter escapes.
        logger.info("%s %s refused (%d): %s", request.method, request.path, status, message)
    # An agent's browser asking for a console page gets a page, not JSON; scripts keep JSON.
    page = error_page(status, message)
    if page is not None:
        return page
    return jsonify({"error": message, "status": status, **extra}), status


def _register_error_handlers(app: Flask) -> None:
    for error_type, status in STATUS_FOR_ERROR:

        def handler(exc: Exception, status: int = status) -> ResponseReturnValue:
            if status >= 500:
                logger.error("request failed: %s", exc)
            return _error(status, str(exc) or type(exc).__name__)

        app.register_error_handler(error_type, handler)

    @app.errorhandler(CSRFError)
    def csrf_failed(exc: CSRFError) -> ResponseReturnValue:
        return _error(400, f"CSRF check failed: {exc.description}")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        return _error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        logger.exception("unexpected error")
        return _error(500, "internal error")
