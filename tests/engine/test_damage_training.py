"""Training a damage readout together with the model (``damage_weight``): the condition must
carry the damage, and the model file ships the readout it was trained with."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.checkpoint import load_model
from engine.damage_head import damage_head_of
from engine.data import write_synthetic_photos
from engine.degrade import DegradationConfig
from engine.errors import ConfigError
from engine.inference.damage import estimate_damage
from engine.model import ModelConfig
from engine.training.config import TrainConfig
from engine.training.damage_fit import read_damage_head
from engine.training.damage_readout import damage_loss, track_condition_stats, training_damage_head
from engine.training.loop import train
from engine.training.model_init import build_training_model
from engine.training.optimisers import build_optimisers
from engine.training.run_folder import read_metrics

TINY = ModelConfig(scale=4, channels=32, blocks=1, support_size=3, cond_channels=8)


def tiny(**kw) -> TrainConfig:
    base = dict(
        model=TINY, steps=6, tasks_per_batch=4, lr_patch=8, lr_base=1e-3, lr_cond=1e-3,
        cond_every=1, task_pairing=True, degradation=DegradationConfig.preset("studio"),
        checkpoint_every=3, log_every=2, val_every=100, num_workers=0,
        cache_crops_per_image=4, cache_crop_size=48, damage_weight=1.0,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    write_synthetic_photos(root, 4, (96, 112), seed=3)
    return root


def test_damage_weight_is_validated():
    with pytest.raises(ConfigError, match="damage_weight must be >= 0"):
        tiny(damage_weight=-1.0)
    with pytest.raises(ConfigError, match="needs conditioning on"):
        tiny(model=ModelConfig(scale=4, channels=32, blocks=1, conditioning=False))


def test_training_head_is_scaled_to_the_training_degradations():
    cfg = tiny()
    head = training_damage_head(cfg)
    lo, hi = cfg.degradation.blur_sigma
    assert lo - 1e-6 <= float(head.out_min[0]) < float(head.out_mean[0]) < float(head.out_max[0]) <= hi + 1e-6
    assert float(head.out_min[1]) == 0.0  # clean tasks exist in the studio degradations
    assert float(head.out_max[1]) == pytest.approx(cfg.degradation.noise_std[1])
    assert float(head.out_std[1]) > 5.0


def test_readout_learns_with_the_condition_net_optimiser():
    cfg = tiny()
    model = build_training_model(cfg, torch.device("cpu"))
    head = damage_head_of(model)
    assert head is not None
    opt = build_optimisers(model, cfg)
    assert opt.cond is not None
    in_cond = {id(p) for g in opt.cond.param_groups for p in g["params"]}
    assert all(id(p) in in_cond for p in head.parameters())
    assert all(id(p) in in_cond for p in model.condition_net.parameters())
    # the loss falls when the readout is fitted to fixed conditions
    torch.manual_seed(0)
    conds = torch.randn(16, TINY.cond_channels)
    blur, noise = torch.rand(16) * 3 + 0.5, torch.rand(16) * 40
    first = float(damage_loss(head, conds, blur, noise).detach())
    sgd = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(100):
        sgd.zero_grad()
        damage_loss(head, conds, blur, noise).backward()
        sgd.step()
    assert float(damage_loss(head, conds, blur, noise).detach()) < 0.5 * first


def test_run_logs_the_damage_loss_ships_the_readout_and_resumes(photos, tmp_path):
    run = tmp_path / "run"
    cfg = tiny()
    train(cfg, run, photos)
    records = [r for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "train"]
    assert records and all(math.isfinite(r["damage"]) and r["damage"] > 0 for r in records)
    latest = run / "latest.pt"
    head = read_damage_head(latest)
    assert head is not None and head.cond_channels == TINY.cond_channels
    model = load_model(latest)
    assert damage_head_of(model) is not None
    pixels = np.random.default_rng(0).uniform(0, 255, (40, 44, 3)).astype(np.float32)
    est = estimate_damage(pixels, None, model=model)
    assert est.blur_sigma >= 0 and est.noise_sigma >= 0
    # resuming restores the readout's weights with the rest
    train(tiny(steps=9), run, photos, resume=True)
    resumed = read_damage_head(latest)
    assert resumed is not None
    assert not torch.equal(resumed.net[0].weight, head.net[0].weight)


def test_batches_carry_the_kernel_size_as_one_number(photos):
    from engine.training.batches import TaskBatches, open_training_source

    cfg = DegradationConfig(blur_sigma=(0.5, 3.0), aniso_prob=1.0, noise_std=(0, 10))
    source = open_training_source(photos, 32, None, 0, 0, 0)
    batch = TaskBatches(source, cfg, 4, 8, 3, 4, 0, 2)[0]
    assert batch["blur"].shape == (4,)
    assert torch.all(batch["blur"] > 0)
    assert not torch.allclose(batch["blur"], batch["sigma"])


def test_readout_input_follows_the_conditions_scale():
    head = training_damage_head(tiny())
    torch.manual_seed(1)
    small = torch.randn(8, TINY.cond_channels) * 0.03 + 0.05
    track_condition_stats(head, small)
    torch.testing.assert_close(head.in_mean, small.mean(0))
    torch.testing.assert_close(head.in_std, small.std(0))
    # later batches move the statistics only a little (a running average)
    track_condition_stats(head, small + 1.0)
    assert float((head.in_mean - small.mean(0)).mean()) == pytest.approx(0.01, rel=1e-3)
