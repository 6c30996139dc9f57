"""The readout and the knobs learn JPEG (issue 29, item 2): a damage head with a third output
(the JPEG quality, 100 meaning none) and a condition map with a JPEG input, both in a new
format version that still reads the old files; synthetic tasks with JPEG; a readout trained
with the ConditionNet keeps its blur and noise when it gains JPEG; upscaling steered by a JPEG
quality. CPU only, tiny networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine import ModelConfig, build_model, estimate_damage, load_model, save_model
from engine.condition_map import (
    MAP_KEY,
    ConditionMap,
    attach_condition_map,
    condition_map_of,
    map_from_dict,
    map_to_dict,
)
from engine.damage_head import (
    HEAD_KEY,
    DamageHead,
    attach_damage_head,
    damage_head_of,
    head_from_dict,
    head_to_dict,
    joined_heads,
)
from engine.data import synthetic_photo
from engine.errors import CheckpointError, ConfigError
from engine.inference.damage import DamageEstimate
from engine.inference.upscaler import Upscaler
from engine.training.damage_fit import (
    fit_condition_map,
    fit_head,
    jpeg_errors,
    synthetic_tasks,
    train_damage_head,
)

TINY = ModelConfig(channels=8, blocks=1, support_size=4, cond_channels=8,
                   condition_input="highpass")


def scaled_head(outputs: int, seed: int = 0) -> DamageHead:
    torch.manual_seed(seed)
    head = DamageHead(8, hidden=6, outputs=outputs)
    with torch.no_grad():
        head.in_std.fill_(0.05)
        head.out_mean.copy_(torch.tensor([2.0, 10.0, 70.0])[:outputs])
        head.out_std.copy_(torch.tensor([0.5, 3.0, 20.0])[:outputs])
        head.out_max.copy_(torch.tensor([4.0, 50.0, 100.0])[:outputs])
    return head


def v1_dict(part: dict) -> dict:
    """What a file written before JPEG holds: version 1, no ``outputs``/``inputs`` key."""
    old = {k: v for k, v in part.items() if k not in ("outputs", "inputs")}
    old["version"] = 1
    return old


# -- the head ---------------------------------------------------------------------------------
def test_a_jpeg_head_reads_the_quality_and_says_when_none_is_seen(rng) -> None:
    model = build_model(TINY).eval()
    attach_damage_head(model, scaled_head(3))
    pixels = rng.uniform(0, 255, (48, 64, 3)).astype(np.float32)
    est = estimate_damage(pixels, model=model)
    assert est.jpeg_quality is not None and 1 <= est.jpeg_quality <= 100
    assert set(est.as_dict()) == {"blur_sigma", "noise_sigma", "jpeg_quality"}
    seen, unseen = DamageEstimate(1.0, 2.0, 61.6), DamageEstimate(1.0, 2.0, 98.4)
    assert seen.jpeg_seen and seen.jpeg_words() == "JPEG quality 62"
    assert not unseen.jpeg_seen and unseen.jpeg_words() == "no JPEG seen"
    assert str(unseen).endswith("no JPEG seen")
    old = DamageEstimate(1.0, 2.0)  # a readout that cannot read JPEG
    assert old.jpeg_quality is None and not old.jpeg_seen and old.jpeg_words() == ""
    assert "jpeg_quality" not in old.as_dict()


def test_head_format_2_round_trips_and_format_1_still_loads(rng) -> None:
    head = scaled_head(3)
    stored = head_to_dict(head)
    assert stored["version"] == 2 and stored["outputs"] == 3
    conds = torch.randn(5, 8)
    assert torch.equal(head_from_dict(stored)(conds), head(conds))
    old = v1_dict(head_to_dict(scaled_head(2)))
    loaded = head_from_dict(old, "old.pt")
    assert loaded.outputs == 2 and not loaded.reads_jpeg
    model = build_model(TINY).eval()
    attach_damage_head(model, loaded)
    est = estimate_damage(rng.uniform(0, 255, (40, 40, 3)).astype(np.float32), model=model)
    assert est.jpeg_quality is None


@pytest.mark.parametrize(("version", "message"), [(3, "version 3 is newer than this program"),
                                                  ("2", "no valid format version"),
                                                  (None, "no valid format version")])
def test_an_unknown_head_version_is_a_clear_error(version, message) -> None:
    stored = head_to_dict(scaled_head(3))
    stored["version"] = version
    with pytest.raises(CheckpointError, match=f"m.pt: .*{message}"):
        head_from_dict(stored, "m.pt")


def test_a_head_with_a_wrong_output_count_is_refused() -> None:
    stored = head_to_dict(scaled_head(3))
    stored["outputs"] = 2  # the parameters are a 3-output head's
    with pytest.raises(CheckpointError, match="damaged damage readout"):
        head_from_dict(stored, "m.pt")


def test_fit_head_learns_three_readings() -> None:
    gen = torch.Generator().manual_seed(0)
    conds = torch.randn(700, 16, generator=gen) * 5 + 3
    quality = (65 + 6 * conds[:, 3]).clamp(30, 100)
    targets = torch.stack([1.5 + 0.3 * conds[:, 0], 20 + 2 * conds[:, 1], quality], 1)
    head = fit_head(conds[:600], targets[:600], epochs=300)
    assert head.reads_jpeg
    all_rows, compressed = jpeg_errors(head, conds[600:], targets[600:])
    assert all_rows < 0.2 * float(targets[600:, 2].std())
    assert np.isfinite(compressed)


def test_joined_heads_keep_blur_and_noise_exactly() -> None:
    old, jpeg = scaled_head(2, seed=1), scaled_head(3, seed=2)
    with torch.no_grad():  # a different input standardisation: folded into the join
        jpeg.in_mean.normal_()
        jpeg.in_std.uniform_(0.5, 2.0)
        for h in (old, jpeg):
            h.out_min.fill_(-1e6)
            h.out_max.fill_(1e6)
    joined = joined_heads(old, jpeg)
    conds = torch.randn(40, 8) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(joined(conds)[:, :2], old(conds), rtol=0, atol=1e-5)
        torch.testing.assert_close(joined(conds)[:, 2], jpeg(conds)[:, 2], rtol=1e-5, atol=1e-3)
    with pytest.raises(ConfigError):
        joined_heads(old, scaled_head(2))


def test_synthetic_tasks_mix_jpeg_and_none(rng) -> None:
    torch.manual_seed(0)
    model = build_model(TINY).eval()
    photos = [synthetic_photo(np.random.default_rng(i), 128, 128) for i in range(3)]
    _, targets, _ = synthetic_tasks(model, photos, 120, seed=0, jpeg_share=0.6, hr_size=128)
    quality = targets[:, 2]
    none = quality == 100
    assert 0.2 < float(none.float().mean()) < 0.6  # about 40% without JPEG
    assert float(quality[~none].min()) >= 30 and float(quality[~none].max()) <= 95


def test_a_readout_trained_with_the_condition_keeps_its_blur_and_noise(rng) -> None:
    torch.manual_seed(0)
    model = build_model(TINY).eval()
    old = scaled_head(2)
    attach_damage_head(model, old)
    photos = [synthetic_photo(np.random.default_rng(i), 128, 128) for i in range(4)]
    head, report = train_damage_head(model, photos, tasks=80, epochs=50, jpeg_share=0.6)
    assert head.reads_jpeg and report.jpeg_mae is not None and np.isfinite(report.jpeg_mae)
    conds = torch.randn(10, 8) * 0.05
    with torch.no_grad():
        torch.testing.assert_close(head(conds)[:, :2], old(conds), rtol=0, atol=1e-4)
    fresh, _ = train_damage_head(model, photos, tasks=80, epochs=50, keep_blur_noise=False)
    with torch.no_grad():
        assert not torch.allclose(fresh(conds)[:, :2], old(conds), atol=1e-3)
    flat, flat_report = train_damage_head(model, photos, tasks=80, epochs=50, jpeg_share=0.0)
    assert not flat.reads_jpeg and flat_report.jpeg_mae is None


# -- the condition map ------------------------------------------------------------------------
def jpeg_map() -> ConditionMap:
    g = torch.Generator().manual_seed(0)
    damage = torch.stack([torch.rand(300, generator=g) * 3.6 + 0.4,
                          torch.rand(300, generator=g) * 50,
                          torch.where(torch.rand(300, generator=g) < 0.4, 100.0,
                                      torch.randint(30, 96, (300,), generator=g).float())], 1)
    conditions = torch.tanh(damage / torch.tensor([4.0, 50.0, 100.0])) @ torch.randn(3, 8, generator=g)
    return fit_condition_map(conditions, damage, epochs=200)


def test_a_jpeg_map_takes_the_quality_within_its_range() -> None:
    cmap = jpeg_map()
    assert cmap.has_jpeg and cmap.jpeg_range == pytest.approx((30.0, 100.0))
    # no JPEG given: quality 100, the "none" end of the scale
    assert torch.equal(cmap.condition(1.0, 5.0), cmap.condition(1.0, 5.0, 100.0))
    assert not torch.allclose(cmap.condition(1.0, 5.0, 35.0), cmap.condition(1.0, 5.0, 100.0))
    for bad in (20.0, 101.0, float("nan")):
        with pytest.raises(ConfigError, match="JPEG quality .* outside what this model was trained on"):
            cmap.condition(1.0, 5.0, bad)


def test_map_format_2_round_trips_and_format_1_still_loads() -> None:
    cmap = jpeg_map()
    stored = map_to_dict(cmap)
    assert stored["version"] == 2 and stored["inputs"] == 3
    again = map_from_dict(stored)
    assert torch.equal(again.condition(2.0, 10.0, 60.0), cmap.condition(2.0, 10.0, 60.0))
    old = map_from_dict(v1_dict(map_to_dict(ConditionMap(8))), "old.pt")
    assert old.inputs == 2 and not old.has_jpeg and old.jpeg_range is None
    old.condition(1.0, 5.0)  # blur and noise as before
    with pytest.raises(ConfigError, match="no JPEG quality"):
        old.condition(1.0, 5.0, 60.0)
    stored["version"] = 7
    with pytest.raises(CheckpointError, match="m.pt: condition map version 7 is newer"):
        map_from_dict(stored, "m.pt")


def test_old_files_load_whole_and_upscale_with_a_jpeg_knob(tmp_path: Path, rng) -> None:
    """A model file written before JPEG (format 1 head and map) loads, reads no JPEG and its
    knobs refuse a JPEG quality; one with a JPEG map is steered by it."""
    torch.manual_seed(0)
    model = build_model(TINY).eval()
    attach_damage_head(model, scaled_head(2))
    attach_condition_map(model, ConditionMap(8))
    path = save_model(model, tmp_path / "old.pt")
    raw = torch.load(path, weights_only=True)
    raw[HEAD_KEY], raw[MAP_KEY] = v1_dict(raw[HEAD_KEY]), v1_dict(raw[MAP_KEY])
    torch.save(raw, path)
    loaded = load_model(path)
    assert not damage_head_of(loaded).reads_jpeg and not condition_map_of(loaded).has_jpeg
    lr = rng.uniform(0, 255, (16, 20, 3)).astype(np.float32)
    up = Upscaler(loaded, method="cmdsr", device="cpu", precision="fp32")
    up.upscale(lr, damage=(1.0, 5.0))
    with pytest.raises(ConfigError, match="no JPEG quality"):
        up.upscale(lr, damage=(1.0, 5.0, 60.0))

    attach_condition_map(loaded, jpeg_map())
    up = Upscaler(loaded, method="cmdsr", device="cpu", precision="fp32")
    none = up.upscale(lr, damage=(1.0, 5.0, None))
    np.testing.assert_array_equal(none, up.upscale(lr, damage=(1.0, 5.0, 100.0)))
    np.testing.assert_array_equal(none, up.upscale(lr, damage=(1.0, 5.0)))
    assert np.abs(up.upscale(lr, damage=(1.0, 5.0, 35.0)) - none).max() > 1e-3


def test_training_from_a_file_whose_readout_reads_jpeg_learns_its_blur_and_noise() -> None:
    """A training run started from the shipped file (whose readout now reads JPEG) goes on
    fitting the readout's blur and noise instead of failing on the third column."""
    from engine.training.damage_readout import damage_loss

    head = scaled_head(3)
    conditions = torch.randn(6, 8, requires_grad=True)
    loss = damage_loss(head, conditions, torch.full((6,), 2.0), torch.full((6,), 10.0))
    loss.backward()
    assert torch.isfinite(loss) and conditions.grad is not None
