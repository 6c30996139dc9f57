"""Damage knobs in the engine: the condition map (damage -> condition), its place in the model
file, the range it refuses to leave, and upscaling steered by numbers instead of a support
set. CPU only, tiny networks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.checkpoint import load_model, save_model
from engine.condition_map import ConditionMap, attach_condition_map, condition_map_of
from engine.data import write_synthetic_photos
from engine.errors import CheckpointError, ConfigError
from engine.inference.support import select_support
from engine.inference.upscaler import Upscaler
from engine.model import ModelConfig, build_model
from engine.training.damage_fit import (
    fit_condition_map,
    read_condition_map,
    relative_error,
    save_condition_map,
    train_condition_map,
)

TINY = ModelConfig(channels=8, blocks=1, support_size=2, cond_channels=8, condition_input="highpass")


def toy_pairs(n: int = 400, cond: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Conditions that are a smooth function of (blur, noise): what a damage-reading
    ConditionNet makes, without the photo-to-photo scatter."""
    g = torch.Generator().manual_seed(seed)
    damage = torch.stack([torch.rand(n, generator=g) * 3.6 + 0.4, torch.rand(n, generator=g) * 50], 1)
    w = torch.randn(2, cond, generator=g)
    conditions = torch.tanh(damage / torch.tensor([4.0, 50.0])) @ w + 0.1 * torch.sin(damage[:, :1])
    return conditions, damage


def test_fit_learns_a_smooth_damage_to_condition_function() -> None:
    conditions, damage = toy_pairs(500)
    cmap = fit_condition_map(conditions[:400], damage[:400], epochs=600)
    # held-out draws of the same function: close to it, far better than the mean condition
    assert relative_error(cmap, conditions[400:], damage[400:]) < 0.1
    assert cmap.blur_range == pytest.approx((float(damage[:400, 0].min()), float(damage[:400, 0].max())))
    untrained = ConditionMap(8)
    assert relative_error(untrained, conditions[400:], damage[400:]) > 0.5


def test_values_outside_the_fitted_range_are_refused_with_the_range() -> None:
    cmap = fit_condition_map(*toy_pairs(), epochs=10)
    lo, hi = cmap.blur_range
    cmap.check_damage(lo, cmap.noise_range[0])
    cmap.check_damage(hi, cmap.noise_range[1])
    with pytest.raises(ConfigError, match=r"blur sigma 9 is outside what this model was trained on \(0\.4"):
        cmap.condition(9.0, 5.0)
    with pytest.raises(ConfigError, match="noise sigma -1"):
        cmap.condition(1.0, -1.0)
    with pytest.raises(ConfigError, match="noise sigma nan"):
        cmap.condition(1.0, float("nan"))


def test_the_map_travels_in_the_model_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(TINY)
    cmap = fit_condition_map(*toy_pairs(), epochs=20)
    src = save_model(model, tmp_path / "m.pt")
    assert read_condition_map(src) is None and condition_map_of(load_model(src)) is None
    out = save_condition_map(src, cmap, tmp_path / "m_map.pt", info={"relative_error": 0.1})
    loaded = load_model(out)
    got = condition_map_of(loaded)
    assert got is not None
    assert torch.equal(got.condition(1.5, 10.0), cmap.condition(1.5, 10.0))
    # the network itself is unchanged, and saving the loaded model keeps the map
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 build_and_load(loaded).values(), strict=True))
    again = save_model(loaded, tmp_path / "again.pt")
    assert condition_map_of(load_model(again)) is not None


def build_and_load(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if not k.startswith("condition_map.")}


def test_a_map_that_does_not_fit_the_model_is_refused(tmp_path: Path) -> None:
    model = build_model(TINY)
    wrong = ConditionMap(cond_channels=16)
    with pytest.raises(ConfigError, match="16-d conditions"):
        attach_condition_map(model, wrong)
    src = save_model(model, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="16-d conditions"):
        save_condition_map(src, wrong, tmp_path / "bad.pt")
    baseline = save_model(build_model(dataclasses.replace(TINY, conditioning=False)), tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="reads none or others"):
        save_condition_map(baseline, ConditionMap(8), tmp_path / "bad2.pt")


def test_upscaling_by_numbers_equals_upscaling_with_that_condition() -> None:
    torch.manual_seed(0)
    model = build_model(TINY).eval()
    rng = np.random.default_rng(0)
    lr = rng.uniform(0, 255, (20, 24, 3)).astype(np.float32)
    support = select_support(lr, count=2, size=8, mode="random", seed=0)
    up = Upscaler(model, method="cmdsr", device="cpu", precision="fp32")
    with pytest.raises(ConfigError, match="no damage knobs"):
        up.upscale(lr, damage=(1.0, 0.0))
    # a map that answers exactly the condition this support set makes
    sup = up.support_tensor(support)
    with torch.no_grad():
        cond = model.condition(sup)
    cmap = ConditionMap(8)
    with torch.no_grad():
        for p in cmap.net.parameters():
            p.zero_()
        cmap.out_mean.copy_(cond[0])
    attach_condition_map(model, cmap)
    by_numbers = up.upscale(lr, damage=(1.0, 0.0))
    by_support = up.upscale(lr, support)
    np.testing.assert_allclose(by_numbers, by_support, atol=1e-4)
    # and other numbers steer it elsewhere
    with torch.no_grad():
        cmap.net[-1].bias.fill_(1.0)
    assert np.abs(up.upscale(lr, damage=(1.0, 0.0)) - by_support).max() > 1e-3


def test_fold_checks_the_condition_shape() -> None:
    model = build_model(TINY)
    with pytest.raises(ValueError, match=r"condition must be \[1, 8\]"):
        model.fold(condition=torch.zeros(2, 8))


def test_train_condition_map_on_photos_reports_a_held_out_error(tmp_path: Path) -> None:
    write_synthetic_photos(tmp_path / "photos", 4, (96, 96), seed=1)
    torch.manual_seed(0)
    model = build_model(TINY).eval()
    cmap, report = train_condition_map(model, tmp_path / "photos", tasks=60, blur=(0.6, 3.0))
    assert report.train_tasks + report.val_tasks == 60 and report.val_tasks > 0
    assert np.isfinite(report.relative_error)
    assert cmap.blur_range == pytest.approx((0.6, 3.0))
    assert cmap.noise_range == pytest.approx((0.0, 50.0))
    with pytest.raises(ConfigError, match="outside"):
        cmap.condition(3.5, 0.0)
