"""The damage knobs in the window (issue 24): Blur and Noise start at the model's estimate for
the photo, Reset goes back to it, their range is the model's condition map's, a Run after a
move passes the values to the engine (and gives another result than reading the photo), the
preview of the part in view runs in a worker and is cancelled by the next move, a model
without a map disables them with one sentence, they are locked during a run, and a batch
uses the values set per photo."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QElapsedTimer, Qt, QTimer

from cmdsr_app.damage_knobs import NO_MAP, KnobRange, KnobValues, visible_box
from cmdsr_app.jobs import ModelCache, RunSettings, preview_damage

BLUR_RANGE, NOISE_RANGE = (0.5, 3.5), (0.0, 40.0)  # not the shipped map's: read from the file


def is_cmdsr(method: str) -> bool:
    """The CMDSR run's end (Compare's other sides finish on their own, in the background)."""
    return method == "cmdsr"


@pytest.fixture(scope="module")
def knob_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny conditioned x4 model with a damage readout (so the photo has an estimate) and
    a condition map fitted on blur 0.5-3.5, noise 0-40 (a seeded random MLP whose condition
    moves clearly with the numbers)."""
    import torch

    from engine import ModelConfig, build_model, save_model
    from engine.condition_map import ConditionMap, attach_condition_map
    from engine.damage_head import DamageHead, attach_damage_head

    torch.manual_seed(5)
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
        cmap.in_min.copy_(torch.tensor([BLUR_RANGE[0], NOISE_RANGE[0]]))
        cmap.in_max.copy_(torch.tensor([BLUR_RANGE[1], NOISE_RANGE[1]]))
        cmap.in_mean.copy_(torch.tensor([2.0, 20.0]))
        cmap.in_std.copy_(torch.tensor([0.5, 8.0]))
        cmap.out_std.fill_(3.0)
    attach_condition_map(model, cmap)
    path = tmp_path_factory.mktemp("models") / "tiny_knobs_x4.pt"
    save_model(model, path)
    return path


def use_model(qtbot, window, path: Path) -> None:
    with qtbot.waitSignal(window.modelReady, timeout=15000):
        window.choose_model(str(path))


def open_and_read(qtbot, window, photo: Path) -> None:
    """Open a photo and wait until the model's reading of it is in the panel."""
    with qtbot.waitSignal(window.damage.readingShown, timeout=20000):
        window.open_paths([photo])


def knobbed_window(qtbot, window, knob_model_path: Path, photo: Path):
    use_model(qtbot, window, knob_model_path)
    open_and_read(qtbot, window, photo)
    return window.damage_panel.knobs


def press(qtbot, widget, key: Qt.Key, times: int = 1) -> None:
    for _ in range(times):
        qtbot.keyClick(widget, key)


# -- Qt-free parts ---------------------------------------------------------------------------
def test_the_visible_box_is_the_part_in_view_capped_around_its_centre() -> None:
    assert visible_box((-50, -20, 60, 40), 100, 80) == (0, 0, 60, 40)
    assert visible_box((0, 0, 1000, 800), 1000, 800, side=160) == (420, 320, 160, 160)
    assert visible_box((900, 700, 1100, 900), 1000, 800, side=160) == (900, 700, 100, 100)
    assert visible_box((200, 0, 300, 50), 100, 80) is None


def test_knob_values_belong_to_each_photo() -> None:
    values = KnobValues()
    values.set(Path("a.png"), 2.0, 10.0)
    assert values.get(Path("a.png")) == (2.0, 10.0) and values.get(Path("b.png")) is None
    values.set_all([Path("b.png"), Path("c.png")], 1.0, 5.0)
    assert values.for_paths([Path("a.png"), Path("c.png"), Path("d.png")]) == {
        Path("a.png"): (2.0, 10.0), Path("c.png"): (1.0, 5.0)}
    values.clear(Path("a.png"))
    assert values.get(Path("a.png")) is None
    assert KnobRange((0.4, 4.0), (0.0, 50.0)).clamp(0.1, 60.0) == (0.4, 50.0)
    values.set(Path("a.png"), 3.9, 45.0)
    values.clamp_all(KnobRange((0.5, 3.5), (0.0, 40.0)))  # another model's narrower map
    assert values.get(Path("a.png")) == (3.5, 40.0) and values.get(Path("b.png")) == (1.0, 5.0)


def test_the_preview_is_the_full_runs_crop(knob_model_path: Path, make_photo) -> None:
    """Upscaling only the part in view (with its margin of context) gives the pixels the
    full run gives there."""
    from engine import Upscaler, load_model, read_image

    pixels = read_image(make_photo(height=72, width=96)).pixels
    settings = RunSettings(model_path=knob_model_path, device="cpu", precision="fp32")
    crop = preview_damage(pixels, (30, 20, 40, 24), (2.2, 15.0), settings, ModelCache())
    full = Upscaler(load_model(knob_model_path), method="cmdsr", device="cpu",
                    precision="fp32").upscale(pixels, None, damage=(2.2, 15.0))
    assert crop.shape == (96, 160, 3)
    np.testing.assert_allclose(crop, full[80:176, 120:280], atol=1e-3)


# -- the window ------------------------------------------------------------------------------
def test_knobs_start_at_the_estimate_and_reset_restores_it(qtbot, window, knob_model_path: Path,
                                                           make_photo) -> None:
    knobs = knobbed_window(qtbot, window, knob_model_path, make_photo())
    estimate = window.damage.reading.photo
    expected = KnobRange(BLUR_RANGE, NOISE_RANGE).clamp(estimate.blur_sigma, estimate.noise_sigma)
    assert knobs.blur.value() == pytest.approx(expected[0], abs=0.051)
    assert knobs.noise.value() == pytest.approx(expected[1], abs=0.51)
    assert knobs.blur.slider.value() == round(knobs.blur.value() * 10)
    assert "As read from the photo" in knobs.origin.text()
    assert not knobs.reset_button.isEnabled()
    assert window.knobs.damage_for(window.photos.image_path) is None  # a run reads the photo

    start = knobs.values()
    press(qtbot, knobs.blur.slider, Qt.Key.Key_Right, 5)  # +0.5 px, by the keyboard
    press(qtbot, knobs.noise.slider, Qt.Key.Key_Left, 3)
    assert knobs.values() == pytest.approx((start[0] + 0.5, start[1] - 3))
    assert knobs.blur.spin.value() == pytest.approx(knobs.blur.slider.value() / 10)
    assert window.knobs.damage_for(window.photos.image_path) == pytest.approx(knobs.values())
    assert "Set by you" in knobs.origin.text() and knobs.reset_button.isEnabled()

    qtbot.mouseClick(knobs.reset_button, Qt.MouseButton.LeftButton)
    assert knobs.values() == pytest.approx(expected, abs=0.51)
    assert "As read from the photo" in knobs.origin.text()
    assert window.knobs.damage_for(window.photos.image_path) is None
    assert not window.knobs.overlay.isVisible()


def test_the_range_comes_from_the_models_map(qtbot, window, knob_model_path: Path,
                                             make_photo) -> None:
    knobs = knobbed_window(qtbot, window, knob_model_path, make_photo())
    assert (knobs.blur.spin.minimum(), knobs.blur.spin.maximum()) == BLUR_RANGE
    assert (knobs.noise.spin.minimum(), knobs.noise.spin.maximum()) == NOISE_RANGE
    assert (knobs.blur.slider.minimum(), knobs.blur.slider.maximum()) == (5, 35)
    knobs.noise.spin.setValue(90)  # typed beyond the range: held at its end, never beyond
    assert knobs.noise.value() == NOISE_RANGE[1] and knobs.noise.slider.value() == 40
    assert window.knobs.damage_for(window.photos.image_path)[1] == NOISE_RANGE[1]


def test_a_model_without_a_map_disables_the_knobs_with_the_reason(qtbot, window, make_photo) -> None:
    # the window's default is the tiny model of the other tests: no condition map
    open_and_read(qtbot, window, make_photo())
    knobs = window.damage_panel.knobs
    assert not knobs.available
    assert knobs.origin.text() == NO_MAP
    for widget in (knobs.blur.slider, knobs.blur.spin, knobs.noise.slider, knobs.noise.spin,
                   knobs.reset_button, knobs.all_button):
        assert not widget.isEnabled()
    assert window.knobs.damage_for(window.photos.image_path) is None


def test_a_run_after_moving_a_knob_passes_its_values(qtbot, window, knob_model_path: Path,
                                                     make_photo, monkeypatch) -> None:
    import engine.inference.upscaler

    seen: list[tuple[float, float] | None] = []
    real = engine.inference.upscaler.Upscaler.upscale

    def spy(self, pixels, support=None, **kw):
        if self.method == "cmdsr":
            seen.append(kw.get("damage"))
        return real(self, pixels, support, **kw)

    monkeypatch.setattr(engine.inference.upscaler.Upscaler, "upscale", spy)
    knobs = knobbed_window(qtbot, window, knob_model_path, make_photo())
    with qtbot.waitSignal(window.upscaleFinished, timeout=30000, check_params_cb=is_cmdsr):
        window.run_upscale()
    as_read = window.upscale.outcomes["cmdsr"].image.pixels.copy()
    assert seen == [None]  # untouched: read from the support patches, as before
    qtbot.waitUntil(lambda: not window.heavy.busy, timeout=10000)  # Compare's Bicubic side

    press(qtbot, knobs.noise.slider, Qt.Key.Key_PageUp, 2)  # a big step: much more noise
    press(qtbot, knobs.blur.slider, Qt.Key.Key_Right, 4)
    values = knobs.values()
    with qtbot.waitSignal(window.upscaleFinished, timeout=30000, check_params_cb=is_cmdsr):
        window.run_upscale()
    outcome = window.upscale.outcomes["cmdsr"]
    assert seen[-1] == pytest.approx(values) and outcome.damage == pytest.approx(values)
    assert np.abs(outcome.image.pixels - as_read).mean() > 0.5  # the knobs steer the result
    assert "knobs: blur" in window.queue.current_entry.message


def test_dragging_never_blocks_and_each_move_cancels_the_last_preview(
        qtbot, window, knob_model_path: Path, make_photo, monkeypatch) -> None:
    import cmdsr_app.controllers.knobs as knob_module

    real = knob_module.preview_damage
    calls: list[tuple[int, threading.Event, tuple[float, float]]] = []

    def slow(pixels, box, damage, settings, cache, cancel=None):
        calls.append((threading.get_ident(), cancel, damage))
        time.sleep(0.4)  # a slow machine's preview
        return real(pixels, box, damage, settings, cache, cancel)

    monkeypatch.setattr(knob_module, "preview_damage", slow)
    knobs = knobbed_window(qtbot, window, knob_model_path, make_photo(height=96, width=128))
    window.canvas.fit()

    longest, ticks = 0, QElapsedTimer()
    ticks.start()

    def tick() -> None:
        nonlocal longest
        longest = max(longest, ticks.restart())

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(10)
    for _ in range(4):  # a drag with pauses just past the debounce: each pause starts a preview
        press(qtbot, knobs.blur.slider, Qt.Key.Key_Right)
        qtbot.wait(200)
    final = knobs.values()
    with qtbot.waitSignal(window.knobs.previewShown, timeout=20000) as shown:
        pass
    timer.stop()
    assert longest < 300, f"the window stood still for {longest} ms during the drag"
    assert len(calls) >= 2
    assert all(ident != threading.get_ident() for ident, _, _ in calls)  # in a worker
    assert all(cancel.is_set() for _, cancel, _ in calls[:-1])  # each superseded one cancelled
    assert not calls[-1][1].is_set() and calls[-1][2] == pytest.approx(final)
    box = shown.args[0]
    assert window.knobs.overlay.shown_box == box == (0, 0, 128, 96)  # the whole photo is in view
    preview = window.knobs.overlay.image()
    assert (preview.width(), preview.height()) == (512, 384)


def test_knobs_are_locked_during_a_run(qtbot, window, knob_model_path: Path, make_photo,
                                       slow_tiles) -> None:
    knobs = knobbed_window(qtbot, window, knob_model_path, make_photo())
    press(qtbot, knobs.blur.slider, Qt.Key.Key_Right)
    slow_tiles(0.05)
    combo = window.settings_panel.tile_combo
    combo.addItem("32 px", 32)  # several tiles, so the run lasts a while
    combo.setCurrentIndex(combo.findData(32))
    window.run_upscale()
    qtbot.waitUntil(lambda: window.heavy.busy, timeout=5000)
    for widget in (knobs.blur.slider, knobs.noise.spin, knobs.reset_button, knobs.all_button):
        assert not widget.isEnabled()
    with qtbot.waitSignal(window.upscaleFinished, timeout=30000, check_params_cb=is_cmdsr):
        pass
    qtbot.waitUntil(lambda: not window.heavy.busy, timeout=10000)
    assert knobs.blur.slider.isEnabled() and knobs.reset_button.isEnabled()


def test_a_batch_uses_the_values_set_per_photo(qtbot, window, knob_model_path: Path, make_photo,
                                               tmp_path: Path, monkeypatch) -> None:
    import cmdsr_app.controllers.batch as batch_module

    first, second = make_photo("first.png"), make_photo("second.png", seed=1)
    knobs = knobbed_window(qtbot, window, knob_model_path, first)
    window.open_paths([second])
    window.show_entry(0)
    qtbot.waitUntil(lambda: window.photos.image_path == first, timeout=10000)
    assert knobs.batch_note.text() == "Batches read each photo's damage."
    press(qtbot, knobs.noise.slider, Qt.Key.Key_Right, 4)
    set_values = window.knobs.damage_for(first)
    assert knobs.batch_note.text() == "Batches use your values for 1 of 2 photos, read the rest."

    given: dict = {}
    real = batch_module.run_batch

    def spy(*args, **kw):
        given.update(kw.get("damage_by_path") or {})
        return real(*args, **kw)

    monkeypatch.setattr(batch_module, "run_batch", spy)
    window.batch_panel.folder_edit.setText(str(tmp_path / "out"))
    (tmp_path / "out").mkdir()
    with qtbot.waitSignal(window.batchFinished, timeout=60000) as done:
        window.start_batch()
    assert done.args[0].summary() == "2 of 2 image(s) upscaled"
    assert given == {first: set_values}  # the other photo is read from itself
    recipe = window.batch._recipes
    assert recipe[first]["damage"] == pytest.approx(list(set_values)) and recipe[second]["damage"] is None

    qtbot.waitUntil(lambda: not window.heavy.busy, timeout=10000)
    qtbot.mouseClick(knobs.all_button, Qt.MouseButton.LeftButton)
    assert window.knobs.damage_for(second) == pytest.approx(knobs.values())
    assert knobs.batch_note.text() == "Batches use the values you set."
