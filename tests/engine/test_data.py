"""Photo scanning, the crop cache, tasks (aligned pairs, determinism) and validation sets."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import torch

from engine.data import (
    CropCacheSource,
    DiskSource,
    build_crop_cache,
    load_validation,
    random_support,
    read_rgb,
    scan_images,
    synthetic_photo,
    usable_images,
    write_synthetic_photos,
)
from engine.degrade import (
    DegradationConfig,
    DegradationParams,
    bicubic_downsample,
    blur_params,
    quantize,
)
from engine.errors import ConfigError, ImageReadError
from engine.training.batches import (
    TaskBatches,
    augment,
    make_loader,
    make_task,
    open_training_source,
)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    write_synthetic_photos(folder, 3, (96, 112), seed=1)
    return folder


def test_scan_is_recursive_filters_extensions_and_hidden(tmp_path, rng):
    img = synthetic_photo(rng, 40, 40)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    cv2.imwrite(str(tmp_path / "a.png"), img)
    cv2.imwrite(str(tmp_path / "sub" / "b.JPG"), img)
    cv2.imwrite(str(tmp_path / "sub" / "deeper" / "c.bmp"), img)
    cv2.imwrite(str(tmp_path / ".hidden" / "d.png"), img)
    (tmp_path / "notes.txt").write_text("x")
    names = [p.name for p in scan_images(tmp_path)]
    assert names == ["a.png", "b.JPG", "c.bmp"]
    with pytest.raises(ConfigError, match="not a folder"):
        scan_images(tmp_path / "missing")


def test_read_rgb_channel_order_gray_alpha_and_errors(tmp_path):
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 2] = 200  # red in OpenCV's BGR
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    assert read_rgb(tmp_path / "red.png")[0, 0].tolist() == [200, 0, 0]
    cv2.imwrite(str(tmp_path / "g.png"), np.full((4, 5), 77, np.uint8))
    assert read_rgb(tmp_path / "g.png").shape == (4, 5, 3)
    cv2.imwrite(str(tmp_path / "a.png"), np.dstack([bgr, np.full((4, 5), 9, np.uint8)]))
    assert read_rgb(tmp_path / "a.png")[0, 0].tolist() == [200, 0, 0]
    (tmp_path / "bad.png").write_bytes(b"not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="not a readable image"):
        read_rgb(tmp_path / "bad.png")
    with pytest.raises(ImageReadError, match="empty"):
        read_rgb(tmp_path / "empty.png")


def test_unusable_photos_are_skipped_with_one_warning_each(tmp_path, rng, caplog):
    cv2.imwrite(str(tmp_path / "ok.png"), synthetic_photo(rng, 64, 64))
    cv2.imwrite(str(tmp_path / "small.png"), synthetic_photo(rng, 20, 64))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8garbage")
    with caplog.at_level(logging.WARNING):
        for decode in (False, True):
            caplog.clear()
            found = usable_images(tmp_path, 32, decode=decode)
            assert [p.name for p, _ in found] == ["ok.png"]
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 2
            assert any("broken.jpg" in w for w in warnings) and any("small.png" in w for w in warnings)


def test_empty_usable_set_is_a_clear_error(tmp_path, rng):
    cv2.imwrite(str(tmp_path / "tiny.png"), synthetic_photo(rng, 10, 10))
    with pytest.raises(ConfigError, match="no usable training photos"):
        usable_images(tmp_path, 32)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="0 image files"):
        open_training_source(empty, 32, tmp_path / "cache", 4, 48, 0)


def test_crop_cache_is_deterministic_and_reused(photos, tmp_path):
    paths = scan_images(photos)
    p1, kept = build_crop_cache(paths, 48, 5, tmp_path / "c1", seed=3)
    arr = np.load(p1)
    assert arr.shape == (15, 48, 48, 3) and arr.dtype == np.uint8 and kept == paths
    mtime = p1.stat().st_mtime_ns
    p1b, _ = build_crop_cache(paths, 48, 5, tmp_path / "c1", seed=3)
    assert p1b == p1 and p1.stat().st_mtime_ns == mtime  # reused, not rebuilt
    p2, _ = build_crop_cache(paths, 48, 5, tmp_path / "c2", seed=3)
    assert np.array_equal(np.load(p2), arr)
    # every crop is a real window of its photo
    img0 = read_rgb(paths[0])
    res = cv2.matchTemplate(img0, arr[0], cv2.TM_SQDIFF)
    y, x = np.unravel_index(int(res.argmin()), res.shape)
    assert np.array_equal(img0[y : y + 48, x : x + 48], arr[0])


def test_crop_cache_skips_undecodable_files(photos, tmp_path, caplog):
    bad = photos / "zz_bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 50)
    paths = scan_images(photos)
    with caplog.at_level(logging.WARNING):
        cache, kept = build_crop_cache(paths, 48, 2, tmp_path / "c", seed=0)
    assert bad not in kept and len(kept) == 3
    assert np.load(cache).shape[0] == 6
    src = CropCacheSource(cache, 2)
    assert src.num_images == 3


@pytest.mark.parametrize("use_cache", [True, False])
def test_task_pairs_are_aligned_and_augmented(photos, tmp_path, use_cache):
    src = open_training_source(photos, 32, tmp_path / "cache", 4 if use_cache else 0, 64, 0)
    assert isinstance(src, CropCacheSource if use_cache else DiskSource)
    cfg = DegradationConfig(blur_sigma=(1.5, 1.5), noise_std=(0.0, 0.0))
    task = make_task(src, cfg, 4, 8, 6, np.random.default_rng(0))
    assert task.lr.shape == (6, 8, 8, 3) and task.hr.shape == (6, 32, 32, 3)
    assert task.lr.dtype == np.uint8 and task.hr.dtype == np.uint8
    params = DegradationParams(15, 1.5, 1.5, 0.0, 0.0)
    for lr, hr in zip(task.lr, task.hr, strict=True):
        assert np.array_equal(lr, quantize(bicubic_downsample(blur_params(hr, params), 4)))


def test_augment_gives_eight_distinct_views(rng):
    p = rng.integers(0, 255, (5, 5, 3)).astype(np.uint8)
    views = {augment(p, c).tobytes() for c in range(8)}
    assert len(views) == 8
    assert augment(p, 0).flags.c_contiguous


def test_batches_depend_only_on_seed_and_step(photos, tmp_path):
    src = open_training_source(photos, 32, tmp_path / "cache", 4, 48, 0)
    ds = TaskBatches(src, DegradationConfig.preset("paper"), 4, 8, 3, 2, seed=9, length=10)
    b3 = ds[3]
    assert b3["lr"].shape == (2, 6, 3, 8, 8) and b3["lr"].dtype == torch.uint8
    assert b3["hr"].shape == (2, 6, 3, 32, 32)
    assert b3["sigma"].shape == (2,) and b3["noise"].shape == (2,)
    again = ds[3]
    assert torch.equal(b3["lr"], again["lr"]) and torch.equal(b3["hr"], again["hr"])
    assert not torch.equal(ds[4]["hr"], b3["hr"])
    # a loader started at step 3, with a worker process, yields the same batches
    batches = list(make_loader(ds, 3, 5, num_workers=1))
    assert len(batches) == 2
    assert torch.equal(batches[0]["lr"], b3["lr"]) and torch.equal(batches[1]["hr"], ds[4]["hr"])


def test_validation_set_is_fixed(photos):
    a = load_validation(photos, DegradationConfig.preset("paper-test"), 4, 5, 16, crop=64, seed=1)
    b = load_validation(photos, DegradationConfig.preset("paper-test"), 4, 5, 16, crop=64, seed=1)
    assert len(a) == 3
    for x, y in zip(a, b, strict=True):
        assert x.hr.shape == (64, 64, 3) and x.lr.shape == (16, 16, 3)
        assert x.support.shape == (5, 3, 16, 16)
        assert np.array_equal(x.lr, y.lr) and np.array_equal(x.support, y.support)
        assert x.params.sigma_x == 2.6 and x.params.noise_std == 15
    assert len(load_validation(photos, DegradationConfig(), 4, 5, max_images=2)) == 2


def test_random_support_shrinks_to_small_images(rng):
    lr = rng.uniform(0, 255, (20, 30, 3)).astype(np.float32)
    sup = random_support(lr, 4, 32, rng)
    assert sup.shape == (4, 3, 20, 20) and sup.dtype == np.float32
