"""scripts/corpus_texture.py: patch gradients on known images, grouping by source and split,
and the printed table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ct() -> ModuleType:
    spec = importlib.util.spec_from_file_location("corpus_texture",
                                                  ROOT / "scripts" / "corpus_texture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["corpus_texture"] = module
    spec.loader.exec_module(module)
    return module


def test_patch_gradients_flat_ramp_and_stripes(ct: ModuleType) -> None:
    flat = np.full((100, 150, 3), 120, np.uint8)  # 2 x 3 cells, remainder ignored
    assert ct.patch_gradients(flat, 48).tolist() == [0.0] * 6

    ramp = np.tile((np.arange(96, dtype=np.uint8) * 2)[None, :, None], (96, 1, 3))
    g = ct.patch_gradients(ramp, 48)
    # 2 grey levels per pixel along x; the last column repeats its neighbour's gradient
    np.testing.assert_allclose(g, [2.0] * 4, atol=1e-4)

    stripes = np.zeros((48, 96, 3), np.uint8)
    stripes[:, ::2] = 255
    np.testing.assert_allclose(ct.patch_gradients(stripes, 48), [255.0, 255.0], rtol=1e-5)

    assert ct.patch_gradients(np.zeros((40, 400, 3), np.uint8), 48).size == 0


def test_patch_gradients_cells_in_row_major_order(ct: ModuleType) -> None:
    img = np.full((96, 96, 3), 50, np.uint8)
    img[48:, :48, :] = np.where(np.indices((48, 48)).sum(0) % 2 == 0, 0, 200)[..., None]
    g = ct.patch_gradients(img, 48)
    assert g[2] > 150  # the bottom-left cell is a checkerboard
    assert g[1] == 0 and g[3] == 0
    # the top-left cell's last row differs with the checkerboard below it: a small share
    assert 0 < g[0] < 5


def test_half_scale_raises_texture_of_a_smooth_photo(ct: ModuleType) -> None:
    # a slow sine (period 96 px): halving the photo doubles the gradient per pixel
    x = np.arange(384, dtype=np.float64)
    wave = np.round(128 + 100 * np.sin(2 * np.pi * x / 96)).astype(np.uint8)
    smooth = np.ascontiguousarray(np.tile(wave[None, :, None], (384, 1, 3)))
    g1 = ct.patch_gradients(ct.rescaled(smooth, 1.0), 48).mean()
    g2 = ct.patch_gradients(ct.rescaled(smooth, 0.5), 48).mean()
    assert ct.rescaled(smooth, 0.5).shape == (192, 192, 3)
    np.testing.assert_allclose(g1, 100 * 2 * np.pi / 96 * 2 / np.pi, rtol=0.05)  # mean |slope|
    np.testing.assert_allclose(g2, 2 * g1, rtol=0.05)


def test_table_groups_by_source_and_split(ct: ModuleType, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 256, (96, 96, 3)).astype(np.uint8)
    flat = np.full((96, 96, 3), 90, np.uint8)
    for split, name, img in [("train", "alpha_a.png", noisy), ("train", "alpha_b.png", flat),
                             ("train", "beta_c.png", flat), ("val", "gamma_d.png", noisy)]:
        (tmp_path / split).mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / split / name), img)
    (tmp_path / "train" / "notes.txt").write_text("not a photo")

    assert ct.main([str(tmp_path), "--no-reference", "--markdown"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    # 96 px photo: 4 patches at full size, 1 at half size
    assert "| alpha | train | 2 | 8 | 2 | 50% | 50% |" in lines
    assert "| beta | train | 1 | 4 | 1 | 0% | 0% |" in lines
    assert "| gamma | val | 1 | 4 | 1 | 100% | 100% |" in lines
    assert "reference: none" in out

    stats = ct.measure(ct.corpus_images([tmp_path / "val"]), 48, 8.0)
    assert list(stats) == [("gamma", "val")]


def test_empty_folder_fails(ct: ModuleType, tmp_path: Path) -> None:
    assert ct.main([str(tmp_path), "--no-reference"]) == 1
