"""The funnel pages of the ops console (being built)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint

if TYPE_CHECKING:
    from bot.ops.web_common import OpsParts


def register(bp: Blueprint, parts: OpsParts) -> None:
    """Add the funnel views to the ops blueprint."""
