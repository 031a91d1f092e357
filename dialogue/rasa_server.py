"""Starts the Rasa server the way ``rasa run --enable-api --auth-token`` does, except that the
token is read from ``RASA_AUTH_TOKEN`` instead of the command line (where ``ps`` shows it)."""

from __future__ import annotations

import argparse
import logging
import os
import sys


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

    from dialogue.rasa_connector import install_turn_guard

    # A custom action failing mid-turn aborts the turn (not saved, the worker retries) instead
    # of Rasa's "Bot will continue, but the actions events are lost". Our input channel arms
    # it too; here it is armed before any model or channel loads.
    install_turn_guard()

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
