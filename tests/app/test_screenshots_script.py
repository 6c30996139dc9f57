"""scripts/screenshots.py renders every view of the README and docs/app.md, the knob preview
among them, at the window size asked for (the smallest supported screen here), into PNGs that
show the window and stay small enough for the repository."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("screenshots_script", ROOT / "scripts" / "screenshots.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def knob_model(tmp_path: Path) -> Path:
    """A tiny conditioned x4 model with a damage readout and a condition map, so the photo is
    read and the knobs can be moved and previewed."""
    import torch

    from engine import ModelConfig, build_model, save_model
    from engine.condition_map import ConditionMap, attach_condition_map
    from engine.damage_head import DamageHead, attach_damage_head

    torch.manual_seed(3)
    model = build_model(ModelConfig(scale=4, channels=8, blocks=2, support_size=20, cond_channels=8))
    head = DamageHead(8, hidden=8)
    with torch.no_grad():
        head.in_std.fill_(0.02)
        head.out_mean.copy_(torch.tensor([2.0, 12.0]))
        head.out_std.copy_(torch.tensor([0.5, 4.0]))
        head.out_max.copy_(torch.tensor([4.0, 50.0]))
    attach_damage_head(model, head)
    cmap = ConditionMap(8, hidden=16)
    with torch.no_grad():
        cmap.in_min.copy_(torch.tensor([0.5, 0.0]))
        cmap.in_max.copy_(torch.tensor([3.5, 40.0]))
        cmap.in_mean.copy_(torch.tensor([2.0, 20.0]))
        cmap.in_std.copy_(torch.tensor([0.5, 8.0]))
        cmap.out_std.fill_(3.0)
    attach_condition_map(model, cmap)
    path = tmp_path / "tiny_knobs_x4.pt"
    save_model(model, path)
    return path


def test_the_script_renders_every_view(qapp, knob_model: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    import engine

    # the script points the app at its model; the patch is undone after the test
    monkeypatch.setattr(engine, "default_model_path", engine.default_model_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    import torch

    script = load_script()
    out = tmp_path / "shots"
    threads = torch.get_num_threads()
    try:
        assert script.main(["--model", str(knob_model), "--out", str(out), "--size", "1280x720"]) == 0
    finally:
        torch.set_num_threads(threads)  # the script sets its own for the rest of the process

    assert sorted(p.stem for p in out.glob("*.png")) == sorted(script.SHOTS)
    assert "knobs_preview" in script.SHOTS and "main_regions" in script.SHOTS
    for name in script.SHOTS:
        path = out / f"{name}.png"
        assert path.stat().st_size < script.MAX_KB * 1024, name
        with Image.open(path) as image:
            assert image.size == (1280, 720), name
            pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
        # a window, not an empty or one-colour grab: many colours, light panels and dark text
        colours = np.unique(pixels[::4, ::4].reshape(-1, 3), axis=0)
        assert len(colours) > 40, (name, len(colours))
        assert pixels.min() < 60 and pixels.max() > 200, name


def test_a_bad_size_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    script = load_script()
    with pytest.raises(SystemExit):
        script.main(["--size", "big"])
    assert "size must read WIDTHxHEIGHT, e.g. 1366x768, not 'big'" in capsys.readouterr().err
