"""The model is named by a hash of its training data, so unchanged data is never retrained."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.runtime import model as model_module
from bot.runtime.model import ensure_model, training_fingerprint
from tests.conftest import ROOT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "rasa_project"
    shutil.copytree(ROOT / "rasa_project", copy)
    return copy


def test_fingerprint_changes_with_training_data_only(project: Path) -> None:
    before = training_fingerprint(project)
    (project / "tests" / "test_stories.yml").write_text("version: '3.1'\nstories: []\n")
    (project / "endpoints.yml").write_text("# runtime settings are not training data\n")
    assert training_fingerprint(project) == before
    nlu = project / "data" / "nlu" / "en.yml"
    nlu.write_text(nlu.read_text() + "      - hey you\n")
    assert training_fingerprint(project) != before


def test_fingerprint_sees_renamed_files(project: Path) -> None:
    before = training_fingerprint(project)
    (project / "data" / "rules.yml").rename(project / "data" / "rules2.yml")
    assert training_fingerprint(project) != before


def test_existing_model_is_reused_without_training(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    expected = model_module.model_path(project, models)
    expected.write_bytes(b"model")

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("must not train")

    monkeypatch.setattr(model_module.subprocess, "run", no_training)
    assert ensure_model(project, models) == (expected, False)


def test_failed_training_is_reported(project: Path, tmp_path: Path) -> None:
    (project / "domain.yml").write_text("version: '3.1'\nintents: [unknown\n")  # broken YAML
    with pytest.raises(model_module.TrainingFailed, match="rasa train failed"):
        ensure_model(project, tmp_path / "models")
