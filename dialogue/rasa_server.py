"""Starts the Rasa server the way ``rasa run --enable-api --auth-token`` does, except that the
token is read from ``RASA_AUTH_TOKEN`` instead of the command line (where ``ps`` shows it), and
that action-server responses are validated with a schema compiled once
(:func:`install_fast_action_validation`), events are looked up by name in a table instead of
walking every class at each one (:func:`install_fast_event_lookup`), and a save's events reach
our event broker in one round trip (``dialogue.event_broker``)."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from typing import Any, cast


def install_fast_action_validation() -> None:
    """Validate action-server responses with a validator built once, not at every call.

    Rasa 3.6's ``RemoteAction._validate_action_result`` calls ``jsonschema.validate`` on every
    response: that checks the (fixed) schema against its meta-schema and builds a new validator
    each time, about two thirds of the Rasa server's CPU under load. The replacement keeps
    ``validate``'s semantics (the validator class the schema asks for, no format checks, the
    error ``best_match`` picks) and Rasa's (the same ``ValidationError`` with the same sentence
    added to its message); the validator is rebuilt only if a class's
    ``action_response_format_spec()`` ever answers a different schema. Idempotent; Rasa's
    function stays reachable as ``__wrapped__``.
    """
    from jsonschema.exceptions import best_match  # type: ignore[import-untyped]
    from jsonschema.validators import validator_for  # type: ignore[import-untyped]
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    if getattr(RemoteAction, "_debtbot_fast_validation", False):
        return
    stock = RemoteAction._validate_action_result
    # Word for word what Rasa 3.6 appends to the message before raising the error again.
    suffix = (
        ". Failed to validate Action server response from API, "
        "make sure your response from the Action endpoint is valid. "
        "For more information about the format visit "
        f"{DOCS_BASE_URL}/custom-actions"
    )
    compiled: dict[type, tuple[Any, Any]] = {}  # class -> (its schema, a validator for it)

    @functools.wraps(stock)
    def validate_action_result(self: Any, result: Any) -> bool:
        schema = self.action_response_format_spec()  # a small dict around the shared EVENTS_SCHEMA
        known = compiled.get(type(self))
        if known is None or known[0] != schema:
            validator_class = validator_for(schema)
            validator_class.check_schema(schema)  # as jsonschema.validate does (SchemaError)
            known = compiled[type(self)] = (schema, validator_class(schema))
        error = best_match(known[1].iter_errors(result))
        if error is None:
            return True
        error.message += suffix
        raise error

    RemoteAction._validate_action_result = validate_action_result
    RemoteAction._debtbot_fast_validation = True


def install_fast_event_lookup() -> None:
    """Find an event's class by its name in a table, not by walking every class each time.

    Rasa 3.6's ``Event.resolve_by_type`` (called for every event read from a tracker or an
    action's answer) lists every subclass of ``Event`` and checks each one with
    ``inspect.isabstract``: about 15% of the Rasa server's CPU under load. The table maps each
    ``type_name`` to the class Rasa's walk finds first; it is rebuilt when a name is missing
    (a class imported later), so it answers what Rasa's function answers. Idempotent.
    """
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    if getattr(Event, "_debtbot_fast_lookup", False):
        return
    stock = Event.resolve_by_type
    table: dict[str, type] = {}

    def rebuild() -> None:
        found: dict[str, type] = {}
        for cls in all_subclasses(Event):
            found.setdefault(cls.type_name, cls)  # the first one, as Rasa's loop returns
        table.clear()
        table.update(found)

    @functools.wraps(stock)
    def resolve_by_type(type_name: str, default: type | None = None) -> type | None:
        cls = table.get(type_name)
        if cls is None:
            rebuild()
            cls = table.get(type_name)
        if cls is not None:
            return cls
        # Rasa's own answer for names no class has ("topic", the default, or its error).
        return cast("type | None", stock(type_name, default))

    Event.resolve_by_type = staticmethod(resolve_by_type)
    Event._debtbot_fast_lookup = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="trained model archive")
    parser.add_argument("--endpoints", required=True)
    parser.add_argument("--credentials", required=True)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5005)
    parser.add_argument("--response-timeout", type=int, default=60)
    args = parser.parse_args(argv)
    token = os.environ.get("RASA_AUTH_TOKEN", "")
    if not token:
        print("RASA_AUTH_TOKEN is not set: the Rasa HTTP API must not run without a token", file=sys.stderr)
        return 2

    import rasa.api
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    from dialogue.event_broker import install_batched_streaming
    from dialogue.rasa_connector import install_turn_guard

    # A custom action failing mid-turn aborts the turn (not saved, the worker retries) instead
    # of Rasa's "Bot will continue, but the actions events are lost". Our input channel arms
    # it too; here it is armed before any model or channel loads.
    install_turn_guard()
    install_fast_action_validation()
    install_fast_event_lookup()
    install_batched_streaming()

    # INFO, as `rasa run` does by default: Rasa's DEBUG lines carry what users wrote.
    configure_logging_and_warnings(logging.INFO)
    configure_structlog(logging.INFO)
    rasa.api.run(
        model=args.model,
        endpoints=args.endpoints,
        credentials=args.credentials,
        enable_api=True,
        auth_token=token,
        interface=args.interface,
        port=args.port,
        response_timeout=args.response_timeout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
