"""Progress bars for the long command-line work (``debtbot test``...), on stderr so that stdout
stays the result a script reads. On a terminal a bar with the count and the time left; elsewhere
(CI logs, pipes) click prints the label once instead of redrawing a bar."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TextIO

import click

__all__ = ["Bar", "bar", "rasa_tqdm_position"]


class Bar(Protocol):
    """What the work sees of a bar: it moves it forward."""

    def update(self, n_steps: int) -> None: ...


@contextmanager
def bar(label: str, total: int, *, file: TextIO | None = None) -> Iterator[Bar]:
    """A progress bar of ``total`` steps labelled ``label``."""
    with click.progressbar(
        length=max(total, 1), label=label, file=file or sys.stderr, show_eta=True, show_pos=True
    ) as progress:
        yield progress


# tqdm's own lines as Rasa writes them into its log: "\r 40%|####      | 30/75 [00:04<00:06, ...]".
# Bars with a description ("Processed story blocks: 100%|...") are training-data loading, not the
# test itself, and are skipped: the test's bar has none.
_TQDM = re.compile(r"(?:^|[\r\n])\s*\d{1,3}%\|[^|\r\n]*\|\s*(\d+)/(\d+) \[")


def rasa_tqdm_position(log_tail: str) -> tuple[int, int] | None:
    """The last ``(done, total)`` of an undescribed tqdm bar in Rasa's output, if any."""
    found = _TQDM.findall(log_tail)
    if not found:
        return None
    done, total = found[-1]
    return int(done), int(total)
