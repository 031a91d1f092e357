"""Custom actions served by ``rasa run actions`` (the action server loads this package)."""

from dialogue.actions.session import ActionSessionStart

__all__ = ["ActionSessionStart"]
