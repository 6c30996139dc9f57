"""Tiled inference: tiled == untiled, progress and prompt cancel, OOM retry, devices, the three
methods through one interface, and whole photos with alpha and metadata."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import torch

from engine import ModelConfig, build_model
from engine.errors import CancelledError, CmdsrError, ConfigError
from engine.inference.devices import available_devices, resolve_device
from engine.inference.support import select_support
from engine.inference.upscaler import (
    MIN_TILE,
    TileConfig,
    Upscaler,
    bicubic,
    receptive_radius,
    upscale_image,
)
from engine.io.imageio import Image


def _calm(model):
    """Untrained nets saturate; shrink the output so most pixels land inside 0..255 and the
    comparisons below are not hidden by the clamp."""
    with torch.no_grad():
        model.sr_net.output_conv.weight.mul_(0.02)
        model.sr_net.output_conv.bias.fill_(128.0)
    return model.eval()


@pytest.fixture
def model(seeded, tiny_config):
    return _calm(build_model(tiny_config))


@pytest.fixture
def baseline_model(seeded):
    cfg = ModelConfig(scale=2, channels=8, blocks=2, support_size=3, cond_channels=8,
                      conditioning=False)
    return _calm(build_model(cfg))


@pytest.fixture
def photo(rng) -> np.ndarray:
    return rng.uniform(0, 255, (45, 70, 3)).astype(np.float32)  # non-square


def _reference(model, pixels, support):
    """The training path on the whole image at once."""
    lr = torch.from_numpy(pixels).permute(2, 0, 1)[None]
    sup = None if support is None else torch.from_numpy(support.patches).permute(0, 3, 1, 2)[None]
    with torch.no_grad():
        out = model(lr, sup)[0].permute(1, 2, 0).numpy()
    return out


def test_tile_config_validation():
    assert TileConfig() == TileConfig(tile=0, overlap=16)
    TileConfig(tile=MIN_TILE, overlap=0)
    for bad in ({"tile": 5}, {"tile": -1}, {"overlap": -2}, {"tile": 64.0}, {"tile": True}):
        with pytest.raises(ConfigError):
            TileConfig(**bad)


def test_receptive_radius_counts_every_conv(tiny_config):
    assert receptive_radius(build_model(tiny_config)) == 2 * 2 + 3
    assert receptive_radius(build_model(ModelConfig())) == 23


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert "cpu" in available_devices()
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        assert resolve_device() == torch.device("cpu")
    with pytest.raises(ConfigError, match="cuda:7"):
        resolve_device("cuda:7")
    with pytest.raises(ConfigError, match="unknown device 'gpu'.*cpu"):
        resolve_device("gpu")


@pytest.mark.parametrize("tile", [MIN_TILE, 40])
def test_tiled_equals_untiled_on_non_square_image(model, photo, tile):
    support = select_support(photo, count=model.support_size, mode="random", seed=1)
    ref = _reference(model, photo, support)
    assert 0.2 < ((ref > 0) & (ref < 255)).mean()  # the comparison is not all clamp
    calls: list[tuple[int, int]] = []
    # overlap 0 asked for: the model's receptive field is used instead
    up = Upscaler(model, device="cpu", tile=TileConfig(tile=tile, overlap=0))
    assert up.overlap == receptive_radius(model)
    out = up.upscale(photo, support, progress=lambda d, t: calls.append((d, t)))
    assert out.shape == (45 * 4, 70 * 4, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    np.testing.assert_allclose(out, np.clip(ref, 0, 255), atol=1 / 255)
    total = calls[-1][1]
    assert total > 1 and calls == [(i, total) for i in range(total + 1)]
    untiled = Upscaler(model, device="cpu", tile=TileConfig(tile=512)).upscale(photo, support)
    np.testing.assert_allclose(out, untiled, atol=1 / 255)


@pytest.mark.parametrize("scale,residual_lr", [(2, 0.5), (3, 1.0)])
def test_tiled_matches_the_model_for_other_scales(seeded, rng, scale, residual_lr):
    cfg = ModelConfig(scale=scale, channels=8, blocks=1, support_size=2, cond_channels=8,
                      residual_lr=residual_lr)
    model = _calm(build_model(cfg))
    pixels = rng.uniform(0, 255, (37, 33, 3)).astype(np.float32)
    support = select_support(pixels, count=2, seed=5)
    out = Upscaler(model, device="cpu", tile=TileConfig(tile=MIN_TILE)).upscale(pixels, support)
    ref = np.clip(_reference(model, pixels, support), 0, 255)
    assert out.shape == (37 * scale, 33 * scale, 3)
    np.testing.assert_allclose(out, ref, atol=1 / 255)


def test_support_is_needed_and_picked_when_missing(model, photo):
    up = Upscaler(model, device="cpu")
    assert up.needs_support and up.support_size == model.support_size and up.scale == 4
    expected = up.upscale(photo, select_support(photo, count=3, mode="random", seed=0))
    np.testing.assert_array_equal(up.upscale(photo), expected)
    other = up.upscale(photo, select_support(photo, count=3, mode="auto"))
    assert not np.array_equal(other, expected)  # the support set changes the result
    with pytest.raises(ConfigError, match="3 support patches"):
        up.upscale(photo, select_support(photo, count=2))


def test_cancel_mid_image_stops_within_one_tile(model, photo):
    # progress and the cancel check come after every residual block and output piece
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done == 1:
            cancel.set()

    up = Upscaler(model, device="cpu", tile=TileConfig(tile=MIN_TILE))
    with pytest.raises(CancelledError):
        up.upscale(photo, progress=progress, cancel=cancel)
    assert seen == [0, 1]
    with pytest.raises(CancelledError):  # set before start: nothing runs
        up.upscale(photo, cancel=cancel)


def test_out_of_memory_halves_the_tile_and_retries(model, photo, monkeypatch, caplog):
    import engine.inference.upscaler as infer

    support = select_support(photo, count=3, seed=2)
    expected = Upscaler(model, device="cpu", tile=TileConfig(tile=256)).upscale(photo, support)
    real_body = infer._Stages.body
    limit = 40 + 2 * receptive_radius(model)  # padded tiles above this "do not fit"

    def body(self, x, step):
        if max(x.shape[-2:]) > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return real_body(self, x, step)

    monkeypatch.setattr(infer._Stages, "body", body)
    totals: list[int] = []
    up = Upscaler(model, device="cpu", tile=TileConfig(tile=80))
    with caplog.at_level(logging.WARNING, logger="engine.inference.upscaler"):
        out = up.upscale(photo, support, progress=lambda d, t: totals.append(t))
    assert "out of memory on cpu with 70-pixel tiles" in caplog.text
    assert "retrying with 35-pixel tiles" in caplog.text
    np.testing.assert_allclose(out, expected, atol=1 / 255)
    assert totals[-1] > totals[0]  # more, smaller tiles after the retry

    def always_oom(self, x, step):
        raise RuntimeError("CUDA out of memory. Tried to allocate 1 GiB")

    monkeypatch.setattr(infer._Stages, "body", always_oom)
    with pytest.raises(CmdsrError, match="out of memory"):
        Upscaler(model, device="cpu", tile=TileConfig(tile=64)).upscale(photo, support)


def test_other_errors_are_not_mistaken_for_oom(model, photo, monkeypatch):
    import engine.inference.upscaler as infer

    def broken(self, x):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(infer._Stages, "tail", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        Upscaler(model, device="cpu").upscale(photo)


def test_baseline_and_bicubic_share_the_interface(baseline_model, model, photo):
    base = Upscaler(baseline_model, method="baseline", device="cpu", tile=TileConfig(tile=32))
    assert not base.needs_support and base.support_size is None and base.scale == 2
    out = base.upscale(photo)
    np.testing.assert_allclose(out, np.clip(_reference(baseline_model, photo, None), 0, 255),
                               atol=1 / 255)
    cubic = Upscaler(None, method="bicubic", scale=3)
    calls: list[tuple[int, int]] = []
    out = cubic.upscale(photo, progress=lambda d, t: calls.append((d, t)))
    assert out.shape == (135, 210, 3) and calls[-1] == (1, 1)
    np.testing.assert_allclose(out, bicubic(photo, 3))
    assert 0 <= out.min() and out.max() <= 255
    assert Upscaler(model, method="bicubic").scale == 4  # takes the model's scale
    flat = np.full((5, 6, 3), 77.0, np.float32)
    np.testing.assert_allclose(cubic.upscale(flat), 77.0, atol=1e-3)


def test_method_and_model_mismatches_are_config_errors(model, baseline_model):
    with pytest.raises(ConfigError, match="needs a model"):
        Upscaler(None)
    with pytest.raises(ConfigError, match="conditioning off"):
        Upscaler(baseline_model, method="cmdsr", device="cpu")
    with pytest.raises(ConfigError, match="conditioned"):
        Upscaler(model, method="baseline", device="cpu")
    with pytest.raises(ConfigError, match="method"):
        Upscaler(model, method="lanczos")
    with pytest.raises(ConfigError, match="GPU"):
        Upscaler(model, device="cpu", precision="fp16")
    with pytest.raises(ConfigError, match="precision"):
        Upscaler(model, device="cpu", precision="int8")
    with pytest.raises(ConfigError, match="H, W, 3"):
        Upscaler(model, device="cpu").upscale(np.zeros((4, 4), np.float32))


def test_auto_tile_is_bounded(model):
    up = Upscaler(model, device="cpu")
    tile = up.choose_tile(1000, 1000)
    assert MIN_TILE <= tile <= 2048 and tile % 16 == 0
    # the paper model on the CPU: big body tiles, the 10x hungrier upsampling tail in pieces
    big = Upscaler(build_model(ModelConfig()), device="cpu")
    tile = big.choose_tile(1000, 1000)
    tail = big.choose_tail_tile(tile)
    assert MIN_TILE <= tail < 256 and tail <= tile
    assert (tile + 2 * big.overlap) ** 2 * 64 * 4.5 * 4 <= 1.3 * 2**30


def test_views_of_other_arrays_are_accepted(model, photo):
    up = Upscaler(model, device="cpu")
    flipped = photo[::-1, ::2]  # negative and non-unit strides, as from np.flip / slicing
    np.testing.assert_allclose(up.upscale(flipped), up.upscale(flipped.copy()))
    assert Upscaler(None, method="bicubic").overlap >= 0


def test_tiny_image_smaller_than_everything(model, rng):
    pixels = rng.uniform(0, 255, (3, 5, 3)).astype(np.float32)
    out = Upscaler(model, device="cpu").upscale(pixels)
    assert out.shape == (12, 20, 3)


def test_upscale_image_carries_alpha_and_metadata(model, rng):
    pixels = rng.uniform(0, 255, (20, 30, 3)).astype(np.float32)
    alpha = np.zeros((20, 30), np.float32)
    alpha[:, 15:] = 255.0
    image = Image(pixels=pixels, alpha=alpha, bit_depth=16, exif=b"Exif\x00\x00MM", icc=b"icc")
    out = upscale_image(image, Upscaler(model, device="cpu"), None)
    assert out.pixels.shape == (80, 120, 3) and out.alpha.shape == (80, 120)
    assert out.bit_depth == 16 and out.exif == image.exif and out.icc == b"icc"
    assert out.alpha[:, :55].max() <= 1 and out.alpha[:, 65:].min() >= 254
    assert 0 <= out.alpha.min() and out.alpha.max() <= 255
    assert image.pixels.shape == (20, 30, 3)  # the input is left alone
