"""Image I/O: every format, bit depth, channel layout and orientation we promise, metadata
round trips, atomic no-overwrite writes and one error for every kind of bad file."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageOps

from engine.errors import ImageReadError, ImageWriteError
from engine.io import fileio
from engine.io.imageio import (
    SUPPORTED_READ_SUFFIXES,
    SUPPORTED_WRITE_FORMATS,
    Image,
    read_image,
    write_image,
)

ICC = b"\x00\x00\x00\x10fake-icc-profile-for-tests" * 4


def _rgb8(rng: np.random.Generator, h: int = 13, w: int = 21) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _exif(orientation: int = 1) -> PILImage.Exif:
    exif = PILImage.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x0112] = orientation
    return exif


def test_supported_lists_cover_the_issue():
    for suffix in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"):
        assert suffix in SUPPORTED_READ_SUFFIXES
    assert set(SUPPORTED_WRITE_FORMATS) == {"png", "jpg", "webp", "tif"}


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("BMP", ".bmp"), ("TIFF", ".tif"),
                                        ("WEBP", ".webp")])
def test_lossless_8bit_rgb_reads_exactly(tmp_path, rng, fmt, suffix):
    arr = _rgb8(rng)
    path = tmp_path / f"photo{suffix}"
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    PILImage.fromarray(arr).save(path, format=fmt, **kwargs)
    image = read_image(path)
    assert image.pixels.dtype == np.float32 and image.pixels.shape == (13, 21, 3)
    assert image.bit_depth == 8 and image.alpha is None and image.source == path
    np.testing.assert_array_equal(image.pixels, arr.astype(np.float32))


def test_jpeg_reads_close_to_source(tmp_path, rng):
    arr = np.full((16, 24, 3), (200, 100, 50), np.uint8)
    path = tmp_path / "photo.jpg"
    PILImage.fromarray(arr).save(path, quality=98)
    image = read_image(path)
    assert image.format == "jpg"
    assert np.abs(image.pixels - arr).max() <= 3


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_rgb_keeps_precision_and_writes_back_16bit(tmp_path, rng, ext):
    arr = rng.integers(0, 65536, (9, 14, 3), dtype=np.uint16)
    path = tmp_path / f"deep{ext}"
    cv2.imwrite(str(path), arr[:, :, ::-1])  # OpenCV writes BGR
    image = read_image(path)
    assert image.bit_depth == 16
    np.testing.assert_allclose(image.pixels, arr * (255.0 / 65535.0), atol=1e-3)
    assert np.any(image.pixels != np.rint(image.pixels))  # finer than 8-bit steps
    out = write_image(image, tmp_path / f"again{ext}")
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back[:, :, ::-1], arr)


def test_16bit_gray_and_rgba(tmp_path, rng):
    gray = rng.integers(0, 65536, (7, 11), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), gray)
    image = read_image(tmp_path / "g16.png")
    assert image.bit_depth == 16 and image.alpha is None
    np.testing.assert_allclose(image.pixels[:, :, 1], gray * (255.0 / 65535.0), atol=1e-3)
    rgba = rng.integers(0, 65536, (7, 11, 4), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), rgba[:, :, [2, 1, 0, 3]])
    image = read_image(tmp_path / "c16.png")
    assert image.bit_depth == 16
    np.testing.assert_allclose(image.pixels, rgba[:, :, :3] * (255.0 / 65535.0), atol=1e-3)
    np.testing.assert_allclose(image.alpha, rgba[:, :, 3] * (255.0 / 65535.0), atol=1e-3)
    out = write_image(image, tmp_path / "c16_out.png")
    np.testing.assert_array_equal(cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[:, :, [2, 1, 0, 3]],
                                  rgba)


def test_gray_rgba_la_and_palette(tmp_path, rng):
    gray = rng.integers(0, 256, (8, 10), dtype=np.uint8)
    PILImage.fromarray(gray, "L").save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert image.alpha is None
    for c in range(3):
        np.testing.assert_array_equal(image.pixels[:, :, c], gray)

    rgba = rng.integers(0, 256, (8, 10, 4), dtype=np.uint8)
    PILImage.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    image = read_image(tmp_path / "rgba.png")
    np.testing.assert_array_equal(image.pixels, rgba[:, :, :3])
    np.testing.assert_array_equal(image.alpha, rgba[:, :, 3])

    PILImage.fromarray(gray, "L").convert("LA").save(tmp_path / "la.png")
    assert read_image(tmp_path / "la.png").alpha is not None

    pal = PILImage.fromarray(_rgb8(rng, 8, 10)).convert("P", palette=PILImage.Palette.ADAPTIVE,
                                                         colors=16)
    pal.save(tmp_path / "p.png")
    image = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(image.pixels, np.asarray(pal.convert("RGB")))
    assert image.alpha is None
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pt.png", transparency=0)
    image = read_image(tmp_path / "pt.png")
    assert image.alpha is not None
    np.testing.assert_array_equal(image.alpha == 0, np.asarray(pal) == 0)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_and_reset(tmp_path, rng, orientation):
    arr = _rgb8(rng, 6, 9)
    path = tmp_path / "o.png"
    PILImage.fromarray(arr).save(path, exif=_exif(orientation).tobytes())
    image = read_image(path)
    expected = np.asarray(ImageOps.exif_transpose(PILImage.open(path)).convert("RGB"))
    np.testing.assert_array_equal(image.pixels, expected)
    assert image.pixels.shape[:2] == ((9, 6) if orientation >= 5 else (6, 9))
    exif = PILImage.Exif()
    exif.load(image.exif)
    assert exif[0x0112] == 1 and exif[0x010F] == "TestCam"


def test_jpeg_orientation_with_exif(tmp_path, rng):
    arr = np.zeros((8, 16, 3), np.uint8)
    arr[:, :8] = 255  # left half white
    path = tmp_path / "cam.jpg"
    PILImage.fromarray(arr).save(path, exif=_exif(6).tobytes(), quality=95)
    image = read_image(path)
    assert image.pixels.shape == (16, 8, 3)
    # rotated 90 degrees clockwise: the white left half is now on top
    assert image.pixels[:8].mean() > 200 and image.pixels[8:].mean() < 50


def test_non_ascii_path(tmp_path, rng):
    folder = tmp_path / "фото 写真"
    folder.mkdir()
    arr = _rgb8(rng)
    path = folder / "été ünïcødé.png"
    PILImage.fromarray(arr).save(path)
    np.testing.assert_array_equal(read_image(path).pixels, arr)
    out = write_image(read_image(path), folder / "résultat.webp", quality=100)
    np.testing.assert_array_equal(read_image(out).pixels, arr)


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "tif"])
def test_exif_and_icc_round_trip(tmp_path, rng, fmt):
    image = Image(pixels=_rgb8(rng).astype(np.float32), alpha=None, bit_depth=8,
                  exif=_exif(1).tobytes(), icc=ICC, source=None)
    out = write_image(image, tmp_path / f"meta.{fmt}", quality=90)
    back = read_image(out)
    assert back.icc == ICC
    exif = PILImage.Exif()
    exif.load(back.exif)
    assert exif[0x010F] == "TestCam"


def test_16bit_png_keeps_metadata(tmp_path, rng):
    pixels = rng.uniform(0, 255, (5, 6, 3)).astype(np.float32)
    image = Image(pixels=pixels, bit_depth=16, exif=_exif(1).tobytes(), icc=ICC)
    back = read_image(write_image(image, tmp_path / "m16.png"))
    assert back.bit_depth == 16 and back.icc == ICC
    np.testing.assert_allclose(back.pixels, pixels, atol=255 / 65535)
    exif = PILImage.Exif()
    exif.load(back.exif)
    assert exif[0x010F] == "TestCam"


def test_write_formats_and_bit_depths(tmp_path, rng):
    pixels = rng.uniform(0, 255, (10, 12, 3)).astype(np.float32)
    alpha = rng.uniform(0, 255, (10, 12)).astype(np.float32)
    image = Image(pixels=pixels, alpha=alpha, bit_depth=16)
    png8 = read_image(write_image(image, tmp_path / "a.png", bit_depth=8))
    assert png8.bit_depth == 8
    np.testing.assert_array_equal(png8.pixels, np.rint(pixels))
    np.testing.assert_array_equal(png8.alpha, np.rint(alpha))
    webp = read_image(write_image(image, tmp_path / "a.webp", quality=100))
    assert webp.alpha is not None and webp.bit_depth == 8  # WebP has no 16-bit
    tif = read_image(write_image(image, tmp_path / "a.tif"))
    assert tif.bit_depth == 16 and tif.alpha is not None
    # JPEG has no alpha: flattened onto white; explicit 16-bit JPEG is refused
    opaque = Image(pixels=np.zeros((4, 4, 3), np.float32), alpha=np.zeros((4, 4), np.float32))
    jpg = read_image(write_image(opaque, tmp_path / "a.jpg"))
    assert jpg.alpha is None and jpg.pixels.min() >= 250
    with pytest.raises(ImageWriteError, match="16 bits"):
        write_image(image, tmp_path / "b.jpg", bit_depth=16)
    with pytest.raises(ImageWriteError, match="cannot write format"):
        write_image(image, tmp_path / "b.gif")
    # values outside 0..255 are clamped, fmt overrides the suffix
    wild = Image(pixels=np.full((3, 3, 3), 300.0, np.float32))
    out = write_image(wild, tmp_path / "c.data", fmt="png")
    assert read_image(out).pixels.min() == 255


def test_jpeg_quality_matters(tmp_path, rng):
    image = Image(pixels=rng.uniform(0, 255, (64, 64, 3)).astype(np.float32))
    small = write_image(image, tmp_path / "q20.jpg", quality=20).stat().st_size
    large = write_image(image, tmp_path / "q95.jpg", quality=95).stat().st_size
    assert small < large


def test_no_overwrite_and_atomic_write(tmp_path, rng, monkeypatch):
    image = Image(pixels=_rgb8(rng).astype(np.float32))
    path = tmp_path / "out.png"
    path.write_bytes(b"precious")
    with pytest.raises(ImageWriteError, match="already exists"):
        write_image(image, path)
    assert path.read_bytes() == b"precious"
    write_image(image, path, overwrite=True)
    np.testing.assert_array_equal(read_image(path).pixels, image.pixels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]

    # a failure while writing the temp file leaves nothing behind

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", boom)
    with pytest.raises(ImageWriteError, match="No space left"):
        write_image(image, tmp_path / "new.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_no_overwrite_even_if_the_file_appears_during_encoding(tmp_path, rng, monkeypatch):
    import engine.io.imageio as imageio

    image = Image(pixels=_rgb8(rng).astype(np.float32))
    path = tmp_path / "race.png"
    real_encode = imageio._encode

    def encode_then_someone_writes(*args, **kwargs):
        data = real_encode(*args, **kwargs)
        path.write_bytes(b"theirs")
        return data

    monkeypatch.setattr(imageio, "_encode", encode_then_someone_writes)
    with pytest.raises(ImageWriteError, match="already exists"):
        write_image(image, path)
    assert path.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race.png"]


def test_write_creates_missing_folders(tmp_path, rng):
    image = Image(pixels=_rgb8(rng).astype(np.float32))
    out = write_image(image, tmp_path / "a" / "b" / "c.png")
    assert out.exists()


# ----------------------------------------------------------------------------- errors


def _png_bytes(rng: np.random.Generator, size: int = 64) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(_rgb8(rng, size, size)).save(buf, format="PNG")
    return buf.getvalue()


def test_read_errors_name_the_file(tmp_path, rng):
    cases: dict[str, bytes | None] = {
        "missing.png": None,
        "empty.png": b"",
        "text.png": b"this is not an image at all",
        "truncated.png": _png_bytes(rng)[:200],
    }
    jpg = io.BytesIO()
    PILImage.fromarray(_rgb8(rng, 64, 64)).save(jpg, format="JPEG")
    cases["truncated.jpg"] = jpg.getvalue()[: len(jpg.getvalue()) // 3]
    gif = io.BytesIO()
    PILImage.fromarray(_rgb8(rng)).save(gif, format="GIF")
    cases["animated.gif"] = gif.getvalue()
    for name, data in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(ImageReadError) as info:
            read_image(path)
        assert str(path) in str(info.value), name
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


def test_mislabelled_but_real_image_is_read_by_content(tmp_path, rng):
    arr = _rgb8(rng)
    path = tmp_path / "really_png.jpg"
    PILImage.fromarray(arr).save(path, format="PNG")
    image = read_image(path)
    assert image.format == "png"
    np.testing.assert_array_equal(image.pixels, arr)


def test_pixel_limit_refuses_decompression_bombs(tmp_path):
    path = tmp_path / "bomb.png"
    PILImage.new("L", (4000, 3000)).save(path)  # compresses to a few KB
    assert path.stat().st_size < 100_000
    with pytest.raises(ImageReadError, match="megapixels") as info:
        read_image(path, max_pixels=1_000_000)
    assert str(path) in str(info.value)
    assert read_image(path, max_pixels=20_000_000).pixels.shape == (3000, 4000, 3)


def test_cmyk_jpeg_becomes_rgb_without_its_profile(tmp_path):
    path = tmp_path / "print.jpg"
    PILImage.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path, icc_profile=ICC)
    image = read_image(path)
    assert image.icc is None
    assert image.pixels[..., 0].mean() > 200 and image.pixels[..., 1].mean() < 60


def test_accepts_str_paths(tmp_path: Path, rng):
    path = tmp_path / "s.png"
    PILImage.fromarray(_rgb8(rng)).save(path)
    out = write_image(read_image(str(path)), str(tmp_path / "t.png"))
    assert isinstance(out, Path) and out.exists()


def test_16bit_gray_tiff(tmp_path, rng):
    gray = rng.integers(0, 65536, (6, 9), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g16.tif"), gray)
    image = read_image(tmp_path / "g16.tif")
    assert image.bit_depth == 16
    np.testing.assert_allclose(image.pixels[:, :, 2], gray * (255.0 / 65535.0), atol=1e-3)


def test_16bit_orientation_is_applied(tmp_path, rng):
    pixels = rng.uniform(0, 255, (4, 7, 3)).astype(np.float32)
    alpha = rng.uniform(0, 255, (4, 7)).astype(np.float32)
    turned = Image(pixels=pixels, alpha=alpha, bit_depth=16, exif=_exif(6).tobytes())
    image = read_image(write_image(turned, tmp_path / "t16.png"))
    assert image.bit_depth == 16 and image.pixels.shape == (7, 4, 3)
    np.testing.assert_allclose(image.pixels, np.rot90(pixels, -1), atol=255 / 65535)
    np.testing.assert_allclose(image.alpha, np.rot90(alpha, -1), atol=255 / 65535)
