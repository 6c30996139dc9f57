"""The Training tab, round 3 (issue 31): the photo count never freezes the window, the
"Upscaling now uses" line follows the model actually used, Open folder without a file manager
is not a training failure, a fine-tune keeps its parent's damage knobs while the ConditionNet
is held, the empty charts say why, and the first ETA is not thrown off by the slow first
steps."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest


@pytest.fixture
def tab(qtbot, tmp_path: Path, tiny_model_path: Path, monkeypatch):
    import engine
    import engine.resources

    for target in (engine, engine.resources):
        monkeypatch.setattr(target, "default_model_path", lambda: tiny_model_path)
    from cmdsr_app.training.tab import TrainingTab

    widget = TrainingTab(settings={}, runs_root=tmp_path / "runs")
    qtbot.addWidget(widget)
    return widget


# -- item 2: the photo count -----------------------------------------------------------------
def test_photos_are_counted_after_typing_pauses_off_the_ui_thread(qtbot, tab, tmp_path,
                                                                  monkeypatch) -> None:
    from cmdsr_app.training import photo_count

    folder = tmp_path / "few"
    folder.mkdir()
    calls: list[tuple[str, threading.Thread]] = []

    def walker(path, **_kwargs) -> int:
        calls.append((str(path), threading.current_thread()))
        return 3

    monkeypatch.setattr(photo_count, "count_photos", walker)
    qtbot.keyClicks(tab.form.hr_edit, str(folder))
    warning = tab.form.photos_warning
    qtbot.waitUntil(lambda: not warning.isHidden(), timeout=5000)
    assert "Only 3 photo(s)" in warning.text()
    # one walk, of the whole path as typed, never on the UI thread
    assert [c[0] for c in calls] == [str(folder)]
    assert all(thread is not threading.main_thread() for _, thread in calls)


def test_a_walk_error_reads_not_counted_without_a_traceback(qtbot, tab, tmp_path, monkeypatch,
                                                           caplog) -> None:
    from cmdsr_app.training import photo_count

    def walker(path, **_kwargs) -> int:
        raise PermissionError(13, "Permission denied", str(Path(path) / "private"))

    monkeypatch.setattr(photo_count, "count_photos", walker)
    caplog.set_level(logging.DEBUG)
    qtbot.keyClicks(tab.form.hr_edit, str(tmp_path))
    warning = tab.form.photos_warning
    qtbot.waitUntil(lambda: not warning.isHidden(), timeout=5000)
    assert "not counted" in warning.text() and "Permission denied" in warning.text()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_the_real_walk_stops_at_what_the_warning_needs_and_a_vanished_folder_is_an_oserror(
        tmp_path) -> None:
    import cv2
    import numpy as np

    from cmdsr_app.training.photo_count import count_photos

    for i in range(30):
        sub = tmp_path / f"d{i % 3}"
        sub.mkdir(exist_ok=True)
        cv2.imwrite(str(sub / f"p{i}.png"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("not a photo")
    assert count_photos(tmp_path) == 30
    assert count_photos(tmp_path, limit=20) == 20
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(photo_count_cancelled()):
        count_photos(tmp_path, cancel=cancel)
    assert count_photos(tmp_path / "missing") == 0


def photo_count_cancelled() -> type[BaseException]:
    from cmdsr_app.training.photo_count import CountCancelled

    return CountCancelled


# -- item 5: Open folder without a file manager ------------------------------------------------
def test_open_folder_without_a_file_manager_is_not_a_training_failure(qtbot, window, tmp_path,
                                                                    monkeypatch) -> None:
    from PySide6.QtGui import QDesktopServices

    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda _url: False))
    tab = window.training_tab
    run = tmp_path / "run"
    run.mkdir()
    tab.run_edit.setText(str(run))
    tab.run_edit.editingFinished.emit()
    assert tab.open_folder_button.isEnabled()
    with qtbot.waitSignal(window.errorShown, timeout=5000):
        tab.open_folder_button.click()
    title, message = window.last_error
    assert "Training" not in title and title == "Cannot open the run folder"
    assert str(run) in message and "file manager" in message
    assert tab.status_label.text().startswith("The run folder is")


# -- item 4: the "Upscaling now uses" line -----------------------------------------------------
def _tiny_checkpoint(path: Path, step: int) -> Path:
    import torch

    from engine import ModelConfig, build_model, save_model

    torch.manual_seed(step)
    model = build_model(ModelConfig(scale=4, channels=8, blocks=2, support_size=20,
                                    cond_channels=8))
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_model(model, path, step=step)


def _show_run(tab, run: Path) -> None:
    tab.run_edit.setText(str(run))
    tab.run_edit.editingFinished.emit()


def test_the_uses_line_follows_the_model_actually_used(qtbot, window, tmp_path) -> None:
    run = tmp_path / "run"
    early = _tiny_checkpoint(run / "checkpoints" / "step_0000016.pt", 16)
    tab = window.training_tab
    _show_run(tab, run)
    assert tab.checkpoint_list.count() == 1

    def ask(answer: str) -> None:
        tab.use_button.click()
        qtbot.waitUntil(lambda: window.models.confirm_box is not None
                        and window.models.confirm_box.isVisible(), timeout=15000)
        assert "Upscaling now uses" not in tab.status_label.text()  # not yet: it is asked
        box = window.models.confirm_box
        next(b for b in box.buttons() if b.text() == answer).click()

    ask("Keep the current model")
    qtbot.waitUntil(lambda: "not used" in tab.status_label.text(), timeout=5000)
    assert "Upscaling now uses" not in tab.status_label.text()
    assert window.settings.model_path == ""

    with qtbot.waitSignal(window.modelReady, timeout=15000):
        ask("Use it anyway")
    assert tab.status_label.text().startswith("Upscaling now uses")
    assert early.name in tab.status_label.text()

    with qtbot.waitSignal(window.modelReady, timeout=15000):
        window.choose_model("")  # back to the shipped model
    assert "Upscaling now uses" not in tab.status_label.text()
    assert "shipped model" in tab.status_label.text()


# -- item 7: the empty charts say why; the bar after Start -------------------------------------
def _held_condition_reports(steps: int, gate: threading.Event | None = None):
    """A train function reporting as the engine does while the ConditionNet is held: L1 at
    every step, no contrastive loss or distances (NaN)."""
    import math

    from engine.training.config import TrainProgress

    def train(request, progress, cancel):
        if gate is not None:
            gate.wait(10)
        for step in range(1, steps + 1):
            progress(TrainProgress(step=step, total_steps=request.steps, l1=10.0 / step,
                                   contrastive=math.nan, d_inner=math.nan, d_cross=math.nan,
                                   lr=1e-4, steps_per_s=2.0, eta_s=1.0))
        return None

    return train


@pytest.mark.parametrize("steps, expect", [(2000, "held fixed for all"),
                                           (3000, "held fixed for the first 2,000 steps")])
def test_the_condition_charts_say_why_they_are_empty_in_a_fine_tune(qtbot, tmp_path, photos_dir,
                                                                    tiny_model_path, monkeypatch,
                                                                    steps, expect) -> None:
    import engine
    import engine.resources

    for target in (engine, engine.resources):
        monkeypatch.setattr(target, "default_model_path", lambda: tiny_model_path)
    from cmdsr_app.training.tab import TrainingTab

    settings = {"hr_dir": str(photos_dir), "steps": steps, "run_dir": str(tmp_path / "run")}
    gate = threading.Event()
    tab = TrainingTab(settings=settings, runs_root=tmp_path / "runs",
                      train_fn=_held_condition_reports(33, gate))
    qtbot.addWidget(tab)
    assert tab.state.start == "shipped" and tab.state.preset == "users-cpu"
    for key in ("contrastive", "distances"):
        assert expect in " ".join(tab.charts[key].empty_text().split())
    with qtbot.waitSignal(tab.jobEnded, timeout=10_000):
        tab.start()
        # before the first step the bar says the run is starting, not that there is none
        assert "No run yet" not in tab.progress_bar.text()
        assert "Starting" in tab.progress_bar.text()
        gate.set()
    qtbot.waitUntil(lambda: len(tab.charts["l1"].points("L1")) == 33, timeout=5000)
    assert tab.charts["contrastive"].point_count() == 0
    for key in ("contrastive", "distances"):
        text = " ".join(tab.charts[key].empty_text().split())
        assert "Starts with the first step" not in text and expect in text
    assert tab.charts["l1"].empty_text() == "Starts with the first step"


def test_the_condition_hint_follows_the_preset_and_the_engine_agrees() -> None:
    from cmdsr_app.training.state import COND_FREEZE, TRAIN_PRESETS, condition_chart_hint
    from engine.training.config import TrainConfig

    for preset, _label in TRAIN_PRESETS:
        assert COND_FREEZE[preset] == TrainConfig.preset(preset).cond_freeze_steps
    assert condition_chart_hint(0, 100) == "Starts with the first step"
    assert "held fixed for all of its 500 steps" in " ".join(condition_chart_hint(2000, 500).split())
    assert "first 2,000 steps" in " ".join(condition_chart_hint(2000, 5000).split())


@pytest.fixture
def photos_dir(tmp_path: Path) -> Path:
    import cv2
    import numpy as np

    folder = tmp_path / "hr"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(folder / f"p{i}.png"), (rng.random((48, 48, 3)) * 255).astype(np.uint8))
    return folder


# -- item 13: the first training ETA -----------------------------------------------------------
def test_the_first_eta_is_not_thrown_off_by_the_slow_first_steps(qtbot) -> None:
    """The engine's rate starts from the first, slow steps (3.3 s: loading, first kernels):
    0.3 steps/s, then 1.14. The ETA shown must be unknown ("--") or near the truth, never
    the several minutes the first steps suggest."""
    import re

    from cmdsr_app.training.controls import RunControls
    from engine.training.config import TrainProgress
    from engine.training.loop import _Rate

    now = [100.0]
    controls = RunControls(clock=lambda: now[0])
    qtbot.addWidget(controls)
    controls.update_buttons(busy=True, phase=_running(), has_checkpoint=False)
    total, pace = 200, 1 / 1.14
    controls.show_starting(0, total, resume=False)
    rate = _Rate()
    shown: list[tuple[int, str]] = []
    for step in range(1, 61):
        seconds = 3.3 if step == 1 else pace
        now[0] += seconds
        rate.update(seconds, 0.0)
        controls.show_report(TrainProgress(
            step=step, total_steps=total, l1=1.0, contrastive=float("nan"),
            d_inner=float("nan"), d_cross=float("nan"), lr=1e-4,
            steps_per_s=rate.steps_per_s, eta_s=(total - step) / rate.steps_per_s))
        shown.append((step, controls.eta_label.text().split("ETA ")[1].split(" · ")[0]))
    truth = {step: (total - step) * pace for step, _ in shown}
    known = [(step, text) for step, text in shown if text != "--"]
    assert known and known[0][0] <= 5  # not unknown for long
    for step, text in known:
        parts = [int(n) for n in re.findall(r"\d+", text)]
        seconds = parts[0] * 60 + parts[1] if "min" in text else parts[0]
        assert abs(seconds - truth[step]) <= 0.2 * truth[step], (step, text, truth[step])


def _running():
    from cmdsr_app.training.state import Phase

    return Phase.RUNNING


# -- item 6: a fine-tune's damage knobs, in the Use this model dialog --------------------------
@pytest.fixture(scope="module")
def fine_tunes(tmp_path_factory) -> dict[str, Path]:
    """Two real fine-tunes of a parent with damage knobs: one holding its ConditionNet for the
    whole run (step 2), one whose ConditionNet learned (step 4)."""
    import torch

    from engine.checkpoint import save_model
    from engine.condition_map import ConditionMap, attach_condition_map
    from engine.damage_head import DamageHead, attach_damage_head
    from engine.data import write_synthetic_photos
    from engine.model import ModelConfig, build_model
    from engine.training.config import TrainConfig
    from engine.training.loop import train

    root = tmp_path_factory.mktemp("fine_tunes")
    write_synthetic_photos(root / "photos", 3, (96, 96), seed=1)
    model_cfg = ModelConfig(scale=4, channels=8, blocks=1, support_size=3, cond_channels=8,
                            condition_input="highpass")
    torch.manual_seed(0)
    parent = build_model(model_cfg)
    attach_condition_map(parent, ConditionMap(8))
    attach_damage_head(parent, DamageHead(8))
    parent_path = save_model(parent, root / "parent.pt")
    threads = torch.get_num_threads()
    out = {}
    try:
        for name, freeze, steps in (("held", 100, 2), ("learned", 0, 4)):
            cfg = TrainConfig(model=model_cfg, steps=steps, tasks_per_batch=2, lr_patch=8,
                              cond_every=1, checkpoint_every=steps, num_workers=0,
                              cache_crops_per_image=2, cache_crop_size=48, threads=1,
                              init_from=str(parent_path), cond_freeze_steps=freeze)
            out[name] = train(cfg, root / name, root / "photos")
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.mark.parametrize("which", ["held", "learned"])
def test_use_this_model_says_whether_the_knobs_came_along(qtbot, window, fine_tunes,
                                                         which) -> None:
    path = fine_tunes[which]
    window.use_trained_model(str(path))
    qtbot.waitUntil(lambda: window.models.confirm_box is not None
                    and window.models.confirm_box.isVisible(), timeout=15000)
    text = " ".join(window.models.confirm_box.text().split())
    if which == "held":
        assert "Damage knobs: kept from parent.pt" in text and "held fixed" in text
    else:
        assert "No damage knobs" in text and "ConditionNet learned" in text
        assert "parent.pt" in text
    box = window.models.confirm_box
    with qtbot.waitSignal(window.modelReady, timeout=15000):
        next(b for b in box.buttons() if b.text() == "Use it anyway").click()
    assert (window.models.info.knobs is not None) == (which == "held")
