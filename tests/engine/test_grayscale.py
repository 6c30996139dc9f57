"""Grayscale in, grayscale out: a one-channel photo is written as a one-channel file, in the
library and in ``cmdsr upscale``, without the faint colour cast a network adds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from engine import build_model, save_model
from engine.cli import main
from engine.io.imageio import gray_levels, read_image, write_image


def _gray_photo(rng: np.random.Generator, height: int = 20, width: int = 28) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    base = 40 + 6 * xx + 3 * yy + rng.normal(0, 8, (height, width))
    return np.clip(base, 0, 255).astype(np.uint8)


def _with_cast(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What an upscaler returns for a gray photo: channels off by up to ~30 levels."""
    cast = rng.normal(0, 10, pixels.shape).astype(np.float32)
    return np.clip(pixels + cast, 0, 255)


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "tif"])
def test_a_gray_source_is_written_gray(tmp_path: Path, rng, fmt: str) -> None:
    src = tmp_path / "gray.png"
    PILImage.fromarray(_gray_photo(rng), "L").save(src)
    image = read_image(src)
    assert image.grayscale and image.pixels.shape == (20, 28, 3)
    cast = replace(image, pixels=_with_cast(image.pixels, rng))
    assert np.abs(cast.pixels[..., 0] - cast.pixels[..., 1]).max() > 8
    out = write_image(cast, tmp_path / f"out.{fmt}", quality=100)
    with PILImage.open(out) as written:
        # WebP has no one-channel kind: it stores the gray levels in three equal channels.
        assert written.mode == ("RGB" if fmt == "webp" else "L")
        levels = np.asarray(written.convert("L"), np.float32)
    if fmt in ("png", "tif", "webp"):  # lossless here: exactly the rounded luma
        np.testing.assert_array_equal(levels, np.rint(gray_levels(cast.pixels)))
    back = read_image(out)
    assert back.grayscale == (fmt != "webp")
    assert np.array_equal(back.pixels[..., 0], back.pixels[..., 2])


def test_a_sixteen_bit_gray_source_stays_sixteen_bit_gray(tmp_path: Path, rng) -> None:
    import cv2

    src = tmp_path / "gray16.png"
    cv2.imwrite(str(src), (_gray_photo(rng).astype(np.uint16) * 257 + 3))
    image = read_image(src)
    assert image.grayscale and image.bit_depth == 16
    out = write_image(replace(image, pixels=_with_cast(image.pixels, rng)), tmp_path / "o.png")
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16 and written.ndim == 2


def test_colour_and_gray_with_alpha_sources(tmp_path: Path, rng) -> None:
    colour = tmp_path / "rgb.png"
    PILImage.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(colour)
    assert not read_image(colour).grayscale
    la = tmp_path / "la.png"
    PILImage.fromarray(np.dstack([_gray_photo(rng, 8, 8), np.full((8, 8), 200, np.uint8)]),
                       "LA").save(la)
    image = read_image(la)
    assert image.grayscale and image.alpha is not None
    out = write_image(replace(image, pixels=_with_cast(image.pixels, rng)), tmp_path / "o.png")
    back = read_image(out)  # transparency kept, channels equal
    assert back.alpha is not None
    assert np.array_equal(back.pixels[..., 0], back.pixels[..., 1])


def test_cmdsr_upscale_writes_a_gray_photo_gray(tmp_path: Path, rng, seeded, tiny_config,
                                                capsys) -> None:
    model = save_model(build_model(tiny_config), tmp_path / "tiny.pt")
    src = tmp_path / "gray.jpg"
    PILImage.fromarray(_gray_photo(rng, 24, 32), "L").save(src, quality=92)
    out = tmp_path / "out"
    code = main(["upscale", str(src), "-o", str(out), "--model", str(model)])
    assert code == 0, capsys.readouterr().err
    with PILImage.open(out / "gray_x4.jpg") as written:
        assert written.mode == "L" and written.size == (128, 96)
