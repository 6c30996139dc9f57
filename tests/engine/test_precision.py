"""Reduced precision on the CPU: what ``auto`` picks and why, and that bf16 stays within a grey
level or two of fp32 on a real photo while its output keeps fp32's resolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import engine.inference.cpu_caps as cpu_caps_module
from engine import ModelConfig, build_model, load_model, psnr_y, read_image
from engine.errors import ConfigError
from engine.inference.cpu_caps import cpu_caps
from engine.inference.devices import resolve_precision
from engine.inference.support import select_support
from engine.inference.upscaler import PRECISION_CHOICES, TileConfig, Upscaler
from engine.resources import default_model_path, sample_image_path

CPU = torch.device("cpu")
needs_bf16 = pytest.mark.skipif(not cpu_caps().bf16,
                                reason=f"no native bf16 on this CPU: {cpu_caps().reason}")


@pytest.fixture
def fresh_caps(monkeypatch):
    """Re-read the capabilities under the test's patches, and forget them afterwards."""
    cpu_caps.cache_clear()
    yield
    cpu_caps.cache_clear()


def _calm(model):
    with torch.no_grad():
        model.sr_net.output_conv.weight.mul_(0.02)
        model.sr_net.output_conv.bias.fill_(128.0)
    return model.eval()


def test_auto_follows_the_cpu_capabilities_and_gpus_get_fp32():
    expected = "bf16" if cpu_caps().bf16 else "fp32"
    assert resolve_precision("auto", CPU) == expected
    assert Upscaler(None, method="bicubic", precision="auto").precision == expected
    assert resolve_precision("auto", torch.device("cuda")) == "fp32"
    assert resolve_precision("fp32", CPU) == "fp32" and resolve_precision("bf16", CPU) == "bf16"
    assert PRECISION_CHOICES == ("auto", "fp32", "fp16", "bf16")
    with pytest.raises(ConfigError, match="auto, fp32, fp16, bf16"):
        resolve_precision("half", CPU)


def test_no_bf16_without_the_instructions(monkeypatch, fresh_caps):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    caps = cpu_caps()
    assert not caps.bf16 and "no AMX or AVX-512 BF16" in caps.reason
    assert resolve_precision("auto", CPU) == "fp32"


def test_a_onednn_isa_cap_below_bf16_turns_auto_to_fp32(monkeypatch, fresh_caps):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    caps = cpu_caps()
    assert not caps.bf16 and "capped at AVX2" in caps.reason
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    cpu_caps.cache_clear()
    if torch.backends.mkldnn.is_available() and cpu_caps_module._onednn_supports("bf16"):
        assert cpu_caps().bf16 and "native bf16 instructions" in cpu_caps().reason


def test_fp16_on_a_cpu_without_native_fp16_is_refused(monkeypatch, fresh_caps):
    monkeypatch.setattr(torch.cpu, "_is_amx_fp16_supported", lambda: False, raising=False)
    with pytest.raises(ConfigError, match="fp16 needs a GPU or a CPU with native fp16"):
        Upscaler(None, method="bicubic", precision="fp16", device="cpu")


@pytest.mark.parametrize("residual_lr", [1.0, 0.5])
def test_bf16_body_matches_fp32_tiled_and_untiled(seeded, rng, residual_lr):
    # bf16 convs run (emulated where the CPU lacks them), so this holds on every CPU
    cfg = ModelConfig(scale=4, channels=16, blocks=3, support_size=3, cond_channels=8,
                      residual_lr=residual_lr)
    model = _calm(build_model(cfg))
    pixels = rng.uniform(0, 255, (41, 58, 3)).astype(np.float32)  # non-square
    support = select_support(pixels, count=3, seed=3)
    ref = Upscaler(model, device="cpu", precision="fp32").upscale(pixels, support)
    whole = Upscaler(model, device="cpu", precision="bf16", tile=TileConfig(tile=512))
    tiled = Upscaler(model, device="cpu", precision="bf16", tile=TileConfig(tile=32))
    out = whole.upscale(pixels, support)
    assert out.dtype == np.float32 and out.shape == ref.shape
    assert 0.2 < ((ref > 0) & (ref < 255)).mean()
    assert 0 < np.abs(out - ref).max() < 1.0  # bf16 did run, and stayed close
    np.testing.assert_allclose(tiled.upscale(pixels, support), out, atol=0.5)


def test_bf16_output_keeps_fp32_resolution(seeded, rng, tiny_config):
    # a bf16 result would be whole numbers above 128 (8 significant bits)
    model = _calm(build_model(tiny_config))
    pixels = rng.uniform(0, 255, (24, 30, 3)).astype(np.float32)
    out = Upscaler(model, device="cpu", precision="bf16").upscale(pixels)
    bright = out[(out > 128) & (out < 255)]
    assert bright.size > 100
    assert np.mean(np.modf(bright)[0] != 0) > 0.9


@needs_bf16
def test_bf16_on_a_real_photo_is_within_two_grey_levels_of_fp32():
    model = load_model(default_model_path())
    lr = read_image(sample_image_path()).pixels
    hr = read_image(sample_image_path().with_name("sample_hr_reference.png")).pixels
    support = select_support(lr, count=model.support_size, mode="random", seed=0)
    fp32 = Upscaler(model, device="cpu", precision="fp32").upscale(lr, support, out_dtype=np.uint8)
    auto = Upscaler(model, device="cpu", precision="auto")
    assert auto.precision == "bf16"
    bf16 = auto.upscale(lr, support, out_dtype=np.uint8)
    assert hr.shape == fp32.shape
    diff = np.abs(bf16.astype(np.int16) - fp32.astype(np.int16))
    assert diff.max() <= 2
    assert abs(psnr_y(bf16.astype(np.float32), hr) - psnr_y(fp32.astype(np.float32), hr)) <= 0.02
