"""The trained Rasa model, named by a hash of what it was trained from.

``make run`` and the tests call :func:`ensure_model`: when a model for the current training
data already exists it is used as is (seconds), otherwise ``rasa train`` runs once. A file
lock keeps two processes (a test run and ``make run``) from training the same model twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from bot.errors import BotError

logger = logging.getLogger(__name__)

#: What the model depends on, relative to the Rasa project folder. Tests are not training data.
_TRAINING_INPUTS = ("config.yml", "domain.yml", "domain", "data")
_MODEL_PREFIX = "debtbot-"


class TrainingFailed(BotError):
    """``rasa train`` did not produce a model."""


def _input_files(project_dir: Path) -> Iterator[Path]:
    for name in _TRAINING_INPUTS:
        path = project_dir / name
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml"))


def training_fingerprint(project_dir: Path) -> str:
    """A hash of the training inputs (paths and contents) and the Rasa version."""
    digest = hashlib.sha256()
    digest.update(_rasa_version().encode())
    for path in _input_files(project_dir):
        digest.update(b"\0" + path.relative_to(project_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def _rasa_version() -> str:
    from importlib.metadata import version

    return version("rasa")


def model_path(project_dir: Path, models_dir: Path) -> Path:
    """Where the model for the current training data is (or will be)."""
    return models_dir / f"{_MODEL_PREFIX}{training_fingerprint(project_dir)}.tar.gz"


def ensure_model(project_dir: Path, models_dir: Path, *, keep: int = 3) -> tuple[Path, bool]:
    """Return the model for the current data, training it first if needed.

    The second value says whether this call trained.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    target = model_path(project_dir, models_dir)
    if target.exists():
        return target, False
    with open(models_dir / ".train.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():  # another process trained it while we waited
            return target, False
        logger.info("training data changed: training a new Rasa model (%s)", target.name)
        command = [
            sys.executable, "-m", "rasa", "train",
            "--config", str(project_dir / "config.yml"),
            "--domain", str(project_dir / "domain.yml"),
            "--data", str(project_dir / "data"),
            "--out", str(models_dir),
            "--fixed-model-name", target.name.removesuffix(".tar.gz"),
        ]  # fmt: skip
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        result = subprocess.run(command, env=env, cwd=project_dir.parent, check=False)
        if result.returncode != 0 or not target.exists():
            raise TrainingFailed(f"rasa train failed (exit code {result.returncode}); see its output above")
        _prune(models_dir, keep=keep, current=target)
    return target, True


def _prune(models_dir: Path, *, keep: int, current: Path) -> None:
    models = sorted(
        models_dir.glob(f"{_MODEL_PREFIX}*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for old in [m for m in models if m != current][max(keep - 1, 0) :]:
        old.unlink(missing_ok=True)
