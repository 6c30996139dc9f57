"""``cmdsr train``, ``cmdsr eval`` and ``cmdsr degrade`` end to end with tiny models."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from engine.checkpoint import read_checkpoint, save_model
from engine.cli import main
from engine.data import read_rgb, write_synthetic_photos
from engine.model import ModelConfig, build_model
from engine.training.run_folder import read_metrics

TINY_SETS = [
    "--set", "model.channels=8", "--set", "model.blocks=2", "--set", "model.support_size=3",
    "--set", "model.cond_channels=8", "--set", "tasks_per_batch=2", "--set", "lr_patch=8",
    "--set", "num_workers=0", "--set", "cache_crops_per_image=3", "--set", "cache_crop_size=40",
    "--set", "checkpoint_every=3", "--set", "log_every=1", "--set", "val_every=4",
    "--set", "val_support_patch=8",
]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    write_synthetic_photos(root / "hr", 3, (72, 88), seed=4)
    return root / "hr"


def test_train_then_resume(photos, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--data", str(photos), "--out", str(run), "--val", str(photos),
                 "--steps", "4", "--no-progress", *TINY_SETS])
    assert code == 0
    out = capsys.readouterr().out
    assert "done:" in out and "latest.pt" in out
    assert read_checkpoint(run / "latest.pt")[2]["step"] == 4
    assert (run / "config.toml").read_text().count("steps = 4") == 1
    code = main(["train", "--resume", str(run), "--steps", "6", "--no-progress"])
    assert code == 0
    assert read_checkpoint(run / "latest.pt")[2]["step"] == 6
    steps = [r["step"] for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert (run / "plot.png").exists()


def test_train_baseline_and_config_file(photos, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('steps = 2\ndegradation = "mild"\n')
    run = tmp_path / "base"
    code = main(["train", "--data", str(photos), "--out", str(run), "--config", str(cfg),
                 "--baseline", "--no-progress", *TINY_SETS, "--set", "tasks_per_batch=1"])
    assert code == 0
    config, _, _ = read_checkpoint(run / "latest.pt")
    assert not config.conditioning
    assert 'kernel_size = 15\nblur_sigma = [0.2, 2.0]' in (run / "config.toml").read_text()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--out", "x"], "give --data DIR and --out RUN_DIR"),
        (["train", "--data", "nowhere", "--out", "{tmp}/r", "--set", "stepz=1"], "unknown setting 'stepz'"),
        (["train", "--data", "{tmp}/none", "--out", "{tmp}/r", "--steps", "1"], "not a folder of images"),
        (["train", "--resume", "{tmp}"], "not a training run folder"),
        (["eval", "--hr", "{tmp}", "--model", "{tmp}/missing.pt"], "model file not found"),
        (["degrade", "{tmp}/none", "{tmp}/out"], "not a folder of images"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_degrade_writes_pairs_and_manifest(photos, tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["degrade", str(photos), str(out), "--preset", "paper", "--scale", "4", "--seed", "3"]) == 0
    meta = json.loads((out / "manifest.json").read_text())
    assert meta["preset"] == "paper" and meta["scale"] == 4 and len(meta["images"]) == 3
    first = meta["images"][0]
    lr = read_rgb(out / "LR" / first["image"])
    hr = read_rgb(out / "HR" / first["image"])
    assert hr.shape == (72, 88, 3) and lr.shape == (18, 22, 3)
    assert first["lr_size"] == [22, 18] and 0.2 <= first["sigma_x"] <= 4.0
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert len(rows) == 3 and rows[0]["image"] == first["image"]
    # same seed, same set; an existing set is not overwritten by accident
    assert main(["degrade", str(photos), str(out), "--preset", "paper", "--seed", "3"]) == 2
    again = tmp_path / "again"
    main(["degrade", str(photos), str(again), "--preset", "paper", "--seed", "3"])
    assert np.array_equal(read_rgb(again / "LR" / first["image"]), lr)


def test_eval_prints_and_writes_the_table(photos, tmp_path, capsys):
    torch.manual_seed(0)
    cfg = ModelConfig(channels=8, blocks=2, support_size=3, cond_channels=8)
    save_model(build_model(cfg), tmp_path / "m.pt")
    save_model(build_model(ModelConfig(channels=8, blocks=2, conditioning=False)), tmp_path / "b.pt")
    out = tmp_path / "ev"
    code = main(["eval", "--hr", str(photos), "--model", str(tmp_path / "m.pt"),
                 "--baseline", str(tmp_path / "b.pt"), "--out", str(out), "--max-images", "2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| paper-test |" in printed
    for method in ("bicubic", "baseline", "CMDSR-random", "CMDSR-auto"):
        assert method in printed
    rows = list(csv.DictReader((out / "eval.csv").open()))
    assert {r["method"] for r in rows} == {"bicubic", "baseline", "CMDSR-random", "CMDSR-auto"}
    assert all(r["images"] == "2" for r in rows)
    bic = next(float(r["psnr_y"]) for r in rows if r["method"] == "bicubic")
    assert 15 < bic < 45
    assert (out / "eval.md").read_text().startswith("### x4")


def test_eval_grid_has_twelve_settings(photos, tmp_path, capsys):
    torch.manual_seed(0)
    save_model(build_model(ModelConfig(channels=8, blocks=2, conditioning=False)), tmp_path / "b.pt")
    code = main(["eval", "--hr", str(photos), "--model", str(tmp_path / "b.pt"), "--grid",
                 "--out", str(tmp_path / "g"), "--max-images", "1", "--crop", "64"])
    assert code == 0
    rows = list(csv.DictReader((tmp_path / "g" / "eval.csv").open()))
    assert len({r["setting"] for r in rows}) == 12
    assert {r["method"] for r in rows} == {"bicubic", "model"}
