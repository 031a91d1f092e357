"""What the inbound and outbound paths are made of: steps, run in order until one stops.

A step is a function of a context (what is known of the message so far) and keyword-only
collaborators; it returns :class:`Stop` or the context to pass on (perhaps with more in it).
:func:`bind` gives a step the collaborators it names, so the handler runs one list and a test
calls one step with fakes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache, partial
from typing import TypeVar

C = TypeVar("C")
T = TypeVar("T")


@dataclass(frozen=True)
class Stop:
    """A step's answer that ends the path for this message (``why`` is for tests and readers)."""

    why: str


def collaborators(step: Callable[..., object]) -> tuple[str, ...]:
    """The names of the collaborators ``step`` takes (its keyword-only parameters)."""
    return _collaborators(step)


@cache
def _collaborators(step: Callable[..., object]) -> tuple[str, ...]:
    parameters = inspect.signature(step).parameters.values()
    return tuple(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


def bind(step: Callable[..., T], parts: Mapping[str, object]) -> Callable[..., T]:
    """``step`` with the collaborators it names taken from ``parts`` (a ``KeyError`` names a
    collaborator nobody provides)."""
    return partial(step, **{name: parts[name] for name in collaborators(step)})


def run(steps: Iterable[Callable[[C], C | Stop]], context: C) -> C | Stop:
    """Each step in turn, each given what the one before passed on, until one stops."""
    for step in steps:
        outcome = step(context)
        if isinstance(outcome, Stop):
            return outcome
        context = outcome
    return context
