"""Support selection: seeded random, user regions, the textured-and-spread auto mode, and
images smaller than a patch."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ConfigError, SupportRegionError
from engine.inference.support import (
    Box,
    SupportSet,
    select_support,
    texture_scores,
    validate_regions,
)


@pytest.fixture
def photo(rng) -> np.ndarray:
    """Non-square: left half flat grey sky, right half texture."""
    img = np.full((96, 160, 3), 120.0, np.float32)
    img[:, 80:] = rng.uniform(0, 255, (96, 80, 3))
    return img


def _crop(img: np.ndarray, box: Box) -> np.ndarray:
    return img[box.y:box.y + box.h, box.x:box.x + box.w]


def test_random_is_seeded_and_patches_match_boxes(photo):
    a = select_support(photo, count=20, seed=3)
    b = select_support(photo, count=20, seed=3)
    c = select_support(photo, count=20, seed=4)
    assert isinstance(a, SupportSet) and a.mode == "random"
    assert a.patches.shape == (20, 32, 32, 3) and a.patches.dtype == np.float32
    assert a.boxes == b.boxes and a.boxes != c.boxes
    np.testing.assert_array_equal(a.patches, b.patches)
    for patch, box in zip(a.patches, a.boxes, strict=True):
        assert box.w == box.h == 32
        assert 0 <= box.x <= 160 - 32 and 0 <= box.y <= 96 - 32
        np.testing.assert_array_equal(patch, _crop(photo, box))


def test_custom_patch_size(photo):
    s = select_support(photo, count=4, size=48, mode="auto")
    assert s.patches.shape == (4, 48, 48, 3) and s.size == 48 and s.count == 4


def test_auto_skips_flat_and_clipped_areas_and_spreads(photo):
    photo[:48, 80:] = 255.0  # clipped highlights in the top right
    s = select_support(photo, count=8, mode="auto")
    assert s.mode == "auto" and s.patches.shape == (8, 32, 32, 3)
    for box in s.boxes:
        region = _crop(photo, box)
        assert region.std() > 2.0, box  # not flat sky
        assert ((region >= 254.5).all(axis=2)).mean() <= 0.25, box  # not mostly clipped
    # deterministic
    assert select_support(photo, count=8, mode="auto", seed=9).boxes == s.boxes


def test_auto_spreads_over_an_evenly_textured_image(rng):
    img = rng.uniform(0, 255, (128, 256, 3)).astype(np.float32)
    s = select_support(img, count=8, mode="auto")
    xs = [b.x + 16 for b in s.boxes]
    assert min(xs) < 256 / 3 and max(xs) > 2 * 256 / 3  # both ends of the image are used
    # no two patches share most of their pixels
    for i, a in enumerate(s.boxes):
        for b in s.boxes[i + 1:]:
            shared = max(0, 32 - abs(a.x - b.x)) * max(0, 32 - abs(a.y - b.y))
            assert shared < 0.5 * 32 * 32, (a, b)


def test_auto_on_a_blank_image_still_returns_patches():
    s = select_support(np.zeros((40, 50, 3), np.float32), count=5, mode="auto")
    assert s.patches.shape == (5, 32, 32, 3)


def test_texture_scores_rank_edges_above_flat(photo):
    scores, ys, xs = texture_scores(photo, 32)
    left = scores[:, xs + 32 <= 80]
    right = scores[:, xs >= 80]
    assert np.all(np.isneginf(left)) and np.all(np.isfinite(right))


def test_regions_sample_inside_each_region_round_robin(photo):
    regions = [Box(0, 0, 40, 40), (100, 50, 60, 46)]
    s = select_support(photo, count=6, mode="regions", regions=regions, seed=1)
    assert s.mode == "regions"
    for i, box in enumerate(s.boxes):
        r = regions[i % 2]
        rx, ry, rw, rh = (r.x, r.y, r.w, r.h) if isinstance(r, Box) else r
        assert rx <= box.x and box.x + box.w <= rx + rw
        assert ry <= box.y and box.y + box.h <= ry + rh
    for patch, box in zip(s.patches, s.boxes, strict=True):
        np.testing.assert_array_equal(patch, _crop(photo, box))


def test_region_partly_outside_is_clipped_not_refused(photo):
    s = select_support(photo, count=3, mode="regions", regions=[Box(120, 50, 100, 100)])
    for box in s.boxes:
        assert box.x >= 120 and box.y >= 50 and box.x + box.w <= 160 and box.y + box.h <= 96


def test_validate_regions_gives_a_reason_per_region(photo):
    reasons = validate_regions(
        [Box(0, 0, 32, 32), Box(0, 0, 20, 64), Box(500, 0, 64, 64), Box(10, 10, 0, 40),
         Box(150, 0, 64, 64)],
        photo.shape,
        32,
    )
    assert reasons[0] is None
    assert "smaller than a 32x32 patch" in reasons[1]
    assert "outside" in reasons[2]
    assert "no area" in reasons[3]
    assert "10x64" in reasons[4]


def test_bad_regions_raise_naming_the_region(photo):
    with pytest.raises(SupportRegionError, match=r"region 2 \(x=500.*outside"):
        select_support(photo, count=4, mode="regions", regions=[Box(0, 0, 40, 40), Box(500, 0, 40, 40)])
    with pytest.raises(SupportRegionError, match="region 1 .*smaller than"):
        select_support(photo, count=4, mode="regions", regions=[Box(0, 0, 16, 16)])
    with pytest.raises(SupportRegionError, match="at least one region"):
        select_support(photo, count=4, mode="regions")


def test_bad_arguments(photo):
    with pytest.raises(ConfigError, match="mode"):
        select_support(photo, count=4, mode="best")
    with pytest.raises(ConfigError, match="count"):
        select_support(photo, count=0)
    with pytest.raises(ConfigError, match="H, W, 3"):
        select_support(photo[:, :, 0], count=4)
    with pytest.raises(ConfigError, match="X,Y,W,H"):
        Box.parse("1,2,3")
    assert Box.parse(" 1, 2,3,4") == Box(1, 2, 3, 4)
    assert str(Box(1, 2, 3, 4)) == "1,2,3,4"


@pytest.mark.parametrize("mode", ["random", "auto", "regions"])
@pytest.mark.parametrize("shape", [(20, 12), (1, 1), (50, 10)])
def test_images_smaller_than_a_patch_are_mirror_padded(rng, mode, shape):
    img = rng.uniform(0, 255, (*shape, 3)).astype(np.float32)
    regions = [Box(0, 0, shape[1], shape[0])] if mode == "regions" else ()
    s = select_support(img, count=3, mode=mode, regions=regions)
    assert s.patches.shape == (3, 32, 32, 3)
    for patch, box in zip(s.patches, s.boxes, strict=True):
        assert box.x + box.w <= shape[1] and box.y + box.h <= shape[0]
        # the real pixels sit in the top-left corner of the patch, the rest is mirrored
        np.testing.assert_array_equal(patch[:box.h, :box.w], _crop(img, box))
        assert patch.min() >= img.min() and patch.max() <= img.max()
    assert validate_regions([Box(0, 0, shape[1], shape[0])], shape, 32) == [None]
