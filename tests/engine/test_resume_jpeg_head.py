"""A run started from a model whose damage readout reads JPEG too (three outputs, a wider layer:
the shipped default since the readout learned JPEG) resumes after a stop, in both trainers."""

from __future__ import annotations

from pathlib import Path

import torch

from engine.checkpoint import save_model, save_part
from engine.config import apply_overrides
from engine.damage_head import WITH_JPEG, DamageHead
from engine.data import write_synthetic_photos
from engine.model import ModelConfig, build_model
from engine.model_parts import DAMAGE_HEAD
from engine.training.config import TrainConfig
from engine.training.damage_fit import read_damage_head
from engine.training.pair import train_pair

TINY = ["model.channels=32", "model.blocks=1", "model.cond_channels=8", "model.support_size=4",
        "model.condition_input=highpass", "lr_patch=12", "log_every=1", "threads=1", "device=cpu",
        "damage_weight=1.0", "cond_freeze_steps=0", "condition_steps=0", "tasks_per_batch=4"]


def _jpeg_reading_model(tmp: Path) -> Path:
    torch.manual_seed(0)
    model = build_model(ModelConfig(channels=32, blocks=1, cond_channels=8, support_size=4,
                                    condition_input="highpass"))
    plain = save_model(model, tmp / "plain.pt")
    return save_part(plain, DAMAGE_HEAD, DamageHead(8, hidden=32, outputs=WITH_JPEG), tmp / "start.pt")


def test_pair_run_from_a_jpeg_reading_model_resumes(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_synthetic_photos(photos, 2, (200, 200), seed=0)
    start = _jpeg_reading_model(tmp_path)
    cfg = apply_overrides(TrainConfig.preset("users-cpu"), TINY)
    out = tmp_path / "run"
    train_pair(cfg, photos, out, 60.0, {"cmdsr": start, "baseline": None}, max_steps=2)
    head = read_damage_head(out / "cmdsr" / "latest.pt")
    assert head is not None and head.outputs == WITH_JPEG
    summary = train_pair(cfg, photos, out, 60.0, resume=True, max_steps=3)
    assert summary["first_step"] == 2 and summary["last_step"] == 3
    head = read_damage_head(out / "cmdsr" / "latest.pt")
    assert head is not None and head.outputs == WITH_JPEG and head.hidden == 32


def test_loop_run_from_a_jpeg_reading_model_resumes(tmp_path: Path) -> None:
    from engine.training.loop import train

    photos = tmp_path / "photos"
    write_synthetic_photos(photos, 2, (200, 200), seed=0)
    start = _jpeg_reading_model(tmp_path)
    cfg = apply_overrides(TrainConfig.preset("users-cpu"),
                          [*TINY, f"init_from={start}", "steps=2", "num_workers=0", "val_every=100"])
    train(cfg, tmp_path / "run", photos)
    # the model the run started from is replaced meanwhile (a newer default, its readout of
    # blur and noise only): the run resumes with the readout it has been training
    save_part(tmp_path / "plain.pt", DAMAGE_HEAD, DamageHead(8), start)
    more = apply_overrides(cfg, ["steps=3"])
    train(more, tmp_path / "run", photos, resume=True)
    head = read_damage_head(tmp_path / "run" / "latest.pt")
    assert head is not None and head.outputs == WITH_JPEG
