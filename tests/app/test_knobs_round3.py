"""The damage knobs, round 3 (issue 31 items 1, 9 and 14; issue 29 item 2): a photo opened
before the model is ready keeps "As read from the photo" and its runs read it; the knobs are
off with no photo or a failed one, "Use for all photos" with no queue; the JPEG knob beside
Blur and Noise; the values kept per photo across a restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from cmdsr_app.controllers.knobs import AS_READ

BLUR_RANGE, NOISE_RANGE, JPEG_RANGE = (0.5, 3.5), (0.0, 40.0), (30.0, 100.0)


def knob_model(path: Path, *, jpeg: bool = True) -> Path:
    """The tiny x4 model with a damage readout (blur about 2, noise about 12, JPEG about 60)
    and a condition map with (or without) a JPEG input."""
    import torch

    from engine import ModelConfig, build_model, save_model
    from engine.condition_map import ConditionMap, attach_condition_map
    from engine.damage_head import DamageHead, attach_damage_head

    torch.manual_seed(5)
    model = build_model(ModelConfig(scale=4, channels=8, blocks=2, support_size=20, cond_channels=8))
    outputs = 3 if jpeg else 2
    head = DamageHead(8, hidden=8, outputs=outputs)
    with torch.no_grad():
        head.in_std.fill_(0.02)
        head.out_mean.copy_(torch.tensor([2.0, 12.0, 60.0])[:outputs])
        head.out_std.copy_(torch.tensor([0.5, 4.0, 10.0])[:outputs])
        head.out_max.copy_(torch.tensor([4.0, 50.0, 100.0])[:outputs])
    attach_damage_head(model, head)
    cmap = ConditionMap(8, hidden=16, inputs=outputs)
    with torch.no_grad():
        cmap.in_min.copy_(torch.tensor([BLUR_RANGE[0], NOISE_RANGE[0], JPEG_RANGE[0]])[:outputs])
        cmap.in_max.copy_(torch.tensor([BLUR_RANGE[1], NOISE_RANGE[1], JPEG_RANGE[1]])[:outputs])
        cmap.in_mean.copy_(torch.tensor([2.0, 20.0, 70.0])[:outputs])
        cmap.in_std.copy_(torch.tensor([0.5, 8.0, 20.0])[:outputs])
        cmap.out_std.fill_(3.0)
    attach_condition_map(model, cmap)
    return save_model(model, path)


@pytest.fixture(scope="module")
def jpeg_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return knob_model(tmp_path_factory.mktemp("models") / "tiny_jpeg_knobs_x4.pt")


@pytest.fixture(scope="module")
def old_map_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return knob_model(tmp_path_factory.mktemp("models") / "tiny_old_knobs_x4.pt", jpeg=False)


def start_window(qtbot, monkeypatch, model_path: Path, baseline: Path, *, slow: float = 0.0):
    """The main window with ``model_path`` as the shipped default; with ``slow``, its model
    check takes that long (PyTorch and a big model on a slow disk)."""
    import cmdsr_app.controllers.models as models
    import engine
    import engine.resources

    for target in (engine, engine.resources):
        monkeypatch.setattr(target, "default_model_path", lambda: model_path)
        monkeypatch.setattr(target, "default_baseline_path", lambda: baseline)
    if slow:
        real = models.inspect_model

        def slow_inspect(path, cache):
            time.sleep(slow)
            return real(path, cache)

        monkeypatch.setattr(models, "inspect_model", slow_inspect)
    from cmdsr_app.main_window import MainWindow

    win = MainWindow()
    win.confirm_close = lambda: True  # type: ignore[method-assign]
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    return win


def spy_runs(monkeypatch) -> list:
    import engine.inference.upscaler

    seen: list = []
    real = engine.inference.upscaler.Upscaler.upscale

    def spy(self, pixels, support=None, **kw):
        if self.method == "cmdsr":
            seen.append(kw.get("damage"))
        return real(self, pixels, support, **kw)

    monkeypatch.setattr(engine.inference.upscaler.Upscaler, "upscale", spy)
    return seen


# -- issue 31 item 1 -------------------------------------------------------------------------
def test_a_photo_opened_before_the_model_is_ready_keeps_its_reading(
        qtbot, monkeypatch, jpeg_model_path, tiny_baseline_path, make_photo) -> None:
    seen = spy_runs(monkeypatch)
    window = start_window(qtbot, monkeypatch, jpeg_model_path, tiny_baseline_path, slow=1.0)
    photo = make_photo("early.png", 48, 64)
    window.open_paths([photo])  # as `python -m cmdsr_app early.png` does
    assert not window.models.ready
    qtbot.waitUntil(lambda: window.damage.reading is not None, timeout=20000)
    knobs = window.damage_panel.knobs
    qtbot.waitUntil(lambda: AS_READ[0] in knobs.origin.text(), timeout=5000)
    estimate = window.damage.reading.photo
    assert knobs.blur.value() == pytest.approx(min(max(estimate.blur_sigma, 0.5), 3.5), abs=0.051)
    assert knobs.noise.value() == pytest.approx(min(max(estimate.noise_sigma, 0.0), 40.0), abs=0.51)
    assert window.knobs.damage_for(photo) is None  # nothing set by the user
    assert not knobs.reset_button.isEnabled()
    with qtbot.waitSignal(window.upscaleFinished, timeout=30000):
        window.run_upscale()
    assert seen == [None]  # the run read the photo's support patches
    window.close()
