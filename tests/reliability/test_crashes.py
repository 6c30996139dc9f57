"""Crashes during work: kill -9 of ``cmdsr train`` mid-checkpoint and of a batch ``cmdsr
upscale`` mid-image, and a full disk while writing.

The kills hit child processes run through tests/reliability/crash_harness.py, which slows the
writes down and announces them, so a kill can be aimed at the middle of a write. The full disk
is simulated by making writes fail with ENOSPC after part of the bytes went out.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.checkpoint import read_checkpoint
from engine.cli import main
from engine.io.imageio import read_image
from tests.reliability.conftest import ROOT, child_env, write_photo

TINY_TRAIN = [
    "--set", "model.channels=8", "--set", "model.blocks=2", "--set", "model.support_size=3",
    "--set", "model.cond_channels=8", "--set", "tasks_per_batch=2", "--set", "lr_patch=8",
    "--set", "num_workers=0", "--set", "cache_crops_per_image=3", "--set", "cache_crop_size=40",
    "--set", "log_every=1", "--set", "keep_checkpoints=3",
]


def _harness(signal_dir: Path, delay: float, args: list[str]) -> subprocess.Popen[bytes]:
    log = (signal_dir.parent / f"{signal_dir.name}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "reliability" / "crash_harness.py"), str(signal_dir),
         str(delay), *args], cwd=ROOT, env=child_env(), stdout=log, stderr=log)


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            log = path.parent.parent / f"{path.parent.name}.log"
            raise AssertionError(f"the child ended (exit {proc.returncode}) before {path.name}: "
                                 f"{log.read_text(errors='replace')[-2000:]}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError(f"{path.name} did not appear within {timeout} s")
        time.sleep(0.02)


def _kill9(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _mid_write(signal_dir: Path, kind: str) -> bool:
    starts = {p.stem for p in signal_dir.glob(f"{kind}_*.start")}
    dones = {p.stem for p in signal_dir.glob(f"{kind}_*.done")}
    return bool(starts - dones)


def _train_steps(run: Path) -> list[int]:
    from engine.training.run_folder import read_metrics

    return [r["step"] for r in read_metrics(run / "metrics.jsonl") if r.get("kind") == "train"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.data import write_synthetic_photos

    root = tmp_path_factory.mktemp("train_photos")
    write_synthetic_photos(root / "hr", 3, (72, 88), seed=4)
    return root / "hr"


# ----------------------------------------------------------------------------- training


def test_kill_during_a_checkpoint_write_then_resume(photos: Path, tmp_path: Path) -> None:
    run, signals = tmp_path / "run", tmp_path / "signals"
    proc = _harness(signals, 1.6, ["train", "--data", str(photos), "--out", str(run),
                                   "--steps", "100", "--no-progress", *TINY_TRAIN,
                                   "--set", "checkpoint_every=2"])
    # Checkpoints at steps 2 and 4 complete; kill while step 6's is being written.
    _wait_for(signals / "save_3.start", proc, timeout=180)
    time.sleep(0.4)
    _kill9(proc)
    assert _mid_write(signals, "save")
    # The last good checkpoint is what latest.pt holds, and it loads.
    _, _, meta = read_checkpoint(run / "latest.pt")
    assert meta["step"] == 4
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    finished = [n for n in names if not n.startswith(".")]
    assert finished == ["step_0000002.pt", "step_0000004.pt"], names
    leftovers = [n for n in names if n.startswith(".")]
    assert all(n.startswith(".step_0000006.pt.") and n.endswith(".tmp") for n in leftovers)
    assert leftovers  # the half-written step 6
    # Resume continues from step 4 to the end, with one log record per step, and clears the
    # half-written temp file (a whole checkpoint's worth of disk).
    assert main(["train", "--resume", str(run), "--steps", "7", "--no-progress"]) == 0
    _, _, meta = read_checkpoint(run / "latest.pt")
    assert meta["step"] == 7
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    assert _train_steps(run) == list(range(1, 8))
    from engine import load_model

    assert load_model(run / "latest.pt").scale == 4


@pytest.mark.slow
def test_repeated_kills_at_random_moments_never_lose_the_run(photos: Path, tmp_path: Path) -> None:
    """Short runs killed at random moments (with checkpoints every step, so many kills land
    mid-write), each one resumed by the next: latest.pt always loads and never goes back."""
    rng = np.random.default_rng(8)
    run = tmp_path / "run"
    last_step, mid_writes, kills = 0, 0, 5
    for i in range(kills):
        signals = tmp_path / f"signals_{i}"
        args = (["train", "--resume", str(run)] if (run / "latest.pt").exists() else
                ["train", "--data", str(photos), "--out", str(run), "--steps", "400", *TINY_TRAIN,
                 "--set", "checkpoint_every=1"])
        proc = _harness(signals, 0.4, [*args, "--no-progress"])
        if i == 0:  # the first kill lands during start-up (crop cache, data loading)
            _wait_for(signals / "ready", proc, timeout=120)
            time.sleep(float(rng.uniform(0.0, 1.0)))
        else:  # the others at a random moment of the training loop
            _wait_for(signals / "save_1.start", proc, timeout=120)
            time.sleep(float(rng.uniform(0.0, 2.5)))
        _kill9(proc)
        mid_writes += _mid_write(signals, "save")
        if (run / "latest.pt").exists():
            _, _, meta = read_checkpoint(run / "latest.pt")
            assert meta["step"] >= last_step
            last_step = meta["step"]
    print(f"{kills} kills, {mid_writes} during a checkpoint write; last good step {last_step}")
    assert last_step > 0
    # Every file under a final checkpoint name loads; what the kills left is hidden or .tmp.
    for path in (run / "checkpoints").glob("step_*.pt"):
        read_checkpoint(path)
    left = sorted(p.relative_to(run).as_posix() for p in run.rglob("*")
                  if p.is_file() and (p.name.startswith(".") or ".tmp" in p.name))
    print(f"temp files left by the kills: {left}")
    assert all(Path(name).name.startswith(".") or ".tmp." in Path(name).name for name in left)
    assert main(["train", "--resume", str(run), "--steps", str(last_step + 2), "--no-progress"]) == 0
    assert not list((run / "checkpoints").glob(".step_*"))  # resume cleared the half-written
    assert read_checkpoint(run / "latest.pt")[2]["step"] == last_step + 2
    steps = _train_steps(run)
    assert steps == sorted(set(steps)) and steps[-1] == last_step + 2


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(photos: Path, tmp_path: Path,
                                                               monkeypatch, capsys) -> None:
    import torch

    run = tmp_path / "run"
    assert main(["train", "--data", str(photos), "--out", str(run), "--steps", "2", "--no-progress",
                 *TINY_TRAIN, "--set", "checkpoint_every=2"]) == 0
    before = (run / "latest.pt").read_bytes()
    capsys.readouterr()
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):  # type: ignore[no-untyped-def]
        if hasattr(f, "write"):
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    code = main(["train", "--resume", str(run), "--steps", "4", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "No space left on device" in err and "step_0000004.pt" in err
    assert "Traceback" not in err and "internal error" not in err
    assert (run / "latest.pt").read_bytes() == before
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000002.pt"]


# ----------------------------------------------------------------------------- upscaling


@pytest.fixture(scope="module")
def batch_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("batch") / "in"
    for i in range(10):
        write_photo(folder / f"img_{i:02d}.png", 48, 64, seed=i)
    return folder


def test_kill_during_a_batch_leaves_no_partial_outputs(batch_inputs: Path, tiny_model: Path,
                                                       tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    assert main(["upscale", str(batch_inputs), "-o", str(reference), "--model", str(tiny_model),
                 "--quiet"]) == 0
    out, signals = tmp_path / "out", tmp_path / "signals"
    proc = _harness(signals, 1.5, ["upscale", str(batch_inputs), "-o", str(out), "--model",
                                   str(tiny_model), "--quiet"])
    # Three images written; kill while the fourth is between its write and its rename.
    _wait_for(signals / "fsync_4.start", proc, timeout=180)
    time.sleep(0.3)
    _kill9(proc)
    assert _mid_write(signals, "fsync")
    names = sorted(p.name for p in out.iterdir())
    finished = [n for n in names if not n.startswith(".")]
    assert finished == ["img_00_x4.png", "img_01_x4.png", "img_02_x4.png"], names
    for name in finished:  # intact: the same pixels as an uninterrupted run
        assert np.array_equal(read_image(out / name).pixels, read_image(reference / name).pixels)
    leftovers = [n for n in names if n.startswith(".")]
    assert all(n.startswith(".img_03_x4.png.") and n.endswith(".tmp") for n in leftovers), names
    # Running the batch again finishes the rest and leaves the finished ones alone.
    stamps = {n: (out / n).stat().st_mtime_ns for n in finished}
    code = main(["upscale", str(batch_inputs), "-o", str(out), "--model", str(tiny_model), "--quiet",
                 "--skip-existing"])
    assert code == 0  # the three finished outputs are skipped, not reported as problems
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in reference.iterdir())
    assert all((out / n).stat().st_mtime_ns == t for n, t in stamps.items())


class _FullDiskFile:
    """A file object whose disk fills up after ``room`` bytes (ENOSPC, as a real full disk)."""

    def __init__(self, real, room: int) -> None:  # type: ignore[no-untyped-def]
        self.real, self.room = real, room

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            self.real.write(data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.real.write(data)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.real, name)

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.real.close()


def fill_the_disk(monkeypatch, room: int = 100) -> None:
    real_fdopen = os.fdopen

    def fdopen(fd, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        fh = real_fdopen(fd, mode, *args, **kwargs)
        return _FullDiskFile(fh, room) if "w" in mode and "b" in mode else fh

    monkeypatch.setattr(os, "fdopen", fdopen)


def test_a_full_disk_in_write_image_keeps_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    from engine import ImageWriteError, write_image

    target = write_photo(tmp_path / "result.png", 30, 40, seed=1)
    before = target.read_bytes()
    image = read_image(write_photo(tmp_path / "new.png", 30, 40, seed=2))
    fill_the_disk(monkeypatch)
    with pytest.raises(ImageWriteError, match="No space left on device") as info:
        write_image(image, target, overwrite=True)
    assert "result.png" in str(info.value)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.png", "result.png"]  # no temp files


def test_a_full_disk_in_the_cli_is_one_clear_line(tmp_path: Path, tiny_model: Path, monkeypatch,
                                                  capsys) -> None:
    photo = write_photo(tmp_path / "p.png", 30, 40)
    out = tmp_path / "out"
    out.mkdir()
    previous = write_photo(out / "p_x4.png", 8, 8, seed=5).read_bytes()
    fill_the_disk(monkeypatch)
    code = main(["upscale", str(photo), "-o", str(out), "--model", str(tiny_model), "--overwrite",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "No space left on device" in err and "Traceback" not in err
    assert (out / "p_x4.png").read_bytes() == previous
    assert sorted(p.name for p in out.iterdir()) == ["p_x4.png"]


def test_a_full_disk_in_the_gui_shows_an_error_and_keeps_the_file(qtbot, app_window, tmp_path: Path,
                                                                  monkeypatch) -> None:
    window = app_window
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([write_photo(tmp_path / "p.png", 30, 40)])
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000,
                          check_params_cb=lambda method: method == "cmdsr"):
        window.run_upscale()
    target = write_photo(tmp_path / "saved.png", 8, 8, seed=3)
    before = target.read_bytes()
    fill_the_disk(monkeypatch)
    with qtbot.waitSignal(window.errorShown, timeout=15000) as blocker:
        window.save_result(target)
    assert "No space left on device" in blocker.args[0]
    assert window.last_error[0] == "Save result"
    assert target.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    monkeypatch.undo()
    with qtbot.waitSignal(window.saved, timeout=15000):  # space again: saving works
        window.save_result(target)
    assert read_image(target).pixels.shape == (120, 160, 3)
