"""A run trained in the app looks the same after a restart: the charts show every step the
live curve showed, not only the engine's log records (a mean every ``log_every`` steps)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from engine.training.config import TrainConfig, TrainProgress
from engine.training.run_folder import RunWriter

LOG_EVERY, VAL_EVERY, CHECKPOINT_EVERY = 10, 50, 25
LINES = (("l1", "L1"), ("l1", "trend"), ("contrastive", "contrastive"),
         ("distances", "d_inner"), ("distances", "d_cross"), ("val_psnr", "PSNR"),
         ("val_psnr", "bicubic"))


def _l1(step: int) -> float:
    # Noisy, as a real loss: each step draws new photos and damage.
    return 0.05 + 1.0 / step + 0.03 * math.sin(step * 1.7)


def _engine_like(stop_at: int):
    """A train function that writes the run folder as the engine does (a log record every
    ``LOG_EVERY`` steps holding their mean, checkpoints, validations) and reports every step,
    as ``engine.training.loop.train`` does; it pauses at ``stop_at``."""

    def train(request, progress, _cancel):
        cfg = dataclasses.replace(TrainConfig.preset("cpu"), steps=request.steps,
                                  log_every=LOG_EVERY, val_every=VAL_EVERY,
                                  checkpoint_every=CHECKPOINT_EVERY)
        writer = RunWriter(request.run_dir)
        writer.write_config(cfg, {"data_dir": str(request.hr_dir), "val_dir": None})
        losses: list[float] = []
        checkpoint = None
        for step in range(1, stop_at + 1):
            losses.append(_l1(step))
            contrastive, d = 2.0 - step / request.steps, (0.1 + 0.01 * math.cos(step), 0.5)
            if step % LOG_EVERY == 0 or step == stop_at:
                writer.log({"kind": "train", "step": step, "l1": sum(losses) / len(losses),
                            "lr": 2e-4, "contrastive": contrastive, "d_inner": d[0],
                            "d_cross": d[1]})
                losses = []
            val = None
            if step % VAL_EVERY == 0:
                val = 25.0 + step / request.steps
                writer.log({"kind": "val", "step": step, "val_psnr": val, "val_ssim": 0.7,
                            "bicubic_psnr": 24.0, "bicubic_ssim": 0.6})
            checkpoint = None
            if step % CHECKPOINT_EVERY == 0 or step == stop_at:
                checkpoint = writer.save_checkpoint({"step": step}, step)
            progress(TrainProgress(step=step, total_steps=request.steps, l1=_l1(step),
                                   contrastive=contrastive, d_inner=d[0], d_cross=d[1],
                                   lr=2e-4, steps_per_s=50.0, eta_s=1.0, val_psnr=val,
                                   checkpoint=checkpoint))
        return checkpoint

    return train


def _train_in_app(qtbot, tmp_path: Path, stop_at: int) -> tuple[Path, dict]:
    """Train in a Training tab until the run pauses at ``stop_at``; returns the run folder and
    every chart line as it was drawn then."""
    from cmdsr_app.training.tab import TrainingTab

    (tmp_path / "hr").mkdir()
    run = tmp_path / "run"
    settings = {"hr_dir": str(tmp_path / "hr"), "run_dir": str(run), "steps": 200,
                "preset": "cpu", "start": "scratch", "degradation": "paper"}
    tab = TrainingTab(settings=settings, runs_root=tmp_path / "runs",
                      train_fn=_engine_like(stop_at))
    qtbot.addWidget(tab)
    with qtbot.waitSignal(tab.job.threadEnded, timeout=30_000):
        assert tab.start()
    qtbot.waitUntil(lambda: tab.metrics.last_step() == stop_at)
    tab.curves.flush()
    drawn = {line: tab.charts[chart].points(line) for chart, line in LINES}
    assert len(drawn["L1"]) == stop_at  # the live curve: one point per step
    return run, drawn


def _restarted_tab(qtbot, tmp_path: Path, run: Path):
    from cmdsr_app.training.tab import TrainingTab

    tab = TrainingTab(settings={"last_run_dir": str(run)}, runs_root=tmp_path / "runs")
    qtbot.addWidget(tab)
    return tab


def test_after_a_restart_the_charts_show_the_run_as_it_was_drawn(qtbot, tmp_path) -> None:
    run, drawn = _train_in_app(qtbot, tmp_path, stop_at=120)
    tab = _restarted_tab(qtbot, tmp_path, run)
    for chart, line in LINES:
        assert tab.charts[chart].points(line) == drawn[line], line
    assert tab.charts["l1"].axis_range()[:2] == (0, 120)


def test_steps_logged_after_the_app_drew_them_follow_the_kept_curve(qtbot, tmp_path) -> None:
    """The run continued without the app (``cmdsr train --resume``): the curve the app drew,
    then the log's records past it."""
    run, drawn = _train_in_app(qtbot, tmp_path, stop_at=120)
    writer = RunWriter(run)
    for step in range(130, 201, 10):
        writer.log({"kind": "train", "step": step, "l1": 0.04, "contrastive": 0.5,
                    "d_inner": 0.1, "d_cross": 0.5})
    tab = _restarted_tab(qtbot, tmp_path, run)
    l1 = tab.charts["l1"].points("L1")
    assert l1 == drawn["L1"] + [(float(s), 0.04) for s in range(130, 201, 10)]
    assert tab.charts["l1"].axis_range()[:2] == (0, 200)


def test_a_damaged_curves_file_falls_back_to_the_log(qtbot, tmp_path) -> None:
    from cmdsr_app.training.metrics import CURVES_NAME

    run, _drawn = _train_in_app(qtbot, tmp_path, stop_at=60)
    (run / CURVES_NAME).write_text(json.dumps({"format": "cmdsr-studio-curves-1",
                                                "series": {"l1": {"points": "x"}}}))
    tab = _restarted_tab(qtbot, tmp_path, run)
    # the log's records: a mean at each tenth step
    assert [x for x, _ in tab.charts["l1"].points("L1")] == [10, 20, 30, 40, 50, 60]


def test_curve_drawn_past_the_log_ends_where_the_log_does(tmp_path) -> None:
    """The app kept its curve at a checkpoint (step 25) and was killed before the engine's
    next log record: the resumed run takes up from the log's end, so the curve does too."""
    from cmdsr_app.training.metrics import RunMetrics

    drawn = RunMetrics()
    for step in range(1, 26):
        drawn.add({"step": step, "l1": _l1(step)})
    drawn.save_curves(tmp_path)
    writer = RunWriter(tmp_path)
    for step in (10, 20):
        writer.log({"kind": "train", "step": step, "l1": 0.5})
    shown = RunMetrics()
    shown.load_run(tmp_path)
    assert shown.points("l1") == drawn.points("l1")[:20]
    assert shown.last_step() == 20
