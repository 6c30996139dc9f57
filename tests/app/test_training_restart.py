"""The Training tab after a restart: a run folder written by the engine is read back and its
charts show the whole history, on axes that start where the run started."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine.training.config import TrainConfig
from engine.training.run_folder import RunWriter, read_metrics


def _write_run(run: Path, *, steps: int, stopped_at: int, log_every: int,
               val_every: int) -> list[dict]:
    """A run folder as the engine leaves it when paused at ``stopped_at``: its config, its
    metrics log (every ``log_every`` steps, a validation every ``val_every``) and a checkpoint.
    Returns the log's records."""
    cfg = dataclasses.replace(TrainConfig.preset("cpu"), steps=steps, log_every=log_every,
                              val_every=val_every)
    writer = RunWriter(run)
    writer.write_config(cfg, {"data_dir": str(run.parent / "hr"), "val_dir": str(run.parent / "val")})
    for step in range(log_every, stopped_at + 1, log_every):
        writer.log({"kind": "train", "step": step, "l1": 0.05 + 1.0 / step, "lr": 2e-4,
                    "contrastive": 2.0 - step / steps, "d_inner": 0.1, "d_cross": 0.5})
        if step % val_every == 0:
            writer.log({"kind": "val", "step": step, "val_psnr": 25.0 + step / steps,
                        "val_ssim": 0.7, "bicubic_psnr": 24.0, "bicubic_ssim": 0.6})
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / f"step_{stopped_at:07d}.pt").write_bytes(b"weights")
    return read_metrics(writer.metrics_path)


@pytest.mark.parametrize("shown_later", [False, True])
def test_reloaded_charts_show_the_whole_run_from_its_start(qtbot, tmp_path, shown_later) -> None:
    from cmdsr_app.training.tab import TrainingTab

    run = tmp_path / "run"
    records = _write_run(run, steps=2000, stopped_at=1500, log_every=10, val_every=1000)
    train = [r for r in records if r["kind"] == "train"]
    val = [r for r in records if r["kind"] == "val"]
    tab = TrainingTab(settings={"last_run_dir": str(run)}, runs_root=tmp_path / "runs",
                      show_last_run=not shown_later)
    qtbot.addWidget(tab)
    if shown_later:  # the main window shows the last run once the engine has loaded
        tab.show_last_run()

    charts = tab.charts
    expected = {("l1", "L1"): ("l1", train), ("contrastive", "contrastive"): ("contrastive", train),
                ("distances", "d_inner"): ("d_inner", train), ("distances", "d_cross"): ("d_cross", train),
                ("val_psnr", "PSNR"): ("val_psnr", val), ("val_psnr", "bicubic"): ("bicubic_psnr", val)}
    for (chart, line), (key, recs) in expected.items():
        assert charts[chart].points(line) == [(r["step"], r[key]) for r in recs], (chart, line)
    assert len(charts["l1"].points("trend")) == len(train)
    # Every chart's step axis runs from the run's start to where it stopped, so the
    # validation chart's one point (step 1,000) sits two thirds along, under the losses.
    for name, chart in charts.items():
        axis = chart.axis_range()
        assert axis is not None and axis[:2] == (0, 1500), name
    assert (tab.progress_bar.value(), tab.progress_bar.maximum()) == (1500, 2000)


def test_a_long_runs_reloaded_curve_keeps_its_first_record(qtbot, tmp_path) -> None:
    """A log longer than a chart keeps (the reference preset logs every 100 steps of a
    million): neighbouring points are averaged, but the curve still starts at the first one."""
    from cmdsr_app.training.tab import TrainingTab

    run = tmp_path / "run"
    records = _write_run(run, steps=1_000_000, stopped_at=900_000, log_every=100, val_every=5000)
    first = next(r for r in records if r["kind"] == "train")
    tab = TrainingTab(settings={"run_dir": str(run)}, runs_root=tmp_path / "runs")
    qtbot.addWidget(tab)
    l1 = tab.charts["l1"].points("L1")
    assert l1[0] == (first["step"], first["l1"])
    assert 1000 < len(l1) < 9000 and l1[-1][0] > 899_000
    assert [x for x, _ in l1] == sorted(x for x, _ in l1)
    assert tab.charts["l1"].axis_range()[:2] == (0, 900_000)


def test_a_run_stopped_before_its_first_validation_says_when_it_comes(qtbot, tmp_path) -> None:
    from cmdsr_app.training.tab import TrainingTab

    run = tmp_path / "run"
    _write_run(run, steps=2000, stopped_at=500, log_every=10, val_every=600)
    tab = TrainingTab(settings={"last_run_dir": str(run)}, runs_root=tmp_path / "runs")
    qtbot.addWidget(tab)
    assert tab.val_edit.text() == str(tmp_path / "val")  # the run's own validation folder
    # The run's interval (600 steps, not the preset's 1,000), counted from where it stopped.
    assert tab.charts["val_psnr"].empty_text() == "First evaluation at step 600 (every 600 steps)"
    assert tab.charts["val_psnr"].axis_range() is None
    assert tab.charts["l1"].axis_range()[:2] == (0, 500)
    assert tab.progress_bar.text() == "500 / 2000 steps"
    assert tab.resume_button.isEnabled() and not tab.stop_button.isEnabled()


def test_an_idle_tab_offers_no_stop_and_says_when_validation_comes(qtbot, tmp_path) -> None:
    from cmdsr_app.training.tab import TrainingTab

    tab = TrainingTab(settings={}, runs_root=tmp_path / "runs")
    qtbot.addWidget(tab)
    assert tab.start_button.isEnabled()
    assert not (tab.stop_button.isEnabled() or tab.pause_button.isEnabled()
                or tab.resume_button.isEnabled())
    validation = tab.charts["val_psnr"]
    assert validation.empty_text() == "Choose a validation folder to see it"
    tab.val_edit.setText(str(tmp_path))
    tab.val_edit.editingFinished.emit()
    # the default setup, the studio recipe on a CPU, evaluates every 500 steps
    assert validation.empty_text() == "First evaluation at step 500 (every 500 steps)"
    tab.preset_combo.setCurrentIndex(tab.preset_combo.findData("reference"))
    assert validation.empty_text() == "First evaluation at step 5,000 (every 5,000 steps)"
    tab.steps_spin.setValue(3000)
    assert validation.empty_text() == (
        "Evaluated every 5,000 steps (first at step 5,000, past the end)")
