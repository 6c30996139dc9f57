"""8-bit output straight from the upscaler: ``out_dtype=np.uint8`` equals the rounded float
result exactly (every method, tiled or not), writes the same files as the float result, and
the CLI uses it for 8-bit files without changing a pixel."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import engine.cli.upscale as cli_upscale
from engine import ModelConfig, build_model, save_model
from engine.cli import main
from engine.errors import ConfigError
from engine.inference.support import select_support
from engine.inference.upscaler import TileConfig, Upscaler, bicubic, upscale_image
from engine.io.imageio import Image, output_bit_depth, read_image, write_image


def _wide(model):
    """An untrained net's output spread over -60..320: plenty of clipping on both ends and
    many values near .5, so rounding and clipping are really exercised."""
    with torch.no_grad():
        model.sr_net.output_conv.weight.mul_(0.3)
        model.sr_net.output_conv.bias.fill_(128.0)
    return model.eval()


@pytest.fixture
def model(seeded, tiny_config):
    return _wide(build_model(tiny_config))


@pytest.fixture
def baseline_model(seeded):
    cfg = ModelConfig(scale=2, channels=8, blocks=2, support_size=3, cond_channels=8,
                      conditioning=False)
    return _wide(build_model(cfg))


@pytest.fixture
def photo(rng) -> np.ndarray:
    return rng.uniform(0, 255, (45, 70, 3)).astype(np.float32)


def _rounded(out: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("tile", [0, 32])
def test_model_methods_give_the_rounded_float_result(model, baseline_model, photo, tile):
    support = select_support(photo, count=3, size=16, mode="random", seed=1)
    for net, method, sup in ((model, "cmdsr", support), (baseline_model, "baseline", None)):
        up = Upscaler(net, method=method, device="cpu", tile=TileConfig(tile=tile, overlap=2))
        if tile:  # several tiles, and several tail pieces per tile
            assert up.choose_tile(*photo.shape[:2]) == 32
        ref = up.upscale(photo, sup)
        out = up.upscale(photo, sup, out_dtype=np.uint8)
        assert out.dtype == np.uint8 and out.shape == ref.shape
        np.testing.assert_array_equal(out, _rounded(ref))
        assert (ref == 0).any() and (ref == 255).any()  # the clip mattered


def test_tiny_tail_pieces_and_the_default_stays_float(model, photo, monkeypatch):
    up = Upscaler(model, method="cmdsr", device="cpu", tile=TileConfig(tile=32, overlap=0))
    monkeypatch.setattr(up, "choose_tail_tile", lambda tile: 16)
    support = select_support(photo, count=3, size=16, mode="random", seed=2)
    ref = up.upscale(photo, support)
    assert ref.dtype == np.float32
    np.testing.assert_array_equal(up.upscale(photo, support, out_dtype=np.uint8), _rounded(ref))
    np.testing.assert_array_equal(up.upscale(photo, support, out_dtype="float32"), ref)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_bands_give_the_rounded_float_result(rng, scale, monkeypatch):
    import engine.inference.upscaler as infer

    monkeypatch.setattr(infer, "_BAND_SAMPLES", 5000)  # many bands even on a small image
    pixels = rng.uniform(-30, 285, (61, 37, 3)).astype(np.float32)
    alpha = rng.uniform(0, 255, (61, 37)).astype(np.float32)
    for arr in (pixels, alpha):
        ref = bicubic(arr, scale)
        out = bicubic(arr, scale, out_dtype=np.uint8)
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out, _rounded(ref))
    up = Upscaler(None, method="bicubic", scale=scale)
    np.testing.assert_array_equal(up.upscale(pixels, out_dtype=np.uint8),
                                  _rounded(up.upscale(pixels)))


def test_bad_out_dtype_is_a_config_error(photo):
    up = Upscaler(None, method="bicubic")
    for bad in (np.uint16, np.float64, "nonsense"):
        with pytest.raises(ConfigError, match="out_dtype"):
            up.upscale(photo, out_dtype=bad)


def test_upscale_image_makes_pixels_and_alpha_uint8(model, rng):
    pixels = rng.uniform(0, 255, (20, 24, 3)).astype(np.float32)
    alpha = rng.uniform(0, 255, (20, 24)).astype(np.float32)
    image = Image(pixels=pixels, alpha=alpha, exif=b"Exif\x00\x00x", icc=b"icc", format="png")
    up = Upscaler(model, method="cmdsr", device="cpu", tile=TileConfig(tile=32))
    support = select_support(pixels, count=3, size=8, mode="random", seed=0)
    ref = upscale_image(image, up, support)
    out = upscale_image(image, up, support, out_dtype=np.uint8)
    assert out.pixels.dtype == np.uint8 and out.alpha is not None and out.alpha.dtype == np.uint8
    assert ref.alpha is not None and ref.alpha.dtype == np.float32
    np.testing.assert_array_equal(out.pixels, _rounded(ref.pixels))
    np.testing.assert_array_equal(out.alpha, _rounded(ref.alpha))
    assert (out.exif, out.icc, out.bit_depth) == (ref.exif, ref.icc, ref.bit_depth)


# --------------------------------------------------------------------------- writing


def _exif() -> bytes:
    exif = PILImage.Exif()
    exif[0x010F] = "CMDSR test camera"
    return exif.tobytes()


def _trio(rng, alpha: bool) -> tuple[Image, Image, Image]:
    """A uint8 image; its float twin holding exactly those values (what it must write like);
    and the raw float result it was rounded from (fractional, out of range), which must give
    the same 8-bit files."""
    raw = rng.uniform(-20, 275, (23, 31, 3)).astype(np.float32)
    a = rng.uniform(0, 255, (23, 31)).astype(np.float32) if alpha else None
    small = Image(pixels=_rounded(raw), alpha=None if a is None else _rounded(a), exif=_exif())
    as_float = Image(pixels=small.pixels.astype(np.float32),
                     alpha=None if small.alpha is None else small.alpha.astype(np.float32),
                     exif=small.exif)
    plain = Image(pixels=raw, alpha=None if a is None else np.clip(a, 0, 255), exif=small.exif)
    return small, as_float, plain


@pytest.mark.parametrize("alpha", [False, True])
@pytest.mark.parametrize("fmt,bits", [("png", 8), ("jpg", 8), ("webp", 8), ("tif", 8),
                                      ("png", 16), ("tif", 16)])
def test_uint8_images_write_the_same_bytes_as_floats(tmp_path, rng, alpha, fmt, bits):
    small, as_float, plain = _trio(rng, alpha)
    a = write_image(small, tmp_path / f"u8.{fmt}", bit_depth=bits)
    b = write_image(as_float, tmp_path / f"f32.{fmt}", bit_depth=bits)
    assert a.read_bytes() == b.read_bytes()
    if bits == 8 and not (alpha and fmt == "jpg"):  # flattening blends before rounding
        c = write_image(plain, tmp_path / f"raw.{fmt}", bit_depth=bits)
        assert a.read_bytes() == c.read_bytes()
    if bits == 16:
        back = read_image(a)
        assert back.bit_depth == 16
        np.testing.assert_array_equal(back.pixels, small.pixels.astype(np.float32))
    if fmt == "png" and bits == 8:  # lossless: the file holds exactly the uint8 values
        decoded = np.asarray(PILImage.open(io.BytesIO(a.read_bytes())))
        np.testing.assert_array_equal(decoded[:, :, :3], small.pixels)
        if alpha:
            np.testing.assert_array_equal(decoded[:, :, 3], small.alpha)


def test_sixteen_bit_from_uint8_is_times_257(tmp_path, rng):
    small = Image(pixels=rng.integers(0, 256, (9, 11, 3), dtype=np.uint8),
                  alpha=rng.integers(0, 256, (9, 11), dtype=np.uint8), bit_depth=16)
    path = write_image(small, tmp_path / "deep.png")
    import cv2

    bgra = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert bgra.dtype == np.uint16
    np.testing.assert_array_equal(bgra[:, :, 2::-1], small.pixels.astype(np.uint16) * 257)
    np.testing.assert_array_equal(bgra[:, :, 3], small.alpha.astype(np.uint16) * 257)


def test_jpeg_flattening_of_a_uint8_image_matches_the_float_one(tmp_path, rng):
    small, as_float, _ = _trio(rng, alpha=True)
    a = write_image(small, tmp_path / "u8.jpg", quality=100)
    b = write_image(as_float, tmp_path / "f32.jpg", quality=100)
    assert a.read_bytes() == b.read_bytes()


def test_output_bit_depth_follows_format_and_source():
    assert output_bit_depth("png", 16) == 16
    assert output_bit_depth("TIFF", 16) == 16
    assert output_bit_depth("jpg", 16) == 8
    assert output_bit_depth("webp", 16) == 8
    assert output_bit_depth("png", 8) == 8
    assert output_bit_depth("jpg", 8, 16) == 16  # an explicit depth wins (write_image refuses it)


# --------------------------------------------------------------------------- CLI


def test_cli_writes_8_bit_files_from_uint8_results_unchanged(tmp_path, rng, seeded, tiny_config,
                                                             capsys, monkeypatch):
    model_path = save_model(_wide(build_model(tiny_config)), tmp_path / "tiny.pt")
    src = tmp_path / "in"
    src.mkdir()
    PILImage.fromarray(rng.integers(0, 256, (18, 26, 3), dtype=np.uint8)).save(src / "a.png")
    PILImage.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(src / "b.jpg")
    deep = (rng.integers(0, 65536, (14, 10, 3))).astype(np.uint16)
    import cv2

    cv2.imwrite(str(src / "c.png"), deep)  # a 16-bit PNG stays 16-bit, so float results
    seen: list[tuple[str, np.dtype]] = []
    real = cli_upscale.upscale_image

    def recording(image, *args, **kwargs):
        seen.append((Path(image.source).name, np.dtype(kwargs.get("out_dtype", np.float32))))
        return real(image, *args, **kwargs)

    def always_float(image, *args, **kwargs):
        kwargs.pop("out_dtype", None)
        return real(image, *args, **kwargs)

    def run(out: Path) -> None:
        code = main(["upscale", str(src), "-o", str(out), "--model", str(model_path),
                     "--tile", "32", "--device", "cpu"])
        assert code == 0, capsys.readouterr().err

    monkeypatch.setattr(cli_upscale, "upscale_image", recording)
    run(tmp_path / "new")
    assert sorted(seen) == [("a.png", np.dtype(np.uint8)), ("b.jpg", np.dtype(np.uint8)),
                            ("c.png", np.dtype(np.float32))]
    monkeypatch.setattr(cli_upscale, "upscale_image", always_float)
    run(tmp_path / "before")
    for name in ("a_x4.png", "b_x4.jpg", "c_x4.png"):
        new, before = read_image(tmp_path / "new" / name), read_image(tmp_path / "before" / name)
        np.testing.assert_array_equal(new.pixels, before.pixels)
        assert new.bit_depth == before.bit_depth
    assert (tmp_path / "new" / "a_x4.png").read_bytes() == \
        (tmp_path / "before" / "a_x4.png").read_bytes()


def _old_quantise(arr: np.ndarray, bits: int) -> np.ndarray:
    """write_image's float quantisation before uint8 images existed (whole image at once)."""
    if bits == 16:
        return np.clip(np.rint(arr * np.float32(65535.0 / 255.0)), 0, 65535).astype(np.uint16)
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("bits", [8, 16])
def test_float_images_are_written_as_before(tmp_path, rng, bits):
    _, _, plain = _trio(rng, alpha=True)
    assert plain.alpha is not None
    path = write_image(plain, tmp_path / "f.png", bit_depth=bits)
    import cv2

    stacked = np.concatenate([plain.pixels, plain.alpha[:, :, None]], axis=2)
    bgra = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(bgra[:, :, [2, 1, 0, 3]], _old_quantise(stacked, bits))
    # JPEG flattening onto white: the same float math as before, then the same encoder
    a = (plain.alpha / 255.0)[:, :, None]
    flat = _old_quantise(plain.pixels * a + 255.0 * (1.0 - a), 8)
    buf = io.BytesIO()
    PILImage.fromarray(flat, "RGB").save(buf, format="JPEG", quality=95, subsampling=0,
                                         exif=plain.exif)
    assert write_image(plain, tmp_path / "f.jpg").read_bytes() == buf.getvalue()
