"""Where the CPU goes: py-spy attached to each Python process of a system under the bench's load.

``python -m bench.e2e --profile DIR`` records every Python process of each system during its
closed-loop phase (``DIR/<system>-<process>.txt``, py-spy's raw "collapsed stack" format, one
line per distinct stack with its sample count), then writes ``DIR/summary.md``: per process,
the functions with the most samples on the CPU (own time) and the project's functions with the
most samples under them (inclusive time). Idle threads are left out (py-spy's default), so the
shares are of the time the process was busy.

A benchmark aid, not a test: sampling at 100 Hz costs each process a few per cent.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

# Frames from these folders are "ours": the summary's inclusive table lists only them.
OWN_PACKAGES = ("bot/", "channels/", "dialogue/", "bench/", "rasa/")
RATE = 50


def py_spy() -> str | None:
    """The py-spy executable beside this interpreter (the dev group installs it), or on PATH."""
    here = Path(sys.executable).with_name("py-spy")
    if here.exists():
        return str(here)
    return shutil.which("py-spy")


@contextmanager
def recording(
    folder: Path, system: str, processes: Iterable[tuple[str, int]], *, gil: bool = False
) -> Iterator[None]:
    """py-spy on each (name, pid) while the block runs; raw profiles into ``folder``. With
    ``gil``, only the thread holding the GIL is sampled: where the CPU goes in a process whose
    threads mostly wait for the GIL (a thread waiting for it shows at its last I/O otherwise)."""
    executable = py_spy()
    if executable is None:
        raise RuntimeError("py-spy is not installed: `make install` (it is in the dev group)")
    folder.mkdir(parents=True, exist_ok=True)
    spies: list[subprocess.Popen[bytes]] = []
    for name, pid in processes:
        output = folder / f"{system}-{name}.txt"
        argv = [executable, "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw"]
        argv += ["--output", str(output)] + (["--gil"] if gil else [])
        spies.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        for spy in spies:
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()


def read_raw(path: Path) -> Counter[tuple[str, ...]]:
    """py-spy's raw format: ``frame;frame;...;frame count`` per line (outermost frame first)."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def _short(frame: str) -> str:
    """``func (/long/path/site-packages/pkg/mod.py:12)`` -> ``func (pkg/mod.py)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3.10/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})" if where else name


def top_own(stacks: Counter[tuple[str, ...]], count: int = 15) -> list[tuple[str, float]]:
    """The innermost frames with the most samples, as shares of all samples."""
    total = sum(stacks.values()) or 1
    own: Counter[str] = Counter()
    for stack, samples in stacks.items():
        own[_short(stack[-1])] += samples
    return [(frame, samples / total) for frame, samples in own.most_common(count)]


def _ours(short: str) -> bool:
    """A shortened frame ("func (pkg/mod.py)") in one of :data:`OWN_PACKAGES` (py-spy gives
    paths relative to the working folder or absolute)."""
    where = short.rpartition(" (")[2]
    return where.startswith(OWN_PACKAGES)


def top_inclusive(stacks: Counter[tuple[str, ...]], count: int = 25) -> list[tuple[str, float]]:
    """The project's functions with the most samples at or under them (each counted once per
    stack, so recursion does not inflate them)."""
    total = sum(stacks.values()) or 1
    inclusive: Counter[str] = Counter()
    for stack, samples in stacks.items():
        seen = {short for short in map(_short, stack) if _ours(short)}
        for frame in seen:
            inclusive[frame] += samples
    return [(frame, samples / total) for frame, samples in inclusive.most_common(count)]


def summarise(folder: Path) -> Path:
    """``summary.md`` beside the raw profiles: each process's samples, own and inclusive tops."""
    lines = ["# py-spy profiles under the closed-loop load", ""]
    lines += [f"Sampled at {RATE} Hz; busy samples only (idle threads are not counted).", ""]
    for path in sorted(folder.glob("*.txt")):
        stacks = read_raw(path)
        samples = sum(stacks.values())
        lines += [f"## {path.stem}: {samples} samples ({samples / RATE:.1f} CPU-seconds busy)", ""]
        if not samples:
            continue
        lines += ["Own time (innermost frame):", ""]
        lines += [f"- {share:6.1%}  {frame}" for frame, share in top_own(stacks)]
        lines += ["", "Inclusive (the project's and Rasa's functions):", ""]
        lines += [f"- {share:6.1%}  {frame}" for frame, share in top_inclusive(stacks)]
        lines.append("")
    out = folder / "summary.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    return out
