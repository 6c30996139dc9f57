"""scripts/train_default_models.py end to end on a CPU with tiny networks: both default
models are trained for the same number of steps and exported with their records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from engine.checkpoint import read_checkpoint, save_model
from engine.data import write_synthetic_photos
from engine.model import ModelConfig, build_model

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "train_default_models.py"

# The script adds these after its GPU recipe, for all four runs (the baseline too).
TINY = [
    "model.channels=8", "model.blocks=2", "model.support_size=3", "model.cond_channels=8",
    "tasks_per_batch=2", "lr_patch=8", "num_workers=0", "cache_crops_per_image=3",
    "cache_crop_size=40", "val_crop=0", "val_images=1", "val_support_patch=8",
    "val_every=100000", "log_every=1", "threads=1",
]
# With 2 x 15 s kept back for start-ups and exports, phase 1 gets about 40 s (enough for
# ten steps on a loaded 2-core machine) and phase 2 a few steps sized from its speed.
BUDGET_S = 80
RESERVE_S = 15
EVERY = 10  # checkpoint steps: the granularity of the common step


@pytest.mark.slow
def test_trains_both_models_side_by_side_and_exports(tmp_path):
    corpus = tmp_path / "corpus"
    write_synthetic_photos(corpus / "train", 3, (72, 88), seed=4)
    write_synthetic_photos(corpus / "val", 1, (64, 64), seed=5)
    torch.manual_seed(0)
    tiny = ModelConfig(channels=8, blocks=2, support_size=3, cond_channels=8)
    init_cmdsr = save_model(build_model(tiny), tmp_path / "init_cmdsr.pt")
    init_base = save_model(build_model(ModelConfig(channels=8, blocks=2, conditioning=False)),
                           tmp_path / "init_basenet.pt")
    out = tmp_path / "out"
    # paths relative to where the user stands (the script runs its children in ROOT)
    cmd = [sys.executable, str(SCRIPT), "--corpus", "corpus", "--work", "work", "--out", "out",
           "--budget", str(BUDGET_S), "--reserve", str(RESERVE_S), "--checkpoint-every", str(EVERY),
           "--init-cmdsr", init_cmdsr.name, "--init-basenet", init_base.name]
    for item in TINY:
        cmd += ["--set", item]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=BUDGET_S + 60)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    for name in ("cmdsr_x4.pt", "basenet_x4.pt", "cmdsr_x4_fp32.pt", "basenet_x4_fp32.pt",
                 "summary.json", "runs.tar.gz"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["device"] == "cpu" and summary["amp"] == "off"
    phases = summary["phases"]
    assert 1 <= len(phases) <= 2
    for phase in phases:
        assert phase["steps"] > 0 and phase["steps"] % EVERY == 0
        assert set(phase["steps_per_s"]) == {"cmdsr", "basenet"}
    assert summary["total_steps_from_init"] == sum(p["steps"] for p in phases)

    # the same step for both models, that of the last phase; the right network in each file
    last = phases[-1]["steps"]
    for name, conditioned in (("cmdsr_x4", True), ("basenet_x4", False)):
        for suffix in ("", "_fp32"):
            cfg, _, meta = read_checkpoint(out / f"{name}{suffix}.pt")
            assert meta["step"] == last, name + suffix
            assert cfg.conditioning is conditioned and cfg.channels == 8
        # fp16 as shipped, fp32 as a starting point for further training
        assert (out / f"{name}.pt").stat().st_size < (out / f"{name}_fp32.pt").stat().st_size

    with tarfile.open(out / "runs.tar.gz") as tar:
        names = set(tar.getnames())
    runs = ["cmdsr_p1", "basenet_p1"] + (["cmdsr_p2", "basenet_p2"] if len(phases) == 2 else [])
    for run in runs:
        assert f"{run}/config.toml" in names and f"{run}/metrics.jsonl" in names
        assert f"{run}.log" in names
