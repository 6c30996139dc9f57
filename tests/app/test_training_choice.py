"""Honest model choice (issue 22, item 3): training fine-tunes the shipped model with the
recipe that made it (scratch as an option), a folder far smaller than advised is warned
about, an early or worse checkpoint says so before it is used, and Compare's Baseline belongs
to the selected model."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest


@pytest.fixture
def tab(qtbot, tmp_path: Path, tiny_model_path: Path, monkeypatch):
    import engine
    import engine.resources

    for target in (engine, engine.resources):
        monkeypatch.setattr(target, "default_model_path", lambda: tiny_model_path)
    from cmdsr_app.training.tab import TrainingTab

    settings: dict = {}
    widget = TrainingTab(settings=settings, runs_root=tmp_path / "runs")
    qtbot.addWidget(widget)
    return widget


def test_training_fine_tunes_the_shipped_model_by_default(tab, tiny_model_path: Path) -> None:
    from cmdsr_app.training.state import TrainRequest, build_train_config
    from engine import TrainConfig, read_checkpoint

    form = tab.form
    assert form.start_combo.currentData() == "shipped"
    assert form.preset_combo.currentData() == "users-cpu"
    assert form.degradation_combo.currentData() == "users"
    tab.state.run_dir = "run"
    cfg = build_train_config(TrainRequest.from_settings(tab.state, resume=False))
    assert cfg.init_from == str(tiny_model_path)
    assert cfg.condition_steps == 0  # the shipped condition already reads the damage
    assert cfg.model == read_checkpoint(tiny_model_path)[0]
    recipe = TrainConfig.preset("users-cpu")
    assert (cfg.loss_weighting, cfg.damage_weight) == (recipe.loss_weighting, recipe.damage_weight)
    # From scratch: a new network, with the recipe's condition stage.
    form.start_combo.setCurrentIndex(form.start_combo.findData("scratch"))
    assert tab.state.start == "scratch"
    cfg = build_train_config(TrainRequest.from_settings(tab.state, resume=False))
    assert cfg.init_from == "" and cfg.condition_steps == recipe.condition_steps
    assert tab.settings_dict()["start"] == "scratch"


def test_a_folder_far_smaller_than_advised_is_warned_about(qtbot, tab, tmp_path: Path) -> None:
    few = tmp_path / "few"
    few.mkdir()
    for i in range(3):
        cv2.imwrite(str(few / f"p{i}.png"), np.full((40, 40, 3), 80 + i, np.uint8))
    tab.form.hr_edit.setText(str(few))
    warning = tab.form.photos_warning
    qtbot.waitUntil(lambda: not warning.isHidden(), timeout=5000)  # counted in the background
    assert "Only 3 photo(s)" in warning.text() and "50 or more" in warning.text()
    for i in range(3, 25):
        cv2.imwrite(str(few / f"p{i}.png"), np.full((40, 40, 3), 80, np.uint8))
    tab.form.hr_edit.setText(str(few) + "/")
    qtbot.waitUntil(lambda: not tab.form.photo_counter.pending, timeout=5000)
    assert warning.isHidden()


def _save(path: Path, step: int, *, zero: bool = False, seed: int = 0) -> Path:
    import torch

    from engine import ModelConfig, build_model, save_model

    torch.manual_seed(seed)
    model = build_model(ModelConfig(scale=4, channels=8, blocks=2, support_size=20,
                                    cond_channels=8))
    if zero:
        with torch.no_grad():
            for p in model.parameters():
                p.zero_()
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_model(model, path, step=step)


@pytest.mark.parametrize("answer", ["Keep the current model", "Use it anyway"])
def test_an_early_checkpoint_says_so_before_it_is_used(qtbot, window, tmp_path: Path,
                                                       answer: str) -> None:
    early = _save(tmp_path / "run" / "checkpoints" / "step_000015.pt", 15)
    window.use_trained_model(str(early))
    qtbot.waitUntil(lambda: window.models.confirm_box is not None
                    and window.models.confirm_box.isVisible(), timeout=15000)
    box = window.models.confirm_box
    assert "only 15 steps" in box.text() and "step_000015.pt" in box.text()
    button = next(b for b in box.buttons() if b.text() == answer)
    if answer == "Use it anyway":
        with qtbot.waitSignal(window.modelReady, timeout=15000):
            button.click()
        assert window.settings.model_path == str(early)
    else:
        button.click()
        qtbot.wait(100)
        assert window.settings.model_path == ""  # the shipped default stays


def test_a_checkpoint_scoring_below_the_shipped_model_on_its_validation(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    import dataclasses

    from cmdsr_app.jobs import ModelCache
    from cmdsr_app.training.checkpoint_check import judge_checkpoint
    from engine import TrainConfig
    from engine.training.run_folder import RunWriter

    val = tmp_path / "val"
    val.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        img = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(val / f"v{i}.png"), cv2.GaussianBlur(img, (5, 5), 1.5))
    run = tmp_path / "run"
    cfg = dataclasses.replace(TrainConfig.preset("cpu"), val_crop=0, val_images=2)
    RunWriter(run).write_config(cfg, {"val_dir": str(val)})  # as the engine's run does
    broken = _save(run / "checkpoints" / "step_005000.pt", 5000, zero=True)
    shipped = tmp_path / "shipped.pt"
    shutil.copy(tiny_model_path, shipped)
    verdict = judge_checkpoint(broken, shipped, ModelCache())
    assert verdict.step == 5000
    assert verdict.psnr < verdict.shipped_psnr
    assert any("below the shipped model's" in w for w in verdict.warnings())


def test_compare_baseline_belongs_to_the_selected_model(qtbot, window, tmp_path: Path) -> None:
    assert window.compare.source_disabled_reason("baseline") is None  # the shipped model's
    other = _save(tmp_path / "mine" / "final.pt", 5000, seed=3)
    with qtbot.waitSignal(window.modelReady, timeout=15000):
        window.choose_model(str(other))
    reason = window.compare.source_disabled_reason("baseline")
    assert reason is not None and "final.pt has no conditioning-off baseline" in reason
    assert window.models.run_settings().baseline_path is None
    with qtbot.waitSignal(window.modelReady, timeout=15000):
        window.choose_model("")
    assert window.compare.source_disabled_reason("baseline") is None
