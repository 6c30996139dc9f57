"""The damage readout: a head inside the model file (older files keep loading without one),
``estimate_damage`` and its errors, and training the head on synthetic tasks.

The accuracy tests use ``tests/engine/data/damage_tiny.pt``, a tiny model whose condition
encodes the degradation (see ``tests/engine/damage_fixture.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine import (
    CmdsrError,
    DamageEstimate,
    ModelConfig,
    NoDamageReadoutError,
    SupportRegionError,
    build_model,
    estimate_damage,
    load_model,
    save_model,
    select_support,
)
from engine.checkpoint import atomic_torch_save, checkpoint_dict
from engine.damage_head import HEAD_KEY, DamageHead, attach_damage_head, damage_head_of
from engine.data import synthetic_photo
from engine.degrade import DegradationParams, degrade
from engine.errors import CheckpointError, ConfigError
from engine.training.damage_fit import (
    fit_head,
    read_damage_head,
    save_damage_head,
    synthetic_tasks,
    train_damage_head,
)

FIXTURE = Path(__file__).resolve().parent / "data" / "damage_tiny.pt"
TINY = ModelConfig(channels=8, blocks=2, support_size=4, cond_channels=16)


@pytest.fixture
def tiny_with_head(seeded) -> torch.nn.Module:
    model = build_model(TINY).eval()
    head = DamageHead(16, hidden=8)
    with torch.no_grad():
        head.out_mean.copy_(torch.tensor([2.0, 10.0]))
        head.out_std.copy_(torch.tensor([0.5, 3.0]))
    attach_damage_head(model, head)
    return model


@pytest.fixture(scope="module")
def trained() -> torch.nn.Module:
    return load_model(FIXTURE)


def degraded(seed: int, sigma: float, noise: float, size: tuple[int, int] = (192, 256)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hr = synthetic_photo(rng, *size)
    return degrade(hr, DegradationParams(15, sigma, sigma, 0.0, noise), 4, rng)


def test_head_travels_in_the_model_file(tmp_path, tiny_with_head, rng):
    path = save_model(tiny_with_head, tmp_path / "m.pt")
    saved = torch.load(path, weights_only=True)
    # stored apart: the network's parameters are exactly those of a model without a head
    assert not any(k.startswith(HEAD_KEY) for k in saved["params"])
    assert set(saved[HEAD_KEY]) >= {"version", "cond_channels", "hidden", "params"}
    loaded = load_model(path)
    head = damage_head_of(loaded)
    assert head is not None and head.hidden == 8
    pixels = rng.uniform(0, 255, (40, 56, 3)).astype(np.float32)
    before = estimate_damage(pixels, model=tiny_with_head)
    after = estimate_damage(pixels, model=loaded)
    assert isinstance(after, DamageEstimate)
    assert after.blur_sigma == pytest.approx(before.blur_sigma, abs=1e-5)
    assert after.noise_sigma == pytest.approx(before.noise_sigma, abs=1e-5)
    assert after.blur_sigma >= 0 and after.noise_sigma >= 0
    assert read_damage_head(path) is not None


def test_older_files_load_without_a_readout(tmp_path, seeded, rng):
    model = build_model(TINY)
    path = save_model(model, tmp_path / "old.pt")
    loaded = load_model(path)
    assert damage_head_of(loaded) is None
    assert read_damage_head(path) is None
    with pytest.raises(NoDamageReadoutError, match="no damage readout") as info:
        estimate_damage(rng.uniform(0, 255, (40, 40, 3)), model=loaded)
    assert isinstance(info.value, CmdsrError)
    # the authors' plain state_dict: no readout either, and the same error
    authors = tmp_path / "authors.pth"
    torch.save(model.state_dict(), authors)
    assert damage_head_of(load_model(authors)) is None
    with pytest.raises(NoDamageReadoutError):
        estimate_damage(rng.uniform(0, 255, (40, 40, 3)), model=authors)


def test_conditioning_off_model_has_no_readout(seeded, rng):
    model = build_model(ModelConfig(channels=8, blocks=2, conditioning=False))
    with pytest.raises(NoDamageReadoutError, match="conditioning off"):
        estimate_damage(rng.uniform(0, 255, (40, 40, 3)), model=model)
    with pytest.raises(ConfigError):
        attach_damage_head(model, DamageHead(128))


def test_head_of_the_wrong_size_is_refused(tmp_path, seeded):
    model = build_model(TINY)
    with pytest.raises(ConfigError, match="16-d"):
        attach_damage_head(model, DamageHead(32))
    path = save_model(model, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="conditions"):
        save_damage_head(path, DamageHead(32), tmp_path / "out.pt")


def test_damaged_readout_is_a_checkpoint_error(tmp_path, tiny_with_head):
    obj = checkpoint_dict(tiny_with_head)
    obj[HEAD_KEY]["params"] = {"net.0.weight": torch.zeros(3, 3)}
    path = atomic_torch_save(obj, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="damage readout"):
        load_model(path)
    obj[HEAD_KEY]["version"] = 99
    atomic_torch_save(obj, path)
    with pytest.raises(CheckpointError, match="newer"):
        load_model(path)


def test_save_damage_head_keeps_the_file_as_it_was(tmp_path, seeded):
    model = build_model(TINY)
    src = save_model(model, tmp_path / "ship.pt", half=True, step=1234, extra={"note": "x"})
    head = DamageHead(16)
    out = save_damage_head(src, head, tmp_path / "with_head.pt", info={"blur_mae": 0.4})
    saved = torch.load(out, weights_only=True)
    original = torch.load(src, weights_only=True)
    assert saved["step"] == 1234 and saved["note"] == "x"
    assert saved["params"].keys() == original["params"].keys()
    assert all(torch.equal(saved["params"][k], v) for k, v in original["params"].items())
    assert saved["params"]["sr_net.input_conv.weight"].dtype == torch.float16
    assert saved[HEAD_KEY]["info"] == {"blur_mae": 0.4}
    assert damage_head_of(load_model(out)) is not None
    # the authors' file is converted to CMDSR Studio's format on the way
    authors = tmp_path / "authors.pth"
    torch.save(model.state_dict(), authors)
    converted = torch.load(save_damage_head(authors, head, tmp_path / "a.pt"), weights_only=True)
    assert converted["format"] == "cmdsr-studio-checkpoint" and HEAD_KEY in converted


def test_support_forms(tiny_with_head, rng):
    pixels = rng.uniform(0, 255, (60, 80, 3)).astype(np.float32)
    region = (10, 5, 40, 40)
    via_regions = estimate_damage(pixels, [region], tiny_with_head, seed=3)
    chosen = select_support(pixels, count=4, mode="regions", regions=[region], seed=3)
    assert estimate_damage(pixels, chosen, tiny_with_head) == via_regions
    with pytest.raises(SupportRegionError, match="support region 1"):
        estimate_damage(pixels, [(70, 50, 40, 40)], tiny_with_head)
    with pytest.raises(ConfigError, match=r"\[H, W, 3\]"):
        estimate_damage(pixels[..., 0], None, tiny_with_head)


def test_fit_head_learns_a_known_map():
    gen = torch.Generator().manual_seed(0)
    conds = torch.randn(600, 16, generator=gen) * 5 + 3
    targets = torch.stack([1.5 + 0.3 * conds[:, 0], 20 + 2 * conds[:, 1] - conds[:, 2]], 1)
    head = fit_head(conds[:500], targets[:500], epochs=300)
    with torch.no_grad():
        err = (head(conds[500:]) - targets[500:]).abs().mean(0)
    spread = targets[500:].std(0)
    assert err[0] < 0.15 * spread[0] and err[1] < 0.15 * spread[1]


def test_trained_readout_tells_damage_apart(trained):
    """The fixture model: noisy photos read noisier, soft photos read softer."""
    clean_sharp = [estimate_damage(degraded(s, 0.8, 0), model=trained) for s in (1, 2)]
    noisy = [estimate_damage(degraded(s, 0.8, 30), model=trained) for s in (1, 2)]
    soft = [estimate_damage(degraded(s, 3.2, 0), model=trained) for s in (1, 2)]
    for a, b, c in zip(clean_sharp, noisy, soft, strict=True):
        assert b.noise_sigma > a.noise_sigma + 10
        assert c.blur_sigma > a.blur_sigma + 0.5


def test_train_damage_head_on_synthetic_tasks(trained, rng):
    photos = [synthetic_photo(np.random.default_rng(i), 256, 256) for i in range(6)]
    conds, targets, owners = synthetic_tasks(trained, photos, 60, seed=1)
    assert conds.shape == (60, trained.config.cond_channels) and targets.shape == (60, 3)
    assert torch.all(targets[:, 2] == 100)  # no JPEG asked for: quality 100 means none
    assert sorted(set(owners.tolist())) == list(range(6))
    assert targets[:, 0].min() >= 0.2 and targets[:, 0].max() <= 4.0
    assert targets[:, 1].min() >= 0 and targets[:, 1].max() <= 50
    head, report = train_damage_head(trained, photos, tasks=300, epochs=300, seed=0)
    assert report.train_tasks + report.val_tasks == 300 and report.val_tasks > 0
    # better than always answering the mean noise level (about 14 levels MAE for 0..50)
    assert report.noise_mae < 9
    assert np.isfinite(report.blur_mae)
