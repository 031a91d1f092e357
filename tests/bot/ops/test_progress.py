"""The progress bars of the long commands: Rasa's own test bar is followed, other bars are not,
and a bar off a terminal prints its label once instead of redrawing."""

from __future__ import annotations

import io
from pathlib import Path

from bot.ops.progress import bar, rasa_tqdm_position
from bot.ops.quality import story_names

RASA_LOG = (
    "2026-03-02 INFO  rasa.core.test - Evaluating 75 stories\n"
    "Processed story blocks: 100%|██████████| 75/75 [00:00<00:00, 900.1it/s, # trackers=1]\n"
    "\r  0%|          | 0/75 [00:00<?, ?it/s]"
    "\r 40%|████      | 30/75 [00:04<00:06,  7.10it/s]"
    "\r 41%|████▏     | 31/75 [00:04<00:06,  7.12it/s]"
)


def test_the_position_is_the_last_of_rasas_undescribed_bar() -> None:
    assert rasa_tqdm_position(RASA_LOG) == (31, 75)


def test_bars_with_a_description_are_training_data_loading_not_the_test() -> None:
    only_loading = "Processed story blocks: 100%|██████████| 75/75 [00:00<00:00, 900.1it/s]\n"
    assert rasa_tqdm_position(only_loading) is None
    assert rasa_tqdm_position("") is None


def test_off_a_terminal_the_bar_prints_its_label_and_no_redraws() -> None:
    out = io.StringIO()
    with bar("test stories", 3, file=out) as moving:
        for _ in range(3):
            moving.update(1)
    assert out.getvalue().count("test stories") == 1
    assert "\r" not in out.getvalue()


def test_the_stories_bar_counts_every_story_in_the_test_files(tmp_path: Path) -> None:
    (tmp_path / "test_a.yml").write_text(
        'version: "3.1"\nstories:\n- story: one\n  steps: []\n- story: two\n  steps: []\n'
    )
    (tmp_path / "test_b.yml").write_text('version: "3.1"\nstories:\n- story: three\n  steps: []\n')
    (tmp_path / "broken.yml").write_text("stories: [\n")
    assert story_names(tmp_path) == ["one", "two", "three"]
