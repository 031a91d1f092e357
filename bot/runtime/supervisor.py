"""A small process supervisor: starts every process in order, prefixes their output, restarts
one that dies, and on Ctrl-C (or SIGTERM) stops them all, leaving no orphan behind.

Each child runs in a process group of its own (so a signal reaches its children too) and
is told by the kernel to exit if the supervisor itself dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bot.errors import BotError

_PR_SET_PDEATHSIG = 1


class SupervisorError(BotError):
    """A process could not be started or kept running."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class ProcessSpec:
    """How to run one process and how to tell it is ready."""

    name: str
    argv: Sequence[str]
    env: dict[str, str]
    cwd: Path
    ready: Callable[[], bool] | None = None
    ready_timeout: float = 180.0
    stop_timeout: float = 20.0


@dataclass
class ManagedProcess:
    spec: ProcessSpec
    out: IO[str]
    popen: subprocess.Popen[str] | None = None
    restarts: list[float] = field(default_factory=list)
    _pump: threading.Thread | None = None

    def start(self) -> None:
        try:
            self.popen = subprocess.Popen(
                list(self.spec.argv),
                env=self.spec.env,
                cwd=self.spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                bufsize=1,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise SupervisorError(
                f"{self.spec.name}: cannot start {self.spec.argv[0]}: {exc.strerror}"
            ) from exc
        self._pump = threading.Thread(target=self._forward, args=(self.popen,), daemon=True)
        self._pump.start()

    def _forward(self, popen: subprocess.Popen[str]) -> None:
        assert popen.stdout is not None
        prefix = f"{self.spec.name:>8} | "
        for line in popen.stdout:
            self.out.write(prefix + line if line.endswith("\n") else prefix + line + "\n")
            self.out.flush()

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            _signal_group(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(self.spec.stop_timeout)
            except subprocess.TimeoutExpired:
                self.out.write(
                    f"{self.spec.name:>8} | did not stop in {self.spec.stop_timeout:.0f}s: killed\n"
                )
        # Whatever is left in its group (e.g. a gunicorn worker) goes too.
        _signal_group(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        if self._pump is not None:
            self._pump.join(2)


@dataclass
class _Task:
    seconds: float
    run: Callable[[], None]
    due: float = 0.0


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


class Supervisor:
    """Runs processes in order; ``run`` blocks until Ctrl-C / SIGTERM or a fatal failure."""

    #: A process that dies more than this many times in ``RESTART_WINDOW`` stops everything.
    MAX_RESTARTS = 5
    RESTART_WINDOW = 120.0

    def __init__(self, specs: Sequence[ProcessSpec], out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.processes = [ManagedProcess(spec, self.out) for spec in specs]
        self._stopping = threading.Event()
        self._tasks: list[_Task] = []

    def every(self, seconds: float, task: Callable[[], None]) -> None:
        """Run ``task`` every ``seconds`` from :meth:`watch`'s loop (between its looks at the
        processes, so a task may :meth:`restart` them). A task that raises is reported and kept."""
        self._tasks.append(_Task(seconds, task))

    def restart(self, names: Sequence[str], reason: str, env: dict[str, str] | None = None) -> None:
        """Stop and start the named processes (one at a time, in start order), first setting
        ``env`` in every process's environment (so a later restart of any of them gets it too).
        Not counted as a crash."""
        if env:
            for process in self.processes:
                process.spec.env.update(env)
        for process in self.processes:
            if process.spec.name in names and not self._stopping.is_set():
                self.say(f"restarting {process.spec.name}: {reason}")
                process.stop()
                process.start()

    def say(self, message: str) -> None:
        self.out.write(f"{'debtbot':>8} | {message}\n")
        self.out.flush()

    def request_stop(self) -> None:
        """Ask ``run`` to stop everything (safe from a signal handler)."""
        self._stopping.set()

    def start(self) -> None:
        """Start each process; wait for the ones with a readiness check before the next."""
        for process in self.processes:
            if self._stopping.is_set():
                return
            self.say(f"starting {process.spec.name}")
            process.start()
            if process.spec.ready is not None:
                self._wait_ready(process)

    def _wait_ready(self, process: ManagedProcess) -> None:
        deadline = time.monotonic() + process.spec.ready_timeout
        while not self._stopping.is_set():
            if not process.alive():
                raise SupervisorError(f"{process.spec.name} exited during start-up (see its output above)")
            assert process.spec.ready is not None
            if process.spec.ready():
                return
            if time.monotonic() > deadline:
                raise SupervisorError(
                    f"{process.spec.name} not ready after {process.spec.ready_timeout:.0f}s"
                )
            self._stopping.wait(0.3)

    def wait_all_ready(self, checks: dict[str, Callable[[], bool]], timeout: float) -> bool:
        """Wait for extra readiness checks (e.g. the gateway's health); ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        pending = dict(checks)
        while pending and not self._stopping.is_set() and time.monotonic() < deadline:
            for name, check in list(pending.items()):
                if check():
                    del pending[name]
            self._stopping.wait(0.5)
        return not pending

    def watch(self) -> None:
        """Restart processes that die, and run the :meth:`every` tasks, until asked to stop."""
        while not self._stopping.wait(0.5):
            self._run_tasks()
            for process in self.processes:
                if process.popen is None or process.alive():
                    continue
                code = process.popen.returncode
                now = time.monotonic()
                process.restarts = [t for t in process.restarts if now - t < self.RESTART_WINDOW]
                if len(process.restarts) >= self.MAX_RESTARTS:
                    raise SupervisorError(
                        f"{process.spec.name} keeps exiting (code {code}); stopping everything"
                    )
                process.restarts.append(now)
                self.say(f"{process.spec.name} exited with code {code}; restarting")
                process.stop()
                process.start()

    def _run_tasks(self) -> None:
        now = time.monotonic()
        for task in self._tasks:
            if now < task.due:
                continue
            try:
                task.run()
            except Exception as exc:  # a task's bug must not stop the supervisor
                self.say(f"periodic task {getattr(task.run, '__name__', task.run)!r} failed: {exc!r}")
            task.due = time.monotonic() + task.seconds

    def stop(self) -> None:
        """Stop everything, newest first (the gateway before the worker before Redis)."""
        for process in reversed(self.processes):
            if process.popen is not None:
                self.say(f"stopping {process.spec.name}")
                process.stop()

    def pids(self) -> dict[str, int | None]:
        return {p.spec.name: p.pid for p in self.processes}


def install_signal_handlers(supervisor: Supervisor) -> None:
    """First Ctrl-C / SIGTERM: stop cleanly. A second Ctrl-C: kill at once."""
    hits = {"n": 0}

    def handler(signum: int, frame: object) -> None:
        hits["n"] += 1
        if hits["n"] == 1:
            supervisor.say("stopping (Ctrl-C again to kill at once)")
            supervisor.request_stop()
        else:
            for process in supervisor.processes:
                if process.popen is not None:
                    _signal_group(process.popen.pid, signal.SIGKILL)
            os._exit(130)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
