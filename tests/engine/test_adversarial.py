"""The adversarial finish (engine.training.adversarial) and its place in the training loop: the
U-Net critic, the GAN and spectrum losses, a short run with the critic on, and a resumed run
that continues the same critic and the same average of the weights."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from engine.checkpoint import load_model, read_checkpoint
from engine.data import write_synthetic_photos
from engine.errors import ConfigError
from engine.model import ModelConfig
from engine.training.adversarial import (
    Adversary,
    RealPatches,
    UNetDiscriminator,
    discriminator_loss,
    generator_loss,
)
from engine.training.config import TrainConfig
from engine.training.loop import EMA_FILE, train
from engine.training.losses import fft_amplitude_loss
from engine.training.run_folder import read_metrics

TINY = ModelConfig(scale=4, channels=8, blocks=2, support_size=3, cond_channels=8)


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(
        model=TINY, steps=6, tasks_per_batch=2, lr_patch=8, lr_base=1e-3, lr_cond=1e-3,
        cond_every=3, checkpoint_every=3, log_every=1, val_every=100, num_workers=0,
        cache_crops_per_image=4, cache_crop_size=48, val_support_patch=8,
        gan_weight=0.5, disc_channels=8, ema_decay=0.9, fft_weight=0.1,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    write_synthetic_photos(root / "train", 3, (96, 112), seed=2)
    return root


# ------------------------------------------------------------------------ the critic


def test_critic_scores_every_pixel_and_refuses_odd_sizes(seeded):
    net = UNetDiscriminator(8)
    assert net(torch.rand(2, 3, 16, 24) * 255).shape == (2, 1, 16, 24)
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.rand(1, 3, 12, 16))
    # spectral norm keeps every inner layer's gain near 1, whatever its raw weights
    conv = net.down[0]
    conv.parametrizations.weight.original.data.mul_(50.0)
    for _ in range(20):
        net(torch.rand(1, 3, 16, 16) * 255)  # power iterations run in training mode
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    assert float(sigma) == pytest.approx(1.0, abs=0.05)


def test_gan_losses_at_known_logits():
    zero = torch.zeros(4, 1, 8, 8)
    assert float(discriminator_loss(zero, zero, "nonsat")) == pytest.approx(2 * math.log(2))
    assert float(generator_loss(zero, "nonsat")) == pytest.approx(math.log(2))
    assert float(discriminator_loss(zero + 2, zero - 2, "hinge")) == 0.0
    assert float(generator_loss(zero + 3, "hinge")) == -3.0
    with pytest.raises(ConfigError, match="gan_loss"):
        generator_loss(zero, "wasserstein")


def test_the_critic_learns_textured_from_flat_and_the_generator_loss_spares_it(seeded):
    adv = Adversary(8, 2e-3, "nonsat", torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    real = torch.rand(8, 3, 16, 16, generator=g) * 255  # textured
    fake = torch.full((8, 3, 16, 16), 128.0)  # flat, as an over-smoothed result
    first = adv.step(real, fake, 0)
    for step in range(1, 40):
        last = adv.step(real, fake, step)
    assert last[0] < first[0]
    assert last[1] > last[2]  # real logits above fake ones
    sr = fake.clone().requires_grad_(True)
    adv.opt.zero_grad(set_to_none=True)
    adv.generator_loss(sr).backward()
    assert sr.grad is not None and float(sr.grad.abs().sum()) > 0
    assert all(p.grad is None for p in adv.net.parameters())
    assert all(p.requires_grad for p in adv.net.parameters())  # held only during that call


def test_real_patches_are_drawn_the_same_for_the_same_step(tmp_path, rng):
    for i in range(2):
        PILImage.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(tmp_path / f"t{i}.png")
    PILImage.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(tmp_path / "small.png")
    real = RealPatches(tmp_path, 16, seed=3)
    assert len(real.images) == 2  # too small for a patch: left out
    a, b, c = real.draw(4, 7), real.draw(4, 7), real.draw(4, 8)
    assert a.shape == (4, 3, 16, 16) and torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ConfigError, match="no image of at least 64 px"):
        RealPatches(tmp_path, 64, seed=0)


def test_fft_amplitude_loss_wants_the_energy_not_the_phase():
    g = torch.Generator().manual_seed(0)
    sharp = torch.rand(1, 3, 32, 32, generator=g) * 255
    shifted = torch.roll(sharp, shifts=(5, 3), dims=(2, 3))
    blurred = torch.nn.functional.avg_pool2d(sharp, 3, stride=1, padding=1)
    assert float(fft_amplitude_loss(sharp, sharp)) == 0.0
    assert float(fft_amplitude_loss(shifted, sharp)) < 1e-3  # a circular shift keeps amplitudes
    assert float(fft_amplitude_loss(blurred, sharp)) > 1.0


# ------------------------------------------------------------------------ configs


def test_every_preset_keeps_the_adversarial_finish_off():
    for name in TrainConfig.PRESETS:
        cfg = TrainConfig.preset(name)
        assert (cfg.gan_weight, cfg.fft_weight, cfg.ema_decay) == (0.0, 0.0, 0.0), name


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"gan_weight": -1.0}, "gan_weight must be >= 0"),
        ({"gan_weight": 0.1, "lr_patch": 9}, "multiple of 8"),
        ({"gan_loss": "lsgan"}, "gan_loss must be one of nonsat, hinge"),
        ({"disc_channels": 2}, "disc_channels must be an integer >= 4"),
        ({"disc_lr": 0.0}, "disc_lr must be positive"),
        ({"gan_weight": 0.1, "amp": "fp16"}, "not fp16"),
        ({"fft_weight": float("nan")}, "fft_weight must be >= 0"),
    ],
)
def test_bad_adversarial_settings_are_refused(kw, message):
    with pytest.raises(ConfigError, match=message):
        tiny_cfg(**kw)


# ------------------------------------------------------------------------ in the loop


def test_short_run_with_the_critic_logs_its_losses_and_writes_the_average(data, tmp_path):
    run = tmp_path / "run"
    last = train(tiny_cfg(), run, data / "train")
    records = [r for r in read_metrics(run / "metrics.jsonl") if r.get("kind") == "train"]
    assert len(records) == 6
    for rec in records:
        for key in ("l1", "gan_g", "gan_d", "d_real", "d_fake", "fft"):
            assert math.isfinite(rec[key]), (key, rec)
    _, _, meta = read_checkpoint(last)
    ts = meta["train_state"]
    assert set(ts["discriminator"]) == {"params", "optimiser"}
    assert ts["ema"]["updates"] == 6
    # the average is a model file of its own, and not the newest weights
    avg = load_model(run / EMA_FILE)
    newest = load_model(last)
    key = "sr_net.output_conv.weight"
    assert not torch.equal(avg.state_dict()[key], newest.state_dict()[key])


def test_gan_warmup_trains_only_the_critic_first(data, tmp_path):
    run = tmp_path / "run"
    train(tiny_cfg(steps=3, gan_warmup_steps=2, checkpoint_every=10), run, data / "train")
    records = [r for r in read_metrics(run / "metrics.jsonl") if r.get("kind") == "train"]
    assert ["gan_g" in r for r in records] == [False, False, True]
    assert all("gan_d" in r for r in records)


def test_resume_continues_the_same_critic_and_average(data, tmp_path):
    cfg = tiny_cfg()
    whole = tmp_path / "whole"
    train(cfg, whole, data / "train")
    split = tmp_path / "split"
    train(dataclasses.replace(cfg, steps=3), split, data / "train")
    resumed_from = read_checkpoint(split / "latest.pt")[2]["train_state"]
    train(cfg, split, data / "train", resume=True)
    a = read_checkpoint(whole / "latest.pt")[2]["train_state"]
    b = read_checkpoint(split / "latest.pt")[2]["train_state"]
    assert b["ema"]["updates"] == 6  # 3 before the pause, 3 after: the same average went on
    key = "down.0.parametrizations.weight.original"
    assert not torch.equal(resumed_from["discriminator"]["params"][key],
                           b["discriminator"]["params"][key])
    # resumed exactly: the same critic and average as the run that never paused
    for k, v in a["discriminator"]["params"].items():
        torch.testing.assert_close(b["discriminator"]["params"][k], v, rtol=1e-4, atol=1e-5)
    for k, v in a["ema"]["weights"].items():
        torch.testing.assert_close(b["ema"]["weights"][k], v, rtol=1e-4, atol=1e-5)
