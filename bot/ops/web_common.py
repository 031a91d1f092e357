"""What every ops page uses: the parts it is given (``OpsParts``) and the signed-in person."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from flask_login import current_user  # type: ignore[import-untyped]  # ships no type hints

from bot.console.auth import AuthParts, User

if TYPE_CHECKING:
    from bot.ops.analytics.store import AnalyticsStore

__all__ = ["OpsParts", "ops_user"]


class OpsParts(AuthParts, Protocol):
    """What the ops pages use; ``bot.runtime.services.Services`` provides it."""

    @property
    def analytics(self) -> AnalyticsStore: ...


def ops_user() -> User:
    """The signed-in ops person (the blueprint's guard has checked the role)."""
    return cast(User, current_user._get_current_object())
