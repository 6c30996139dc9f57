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


def is_cmdsr(method: str) -> bool:
    """The CMDSR run's end (Compare's other sides finish on their own, in the background)."""
    return method == "cmdsr"


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
    with qtbot.waitSignal(window.upscaleFinished, timeout=30000, check_params_cb=is_cmdsr):
        window.run_upscale()
    assert seen == [None]  # the run read the photo's support patches
    window.close()


def use_model(qtbot, window, path: Path) -> None:
    with qtbot.waitSignal(window.modelReady, timeout=15000):
        window.choose_model(str(path))


def open_and_read(qtbot, window, photo: Path) -> None:
    with qtbot.waitSignal(window.damage.readingShown, timeout=20000):
        window.open_paths([photo])


# -- issue 29 item 2: the JPEG knob ----------------------------------------------------------
def test_the_jpeg_knob_starts_at_the_reading_and_steers_runs(
        qtbot, window, jpeg_model_path, make_photo, monkeypatch) -> None:
    seen = spy_runs(monkeypatch)
    use_model(qtbot, window, jpeg_model_path)
    photo = make_photo("j.png", 48, 64)
    open_and_read(qtbot, window, photo)
    knobs = window.damage_panel.knobs
    estimate = window.damage.reading.photo
    assert estimate.jpeg_quality is not None
    # the damage box shows the JPEG reading beside blur and noise
    assert estimate.jpeg_words() in window.damage_panel.rows()[0]
    assert knobs.jpeg.slider.isEnabled() and knobs.jpeg.spin.isEnabled()
    assert not knobs.jpeg_note.isVisible()
    expected = min(max(estimate.jpeg_quality, JPEG_RANGE[0]), JPEG_RANGE[1])
    assert knobs.jpeg.value() == pytest.approx(expected, abs=0.51)
    assert (knobs.jpeg.spin.minimum(), knobs.jpeg.spin.maximum()) == JPEG_RANGE
    assert "As read from the photo" in knobs.origin.text()

    start = knobs.values()
    for _ in range(10):
        qtbot.keyClick(knobs.jpeg.slider, Qt.Key.Key_Left)  # 10 qualities lower, by the keyboard
    assert knobs.values() == pytest.approx((start[0], start[1], start[2] - 10))
    assert window.knobs.damage_for(photo) == pytest.approx(knobs.values())
    assert "Set by you" in knobs.origin.text()
    with qtbot.waitSignal(window.upscaleFinished, timeout=30000, check_params_cb=is_cmdsr):
        window.run_upscale()
    assert seen[-1] == pytest.approx(knobs.values()) and len(seen[-1]) == 3
    assert f"JPEG {knobs.values()[2]:.0f}" in window.queue.current_entry.message
    # typed as a word: "none" is quality 100, no JPEG
    knobs.jpeg.spin.lineEdit().selectAll()
    qtbot.keyClicks(knobs.jpeg.spin.lineEdit(), "none")
    qtbot.keyClick(knobs.jpeg.spin.lineEdit(), Qt.Key.Key_Return)
    assert knobs.jpeg.value() == 100 and knobs.jpeg.spin.text() == "none"
    assert window.knobs.damage_for(photo)[2] == 100

    qtbot.mouseClick(knobs.reset_button, Qt.MouseButton.LeftButton)
    assert knobs.jpeg.value() == pytest.approx(expected, abs=0.51)
    assert window.knobs.damage_for(photo) is None


def test_the_jpeg_preview_and_use_for_all_carry_the_quality(
        qtbot, window, jpeg_model_path, make_photo) -> None:
    use_model(qtbot, window, jpeg_model_path)
    first, second = make_photo("a.png", 48, 64), make_photo("b.png", 48, 64, seed=1)
    open_and_read(qtbot, window, first)
    window.open_paths([second])
    window.show_entry(0)
    qtbot.waitUntil(lambda: window.photos.image_path == first, timeout=10000)
    knobs = window.damage_panel.knobs
    window.canvas.fit()
    with qtbot.waitSignal(window.knobs.previewShown, timeout=20000):
        knobs.jpeg.spin.setValue(40)
    assert window.knobs.damage_for(first)[2] == 40
    qtbot.mouseClick(knobs.all_button, Qt.MouseButton.LeftButton)
    assert window.knobs.damage_for(second) == pytest.approx(knobs.values())
    assert "JPEG 40" in window.statusBar().currentMessage()


def test_a_map_without_jpeg_disables_only_the_jpeg_knob_with_a_reason(
        qtbot, window, old_map_model_path, make_photo) -> None:
    from cmdsr_app.views.damage_knobs_view import NO_JPEG_KNOB

    use_model(qtbot, window, old_map_model_path)
    photo = make_photo("o.png", 48, 64)
    open_and_read(qtbot, window, photo)
    knobs = window.damage_panel.knobs
    assert knobs.blur.slider.isEnabled() and knobs.noise.spin.isEnabled()
    assert not knobs.jpeg.slider.isEnabled() and not knobs.jpeg.spin.isEnabled()
    assert knobs.jpeg_note.isVisible() and knobs.jpeg_note.text() == NO_JPEG_KNOB
    assert knobs.jpeg.spin.toolTip() == NO_JPEG_KNOB
    qtbot.keyClick(knobs.blur.slider, Qt.Key.Key_Right)
    assert len(window.knobs.damage_for(photo)) == 2  # blur and noise only
    assert "JPEG" not in window.damage_panel.rows()[0]  # its readout reads no JPEG


# -- issue 31 item 9: knobs that cannot work are off -----------------------------------------
def test_the_knobs_are_off_with_no_photo_or_a_failed_one(
        qtbot, window, jpeg_model_path, make_photo, tmp_path: Path) -> None:
    use_model(qtbot, window, jpeg_model_path)
    knobs = window.damage_panel.knobs
    steering = (knobs.blur.slider, knobs.blur.spin, knobs.noise.slider, knobs.noise.spin,
                knobs.jpeg.slider, knobs.jpeg.spin, knobs.reset_button, knobs.all_button)
    assert window.photos.image is None
    assert not any(w.isEnabled() for w in steering)  # nothing to steer yet
    assert "Open a photo" in knobs.origin.text()

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    with qtbot.waitSignal(window.errorShown, timeout=15000):
        window.open_paths([broken])
    qtbot.waitUntil(lambda: "could not be opened" in knobs.origin.text(), timeout=5000)
    assert not any(w.isEnabled() for w in steering)

    photo = make_photo("ok.png", 48, 64)
    open_and_read(qtbot, window, photo)
    window.show_entry(1)
    qtbot.waitUntil(lambda: window.photos.image_path == photo, timeout=10000)
    assert knobs.blur.slider.isEnabled() and knobs.all_button.isEnabled()
    window.show_entry(0)  # back to the one that failed
    qtbot.waitUntil(lambda: not knobs.blur.slider.isEnabled(), timeout=5000)
    assert "could not be opened" in knobs.origin.text()


def test_use_for_all_photos_is_off_with_an_empty_queue(
        qtbot, window, jpeg_model_path, make_photo) -> None:
    use_model(qtbot, window, jpeg_model_path)
    knobs = window.damage_panel.knobs
    open_and_read(qtbot, window, make_photo("only.png", 48, 64))
    assert knobs.all_button.isEnabled()
    window.remove_entry(0)
    qtbot.waitUntil(lambda: len(window.photos.queue) == 0, timeout=5000)
    assert not knobs.all_button.isEnabled() and not knobs.blur.slider.isEnabled()
    knobs.all_button.click()  # even if reached: nothing happens, nothing is said wrongly
    assert "set for all" not in window.statusBar().currentMessage()


# -- issue 31 item 14: knob values kept across a restart -------------------------------------
def test_knob_values_come_back_after_a_restart_under_the_same_model(
        qtbot, monkeypatch, jpeg_model_path, old_map_model_path, tiny_baseline_path,
        make_photo, isolated_settings: Path) -> None:
    photo = make_photo("kept.png", 48, 64)
    first = start_window(qtbot, monkeypatch, jpeg_model_path, tiny_baseline_path)
    qtbot.waitUntil(lambda: first.models.info is not None, timeout=10000)
    open_and_read(qtbot, first, photo)
    knobs = first.damage_panel.knobs
    knobs.blur.spin.setValue(3.0)
    knobs.jpeg.spin.setValue(45)
    set_values = first.knobs.damage_for(photo)
    assert set_values == pytest.approx((3.0, knobs.noise.value(), 45.0))
    first.close()

    seen = spy_runs(monkeypatch)
    second = start_window(qtbot, monkeypatch, jpeg_model_path, tiny_baseline_path)
    qtbot.waitUntil(lambda: second.models.info is not None, timeout=10000)
    open_and_read(qtbot, second, photo)
    knobs = second.damage_panel.knobs
    assert second.knobs.damage_for(photo) == pytest.approx(set_values)
    assert knobs.values() == pytest.approx(set_values)
    assert "Set by you" in knobs.origin.text() and knobs.reset_button.isEnabled()
    with qtbot.waitSignal(second.upscaleFinished, timeout=30000, check_params_cb=is_cmdsr):
        second.run_upscale()
    assert seen[-1] == pytest.approx(set_values)
    second.close()

    # another model: the values belong to the first one, so the photo is read again
    third = start_window(qtbot, monkeypatch, old_map_model_path, tiny_baseline_path)
    qtbot.waitUntil(lambda: third.models.info is not None, timeout=10000)
    open_and_read(qtbot, third, photo)
    assert third.knobs.damage_for(photo) is None
    assert "As read from the photo" in third.damage_panel.knobs.origin.text()
    third.close()


def test_kept_values_outside_the_models_range_are_not_restored(
        qtbot, monkeypatch, jpeg_model_path, tiny_baseline_path, make_photo,
        isolated_settings: Path) -> None:
    import json

    photo = make_photo("edited.png", 48, 64)
    (isolated_settings / "settings.json").write_text(json.dumps({"knobs": {
        str(photo): {"model": str(jpeg_model_path), "values": [9.0, 5.0, 60.0]}}}))
    window = start_window(qtbot, monkeypatch, jpeg_model_path, tiny_baseline_path)
    qtbot.waitUntil(lambda: window.models.info is not None, timeout=10000)
    open_and_read(qtbot, window, photo)
    assert window.knobs.damage_for(photo) is None  # blur 9 is beyond this model's 3.5
    assert "As read from the photo" in window.damage_panel.knobs.origin.text()
    window.close()


def test_a_batch_uses_the_jpeg_values_set_per_photo(
        qtbot, window, jpeg_model_path, make_photo, tmp_path: Path, monkeypatch) -> None:
    import cmdsr_app.controllers.batch as batch_module

    use_model(qtbot, window, jpeg_model_path)
    first, second = make_photo("first.png", 48, 64), make_photo("second.png", 48, 64, seed=1)
    open_and_read(qtbot, window, first)
    window.open_paths([second])
    window.show_entry(0)
    qtbot.waitUntil(lambda: window.photos.image_path == first, timeout=10000)
    knobs = window.damage_panel.knobs
    knobs.jpeg.spin.setValue(42)
    set_values = window.knobs.damage_for(first)
    given: dict = {}
    real = batch_module.run_batch

    def spy(*args, **kw):
        given.update(kw.get("damage_by_path") or {})
        return real(*args, **kw)

    monkeypatch.setattr(batch_module, "run_batch", spy)
    (tmp_path / "out").mkdir()
    window.batch_panel.folder_edit.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(window.batchFinished, timeout=60000) as done:
        window.start_batch()
    assert done.args[0].summary() == "2 of 2 image(s) upscaled"
    assert given == {first: set_values} and set_values[2] == 42
    assert window.batch._recipes[first]["damage"] == pytest.approx(list(set_values))
