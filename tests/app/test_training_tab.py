"""The Training tab with the real engine on a tiny network: charts fill, Pause/Resume continue
the run, a run interrupted by closing the app resumes next time, bad data is reported."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from cmdsr_app.training.metrics import MetricSeries, RunMetrics, smooth
from cmdsr_app.training.state import (
    Phase,
    TrainingSettings,
    describe_progress,
    format_eta,
    format_time_limit,
    list_checkpoints,
    new_run_dir,
)

# A network and batch small enough for a step to take milliseconds on one CPU core.
TINY = (
    "sr_patches_per_task=2",
    "model.channels=8",
    "model.blocks=2",
    "model.support_size=3",
    "model.cond_channels=8",
    "tasks_per_batch=2",
    "lr_patch=8",
    "cond_every=1",
    "log_every=1",
    "checkpoint_every=25",
    "val_every=3",
    "val_crop=0",
    "val_images=2",
    "cache_crops_per_image=0",
    "num_workers=0",
    # One thread: two OpenMP threads on a busy 2-core CI machine spin against each other
    # (measured: 10x slower).
    "threads=1",
)
TIMEOUT_MS = 30_000


def _write_photos(folder: Path, rng: np.random.Generator, count: int = 4) -> Path:
    folder.mkdir(parents=True)
    for i in range(count):
        img = (rng.random((64, 72, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"photo{i}.png"), cv2.GaussianBlur(img, (5, 5), 1.5))
    return folder


@pytest.fixture
def photos(tmp_path: Path, rng: np.random.Generator) -> Path:
    return _write_photos(tmp_path / "hr", rng)


@pytest.fixture
def make_tab(qtbot, tmp_path: Path):
    """A TrainingTab on isolated settings (a plain dict) and a runs folder inside tmp_path."""
    from cmdsr_app.training.tab import TrainingTab

    tabs = []

    def make(settings: dict, **kwargs):
        # The paper's CPU setup from scratch: the studio recipe and the shipped model's start
        # need a full-size network (bicubic start, paired tasks), too slow for these tests.
        for key, value in {"preset": "cpu", "start": "scratch", "degradation": "paper"}.items():
            settings.setdefault(key, value)  # in place: the tab writes back into this dict
        tab = TrainingTab(settings=settings, runs_root=tmp_path / "runs",
                          config_overrides=TINY, **kwargs)
        qtbot.addWidget(tab)
        tabs.append(tab)
        return tab

    threads = torch.get_num_threads()
    yield make
    for tab in tabs:
        assert tab.shutdown(10_000)
    torch.set_num_threads(threads)  # the engine applied threads=1 process-wide


def _run_to_end(qtbot, tab, action) -> str:
    with qtbot.waitSignal(tab.jobEnded, timeout=TIMEOUT_MS) as ended:
        assert action()
    assert not tab.is_running
    return ended.args[0]


# -- the real engine through the widget ----------------------------------------------------
def test_three_training_steps_fill_the_charts(qtbot, make_tab, photos, tmp_path) -> None:
    settings = {"hr_dir": str(photos), "val_dir": str(photos), "steps": 3,
                "run_dir": str(tmp_path / "run")}
    tab = make_tab(settings)
    reports = []
    tab.progressed.connect(reports.append)
    assert _run_to_end(qtbot, tab, tab.start) == "finished"

    assert [p.step for p in reports] == [1, 2, 3]
    assert tab.phase is Phase.FINISHED
    assert [x for x, _ in tab.charts["l1"].points("L1")] == [1, 2, 3]
    assert all(y > 0 for _, y in tab.charts["l1"].points("L1"))
    assert len(tab.charts["l1"].points("trend")) == 3
    assert len(tab.charts["contrastive"].points("contrastive")) == 3
    assert len(tab.charts["distances"].points("d_inner")) == 3
    assert len(tab.charts["distances"].points("d_cross")) == 3
    psnr = tab.charts["val_psnr"].points("PSNR")
    assert [x for x, _ in psnr] == [3] and 0 < psnr[0][1] < 100
    assert len(tab.charts["val_psnr"].points("bicubic")) == 1
    assert tab.progress_bar.value() == 3 and tab.progress_bar.maximum() == 3
    assert "Step 3 of 3" in tab.eta_label.text()

    ckpts = tab.checkpoints()
    assert ckpts and ckpts[-1].step == 3 and ckpts[-1].path.parent.name == "checkpoints"
    assert all(c.path.name != "latest.pt" for c in ckpts)
    assert tab.use_button.isEnabled()
    with qtbot.waitSignal(tab.modelChosen, timeout=1000) as chosen:
        tab.use_button.click()
    from engine import load_model

    model = load_model(chosen.args[0])
    assert model.config.channels == 8 and Path(chosen.args[0]) == ckpts[-1].path
    assert settings["last_run_dir"] == str(tmp_path / "run")


def test_pause_then_resume_continues_the_run(qtbot, make_tab, photos, tmp_path) -> None:
    tab = make_tab({"hr_dir": str(photos), "steps": 60, "run_dir": str(tmp_path / "run")})
    steps: list[int] = []
    tab.progressed.connect(lambda p: steps.append(p.step))
    with qtbot.waitSignal(tab.jobEnded, timeout=TIMEOUT_MS) as ended:
        with qtbot.waitSignal(tab.progressed, timeout=TIMEOUT_MS):
            assert tab.start()
        assert tab.pause_button.isEnabled() and not tab.start_button.isEnabled()
        tab.pause_button.click()
        assert tab.phase is Phase.PAUSING and not tab.pause_button.isEnabled()
    assert ended.args == ["paused"]
    paused_at = steps[-1]
    assert 1 <= paused_at < 60
    assert tab.phase is Phase.PAUSED and tab.resume_button.isEnabled()
    assert tab.checkpoints()[-1].step == paused_at  # the pause wrote a checkpoint
    assert f"step {paused_at}" in tab.status_label.text()

    assert _run_to_end(qtbot, tab, tab.resume) == "finished"
    assert steps[len(steps) - (60 - paused_at)] == paused_at + 1  # continued, not restarted
    assert steps[-1] == 60
    xs = [x for x, _ in tab.charts["l1"].points("L1")]
    assert xs == sorted(xs) and xs[-1] == 60 and len(xs) == 60
    assert tab.checkpoints()[-1].step == 60


def test_stop_ends_the_run_and_start_never_overwrites_it(qtbot, make_tab, photos, tmp_path) -> None:
    run = tmp_path / "run"
    tab = make_tab({"hr_dir": str(photos), "steps": 1000, "run_dir": str(run)})
    with qtbot.waitSignal(tab.jobEnded, timeout=TIMEOUT_MS) as ended:
        with qtbot.waitSignal(tab.progressed, timeout=TIMEOUT_MS):
            tab.start()
        tab.stop()
    assert ended.args == ["stopped"] and tab.phase is Phase.IDLE
    assert list_checkpoints(run) and tab.resume_button.isEnabled()

    tab.apply_settings({"steps": 2})
    assert _run_to_end(qtbot, tab, tab.start) == "finished"
    assert Path(tab.state.run_dir) != run and Path(tab.state.run_dir).parent == run.parent
    assert list_checkpoints(run)[-1].step < 1000  # the earlier run is untouched


def test_time_limit_pauses_the_run_and_resume_continues(qtbot, make_tab, photos, tmp_path) -> None:
    run = tmp_path / "run"
    tab = make_tab({"hr_dir": str(photos), "steps": 100_000, "run_dir": str(run)})
    steps: list[int] = []
    logs: list[str] = []
    tab.progressed.connect(lambda p: steps.append(p.step))
    tab.logMessage.connect(logs.append)
    tab.time_limit_s = 1.0  # the test hook: a second instead of the field's minutes
    assert _run_to_end(qtbot, tab, tab.start) == "paused"
    assert tab.phase is Phase.PAUSED and tab.resume_button.isEnabled()
    ckpts = list_checkpoints(run)
    assert ckpts and ckpts[-1].step is not None and ckpts[-1].step < 100_000
    paused_at = ckpts[-1].step
    assert not steps or steps[-1] == paused_at  # the checkpoint is where the run stopped
    assert "after the 1 s time limit; Resume continues" in tab.status_label.text()
    assert any("time limit" in line for line in logs)

    # 0 = no limit: the resumed run goes on to its (now reachable) step count.
    tab.time_limit_s = None
    tab.apply_settings({"steps": paused_at + 3, "time_limit_min": 0})
    with qtbot.waitSignal(tab.jobEnded, timeout=TIMEOUT_MS) as ended:
        assert tab.resume()
        assert not tab.job.limit_timer.isActive()
    assert ended.args == ["finished"] and tab.phase is Phase.FINISHED
    assert steps[-3:] == [paused_at + 1, paused_at + 2, paused_at + 3]  # continued, not restarted
    assert list_checkpoints(run)[-1].step == paused_at + 3


def test_stop_after_field_is_remembered_and_sets_the_limit(qtbot, make_tab, tmp_path) -> None:
    settings: dict = {"steps": 50}
    tab = make_tab(settings)
    assert tab.time_limit_spin.value() == 0 and tab.time_limit_spin.text() == "No limit"
    tab.time_limit_spin.setValue(120)
    assert settings["time_limit_min"] == 120 and tab._time_limit_seconds() == 7200
    again = make_tab(json.loads(json.dumps(settings)))
    assert again.time_limit_spin.value() == 120
    assert TrainingSettings.from_dict({"time_limit_min": -5}).time_limit_min == 0
    assert TrainingSettings.from_dict({"time_limit_min": True}).time_limit_min == 0
    assert [format_time_limit(s) for s in (7200, 5400, 2700, 0.8)] == [
        "2 h", "1 h 30 min", "45 min", "1 s"]


def test_run_interrupted_by_closing_resumes_next_time(qtbot, make_tab, photos, tmp_path) -> None:
    settings: dict = {"hr_dir": str(photos), "steps": 30, "run_dir": str(tmp_path / "run")}
    first = make_tab(settings)
    with qtbot.waitSignal(first.progressed, timeout=TIMEOUT_MS):
        first.start()
    assert first.is_running
    assert first.shutdown(20_000)  # what the main window does when the user closes it
    assert not first.is_running
    stopped_at = list_checkpoints(tmp_path / "run")[-1].step
    assert stopped_at is not None and stopped_at < 30

    # Next session: same persisted settings, but the form was left pointing elsewhere.
    saved = json.loads(json.dumps(settings))
    saved["run_dir"] = ""
    second = make_tab(saved)
    assert second.state.run_dir == str(tmp_path / "run")
    assert second.phase is Phase.PAUSED and second.resume_button.isEnabled()
    assert "Resume" in second.status_label.text()
    assert second.steps_spin.value() == 30
    assert len(second.charts["l1"].points("L1")) == stopped_at  # history from metrics.jsonl
    assert _run_to_end(qtbot, second, second.resume) == "finished"
    assert list_checkpoints(tmp_path / "run")[-1].step == 30
    assert second.charts["l1"].points("L1")[-1][0] == 30


def test_shutdown_that_times_out_keeps_the_thread_safe(qtbot, make_tab, tmp_path) -> None:
    """An engine stuck in a step it cannot interrupt: shutdown reports False, the thread
    object stays alive, and the job still settles once the step ends."""
    import threading

    release = threading.Event()

    def stuck(request, progress, cancel):
        release.wait(20)
        return None

    photos = tmp_path / "hr"
    photos.mkdir()
    tab = make_tab({"hr_dir": str(photos), "steps": 5, "run_dir": str(tmp_path / "run")},
                   train_fn=stuck)
    tab.start()
    assert tab.is_running
    assert tab.shutdown(50) is False
    assert tab.is_running
    with qtbot.waitSignal(tab.jobEnded, timeout=TIMEOUT_MS) as ended:
        release.set()
    assert ended.args == ["paused"] and not tab.is_running


def test_bad_data_folder_shows_an_error(qtbot, make_tab, tmp_path) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not a photo")
    (junk / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    tab = make_tab({"hr_dir": str(junk), "steps": 3, "run_dir": str(tmp_path / "run")})
    logs: list[str] = []
    tab.logMessage.connect(logs.append)
    with qtbot.waitSignal(tab.errorOccurred, timeout=TIMEOUT_MS) as error:
        with qtbot.waitSignal(tab.jobEnded, timeout=TIMEOUT_MS):
            tab.start()
    assert str(junk) in error.args[0]
    assert tab.phase is Phase.FAILED and tab.start_button.isEnabled()
    assert any("Traceback" in line for line in logs)  # details go to the log, not the dialog
    assert "Traceback" not in error.args[0]

    # A folder that does not exist is refused before any thread starts.
    tab.apply_settings({"hr_dir": str(tmp_path / "missing")})
    with qtbot.waitSignal(tab.errorOccurred, timeout=1000) as error:
        assert not tab.start()
    assert "does not exist" in error.args[0] and not tab.is_running


def _crash(request, progress, cancel):
    raise RuntimeError("CUDA error: out of memory")


def _cancel_then_return(request, progress, cancel):
    cancel.set()  # as if the user pressed Pause during the first step
    return Path("run/checkpoints/step_0000000.pt")


def _disk_full(request, progress, cancel):
    raise OSError(28, "No space left on device", "run/checkpoints/step_0000010.pt")


@pytest.mark.parametrize(
    "fn, expect",
    [(_crash, "failed"), (_disk_full, "failed"), (_cancel_then_return, "cancelled")],
)
def test_worker_reports_failure_and_cancel_never_finishes(qtbot, fn, expect) -> None:
    from PySide6.QtCore import QThread

    from cmdsr_app.training.state import TrainRequest
    from cmdsr_app.training.worker import TrainingWorker

    worker = TrainingWorker(TrainRequest(Path("run"), None, None, "cpu", 5, "paper"), fn)
    thread = QThread()
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    with qtbot.assertNotEmitted(worker.finished), qtbot.waitSignal(
        getattr(worker, expect), timeout=5000
    ) as blocker, qtbot.waitSignal(thread.finished, timeout=5000):
        thread.start()
    if fn is _crash:
        assert "out of memory" in blocker.args[0] and "CPU preset" in blocker.args[0]
    if fn is _disk_full:
        assert "No space left" in blocker.args[0] and "step_0000010.pt" in blocker.args[0]


# -- Qt-free state -------------------------------------------------------------------------
def test_settings_round_trip_and_tolerate_junk(tmp_path) -> None:
    s = TrainingSettings(hr_dir=str(tmp_path), steps=123, preset="reference", degradation="real")
    assert TrainingSettings.from_dict(s.to_dict()) == s
    junk = TrainingSettings.from_dict({"steps": -4, "preset": "gpu9000", "degradation": 7,
                                       "hr_dir": None})
    assert junk == TrainingSettings()
    assert TrainingSettings.from_dict(None) == TrainingSettings()
    problems = TrainingSettings(run_dir="").problems()
    assert any("photos" in p for p in problems) and any("run folder" in p for p in problems)
    assert TrainingSettings(hr_dir=str(tmp_path), run_dir=str(tmp_path / "r")).problems() == []
    (tmp_path / "file.txt").write_text("x")
    on_file = TrainingSettings(hr_dir=str(tmp_path / "file.txt"), run_dir=str(tmp_path / "file.txt"))
    assert "is a file" in " ".join(on_file.problems()) and len(on_file.problems()) == 2
    assert "no checkpoint" in " ".join(
        TrainingSettings(run_dir=str(tmp_path / "r")).problems(resume=True)
    )


def test_checkpoint_listing(tmp_path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for step in (1000, 500, 1500):
        (run / "checkpoints" / f"step_{step:07d}.pt").write_bytes(b"w" * 10)
    (run / "checkpoints" / ".step_0002000.pt.abc.tmp").write_bytes(b"partial")
    (run / "checkpoints" / "empty_0003000.pt").write_bytes(b"")
    (run / "latest.pt").write_bytes(b"w" * 10)
    (run / "notes.txt").write_text("x")
    entries = list_checkpoints(run)
    assert [e.step for e in entries] == [500, 1000, 1500]
    assert "step 1,500" in entries[-1].label()
    (run / "checkpoints").rename(tmp_path / "elsewhere")
    assert [e.path.name for e in list_checkpoints(run)] == ["latest.pt"]
    assert list_checkpoints(tmp_path / "nothing") == []


def test_metric_series_stays_bounded_and_continues_after_resume() -> None:
    s = MetricSeries(max_points=64)
    for step in range(1, 100_001):
        s.append(step, 1.0 + 1.0 / step)
    pts = s.points()
    assert 32 <= len(pts) <= 64
    assert pts[0][0] < 2000 and pts[-1][0] > 98_000
    assert all(a[0] < b[0] for a, b in zip(pts, pts[1:], strict=False))
    s2 = MetricSeries()
    for step in range(1, 11):
        s2.append(step, float(step))
    s2.append(6, 60.0)  # resumed from a checkpoint at step 5
    s2.append(7, math.nan)
    assert [p[0] for p in s2.points()] == [1, 2, 3, 4, 5, 6]
    assert s2.last() == (6, 60.0)


def test_run_metrics_read_the_engine_log(tmp_path) -> None:
    records = [
        {"kind": "train", "step": 20, "l1": 12.0, "contrastive": 1.3, "d_inner": 0.1,
         "d_cross": 0.5, "lr": 2e-4},
        {"kind": "val", "step": 20, "val_psnr": 24.5, "val_ssim": 0.7, "bicubic_psnr": 23.0},
        {"kind": "train", "step": 40, "l1": 10.0, "contrastive": math.nan},
    ]
    text = "".join(json.dumps(r) + "\n" for r in records) + '{"kind": "train", "st'
    (tmp_path / "metrics.jsonl").write_text(text)
    m = RunMetrics()
    assert m.load_log(tmp_path) == 3
    assert m.points("l1") == [(20, 12.0), (40, 10.0)]
    assert m.points("contrastive") == [(20, 1.3)]
    assert m.points("val_psnr") == [(20, 24.5)] and m.points("bicubic_psnr") == [(20, 23.0)]
    assert RunMetrics().load_log(tmp_path / "none") == 0


def test_status_text() -> None:
    assert format_eta(3725) == "1 h 02 min"
    assert format_eta(250) == "4 min 10 s"
    assert format_eta(math.inf) == "--" and format_eta(None) == "--"

    class P:
        step, total_steps, l1, steps_per_s, eta_s, val_psnr = 1200, 200_000, 8.25, 3.3, 60.0, 25.5
        data_wait_share = 0.5

    line = describe_progress(P(), eta_s=60.0)  # the tab's smoothed ETA
    assert "1,200 of 200,000" in line and "3.30 steps/s" in line and "ETA 1 min 00 s" in line
    assert "25.50 dB" in line and "50% waiting for photos" in line


def test_new_run_dir_is_fresh(tmp_path) -> None:
    first = new_run_dir(tmp_path, now=0)
    first.mkdir()
    second = new_run_dir(tmp_path, now=0)
    assert second != first and second.parent == tmp_path and not second.exists()


def test_smooth_follows_the_trend() -> None:
    rng = np.random.default_rng(0)
    pts = [(float(i), 10.0 - i / 100 + rng.normal(0, 2)) for i in range(500)]
    out = smooth(pts, window=50)
    assert [x for x, _ in out] == [x for x, _ in pts]
    assert out[0][1] == pts[0][1]  # bias-corrected start
    residual = [abs(y - (10.0 - x / 100)) for x, y in out[100:]]
    assert max(residual) < 1.5 and smooth([]) == []


def test_use_this_model_without_a_selection_takes_the_latest_and_says_so(qtbot, make_tab,
                                                                        tmp_path) -> None:
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QFocusEvent
    from PySide6.QtWidgets import QApplication

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for step in (100, 200, 300):
        (run / "checkpoints" / f"step_{step:06d}.pt").write_bytes(b"weights")
    tab = make_tab({"run_dir": str(run)})
    # Focus makes the list's first row "current" without the user choosing it.
    QApplication.sendEvent(tab.checkpoint_list,
                           QFocusEvent(QEvent.Type.FocusIn, Qt.FocusReason.TabFocusReason))
    assert tab.checkpoint_list.currentRow() == 0 and not tab.checkpoint_list.selectedItems()
    said: list[str] = []
    tab.logMessage.connect(said.append)
    with qtbot.waitSignal(tab.modelChosen, timeout=1000) as chosen:
        tab.use_button.click()
    assert Path(chosen.args[0]).name == "step_000300.pt"
    assert any("latest checkpoint, step_000300.pt" in m for m in said)
    assert "step_000300.pt" in tab.status_label.text()
    # A checkpoint the user selects is the one used.
    tab.checkpoint_list.item(1).setSelected(True)
    with qtbot.waitSignal(tab.modelChosen, timeout=1000) as chosen:
        tab.use_button.click()
    assert Path(chosen.args[0]).name == "step_000200.pt"


def test_after_a_restart_the_tab_shows_the_runs_step_and_no_stop(qtbot, make_tab, photos,
                                                                 tmp_path) -> None:
    from cmdsr_app.training.state import first_validation_text

    settings: dict = {"hr_dir": str(photos), "val_dir": str(photos), "steps": 40,
                      "run_dir": str(tmp_path / "run")}
    first = make_tab(settings)
    assert first.charts["val_psnr"].empty_text().startswith("First evaluation at step 3")
    with qtbot.waitSignal(first.progressed, timeout=TIMEOUT_MS):
        first.start()
    assert first.shutdown(20_000)
    stopped_at = list_checkpoints(tmp_path / "run")[-1].step
    assert stopped_at is not None and stopped_at < 40

    second = make_tab(json.loads(json.dumps(settings)))
    assert second.phase is Phase.PAUSED
    assert (second.progress_bar.value(), second.progress_bar.maximum()) == (stopped_at, 40)
    assert second.progress_bar.text() == f"{stopped_at} / 40 steps"
    assert second.resume_button.isEnabled() and not second.stop_button.isEnabled()
    # The run's own validation interval (3 steps here), counted from where it stopped.
    assert second.charts["val_psnr"].empty_text() == first_validation_text(3, stopped_at, 40)
    second.val_edit.setText("")
    second.val_edit.editingFinished.emit()
    assert second.charts["val_psnr"].empty_text() == "Choose a validation folder to see it"


def test_app_runs_move_preset_milestones_into_the_run(tmp_path) -> None:
    from cmdsr_app.training.state import VAL_EVERY, TrainRequest, build_train_config
    from engine.training.config import TrainConfig

    for name, every in VAL_EVERY.items():
        assert TrainConfig.preset(name).val_every == every
    request = TrainRequest(tmp_path / "run", None, None, "cpu", 2000, "paper")
    assert TrainConfig.preset("cpu").milestones[0] > 2000  # would never decay
    assert build_train_config(request).milestones == (1500, 1800)
    # A user's own milestones are kept.
    mine = TrainRequest(tmp_path / "run", None, None, "cpu", 2000, "paper",
                        overrides=("milestones=500,1000",))
    assert build_train_config(mine).milestones == (500, 1000)


def test_an_app_run_logs_no_command_line_advice(qtbot, make_tab, photos, tmp_path,
                                                caplog) -> None:
    """The CPU preset's milestones (15k, 18k steps) lie past a short run's end: the app moves
    them, so the engine's advice to use ``--set milestones=...`` never reaches the log."""
    import logging

    tab = make_tab({"hr_dir": str(photos), "steps": 3, "run_dir": str(tmp_path / "run")})
    said: list[str] = []
    tab.logMessage.connect(said.append)
    with caplog.at_level(logging.INFO):
        assert _run_to_end(qtbot, tab, tab.start) == "finished"
    lines = [r.getMessage() for r in caplog.records] + said
    assert any("checkpoint" in line for line in lines)  # the engine's log was captured
    assert not [line for line in lines if "--" in line or "milestones" in line]


def test_no_step_count_before_a_run_and_no_eta_after_it_ends(qtbot, make_tab, photos,
                                                              tmp_path) -> None:
    """Issue 22, item 10: "0 / 1 steps" before Start, and the ETA left standing after Stop."""
    tab = make_tab({"hr_dir": str(photos), "steps": 3, "run_dir": str(tmp_path / "run")})
    assert "0 / 1" not in tab.progress_bar.text() and "steps" not in tab.progress_bar.text()
    assert tab.eta_label.text() == ""
    assert _run_to_end(qtbot, tab, tab.start) == "finished"
    qtbot.wait(300)  # the coalesced redraw of the last report comes after the end
    assert tab.progress_bar.text() == "3 / 3 steps"
    assert tab.eta_label.text().startswith("Step 3 of 3") and "ETA" not in tab.eta_label.text()


def test_a_run_with_a_condition_stage_shows_it_before_the_sr_steps(qtbot, tmp_path, photos) -> None:
    """The users recipe from scratch reads the damage first (the condition stage): its steps
    show in the progress lines, in words, and never as points on the SR charts."""
    from cmdsr_app.training.state import is_condition_report
    from cmdsr_app.training.tab import TrainingTab

    overrides = (*TINY, "model.condition_input=highpass", "condition_steps=3",
                 "condition_tasks=4", "condition_patch=12", "damage_weight=1")
    settings = {"hr_dir": str(photos), "steps": 2, "run_dir": str(tmp_path / "run"),
                "preset": "cpu", "start": "scratch", "degradation": "paper"}
    tab = TrainingTab(settings=settings, runs_root=tmp_path / "runs", config_overrides=overrides)
    qtbot.addWidget(tab)
    threads = torch.get_num_threads()
    seen: list[tuple[str, str]] = []
    tab.progressed.connect(lambda p: seen.append(
        ("condition" if is_condition_report(p) else "sr", tab.eta_label.text())))
    try:
        assert _run_to_end(qtbot, tab, tab.start) == "finished"
    finally:
        assert tab.shutdown(10_000)
        torch.set_num_threads(threads)
    kinds = [k for k, _ in seen]
    assert kinds == ["condition"] * 3 + ["sr"] * 2
    assert "Learning to read the damage first: step 3 of 3" in seen[2][1]
    assert "Step 2 of 2" in tab.eta_label.text()  # the SR steps take over once charted
    assert [x for x, _ in tab.charts["l1"].points("L1")] == [1, 2]
    assert (tmp_path / "run" / "condition" / "condition.pt").is_file()
