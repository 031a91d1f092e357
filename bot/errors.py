"""The root of every error the ``bot`` package raises on purpose."""

from __future__ import annotations


class BotError(Exception):
    """Root of the ``bot`` package's errors."""


class ConfigError(BotError):
    """A configuration mistake; the message names the key and what is allowed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class NotFound(BotError):
    """A requested thing (account, conversation) does not exist."""


class InvalidRequest(BotError):
    """A request to the gateway is not acceptable; the message says why."""


class Unavailable(BotError):
    """A part the request needs cannot be used right now (a database down); try again later."""
