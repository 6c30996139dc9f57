"""The JPEG quality on the command line (issue 29, item 2): ``cmdsr inspect`` prints the
quality the model reads ("no JPEG seen" when none), ``cmdsr upscale --jpeg Q`` steers CMDSR by
it beside --blur/--noise, with one-line errors for a value outside the knobs' range or a
model whose knobs have no JPEG input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from engine import ModelConfig, build_model, save_model
from engine.cli import main
from engine.condition_map import ConditionMap, attach_condition_map
from engine.damage_head import DamageHead, attach_damage_head

TINY = ModelConfig(channels=8, blocks=2, support_size=4, cond_channels=16)


def head_reading(jpeg: float) -> DamageHead:
    """A readout that answers blur 2, noise 10 and this JPEG quality for any photo."""
    head = DamageHead(16, hidden=8, outputs=3)
    with torch.no_grad():
        head.net[2].weight.zero_()
        head.net[2].bias.zero_()
        head.out_mean.copy_(torch.tensor([2.0, 10.0, jpeg]))
        head.out_max.copy_(torch.tensor([4.0, 50.0, 100.0]))
    return head


def knob_map(inputs: int) -> ConditionMap:
    cmap = ConditionMap(16, hidden=8, inputs=inputs)
    with torch.no_grad():
        cmap.in_min.copy_(torch.tensor([0.4, 0.0, 30.0])[:inputs])
        cmap.in_max.copy_(torch.tensor([4.0, 50.0, 100.0])[:inputs])
        cmap.in_std.copy_(torch.tensor([1.0, 10.0, 20.0])[:inputs])
        cmap.out_std.fill_(3.0)
    return cmap


def model_file(tmp_path: Path, name: str, jpeg_read: float, map_inputs: int | None) -> Path:
    torch.manual_seed(0)
    model = build_model(TINY)
    attach_damage_head(model, head_reading(jpeg_read))
    if map_inputs is not None:
        attach_condition_map(model, knob_map(map_inputs))
    return save_model(model, tmp_path / name)


@pytest.fixture
def photo(tmp_path, rng) -> Path:
    path = tmp_path / "a.png"
    PILImage.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path)
    return path


def _run(capsys, *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_inspect_prints_the_jpeg_quality_or_none_seen(tmp_path, photo, capsys) -> None:
    jpeg_model = model_file(tmp_path, "jpeg.pt", 58.0, None)
    code, out, err = _run(capsys, "inspect", photo, "--model", jpeg_model)
    assert code == 0, err
    assert out.strip().endswith("JPEG quality 58")
    code, out, _ = _run(capsys, "inspect", photo, "--model", jpeg_model, "--json")
    assert json.loads(out) == {"blur_sigma": 2.0, "noise_sigma": 10.0, "jpeg_quality": 58.0}
    clean_model = model_file(tmp_path, "clean.pt", 100.0, None)
    code, out, _ = _run(capsys, "inspect", photo, "--model", clean_model)
    assert code == 0 and out.strip().endswith("no JPEG seen")


def test_upscale_jpeg_steers_cmdsr(tmp_path, photo, capsys, monkeypatch) -> None:
    import engine.inference.upscaler as upscaler_module

    seen: list = []
    real = upscaler_module.Upscaler.upscale

    def spy(self, pixels, support=None, **kw):
        seen.append(kw.get("damage"))
        return real(self, pixels, support, **kw)

    monkeypatch.setattr(upscaler_module.Upscaler, "upscale", spy)
    model = model_file(tmp_path, "knobs.pt", 58.0, 3)
    results = {}
    for name, extra in (("q35", ["--jpeg", "35"]), ("none", ["--jpeg", "100"]), ("read", [])):
        out = tmp_path / name
        code, _, err = _run(capsys, "upscale", photo, "-o", out, "--model", model,
                            "--blur", "1.5", "--noise", "5", *extra, "-q")
        assert code == 0, err
        results[name] = np.asarray(PILImage.open(out / "a_x4.png"), dtype=np.float32)
    # the value given is the one used; without --jpeg the photo's own reading is
    assert seen == [(1.5, 5.0, 35.0), (1.5, 5.0, 100.0), (1.5, 5.0, pytest.approx(58.0))]
    assert np.abs(results["q35"] - results["none"]).max() > 0


def test_upscale_jpeg_errors_are_one_line(tmp_path, photo, capsys) -> None:
    out = tmp_path / "out"
    knobs = model_file(tmp_path, "knobs.pt", 58.0, 3)
    code, _, err = _run(capsys, "upscale", photo, "-o", out, "--model", knobs, "--jpeg", "20")
    assert code == 2 and err.strip().count("\n") == 0
    assert "JPEG quality 20 is outside what this model was trained on (30 to 100)" in err
    old = model_file(tmp_path, "old.pt", 58.0, 2)  # knobs for blur and noise only
    code, _, err = _run(capsys, "upscale", photo, "-o", out, "--model", old, "--jpeg", "60")
    assert code == 2 and "no JPEG quality" in err and "old.pt" in err
    code, _, err = _run(capsys, "upscale", photo, "-o", out, "--model", knobs, "--jpeg", "60",
                        "--method", "bicubic")
    assert code == 2 and "--method cmdsr" in err
    code, _, err = _run(capsys, "upscale", photo, "-o", out, "--model", knobs, "--jpeg", "x")
    assert code == 2 and "--jpeg" in err
    assert not out.exists()
