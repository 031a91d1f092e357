"""`debtbot run` (what `make run` calls): every process starts, the product answers over real
HTTP, and one Ctrl-C stops everything without leaving a process behind."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import psutil
import pytest
import redis
import yaml

from tests.conftest import ROOT, TEST_SECRETS, free_port, wait_for, write_config

pytestmark = pytest.mark.e2e


class Output:
    """Collects a process's output lines in the background."""

    def __init__(self, stream: object) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)


def test_run_starts_everything_answers_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path, trained_model: Path
) -> None:
    port = free_port()
    config = write_config(
        tmp_path,
        {
            "server": {"port": port, "public_url": f"http://127.0.0.1:{port}", "workers": 1, "threads": 4},
            "rasa": {
                "url": f"http://127.0.0.1:{free_port()}",
                "actions_url": f"http://127.0.0.1:{free_port()}",
            },
            "redis": {"embedded_port": free_port(), "data_dir": str(tmp_path / "redis")},
        },
    )
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | TEST_SECRETS
    run = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(config)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output = Output(run.stdout)
    try:
        wait_for(lambda: "Press Ctrl-C to stop everything." in output.text or run.poll() is not None,
                 timeout=240, interval=0.5, what="debtbot run to be ready")  # fmt: skip
        assert run.poll() is None, output.text[-4000:]
        assert "(unchanged, reused)" in output.text  # the shared model was not retrained
        assert re.search(r"sms +sandbox \(TWILIO_ACCOUNT_SID", output.text)
        base = f"http://127.0.0.1:{port}"

        imported = subprocess.run(
            [sys.executable, "-m", "bot.cli", "accounts", "import", str(ROOT / "examples" / "accounts.csv"),
             "--config", str(config)],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        # No REDIS_URL: the command found the embedded server and its password by itself.
        assert imported.returncode == 0, imported.stderr

        health = wait_for(lambda: _healthy(base), timeout=30, what="/healthz to be 200")
        assert {"redis", "rasa", "actions", "worker"} <= set(health["checks"])

        with httpx.Client(base_url=base, timeout=10) as client:
            token = client.get("/simulator").text.split('name="csrf-token" content="')[1].split('"')[0]
            sent = client.post("/simulator/send", json={"account_id": "ACC-1005", "channel": "sms", "text": "hello"},
                               headers={"X-CSRFToken": token})  # fmt: skip
            assert sent.status_code == 202, sent.text
            replies = wait_for(lambda: client.get("/simulator/outbox", params={"recipient": "+14155550132"}).json(),
                               timeout=60, what="a reply over HTTP")  # fmt: skip
        assert "How are you doing today?" in replies[0]["text"]

        # The console: the banner names an example supervisor (development), who can sign in.
        example = re.search(
            r"console +(\S+) +\(the first supervisor: debtbot agents add NAME --role supervisor\)\n"
            r"[^\n]*\(sign in as (\S+) / (\S+):",
            output.text,
        )
        assert example, output.text[-3000:]
        assert example[1] == f"{base}/console/"
        with httpx.Client(base_url=base, timeout=10) as client:
            form = client.get("/console/sign-in").text
            token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
            assert token, form[:2000]
            signed_in = client.post("/console/sign-in", data={"csrf_token": token[1], "name": example[2],
                                                              "password": example[3]})  # fmt: skip
            assert signed_in.status_code == 302, signed_in.text[:500]
            assert client.get("/console/").status_code == 200
            # The ops pages too (the supervisor has the ops role), on the store `make run` made.
            review = client.get("/console/ops/review")
            assert review.status_code == 200 and "conversation" in review.text, review.text[:500]
        assert (tmp_path / "redis" / "appendonly.aof").exists()

        # Rasa's event broker puts the conversation on its stream; the scheduler's tick (every 15 s)
        # copies it into the analytics store made at start-up.
        def copied() -> int:
            with sqlite3.connect(tmp_path / "var" / "analytics.db") as analytics:
                return int(analytics.execute("SELECT count(*) FROM events").fetchone()[0])

        wait_for(copied, timeout=45, what="Rasa's events in the analytics store")
        with sqlite3.connect(tmp_path / "var" / "analytics.db") as analytics:
            assert analytics.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1

        # The embedded Redis asks for its password (made once, mode 0600) and answers with it.
        password_file = tmp_path / "var" / "redis-password"
        assert password_file.stat().st_mode & 0o777 == 0o600
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=_redis_port(config)).ping()
        assert redis.Redis(port=_redis_port(config), password=password_file.read_text().strip()).ping()
        # The action server answers nobody but Rasa.
        assert httpx.post(f"{_actions_url(config)}/webhook", json={}, timeout=5).status_code == 401

        family = psutil.Process(run.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in family)
        # No secret on a command line, where `ps` shows it to every user.
        for secret in (*TEST_SECRETS.values(), password_file.read_text().strip()):
            assert secret not in names
        for expected in (
            "redis-server",
            "dialogue.rasa_server",
            "bot.runtime.action_server",
            "bot.cli worker",
            "gunicorn",
        ):
            assert expected in names
        run.send_signal(signal.SIGINT)  # what Ctrl-C does
        assert run.wait(90) == 0, output.text[-4000:]
        _, alive = psutil.wait_procs(family, timeout=10)
        assert alive == [], [p.cmdline() for p in alive]
        assert "all processes stopped" in output.text
    finally:
        if run.poll() is None:
            run.kill()


def _redis_port(config: Path) -> int:
    return int(yaml.safe_load(config.read_text())["redis"]["embedded_port"])


def _actions_url(config: Path) -> str:
    return str(yaml.safe_load(config.read_text())["rasa"]["actions_url"])


def _healthy(base: str) -> dict[str, object] | None:
    try:
        answer = httpx.get(f"{base}/healthz", timeout=5)
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None
