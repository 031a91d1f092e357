"""The supervisor starts processes in order, restarts a dead one, and stops every one of them
(and their children) on request, leaving no orphan."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import psutil
import pytest

from bot.runtime.supervisor import ProcessSpec, Supervisor, SupervisorError
from tests.conftest import wait_for

# A process that starts a grandchild (like gunicorn's workers) and prints a line.
PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("child", child.pid, flush=True)
    time.sleep(600)
    """
)


def spec(name: str, code: str, tmp_path: Path, **kwargs: object) -> ProcessSpec:
    return ProcessSpec(
        name=name, argv=[sys.executable, "-c", code], env=dict(os.environ), cwd=tmp_path, **kwargs
    )  # type: ignore[arg-type]


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_stop_leaves_no_process_or_grandchild(tmp_path: Path) -> None:
    out = io.StringIO()
    supervisor = Supervisor([spec("a", PARENT, tmp_path), spec("b", PARENT, tmp_path)], out=out)
    supervisor.start()
    wait_for(lambda: out.getvalue().count("child") == 2, what="grandchildren")
    pids = [p for p in supervisor.pids().values() if p]
    family = [proc for pid in pids for proc in [psutil.Process(pid), *descendants(pid)]]
    assert len(family) == 4
    supervisor.stop()
    _, alive = psutil.wait_procs(family, timeout=5)
    assert alive == []
    assert "       a | child" in out.getvalue()  # output is prefixed with the process name


def test_processes_start_in_order_after_readiness(tmp_path: Path) -> None:
    marker = tmp_path / "first-ready"
    first = spec("first", f"import pathlib, time; time.sleep(0.5); pathlib.Path({str(marker)!r}).touch(); time.sleep(60)",
                 tmp_path, ready=marker.exists)  # fmt: skip
    second = spec(
        "second",
        f"import pathlib, sys; sys.exit(0 if pathlib.Path({str(marker)!r}).exists() else 3)",
        tmp_path,
    )
    supervisor = Supervisor([first, second], out=io.StringIO())
    try:
        supervisor.start()
        proc = supervisor.processes[1].popen
        assert proc is not None and proc.wait(10) == 0
    finally:
        supervisor.stop()


def test_a_process_that_dies_at_start_up_is_reported(tmp_path: Path) -> None:
    supervisor = Supervisor(
        [spec("bad", "import sys; sys.exit(4)", tmp_path, ready=lambda: False)], out=io.StringIO()
    )
    with pytest.raises(SupervisorError, match="bad exited during start-up"):
        supervisor.start()
    supervisor.stop()


def test_a_dead_process_is_restarted(tmp_path: Path) -> None:
    out = io.StringIO()
    supervisor = Supervisor([spec("flaky", "import time; time.sleep(600)", tmp_path)], out=out)
    supervisor.start()
    first = supervisor.pids()["flaky"]
    assert first is not None
    os.kill(first, signal.SIGKILL)
    watcher = threading.Thread(target=supervisor.watch, daemon=True)
    watcher.start()
    wait_for(lambda: supervisor.pids()["flaky"] != first and supervisor.processes[0].alive(), what="restart")
    supervisor.request_stop()
    watcher.join(5)
    supervisor.stop()
    assert "flaky exited with code -9; restarting" in out.getvalue()


def test_children_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    script = tmp_path / "sup.py"
    script.write_text(textwrap.dedent(
        f"""
        import io, os, sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
        from bot.runtime.supervisor import ProcessSpec, Supervisor
        s = Supervisor([ProcessSpec("x", [sys.executable, "-c", "import time; time.sleep(600)"], dict(os.environ), {str(tmp_path)!r})], out=io.StringIO())
        s.start()
        print(s.pids()["x"], flush=True)
        time.sleep(600)
        """
    ))  # fmt: skip
    supervisor = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert supervisor.stdout is not None
    child = int(supervisor.stdout.readline().split()[-1])
    assert psutil.pid_exists(child)
    supervisor.kill()  # SIGKILL: no chance to clean up
    supervisor.wait()
    wait_for(lambda: not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE,
             timeout=10, what="orphan to exit")  # fmt: skip
