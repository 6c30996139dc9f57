"""The ConditionNet's input view (``ModelConfig.condition_input``), the nearly clean share of
the ``users`` degradations and their evaluation rows, ``amp = "auto"`` and the ``users``
presets. CPU only, tiny networks."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
import torch

import engine.inference.cpu_caps as cpu_caps_module
from engine.checkpoint import load_model, read_checkpoint, save_model
from engine.cli import main
from engine.config import dumps_toml, from_dict, load_toml
from engine.data import write_synthetic_photos
from engine.degrade import DegradationConfig, sample_degradation, user_rows
from engine.errors import ConfigError
from engine.model import ModelConfig, build_model, highpass_view
from engine.training.config import TrainConfig
from engine.training.step import autocast, resolve_amp

TINY = ModelConfig(channels=8, blocks=1, support_size=2, cond_channels=8)
TINY_HP = dataclasses.replace(TINY, condition_input="highpass")
CPU = torch.device("cpu")


# ----------------------------------------------------------------------------- high-pass view


def test_highpass_view_removes_flat_patches_and_keeps_noise():
    gen = torch.Generator().manual_seed(0)
    flat = torch.full((2, 3, 3, 16, 20), 173.0)  # [T, S, 3, h, w], non-square
    flat[:, :, 1] = 12.0  # a different flat level per channel
    assert torch.equal(highpass_view(flat), torch.zeros_like(flat))

    noise = torch.randn(2, 3, 3, 32, 32, generator=gen) * 10
    hp = highpass_view(noise)
    assert hp.shape == noise.shape
    # white noise minus its 3x3 mean keeps sqrt(8/9) of its spread (borders aside)
    ratio = float(hp[..., 1:-1, 1:-1].std() / noise[..., 1:-1, 1:-1].std())
    assert 0.9 < ratio < 0.98
    # a flat level under the noise changes nothing: the view sees the damage, not the level
    level = torch.full_like(noise, 90.0)
    torch.testing.assert_close(highpass_view(noise + level), hp, atol=1e-4, rtol=0)


def test_highpass_model_round_trips_through_its_file(tmp_path, seeded):
    model = build_model(TINY_HP).eval()
    net = model.condition_net
    assert net is not None and net.view == "highpass"
    net.set_standardisation(torch.linspace(-1.0, 2.0, 8), torch.linspace(0.5, 3.0, 8))
    path = save_model(model, tmp_path / "hp.pt")
    cfg, state, _ = read_checkpoint(path)
    assert cfg.condition_input == "highpass"
    assert "condition_net.cond_shift" in state and "condition_net.cond_scale" in state
    loaded = load_model(path)
    assert loaded.config == TINY_HP
    loaded_net = loaded.condition_net
    assert loaded_net is not None
    torch.testing.assert_close(loaded_net.cond_shift, net.cond_shift, rtol=0, atol=0)
    torch.testing.assert_close(loaded_net.cond_scale, net.cond_scale, rtol=0, atol=0)
    lr = torch.rand(2, 3, 9, 7, generator=torch.Generator().manual_seed(1)) * 255
    support = torch.rand(2, 2, 3, 10, 12, generator=torch.Generator().manual_seed(2)) * 255
    with torch.no_grad():
        torch.testing.assert_close(loaded(lr, support), model(lr, support), rtol=0, atol=1e-4)
        torch.testing.assert_close(loaded.condition(support), model.condition(support))


def test_authors_state_dict_loads_as_raw_with_the_same_condition(tmp_path, seeded):
    model = build_model(TINY).eval()
    net = model.condition_net
    assert net is not None and net.view == "raw"
    assert not any("cond_shift" in k or "cond_scale" in k for k in model.state_dict())
    path = tmp_path / "CMDSR_model.pth"
    torch.save(model.state_dict(), path)  # the authors' layout: no config, no format
    cfg, _, meta = read_checkpoint(path)
    assert meta["format"] == "authors-state-dict" and cfg.condition_input == "raw"
    loaded = load_model(path)
    support = torch.rand(3, 2, 3, 8, 11, generator=torch.Generator().manual_seed(3)) * 255
    with torch.no_grad():
        expected = net(support)
        # the raw view is the authors' network: the pooled features, no standardisation
        torch.testing.assert_close(expected, net.features(support), rtol=0, atol=0)
        torch.testing.assert_close(loaded.condition(support), expected, rtol=0, atol=1e-5)


def test_a_highpass_models_plain_state_dict_loads_as_highpass(tmp_path, seeded):
    model = build_model(TINY_HP).eval()
    assert model.condition_net is not None
    model.condition_net.set_standardisation(torch.full((8,), 0.5), torch.full((8,), 2.0))
    path = tmp_path / "plain.pth"
    torch.save(model.state_dict(), path)
    loaded = load_model(path)
    assert loaded.config.condition_input == "highpass"
    support = torch.rand(1, 2, 3, 8, 8, generator=torch.Generator().manual_seed(4)) * 255
    with torch.no_grad():
        torch.testing.assert_close(loaded.condition(support), model.condition(support))


# ----------------------------------------------------------------------------- degradations


def test_mild_prob_is_the_share_of_nearly_clean_draws():
    # noisy, strongly blurred otherwise: a nearly clean draw can only come from mild_prob
    cfg = DegradationConfig(blur_sigma=(2.0, 4.0), noise_std=(5.0, 50.0), mild_prob=0.3,
                            mild_blur=(0.5, 1.6), jpeg_prob=0.5)
    n = 4000
    rng = np.random.default_rng(11)
    draws = [sample_degradation(cfg, rng) for _ in range(n)]
    mild = [p for p in draws if p.noise_std == 0.0]
    share = len(mild) / n
    assert abs(share - 0.3) < 3.5 * np.sqrt(0.3 * 0.7 / n), share
    for p in mild:
        assert 0.5 <= p.sigma_x <= 1.6 and p.sigma_x == p.sigma_y and p.angle == 0.0
    assert all(p.sigma_x >= 2.0 for p in draws if p.noise_std > 0)
    # nearly clean draws are JPEG-compressed as often as any task
    jpeg = sum(p.jpeg_quality is not None for p in mild) / len(mild)
    assert abs(jpeg - 0.5) < 0.08
    assert DegradationConfig.preset("users").mild_prob == 0.4
    again = [sample_degradation(cfg, np.random.default_rng(11)) for _ in range(1)]
    assert again[0] == draws[0]  # seeded: the same draws again


def test_mild_settings_are_checked():
    with pytest.raises(ConfigError, match="mild_prob"):
        DegradationConfig(mild_prob=1.5)
    with pytest.raises(ConfigError, match="mild_blur"):
        DegradationConfig(mild_blur=(0.0, 1.0))


def test_user_rows_are_seven_labelled_settings():
    rows = user_rows()
    labels = [label for label, _ in rows]
    assert labels == ["paper-test (blur 2.6, noise 15)", "blur 2.6", "nearly clean (blur 1.0)",
                      "blur 1.0 + JPEG 60", "noise 25 (blur 1.0)",
                      "camera (mosaic, shot+read noise, demosaic, JPEG 80)", "web (JPEG 60 4:2:0, resized)"]
    by = dict(rows)
    clean = by["nearly clean (blur 1.0)"]
    assert (clean.sigma_x, clean.sigma_y, clean.noise_std, clean.jpeg_quality) == (1.0, 1.0, 0.0, None)
    assert by["blur 1.0 + JPEG 60"].jpeg_quality == 60
    assert by["paper-test (blur 2.6, noise 15)"].noise_std == 15.0
    assert by["noise 25 (blur 1.0)"].noise_std == 25.0


def test_eval_rows_users_writes_the_seven_rows(tmp_path, capsys, seeded):
    photos = tmp_path / "photos"
    write_synthetic_photos(photos, 1, (64, 72), seed=5)
    save_model(build_model(dataclasses.replace(TINY, conditioning=False)), tmp_path / "b.pt")
    out = tmp_path / "ev"
    code = main(["eval", "--hr", str(photos), "--model", str(tmp_path / "b.pt"), "--rows", "users",
                 "--out", str(out), "--crop", "48", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader((out / "eval.csv").open()))
    assert [r["setting"] for r in rows if r["method"] == "bicubic"] == [lab for lab, _ in user_rows()]
    assert {r["method"] for r in rows} == {"bicubic", "model"}
    assert len(rows) == 14
    assert all(10 < float(r["psnr_y"]) < 60 for r in rows)


# ----------------------------------------------------------------------------- amp and presets


@pytest.mark.parametrize(("cpu_says", "expected"), [("fp32", "off"), ("bf16", "bf16")])
def test_amp_auto_follows_the_cpu(monkeypatch, cpu_says, expected):
    monkeypatch.setattr(cpu_caps_module, "auto_cpu_precision", lambda: cpu_says)
    assert resolve_amp("auto", CPU) == expected
    assert resolve_amp("auto", torch.device("cuda")) == "off"  # a GPU keeps fp32 (TF32)
    for amp in ("off", "bf16", "fp16"):
        assert resolve_amp(amp, CPU) == amp
    x = torch.ones(2, 2)
    with autocast(CPU, "auto"):
        y = torch.mm(x, x)
    assert y.dtype == (torch.bfloat16 if expected == "bf16" else torch.float32)


@pytest.mark.parametrize("name", ["users", "users-cpu"])
def test_users_presets_validate_and_round_trip(tmp_path, name):
    cfg = TrainConfig.preset(name)
    assert cfg.model.condition_input == "highpass"
    assert cfg.degradation == DegradationConfig.preset("users")
    assert cfg.condition_steps > 0 and cfg.cond_freeze_steps > 0 and cfg.damage_weight > 0
    assert cfg.loss_weighting == "bicubic" and cfg.amp == "auto"
    assert cfg.lr_cond < cfg.lr_base  # the condition moves slowly in the SR stage
    assert cfg.task_pairing and cfg.tasks_per_batch % 4 == 0 and cfg.condition_tasks % 4 == 0
    path = tmp_path / "c.toml"
    path.write_text(dumps_toml(cfg))
    assert from_dict(TrainConfig, load_toml(path)) == cfg
    # its baseline has no ConditionNet to train first
    base = cfg.baseline()
    assert not base.model.conditioning and base.condition_steps == 0 and base.damage_weight == 0
    small, full = TrainConfig.preset("users-cpu"), TrainConfig.preset("users")
    assert small.tasks_per_batch < full.tasks_per_batch


def test_condition_settings_are_checked():
    with pytest.raises(ConfigError, match="loss_weighting"):
        TrainConfig(model=TINY, loss_weighting="psnr")
    with pytest.raises(ConfigError, match="condition_steps trains the ConditionNet"):
        TrainConfig(model=dataclasses.replace(TINY, conditioning=False), condition_steps=5)
    with pytest.raises(ConfigError, match="condition_patch"):
        TrainConfig(model=TINY, condition_patch=1)
    with pytest.raises(ConfigError, match="condition_input"):
        ModelConfig(condition_input="lowpass")
