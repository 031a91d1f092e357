"""The agent console's one root exception; the gateway maps it (and its kinds) to HTTP."""

from __future__ import annotations

from bot.errors import BotError


class ConsoleError(BotError):
    """Root of the agent console's errors."""
