"""``cmdsr train --time-limit``: a run paused by its wall-clock budget keeps a checkpoint,
exits 0 (the budget was met, nothing failed) and ``--resume`` carries on from it."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.checkpoint import read_checkpoint
from engine.cli import main
from engine.cli.train import parse_duration
from engine.data import write_synthetic_photos
from engine.training.run_folder import read_metrics

ROOT = Path(__file__).resolve().parents[2]

TINY_SETS = [
    "--set", "model.channels=8", "--set", "model.blocks=2", "--set", "model.support_size=3",
    "--set", "model.cond_channels=8", "--set", "tasks_per_batch=2", "--set", "lr_patch=8",
    "--set", "num_workers=0", "--set", "cache_crops_per_image=3", "--set", "cache_crop_size=40",
    "--set", "checkpoint_every=1000", "--set", "log_every=1", "--set", "val_every=100000",
    "--set", "val_support_patch=8", "--set", "threads=1",
]


@pytest.mark.parametrize(
    "text,seconds",
    [("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("2h", 7200.0), ("45M", 2700.0), (" 8h ", 28800.0)],
)
def test_parse_duration_accepts_seconds_minutes_hours(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["0", "0s", "-5m", "abc", "5x", "nan", "inf", "m", ""])
def test_parse_duration_rejects_nonsense(text):
    with pytest.raises(argparse.ArgumentTypeError) as err:
        parse_duration(text)
    assert repr(text) in str(err.value)


@pytest.mark.parametrize("value", ["abc", "5x", "0", "-5m", "nan"])
def test_cli_refuses_a_bad_time_limit(value, tmp_path, capsys):
    # "=" form: argparse would read a separate "-5m" as an option, not as the value
    code = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                 f"--time-limit={value}"])
    assert code != 0
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1
    assert "--time-limit" in errors[0] and repr(value) in errors[0]
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("timelimit")
    write_synthetic_photos(root / "hr", 3, (72, 88), seed=4)
    return root / "hr"


def _step(run) -> int:
    return int(read_checkpoint(run / "latest.pt")[2]["step"])


def test_time_limit_pauses_with_exit_0_and_resume_continues(photos, tmp_path, capsys):
    run = tmp_path / "run"
    steps = 1_000_000  # far more than 3 s allow: only the time limit can stop this run
    code = main(["train", "--data", str(photos), "--out", str(run), "--steps", str(steps),
                 "--no-progress", "--time-limit", "3s", *TINY_SETS])
    assert code == 0
    out = capsys.readouterr().out
    assert "time limit reached; checkpoint" in out
    assert f"cmdsr train --resume {run}" in out
    first = _step(run)
    assert 0 < first < steps
    logged = [r["step"] for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "train"]
    assert logged[-1] == first

    code = main(["train", "--resume", str(run), "--no-progress", "--time-limit", "2s"])
    assert code == 0
    assert "time limit reached" in capsys.readouterr().out
    second = _step(run)
    assert first < second < steps
    logged = [r["step"] for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "train"]
    assert logged == list(range(1, second + 1))


def test_without_time_limit_the_run_finishes_normally(photos, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--data", str(photos), "--out", str(run), "--steps", "2",
                 "--no-progress", "--time-limit", "10m", *TINY_SETS])
    assert code == 0
    out = capsys.readouterr().out
    assert "done:" in out and "time limit" not in out
    assert _step(run) == 2


def test_ctrl_c_still_pauses_with_exit_130_under_a_time_limit(photos, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "engine", "train", "--data", str(photos), "--out", str(run),
           "--steps", "1000000", "--no-progress", "--time-limit", "10m", *TINY_SETS]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        metrics = run / "metrics.jsonl"
        while not (metrics.exists() and metrics.read_text().strip()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run did not start training"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "paused; checkpoint" in out and "time limit" not in out
    assert _step(run) > 0
