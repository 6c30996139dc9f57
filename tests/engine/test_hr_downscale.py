"""Multi-scale HR patches (``hr_downscale``): config validation, crop content at a known
downscale, the cache key, bit-identical defaults, the on-demand path and small photos."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib

import cv2
import numpy as np
import pytest

from engine.config import apply_overrides, from_dict, to_dict
from engine.data import (
    CropCacheSource,
    DiskSource,
    _cache_key,
    build_crop_cache,
    check_hr_downscale,
    downscaled_region,
    read_rgb,
    scan_images,
    synthetic_photo,
)
from engine.degrade import DegradationConfig
from engine.errors import ConfigError
from engine.model import ModelConfig
from engine.training.batches import TaskBatches, open_training_source
from engine.training.config import TrainConfig

# the module itself, whose open_training_source the test replaces
train_mod = importlib.import_module("engine.training.loop")
TINY = ModelConfig(scale=4, channels=8, blocks=2, support_size=3, cond_channels=8)


def ramp(h: int, w: int) -> np.ndarray:
    """Red = column, green = row, blue = 128: a crop's slope tells the scale it was taken at."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx, yy, np.full_like(xx, 128)], axis=-1).astype(np.uint8)


def write_png(path, img: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(img[..., ::-1]))
    return path


@pytest.fixture
def ramp_photos(tmp_path):
    write_png(tmp_path / "ramps" / "a.png", ramp(180, 220))
    write_png(tmp_path / "ramps" / "b.png", ramp(200, 160))
    return tmp_path / "ramps"


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(5)
    for i, (h, w) in enumerate([(96, 120), (110, 100), (128, 128)]):
        write_png(tmp_path / "photos" / f"p{i}.png", synthetic_photo(rng, h, w))
    return tmp_path / "photos"


def slopes(crop: np.ndarray) -> tuple[float, float]:
    """Mean step of the red ramp along x and of the green ramp along y."""
    c = crop.astype(np.float64)
    return float(np.diff(c[..., 0], axis=1).mean()), float(np.diff(c[..., 1], axis=0).mean())


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize("bad", [(0.0, 1.0), (-0.5, 0.5), (0.8, 0.5), (0.5, 1.5), (0.5,),
                                 (0.2, 0.5, 0.7), ("a", 1.0), (True, 1.0), (float("nan"), 1.0),
                                 0.5])
def test_config_refuses_bad_ranges_naming_the_key(bad):
    with pytest.raises(ConfigError, match=r"hr_downscale must be two factors .*0 < lo <= hi <= 1"):
        TrainConfig(hr_downscale=bad)  # type: ignore[arg-type]


def test_config_accepts_normalises_and_round_trips():
    assert TrainConfig().hr_downscale == (1.0, 1.0)
    cfg = TrainConfig(hr_downscale=[0.5, 1])  # type: ignore[arg-type]
    assert cfg.hr_downscale == (0.5, 1.0) and isinstance(cfg.hr_downscale, tuple)
    assert TrainConfig(hr_downscale=(0.3, 0.3)).hr_downscale == (0.3, 0.3)
    assert from_dict(TrainConfig, to_dict(cfg)) == cfg
    assert apply_overrides(TrainConfig(), ["hr_downscale=0.35,0.9"]).hr_downscale == (0.35, 0.9)
    with pytest.raises(ConfigError, match="hr_downscale"):
        apply_overrides(TrainConfig(), ["hr_downscale=0.9,0.35"])
    with pytest.raises(ConfigError, match="hr_downscale"):
        from_dict(TrainConfig, {"hr_downscale": [0.5]})
    with pytest.raises(ConfigError, match="my_key must be two factors"):
        check_hr_downscale((2.0, 3.0), key="my_key")


# ----------------------------------------------------------------------------- crop cache


def test_cache_crops_at_half_scale_have_doubled_slope(ramp_photos, tmp_path):
    paths = scan_images(ramp_photos)
    cache, kept = build_crop_cache(paths, 32, 6, tmp_path / "c", seed=1, hr_downscale=(0.5, 0.5))
    arr = np.load(cache)
    assert arr.shape == (12, 32, 32, 3) and kept == paths
    for crop in arr:
        sx, sy = slopes(crop)
        assert sx == pytest.approx(2.0, abs=0.05) and sy == pytest.approx(2.0, abs=0.05)
        # area averaging of a 64 px region: every step is 2 (no skipped or doubled pixels)
        assert set(np.unique(np.diff(crop[..., 0].astype(int), axis=1))) <= {1, 2, 3}
        assert np.all(crop[..., 2] == 128)
    # full resolution keeps slope 1
    plain, _ = build_crop_cache(paths, 32, 6, tmp_path / "c", seed=1)
    for crop in np.load(plain):
        assert slopes(crop) == (1.0, 1.0)


def test_cache_crop_is_an_area_resized_region_of_its_photo(photos, tmp_path):
    paths = scan_images(photos)
    cache, _ = build_crop_cache(paths, 24, 2, tmp_path / "c", seed=0, hr_downscale=(0.5, 0.5))
    img = read_rgb(paths[0])
    crop = np.load(cache)[0]
    h, w = img.shape[:2]
    found = [
        (y, x)
        for y in range(h - 48 + 1)
        for x in range(w - 48 + 1)
        if np.array_equal(cv2.resize(img[y : y + 48, x : x + 48], (24, 24),
                                     interpolation=cv2.INTER_AREA), crop)
    ]
    assert found


def test_cache_key_covers_the_range_and_keeps_the_default_key(photos, tmp_path):
    paths = scan_images(photos)
    # the key of caches built before the setting existed
    h = hashlib.sha1()
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    h.update(b"24|3|0")
    old_key = h.hexdigest()[:16]
    assert _cache_key(paths, 24, 3, 0) == _cache_key(paths, 24, 3, 0, (1.0, 1.0)) == old_key
    built = {r: build_crop_cache(paths, 24, 3, tmp_path / "c", 0, r)[0]
             for r in [(1.0, 1.0), (0.5, 1.0), (0.5, 0.9), (0.4, 0.4)]}
    assert built[(1.0, 1.0)].name == f"hr_crops_{old_key}.npy"
    assert len({p.name for p in built.values()}) == 4
    assert not np.array_equal(np.load(built[(1.0, 1.0)]), np.load(built[(0.4, 0.4)]))
    # the same range reuses its file; a downscaled cache is deterministic per seed
    mtime = built[(0.5, 0.9)].stat().st_mtime_ns
    again, _ = build_crop_cache(paths, 24, 3, tmp_path / "c", 0, (0.5, 0.9))
    assert again == built[(0.5, 0.9)] and again.stat().st_mtime_ns == mtime
    fresh, _ = build_crop_cache(paths, 24, 3, tmp_path / "other", 0, (0.5, 0.9))
    assert np.array_equal(np.load(fresh), np.load(again))
    with pytest.raises(ConfigError, match="hr_downscale"):
        build_crop_cache(paths, 24, 3, tmp_path / "c", 0, (0.0, 1.0))


def test_default_cache_and_patches_are_bit_identical_to_plain_crops(photos, tmp_path):
    paths = scan_images(photos)
    cache, _ = build_crop_cache(paths, 32, 4, tmp_path / "c", seed=7)
    arr = np.load(cache)
    # the crops as the cache made them before hr_downscale existed
    for i, p in enumerate(paths):
        img = read_rgb(p)
        h, w = img.shape[:2]
        rng = np.random.default_rng([7, i])
        for j in range(4):
            y = int(rng.integers(0, h - 32 + 1))
            x = int(rng.integers(0, w - 32 + 1))
            assert np.array_equal(arr[i * 4 + j], img[y : y + 32, x : x + 32])
    # and the on-demand patches
    src = DiskSource(paths)
    got = src.patches(1, 16, 5, np.random.default_rng(3))
    img = read_rgb(paths[1])
    rng = np.random.default_rng(3)
    for patch in got:
        y = int(rng.integers(0, img.shape[0] - 16 + 1))
        x = int(rng.integers(0, img.shape[1] - 16 + 1))
        assert np.array_equal(patch, img[y : y + 16, x : x + 16])


# ----------------------------------------------------------------------------- on demand


def test_on_demand_patches_honour_the_range(ramp_photos, tmp_path):
    src = open_training_source(ramp_photos, 32, tmp_path / "cache", 0, 0, 0, hr_downscale=(0.5, 0.5))
    assert isinstance(src, DiskSource) and src.hr_downscale == (0.5, 0.5)
    for patch in src.patches(0, 32, 6, np.random.default_rng(2)):
        assert patch.shape == (32, 32, 3)
        sx, sy = slopes(patch)
        assert sx == pytest.approx(2.0, abs=0.05) and sy == pytest.approx(2.0, abs=0.05)
    # a range: slopes between 1/hi and 1/lo, and they vary from patch to patch
    wide = DiskSource(src.paths, (0.4, 0.9))
    sx = [slopes(p)[0] for p in wide.patches(0, 32, 12, np.random.default_rng(4))]
    assert all(1 / 0.9 - 0.1 <= s <= 1 / 0.4 + 0.1 for s in sx) and max(sx) - min(sx) > 0.3
    # batches stay a function of seed and step only
    ds = TaskBatches(src, DegradationConfig.preset("paper"), 4, 8, 2, 2, seed=3, length=5)
    a, b = ds[2], ds[2]
    assert a["hr"].shape == (2, 4, 3, 32, 32)
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_cached_source_honours_the_range(ramp_photos, tmp_path):
    src = open_training_source(ramp_photos, 16, tmp_path / "cache", 3, 32, 0, (0.5, 0.5))
    assert isinstance(src, CropCacheSource) and src.crop == 32
    for patch in src.patches(1, 16, 4, np.random.default_rng(0)):
        assert slopes(patch)[0] == pytest.approx(2.0, abs=0.1)


# ----------------------------------------------------------------------------- small photos


def test_photo_too_small_for_the_region_uses_the_strongest_downscale_that_fits(tmp_path):
    small = write_png(tmp_path / "small" / "s.png", ramp(40, 50))
    # crop 32 at s = 0.25 wants a 128 px region; the photo's 40 px short side is the most
    cache, kept = build_crop_cache([small], 32, 3, tmp_path / "c", 0, (0.25, 0.25))
    assert kept == [small]
    for crop in np.load(cache):
        assert slopes(crop)[1] == pytest.approx(40 / 32, abs=0.06)
        assert crop[0, 0, 1] <= 1 and crop[-1, 0, 1] >= 38  # spans the photo's full height
    for patch in DiskSource([small], (0.25, 0.25)).patches(0, 32, 3, np.random.default_rng(0)):
        assert patch.shape == (32, 32, 3) and slopes(patch)[1] == pytest.approx(40 / 32, abs=0.06)
    # exactly the patch size: no downscale is possible, the plain crop comes back
    exact = ramp(32, 32)
    assert np.array_equal(downscaled_region(exact, 32, (0.3, 0.6), np.random.default_rng(0)), exact)


# ----------------------------------------------------------------------------- training


def test_train_passes_the_range_to_the_source(monkeypatch, photos, tmp_path):
    seen = {}

    class Stop(Exception):
        pass

    def fake_source(*args, **kwargs):
        seen["args"], seen["kwargs"] = args, kwargs
        raise Stop

    monkeypatch.setattr(train_mod, "open_training_source", fake_source)
    cfg = TrainConfig(model=TINY, steps=2, tasks_per_batch=2, lr_patch=8, num_workers=0,
                      device="cpu", hr_downscale=(0.4, 0.8))
    with pytest.raises(Stop):
        train_mod.train(cfg, tmp_path / "run", photos)
    assert (0.4, 0.8) in seen["args"] or seen["kwargs"].get("hr_downscale") == (0.4, 0.8)
    assert dataclasses.replace(cfg, hr_downscale=(1.0, 1.0)) == TrainConfig(
        model=TINY, steps=2, tasks_per_batch=2, lr_patch=8, num_workers=0, device="cpu")
